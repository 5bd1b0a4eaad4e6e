using Microsoft.Extensions.Logging;

namespace Scheduling.Hosting;

/// <summary>Returns jobs whose lease expired (dead or cut-off workers) to their queue, or to dead on their last attempt.</summary>
internal sealed class LeaseRescuer(IJobWorkerStore store, SchedulingOptions options, QueueSignals signals, TimeProvider time, ILogger logger)
    : PeriodicService(time, logger)
{
    protected override TimeSpan Interval => options.RescueInterval;

    public override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var rescued = await store.RescueExpiredLeasesAsync(cancellationToken).ConfigureAwait(false);
        if (rescued == 0) return;
        SchedulingMetrics.Rescued.Add(rescued);
        Log.Rescued(Logger, rescued);
        signals.NotifyAll();
    }

    protected override void OnFailure(Exception exception, TimeSpan retryIn) => Log.RescueFailed(Logger, exception);
}
