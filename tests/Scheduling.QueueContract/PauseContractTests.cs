using Xunit;

namespace Scheduling.QueueContract;

/// <summary>Pausing a queue: nothing of it is acquired, enqueueing and running jobs go on, and resuming releases it.</summary>
public abstract partial class JobQueueContractTests
{
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
