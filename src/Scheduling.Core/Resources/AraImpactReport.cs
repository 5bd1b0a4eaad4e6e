namespace Scheduling;

/// <summary>
/// A store that can say what ARA did over a time window (<see cref="AraImpactReport"/>): the PostgreSQL
/// store does. Operator tools (the CLI's <c>ara report</c>, the dashboard's resources page) read it.
/// </summary>
public interface IAraReportSource
{
    /// <summary>The report for jobs enqueued, and runs finished, in [<paramref name="windowStart"/>, <paramref name="windowEnd"/>).</summary>
    /// <param name="windowStart">Window start.</param>
    /// <param name="windowEnd">Window end (after the start).</param>
    /// <param name="ceilingMemoryMb">The ceiling in force, to count jobs at it.</param>
    /// <param name="cancellationToken">Cancels the queries.</param>
    /// <returns>The report.</returns>
    ValueTask<AraImpactReport> GetAraReportAsync(DateTimeOffset windowStart, DateTimeOffset windowEnd, int ceilingMemoryMb, CancellationToken cancellationToken = default);
}

/// <summary>
/// What ARA did over a time window: per day and definition, the jobs with a null command hash,
/// jobs given more than 1.5x their baseline, jobs at the ceiling and GPU jobs; the most common
/// allocations; per definition, what runs were given against what they used; and an audit of stored
/// hashes against <c>md5(command)</c>, which must find none.
/// </summary>
public sealed record AraImpactReport
{
    /// <summary>The window's start (inclusive).</summary>
    public required DateTimeOffset From { get; init; }
    /// <summary>The window's end (exclusive).</summary>
    public required DateTimeOffset To { get; init; }
    /// <summary>Per day (UTC) and definition.</summary>
    public required IReadOnlyList<AraDailyRow> Days { get; init; }
    /// <summary>The most common memory allocations, most frequent first.</summary>
    public required IReadOnlyList<AraMemoryBucket> TopAllocations { get; init; }
    /// <summary>Per definition, the runs that finished in the window: memory given against memory used.</summary>
    public IReadOnlyList<AraDefinitionFit> Fits { get; init; } = [];
    /// <summary>Jobs whose stored hash is not md5 of their command (or is set without a command). Must be 0.</summary>
    public required long HashMismatches { get; init; }
}

/// <summary>One day and definition of the impact report.</summary>
/// <param name="Day">The day (UTC).</param>
/// <param name="DefinitionId">The definition.</param>
/// <param name="Jobs">Jobs enqueued.</param>
/// <param name="NullCommandHash">Jobs without a command hash (no command: ARA skipped).</param>
/// <param name="OverOneAndHalfBaseline">Jobs given more than 1.5x their baseline memory.</param>
/// <param name="AtCeiling">Jobs given the ceiling.</param>
/// <param name="Gpu">GPU jobs (ARA skipped).</param>
public sealed record AraDailyRow(DateOnly Day, string DefinitionId, long Jobs, long NullCommandHash, long OverOneAndHalfBaseline, long AtCeiling, long Gpu);

/// <summary>How many jobs got one memory size.</summary>
/// <param name="MemoryMb">The allocation.</param>
/// <param name="Jobs">How many jobs got it.</param>
public sealed record AraMemoryBucket(int MemoryMb, long Jobs);

/// <summary>One definition's recorded runs in the window: the memory they were given against the peak they reached.</summary>
/// <param name="DefinitionId">The definition.</param>
/// <param name="Runs">Runs recorded.</param>
/// <param name="MeanAllocatedMb">Mean memory given.</param>
/// <param name="MeanPeakMb">Mean peak reached.</param>
/// <param name="MaxPeakMb">Highest peak reached.</param>
/// <param name="OomKilled">Runs killed for memory.</param>
public sealed record AraDefinitionFit(string DefinitionId, long Runs, double MeanAllocatedMb, double MeanPeakMb, int MaxPeakMb, long OomKilled);
