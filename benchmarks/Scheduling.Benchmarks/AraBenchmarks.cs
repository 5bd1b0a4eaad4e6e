using BenchmarkDotNet.Attributes;
using Scheduling.Postgres;

namespace Scheduling.Benchmarks;

/// <summary>The history key: hashing a final command, as is and normalised (volatile parts masked).</summary>
[MemoryDiagnoser]
public class CommandHasherBenchmarks
{
    private const string Command = "python /opt/jobs/etl.py --date 2026-11-24 --region eu-west-1 --run 7f3c2a9e-1b4d-4e8f-9a6b-2c5d7e8f9a0b --input s3://raw/2026/11/24/part-000123.parquet";
    private readonly NormalizingCommandHasher _normalizing = new();

    [Benchmark(Description = "Md5CommandHasher.Hash")]
    public string? Md5() => Md5CommandHasher.Instance.Hash(Command);

    [Benchmark(Description = "NormalizingCommandHasher.Hash")]
    public string? Normalized() => _normalizing.Hash(Command);
}

/// <summary>
/// One estimate through the whole ARA pipeline (hash, estimate from history, clamp, explain), with
/// the default estimator over PostgreSQL's run history (one indexed query) and over the in-memory one.
/// </summary>
[MemoryDiagnoser]
public class EstimateBenchmarks
{
    private const string Command = "python /opt/jobs/etl.py --date 2026-11-24 --region eu-west-1";
    private const string Schema = "bench_estimate";
    private static readonly JobDefinition Definition = new("etl", BaselineMemoryMb: 8_192);

    private BenchmarkDatabase? _database;
    private ResourceAllocator _allocator = null!;

    [Params("postgres", "memory")]
    public string Store { get; set; } = "postgres";

    [GlobalSetup]
    public async Task SetupAsync()
    {
        IRunHistoryStore history;
        IResourceEstimator estimator;
        if (Store == "postgres")
        {
            _database = await BenchmarkDatabase.StartAsync();
            await _database.DropSchemaAsync(Schema);
            var postgres = new PostgresRunHistory(_database.DataSource, new PostgresQueueOptions { Schema = Schema });
            (history, estimator) = (postgres, postgres);
        }
        else
        {
            var memory = new InMemoryRunHistory();
            (history, estimator) = (memory, memory);
        }

        _allocator = new ResourceAllocator(estimator);
        // A busy command's history: 500 runs over the last days, and 5,000 runs of other commands.
        var now = DateTimeOffset.UtcNow;
        var hash = _allocator.HashCommand(Command)!;
        var runs = Enumerable.Range(0, 5_500).Select(i => new RunOutcome("etl", i < 500 ? hash : $"other{i % 50}", null, 8_192,
            4_000 + (i * 37 % 2_500), 1_000, TimeSpan.FromMinutes(3), 0, false, now.AddMinutes(-i))).ToArray();
        await history.RecordAsync(runs);
    }

    [Benchmark(Description = "ResourceAllocator.AllocateAsync (one estimate)")]
    public async Task<int> Estimate() => (await _allocator.AllocateAsync(Definition, Command)).MemoryMb;

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        if (_database is null) return;
        await _database.DropSchemaAsync(Schema);
        await _database.DisposeAsync();
    }
}
