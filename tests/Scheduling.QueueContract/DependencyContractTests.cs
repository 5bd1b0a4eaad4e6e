using Xunit;

namespace Scheduling.QueueContract;

/// <summary>The contract for dependencies, priority inheritance, aging and fair shares.</summary>
public abstract partial class JobQueueContractTests
{
    private static JobRequest Job(string key, params string[] parents) =>
        new("k") { LocalKey = key, DependsOn = parents.Select(JobDependency.OnRequest).ToArray() };

    private static async Task<AcquiredJob> TakeOneAsync(StoreUnderTest queue, string queueName = "default") =>
        Assert.Single(await queue.AcquireAsync(Take(100, queueName)));

    [Fact]
    public async Task Fan_out_of_fifty_children_is_released_by_the_parents_completion()
    {
        var queue = await CreateQueueAsync();
        var parent = await queue.EnqueueAsync(new JobRequest("parent"));
        var children = await queue.EnqueueManyAsync(Enumerable.Range(0, 50).Select(_ => new JobRequest("child") { DependsOn = [parent.JobId] }).ToArray());
        foreach (var child in children) Assert.Equal(JobState.Waiting, (await queue.GetJobAsync(child.JobId))!.State);
        Assert.Equal(50, (await queue.GetJobAsync(parent.JobId))!.Children.Count);

        var running = await TakeOneAsync(queue); // only the parent is available
        Assert.Equal(parent.JobId, running.Id);
        Assert.Equal(JobState.Succeeded, (await queue.CompleteAsync(running.Lease)).State);

        var released = await queue.AcquireAsync(Take(100));
        Assert.Equal(children.Select(c => c.JobId).Order(), released.Select(j => j.Id).Order());
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Chain_of_ten_runs_strictly_in_order()
    {
        var queue = await CreateQueueAsync();
        var requests = Enumerable.Range(0, 10).Select(i => i == 0 ? Job("j0") : Job($"j{i}", $"j{i - 1}")).Reverse().ToArray(); // any order in the call
        var ids = (await queue.EnqueueManyAsync(requests)).Select(r => r.JobId).Reverse().ToArray();

        for (var step = 0; step < 10; step++)
        {
            var job = await TakeOneAsync(queue);
            Assert.Equal(ids[step], job.Id);
            if (step < 9) Assert.Equal(JobState.Waiting, (await queue.GetJobAsync(ids[step + 1]))!.State);
            await queue.CompleteAsync(job.Lease);
        }

        Assert.Empty(await queue.AcquireAsync(Take(100)));
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Inspection_shows_parents_children_and_what_a_job_waits_for()
    {
        var queue = await CreateQueueAsync();
        var a = await queue.EnqueueAsync(new JobRequest("a"));
        var b = await queue.EnqueueAsync(new JobRequest("b"));
        var child = await queue.EnqueueAsync(new JobRequest("c") { DependsOn = [a.JobId, b.JobId, a.JobId], OnParentFailure = ParentFailurePolicy.RunAnyway });
        await queue.CompleteAsync((await queue.AcquireAsync(Take(1))).Single().Lease); // a

        var info = (await queue.GetJobAsync(child.JobId))!;
        Assert.Equal(JobState.Waiting, info.State);
        Assert.Equal(1, info.PendingParents);
        Assert.Equal(ParentFailurePolicy.RunAnyway, info.OnParentFailure);
        Assert.Equal([new JobLink(a.JobId, JobState.Succeeded), new JobLink(b.JobId, JobState.Available)], info.Parents);
        Assert.Equal([new JobLink(child.JobId, JobState.Waiting)], (await queue.GetJobAsync(b.JobId))!.Children);
        Assert.Equal(1, (await queue.GetQueueStatsAsync()).Single().Waiting);
    }

    [Fact]
    public async Task A_dead_parent_cancels_waiting_descendants_unless_they_run_anyway()
    {
        var queue = await CreateQueueAsync();
        var ids = await queue.EnqueueManyAsync(
        [
            Job("a"), Job("b", "a"), Job("c", "b"),
            new JobRequest("d") { LocalKey = "d", DependsOn = [JobDependency.OnRequest("a")], OnParentFailure = ParentFailurePolicy.RunAnyway },
            Job("e", "d"),
        ]);
        var a = await TakeOneAsync(queue);
        Assert.Equal(JobState.Dead, (await queue.FailAsync(a.Lease, "boom", retryable: false)).State);

        var b = (await queue.GetJobAsync(ids[1].JobId))!;
        Assert.Equal(JobState.Cancelled, b.State);
        Assert.NotNull(b.FinalizedAt);
        Assert.Contains($"Parent job {ids[0].JobId} ended dead", Assert.Single(b.Errors).Message, StringComparison.Ordinal);
        Assert.Equal(JobState.Cancelled, (await queue.GetJobAsync(ids[2].JobId))!.State); // transitively
        Assert.Contains($"Parent job {ids[1].JobId} ended cancelled", (await queue.GetJobAsync(ids[2].JobId))!.Errors.Single().Message, StringComparison.Ordinal);

        var d = await TakeOneAsync(queue); // run anyway
        Assert.Equal(ids[3].JobId, d.Id);
        await queue.CompleteAsync(d.Lease);
        Assert.Equal(ids[4].JobId, (await TakeOneAsync(queue)).Id);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Cancelling_a_parent_or_a_waiting_job_cancels_its_waiting_descendants()
    {
        var queue = await CreateQueueAsync();
        var ids = (await queue.EnqueueManyAsync([Job("a"), Job("b", "a"), Job("c", "b"), Job("x"), Job("y", "x")])).Select(r => r.JobId).ToArray();

        Assert.Equal(CancelOutcome.Cancelled, await queue.CancelAsync(ids[1])); // a waiting job
        Assert.Equal(JobState.Cancelled, (await queue.GetJobAsync(ids[2]))!.State);
        Assert.Equal(JobState.Available, (await queue.GetJobAsync(ids[0]))!.State);

        Assert.Equal(CancelOutcome.Cancelled, await queue.CancelAsync(ids[3])); // an available parent
        Assert.Equal(JobState.Cancelled, (await queue.GetJobAsync(ids[4]))!.State);
        Assert.Equal(ids[0], (await TakeOneAsync(queue)).Id);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task A_parent_already_finished_at_enqueue_counts_as_met_or_applies_the_policy()
    {
        var queue = await CreateQueueAsync();
        var done = await queue.EnqueueAsync(new JobRequest("done"));
        var failed = await queue.EnqueueAsync(new JobRequest("failed") { MaxAttempts = 1 });
        var jobs = await queue.AcquireAsync(Take(2));
        await queue.CompleteAsync(jobs.Single(j => j.Id == done.JobId).Lease);
        await queue.FailAsync(jobs.Single(j => j.Id == failed.JobId).Lease, "boom");

        var afterSuccess = await queue.EnqueueAsync(new JobRequest("k") { DependsOn = [done.JobId] });
        var afterFailure = await queue.EnqueueAsync(new JobRequest("k") { DependsOn = [done.JobId, failed.JobId] });
        var anyway = await queue.EnqueueAsync(new JobRequest("k") { DependsOn = [failed.JobId], OnParentFailure = ParentFailurePolicy.RunAnyway });

        Assert.Equal(JobState.Available, (await queue.GetJobAsync(afterSuccess.JobId))!.State);
        var cancelled = (await queue.GetJobAsync(afterFailure.JobId))!;
        Assert.Equal(JobState.Cancelled, cancelled.State);
        Assert.Contains($"Parent job {failed.JobId} ended dead", cancelled.Errors.Single().Message, StringComparison.Ordinal);
        Assert.Equal(JobState.Available, (await queue.GetJobAsync(anyway.JobId))!.State);
        Assert.Equal([afterSuccess.JobId, anyway.JobId], (await queue.AcquireAsync(Take(10))).Select(j => j.Id).Order());

        // The same in bulk (PostgreSQL writes wide layers with binary COPY).
        var bulk = await queue.EnqueueManyAsync(Enumerable.Range(0, 40).Select(i => new JobRequest("k") { DependsOn = [i % 2 == 0 ? done.JobId : failed.JobId] }).ToArray());
        for (var i = 0; i < bulk.Count; i++)
        {
            var info = (await queue.GetJobAsync(bulk[i].JobId))!;
            Assert.Equal(i % 2 == 0 ? JobState.Available : JobState.Cancelled, info.State);
            if (i % 2 == 1) Assert.Contains($"Parent job {failed.JobId} ended dead", info.Errors.Single().Message, StringComparison.Ordinal);
            Assert.Equal(0, info.PendingParents);
        }

        var waiting = await queue.EnqueueManyAsync(Enumerable.Range(0, 40).Select(_ => new JobRequest("k") { DependsOn = [anyway.JobId, done.JobId], Priority = 3 }).ToArray());
        var sample = (await queue.GetJobAsync(waiting[^1].JobId))!;
        Assert.Equal((JobState.Waiting, 1), (sample.State, sample.PendingParents));
        Assert.Equal(3, (await queue.GetJobAsync(anyway.JobId))!.EffectivePriority);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Bad_graphs_are_rejected_naming_the_offenders_and_nothing_is_written()
    {
        var queue = await CreateQueueAsync();
        var existing = await queue.EnqueueAsync(new JobRequest("k"));

        var unknown = await Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueManyAsync(
            [new JobRequest("k"), new JobRequest("k") { DependsOn = [existing.JobId, 999_999, 999_998] }]).AsTask());
        Assert.Contains("999998, 999999", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("requests[1]", unknown.Message, StringComparison.Ordinal);

        var single = await Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueAsync(new JobRequest("k") { DependsOn = [777_777] }).AsTask());
        Assert.Equal("request.DependsOn", single.ParamName);

        var self = await Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueManyAsync([Job("a", "a")]).AsTask());
        Assert.Equal("requests[0].DependsOn[0]", self.ParamName);
        Assert.Contains("depends on itself", self.Message, StringComparison.Ordinal);

        var cycle = await Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueManyAsync([Job("ok"), Job("a", "c", "ok"), Job("b", "a"), Job("c", "b")]).AsTask());
        Assert.Contains("cycle", cycle.Message, StringComparison.Ordinal);
        foreach (var name in new[] { "'a'", "'b'", "'c'" }) Assert.Contains(name, cycle.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("'ok'", cycle.Message, StringComparison.Ordinal);

        var missingKey = await Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueManyAsync([Job("a", "nope")]).AsTask());
        Assert.Equal("requests[0].DependsOn[0]", missingKey.ParamName);
        var twice = await Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueManyAsync([Job("a"), Job("a")]).AsTask());
        Assert.Equal("requests[1].LocalKey", twice.ParamName);
        var huge = await Assert.ThrowsAsync<ArgumentException>(() =>
            queue.EnqueueAsync(new JobRequest("k") { DependsOn = Enumerable.Range(1, 1001).Select(i => (JobDependency)i).ToArray() }).AsTask());
        Assert.Equal("request.DependsOn", huge.ParamName);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => queue.EnqueueAsync(new JobRequest("k") { DependsOn = [0] }).AsTask());

        var stats = Assert.Single(await queue.GetQueueStatsAsync());
        Assert.Equal(1, stats.Available + stats.Waiting); // only the first job was ever written
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task A_waiting_job_lends_its_priority_to_its_ancestors_until_it_stops_waiting()
    {
        var queue = await CreateQueueAsync();
        var other = await queue.EnqueueAsync(new JobRequest("other") { Priority = 5 });
        // Diamond: a -> (b, c) -> d, where only d is urgent.
        var ids = (await queue.EnqueueManyAsync([Job("a"), Job("b", "a"), Job("c", "a"), Job("d", "b", "c") with { Priority = 10 }])).Select(r => r.JobId).ToArray();

        foreach (var id in ids[..3])
        {
            var info = (await queue.GetJobAsync(id))!;
            Assert.Equal(0, info.Priority);
            Assert.Equal(10, info.EffectivePriority);
        }

        Assert.Equal(ids[0], (await queue.AcquireAsync(Take(1))).Single().Id); // a runs before the priority-5 job
        Assert.Equal(other.JobId, (await queue.AcquireAsync(Take(1))).Single().Id);

        Assert.Equal(CancelOutcome.Cancelled, await queue.CancelAsync(ids[3])); // d stops waiting: the boost goes
        Assert.Equal(0, (await queue.GetJobAsync(ids[1]))!.EffectivePriority);
        Assert.Equal(0, (await queue.GetJobAsync(ids[2]))!.EffectivePriority);
        Assert.Equal(0, (await queue.GetJobAsync(ids[0]))!.EffectivePriority);
        Assert.Equal(10, (await queue.GetJobAsync(ids[3]))!.EffectivePriority);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task A_chain_enqueued_with_rising_priorities_lends_each_ancestor_the_highest_priority_below_it()
    {
        // Each job is more urgent than its parent: every ancestor inherits the last one's priority, in one
        // call (each is reached from every job below it) and when the chain grows one call at a time.
        var queue = await CreateQueueAsync();
        const int length = 300;
        var chain = Enumerable.Range(0, length).Select(i => (i == 0 ? Job("c0") : Job($"c{i}", $"c{i - 1}")) with { Priority = i }).ToArray();
        var ids = (await queue.EnqueueManyAsync(chain)).Select(r => r.JobId).ToArray();
        for (var i = 0; i < length; i++) Assert.Equal(length - 1, (await queue.GetJobAsync(ids[i]))!.EffectivePriority);

        var tip = ids[^1];
        for (var p = length; p < length + 5; p++)
            tip = (await queue.EnqueueAsync(new JobRequest("k") { Priority = p, DependsOn = [JobDependency.OnJob(tip)] })).JobId;
        Assert.Equal(length + 4, (await queue.GetJobAsync(ids[0]))!.EffectivePriority);
        Assert.Equal(length + 4, (await queue.GetJobAsync(ids[length / 2]))!.EffectivePriority);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Aging_bounds_how_long_a_low_priority_job_waits_under_a_stream_of_urgent_ones()
    {
        const int gap = 3;
        var step = TimeSpan.FromMinutes(1);
        var tick = TimeSpan.FromSeconds(10);

        async Task<TimeSpan?> LowStartsAfterAsync(TimeSpan? agingStep)
        {
            var queue = await CreateQueueAsync(new JobQueueOptions { AgingStep = agingStep });
            var started = Time.GetUtcNow();
            var low = await queue.EnqueueAsync(new JobRequest("low") { Priority = 0 });
            for (var i = 0; i < 120; i++) // an urgent job arrives every tick, and one job is taken per tick
            {
                Time.Advance(tick);
                await queue.EnqueueAsync(new JobRequest("urgent") { Priority = gap });
                var job = (await queue.AcquireAsync(Take(1))).Single();
                if (job.Id == low.JobId) return Time.GetUtcNow() - started;
                await queue.CompleteAsync(job.Lease);
            }

            return null;
        }

        Assert.Null(await LowStartsAfterAsync(null)); // strict priority: starved for the whole 20 minutes
        var waited = await LowStartsAfterAsync(step);
        Assert.NotNull(waited);
        Assert.True(waited <= gap * step + tick, $"The low-priority job waited {waited}; the bound is {gap * step + tick}.");
    }

    [Fact]
    public async Task A_retried_job_is_ordered_by_its_new_due_time()
    {
        var queue = await CreateQueueAsync(new JobQueueOptions { AgingStep = TimeSpan.FromSeconds(1), Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.FromSeconds(30), MaxDelay = TimeSpan.FromSeconds(30), Jitter = RetryJitter.None } });
        var retried = await queue.EnqueueAsync(new JobRequest("k") { Priority = 20 });
        await queue.FailAsync((await queue.AcquireAsync(Take(1))).Single().Lease, "again");
        Time.Advance(TimeSpan.FromSeconds(31));
        var waiting = await queue.EnqueueAsync(new JobRequest("k") { Priority = 0, RunAt = Start });

        // Due at +30 s with 20 levels of 1 s is ordered at +10 s: after the job due at the start.
        Assert.Equal([waiting.JobId, retried.JobId], (await queue.AcquireAsync(Take(2))).Select(j => j.Id));
    }

    [Fact]
    public async Task Weighted_queues_split_batches_by_weight_and_share_what_one_cannot_use()
    {
        var queue = await CreateQueueAsync();
        await queue.EnqueueManyAsync(Enumerable.Range(0, 2000).Select(i => new JobRequest("k") { Queue = i % 2 == 0 ? "big" : "small" }).ToArray());
        QueueShare[] shares = [new("big", 3), new("small", 1)];

        var counts = new Dictionary<string, int> { ["big"] = 0, ["small"] = 0 };
        for (var round = 0; round < 25; round++)
        {
            var batch = await queue.AcquireAsync(new AcquireRequest(shares, "w", 4, Lease));
            Assert.Equal(4, batch.Count);
            foreach (var job in batch) counts[job.Queue]++;
        }

        Assert.Equal(75, counts["big"]);
        Assert.Equal(25, counts["small"]);

        // Batches of one converge to the same split.
        var single = new Dictionary<string, int> { ["big"] = 0, ["small"] = 0 };
        for (var round = 0; round < 200; round++) single[(await queue.AcquireAsync(new AcquireRequest(shares, "w", 1, Lease))).Single().Queue]++;
        Assert.InRange(single["small"], 25, 75); // expected 50

        // Drain 'small' away: then 'big' gets whole batches.
        while ((await queue.AcquireAsync(new AcquireRequest("small", "w", 100, Lease))).Count > 0) { }
        var alone = await queue.AcquireAsync(new AcquireRequest(shares, "w", 10, Lease));
        Assert.Equal(10, alone.Count);
        Assert.All(alone, j => Assert.Equal("big", j.Queue));
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task A_shallow_queue_is_served_next_to_a_deep_one()
    {
        var queue = await CreateQueueAsync();
        await queue.EnqueueManyAsync(Enumerable.Range(0, 2000).Select(_ => new JobRequest("k") { Queue = "deep" }).ToArray());
        var shallow = await queue.EnqueueManyAsync(Enumerable.Range(0, 10).Select(_ => new JobRequest("k") { Queue = "shallow" }).ToArray());

        var first = await queue.AcquireAsync(new AcquireRequest([new QueueShare("deep", 1), new QueueShare("shallow", 1)], "w", 20, Lease));
        Assert.Equal(20, first.Count);
        Assert.Equal(shallow.Select(s => s.JobId).Order(), first.Where(j => j.Queue == "shallow").Select(j => j.Id).Order());
    }

    [Fact]
    public async Task Weighted_acquire_rejects_bad_shares_by_name()
    {
        var queue = await CreateQueueAsync();
        var weight = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => queue.AcquireAsync(new AcquireRequest([new QueueShare("a", 1), new QueueShare("b", 0)], "w", 1, Lease)).AsTask());
        Assert.Equal("request.Queues[1].Weight", weight.ParamName);
        var twice = await Assert.ThrowsAsync<ArgumentException>(() => queue.AcquireAsync(new AcquireRequest([new QueueShare("a", 1), new QueueShare("a", 2)], "w", 1, Lease)).AsTask());
        Assert.Equal("request.Queues[1].Queue", twice.ParamName);
        var none = await Assert.ThrowsAsync<ArgumentException>(() => queue.AcquireAsync(new AcquireRequest(Array.Empty<QueueShare>(), "w", 1, Lease)).AsTask());
        Assert.Equal("request.Queues", none.ParamName);
    }

    [Fact]
    public async Task A_waiting_job_holds_its_unique_key()
    {
        var queue = await CreateQueueAsync();
        var parent = await queue.EnqueueAsync(new JobRequest("p"));
        var child = await queue.EnqueueAsync(new JobRequest("c") { DependsOn = [parent.JobId], UniqueKey = "report" });
        var again = await queue.EnqueueAsync(new JobRequest("c") { UniqueKey = "report" });
        Assert.False(again.Created);
        Assert.Equal(child.JobId, again.JobId);
        await AssertConsistentAsync(queue);
    }
}
