namespace Scheduling;

/// <summary>Time as the queues store it.</summary>
internal static class Clock
{
    /// <summary>UTC, truncated to whole microseconds: PostgreSQL's timestamp precision, so both stores agree exactly.</summary>
    public static DateTimeOffset ToStoragePrecision(DateTimeOffset value)
    {
        var utc = value.ToUniversalTime();
        return new DateTimeOffset(utc.Ticks - (utc.Ticks % 10), TimeSpan.Zero);
    }

    public static DateTimeOffset Now(TimeProvider time) => ToStoragePrecision(time.GetUtcNow());
}
