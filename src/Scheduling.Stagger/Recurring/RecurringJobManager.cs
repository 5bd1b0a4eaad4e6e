using System.Text.Json;

namespace Scheduling.Stagger;

/// <summary>
/// Manages the recurring jobs stored with the queue (<see cref="IRecurringJobStore"/>) at run time:
/// add, update, pause, resume, remove, list. Every host's recurring scheduler picks a change up at
/// once (a notification) or within <see cref="RecurringJobOptions.RefreshInterval"/>, re-plans the
/// stagger offsets and logs the summary. A stored job takes the place of a code-registered one of
/// the same name.
/// </summary>
public sealed class RecurringJobManager
{
    private readonly IRecurringJobStore _store;

    /// <summary>Creates a manager over a store (both queues are one).</summary>
    public RecurringJobManager(IRecurringJobStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
    }

    /// <summary>The longest name.</summary>
    public const int MaxNameLength = 200;

    /// <summary>Validates <paramref name="job"/> (its expression, time zone and template) and stores it, replacing one of the same name.</summary>
    /// <returns>True when it was added, false when it replaced a stored one.</returns>
    /// <exception cref="ArgumentException">The definition is invalid (the message names the property); nothing was stored.</exception>
    public ValueTask<bool> AddOrUpdateAsync(RecurringJobDefinition job, CancellationToken cancellationToken = default)
    {
        ToRecurringJob(job);
        return _store.SaveRecurringJobAsync(job, cancellationToken);
    }

    /// <summary>Pauses a stored job: no ticks until it is resumed. False when no stored job has that name.</summary>
    public ValueTask<bool> PauseAsync(string name, CancellationToken cancellationToken = default) => _store.SetRecurringJobPausedAsync(name, true, cancellationToken);

    /// <summary>Resumes a paused stored job from its next tick. False when no stored job has that name.</summary>
    public ValueTask<bool> ResumeAsync(string name, CancellationToken cancellationToken = default) => _store.SetRecurringJobPausedAsync(name, false, cancellationToken);

    /// <summary>Removes a stored job (ticks already enqueued stay). False when no stored job has that name.</summary>
    public ValueTask<bool> RemoveAsync(string name, CancellationToken cancellationToken = default) => _store.RemoveRecurringJobAsync(name, cancellationToken);

    /// <summary>The stored jobs, by name.</summary>
    public ValueTask<IReadOnlyList<RecurringJobDefinition>> ListAsync(CancellationToken cancellationToken = default) => _store.ListRecurringJobsAsync(cancellationToken);

    /// <summary>The scheduler's view of a stored definition, validated; the error names the property that is wrong.</summary>
    /// <exception cref="ArgumentException">The definition is invalid.</exception>
    public static RecurringJob ToRecurringJob(RecurringJobDefinition job)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (string.IsNullOrWhiteSpace(job.Name) || job.Name.Length > MaxNameLength || job.Name.Any(char.IsControl))
            throw new ArgumentException($"A recurring job's name must be 1-{MaxNameLength} characters without control characters.", "job.Name");
        CronSchedule.Parse(job.Cron, "job.Cron");
        TimeZoneInfo zone;
        try
        {
            zone = TimeZoneInfo.FindSystemTimeZoneById(job.TimeZone ?? "");
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException or ArgumentException)
        {
            throw new ArgumentException($"'{job.TimeZone}' is not a time zone this machine knows (use an IANA id such as Europe/Berlin, or UTC).", "job.TimeZone", ex);
        }

        if (job.ExpectedDuration <= TimeSpan.Zero || job.ExpectedDuration > TimeSpan.FromDays(1))
            throw new ArgumentOutOfRangeException("job.ExpectedDuration", job.ExpectedDuration, "The expected duration must be above zero and at most one day.");
        if (!Enum.IsDefined(job.Misfire)) throw new ArgumentOutOfRangeException("job.Misfire", job.Misfire, "Unknown misfire policy.");
        if (job.MaxCatchUp is < 0 or > 1000) throw new ArgumentOutOfRangeException("job.MaxCatchUp", job.MaxCatchUp, "MaxCatchUp must be between 0 and 1,000.");
        JsonElement? payload = null;
        if (job.PayloadJson is { } json)
        {
            try
            {
                using var document = JsonDocument.Parse(json);
                payload = document.RootElement.Clone();
            }
            catch (JsonException ex)
            {
                throw new ArgumentException($"The payload is not valid JSON: {ex.Message}", "job.PayloadJson", ex);
            }
        }

        var template = new JobRequest(job.Kind, payload) { Queue = job.Queue, Priority = job.Priority, MaxAttempts = job.MaxAttempts };
#pragma warning disable SCHEDULING0001 // the queue's own validation, so a tick can never be refused for its template
        Scheduling.Internal.JobValidation.Prepare(template, new JobQueueOptions(), "job");
#pragma warning restore SCHEDULING0001
        return new RecurringJob(job.Name, job.Cron, template) { TimeZone = zone, ExpectedDuration = job.ExpectedDuration, Misfire = job.Misfire, MaxCatchUp = job.MaxCatchUp };
    }
}

/// <summary>The store of a queue that keeps no recurring jobs: none are listed, and a change says so.</summary>
internal sealed class NoRecurringJobStore : IRecurringJobStore
{
    public static readonly NoRecurringJobStore Instance = new();

    private static InvalidOperationException Unsupported() =>
        new("The registered queue does not store recurring jobs (it does not implement IRecurringJobStore); register them in code with AddRecurringJob.");

    public ValueTask<IReadOnlyList<RecurringJobDefinition>> ListRecurringJobsAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult<IReadOnlyList<RecurringJobDefinition>>([]);
    public ValueTask<bool> SaveRecurringJobAsync(RecurringJobDefinition job, CancellationToken cancellationToken = default) => throw Unsupported();
    public ValueTask<bool> SetRecurringJobPausedAsync(string name, bool paused, CancellationToken cancellationToken = default) => throw Unsupported();
    public ValueTask<bool> RemoveRecurringJobAsync(string name, CancellationToken cancellationToken = default) => throw Unsupported();
}
