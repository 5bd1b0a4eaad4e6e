namespace Scheduling;

/// <summary>
/// A durable job queue, as applications use it: enqueue, look, cancel, redrive. Delivery is at
/// least once; completion is exactly once, because every transition out of running is fenced by the
/// lease handed out at acquisition (the workers' side, <see cref="IJobWorkerStore"/>).
/// </summary>
/// <remarks>
/// Implementations share one contract (the in-memory queue is its reference model) and implement
/// both interfaces. Ordering within a queue: larger effective priority first, then earlier run-at
/// time, then smaller id; with <see cref="JobQueueOptions.AgingStep"/> set, by run-at time less one
/// step per priority level.
/// </remarks>
public interface IJobQueue
{
    /// <summary>Validates and enqueues one job.</summary>
    /// <exception cref="ArgumentException">The request is invalid; nothing was written.</exception>
    /// <exception cref="DuplicateJobException">The unique key is active and the request asked to be rejected.</exception>
    ValueTask<EnqueueResult> EnqueueAsync(JobRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// Validates and enqueues many jobs atomically: all are written or none. Requests may depend on
    /// each other through <see cref="JobRequest.LocalKey"/>, so a whole graph is enqueued in one call;
    /// unknown parents, self-references and cycles are rejected, naming them, before anything is written.
    /// </summary>
    /// <returns>One result per request, in request order.</returns>
    ValueTask<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken = default);

    /// <summary>Cancels a job that has not started, or asks its worker to stop a running one.</summary>
    ValueTask<CancelOutcome> CancelAsync(long jobId, CancellationToken cancellationToken = default);

    /// <summary>Makes a dead job available again with its attempts reset; false when it is not dead (or another active job holds its unique key).</summary>
    ValueTask<bool> RedriveAsync(long jobId, CancellationToken cancellationToken = default);

