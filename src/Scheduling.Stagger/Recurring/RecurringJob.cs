using System.ComponentModel.DataAnnotations;

namespace Scheduling.Stagger;

/// <summary>A job enqueued on a cron schedule.</summary>
public sealed class RecurringJob
{
    /// <summary>Creates a recurring job.</summary>
    /// <param name="name">A unique name; also the stagger key and part of each tick's unique key.</param>
    /// <param name="cron">5 fields, or 6 read seconds first.</param>
    /// <param name="template">The job enqueued at each tick (its run-at time and unique key are set per tick).</param>
    public RecurringJob(string name, string cron, JobRequest template)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentException.ThrowIfNullOrWhiteSpace(cron);
        ArgumentNullException.ThrowIfNull(template);
        Name = name;
        Cron = cron;
        Template = template;
    }

    /// <summary>The job's unique name.</summary>
    public string Name { get; }
    /// <summary>Its cron expression as given.</summary>
    public string Cron { get; }
    /// <summary>What each tick enqueues.</summary>
    public JobRequest Template { get; }
    /// <summary>The zone the expression is read in (default UTC).</summary>
    public TimeZoneInfo TimeZone { get; set; } = TimeZoneInfo.Utc;
    /// <summary>
    /// How long one run usually takes, for the planner and the collision analysis. Null (default): the
    /// duration estimated from the run history of the template's definition and command (the ARA history
    /// and fallback chain), else <see cref="DefaultExpectedDuration"/>.
    /// </summary>
    public TimeSpan? ExpectedDuration { get; set; }

    /// <summary>The duration planned for a job that gives none and has no history (10 s).</summary>
    public static readonly TimeSpan DefaultExpectedDuration = TimeSpan.FromSeconds(10);
    /// <summary>What happens to ticks missed while no host was running (default <see cref="MisfirePolicy.FireOnce"/>).</summary>
    public MisfirePolicy Misfire { get; set; } = MisfirePolicy.FireOnce;
    /// <summary>With <see cref="MisfirePolicy.CatchUp"/>, the most missed ticks enqueued (default 10).</summary>
    public int MaxCatchUp { get; set; } = 10;

    /// <summary>
    /// The job as the planner and the collision analysis see it, with <paramref name="cron"/> in place of its
    /// own expression when given, and <paramref name="estimated"/> as its duration when it gives none.
    /// </summary>
    internal StaggerJob ToStaggerJob(string? cron = null, TimeSpan? estimated = null) => new(Name, cron ?? Cron, ExpectedDuration ?? estimated ?? DefaultExpectedDuration, TimeZone);

    /// <summary>The unique key of one tick: any number of hosts enqueue it once.</summary>
    public string TickKey(DateTimeOffset tickUtc) => $"recurring:{Name}:{tickUtc.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}";
}

/// <summary>The registered recurring jobs and how far back the scheduler looks for missed ticks; ranges are the <c>[Range]</c> attributes, checked at start-up.</summary>
public sealed class RecurringJobOptions
{
    /// <summary>The jobs.</summary>
    public List<RecurringJob> Jobs { get; } = [];

    /// <summary>A tick later than this is missed (default 30 s); earlier ones are simply on time.</summary>
    [TimeSpanRange("00:00:00.001", "1.00:00:00")]
    public TimeSpan MisfireThreshold { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How far back a starting host looks for missed ticks (default 24 h).</summary>
    [TimeSpanRange("00:00:00", "365.00:00:00")]
    public TimeSpan CatchUpWindow { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// How often the scheduler reads the stored recurring jobs (<see cref="IRecurringJobStore"/>) even
    /// without a change notification (default 1 min): the bound on how late a host whose notification
    /// was lost sees a change.
    /// </summary>
    [TimeSpanRange("00:00:01", "01:00:00")]
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromMinutes(1);
}
