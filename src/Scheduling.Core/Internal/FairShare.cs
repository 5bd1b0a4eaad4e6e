namespace Scheduling.Internal;

/// <summary>
/// Splits one acquisition batch across queues by weight. Each queue first gets the whole part of
/// its share; the fractional remainders are dealt at random in proportion to their size, so each
/// queue's expected count is exactly its weighted share even for batches of one. A queue that
/// cannot fill its quota leaves the rest to the others (the stores do that part).
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static class FairShare
{
    /// <summary>At most this many queues in one acquisition.</summary>
    public const int MaxQueues = 100;
    /// <summary>The largest weight a queue may have.</summary>
    public const int MaxWeight = 1000;

    /// <summary>Each queue's share of <paramref name="maxJobs"/>: whole parts by weight, remainders dealt at random in proportion.</summary>
    public static int[] Quotas(IReadOnlyList<QueueShare> shares, int maxJobs, Random random)
    {
        var total = 0L;
        foreach (var share in shares) total += share.Weight;
        var quotas = new int[shares.Count];
        var remainders = new long[shares.Count];
        var dealt = 0;
        for (var i = 0; i < shares.Count; i++)
        {
            var exact = (long)maxJobs * shares[i].Weight;
            quotas[i] = (int)(exact / total);
            remainders[i] = exact % total;
            dealt += quotas[i];
        }

        var left = maxJobs - dealt; // sum of remainders == left * total
        for (var k = 0; k < left; k++)
        {
            var draw = random.NextInt64(left * total);
            for (var i = 0; i < shares.Count; i++)
            {
                draw -= remainders[i]; // each remainder is its queue's chance (out of left x total) of this slot
                if (draw < 0 || i == shares.Count - 1)
                {
                    quotas[i]++;
                    break;
                }
            }
        }

        return quotas;
    }

    /// <summary>The order in which queues that filled their quota share what is left: the n-th extra job of a queue of weight w at n / w.</summary>
    public static double SpareRank(int nth, int weight) => (double)nth / weight;
}
