using BenchmarkDotNet.Attributes;
using Scheduling.Postgres;

namespace Scheduling.Benchmarks;

/// <summary>
/// One acquire + one batched acknowledgement against a real PostgreSQL (a throwaway cluster, or
/// SCHEDULING_BENCH_POSTGRES), per batch size. Jobs/s = BatchSize / mean time.
/// </summary>
[MemoryDiagnoser]
public class AcquireCompleteBenchmarks
{
    private BenchmarkDatabase _database = null!;
    private PostgresJobQueue _queue = null!;
    private AcquireRequest _acquire = null!;

    [Params(1, 100)]
    public int BatchSize { get; set; }

    private string Schema => $"bench_acquire_{BatchSize}";

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _database = await BenchmarkDatabase.StartAsync();
        await _database.DropSchemaAsync(Schema);
        _queue = new PostgresJobQueue(_database.DataSource, new PostgresQueueOptions { Schema = Schema });
        await _queue.MigrateAsync();
        _acquire = new AcquireRequest("default", "bench", BatchSize, TimeSpan.FromMinutes(5));
    }

    [IterationSetup]
    public void Refill()
    {
        // Enough due jobs for every invocation of the iteration; enqueue is not what is measured.
        // (BenchmarkDotNet runs iteration setups synchronously.)
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
        await _database.DropSchemaAsync(Schema);
        await _database.DisposeAsync();
    }
}
