using Microsoft.Extensions.Logging;

namespace Scheduling.Hosting;

/// <summary>
/// Keeps this host in the store's live hosts (<see cref="IJobWorkerStore.ReportHostAsync"/>): what it serves and
/// what it can hold, every heartbeat interval, each report holding for one lease duration, so a killed
/// host drops out as its leases do. A failed report is logged; the host's work does not depend on it.
/// </summary>
internal sealed class HostReporter(IJobWorkerStore store, WorkerHostInfo host, SchedulingOptions options, TimeProvider time, ILogger logger)
    : PeriodicService(time, logger)
{
    protected override TimeSpan Interval => options.HeartbeatInterval;

    protected override bool RunsAtStart => true;

    public override Task RunOnceAsync(CancellationToken cancellationToken) =>
        store.ReportHostAsync(host, options.LeaseDuration, cancellationToken).AsTask();

    protected override void OnFailure(Exception exception, TimeSpan retryIn) => Log.HostReportFailed(Logger, exception);

    /// <summary>Takes the host out of the live hosts as it stops; a failure is logged (its report expires anyway).</summary>
    public async Task RemoveAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await store.RemoveHostAsync(host.WorkerId, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.HostReportFailed(Logger, ex);
        }
    }
}
