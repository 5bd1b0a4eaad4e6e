namespace Scheduling.Stagger;

/// <summary>A recurring job as the analysis and the planner see it.</summary>
/// <param name="Name">The job's unique name.</param>
/// <param name="Cron">Its cron expression (5 fields, or 6 read seconds first).</param>
/// <param name="ExpectedDuration">How long one run usually takes.</param>
/// <param name="TimeZone">The zone its expression is read in; null means UTC.</param>
public sealed record StaggerJob(string Name, string Cron, TimeSpan ExpectedDuration, TimeZoneInfo? TimeZone = null);

/// <summary>One job's place in a plan.</summary>
/// <param name="Name">The job.</param>
/// <param name="Cron">Its expression as given.</param>
/// <param name="EffectiveCron">The 6-field expression it runs on.</param>
/// <param name="OffsetSeconds">The seconds offset.</param>
/// <param name="Source">Where the offset came from.</param>
public sealed record StaggerAssignment(string Name, string Cron, string EffectiveCron, int OffsetSeconds, StaggerSource Source);

/// <summary>The planner's result: offsets, and the peak concurrency before and after.</summary>
public sealed record StaggerPlan
{
    /// <summary>Each job's offset, in input order.</summary>
    public required IReadOnlyList<StaggerAssignment> Assignments { get; init; }
    /// <summary>The most jobs running at once under the plan, over the analysis window.</summary>
    public required int PeakConcurrency { get; init; }
    /// <summary>The same with every job at second 0.</summary>
    public required int UnstaggeredPeakConcurrency { get; init; }
    /// <summary>The same with name-hash offsets (the fallback the plan is never worse than).</summary>
    public required int HashedPeakConcurrency { get; init; }
    /// <summary>No assignment of offsets can have a lower peak than this.</summary>
    public required int LowerBound { get; init; }
    /// <summary>"greedy" or "hash": which assignment was kept.</summary>
    public required string Strategy { get; init; }
}
