using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Postgres.Tests.Hosting;

/// <summary>
/// Completing a job inside the handler's own transaction: its effects in this database and its
/// completion commit together or not at all, fenced by the lease; with worker processes killed
/// mid-transaction again and again, every job's effect is there exactly once.
/// </summary>
public sealed class CompleteWithinTransactionTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(1);

    private async Task<(PostgresJobQueue Queue, string Schema)> QueueWithEffectsAsync()
    {
        var queue = await database.NewQueueAsync();
        await using var create = database.DataSource.CreateCommand($"CREATE TABLE \"{queue.Schema}\".effects (job_id bigint NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())");
        await create.ExecuteNonQueryAsync();
        return (queue, queue.Schema);
    }

    private async Task<long> EffectsAsync(string schema, long jobId)
    {
        await using var count = database.DataSource.CreateCommand($"SELECT count(*) FROM \"{schema}\".effects WHERE job_id = $1");
        count.Parameters.AddWithValue(jobId);
        return (long)(await count.ExecuteScalarAsync())!;
    }

    private static async Task WriteEffectAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string schema, long jobId)
    {
        await using var insert = new NpgsqlCommand($"INSERT INTO \"{schema}\".effects (job_id) VALUES ($1)", connection, transaction);
        insert.Parameters.AddWithValue(jobId);
        await insert.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task The_effect_and_the_completion_commit_together_or_roll_back_together_and_a_lost_lease_writes_nothing()
    {
        var (queue, schema) = await QueueWithEffectsAsync();
        var ids = await queue.EnqueueManyAsync([new JobRequest("k") { LocalKey = "p" }, new JobRequest("k") { DependsOn = [JobDependency.OnRequest("p")] }, new JobRequest("k"), new JobRequest("k")]);
        var leased = await queue.AcquireAsync(new AcquireRequest("default", "w", 10, Lease));
        var (parent, rolledBack, rescued) = (leased.Single(j => j.Id == ids[0].JobId), leased.Single(j => j.Id == ids[2].JobId), leased.Single(j => j.Id == ids[3].JobId));

        // Committed: the effect, the success, the result and the released child, at once.
        await using (var connection = await database.DataSource.OpenConnectionAsync())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await WriteEffectAsync(connection, transaction, schema, parent.Id);
            var context = new JobContext<int>(parent, 0);
            context.SetResult(new { rows = 3 });
            await queue.CompleteWithinAsync(context, transaction);
            Assert.True(context.Output.CompletedInTransaction);
            Assert.Equal(JobState.Running, (await queue.GetJobAsync(parent.Id))!.State); // not before the commit
            await transaction.CommitAsync();
        }

        var done = (await queue.GetJobAsync(parent.Id))!;
        Assert.Equal((JobState.Succeeded, 1L), (done.State, await EffectsAsync(schema, parent.Id)));
        Assert.NotNull(done.ResultJson);
        Assert.Equal(JobState.Available, (await queue.GetJobAsync(ids[1].JobId))!.State);
        Assert.False(Assert.Single(await queue.AcknowledgeAsync([JobAck.Success(parent.Lease)])).Applied); // the worker's own acknowledgement comes too late

        // Rolled back: neither happened; the job still runs under its lease and the worker's failure applies.
        await using (var connection = await database.DataSource.OpenConnectionAsync())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await WriteEffectAsync(connection, transaction, schema, rolledBack.Id);
            await queue.CompleteWithinAsync(new JobContext<int>(rolledBack, 0), transaction);
            await transaction.RollbackAsync();
        }

        Assert.Equal((JobState.Running, 0L), ((await queue.GetJobAsync(rolledBack.Id))!.State, await EffectsAsync(schema, rolledBack.Id)));
        Assert.True(Assert.Single(await queue.AcknowledgeAsync([JobAck.Failure(rolledBack.Lease, "did not commit")])).Applied);

        // A lease lost meanwhile (rescued, leased again elsewhere): the completion is refused and the transaction rolled back.
        await using (var expire = database.DataSource.CreateCommand($"UPDATE \"{schema}\".jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1"))
        {
            expire.Parameters.AddWithValue(rescued.Id);
            await expire.ExecuteNonQueryAsync();
        }

        Assert.Equal(1, await queue.RescueExpiredLeasesAsync());
        var again = Assert.Single(await queue.AcquireAsync(new AcquireRequest("default", "w2", 10, Lease)), j => j.Id == rescued.Id);
        await using (var connection = await database.DataSource.OpenConnectionAsync())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await WriteEffectAsync(connection, transaction, schema, rescued.Id);
            var lost = await Assert.ThrowsAsync<JobLeaseLostException>(() => queue.CompleteWithinAsync(new JobContext<int>(rescued, 0), transaction));
            Assert.Equal(rescued.Id, lost.JobId);
            await transaction.RollbackAsync();
        }

        Assert.Equal((JobState.Running, 0L), ((await queue.GetJobAsync(rescued.Id))!.State, await EffectsAsync(schema, rescued.Id)));
        Assert.Equal("w2", (await queue.GetJobAsync(again.Id))!.LockedBy); // the new holder's lease is untouched
    }

    [Fact]
    public async Task A_handler_in_a_worker_host_completes_in_its_transaction_once_and_a_rollback_retries_it()
    {
        var (queue, schema) = await QueueWithEffectsAsync();
        var attempts = 0;
        var services = new ServiceCollection().AddLogging();
        services.AddScheduling(s => s
            .UsePostgres(database.ConnectionString, o => o.Schema = schema)
            .Configure(o => { o.AddQueue("tx", 2); o.Queue.Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.FromMilliseconds(10), Jitter = RetryJitter.None }; })
            .AddHandler<int>("effect", async (ctx, ct) =>
            {
                await using var connection = await database.DataSource.OpenConnectionAsync(ct);
                await using var transaction = await connection.BeginTransactionAsync(ct);
                await WriteEffectAsync(connection, transaction, schema, ctx.Job.Id);
                await queue.CompleteWithinAsync(ctx, transaction, ct); // any PostgresJobQueue of the schema (the host's own, injected, in an application)
                if (Interlocked.Increment(ref attempts) == 1) await transaction.RollbackAsync(ct); // the first attempt's transaction never commits
                else await transaction.CommitAsync(ct);
            }));
        await using var provider = services.BuildServiceProvider();
        var id = (await queue.EnqueueAsync(new JobRequest("effect", 1) { Queue = "tx" })).JobId;
        var hosts = provider.GetServices<IHostedService>().ToArray();
        foreach (var host in hosts) await host.StartAsync(CancellationToken.None);
        await Eventually.HoldsAsync(async () => (await queue.GetJobAsync(id))!.State == JobState.Succeeded, "the job succeeds on its second attempt");
        foreach (var host in hosts.Reverse()) await host.StopAsync(CancellationToken.None);

        var job = (await queue.GetJobAsync(id))!;
        Assert.Equal((2, 1L), (job.Attempt, await EffectsAsync(schema, id)));
        Assert.Contains("did not commit", Assert.Single(job.Errors).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Worker_processes_killed_mid_transaction_again_and_again_leave_each_effect_exactly_once()
    {
        const int jobs = 240, processes = 3, kills = 8;
        var (queue, schema) = await QueueWithEffectsAsync();
        await queue.EnqueueManyAsync(Enumerable.Range(0, jobs).Select(i => new JobRequest("effect", i) { Queue = "effects", MaxAttempts = 50 }).ToArray());
        var random = new Random(7);
        var running = new List<Process>();
        async Task<Process> StartAsync()
        {
            var process = ToolProcess.Start("Scheduling.TestEnqueuer.dll", ["effects", database.ConnectionString, schema, "effects", "effect", "2"]);
            Assert.Equal("ready", await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)));
            return process;
        }

        try
        {
            for (var i = 0; i < processes; i++) running.Add(await StartAsync());
            var killedWhileWorkRemained = 0;
            for (var k = 0; k < kills; k++)
            {
                // Wait for progress, then kill a worker at whatever point its transactions are at.
                var before = await database.CountJobsAsync(schema, "state = 'succeeded'");
                await Eventually.HoldsAsync(async () => await database.CountJobsAsync(schema, "state = 'succeeded'") > before || before == jobs, "the workers make progress", TimeSpan.FromSeconds(60));
                var victim = running[random.Next(running.Count)];
                if (await database.CountJobsAsync(schema, "state <> 'succeeded'") > 0) killedWhileWorkRemained++;
                victim.Kill(entireProcessTree: true); // SIGKILL: open transactions die with their connections
                await victim.WaitForExitAsync();
                victim.Dispose();
                running.Remove(victim);
                running.Add(await StartAsync());
            }

            await Eventually.HoldsAsync(async () => await database.CountJobsAsync(schema, "state = 'succeeded'") == jobs, "every job succeeds", TimeSpan.FromSeconds(120));
            Assert.True(killedWhileWorkRemained >= 3, $"only {killedWhileWorkRemained} kills landed while jobs remained");
        }
        finally
        {
            foreach (var process in running)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
                process.Dispose();
            }
        }

        await using var check = database.DataSource.CreateCommand($"""
            SELECT (SELECT count(DISTINCT job_id) FROM "{schema}".effects),
                   (SELECT count(*) FROM (SELECT job_id FROM "{schema}".effects GROUP BY job_id HAVING count(*) <> 1) AS twice)
            """);
        await using var reader = await check.ExecuteReaderAsync();
        await reader.ReadAsync();
        Assert.Equal((jobs, 0L), (reader.GetInt64(0), reader.GetInt64(1))); // every job's effect, none twice
    }
}
