using Microsoft.Extensions.Logging;

namespace Scheduling.Hosting;

/// <summary>Refreshes the cached queue depths the gauges and the health check read, so a scrape never queries the database.</summary>
internal sealed class DepthSampler(IJobQueue store, WorkerStatus status, SchedulingOptions options, TimeProvider time, ILogger logger)
    : PeriodicService(time, logger)
{
    protected override TimeSpan Interval => options.StatsInterval;

    protected override bool RunsAtStart => true;

    private readonly HashSet<string> _oversizedReported = new(StringComparer.Ordinal);

    public override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var depths = await store.GetQueueStatsAsync(cancellationToken).ConfigureAwait(false);
        status.Depths(depths, Time.GetUtcNow());

        // One warning when a queue starts holding jobs no host can take, not one per sample.
        foreach (var queue in depths)
        {
            if (queue.Oversized == 0) _oversizedReported.Remove(queue.Queue);
            else if (_oversizedReported.Add(queue.Queue)) Log.Oversized(Logger, queue.Queue, queue.Oversized, queue.Hosts);
        }

        _oversizedReported.IntersectWith(depths.Select(q => q.Queue));
    }

    protected override void OnFailure(Exception exception, TimeSpan retryIn)
    {
        status.DepthsFailed(exception);
        Log.StatsFailed(Logger, exception);
    }
}
