using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>
/// One decided transition of a job that runs under <see cref="Token"/>. A job's cancellation flag
/// can change while it runs and only the database knows it at write time, so a row may say which
/// value of that fact it is for (<see cref="WhenCancelRequested"/>; null: either): the store sends
/// the decision for each, and the statement applies the one that matches.
/// </summary>
internal readonly record struct TransitionRow(long JobId, Guid Token, bool? WhenCancelRequested, JobTransition Transition);

/// <summary>
/// Applies decided transitions (<see cref="JobTransitions"/>) to jobs still running under the given
/// lease tokens, over arrays, in one statement: the fence of every transition out of running
/// (acknowledgements of every kind, rescues). It carries no rules of its own: states, due times,
/// attempt changes and error entries come decided; times are sent as offsets from the decision's
/// clock so the database clock can stand in for it.
/// </summary>
internal sealed class SetStatesIfRunning
{
    // Parameters, as $1..$13 in the SQL.
    private const int Ids = 0, Tokens = 1, WhenCancel = 2, States = 3, RunAfter = 4, Finalized = 5, AttemptChange = 6,
        ErrorAttempt = 7, ErrorMessage = 8, Wake = 9, Now = 10, MaxErrorsKept = 11, Channel = 12;

    // Row ordinals.
    private const int RowId = 0, RowState = 1, RowRunAt = 2, RowNow = 3;

    public SetStatesIfRunning(PostgresSchema schema)
    {
        // By primary key (j.id = ANY) and token, which only a running job has (migration 6 checks it):
        // naming state = 'running' too would offer the planner the lease index, O(running) per batch.
        Sql = schema.Apply("""
            WITH t AS (
                SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::boolean[], $4::text[], $5::interval[], $6::boolean[], $7::integer[], $8::integer[], $9::text[], $10::boolean[])
                    AS t(id, token, when_cancel, state, run_after, finalized, attempt_change, error_attempt, error_message, wake)),
            r AS (
                UPDATE {schema}.jobs j
                SET state = t.state,
                    run_at = coalesce(coalesce($11, now()) + t.run_after, j.run_at),
                    finalized_at = CASE WHEN t.finalized THEN coalesce($11, now()) END,
                    attempt = j.attempt + t.attempt_change,
                    errors = CASE WHEN t.error_message IS NULL THEN j.errors ELSE
                        (SELECT coalesce(jsonb_agg(e.value ORDER BY e.ordinality), '[]'::jsonb)
                         FROM jsonb_array_elements(j.errors) WITH ORDINALITY AS e
                         WHERE e.ordinality > jsonb_array_length(j.errors) - ($12 - 1))
                        || jsonb_build_array({schema}.job_error(t.error_attempt, coalesce($11, now()), t.error_message)) END,
                    locked_by = NULL, lease_token = NULL, lease_expires_at = NULL
                FROM t
                WHERE j.id = ANY ($1) AND j.id = t.id AND j.lease_token = t.token
                  AND (t.when_cancel IS NULL OR t.when_cancel = j.cancel_requested)
                RETURNING j.id, j.state, j.run_at, j.queue, t.wake),
            woken AS (SELECT count(pg_notify($13, q.queue)) FROM (SELECT DISTINCT queue FROM r WHERE wake) AS q)
            SELECT r.id, r.state, r.run_at, coalesce($11, now()) FROM r CROSS JOIN woken
            """);
    }

    public string Sql { get; }

    /// <param name="rows">The decided transitions.</param>
    /// <param name="decidedAt">The clock the transitions were decided with.</param>
    /// <param name="now">The time to write (null: the database clock, standing in for <paramref name="decidedAt"/>).</param>
    /// <param name="maxErrorsKept">How many error entries a job keeps.</param>
    /// <param name="channel">The NOTIFY channel woken for jobs that become due.</param>
    public NpgsqlBatchCommand Command(IReadOnlyList<TransitionRow> rows, DateTimeOffset decidedAt, DateTimeOffset? now, int maxErrorsKept, string channel)
    {
        var n = rows.Count;
        var ids = new long[n];
        var tokens = new Guid[n];
        var whenCancel = new bool?[n];
        var states = new string[n];
        var runAfter = new TimeSpan?[n];
        var finalized = new bool[n];
        var attemptChange = new int[n];
        var errorAttempt = new int?[n];
        var errorMessage = new string?[n];
        var wake = new bool[n];
        for (var i = 0; i < n; i++)
        {
            var (id, token, cancel, t) = rows[i];
            if (t.ResetsAttempts) throw new ArgumentException("A transition out of running never resets the attempts.", nameof(rows));
            ids[i] = id;
            tokens[i] = token;
            whenCancel[i] = cancel;
            states[i] = StateCodec.ToText(t.State);
            runAfter[i] = t.RunAt - decidedAt;
            finalized[i] = t.FinalizedAt is not null;
            attemptChange[i] = t.AttemptChange;
            errorAttempt[i] = t.Error?.Attempt;
            errorMessage[i] = t.Error?.Message;
            wake[i] = t.IsDueAt(decidedAt);
        }

        var p = new NpgsqlParameter[Channel + 1];
        p[Ids] = new NpgsqlParameter<long[]> { TypedValue = ids };
        p[Tokens] = new NpgsqlParameter<Guid[]> { TypedValue = tokens };
        p[WhenCancel] = new NpgsqlParameter { Value = whenCancel, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Boolean };
        p[States] = new NpgsqlParameter<string[]> { TypedValue = states, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text };
        p[RunAfter] = new NpgsqlParameter { Value = runAfter, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Interval };
        p[Finalized] = new NpgsqlParameter<bool[]> { TypedValue = finalized };
        p[AttemptChange] = new NpgsqlParameter<int[]> { TypedValue = attemptChange };
        p[ErrorAttempt] = new NpgsqlParameter { Value = errorAttempt, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer };
        p[ErrorMessage] = new NpgsqlParameter { Value = errorMessage, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text };
        p[Wake] = new NpgsqlParameter<bool[]> { TypedValue = wake };
        p[Now] = new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz };
        p[MaxErrorsKept] = new NpgsqlParameter<int> { TypedValue = maxErrorsKept };
        p[Channel] = new NpgsqlParameter<string> { TypedValue = channel, NpgsqlDbType = NpgsqlDbType.Text };
        var command = new NpgsqlBatchCommand(Sql);
        command.Parameters.AddRange(p);
        return command;
    }

    /// <summary>Reads the jobs the statement changed: each one's state as a reader sees it.</summary>
    public static async Task<Dictionary<long, JobState>> ReadAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        var applied = new Dictionary<long, JobState>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var state = StateCodec.Parse(reader.GetString(RowState));
            applied[reader.GetInt64(RowId)] = JobTransitions.Visible(state, reader.GetFieldValue<DateTimeOffset>(RowRunAt), reader.GetFieldValue<DateTimeOffset>(RowNow));
        }

        return applied;
    }
}
