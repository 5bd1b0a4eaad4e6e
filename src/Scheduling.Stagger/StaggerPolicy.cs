using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Scheduling.Stagger;

/// <summary>
/// The <see cref="IStaggerPolicy"/> of this package: a configured offset wins; otherwise the
/// default strategy (none, the name hash, or the plan over the registered recurring jobs).
/// With the feature flag off, every job runs at second 0.
/// </summary>
public sealed partial class StaggerPolicy : IStaggerPolicy
{
    private readonly StaggerOptions _options;
    private readonly Dictionary<string, int> _configured = new(StringComparer.Ordinal);
    private readonly Lazy<IReadOnlyDictionary<string, int>> _planned;

    /// <summary>Creates a policy.</summary>
    /// <param name="options">The settings.</param>
    /// <param name="plannedJobs">The jobs the <see cref="StaggerStrategy.Plan"/> strategy plans together.</param>
    /// <param name="logger">Receives warnings about offsets ignored in lenient mode.</param>
    public StaggerPolicy(StaggerOptions options, IEnumerable<StaggerJob>? plannedJobs = null, ILogger<StaggerPolicy>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        var log = (ILogger?)logger ?? NullLogger.Instance;
        foreach (var (job, text) in options.Offsets)
        {
            if (StaggerOptions.TryParseOffset(text, out var offset, out var reason)) _configured[job] = offset;
            else if (options.Lenient) OffsetIgnored(log, job, reason, options.DefaultStrategy);
            else throw new ArgumentException($"{StaggerOptions.Section}:Offsets:{job} {reason}.", nameof(options));
        }

        var jobs = plannedJobs?.ToArray() ?? [];
        _planned = new Lazy<IReadOnlyDictionary<string, int>>(() =>
            StaggerPlanner.Plan(jobs, _configured.Where(c => jobs.Any(j => j.Name == c.Key)).ToDictionary(c => c.Key, c => c.Value))
                .Assignments.ToDictionary(a => a.Name, a => a.OffsetSeconds, StringComparer.Ordinal));
    }

    /// <summary>Whether staggering is on.</summary>
    public bool Enabled => _options.Enabled;

    /// <inheritdoc />
    public StaggerResult Apply(string jobName, string cronExpression)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(jobName);
        var schedule = CronSchedule.Parse(cronExpression, nameof(cronExpression));
        if (schedule.HasSeconds) return new StaggerResult(jobName, schedule.Original, schedule.WithOffset(0), schedule.FixedSecond ?? 0, StaggerSource.Explicit);
        if (!_options.Enabled) return Result(0, StaggerSource.Disabled);
        if (_configured.TryGetValue(jobName, out var configured)) return Result(configured, StaggerSource.Configured);
        return _options.DefaultStrategy switch
        {
            StaggerStrategy.Hash => Result(StaggerHash.Offset(jobName), StaggerSource.Hashed),
            StaggerStrategy.Plan when _planned.Value.TryGetValue(jobName, out var planned) => Result(planned, StaggerSource.Planned),
            StaggerStrategy.Plan => Result(StaggerHash.Offset(jobName), StaggerSource.Hashed), // not among the planned jobs
            _ => Result(0, StaggerSource.Default),
        };

        StaggerResult Result(int offset, StaggerSource source) => new(jobName, schedule.Original, schedule.WithOffset(offset), offset, source);
    }

    [LoggerMessage(3100, LogLevel.Warning, "Stagger offset for '{Job}' ignored: it {Reason}; using the {Strategy} strategy instead")]
    private static partial void OffsetIgnored(ILogger logger, string job, string reason, StaggerStrategy strategy);
}
