namespace Scheduling.Hosting;

/// <summary>
/// How many jobs a queue's fetch loops may hold (running, or fetched ahead and waiting for a slot)
/// and how many one fetch takes. An explicit <see cref="QueueWorkerOptions.Prefetch"/> or
/// <see cref="QueueWorkerOptions.FetchBatchSize"/> is used as given. Otherwise the host holds about
/// <see cref="WorkBudget"/> of work per slot, judged from recent run durations: 4 x the concurrency
/// (Celery's multiplier) for jobs of 25 ms and longer, up to 250 x for very short jobs, so a host
/// draining short jobs fetches hundreds per round trip instead of a few, while long jobs are not
/// hoarded away from other hosts.
/// </summary>
internal sealed class PrefetchSizing
{
    public static readonly TimeSpan WorkBudget = TimeSpan.FromMilliseconds(100);
    public const int MinMultiplier = 4;
    public const int MaxMultiplier = 250;
    public const int MaxHeld = 10_000;

    private readonly int _concurrency;
    private readonly int? _prefetch;
    private readonly int? _fetchBatchSize;
    private long _meanRunTicks = -1; // moving average of run durations; -1 until the first

    public PrefetchSizing(QueueWorkerOptions options)
    {
        _concurrency = options.Concurrency;
        _prefetch = options.Prefetch;
        _fetchBatchSize = options.FetchBatchSize;
        var initial = Held;
        var maxFetch = _fetchBatchSize ?? initial;
        Loops = Math.Clamp((initial + maxFetch - 1) / maxFetch, 1, _concurrency);
    }

    /// <summary>How many fetch loops share the slots: several only when fetches are too small for one to keep up.</summary>
    public int Loops { get; }

    /// <summary>True when the host sizes its prefetch from run durations (neither prefetch nor fetch size is set).</summary>
    public bool Adaptive => _prefetch is null && _fetchBatchSize is null;

    /// <summary>Jobs all loops together may hold now.</summary>
    public int Held
    {
        get
        {
            if (_prefetch is { } prefetch) return Math.Max(_concurrency, prefetch);
            var mean = Interlocked.Read(ref _meanRunTicks);
            var multiplier = !Adaptive || mean < 0 ? MinMultiplier
                : (int)Math.Clamp(WorkBudget.Ticks / Math.Max(mean, 1), MinMultiplier, MaxMultiplier);
            return Math.Max(_concurrency, Math.Min(_concurrency * multiplier, MaxHeld));
        }
    }

    /// <summary>Jobs one loop may hold now.</summary>
    public int PerLoop => (Held + Loops - 1) / Loops;

    /// <summary>The most jobs one fetch takes now.</summary>
    public int MaxFetch => Math.Min(_fetchBatchSize ?? PerLoop, PerLoop);

    /// <summary>Feeds a finished run's duration into the moving average (weight 1/16; races only blur it).</summary>
    public void Observe(TimeSpan runDuration)
    {
        if (!Adaptive) return;
        var sample = Math.Max(runDuration.Ticks, 0);
        var mean = Interlocked.Read(ref _meanRunTicks);
        Interlocked.Exchange(ref _meanRunTicks, mean < 0 ? sample : mean + (sample - mean) / 16);
    }
}
