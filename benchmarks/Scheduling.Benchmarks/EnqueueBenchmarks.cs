using BenchmarkDotNet.Attributes;

namespace Scheduling.Benchmarks;

/// <summary>
/// Enqueue against a real PostgreSQL: one job per call (an INSERT), and 1,000 per call (the bulk path,
/// binary COPY). Jobs/s = Jobs / mean time.
/// </summary>
[MemoryDiagnoser]
public class EnqueueBenchmarks : QueueBenchmark
{
    private JobRequest[] _requests = null!;

    [Params(1, 1000)]
    public int Jobs { get; set; }

    protected override string Schema => $"bench_enqueue_{Jobs}";

    [GlobalSetup]
    public async Task SetupAsync()
    {
        await StartQueueAsync();
        _requests = Enumerable.Range(0, Jobs).Select(i => new JobRequest("report", new { Customer = i, Month = "2026-11" })).ToArray();
    }

    [Benchmark(Description = "enqueue")]
    public async Task<int> Enqueue()
    {
        if (Jobs == 1) return (await Queue.EnqueueAsync(_requests[0])).Created ? 1 : 0;
        return (await Queue.EnqueueManyAsync(_requests)).Count;
    }
}
