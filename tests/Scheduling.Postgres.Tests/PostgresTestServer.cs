using Scheduling.LocalPostgres;
using Npgsql;

namespace Scheduling.Postgres.Tests;

/// <summary>
/// The PostgreSQL server a test run uses: the one named by <c>SCHEDULING_TEST_POSTGRES</c> when
/// set, otherwise one throwaway cluster per process, started on first use. Hands out fresh databases.
/// </summary>
public static class PostgresTestServer
{
    /// <summary>The environment variable naming an existing server.</summary>
    public const string EnvironmentVariable = "SCHEDULING_TEST_POSTGRES";

    private static readonly Lazy<Task<Server>> Shared = new(StartAsync, LazyThreadSafetyMode.ExecutionAndPublication);
    private static int _databases;

    /// <summary>
    /// A throwaway cluster of the test's own, for a test that restarts or crashes the server: it
    /// never does that to the shared server (nor to the one <c>SCHEDULING_TEST_POSTGRES</c> names),
    /// so it needs the server binaries even when that variable is set, and says so when they are missing.
    /// </summary>
    public static async Task<TemporaryPostgresCluster> StartPrivateClusterAsync(string test, string why)
    {
        if (TemporaryPostgresCluster.FindBinDirectory() is null && !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(EnvironmentVariable)))
        {
            throw new InvalidOperationException(
                $"{test} {why}, which it will not do to the server {EnvironmentVariable} names; it starts a throwaway cluster of its own instead, " +
                "and needs PostgreSQL's server binaries (initdb, pg_ctl) for it: install them (Debian/Ubuntu: 'apt-get install postgresql').");
        }

        return await TemporaryPostgresCluster.StartAsync();
    }

    /// <summary>Creates a new empty database and returns its connection string.</summary>
    public static async Task<string> CreateDatabaseAsync(string prefix = "test")
    {
        var server = await Shared.Value;
        var name = $"{prefix}_{Environment.ProcessId}_{Interlocked.Increment(ref _databases)}_{Guid.NewGuid().ToString("N")[..6]}".ToLowerInvariant();
        await using (var connection = new NpgsqlConnection(server.AdminConnectionString))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await create.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(server.AdminConnectionString) { Database = name }.ConnectionString;
    }

    /// <summary>Drops a database made by <see cref="CreateDatabaseAsync"/>, closing its connections.</summary>
    public static async Task DropDatabaseAsync(string connectionString)
    {
        var server = await Shared.Value;
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database;
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(server.AdminConnectionString);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
        await drop.ExecuteNonQueryAsync();
    }

    private static async Task<Server> StartAsync()
    {
        var external = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(external)) return new Server(external, null);
        var cluster = await TemporaryPostgresCluster.StartAsync();
        return new Server(cluster.ConnectionString(), cluster);
    }

    private sealed record Server(string AdminConnectionString, TemporaryPostgresCluster? Cluster);
}
