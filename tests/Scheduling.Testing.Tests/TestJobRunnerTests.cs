using Xunit;

namespace Scheduling.Testing.Tests;

public sealed class TestJobRunnerTests
{
    [Fact]
    public async Task In_manual_mode_nothing_runs_until_asked_and_then_every_due_job_runs_once()
    {
        using var host = new TestHost(TestingMode.Manual);
        await host.Queue.EnqueueManyAsync([new JobRequest("send-email", new EmailJob("a@example.com")), new JobRequest("send-email", new EmailJob("b@example.com"))]);
        Assert.Empty(host.Outbox.Sent);

        var summary = await host.Runner.RunPendingAsync();

        Assert.Equal(["a@example.com", "b@example.com"], host.Outbox.Sent);
        Assert.Equal((2, 0, 0), (summary.Succeeded, summary.Retried, summary.Dead));
        Assert.Empty((await host.Runner.RunPendingAsync()).Runs);
    }

    [Fact]
    public async Task Retries_run_at_once_by_moving_the_fake_clock_and_a_job_out_of_attempts_is_dead()
    {
        using var host = new TestHost(TestingMode.Manual);
        host.Outbox.FailFirst = 2;
        var start = host.Clock.GetUtcNow();
        var flaky = await host.Queue.EnqueueAsync(new JobRequest("send-email", new EmailJob("flaky@example.com")) { MaxAttempts = 5 });
        var doomed = await host.Queue.EnqueueAsync(new JobRequest("send-email", new EmailJob("doomed@example.com")) { MaxAttempts = 2 });

        var summary = await host.Runner.RunPendingAsync();

        Assert.Equal(["flaky@example.com"], host.Outbox.Sent);
        Assert.Equal((1, 3, 1), (summary.Succeeded, summary.Retried, summary.Dead));
        Assert.Equal([1, 2, 3], summary.Runs.Where(r => r.JobId == flaky.JobId).Select(r => r.Attempt));
        Assert.All(summary.Failures, f => Assert.Contains("SMTP refused", f.Message, StringComparison.Ordinal));
        Assert.Equal(JobState.Dead, (await host.Queue.GetJobAsync(doomed.JobId))!.State);
        Assert.True(host.Clock.GetUtcNow() > start, "the clock moved past the backoff instead of the test waiting for it");

        var noSkip = new TestHost(TestingMode.Manual);
        using (noSkip)
        {
            noSkip.Outbox.FailFirst = 1;
            await noSkip.Queue.EnqueueAsync(new JobRequest("send-email", new EmailJob("x@example.com")));
            var once = await noSkip.Runner.RunPendingAsync(new TestRunOptions { SkipBackoff = false });
            Assert.Equal(JobState.Scheduled, Assert.Single(once.Runs).State);
            Assert.Equal(JobState.Scheduled, Assert.Single(await noSkip.Queue.AssertEnqueuedAsync("send-email")).State);
        }
    }

    [Fact]
    public async Task Jobs_for_later_run_only_when_asked_and_children_run_after_their_parents()
    {
        using var host = new TestHost(TestingMode.Manual);
        var later = host.Clock.GetUtcNow().AddDays(1);
        await host.Queue.EnqueueAsync(new JobRequest("send-email", new EmailJob("tomorrow@example.com")) { RunAt = later });
        await host.Queue.EnqueueManyAsync(
        [
            new JobRequest("send-email", new EmailJob("second@example.com")) { DependsOn = [JobDependency.OnRequest("first")] },
            new JobRequest("send-email", new EmailJob("first@example.com")) { LocalKey = "first" },
        ]);

        await host.Runner.RunPendingAsync();
        Assert.Equal(["first@example.com", "second@example.com"], host.Outbox.Sent);

        await host.Runner.RunPendingAsync(new TestRunOptions { IncludeScheduled = true });
        Assert.Equal("tomorrow@example.com", host.Outbox.Sent[^1]);
        Assert.Equal(later, host.Clock.GetUtcNow());
    }

