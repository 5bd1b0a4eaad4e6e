using System.Globalization;
using System.Text;

namespace Scheduling.Benchmarks.Ara;

/// <summary>One run of a trace (the CSV columns the replay reads, docs/ara.md).</summary>
internal sealed record TraceRun(DateTimeOffset SubmittedAt, string DefinitionId, string? Command, string Description, int BaselineMemoryMb, bool AraEnabled, int Gpus, int PeakMemoryMb);

/// <summary>Reads and writes run traces: <c>submitted_at,definition_id,command,description,baseline_memory_mb,ara_enabled,gpu,peak_memory_mb</c>.</summary>
internal static class AraTrace
{
    public const string Header = "submitted_at,definition_id,command,description,baseline_memory_mb,ara_enabled,gpu,peak_memory_mb";

    public static List<TraceRun> Read(string path)
    {
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0 || lines[0].Trim() != Header) throw new InvalidDataException($"{path}: the first line must be the header '{Header}'.");
        var runs = new List<TraceRun>(lines.Length);
        for (var i = 1; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            var f = SplitCsv(lines[i]);
            if (f.Count != 8) throw new InvalidDataException($"{path}:{i + 1}: expected 8 fields, found {f.Count}.");
            runs.Add(new TraceRun(
                DateTimeOffset.Parse(f[0], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal),
                f[1], f[2].Length == 0 ? null : f[2], f[3],
                int.Parse(f[4], CultureInfo.InvariantCulture), f[5] == "1",
                int.Parse(f[6], CultureInfo.InvariantCulture), int.Parse(f[7], CultureInfo.InvariantCulture)));
        }

        // Replay in submitted_at order; the sort is stable, so equal times keep file order.
        return runs.OrderBy(r => r.SubmittedAt).ToList();
    }

    public static void Write(string path, IEnumerable<TraceRun> runs)
    {
        var text = new StringBuilder().AppendLine(Header);
        foreach (var r in runs)
        {
            text.Append(CultureInfo.InvariantCulture, $"{r.SubmittedAt.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ},{Quote(r.DefinitionId)},{Quote(r.Command ?? "")},{Quote(r.Description)},");
            text.AppendLine(CultureInfo.InvariantCulture, $"{r.BaselineMemoryMb},{(r.AraEnabled ? 1 : 0)},{r.Gpus},{r.PeakMemoryMb}");
        }

        File.WriteAllText(path, text.ToString());
    }

    private static string Quote(string value) =>
        value.IndexOfAny([',', '"', '\n']) < 0 ? value : "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static List<string> SplitCsv(string line)
    {
        var fields = new List<string>();
        var current = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"') { current.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else current.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { fields.Add(current.ToString()); current.Clear(); }
            else current.Append(c);
        }

        fields.Add(current.ToString());
        return fields;
    }
}

/// <summary>
/// A seeded synthetic trace shaped like the incident: python jobs with a 50 MB baseline needing
/// 0.5-16 GB (some with a date argument), deploy jobs of 3.5-6 GB sharing one description with two
/// 22-30 GB models, a job whose need doubles mid-trace, one job above the ceiling, GPU jobs and
/// command-less jobs. Run-to-run usage varies by up to 15 % below each command's need.
/// </summary>
internal static class AraTraceGenerator
{
    public static List<TraceRun> Generate(int seed, int days = 10)
    {
        var random = new Random(seed);
        var start = new DateTimeOffset(2026, 1, 5, 0, 0, 0, TimeSpan.Zero);
        var runs = new List<TraceRun>();
        int Peak(double needMb) => (int)Math.Round(needMb * (0.85 + 0.15 * random.NextDouble()));
        DateTimeOffset At(int day, double hour) => start.AddDays(day).AddHours(hour);

        // Python ETL: 40 commands, log-uniform needs 0.5-16 GB, one shared description, 1-4 runs a day.
        var python = Enumerable.Range(0, 40).Select(i => (Command: $"python etl.py --table t{i:00} --mode full", Need: 512 * Math.Pow(32, random.NextDouble()), PerDay: 1 + random.Next(4), Dated: i % 8 == 0)).ToList();
        // Deploy: one description, commands of 3.5-6 GB and two models of 22-30 GB.
        var deploy = Enumerable.Range(0, 12).Select(i => (Command: $"deploy --model m{i} --replicas 2", Need: 3584 + random.NextDouble() * 2560.0)).ToList();
        deploy.Add(("deploy --model llm-large --replicas 1", 22_528 + random.NextDouble() * 1000));
        deploy.Add(("deploy --model llm-xl --replicas 1", 29_000 + random.NextDouble() * 1000));

        for (var day = 0; day < days; day++)
        {
            foreach (var p in python)
            {
                for (var k = 0; k < p.PerDay; k++)
                {
                    var command = p.Dated ? $"{p.Command} --date {start.AddDays(day):yyyy-MM-dd}" : p.Command;
                    runs.Add(new TraceRun(At(day, 24.0 * (k + random.NextDouble()) / p.PerDay), "python-etl", command, "Nightly ETL", 50, true, 0, Peak(p.Need)));
                }
            }

            foreach (var d in deploy)
            {
                if (random.NextDouble() < 0.6)
                    runs.Add(new TraceRun(At(day, 24 * random.NextDouble()), "model-deploy", d.Command, "Deploy model", 4096, true, 0, Peak(d.Need)));
            }

            // A job whose need doubles half-way through the trace.
            for (var k = 0; k < 3; k++)
                runs.Add(new TraceRun(At(day, 8 * k + 8 * random.NextDouble()), "python-etl", "python features.py --window 30d", "Nightly ETL", 50, true, 0, Peak(day < days / 2 ? 3000 : 6000)));

            // A job that needs more than a 40 GB ceiling.
            runs.Add(new TraceRun(At(day, 24 * random.NextDouble()), "python-etl", "python giant_join.py --all", "Nightly ETL", 50, true, 0, Peak(52_000)));

            // GPU jobs (skip ARA) and command-less jobs (null hash: skip ARA).
            runs.Add(new TraceRun(At(day, 24 * random.NextDouble()), "training", "python train.py --epochs 3", "Train", 16_384, true, 1, Peak(14_000)));
            runs.Add(new TraceRun(At(day, 24 * random.NextDouble()), "python-etl", null, "Nightly ETL", 50, true, 0, Peak(1200)));
        }

        return runs.OrderBy(r => r.SubmittedAt).ToList();
    }
}
