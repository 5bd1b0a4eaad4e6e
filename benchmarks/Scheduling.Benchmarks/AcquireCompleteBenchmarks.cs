using BenchmarkDotNet.Attributes;

namespace Scheduling.Benchmarks;

/// <summary>
/// One acquire + one batched acknowledgement against a real PostgreSQL (a throwaway cluster, or
/// SCHEDULING_BENCH_POSTGRES), per batch size. Jobs/s = BatchSize / mean time.
/// </summary>
[MemoryDiagnoser]
public class AcquireCompleteBenchmarks : QueueBenchmark
{
    private AcquireRequest _acquire = null!;

    [Params(1, 100)]
    public int BatchSize { get; set; }

    protected override string Schema => $"bench_acquire_{BatchSize}";

    [GlobalSetup]
    public async Task SetupAsync()
    {
        await StartQueueAsync();
        _acquire = new AcquireRequest("default", "bench", BatchSize, TimeSpan.FromMinutes(5));
    }

    [IterationSetup]
    public void Refill()
    {
        // Enough due jobs for every invocation of the iteration; enqueue is not what is measured.
        // (BenchmarkDotNet runs iteration setups synchronously.)
        var jobs = Enumerable.Range(0, BatchSize * 64).Select(_ => new JobRequest("noop")).ToArray();
        Queue.EnqueueManyAsync(jobs).AsTask().GetAwaiter().GetResult();
    }

    [Benchmark(Description = "acquire + complete one batch")]
    public async Task<int> AcquireAndComplete()
    {
        var jobs = await Queue.AcquireAsync(_acquire);
        var acks = new JobAck[jobs.Count];
        for (var i = 0; i < acks.Length; i++) acks[i] = JobAck.Success(jobs[i].Lease);
        await Queue.AcknowledgeAsync(acks);
        return jobs.Count;
    }
}
