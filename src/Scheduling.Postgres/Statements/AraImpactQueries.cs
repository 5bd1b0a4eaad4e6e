using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>The ARA impact report's four statements (per day and definition, top allocations, hash audit, given against used per definition), sent as one batch, and their readers.</summary>
internal sealed class AraImpactQueries
{
    // Row ordinals of the daily rows and of the top allocations.
    private const int Day = 0, Definition = 1, Jobs = 2, NullHash = 3, OverBaseline = 4, AtCeiling = 5, Gpu = 6;
    private const int BucketMemory = 0, BucketJobs = 1;

    // Each statement takes $1 window start, $2 window end, $3 the ceiling in force.
    public AraImpactQueries(PostgresSchema schema)
    {
        Daily = schema.Apply("""
            SELECT (created_at AT TIME ZONE 'UTC')::date, definition_id, count(*),
                   count(*) FILTER (WHERE command_hash IS NULL),
                   count(*) FILTER (WHERE memory_mb > 1.5 * baseline_memory_mb),
                   count(*) FILTER (WHERE ara_ceiling_hit OR memory_mb >= $3),
                   count(*) FILTER (WHERE gpus > 0)
            FROM {schema}.jobs
            WHERE definition_id IS NOT NULL AND created_at >= $1 AND created_at < $2
            GROUP BY 1, 2 ORDER BY 1, 2
            """);
        TopAllocations = schema.Apply("""
            SELECT memory_mb, count(*) FROM {schema}.jobs
            WHERE definition_id IS NOT NULL AND memory_mb IS NOT NULL AND created_at >= $1 AND created_at < $2 AND $3 > 0
            GROUP BY memory_mb ORDER BY count(*) DESC, memory_mb DESC LIMIT 20
            """);
        // Per definition, runs finished in the window (run_history_finished_idx): given against used.
        Fits = schema.Apply("""
            SELECT definition_id, count(*), avg(allocated_memory_mb)::float8, avg(peak_memory_mb)::float8, max(peak_memory_mb), count(*) FILTER (WHERE oom_killed)
            FROM {schema}.run_history
            WHERE finished_at >= $1 AND finished_at < $2 AND $3 > 0
            GROUP BY definition_id ORDER BY definition_id
            """);
        // The hash rule's audit: the stored hash is md5 of the final command, and NULL without one (never the description's).
        HashMismatches = schema.Apply("""
            SELECT count(*) FROM {schema}.jobs
            WHERE created_at >= $1 AND created_at < $2 AND $3 > 0 AND (command IS NOT NULL OR command_hash IS NOT NULL)
              AND command_hash IS DISTINCT FROM (CASE WHEN command IS NULL OR command = '' THEN NULL ELSE md5(command) END)
            """);
    }

    public string Daily { get; }
    public string Fits { get; }
    public string TopAllocations { get; }
    public string HashMismatches { get; }

    public NpgsqlBatch Batch(NpgsqlDataSource dataSource, DateTimeOffset from, DateTimeOffset to, int ceilingMemoryMb)
    {
        var batch = dataSource.CreateBatch();
        foreach (var sql in new[] { Daily, TopAllocations, HashMismatches, Fits })
        {
            var command = new NpgsqlBatchCommand(sql);
            command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = from.ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz });
            command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = to.ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = ceilingMemoryMb });
            batch.BatchCommands.Add(command);
        }

        return batch;
    }

    /// <summary>Reads the batch's four results in order.</summary>
    public static async Task<(List<AraDailyRow> Days, List<AraMemoryBucket> Top, long Mismatches, List<AraDefinitionFit> Fits)> ReadAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        var days = new List<AraDailyRow>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            days.Add(new AraDailyRow(reader.GetFieldValue<DateOnly>(Day), reader.GetString(Definition), reader.GetInt64(Jobs), reader.GetInt64(NullHash),
                reader.GetInt64(OverBaseline), reader.GetInt64(AtCeiling), reader.GetInt64(Gpu)));
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var top = new List<AraMemoryBucket>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) top.Add(new AraMemoryBucket(reader.GetInt32(BucketMemory), reader.GetInt64(BucketJobs)));
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var mismatches = reader.GetInt64(0);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var fits = new List<AraDefinitionFit>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            fits.Add(new AraDefinitionFit(reader.GetString(0), reader.GetInt64(1), reader.GetDouble(2), reader.GetDouble(3), reader.GetInt32(4), reader.GetInt64(5)));
        return (days, top, mismatches, fits);
    }
}
