namespace Scheduling.Internal;

/// <summary>
/// The token bucket of a <see cref="RateLimit"/>, kept as one timestamp (the generic cell rate
/// algorithm): the theoretical arrival time <c>tat</c> of the next start. With period P and count C,
/// each start moves <c>tat</c> P / C later (rounded up to a whole microsecond, so rounding never
/// allows more), and at <c>now</c> floor((P − max(tat − now, 0)) × C / P) starts are allowed: C with
/// a full bucket, then one per P / C. Exact integer arithmetic in microseconds; PL/pgSQL twin:
/// <c>rate_allowance</c> and <c>rate_spend</c> (Functions/rate_allowance.sql).
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static class RateAllowance
{
    /// <summary>How many jobs may start at <paramref name="now"/> (0 to the limit's count).</summary>
    public static int Allowed(DateTimeOffset? tat, DateTimeOffset now, RateLimit limit)
    {
        var period = Microseconds(limit.Period);
        var ahead = tat is { } t && t > now ? Microseconds(t - now) : 0;
        if (ahead >= period) return 0;
        return (int)Math.Min(limit.Count, (period - ahead) * limit.Count / period);
    }

    /// <summary>The bucket's new timestamp after <paramref name="starts"/> starts at <paramref name="now"/>.</summary>
    public static DateTimeOffset Spend(DateTimeOffset? tat, DateTimeOffset now, RateLimit limit, int starts)
    {
        var from = tat is { } t && t > now ? t : now;
        return from.AddTicks(((starts * Microseconds(limit.Period)) + limit.Count - 1) / limit.Count * 10);
    }

    private static long Microseconds(TimeSpan span) => span.Ticks / 10;
}
