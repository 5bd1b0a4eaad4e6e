using BenchmarkDotNet.Attributes;
using Scheduling.Stagger;

namespace Scheduling.Benchmarks;

/// <summary>The stagger hot paths: Apply per job, and planning 1,000 jobs (target: under a second).</summary>
[MemoryDiagnoser]
public class StaggerBenchmarks
{
    private static readonly string[] Crons =
    [
        "* * * * *", "*/2 * * * *", "*/3 * * * *", "*/5 * * * *", "*/10 * * * *", "*/15 * * * *", "*/30 * * * *",
        "0 * * * *", "30 * * * *", "0 */2 * * *", "0 2 * * *", "0 9 * * 1-5", "15,45 * * * *", "0 0 * * 0",
    ];

    private StaggerJob[] _jobs = [];
    private StaggerPolicy _policy = null!;

    [Params(20, 1000)]
    public int Jobs { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(2026);
        _jobs = Enumerable.Range(0, Jobs)
            .Select(i => new StaggerJob($"job-{i}", Crons[random.Next(Crons.Length)], TimeSpan.FromSeconds(random.Next(3, 51))))
            .ToArray();
        _policy = new StaggerPolicy(new StaggerOptions { Enabled = true });
    }

    [Benchmark(Description = "plan offsets")]
    public int Plan() => StaggerPlanner.Plan(_jobs).PeakConcurrency;

    [Benchmark(Description = "IStaggerPolicy.Apply (hash strategy)")]
    public string Apply() => _policy.Apply("nightly-backup", "0 2 * * *").EffectiveExpression;
}
