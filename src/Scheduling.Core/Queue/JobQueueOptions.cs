namespace Scheduling;

/// <summary>Rules every queue applies at enqueue and on failure.</summary>
public sealed class JobQueueOptions
{
    /// <summary>The largest serialised payload accepted, in UTF-8 bytes (default 256 KiB).</summary>
    public int MaxPayloadBytes { get; set; } = 256 * 1024;

    /// <summary>How many attempt errors a job keeps (the most recent ones; default 20).</summary>
    public int MaxErrorsKept { get; set; } = 20;

    /// <summary>Longer error messages are truncated to this many characters (default 4,000).</summary>
    public int MaxErrorLength { get; set; } = 4000;

    /// <summary>How failed attempts are retried.</summary>
    public RetryBackoffOptions Retry { get; set; } = new();

    /// <summary>
    /// Aging: a due job gains one priority level per step it waits, so low priorities cannot starve
    /// (jobs are ordered by run-at minus effective priority x step). Null (default) orders by strict
    /// priority. Stored with each job when enqueued; 1 ms to 1 day, whole microseconds.
    /// </summary>
    public TimeSpan? AgingStep { get; set; }

    /// <summary>Serialiser options for payloads; null uses System.Text.Json's web defaults.</summary>
    public System.Text.Json.JsonSerializerOptions? JsonSerializerOptions { get; set; }

    internal void Validate(List<string> errors, string prefix)
    {
        if (MaxPayloadBytes < 1) errors.Add($"{prefix}{nameof(MaxPayloadBytes)} must be at least 1 (was {MaxPayloadBytes}).");
        if (MaxErrorsKept is < 1 or > 1000) errors.Add($"{prefix}{nameof(MaxErrorsKept)} must be between 1 and 1000 (was {MaxErrorsKept}).");
        if (MaxErrorLength is < 16 or > 1_000_000) errors.Add($"{prefix}{nameof(MaxErrorLength)} must be between 16 and 1,000,000 (was {MaxErrorLength}).");
        if (AgingStep is { } step && (step < TimeSpan.FromMilliseconds(1) || step > TimeSpan.FromDays(1)))
            errors.Add($"{prefix}{nameof(AgingStep)} must be null (strict priority) or between 1 ms and 1 day (was {step}).");
        if (Retry is null) errors.Add($"{prefix}{nameof(Retry)} is required.");
        else Retry.Validate(errors, prefix + nameof(Retry) + ":");
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
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The cap on any delay (default 1 h).</summary>
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Whether delays are randomised (default full jitter).</summary>
    public RetryJitter Jitter { get; set; } = RetryJitter.Full;

    internal void Validate(List<string> errors, string prefix)
    {
        if (BaseDelay < TimeSpan.Zero) errors.Add($"{prefix}{nameof(BaseDelay)} must not be negative (was {BaseDelay}).");
        if (MaxDelay < BaseDelay) errors.Add($"{prefix}{nameof(MaxDelay)} must be at least {nameof(BaseDelay)} (was {MaxDelay}).");
        if (!Enum.IsDefined(Jitter)) errors.Add($"{prefix}{nameof(Jitter)} has an unknown value ({(int)Jitter}).");
    }
}
