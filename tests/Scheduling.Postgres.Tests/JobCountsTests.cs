using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Xunit;

namespace Scheduling.Postgres.Tests;

/// <summary>
/// The maintained job counts (migration 0022) behind the statistics, the gauges and the dashboard: seeded
/// from the jobs already there when the migration runs, untouched by heartbeats, and the finish events kept
/// for a day. That they equal a count of the table after every operation is checked by the model-based and
/// concurrent properties.
/// </summary>
public sealed class JobCountsTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task The_migration_counts_the_jobs_a_schema_already_holds()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var queue = await database.NewQueueAsync(time: time);
        await queue.EnqueueManyAsync(Enumerable.Range(0, 40).Select(i => new JobRequest(i % 3 == 0 ? "a" : "b") { Queue = i % 2 == 0 ? "q0" : "q1", MaxAttempts = 1 }).ToArray());
        await queue.EnqueueAsync(new JobRequest("later") { RunAt = time.GetUtcNow().AddHours(1) });
        var held = await queue.AcquireAsync(new AcquireRequest("q0", "w", 10, Lease));
        await queue.AcknowledgeAsync(held.Take(6).Select(j => j.Lease.JobId % 2 == 0 ? JobAck.Success(j.Lease) : JobAck.Failure(j.Lease, "boom")).ToArray());
        var statsBefore = Describe(await queue.GetQueueStatsAsync());
        var activityBefore = await queue.GetActivityAsync(TimeSpan.FromHours(1));

        // The schema as a library before migration 22 left it, then migrated by this one.
        await using (var undo = database.DataSource.CreateCommand($"""
            DROP TRIGGER jobs_count_insert ON "{queue.Schema}".jobs; DROP TRIGGER jobs_count_update ON "{queue.Schema}".jobs; DROP TRIGGER jobs_count_delete ON "{queue.Schema}".jobs;
            DROP TRIGGER jobs_count_truncate ON "{queue.Schema}".jobs;
            DROP TABLE "{queue.Schema}".job_counts, "{queue.Schema}".job_sized_counts, "{queue.Schema}".job_count_changes, "{queue.Schema}".job_activity;
            DROP FUNCTION "{queue.Schema}".count_job_changes(), "{queue.Schema}".fold_job_counts(timestamptz), "{queue.Schema}".job_count_amount(text, integer), "{queue.Schema}".job_finish_minute(text, timestamptz);
            DROP INDEX "{queue.Schema}".jobs_available_run_idx;
            DELETE FROM "{queue.Schema}".schema_migrations WHERE version = 22;
            DELETE FROM "{queue.Schema}".schema_functions WHERE name LIKE '%job_counts%';
            """))
            await undo.ExecuteNonQueryAsync();
        await using (var counted = database.DataSource.CreateCommand($"SELECT count(*) FROM \"{queue.Schema}\".jobs"))
            Assert.Equal(41L, await counted.ExecuteScalarAsync());

        Assert.Equal([22], await queue.MigrateAsync());
        var (maintained, counts) = await PostgresDatabaseFixture.MaintainedCountsAsync(database.DataSource, queue.Schema);
        Assert.Equal(counts, maintained);
        Assert.Equal(statsBefore, Describe(await queue.GetQueueStatsAsync()));
        Assert.Equal(activityBefore, await queue.GetActivityAsync(TimeSpan.FromHours(1)));
    }

    [Fact]
    public async Task A_heartbeat_appends_no_change_and_a_finish_is_kept_for_a_day()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 6, 10, 0, 30, TimeSpan.Zero));
        var queue = await database.NewQueueAsync(time: time);
        await queue.EnqueueManyAsync([new JobRequest("k"), new JobRequest("k")]);
        var held = await queue.AcquireAsync(new AcquireRequest("default", "w", 2, Lease));
        await queue.GetQueueStatsAsync(); // folds
        Assert.Equal(0L, await ChangesAsync(queue));

        Assert.Equal(2, (await queue.HeartbeatAsync("w", held.Select(j => j.Lease).ToArray(), Lease)).Count);
        Assert.Equal(0L, await ChangesAsync(queue));

        await queue.AcknowledgeAsync([JobAck.Success(held[0].Lease)]);
        Assert.True(await ChangesAsync(queue) > 0);
        var finished = new QueueActivity("default", new DateTimeOffset(2026, 12, 6, 10, 0, 0, TimeSpan.Zero), 1, 0, 0);
        Assert.Equal([finished], await queue.GetActivityAsync(TimeSpan.FromMinutes(1))); // read before and after the fold alike
        Assert.Equal([finished], await queue.GetActivityAsync(TimeSpan.FromMinutes(1)));
        Assert.Equal(0L, await ChangesAsync(queue));

        // Purging the finished job leaves its event; a day later the event is gone.
        time.Advance(TimeSpan.FromHours(2));
        Assert.Equal(1, await queue.PurgeFinishedAsync(TimeSpan.FromHours(1), 100));
        Assert.Equal([finished], await queue.GetActivityAsync(TimeSpan.FromHours(3)));
        time.Advance(TimeSpan.FromDays(1));
        Assert.Empty(await queue.GetActivityAsync(TimeSpan.FromDays(1)));
        await using var kept = database.DataSource.CreateCommand($"SELECT count(*) FROM \"{queue.Schema}\".job_activity");
        Assert.Equal(0L, await kept.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Truncating_the_jobs_table_starts_the_counts_again_from_nothing()
    {
        var queue = await database.NewQueueAsync();
        await queue.EnqueueManyAsync(Enumerable.Range(0, 5).Select(_ => new JobRequest("k")).ToArray());
        Assert.Equal(5, Assert.Single(await queue.GetQueueStatsAsync()).Available);
        await queue.EnqueueAsync(new JobRequest("k")); // a change not folded yet

        await using (var truncate = database.DataSource.CreateCommand($"TRUNCATE \"{queue.Schema}\".jobs CASCADE"))
            await truncate.ExecuteNonQueryAsync();
        Assert.Empty(await queue.GetQueueStatsAsync());
        await queue.EnqueueAsync(new JobRequest("k"));
        Assert.Equal(1, Assert.Single(await queue.GetQueueStatsAsync()).Available);
        var (maintained, counted) = await PostgresDatabaseFixture.MaintainedCountsAsync(database.DataSource, queue.Schema);
        Assert.Equal(counted, maintained);
    }

    [Fact]
    public async Task A_reader_that_cannot_fold_counts_oversized_jobs_from_the_changes()
    {
        var queue = await database.NewQueueAsync();
        await queue.ReportHostAsync(new WorkerHostInfo("h", [JobRequest.DefaultQueue], new ResourceCapacity(MemoryMb: 1_000)), TimeSpan.FromMinutes(5));
        JobRequest Sized(int memoryMb) => new("k") { Definition = new JobDefinition("d", memoryMb) };
        await queue.EnqueueManyAsync([Sized(500), Sized(2_000)]);
        Assert.Equal(1L, Assert.Single(await queue.GetQueueStatsAsync()).Oversized); // folded
        await queue.EnqueueManyAsync([Sized(3_000), Sized(3_000), Sized(900)]); // not folded

        var readOnly = new NpgsqlConnectionStringBuilder(database.ConnectionString) { Options = "-c default_transaction_read_only=on" }.ConnectionString;
        await using var source = NpgsqlDataSource.Create(readOnly);
        var reader = new PostgresJobQueue(source, new PostgresQueueOptions { Schema = queue.Schema, ApplyMigrations = false });
        var stats = Assert.Single(await reader.GetQueueStatsAsync());
        Assert.Equal((5L, 3L), (stats.Available, stats.Oversized));
        Assert.True(await ChangesAsync(queue) > 0); // nothing was folded
    }

    private async Task<long> ChangesAsync(PostgresJobQueue queue)
    {
        await using var command = database.DataSource.CreateCommand($"SELECT count(*) FROM \"{queue.Schema}\".job_count_changes");
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static string Describe(IReadOnlyList<QueueStats> stats) =>
        string.Join("; ", stats.Select(q => $"{q.Queue} {q.Available}/{q.Scheduled}/{q.Running}/{q.Waiting} {q.OldestDue:O} {q.Oversized}"));
}
