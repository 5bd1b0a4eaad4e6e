using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Stagger.Tests;

public sealed class RecurringJobSchedulerTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 5, 8, 0, 30, TimeSpan.Zero);

    private static ServiceProvider Host(IJobQueue queue, FakeTimeProvider time, Action<RecurringJob>? configure = null, string cron = "* * * * *")
    {
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton<TimeProvider>(time);
        services.AddSingleton(queue);
        services.AddScheduling(s => s
            .Configure(o => o.RunWorkers = false)
            .UseStagger(o => o.Enabled = true)
            .AddRecurringJob("report", cron, new JobRequest("make-report") { Queue = "reports" }, configure));
        return services.BuildServiceProvider();
    }

    private static async Task<List<JobInfo>> JobsAsync(InMemoryJobQueue queue)
    {
        var jobs = new List<JobInfo>();
        for (var id = 1L; await queue.GetJobAsync(id) is { } job; id++) jobs.Add(job);
        return jobs;
    }

    private static Task RunForAsync(FakeTimeProvider time, TimeSpan span, params RecurringJobScheduler[] schedulers) =>
        SleeperClock.RunAsync(time, span, () => schedulers.Select(s => s.SleepingUntil));

    [Fact]
    public async Task Three_hosts_enqueue_each_tick_exactly_once_at_the_staggered_second()
    {
        var time = new FakeTimeProvider(Start);
        var queue = new InMemoryJobQueue(null, time);
        var hosts = Enumerable.Range(0, 3).Select(_ => Host(queue, time, j => j.Misfire = MisfirePolicy.Skip)).ToArray();
        var schedulers = hosts.Select(h => h.GetServices<IHostedService>().OfType<RecurringJobScheduler>().Single()).ToArray();
        foreach (var scheduler in schedulers) await scheduler.StartAsync(CancellationToken.None);

        await RunForAsync(time, TimeSpan.FromMinutes(10), schedulers);
        await Eventually.HoldsAsync(async () => (await JobsAsync(queue)).Count >= 10, "ten ticks are enqueued");
        foreach (var scheduler in schedulers) await scheduler.StopAsync(CancellationToken.None);

        var jobs = await JobsAsync(queue);
        var offset = StaggerHash.Offset("report");
        Assert.Equal(jobs.Count, jobs.Select(j => j.RunAt).Distinct().Count()); // one job per tick
        Assert.Equal(jobs.Count, jobs.Select(j => j.UniqueKey).Distinct().Count());
        Assert.All(jobs, j => Assert.Equal(offset, j.RunAt.Second));
        Assert.All(jobs, j => Assert.Equal("reports", j.Queue));
        // Ticks up to the misfire threshold (30 s) before start are on time, so they run even under Skip.
        var expected = Enumerable.Range(0, 12).Select(m => new DateTimeOffset(2026, 1, 5, 8, m, offset, TimeSpan.Zero))
            .Where(t => t <= time.GetUtcNow() && t >= Start - TimeSpan.FromSeconds(30)).ToArray();
        Assert.Equal(expected, jobs.Select(j => j.RunAt).Order());
        foreach (var host in hosts) await host.DisposeAsync();
    }

    [Fact]
    public async Task A_job_that_gives_no_duration_is_planned_with_the_duration_its_run_history_shows()
    {
        var time = new FakeTimeProvider(Start);
        var queue = new InMemoryJobQueue(null, time);
        var etl = new JobDefinition("etl", 512);
        var services = new ServiceCollection().AddLogging().AddSingleton<TimeProvider>(time).AddSingleton<IJobQueue>(queue);
        services.AddScheduling(s => s
            .Configure(o => o.RunWorkers = false)
            .UseStagger(o => o.Enabled = true)
            .AddRecurringJob("load", "0 * * * *", new JobRequest("etl") { Definition = etl, Command = "python load.py" })
            .AddRecurringJob("given", "0 * * * *", new JobRequest("etl") { Definition = etl, Command = "python load.py" }, j => j.ExpectedDuration = TimeSpan.FromMinutes(2))
            .AddRecurringJob("sibling", "0 * * * *", new JobRequest("etl") { Definition = etl, Command = "python other.py" })
            .AddRecurringJob("fresh", "0 * * * *", new JobRequest("etl") { Definition = new JobDefinition("new-etl", 512), Command = "python load.py" }));
        await using var host = services.BuildServiceProvider();
        var allocator = host.GetRequiredService<ResourceAllocator>();
        await host.GetRequiredService<IRunHistoryStore>().RecordAsync(Enumerable.Range(0, 5).Select(i =>
            new RunOutcome("etl", allocator.HashCommand("python load.py")!, null, 512, 300, 100, TimeSpan.FromMinutes(4), 0, false, Start - TimeSpan.FromHours(i + 1))).ToArray());
        var scheduler = host.GetServices<IHostedService>().OfType<RecurringJobScheduler>().Single();

        await scheduler.StartAsync(CancellationToken.None);
        await Eventually.HoldsAsync(() => scheduler.PlansLoaded > 0, "the plans are built");
        await scheduler.StopAsync(CancellationToken.None);

        Assert.Equal(TimeSpan.FromMinutes(4), scheduler.PlannedDuration("load")); // from its history
        Assert.Equal(TimeSpan.FromMinutes(2), scheduler.PlannedDuration("given")); // given, so kept
        Assert.Equal(TimeSpan.FromMinutes(4), scheduler.PlannedDuration("sibling")); // the fallback chain: its definition's history
        Assert.Equal(RecurringJob.DefaultExpectedDuration, scheduler.PlannedDuration("fresh")); // no history at any level
    }

    private sealed class UnreadableHistory : IResourceEstimator
    {
        public int Calls;

        public ValueTask<ResourceEstimate?> EstimateAsync(EstimationRequest request, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Calls);
            throw new InvalidOperationException("the history's server went away");
        }
    }

    [Fact]
    public async Task A_run_history_that_cannot_be_read_leaves_the_default_duration_and_the_ticks_go_on()
    {
        var time = new FakeTimeProvider(Start);
        var queue = new InMemoryJobQueue(null, time);
        var estimator = new UnreadableHistory();
        var services = new ServiceCollection().AddLogging().AddSingleton<TimeProvider>(time).AddSingleton<IJobQueue>(queue).AddSingleton<IResourceEstimator>(estimator);
        services.AddScheduling(s => s
            .Configure(o => o.RunWorkers = false)
            .AddRecurringJob("load", "* * * * *", new JobRequest("etl") { Definition = new JobDefinition("etl", 512), Command = "python load.py" }, j => j.Misfire = MisfirePolicy.Skip));
        await using var host = services.BuildServiceProvider();
        var scheduler = host.GetServices<IHostedService>().OfType<RecurringJobScheduler>().Single();

        await scheduler.StartAsync(CancellationToken.None);
        await Eventually.HoldsAsync(() => scheduler.PlansLoaded > 0, "the plans are built");
        Assert.True(estimator.Calls > 0);
        Assert.Equal(RecurringJob.DefaultExpectedDuration, scheduler.PlannedDuration("load"));
        await RunForAsync(time, TimeSpan.FromMinutes(2), scheduler);
        await Eventually.HoldsAsync(async () => (await JobsAsync(queue)).Count >= 2, "ticks are enqueued all the same");
        await scheduler.StopAsync(CancellationToken.None);
    }

    [Theory]
    [InlineData(MisfirePolicy.Skip, 0)]
    [InlineData(MisfirePolicy.FireOnce, 1)]
    [InlineData(MisfirePolicy.CatchUp, 3)]
    public async Task After_an_outage_the_misfire_policy_decides_which_missed_ticks_run(MisfirePolicy policy, int expectedMissed)
    {
        // An hourly job whose ticks at 06:00 and 07:00 and 08:00 (all before Start) were missed.
        var time = new FakeTimeProvider(Start.AddMinutes(5));
        var queue = new InMemoryJobQueue(null, time);
        await using var host = Host(queue, time, j => { j.Misfire = policy; j.MaxCatchUp = 3; }, cron: "0 * * * *");
        var scheduler = host.GetServices<IHostedService>().OfType<RecurringJobScheduler>().Single();
        await scheduler.StartAsync(CancellationToken.None);

        await RunForAsync(time, TimeSpan.FromMinutes(56), scheduler); // through the 09:00 tick
        await Eventually.HoldsAsync(async () => (await JobsAsync(queue)).Any(j => j.RunAt.Hour == 9), "the 09:00 tick is enqueued");
        await scheduler.StopAsync(CancellationToken.None);

        var jobs = await JobsAsync(queue);
        var missed = jobs.Where(j => j.RunAt < Start).Select(j => j.RunAt.Hour).ToArray();
        Assert.Equal(expectedMissed, missed.Length);
        Assert.Equal(Enumerable.Range(8 - expectedMissed + 1, expectedMissed), missed.Order()); // the most recent ones
        Assert.Single(jobs, j => j.RunAt.Hour == 9);
    }

    [Fact]
    public void On_a_spring_forward_day_staggered_jobs_of_the_skipped_hour_keep_their_offsets()
    {
        var berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");
        var day = new DateTime(2026, 3, 29, 0, 0, 0, DateTimeKind.Utc);
        DateTime Fire(string cron) => Occurrences.Between(CronSchedule.Compile(cron), CronSchedule.Parse(cron).FixedSecond, berlin, day, day.AddDays(1)).Single();

        // 02:30 local does not exist that day; Cronos moves both to 03:00:00 local (01:00:00Z).
        Assert.Equal(new DateTime(2026, 3, 29, 1, 0, 17, DateTimeKind.Utc), Fire("17 30 2 * * *"));
        Assert.Equal(new DateTime(2026, 3, 29, 1, 0, 42, DateTimeKind.Utc), Fire("42 30 2 * * *"));
        Assert.Equal(new DateTime(2026, 3, 29, 1, 30, 5, DateTimeKind.Utc), Fire("5 30 3 * * *")); // an ordinary time is untouched
    }

    [Fact]
    public void On_a_fall_back_day_the_repeated_hour_does_not_fire_twice()
    {
        var berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");
        var day = new DateTime(2026, 10, 24, 12, 0, 0, DateTimeKind.Utc);
        var fires = Occurrences.Between(CronSchedule.Compile("17 30 2 * * *"), 17, berlin, day, day.AddDays(1)).ToArray();

        Assert.Equal([new DateTime(2026, 10, 25, 0, 30, 17, DateTimeKind.Utc)], fires); // 02:30:17 CEST, not again at 02:30:17 CET
    }
}
