using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>The statements on recurring_jobs (migration 0016): each change notifies every host in its own transaction.</summary>
internal sealed class RecurringJobs
{
    private const string Columns = "name, cron, kind, payload::text, queue, priority, max_attempts, time_zone, expected_duration_ms, misfire, max_catch_up, paused, updated_at";

    public RecurringJobs(PostgresSchema schema)
    {
        List = schema.Apply($"SELECT {Columns} FROM {{schema}}.recurring_jobs ORDER BY name COLLATE \"C\"");
        // $1..$12 the definition, $13 now, $14 channel. xmax = 0 tells an insert from an update.
        Save = schema.Apply("""
            WITH saved AS (
                INSERT INTO {schema}.recurring_jobs (name, cron, kind, payload, queue, priority, max_attempts, time_zone, expected_duration_ms, misfire, max_catch_up, paused, updated_at)
                VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12, coalesce($13, now()))
                ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, kind = excluded.kind, payload = excluded.payload, queue = excluded.queue,
                    priority = excluded.priority, max_attempts = excluded.max_attempts, time_zone = excluded.time_zone,
                    expected_duration_ms = excluded.expected_duration_ms, misfire = excluded.misfire, max_catch_up = excluded.max_catch_up,
                    paused = excluded.paused, updated_at = excluded.updated_at
                RETURNING xmax = 0 AS added)
            SELECT added FROM saved CROSS JOIN LATERAL pg_notify($14, '#recurring') AS n
            """);
        SetPaused = schema.Apply("""
            WITH changed AS (UPDATE {schema}.recurring_jobs SET paused = $2, updated_at = coalesce($3, now()) WHERE name = $1 RETURNING name)
            SELECT name FROM changed CROSS JOIN LATERAL pg_notify($4, '#recurring') AS n
            """);
        Remove = schema.Apply("""
            WITH removed AS (DELETE FROM {schema}.recurring_jobs WHERE name = $1 RETURNING name)
            SELECT name FROM removed CROSS JOIN LATERAL pg_notify($2, '#recurring') AS n
            """);
    }

    public string List { get; }
    public string Save { get; }
    public string SetPaused { get; }
    public string Remove { get; }

    public NpgsqlCommand SaveCommand(NpgsqlDataSource dataSource, RecurringJobDefinition job, DateTimeOffset? now, string channel)
    {
        var command = dataSource.CreateCommand(Save);
        void Add(object? value, NpgsqlDbType type) => command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value, NpgsqlDbType = type });
        Add(job.Name, NpgsqlDbType.Text);
        Add(job.Cron, NpgsqlDbType.Text);
        Add(job.Kind, NpgsqlDbType.Text);
        Add(job.PayloadJson, NpgsqlDbType.Text);
        Add(job.Queue, NpgsqlDbType.Text);
        Add((short)job.Priority, NpgsqlDbType.Smallint);
        Add(job.MaxAttempts, NpgsqlDbType.Integer);
        Add(job.TimeZone, NpgsqlDbType.Text);
        Add((long)job.ExpectedDuration.TotalMilliseconds, NpgsqlDbType.Bigint);
        Add(StateCodec.ToText(job.Misfire), NpgsqlDbType.Text);
        Add(job.MaxCatchUp, NpgsqlDbType.Integer);
        Add(job.Paused, NpgsqlDbType.Boolean);
        Add(now, NpgsqlDbType.TimestampTz);
        Add(channel, NpgsqlDbType.Text);
        return command;
    }

    public NpgsqlCommand SetPausedCommand(NpgsqlDataSource dataSource, string name, bool paused, DateTimeOffset? now, string channel)
    {
        var command = dataSource.CreateCommand(SetPaused);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = name, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = paused });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = channel, NpgsqlDbType = NpgsqlDbType.Text });
        return command;
    }

    public NpgsqlCommand RemoveCommand(NpgsqlDataSource dataSource, string name, string channel)
    {
        var command = dataSource.CreateCommand(Remove);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = name, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = channel, NpgsqlDbType = NpgsqlDbType.Text });
        return command;
    }

    public static async Task<IReadOnlyList<RecurringJobDefinition>> ReadAllAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        var jobs = new List<RecurringJobDefinition>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            jobs.Add(new RecurringJobDefinition(reader.GetString(0), reader.GetString(1), reader.GetString(2))
            {
                PayloadJson = reader.IsDBNull(3) ? null : reader.GetString(3),
                Queue = reader.GetString(4),
                Priority = reader.GetInt16(5),
                MaxAttempts = reader.GetInt32(6),
                TimeZone = reader.GetString(7),
                ExpectedDuration = TimeSpan.FromMilliseconds(reader.GetInt64(8)),
                Misfire = StateCodec.ParseMisfire(reader.GetString(9)),
                MaxCatchUp = reader.GetInt32(10),
                Paused = reader.GetBoolean(11),
                UpdatedAt = reader.GetFieldValue<DateTimeOffset>(12),
            });
        }

        return jobs;
    }
}
