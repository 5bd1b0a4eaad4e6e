using Cronos;

namespace Scheduling.Stagger;

/// <summary>Next-occurrence computation shared by the analysis, the planner and the recurring scheduler.</summary>
internal static class Occurrences
{
    /// <summary>
    /// Occurrences of a 6-field expression in [fromUtc, toUtc), in UTC. On a spring-forward day
    /// Cronos moves every occurrence of the skipped hour to the changeover instant; the seconds
    /// offset is applied again there, so staggered jobs do not collapse into one herd.
    /// </summary>
    public static IEnumerable<DateTime> Between(CronExpression expression, int? fixedSecond, TimeZoneInfo zone, DateTime fromUtc, DateTime toUtc)
    {
        foreach (var occurrence in expression.GetOccurrences(fromUtc, toUtc, zone, fromInclusive: true, toInclusive: false))
            yield return Adjust(occurrence, fixedSecond, zone);
    }

    /// <summary>The first occurrence strictly after <paramref name="afterUtc"/>, or null.</summary>
    public static DateTime? Next(CronExpression expression, int? fixedSecond, TimeZoneInfo zone, DateTime afterUtc)
    {
        var from = afterUtc;
        for (var guard = 0; guard < 4; guard++)
        {
            var next = expression.GetNextOccurrence(from, zone, inclusive: false);
            if (next is null) return null;
            var adjusted = Adjust(next.Value, fixedSecond, zone);
            if (adjusted > afterUtc) return adjusted;
            from = next.Value;
        }

        return null;
    }

    private static DateTime Adjust(DateTime occurrenceUtc, int? fixedSecond, TimeZoneInfo zone)
    {
        if (fixedSecond is not > 0 || occurrenceUtc.Second == fixedSecond) return occurrenceUtc;
        var local = TimeZoneInfo.ConvertTimeFromUtc(occurrenceUtc, zone);
        return zone.IsInvalidTime(local.AddSeconds(-1)) ? occurrenceUtc.AddSeconds(fixedSecond.Value) : occurrenceUtc;
    }
}
