using Xunit;

namespace Scheduling.QueueContract;

/// <summary>Pausing a queue: nothing of it is acquired, enqueueing and running jobs go on, and resuming releases it.</summary>
public abstract partial class JobQueueContractTests
{
    [Fact]
    public async Task A_paused_or_limited_queue_is_in_the_statistics_with_no_jobs_and_leaves_them_when_both_are_lifted()
    {
        var queue = await CreateQueueAsync();
        await queue.EnqueueAsync(new JobRequest("k") { Queue = "busy" });
        Assert.True(await queue.PauseQueueAsync("idle"));
        await queue.SetQueueLimitsAsync("slow", new QueueLimits { Rate = new RateLimit(10, TimeSpan.FromSeconds(1)) });

        var stats = await queue.GetQueueStatsAsync();
        Assert.Equal(["busy", "idle", "slow"], stats.Select(q => q.Queue));
        Assert.Equal((0L, 0L, 0L, 0L, true), stats[1] is var idle ? (idle.Available, idle.Scheduled, idle.Running, idle.Waiting, idle.Paused) : default);
        Assert.Equal(new RateLimit(10, TimeSpan.FromSeconds(1)), stats[2].Limits.Rate);
        Assert.False(stats[2].Paused);

        Assert.True(await queue.ResumeQueueAsync("idle"));
        await queue.SetQueueLimitsAsync("slow", QueueLimits.None);
        Assert.Equal(["busy"], (await queue.GetQueueStatsAsync()).Select(q => q.Queue));
    }

    [Fact]
    public async Task A_paused_queue_leases_nothing_while_enqueue_and_its_running_jobs_go_on_until_it_is_resumed()
    {
        var queue = await CreateQueueAsync();
        await queue.EnqueueManyAsync([new JobRequest("k") { Queue = "mail" }, new JobRequest("k") { Queue = "mail" }, new JobRequest("k") { Queue = "other" }]);
        var running = Assert.Single(await queue.AcquireAsync(Take(1, "mail")));

        Assert.True(await queue.PauseQueueAsync("mail"));
        Assert.False(await queue.PauseQueueAsync("mail")); // already paused
        var enqueued = await queue.EnqueueAsync(new JobRequest("k") { Queue = "mail" });
        Assert.True(enqueued.Created);

        Assert.Empty(await queue.AcquireAsync(Take(10, "mail")));
        var shared = await queue.AcquireAsync(new AcquireRequest([new QueueShare("mail", 1), new QueueShare("other", 1)], "w1", 10, Lease));
        Assert.Equal(["other"], shared.Select(j => j.Queue));
        Assert.True((await queue.CompleteAsync(running.Lease)).Applied); // a job that was running finishes
        var stats = (await queue.GetQueueStatsAsync()).Single(s => s.Queue == "mail");
        Assert.True(stats.Paused);
        Assert.Equal(2, stats.Available);

        Assert.True(await queue.ResumeQueueAsync("mail"));
        Assert.False(await queue.ResumeQueueAsync("mail"));
        Assert.False(await queue.ResumeQueueAsync("never-paused"));
        Assert.Equal(2, (await queue.AcquireAsync(Take(10, "mail"))).Count);
        Assert.False((await queue.GetQueueStatsAsync()).Single(s => s.Queue == "mail").Paused);

        Assert.Equal("queue", (await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.PauseQueueAsync("").AsTask())).ParamName);
        await AssertConsistentAsync(queue);
    }
}
