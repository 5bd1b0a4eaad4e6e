using BenchmarkDotNet.Attributes;
using Scheduling.Postgres;

namespace Scheduling.Benchmarks;

/// <summary>
/// Enqueue against a real PostgreSQL: one job per call (an INSERT), and 1,000 per call (the bulk path,
/// binary COPY). Jobs/s = Jobs / mean time.
/// </summary>
[MemoryDiagnoser]
public class EnqueueBenchmarks
{
    private BenchmarkDatabase _database = null!;
    private PostgresJobQueue _queue = null!;
    private JobRequest[] _requests = null!;

    [Params(1, 1000)]
    public int Jobs { get; set; }

    private string Schema => $"bench_enqueue_{Jobs}";

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _database = await BenchmarkDatabase.StartAsync();
        await _database.DropSchemaAsync(Schema);
        _queue = new PostgresJobQueue(_database.DataSource, new PostgresQueueOptions { Schema = Schema });
        await _queue.MigrateAsync();
        _requests = Enumerable.Range(0, Jobs).Select(i => new JobRequest("report", new { Customer = i, Month = "2026-11" })).ToArray();
    }

    [Benchmark(Description = "enqueue")]
    public async Task<int> Enqueue()
    {
        if (Jobs == 1) return (await _queue.EnqueueAsync(_requests[0])).Created ? 1 : 0;
        return (await _queue.EnqueueManyAsync(_requests)).Count;
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        await _database.DropSchemaAsync(Schema);
        await _database.DisposeAsync();
    }
}
