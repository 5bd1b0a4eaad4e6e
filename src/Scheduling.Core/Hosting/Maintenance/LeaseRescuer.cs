using Microsoft.Extensions.Logging;

namespace Scheduling.Hosting;

/// <summary>Returns jobs whose lease expired (dead or cut-off workers) to their queue, or to dead on their last attempt; and ends unstarted jobs past their latest start time.</summary>
internal sealed class LeaseRescuer(IJobWorkerStore store, SchedulingOptions options, QueueSignals signals, TimeProvider time, ILogger logger)
    : PeriodicService(time, logger)
{
    protected override TimeSpan Interval => options.RescueInterval;

    public override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var rescued = await store.RescueExpiredLeasesAsync(cancellationToken).ConfigureAwait(false);
        var expired = await store.ExpireOverdueAsync(cancellationToken).ConfigureAwait(false);
        if (expired > 0)
        {
            SchedulingMetrics.Expired.Add(expired);
            Log.Expired(Logger, expired);
            signals.NotifyAll(); // children released by the run-anyway policy
        }

        if (rescued == 0) return;
        SchedulingMetrics.Rescued.Add(rescued);
        Log.Rescued(Logger, rescued);
        signals.NotifyAll();
    }

    protected override void OnFailure(Exception exception, TimeSpan retryIn) => Log.RescueFailed(Logger, exception);
}
