using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using Scheduling.Hosting;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Core.Tests.Hosting;

public sealed class JobFailureLogTests
{
    private static AcquiredJob Job(long id, string kind) => Roles.FakeStore.Job(id, "default", kind);

    [Fact]
    public async Task A_failing_handler_is_logged_at_warning_with_its_exception_and_its_death_at_error_under_the_jobs_category()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders().AddFakeLogging();
        builder.Services.AddScheduling(s => s
            .Configure(o => o.Queue.Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(20) })
            .AddHandler<int>("always-fails", (ctx, _) => throw new InvalidOperationException($"boom {ctx.Payload}")));
        using var host = builder.Build();
        await host.StartAsync();
        var queue = host.Services.GetRequiredService<IJobQueue>();
        var id = (await queue.EnqueueAsync(new JobRequest("always-fails", 7) { MaxAttempts = 2 })).JobId;
        await Eventually.HoldsAsync(async () => (await queue.GetJobAsync(id))!.State == JobState.Dead, "the job goes dead");
        var collector = host.Services.GetFakeLogCollector();
        await Eventually.HoldsAsync(() => Task.FromResult(collector.GetSnapshot().Any(r => r.Level == LogLevel.Error)), "its death is logged");
        await host.StopAsync();

        var records = collector.GetSnapshot().Where(r => r.Category == JobFailureLog.Category).ToArray();
        var failures = records.Where(r => r.Level == LogLevel.Warning).ToArray();
        Assert.Equal(2, failures.Length);
        Assert.All(failures, r => Assert.Equal("boom 7", r.Exception?.Message));
        Assert.Contains($"Job {id} (always-fails, queue default) failed attempt 2 of 2", failures[1].Message, StringComparison.Ordinal);
        var dead = Assert.Single(records, r => r.Level == LogLevel.Error);
        Assert.Contains($"Job {id} (always-fails, queue default) is dead after attempt 2: System.InvalidOperationException: boom 7", dead.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_storm_of_failures_of_one_kind_is_limited_per_window_and_counts_what_it_held_back()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var logger = new FakeLogger();
        var log = new JobFailureLog(logger, time);

        for (var i = 0; i < 50; i++) log.Failed(Job(i, "storm"), new InvalidOperationException("x"));
        for (var i = 0; i < 3; i++) log.Failed(Job(100 + i, "quiet"), new InvalidOperationException("y")); // another kind has its own limit
        for (var i = 0; i < 12; i++) log.Dead(Job(200 + i, "storm"), "x"); // and deaths their own
        Assert.Equal(JobFailureLog.LinesPerWindow, logger.Collector.GetSnapshot().Count(r => r.Level == LogLevel.Warning && r.Message.Contains("(storm,", StringComparison.Ordinal)));
        Assert.Equal(3, logger.Collector.GetSnapshot().Count(r => r.Message.Contains("(quiet,", StringComparison.Ordinal)));
        Assert.Equal(JobFailureLog.LinesPerWindow, logger.Collector.GetSnapshot().Count(r => r.Level == LogLevel.Error));

        time.Advance(JobFailureLog.Window);
        log.Failed(Job(999, "storm"), new InvalidOperationException("x"));
        Assert.Contains("(40 similar line(s) held back before this one)", logger.Collector.LatestRecord.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stopping_says_how_long_it_waits_and_for_how_many_running_jobs()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders().AddFakeLogging();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var finish = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        builder.Services.AddScheduling(s => s
            .Configure(o => o.ShutdownTimeout = TimeSpan.FromSeconds(7))
            .AddHandler<int>("until-stopped", async (_, _) => { started.TrySetResult(); await finish.Task; }));
        using var host = builder.Build();
        await host.StartAsync();
        await host.Services.GetRequiredService<IJobQueue>().EnqueueAsync(new JobRequest("until-stopped", 1));
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));

        var stop = host.StopAsync();
        var collector = host.Services.GetFakeLogCollector();
        await Eventually.HoldsAsync(() => Task.FromResult(collector.GetSnapshot().Any(r => r.Message.StartsWith("Stopping: waiting up to", StringComparison.Ordinal))), "the wait is announced");
        finish.SetResult(); // the job finishes within the wait
        await stop;

        Assert.Contains(collector.GetSnapshot(), r => r.Message == "Stopping: waiting up to 00:00:07 for 1 running job(s) to finish (ShutdownTimeout); then they are cancelled and released");
    }
}
