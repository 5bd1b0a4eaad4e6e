using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Xunit;

namespace Scheduling.Postgres.Tests;

public sealed class RetentionAndStorageTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    [Fact]
    public async Task Finished_jobs_past_retention_are_deleted_in_bounded_batches_and_active_ones_never()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 0, 0, 0, TimeSpan.Zero));
        var queue = await database.NewQueueAsync(null, time);
        await queue.EnqueueManyAsync(Enumerable.Range(0, 30).Select(_ => new JobRequest("k") { MaxAttempts = 1 }).ToArray());
        var jobs = await queue.AcquireAsync(new AcquireRequest("default", "w", 20, TimeSpan.FromMinutes(5)));
        await queue.AcknowledgeAsync([.. jobs.Take(10).Select(j => JobAck.Success(j.Lease)), .. jobs.Skip(10).Take(5).Select(j => JobAck.Failure(j.Lease, "x"))]);
        time.Advance(TimeSpan.FromDays(8));

        Assert.Equal(4, await queue.PurgeFinishedAsync(time.GetUtcNow() - TimeSpan.FromDays(7), 4));
        Assert.Equal(11, await queue.PurgeFinishedAsync(time.GetUtcNow() - TimeSpan.FromDays(7), 100));
        Assert.Equal(0, await queue.PurgeFinishedAsync(time.GetUtcNow() - TimeSpan.FromDays(7), 100));

        await using var count = database.DataSource.CreateCommand($"SELECT count(*) FILTER (WHERE state = 'running'), count(*) FILTER (WHERE state = 'available'), count(*) FROM \"{queue.Schema}\".jobs");
        await using var reader = await count.ExecuteReaderAsync();
        await reader.ReadAsync();
        Assert.Equal((5L, 10L, 15L), (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2)));
    }

    [Fact]
    public async Task The_storage_report_shows_dead_tuples_sizes_and_the_transaction_holding_vacuum_back()
    {
        var queue = await database.NewQueueAsync();
        await queue.EnqueueManyAsync(Enumerable.Range(0, 500).Select(_ => new JobRequest("k")).ToArray());
        var jobs = await queue.AcquireAsync(new AcquireRequest("default", "w", 500, TimeSpan.FromMinutes(5)));
        await queue.AcknowledgeAsync(jobs.Select(j => JobAck.Success(j.Lease)).ToArray());

        await using var holder = await database.DataSource.OpenConnectionAsync();
        await using var tx = await holder.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead);
        await using (var touch = new NpgsqlCommand("SELECT 1", holder, tx)) await touch.ExecuteScalarAsync();
        await using (var stats = database.DataSource.CreateCommand("SELECT pg_stat_force_next_flush()")) await stats.ExecuteNonQueryAsync();

        var report = await PostgresStorageReport.ReadAsync(database.DataSource, queue.Schema);

        var table = Assert.Single(report.Tables, t => t.Table == "jobs");
        Assert.True(table.TableBytes > 0 && table.IndexBytes > 0);
        Assert.Contains(report.Tables, t => t.Table == "run_history");
        Assert.NotNull(report.OldestTransaction); // ours at least (another test's may be older)
        Assert.True(report.OldestTransaction!.Age >= TimeSpan.Zero);
        await using (var setting = database.DataSource.CreateCommand("SELECT current_setting('autovacuum_naptime')"))
            Assert.Equal((string)(await setting.ExecuteScalarAsync())!, $"{report.AutovacuumNaptime!.Value.TotalSeconds}s");
        await tx.RollbackAsync();
    }
}
