using System.Diagnostics.Metrics;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Scheduling.Core.Tests.Ara;

public sealed class ResourceAllocatorTests
{
    private static readonly JobDefinition Python = new("python-etl", BaselineMemoryMb: 50);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 5, 0, 0, 0, TimeSpan.Zero));

    private (ResourceAllocator Allocator, InMemoryRunHistory History) Pipeline(AraOptions? options = null)
    {
        options ??= new AraOptions();
        var history = new InMemoryRunHistory(options, _time);
        return (new ResourceAllocator(history, null, options), history);
    }

    /// <summary>Runs a job needing <paramref name="needMb"/>: allocate, OOM if the need is above the allocation, record.</summary>
    private async Task<(int Allocated, bool Oom)> RunAsync(ResourceAllocator allocator, InMemoryRunHistory history, string command, int needMb, JobDefinition? definition = null)
    {
        definition ??= Python;
        _time.Advance(TimeSpan.FromHours(6));
        var allocation = await allocator.AllocateAsync(definition, command);
        var oom = needMb > allocation.MemoryMb;
        await history.RecordAsync([new RunOutcome(definition.Id, allocator.HashCommand(command)!, allocator.HashNormalizedCommand(command), allocation.MemoryMb,
            oom ? allocation.MemoryMb : needMb, 500, TimeSpan.FromMinutes(1), oom ? 137 : 0, oom, _time.GetUtcNow())]);
        return (allocation.MemoryMb, oom);
    }

    [Fact]
    public async Task Gpu_ara_off_and_command_less_jobs_keep_their_baseline_and_say_why()
    {
        var (allocator, history) = Pipeline();
        for (var i = 0; i < 5; i++) await RunAsync(allocator, history, "python etl.py", 8000); // plenty of history

        var gpu = await allocator.AllocateAsync(Python with { Gpus = 1 }, "python etl.py");
        var off = await allocator.AllocateAsync(Python with { AraEnabled = false }, "python etl.py");
        var none = await allocator.AllocateAsync(Python, null);

        Assert.Equal((50, AraSkipReason.Gpu, AllocationSource.Baseline, 1), (gpu.MemoryMb, gpu.SkipReason, gpu.Source, gpu.Gpus));
        Assert.Equal((50, AraSkipReason.Disabled), (off.MemoryMb, off.SkipReason));
        Assert.Equal((50, AraSkipReason.NullCommandHash), (none.MemoryMb, none.SkipReason));
        Assert.Null(allocator.HashCommand(""));
    }

    [Fact]
    public void The_allocation_never_exceeds_the_ceiling_nor_falls_below_the_floor()
    {
        var gen = from estimate in Gen.Choose(0, 2_000_000) from floor in Gen.Choose(1, 4096) from extra in Gen.Choose(0, 300_000) select (estimate, floor, ceiling: floor + extra);
        Prop.ForAll(Arb.From(gen), t =>
        {
            var allocator = new ResourceAllocator(new FixedEstimator(t.estimate), null, new AraOptions { FloorMemoryMb = t.floor, CeilingMemoryMb = t.ceiling });
            var allocation = allocator.AllocateAsync(Python, "cmd").AsTask().GetAwaiter().GetResult();
            return allocation.MemoryMb >= t.floor && allocation.MemoryMb <= t.ceiling
                && allocation.CeilingHit == (t.estimate > t.ceiling)
                && allocation.Clamped == (t.estimate != allocation.MemoryMb);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(300));
    }

    [Fact]
    public async Task The_incidents_light_command_gets_a_light_allocation_though_it_shares_a_description_with_a_heavy_one()
    {
        var (allocator, history) = Pipeline();
        var deploy = new JobDefinition("model-deploy", 4096);
        for (var i = 0; i < 8; i++)
        {
            await RunAsync(allocator, history, "deploy --model llm-xl", 30_000, deploy);
            await RunAsync(allocator, history, "deploy --model small", 4_500, deploy);
        }

        var light = await allocator.AllocateAsync(deploy, "deploy --model small");
        Assert.Equal(AllocationSource.CommandHistory, light.Source);
        Assert.InRange(light.MemoryMb, 4_500, 6_500); // the incident gave 18-33 GB
    }

    [Fact]
    public async Task After_an_oom_the_allocation_converges_without_compounding()
    {
        var (allocator, history) = Pipeline();
        for (var i = 0; i < 5; i++) await RunAsync(allocator, history, "python features.py", 3000);
        var allocations = new List<(int Allocated, bool Oom)>();
        for (var i = 0; i < 12; i++) allocations.Add(await RunAsync(allocator, history, "python features.py", 6000)); // the need doubles

        Assert.True(allocations[0].Oom);
        Assert.True(allocations.Count(a => a.Oom) <= 3, string.Join(", ", allocations));
        Assert.False(allocations[^1].Oom);
        Assert.All(allocations, a => Assert.True(a.Allocated <= 6000 * 1.6, $"allocation ran away: {a.Allocated}"));
    }

    [Fact]
    public async Task A_need_above_the_ceiling_is_capped_and_reported_not_raised_forever()
    {
        var (allocator, history) = Pipeline(new AraOptions { CeilingMemoryMb = 40_960 });
        var allocations = new List<ResourceAllocation>();
        for (var i = 0; i < 10; i++)
        {
            await RunAsync(allocator, history, "python giant_join.py", 52_000);
            allocations.Add(await allocator.AllocateAsync(Python, "python giant_join.py"));
        }

        Assert.All(allocations, a => Assert.True(a.MemoryMb <= 40_960));
        Assert.True(allocations[^1].CeilingHit);
        Assert.Equal(40_960, allocations[^1].MemoryMb);
    }

    [Fact]
    public async Task The_allocation_comes_down_when_the_workload_shrinks()
    {
        var (allocator, history) = Pipeline();
        for (var i = 0; i < 10; i++) await RunAsync(allocator, history, "python report.py", 8000);
        var before = await allocator.AllocateAsync(Python, "python report.py");
        for (var i = 0; i < 30; i++) await RunAsync(allocator, history, "python report.py", 2000);
        var after = await allocator.AllocateAsync(Python, "python report.py");

        Assert.True(before.MemoryMb >= 8000);
        Assert.InRange(after.MemoryMb, 2000, 3000);
    }

    [Fact]
    public async Task The_expected_duration_comes_from_the_same_history_and_leaves_out_runs_killed_for_memory()
    {
        var (allocator, history) = Pipeline(new AraOptions { NormalizeCommands = true });
        var hash = allocator.HashCommand("python load.py --date 2026-01-05")!;
        var normalized = allocator.HashNormalizedCommand("python load.py --date 2026-01-05");
        Assert.Null((await allocator.AllocateAsync(Python, "python load.py --date 2026-01-05")).ExpectedDuration); // no history

        // A 300-minute run, then nineteen of 2-20 minutes; and runs killed for memory after a second, which say nothing.
        for (var i = 1; i <= 20; i++)
        {
            _time.Advance(TimeSpan.FromMinutes(1));
            await history.RecordAsync([
                new RunOutcome(Python.Id, hash, normalized, 4000, 3000, 500, TimeSpan.FromMinutes(i == 1 ? 300 : i), 0, false, _time.GetUtcNow()),
                new RunOutcome(Python.Id, hash, normalized, 4000, 4000, 500, TimeSpan.FromSeconds(1), 137, true, _time.GetUtcNow()),
            ]);
        }

        var sized = await allocator.AllocateAsync(Python, "python load.py --date 2026-01-05");
        // The weighted p95 (HistoryEstimate.DurationQuantile) of the successful runs, weighted by recency as the memory is: the
        // oldest, longest run weighs least, so it is the 20-minute run, not the outlier nor the OOMs.
        Assert.Equal(TimeSpan.FromMinutes(20), sized.ExpectedDuration);
        // The same fallback chain: a new date of the same command is sized, and timed, from its normalised history.
        var cold = await allocator.AllocateAsync(Python, "python load.py --date 2026-01-06");
        Assert.Equal((AllocationSource.NormalizedCommandHistory, TimeSpan.FromMinutes(20)), (cold.Source, cold.ExpectedDuration));
    }

    [Fact]
    public async Task Cold_starts_fall_back_from_command_to_normalised_command_to_definition_to_baseline()
    {
        var (allocator, history) = Pipeline(new AraOptions { NormalizeCommands = true });

        var first = await allocator.AllocateAsync(Python, "python load.py --date 2026-01-05");
        Assert.Equal((AllocationSource.Baseline, 512), (first.Source, first.MemoryMb)); // the baseline, raised to the floor
        await RunAsync(allocator, history, "python load.py --date 2026-01-05", 4000);
        await RunAsync(allocator, history, "python load.py --date 2026-01-05", 4000);

        Assert.Equal(AllocationSource.CommandHistory, (await allocator.AllocateAsync(Python, "python load.py --date 2026-01-05")).Source);
        Assert.Equal(AllocationSource.NormalizedCommandHistory, (await allocator.AllocateAsync(Python, "python load.py --date 2026-01-06")).Source);
        var other = await allocator.AllocateAsync(Python, "python something_else.py");
        Assert.Equal(AllocationSource.DefinitionHistory, other.Source);
        Assert.Equal(AllocationSource.Baseline, (await allocator.AllocateAsync(new JobDefinition("fresh", 700), "x")).Source);
    }

    [Fact]
    public async Task Metrics_count_skips_no_history_and_ceiling_hits()
    {
        var measurements = new List<(string Name, long Value, string? Tag)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) => { if (instrument.Meter.Name == "Scheduling") l.EnableMeasurementEvents(instrument); };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string? tag = null;
            foreach (var t in tags) tag = $"{t.Key}={t.Value}";
            lock (measurements) measurements.Add((instrument.Name, value, tag));
        });
        listener.Start();
        var definition = new JobDefinition($"metrics-{Guid.NewGuid():N}", 100);
        var allocator = new ResourceAllocator(new FixedEstimator(90_000), null, new AraOptions());

        await allocator.AllocateAsync(definition with { Gpus = 2 }, "a");
        await allocator.AllocateAsync(definition, null);
        await allocator.AllocateAsync(definition, "b");

        lock (measurements)
        {
            Assert.Contains(("scheduling.ara.gpu_skipped", 1L, (string?)null), measurements);
            Assert.Contains(("scheduling.ara.skipped", 1L, "reason=null_command_hash"), measurements);
            Assert.Contains(("scheduling.ara.null_command_hash", 1L, (string?)null), measurements);
            Assert.Contains(("scheduling.ara.ceiling_hits", 1L, (string?)null), measurements);
            Assert.Contains(("scheduling.ara.estimates", 1L, "source=command_history"), measurements);
        }
    }

    [Fact]
    public async Task A_consumers_estimator_replaces_the_default_and_keeps_the_pipeline()
    {
        foreach (var before in new[] { true, false })
        {
            var services = new ServiceCollection().AddLogging();
            if (before) services.AddSingleton<IResourceEstimator>(new FixedEstimator(999_999));
            services.AddScheduling(s => s.Configure(o => o.Ara.CeilingMemoryMb = 10_000));
            if (!before) services.AddSingleton<IResourceEstimator>(new FixedEstimator(999_999));
            await using var provider = services.BuildServiceProvider();
            var queue = provider.GetRequiredService<IJobQueue>();

            var id = (await queue.EnqueueAsync(new JobRequest("k") { Command = "run", Definition = Python })).JobId;

            var allocation = (await queue.GetJobAsync(id))!.Allocation!;
            Assert.Equal((10_000, true, AllocationSource.CommandHistory), (allocation.MemoryMb, allocation.CeilingHit, allocation.Source));
        }
    }

    [Fact]
    public async Task The_worker_records_the_usage_a_handler_reports()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddScheduling(s => s
            .Configure(o => { o.LeaseDuration = TimeSpan.FromSeconds(3); o.HeartbeatInterval = TimeSpan.FromSeconds(1); })
            .AddHandler<int>("measured", (ctx, _) => { ctx.Usage.PeakMemoryMb = 1234; ctx.Usage.PeakCpuMillicores = 700; return Task.CompletedTask; }));
        await using var provider = services.BuildServiceProvider();
        var host = provider.GetServices<Microsoft.Extensions.Hosting.IHostedService>().Single();
        await host.StartAsync(CancellationToken.None);

        await provider.GetRequiredService<IJobQueue>().EnqueueAsync(new JobRequest("measured", 1) { Command = "measure --all", Definition = Python });

        var history = provider.GetRequiredService<InMemoryRunHistory>();
        await Scheduling.QueueContract.Eventually.HoldsAsync(() => history.Runs.Count == 1, "the run is recorded");
        await host.StopAsync(CancellationToken.None);
        var run = history.Runs[0];
        Assert.Equal(("python-etl", Md5CommandHasher.Instance.Hash("measure --all"), 1234, 700, 0, false), (run.DefinitionId, run.CommandHash, run.PeakMemoryMb, run.PeakCpuMillicores, run.ExitCode!.Value, run.OomKilled));
    }

    private sealed class FixedEstimator(int memoryMb) : IResourceEstimator
    {
        public ValueTask<ResourceEstimate?> EstimateAsync(EstimationRequest request, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult<ResourceEstimate?>(new ResourceEstimate(memoryMb, 250, AllocationSource.CommandHistory, 3, "fixed"));
    }
}
