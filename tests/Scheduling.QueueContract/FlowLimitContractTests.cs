using Xunit;

namespace Scheduling.QueueContract;

/// <summary>Rate limits, per-key caps, fair keys and deadlines: enforced by the claim, in both stores alike.</summary>
public abstract partial class JobQueueContractTests
{
    private static JobRequest Keyed(string key, string queue = "default") => new("k") { Queue = queue, PartitionKey = key };

    [Fact]
    public async Task A_queue_rate_limit_starts_a_burst_then_one_job_per_interval_and_clearing_it_releases_the_rest()
    {
        var queue = await CreateQueueAsync();
        await queue.EnqueueManyAsync(Enumerable.Range(0, 10).Select(_ => new JobRequest("k")).ToArray());
        var limits = new QueueLimits { Rate = new RateLimit(3, TimeSpan.FromSeconds(10)) };
        Assert.Equal(QueueLimits.None, await queue.SetQueueLimitsAsync("default", limits)); // it returns what the queue had

        Assert.Equal(3, (await queue.AcquireAsync(Take(10))).Count); // the burst: a full bucket
        Assert.Empty(await queue.AcquireAsync(Take(10)));
        Time.Advance(TimeSpan.FromMilliseconds(3300));
        Assert.Empty(await queue.AcquireAsync(Take(10))); // one interval is 3.333 s
        Time.Advance(TimeSpan.FromMilliseconds(34));
        Assert.Single(await queue.AcquireAsync(Take(10)));
        Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(3, (await queue.AcquireAsync(Take(10))).Count); // the bucket holds no more than its count

        Assert.Equal(limits, (await queue.GetQueueStatsAsync()).Single(s => s.Queue == "default").Limits);
        Assert.Equal(limits, await queue.SetQueueLimitsAsync("default", QueueLimits.None));
        Assert.Equal(3, (await queue.AcquireAsync(Take(10))).Count);
        Assert.Equal(QueueLimits.None, (await queue.GetQueueStatsAsync()).Single(s => s.Queue == "default").Limits);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task A_per_key_cap_of_one_runs_one_job_per_key_through_success_failure_and_rescue_and_a_stale_lease_changes_nothing()
    {
        var queue = await CreateQueueAsync();
        await queue.SetQueueLimitsAsync("default", new QueueLimits { ConcurrencyPerKey = 1 });
        await queue.EnqueueManyAsync([Keyed("a"), Keyed("a"), Keyed("a"), Keyed("b"), Keyed("b"), new JobRequest("k")]);

        var first = await queue.AcquireAsync(Take(10));
        Assert.Equal(new string?[] { "a", "b", null }, await KeysOfAsync(queue, first));
        Assert.Empty(await queue.AcquireAsync(Take(10))); // both keys at their cap; the unkeyed job was taken
        var a = first[0];
        var b = first[1];
        Assert.True((await queue.CompleteAsync(first[2].Lease)).Applied);

        Assert.True((await queue.CompleteAsync(a.Lease)).Applied);
        var a2 = Assert.Single(await queue.AcquireAsync(Take(10)));
        Assert.Equal("a", (await queue.GetJobAsync(a2.Id))!.PartitionKey);

        Assert.Equal(JobState.Scheduled, (await queue.FailAsync(b.Lease, "boom")).State); // retried later: not running, so b's next job may start
        var b2 = Assert.Single(await queue.AcquireAsync(Take(10)));
        Assert.Equal("b", (await queue.GetJobAsync(b2.Id))!.PartitionKey);
        Assert.NotEqual(b.Id, b2.Id);

        // a2's worker loses its lease: the job is rescued, and only then may a's next job start, once.
        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        Assert.Equal(2, await queue.RescueExpiredLeasesAsync()); // a2 and b2
        var again = await queue.AcquireAsync(Take(10, worker: "w2"));
        Assert.Equal(2, again.Count);
        Assert.Equal(["a", "b"], (await KeysOfAsync(queue, again)).Order());
        Assert.False((await queue.CompleteAsync(a2.Lease)).Applied); // the old holder's acknowledgement is refused
        Assert.Empty(await queue.AcquireAsync(Take(10)));
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task A_per_key_rate_limit_paces_each_key_on_its_own()
    {
        var queue = await CreateQueueAsync();
        await queue.SetQueueLimitsAsync("default", new QueueLimits { RatePerKey = new RateLimit(2, TimeSpan.FromMinutes(1)) });
        await queue.EnqueueManyAsync(Enumerable.Range(0, 5).SelectMany(_ => new[] { Keyed("a"), Keyed("b") }).ToArray());

        var burst = await queue.AcquireAsync(Take(10));
        Assert.Equal(["a", "a", "b", "b"], (await KeysOfAsync(queue, burst)).Order());
        Assert.Empty(await queue.AcquireAsync(Take(10)));
        Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(["a", "b"], (await KeysOfAsync(queue, await queue.AcquireAsync(Take(10)))).Order());
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Fair_keys_share_each_claim_so_a_big_backlog_does_not_hold_back_a_small_key()
    {
        var queue = await CreateQueueAsync();
        await queue.EnqueueManyAsync(Enumerable.Range(0, 50).Select(_ => Keyed("big")).ToArray());
        await queue.EnqueueManyAsync([Keyed("small"), Keyed("small"), Keyed("small")]);
        await queue.SetQueueLimitsAsync("default", new QueueLimits { FairKeys = true });

        Assert.Equal(["big", "big", "small", "small"], (await KeysOfAsync(queue, await queue.AcquireAsync(Take(4)))).Order());
        Assert.Equal(["big", "big", "big", "small"], (await KeysOfAsync(queue, await queue.AcquireAsync(Take(4)))).Order()); // small gave what it had left
        Assert.Equal(4, (await queue.AcquireAsync(Take(4))).Count); // one key alone fills the batch
        var late = (await queue.EnqueueAsync(Keyed("late"))).JobId; // one keyed job on its own: its key is registered with it
        Assert.Contains(late, (await queue.AcquireAsync(Take(4))).Select(j => j.Id));
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task A_job_not_started_by_its_latest_start_is_never_leased_and_expires_with_its_children_handled_by_policy()
    {
        var queue = await CreateQueueAsync();
        var results = await queue.EnqueueManyAsync(
        [
            new JobRequest("k") { LatestStartAt = Start.AddMinutes(1), LocalKey = "late" },
            new JobRequest("k") { DependsOn = [JobDependency.OnRequest("late")] },
            new JobRequest("k") { DependsOn = [JobDependency.OnRequest("late")], OnParentFailure = ParentFailurePolicy.RunAnyway },
            new JobRequest("k") { LatestStartAt = Start.AddHours(1) },
        ]);
        Time.Advance(TimeSpan.FromMinutes(2));

        var leased = Assert.Single(await queue.AcquireAsync(Take(10))); // only the one still in time
        Assert.Equal(results[3].JobId, leased.Id);
        Assert.Equal(1, await queue.ExpireOverdueAsync());
        Assert.Equal(0, await queue.ExpireOverdueAsync());

        var late = (await queue.GetJobAsync(results[0].JobId))!;
        Assert.Equal((JobState.Expired, Start.AddMinutes(1)), (late.State, late.LatestStartAt));
        Assert.Equal(JobTransitions.ExpiredMessage(Start.AddMinutes(1)), Assert.Single(late.Errors).Message);
        Assert.Equal(JobState.Cancelled, (await queue.GetJobAsync(results[1].JobId))!.State);
        Assert.Equal(JobState.Available, (await queue.GetJobAsync(results[2].JobId))!.State);
        Assert.False(await queue.RedriveAsync(results[0].JobId));

        var error = await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.EnqueueAsync(new JobRequest("k") { RunAt = Start.AddHours(2), LatestStartAt = Start.AddHours(1) }).AsTask());
        Assert.Equal("request.LatestStartAt", error.ParamName);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task A_deadline_to_finish_by_sets_the_latest_start_and_the_earlier_of_the_two_wins()
    {
        var queue = await CreateQueueAsync();
        var results = await queue.EnqueueManyAsync(
        [
            new JobRequest("k") { FinishBy = Start.AddMinutes(30) }, // no history: it may start until the deadline itself
            new JobRequest("k") { FinishBy = Start.AddMinutes(30), LatestStartAt = Start.AddMinutes(5) },
            new JobRequest("k") { FinishBy = Start.AddMinutes(30), LatestStartAt = Start.AddHours(1) },
        ]);

        var latest = new List<DateTimeOffset?>();
        foreach (var r in results) latest.Add((await queue.GetJobAsync(r.JobId))!.LatestStartAt);
        Assert.Equal([Start.AddMinutes(30), Start.AddMinutes(5), Start.AddMinutes(30)], latest);

        var error = await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.EnqueueAsync(new JobRequest("k") { RunAt = Start.AddHours(2), FinishBy = Start.AddHours(1) }).AsTask());
        Assert.Equal("request.FinishBy", error.ParamName);
        await AssertConsistentAsync(queue);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task With_a_deadline_lead_jobs_nearest_their_deadlines_go_first(bool aging)
    {
        var queue = await CreateQueueAsync(new JobQueueOptions { DeadlineLead = TimeSpan.FromHours(1), AgingStep = aging ? TimeSpan.FromSeconds(1) : null });
        var backlog = Start.AddMinutes(-30); // due half an hour ago
        var old = (await queue.EnqueueManyAsync([new JobRequest("k") { RunAt = backlog }, new JobRequest("k") { RunAt = backlog }])).Select(r => r.JobId).ToArray();
        var results = await queue.EnqueueManyAsync(
        [
            new JobRequest("k") { LatestStartAt = Start.AddHours(3) },      // +2 h is later than its own place: it keeps it
            new JobRequest("k") { FinishBy = Start.AddMinutes(20) },        // as due 40 min ago: first
            new JobRequest("k") { LatestStartAt = Start.AddMinutes(45) },   // as due 15 min ago: after the backlog's 30 min
            new JobRequest("k"),
        ]);
        var ids = results.Select(r => r.JobId).ToArray();

        var order = (await queue.AcquireAsync(Take(10))).Select(j => j.Id).ToArray();

        Assert.Equal([ids[1], old[0], old[1], ids[2], ids[0], ids[3]], order);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Without_a_deadline_lead_deadlines_do_not_change_the_order()
    {
        var queue = await CreateQueueAsync();
        var ids = (await queue.EnqueueManyAsync([new JobRequest("k"), new JobRequest("k") { LatestStartAt = Start.AddMinutes(1) }, new JobRequest("k") { FinishBy = Start.AddMinutes(2) }])).Select(r => r.JobId).ToArray();
        Assert.Equal(ids, (await queue.AcquireAsync(Take(10))).Select(j => j.Id));
    }

    [Fact]
    public async Task Invalid_limits_and_partition_keys_are_refused_naming_the_property()
    {
        var queue = await CreateQueueAsync();
        async Task<string?> Refused(QueueLimits limits) => (await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.SetQueueLimitsAsync("default", limits).AsTask())).ParamName;

        Assert.Equal("limits.ConcurrencyPerKey", await Refused(new QueueLimits { ConcurrencyPerKey = 0 }));
        Assert.Equal("limits.Rate.Count", await Refused(new QueueLimits { Rate = new RateLimit(0, TimeSpan.FromSeconds(1)) }));
        Assert.Equal("limits.RatePerKey.Period", await Refused(new QueueLimits { RatePerKey = new RateLimit(1, TimeSpan.FromTicks(5)) }));
        Assert.Equal("queue", (await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.SetQueueLimitsAsync("", QueueLimits.None).AsTask())).ParamName);
        Assert.Equal("request.PartitionKey", (await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.EnqueueAsync(new JobRequest("k") { PartitionKey = "" }).AsTask())).ParamName);
        Assert.Equal(QueueLimits.None, (await queue.GetQueueStatsAsync()).SingleOrDefault()?.Limits ?? QueueLimits.None);
    }

    private static async Task<string?[]> KeysOfAsync(StoreUnderTest queue, IReadOnlyList<AcquiredJob> jobs)
    {
        var keys = new string?[jobs.Count];
        for (var i = 0; i < jobs.Count; i++) keys[i] = (await queue.GetJobAsync(jobs[i].Id))!.PartitionKey;
        return keys;
    }
}
