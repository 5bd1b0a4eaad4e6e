namespace Scheduling.Stagger;

/// <summary>
/// One week (Monday 2026-01-05 00:00 UTC onwards, a week without daylight-saving changes) at
/// second resolution, treated as circular: the period of every cron schedule that does not name
/// days of the month or months. The analysis and the planner both count concurrency on it.
/// </summary>
internal static class Timeline
{
    public const int Seconds = 7 * 86400;
    public const int Minutes = 7 * 1440;
    public static readonly DateTime Start = new(2026, 1, 5, 0, 0, 0, DateTimeKind.Utc);

    /// <summary>The seconds of the week at which a 5-field expression fires (second 0 of each of its minutes).</summary>
    public static int[] FiringMinuteStarts(CronSchedule schedule, TimeZoneInfo zone)
    {
        var expression = CronSchedule.Compile("0 " + schedule.MinuteExpression);
        return Collect(Occurrences.Between(expression, null, zone, Start, Start.AddDays(7)), TimeSpan.TicksPerMinute, 60);
    }

    /// <summary>The seconds of the week at which a 6-field expression fires.</summary>
    public static int[] FiringSeconds(string sixField, int? fixedSecond, TimeZoneInfo zone)
    {
        var expression = CronSchedule.Compile(sixField);
        return Collect(Occurrences.Between(expression, fixedSecond, zone, Start, Start.AddDays(7)), TimeSpan.TicksPerSecond, 1);
    }

    /// <summary>The occurrences as seconds of the week (whole units of <paramref name="ticksPerUnit"/>), through one reused buffer: the planner keeps only exact-sized arrays.</summary>
    private static int[] Collect(IEnumerable<DateTime> occurrences, long ticksPerUnit, int secondsPerUnit)
    {
        var buffer = Scratch ??= new List<int>(Minutes);
        buffer.Clear();
        foreach (var t in occurrences) buffer.Add((int)((t - Start).Ticks / ticksPerUnit) * secondsPerUnit);
        var result = buffer.ToArray();
        if (buffer.Capacity > Minutes * 4) Scratch = null; // an every-second job: do not hold its buffer
        return result;
    }

    [ThreadStatic]
    private static List<int>? Scratch;

    /// <summary>A run's length in whole seconds: at least one, at most the week.</summary>
    public static int DurationSeconds(TimeSpan duration) => (int)Math.Clamp(Math.Ceiling(duration.TotalSeconds), 1, Seconds);

    /// <summary>Adds <paramref name="delta"/> to every second a run starting at <paramref name="start"/> occupies.</summary>
    public static void Add(int[] load, int start, int duration, int delta)
    {
        start %= Seconds;
        var head = Math.Min(duration, Seconds - start);
        for (var i = 0; i < head; i++) load[start + i] += delta;
        for (var i = 0; i < duration - head; i++) load[i] += delta; // the part that wraps into the week's start
    }

    public static int Peak(int[] load) => load.Length == 0 ? 0 : load.Max();
}
