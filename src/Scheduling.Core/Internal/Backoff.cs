namespace Scheduling.Internal;

/// <summary>Capped exponential backoff with full jitter for the host's own retries (database down, ...).</summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static class Backoff
{
    /// <summary>The delay before retry <paramref name="attempt"/>: capped exponential from <paramref name="initial"/> with full jitter, never below half of it.</summary>
    public static TimeSpan Delay(int attempt, TimeSpan initial, TimeSpan max) =>
        RetryBackoff.Delay(attempt, new RetryBackoffOptions { BaseDelay = initial, MaxDelay = max, Jitter = RetryJitter.Full }, Random.Shared) + initial / 2;
}
