using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Stagger.Tests;

/// <summary>Recurring jobs managed at run time: every host picks up an add, a pause, a resume with a new expression and a removal, each tick still enqueued once.</summary>
public sealed class StoredRecurringJobsTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 5, 8, 0, 30, TimeSpan.Zero);

    private static ServiceProvider Host(InMemoryJobQueue queue, FakeTimeProvider time, bool withCodeJob)
    {
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton<TimeProvider>(time);
        services.AddSingleton<IJobQueue>(queue);
        var scheduling = services.AddScheduling(s => s.Configure(o => o.RunWorkers = false).UseStagger(o => o.Enabled = true));
        if (withCodeJob) scheduling.AddRecurringJob("nightly", "0 3 * * *", new JobRequest("code-kind"));
        services.Configure<RecurringJobOptions>(o => o.RefreshInterval = TimeSpan.FromMinutes(1));
        return services.BuildServiceProvider();
    }

    private static async Task<JobInfo[]> TicksAsync(InMemoryJobQueue queue, string kind) =>
        (await queue.ListJobsAsync(new JobListQuery { Kind = kind, Limit = 1000 })).ToArray();

    [Fact]
    public async Task Two_hosts_pick_up_an_add_a_pause_a_resume_with_a_new_expression_and_a_removal_and_enqueue_each_tick_once()
    {
        var time = new FakeTimeProvider(Start);
        var queue = new InMemoryJobQueue(null, time);
        var hosts = new[] { Host(queue, time, withCodeJob: true), Host(queue, time, withCodeJob: false) };
        var schedulers = hosts.Select(h => h.GetServices<IHostedService>().OfType<RecurringJobScheduler>().Single()).ToArray();
        foreach (var scheduler in schedulers) await scheduler.StartAsync(CancellationToken.None);
        Task RunForAsync(TimeSpan span) => SleeperClock.RunAsync(time, span, () => schedulers.Select(s => s.SleepingUntil));
        var manager = hosts[0].GetRequiredService<RecurringJobManager>();
        await Eventually.HoldsAsync(() => Task.FromResult(schedulers.All(s => s.SleepingUntil is not null)), "both schedulers made their first pass");

        Assert.True(await manager.AddOrUpdateAsync(new RecurringJobDefinition("sync", "*/2 * * * *", "sync") { PayloadJson = """{"tenant":7}""", Queue = "ops" }));
        await RunForAsync(TimeSpan.FromMinutes(1)); // both hosts read the store within the refresh interval
        await RunForAsync(TimeSpan.FromMinutes(10));
        var ticks = await TicksAsync(queue, "sync");
        Assert.True(ticks.Length == 5, string.Join(", ", ticks.Select(t => t.RunAt.ToString("HH:mm:ss")))); // every second minute for ten minutes, once each although two hosts run
        Assert.Equal(ticks.Length, ticks.Select(t => t.RunAt).Distinct().Count());
        Assert.All(ticks, t => Assert.Equal((StaggerHash.Offset("sync"), "ops", """{"tenant":7}"""), (t.RunAt.Second, t.Queue, t.PayloadJson)));

        Assert.True(await manager.PauseAsync("sync"));
        await RunForAsync(TimeSpan.FromMinutes(1));
        var paused = (await TicksAsync(queue, "sync")).Length;
        await RunForAsync(TimeSpan.FromMinutes(10));
        Assert.Equal(paused, (await TicksAsync(queue, "sync")).Length); // no ticks while paused
        Assert.True((await manager.ListAsync()).Single().Paused);

        Assert.False(await manager.AddOrUpdateAsync(new RecurringJobDefinition("sync", "* * * * *", "sync") { Queue = "ops" })); // resumed, every minute now
        await RunForAsync(TimeSpan.FromMinutes(1));
        var resumed = (await TicksAsync(queue, "sync")).Length;
        await RunForAsync(TimeSpan.FromMinutes(5));
        Assert.Equal(resumed + 5, (await TicksAsync(queue, "sync")).Length);

        Assert.True(await manager.RemoveAsync("sync"));
        Assert.False(await manager.RemoveAsync("sync"));
        await RunForAsync(TimeSpan.FromMinutes(1));
        var removed = (await TicksAsync(queue, "sync")).Length;
        await RunForAsync(TimeSpan.FromMinutes(5));
        Assert.Equal(removed, (await TicksAsync(queue, "sync")).Length);
        Assert.All(schedulers, s => Assert.True(s.PlansLoaded >= 4, $"the scheduler re-planned on each change ({s.PlansLoaded} plans)"));

        foreach (var scheduler in schedulers) await scheduler.StopAsync(CancellationToken.None);
        foreach (var host in hosts) await host.DisposeAsync();
    }

    [Fact]
    public async Task A_stored_job_takes_the_place_of_the_code_job_of_its_name_and_a_notification_wakes_the_scheduler_before_the_refresh()
    {
        var time = new FakeTimeProvider(Start);
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton<TimeProvider>(time);
        services.AddScheduling(s => s.Configure(o => o.RunWorkers = false).UseStagger(o => o.Enabled = true)
            .AddRecurringJob("report", "0 * * * *", new JobRequest("old-report"))); // the default in-memory queue, with its signals
        services.Configure<RecurringJobOptions>(o => o.RefreshInterval = TimeSpan.FromHours(1));
        await using var host = services.BuildServiceProvider();
        var scheduler = host.GetServices<IHostedService>().OfType<RecurringJobScheduler>().Single();
        await scheduler.StartAsync(CancellationToken.None);
        await Eventually.HoldsAsync(() => Task.FromResult(scheduler.SleepingUntil is not null), "the first pass is done");
        var loaded = scheduler.PlansLoaded;

        await host.GetRequiredService<RecurringJobManager>().AddOrUpdateAsync(new RecurringJobDefinition("report", "* * * * *", "new-report"));
        await Eventually.HoldsAsync(() => Task.FromResult(scheduler.PlansLoaded > loaded && scheduler.SleepingUntil is not null), "the change woke the scheduler"); // the clock has not moved
        await SleeperClock.RunAsync(time, TimeSpan.FromMinutes(3), () => [scheduler.SleepingUntil]);
        await scheduler.StopAsync(CancellationToken.None);

        var queue = host.GetRequiredService<IJobQueue>();
        Assert.Equal(3, (await queue.ListJobsAsync(new JobListQuery { Kind = "new-report" })).Count);
        // The code job's last tick before the change (on time at start) stays; none after it.
        Assert.All(await queue.ListJobsAsync(new JobListQuery { Kind = "old-report" }), j => Assert.True(j.RunAt <= Start));
    }

    [Theory]
    [InlineData("every minute", "UTC", null, "job.Cron")]
    [InlineData("* * * * *", "Mars/Olympus", null, "job.TimeZone")]
    [InlineData("* * * * *", "UTC", "{not json", "job.PayloadJson")]
    public async Task A_bad_definition_is_refused_naming_the_property_and_nothing_is_stored(string cron, string zone, string? payload, string parameter)
    {
        var queue = new InMemoryJobQueue();
        var manager = new RecurringJobManager(queue);
        var refused = await Assert.ThrowsAnyAsync<ArgumentException>(() => manager.AddOrUpdateAsync(new RecurringJobDefinition("x", cron, "k") { TimeZone = zone, PayloadJson = payload }).AsTask());
        Assert.Equal(parameter, refused.ParamName);
        Assert.Empty(await manager.ListAsync());
        Assert.Equal("job.Queue", (await Assert.ThrowsAnyAsync<ArgumentException>(() => manager.AddOrUpdateAsync(new RecurringJobDefinition("x", "* * * * *", "k") { Queue = "" }).AsTask())).ParamName);
    }
}
