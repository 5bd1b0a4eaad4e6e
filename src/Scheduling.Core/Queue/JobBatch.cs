namespace Scheduling;

/// <summary>
/// A set of jobs enqueued together and counted as one: callbacks run when all of them have
/// finished (<see cref="OnComplete"/>) or all of them succeeded (<see cref="OnSuccess"/>), and the
/// batch's live counts say how far it is (<see cref="IJobQueue.GetBatchAsync"/>).
/// </summary>
/// <remarks>
/// A batch is a counter, not a fan-in of edges: it has no limit on its size, and a member that ends
/// is counted in the transaction that ends it, as a child's pending parents are. Members may depend
/// on each other (local keys) and on existing jobs; a callback is an ordinary job that other jobs
/// may depend on, so a batch sits in a graph; a batch may be a member of another
/// (<see cref="ParentBatchId"/>). See <c>docs/handlers.md</c>.
/// </remarks>
public sealed record BatchRequest
{
    /// <summary>Creates a batch of <paramref name="jobs"/>.</summary>
    public BatchRequest(IReadOnlyList<JobRequest> jobs) => Jobs = jobs;

    /// <summary>The members (1 to 100,000 per call; more can be added with <see cref="IJobQueue.AddToBatchAsync"/> while the batch is open).</summary>
    public IReadOnlyList<JobRequest> Jobs { get; init; }

    /// <summary>
    /// A job that runs once every member has succeeded; cancelled (with the counts in its error) when
    /// any member ended otherwise. It must not depend on other jobs: the batch is what it waits for.
    /// </summary>
    public JobRequest? OnSuccess { get; init; }

    /// <summary>A job that runs once every member has finished, whatever the outcome. It must not depend on other jobs.</summary>
    public JobRequest? OnComplete { get; init; }

    /// <summary>
    /// An open batch this one is a member of: it counts there as one member, which finishes when this
    /// batch settles (succeeded when every member of this one succeeded, else failed or cancelled).
    /// </summary>
    public long? ParentBatchId { get; init; }
}

/// <summary>What <see cref="IJobQueue.EnqueueBatchAsync"/> wrote.</summary>
/// <param name="BatchId">The new batch.</param>
/// <param name="Jobs">Per member request, in order: its job (a unique key may return an existing job, which is not a member).</param>
/// <param name="OnSuccessJobId">The on-success callback's job, if one was given.</param>
/// <param name="OnCompleteJobId">The on-complete callback's job, if one was given.</param>
public sealed record BatchResult(long BatchId, IReadOnlyList<EnqueueResult> Jobs, long? OnSuccessJobId, long? OnCompleteJobId);

/// <summary>A batch as stored, with its live counts.</summary>
public sealed record BatchInfo
{
    /// <summary>The batch's id.</summary>
    public required long Id { get; init; }

    /// <summary>The batch it is a member of, if any.</summary>
    public long? ParentBatchId { get; init; }

    /// <summary>Members (jobs and nested batches) counted so far.</summary>
    public required int Total { get; init; }

    /// <summary>Members not finished yet.</summary>
    public required int Pending { get; init; }

    /// <summary>Members that succeeded.</summary>
    public required int Succeeded { get; init; }

    /// <summary>Members that ended dead or expired (a nested batch: one with a failed member).</summary>
    public required int Failed { get; init; }

    /// <summary>Members that were cancelled.</summary>
    public required int Cancelled { get; init; }

    /// <summary>The on-success callback's job, if any.</summary>
    public long? OnSuccessJobId { get; init; }

    /// <summary>The on-complete callback's job, if any.</summary>
    public long? OnCompleteJobId { get; init; }

    /// <summary>When it was created, on the store's clock.</summary>
    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>When its last member finished and its callbacks were released; null while it is open.</summary>
    public DateTimeOffset? SettledAt { get; init; }

    /// <summary>True once settled with every member succeeded.</summary>
    public bool IsSucceeded => SettledAt is not null && Failed == 0 && Cancelled == 0;
}
