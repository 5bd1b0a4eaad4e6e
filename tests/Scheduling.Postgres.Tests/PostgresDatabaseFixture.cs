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
