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
