using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Scheduling.Postgres;

namespace Scheduling.Benchmarks.Ara;

/// <summary>
/// Replays a run trace against each strategy (docs/ara.md, "Replay"), and prints one
/// JSON object per strategy: baseline, description-hash, oom-multiplier, vpa (a VPA-style
/// p95 x 1.15 recommender, the strongest simple anchor), and default (this library's hasher,
/// pipeline, PostgreSQL history store and estimator, on the trace's clock).
/// </summary>
internal static class AraReplay
{
    /// <param name="FitOomRate">The OOM rate over the runs whose peak fits under the ceiling (no strategy can save the others).</param>
    /// <param name="Upward">Per command, the largest allocation over its last third of runs / its largest peak in the trace; the maximum over commands. Compounding allocations show as a large value.</param>
    public sealed record Result(string Strategy, int Runs, double OomRate, double Slack, int CeilingHits, double MeanAllocOverPeak, double FitOomRate = 0, double Upward = 0);

    public static async Task<IReadOnlyList<Result>> RunAsync(IReadOnlyList<TraceRun> trace, string connectionString, int floorMb, int ceilingMb, CancellationToken cancellationToken)
    {
        var results = new List<Result>
        {
            Replay("baseline", trace, floorMb, ceilingMb, _ => (null, false)),
            ReplayIncident("description-hash", trace, floorMb, ceilingMb, r => r.DefinitionId + "|" + Md5(r.Description)),
            ReplayIncident("oom-multiplier", trace, floorMb, ceilingMb, r => r.DefinitionId + "|" + Md5(r.Command!)),
            ReplayVpa(trace, floorMb, ceilingMb),
            await ReplayDefaultAsync(trace, connectionString, floorMb, ceilingMb, cancellationToken),
        };
        return results;
    }

    private static bool Eligible(TraceRun run) => run.AraEnabled && run.Gpus == 0 && Md5CommandHasher.Instance.Hash(run.Command) is not null;

    /// <summary>The shared accounting: allocation per run from <paramref name="allocate"/> (null: baseline), OOM rule, metrics over eligible runs.</summary>
    private static Result Replay(string strategy, IReadOnlyList<TraceRun> trace, int floorMb, int ceilingMb, Func<TraceRun, (int? EstimateMb, bool Unclamped)> allocate, Action<TraceRun, int, bool>? observe = null)
    {
        var tally = new Tally(strategy, trace, ceilingMb);
        foreach (var run in trace)
        {
            int allocation;
            var ceilingHit = false;
            if (!Eligible(run) || strategy == "baseline") allocation = run.BaselineMemoryMb;
            else
            {
                var (estimate, _) = allocate(run);
                var raw = estimate ?? run.BaselineMemoryMb;
                allocation = Math.Clamp(raw, floorMb, ceilingMb);
                ceilingHit = estimate is not null && raw > ceilingMb;
            }

            var oom = run.PeakMemoryMb > allocation;
            observe?.Invoke(run, allocation, oom);
            if (Eligible(run)) tally.Add(run, allocation, oom, ceilingHit);
        }

        return tally.Result();
    }

    /// <summary>The incident's estimator: over OOM runs of the key in the last 3 days (at most 30), p99 of the memory they had x 1.75, within [512, 350,000].</summary>
    private static Result ReplayIncident(string strategy, IReadOnlyList<TraceRun> trace, int floorMb, int ceilingMb, Func<TraceRun, string> key)
    {
        var ooms = new Dictionary<string, List<(DateTimeOffset At, int Memory)>>(StringComparer.Ordinal);
        return Replay(strategy, trace, floorMb, ceilingMb,
            run =>
            {
                if (!ooms.TryGetValue(key(run), out var rows)) return (null, false);
                var recent = rows.Where(r => run.SubmittedAt - r.At <= TimeSpan.FromDays(3)).Take(30).Select(r => (double)r.Memory).OrderBy(m => m).ToList();
                if (recent.Count == 0) return (null, false);
                var p99 = recent[Math.Clamp((int)Math.Ceiling(0.99 * recent.Count) - 1, 0, recent.Count - 1)];
                return ((int)Math.Clamp(p99 * 1.75, 512, 350_000), false);
            },
            (run, allocation, oom) =>
            {
                if (!oom || !Eligible(run)) return;
                if (!ooms.TryGetValue(key(run), out var rows)) ooms[key(run)] = rows = [];
                rows.Add((run.SubmittedAt, allocation));
            });
    }

