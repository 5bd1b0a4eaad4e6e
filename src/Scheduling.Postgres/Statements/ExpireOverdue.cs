using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>
/// Unstarted jobs past their latest start: read under lock (skipping rows others hold) with the facts
/// <see cref="JobTransitions.Expire"/> decides from, then written as decided, where each is still
/// unstarted. The claim never starts such a job meanwhile (it filters on the deadline); this makes the end visible.
/// </summary>
internal sealed class ExpireOverdue
{
    private const int RowId = 0, RowState = 1, RowAttempt = 2, RowMaxAttempts = 3, RowCancelRequested = 4, RowLatestStart = 5, RowNow = 6;

    public ExpireOverdue(PostgresSchema schema)
    {
        // $1 now, $2 batch size
        Candidates = schema.Apply("""
            SELECT id, state, attempt, max_attempts, cancel_requested, latest_start_at, coalesce($1, now())
            FROM {schema}.jobs
            WHERE latest_start_at < coalesce($1, now()) AND state IN ('waiting', 'available')
            ORDER BY latest_start_at
            LIMIT $2
            FOR UPDATE SKIP LOCKED
            """);
        // $1 ids, $2 states, $3 messages, $4 attempts, $5 now, $6 errors kept
        Write = schema.Apply("""
            UPDATE {schema}.jobs j
            SET state = t.state, finalized_at = coalesce($5, now()), parents_pending = 0,
                errors = {schema}.append_job_error(j.errors, t.attempt, coalesce($5, now()), t.message, $6)
            FROM unnest($1::bigint[], $2::text[], $3::text[], $4::integer[]) AS t(id, state, message, attempt)
            WHERE j.id = t.id AND j.state IN ('waiting', 'available')
            """);
    }

    public string Candidates { get; }
    public string Write { get; }

    public NpgsqlCommand CandidatesCommand(NpgsqlConnection connection, NpgsqlTransaction transaction, DateTimeOffset? now, int batchSize)
    {
        var command = new NpgsqlCommand(Candidates, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = batchSize });
        return command;
    }

    /// <summary>The candidates that <see cref="JobTransitions.Expire"/> ends, with their transitions, on the database clock.</summary>
    public static async Task<(List<(long Id, JobTransition Transition)> Rows, DateTimeOffset Now)> ReadDecidedAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        var rows = new List<(long, JobTransition)>();
        var now = default(DateTimeOffset);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            now = reader.GetFieldValue<DateTimeOffset>(RowNow);
            var facts = new JobFacts(StateCodec.Parse(reader.GetString(RowState)), reader.GetInt32(RowAttempt), reader.GetInt32(RowMaxAttempts), reader.GetBoolean(RowCancelRequested));
            if (JobTransitions.Expire(facts, reader.GetFieldValue<DateTimeOffset>(RowLatestStart), now) is { } expire) rows.Add((reader.GetInt64(RowId), expire));
        }

        return (rows, now);
    }

    public NpgsqlBatchCommand WriteCommand(IReadOnlyList<(long Id, JobTransition Transition)> rows, DateTimeOffset? now, int maxErrorsKept)
    {
        var command = new NpgsqlBatchCommand(Write);
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = rows.Select(r => r.Id).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = rows.Select(r => StateCodec.ToText(r.Transition.State)).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = rows.Select(r => r.Transition.Error!.Message).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = rows.Select(r => r.Transition.Error!.Attempt).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = maxErrorsKept });
        return command;
    }
}
