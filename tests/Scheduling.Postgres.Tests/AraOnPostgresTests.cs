using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Xunit;

namespace Scheduling.Postgres.Tests;

/// <summary>ARA against the real server: md5 parity, stored allocations, the recorded history, the estimator, the impact report and its CLI.</summary>
public sealed class AraOnPostgresTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly JobDefinition Python = new("python-etl", 50);

    [Fact]
    public void The_hash_equals_postgresqls_md5_on_random_unicode_commands()
    {
        Prop.ForAll(Arb.From(ArbMap.Default.GeneratorFor<NonEmptyString>().Where(s => !s.Get.Contains('\0') && !s.Get.Any(char.IsSurrogate))), command =>
        {
            using var sql = database.DataSource.CreateCommand("SELECT md5($1)");
            sql.Parameters.AddWithValue(command.Get);
            return (string)sql.ExecuteScalar()! == Md5CommandHasher.Instance.Hash(command.Get);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(200));
        Assert.Equal(32, Md5CommandHasher.Instance.Hash("ünïcødé ✓ 日本")!.Length);
    }

    private async Task<(PostgresJobQueue Queue, PostgresRunHistory History, FakeTimeProvider Time, string Schema)> StoreAsync(AraOptions? ara = null)
    {
        ara ??= new AraOptions();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 0, 0, 0, TimeSpan.Zero));
        var options = new PostgresQueueOptions { Schema = database.NewSchema(), UseDatabaseClock = false };
        var history = new PostgresRunHistory(database.DataSource, options, ara, time);
        var queue = new PostgresJobQueue(database.DataSource, options, null, time, new ResourceAllocator(history, null, ara));
        await queue.MigrateAsync();
        return (queue, history, time, options.Schema);
    }

    [Fact]
    public async Task A_run_is_recorded_once_per_attempt_and_only_under_its_valid_lease_and_the_history_is_pruned_to_the_window()
    {
        var (queue, history, time, schema) = await StoreAsync();
        await queue.EnqueueAsync(new JobRequest("etl") { Command = "python etl.py --table t9", Definition = Python });
        var job = Assert.Single(await queue.AcquireAsync(new AcquireRequest("default", "w", 1, TimeSpan.FromMinutes(1))));
        var ack = JobAck.Success(job.Lease) with { Usage = new ResourceUsage { PeakMemoryMb = 3000 }, RunDuration = TimeSpan.FromSeconds(5) };

        await queue.AcknowledgeAsync([ack]);
        await queue.AcknowledgeAsync([ack]); // the same batch written again (its reply was lost)
        await queue.AcknowledgeAsync([ack with { Lease = ack.Lease with { Token = Guid.NewGuid() } }]); // a stale lease
        Assert.Equal(1L, await RunCountAsync(schema));

        // Older than the estimator's window: pruned in bounded batches, the recent run kept.
        await history.RecordAsync(Enumerable.Range(0, 5).Select(i => new RunOutcome(Python.Id, "h", null, 512, 400, null, TimeSpan.FromSeconds(1), 0, false, time.GetUtcNow() - TimeSpan.FromDays(40 + i))).ToArray());
        Assert.Equal(6L, await RunCountAsync(schema));
        Assert.Equal(3, await history.PruneAsync(new AraOptions().Estimator.Window, 3));
        Assert.Equal(2, await history.PruneAsync(new AraOptions().Estimator.Window, 3));
        Assert.Equal(0, await history.PruneAsync(new AraOptions().Estimator.Window, 3));
        Assert.Equal(1L, await RunCountAsync(schema));
    }

    private async Task<long> RunCountAsync(string schema)
    {
        await using var count = database.DataSource.CreateCommand($"SELECT count(*) FROM \"{schema}\".run_history");
        return (long)(await count.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task Enqueue_stores_the_command_hash_and_the_allocation_and_acks_with_usage_feed_the_history()
    {
        var (queue, _, time, schema) = await StoreAsync();
        var first = (await queue.EnqueueAsync(new JobRequest("etl") { Command = "python etl.py --table t1", Description = "Nightly ETL", Definition = Python })).JobId;
        var stored = (await queue.GetJobAsync(first))!;
        Assert.Equal(Md5CommandHasher.Instance.Hash("python etl.py --table t1"), stored.CommandHash);
        Assert.Equal(("Nightly ETL", 512, AllocationSource.Baseline, true), (stored.Description, stored.Allocation!.MemoryMb, stored.Allocation.Source, stored.Allocation.Clamped));

        // Three runs at about 4 GB, reported through acknowledgements.
        for (var i = 0; i < 3; i++)
        {
            if (i > 0) await queue.EnqueueAsync(new JobRequest("etl") { Command = "python etl.py --table t1", Definition = Python });
            var job = Assert.Single(await queue.AcquireAsync(new AcquireRequest("default", "w", 1, TimeSpan.FromMinutes(1))));
            Assert.NotNull(job.Allocation);
            await queue.AcknowledgeAsync([JobAck.Success(job.Lease) with { Usage = new ResourceUsage { PeakMemoryMb = 4000 - i * 100, PeakCpuMillicores = 900 }, RunDuration = TimeSpan.FromSeconds(30) }]);
            time.Advance(TimeSpan.FromHours(3));
        }

        await using (var count = database.DataSource.CreateCommand($"SELECT count(*), max(peak_memory_mb), min(duration_ms) FROM \"{schema}\".run_history"))
        await using (var reader = await count.ExecuteReaderAsync())
        {
            await reader.ReadAsync();
            Assert.Equal((3L, 4000, 30_000L), (reader.GetInt64(0), reader.GetInt32(1), reader.GetInt64(2)));
        }

        var next = (await queue.EnqueueAsync(new JobRequest("etl") { Command = "python etl.py --table t1", Definition = Python })).JobId;
        var sized = (await queue.GetJobAsync(next))!.Allocation!;
        Assert.Equal((AllocationSource.CommandHistory, 3), (sized.Source, sized.SampleCount));
        Assert.InRange(sized.MemoryMb, 4000, 6000);
        Assert.Equal(TimeSpan.FromSeconds(30), sized.ExpectedDuration); // stored with the job, and leased with it
        Assert.Equal(TimeSpan.FromSeconds(30), Assert.Single(await queue.AcquireAsync(new AcquireRequest("default", "w", 1, TimeSpan.FromMinutes(1)))).Allocation!.ExpectedDuration);
        Assert.Null(stored.Allocation.ExpectedDuration);

        // A deadline to finish by: the latest start keeps room for the 30 s its history shows; one that
        // cannot make it is never started and expires.
        var finishBy = time.GetUtcNow().AddMinutes(10);
        var inTime = (await queue.EnqueueAsync(new JobRequest("etl") { Command = "python etl.py --table t1", Definition = Python, FinishBy = finishBy })).JobId;
        Assert.Equal(finishBy.AddSeconds(-30), (await queue.GetJobAsync(inTime))!.LatestStartAt);
        var late = (await queue.EnqueueAsync(new JobRequest("etl") { Command = "python etl.py --table t1", Definition = Python, FinishBy = time.GetUtcNow().AddSeconds(10) })).JobId;
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal([inTime], (await queue.AcquireAsync(new AcquireRequest("default", "w", 10, TimeSpan.FromMinutes(1)))).Select(j => j.Id));
        Assert.Equal(1, await queue.ExpireOverdueAsync());
        Assert.Equal(JobState.Expired, (await queue.GetJobAsync(late))!.State);
    }

    [Fact]
    public async Task The_estimator_reads_the_fallback_chain_in_order()
    {
        var (_, history, time, _) = await StoreAsync(new AraOptions { NormalizeCommands = true });
        var allocator = new ResourceAllocator(history, null, new AraOptions { NormalizeCommands = true });
        var command = "python load.py --date 2026-01-05";
        await history.RecordAsync([new RunOutcome("python-etl", allocator.HashCommand(command)!, allocator.HashNormalizedCommand(command), 8000, 6000, 800, TimeSpan.FromMinutes(2), 0, false, time.GetUtcNow())]);

        Assert.Equal(AllocationSource.CommandHistory, (await allocator.AllocateAsync(Python, command)).Source);
        Assert.Equal(AllocationSource.NormalizedCommandHistory, (await allocator.AllocateAsync(Python, "python load.py --date 2026-01-06")).Source);
        Assert.Equal(AllocationSource.DefinitionHistory, (await allocator.AllocateAsync(Python, "python other.py")).Source);
        Assert.Equal(AllocationSource.Baseline, (await allocator.AllocateAsync(new JobDefinition("other", 700), "x")).Source);
        time.Advance(TimeSpan.FromDays(31)); // outside the window
        Assert.Equal(AllocationSource.Baseline, (await allocator.AllocateAsync(Python, command)).Source);
    }

    [Fact]
    public async Task The_impact_report_counts_per_day_and_definition_and_audits_every_hash()
    {
        var (queue, _, time, schema) = await StoreAsync(new AraOptions { CeilingMemoryMb = 4096 });
        await queue.EnqueueManyAsync([
            new JobRequest("k") { Command = "a", Definition = Python },
            new JobRequest("k") { Command = null, Definition = Python },
            new JobRequest("k") { Command = "train", Definition = new JobDefinition("training", 16_384, Gpus: 1) },
            new JobRequest("k") { Command = "big", Definition = new JobDefinition("huge", 8000) },
        ]);
        var day = time.GetUtcNow();
        // Three runs of another definition, in their own queue: what they were given against what they used.
        foreach (var (peak, oom) in new[] { (300, false), (500, false), (512, true) })
        {
            await queue.EnqueueAsync(new JobRequest("k") { Queue = "runs", Command = "fit", Definition = new JobDefinition("fit", 512) });
            var run = Assert.Single(await queue.AcquireAsync(new AcquireRequest("runs", "w", 1, TimeSpan.FromMinutes(1))));
            await queue.AcknowledgeAsync([(oom ? JobAck.Failure(run.Lease, "killed") : JobAck.Success(run.Lease)) with
                { Usage = new ResourceUsage { PeakMemoryMb = peak, OomKilled = oom }, RunDuration = TimeSpan.FromSeconds(5) }]);
        }

        var report = await new PostgresJobQueue(database.DataSource, new PostgresQueueOptions { Schema = schema }).GetAraReportAsync(day.AddDays(-1), day.AddDays(1), 4096);
        var fit = Assert.Single(report.Fits);
        Assert.Equal(("fit", 3L, 1L, 512), (fit.DefinitionId, fit.Runs, fit.OomKilled, fit.MaxPeakMb));
        Assert.Equal(1312 / 3.0, fit.MeanPeakMb, 6);
        Assert.InRange(fit.MeanAllocatedMb, 512, 4096);

        var python = Assert.Single(report.Days, d => d.DefinitionId == "python-etl");
        Assert.Equal((DateOnly.FromDateTime(day.UtcDateTime), 2L, 1L), (python.Day, python.Jobs, python.NullCommandHash));
        Assert.Equal(1L, Assert.Single(report.Days, d => d.DefinitionId == "training").Gpu);
        Assert.Equal(1L, Assert.Single(report.Days, d => d.DefinitionId == "huge").AtCeiling);
        Assert.Equal(1L, Assert.Single(report.Days, d => d.DefinitionId == "python-etl").OverOneAndHalfBaseline); // 512 MB floor vs a 50 MB baseline
        Assert.Equal(0L, report.HashMismatches);

        // The incident's bug, reproduced by hand: a hash that is not md5(command) is caught.
        await using (var tamper = database.DataSource.CreateCommand($"UPDATE \"{schema}\".jobs SET command_hash = md5('Nightly ETL') WHERE command = 'a'")) await tamper.ExecuteNonQueryAsync();
        Assert.Equal(1L, (await new PostgresJobQueue(database.DataSource, new PostgresQueueOptions { Schema = schema }).GetAraReportAsync(day.AddDays(-1), day.AddDays(1), 4096)).HashMismatches);

        var (exit, output, _) = await CliAsync("ara", "report", "--connection", database.ConnectionString, "--schema", schema,
            "--from", day.AddDays(-1).ToString("O"), "--to", day.AddDays(1).ToString("O"), "--ceiling-mb", "4096", "--json");
        Assert.Equal(3, exit); // a mismatch makes the command fail for scripts
        using var json = JsonDocument.Parse(output);
        Assert.Equal(1, json.RootElement.GetProperty("hashMismatches").GetInt64());

        var (unreachable, _, error) = await CliAsync("ara", "report", "--connection", "Host=127.0.0.1;Port=1;Timeout=2");
        Assert.Equal(4, unreachable);
        Assert.Contains("cannot use the database", error, StringComparison.Ordinal);
    }

    private static Task<(int Exit, string Out, string Err)> CliAsync(params string[] args) => Scheduling.QueueContract.ToolProcess.RunAsync("Scheduling.Cli.dll", args);
}
