using Microsoft.Extensions.Logging;

namespace Scheduling.Hosting;

/// <summary>Refreshes the cached queue depths the gauges and the health check read, so a scrape never queries the database.</summary>
internal sealed class DepthSampler(IJobQueue store, WorkerStatus status, SchedulingOptions options, TimeProvider time, ILogger logger)
    : PeriodicService(time, logger)
{
    protected override TimeSpan Interval => options.StatsInterval;

    protected override bool RunsAtStart => true;

    public override async Task RunOnceAsync(CancellationToken cancellationToken) =>
        status.Depths(await store.GetQueueStatsAsync(cancellationToken).ConfigureAwait(false), Time.GetUtcNow());

    protected override void OnFailure(Exception exception, TimeSpan retryIn)
    {
        status.DepthsFailed(exception);
        Log.StatsFailed(Logger, exception);
    }
}
