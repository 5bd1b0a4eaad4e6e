using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;
using Scheduling.Stagger;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Postgres.Tests.Hosting;

/// <summary>Three hosts (three service providers) on one database enqueue each recurring tick exactly once.</summary>
public sealed class RecurringTicksOnPostgresTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    [Fact]
    public async Task Three_hosts_on_one_database_enqueue_each_tick_once()
    {
        var schema = database.NewSchema();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 8, 0, 45, TimeSpan.Zero));
        var hosts = Enumerable.Range(0, 3).Select(_ =>
        {
            var services = new ServiceCollection().AddLogging();
            services.AddSingleton<TimeProvider>(time);
            services.AddScheduling(s => s
                .UsePostgres(database.ConnectionString, o => { o.Schema = schema; o.UseDatabaseClock = false; })
                .Configure(o => o.RunWorkers = false)
                .UseStagger(o => o.Enabled = true)
                .AddRecurringJob("every-minute", "* * * * *", new JobRequest("tick"), j => j.Misfire = MisfirePolicy.Skip)
                .AddRecurringJob("every-two", "*/2 * * * *", new JobRequest("tick"), j => j.Misfire = MisfirePolicy.Skip));
            return services.BuildServiceProvider();
        }).ToArray();
        var schedulers = hosts.Select(h => h.GetServices<IHostedService>().OfType<RecurringJobScheduler>().Single()).ToArray();
        await hosts[0].GetRequiredService<PostgresJobQueue>().MigrateAsync();
        foreach (var scheduler in schedulers) await scheduler.StartAsync(CancellationToken.None);

        await SleeperClock.RunAsync(time, TimeSpan.FromMinutes(5), () => schedulers.Select(s => s.SleepingUntil));

        await Eventually.HoldsAsync(async () => await CountAsync(schema, "count(*)") >= 7, "five minutes of ticks are enqueued");
        foreach (var scheduler in schedulers) await scheduler.StopAsync(CancellationToken.None);

        Assert.Equal(await CountAsync(schema, "count(DISTINCT unique_key)"), await CountAsync(schema, "count(*)"));
        Assert.InRange(await CountAsync(schema, "count(*)"), 7, 8); // 5 every-minute + 2 or 3 every-two ticks
        foreach (var host in hosts) await host.DisposeAsync();
    }

    private async Task<long> CountAsync(string schema, string aggregate)
    {
        await using var command = database.DataSource.CreateCommand($"SELECT {aggregate} FROM \"{schema}\".jobs");
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
