using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>
/// One decided transition of a job that runs under <see cref="Token"/>. A job's cancellation flag
/// can change while it runs and only the database knows it at write time, so a row may say which
/// value of that fact it is for (<see cref="WhenCancelRequested"/>; null: either): the store sends
/// the decision for each, and the statement applies the one that matches.
/// </summary>
internal readonly record struct TransitionRow(long JobId, Guid Token, bool? WhenCancelRequested, JobTransition Transition)
{
    /// <summary>For a success, the result to store with the job (the handler's, not a rule: it travels beside the transition).</summary>
    public string? ResultJson { get; init; }

    /// <summary>The job's last progress report, when no heartbeat wrote it (it travels beside the transition too).</summary>
    public JobProgress? Progress { get; init; }
}

/// <summary>
/// Applies decided transitions (<see cref="JobTransitions"/>) to jobs still running under the given
/// lease tokens, over arrays, in one statement: the fence of every transition out of running
/// (acknowledgements of every kind, rescues). It carries no rules of its own: states, due times,
/// attempt changes and error entries come decided; times are sent as offsets from the decision's
/// clock so the database clock can stand in for it.
/// </summary>
internal sealed class SetStatesIfRunning
{
    // Parameters, as $1..$21 in the SQL.
    private const int Ids = 0, Tokens = 1, WhenCancel = 2, States = 3, RunAfter = 4, Finalized = 5, AttemptChange = 6,
        ErrorAttempt = 7, ErrorMessage = 8, Wake = 9, Now = 10, MaxErrorsKept = 11, Channel = 12, CountsUnstarted = 13, CountsSnooze = 14, Priorities = 15, Results = 16, Fractions = 17, Messages = 18, Metadata = 19, Reports = 20;

    // Row ordinals.
    private const int RowId = 0, RowState = 1, RowRunAt = 2, RowNow = 3, RowToken = 4;

    private readonly PostgresSchema _schema;
    private readonly string?[] _variants = new string?[1024];

    public SetStatesIfRunning(PostgresSchema schema) => _schema = schema;

    /// <summary>The statement for a batch of plain successes (what pgbench and plan tests look at).</summary>
    public string Sql => Variant(Shape.None);

    /// <summary>
    /// What a batch changes beyond the state and the lease. The statement sets only those columns:
    /// assigning run_at, even to itself, makes PostgreSQL recompute the generated sort columns of
    /// every row (~30 % of a batch of successes), so a batch that moves no due time leaves it out.
    /// Every variant takes the same parameters (an unreferenced one is typed by the client).
    /// </summary>
    [Flags]
    private enum Shape
    {
        None = 0,
        MovesRunAt = 1,
        ChangesAttempt = 2,
        AddsErrors = 4,
        Wakes = 8, // some job becomes due at once: notify its queue (a data-modifying CTE, dearer)
        DependsOnCancel = 16, // some row is for one value of the job's cancellation flag
        CountsUnstarted = 32, // some row is a rescue of a job never reported started
        CountsSnooze = 64, // some row is a snooze within the bound
        ChangesPriority = 128, // some row is a snooze with a new priority
        StoresResult = 256, // some row is a success with a result
        WritesProgress = 512, // some row carries a last progress report
    }

    private string Variant(Shape shape) => _variants[(int)shape] ??= Build(shape);

