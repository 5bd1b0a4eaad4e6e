namespace Scheduling;

/// <summary>
/// A job to enqueue: what to run (<see cref="Kind"/> and <see cref="Payload"/>), where
/// (<see cref="Queue"/>), and when and how often to try it.
/// </summary>
/// <remarks>Validated by the queue at enqueue; an invalid request is rejected whole with an
/// <see cref="ArgumentException"/> naming the property, and nothing is written.</remarks>
public sealed record JobRequest
{
    /// <summary>The queue used when a request names none.</summary>
    public const string DefaultQueue = "default";

    /// <summary>The number of attempts allowed when a request sets none.</summary>
    public const int DefaultMaxAttempts = 25;

    /// <summary>Creates a request for a job of the given kind.</summary>
    /// <param name="kind">The handler name that runs the job.</param>
    /// <param name="payload">The job's arguments, serialised to JSON at enqueue; may be null.</param>
    public JobRequest(string kind, object? payload = null)
    {
        Kind = kind;
        Payload = payload;
    }

    /// <summary>The handler name that runs the job (at most 200 characters, no control characters).</summary>
    public string Kind { get; init; }

    /// <summary>The job's arguments; serialised to JSON with System.Text.Json at enqueue.</summary>
    public object? Payload { get; init; }

    /// <summary>
    /// The version of the payload's shape (0 to 32,767; default 0): a newer handler upgrades an older
    /// payload with the steps registered by <see cref="SchedulingBuilder.AddPayloadUpgrade"/> before reading it.
    /// </summary>
    public int PayloadVersion { get; init; }

    /// <summary>The queue the job waits in: 1-64 characters of letters, digits, '_', '-', '.' or ':'.</summary>
    public string Queue { get; init; } = DefaultQueue;

    /// <summary>A larger number runs first; between -32768 and 32767.</summary>
    public int Priority { get; init; }

    /// <summary>When the job becomes due; null means now (by the queue's clock).</summary>
    public DateTimeOffset? RunAt { get; init; }

    /// <summary>How many times the job may be attempted before it is dead; 1 to 10,000.</summary>
    public int MaxAttempts { get; init; } = DefaultMaxAttempts;

    /// <summary>
    /// How long one attempt may run (1 ms to 7 days, whole milliseconds); null takes the host's default
    /// for the kind (<see cref="SchedulingOptions.JobTimeouts"/>, then <see cref="SchedulingOptions.DefaultJobTimeout"/>).
    /// At the deadline the handler's token is cancelled and the attempt fails with a timeout error
    /// (retried per policy); see <see cref="SchedulingOptions.TimeoutGrace"/> for a handler that ignores its token.
    /// </summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>
    /// The key the queue's per-key controls count this job under (a tenant, a customer, an account):
    /// <see cref="QueueLimits.ConcurrencyPerKey"/>, <see cref="QueueLimits.RatePerKey"/> and
    /// <see cref="QueueLimits.FairKeys"/>. 1-200 characters; null: the job belongs to no key.
    /// </summary>
    public string? PartitionKey { get; init; }

    /// <summary>
    /// The latest time the job may start (a deadline); null: none. A job not started by then is never
    /// started: it ends <see cref="JobState.Expired"/> (terminal, with its children handled by their
    /// <see cref="OnParentFailure"/> policy). Must not be before <see cref="RunAt"/>.
    /// </summary>
    public DateTimeOffset? LatestStartAt { get; init; }

    /// <summary>
    /// When the job must be done by; null: no such deadline. The queue does not start it once it could no
    /// longer finish in time by its expected duration (<see cref="ResourceAllocation.ExpectedDuration"/>, from
    /// the history of its command): its latest start becomes this less that duration (this itself without
    /// history), or <see cref="LatestStartAt"/> when that is earlier, and past it the job ends <see cref="JobState.Expired"/>.
    /// Must not be before <see cref="RunAt"/>.
    /// </summary>
    public DateTimeOffset? FinishBy { get; init; }

    /// <summary>
    /// An optional key that at most one active (not yet finished) job may hold; enqueueing a key
    /// that is already active is resolved by <see cref="OnUniqueConflict"/>.
    /// </summary>
    public string? UniqueKey { get; init; }

    /// <summary>
    /// Makes the job unique by its arguments: its kind and a hash of its payload's JSON become its key
    /// (after <see cref="UniqueKey"/>, when that is set too), so enqueueing the same work twice returns the first.
    /// </summary>
    public bool UniqueByPayload { get; init; }

