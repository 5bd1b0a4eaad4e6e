using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Scheduling;

/// <summary>Rules every queue applies at enqueue and on failure. Each setting's allowed range is its <c>[Range]</c> attribute, checked at start-up.</summary>
public sealed class JobQueueOptions
{
    /// <summary>The largest serialised payload accepted, in UTF-8 bytes (default 256 KiB).</summary>
    [Range(1, int.MaxValue)]
    public int MaxPayloadBytes { get; set; } = 256 * 1024;

    /// <summary>How many attempt errors a job keeps (the most recent ones; default 20).</summary>
    [Range(1, 1000)]
    public int MaxErrorsKept { get; set; } = 20;

    /// <summary>Longer error messages are truncated to this many characters (default 4,000).</summary>
    [Range(16, 1_000_000)]
    public int MaxErrorLength { get; set; } = 4000;

    /// <summary>How failed attempts are retried.</summary>
    [Required, ValidateObjectMembers]
    public RetryBackoffOptions Retry { get; set; } = new();

    /// <summary>
    /// Aging: a due job gains one priority level per step it waits, so low priorities cannot starve
    /// (jobs are ordered by run-at minus effective priority x step). Null (default) orders by strict
    /// priority. Stored with each job when enqueued, in whole microseconds.
    /// </summary>
    [TimeSpanRange("00:00:00.001", "1.00:00:00")]
    public TimeSpan? AgingStep { get; set; }

    /// <summary>
    /// Deadline ordering: a job with a latest start (<see cref="JobRequest.LatestStartAt"/>, or the one
    /// <see cref="JobRequest.FinishBy"/> gives by the job's expected duration) is ordered as if it became
    /// due this long before its latest start, when that is earlier than its own place. Waiting jobs nearest
    /// their deadlines then go first (earliest deadline first, within a priority under strict priority)
    /// instead of expiring behind older work. Null (default): deadlines do not change the order. Stored
    /// with each job when enqueued, in whole microseconds.
    /// </summary>
    [TimeSpanRange("00:00:00.001", "7.00:00:00")]
    public TimeSpan? DeadlineLead { get; set; }

    /// <summary>
    /// Serialises payloads and results with <paramref name="options"/> instead of System.Text.Json's web
    /// defaults. For a trimmed or native AOT host, give options whose <see cref="System.Text.Json.JsonSerializerOptions.TypeInfoResolver"/>
    /// is a source-generated context naming every payload and result type: the library then reads and
    /// writes them through that context only, and a type it does not name fails its enqueue, naming the type.
    /// </summary>
    /// <returns>These options, for chaining.</returns>
    public JobQueueOptions UseJsonSerializerOptions(System.Text.Json.JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _jsonSerializerOptions = options;
        return this;
    }

    /// <summary>The payload serialiser options; null: the web defaults.</summary>
    /// <remarks>A field behind a method, not a property: the configuration binder (and its source generator) bind properties, and serialiser options are set in code.</remarks>
    internal System.Text.Json.JsonSerializerOptions? JsonSerializerOptions() => _jsonSerializerOptions;

    private System.Text.Json.JsonSerializerOptions? _jsonSerializerOptions;

    /// <summary>
    /// Code around every enqueue of the queue (tenant keys, logging, metrics, authorization), in order,
    /// the first outermost (<see cref="EnqueueContext"/>): every enqueue call of both queues runs through
    /// it, including batches, jobs added to a batch, recurring ticks and PostgreSQL's enqueues in a caller's
    /// transaction. Empty by default, at no cost. With a host, register with <see cref="SchedulingBuilder.UseEnqueueMiddleware(Func{EnqueueContext, Func{Task}, Task})"/>.
    /// </summary>
    public IList<Func<EnqueueContext, Func<Task>, Task>> EnqueueMiddleware { get; } = [];

    private static readonly JobQueueOptionsRanges Ranges = new();

    /// <summary>
    /// The most error text a job may keep, in characters (<see cref="MaxErrorsKept"/> x
    /// <see cref="MaxErrorLength"/>): escaped as JSON that is up to 60 MB, well inside what one
    /// PostgreSQL jsonb value holds (255 MB), so no setting can make a failure unstorable.
    /// </summary>
    public const long MaxErrorTextKept = 10_000_000;

    /// <summary>Adds every broken range and rule, each named <paramref name="setting"/> plus the member.</summary>
    internal void Validate(List<string> errors, string setting)
    {
        GeneratedValidation.AddFailures(Ranges.Validate(setting, this), setting, errors);
        ValidateRules(errors, setting + ":");
    }

    /// <summary>The rules between settings that one range cannot state.</summary>
    internal void ValidateRules(List<string> errors, string prefix)
    {
        if ((long)MaxErrorsKept * MaxErrorLength > MaxErrorTextKept)
            errors.Add($"{prefix}{nameof(MaxErrorsKept)} x {nameof(MaxErrorLength)} must be at most {MaxErrorTextKept:N0} characters, so a job's errors fit in one stored value (was {MaxErrorsKept} x {MaxErrorLength}).");
        Retry?.ValidateRules(errors, prefix + "Retry:");
    }

}

/// <summary>Whether retry delays are randomised.</summary>
public enum RetryJitter
{
    /// <summary>Full jitter: a uniform delay between zero and the exponential delay (spreads retry storms).</summary>
    Full = 0,
    /// <summary>The exponential delay exactly (deterministic; for tests and special cases).</summary>
    None = 1,
}

/// <summary>Exponential backoff with full jitter, capped.</summary>
public sealed class RetryBackoffOptions
{
    /// <summary>The delay before the first retry, before jitter (default 1 s).</summary>
    [TimeSpanRange("00:00:00", "1.00:00:00")]
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The cap on any delay (default 1 h).</summary>
    [TimeSpanRange("00:00:00", "365.00:00:00")]
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Whether delays are randomised (default full jitter).</summary>
    [EnumDataType(typeof(RetryJitter))]
    public RetryJitter Jitter { get; set; } = RetryJitter.Full;

    /// <summary>The rules one range cannot state: the cap is at least the base delay.</summary>
    internal void ValidateRules(List<string> errors, string prefix)
    {
        if (MaxDelay < BaseDelay) errors.Add($"{prefix}{nameof(MaxDelay)} must be at least {nameof(BaseDelay)} (was {MaxDelay}, base {BaseDelay}).");
    }
}

/// <summary>The ranges of <see cref="JobQueueOptions"/> and its retry settings, generated from their attributes.</summary>
[OptionsValidator]
internal sealed partial class JobQueueOptionsRanges : IValidateOptions<JobQueueOptions>;
