using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Scheduling.QueueContract;

/// <summary>
/// The queue contract, written once. Each implementation derives from this class and supplies a
/// fresh, empty queue on a fake clock; every test here then runs against it.
/// </summary>
public abstract partial class JobQueueContractTests
{
    protected static readonly DateTimeOffset Start = new(2026, 1, 5, 12, 0, 0, TimeSpan.Zero);
    protected static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    protected FakeTimeProvider Time { get; } = new(Start);

    /// <summary>A new, empty queue whose clock is <see cref="Time"/>.</summary>
    protected abstract Task<IJobQueue> CreateStoreAsync(JobQueueOptions rules);

    /// <summary>A fresh, empty store with these rules, both of its sides.</summary>
    protected async Task<StoreUnderTest> CreateQueueAsync(JobQueueOptions rules) => new(await CreateStoreAsync(rules));

    protected Task<StoreUnderTest> CreateQueueAsync() =>
        CreateQueueAsync(new JobQueueOptions { Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.FromSeconds(2), MaxDelay = TimeSpan.FromSeconds(60), Jitter = RetryJitter.None } });

    /// <summary>Checks the store's own invariants after a test (e.g. with a consistency query); nothing by default.</summary>
    protected virtual Task AssertConsistentAsync(StoreUnderTest queue) => Task.CompletedTask;

    protected static AcquireRequest Take(int max = 10, string queue = "default", string worker = "w1") => new(queue, worker, max, Lease);

    [Fact]
    public async Task Enqueued_job_is_stored_with_its_fields_and_defaults()
    {
        var queue = await CreateQueueAsync();
        var result = await queue.EnqueueAsync(new JobRequest("email", new { To = "a@example.com", Count = 3 }) { Priority = 5, MaxAttempts = 3 });

        Assert.True(result.Created);
        var job = await queue.GetJobAsync(result.JobId);
        Assert.NotNull(job);
        Assert.Equal("email", job.Kind);
        Assert.Equal("default", job.Queue);
        Assert.Equal(JobState.Available, job.State);
        Assert.Equal(5, job.Priority);
        Assert.Equal(3, job.MaxAttempts);
        Assert.Equal(0, job.Attempt);
        Assert.Equal(Start, job.RunAt);
        Assert.Equal(Start, job.CreatedAt);
        Assert.Contains("\"to\"", job.PayloadJson, StringComparison.Ordinal);
        Assert.Contains("a@example.com", job.PayloadJson, StringComparison.Ordinal);
        Assert.Empty(job.Errors);
        Assert.Null(await queue.GetJobAsync(result.JobId + 1000));
    }

    [Fact]
    public async Task Acquire_takes_larger_priority_first_then_earlier_due_then_smaller_id()
    {
        var queue = await CreateQueueAsync();
        var low = await queue.EnqueueAsync(new JobRequest("k") { Priority = 0 });
        var highLater = await queue.EnqueueAsync(new JobRequest("k") { Priority = 10, RunAt = Start.AddSeconds(-1) });
        var highEarlier = await queue.EnqueueAsync(new JobRequest("k") { Priority = 10, RunAt = Start.AddSeconds(-5) });
        var lowSecond = await queue.EnqueueAsync(new JobRequest("k") { Priority = 0 });
        var negative = await queue.EnqueueAsync(new JobRequest("k") { Priority = -3, RunAt = Start.AddHours(-1) });

        var jobs = await queue.AcquireAsync(Take(10));

        Assert.Equal([highEarlier.JobId, highLater.JobId, low.JobId, lowSecond.JobId, negative.JobId], jobs.Select(j => j.Id));
    }

    [Fact]
    public async Task Acquire_leases_at_most_the_batch_and_never_hands_a_job_out_twice()
    {
        var queue = await CreateQueueAsync();
        await queue.EnqueueManyAsync(Enumerable.Range(0, 7).Select(i => new JobRequest("k", i)).ToArray());

        var first = await queue.AcquireAsync(Take(3, worker: "a"));
        var second = await queue.AcquireAsync(Take(3, worker: "b"));
        var third = await queue.AcquireAsync(Take(3, worker: "c"));
        var none = await queue.AcquireAsync(Take(3, worker: "d"));

        Assert.Equal(3, first.Count);
        Assert.Equal(3, second.Count);
        Assert.Single(third);
        Assert.Empty(none);
        var all = first.Concat(second).Concat(third).Select(j => j.Id).ToList();
        Assert.Equal(7, all.Distinct().Count());
        Assert.All(first, j => Assert.Equal(1, j.Attempt));
        Assert.All(first, j => Assert.Equal(Start + Lease, j.LeaseExpiresAt));
        var running = await queue.GetJobAsync(first[0].Id);
        Assert.Equal(JobState.Running, running!.State);
        Assert.Equal("a", running.LockedBy);
    }

    [Fact]
    public async Task Jobs_not_yet_due_are_scheduled_and_become_available_when_due()
    {
        var queue = await CreateQueueAsync();
        var later = await queue.EnqueueAsync(new JobRequest("k") { RunAt = Start.AddMinutes(5) });

        Assert.Equal(JobState.Scheduled, (await queue.GetJobAsync(later.JobId))!.State);
        Assert.Empty(await queue.AcquireAsync(Take()));

        Time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(JobState.Available, (await queue.GetJobAsync(later.JobId))!.State);
        Assert.Equal([later.JobId], (await queue.AcquireAsync(Take())).Select(j => j.Id));
    }

    [Fact]
    public async Task Queues_are_separate()
    {
        var queue = await CreateQueueAsync();
        var mail = await queue.EnqueueAsync(new JobRequest("k") { Queue = "mail" });
        await queue.EnqueueAsync(new JobRequest("k") { Queue = "reports" });

        var jobs = await queue.AcquireAsync(Take(10, queue: "mail"));

        Assert.Equal([mail.JobId], jobs.Select(j => j.Id));
        Assert.Empty(await queue.AcquireAsync(Take(10, queue: "default")));
    }

    [Fact]
    public async Task Completed_job_is_succeeded_and_never_delivered_again()
    {
        var queue = await CreateQueueAsync();
        var id = (await queue.EnqueueAsync(new JobRequest("k"))).JobId;
        var job = Assert.Single(await queue.AcquireAsync(Take()));

        Time.Advance(TimeSpan.FromSeconds(3));
        var result = await queue.CompleteAsync(job.Lease);

        Assert.Equal(new AckResult(id, true, JobState.Succeeded), result);
        var stored = await queue.GetJobAsync(id);
        Assert.Equal(JobState.Succeeded, stored!.State);
        Assert.Equal(Start.AddSeconds(3), stored.FinalizedAt);
        Assert.Null(stored.LockedBy);
        Time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(0, await queue.RescueExpiredLeasesAsync());
        Assert.Empty(await queue.AcquireAsync(Take()));
        Assert.False((await queue.CompleteAsync(job.Lease)).Applied); // a second acknowledgement changes nothing
    }

    [Fact]
    public async Task Failure_retries_with_exponential_backoff_then_goes_dead_keeping_each_error()
    {
        var queue = await CreateQueueAsync();
        var id = (await queue.EnqueueAsync(new JobRequest("k") { MaxAttempts = 3 })).JobId;

        var first = Assert.Single(await queue.AcquireAsync(Take()));
        Assert.Equal(new AckResult(id, true, JobState.Scheduled), await queue.FailAsync(first.Lease, "boom 1"));
        Assert.Equal(Start.AddSeconds(2), (await queue.GetJobAsync(id))!.RunAt); // base delay 2 s
        Assert.Empty(await queue.AcquireAsync(Take()));

        Time.Advance(TimeSpan.FromSeconds(2));
        var second = Assert.Single(await queue.AcquireAsync(Take()));
        Assert.Equal(2, second.Attempt);
        await queue.FailAsync(second.Lease, "boom 2");
        Assert.Equal(Start.AddSeconds(2 + 4), (await queue.GetJobAsync(id))!.RunAt); // doubled

        Time.Advance(TimeSpan.FromSeconds(4));
        var third = Assert.Single(await queue.AcquireAsync(Take()));
        Assert.Equal(new AckResult(id, true, JobState.Dead), await queue.FailAsync(third.Lease, "boom 3"));

        var dead = await queue.GetJobAsync(id);
        Assert.Equal(JobState.Dead, dead!.State);
        Assert.Equal(3, dead.Attempt);
        Assert.Equal(["boom 1", "boom 2", "boom 3"], dead.Errors.Select(e => e.Message));
        Assert.Equal([1, 2, 3], dead.Errors.Select(e => e.Attempt));
        Assert.Equal(Start.AddSeconds(6), dead.Errors[2].At);
        Time.Advance(TimeSpan.FromDays(1));
        Assert.Empty(await queue.AcquireAsync(Take()));
    }

    [Fact]
    public async Task A_permanent_failure_is_dead_at_once()
    {
        var queue = await CreateQueueAsync();
        var id = (await queue.EnqueueAsync(new JobRequest("k"))).JobId;
        var job = Assert.Single(await queue.AcquireAsync(Take()));

        var result = await queue.FailAsync(job.Lease, "bad input", retryable: false);

        Assert.Equal(JobState.Dead, result.State);
        Assert.Equal(1, (await queue.GetJobAsync(id))!.Attempt);
    }

    [Fact]
    public async Task Errors_kept_are_bounded_to_the_most_recent()
    {
        var queue = await CreateQueueAsync(new JobQueueOptions { MaxErrorsKept = 2, Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.Zero, MaxDelay = TimeSpan.Zero, Jitter = RetryJitter.None } });
        var id = (await queue.EnqueueAsync(new JobRequest("k") { MaxAttempts = 5 })).JobId;
        for (var i = 1; i <= 4; i++)
        {
            var job = Assert.Single(await queue.AcquireAsync(Take()));
            await queue.FailAsync(job.Lease, $"e{i}");
        }

        var stored = await queue.GetJobAsync(id);
        Assert.Equal(["e3", "e4"], stored!.Errors.Select(e => e.Message));
    }

    [Fact]
    public async Task Expired_lease_is_rescued_and_the_stale_worker_cannot_finish_the_job()
    {
        var queue = await CreateQueueAsync();
        var id = (await queue.EnqueueAsync(new JobRequest("k"))).JobId;
        var stale = Assert.Single(await queue.AcquireAsync(Take(worker: "crashed")));
        Assert.Single(await queue.HeartbeatAsync("crashed", [stale.Lease], Lease)); // it started: its attempt is used

        Time.Advance(Lease - TimeSpan.FromSeconds(1));
        Assert.Equal(0, await queue.RescueExpiredLeasesAsync()); // not yet expired
        Time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(1, await queue.RescueExpiredLeasesAsync());

        var rescued = await queue.GetJobAsync(id);
        Assert.Equal(JobState.Available, rescued!.State);
        Assert.Contains("crashed", Assert.Single(rescued.Errors).Message, StringComparison.Ordinal);

        var fresh = Assert.Single(await queue.AcquireAsync(Take(worker: "healthy")));
        Assert.Equal(2, fresh.Attempt);
        Assert.False((await queue.CompleteAsync(stale.Lease)).Applied);
        Assert.False((await queue.FailAsync(stale.Lease, "late")).Applied);
        Assert.Equal(JobState.Running, (await queue.GetJobAsync(id))!.State);
        Assert.True((await queue.CompleteAsync(fresh.Lease)).Applied);
    }

    [Fact]
    public async Task Rescue_of_the_last_attempt_makes_the_job_dead()
    {
        var queue = await CreateQueueAsync();
        var id = (await queue.EnqueueAsync(new JobRequest("k") { MaxAttempts = 1 })).JobId;
        var job = Assert.Single(await queue.AcquireAsync(Take()));
        Assert.Single(await queue.HeartbeatAsync("w1", [job.Lease], Lease));

        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        Assert.Equal(1, await queue.RescueExpiredLeasesAsync());

        Assert.Equal(JobState.Dead, (await queue.GetJobAsync(id))!.State);
    }

    [Fact]
    public async Task A_job_leased_but_never_reported_started_is_rescued_uncharged_a_bounded_number_of_times()
    {
        var queue = await CreateQueueAsync();
        var id = (await queue.EnqueueAsync(new JobRequest("k") { MaxAttempts = 1 })).JobId;

        // Leased and never heartbeated (fetched ahead when its host died): given back as it was, no error.
        for (var i = 0; i < JobTransitions.MaxUnstartedRescues; i++)
        {
            Assert.Single(await queue.AcquireAsync(Take()));
            Time.Advance(Lease + TimeSpan.FromSeconds(1));
            Assert.Equal(1, await queue.RescueExpiredLeasesAsync());
            var back = (await queue.GetJobAsync(id))!;
            Assert.Equal((JobState.Available, 0), (back.State, back.Attempt));
            Assert.Empty(back.Errors);
        }

        // A job that keeps killing its host before its first heartbeat is charged from then on.
        Assert.Single(await queue.AcquireAsync(Take()));
        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        Assert.Equal(1, await queue.RescueExpiredLeasesAsync());
        var charged = (await queue.GetJobAsync(id))!;
        Assert.Equal((JobState.Dead, 1), (charged.State, charged.Attempt));
        Assert.Single(charged.Errors);
    }

    [Fact]
    public async Task Heartbeat_extends_only_the_leases_the_worker_names_and_holds()
    {
        var queue = await CreateQueueAsync();
        await queue.EnqueueManyAsync([new JobRequest("k"), new JobRequest("k"), new JobRequest("k"), new JobRequest("k")]);
        var mine = await queue.AcquireAsync(Take(2, worker: "me"));
        var theirs = Assert.Single(await queue.AcquireAsync(Take(1, worker: "other")));
        var orphan = Assert.Single(await queue.AcquireAsync(Take(1, worker: "me"))); // acquired, but the reply "never arrived"

        Time.Advance(TimeSpan.FromSeconds(20));
        var held = await queue.HeartbeatAsync("me", [.. mine.Select(j => j.Lease), theirs.Lease, theirs.Lease with { JobId = 999_999 }], Lease);
        Assert.Equal(mine.Select(j => j.Id).Order(), held.Select(h => h.JobId).Order()); // not the other worker's, not unknown ids
        Assert.All(held, h => Assert.False(h.CancellationRequested));
        Assert.Empty(await queue.HeartbeatAsync("me", [mine[0].Lease with { Token = Guid.NewGuid() }], Lease)); // a stale token holds nothing
        Assert.Empty(await queue.HeartbeatAsync("me", [], Lease));

        Time.Advance(TimeSpan.FromSeconds(20)); // 40 s after acquisition: the other worker's lease and the orphan ran out
        Assert.Equal(2, await queue.RescueExpiredLeasesAsync());
        Assert.Equal(JobState.Available, (await queue.GetJobAsync(theirs.Id))!.State);
        Assert.Equal(JobState.Available, (await queue.GetJobAsync(orphan.Id))!.State);
        foreach (var job in mine) Assert.Equal(JobState.Running, (await queue.GetJobAsync(job.Id))!.State);
    }

    [Fact]
    public async Task Acknowledge_and_acquire_applies_the_acks_then_leases_the_next_jobs()
    {
        var queue = await CreateQueueAsync();
        var ids = (await queue.EnqueueManyAsync([new JobRequest("k") { LocalKey = "a" }, new JobRequest("k"), new JobRequest("k"), new JobRequest("child") { DependsOn = [JobDependency.OnRequest("a")], Priority = -1 }]))
            .Select(r => r.JobId).ToArray();
        var first = Assert.Single(await queue.AcquireAsync(Take(1)));
        var stale = first.Lease with { Token = Guid.NewGuid() };

        var result = await queue.AcknowledgeAndAcquireAsync([JobAck.Success(first.Lease), stale with { JobId = ids[1] } is var s ? JobAck.Success(s) : default!], Take(10));

        Assert.Equal([new AckResult(ids[0], true, JobState.Succeeded), new AckResult(ids[1], false, null)], result.Acknowledged);
        // The child released by the acknowledgement is acquired in the same call, after the others by priority.
        Assert.Equal([ids[1], ids[2], ids[3]], result.Acquired.Select(j => j.Id));

        var nothingToAck = await queue.AcknowledgeAndAcquireAsync([], Take(10));
        Assert.Empty(nothingToAck.Acknowledged);
        Assert.Empty(nothingToAck.Acquired);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Released_job_is_due_at_once_and_its_attempt_does_not_count()
    {
        var queue = await CreateQueueAsync();
        var id = (await queue.EnqueueAsync(new JobRequest("k"))).JobId;
        var job = Assert.Single(await queue.AcquireAsync(Take()));

        var result = Assert.Single(await queue.AcknowledgeAsync([new JobAck(job.Lease, JobAckKind.Released)]));

        Assert.Equal(new AckResult(id, true, JobState.Available), result);
        Assert.Equal(0, (await queue.GetJobAsync(id))!.Attempt);
        var again = Assert.Single(await queue.AcquireAsync(Take(worker: "w2")));
        Assert.Equal(1, again.Attempt);
        Assert.False((await queue.CompleteAsync(job.Lease)).Applied);
    }

    [Fact]
    public async Task Cancel_before_start_cancels_and_while_running_asks_the_worker()
    {
        var queue = await CreateQueueAsync();
        var waiting = (await queue.EnqueueAsync(new JobRequest("k") { RunAt = Start.AddHours(1) })).JobId;
        var running = (await queue.EnqueueAsync(new JobRequest("k"))).JobId;
        var job = Assert.Single(await queue.AcquireAsync(Take()));

        Assert.Equal(CancelOutcome.Cancelled, await queue.CancelAsync(waiting));
        Assert.Equal(JobState.Cancelled, (await queue.GetJobAsync(waiting))!.State);
        Assert.Equal(CancelOutcome.AlreadyFinished, await queue.CancelAsync(waiting));
        Assert.Equal(CancelOutcome.NotFound, await queue.CancelAsync(running + 1000));

        Assert.Equal(CancelOutcome.CancellationRequested, await queue.CancelAsync(running));
        var stored = await queue.GetJobAsync(running);
        Assert.Equal(JobState.Running, stored!.State);
        Assert.True(stored.CancellationRequested);
        Assert.True(Assert.Single(await queue.HeartbeatAsync("w1", [job.Lease], Lease)).CancellationRequested);

        var ack = Assert.Single(await queue.AcknowledgeAsync([new JobAck(job.Lease, JobAckKind.Cancelled)]));
        Assert.Equal(JobState.Cancelled, ack.State);
        Time.Advance(TimeSpan.FromHours(2));
        Assert.Empty(await queue.AcquireAsync(Take()));
    }

    [Fact]
    public async Task A_failure_after_cancellation_was_requested_is_not_retried()
    {
        var queue = await CreateQueueAsync();
        var id = (await queue.EnqueueAsync(new JobRequest("k"))).JobId;
        var job = Assert.Single(await queue.AcquireAsync(Take()));
        await queue.CancelAsync(id);

        Assert.Equal(JobState.Cancelled, (await queue.FailAsync(job.Lease, "stopped")).State);
    }

    [Fact]
    public async Task Unique_key_returns_the_active_job_and_is_free_again_once_it_finishes()
    {
        var queue = await CreateQueueAsync();
        var first = await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "report:2026-01-05" });
        var again = await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "report:2026-01-05" });
        var other = await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "report:2026-01-06" });

        Assert.True(first.Created);
        Assert.Equal(new EnqueueResult(first.JobId, false), again);
        Assert.True(other.Created);

        var reject = await Assert.ThrowsAsync<DuplicateJobException>(() => queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "report:2026-01-05", OnUniqueConflict = UniqueKeyConflict.Reject }).AsTask());
        Assert.Equal(first.JobId, reject.ExistingJobId);

        var jobs = await queue.AcquireAsync(Take(1));
        Assert.Equal(first.JobId, Assert.Single(jobs).Id);
        Assert.Equal(new EnqueueResult(first.JobId, false), await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "report:2026-01-05" })); // running is active
        await queue.CompleteAsync(jobs[0].Lease);

        var next = await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "report:2026-01-05" });
        Assert.True(next.Created);
        Assert.NotEqual(first.JobId, next.JobId);
    }

    [Fact]
    public async Task Any_state_unique_key_stays_taken_after_the_job_finishes_and_is_separate_from_active_keys()
    {
        var queue = await CreateQueueAsync();
        var tick = new JobRequest("k") { UniqueKey = "tick:09:00", UniqueScope = UniqueKeyScope.AnyState };
        var first = await queue.EnqueueAsync(tick);
        var job = Assert.Single(await queue.AcquireAsync(Take()));
        await queue.CompleteAsync(job.Lease);

        Assert.Equal(new EnqueueResult(first.JobId, false), await queue.EnqueueAsync(tick));
        Assert.Equal(first.JobId, (await Assert.ThrowsAsync<DuplicateJobException>(() => queue.EnqueueAsync(tick with { OnUniqueConflict = UniqueKeyConflict.Reject }).AsTask())).ExistingJobId);
        Assert.True((await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "tick:09:00" })).Created); // the active-scope key space is separate
        Assert.Equal("request.UniqueScope", (await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.EnqueueAsync(tick with { UniqueScope = (UniqueKeyScope)9 }).AsTask())).ParamName);
    }

    [Fact]
    public async Task Enqueue_many_returns_ids_in_request_order_and_keeps_that_order_for_equal_jobs()
    {
        var queue = await CreateQueueAsync();
        var requests = Enumerable.Range(0, 40).Select(i => new JobRequest("bulk", new { I = i })).ToArray();

        var results = await queue.EnqueueManyAsync(requests);

        Assert.Equal(40, results.Count);
        Assert.All(results, r => Assert.True(r.Created));
        Assert.Equal(results.Select(r => r.JobId).Order(), results.Select(r => r.JobId));
        var jobs = await queue.AcquireAsync(Take(100));
        Assert.Equal(results.Select(r => r.JobId), jobs.Select(j => j.Id));
        using var payload = System.Text.Json.JsonDocument.Parse(jobs[39].PayloadJson!);
        Assert.Equal(39, payload.RootElement.GetProperty("i").GetInt32());
    }

    [Fact]
    public async Task Enqueue_many_with_unique_keys_resolves_repeats_within_the_batch()
    {
        var queue = await CreateQueueAsync();
        var existing = await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "a" });

        var results = await queue.EnqueueManyAsync([new JobRequest("k") { UniqueKey = "a" }, new JobRequest("k") { UniqueKey = "b" }, new JobRequest("k") { UniqueKey = "b" }, new JobRequest("k")]);

        Assert.Equal(new EnqueueResult(existing.JobId, false), results[0]);
        Assert.True(results[1].Created);
        Assert.Equal(new EnqueueResult(results[1].JobId, false), results[2]);
        Assert.True(results[3].Created);
        Assert.Equal(3, (await queue.AcquireAsync(Take(10))).Count);
    }

    [Fact]
    public async Task A_job_acknowledged_twice_in_one_batch_takes_the_first_and_reports_the_second_as_not_applied()
    {
        var queue = await CreateQueueAsync();
        await queue.EnqueueManyAsync([new JobRequest("k"), new JobRequest("k")]);
        var jobs = await queue.AcquireAsync(Take(2));

        var results = await queue.AcknowledgeAsync(
            [JobAck.Failure(jobs[0].Lease, "first: fails", retryable: false), JobAck.Success(jobs[1].Lease), JobAck.Success(jobs[0].Lease)]);

        Assert.Equal((jobs[0].Id, true, (JobState?)JobState.Dead), (results[0].JobId, results[0].Applied, results[0].State));
        Assert.Equal((jobs[1].Id, true, (JobState?)JobState.Succeeded), (results[1].JobId, results[1].Applied, results[1].State));
        Assert.Equal((jobs[0].Id, false, (JobState?)null), (results[2].JobId, results[2].Applied, results[2].State));
        Assert.Equal(JobState.Dead, (await queue.GetJobAsync(jobs[0].Id))!.State);
    }

    [Fact]
    public async Task A_stale_lease_acknowledged_before_the_live_one_in_one_batch_does_not_hide_it()
    {
        // Found by the model-based property: PostgreSQL took the stale acknowledgement as "the first"
        // and dropped the live one, so the job stayed running until its lease ran out.
        var queue = await CreateQueueAsync();
        await queue.EnqueueAsync(new JobRequest("k"));
        var stale = Assert.Single(await queue.AcquireAsync(Take(1))).Lease;
        Assert.True(Assert.Single(await queue.AcknowledgeAsync([new JobAck(stale, JobAckKind.Released)])).Applied);
        var live = Assert.Single(await queue.AcquireAsync(Take(1))).Lease;

        var results = await queue.AcknowledgeAsync([JobAck.Success(stale), JobAck.Success(live)]);

        Assert.Equal((false, true), (results[0].Applied, results[1].Applied));
        Assert.Equal(JobState.Succeeded, (await queue.GetJobAsync(live.JobId))!.State);
    }

    [Fact]
    public async Task Acknowledge_and_acquire_with_nothing_to_acknowledge_just_acquires()
    {
        // Found by the concurrent property: PostgreSQL read the acquired rows as acknowledgement results.
        var queue = await CreateQueueAsync();
        var id = (await queue.EnqueueAsync(new JobRequest("k"))).JobId;

        var result = await queue.AcknowledgeAndAcquireAsync([], Take(5));

        Assert.Empty(result.Acknowledged);
        Assert.Equal(id, Assert.Single(result.Acquired).Id);
    }

    [Fact]
    public async Task One_call_takes_at_most_the_per_call_limit_of_jobs_and_says_so()
    {
        var queue = await CreateQueueAsync();
        var requests = Enumerable.Range(0, JobValidation.MaxJobsPerCall + 1).Select(_ => new JobRequest("k")).ToArray();

        var error = await Assert.ThrowsAsync<ArgumentException>(async () => await queue.EnqueueManyAsync(requests));

        Assert.Equal("requests", error.ParamName);
        Assert.Contains("the limit is 100,000", error.Message, StringComparison.Ordinal);
        Assert.Empty(await queue.AcquireAsync(Take(1)));
    }

    [Fact]
    public async Task Enqueue_many_is_all_or_nothing()
    {
        var queue = await CreateQueueAsync();
        await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "taken" });
        var before = await queue.AcquireAsync(Take(10));
        await queue.CompleteAsync(before[0].Lease);
        await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "held" });

        var invalid = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            queue.EnqueueManyAsync([new JobRequest("k"), new JobRequest("k") { MaxAttempts = 0 }]).AsTask());
        Assert.Equal("requests[1].MaxAttempts", invalid.ParamName);
        await Assert.ThrowsAsync<DuplicateJobException>(() =>
            queue.EnqueueManyAsync([new JobRequest("k") { UniqueKey = "fresh" }, new JobRequest("k") { UniqueKey = "held", OnUniqueConflict = UniqueKeyConflict.Reject }]).AsTask());

        var jobs = await queue.AcquireAsync(Take(10));
        Assert.Equal("held", (await queue.GetJobAsync(Assert.Single(jobs).Id))!.UniqueKey);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Dead_job_can_be_redriven_with_its_attempts_reset()
    {
        var queue = await CreateQueueAsync();
        var id = (await queue.EnqueueAsync(new JobRequest("k") { MaxAttempts = 1 })).JobId;
        Assert.False(await queue.RedriveAsync(id)); // not dead
        var job = Assert.Single(await queue.AcquireAsync(Take()));
        await queue.FailAsync(job.Lease, "once");

        Assert.True(await queue.RedriveAsync(id));

        var again = Assert.Single(await queue.AcquireAsync(Take()));
        Assert.Equal(1, again.Attempt);
        Assert.Single((await queue.GetJobAsync(id))!.Errors);
        Assert.False(await queue.RedriveAsync(id + 1000));
    }

    [Fact]
    public async Task A_dead_job_is_not_redriven_while_another_active_job_holds_its_unique_key()
    {
        var queue = await CreateQueueAsync();
        var dead = (await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "nightly", MaxAttempts = 1 })).JobId;
        await queue.FailAsync(Assert.Single(await queue.AcquireAsync(Take())).Lease, "once");
        var successor = await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "nightly" });
        Assert.True(successor.Created);

        Assert.False(await queue.RedriveAsync(dead));
        Assert.Equal(JobState.Dead, (await queue.GetJobAsync(dead))!.State);

        await queue.CompleteAsync(Assert.Single(await queue.AcquireAsync(Take())).Lease);
        Assert.True(await queue.RedriveAsync(dead));
        Assert.Equal(JobState.Available, (await queue.GetJobAsync(dead))!.State);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task A_batch_of_acknowledgements_applies_each_and_reports_stale_ones()
    {
        var queue = await CreateQueueAsync();
        await queue.EnqueueManyAsync(Enumerable.Range(0, 4).Select(_ => new JobRequest("k")).ToArray());
        var jobs = await queue.AcquireAsync(Take(4));
        var forged = jobs[3].Lease with { Token = Guid.NewGuid() };

        var results = await queue.AcknowledgeAsync([
            JobAck.Success(jobs[0].Lease),
            JobAck.Failure(jobs[1].Lease, "x"),
            new JobAck(jobs[2].Lease, JobAckKind.Released),
            JobAck.Success(forged),
        ]);

        Assert.Equal([JobState.Succeeded, JobState.Scheduled, JobState.Available], results.Take(3).Select(r => r.State!.Value));
        Assert.False(results[3].Applied);
        Assert.Equal(JobState.Running, (await queue.GetJobAsync(jobs[3].Id))!.State);
    }

    [Theory]
    [InlineData("", "request.Kind")]
    [InlineData("   ", "request.Kind")]
    [InlineData("bad\nkind", "request.Kind")]
    public async Task Invalid_kind_is_rejected_naming_the_argument(string kind, string parameter)
    {
        var queue = await CreateQueueAsync();
        var ex = await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.EnqueueAsync(new JobRequest(kind)).AsTask());
        Assert.Equal(parameter, ex.ParamName);
        await AssertEmptyAsync(queue);
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("semi;colon")]
    [InlineData("quote'")]
    [InlineData("ünicode")]
    [InlineData("a-queue-name-that-is-far-too-long-to-be-accepted-by-the-validation-rule")]
    public async Task Invalid_queue_name_is_rejected_naming_the_argument(string name)
    {
        var queue = await CreateQueueAsync();
        var ex = await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.EnqueueAsync(new JobRequest("k") { Queue = name }).AsTask());
        Assert.Equal("request.Queue", ex.ParamName);
        await AssertEmptyAsync(queue);
    }

    [Fact]
    public async Task Other_invalid_requests_are_rejected_naming_the_argument_and_write_nothing()
    {
        var queue = await CreateQueueAsync(new JobQueueOptions { MaxPayloadBytes = 100 });
        async Task<string?> Param(JobRequest r) => (await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.EnqueueAsync(r).AsTask())).ParamName;

        Assert.Equal("request", (await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.EnqueueAsync(null!).AsTask())).ParamName);
        Assert.Equal("request.Kind", await Param(new JobRequest(null!)));
        Assert.Equal("request.Queue", await Param(new JobRequest("k") { Queue = null! }));
        Assert.Equal("request.MaxAttempts", await Param(new JobRequest("k") { MaxAttempts = 0 }));
        Assert.Equal("request.MaxAttempts", await Param(new JobRequest("k") { MaxAttempts = -5 }));
        Assert.Equal("request.Priority", await Param(new JobRequest("k") { Priority = 40_000 }));
        Assert.Equal("request.Payload", await Param(new JobRequest("k", new string('x', 200))));
        Assert.Equal("request.Payload", await Param(new JobRequest("k", new SelfReferencing())));
        Assert.Equal("request.Payload", await Param(new JobRequest("k", "nul\0char")));
        Assert.Equal("request.UniqueKey", await Param(new JobRequest("k") { UniqueKey = "" }));
        Assert.Equal("request.OnUniqueConflict", await Param(new JobRequest("k") { UniqueKey = "u", OnUniqueConflict = (UniqueKeyConflict)7 }));
        await AssertEmptyAsync(queue);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Payloads_at_the_limit_pass_and_one_byte_over_fails()
    {
        var queue = await CreateQueueAsync(new JobQueueOptions { MaxPayloadBytes = 64 });
        var atLimit = new string('x', 62); // a JSON string: 62 characters plus two quotes = 64 bytes

        var id = (await queue.EnqueueAsync(new JobRequest("k", atLimit))).JobId;

        Assert.Equal(atLimit, System.Text.Json.JsonSerializer.Deserialize<string>((await queue.GetJobAsync(id))!.PayloadJson!));
        var over = await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.EnqueueAsync(new JobRequest("k", atLimit + "x")).AsTask());
        Assert.Equal("request.Payload", over.ParamName);
        Assert.Contains("65 bytes", over.Message, StringComparison.Ordinal);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Text_that_is_not_valid_unicode_is_rejected_and_valid_unicode_round_trips()
    {
        var queue = await CreateQueueAsync();
        var unpaired = "bad " + '\uD800' + " text";
        var lowOnly = "bad " + '\uDC00' + " text";
        async Task<string?> Param(JobRequest r) => (await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.EnqueueAsync(r).AsTask())).ParamName;

        Assert.Equal("request.Kind", await Param(new JobRequest(unpaired)));
        Assert.Equal("request.Command", await Param(new JobRequest("k") { Command = lowOnly }));
        Assert.Equal("request.Description", await Param(new JobRequest("k") { Description = unpaired }));
        Assert.Equal("request.UniqueKey", await Param(new JobRequest("k") { UniqueKey = unpaired }));
        // Documented behaviour: System.Text.Json writes an unpaired surrogate in a payload string as U+FFFD.
        var replaced = (await queue.EnqueueAsync(new JobRequest("k", new { Text = unpaired }))).JobId;
        Assert.Equal("bad \uFFFD text", System.Text.Json.JsonDocument.Parse((await queue.GetJobAsync(replaced))!.PayloadJson!).RootElement.GetProperty("text").GetString());

        var emoji = "héllo 👋 \\uD800 as text";
        var id = (await queue.EnqueueAsync(new JobRequest("k", new { Text = emoji }) { Command = emoji, Description = emoji })).JobId;
        var stored = (await queue.GetJobAsync(id))!;
        Assert.Equal(emoji, stored.Command);
        Assert.Equal(emoji, System.Text.Json.JsonDocument.Parse(stored.PayloadJson!).RootElement.GetProperty("text").GetString());
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Absurd_run_at_times_are_stored_as_given()
    {
        var queue = await CreateQueueAsync();
        var farFuture = (await queue.EnqueueAsync(new JobRequest("k") { RunAt = new DateTimeOffset(9000, 1, 1, 0, 0, 0, TimeSpan.Zero) })).JobId;
        var farPast = (await queue.EnqueueAsync(new JobRequest("k") { RunAt = new DateTimeOffset(1900, 1, 1, 0, 0, 0, TimeSpan.FromHours(5)) })).JobId;

        Assert.Equal(JobState.Scheduled, (await queue.GetJobAsync(farFuture))!.State);
        Assert.Equal(new DateTimeOffset(1899, 12, 31, 19, 0, 0, TimeSpan.Zero), (await queue.GetJobAsync(farPast))!.RunAt);
        Assert.Equal([farPast], (await queue.AcquireAsync(Take())).Select(j => j.Id));
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Invalid_acquire_requests_are_rejected_naming_the_argument()
    {
        var queue = await CreateQueueAsync();
        Assert.Equal("request.MaxJobs", (await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.AcquireAsync(new AcquireRequest("default", "w", 0, Lease)).AsTask())).ParamName);
        Assert.Equal("request.WorkerId", (await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.AcquireAsync(new AcquireRequest("default", "", 1, Lease)).AsTask())).ParamName);
        Assert.Equal("request.LeaseDuration", (await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.AcquireAsync(new AcquireRequest("default", "w", 1, TimeSpan.Zero)).AsTask())).ParamName);
        Assert.Equal("request.Queue", (await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.AcquireAsync(new AcquireRequest("no way", "w", 1, Lease)).AsTask())).ParamName);
    }

    private async Task AssertEmptyAsync(StoreUnderTest queue)
    {
        Time.Advance(TimeSpan.FromDays(365));
        Assert.Empty(await queue.AcquireAsync(Take(100)));
        Assert.Null(await queue.GetJobAsync(1));
    }

    private sealed class SelfReferencing
    {
        public SelfReferencing Self => this;
    }
}
