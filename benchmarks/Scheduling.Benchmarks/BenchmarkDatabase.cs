using Npgsql;
using Scheduling.Postgres;
using Scheduling.LocalPostgres;

namespace Scheduling.Benchmarks;

/// <summary>
/// The PostgreSQL a BenchmarkDotNet suite runs against: the server named by SCHEDULING_BENCH_POSTGRES,
/// or a throwaway cluster. Its data source is built the way UsePostgres(connectionString) builds one.
/// </summary>
internal sealed class BenchmarkDatabase : IAsyncDisposable
{
    private readonly TemporaryPostgresCluster? _cluster;

    private BenchmarkDatabase(TemporaryPostgresCluster? cluster, string connectionString)
    {
        _cluster = cluster;
        DataSource = PostgresDataSourceHolder.Build(connectionString);
    }

    public NpgsqlDataSource DataSource { get; }

    public static async Task<BenchmarkDatabase> StartAsync()
    {
        var connection = Environment.GetEnvironmentVariable("SCHEDULING_BENCH_POSTGRES");
        if (!string.IsNullOrWhiteSpace(connection)) return new BenchmarkDatabase(null, connection);
        var cluster = await TemporaryPostgresCluster.StartAsync();
        return new BenchmarkDatabase(cluster, cluster.ConnectionString());
    }

    /// <summary>Drops a suite's schema, so a shared server does not keep what a run wrote.</summary>
    public async Task DropSchemaAsync(string schema)
    {
        await using var drop = DataSource.CreateCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        await drop.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
        if (_cluster is not null) await _cluster.DisposeAsync();
    }
}

/// <summary>A suite that runs against a freshly migrated queue schema of its own, dropped afterwards.</summary>
public abstract class QueueBenchmark
{
    private BenchmarkDatabase _database = null!;

    internal PostgresJobQueue Queue { get; private set; } = null!;

    /// <summary>The suite's schema (per parameter value, so cases never share rows).</summary>
    protected abstract string Schema { get; }

    /// <summary>Call first from the suite's [GlobalSetup].</summary>
    protected async Task StartQueueAsync()
    {
        _database = await BenchmarkDatabase.StartAsync();
        await _database.DropSchemaAsync(Schema);
        Queue = new PostgresJobQueue(_database.DataSource, new PostgresQueueOptions { Schema = Schema });
        await Queue.MigrateAsync();
    }

    [BenchmarkDotNet.Attributes.GlobalCleanup]
    public async Task CleanupAsync()
    {
        await _database.DropSchemaAsync(Schema);
        await _database.DisposeAsync();
    }
}
