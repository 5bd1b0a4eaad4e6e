using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres;

/// <summary>
/// The run history in PostgreSQL, and the default estimator over it: one round trip per estimate
/// (the three levels of the fallback chain in one statement, each an index range scan limited to
/// the most recent runs), then the shared statistic (<see cref="HistoryEstimate"/>).
/// </summary>
public sealed class PostgresRunHistory : IRunHistoryStore, IResourceEstimator
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly AraOptions _options;
    private readonly TimeProvider _time;
    private readonly string _estimateSql;
    private readonly string _recordSql;
    private readonly MigrationGate _migrations;

    /// <summary>Creates the store in the schema named by <paramref name="storeOptions"/> (the queue's schema).</summary>
    public PostgresRunHistory(NpgsqlDataSource dataSource, PostgresQueueOptions? storeOptions = null, AraOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        storeOptions ??= new PostgresQueueOptions();
        _dataSource = dataSource;
        _options = options ?? new AraOptions();
        _time = timeProvider ?? TimeProvider.System;
        var schema = new PostgresSchema(storeOptions.Schema, "storeOptions.Schema");
        _migrations = new MigrationGate(new PostgresMigrator(dataSource, schema), storeOptions.ApplyMigrations);
        // $1 definition, $2 command hash, $3 normalised hash, $4 oldest finish, $5 max rows, $6 use definition level
        _estimateSql = schema.Apply("""
            (SELECT 1 AS level, finished_at, allocated_memory_mb, peak_memory_mb, peak_cpu_millicores, oom_killed
             FROM {schema}.run_history WHERE definition_id = $1 AND command_hash = $2 AND finished_at >= $4
             ORDER BY finished_at DESC LIMIT $5)
            UNION ALL
            (SELECT 2, finished_at, allocated_memory_mb, peak_memory_mb, peak_cpu_millicores, oom_killed
             FROM {schema}.run_history WHERE $3::text IS NOT NULL AND definition_id = $1 AND normalized_command_hash = $3 AND finished_at >= $4
             ORDER BY finished_at DESC LIMIT $5)
            UNION ALL
            (SELECT 3, finished_at, allocated_memory_mb, peak_memory_mb, peak_cpu_millicores, oom_killed
             FROM {schema}.run_history WHERE $6 AND definition_id = $1 AND finished_at >= $4
             ORDER BY finished_at DESC LIMIT $5)
            """);
        _recordSql = schema.Apply("""
            INSERT INTO {schema}.run_history (definition_id, command_hash, normalized_command_hash, allocated_memory_mb, peak_memory_mb,
                                              peak_cpu_millicores, duration_ms, exit_code, oom_killed, finished_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::integer[], $6::integer[], $7::bigint[], $8::integer[], $9::boolean[], $10::timestamptz[])
            """);
    }

    /// <inheritdoc />
    public async ValueTask<ResourceEstimate?> EstimateAsync(EstimationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        await _migrations.EnsureAsync(cancellationToken).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        await using var command = _dataSource.CreateCommand(_estimateSql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = request.DefinitionId, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = request.CommandHash, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)request.NormalizedCommandHash ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now - _options.Estimator.Window, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = _options.Estimator.MaxSamples });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = _options.UseDefinitionHistory });
        var byLevel = new Dictionary<AllocationSource, List<RunOutcome>>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var level = HistoryLevels.Chain[reader.GetInt32(0) - 1];
                if (!byLevel.TryGetValue(level, out var runs)) byLevel[level] = runs = [];
                runs.Add(new RunOutcome(request.DefinitionId, request.CommandHash, null, reader.GetInt32(2), reader.GetInt32(3),
                    reader.IsDBNull(4) ? null : reader.GetInt32(4), TimeSpan.Zero, null, reader.GetBoolean(5), reader.GetFieldValue<DateTimeOffset>(1)));
            }
        }

        return HistoryLevels.Estimate(request, _options, now, level => byLevel.GetValueOrDefault(level) ?? []);
    }

    /// <inheritdoc />
    public async ValueTask RecordAsync(IReadOnlyList<RunOutcome> outcomes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        if (outcomes.Count == 0) return;
        await _migrations.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_recordSql);
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
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
