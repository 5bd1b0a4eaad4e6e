using System.Collections.Concurrent;

namespace Scheduling.Hosting;

/// <summary>Why a running job's handler is asked to stop.</summary>
internal enum StopReason
{
    None = 0,
    CancellationRequested = 1,
    Shutdown = 2,
    LeaseLost = 3,
    TimedOut = 4,
}

/// <summary>A job this host holds: fetched and waiting for a slot, or running its handler.</summary>
internal sealed class RunningJob : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private ITimer? _timeoutTimer;
    private int _stopReason;
    private int _released;

    private int _started;

    public RunningJob(AcquiredJob job, System.Diagnostics.Activity? received, DateTimeOffset fetchedAt = default)
    {
        Job = job;
        Received = received;
        FetchedAt = fetchedAt;
        Token = _cts.Token;
    }

    /// <summary>Where its handler reports progress (set when the handler starts).</summary>
    public JobOutput? Output { get; set; }

    /// <summary>The version of <see cref="Output"/>'s progress the store has (the lease keeper's bookkeeping).</summary>
    public int ProgressSent { get; set; }

    /// <summary>When this host fetched it (its lease began about then).</summary>
    public DateTimeOffset FetchedAt { get; }

    /// <summary>True once its handler started: only started jobs are heartbeated, which is what charges their attempt.</summary>
    public bool Started => Volatile.Read(ref _started) == 1;

    public void MarkStarted() => Volatile.Write(ref _started, 1);

    /// <summary>The attempt's timeout, once its clock started.</summary>
    public TimeSpan? Timeout { get; private set; }

    /// <summary>When the attempt times out, once its clock started.</summary>
    public DateTimeOffset? Deadline { get; private set; }

    /// <summary>Starts the attempt's timeout on <paramref name="time"/>: at the deadline the handler is asked to stop (<see cref="StopReason.TimedOut"/>).</summary>
    public void StartTimeout(TimeSpan timeout, TimeProvider time)
    {
        (Timeout, Deadline) = (timeout, time.GetUtcNow() + timeout);
        _timeoutTimer = time.CreateTimer(static state => ((RunningJob)state!).Stop(StopReason.TimedOut), this, timeout, System.Threading.Timeout.InfiniteTimeSpan);
    }

    /// <summary>True once the attempt is past its deadline by more than <paramref name="grace"/>: its lease is no longer extended.</summary>
    public bool PastGrace(DateTimeOffset now, TimeSpan grace) => Deadline is { } deadline && now >= deadline + grace;

    public AcquiredJob Job { get; }
    public System.Diagnostics.Activity? Received { get; }
    public CancellationToken Token { get; }
    public StopReason StopReason => (StopReason)Volatile.Read(ref _stopReason);
    public bool Released => Volatile.Read(ref _released) == 1;

    public void Stop(StopReason reason)
    {
        if (Interlocked.CompareExchange(ref _stopReason, (int)reason, 0) != 0) return;
        try { _cts.Cancel(); }
        catch (ObjectDisposedException) { }
    }

    /// <summary>Claims the right to release the job on the handler's behalf; false if it already finished.</summary>
    public bool MarkReleased() => Interlocked.Exchange(ref _released, 1) == 0;

    public void Dispose()
    {
        _timeoutTimer?.Dispose();
        _cts.Dispose();
    }
}

/// <summary>
/// The jobs this host holds, keyed by lease (job id and token), not by id: a job rescued and
/// leased to this host again is a different holding, and each lease is kept alive on its own.
/// </summary>
internal sealed class RunningJobs
{
    private readonly ConcurrentDictionary<(long JobId, Guid Token), RunningJob> _jobs = new();
    private int _slotsInUse;

    public int Count => _jobs.Count;
    public bool IsEmpty => _jobs.IsEmpty;

    /// <summary>Slots running a job or queueing its acknowledgement.</summary>
    public int SlotsInUse => Volatile.Read(ref _slotsInUse);

    public void EnterSlot() => Interlocked.Increment(ref _slotsInUse);
    public void ExitSlot() => Interlocked.Decrement(ref _slotsInUse);

    public void Add(RunningJob job) => _jobs[Key(job.Job.Lease)] = job;
    public void Remove(RunningJob job) => _jobs.TryRemove(Key(job.Job.Lease), out _);
    public bool Holds(JobLease lease) => _jobs.ContainsKey(Key(lease));
    public RunningJob[] Snapshot() => _jobs.Values.ToArray();

    private static (long, Guid) Key(JobLease lease) => (lease.JobId, lease.Token);
}
