using Xunit;

namespace Scheduling.QueueContract;

/// <summary>Batches: live counts moved by every way a member ends, callbacks released once, nesting, adding while open.</summary>
public abstract partial class JobQueueContractTests
{
    private static BatchRequest Batch(int members, string kind = "member") =>
        new(Enumerable.Range(0, members).Select(i => new JobRequest(kind, i)).ToArray())
        {
            OnSuccess = new JobRequest("on-success"),
            OnComplete = new JobRequest("on-complete"),
        };

    /// <summary>Takes every due job of <paramref name="kind"/> and acknowledges each with <paramref name="ack"/>.</summary>
    private static async Task<long[]> RunAllAsync(StoreUnderTest queue, Func<AcquiredJob, JobAck> ack, string? kind = null)
    {
        var jobs = (await queue.AcquireAsync(Take(1000))).ToArray();
        var mine = jobs.Where(j => kind is null || j.Kind == kind).ToArray();
        var others = jobs.Except(mine).Select(j => new JobAck(j.Lease, JobAckKind.Released)).ToArray();
        if (others.Length > 0) await queue.AcknowledgeAsync(others);
        if (mine.Length > 0) await queue.AcknowledgeAsync(mine.Select(ack).ToArray());
        return mine.Select(j => j.Id).ToArray();
    }

