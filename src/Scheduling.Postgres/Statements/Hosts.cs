using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>The worker hosts' reports (<see cref="WorkerHostInfo"/>): the upsert a host sends, its removal, and the live hosts.</summary>
internal sealed class Hosts
{
    private const int WorkerId = 0, Queues = 1, Memory = 2, Cpu = 3, Gpus = 4, StartedAt = 5, SeenAt = 6, ExpiresAt = 7;

    /// <summary>The columns <see cref="ReadAsync"/> reads, in order.</summary>
    private const string Columns = "worker_id, queues, memory_mb, cpu_millicores, gpus, started_at, seen_at, expires_at";

    private readonly string _report;
    private readonly string _remove;
    private readonly string _list;

    public Hosts(PostgresSchema schema)
    {
        // $1 worker id, $2 queues, $3-$5 capacity (NULL: unlimited), $6 expires after, $7 now. A host that
        // reports again keeps its start unless its old report had expired (it is a new life then).
        _report = schema.Apply("""
            WITH gone AS (DELETE FROM {schema}.hosts WHERE expires_at < coalesce($7, now()) - interval '1 day' AND worker_id <> $1)
            INSERT INTO {schema}.hosts AS h (worker_id, queues, memory_mb, cpu_millicores, gpus, started_at, seen_at, expires_at)
            VALUES ($1, $2, $3, $4, $5, coalesce($7, now()), coalesce($7, now()), coalesce($7, now()) + $6)
            ON CONFLICT (worker_id) DO UPDATE SET
                queues = excluded.queues, memory_mb = excluded.memory_mb, cpu_millicores = excluded.cpu_millicores, gpus = excluded.gpus,
                started_at = CASE WHEN h.expires_at > excluded.seen_at THEN h.started_at ELSE excluded.started_at END,
                seen_at = excluded.seen_at, expires_at = excluded.expires_at
            """);
        _remove = schema.Apply("DELETE FROM {schema}.hosts WHERE worker_id = $1");
        _list = schema.Apply($"SELECT {Columns} FROM {{schema}}.hosts WHERE expires_at > coalesce($1, now()) ORDER BY worker_id");
    }

    public NpgsqlCommand Report(NpgsqlDataSource dataSource, WorkerHostInfo host, TimeSpan expiresAfter, DateTimeOffset? now)
    {
        var command = dataSource.CreateCommand(_report);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = host.WorkerId, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = host.Queues.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        command.Parameters.Add(Amount(host.Capacity?.MemoryMb));
        command.Parameters.Add(Amount(host.Capacity?.CpuMillicores));
        command.Parameters.Add(Amount(host.Capacity?.Gpus));
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = expiresAfter, NpgsqlDbType = NpgsqlDbType.Interval });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        return command;
    }

    public NpgsqlCommand Remove(NpgsqlDataSource dataSource, string workerId)
    {
        var command = dataSource.CreateCommand(_remove);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = workerId, NpgsqlDbType = NpgsqlDbType.Text });
        return command;
    }

    public NpgsqlCommand List(NpgsqlDataSource dataSource, DateTimeOffset? now)
    {
        var command = dataSource.CreateCommand(_list);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        return command;
    }

    public static async Task<IReadOnlyList<WorkerHostInfo>> ReadAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        var hosts = new List<WorkerHostInfo>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            int? Int(int i) => reader.IsDBNull(i) ? null : reader.GetInt32(i);
            ResourceCapacity? capacity = Int(Memory) is null && Int(Cpu) is null && Int(Gpus) is null ? null : new ResourceCapacity(Int(Memory), Int(Cpu), Int(Gpus));
            hosts.Add(new WorkerHostInfo(reader.GetString(WorkerId), reader.GetFieldValue<string[]>(Queues), capacity)
            {
                StartedAt = reader.GetFieldValue<DateTimeOffset>(StartedAt),
                SeenAt = reader.GetFieldValue<DateTimeOffset>(SeenAt),
                ExpiresAt = reader.GetFieldValue<DateTimeOffset>(ExpiresAt),
            });
        }

        return hosts;
    }

    private static NpgsqlParameter Amount(int? amount) => new() { Value = (object?)amount ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Integer };
}
