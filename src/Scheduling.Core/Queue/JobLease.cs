namespace Scheduling;

/// <summary>
/// Proof that a worker holds a job. Every transition out of running must present it: a lease
/// that expired and was rescued no longer matches, so a stale worker cannot finish the job.
/// </summary>
/// <param name="JobId">The job held.</param>
/// <param name="Token">A token unique to this acquisition.</param>
/// <param name="Attempt">The attempt this acquisition started (1 for the first).</param>
/// <param name="MaxAttempts">How many attempts the job may have: with <paramref name="Attempt"/>, what a failure is decided from.</param>
public readonly record struct JobLease(long JobId, Guid Token, int Attempt, int MaxAttempts);

/// <summary>A job handed to a worker by <see cref="IJobWorkerStore.AcquireAsync"/>.</summary>
public sealed record AcquiredJob
{
    /// <summary>The job's id.</summary>
    public required long Id { get; init; }
    /// <summary>The queue it came from.</summary>
    public required string Queue { get; init; }
    /// <summary>The handler name.</summary>
    public required string Kind { get; init; }
    /// <summary>The payload as JSON, or null when the job has none.</summary>
    public string? PayloadJson { get; init; }

    /// <summary>The version of the payload's shape it was enqueued with (<see cref="JobRequest.PayloadVersion"/>).</summary>
    public int PayloadVersion { get; init; }
    /// <summary>The job's priority (larger runs first).</summary>
    public required int Priority { get; init; }
    /// <summary>The attempt now running (1 for the first).</summary>
    public int Attempt => Lease.Attempt;
    /// <summary>How many attempts are allowed.</summary>
    public int MaxAttempts => Lease.MaxAttempts;
    /// <summary>When the job became due.</summary>
    public required DateTimeOffset RunAt { get; init; }
    /// <summary>When the job was enqueued.</summary>
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>The lease to present when finishing the job.</summary>
    public required JobLease Lease { get; init; }
    /// <summary>When the lease runs out unless a heartbeat extends it.</summary>
    public required DateTimeOffset LeaseExpiresAt { get; init; }
    /// <summary>The final command, if any.</summary>
    public string? Command { get; init; }
    /// <summary>What the job was given (memory, CPU, GPUs) and why, for jobs with a definition.</summary>
    public ResourceAllocation? Allocation { get; init; }
    /// <summary>How many times the job has been snoozed (<see cref="SnoozeJobException"/>).</summary>
    public int Snoozes { get; init; }
    /// <summary>The job's own attempt timeout, if it was enqueued with one (<see cref="JobRequest.Timeout"/>).</summary>
    public TimeSpan? Timeout { get; init; }
    /// <summary>The W3C traceparent stored when the job was enqueued.</summary>
    public string? TraceParent { get; init; }
    /// <summary>The W3C tracestate stored when the job was enqueued.</summary>
    public string? TraceState { get; init; }
    /// <summary>The batch the job is a member or a callback of (<see cref="IJobQueue.EnqueueBatchAsync"/>), if any.</summary>
    public long? BatchId { get; init; }
}

/// <summary>
/// What to acquire: up to <see cref="MaxJobs"/> due jobs for one worker, from one queue or from
/// several split by weight (<see cref="Queues"/>).
/// </summary>
public sealed record AcquireRequest
{
    /// <summary>Creates a request for one queue.</summary>
    public AcquireRequest(string queue, string workerId, int maxJobs, TimeSpan leaseDuration)
        : this([new QueueShare(queue, 1)], workerId, maxJobs, leaseDuration)
    {
    }

    /// <summary>
    /// Creates a request over several queues: each gets a share of <paramref name="maxJobs"/> in
    /// proportion to its weight, and a queue with fewer due jobs than its share leaves the rest to the
    /// others, so a deep queue cannot starve a shallow one served by the same worker.
    /// </summary>
    public AcquireRequest(IReadOnlyList<QueueShare> queues, string workerId, int maxJobs, TimeSpan leaseDuration)
    {
        Queues = queues;
        WorkerId = workerId;
        MaxJobs = maxJobs;
        LeaseDuration = leaseDuration;
    }

    /// <summary>The queue to take jobs from (the first of <see cref="Queues"/>).</summary>
    public string Queue => Queues is [var first, ..] ? first.Queue : "";
    /// <summary>The queues to take jobs from, with their weights (1-100 distinct queues).</summary>
    public IReadOnlyList<QueueShare> Queues { get; init; }
    /// <summary>The worker that will hold the leases (1-200 characters).</summary>
    public string WorkerId { get; init; }
    /// <summary>At most this many jobs (1 to 10,000).</summary>
    public int MaxJobs { get; init; }
    /// <summary>How long the leases last without a heartbeat (at least one second).</summary>
    public TimeSpan LeaseDuration { get; init; }

    /// <summary>
    /// The claiming host's resources (null: no capacity declared, every due job may be taken). With
    /// it, jobs whose allocation could never fit it are left for other hosts, and of the rest only
    /// the longest run in queue order that fits <see cref="Available"/> is taken.
    /// </summary>
    public ResourceCapacity? Capacity { get; init; }

    /// <summary>What of <see cref="Capacity"/> is free for this claim (null: all of it); needs <see cref="Capacity"/>.</summary>
    public ResourceCapacity? Available { get; init; }
}

/// <summary>A queue and its weight among the queues one worker serves together.</summary>
/// <param name="Queue">The queue.</param>
/// <param name="Weight">Its relative share of each batch (1-1,000): weights 3 and 1 split batches 3:1.</param>
public sealed record QueueShare(string Queue, int Weight);

/// <summary>A lease still held by a worker, as reported by a heartbeat.</summary>
/// <param name="JobId">The job.</param>
/// <param name="Token">The lease's token: a job leased to the same worker twice (rescued, then acquired again) is held under its newest token only.</param>
/// <param name="CancellationRequested">True when someone asked to cancel the job; the handler should stop.</param>
/// <param name="Extended">
/// False when the lease is still the worker's but was not extended this time, because another
/// transaction holds the job's row (an application's open transaction enqueueing a child of it):
/// a heartbeat never waits on one row, and the worker tries that lease again soon.
/// </param>
public readonly record struct HeldLease(long JobId, Guid Token, bool CancellationRequested, bool Extended = true);