    [Fact]
    public async Task A_kind_without_a_handler_and_a_missing_payload_fail_as_on_a_worker()
    {
        using var host = new TestHost(TestingMode.Manual);
        var unknown = await host.Queue.EnqueueAsync(new JobRequest("nobody-handles-this") { MaxAttempts = 1 });
        var empty = await host.Queue.EnqueueAsync(new JobRequest("send-email"));

        var summary = await host.Runner.RunPendingAsync();

        Assert.Equal(2, summary.Dead);
        Assert.Contains("No handler is registered for job kind 'nobody-handles-this'", (await host.Queue.GetJobAsync(unknown.JobId))!.Errors.Single().Message, StringComparison.Ordinal);
        Assert.IsType<PermanentJobFailureException>(summary.Runs.Single(r => r.JobId == empty.JobId).Exception);
    }

    [Fact]
    public async Task A_handler_that_enqueues_itself_forever_is_stopped_at_the_bound_with_a_clear_error()
    {
        using var host = new TestHost(TestingMode.Manual, s => s.AddHandler<EnqueueNext, int>("again"));
        await host.Queue.EnqueueAsync(new JobRequest("again", 1));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => host.Runner.RunPendingAsync(new TestRunOptions { MaxAttempts = 50 }));

        Assert.Contains("ran 50 attempts and jobs are still due", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task In_inline_mode_an_enqueue_returns_after_the_job_and_what_it_enqueued_ran()
    {
        using var host = new TestHost(TestingMode.Inline, s => s.AddHandler<Welcome, string>("welcome"));

        var result = await host.Queue.EnqueueAsync(new JobRequest("welcome", "new-user@example.com"));

        Assert.Equal(["new-user@example.com"], host.Outbox.Sent);
        Assert.Equal(JobState.Succeeded, (await host.Queue.GetJobAsync(result.JobId))!.State);
        await host.Queue.AssertNotEnqueuedAsync("send-email");

        host.Outbox.FailFirst = 1;
        await host.Queue.EnqueueAsync(new JobRequest("send-email", new EmailJob("retried@example.com")));
        Assert.Equal("retried@example.com", host.Outbox.Sent[^1]); // the retry ran at once, on the fake clock
    }

    [Fact]
    public async Task A_snoozing_handler_runs_again_after_its_snooze_without_using_up_its_attempts()
    {
        var calls = 0;
        using var host = new TestHost(TestingMode.Manual, s => s.AddHandler<int>("poll", (context, _) =>
            ++calls < 3 ? throw new SnoozeJobException(TimeSpan.FromMinutes(10)) : Task.CompletedTask));
        var start = host.Clock.GetUtcNow();
        var id = (await host.Queue.EnqueueAsync(new JobRequest("poll", 1) { MaxAttempts = 1 })).JobId;

        var summary = await host.Runner.RunPendingAsync();

        Assert.Equal(3, calls);
        Assert.Equal((1, 0, 0), (summary.Succeeded, summary.Retried, summary.Dead));
        var job = (await host.Queue.GetJobAsync(id))!;
        Assert.Equal((JobState.Succeeded, 1, 2), (job.State, job.Attempt, job.Snoozes));
        Assert.Empty(job.Errors);
        Assert.Equal(start.AddMinutes(20), host.Clock.GetUtcNow());
    }

    private sealed class EnqueueNext(IJobQueue queue) : IJobHandler<int>
    {
        public async Task HandleAsync(JobContext<int> context, CancellationToken cancellationToken) =>
            await queue.EnqueueAsync(new JobRequest("again", context.Payload + 1), cancellationToken);
    }

    private sealed class Welcome(IJobQueue queue) : IJobHandler<string>
    {
        public async Task HandleAsync(JobContext<string> context, CancellationToken cancellationToken) =>
            await queue.EnqueueAsync(new JobRequest("send-email", new EmailJob(context.Payload)), cancellationToken);
    }
}
