namespace Scheduling;

/// <summary>A job as stored: its state, timing, lease and the errors of its attempts.</summary>
public sealed record JobInfo
{
    /// <summary>The job's id.</summary>
    public required long Id { get; init; }

    /// <summary>The W3C <c>traceparent</c> of the trace that enqueued it (its processing continues that trace), or null.</summary>
    public string? TraceParent { get; init; }

    /// <summary>The trace id of <see cref="TraceParent"/> (32 hex digits), or null when there is none or it is malformed.</summary>
    public string? TraceId => TraceParent is { Length: 55 } parent && parent[2] == '-' && parent[35] == '-' && !parent.AsSpan(3, 32).ContainsAnyExcept(LowerHex)
        ? parent.Substring(3, 32) : null;

    private static readonly System.Buffers.SearchValues<char> LowerHex = System.Buffers.SearchValues.Create("0123456789abcdef");
    /// <summary>The queue.</summary>
    public required string Queue { get; init; }
    /// <summary>The handler name.</summary>
    public required string Kind { get; init; }
    /// <summary>The payload as JSON, or null.</summary>
    public string? PayloadJson { get; init; }

    /// <summary>The version of the payload's shape (<see cref="JobRequest.PayloadVersion"/>).</summary>
    public int PayloadVersion { get; init; }
    /// <summary>The state as readers see it: <see cref="JobState.Scheduled"/> for an available job whose run-at time has not come (JobTransitions.Visible).</summary>
    public required JobState State { get; init; }
    /// <summary>The job's own priority (larger runs first).</summary>
    public required int Priority { get; init; }
    /// <summary>
    /// The priority the job is ordered by: its own, raised to that of any job waiting on it
    /// (priority inheritance) for as long as that job waits.
    /// </summary>
    public int EffectivePriority { get; init; }
    /// <summary>The jobs this one depends on, with their states: while <see cref="State"/> is waiting, the unfinished ones are why.</summary>
    public IReadOnlyList<JobLink> Parents { get; init; } = [];
    /// <summary>The jobs that depend on this one, with their states.</summary>
    public IReadOnlyList<JobLink> Children { get; init; } = [];
    /// <summary>How many parents have not finished yet, while the job waits (0 once it no longer waits).</summary>
    public int PendingParents { get; init; }
    /// <summary>What the job does when a parent ends dead or cancelled.</summary>
    public ParentFailurePolicy OnParentFailure { get; init; }
    /// <summary>Attempts started so far.</summary>
    public required int Attempt { get; init; }
    /// <summary>Attempts allowed.</summary>
    public required int MaxAttempts { get; init; }
    /// <summary>When the job is or was due.</summary>
    public required DateTimeOffset RunAt { get; init; }
    /// <summary>When the job was enqueued.</summary>
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>When the latest attempt started.</summary>
    public DateTimeOffset? AttemptedAt { get; init; }
    /// <summary>When the job reached a terminal state.</summary>
    public DateTimeOffset? FinalizedAt { get; init; }
    /// <summary>The worker holding the job while it runs.</summary>
    public string? LockedBy { get; init; }
    /// <summary>When the running job's lease runs out.</summary>
    public DateTimeOffset? LeaseExpiresAt { get; init; }
    /// <summary>True when cancellation was requested while it ran.</summary>
    public bool CancellationRequested { get; init; }
    /// <summary>The unique key, if any.</summary>
    public string? UniqueKey { get; init; }
    /// <summary>The final command, if any.</summary>
    public string? Command { get; init; }
    /// <summary>The hash of the final command: its run-history key (null without a command).</summary>
    public string? CommandHash { get; init; }
    /// <summary>The description (display only).</summary>
    public string? Description { get; init; }
    /// <summary>What the job was given and why, for jobs with a definition.</summary>
    public ResourceAllocation? Allocation { get; init; }

    /// <summary>
    /// When a running job is expected to finish: its attempt's start plus the duration its history
    /// shows (<see cref="ResourceAllocation.ExpectedDuration"/>); null when it is not running or has no history.
    /// </summary>
    public DateTimeOffset? ExpectedFinishAt => State == JobState.Running && AttemptedAt is { } started && Allocation?.ExpectedDuration is { } usual ? started + usual : null;
    /// <summary>How many times its handler snoozed it (<see cref="SnoozeJobException"/>).</summary>
    public int Snoozes { get; init; }
    /// <summary>The job's own attempt timeout (<see cref="JobRequest.Timeout"/>), if it has one.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>What it last reported while running (written with its worker's heartbeats); null when it reported nothing.</summary>
    public JobProgress? Progress { get; init; }

    /// <summary>The result its handler set when it succeeded (<see cref="JobOutput.SetResult{TResult}"/>), as JSON; null when it set none.</summary>
    public string? ResultJson { get; init; }

    /// <summary>The key the queue's per-key limits count it under (<see cref="JobRequest.PartitionKey"/>).</summary>
    public string? PartitionKey { get; init; }

    /// <summary>The latest time it may start (<see cref="JobRequest.LatestStartAt"/>); past it, an unstarted job is <see cref="JobState.Expired"/>.</summary>
    public DateTimeOffset? LatestStartAt { get; init; }
    /// <summary>The batch the job is a member or a callback of (<see cref="IJobQueue.EnqueueBatchAsync"/>), if any.</summary>
    public long? BatchId { get; init; }
    /// <summary>The errors of failed attempts, oldest first (bounded to the most recent ones).</summary>
    public IReadOnlyList<JobAttemptError> Errors { get; init; } = [];
}

/// <summary>The error of one failed attempt.</summary>
/// <param name="Attempt">The attempt that failed.</param>
/// <param name="At">When it failed.</param>
/// <param name="Message">The error (truncated to the configured length).</param>
public sealed record JobAttemptError(int Attempt, DateTimeOffset At, string Message);