    /// <summary>Reads one job, or null when there is none with that id.</summary>
    ValueTask<JobInfo?> GetJobAsync(long jobId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Jobs matching <paramref name="query"/>, newest (largest id) first, at most <see cref="JobListQuery.Limit"/>;
    /// the next page starts below the last id returned (<see cref="JobListQuery.BeforeId"/>).
    /// </summary>
    ValueTask<IReadOnlyList<JobInfo>> ListJobsAsync(JobListQuery query, CancellationToken cancellationToken = default);

    /// <summary>Per queue with active jobs, or paused, or limited (<see cref="SetQueueLimitsAsync"/>): how many are due, scheduled and running, and the oldest due time.</summary>
    ValueTask<IReadOnlyList<QueueStats>> GetQueueStatsAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Pauses <paramref name="queue"/> for every worker of the store, durably: no job of it is acquired
    /// by a claim that starts after the pause is stored, until it is resumed. Enqueueing goes on, and
    /// jobs already running finish (and are retried, rescued or released) as ever.
    /// </summary>
    /// <returns>True when the queue was running and is now paused; false when it was paused already.</returns>
    ValueTask<bool> PauseQueueAsync(string queue, CancellationToken cancellationToken = default);

    /// <summary>Resumes a paused queue and wakes its workers.</summary>
    /// <returns>True when the queue was paused; false when it was not.</returns>
    ValueTask<bool> ResumeQueueAsync(string queue, CancellationToken cancellationToken = default);

    /// <summary>
    /// Sets what <paramref name="queue"/> may start, for every worker of the store at once and
    /// durably: rate limits for the queue and per partition key, a per-key concurrency cap and fair
    /// interleaving of keys, all enforced by the claim (<see cref="QueueLimits"/>). Replaces the
    /// queue's previous limits; <see cref="QueueLimits.None"/> removes them. Workers are woken, so a
    /// loosened limit takes effect at once.
    /// </summary>
    /// <returns>The limits the queue had before (<see cref="QueueLimits.None"/> when it had none).</returns>
    /// <exception cref="ArgumentException">The queue name or a limit is invalid; nothing was changed.</exception>
    ValueTask<QueueLimits> SetQueueLimitsAsync(string queue, QueueLimits limits, CancellationToken cancellationToken = default);

    /// <summary>
    /// Enqueues a batch, all or nothing: its members (validated as one <see cref="EnqueueManyAsync"/>
    /// call), its callbacks waiting for it, and its counter, which every member's end moves in the
    /// transaction that ends it. The callbacks are released when the last member finishes.
    /// </summary>
    /// <exception cref="ArgumentException">The request is invalid, or <see cref="BatchRequest.ParentBatchId"/> names no batch.</exception>
    /// <exception cref="InvalidOperationException">The parent batch has settled.</exception>
    ValueTask<BatchResult> EnqueueBatchAsync(BatchRequest batch, CancellationToken cancellationToken = default);

    /// <summary>
    /// Adds members to an open batch (one that has pending members, such as the member calling
    /// this), all or nothing: the batch does not settle before they finish.
    /// </summary>
    /// <exception cref="ArgumentException">A request is invalid, or there is no such batch.</exception>
    /// <exception cref="InvalidOperationException">The batch has settled.</exception>
    ValueTask<IReadOnlyList<EnqueueResult>> AddToBatchAsync(long batchId, IReadOnlyList<JobRequest> jobs, CancellationToken cancellationToken = default);

    /// <summary>Reads one batch with its live counts, or null when there is none with that id.</summary>
    ValueTask<BatchInfo?> GetBatchAsync(long batchId, CancellationToken cancellationToken = default);

    /// <summary>The worker hosts whose reports have not expired, by worker id: the queues each serves and what it can hold.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The live hosts, ordered by worker id.</returns>
    ValueTask<IReadOnlyList<WorkerHostInfo>> ListHostsAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// The jobs that finished within <paramref name="window"/> (1 minute to 1 day) before now, on the store's clock,
    /// per queue and minute, by how they ended: throughput and failures over time. Finishes are events: a job
    /// retried after it died still counts in the minute it died, and purging finished jobs changes nothing.
    /// </summary>
    /// <param name="window">How far back to look.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>One row per queue and minute that had any, ordered by minute then queue.</returns>
    ValueTask<IReadOnlyList<QueueActivity>> GetActivityAsync(TimeSpan window, CancellationToken cancellationToken = default);

    /// <summary>
    /// How many due jobs of its queue come before a due job in acquisition order (higher effective
    /// priority, then earlier due, then smaller id), counted up to <paramref name="cap"/>: why a due job waits.
    /// </summary>
    /// <param name="jobId">The job.</param>
    /// <param name="cap">Count no further than this (1 to 1,000,000); the count is then "at least" it.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The count, at most <paramref name="cap"/>; null when the job is not due and waiting (unknown, running, finished, scheduled).</returns>
    ValueTask<long?> CountAheadAsync(long jobId, int cap = 10_000, CancellationToken cancellationToken = default);
}

/// <summary>How the jobs of one queue that finished within one minute ended (<see cref="IJobQueue.GetActivityAsync"/>).</summary>
/// <param name="Queue">The queue.</param>
/// <param name="Minute">The minute's start (UTC).</param>
/// <param name="Succeeded">Jobs that succeeded.</param>
/// <param name="Dead">Jobs that failed their last attempt.</param>
/// <param name="Cancelled">Jobs cancelled, or expired unstarted.</param>
public sealed record QueueActivity(string Queue, DateTimeOffset Minute, long Succeeded, long Dead, long Cancelled);

/// <summary>
/// The workers' side of a job store: lease due jobs, keep the leases alive, acknowledge how each
/// ended, rescue the leases of dead workers, and forget old finished jobs. The worker host is its
/// caller; applications use <see cref="IJobQueue"/>.
/// </summary>
public interface IJobWorkerStore
{
    /// <summary>
    /// Leases up to <see cref="AcquireRequest.MaxJobs"/> due jobs, in queue order; from several queues,
    /// split by their weights, with the share a queue cannot use going to the others.
    /// </summary>
    ValueTask<IReadOnlyList<AcquiredJob>> AcquireAsync(AcquireRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// Extends the given leases that the worker still holds, and reports those. Leases are named one
    /// by one, so a job whose acquisition committed but whose reply never reached the worker is not
    /// kept alive by it: its lease runs out and it is rescued.
    /// </summary>
    /// <returns>The leases still held (a lease given but not returned was lost).</returns>
    /// <param name="workerId">The worker.</param>
    /// <param name="leases">The leases to extend.</param>
    /// <param name="leaseDuration">How long from now each is extended.</param>
    /// <param name="progress">The latest progress of some of these jobs, written under their lease with the extension (none is written for a lease not held).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<IReadOnlyList<HeldLease>> HeartbeatAsync(string workerId, IReadOnlyList<JobLease> leases, TimeSpan leaseDuration, IReadOnlyList<JobProgressUpdate>? progress = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Applies a batch of acknowledgements, each decided by <see cref="JobTransitions"/>; a stale lease
    /// leaves its job untouched.
    /// </summary>
    /// <returns>One result per acknowledgement, in order.</returns>
    ValueTask<IReadOnlyList<AckResult>> AcknowledgeAsync(IReadOnlyList<JobAck> acks, CancellationToken cancellationToken = default);

    /// <summary>
    /// Applies acknowledgements, then acquires: a worker that finishes a job and wants the next one
    /// makes one call. Stores that can do both in one round trip and transaction (PostgreSQL) override
    /// this; the default makes the two calls.
    /// </summary>
    async ValueTask<AcknowledgeAndAcquireResult> AcknowledgeAndAcquireAsync(IReadOnlyList<JobAck> acks, AcquireRequest request, CancellationToken cancellationToken = default)
    {
        var acknowledged = await AcknowledgeAsync(acks, cancellationToken).ConfigureAwait(false);
        return new AcknowledgeAndAcquireResult(acknowledged, await AcquireAsync(request, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>Returns jobs whose lease expired to the queue (or to dead when out of attempts).</summary>
    /// <returns>The number of jobs rescued.</returns>
    ValueTask<int> RescueExpiredLeasesAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Ends as <see cref="JobState.Expired"/> the waiting and available jobs whose latest start time
    /// (<see cref="JobRequest.LatestStartAt"/>) has passed, and settles their children by their
    /// failure policy. (No claim starts such a job meanwhile: this only makes the end visible.)
    /// </summary>
    /// <returns>How many jobs expired.</returns>
    ValueTask<int> ExpireOverdueAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes up to <paramref name="batchSize"/> jobs that finished (succeeded, cancelled, dead) more than
    /// <paramref name="olderThan"/> ago, measured on the store's clock (the one that dated their finish:
    /// the database's for PostgreSQL), so a host whose clock runs ahead cannot purge jobs early.
    /// </summary>
    /// <returns>How many were deleted; fewer than the batch means nothing older is left.</returns>
    ValueTask<int> PurgeFinishedAsync(TimeSpan olderThan, int batchSize, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records that a host is alive, what it serves and what it can hold (an upsert by worker id, so
    /// reporting again is harmless), until <paramref name="expiresAfter"/> from now on the store's clock.
    /// </summary>
    /// <param name="host">The host; its times are set by the store.</param>
    /// <param name="expiresAfter">How long the report holds without another (at least one second).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask ReportHostAsync(WorkerHostInfo host, TimeSpan expiresAfter, CancellationToken cancellationToken = default);

    /// <summary>Forgets a host that is stopping; false when it was not known.</summary>
    /// <param name="workerId">The host's worker id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>True when the host's report was removed.</returns>
    ValueTask<bool> RemoveHostAsync(string workerId, CancellationToken cancellationToken = default);
}

/// <summary>What <see cref="IJobWorkerStore.AcknowledgeAndAcquireAsync"/> did.</summary>
/// <param name="Acknowledged">One result per acknowledgement, in order.</param>
/// <param name="Acquired">The jobs now leased, in queue order.</param>
public sealed record AcknowledgeAndAcquireResult(IReadOnlyList<AckResult> Acknowledged, IReadOnlyList<AcquiredJob> Acquired);

/// <summary>One queue's active jobs.</summary>
/// <param name="Queue">The queue.</param>
/// <param name="Available">Due and waiting.</param>
/// <param name="Scheduled">Waiting for their run-at time.</param>
/// <param name="Running">Held by workers.</param>
/// <param name="OldestDue">When the longest-waiting due job became due, if any.</param>
public sealed record QueueStats(string Queue, long Available, long Scheduled, long Running, DateTimeOffset? OldestDue)
{
    /// <summary>Waiting for parent jobs to finish.</summary>
    public long Waiting { get; init; }

    /// <summary>Live worker hosts serving the queue (<see cref="IJobQueue.ListHostsAsync"/>).</summary>
    public int Hosts { get; init; }

    /// <summary>
    /// Due, scheduled or waiting jobs whose allocation no live host serving the queue can hold
    /// (<see cref="WorkerHostInfo.FitsNone"/>): they wait until a larger host serves the queue. 0 when no host declares a capacity.
    /// </summary>
    public long Oversized { get; init; }

    /// <summary>True while the queue is paused (<see cref="IJobQueue.PauseQueueAsync"/>): its due jobs wait.</summary>
    public bool Paused { get; init; }

    /// <summary>The queue's limits (<see cref="IJobQueue.SetQueueLimitsAsync"/>); <see cref="QueueLimits.None"/> when it has none.</summary>
    public QueueLimits Limits { get; init; } = QueueLimits.None;

    /// <summary>
    /// The store's clock when these were read (the database's, for a store that keeps due times by
    /// it), so <see cref="OldestDueAge"/> is measured on the clock <see cref="OldestDue"/> came
    /// from, whatever the reading host's clock says.
    /// </summary>
    public DateTimeOffset? ReadAt { get; init; }

    /// <summary>How long the longest-waiting due job has waited, on the store's clock; null when none is due.</summary>
    public TimeSpan? OldestDueAge => OldestDue is { } due && ReadAt is { } at ? at - due : null;
}

/// <summary>Convenience calls over <see cref="IJobWorkerStore"/>.</summary>
public static class JobWorkerStoreExtensions
{
    /// <summary>Marks one job succeeded.</summary>
    public static async ValueTask<AckResult> CompleteAsync(this IJobWorkerStore queue, JobLease lease, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        var results = await queue.AcknowledgeAsync([JobAck.Success(lease)], cancellationToken).ConfigureAwait(false);
        return results[0];
    }

    /// <summary>Fails one job: retried after a backoff, or dead when out of attempts or not retryable.</summary>
    public static async ValueTask<AckResult> FailAsync(this IJobWorkerStore queue, JobLease lease, string error, bool retryable = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        var results = await queue.AcknowledgeAsync([JobAck.Failure(lease, error, retryable)], cancellationToken).ConfigureAwait(false);
        return results[0];
    }
}
