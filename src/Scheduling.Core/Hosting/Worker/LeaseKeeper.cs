using Microsoft.Extensions.Logging;

namespace Scheduling.Hosting;

/// <summary>
/// Extends the leases of every job this host runs in one call per heartbeat (which marks them started), stops handlers whose
/// job was cancelled, and those whose lease was lost (rescued meanwhile: the job is someone else's).
/// </summary>
internal sealed class LeaseKeeper(IJobWorkerStore store, RunningJobs running, string workerId, SchedulingOptions options, TimeProvider time, ILogger logger)
    : PeriodicService(time, logger)
{
    private volatile bool _retrySoon;

    // A lease skipped because another transaction holds its row is tried again within a second.
    protected override TimeSpan Interval => _retrySoon ? TimeSpan.FromTicks(Math.Min(TimeSpan.TicksPerSecond, options.HeartbeatInterval.Ticks / 4)) : options.HeartbeatInterval;

    /// <summary>How long until the next heartbeat (for tests).</summary>
    internal TimeSpan NextInterval => Interval;

    protected override TimeSpan DelayAfterFailure(int failures) => Backoff.Delay(failures, TimeSpan.FromMilliseconds(200), options.HeartbeatInterval);

    public override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        // Only the jobs this host runs: one acquired in a statement whose reply was lost, or fetched
        // ahead and still waiting for a slot, is not kept alive (the fetch loop gives it back or
        // starts it well within its lease). A heartbeat is what tells the store a job started, so
        // a rescue charges the attempt of these only.
        // A handler past its timeout by more than the grace ignores its token: its lease is left to
        // run out, so the job is rescued (its code may still run here; its slot stays taken until it returns).
        var now = Time.GetUtcNow();
        var holding = running.Snapshot().Where(r => r.Started && !Abandoned(r, now)).ToArray();
        if (holding.Length == 0)
        {
            _retrySoon = false;
            return;
        }

        // The latest progress of each job that reported since the last heartbeat goes with it: no round trip of its own.
        var reports = new List<(RunningJob Job, int Version)>();
        var progress = new List<JobProgressUpdate>();
        foreach (var job in holding)
        {
            if (job.Output?.Pending(job.ProgressSent) is not var (report, version)) continue;
            reports.Add((job, version));
            progress.Add(new JobProgressUpdate(job.Job.Lease, report));
        }

        var held = await store.HeartbeatAsync(workerId, holding.Select(r => r.Job.Lease).ToArray(), options.LeaseDuration, progress, cancellationToken).ConfigureAwait(false);
        // By lease, not by job: an older holding of a job this host leased again is not kept alive by the newer lease.
        var heldByLease = new Dictionary<(long, Guid), HeldLease>(held.Count);
        foreach (var lease in held) heldByLease[(lease.JobId, lease.Token)] = lease;
        var skipped = false;
        foreach (var job in holding)
        {
            if (heldByLease.TryGetValue((job.Job.Id, job.Job.Lease.Token), out var lease))
            {
                if (lease.CancellationRequested) job.Stop(StopReason.CancellationRequested);
                skipped |= !lease.Extended;
            }
            else if (running.Holds(job.Job.Lease)) // not finished meanwhile
            {
                Log.LeaseLost(Logger, job.Job.Id);
                job.Stop(StopReason.LeaseLost);
            }
        }

        foreach (var (job, version) in reports)
            if (heldByLease.TryGetValue((job.Job.Id, job.Job.Lease.Token), out var lease) && lease.Extended) job.ProgressSent = version; // else sent again next time

        _retrySoon = skipped;
    }

    private readonly HashSet<(long, Guid)> _abandoned = [];

    private bool Abandoned(RunningJob job, DateTimeOffset now)
    {
        if (!job.PastGrace(now, options.TimeoutGrace)) return false;
        lock (_abandoned)
        {
            _abandoned.RemoveWhere(key => !running.Holds(new JobLease(key.Item1, key.Item2, 0, 0)));
            if (_abandoned.Add((job.Job.Id, job.Job.Lease.Token))) Log.TimeoutIgnored(Logger, job.Job.Id, job.Job.Kind, job.Timeout!.Value, options.TimeoutGrace);
        }

        return true;
    }

    protected override void OnFailure(Exception exception, TimeSpan retryIn) => Log.HeartbeatFailed(Logger, exception, retryIn);
}
