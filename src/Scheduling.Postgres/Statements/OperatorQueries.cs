using Npgsql;
using NpgsqlTypes;
using Scheduling.Postgres.Statements;

namespace Scheduling.Postgres;

/// <summary>The operator's view of a schema: migrations, queues and jobs (used by the CLI); each query with its binder and reader.</summary>
internal sealed class PostgresOperations
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgresSchema _schema;

    public PostgresOperations(NpgsqlDataSource dataSource, string schema)
    {
        _dataSource = dataSource;
        _schema = new PostgresSchema(schema, nameof(schema));
    }

    public string Schema => _schema.Name;

    /// <summary>The applied migration versions (empty when the schema does not exist yet).</summary>
    public async Task<IReadOnlyList<int>> AppliedMigrationsAsync(CancellationToken cancellationToken)
    {
        await using var exists = _dataSource.CreateCommand("SELECT to_regclass($1) IS NOT NULL");
        exists.Parameters.AddWithValue(_schema.Quoted + ".schema_migrations");
        if (!(bool)(await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!) return [];
        await using var command = _dataSource.CreateCommand(_schema.Apply("SELECT version FROM {schema}.schema_migrations ORDER BY version"));
        var versions = new List<int>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) versions.Add(reader.GetInt32(0));
        return versions;
    }

    /// <summary>The migrations not yet applied, with the SQL they would run.</summary>
    public async Task<IReadOnlyList<(int Version, string Name, string Sql)>> PendingMigrationsAsync(CancellationToken cancellationToken)
    {
        var applied = (await AppliedMigrationsAsync(cancellationToken).ConfigureAwait(false)).ToHashSet();
        return PostgresMigrator.All.Where(m => !applied.Contains(m.Version)).Select(m => (m.Version, m.Name, _schema.Apply(m.Sql))).ToArray();
    }

    public Task<IReadOnlyList<int>> MigrateAsync(CancellationToken cancellationToken) => new PostgresMigrator(_dataSource, _schema).MigrateAsync(cancellationToken);

    /// <summary>Per queue: available, scheduled, running, dead, the oldest due age, jobs finished in the last five minutes, whether it is paused and its limits (paused and limited queues are listed even when empty).</summary>
    public async Task<IReadOnlyList<QueueOverview>> QueuesAsync(CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand(_schema.Apply($$"""
            WITH counts AS (SELECT queue,
                   count(*) FILTER (WHERE {schema}.job_visible_state(state, run_at, now()) = 'available') AS available,
                   count(*) FILTER (WHERE {schema}.job_visible_state(state, run_at, now()) = 'scheduled') AS scheduled,
                   count(*) FILTER (WHERE state = 'running') AS running,
                   count(*) FILTER (WHERE state = 'dead') AS dead,
                   extract(epoch FROM now() - min(run_at) FILTER (WHERE {schema}.job_visible_state(state, run_at, now()) = 'available'))::float8 AS oldest,
                   count(*) FILTER (WHERE state IN ('succeeded', 'dead', 'cancelled', 'expired') AND finalized_at > now() - interval '5 minutes') AS finished,
                   count(*) FILTER (WHERE state = 'waiting') AS waiting
            FROM {schema}.jobs
            WHERE state IN ('waiting', 'available', 'running', 'dead') OR finalized_at > now() - interval '5 minutes'
            GROUP BY queue),
            controlled AS (SELECT queue, paused_at, {{QueueControl.LimitColumns}} FROM {schema}.queues WHERE paused_at IS NOT NULL OR limited)
            SELECT queue, coalesce(c.available, 0), coalesce(c.scheduled, 0), coalesce(c.running, 0), coalesce(c.dead, 0), c.oldest,
                   coalesce(c.finished, 0), coalesce(c.waiting, 0), p.paused_at IS NOT NULL, {{string.Join(", ", QueueControl.LimitColumns.Split(", ").Select(column => "p." + column))}}
            FROM counts c FULL JOIN controlled p USING (queue)
            ORDER BY queue
            """));
        var queues = new List<QueueOverview>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            queues.Add(new QueueOverview(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4),
                reader.IsDBNull(5) ? null : reader.GetDouble(5), reader.GetInt64(6) / 5.0) { Waiting = reader.GetInt64(7), Paused = reader.GetBoolean(8), Limits = QueueControl.ReadLimits(reader, 9) });
        }

        return queues;
    }

    /// <summary>Makes a job that waits for its retry (or a later run-at) due now; false when it is not waiting.</summary>
    public async Task<bool> RetryNowAsync(long jobId, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand(_schema.Apply($$"""
            WITH r AS (UPDATE {schema}.jobs SET run_at = now() WHERE id = $1 AND state = 'available' AND run_at > now() RETURNING queue)
            SELECT pg_notify($2, queue) FROM r
            """));
        command.Parameters.AddWithValue(jobId);
        command.Parameters.AddWithValue(_schema.NotificationChannel);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>One queue as the operator sees it.</summary>
internal sealed record QueueOverview(string Queue, long Available, long Scheduled, long Running, long Dead, double? OldestDueSeconds, double FinishedPerMinute)
{
    /// <summary>Waiting for parent jobs.</summary>
    public long Waiting { get; init; }

    /// <summary>Paused for every host.</summary>
    public bool Paused { get; init; }

    /// <summary>Its limits, enforced by the claim.</summary>
    public QueueLimits Limits { get; init; } = QueueLimits.None;
}
