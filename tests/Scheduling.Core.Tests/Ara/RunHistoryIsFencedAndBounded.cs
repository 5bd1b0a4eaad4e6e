using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Scheduling.Core.Tests.Ara;

/// <summary>The in-memory history, as the PostgreSQL one: a run per attempt under its valid lease, pruned to the estimator's window.</summary>
public sealed class RunHistoryIsFencedAndBounded
{
    private static readonly JobDefinition Python = new("python-etl", 50);

    [Fact]
    public async Task A_run_is_recorded_once_per_attempt_only_under_its_valid_lease_and_pruned_past_the_window()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 0, 0, 0, TimeSpan.Zero));
        var ara = new AraOptions();
        var history = new InMemoryRunHistory(ara, time);
        var queue = new InMemoryJobQueue(new ResourceAllocator(history, null, ara), history, timeProvider: time);
        await queue.EnqueueAsync(new JobRequest("etl") { Command = "python etl.py", Definition = Python });
        var job = Assert.Single(await queue.AcquireAsync(new AcquireRequest("default", "w", 1, TimeSpan.FromMinutes(1))));
        var ack = JobAck.Success(job.Lease) with { Usage = new ResourceUsage { PeakMemoryMb = 3000 }, RunDuration = TimeSpan.FromSeconds(5) };

        await queue.AcknowledgeAsync([ack]);
        await queue.AcknowledgeAsync([ack]);
        await queue.AcknowledgeAsync([ack with { Lease = ack.Lease with { Token = Guid.NewGuid() } }]);
        Assert.Single(history.Runs);

        await history.RecordAsync(Enumerable.Range(0, 5).Select(i => new RunOutcome(Python.Id, "h", null, 512, 400, null, TimeSpan.FromSeconds(1), 0, false, time.GetUtcNow() - TimeSpan.FromDays(40 + i))).ToArray());
        var cutoff = ara.Estimator.Window;
        Assert.Equal((3, 2, 0), (await history.PruneAsync(cutoff, 3), await history.PruneAsync(cutoff, 3), await history.PruneAsync(cutoff, 3)));
        Assert.Equal(3000, Assert.Single(history.Runs).PeakMemoryMb);
    }
}
