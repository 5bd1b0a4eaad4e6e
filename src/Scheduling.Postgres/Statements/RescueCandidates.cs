using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>
/// Expired leases, locked (skipping rows other rescuers hold), with the facts a rescue is decided
/// from: the read half of read-decide-write; <see cref="SetStatesIfRunning"/> writes the decisions.
/// </summary>
internal sealed class RescueCandidates
{
    private const int RowId = 0, RowToken = 1, RowAttempt = 2, RowMaxAttempts = 3, RowCancelRequested = 4, RowLockedBy = 5, RowNow = 6, RowStarted = 7, RowUnstartedRescues = 8;

    // $1 now, $2 batch size
    public RescueCandidates(PostgresSchema schema) => Sql = schema.Apply("""
        SELECT id, lease_token, attempt, max_attempts, cancel_requested, locked_by, coalesce($1, now()), started, unstarted_rescues
        FROM {schema}.jobs
        WHERE state = 'running' AND lease_expires_at < coalesce($1, now())
        ORDER BY lease_expires_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
        """);

    public string Sql { get; }

    public NpgsqlCommand Command(NpgsqlConnection connection, NpgsqlTransaction transaction, DateTimeOffset? now, int batchSize)
    {
        var command = new NpgsqlCommand(Sql, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = batchSize });
        return command;
    }

    /// <summary>The candidates, each decided by <see cref="JobTransitions.Rescue"/> on the database clock; and that clock.</summary>
    public static async Task<(List<TransitionRow> Rows, DateTimeOffset Now)> ReadDecidedAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        var rows = new List<TransitionRow>();
        var now = default(DateTimeOffset);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            now = reader.GetFieldValue<DateTimeOffset>(RowNow);
            var facts = new JobFacts(JobState.Running, reader.GetInt32(RowAttempt), reader.GetInt32(RowMaxAttempts), reader.GetBoolean(RowCancelRequested),
                reader.IsDBNull(RowLockedBy) ? null : reader.GetString(RowLockedBy), reader.GetBoolean(RowStarted), reader.GetInt16(RowUnstartedRescues));
            rows.Add(new TransitionRow(reader.GetInt64(RowId), reader.GetGuid(RowToken), null, JobTransitions.Rescue(facts, now)));
        }

        return (rows, now);
    }
}
