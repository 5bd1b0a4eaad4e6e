using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>
/// The statements on job_dependencies: lock the parents an enqueue names, write edges, lend
/// priority up the graph, and settle children of finished jobs (the PL/pgSQL twins of the
/// in-memory rules live in Functions/; docs/architecture.md pairs them).
/// </summary>
internal sealed class Dependencies
{
    private const int RowId = 0, RowState = 1;
    public Dependencies(PostgresSchema schema)
    {
        // $1 parent ids: locked so a concurrent completion waits for this enqueue's edges (and sees them).
        LockParents = schema.Apply("SELECT id, state FROM {schema}.jobs WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE");

        // $1 parents, $2 children, $3 resolved (the parent had already finished)
        InsertEdges = schema.Apply("""
            INSERT INTO {schema}.job_dependencies (parent_id, child_id, resolved)
            SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::boolean[]) ON CONFLICT DO NOTHING
            """);

        // $1 new waiting jobs: their unfinished ancestors inherit their priority (priority inheritance,
        // Functions/raise_ancestors.sql; C# twin: InMemoryJobQueue.Raise).
        RaiseAncestors = schema.Apply("SELECT {schema}.raise_ancestors($1)");

        // $1 job ids that may have finished, $2 now, $3 channel: releases or cancels their waiting children.
        // For jobs that were running (acknowledged or rescued): their own parents are all settled, so
        // only children matter, and one index probe (in this statement's fresh snapshot, so an edge
        // committed by an enqueue this transaction waited for is seen) spares the call when there are none.
        SettleFinished = schema.Apply("""
            SELECT {schema}.settle_dependents($1, coalesce($2, now()), $3)
            WHERE EXISTS (SELECT 1 FROM {schema}.job_dependencies WHERE parent_id = ANY ($1) AND NOT resolved)
            """);

        // The same for a cancelled job, which may have been waiting (its ancestors then lose its priority): always called.
        SettleCancelled = schema.Apply("SELECT {schema}.settle_dependents($1, coalesce($2, now()), $3)");
    }

    public string LockParents { get; }
    public string InsertEdges { get; }
    public string RaiseAncestors { get; }
    public string SettleFinished { get; }
    public string SettleCancelled { get; }

    public NpgsqlCommand LockParentsCommand(NpgsqlConnection connection, NpgsqlTransaction transaction, long[] ids)
    {
        var command = new NpgsqlCommand(LockParents, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = ids });
        return command;
    }

    /// <summary>Adds each locked parent's state to <paramref name="states"/>.</summary>
    public static async Task ReadParentsAsync(NpgsqlDataReader reader, Dictionary<long, JobState> states, CancellationToken cancellationToken)
    {
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) states[reader.GetInt64(RowId)] = StateCodec.Parse(reader.GetString(RowState));
    }

    public NpgsqlBatchCommand InsertEdgesCommand(long[] parents, long[] children, bool[] resolved)
    {
        var command = new NpgsqlBatchCommand(InsertEdges);
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = parents });
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = children });
        command.Parameters.Add(new NpgsqlParameter<bool[]> { TypedValue = resolved });
        return command;
    }

    public NpgsqlBatchCommand RaiseAncestorsCommand(long[] waiting)
    {
        var command = new NpgsqlBatchCommand(RaiseAncestors);
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = waiting });
        return command;
    }

    /// <summary>Settles the children of jobs that may have finished: for a cancelled job always (it may have been waiting), for jobs that ran only when they have unresolved children.</summary>
    public NpgsqlBatchCommand SettleCommand(bool cancelled, long[] jobIds, DateTimeOffset? now, string channel)
    {
        var command = new NpgsqlBatchCommand(cancelled ? SettleCancelled : SettleFinished);
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = jobIds });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = channel, NpgsqlDbType = NpgsqlDbType.Text });
        return command;
    }
}
