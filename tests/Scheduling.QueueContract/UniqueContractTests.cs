using Xunit;

namespace Scheduling.QueueContract;

/// <summary>Unique jobs by arguments, per period, and replacing an unstarted holder.</summary>
public abstract partial class JobQueueContractTests
{
    [Fact]
    public async Task A_job_unique_by_payload_is_enqueued_once_per_arguments_while_active()
    {
        var queue = await CreateQueueAsync();
        JobRequest Sync(int customer) => new("sync", new { customer }) { UniqueByPayload = true };

        var first = await queue.EnqueueAsync(Sync(1));
        Assert.Equal((first.JobId, false), ((await queue.EnqueueAsync(Sync(1))).JobId, (await queue.EnqueueAsync(Sync(1))).Created));
        Assert.True((await queue.EnqueueAsync(Sync(2))).Created); // other arguments, another job
        Assert.True((await queue.EnqueueAsync(new JobRequest("other-kind", new { customer = 1 }) { UniqueByPayload = true })).Created);

        foreach (var job in await queue.AcquireAsync(Take(10))) await queue.CompleteAsync(job.Lease);
        Assert.True((await queue.EnqueueAsync(Sync(1))).Created); // an active key: free once the holder finished
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task A_job_unique_per_period_is_enqueued_once_per_window_even_after_it_finished()
    {
        var queue = await CreateQueueAsync();
        JobRequest Report(int minutes) => new("report") { UniqueKey = "daily-report", UniquePeriod = TimeSpan.FromHours(1), RunAt = Start.AddMinutes(minutes) };

        var first = await queue.EnqueueAsync(Report(10));
        Time.Advance(TimeSpan.FromMinutes(15));
        await queue.CompleteAsync(Assert.Single(await queue.AcquireAsync(Take())).Lease);
        Assert.Equal((first.JobId, false), ((await queue.EnqueueAsync(Report(50))).JobId, false)); // same hour, already done
        Assert.False((await queue.EnqueueAsync(Report(50))).Created);
        Assert.True((await queue.EnqueueAsync(Report(70))).Created); // the next hour

        var error = await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.EnqueueAsync(new JobRequest("report") { UniquePeriod = TimeSpan.FromHours(1) }).AsTask());
        Assert.Equal("request.UniquePeriod", error.ParamName);
        Assert.Equal("request.UniquePeriod", (await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.EnqueueAsync(Report(0) with { UniquePeriod = TimeSpan.FromMilliseconds(1500) }).AsTask())).ParamName);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Replace_updates_an_unstarted_holders_payload_and_run_at_and_leaves_a_running_one_alone()
    {
        var queue = await CreateQueueAsync();
        JobRequest Sync(int version, DateTimeOffset? runAt = null) => new("sync", new { version }) { UniqueKey = "sync-42", OnUniqueConflict = UniqueKeyConflict.Replace, RunAt = runAt };

        var first = await queue.EnqueueAsync(Sync(1, Start.AddHours(1)));
        var replaced = await queue.EnqueueAsync(Sync(2, Start.AddMinutes(5)));
        Assert.Equal((first.JobId, false, true), (replaced.JobId, replaced.Created, replaced.Replaced));
        var job = (await queue.GetJobAsync(first.JobId))!;
        Assert.Equal((Start.AddMinutes(5), 2), (job.RunAt, System.Text.Json.JsonDocument.Parse(job.PayloadJson!).RootElement.GetProperty("version").GetInt32()));
        Assert.True((await queue.EnqueueAsync(Sync(3))).Replaced); // no run-at given: it keeps its own
        Assert.Equal(Start.AddMinutes(5), (await queue.GetJobAsync(first.JobId))!.RunAt);

        Time.Advance(TimeSpan.FromMinutes(5));
        var running = Assert.Single(await queue.AcquireAsync(Take()));
        var unchanged = await queue.EnqueueAsync(Sync(4));
        Assert.Equal((first.JobId, false, false), (unchanged.JobId, unchanged.Created, unchanged.Replaced));
        Assert.Equal(3, System.Text.Json.JsonDocument.Parse(running.PayloadJson!).RootElement.GetProperty("version").GetInt32());
        await AssertConsistentAsync(queue);
    }
}
