using Npgsql;
using Scheduling.Postgres.Statements;
using Xunit;

namespace Scheduling.Postgres.Tests;

/// <summary>
/// The plans behind the job lists (CLI, dashboard) on a large table: each filter an index serves is read
/// through it, never by walking the table, so a page costs the same on 60,000 jobs as on 60.
/// </summary>
public sealed class ListPlansTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    [Fact]
    public async Task Dead_jobs_a_queue_and_a_keyset_page_are_read_through_indexes()
    {
        var queue = await database.NewQueueAsync();
        for (var batch = 0; batch < 6; batch++)
            await queue.EnqueueManyAsync(Enumerable.Range(0, 10_000).Select(i => new JobRequest("k") { Queue = $"q{i % 4}" }).ToArray());
        await using (var seed = database.DataSource.CreateCommand($"UPDATE \"{queue.Schema}\".jobs SET state = 'dead', finalized_at = now(), attempt = 1 WHERE id % 2000 = 7; ANALYZE \"{queue.Schema}\".jobs"))
            await seed.ExecuteNonQueryAsync();
        var read = new ReadJob(new PostgresSchema(queue.Schema, "schema"));

        async Task<string> PlanAsync(JobListQuery query)
        {
            await using var list = read.ListCommand(database.DataSource, query, null);
            return await ExplainAsync(list.CommandText, list.Parameters);
        }

        var dead = await PlanAsync(new JobListQuery { States = [JobState.Dead] });
        Assert.Contains("jobs_dead_idx", dead, StringComparison.Ordinal);
        Assert.DoesNotContain("Seq Scan on jobs", dead, StringComparison.Ordinal);
        Assert.Equal(30, (await queue.ListJobsAsync(new JobListQuery { States = [JobState.Dead], Limit = 100 })).Count);

        // The running jobs: a partial index of them (the dashboard searches them in full).
        var running = await PlanAsync(new JobListQuery { States = [JobState.Running] });
        Assert.Matches("jobs_(lease|worker)_idx", running);
        Assert.DoesNotContain("Seq Scan on jobs", running, StringComparison.Ordinal);

        // A unique key: each of the three partial indexes that can hold it (active, any state, finished), never the table.
        var key = await PlanAsync(new JobListQuery { UniqueKey = "order-7" });
        foreach (var index in new[] { "jobs_unique_key_idx", "jobs_unique_key_any_state_idx", "jobs_finished_key_idx" }) Assert.Contains(index, key, StringComparison.Ordinal);
        Assert.DoesNotContain("Seq Scan on jobs", key, StringComparison.Ordinal);

        // "Behind N jobs": counted in the fetch index's order, a range of it, not the table.
        var retention = new Retention(new PostgresSchema(queue.Schema, "schema"));
        await using (var ahead = retention.AheadCommand(database.DataSource, 40_001, 1_000, null))
        {
            var plan = await ExplainAsync(ahead.CommandText, ahead.Parameters);
            Assert.Equal(2, plan.Split('\n').Count(line => line.Contains("Index Scan using jobs_fetch_idx", StringComparison.Ordinal)));
            Assert.DoesNotContain("Seq Scan on jobs", plan, StringComparison.Ordinal);
        }

        // The statistics read the maintained counts, and of the jobs only the ends of each queue's range of
        // the available jobs' due-time index; the activity reads no job at all.
        var now = new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.TimestampTz };
        var stats = await ExplainAsync(retention.Stats, [now]);
        Assert.Contains("jobs_available_run_idx", stats, StringComparison.Ordinal);
        Assert.DoesNotContain("Seq Scan on jobs", stats, StringComparison.Ordinal);
        Assert.DoesNotContain("jobs_fetch_idx", stats, StringComparison.Ordinal);
        var activity = await ExplainAsync(retention.Activity, [new NpgsqlParameter<TimeSpan> { TypedValue = TimeSpan.FromHours(1) }, now]);
        Assert.DoesNotContain(" on jobs", activity, StringComparison.Ordinal);
        // The ARA report (the dashboard's Resources page) reads the jobs with a definition, a command or a hash by enqueue time.
        var ara = new AraImpactQueries(new PostgresSchema(queue.Schema, "schema"));
        foreach (var sql in new[] { ara.Daily, ara.TopAllocations, ara.HashMismatches })
        {
            var plan = await ExplainAsync(sql, [new NpgsqlParameter<DateTimeOffset> { TypedValue = DateTimeOffset.UtcNow.AddDays(-7) }, new NpgsqlParameter<DateTimeOffset> { TypedValue = DateTimeOffset.UtcNow }, new NpgsqlParameter<int> { TypedValue = 16_384 }]);
            Assert.Contains("jobs_created_command_idx", plan, StringComparison.Ordinal);
            Assert.DoesNotContain("Seq Scan on jobs", plan, StringComparison.Ordinal);
        }

        foreach (var q in await queue.GetQueueStatsAsync())
            Assert.Equal(await database.CountJobsAsync(queue.Schema, $"queue = '{q.Queue}' AND state = 'available'"), q.Available);

        Assert.Equal(1_000L, await queue.CountAheadAsync(40_001, cap: 1_000));

        foreach (var query in new[] { new JobListQuery { Queue = "q1" }, new JobListQuery { Queue = "q1", States = [JobState.Available], BeforeId = 30_000 }, new JobListQuery() })
        {
            var plan = await PlanAsync(query);
            Assert.DoesNotContain("Seq Scan on jobs", plan, StringComparison.Ordinal);
            Assert.Contains("Index Scan Backward using jobs_pkey", plan, StringComparison.Ordinal); // newest first, stopping at the page
        }
    }

    private async Task<string> ExplainAsync(string sql, IEnumerable<NpgsqlParameter> parameters)
    {
        await using var explain = database.DataSource.CreateCommand("EXPLAIN (COSTS OFF) " + sql);
        foreach (var p in parameters) explain.Parameters.Add(p.Clone());
        var lines = new List<string>();
        await using var reader = await explain.ExecuteReaderAsync();
        while (await reader.ReadAsync()) lines.Add(reader.GetString(0));
        return string.Join("\n", lines);
    }
}
