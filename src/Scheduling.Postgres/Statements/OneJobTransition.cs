using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>
/// Read, decide, write for one job outside the hot path (cancel, redrive): <see cref="ReadFacts"/>
/// locks the row and returns what <see cref="JobTransitions"/> decides from, then
/// <see cref="SetState"/> writes the decided transition where the job is still in the state it was
/// decided from, or <see cref="RequestCancel"/> flags a running job. No rules in the SQL.
/// </summary>
internal sealed class OneJobTransition
{
    // ReadFacts: $1 job id, $2 now. Row ordinals:
    private const int FactState = 0, FactAttempt = 1, FactMaxAttempts = 2, FactCancelRequested = 3, FactLockedBy = 4, FactNow = 5;

    // SetState parameters, as $1..$10 in the SQL.
    private const int Id = 0, FromState = 1, ToState = 2, RunAfter = 3, Finalized = 4, ResetAttempts = 5, AttemptChange = 6, Now = 7, ClearPending = 8, Channel = 9;

    public OneJobTransition(PostgresSchema schema)
    {
        ReadFacts = schema.Apply("""
            SELECT state, attempt, max_attempts, cancel_requested, locked_by, coalesce($2, now())
            FROM {schema}.jobs WHERE id = $1
            FOR NO KEY UPDATE
            """);
        SetStateSql = schema.Apply("""
            WITH r AS (
                UPDATE {schema}.jobs
                SET state = $3,
                    run_at = coalesce(coalesce($8, now()) + $4, run_at),
                    finalized_at = CASE WHEN $5 THEN coalesce($8, now()) END,
                    attempt = CASE WHEN $6 THEN 0 ELSE attempt + $7 END,
                    parents_pending = CASE WHEN $9 THEN 0 ELSE parents_pending END
                WHERE id = $1 AND state = $2
                RETURNING queue, state)
            SELECT r.queue FROM r CROSS JOIN LATERAL (SELECT pg_notify($10, r.queue) WHERE r.state = 'available') AS n
            """);
        RequestCancel = schema.Apply("UPDATE {schema}.jobs SET cancel_requested = true WHERE id = $1 AND state = 'running'");
    }

    public string ReadFacts { get; }
    public string SetStateSql { get; }
    public string RequestCancel { get; }

    public static NpgsqlParameter[] ReadFactsParameters(long jobId, DateTimeOffset? now) =>
    [
        new NpgsqlParameter<long> { TypedValue = jobId },
        new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz },
    ];

    /// <summary>The locked job's facts and the clock, or null when there is no such job.</summary>
    public static async Task<(JobFacts Facts, DateTimeOffset Now)?> ReadFactsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) return null;
        var facts = new JobFacts(StateCodec.Parse(reader.GetString(FactState)), reader.GetInt32(FactAttempt), reader.GetInt32(FactMaxAttempts),
            reader.GetBoolean(FactCancelRequested), reader.IsDBNull(FactLockedBy) ? null : reader.GetString(FactLockedBy));
        return (facts, reader.GetFieldValue<DateTimeOffset>(FactNow));
    }

    /// <param name="jobId">The job.</param>
    /// <param name="from">The state the transition was decided from.</param>
    /// <param name="transition">The decided transition (one without an error entry: cancel and redrive add none).</param>
    /// <param name="decidedAt">The clock it was decided with.</param>
    /// <param name="now">The time to write (null: the database clock).</param>
    /// <param name="channel">The NOTIFY channel, woken when the job becomes available.</param>
    public NpgsqlBatchCommand SetState(long jobId, JobState from, JobTransition transition, DateTimeOffset decidedAt, DateTimeOffset? now, string channel)
    {
        if (transition.Error is not null) throw new ArgumentException("This statement writes no error entry.", nameof(transition));
        var p = new NpgsqlParameter[Channel + 1];
        p[Id] = new NpgsqlParameter<long> { TypedValue = jobId };
        p[FromState] = new NpgsqlParameter<string> { TypedValue = StateCodec.ToText(from), NpgsqlDbType = NpgsqlDbType.Text };
        p[ToState] = new NpgsqlParameter<string> { TypedValue = StateCodec.ToText(transition.State), NpgsqlDbType = NpgsqlDbType.Text };
        p[RunAfter] = new NpgsqlParameter { Value = transition.RunAt is { } runAt ? runAt - decidedAt : DBNull.Value, NpgsqlDbType = NpgsqlDbType.Interval };
        p[Finalized] = new NpgsqlParameter<bool> { TypedValue = transition.FinalizedAt is not null };
        p[ResetAttempts] = new NpgsqlParameter<bool> { TypedValue = transition.ResetsAttempts };
        p[AttemptChange] = new NpgsqlParameter<int> { TypedValue = transition.AttemptChange };
        p[Now] = new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz };
        p[ClearPending] = new NpgsqlParameter<bool> { TypedValue = transition.IsTerminal }; // a finished job waits for nothing
        p[Channel] = new NpgsqlParameter<string> { TypedValue = channel, NpgsqlDbType = NpgsqlDbType.Text };
        var command = new NpgsqlBatchCommand(SetStateSql);
        command.Parameters.AddRange(p);
        return command;
    }
}
