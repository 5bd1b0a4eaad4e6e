namespace Scheduling;

/// <summary>What a recurring job does with ticks missed during downtime.</summary>
public enum MisfirePolicy
{
    /// <summary>Enqueue the most recent missed tick only.</summary>
    FireOnce = 0,
    /// <summary>Enqueue none; wait for the next tick.</summary>
    Skip = 1,
    /// <summary>Enqueue the missed ticks, at most the job's <c>MaxCatchUp</c> (the most recent ones).</summary>
    CatchUp = 2,
}

/// <summary>
/// A recurring job stored with the queue and managed at run time (added, updated, paused, resumed,
/// removed without a deploy): every host's recurring scheduler picks a change up at once. A stored
/// job with the name of one registered in code takes its place.
/// </summary>
/// <param name="Name">The job's unique name (1-200 characters): its stagger key and part of each tick's unique key.</param>
/// <param name="Cron">5 fields, or 6 read seconds first.</param>
/// <param name="Kind">The handler kind each tick enqueues.</param>
public sealed record RecurringJobDefinition(string Name, string Cron, string Kind)
{
    /// <summary>The payload each tick carries, as JSON; null for none.</summary>
    public string? PayloadJson { get; init; }

    /// <summary>The queue its ticks go to.</summary>
    public string Queue { get; init; } = JobRequest.DefaultQueue;

    /// <summary>Its ticks' priority.</summary>
    public int Priority { get; init; }

    /// <summary>Attempts each tick's job may have.</summary>
    public int MaxAttempts { get; init; } = JobRequest.DefaultMaxAttempts;

    /// <summary>The time zone the expression is read in, by its IANA (or Windows) id; default UTC.</summary>
    public string TimeZone { get; init; } = "UTC";

    /// <summary>How long one run usually takes, for the stagger planner (default 10 s).</summary>
    public TimeSpan ExpectedDuration { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>What happens to ticks missed while no host ran.</summary>
    public MisfirePolicy Misfire { get; init; } = MisfirePolicy.FireOnce;

    /// <summary>With <see cref="MisfirePolicy.CatchUp"/>, the most missed ticks enqueued (0-1,000).</summary>
    public int MaxCatchUp { get; init; } = 10;

    /// <summary>A paused job enqueues no ticks until it is resumed (missed ticks are not caught up).</summary>
    public bool Paused { get; init; }

    /// <summary>When it was last changed, on the store's clock (set by the store).</summary>
    public DateTimeOffset? UpdatedAt { get; init; }
}

/// <summary>
/// Where recurring jobs managed at run time live: both queues implement it. Applications change them
/// through <c>RecurringJobManager</c> (Scheduling.Stagger), which validates the expression first.
/// Every change wakes every host's recurring scheduler.
/// </summary>
public interface IRecurringJobStore
{
    /// <summary>Every stored recurring job, by name.</summary>
    ValueTask<IReadOnlyList<RecurringJobDefinition>> ListRecurringJobsAsync(CancellationToken cancellationToken = default);

    /// <summary>Adds the job, or replaces the stored one of that name; true when it was added.</summary>
    ValueTask<bool> SaveRecurringJobAsync(RecurringJobDefinition job, CancellationToken cancellationToken = default);

    /// <summary>Pauses or resumes a stored job; false when there is none of that name.</summary>
    ValueTask<bool> SetRecurringJobPausedAsync(string name, bool paused, CancellationToken cancellationToken = default);

    /// <summary>Removes a stored job (its ticks already enqueued stay); false when there is none of that name.</summary>
    ValueTask<bool> RemoveRecurringJobAsync(string name, CancellationToken cancellationToken = default);
}
