namespace Scheduling;

/// <summary>
/// The recurring jobs as this process's scheduler plans them (the Stagger package's scheduler provides
/// it when it runs here): each job's original and effective cron, its offset and where the offset came
/// from, its next ticks, and the concurrency of the busiest hour with and without staggering.
/// </summary>
public interface IRecurringJobsView
{
    /// <summary>The latest plan; null before the scheduler has planned (or when it has no job).</summary>
    RecurringJobsPlan? Current { get; }
}

/// <summary>The scheduler's plan at one moment.</summary>
/// <param name="Jobs">The jobs it runs (paused stored jobs are not among them), by name.</param>
/// <param name="PlannedAt">When it was read.</param>
public sealed record RecurringJobsPlan(IReadOnlyList<RecurringJobPlan> Jobs, DateTimeOffset PlannedAt)
{
    /// <summary>
    /// The start of the busiest hour of a reference week (UTC, the week of 2026-01-05) as the jobs would run
    /// unstaggered: the hour <see cref="Unstaggered"/> and <see cref="Staggered"/> cover.
    /// </summary>
    public DateTimeOffset BusiestHour { get; init; }

    /// <summary>The length of one value of the series (30 s).</summary>
    public TimeSpan Step { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The most jobs running at once in each step of that hour, every job at second 0.</summary>
    public IReadOnlyList<int> Unstaggered { get; init; } = [];

    /// <summary>The same, with each job at its offset: the plan's effect.</summary>
    public IReadOnlyList<int> Staggered { get; init; } = [];

    /// <summary>The week's most jobs running at once unstaggered, and with the offsets.</summary>
    public (int Unstaggered, int Staggered) Peak { get; init; }
}

/// <summary>One recurring job in the plan.</summary>
/// <param name="Name">Its unique name.</param>
/// <param name="Kind">The handler kind its ticks enqueue.</param>
/// <param name="Queue">The queue they go to.</param>
/// <param name="TimeZone">The zone its expression is read in.</param>
/// <param name="Stagger">Its original and effective expression, offset and the offset's source.</param>
/// <param name="ExpectedDuration">The duration the planner used (given, estimated from history, or the default).</param>
/// <param name="NextTicks">Its next ticks (UTC).</param>
public sealed record RecurringJobPlan(string Name, string Kind, string Queue, string TimeZone, StaggerResult Stagger, TimeSpan ExpectedDuration, IReadOnlyList<DateTimeOffset> NextTicks);
