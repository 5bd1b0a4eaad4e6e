using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Postgres.Tests.Faults;

/// <summary>
/// Real-socket faults between a host and PostgreSQL (<see cref="TcpFaultProxy"/>): connections
/// reset mid-statement (some after their commit, so the reply is lost) and a partition longer than
/// a heartbeat. The host must ride through: every job finishes, none is lost, none is charged an
/// attempt it never ran, and the host still works afterwards.
/// </summary>
public sealed class NetworkFaultTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    [Fact]
    public async Task A_host_rides_through_reset_connections_and_a_partition_and_every_job_finishes()
    {
        var schema = database.NewSchema();
        var direct = new NpgsqlConnectionStringBuilder(database.ConnectionString);
        await using var proxy = new TcpFaultProxy(direct.Host!, direct.Port);
        var viaProxy = new NpgsqlConnectionStringBuilder(database.ConnectionString) { Host = "127.0.0.1", Port = proxy.Port, Timeout = 5, CommandTimeout = 10, KeepAlive = 1 }.ConnectionString;
        const int total = 1_000;
        var executions = new ConcurrentDictionary<int, int>();
        var services = new ServiceCollection().AddLogging();
        services.AddScheduling(s => s
            .UsePostgres(viaProxy, o => o.Schema = schema)
            .Configure(o =>
            {
                o.AddQueue("default", 8);
                o.LeaseDuration = TimeSpan.FromSeconds(6);
                o.HeartbeatInterval = TimeSpan.FromSeconds(1);
                o.RescueInterval = TimeSpan.FromMilliseconds(500);
                o.PollInterval = TimeSpan.FromMilliseconds(200);
                o.Queue.Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(50) };
            })
            .AddHandler<int>("work", async (ctx, ct) =>
            {
                executions.AddOrUpdate(ctx.Payload, 1, (_, n) => n + 1);
                await Task.Delay(20, ct);
            }));
        await using var provider = services.BuildServiceProvider();
        var hosts = provider.GetServices<IHostedService>().ToArray();
        var queue = await database.NewQueueAsync(configure: o => o.Schema = schema); // the test's own view, not through the proxy
        foreach (var host in hosts) await host.StartAsync(CancellationToken.None);

        await queue.EnqueueManyAsync(Enumerable.Range(0, total).Select(i => new JobRequest("work", i) { MaxAttempts = 5 }).ToArray());
        await Eventually.HoldsAsync(() => executions.Count >= 100, "the host is working");
        proxy.ResetAll();
        await Eventually.HoldsAsync(() => executions.Count >= 300, "the host works again after the reset");
        var executionsAtPartition = executions.Count;
        proxy.Pause(); // a partition of two heartbeats
        await Task.Delay(TimeSpan.FromSeconds(2));
        proxy.Resume();
        proxy.ResetAll();
        await Eventually.HoldsAsync(async () => await database.CountJobsAsync(schema, "state = 'succeeded'") == total, "every job succeeds", TimeSpan.FromSeconds(90));
        foreach (var host in hosts.Reverse()) await host.StopAsync(CancellationToken.None);

        Assert.True(proxy.Resets > 0, "connections were reset");
        Assert.True(executionsAtPartition < total, $"the partition came while jobs were still running ({executionsAtPartition} done)");
        Assert.Equal(total, executions.Count);
        Assert.Equal(0L, await database.CountJobsAsync(schema, "state <> 'succeeded'"));
        // No attempt was charged beyond the runs that happened: a reset can cost a rerun, never a job.
        await using var attempts = database.DataSource.CreateCommand($"SELECT id, (payload::text)::int, attempt FROM \"{schema}\".jobs");
        await using var reader = await attempts.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            Assert.True(reader.GetInt32(2) <= executions[reader.GetInt32(1)], $"job {reader.GetInt64(0)} was charged {reader.GetInt32(2)} attempts for {executions[reader.GetInt32(1)]} runs");
    }
}
