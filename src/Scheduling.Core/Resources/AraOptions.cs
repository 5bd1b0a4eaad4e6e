namespace Scheduling;

/// <summary>Adaptive resource allocation settings: the bounds, the fallback key, and the estimator's parameters.</summary>
public sealed class AraOptions
{
    /// <summary>No job gets less memory than this (default 512 MB).</summary>
    public int FloorMemoryMb { get; set; } = 512;

    /// <summary>No job gets more memory than this; per environment, e.g. 40,960 staging, 253,952 production (default 40,960 MB).</summary>
    public int CeilingMemoryMb { get; set; } = 40_960;

    /// <summary>Use the normalised command (dates, UUIDs and long numbers masked) as a cold-start fallback key (default false).</summary>
    public bool NormalizeCommands { get; set; }

    /// <summary>Use the definition's history across commands as the last fallback before the baseline (default true).</summary>
    public bool UseDefinitionHistory { get; set; } = true;

    /// <summary>The estimator's statistic and window.</summary>
    public HistoryEstimatorOptions Estimator { get; set; } = new();

    internal void Validate(List<string> errors, string prefix)
    {
        if (FloorMemoryMb < 1) errors.Add($"{prefix}{nameof(FloorMemoryMb)} must be at least 1 (was {FloorMemoryMb}).");
        if (CeilingMemoryMb < FloorMemoryMb) errors.Add($"{prefix}{nameof(CeilingMemoryMb)} must be at least {nameof(FloorMemoryMb)} (was {CeilingMemoryMb}).");
        if (Estimator is null) errors.Add($"{prefix}{nameof(Estimator)} is required.");
        else Estimator.Validate(errors, prefix + nameof(Estimator) + ":");
    }
}

/// <summary>How the default estimator turns a run history into an estimate.</summary>
public sealed class HistoryEstimatorOptions
{
    /// <summary>The weighted quantile of the need taken (default 0.95).</summary>
    public double Quantile { get; set; } = 0.95;

    /// <summary>The safety margin on top of the quantile (default 1.15, Kubernetes VPA's 15 %).</summary>
    public double Margin { get; set; } = 1.15;

    /// <summary>A run's weight halves every this long (default 24 h, as Kubernetes VPA): recent runs count more.</summary>
    public TimeSpan HalfLife { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Runs older than this are ignored (default 30 days).</summary>
    public TimeSpan Window { get; set; } = TimeSpan.FromDays(30);

    /// <summary>At most this many recent runs per key (default 50).</summary>
    public int MaxSamples { get; set; } = 50;

    /// <summary>
    /// An OOM-killed run needed more than it had: it counts as a sample of max(allocation x this,
    /// allocation + <see cref="OomMinimumBumpMb"/>) — a bump on what that run had, never on an earlier bump (default 1.3).
    /// </summary>
    public double OomBump { get; set; } = 1.3;

    /// <summary>The smallest OOM bump (default 256 MB).</summary>
    public int OomMinimumBumpMb { get; set; } = 256;

    /// <summary>
    /// Extra margin while history is short: the margin is multiplied by 1 + this / runs, so one run
    /// gets x1.25 on top and ten runs x1.025 (default 0.25), as VPA widens its bounds for young histories.
    /// </summary>
    public double ShortHistoryWidening { get; set; } = 0.25;

    internal void Validate(List<string> errors, string prefix)
    {
        if (Quantile is <= 0 or > 1) errors.Add($"{prefix}{nameof(Quantile)} must be in (0, 1] (was {Quantile}).");
        if (Margin < 1) errors.Add($"{prefix}{nameof(Margin)} must be at least 1 (was {Margin}).");
        if (HalfLife <= TimeSpan.Zero) errors.Add($"{prefix}{nameof(HalfLife)} must be positive (was {HalfLife}).");
        if (Window <= TimeSpan.Zero) errors.Add($"{prefix}{nameof(Window)} must be positive (was {Window}).");
        if (MaxSamples is < 1 or > 10_000) errors.Add($"{prefix}{nameof(MaxSamples)} must be between 1 and 10000 (was {MaxSamples}).");
        if (OomBump < 1) errors.Add($"{prefix}{nameof(OomBump)} must be at least 1 (was {OomBump}).");
        if (ShortHistoryWidening < 0) errors.Add($"{prefix}{nameof(ShortHistoryWidening)} must not be negative (was {ShortHistoryWidening}).");
        if (OomMinimumBumpMb < 0) errors.Add($"{prefix}{nameof(OomMinimumBumpMb)} must not be negative (was {OomMinimumBumpMb}).");
    }
}
