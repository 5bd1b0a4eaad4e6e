namespace Scheduling.Internal;

/// <summary>The retry delay rule shared by every queue.</summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static class RetryBackoff
{
    /// <summary>
    /// min(MaxDelay, BaseDelay * 2^(attempt-1)), then with full jitter a uniform value in [0, that],
    /// truncated to whole milliseconds so every store keeps it exactly.
    /// </summary>
    public static TimeSpan Delay(int attempt, RetryBackoffOptions options, Random random)
    {
        var exponent = Math.Clamp(attempt - 1, 0, 62);
        var raw = options.BaseDelay.TotalMilliseconds * Math.Pow(2, exponent);
        var capped = Math.Min(raw, options.MaxDelay.TotalMilliseconds);
        if (options.Jitter == RetryJitter.Full) capped *= random.NextDouble();
        return TimeSpan.FromMilliseconds(Math.Floor(capped));
    }

    /// <summary>
    /// How long until a job is due again after <paramref name="ack"/>: the backoff of its attempt for a
    /// failure, the asked delay for a snooze, none otherwise; what both stores pass to <see cref="JobTransitions.Acknowledge"/>.
    /// </summary>
    public static TimeSpan AfterAcknowledgement(JobAck ack, RetryBackoffOptions options, Random random) => ack.Kind switch
    {
        JobAckKind.Failed => Delay(ack.Lease.Attempt, options, random),
        JobAckKind.Snoozed => ack.Delay,
        _ => TimeSpan.Zero,
    };
}