    [Fact]
    public async Task A_batch_counts_its_members_live_and_releases_both_callbacks_once_when_all_succeeded()
    {
        var queue = await CreateQueueAsync();
        var batch = await queue.EnqueueBatchAsync(Batch(5));

        Assert.Equal(5, batch.Jobs.Count);
        var info = (await queue.GetBatchAsync(batch.BatchId))!;
        Assert.Equal((5, 5, 0, 0, 0, (DateTimeOffset?)null), (info.Total, info.Pending, info.Succeeded, info.Failed, info.Cancelled, info.SettledAt));
        Assert.Equal(JobState.Waiting, (await queue.GetJobAsync(batch.OnSuccessJobId!.Value))!.State);
        Assert.Equal(batch.BatchId, (await queue.GetJobAsync(batch.Jobs[0].JobId))!.BatchId);

        // The callbacks are not due while members are pending: only members are handed out.
        var firstThree = (await queue.AcquireAsync(Take(3))).ToArray();
        Assert.All(firstThree, j => Assert.Equal(("member", batch.BatchId), (j.Kind, j.BatchId)));
        await queue.AcknowledgeAsync(firstThree.Select(j => JobAck.Success(j.Lease)).ToArray());
        info = (await queue.GetBatchAsync(batch.BatchId))!;
        Assert.Equal((2, 3), (info.Pending, info.Succeeded));

        await RunAllAsync(queue, j => JobAck.Success(j.Lease), "member");
        info = (await queue.GetBatchAsync(batch.BatchId))!;
        Assert.Equal((0, 5), (info.Pending, info.Succeeded));
        Assert.NotNull(info.SettledAt);
        Assert.True(info.IsSucceeded);

        var callbacks = (await queue.AcquireAsync(Take())).ToArray();
        Assert.Equal(["on-complete", "on-success"], callbacks.Select(j => j.Kind).Order());
        Assert.All(callbacks, j => Assert.Equal(batch.BatchId, j.BatchId));
        await queue.AcknowledgeAsync(callbacks.Select(j => JobAck.Success(j.Lease)).ToArray());
        Assert.Equal(0, (await queue.GetBatchAsync(batch.BatchId))!.Pending); // callbacks are not members
        Assert.Equal(5, (await queue.ListJobsAsync(new JobListQuery { BatchId = batch.BatchId, States = [JobState.Succeeded] })).Count(j => j.Kind == "member"));
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task A_member_that_dies_is_cancelled_or_expires_counts_so_and_cancels_the_success_callback_with_the_counts_but_runs_the_complete_one()
    {
        var queue = await CreateQueueAsync();
        var batch = await queue.EnqueueBatchAsync(new BatchRequest(
        [
            new JobRequest("member") { MaxAttempts = 1 },
            new JobRequest("member"),
            new JobRequest("member") { LatestStartAt = Start + TimeSpan.FromMinutes(1), RunAt = Start + TimeSpan.FromSeconds(30) },
            new JobRequest("member"),
        ])
        { OnSuccess = new JobRequest("on-success"), OnComplete = new JobRequest("on-complete") });
        var (dies, cancelled, expires, succeeds) = (batch.Jobs[0].JobId, batch.Jobs[1].JobId, batch.Jobs[2].JobId, batch.Jobs[3].JobId);
        // A child of the success callback: cancelled with it, by its failure policy.
        var afterSuccess = (await queue.EnqueueAsync(new JobRequest("after") { DependsOn = [JobDependency.OnJob(batch.OnSuccessJobId!.Value)] })).JobId;

        Assert.Equal(CancelOutcome.Cancelled, await queue.CancelAsync(cancelled));
        var running = (await queue.AcquireAsync(Take())).ToDictionary(j => j.Id);
        Assert.Equal([dies, succeeds], running.Keys.Order());
        await queue.AcknowledgeAsync([JobAck.Failure(running[dies].Lease, "boom"), JobAck.Success(running[succeeds].Lease)]);
        var info = (await queue.GetBatchAsync(batch.BatchId))!;
        Assert.Equal((1, 1, 1, 1, (DateTimeOffset?)null), (info.Pending, info.Succeeded, info.Failed, info.Cancelled, info.SettledAt));

        Time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(1, await queue.ExpireOverdueAsync());
        info = (await queue.GetBatchAsync(batch.BatchId))!;
        Assert.Equal((0, 1, 2, 1), (info.Pending, info.Succeeded, info.Failed, info.Cancelled));
        Assert.NotNull(info.SettledAt);
        Assert.False(info.IsSucceeded);

        var onSuccess = (await queue.GetJobAsync(batch.OnSuccessJobId.Value))!;
        Assert.Equal(JobState.Cancelled, onSuccess.State);
        Assert.Equal(BatchMessage(batch.BatchId, failed: 2, cancelled: 1, total: 4), onSuccess.Errors.Single().Message);
        Assert.Equal(JobState.Cancelled, (await queue.GetJobAsync(afterSuccess))!.State);
        var complete = Assert.Single(await queue.AcquireAsync(Take()));
        Assert.Equal(batch.OnCompleteJobId, complete.Id);
        _ = expires;
        await AssertConsistentAsync(queue);
    }

    private static string BatchMessage(long batch, int failed, int cancelled, int total) =>
        $"Batch {batch} settled with {failed} failed and {cancelled} cancelled of {total} members; its on-success callback does not run.";

    [Fact]
    public async Task A_rescued_member_out_of_attempts_counts_as_failed_and_a_redriven_one_is_pending_again_without_firing_twice()
    {
        var queue = await CreateQueueAsync();
        var batch = await queue.EnqueueBatchAsync(new BatchRequest([new JobRequest("member") { MaxAttempts = 1 }, new JobRequest("member")]) { OnComplete = new JobRequest("on-complete") });
        var jobs = (await queue.AcquireAsync(Take())).ToArray();
        await queue.HeartbeatAsync("w1", jobs.Select(j => j.Lease).ToArray(), Lease); // reported started: a rescue charges the attempt
        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        Assert.Equal(2, await queue.RescueExpiredLeasesAsync());
        var info = (await queue.GetBatchAsync(batch.BatchId))!;
        Assert.Equal((1, 1), (info.Pending, info.Failed)); // the other is retried

        await RunAllAsync(queue, j => JobAck.Success(j.Lease));
        info = (await queue.GetBatchAsync(batch.BatchId))!;
        Assert.Equal((0, 1, 1), (info.Pending, info.Succeeded, info.Failed));
        var settledAt = info.SettledAt;
        Assert.NotNull(settledAt);

        Assert.True(await queue.RedriveAsync(batch.Jobs[0].JobId));
        info = (await queue.GetBatchAsync(batch.BatchId))!;
        Assert.Equal((1, 0, settledAt), (info.Pending, info.Failed, info.SettledAt));
        var ids = await RunAllAsync(queue, j => JobAck.Success(j.Lease));
        Assert.Contains(batch.Jobs[0].JobId, ids);
        Assert.Contains(batch.OnCompleteJobId!.Value, ids); // released once, at the first settling
        info = (await queue.GetBatchAsync(batch.BatchId))!;
        Assert.Equal((0, 2, 0, settledAt), (info.Pending, info.Succeeded, info.Failed, info.SettledAt));
        Assert.Equal(JobState.Succeeded, (await queue.GetJobAsync(batch.OnCompleteJobId.Value))!.State);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Members_added_by_a_running_member_hold_the_batch_open_and_a_settled_batch_refuses_more()
    {
        var queue = await CreateQueueAsync();
        var batch = await queue.EnqueueBatchAsync(new BatchRequest([new JobRequest("planner")]) { OnSuccess = new JobRequest("on-success") });
        var planner = Assert.Single(await queue.AcquireAsync(Take()));
        var added = await queue.AddToBatchAsync(planner.BatchId!.Value, Enumerable.Range(0, 3).Select(i => new JobRequest("member", i)).ToArray());
        Assert.Equal(3, added.Count);
        await queue.AcknowledgeAsync([JobAck.Success(planner.Lease)]);
        var info = (await queue.GetBatchAsync(batch.BatchId))!;
        Assert.Equal((4, 3, (DateTimeOffset?)null), (info.Total, info.Pending, info.SettledAt));

        await RunAllAsync(queue, j => JobAck.Success(j.Lease), "member");
        var callback = Assert.Single(await queue.AcquireAsync(Take()));
        Assert.Equal(batch.OnSuccessJobId, callback.Id);

        var settled = await Assert.ThrowsAsync<InvalidOperationException>(() => queue.AddToBatchAsync(batch.BatchId, [new JobRequest("late")]).AsTask());
        Assert.Contains($"Batch {batch.BatchId} has settled", settled.Message, StringComparison.Ordinal);
        var missing = await Assert.ThrowsAsync<ArgumentException>(() => queue.AddToBatchAsync(batch.BatchId + 1000, [new JobRequest("late")]).AsTask());
        Assert.Equal("batchId", missing.ParamName);
        Assert.Empty(await queue.ListJobsAsync(new JobListQuery { Kind = "late" })); // nothing written
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task A_nested_batch_counts_as_one_member_of_its_parent_and_settles_it_with_its_outcome()
    {
        var queue = await CreateQueueAsync();
        var outer = await queue.EnqueueBatchAsync(new BatchRequest([new JobRequest("outer")]) { OnSuccess = new JobRequest("outer-success"), OnComplete = new JobRequest("outer-complete") });
        var inner = await queue.EnqueueBatchAsync(new BatchRequest([new JobRequest("inner") { MaxAttempts = 1 }, new JobRequest("inner")]) { ParentBatchId = outer.BatchId });
        Assert.Equal((2, 2), ((await queue.GetBatchAsync(outer.BatchId))!.Total, (await queue.GetBatchAsync(outer.BatchId))!.Pending));
        Assert.Equal(outer.BatchId, (await queue.GetBatchAsync(inner.BatchId))!.ParentBatchId);

        await RunAllAsync(queue, j => JobAck.Success(j.Lease), "outer");
        var inners = (await queue.AcquireAsync(Take())).ToArray();
        Assert.Equal(2, inners.Length);
        await queue.AcknowledgeAsync([JobAck.Failure(inners[0].Lease, "no"), JobAck.Success(inners[1].Lease)]);

        var innerInfo = (await queue.GetBatchAsync(inner.BatchId))!;
        var outerInfo = (await queue.GetBatchAsync(outer.BatchId))!;
        Assert.NotNull(innerInfo.SettledAt);
        Assert.Equal((0, 1, 1), (outerInfo.Pending, outerInfo.Succeeded, outerInfo.Failed)); // the inner batch counted as one failed member
        Assert.NotNull(outerInfo.SettledAt);
        Assert.Equal(JobState.Cancelled, (await queue.GetJobAsync(outer.OnSuccessJobId!.Value))!.State);
        Assert.Equal(outer.OnCompleteJobId, Assert.Single(await queue.AcquireAsync(Take())).Id);

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => queue.EnqueueBatchAsync(new BatchRequest([new JobRequest("x")]) { ParentBatchId = outer.BatchId }).AsTask());
        Assert.Contains("has settled", refused.Message, StringComparison.Ordinal);
        var unknown = await Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueBatchAsync(new BatchRequest([new JobRequest("x")]) { ParentBatchId = 999_999 }).AsTask());
        Assert.Equal("batch.ParentBatchId", unknown.ParamName);
        Assert.Empty(await queue.ListJobsAsync(new JobListQuery { Kind = "x" }));
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Batch_members_sit_in_a_graph_and_a_batch_born_finished_settles_at_once()
    {
        var queue = await CreateQueueAsync();
        var parent = (await queue.EnqueueAsync(new JobRequest("parent") { MaxAttempts = 1 })).JobId;
        var batch = await queue.EnqueueBatchAsync(new BatchRequest(
        [
            new JobRequest("first") { LocalKey = "a", DependsOn = [JobDependency.OnJob(parent)] },
            new JobRequest("second") { DependsOn = [JobDependency.OnRequest("a")] },
        ])
        { OnComplete = new JobRequest("done") });
        Assert.Equal(JobState.Waiting, (await queue.GetJobAsync(batch.Jobs[1].JobId))!.State);
        var after = (await queue.EnqueueAsync(new JobRequest("after-batch") { DependsOn = [JobDependency.OnJob(batch.OnCompleteJobId!.Value)] })).JobId;

        // The parent dies: both members are cancelled down the graph, the batch settles, its callback runs, then its child.
        var p = Assert.Single(await queue.AcquireAsync(Take()));
        await queue.AcknowledgeAsync([JobAck.Failure(p.Lease, "parent failed", retryable: false)]);
        var info = (await queue.GetBatchAsync(batch.BatchId))!;
        Assert.Equal((0, 2), (info.Pending, info.Cancelled));
        var done = Assert.Single(await queue.AcquireAsync(Take()));
        Assert.Equal(batch.OnCompleteJobId, done.Id);
        await queue.AcknowledgeAsync([JobAck.Success(done.Lease)]);
        Assert.Equal(after, Assert.Single(await queue.AcquireAsync(Take())).Id);

        // Members whose parent is already dead are born cancelled: the batch settles in the enqueue.
        var born = await queue.EnqueueBatchAsync(new BatchRequest([new JobRequest("late") { DependsOn = [JobDependency.OnJob(parent)] }]) { OnComplete = new JobRequest("done-at-once") });
        Assert.NotNull((await queue.GetBatchAsync(born.BatchId))!.SettledAt);
        Assert.Equal(JobState.Available, (await queue.GetJobAsync(born.OnCompleteJobId!.Value))!.State);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Bad_batch_requests_are_refused_naming_the_property_and_write_nothing()
    {
        var queue = await CreateQueueAsync();
        Assert.Equal("batch.Jobs", (await Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueBatchAsync(new BatchRequest([])).AsTask())).ParamName);
        Assert.Equal("batch.Jobs[1].Queue", (await Assert.ThrowsAsync<ArgumentException>(() =>
            queue.EnqueueBatchAsync(new BatchRequest([new JobRequest("ok"), new JobRequest("bad") { Queue = "" }])).AsTask())).ParamName);
        Assert.Equal("batch.OnSuccess.DependsOn", (await Assert.ThrowsAsync<ArgumentException>(() =>
            queue.EnqueueBatchAsync(new BatchRequest([new JobRequest("ok")]) { OnSuccess = new JobRequest("cb") { DependsOn = [JobDependency.OnJob(1)] } }).AsTask())).ParamName);
        Assert.Equal("batch.OnComplete.UniqueKey", (await Assert.ThrowsAsync<ArgumentException>(() =>
            queue.EnqueueBatchAsync(new BatchRequest([new JobRequest("ok")]) { OnComplete = new JobRequest("cb") { UniqueKey = "u" } }).AsTask())).ParamName);
        Assert.Equal("jobs", (await Assert.ThrowsAsync<ArgumentException>(() => queue.AddToBatchAsync(1, []).AsTask())).ParamName);
        Assert.Null(await queue.GetBatchAsync(12345));
        Assert.Empty(await queue.ListJobsAsync(new JobListQuery()));
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Retention_removes_a_settled_batch_once_its_jobs_are_gone_and_keeps_an_open_one()
    {
        var queue = await CreateQueueAsync();
        var done = await queue.EnqueueBatchAsync(new BatchRequest([new JobRequest("m")]) { OnComplete = new JobRequest("cb") });
        await RunAllAsync(queue, j => JobAck.Success(j.Lease), "m");
        await RunAllAsync(queue, j => JobAck.Success(j.Lease), "cb");
        var open = await queue.EnqueueBatchAsync(new BatchRequest([new JobRequest("later") { RunAt = Start + TimeSpan.FromDays(30) }]));

        Time.Advance(TimeSpan.FromDays(8));
        Assert.Equal(2, await queue.PurgeFinishedAsync(TimeSpan.FromDays(7), 100)); // the member and its callback
        await queue.PurgeFinishedAsync(TimeSpan.FromDays(7), 100); // then the batch, with no job left

        Assert.Null(await queue.GetBatchAsync(done.BatchId));
        Assert.Equal(1, (await queue.GetBatchAsync(open.BatchId))!.Pending);
        await AssertConsistentAsync(queue);
    }
}
