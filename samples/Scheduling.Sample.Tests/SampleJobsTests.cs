using Microsoft.Extensions.DependencyInjection;
using Scheduling;
using Scheduling.Testing;
using Xunit;

namespace Scheduling.Sample.Tests;

/// <summary>The sample's own tests, written with Scheduling.Testing as docs/testing.md shows.</summary>
public sealed class SampleJobsTests
{
    private static ServiceProvider Host(TestingMode mode)
    {
        var services = new ServiceCollection().AddLogging().AddSingleton<SampleStats>();
        services.AddScheduling(s =>
        {
            SampleJobs.Register(s);
            s.UseTesting(mode);
        });
        return services.BuildServiceProvider();
    }

    [Fact]
    public async Task SendEmail_fails_a_flaky_address_on_its_first_attempts_and_then_sends()
    {
        var flaky = await FirstFlakyAddressAsync();
        var stats = new SampleStats();
        var handler = new SendEmail(stats);

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => handler.HandleAsync(TestJobContext.Create(new EmailJob(flaky), new TestJob { Attempt = 1, MaxAttempts = 3 }), CancellationToken.None));
        Assert.Contains($"SMTP server refused {flaky} (attempt 1)", failure.Message, StringComparison.Ordinal);
        Assert.Equal(1, stats.Retried);

        await handler.HandleAsync(TestJobContext.Create(new EmailJob(flaky), new TestJob { Attempt = 5, MaxAttempts = 5 }), CancellationToken.None);
        Assert.Equal(1, stats.Succeeded);
    }

    [Fact]
    public async Task The_report_pipeline_runs_extract_first_and_publish_last()
    {
        using var host = Host(TestingMode.Manual);
        var queue = host.GetRequiredService<IJobQueue>();
        await queue.EnqueueManyAsync(SampleJobs.ReportPipeline());
        await queue.AssertEnqueuedAsync<string>("report-step", step => step == "publish", count: 1);

        var summary = await host.GetRequiredService<TestJobRunner>().RunPendingAsync();

        Assert.Equal(4, summary.Succeeded);
        var steps = host.GetRequiredService<SampleStats>().Steps.ToArray();
        Assert.Equal(("extract", "publish"), (steps[0], steps[^1]));
        Assert.Equal(200, host.GetRequiredService<SampleStats>().PublishedRows); // extract's 100 rows through both transforms, read from the parents' results
        await queue.AssertNotEnqueuedAsync("report-step");
    }

    [Fact]
    public async Task Every_email_ends_sent_or_dead_after_its_retries_without_waiting_for_backoff()
    {
        using var host = Host(TestingMode.Manual);
        var queue = host.GetRequiredService<IJobQueue>();
        var campaign = await queue.EnqueueBatchAsync(SampleJobs.EmailCampaign(50));

        var summary = await host.GetRequiredService<TestJobRunner>().RunPendingAsync();

        var stats = host.GetRequiredService<SampleStats>();
        Assert.Equal(51, summary.Succeeded + summary.Dead); // the mails and the campaign's callback
        Assert.Equal((stats.Succeeded, stats.Dead), (summary.Succeeded, summary.Dead));
        Assert.True(summary.Retried > 0, "some addresses are flaky");
        await queue.AssertNotEnqueuedAsync("send-email");
        // The callback ran after the last mail and saw the batch's final counts.
        var batch = (await queue.GetBatchAsync(campaign.BatchId))!;
        Assert.Equal((batch.Succeeded, batch.Failed), stats.Campaign);
        Assert.Equal((50, 0, stats.Dead), (batch.Total, batch.Pending, batch.Failed));
    }

    [Fact]
    public async Task In_inline_mode_a_resize_has_run_when_its_enqueue_returns()
    {
        using var host = Host(TestingMode.Inline);

        await host.GetRequiredService<IJobQueue>().EnqueueAsync(new JobRequest("resize-image", new ImageJob("photo.jpg", 640)) { Queue = "images" });

        Assert.Equal(1, host.GetRequiredService<SampleStats>().Succeeded);
    }

    private static async Task<string> FirstFlakyAddressAsync()
    {
        var probe = new SendEmail(new SampleStats());
        for (var i = 0; ; i++)
        {
            try
            {
                await probe.HandleAsync(TestJobContext.Create(new EmailJob($"user{i}@example.com"), new TestJob { Attempt = 1, MaxAttempts = 9 }), CancellationToken.None);
            }
            catch (InvalidOperationException)
            {
                return $"user{i}@example.com";
            }
        }
    }
}
