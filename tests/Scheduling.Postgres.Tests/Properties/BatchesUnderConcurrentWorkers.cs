using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Scheduling.Postgres.Tests.Properties;

/// <summary>Batches under concurrent workers: the counter, moved in each completing transaction, agrees with the members' states, and callbacks are released once.</summary>
public sealed class BatchesUnderConcurrentWorkers(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    [Fact]
    public void Concurrent_workers_settle_nested_batches_exactly_once_with_counts_that_match_the_members()
    {
        // Sizes, worker counts and which members fail are random; two batches (one nested) share the
        // workers, so acknowledgements move both counters in interleaved transactions.
        var gen = from outer in Gen.Choose(1, 120)
                  from inner in Gen.Choose(1, 120)
                  from workers in Gen.Choose(2, 5)
                  from failEvery in Gen.Choose(0, 7)
                  select (outer, inner, workers, failEvery);
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(8), Prop.ForAll(Arb.From(gen), c => Task.Run(() => RunAsync(c.outer, c.inner, c.workers, c.failEvery)).GetAwaiter().GetResult()));
    }

    private async Task RunAsync(int outerSize, int innerSize, int workers, int failEvery)
    {
        var queue = await database.NewQueueAsync();
        var outer = await queue.EnqueueBatchAsync(new BatchRequest(Enumerable.Range(0, outerSize).Select(i => new JobRequest("m", i) { MaxAttempts = 1 }).ToArray())
        { OnSuccess = new JobRequest("success"), OnComplete = new JobRequest("complete") });
        var inner = await queue.EnqueueBatchAsync(new BatchRequest(Enumerable.Range(0, innerSize).Select(i => new JobRequest("m", 1000 + i) { MaxAttempts = 1 }).ToArray())
        { ParentBatchId = outer.BatchId, OnComplete = new JobRequest("inner-complete") });

        var callbacksRun = new System.Collections.Concurrent.ConcurrentBag<long>();
        async Task WorkAsync(int w)
        {
            for (var idle = 0; idle < 3;)
            {
                var jobs = await queue.AcquireAsync(new AcquireRequest("default", $"w{w}", 7, Lease));
                if (jobs.Count == 0) { idle++; await Task.Yield(); continue; }
                idle = 0;
                var acks = jobs.Select(j =>
                {
                    if (j.Kind != "m") callbacksRun.Add(j.Id);
                    var fails = j.Kind == "m" && failEvery > 0 && j.Id % failEvery == 0;
                    return fails ? JobAck.Failure(j.Lease, "planned") : JobAck.Success(j.Lease);
                }).ToArray();
                Assert.All(await queue.AcknowledgeAsync(acks), r => Assert.True(r.Applied));
            }
        }

        await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Task.Run(() => WorkAsync(w))));
        // Whatever a worker's idle rounds missed (a callback released by another's last commit) runs now.
        await WorkAsync(99);

        foreach (var (batch, size, nested) in new[] { (inner, innerSize, 0), (outer, outerSize, 1) })
        {
            var info = (await queue.GetBatchAsync(batch.BatchId))!;
            var members = await queue.ListJobsAsync(new JobListQuery { BatchId = batch.BatchId, Kind = "m", Limit = 1000 });
            Assert.Equal(size, members.Count);
            Assert.All(members, m => Assert.True(m.State.IsTerminal()));
            var failedMembers = members.Count(m => m.State == JobState.Dead);
            var innerFailed = nested == 1 && (await queue.GetBatchAsync(inner.BatchId))!.Failed > 0 ? 1 : 0;
            Assert.Equal((size + nested, 0, failedMembers + innerFailed, size + nested - failedMembers - innerFailed),
                (info.Total, info.Pending, info.Failed, info.Succeeded));
            Assert.NotNull(info.SettledAt);
        }

        var expected = new List<long> { outer.OnCompleteJobId!.Value, inner.OnCompleteJobId!.Value };
        var outerInfo = (await queue.GetBatchAsync(outer.BatchId))!;
        if (outerInfo.IsSucceeded) expected.Add(outer.OnSuccessJobId!.Value);
        Assert.Equal(expected.Order(), callbacksRun.Order()); // each released callback ran once; the success one only on success
        Assert.Equal(outerInfo.IsSucceeded ? JobState.Succeeded : JobState.Cancelled, (await queue.GetJobAsync(outer.OnSuccessJobId!.Value))!.State);
    }
}
