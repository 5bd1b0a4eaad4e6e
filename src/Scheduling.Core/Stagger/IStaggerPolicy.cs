namespace Scheduling;

/// <summary>
/// Turns a recurring job's cron expression into the expression it actually runs on, with a
/// seconds offset that spreads jobs sharing a minute.
/// </summary>
public interface IStaggerPolicy
{
    /// <summary>
    /// The effective 6-field expression (seconds first) for <paramref name="jobName"/>. A 5-field
    /// expression gets the offset as its seconds field; a 6-field expression keeps its own seconds.
    /// </summary>
    /// <exception cref="ArgumentException">The expression is not a valid 5- or 6-field cron expression.</exception>
    StaggerResult Apply(string jobName, string cronExpression);
}

/// <summary>What <see cref="IStaggerPolicy.Apply"/> decided, and why.</summary>
/// <param name="JobName">The job.</param>
/// <param name="OriginalExpression">The expression as given.</param>
/// <param name="EffectiveExpression">The 6-field expression (seconds first) the job runs on.</param>
/// <param name="OffsetSeconds">The seconds field applied (0-59).</param>
/// <param name="Source">Where the offset came from.</param>
public sealed record StaggerResult(string JobName, string OriginalExpression, string EffectiveExpression, int OffsetSeconds, StaggerSource Source);

/// <summary>Where a stagger offset came from.</summary>
public enum StaggerSource
{
    /// <summary>Staggering is off; the job fires at second 0.</summary>
    Disabled = 0,
    /// <summary>The offset configured for this job.</summary>
    Configured = 1,
    /// <summary>A stable hash of the job name.</summary>
    Hashed = 2,
    /// <summary>The planner's choice from expected durations.</summary>
    Planned = 3,
    /// <summary>The expression already had a seconds field, which is kept.</summary>
    Explicit = 4,
    /// <summary>No offset is configured and the default strategy is none: second 0.</summary>
    Default = 5,
}
