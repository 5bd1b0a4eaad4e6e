using System.Globalization;

namespace Scheduling;

/// <summary>One past run as the estimator reads it.</summary>
/// <param name="FinishedAt">When it ended.</param>
/// <param name="AllocatedMemoryMb">What it was given.</param>
/// <param name="PeakMemoryMb">What it used (for an OOM, at most what it was given).</param>
/// <param name="PeakCpuMillicores">CPU it used, if known.</param>
/// <param name="OomKilled">Killed for memory: its need is censored (above what it was given).</param>
/// <param name="Duration">How long it ran, if known.</param>
public readonly record struct RunSample(DateTimeOffset FinishedAt, int AllocatedMemoryMb, int PeakMemoryMb, int? PeakCpuMillicores, bool OomKilled, TimeSpan? Duration = null);

/// <summary>
/// The default estimator's statistic, shared by every store: a recency-weighted quantile of the
/// need plus a margin. Successful runs contribute their peak; an OOM-killed run is censored data —
/// its need was above what it had — and contributes max(allocation x bump, allocation + minimum
/// bump), computed from what that run was given and never stacked on an earlier bump, so repeated
/// OOMs cannot compound into a runaway. Because successes count, over-allocations come down too.
/// </summary>
public static class HistoryEstimate
{
    /// <summary>The weighted quantile of the successful runs' durations taken as the expected duration.</summary>
    public const double DurationQuantile = 0.95;

    /// <summary>An estimate from <paramref name="samples"/> (most recent first or in any order), or null when none is usable.</summary>
    public static ResourceEstimate? Compute(IReadOnlyList<RunSample> samples, AllocationSource source, HistoryEstimatorOptions options, DateTimeOffset now, int baselineCpuMillicores)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(options);
        var usable = samples.Where(s => now - s.FinishedAt <= options.Window).OrderByDescending(s => s.FinishedAt).Take(options.MaxSamples).ToList();
        if (usable.Count == 0) return null;

        var memory = new List<(double Value, double Weight)>(usable.Count);
        var cpu = new List<(double Value, double Weight)>(usable.Count);
        var duration = new List<(double Value, double Weight)>(usable.Count);
        foreach (var s in usable)
        {
            var weight = Math.Pow(0.5, Math.Max(0, (now - s.FinishedAt).TotalHours) / options.HalfLife.TotalHours);
            var need = s.OomKilled ? Math.Max(s.AllocatedMemoryMb * options.OomBump, s.AllocatedMemoryMb + options.OomMinimumBumpMb) : s.PeakMemoryMb;
            memory.Add((need, weight));
            if (s.PeakCpuMillicores is { } c) cpu.Add((c, weight));
            // A run killed for memory stopped early: its duration says nothing of a whole run's.
            if (s.Duration is { } d && !s.OomKilled) duration.Add((d.TotalMilliseconds, weight));
        }

        var latestNeed = memory[0].Value;
        var margin = options.Margin * (1 + options.ShortHistoryWidening / usable.Count);
        var memoryEstimate = WeightedQuantile(memory, options.Quantile) * margin;
        // The latest run ran out of memory: give at least its bumped need, whatever older runs say.
        if (usable[0].OomKilled) memoryEstimate = Math.Max(memoryEstimate, latestNeed);
        var cpuEstimate = cpu.Count == 0 ? baselineCpuMillicores : WeightedQuantile(cpu, options.Quantile) * margin;
        var statistic = string.Create(CultureInfo.InvariantCulture, $"weighted p{options.Quantile * 100:0.#} x {options.Margin:0.##}, half-life {options.HalfLife.TotalHours:0.#} h, {usable.Count(s => s.OomKilled)} OOM of {usable.Count}");
        // The weighted p95 of the durations, without a margin: what a run of this command usually takes at
        // most. Not the memory's quantile: an OOM costs a rerun, a long tail of durations only a plan's precision.
        TimeSpan? expectedDuration = duration.Count == 0 ? null : TimeSpan.FromMilliseconds(Math.Ceiling(WeightedQuantile(duration, DurationQuantile)));
        return new ResourceEstimate((int)Math.Ceiling(memoryEstimate), (int)Math.Ceiling(cpuEstimate), source, usable.Count, statistic, expectedDuration);
    }

    /// <summary>The smallest value whose cumulative weight reaches <paramref name="quantile"/> of the total.</summary>
    internal static double WeightedQuantile(List<(double Value, double Weight)> samples, double quantile)
    {
        samples.Sort((a, b) => a.Value.CompareTo(b.Value));
        var total = samples.Sum(s => s.Weight);
        var target = quantile * total;
        var cumulative = 0.0;
        foreach (var (value, weight) in samples)
        {
            cumulative += weight;
            if (cumulative >= target - 1e-12) return value;
        }

        return samples[^1].Value;
    }
}
