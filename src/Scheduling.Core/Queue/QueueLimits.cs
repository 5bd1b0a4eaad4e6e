namespace Scheduling;

/// <summary>
/// At most <see cref="Count"/> job starts per <see cref="Period"/>, as a token bucket that holds
/// <see cref="Count"/> tokens and refills one every <see cref="Period"/> / <see cref="Count"/>: a burst
/// of <see cref="Count"/> at once, then an even pace. Over any window of length w, at most
/// <c>Count × (1 + w / Period)</c> jobs start.
/// </summary>
/// <param name="Count">Starts per period: 1 to 1,000,000.</param>
/// <param name="Period">The period: 1 ms to 1 day, whole milliseconds.</param>
public sealed record RateLimit(int Count, TimeSpan Period)
{
    /// <summary>The longest period.</summary>
    public static readonly TimeSpan MaxPeriod = TimeSpan.FromDays(1);

    /// <summary>The largest count per period.</summary>
    public const int MaxCount = 1_000_000;

    /// <summary>Throws when the limit is out of range, naming <paramref name="parameterName"/>.</summary>
    internal void Validate(string parameterName)
    {
        if (Count is < 1 or > MaxCount)
            throw new ArgumentOutOfRangeException($"{parameterName}.{nameof(Count)}", Count, $"A rate limit's count must be between 1 and {MaxCount:N0} starts per period (was {Count}).");
        if (Period < TimeSpan.FromMilliseconds(1) || Period > MaxPeriod || Period.Ticks % TimeSpan.TicksPerMillisecond != 0)
            throw new ArgumentOutOfRangeException($"{parameterName}.{nameof(Period)}", Period, $"A rate limit's period must be whole milliseconds between 1 ms and 1 day (was {Period}).");
    }

    /// <summary>The period in whole microseconds, as PostgreSQL stores it.</summary>
    internal long PeriodMicroseconds => Period.Ticks / 10;

    /// <summary>
    /// Reads COUNT/PERIOD, the period a number (1 when left out) and a unit of ms, s, m, h or d: <c>10/s</c>,
    /// <c>100/1m</c>, <c>5/500ms</c>. The CLI's options and the dashboard's form read rates through here.
    /// </summary>
    /// <param name="text">The text.</param>
    /// <param name="rate">The rate, when the text is one within range.</param>
    /// <param name="problem">What was wrong, to put after the text in a message; empty on success.</param>
    /// <returns>True when <paramref name="text"/> is a valid rate.</returns>
    public static bool TryParse(string? text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out RateLimit? rate, out string problem)
    {
        rate = null;
        var parts = (text ?? "").Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var count))
        {
            problem = "is not COUNT/PERIOD (e.g. 10/s, 100/1m, 5/500ms)";
            return false;
        }

        var period = parts[1];
        var unitAt = period.TakeWhile(c => char.IsDigit(c) || c == '.').Count();
        var amount = unitAt == 0 ? 1 : double.TryParse(period[..unitAt], System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out var a) ? a : -1;
        TimeSpan? span = amount < 0 ? null : period[unitAt..] switch
        {
            "ms" => TimeSpan.FromMilliseconds(amount),
            "s" => TimeSpan.FromSeconds(amount),
            "m" => TimeSpan.FromMinutes(amount),
            "h" => TimeSpan.FromHours(amount),
            "d" => TimeSpan.FromDays(amount),
            _ => null,
        };
        if (span is null)
        {
            problem = $"has no period unit: use ms, s, m, h or d after the '/' (e.g. {count}/s)";
            return false;
        }

        var candidate = new RateLimit(count, span.Value);
        try
        {
            candidate.Validate("rate");
        }
        catch (ArgumentException ex)
        {
            problem = "is out of range: " + ex.Message.Split(" (Parameter")[0];
            return false;
        }

        rate = candidate;
        problem = "";
        return true;
    }

    /// <summary>The rate as <see cref="TryParse"/> reads it: 10/1s, 5/500ms.</summary>
    /// <returns>COUNT/PERIOD in the largest whole unit.</returns>
    public override string ToString() => Period switch
    {
        { TotalDays: >= 1 } p when p.TotalDays % 1 == 0 => FormattableString.Invariant($"{Count}/{p.TotalDays:0}d"),
        { TotalHours: >= 1 } p when p.TotalHours % 1 == 0 => FormattableString.Invariant($"{Count}/{p.TotalHours:0}h"),
        { TotalMinutes: >= 1 } p when p.TotalMinutes % 1 == 0 => FormattableString.Invariant($"{Count}/{p.TotalMinutes:0}m"),
        { TotalSeconds: >= 1 } p when p.TotalSeconds % 1 == 0 => FormattableString.Invariant($"{Count}/{p.TotalSeconds:0}s"),
        var p => FormattableString.Invariant($"{Count}/{p.TotalMilliseconds:0}ms"),
    };
}

/// <summary>
/// What a queue may start, held by the store for every host at once and enforced by the claim
/// itself: a job that may not start now is not leased (never bounced, never re-written). Set with
/// <see cref="IJobQueue.SetQueueLimitsAsync"/>; see <c>docs/queue.md</c>, "Flow control".
/// </summary>
/// <remarks>
/// The per-key controls apply to jobs with a <see cref="JobRequest.PartitionKey"/>; jobs without one
/// count only against <see cref="Rate"/>, and with the per-key controls on they are served as one
/// more key, from among the queue's first due jobs.
/// </remarks>
public sealed record QueueLimits
{
    /// <summary>Starts per period for the whole queue; null: no limit.</summary>
    public RateLimit? Rate { get; init; }

    /// <summary>Starts per period for each partition key; null: no limit.</summary>
    public RateLimit? RatePerKey { get; init; }

    /// <summary>
    /// At most this many running jobs per partition key across every host (1: a mutex per key),
    /// counted from the running jobs themselves, so every way out of running frees the slot; null: no cap.
    /// </summary>
    public int? ConcurrencyPerKey { get; init; }

    /// <summary>
    /// Interleave partition keys in each claim (round-robin, least recently visited key first), so one
    /// key's backlog cannot hold back another key's jobs by more than a claim. Implied by the per-key limits.
    /// </summary>
    public bool FairKeys { get; init; }

    /// <summary>No limits: the plain claim.</summary>
    public static QueueLimits None { get; } = new();

    /// <summary>True when the claim serves the queue key by key (a per-key limit or fairness).</summary>
    public bool IsKeyed => RatePerKey is not null || ConcurrencyPerKey is not null || FairKeys;

    /// <summary>True when any limit is set.</summary>
    public bool IsLimited => IsKeyed || Rate is not null;

    /// <summary>The largest per-key concurrency cap.</summary>
    public const int MaxConcurrencyPerKey = 100_000;

    /// <summary>Throws when a limit is out of range, naming the property.</summary>
    internal void Validate(string parameterName)
    {
        Rate?.Validate($"{parameterName}.{nameof(Rate)}");
        RatePerKey?.Validate($"{parameterName}.{nameof(RatePerKey)}");
        if (ConcurrencyPerKey is < 1 or > MaxConcurrencyPerKey)
            throw new ArgumentOutOfRangeException($"{parameterName}.{nameof(ConcurrencyPerKey)}", ConcurrencyPerKey, $"ConcurrencyPerKey must be null or between 1 and {MaxConcurrencyPerKey:N0} (was {ConcurrencyPerKey}).");
    }
}
