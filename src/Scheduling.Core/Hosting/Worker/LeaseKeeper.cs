using Microsoft.Extensions.Logging;

namespace Scheduling.Hosting;

/// <summary>
/// Extends the leases of every job this host holds in one call per heartbeat, stops handlers whose
/// job was cancelled, and those whose lease was lost (rescued meanwhile: the job is someone else's).
/// </summary>
internal sealed class LeaseKeeper(IJobWorkerStore store, RunningJobs running, string workerId, SchedulingOptions options, TimeProvider time, ILogger logger)
    : PeriodicService(time, logger)
{
    protected override TimeSpan Interval => options.HeartbeatInterval;

    protected override TimeSpan DelayAfterFailure(int failures) => Backoff.Delay(failures, TimeSpan.FromMilliseconds(200), options.HeartbeatInterval);

    public override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        // Only the leases this host knows it holds: one acquired in a statement whose reply was
        // lost is not kept alive here, so it expires and is rescued.
        var holding = running.Snapshot();
        if (holding.Length == 0) return;
        var held = await store.HeartbeatAsync(workerId, holding.Select(r => r.Job.Lease).ToArray(), options.LeaseDuration, cancellationToken).ConfigureAwait(false);
        var heldById = held.ToDictionary(h => h.JobId);
        foreach (var job in holding)
        {
            if (heldById.TryGetValue(job.Job.Id, out var lease))
            {
                if (lease.CancellationRequested) job.Stop(StopReason.CancellationRequested);
            }
            else if (running.Holds(job.Job.Lease)) // not finished meanwhile
            {
                Log.LeaseLost(Logger, job.Job.Id);
                job.Stop(StopReason.LeaseLost);
            }
        }
    }

    protected override void OnFailure(Exception exception, TimeSpan retryIn) => Log.HeartbeatFailed(Logger, exception, retryIn);
}
