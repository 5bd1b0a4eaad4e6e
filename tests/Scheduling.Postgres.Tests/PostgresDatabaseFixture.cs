using Npgsql;
using Scheduling.Postgres;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Postgres.Tests;

/// <summary>One database per test class on the shared throwaway server; each test takes its own schema.</summary>
public sealed class PostgresDatabaseFixture : IAsyncLifetime
{
    private int _schemas;

    public string ConnectionString { get; private set; } = "";

    public NpgsqlDataSource DataSource { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        ConnectionString = await PostgresTestServer.CreateDatabaseAsync();
        DataSource = NpgsqlDataSource.Create(ConnectionString);
    }

    public async Task DisposeAsync()
    {
        await DataSource.DisposeAsync();
        await PostgresTestServer.DropDatabaseAsync(ConnectionString);
    }

    /// <summary>A schema name no other test in this class uses.</summary>
    public string NewSchema() => $"s{Interlocked.Increment(ref _schemas)}";

    /// <summary>
    /// How many jobs of <paramref name="schema"/> match <paramref name="condition"/>, a fixed SQL
    /// condition written by the test (never input); 0 while the schema has no jobs table yet.
    /// </summary>
    public async Task<long> CountJobsAsync(string schema, string condition)
    {
        await using var command = DataSource.CreateCommand($"SELECT count(*) FROM \"{schema}\".jobs WHERE {condition}");
        try { return (long)(await command.ExecuteScalarAsync())!; }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedTable) { return 0; }
    }

    /// <summary>
    /// The maintained job counts of a schema (migration 0022: folded counts plus the changes not folded, per
    /// queue, kind and state, then per queue and amounts of the waiting and available jobs that need one)
    /// and a count of its jobs table by the same keys, each as one line of text to compare.
    /// </summary>
    public static async Task<(string Maintained, string Counted)> MaintainedCountsAsync(NpgsqlDataSource dataSource, string schema)
    {
        const string Amounts = "CASE WHEN state IN ('waiting', 'available') THEN coalesce({0}, 0) ELSE 0 END";
        string Amount(string column) => string.Format(System.Globalization.CultureInfo.InvariantCulture, Amounts, column);
        await using var counts = dataSource.CreateCommand($"""
            SELECT coalesce(string_agg(format('%s/%s/%s: %s', queue, kind, state, n), '; ' ORDER BY queue, kind, state), '')
            FROM (SELECT queue, kind, state, sum(n) AS n
                  FROM (SELECT queue, kind, state, n FROM "{schema}".job_counts
                        UNION ALL SELECT queue, kind, state, n FROM "{schema}".job_count_changes) c
                  GROUP BY 1, 2, 3 HAVING sum(n) <> 0) kept
            UNION ALL
            SELECT coalesce(string_agg(format('%s/%s/%s: %s', queue, kind, state, n), '; ' ORDER BY queue, kind, state), '')
            FROM (SELECT queue, kind, state, count(*) AS n FROM "{schema}".jobs GROUP BY 1, 2, 3) counted
            UNION ALL
            SELECT coalesce(string_agg(format('%s %s/%s/%s: %s', queue, memory_mb, cpu_millicores, gpus, n), '; ' ORDER BY queue, memory_mb, cpu_millicores, gpus), '')
            FROM (SELECT queue, memory_mb, cpu_millicores, gpus, sum(n) AS n
                  FROM (SELECT queue, memory_mb, cpu_millicores, gpus, n FROM "{schema}".job_sized_counts
                        UNION ALL SELECT queue, memory_mb, cpu_millicores, gpus, n FROM "{schema}".job_count_changes WHERE memory_mb > 0 OR cpu_millicores > 0 OR gpus > 0) c
                  GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0) kept
            UNION ALL
            SELECT coalesce(string_agg(format('%s %s/%s/%s: %s', queue, memory_mb, cpu_millicores, gpus, n), '; ' ORDER BY queue, memory_mb, cpu_millicores, gpus), '')
            FROM (SELECT queue, {Amount("memory_mb")} AS memory_mb, {Amount("cpu_millicores")} AS cpu_millicores, {Amount("gpus")} AS gpus, count(*) AS n
                  FROM "{schema}".jobs WHERE state IN ('waiting', 'available') AND (memory_mb > 0 OR cpu_millicores > 0 OR gpus > 0)
                  GROUP BY 1, 2, 3, 4) counted
            """);
        await using var reader = await counts.ExecuteReaderAsync();
        var lines = new List<string>();
        while (await reader.ReadAsync()) lines.Add(reader.GetString(0));
        return (lines[0] + " | " + lines[2], lines[1] + " | " + lines[3]);
    }

    /// <summary>A migrated queue in a fresh schema.</summary>
    public async Task<PostgresJobQueue> NewQueueAsync(JobQueueOptions? rules = null, TimeProvider? time = null, Action<PostgresQueueOptions>? configure = null)
    {
        var options = new PostgresQueueOptions { Schema = NewSchema(), UseDatabaseClock = time is null };
        configure?.Invoke(options);
        var queue = new PostgresJobQueue(DataSource, options, rules, time);
        await queue.MigrateAsync();
        return queue;
    }
}