    /// <summary>
    /// The anchor: Kubernetes' Vertical Pod Autoscaler reduced to its rule, per command: the p95 of the
    /// command's samples of the last 8 days x 1.15; a success adds its peak, an OOM-killed run adds
    /// max(allocation x 1.2, allocation + 100 MB) (VPA's OOM bump); no samples: the baseline.
    /// </summary>
    private static Result ReplayVpa(IReadOnlyList<TraceRun> trace, int floorMb, int ceilingMb)
    {
        var samples = new Dictionary<string, List<(DateTimeOffset At, double Memory)>>(StringComparer.Ordinal);
        static string Key(TraceRun run) => run.DefinitionId + "|" + Md5(run.Command!);
        return Replay("vpa", trace, floorMb, ceilingMb,
            run =>
            {
                if (!samples.TryGetValue(Key(run), out var rows)) return (null, false);
                var recent = rows.Where(r => run.SubmittedAt - r.At <= TimeSpan.FromDays(8)).Select(r => r.Memory).OrderBy(m => m).ToList();
                if (recent.Count == 0) return (null, false);
                var p95 = recent[Math.Clamp((int)Math.Ceiling(0.95 * recent.Count) - 1, 0, recent.Count - 1)];
                return ((int)Math.Ceiling(p95 * 1.15), false);
            },
            (run, allocation, oom) =>
            {
                if (!Eligible(run)) return;
                if (!samples.TryGetValue(Key(run), out var rows)) samples[Key(run)] = rows = [];
                rows.Add((run.SubmittedAt, oom ? Math.Max(allocation * 1.2, allocation + 100) : run.PeakMemoryMb));
            });
    }

    /// <summary>This library, end to end: hasher, ResourceAllocator, PostgresRunHistory in a fresh schema, the trace's clock.</summary>
    private static async Task<Result> ReplayDefaultAsync(IReadOnlyList<TraceRun> trace, string connectionString, int floorMb, int ceilingMb, CancellationToken cancellationToken)
    {
        var schema = $"ara_replay_{Environment.ProcessId}_{Guid.NewGuid().ToString("N")[..6]}";
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var time = new FakeTimeProvider(trace.Count == 0 ? DateTimeOffset.UnixEpoch : trace[0].SubmittedAt);
        var ara = new AraOptions { FloorMemoryMb = floorMb, CeilingMemoryMb = ceilingMb, NormalizeCommands = true };
        // The trace's clock dates the runs and measures the estimator's window: with the database clock
        // (the store's default) every run of a trace from the past falls outside the window and nothing is learnt.
        var history = new PostgresRunHistory(dataSource, new PostgresQueueOptions { Schema = schema, UseDatabaseClock = false }, ara, time);
        var allocator = new ResourceAllocator(history, Md5CommandHasher.Instance, ara);
        var tally = new Tally("default", trace, ceilingMb);
        var learnt = 0; // sized runs whose allocation came from history
        try
        {
            foreach (var run in trace)
            {
                if (run.SubmittedAt > time.GetUtcNow()) time.SetUtcNow(run.SubmittedAt);
                var definition = new JobDefinition(run.DefinitionId, run.BaselineMemoryMb, 1000, run.Gpus, run.AraEnabled);
                var allocation = await allocator.AllocateAsync(definition, run.Command, cancellationToken);
                var eligible = Eligible(run);
                var memory = eligible ? allocation.MemoryMb : run.BaselineMemoryMb;
                var oom = run.PeakMemoryMb > memory;
                if (!eligible) continue;
                tally.Add(run, memory, oom, allocation.CeilingHit);
                if (allocation.Source != AllocationSource.Baseline) learnt++;
                var hash = allocator.HashCommand(run.Command)!;
                await history.RecordAsync([new RunOutcome(run.DefinitionId, hash, allocator.HashNormalizedCommand(run.Command), memory,
                    oom ? memory : run.PeakMemoryMb, null, TimeSpan.Zero, oom ? 137 : 0, oom, run.SubmittedAt)], cancellationToken);
            }
        }
        finally
        {
            await using var drop = dataSource.CreateCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            await drop.ExecuteNonQueryAsync(CancellationToken.None);
        }

        // A trace that repeats a command must teach the estimator something; if it learnt nothing the
        // replay is broken (as when the runs were dated on one clock and the window measured on another).
        if (learnt == 0 && trace.Where(Eligible).GroupBy(r => (r.DefinitionId, r.Command)).Any(g => g.Count() > 1))
            throw new InvalidOperationException("default: no allocation came from history although commands repeat; the replay is not learning");

        return tally.Result();
    }

