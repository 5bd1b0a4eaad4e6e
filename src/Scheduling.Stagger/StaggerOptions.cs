using System.ComponentModel.DataAnnotations;
using System.Globalization;
using Microsoft.Extensions.Options;

namespace Scheduling.Stagger;

/// <summary>
/// Stagger settings, bound from the configuration section <c>Scheduling:Stagger</c> (so
/// <c>Scheduling__Stagger__Enabled=true</c> and <c>Scheduling__Stagger__Offsets__&lt;job&gt;=15</c>
/// work as environment variables) and validated at start-up.
/// </summary>
public sealed class StaggerOptions
{
    /// <summary>The configuration section bound by <c>UseStagger</c>.</summary>
    public const string Section = "Scheduling:Stagger";

    /// <summary>The feature flag: off (default) runs every job at second 0 of its minute.</summary>
    public bool Enabled { get; set; }

    /// <summary>Offsets by job name: integers from 0 to 59 (kept as text so a bad value gets a clear message).</summary>
    public Dictionary<string, string> Offsets { get; } = new(StringComparer.Ordinal);

    /// <summary>What jobs without a configured offset get (default <see cref="StaggerStrategy.Hash"/>).</summary>
    [EnumDataType(typeof(StaggerStrategy))]
    public StaggerStrategy DefaultStrategy { get; set; } = StaggerStrategy.Hash;

    /// <summary>
    /// False (default): a bad offset fails start-up. True: a bad offset falls back to the default
    /// strategy and a warning is logged.
    /// </summary>
    public bool Lenient { get; set; }

    /// <summary>Sets a job's offset.</summary>
    public StaggerOptions SetOffset(string jobName, int offsetSeconds)
    {
        Offsets[jobName] = offsetSeconds.ToString(CultureInfo.InvariantCulture);
        return this;
    }

    /// <summary>Parses a configured offset: an integer 0-59, or the reason it is not.</summary>
    internal static bool TryParseOffset(string? text, out int offset, out string reason)
    {
        reason = "";
        if (!int.TryParse(text?.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out offset))
        {
            reason = $"must be an integer from 0 to 59 (was '{text}')";
            return false;
        }

        if (offset is < 0 or > 59)
        {
            reason = $"must be from 0 to 59 (was {offset})";
            return false;
        }

        return true;
    }
}

/// <summary>The offset of a job that has none configured.</summary>
public enum StaggerStrategy
{
    /// <summary>Second 0: the job runs unstaggered.</summary>
    None = 0,
    /// <summary>A stable hash of the job name (<see cref="StaggerHash"/>), Jenkins "H"-style.</summary>
    Hash = 1,
    /// <summary>The planner's offset for the registered recurring jobs, from their expected durations.</summary>
    Plan = 2,
}

/// <summary>The ranges of <see cref="StaggerOptions"/>, generated from their attributes.</summary>
[OptionsValidator]
internal sealed partial class StaggerOptionsRanges : IValidateOptions<StaggerOptions>;

/// <summary>The ranges of <see cref="RecurringJobOptions"/>, generated from their attributes.</summary>
[OptionsValidator]
internal sealed partial class RecurringJobOptionsRanges : IValidateOptions<RecurringJobOptions>;

/// <summary>Checks the stagger and recurring-job settings: the generated ranges, the offsets, and each job's name and cron.</summary>
internal sealed class StaggerOptionsValidator(IOptions<RecurringJobOptions> recurring) : IValidateOptions<StaggerOptions>
{
    private static readonly StaggerOptionsRanges Ranges = new();
    private static readonly RecurringJobOptionsRanges RecurringRanges = new();

    public ValidateOptionsResult Validate(string? name, StaggerOptions options)
    {
        var errors = new List<string>();
        GeneratedValidation.AddFailures(Ranges.Validate(StaggerOptions.Section, options), StaggerOptions.Section, errors);
        GeneratedValidation.AddFailures(RecurringRanges.Validate(nameof(RecurringJobOptions), recurring.Value), nameof(RecurringJobOptions), errors);
        if (!options.Lenient)
        {
            foreach (var (job, text) in options.Offsets)
            {
                if (!StaggerOptions.TryParseOffset(text, out _, out var reason)) errors.Add($"{StaggerOptions.Section}:Offsets:{job} {reason}.");
            }
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var job in recurring.Value.Jobs)
        {
            if (!seen.Add(job.Name)) errors.Add($"Recurring job '{job.Name}' is registered more than once; names must be unique.");
            if (CronSchedule.TryParse(job.Cron, out var error) is null) errors.Add($"Recurring job '{job.Name}': {error}");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
