using Xunit;

namespace Scheduling.Testing.Tests;

public sealed class EnqueuedJobAssertionTests
{
    [Fact]
    public async Task Assertions_match_by_kind_payload_and_count_and_return_the_jobs_oldest_first()
    {
        using var host = new TestHost(TestingMode.Manual);
        var first = await host.Queue.EnqueueAsync(new JobRequest("send-email", new EmailJob("ada@example.com")));
        await host.Queue.EnqueueAsync(new JobRequest("send-email", new EmailJob("bob@example.com")) { RunAt = host.Clock.GetUtcNow().AddHours(1) });
        await host.Queue.EnqueueAsync(new JobRequest("report") { Queue = "reports" });

        var emails = await host.Queue.AssertEnqueuedAsync("send-email", count: 2);
        Assert.Equal(first.JobId, emails[0].Id);
        var ada = Assert.Single(await host.Queue.AssertEnqueuedAsync<EmailJob>("send-email", e => e.To == "ada@example.com"));
        Assert.Equal("ada@example.com", ada.Payload<EmailJob>()!.To);
        await host.Queue.AssertEnqueuedAsync("report", j => j.Queue == "reports", count: 1);
        await host.Queue.AssertEnqueuedAsync<EmailJob>("send-email", e => e.To.StartsWith("bob", StringComparison.Ordinal), count: 1); // scheduled for later counts
        await host.Queue.AssertNotEnqueuedAsync("send-sms");
        await host.Queue.AssertNotEnqueuedAsync<EmailJob>("send-email", e => e.To == "eve@example.com");
        Assert.Equal(3, (await host.Queue.EnqueuedJobsAsync()).Count);
        Assert.Equal(2, (await host.Queue.EnqueuedJobsAsync("send-email")).Count);
    }

    [Fact]
    public async Task A_failed_assertion_says_what_was_expected_and_lists_what_is_enqueued()
    {
        using var host = new TestHost(TestingMode.Manual);
        await host.Queue.EnqueueAsync(new JobRequest("send-email", new EmailJob("ada@example.com")));

        var missing = await Assert.ThrowsAsync<JobAssertionException>(() => host.Queue.AssertEnqueuedAsync<EmailJob>("send-email", e => e.To == "bob@example.com"));
        Assert.StartsWith("Expected a job of kind 'send-email' matching the condition to be enqueued, found none. Enqueued (1):", missing.Message, StringComparison.Ordinal);
        Assert.Contains("send-email in 'default' (available) {\"to\":\"ada@example.com\"}", missing.Message, StringComparison.Ordinal);

        var wrongCount = await Assert.ThrowsAsync<JobAssertionException>(() => host.Queue.AssertEnqueuedAsync("send-email", count: 2));
        Assert.StartsWith("Expected 2 job(s) of kind 'send-email' to be enqueued, found 1.", wrongCount.Message, StringComparison.Ordinal);

        var present = await Assert.ThrowsAsync<JobAssertionException>(() => host.Queue.AssertNotEnqueuedAsync("send-email"));
        Assert.StartsWith("Expected no job of kind 'send-email' to be enqueued, found 1.", present.Message, StringComparison.Ordinal);

        var unreadable = await Assert.ThrowsAsync<JobAssertionException>(() => host.Queue.AssertEnqueuedAsync<int>("send-email", n => n > 0));
        Assert.Contains("does not read as Int32", unreadable.Message, StringComparison.Ordinal);

        await host.Runner.RunPendingAsync();
        var empty = await Assert.ThrowsAsync<JobAssertionException>(() => host.Queue.AssertEnqueuedAsync("send-email"));
        Assert.EndsWith("Nothing is enqueued.", empty.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Running_and_finished_jobs_are_not_enqueued_and_waiting_children_are()
    {
        using var host = new TestHost(TestingMode.Manual);
        await host.Queue.EnqueueManyAsync(
        [
            new JobRequest("send-email", new EmailJob("parent@example.com")) { LocalKey = "p" },
            new JobRequest("send-email", new EmailJob("child@example.com")) { DependsOn = [JobDependency.OnRequest("p")] },
        ]);
        var child = Assert.Single(await host.Queue.AssertEnqueuedAsync<EmailJob>("send-email", e => e.To == "child@example.com"));
        Assert.Equal(JobState.Waiting, child.State);

        var store = (IJobWorkerStore)host.Queue;
        var running = Assert.Single(await store.AcquireAsync(new AcquireRequest("default", "w", 1, TimeSpan.FromMinutes(1))));
        await host.Queue.AssertNotEnqueuedAsync<EmailJob>("send-email", e => e.To == "parent@example.com");
        await store.CompleteAsync(running.Lease);
        await host.Queue.AssertNotEnqueuedAsync<EmailJob>("send-email", e => e.To == "parent@example.com");
        Assert.Equal(JobState.Available, Assert.Single(await host.Queue.AssertEnqueuedAsync("send-email")).State);
    }
}
