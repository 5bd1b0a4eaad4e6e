using BenchmarkDotNet.Attributes;
using Npgsql;
using Scheduling.Postgres;
using Scheduling.Testing;

namespace Scheduling.Benchmarks;

/// <summary>
/// One acquire + one batched acknowledgement against a real PostgreSQL (a throwaway cluster, or
/// SCHEDULING_BENCH_POSTGRES), per batch size. Jobs/s = BatchSize / mean time.
/// </summary>
[MemoryDiagnoser]
public class AcquireCompleteBenchmarks
{
    private TemporaryPostgresCluster? _cluster;
    private NpgsqlDataSource _dataSource = null!;
    private PostgresJobQueue _queue = null!;
    private AcquireRequest _acquire = null!;

    [Params(1, 100)]
    public int BatchSize { get; set; }

    [GlobalSetup]
    public async Task SetupAsync()
    {
        var connection = Environment.GetEnvironmentVariable("SCHEDULING_BENCH_POSTGRES");
        if (string.IsNullOrWhiteSpace(connection))
        {
            _cluster = await TemporaryPostgresCluster.StartAsync();
            connection = _cluster.ConnectionString();
        }

        _dataSource = NpgsqlDataSource.Create(connection);
        _queue = new PostgresJobQueue(_dataSource, new PostgresQueueOptions { Schema = $"bench_acquire_{BatchSize}" });
        await _queue.MigrateAsync();
        _acquire = new AcquireRequest("default", "bench", BatchSize, TimeSpan.FromMinutes(5));
    }

    [IterationSetup]
    public void Refill()
    {
        // Enough due jobs for every invocation of the iteration; enqueue is not what is measured.
        var jobs = Enumerable.Range(0, BatchSize * 64).Select(_ => new JobRequest("noop")).ToArray();
        _queue.EnqueueManyAsync(jobs).AsTask().GetAwaiter().GetResult();
    }

    [Benchmark(Description = "acquire + complete one batch")]
    public async Task<int> AcquireAndComplete()
    {
        var jobs = await _queue.AcquireAsync(_acquire);
        var acks = new JobAck[jobs.Count];
        for (var i = 0; i < acks.Length; i++) acks[i] = JobAck.Success(jobs[i].Lease);
        await _queue.AcknowledgeAsync(acks);
        return jobs.Count;
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        await _dataSource.DisposeAsync();
        if (_cluster is not null) await _cluster.DisposeAsync();
    }
}
