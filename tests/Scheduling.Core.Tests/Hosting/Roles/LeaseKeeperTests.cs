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
        foreach (var job in new[] { kept, cancelled, lost }) running.Add(job);
        IReadOnlyList<JobLease>? named = null;
        var store = new FakeStore
        {
            OnHeartbeat = leases =>
            {
                named = leases;
                return [new HeldLease(1, false), new HeldLease(2, true)];
            },
        };
        var keeper = new LeaseKeeper(store, running, "w", new SchedulingOptions(), TimeProvider.System, NullLogger.Instance);

        await keeper.RunOnceAsync(CancellationToken.None);

        Assert.Equal(new[] { kept, cancelled, lost }.Select(j => j.Job.Lease).OrderBy(l => l.JobId), named!.OrderBy(l => l.JobId));
        Assert.Equal((StopReason.None, StopReason.CancellationRequested, StopReason.LeaseLost), (kept.StopReason, cancelled.StopReason, lost.StopReason));
        Assert.True(cancelled.Token.IsCancellationRequested && lost.Token.IsCancellationRequested && !kept.Token.IsCancellationRequested);
    }

    [Fact]
    public async Task With_nothing_held_it_does_not_call_the_store()
    {
        var keeper = new LeaseKeeper(new FakeStore(), new RunningJobs(), "w", new SchedulingOptions(), TimeProvider.System, NullLogger.Instance);

        await keeper.RunOnceAsync(CancellationToken.None); // the fake store throws on any heartbeat

        Assert.Equal(0, new RunningJobs().Count);
    }
}
