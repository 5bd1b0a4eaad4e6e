namespace Scheduling.Postgres;

/// <summary>
/// The time the store decides with and the time its statements write. With the database clock (the
/// default) statements get null and use <c>now()</c>, the one authority across hosts; with the
/// host's clock they get the decision time, so a fake clock drives every due time and lease.
/// </summary>
internal sealed class StatementClock(TimeProvider time, bool useDatabaseClock)
{
    /// <summary>The host's time, to decide with (backoff, run-at of a retry).</summary>
    public DateTimeOffset Now() => Clock.Now(time);

    /// <summary>What a statement writes for a decision made at <paramref name="decidedAt"/>: null stands for the database clock.</summary>
    public DateTimeOffset? ForWrite(DateTimeOffset decidedAt) => useDatabaseClock ? null : decidedAt;

    /// <summary>What a statement writes for now.</summary>
    public DateTimeOffset? WriteNow() => useDatabaseClock ? null : Clock.Now(time);
}
