namespace Scheduling.Internal;

/// <summary>
/// The shape of a limited queue's claim, shared by both stores (PL/pgSQL twin: claim_limited): how
/// many keys one claim visits, and how a batch is dealt between the keys it visits.
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static class LimitedClaim
{
    /// <summary>
    /// How many keys a claim of <paramref name="maxJobs"/> visits, least recently visited first: enough
    /// to fill the batch when some keys are at their cap or out of tokens, and a bound on its cost.
    /// </summary>
    public static int KeysVisited(int maxJobs) => Math.Max(2 * maxJobs, 32);

    /// <summary>
    /// Deals up to <paramref name="want"/> jobs between slots allowed <paramref name="allowed"/>[i]
    /// each, in passes: a pass asks each open slot, least served first (then in order), for an equal share of what is left
    /// (rounded down, at least one; the asks never add up to more than is left), takes them all, and
    /// closes a slot that gave fewer than asked or all it may; until the batch is full or no slot is
    /// open. So every slot gets at least min(what it can give, ⌊want / slots⌋), and a slot with little
    /// to give leaves its share to the others in the next pass. (PostgreSQL takes a whole pass in one statement.)
    /// </summary>
    /// <param name="want">The batch size.</param>
    /// <param name="allowed">Per slot, the most it may give in this claim.</param>
    /// <param name="take">Takes up to n more jobs from slot i, after the ones it already gave; returns how many it took.</param>
    /// <returns>
    /// Per slot, how many it gave, and whether it was visited: asked for jobs, or allowed none. A slot
    /// the batch filled up before reaching keeps its place in the round (the stores move only visited keys back).
    /// </returns>
    public static (int[] Given, bool[] Visited) Deal(int want, int[] allowed, Func<int, int, int, int> take)
    {
        var given = new int[allowed.Length];
        var open = allowed.Select(a => a > 0).ToArray();
        var visited = allowed.Select(a => a <= 0).ToArray();
        while (want > 0)
        {
            var openCount = open.Count(o => o);
            if (openCount == 0) break;
            var share = Math.Max(1, want / openCount);
            var asks = new int[allowed.Length];
            var budget = want;
            // The least served first: a slot asked nothing yet goes before one asked again (water-filling).
            foreach (var i in Enumerable.Range(0, allowed.Length).OrderBy(i => given[i]).ThenBy(i => i))
            {
                if (!open[i]) continue;
                asks[i] = Math.Min(Math.Min(share, allowed[i] - given[i]), budget);
                budget -= asks[i];
            }

            for (var i = 0; i < allowed.Length; i++)
            {
                if (asks[i] == 0) continue;
                var got = take(i, asks[i], given[i]);
                visited[i] = true;
                given[i] += got;
                want -= got;
                if (got < asks[i] || given[i] >= allowed[i]) open[i] = false;
            }
        }

        return (given, visited);
    }
}
