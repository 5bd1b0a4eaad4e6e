namespace Scheduling.Benchmarks.Ara;

/// <summary>
/// A family of seeded trace shapes (issue 20, item 4): each stresses one way a command's history can
/// mislead an estimator. Every run uses 85-100 % of its command's need at that moment, as in the
/// incident trace; needs above the ceiling appear only in <c>over-ceiling</c> (and the incident's giant join).
/// </summary>
internal static class TraceShapes
{
    /// <summary>The shapes, by name, in the order the table prints them.</summary>
    public static readonly IReadOnlyList<(string Name, string What, Func<int, int, List<TraceRun>> Generate)> All =
    [
        ("incident", "the incident's mix: 40 python commands, deploys sharing a description, GPU and command-less jobs", AraTraceGenerator.Generate),
        ("drift", "needs that change: half the commands double mid-trace, half grow steadily to twice their start", Drift),
        ("bimodal", "each command runs small 70 % of the time and 2.5-4x larger otherwise, at random", Bimodal),
        ("heavy-tail", "log-normal run-to-run spread (sigma 0.45) around each command's median, capped at 5x", HeavyTail),
        ("weekly", "commands that run once a week, over at least eight weeks", Weekly),
        ("burst-after-idle", "bursts of 5-15 runs per command after idle days (days 0, 4, 11, ...)", BurstAfterIdle),
        ("over-ceiling", "one definition whose commands need 45-60 GB (above a 40 GB ceiling) beside ordinary ones", OverCeiling),
    ];

    private static readonly DateTimeOffset Start = new(2026, 1, 5, 0, 0, 0, TimeSpan.Zero);

    private sealed class Builder(int seed)
    {
        public readonly Random Random = new(seed);
        public readonly List<TraceRun> Runs = [];

        /// <summary>A need drawn log-uniformly between <paramref name="lowMb"/> and <paramref name="highMb"/>.</summary>
        public double Need(double lowMb, double highMb) => lowMb * Math.Pow(highMb / lowMb, Random.NextDouble());

        public void Add(double day, string definition, string command, double needMb, int baselineMb = 1024) =>
            Runs.Add(new TraceRun(Start.AddDays(day), definition, command, "Shaped job", baselineMb, true, 0, (int)Math.Round(needMb * (0.85 + 0.15 * Random.NextDouble()))));

        public List<TraceRun> Done() => Runs.OrderBy(r => r.SubmittedAt).ToList();
    }

    private static List<TraceRun> Drift(int seed, int days)
    {
        var b = new Builder(seed);
        for (var i = 0; i < 30; i++)
        {
            var need = b.Need(1024, 8192);
            var perDay = 2 + b.Random.Next(4);
            var step = i % 2 == 0;
            for (var day = 0; day < days; day++)
                for (var k = 0; k < perDay; k++)
                {
                    var at = day + (k + b.Random.NextDouble()) / perDay;
                    var factor = step ? (at < days / 2.0 ? 1 : 2) : 1 + at / days;
                    b.Add(at, "drift", $"python drift.py --id {i}", need * factor);
                }
        }

        return b.Done();
    }

    private static List<TraceRun> Bimodal(int seed, int days)
    {
        var b = new Builder(seed);
        for (var i = 0; i < 30; i++)
        {
            var low = b.Need(768, 6144);
            var high = low * (2.5 + 1.5 * b.Random.NextDouble());
            var perDay = 2 + b.Random.Next(4);
            for (var day = 0; day < days; day++)
                for (var k = 0; k < perDay; k++)
                    b.Add(day + (k + b.Random.NextDouble()) / perDay, "bimodal", $"python report.py --id {i}", b.Random.NextDouble() < 0.7 ? low : high);
        }

        return b.Done();
    }

    private static List<TraceRun> HeavyTail(int seed, int days)
    {
        var b = new Builder(seed);
        for (var i = 0; i < 30; i++)
        {
            var median = b.Need(512, 4096);
            var perDay = 2 + b.Random.Next(5);
            for (var day = 0; day < days; day++)
                for (var k = 0; k < perDay; k++)
                {
                    // Box-Muller: a standard normal, then a log-normal factor capped at 5x.
                    var normal = Math.Sqrt(-2 * Math.Log(1 - b.Random.NextDouble())) * Math.Cos(2 * Math.PI * b.Random.NextDouble());
                    b.Add(day + (k + b.Random.NextDouble()) / perDay, "heavy-tail", $"python scan.py --id {i}", median * Math.Min(5, Math.Exp(0.45 * normal)));
                }
        }

        return b.Done();
    }

    private static List<TraceRun> Weekly(int seed, int days)
    {
        var b = new Builder(seed);
        var weeks = Math.Max(8, days / 7);
        for (var i = 0; i < 40; i++)
        {
            var need = b.Need(1024, 16_384);
            var weekday = b.Random.Next(7);
            for (var week = 0; week < weeks; week++)
                b.Add(week * 7 + weekday + b.Random.NextDouble(), "weekly", $"python weekly.py --id {i}", need);
        }

        return b.Done();
    }

    private static List<TraceRun> BurstAfterIdle(int seed, int days)
    {
        var b = new Builder(seed);
        int[] burstDays = [0, 4, 11, 12, 20, 29];
        for (var i = 0; i < 20; i++)
        {
            var need = b.Need(1024, 12_288);
            foreach (var day in burstDays.Where(d => d < Math.Max(days, 13)))
            {
                var count = 5 + b.Random.Next(11);
                for (var k = 0; k < count; k++) b.Add(day + b.Random.NextDouble() / 24, "burst", $"python backfill.py --id {i}", need);
            }
        }

        return b.Done();
    }

    private static List<TraceRun> OverCeiling(int seed, int days)
    {
        var b = new Builder(seed);
        for (var i = 0; i < 20; i++)
        {
            var giant = i < 5;
            var need = giant ? b.Need(45_000, 60_000) : b.Need(1024, 8192);
            var perDay = 1 + b.Random.Next(3);
            for (var day = 0; day < days; day++)
                for (var k = 0; k < perDay; k++)
                    b.Add(day + (k + b.Random.NextDouble()) / perDay, "warehouse", $"python warehouse.py --id {i}", need, baselineMb: 4096);
        }

        return b.Done();
    }
}
