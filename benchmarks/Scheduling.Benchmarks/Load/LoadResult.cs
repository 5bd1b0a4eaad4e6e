using System.Globalization;
using System.Text.Json;

namespace Scheduling.Benchmarks.Load;

/// <summary>One scenario's result: one line of text, or one JSON object with --json.</summary>
internal sealed record LoadResult(string Scenario, int Jobs, int Workers, double Seconds, double? P50Ms, double? P99Ms, bool Verified)
{
    public double JobsPerSecond => Seconds > 0 ? Jobs / Seconds : 0;
    public Dictionary<string, object> Extra { get; init; } = [];

    public string ToJson()
    {
        var fields = new Dictionary<string, object?>
        {
            ["scenario"] = Scenario, ["jobs"] = Jobs, ["workers"] = Workers, ["seconds"] = Math.Round(Seconds, 3),
            ["jobs_per_s"] = Math.Round(JobsPerSecond, 1), ["p50_ms"] = P50Ms is { } p50 ? Math.Round(p50, 3) : null,
            ["p99_ms"] = P99Ms is { } p99 ? Math.Round(p99, 3) : null, ["verified"] = Verified,
        };
        foreach (var (key, value) in Extra) fields[key] = value;
        return JsonSerializer.Serialize(fields);
    }

    public string ToLine() => string.Create(CultureInfo.InvariantCulture,
        $"{Scenario,-15} jobs {Jobs,8}  workers {Workers,3}  {Seconds,8:0.000} s  {JobsPerSecond,10:0} jobs/s  p50 {P50Ms?.ToString("0.00", CultureInfo.InvariantCulture) ?? "-",7} ms  p99 {P99Ms?.ToString("0.00", CultureInfo.InvariantCulture) ?? "-",7} ms  verified {Verified}{string.Concat(Extra.Select(e => $"  {e.Key} {e.Value}"))}");

    /// <summary>a's rate over b's, two decimals; "n/a" when either did not run.</summary>
    public static string Ratio(IReadOnlyDictionary<string, LoadResult> results, string a, string b) =>
        results.TryGetValue(a, out var x) && results.TryGetValue(b, out var y) && y.JobsPerSecond > 0
            ? (x.JobsPerSecond / y.JobsPerSecond).ToString("0.00", CultureInfo.InvariantCulture) : "n/a";

    public static double Percentile(List<double> values, double p)
    {
        if (values.Count == 0) return 0;
        values.Sort();
        return values[Math.Clamp((int)Math.Ceiling(p * values.Count) - 1, 0, values.Count - 1)];
    }
}
