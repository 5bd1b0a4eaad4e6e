using Npgsql;
using NpgsqlTypes;

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
        var s = new PostgresSchema(schema, nameof(schema));
        await using var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(Command(s.Apply("""
            SELECT (created_at AT TIME ZONE 'UTC')::date, definition_id, count(*),
                   count(*) FILTER (WHERE command_hash IS NULL),
                   count(*) FILTER (WHERE memory_mb > 1.5 * baseline_memory_mb),
                   count(*) FILTER (WHERE ara_ceiling_hit OR memory_mb >= $3),
                   count(*) FILTER (WHERE gpus > 0)
            FROM {schema}.jobs
            WHERE definition_id IS NOT NULL AND created_at >= $1 AND created_at < $2
            GROUP BY 1, 2 ORDER BY 1, 2
            """), from, to, ceilingMemoryMb));
        batch.BatchCommands.Add(Command(s.Apply("""
            SELECT memory_mb, count(*) FROM {schema}.jobs
            WHERE definition_id IS NOT NULL AND memory_mb IS NOT NULL AND created_at >= $1 AND created_at < $2 AND $3 > 0
            GROUP BY memory_mb ORDER BY count(*) DESC, memory_mb DESC LIMIT 20
            """), from, to, ceilingMemoryMb));
        batch.BatchCommands.Add(Command(s.Apply("""
            SELECT count(*) FROM {schema}.jobs
            WHERE created_at >= $1 AND created_at < $2 AND $3 > 0
              AND command_hash IS DISTINCT FROM (CASE WHEN command IS NULL OR command = '' THEN NULL ELSE md5(command) END)
            """), from, to, ceilingMemoryMb));

        var days = new List<AraDailyRow>();
        var top = new List<AraMemoryBucket>();
        long mismatches;
        await using (var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                days.Add(new AraDailyRow(reader.GetFieldValue<DateOnly>(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5), reader.GetInt64(6)));
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) top.Add(new AraMemoryBucket(reader.GetInt32(0), reader.GetInt64(1)));
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            mismatches = reader.GetInt64(0);
        }

        return new AraImpactReport { From = from, To = to, Days = days, TopAllocations = top, HashMismatches = mismatches };
    }

    private static NpgsqlBatchCommand Command(string sql, DateTimeOffset from, DateTimeOffset to, int ceiling)
    {
        var command = new NpgsqlBatchCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = from.ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = to.ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = ceiling });
        return command;
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
