using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Stagger.Tests;

/// <summary>What a starting host says about its recurring jobs, and which switch turns staggering on.</summary>
public sealed class RecurringJobsAtStartTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 5, 8, 0, 30, TimeSpan.Zero);

    private static ServiceProvider Build(Action<SchedulingBuilder> configure, FakeLogCollector? logs = null, IDictionary<string, string?>? settings = null, IJobQueue? queue = null, TimeProvider? time = null)
    {
        var services = new ServiceCollection().AddLogging(l => { if (logs is not null) l.AddProvider(new FakeLoggerProvider(logs)); });
        if (settings is not null) services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        if (time is not null) services.AddSingleton(time);
        if (queue is not null) services.AddSingleton(queue);
        services.AddScheduling(configure);
        return services.BuildServiceProvider();
    }

    [Fact]
    public async Task A_new_job_starting_reports_no_day_of_missed_ticks_only_the_one_it_enqueues_late()
    {
        // An hourly job first started at 08:10: the 08:00 tick is past the misfire threshold.
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 8, 10, 0, TimeSpan.Zero));
        var logs = new FakeLogCollector();
        var queue = new InMemoryJobQueue(null, time);
        await using var host = Build(s => s.Configure(o => o.RunWorkers = false).AddRecurringJob("hourly", "0 * * * *", new JobRequest("tick")), logs, queue: queue, time: time);
        var scheduler = host.GetServices<IHostedService>().OfType<RecurringJobScheduler>().Single();
        await scheduler.StartAsync(CancellationToken.None);
        await Eventually.HoldsAsync(() => Task.FromResult(scheduler.SleepingUntil is not null), "the first pass is done");
        await scheduler.StopAsync(CancellationToken.None);

        Assert.DoesNotContain(logs.GetSnapshot(), r => r.Message.Contains("missed tick(s)", StringComparison.Ordinal)); // was "23 missed tick(s) not enqueued"
        var late = Assert.Single(logs.GetSnapshot(), r => r.Message.Contains("was missed while no host ran it", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Warning, late.Level);
        Assert.Equal(8, (await queue.GetJobAsync(1))!.RunAt.Hour); // the one it enqueued late (misfire policy: fire once)
    }

    [Fact]
    public void UseStagger_turns_staggering_on_the_configuration_can_turn_it_off_and_the_code_callback_wins()
    {
        static bool Enabled(ServiceProvider provider) => provider.GetRequiredService<IOptions<StaggerOptions>>().Value.Enabled;
        var off = new Dictionary<string, string?> { ["Scheduling:Stagger:Enabled"] = "false" };
        var on = new Dictionary<string, string?> { ["Scheduling:Stagger:Enabled"] = "true" };

        using (var p = Build(s => s.UseStagger())) Assert.True(Enabled(p)); // was off until a configuration flag was set
        using (var p = Build(s => s.UseStagger(), settings: off)) Assert.False(Enabled(p));
        using (var p = Build(s => s.UseStagger(o => o.Enabled = false), settings: on)) Assert.False(Enabled(p));
        using (var p = Build(s => s.AddRecurringJob("r", "0 * * * *", new JobRequest("k")))) Assert.False(Enabled(p)); // recurring jobs alone: at their own times
        using (var p = Build(s => s.AddRecurringJob("r", "0 * * * *", new JobRequest("k")), settings: on)) Assert.True(Enabled(p));
    }

    [Fact]
    public async Task A_recurring_kind_without_a_handler_and_an_offset_for_no_job_are_warned_at_start()
    {
        var time = new FakeTimeProvider(Start);
        var logs = new FakeLogCollector();
        await using var host = Build(s => s
            .AddHandler<int>("report", (_, _) => Task.CompletedTask)
            .UseStagger(o => o.Offsets["nightly-reprot"] = "15")
            .AddRecurringJob("nightly-report", "0 2 * * *", new JobRequest("reprot")), logs, queue: new InMemoryJobQueue(null, time), time: time);
        var scheduler = host.GetServices<IHostedService>().OfType<RecurringJobScheduler>().Single();
        await scheduler.StartAsync(CancellationToken.None);
        await Eventually.HoldsAsync(() => Task.FromResult(scheduler.SleepingUntil is not null), "the first pass is done");
        await scheduler.StopAsync(CancellationToken.None);

        var warnings = logs.GetSnapshot().Where(r => r.Level == LogLevel.Warning).Select(r => r.Message).ToArray();
        Assert.Contains("Recurring job 'nightly-report' enqueues kind 'reprot', which no handler of this host takes (registered: report); its jobs fail here unless another host handles them", warnings);
        Assert.Contains("Scheduling:Stagger:Offsets:nightly-reprot names no recurring job, so it is ignored (recurring jobs: nightly-report)", warnings);
    }
}
