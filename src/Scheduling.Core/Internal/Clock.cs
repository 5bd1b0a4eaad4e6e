namespace Scheduling.Internal;

/// <summary>Time as the queues store it.</summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static class Clock
{
    /// <summary>UTC, truncated to whole microseconds: PostgreSQL's timestamp precision, so both stores agree exactly.</summary>
    public static DateTimeOffset ToStoragePrecision(DateTimeOffset value)
    {
        var utc = value.ToUniversalTime();
        return new DateTimeOffset(utc.Ticks - (utc.Ticks % 10), TimeSpan.Zero);
    }

    /// <summary>The provider's time now, at storage precision.</summary>
    public static DateTimeOffset Now(TimeProvider time) => ToStoragePrecision(time.GetUtcNow());
}
