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

    [Fact]
    public async Task A_snooze_can_reschedule_with_a_new_priority_that_orders_the_job_from_then_on()
    {
        var queue = await CreateQueueAsync();
        var first = (await queue.EnqueueAsync(new JobRequest("k"))).JobId;
        var second = (await queue.EnqueueAsync(new JobRequest("k"))).JobId;

        var job = Assert.Single(await queue.AcquireAsync(Take(1)));
        Assert.Equal(first, job.Id);
        Assert.Equal(JobState.Available, Assert.Single(await queue.AcknowledgeAsync([JobAck.Snooze(job, TimeSpan.Zero, priority: -5)])).State);
        Assert.Equal(second, Assert.Single(await queue.AcquireAsync(Take(1))).Id); // lowered: the other goes first

        var again = Assert.Single(await queue.AcquireAsync(Take(1)));
        Assert.Equal(first, again.Id);
        Assert.Equal(-5, again.Priority);
        await queue.AcknowledgeAsync([JobAck.Snooze(again, TimeSpan.Zero, priority: 7)]);
        var info = (await queue.GetJobAsync(first))!;
        Assert.Equal((7, 7, 2), (info.Priority, info.EffectivePriority, info.Snoozes));

        Assert.Throws<ArgumentOutOfRangeException>(() => JobAck.Snooze(again, TimeSpan.Zero, priority: 40_000));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SnoozeJobException(TimeSpan.Zero, priority: -40_000));
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task A_job_snoozed_to_a_lower_priority_keeps_what_its_waiting_children_lend_it()
    {
        var queue = await CreateQueueAsync();
        var ids = await queue.EnqueueManyAsync([new JobRequest("k") { LocalKey = "parent" }, new JobRequest("k") { Priority = 9, DependsOn = [JobDependency.OnRequest("parent")] }]);
        var parent = Assert.Single(await queue.AcquireAsync(Take(1)));

        await queue.AcknowledgeAsync([JobAck.Snooze(parent, TimeSpan.FromMinutes(1), priority: 1)]);

        var info = (await queue.GetJobAsync(ids[0].JobId))!;
        Assert.Equal((1, 9), (info.Priority, info.EffectivePriority));
        await AssertConsistentAsync(queue);
    }
}
