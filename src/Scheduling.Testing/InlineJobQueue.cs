namespace Scheduling.Testing;

/// <summary>
/// Inline mode's queue: every enqueue is followed, before it returns, by a run of what is due, so a
/// test sees a job's effects right after enqueuing it. A handler that enqueues does not nest a run:
/// the run already going picks the new job up.
/// </summary>
internal sealed class InlineJobQueue(IJobQueue inner, Func<TestJobRunner> runner) : IJobQueue
{
    /// <summary>The wrapped queue, as registered before inline mode replaced it.</summary>
    internal sealed record Inner(IJobQueue Queue);

    public async ValueTask<EnqueueResult> EnqueueAsync(JobRequest request, CancellationToken cancellationToken = default)
    {
        var result = await inner.EnqueueAsync(request, cancellationToken).ConfigureAwait(false);
        await RunAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    public async ValueTask<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken = default)
    {
        var results = await inner.EnqueueManyAsync(requests, cancellationToken).ConfigureAwait(false);
        await RunAsync(cancellationToken).ConfigureAwait(false);
        return results;
    }

    public ValueTask<CancelOutcome> CancelAsync(long jobId, CancellationToken cancellationToken = default) => inner.CancelAsync(jobId, cancellationToken);

    public async ValueTask<bool> RedriveAsync(long jobId, CancellationToken cancellationToken = default)
    {
        var redriven = await inner.RedriveAsync(jobId, cancellationToken).ConfigureAwait(false);
        await RunAsync(cancellationToken).ConfigureAwait(false);
        return redriven;
    }

    public ValueTask<JobInfo?> GetJobAsync(long jobId, CancellationToken cancellationToken = default) => inner.GetJobAsync(jobId, cancellationToken);

    public ValueTask<IReadOnlyList<JobInfo>> ListJobsAsync(JobListQuery query, CancellationToken cancellationToken = default) => inner.ListJobsAsync(query, cancellationToken);

    public ValueTask<IReadOnlyList<WorkerHostInfo>> ListHostsAsync(CancellationToken cancellationToken = default) => inner.ListHostsAsync(cancellationToken);
    public ValueTask<IReadOnlyList<QueueActivity>> GetActivityAsync(TimeSpan window, CancellationToken cancellationToken = default) => inner.GetActivityAsync(window, cancellationToken);
    public ValueTask<long?> CountAheadAsync(long jobId, int cap = 10_000, CancellationToken cancellationToken = default) => inner.CountAheadAsync(jobId, cap, cancellationToken);

    public ValueTask<bool> PauseQueueAsync(string queue, CancellationToken cancellationToken = default) => inner.PauseQueueAsync(queue, cancellationToken);

    public async ValueTask<bool> ResumeQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        var resumed = await inner.ResumeQueueAsync(queue, cancellationToken).ConfigureAwait(false);
        await RunAsync(cancellationToken).ConfigureAwait(false);
        return resumed;
    }

    public async ValueTask<QueueLimits> SetQueueLimitsAsync(string queue, QueueLimits limits, CancellationToken cancellationToken = default)
    {
        var old = await inner.SetQueueLimitsAsync(queue, limits, cancellationToken).ConfigureAwait(false);
        await RunAsync(cancellationToken).ConfigureAwait(false); // a loosened limit lets waiting jobs run now
        return old;
    }

    public async ValueTask<BatchResult> EnqueueBatchAsync(BatchRequest batch, CancellationToken cancellationToken = default)
    {
        var result = await inner.EnqueueBatchAsync(batch, cancellationToken).ConfigureAwait(false);
        await RunAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    public async ValueTask<IReadOnlyList<EnqueueResult>> AddToBatchAsync(long batchId, IReadOnlyList<JobRequest> jobs, CancellationToken cancellationToken = default)
    {
        var results = await inner.AddToBatchAsync(batchId, jobs, cancellationToken).ConfigureAwait(false);
        await RunAsync(cancellationToken).ConfigureAwait(false);
        return results;
    }

    public ValueTask<BatchInfo?> GetBatchAsync(long batchId, CancellationToken cancellationToken = default) => inner.GetBatchAsync(batchId, cancellationToken);

    public ValueTask<IReadOnlyList<QueueStats>> GetQueueStatsAsync(CancellationToken cancellationToken = default) => inner.GetQueueStatsAsync(cancellationToken);

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        var run = runner();
        if (!run.InsideRun) await run.RunPendingAsync(new TestRunOptions(), cancellationToken).ConfigureAwait(false);
    }
}
