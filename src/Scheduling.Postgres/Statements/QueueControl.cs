using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>Pausing and resuming a queue for every host (the queues table the claim reads).</summary>
internal sealed class QueueControl
{
    private readonly string _pause;
    private readonly string _resume;

    public QueueControl(PostgresSchema schema)
    {
        _pause = schema.Apply("""
            INSERT INTO {schema}.queues AS c (queue, paused_at) VALUES ($1, coalesce($2, now()))
            ON CONFLICT (queue) DO UPDATE SET paused_at = excluded.paused_at WHERE c.paused_at IS NULL
            RETURNING 1
            """);
        // Resuming wakes the queue's workers in the same transaction (NOTIFY is sent on commit).
        _resume = schema.Apply("""
            WITH r AS (UPDATE {schema}.queues SET paused_at = NULL WHERE queue = $1 AND paused_at IS NOT NULL RETURNING queue)
            SELECT pg_notify($3, queue) FROM r
            """);
    }

    /// <summary>Pauses <paramref name="queue"/>; returns a row only when it was not paused.</summary>
    public NpgsqlCommand Pause(NpgsqlDataSource dataSource, string queue, DateTimeOffset? now) => Command(dataSource, _pause, queue, now, null);

    /// <summary>Resumes <paramref name="queue"/> and notifies <paramref name="channel"/>; returns a row only when it was paused.</summary>
    public NpgsqlCommand Resume(NpgsqlDataSource dataSource, string queue, string channel) => Command(dataSource, _resume, queue, null, channel);

    private static NpgsqlCommand Command(NpgsqlDataSource dataSource, string sql, string queue, DateTimeOffset? now, string? channel)
    {
        var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)channel ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        return command;
    }
}
