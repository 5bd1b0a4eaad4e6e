using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>
/// The statements on batches: create one (counted in its parent batch), lock an open one to add
/// members, count new members, read one. Members' ends are counted by the trigger on jobs
/// (migration 0015, Functions/batches.sql).
/// </summary>
internal sealed class Batches
{
    private const int Id = 0, Parent = 1, Total = 2, Pending = 3, Succeeded = 4, Failed = 5, Cancelled = 6, OnSuccess = 7, OnComplete = 8, CreatedAt = 9, SettledAt = 10;

    public Batches(PostgresSchema schema)
    {
        // $1 parent batch (null for none), $2 now. A nested batch counts as one pending member of its
        // parent, which must be open: the row lock of that UPDATE orders it with the parent's settling.
        Create = schema.Apply("""
            WITH parent AS (
                UPDATE {schema}.batches SET total = total + 1, pending = pending + 1
                WHERE id = $1 AND settled_at IS NULL
                RETURNING id)
            INSERT INTO {schema}.batches (parent_batch_id, created_at)
            SELECT $1, coalesce($2, now()) WHERE $1::bigint IS NULL OR EXISTS (SELECT 1 FROM parent)
            RETURNING id
            """);
        // $1 batch: whether it exists and has settled, locked so it cannot settle before this transaction's members are counted.
        LockOpen = schema.Apply("SELECT settled_at IS NOT NULL FROM {schema}.batches WHERE id = $1 FOR UPDATE");
        Exists = schema.Apply("SELECT settled_at IS NOT NULL FROM {schema}.batches WHERE id = $1");
        // $1 batch, $2 on-success job, $3 on-complete job.
        SetCallbacks = schema.Apply("UPDATE {schema}.batches SET on_success_job_id = $2, on_complete_job_id = $3 WHERE id = $1");
        // $1 batch, $2 created member ids, $3 now, $4 channel.
        CountMembers = schema.Apply("SELECT {schema}.add_batch_members($1, $2, coalesce($3, now()), $4)");
        Read = schema.Apply("""
            SELECT id, parent_batch_id, total, pending, succeeded, failed, cancelled, on_success_job_id, on_complete_job_id, created_at, settled_at
            FROM {schema}.batches WHERE id = $1
            """);
    }

    public string Create { get; }
    public string LockOpen { get; }
    public string Exists { get; }
    public string SetCallbacks { get; }
    public string CountMembers { get; }
    public string Read { get; }

    /// <summary>Creates a batch and returns its id, or null when the parent batch is missing or settled.</summary>
    public async Task<long?> CreateAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long? parentBatchId, DateTimeOffset? now, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(Create, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)parentBatchId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long id ? id : null;
    }

    /// <summary>Null when there is no such batch, else whether it has settled; <paramref name="lockRow"/> locks it.</summary>
    public async Task<bool?> SettledAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long batchId, bool lockRow, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(lockRow ? LockOpen : Exists, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = batchId });
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is bool settled ? settled : null;
    }

    /// <summary>The error for a batch that cannot take members: missing (<see cref="ArgumentException"/>) or settled (<see cref="InvalidOperationException"/>).</summary>
    public static Exception NotOpen(long batchId, bool? settled, string parameterName) =>
        settled is null ? new ArgumentException(BatchRules.NoSuchBatch(batchId), parameterName) : new InvalidOperationException(BatchRules.AlreadySettled(batchId));

    /// <summary>Records the callbacks and counts the members created (settling the batch when none is pending).</summary>
    public async Task CountAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long batchId, IEnumerable<EnqueueResult> members, long? onSuccess, long? onComplete, DateTimeOffset? now, string channel, CancellationToken cancellationToken)
    {
        await using var batch = new NpgsqlBatch(connection, transaction);
        if (onSuccess is not null || onComplete is not null)
        {
            var callbacks = new NpgsqlBatchCommand(SetCallbacks);
            callbacks.Parameters.Add(new NpgsqlParameter<long> { TypedValue = batchId });
            callbacks.Parameters.Add(new NpgsqlParameter { Value = (object?)onSuccess ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
            callbacks.Parameters.Add(new NpgsqlParameter { Value = (object?)onComplete ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
            batch.BatchCommands.Add(callbacks);
        }

        var count = new NpgsqlBatchCommand(CountMembers);
        count.Parameters.Add(new NpgsqlParameter<long> { TypedValue = batchId });
        count.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = members.Where(m => m.Created).Select(m => m.JobId).ToArray() });
        count.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        count.Parameters.Add(new NpgsqlParameter<string> { TypedValue = channel, NpgsqlDbType = NpgsqlDbType.Text });
        batch.BatchCommands.Add(count);
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<BatchInfo?> ReadAsync(NpgsqlDataSource dataSource, long batchId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(Read);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = batchId });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) return null;
        long? Id64(int i) => reader.IsDBNull(i) ? null : reader.GetInt64(i);
        return new BatchInfo
        {
            Id = reader.GetInt64(Id), ParentBatchId = Id64(Parent), Total = reader.GetInt32(Total), Pending = reader.GetInt32(Pending),
            Succeeded = reader.GetInt32(Succeeded), Failed = reader.GetInt32(Failed), Cancelled = reader.GetInt32(Cancelled),
            OnSuccessJobId = Id64(OnSuccess), OnCompleteJobId = Id64(OnComplete), CreatedAt = reader.GetFieldValue<DateTimeOffset>(CreatedAt),
            SettledAt = reader.IsDBNull(SettledAt) ? null : reader.GetFieldValue<DateTimeOffset>(SettledAt),
        };
    }
}
