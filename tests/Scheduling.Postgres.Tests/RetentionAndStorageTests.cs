using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
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

        Assert.Equal(4, await queue.PurgeFinishedAsync(TimeSpan.FromDays(7), 4));
        Assert.Equal(11, await queue.PurgeFinishedAsync(TimeSpan.FromDays(7), 100));
        Assert.Equal(0, await queue.PurgeFinishedAsync(TimeSpan.FromDays(7), 100));

        await using var count = database.DataSource.CreateCommand($"SELECT count(*) FILTER (WHERE state = 'running'), count(*) FILTER (WHERE state = 'available'), count(*) FROM \"{queue.Schema}\".jobs");
        await using var reader = await count.ExecuteReaderAsync();
        await reader.ReadAsync();
        Assert.Equal((5L, 10L, 15L), (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2)));
    }

    [Fact]
    public async Task Retention_is_measured_on_the_database_clock_so_a_host_clock_running_ahead_purges_nothing_early()
    {
        // The host believes it is a year later; the jobs finished moments ago by the database's clock.
        var aYearAhead = new FakeTimeProvider(DateTimeOffset.UtcNow.AddDays(365));
        var options = new PostgresQueueOptions { Schema = database.NewSchema() };
        var queue = new PostgresJobQueue(database.DataSource, options, null, aYearAhead);
        var history = new PostgresRunHistory(database.DataSource, options, new AraOptions(), aYearAhead);
        await queue.EnqueueManyAsync(Enumerable.Range(0, 5).Select(_ => new JobRequest("k")).ToArray());
        var jobs = await queue.AcquireAsync(new AcquireRequest("default", "w", 5, TimeSpan.FromMinutes(5)));
        await queue.AcknowledgeAsync(jobs.Select(j => JobAck.Success(j.Lease)).ToArray());
        await history.RecordAsync(Enumerable.Range(0, 20).Select(_ => new RunOutcome("d", "h", null, 512, 400, null, TimeSpan.FromSeconds(1), 0, false, DateTimeOffset.UtcNow)).ToArray());

        Assert.Equal(0, await queue.PurgeFinishedAsync(TimeSpan.FromDays(7), 100));
        Assert.Equal(0, await history.PruneAsync(TimeSpan.FromDays(30), 100));
        // The estimator's window is the database's too: the runs are recent, so they are used.
        var estimate = await history.EstimateAsync(new EstimationRequest("d", "h", null, new JobDefinition("d", 1000)));
        Assert.Equal((AllocationSource.CommandHistory, 20), (estimate?.Source, estimate?.SampleCount));
        Assert.Equal(5, await queue.PurgeFinishedAsync(TimeSpan.Zero, 100)); // the age is the database's: all are older than none
        Assert.Equal(20, await history.PruneAsync(TimeSpan.Zero, 100));
    }

    [Theory]
    [InlineData(3600, "ahead of")] // the database an hour ahead: the host is an hour behind
    [InlineData(-86400, "behind")]
    public async Task A_host_whose_clock_disagrees_with_the_database_is_warned_once_at_start(int hostBehindSeconds, string direction)
    {
        var options = new PostgresQueueOptions { Schema = database.NewSchema() }.UseDataSource(database.DataSource);
        var holder = new PostgresDataSourceHolder(Microsoft.Extensions.Options.Options.Create(options), new ServiceCollection().BuildServiceProvider());
        var logger = new FakeLogger();
        var hostClock = new FakeTimeProvider(DateTimeOffset.UtcNow - TimeSpan.FromSeconds(hostBehindSeconds));
        var check = new StorageCheck(holder, options, hostClock, logger);

        await check.RunOnceAsync(CancellationToken.None);
        await check.RunOnceAsync(CancellationToken.None);

        var warning = Assert.Single(logger.Collector.GetSnapshot(), r => r.Message.Contains("clock", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains(direction + " this host's", warning.Message, StringComparison.Ordinal);

        var inStep = new FakeLogger();
        await new StorageCheck(holder, options, TimeProvider.System, inStep).RunOnceAsync(CancellationToken.None);
        Assert.DoesNotContain(inStep.Collector.GetSnapshot(), r => r.Message.Contains("clock", StringComparison.Ordinal));
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
