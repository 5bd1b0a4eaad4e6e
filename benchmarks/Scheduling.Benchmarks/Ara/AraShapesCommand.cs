using System.Globalization;
using System.Text;
using Scheduling.LocalPostgres;

namespace Scheduling.Benchmarks.Ara;

/// <summary>
/// Replays every trace shape (<see cref="TraceShapes"/>) through every strategy and prints one table
/// (issue 20, item 4), with the bar <c>default</c> is held to on each shape: OOM rate at or below 4 % over
/// the runs that fit the ceiling, slack at or below the VPA-style anchor's, no compounding (upward at or below 2).
/// Exit code 1 only when a replay is inconsistent (strategies replayed different runs, or an allocation
/// left its bounds); a missed bar is printed, not failed.
/// </summary>
internal static class AraShapesCommand
{
    private const string Begin = "<!-- ara-shapes:begin (written by the ara-shapes command; do not edit) -->";
    private const string End = "<!-- ara-shapes:end -->";

    /// <summary>The bar: OOM rate over runs that fit, and how far allocations may climb above a command's largest need.</summary>
    public const double MaxOomRate = 0.04, MaxUpward = 2.0;

    public static async Task<int> RunAsync(string[] args)
    {
        var seed = int.Parse(Args.Option(args, "--seed") ?? "1", CultureInfo.InvariantCulture);
        var days = int.Parse(Args.Option(args, "--days") ?? "30", CultureInfo.InvariantCulture);
        var floorMb = int.Parse(Args.Option(args, "--floor-mb") ?? "512", CultureInfo.InvariantCulture);
        var ceilingMb = int.Parse(Args.Option(args, "--ceiling-mb") ?? "40960", CultureInfo.InvariantCulture);
        var output = Args.Option(args, "--out");
        var connection = Args.Option(args, "--connection") ?? Environment.GetEnvironmentVariable("SCHEDULING_BENCH_POSTGRES");
        await using var cluster = connection is null ? await TemporaryPostgresCluster.StartAsync() : null;
        connection ??= cluster!.ConnectionString();

        var rows = new List<(string Shape, int TraceRuns, IReadOnlyList<AraReplay.Result> Results)>();
        var consistent = true;
        foreach (var (name, _, generate) in TraceShapes.All)
        {
            var trace = generate(seed, days);
            IReadOnlyList<AraReplay.Result> results;
            try
            {
                results = await AraReplay.RunAsync(trace, connection, floorMb, ceilingMb, CancellationToken.None);
            }
            catch (InvalidOperationException ex)
            {
                Console.Error.WriteLine($"{name}: inconsistent replay: {ex.Message}");
                consistent = false;
                continue;
            }

            if (results.Select(r => r.Runs).Distinct().Count() != 1)
            {
                Console.Error.WriteLine($"{name}: inconsistent replay: the strategies replayed {string.Join(", ", results.Select(r => $"{r.Strategy} {r.Runs}"))} runs");
                consistent = false;
            }

            foreach (var result in results) Console.WriteLine($"{name,-17} {AraReplay.ToLine(result)}");
            rows.Add((name, trace.Count, results));
        }

        var table = Render(rows, seed, days, floorMb, ceilingMb);
        Console.WriteLine(table);
        if (output is not null) MarkedSection.Write(output, Begin, End, "Trace shapes", table);
        return consistent ? 0 : 1;
    }

    /// <summary>Whether <c>default</c> meets the bar on one shape, and if not, where it misses.</summary>
    public static string Verdict(IReadOnlyList<AraReplay.Result> results)
    {
        var ours = results.Single(r => r.Strategy == "default");
        var vpa = results.Single(r => r.Strategy == "vpa");
        var misses = new List<string>();
        if (ours.FitOomRate > MaxOomRate) misses.Add(string.Create(CultureInfo.InvariantCulture, $"OOM {ours.FitOomRate:P1} > 4 %"));
        if (ours.Slack > vpa.Slack) misses.Add(string.Create(CultureInfo.InvariantCulture, $"slack {ours.Slack:P1} > vpa {vpa.Slack:P1}"));
        if (ours.Upward > MaxUpward) misses.Add(string.Create(CultureInfo.InvariantCulture, $"upward {ours.Upward:0.00} > 2"));
        return misses.Count == 0 ? "✓" : "✗ " + string.Join("; ", misses);
    }

    private static string Render(List<(string Shape, int TraceRuns, IReadOnlyList<AraReplay.Result> Results)> rows, int seed, int days, int floorMb, int ceilingMb)
    {
        var text = new StringBuilder().AppendLine(Begin)
            .AppendLine(CultureInfo.InvariantCulture, $"Written by `dotnet run -c Release --project benchmarks/Scheduling.Benchmarks -- ara-shapes --seed {seed} --days {days} --out docs/ara.md`")
            .AppendLine(CultureInfo.InvariantCulture, $"on {DateTime.UtcNow:yyyy-MM-dd} (floor {floorMb} MB, ceiling {ceilingMb} MB; a throwaway PostgreSQL for `default`).")
            .AppendLine("OOM and slack are over eligible runs (ARA on, no GPU, a command); *fit OOM* counts only runs whose peak fits under the ceiling;")
            .AppendLine("*upward* is, per command, its largest allocation over its last third of runs / its largest peak, the maximum over commands.")
            .AppendLine()
            .AppendLine("| shape | strategy | runs | OOM rate | fit OOM | slack | ceiling hits | mean alloc/peak | upward |")
            .AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var (shape, _, results) in rows)
            foreach (var r in results)
                text.AppendLine(CultureInfo.InvariantCulture,
                    $"| {shape} | {(r.Strategy == "default" ? "**default**" : r.Strategy)} | {r.Runs:N0} | {r.OomRate:P1} | {r.FitOomRate:P1} | {r.Slack:P1} | {r.CeilingHits} | {r.MeanAllocOverPeak:0.00} | {r.Upward:0.00} |");

        text.AppendLine()
            .AppendLine("| shape | what it stresses | `default` against the bar (fit OOM <= 4 %, slack <= vpa, upward <= 2) |")
            .AppendLine("|---|---|---|");
        foreach (var (shape, _, results) in rows)
            text.AppendLine(CultureInfo.InvariantCulture, $"| {shape} | {TraceShapes.All.Single(s => s.Name == shape).What} | {Verdict(results)} |");
        return text.AppendLine(End).ToString();
    }
}
