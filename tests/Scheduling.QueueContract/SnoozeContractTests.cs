using Xunit;

namespace Scheduling.QueueContract;

/// <summary>Snoozing: due again after the delay, the attempt given back, no error kept, bounded.</summary>
public abstract partial class JobQueueContractTests
{
    [Fact]
    public async Task A_snoozed_job_is_due_after_its_delay_with_its_attempt_given_back_and_no_error()
    {
        var queue = await CreateQueueAsync();
        var id = (await queue.EnqueueAsync(new JobRequest("k") { MaxAttempts = 1 })).JobId;

        for (var round = 0; round < 3; round++)
        {
            var job = Assert.Single(await queue.AcquireAsync(Take()));
            Assert.Equal((1, round), (job.Attempt, job.Snoozes));
            var result = Assert.Single(await queue.AcknowledgeAsync([JobAck.Snooze(job, TimeSpan.FromMinutes(2))]));
            Assert.Equal(JobState.Scheduled, result.State);
            Assert.Empty(await queue.AcquireAsync(Take()));
            Time.Advance(TimeSpan.FromMinutes(2));
        }

        var info = (await queue.GetJobAsync(id))!;
        Assert.Equal((JobState.Available, 0), (info.State, info.Attempt)); // three snoozes of its only attempt burned nothing
        Assert.Empty(info.Errors);
        var last = Assert.Single(await queue.AcquireAsync(Take()));
        Assert.Equal(JobState.Succeeded, (await queue.CompleteAsync(last.Lease)).State);
    }

    [Fact]
    public async Task Beyond_the_bound_a_snooze_counts_as_a_failed_attempt_and_a_cancellation_wins_over_a_snooze()
    {
        var queue = await CreateQueueAsync();
        var bounded = (await queue.EnqueueAsync(new JobRequest("k") { MaxAttempts = 1 })).JobId;
        for (var i = 0; i < JobTransitions.MaxSnoozes; i++)
            Assert.Equal(JobState.Available, Assert.Single(await queue.AcknowledgeAsync([JobAck.Snooze(Assert.Single(await queue.AcquireAsync(Take())), TimeSpan.Zero)])).State);
        var job = Assert.Single(await queue.AcquireAsync(Take()));
        Assert.Equal(JobTransitions.MaxSnoozes, job.Snoozes);

        var result = Assert.Single(await queue.AcknowledgeAsync([JobAck.Snooze(job, TimeSpan.Zero)]));

        Assert.Equal(JobState.Dead, result.State);
        Assert.Contains($"snoozed {JobTransitions.MaxSnoozes} times", (await queue.GetJobAsync(bounded))!.Errors.Single().Message, StringComparison.Ordinal);

        var cancelled = (await queue.EnqueueAsync(new JobRequest("k"))).JobId;
        var running = Assert.Single(await queue.AcquireAsync(Take()));
        Assert.Equal(CancelOutcome.CancellationRequested, await queue.CancelAsync(cancelled));
        Assert.Equal(JobState.Cancelled, Assert.Single(await queue.AcknowledgeAsync([JobAck.Snooze(running, TimeSpan.FromMinutes(1))])).State);

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => queue.AcknowledgeAsync([JobAck.Snooze(running, TimeSpan.FromDays(400))]).AsTask());
        await AssertConsistentAsync(queue);
    }
}
