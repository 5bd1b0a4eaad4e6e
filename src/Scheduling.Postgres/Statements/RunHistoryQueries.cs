using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>
/// The estimator's statements on <c>run_history</c>: the three levels of the fallback chain read in
/// one statement (each an index range scan limited to the most recent runs), and run outcomes
/// recorded directly (the worker's run records go with acknowledgements, in <see cref="Retention"/>).
/// </summary>
internal sealed class RunHistoryQueries
{
    // Row ordinals of the estimate.
    private const int Level = 0, FinishedAt = 1, AllocatedMemory = 2, PeakMemory = 3, PeakCpu = 4, OomKilled = 5, ReadAt = 6, DurationMs = 7;

    public RunHistoryQueries(PostgresSchema schema)
    {
        // $1 definition, $2 command hash, $3 normalised hash, $4 now, $5 max rows, $6 use definition level, $7 window.
        // The level numbers are positions in HistoryLevels.Chain, plus one. The window is measured on the
        // clock that dated the runs (the database's by default), and each row carries that clock's now.
        Estimate = schema.Apply("""
            (SELECT 1 AS level, finished_at, allocated_memory_mb, peak_memory_mb, peak_cpu_millicores, oom_killed, coalesce($4, now()) AS read_at, duration_ms
             FROM {schema}.run_history WHERE definition_id = $1 AND command_hash = $2 AND finished_at >= coalesce($4, now()) - $7
             ORDER BY finished_at DESC LIMIT $5)
            UNION ALL
            (SELECT 2, finished_at, allocated_memory_mb, peak_memory_mb, peak_cpu_millicores, oom_killed, coalesce($4, now()), duration_ms
             FROM {schema}.run_history WHERE $3::text IS NOT NULL AND definition_id = $1 AND normalized_command_hash = $3 AND finished_at >= coalesce($4, now()) - $7
             ORDER BY finished_at DESC LIMIT $5)
            UNION ALL
            (SELECT 3, finished_at, allocated_memory_mb, peak_memory_mb, peak_cpu_millicores, oom_killed, coalesce($4, now()), duration_ms
             FROM {schema}.run_history WHERE $6 AND definition_id = $1 AND finished_at >= coalesce($4, now()) - $7
             ORDER BY finished_at DESC LIMIT $5)
            """);
        Record = schema.Apply("""
            INSERT INTO {schema}.run_history (definition_id, command_hash, normalized_command_hash, allocated_memory_mb, peak_memory_mb,
                                              peak_cpu_millicores, duration_ms, exit_code, oom_killed, finished_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::integer[], $6::integer[], $7::bigint[], $8::integer[], $9::boolean[], $10::timestamptz[])
            """);
        // $1 age, $2 batch size, $3 now: the oldest first, by the finish-time index (migration 4).
        Prune = schema.Apply("""
            DELETE FROM {schema}.run_history WHERE id IN (
                SELECT id FROM {schema}.run_history WHERE finished_at < coalesce($3, now()) - $1 ORDER BY finished_at LIMIT $2)
            """);
    }

    public string Estimate { get; }
    public string Record { get; }
    public string Prune { get; }

    public NpgsqlCommand PruneCommand(NpgsqlDataSource dataSource, TimeSpan olderThan, DateTimeOffset? now, int batchSize)
    {
        var command = dataSource.CreateCommand(Prune);
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = olderThan, NpgsqlDbType = NpgsqlDbType.Interval });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = batchSize });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        return command;
    }

    public NpgsqlCommand EstimateCommand(NpgsqlDataSource dataSource, EstimationRequest request, DateTimeOffset? now, AraOptions options)
    {
        var command = dataSource.CreateCommand(Estimate);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = request.DefinitionId, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = request.CommandHash, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)request.NormalizedCommandHash ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = options.Estimator.MaxSamples });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = options.UseDefinitionHistory });
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = options.Estimator.Window, NpgsqlDbType = NpgsqlDbType.Interval });
        return command;
    }

    /// <summary>Reads the estimate's rows, grouped by the level of the fallback chain they came from, and the statement's clock (null when no row came back).</summary>
    public static async Task<(Dictionary<AllocationSource, List<RunOutcome>> ByLevel, DateTimeOffset? ReadAt)> ReadRunsByLevelAsync(NpgsqlDataReader reader, EstimationRequest request, CancellationToken cancellationToken)
    {
        var byLevel = new Dictionary<AllocationSource, List<RunOutcome>>();
        DateTimeOffset? readAt = null;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            readAt ??= reader.GetFieldValue<DateTimeOffset>(ReadAt);
            var level = HistoryLevels.Chain[reader.GetInt32(Level) - 1];
            if (!byLevel.TryGetValue(level, out var runs)) byLevel[level] = runs = [];
            runs.Add(new RunOutcome(request.DefinitionId, request.CommandHash, null, reader.GetInt32(AllocatedMemory), reader.GetInt32(PeakMemory),
                reader.IsDBNull(PeakCpu) ? null : reader.GetInt32(PeakCpu), TimeSpan.FromMilliseconds(reader.GetInt64(DurationMs)), null, reader.GetBoolean(OomKilled), reader.GetFieldValue<DateTimeOffset>(FinishedAt)));
        }

        return (byLevel, readAt);
    }

    public NpgsqlCommand RecordCommand(NpgsqlDataSource dataSource, IReadOnlyList<RunOutcome> outcomes)
    {
        var command = dataSource.CreateCommand(Record);
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = outcomes.Select(o => o.DefinitionId).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = outcomes.Select(o => o.CommandHash).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = outcomes.Select(o => o.NormalizedCommandHash).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = outcomes.Select(o => o.AllocatedMemoryMb).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = outcomes.Select(o => o.PeakMemoryMb).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = outcomes.Select(o => o.PeakCpuMillicores).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = outcomes.Select(o => (long)o.Duration.TotalMilliseconds).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = outcomes.Select(o => o.ExitCode).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        command.Parameters.Add(new NpgsqlParameter<bool[]> { TypedValue = outcomes.Select(o => o.OomKilled).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset[]> { TypedValue = outcomes.Select(o => o.FinishedAt.ToUniversalTime()).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        return command;
    }
}
