using Scheduling.LocalPostgres;
using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Postgres.Tests.Hosting;

/// <summary>
/// PostgreSQL restarts under a steady load (its own throwaway cluster even when
/// SCHEDULING_TEST_POSTGRES names a server, so neither other tests nor that server are disturbed): workers reconnect and carry on, enqueues that fail are retried idempotently, and
/// every job ends exactly once.
/// </summary>
public sealed class DatabaseRestartTests
{
    [Fact]
    public async Task Workers_and_enqueuers_ride_through_a_database_restart_and_every_job_finishes_once()
    {
        await using var cluster = await PostgresTestServer.StartPrivateClusterAsync(nameof(DatabaseRestartTests), "restarts PostgreSQL under load");
        var connection = cluster.ConnectionString() + ";Timeout=5;Command Timeout=30";
        const int total = 2000;
        var executions = new ConcurrentDictionary<int, int>();
        var services = new ServiceCollection().AddLogging();
        services.AddScheduling(s => s
            .UsePostgres(connection, o => o.Schema = "restart")
            .Configure(o =>
            {
                o.AddQueue("default", 4);
                o.LeaseDuration = TimeSpan.FromSeconds(5);
                o.HeartbeatInterval = TimeSpan.FromSeconds(1);
                o.RescueInterval = TimeSpan.FromSeconds(1);
                o.PollInterval = TimeSpan.FromMilliseconds(200);
            })
            .AddHandler<int>("work", async (ctx, ct) =>
            {
                executions.AddOrUpdate(ctx.Payload, 1, (_, n) => n + 1);
                await Task.Delay(1, ct);
            }));
        await using var provider = services.BuildServiceProvider();
        var hosts = provider.GetServices<IHostedService>().ToArray();
        foreach (var host in hosts) await host.StartAsync(CancellationToken.None);
        var queue = provider.GetRequiredService<IJobQueue>();

        // Enqueue steadily; a failed call is retried with the same unique key, so a write that did
        // commit before the connection broke is found rather than duplicated.
        var transientErrors = 0;
        var enqueuer = Task.Run(async () =>
        {
            for (var i = 0; i < total; i++)
            {
                for (var attempt = 1; ; attempt++)
                {
                    try
                    {
                        await queue.EnqueueAsync(new JobRequest("work", i) { UniqueKey = $"job-{i}", UniqueScope = UniqueKeyScope.AnyState });
                        break;
                    }
                    catch (Exception ex) when (ex is NpgsqlException or TimeoutException && attempt < 50)
                    {
                        Interlocked.Increment(ref transientErrors);
                        await Task.Delay(100 * Math.Min(attempt, 10));
                    }
                }

                if (i % 20 == 0) await Task.Delay(5);
            }
        });

        await Eventually.HoldsAsync(() => executions.Count > total / 4, "a quarter of the jobs ran", TimeSpan.FromSeconds(60));
        cluster.Restart(); // pg_ctl restart -m fast: every connection breaks
        await enqueuer.WaitAsync(TimeSpan.FromSeconds(120));

        await using var dataSource = NpgsqlDataSource.Create(connection);
        await Eventually.HoldsAsync(async () =>
        {
            await using var count = dataSource.CreateCommand("SELECT count(*) FROM restart.jobs WHERE state = 'succeeded'");
            return (long)(await count.ExecuteScalarAsync())! == total;
        }, "every job succeeds after the restart", TimeSpan.FromSeconds(120));
        foreach (var host in hosts.Reverse()) await host.StopAsync(CancellationToken.None);

        await using (var check = dataSource.CreateCommand("SELECT count(*), count(DISTINCT unique_key), count(*) FILTER (WHERE state <> 'succeeded') FROM restart.jobs"))
        await using (var reader = await check.ExecuteReaderAsync())
        {
            await reader.ReadAsync();
            Assert.Equal((long)total, reader.GetInt64(0)); // nothing lost, nothing written twice
            Assert.Equal((long)total, reader.GetInt64(1));
            Assert.Equal(0L, reader.GetInt64(2));
        }

        Assert.Equal(total, executions.Count);
        var duplicates = executions.Values.Sum(n => n - 1); // allowed by at-least-once; must be rare
        Assert.True(duplicates <= total / 20, $"{duplicates} duplicate executions");
        Console.WriteLine($"restart: {transientErrors} transient enqueue errors retried, {duplicates} duplicate executions of {total}");
    }
}
