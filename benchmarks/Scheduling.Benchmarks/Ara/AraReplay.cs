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
/// JSON object per strategy: baseline, description-hash, oom-multiplier, and default (this
/// library's hasher, pipeline, PostgreSQL history store and estimator, on the trace's clock).
/// </summary>
internal static class AraReplay
{
    public sealed record Result(string Strategy, int Runs, double OomRate, double Slack, int CeilingHits, double MeanAllocOverPeak);

    public static async Task<IReadOnlyList<Result>> RunAsync(IReadOnlyList<TraceRun> trace, string connectionString, int floorMb, int ceilingMb, CancellationToken cancellationToken)
    {
        var results = new List<Result>
        {
            Replay("baseline", trace, floorMb, ceilingMb, _ => (null, false)),
            ReplayIncident("description-hash", trace, floorMb, ceilingMb, r => r.DefinitionId + "|" + Md5(r.Description)),
            ReplayIncident("oom-multiplier", trace, floorMb, ceilingMb, r => r.DefinitionId + "|" + Md5(r.Command!)),
            await ReplayDefaultAsync(trace, connectionString, floorMb, ceilingMb, cancellationToken),
        };
        return results;
    }

    private static bool Eligible(TraceRun run) => run.AraEnabled && run.Gpus == 0 && Md5CommandHasher.Instance.Hash(run.Command) is not null;

    /// <summary>The shared accounting: allocation per run from <paramref name="allocate"/> (null: baseline), OOM rule, metrics over eligible runs.</summary>
    private static Result Replay(string strategy, IReadOnlyList<TraceRun> trace, int floorMb, int ceilingMb, Func<TraceRun, (int? EstimateMb, bool Unclamped)> allocate, Action<TraceRun, int, bool>? observe = null)
    {
        var tally = new Tally(strategy);
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
            if (Eligible(run)) tally.Add(allocation, run.PeakMemoryMb, oom, ceilingHit);
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

    /// <summary>This library, end to end: hasher, ResourceAllocator, PostgresRunHistory in a fresh schema, the trace's clock.</summary>
    private static async Task<Result> ReplayDefaultAsync(IReadOnlyList<TraceRun> trace, string connectionString, int floorMb, int ceilingMb, CancellationToken cancellationToken)
    {
        var schema = $"ara_replay_{Environment.ProcessId}_{Guid.NewGuid().ToString("N")[..6]}";
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var time = new FakeTimeProvider(trace.Count == 0 ? DateTimeOffset.UnixEpoch : trace[0].SubmittedAt);
        var ara = new AraOptions { FloorMemoryMb = floorMb, CeilingMemoryMb = ceilingMb, NormalizeCommands = true };
        var history = new PostgresRunHistory(dataSource, new PostgresQueueOptions { Schema = schema }, ara, time);
        var allocator = new ResourceAllocator(history, Md5CommandHasher.Instance, ara);
        var tally = new Tally("default");
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
                tally.Add(memory, run.PeakMemoryMb, oom, allocation.CeilingHit);
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

        return tally.Result();
    }

    public static string ToJson(Result r) => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["strategy"] = r.Strategy, ["runs"] = r.Runs, ["oom_rate"] = Math.Round(r.OomRate, 4), ["slack"] = Math.Round(r.Slack, 4),
        ["ceiling_hits"] = r.CeilingHits, ["mean_alloc_over_peak"] = Math.Round(r.MeanAllocOverPeak, 3),
    });

    public static string ToLine(Result r) => string.Create(CultureInfo.InvariantCulture,
        $"{r.Strategy,-17} runs {r.Runs,5}  oom_rate {r.OomRate,6:P1}  slack {r.Slack,6:P1}  ceiling_hits {r.CeilingHits,4}  mean_alloc_over_peak {r.MeanAllocOverPeak,6:0.00}");

#pragma warning disable CA5351 // the incident keyed history by MD5; reproduced as it was
    private static string Md5(string text) => Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(text)));
#pragma warning restore CA5351

    private sealed class Tally(string strategy)
    {
        private int _runs, _ooms, _ceilingHits, _succeeded;
        private double _allocated, _slack, _ratio;

        public void Add(int allocation, int peak, bool oom, bool ceilingHit)
        {
            _runs++;
            if (ceilingHit) _ceilingHits++;
            if (oom) { _ooms++; return; }
            _succeeded++;
            _allocated += allocation;
            _slack += allocation - peak;
            _ratio += peak == 0 ? 0 : allocation / (double)peak;
        }

        public Result Result() => new(strategy, _runs, _runs == 0 ? 0 : _ooms / (double)_runs, _allocated == 0 ? 0 : _slack / _allocated, _ceilingHits, _succeeded == 0 ? 0 : _ratio / _succeeded);
    }
}
