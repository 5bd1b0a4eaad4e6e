using Microsoft.Extensions.Logging.Abstractions;
using Scheduling.Hosting;
using Xunit;

namespace Scheduling.Core.Tests.Hosting.Roles;

/// <summary>The lease keeper against a fake store: one heartbeat round, driven by the test.</summary>
public sealed class LeaseKeeperTests
{
    [Fact]
    public async Task A_heartbeat_names_every_held_lease_and_stops_the_cancelled_and_the_lost()
    {
        var running = new RunningJobs();
        var kept = new RunningJob(FakeStore.Job(1), null);
        var cancelled = new RunningJob(FakeStore.Job(2), null);
        var lost = new RunningJob(FakeStore.Job(3), null);
        var buffered = new RunningJob(FakeStore.Job(4), null); // fetched ahead, not started: not heartbeated
        foreach (var job in new[] { kept, cancelled, lost }) { job.MarkStarted(); running.Add(job); }
        running.Add(buffered);
        IReadOnlyList<JobLease>? named = null;
        var store = new FakeStore
        {
            OnHeartbeat = leases =>
            {
                named = leases;
                return [new HeldLease(1, leases.Single(l => l.JobId == 1).Token, false), new HeldLease(2, leases.Single(l => l.JobId == 2).Token, true)];
            },
        };
        var keeper = new LeaseKeeper(store, running, "w", new SchedulingOptions(), TimeProvider.System, NullLogger.Instance);

        await keeper.RunOnceAsync(CancellationToken.None);

        Assert.Equal(new[] { kept, cancelled, lost }.Select(j => j.Job.Lease).OrderBy(l => l.JobId), named!.OrderBy(l => l.JobId));
        Assert.Equal((StopReason.None, StopReason.CancellationRequested, StopReason.LeaseLost), (kept.StopReason, cancelled.StopReason, lost.StopReason));
        Assert.True(cancelled.Token.IsCancellationRequested && lost.Token.IsCancellationRequested && !kept.Token.IsCancellationRequested);
    }

    [Fact]
    public async Task A_job_leased_to_this_host_again_is_kept_alive_only_under_its_new_lease()
    {
        var running = new RunningJobs();
        var first = FakeStore.Job(5);
        var older = new RunningJob(first, null); // rescued meanwhile, its handler still running here
        var newer = new RunningJob(first with { Lease = first.Lease with { Token = Guid.NewGuid(), Attempt = 2 } }, null);
        older.MarkStarted();
        newer.MarkStarted();
        running.Add(older);
        running.Add(newer);
        var store = new FakeStore { OnHeartbeat = _ => [new HeldLease(5, newer.Job.Lease.Token, false)] };
        var keeper = new LeaseKeeper(store, running, "w", new SchedulingOptions(), TimeProvider.System, NullLogger.Instance);

        await keeper.RunOnceAsync(CancellationToken.None);

        Assert.Equal(2, running.Count);
        Assert.Equal((StopReason.LeaseLost, StopReason.None), (older.StopReason, newer.StopReason));
    }

    [Fact]
    public async Task A_lease_skipped_because_its_row_is_held_elsewhere_is_not_lost_and_is_tried_again_soon()
    {
        var running = new RunningJobs();
        var locked = new RunningJob(FakeStore.Job(7), null);
        var free = new RunningJob(FakeStore.Job(8), null);
        locked.MarkStarted();
        free.MarkStarted();
        running.Add(locked);
        running.Add(free);
        var skip = true;
        var store = new FakeStore
        {
            OnHeartbeat = leases => leases.Select(l => new HeldLease(l.JobId, l.Token, false, Extended: !(skip && l.JobId == 7))).ToArray(),
        };
        var options = new SchedulingOptions { HeartbeatInterval = TimeSpan.FromSeconds(10) };
        var keeper = new LeaseKeeper(store, running, "w", options, TimeProvider.System, NullLogger.Instance);

        await keeper.RunOnceAsync(CancellationToken.None);
        Assert.Equal((StopReason.None, StopReason.None), (locked.StopReason, free.StopReason));
        Assert.Equal(TimeSpan.FromSeconds(1), keeper.NextInterval);

        skip = false; // the other transaction has ended
        await keeper.RunOnceAsync(CancellationToken.None);
        Assert.Equal(options.HeartbeatInterval, keeper.NextInterval);
    }

    [Fact]
    public async Task With_nothing_held_it_does_not_call_the_store()
    {
        var keeper = new LeaseKeeper(new FakeStore(), new RunningJobs(), "w", new SchedulingOptions(), TimeProvider.System, NullLogger.Instance);

        await keeper.RunOnceAsync(CancellationToken.None); // the fake store throws on any heartbeat

        Assert.Equal(0, new RunningJobs().Count);
    }

    [Fact]
    public async Task Progress_goes_with_the_next_heartbeat_once_and_again_until_a_heartbeat_extends_its_lease()
    {
        var running = new RunningJobs();
        var reporting = new RunningJob(FakeStore.Job(7), null) { Output = new JobOutput() };
        var quiet = new RunningJob(FakeStore.Job(8), null) { Output = new JobOutput() };
        foreach (var job in new[] { reporting, quiet }) { job.MarkStarted(); running.Add(job); }
        var extend = false;
        var store = new FakeStore { OnHeartbeat = leases => leases.Select(l => new HeldLease(l.JobId, l.Token, false, Extended: extend || l.JobId != 7)).ToArray() };
        var keeper = new LeaseKeeper(store, running, "w", new SchedulingOptions(), TimeProvider.System, NullLogger.Instance);

        reporting.Output.ReportProgress(0.25, "reading");
        reporting.Output.ReportProgress(0.5, "halfway"); // only the latest goes
        reporting.Output.SetMetadata("rows", "1200");
        await keeper.RunOnceAsync(CancellationToken.None); // its row was held elsewhere: not extended, so sent again
        extend = true;
        await keeper.RunOnceAsync(CancellationToken.None);
        await keeper.RunOnceAsync(CancellationToken.None); // nothing new to send

        var expected = new JobProgressUpdate(reporting.Job.Lease, new JobProgress(0.5, "halfway", """{"rows":"1200"}"""));
        Assert.Equal([[expected], [expected], []], store.ProgressSent.Select(p => p.ToArray()));
        Assert.Throws<ArgumentOutOfRangeException>(() => quiet.Output.ReportProgress(1.5));
        Assert.Throws<ArgumentException>(() => quiet.Output.ReportProgress(0.1, new string('m', JobOutput.MaxProgressMessageLength + 1)));
        Assert.Throws<ArgumentException>(() => quiet.Output.SetMetadata("big", new string('x', JobOutput.MaxMetadataBytes)));
        Assert.Null(quiet.Output.Pending(0)); // a refused report changes nothing
    }
}
