using System.Globalization;
using System.Text;

namespace Scheduling.Stagger;

/// <summary>Human-readable text for logs and the CLI: the plan as a table and the collisions found.</summary>
public static class StaggerSummary
{
    /// <summary>A summary: enabled or not, each job's original and effective expression and source, and the collision analysis.</summary>
    public static string Describe(bool enabled, IReadOnlyList<StaggerResult> results, CollisionReport? collisions)
    {
        ArgumentNullException.ThrowIfNull(results);
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Stagger is {(enabled ? "enabled" : "disabled")}; {results.Count} recurring job(s):");
        text.Append(Table(results.Select(r => new StaggerAssignment(r.JobName, r.OriginalExpression, r.EffectiveExpression, r.OffsetSeconds, r.Source)).ToArray()));
        if (collisions is not null) text.Append(Collisions(collisions));
        return text.ToString();
    }

    /// <summary>The assignments as an aligned table.</summary>
    public static string Table(IReadOnlyList<StaggerAssignment> assignments)
    {
        ArgumentNullException.ThrowIfNull(assignments);
        string[] header = ["job", "cron", "effective", "offset", "source"];
        var rows = assignments.Select(a => new[] { a.Name, a.Cron, a.EffectiveCron, a.OffsetSeconds.ToString(CultureInfo.InvariantCulture), a.Source.ToString().ToLowerInvariant() }).ToList();
        var widths = Enumerable.Range(0, header.Length).Select(i => Math.Max(header[i].Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        var text = new StringBuilder();
        foreach (var row in rows.Prepend(header))
            text.AppendLine(string.Join("  ", row.Select((cell, i) => cell.PadRight(widths[i]))).TrimEnd());
        return text.ToString();
    }

    /// <summary>The collision analysis as text.</summary>
    public static string Collisions(CollisionReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Peak concurrency {report.PeakConcurrency}, first at {string.Join(", ", report.PeakInstants.Take(3).Select(t => t.ToString("ddd HH:mm:ss", CultureInfo.InvariantCulture)))} (UTC, reference week).");
        if (report.Pairs.Count == 0) text.AppendLine("No two jobs run at once.");
        foreach (var pair in report.Pairs)
            text.AppendLine(CultureInfo.InvariantCulture, $"  {pair.First} and {pair.Second}: overlap {pair.OverlapsPerDay:0.##}/day, same second {pair.SameSecondPerDay:0.##}/day");
        return text.ToString();
    }
}
