using Npgsql;
using Scheduling.Postgres.Statements;

namespace Scheduling.Postgres;

/// <summary>
/// What ARA did over a time window: per day and definition, the jobs with a null command hash,
/// jobs given more than 1.5x their baseline, jobs at the ceiling and GPU jobs; the most common
/// allocations; and an audit of stored hashes against <c>md5(command)</c>, which must find none.
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
    /// <summary>Jobs whose stored hash is not md5 of their command (or is set without a command). Must be 0.</summary>
    public required long HashMismatches { get; init; }

    /// <summary>Reads the report for jobs created in [<paramref name="from"/>, <paramref name="to"/>).</summary>
    /// <param name="dataSource">The database.</param>
    /// <param name="schema">The queue's schema.</param>
    /// <param name="from">Window start.</param>
    /// <param name="to">Window end.</param>
    /// <param name="ceilingMemoryMb">The ceiling in force, to count jobs at it.</param>
    /// <param name="cancellationToken">Cancels the queries.</param>
    public static async Task<AraImpactReport> QueryAsync(NpgsqlDataSource dataSource, string schema, DateTimeOffset from, DateTimeOffset to, int ceilingMemoryMb, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        var queries = new AraImpactQueries(new PostgresSchema(schema, nameof(schema)));
        await using var batch = queries.Batch(dataSource, from, to, ceilingMemoryMb);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var (days, top, mismatches) = await AraImpactQueries.ReadAsync(reader, cancellationToken).ConfigureAwait(false);
        return new AraImpactReport { From = from, To = to, Days = days, TopAllocations = top, HashMismatches = mismatches };
    }
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
