using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>Pausing and resuming a queue for every host (the queues table the claim reads).</summary>
internal sealed class QueueControl
{
    private readonly string _pause;
    private readonly string _resume;
    private readonly string _setLimits;

    /// <summary>The limit columns of the queues table, in the order <see cref="ReadLimits"/> reads them.</summary>
    public const string LimitColumns = "rate_count, rate_period_us, key_rate_count, key_rate_period_us, key_concurrency, fair_keys";

    /// <summary>How many columns <see cref="LimitColumns"/> has.</summary>
    public const int LimitColumnCount = 6;

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
        // A changed rate starts its bucket full again (its old timestamp was paced for the old rate).
        // Wakes the queue's workers: a loosened limit takes effect at once.
        _setLimits = schema.Apply($"""
            WITH old AS (SELECT {LimitColumns} FROM {"{schema}"}.queues WHERE queue = $1),
            upsert AS (
                INSERT INTO {"{schema}"}.queues AS c (queue, {LimitColumns}) VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (queue) DO UPDATE SET
                    rate_count = excluded.rate_count, rate_period_us = excluded.rate_period_us,
                    key_rate_count = excluded.key_rate_count, key_rate_period_us = excluded.key_rate_period_us,
                    key_concurrency = excluded.key_concurrency, fair_keys = excluded.fair_keys,
                    rate_tat = CASE WHEN (c.rate_count, c.rate_period_us) IS NOT DISTINCT FROM (excluded.rate_count, excluded.rate_period_us) THEN c.rate_tat END
                RETURNING queue),
            key_buckets AS (
                UPDATE {"{schema}"}.queue_keys k SET rate_tat = NULL
                FROM old
                WHERE k.queue = $1 AND k.rate_tat IS NOT NULL AND (old.key_rate_count, old.key_rate_period_us) IS DISTINCT FROM ($4::integer, $5::bigint))
            SELECT old.*, n.* FROM (SELECT pg_notify($8, queue) FROM upsert) AS n LEFT JOIN old ON true
            """);
    }

    /// <summary>Sets <paramref name="queue"/>'s limits (all of them, replacing the old) and notifies <paramref name="channel"/>; its one row starts with the old limits (<see cref="ReadLimits"/>, all null when it had none).</summary>
    public NpgsqlCommand SetLimits(NpgsqlDataSource dataSource, string queue, QueueLimits limits, string channel)
    {
        var command = dataSource.CreateCommand(_setLimits);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(Nullable(limits.Rate?.Count, NpgsqlDbType.Integer));
        command.Parameters.Add(Nullable(Microseconds(limits.Rate?.Period), NpgsqlDbType.Bigint));
        command.Parameters.Add(Nullable(limits.RatePerKey?.Count, NpgsqlDbType.Integer));
        command.Parameters.Add(Nullable(Microseconds(limits.RatePerKey?.Period), NpgsqlDbType.Bigint));
        command.Parameters.Add(Nullable(limits.ConcurrencyPerKey, NpgsqlDbType.Integer));
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = limits.FairKeys });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = channel, NpgsqlDbType = NpgsqlDbType.Text });
        return command;
    }

    /// <summary>Reads <see cref="LimitColumns"/> from <paramref name="first"/> on (all null for a queue without a row).</summary>
    public static QueueLimits ReadLimits(NpgsqlDataReader reader, int first)
    {
        RateLimit? Rate(int count, int period) => reader.IsDBNull(first + count) ? null
            : new RateLimit(reader.GetInt32(first + count), TimeSpan.FromTicks(reader.GetInt64(first + period) * 10));
        var limits = new QueueLimits
        {
            Rate = Rate(0, 1),
            RatePerKey = Rate(2, 3),
            ConcurrencyPerKey = reader.IsDBNull(first + 4) ? null : reader.GetInt32(first + 4),
            FairKeys = !reader.IsDBNull(first + 5) && reader.GetBoolean(first + 5),
        };
        return limits.IsLimited ? limits : QueueLimits.None;
    }

    private static long? Microseconds(TimeSpan? period) => period?.Ticks / 10;

    private static NpgsqlParameter Nullable<T>(T? value, NpgsqlDbType type) where T : struct =>
        new() { Value = value is { } v ? v : DBNull.Value, NpgsqlDbType = type };

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