    /// <summary>
    /// The default strategy's pipeline (hasher, ResourceAllocator, the shared statistic) over the in-memory
    /// history, with <paramref name="estimator"/> in place of the default parameters: for sweeping them
    /// quickly (<c>ara-sweep</c>); the store only keeps the runs, so the statistic is the one PostgreSQL replays.
    /// </summary>
    public static async Task<Result> ReplayEstimatorAsync(IReadOnlyList<TraceRun> trace, int floorMb, int ceilingMb, HistoryEstimatorOptions estimator, CancellationToken cancellationToken)
    {
        var time = new FakeTimeProvider(trace.Count == 0 ? DateTimeOffset.UnixEpoch : trace[0].SubmittedAt);
        var ara = new AraOptions { FloorMemoryMb = floorMb, CeilingMemoryMb = ceilingMb, NormalizeCommands = true, Estimator = estimator };
        var history = new InMemoryRunHistory(ara, time);
        var allocator = new ResourceAllocator(history, Md5CommandHasher.Instance, ara);
        var tally = new Tally("default", trace, ceilingMb);
        foreach (var run in trace)
        {
            if (run.SubmittedAt > time.GetUtcNow()) time.SetUtcNow(run.SubmittedAt);
            if (!Eligible(run)) continue;
            var allocation = await allocator.AllocateAsync(new JobDefinition(run.DefinitionId, run.BaselineMemoryMb, 1000, run.Gpus, run.AraEnabled), run.Command, cancellationToken);
            var oom = run.PeakMemoryMb > allocation.MemoryMb;
            tally.Add(run, allocation.MemoryMb, oom, allocation.CeilingHit);
            await history.RecordAsync([new RunOutcome(run.DefinitionId, allocator.HashCommand(run.Command)!, allocator.HashNormalizedCommand(run.Command), allocation.MemoryMb,
                oom ? allocation.MemoryMb : run.PeakMemoryMb, null, TimeSpan.Zero, oom ? 137 : 0, oom, run.SubmittedAt)], cancellationToken);
        }

        return tally.Result();
    }

    /// <summary>The VPA-style anchor alone (for <c>ara-sweep</c>).</summary>
    public static Result Vpa(IReadOnlyList<TraceRun> trace, int floorMb, int ceilingMb) => ReplayVpa(trace, floorMb, ceilingMb);

    public static string ToJson(Result r) => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["strategy"] = r.Strategy, ["runs"] = r.Runs, ["oom_rate"] = Math.Round(r.OomRate, 4), ["slack"] = Math.Round(r.Slack, 4),
        ["ceiling_hits"] = r.CeilingHits, ["mean_alloc_over_peak"] = Math.Round(r.MeanAllocOverPeak, 3),
        ["fit_oom_rate"] = Math.Round(r.FitOomRate, 4), ["upward"] = Math.Round(r.Upward, 3),
    });

    public static string ToLine(Result r) => string.Create(CultureInfo.InvariantCulture,
        $"{r.Strategy,-17} runs {r.Runs,5}  oom_rate {r.OomRate,6:P1}  slack {r.Slack,6:P1}  ceiling_hits {r.CeilingHits,4}  mean_alloc_over_peak {r.MeanAllocOverPeak,6:0.00}  fit_oom_rate {r.FitOomRate,6:P1}  upward {r.Upward,5:0.00}");

#pragma warning disable CA5351 // the incident keyed history by MD5; reproduced as it was
    private static string Md5(string text) => Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(text)));
#pragma warning restore CA5351

    /// <summary>
    /// The metrics over eligible runs. Throws <see cref="InvalidOperationException"/> when a replay is
    /// inconsistent: an allocation outside [floor, ceiling] for a sized run is a harness or pipeline bug.
    /// </summary>
    private sealed class Tally(string strategy, IReadOnlyList<TraceRun> trace, int ceilingMb)
    {
        private int _runs, _ooms, _ceilingHits, _succeeded, _fitRuns, _fitOoms;
        private double _allocated, _slack, _ratio;
        private readonly Dictionary<string, List<int>> _allocations = new(StringComparer.Ordinal);

        public void Add(TraceRun run, int allocation, bool oom, bool ceilingHit)
        {
            if (allocation <= 0 || allocation > Math.Max(ceilingMb, run.BaselineMemoryMb))
                throw new InvalidOperationException($"{strategy}: allocation {allocation} MB for '{run.Command}' at {run.SubmittedAt:O} is outside (0, max(ceiling, baseline)]");
            var peak = run.PeakMemoryMb;
            _runs++;
            if (ceilingHit) _ceilingHits++;
            if (peak <= ceilingMb)
            {
                _fitRuns++;
                if (oom) _fitOoms++;
            }

            var key = run.DefinitionId + "|" + run.Command;
            if (!_allocations.TryGetValue(key, out var list)) _allocations[key] = list = [];
            list.Add(allocation);
            if (oom) { _ooms++; return; }
            _succeeded++;
            _allocated += allocation;
            _slack += allocation - peak;
            _ratio += peak == 0 ? 0 : allocation / (double)peak;
        }

        public Result Result()
        {
            var peaks = trace.GroupBy(r => r.DefinitionId + "|" + r.Command, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Max(r => r.PeakMemoryMb), StringComparer.Ordinal);
            var upward = _allocations.Where(a => a.Value.Count >= 3)
                .Select(a => a.Value.Skip(a.Value.Count * 2 / 3).Max() / (double)Math.Max(1, peaks[a.Key]))
                .DefaultIfEmpty(0).Max();
            return new(strategy, _runs, _runs == 0 ? 0 : _ooms / (double)_runs, _allocated == 0 ? 0 : _slack / _allocated, _ceilingHits,
                _succeeded == 0 ? 0 : _ratio / _succeeded, _fitRuns == 0 ? 0 : _fitOoms / (double)_fitRuns, upward);
        }
    }
}