    /// <summary>
    /// At most one job per key in each window of this length (1 s to 366 days, whole seconds; e.g.
    /// one hour): the window of <see cref="RunAt"/> (or now, by the enqueuing host's clock) is part of the
    /// stored key, which the job holds in any state, so a second request in the same window returns the
    /// first job even after it finished. Needs <see cref="UniqueKey"/> or <see cref="UniqueByPayload"/>.
    /// </summary>
    public TimeSpan? UniquePeriod { get; init; }

    /// <summary>What to do when <see cref="UniqueKey"/> is already held by an active job.</summary>
    public UniqueKeyConflict OnUniqueConflict { get; init; } = UniqueKeyConflict.ReturnExisting;

    /// <summary>Which jobs hold <see cref="UniqueKey"/>: only active ones (default), or every job ever enqueued with it.</summary>
    public UniqueKeyScope UniqueScope { get; init; } = UniqueKeyScope.Active;

    /// <summary>The job's definition, for resource sizing; null for jobs that are not sized.</summary>
    public JobDefinition? Definition { get; init; }

    /// <summary>The final command the job runs: hashed at enqueue as its history key (at most 64 KiB).</summary>
    public string? Command { get; init; }

    /// <summary>A human description, for display only: it never influences hashing or sizing.</summary>
    public string? Description { get; init; }

    /// <summary>
    /// The jobs that must succeed before this one runs: existing jobs by id, or other requests of the
    /// same <see cref="IJobQueue.EnqueueManyAsync"/> call by their <see cref="LocalKey"/> (at most
    /// 1,000). Until they finish the job is <see cref="JobState.Waiting"/>.
    /// </summary>
    public IReadOnlyList<JobDependency> DependsOn { get; init; } = [];

    /// <summary>
    /// A name, unique within one <see cref="IJobQueue.EnqueueManyAsync"/> call, that other requests of
    /// the call use in <see cref="DependsOn"/> to build a graph in one atomic enqueue; not stored.
    /// </summary>
    public string? LocalKey { get; init; }

    /// <summary>What happens to this job when a parent ends dead or cancelled (default: it is cancelled too).</summary>
    public ParentFailurePolicy OnParentFailure { get; init; } = ParentFailurePolicy.CancelChild;
}

/// <summary>How long a unique key stays taken.</summary>
public enum UniqueKeyScope
{
    /// <summary>While the job holding it is active (waiting, scheduled, available or running); free again once it finishes (succeeded, cancelled, dead or expired) or is purged.</summary>
    Active = 0,

    /// <summary>
    /// For as long as the job exists, in any state, until retention purges it (e.g. one job per recurring
    /// tick, however fast it finishes). Keys of this scope and of <see cref="Active"/> never collide with each other.
    /// </summary>
    AnyState = 1,
}

/// <summary>What enqueueing a unique key that an active job already holds does.</summary>
public enum UniqueKeyConflict
{
    /// <summary>Return the existing job (idempotent enqueue); no new job is written.</summary>
    ReturnExisting = 0,

    /// <summary>Throw <see cref="DuplicateJobException"/> naming the existing job; nothing is written.</summary>
    Reject = 1,

    /// <summary>
    /// Update the existing job's payload and run-at (when given) and return it (<see cref="EnqueueResult.Replaced"/>),
    /// if it has not started (waiting, scheduled or available); a running or finished one is returned unchanged.
    /// </summary>
    Replace = 2,
}

/// <summary>The outcome of one enqueue.</summary>
/// <param name="JobId">The job's id: the new job, or the active job that already held the unique key.</param>
/// <param name="Created">False when an existing job with the same unique key was returned.</param>
public readonly record struct EnqueueResult(long JobId, bool Created)
{
    /// <summary>True when an existing job's payload and run-at were replaced (<see cref="UniqueKeyConflict.Replace"/>).</summary>
    public bool Replaced { get; init; }
}

/// <summary>Thrown when a request's unique key is held by an active job and the request asked to be rejected.</summary>
public sealed class DuplicateJobException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public DuplicateJobException(string uniqueKey, long existingJobId)
        : base($"An active job (id {existingJobId}) already holds the unique key '{uniqueKey}'.")
    {
        UniqueKey = uniqueKey;
        ExistingJobId = existingJobId;
    }

    /// <summary>The conflicting unique key.</summary>
    public string UniqueKey { get; }

    /// <summary>The id of the active job holding the key.</summary>
    public long ExistingJobId { get; }
}
