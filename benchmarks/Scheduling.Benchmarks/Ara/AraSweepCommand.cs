using System.Globalization;
using System.Text;

namespace Scheduling.Benchmarks.Ara;

/// <summary>
/// <c>ara-sweep [--seed N] [--days N]</c>: the default estimator's two main parameters (its quantile
/// and its margin) swept over a grid on every trace shape, with the other parameters at their
/// defaults, against the bar of <see cref="AraShapesCommand"/> (OOM over runs that fit at or below 4 %,
/// slack at or below the VPA-style anchor's). Per shape it prints the least slack any point of the grid
/// reaches with its OOM rate within the bar, and which points meet the whole bar on every shape: whether
/// the bar can be met by tuning, and at what cost. Replays over the in-memory history (the same statistic).
/// </summary>
internal static class AraSweepCommand
{
    private static readonly double[] Quantiles = [0.8, 0.9, 0.95, 0.99];
    private static readonly double[] Margins = [1.0, 1.05, 1.1, 1.15, 1.2, 1.3];
    private static readonly HistoryEstimatorOptions Defaults = new();

    public static async Task<int> RunAsync(string[] args)
    {
        var seed = int.Parse(Args.Option(args, "--seed") ?? "1", CultureInfo.InvariantCulture);
        var days = int.Parse(Args.Option(args, "--days") ?? "30", CultureInfo.InvariantCulture);
        const int floorMb = 512, ceilingMb = 40_960;
        var meetsAll = Quantiles.SelectMany(q => Margins.Select(m => (q, m))).ToHashSet();
        var text = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"`ara-sweep --seed {seed} --days {days}`: quantile x margin of the default estimator over a {Quantiles.Length} x {Margins.Length} grid, other parameters at their defaults")
            .AppendLine()
            .AppendLine(CultureInfo.InvariantCulture, $"| shape | vpa fit OOM / slack | default (p{Defaults.Quantile * 100:0} x {Defaults.Margin:0.00}) fit OOM / slack | least slack with fit OOM <= 4 % (at) | points meeting the bar |")
            .AppendLine("|---|---|---|---|---|");
        foreach (var (name, _, generate) in TraceShapes.All)
        {
            var trace = generate(seed, days);
            var vpa = AraReplay.Vpa(trace, floorMb, ceilingMb);
            var points = new List<(double Q, double M, AraReplay.Result R)>();
            foreach (var q in Quantiles)
                foreach (var m in Margins)
                    points.Add((q, m, await AraReplay.ReplayEstimatorAsync(trace, floorMb, ceilingMb, new HistoryEstimatorOptions { Quantile = q, Margin = m }, CancellationToken.None)));
            var current = points.Single(p => p.Q == Defaults.Quantile && p.M == Defaults.Margin).R;
            var within = points.Where(p => p.R.FitOomRate <= AraShapesCommand.MaxOomRate).OrderBy(p => p.R.Slack).ToList();
            var meeting = within.Where(p => p.R.Slack <= vpa.Slack && p.R.Upward <= AraShapesCommand.MaxUpward).ToList();
            meetsAll.IntersectWith(meeting.Select(p => (p.Q, p.M)));
            foreach (var p in points) Console.WriteLine($"{name,-17} q {p.Q:0.00} m {p.M:0.00}  {AraReplay.ToLine(p.R)}");
            var best = within.Count == 0 ? "none" : string.Create(CultureInfo.InvariantCulture, $"{within[0].R.Slack:P1} (p{within[0].Q * 100:0} x {within[0].M:0.00}, OOM {within[0].R.FitOomRate:P1})");
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {name} | {vpa.FitOomRate:P1} / {vpa.Slack:P1} | {current.FitOomRate:P1} / {current.Slack:P1} | {best} | {(meeting.Count == 0 ? "none" : string.Join(", ", meeting.Select(p => string.Create(CultureInfo.InvariantCulture, $"p{p.Q * 100:0} x {p.M:0.00}"))))} |");
        }

        text.AppendLine()
            .AppendLine(meetsAll.Count == 0
                ? "No point of the grid meets the bar on every shape."
                : "Points meeting the bar on every shape: " + string.Join(", ", meetsAll.Select(p => string.Create(CultureInfo.InvariantCulture, $"p{p.q * 100:0} x {p.m:0.00}"))));
        Console.WriteLine(text);
        return 0;
    }
}