    private string Build(Shape shape)
    {
        var set = new List<string> { "state = t.state" };
        if (shape.HasFlag(Shape.MovesRunAt)) set.Add("run_at = coalesce(coalesce($11, now()) + t.run_after, j.run_at)");
        set.Add("finalized_at = CASE WHEN t.finalized THEN coalesce($11, now()) END");
        if (shape.HasFlag(Shape.ChangesAttempt)) set.Add("attempt = j.attempt + t.attempt_change");
        if (shape.HasFlag(Shape.CountsUnstarted)) set.Add("unstarted_rescues = j.unstarted_rescues + CASE WHEN t.counts_unstarted THEN 1 ELSE 0 END");
        if (shape.HasFlag(Shape.CountsSnooze)) set.Add("snoozes = j.snoozes + CASE WHEN t.counts_snooze THEN 1 ELSE 0 END");
        if (shape.HasFlag(Shape.ChangesPriority))
        {
            // The new own priority; the effective one stays at least what waiting children lend (JobTransition.Priority).
            set.Add("priority = coalesce(t.priority, j.priority)");
            set.Add("""
                effective_priority = CASE WHEN t.priority IS NULL THEN j.effective_priority ELSE nullif(greatest(t.priority, (
                    SELECT max(coalesce(c.effective_priority, c.priority)) FROM {schema}.job_dependencies e JOIN {schema}.jobs c ON c.id = e.child_id
                    WHERE e.parent_id = j.id AND NOT e.resolved AND c.state = 'waiting')), t.priority) END
                """);
        }

        if (shape.HasFlag(Shape.StoresResult)) set.Add("result = coalesce(t.result, j.result)");
        if (shape.HasFlag(Shape.WritesProgress))
        {
            // A row without a report keeps the job's (a reported fraction or message is never null together with its time).
            set.Add(ProgressColumns.Assignments("t.reports", "t", "coalesce($11, now())"));
        }

        if (shape.HasFlag(Shape.AddsErrors))
            set.Add("errors = CASE WHEN t.error_message IS NULL THEN j.errors ELSE {schema}.append_job_error(j.errors, t.error_attempt, coalesce($11, now()), t.error_message, $12) END");
        set.Add("locked_by = NULL, lease_token = NULL, lease_expires_at = NULL");
        // Only the arrays the shape uses are unnested (the others are sent as NULL and not named).
        var columns = new List<(string Array, string Name)> { ("$1::bigint[]", "id"), ("$2::uuid[]", "token"), ("$4::text[]", "state"), ("$6::boolean[]", "finalized") };
        if (shape.HasFlag(Shape.DependsOnCancel)) columns.Add(("$3::boolean[]", "when_cancel"));
        if (shape.HasFlag(Shape.MovesRunAt)) columns.Add(("$5::interval[]", "run_after"));
        if (shape.HasFlag(Shape.ChangesAttempt)) columns.Add(("$7::integer[]", "attempt_change"));
        if (shape.HasFlag(Shape.AddsErrors)) columns.AddRange([("$8::integer[]", "error_attempt"), ("$9::text[]", "error_message")]);
        if (shape.HasFlag(Shape.Wakes)) columns.Add(("$10::boolean[]", "wake"));
        if (shape.HasFlag(Shape.CountsUnstarted)) columns.Add(("$14::boolean[]", "counts_unstarted"));
        if (shape.HasFlag(Shape.CountsSnooze)) columns.Add(("$15::boolean[]", "counts_snooze"));
        if (shape.HasFlag(Shape.ChangesPriority)) columns.Add(("$16::smallint[]", "priority"));
        if (shape.HasFlag(Shape.StoresResult)) columns.Add(("$17::jsonb[]", "result"));
        if (shape.HasFlag(Shape.WritesProgress)) columns.AddRange([("$18::float8[]", "fraction"), ("$19::text[]", "message"), ("$20::jsonb[]", "metadata"), ("$21::boolean[]", "reports")]);
        // A row for one value of the cancellation flag is matched against the flag read under a row lock
        // (the latest value: a cancellation committed meanwhile is waited for and seen). Matched against
        // j.cancel_requested in the join, a cancellation committing while this statement waited for the
        // row re-checked only the row first joined (for the old value) against the new one: neither row
        // matched, and the acknowledgement of a live lease was lost. The lock is taken in id order.
        var dependsOnCancel = shape.HasFlag(Shape.DependsOnCancel);
        var flags = dependsOnCancel ? "flags AS (SELECT id, cancel_requested FROM {schema}.jobs WHERE id = ANY ($1) ORDER BY id FOR NO KEY UPDATE)" : null;
        var cancelJoin = dependsOnCancel ? " JOIN flags f ON f.id = t.id" : "";
        var cancelMatch = dependsOnCancel ? "\n  AND (t.when_cancel IS NULL OR t.when_cancel = f.cancel_requested)" : "";
        var update = $"""
            UPDATE {"{schema}"}.jobs j
            SET {string.Join(", ", set)}
            FROM unnest({string.Join(", ", columns.Select(c => c.Array))}) AS t({string.Join(", ", columns.Select(c => c.Name))}){cancelJoin}
            WHERE j.id = ANY ($1) AND j.id = t.id AND j.lease_token = t.token{cancelMatch}

            """;
        return _schema.Apply(shape.HasFlag(Shape.Wakes)
            ? $"""
              WITH {(flags is null ? "" : flags + ",\n    ")}r AS (
                  {update}
                  RETURNING j.id, j.state, j.run_at, j.queue, t.wake, t.token),
              woken AS (SELECT count(pg_notify($13, q.queue)) FROM (SELECT DISTINCT queue FROM r WHERE wake) AS q)
              SELECT r.id, r.state, r.run_at, coalesce($11, now()), r.token FROM r CROSS JOIN woken
              """
            : (flags is null ? "" : $"WITH {flags}\n") + update + "RETURNING j.id, j.state, j.run_at, coalesce($11, now()), t.token");
    }

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
        var countsUnstarted = new bool[n];
        var countsSnooze = new bool[n];
        var priorities = new short?[n];
        var results = new string?[n];
        var fractions = new double?[n];
        var messages = new string?[n];
        var metadata = new string?[n];
        var reports = new bool[n];
        var shape = Shape.None;
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
            countsUnstarted[i] = t.CountsUnstartedRescue;
            if (t.CountsUnstartedRescue) shape |= Shape.CountsUnstarted;
            countsSnooze[i] = t.CountsSnooze;
            if (t.CountsSnooze) shape |= Shape.CountsSnooze;
            priorities[i] = t.Priority;
            if (t.Priority is not null) shape |= Shape.ChangesPriority;
            results[i] = rows[i].ResultJson;
            if (results[i] is not null) shape |= Shape.StoresResult;
            if (rows[i].Progress is { } report)
            {
                (fractions[i], messages[i], metadata[i], reports[i]) = (report.Fraction, report.Message, report.MetadataJson, true);
                shape |= Shape.WritesProgress;
            }
            if (t.RunAt is not null) shape |= Shape.MovesRunAt;
            if (t.AttemptChange != 0) shape |= Shape.ChangesAttempt;
            if (t.Error is not null) shape |= Shape.AddsErrors;
            if (wake[i]) shape |= Shape.Wakes;
            if (cancel is not null) shape |= Shape.DependsOnCancel;
        }

        // A column the statement's shape does not use goes as NULL: a multi-argument unnest pads a
        // missing array with NULLs, so a batch of successes sends four arrays, not ten.
        object Unless(bool used, Array values) => used ? values : DBNull.Value;

        var p = new NpgsqlParameter[Reports + 1];
        p[Ids] = new NpgsqlParameter<long[]> { TypedValue = ids };
        p[Tokens] = new NpgsqlParameter<Guid[]> { TypedValue = tokens };
        p[WhenCancel] = new NpgsqlParameter { Value = Unless(shape.HasFlag(Shape.DependsOnCancel), whenCancel), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Boolean };
        p[States] = new NpgsqlParameter<string[]> { TypedValue = states, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text };
        p[RunAfter] = new NpgsqlParameter { Value = Unless(shape.HasFlag(Shape.MovesRunAt), runAfter), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Interval };
        p[Finalized] = new NpgsqlParameter<bool[]> { TypedValue = finalized };
        p[AttemptChange] = new NpgsqlParameter { Value = Unless(shape.HasFlag(Shape.ChangesAttempt), attemptChange), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer };
        p[ErrorAttempt] = new NpgsqlParameter { Value = Unless(shape.HasFlag(Shape.AddsErrors), errorAttempt), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer };
        p[ErrorMessage] = new NpgsqlParameter { Value = Unless(shape.HasFlag(Shape.AddsErrors), errorMessage), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text };
        p[Wake] = new NpgsqlParameter { Value = Unless(shape.HasFlag(Shape.Wakes), wake), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Boolean };
        p[Now] = new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz };
        p[MaxErrorsKept] = new NpgsqlParameter<int> { TypedValue = maxErrorsKept };
        p[Channel] = new NpgsqlParameter<string> { TypedValue = channel, NpgsqlDbType = NpgsqlDbType.Text };
        p[CountsUnstarted] = new NpgsqlParameter { Value = Unless(shape.HasFlag(Shape.CountsUnstarted), countsUnstarted), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Boolean };
        p[CountsSnooze] = new NpgsqlParameter { Value = Unless(shape.HasFlag(Shape.CountsSnooze), countsSnooze), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Boolean };
        p[Priorities] = new NpgsqlParameter { Value = Unless(shape.HasFlag(Shape.ChangesPriority), priorities), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Smallint };
        p[Results] = new NpgsqlParameter { Value = Unless(shape.HasFlag(Shape.StoresResult), results), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb };
        var progress = shape.HasFlag(Shape.WritesProgress);
        p[Fractions] = new NpgsqlParameter { Value = Unless(progress, fractions), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Double };
        p[Messages] = new NpgsqlParameter { Value = Unless(progress, messages), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text };
        p[Metadata] = new NpgsqlParameter { Value = Unless(progress, metadata), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb };
        p[Reports] = new NpgsqlParameter { Value = Unless(progress, reports), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Boolean };
        var command = new NpgsqlBatchCommand(Variant(shape));
        command.Parameters.AddRange(p);
        return command;
    }

    /// <summary>Reads the jobs the statement changed, by the lease that changed them: each one's state as a reader sees it.</summary>
    public static async Task<Dictionary<(long JobId, Guid Token), JobState>> ReadAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        var applied = new Dictionary<(long, Guid), JobState>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var state = StateCodec.Parse(reader.GetString(RowState));
            applied[(reader.GetInt64(RowId), reader.GetGuid(RowToken))] = JobTransitions.Visible(state, reader.GetFieldValue<DateTimeOffset>(RowRunAt), reader.GetFieldValue<DateTimeOffset>(RowNow));
        }

        return applied;
    }
}
