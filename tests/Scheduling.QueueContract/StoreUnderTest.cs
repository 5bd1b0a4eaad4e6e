namespace Scheduling.QueueContract;

/// <summary>
/// A store as the contract suite drives it: both of its sides, the applications' <see cref="IJobQueue"/>
/// and the workers' <see cref="IJobWorkerStore"/>, so one test can enqueue, lease and acknowledge.
/// </summary>
public sealed class StoreUnderTest(IJobQueue queue) : IJobQueue, IJobWorkerStore
{
    private readonly IJobWorkerStore _worker = queue as IJobWorkerStore
        ?? throw new ArgumentException($"{queue.GetType().Name} does not implement {nameof(IJobWorkerStore)}; every store implements both sides.", nameof(queue));

    /// <summary>The store itself.</summary>
    public IJobQueue Inner { get; } = queue;

    public ValueTask<EnqueueResult> EnqueueAsync(JobRequest request, CancellationToken cancellationToken = default) => Inner.EnqueueAsync(request, cancellationToken);
    public ValueTask<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken = default) => Inner.EnqueueManyAsync(requests, cancellationToken);
    public ValueTask<CancelOutcome> CancelAsync(long jobId, CancellationToken cancellationToken = default) => Inner.CancelAsync(jobId, cancellationToken);
    public ValueTask<bool> RedriveAsync(long jobId, CancellationToken cancellationToken = default) => Inner.RedriveAsync(jobId, cancellationToken);
    public ValueTask<JobInfo?> GetJobAsync(long jobId, CancellationToken cancellationToken = default) => Inner.GetJobAsync(jobId, cancellationToken);
    public ValueTask<bool> PauseQueueAsync(string queue, CancellationToken cancellationToken = default) => Inner.PauseQueueAsync(queue, cancellationToken);
    public ValueTask<bool> ResumeQueueAsync(string queue, CancellationToken cancellationToken = default) => Inner.ResumeQueueAsync(queue, cancellationToken);
    public ValueTask<IReadOnlyList<JobInfo>> ListJobsAsync(JobListQuery query, CancellationToken cancellationToken = default) => Inner.ListJobsAsync(query, cancellationToken);
    public ValueTask<IReadOnlyList<QueueStats>> GetQueueStatsAsync(CancellationToken cancellationToken = default) => Inner.GetQueueStatsAsync(cancellationToken);
    public ValueTask<IReadOnlyList<AcquiredJob>> AcquireAsync(AcquireRequest request, CancellationToken cancellationToken = default) => _worker.AcquireAsync(request, cancellationToken);
    public ValueTask<IReadOnlyList<HeldLease>> HeartbeatAsync(string workerId, IReadOnlyList<JobLease> leases, TimeSpan leaseDuration, IReadOnlyList<JobProgressUpdate>? progress = null, CancellationToken cancellationToken = default) => _worker.HeartbeatAsync(workerId, leases, leaseDuration, progress, cancellationToken);
    public ValueTask<IReadOnlyList<AckResult>> AcknowledgeAsync(IReadOnlyList<JobAck> acks, CancellationToken cancellationToken = default) => _worker.AcknowledgeAsync(acks, cancellationToken);
    public ValueTask<AcknowledgeAndAcquireResult> AcknowledgeAndAcquireAsync(IReadOnlyList<JobAck> acks, AcquireRequest request, CancellationToken cancellationToken = default) => _worker.AcknowledgeAndAcquireAsync(acks, request, cancellationToken);
    public ValueTask<int> RescueExpiredLeasesAsync(CancellationToken cancellationToken = default) => _worker.RescueExpiredLeasesAsync(cancellationToken);
    public ValueTask<int> ExpireOverdueAsync(CancellationToken cancellationToken = default) => _worker.ExpireOverdueAsync(cancellationToken);
    public ValueTask<QueueLimits> SetQueueLimitsAsync(string queue, QueueLimits limits, CancellationToken cancellationToken = default) => Inner.SetQueueLimitsAsync(queue, limits, cancellationToken);
    public ValueTask<BatchResult> EnqueueBatchAsync(BatchRequest batch, CancellationToken cancellationToken = default) => Inner.EnqueueBatchAsync(batch, cancellationToken);
    public ValueTask<IReadOnlyList<EnqueueResult>> AddToBatchAsync(long batchId, IReadOnlyList<JobRequest> jobs, CancellationToken cancellationToken = default) => Inner.AddToBatchAsync(batchId, jobs, cancellationToken);
    public ValueTask<BatchInfo?> GetBatchAsync(long batchId, CancellationToken cancellationToken = default) => Inner.GetBatchAsync(batchId, cancellationToken);
    public ValueTask<IReadOnlyList<WorkerHostInfo>> ListHostsAsync(CancellationToken cancellationToken = default) => Inner.ListHostsAsync(cancellationToken);
    public ValueTask<IReadOnlyList<QueueActivity>> GetActivityAsync(TimeSpan window, CancellationToken cancellationToken = default) => Inner.GetActivityAsync(window, cancellationToken);
    public ValueTask<long?> CountAheadAsync(long jobId, int cap = 10_000, CancellationToken cancellationToken = default) => Inner.CountAheadAsync(jobId, cap, cancellationToken);
    public ValueTask ReportHostAsync(WorkerHostInfo host, TimeSpan expiresAfter, CancellationToken cancellationToken = default) => _worker.ReportHostAsync(host, expiresAfter, cancellationToken);
    public ValueTask<bool> RemoveHostAsync(string workerId, CancellationToken cancellationToken = default) => _worker.RemoveHostAsync(workerId, cancellationToken);
    public ValueTask<int> PurgeFinishedAsync(TimeSpan olderThan, int batchSize, CancellationToken cancellationToken = default) => _worker.PurgeFinishedAsync(olderThan, batchSize, cancellationToken);
}
