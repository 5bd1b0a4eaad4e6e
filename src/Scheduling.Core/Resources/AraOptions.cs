using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Scheduling;

/// <summary>Adaptive resource allocation settings: the bounds, the fallback key, and the estimator's parameters. Each setting's allowed range is its <c>[Range]</c> attribute, checked at start-up.</summary>
public sealed class AraOptions
{
    /// <summary>No job gets less memory than this (default 512 MB).</summary>
    [Range(1, int.MaxValue)]
    public int FloorMemoryMb { get; set; } = 512;

    /// <summary>No job gets more memory than this; per environment, e.g. 40,960 staging, 253,952 production (default 40,960 MB).</summary>
    [Range(1, int.MaxValue)]
    public int CeilingMemoryMb { get; set; } = 40_960;

    /// <summary>Use the normalised command (dates, UUIDs and long numbers masked) as a cold-start fallback key (default false).</summary>
    public bool NormalizeCommands { get; set; }

    /// <summary>Use the definition's history across commands as the last fallback before the baseline (default true).</summary>
    public bool UseDefinitionHistory { get; set; } = true;

    /// <summary>The estimator's statistic and window.</summary>
    [Required, ValidateObjectMembers]
    public HistoryEstimatorOptions Estimator { get; set; } = new();

    /// <summary>The rules one range cannot state: the ceiling is at least the floor.</summary>
    internal void ValidateRules(List<string> errors, string prefix)
    {
        if (CeilingMemoryMb < FloorMemoryMb) errors.Add($"{prefix}{nameof(CeilingMemoryMb)} must be at least {nameof(FloorMemoryMb)} ({FloorMemoryMb}) (was {CeilingMemoryMb}).");
    }
}

/// <summary>How the default estimator turns a run history into an estimate.</summary>
public sealed class HistoryEstimatorOptions
{
    /// <summary>
    /// The weighted quantile of the need taken (default 0.99). With <see cref="Margin"/>, chosen by
    /// sweeping both over every trace shape of the replay (<c>ara-sweep</c>, docs/ara.md): p99 x 1.10
    /// has fewer OOMs on the heavy-tailed and bimodal shapes and less slack on six of seven than p95 x 1.15.
    /// </summary>
    [Range(0.0, 1.0, MinimumIsExclusive = true)]
    public double Quantile { get; set; } = 0.99;

    /// <summary>The safety margin on top of the quantile (default 1.10).</summary>
    [Range(1.0, 100.0)]
    public double Margin { get; set; } = 1.10;

    /// <summary>A run's weight halves every this long (default 24 h, as Kubernetes VPA): recent runs count more.</summary>
    [TimeSpanRange("00:00:01", "3650.00:00:00")]
    public TimeSpan HalfLife { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Runs older than this are ignored (default 30 days).</summary>
    [TimeSpanRange("00:00:01", "3650.00:00:00")]
    public TimeSpan Window { get; set; } = TimeSpan.FromDays(30);

    /// <summary>At most this many recent runs per key (default 50).</summary>
    [Range(1, 10_000)]
    public int MaxSamples { get; set; } = 50;

    /// <summary>
    /// An OOM-killed run needed more than it had: it counts as a sample of max(allocation x this,
    /// allocation + <see cref="OomMinimumBumpMb"/>) — a bump on what that run had, never on an earlier bump (default 1.3).
    /// </summary>
    [Range(1.0, 100.0)]
    public double OomBump { get; set; } = 1.3;

    /// <summary>The smallest OOM bump (default 256 MB).</summary>
    [Range(0, int.MaxValue)]
    public int OomMinimumBumpMb { get; set; } = 256;

    /// <summary>
    /// Extra margin while history is short: the margin is multiplied by 1 + this / runs, so one run
    /// gets x1.25 on top and ten runs x1.025 (default 0.25), as VPA widens its bounds for young histories.
    /// </summary>
    [Range(0.0, 100.0)]
    public double ShortHistoryWidening { get; set; } = 0.25;

}
