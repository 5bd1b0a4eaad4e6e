using Microsoft.Extensions.DependencyInjection;
using Scheduling.Testing;
using Xunit;

namespace Scheduling.Postgres.Tests;

/// <summary>The testing kit's assertions and runner against a real PostgreSQL queue, as a user's integration tests would use them.</summary>
public sealed class TestingKitOnPostgresTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private sealed record Order(int Number);

    [Fact]
    public async Task The_enqueued_job_assertions_read_a_postgres_queue()
    {
        var queue = await database.NewQueueAsync();
        await queue.EnqueueManyAsync(Enumerable.Range(1, 3).Select(n => new JobRequest("ship", new Order(n)) { Queue = "orders" }).ToArray());
        await queue.EnqueueAsync(new JobRequest("ship", new Order(9)) { RunAt = DateTimeOffset.UtcNow.AddHours(1) });

        Assert.Equal([1, 2, 3, 9], (await queue.AssertEnqueuedAsync("ship", count: 4)).Select(j => j.Payload<Order>()!.Number));
        await queue.AssertEnqueuedAsync<Order>("ship", o => o.Number == 9, count: 1);
        await queue.AssertNotEnqueuedAsync<Order>("ship", o => o.Number == 4);
        var error = await Assert.ThrowsAsync<JobAssertionException>(() => queue.AssertEnqueuedAsync<Order>("ship", o => o.Number == 4));
        Assert.Contains("{\"number\": 2}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_manual_runner_runs_a_postgres_hosts_jobs_and_skips_backoff_on_the_fake_clock()
    {
        var schema = database.NewSchema();
        var attempts = new List<(int Number, int Attempt)>();
        var services = new ServiceCollection().AddLogging();
        services.AddScheduling(s => s
            .UsePostgres(database.ConnectionString, o => { o.Schema = schema; o.UseDatabaseClock = false; })
            .AddHandler<Order>("ship", (context, _) =>
            {
                lock (attempts) attempts.Add((context.Payload.Number, context.Job.Attempt));
                return context.Payload.Number == 2 && context.Job.Attempt < 3 ? throw new InvalidOperationException("carrier down") : Task.CompletedTask;
            })
            .UseTesting());
        await using var provider = services.BuildServiceProvider();
        var queue = provider.GetRequiredService<IJobQueue>();
        Assert.IsType<PostgresJobQueue>(queue);
        await queue.EnqueueManyAsync([new JobRequest("ship", new Order(1)), new JobRequest("ship", new Order(2))]);
        await queue.AssertEnqueuedAsync("ship", count: 2);

        var summary = await provider.GetRequiredService<TestJobRunner>().RunPendingAsync();

        Assert.Equal([(1, 1), (2, 1), (2, 2), (2, 3)], attempts);
        Assert.Equal((2, 2), (summary.Succeeded, summary.Retried));
        await queue.AssertNotEnqueuedAsync("ship");
        Assert.Equal(2, (await queue.ListJobsAsync(new JobListQuery { States = [JobState.Succeeded] })).Count);
    }
}
