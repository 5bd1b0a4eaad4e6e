using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>Extends the named leases a worker still holds, and reports them with their cancellation flag.</summary>
internal sealed class Heartbeat
{
    private const int RowId = 0, RowToken = 1, RowCancelRequested = 2, RowExtended = 3;

    public Heartbeat(PostgresSchema schema)
    {
        // By primary key and token, which only a running job has (migration 6 checks it): naming
        // state = 'running' as well would offer the planner the lease index, O(running) per batch.
        // A row another transaction holds (an open enqueue naming the job as a parent) is skipped,
        // never waited for: one row must not stall every lease of the host. Skipped rows that are
        // still this worker's are reported as held but not extended, so the worker tries them again.
        // A heartbeat names the jobs the host runs, so it also marks them started: from then on a
        // rescue charges their attempt (JobTransitions.Rescue).
        // $1 worker, $2 lease duration, $3 now, $4 job ids, $5 their lease tokens
        static string Build(bool withProgress) => $"""
            WITH named AS (SELECT DISTINCT id, token FROM unnest($4::bigint[], $5::uuid[]) AS l(id, token)),
            locked AS (
                SELECT j.id, j.lease_token AS token FROM {"{schema}"}.jobs j JOIN named l ON j.id = l.id AND j.lease_token = l.token
                WHERE j.id = ANY ($4) AND j.locked_by = $1
                FOR NO KEY UPDATE OF j SKIP LOCKED),
            extended AS (
                UPDATE {"{schema}"}.jobs j SET lease_expires_at = coalesce($3, now()) + $2, started = true{(withProgress ? ",\n" + ProgressColumns.Assignments("p.id IS NOT NULL", "p", "coalesce($3, now())") : "")}
                FROM locked{(withProgress ? " LEFT JOIN unnest($6::bigint[], $10::uuid[], $7::float8[], $8::text[], $9::jsonb[]) AS p(id, token, fraction, message, metadata) ON p.id = locked.id AND p.token = locked.token" : "")}
                WHERE j.id = locked.id
                RETURNING j.id, j.lease_token, j.cancel_requested)
            SELECT id, lease_token, cancel_requested, true FROM extended
            UNION ALL
            SELECT j.id, j.lease_token, j.cancel_requested, false
            FROM {"{schema}"}.jobs j JOIN named l ON j.id = l.id AND j.lease_token = l.token
            WHERE j.id = ANY ($4) AND j.locked_by = $1 AND j.id NOT IN (SELECT id FROM locked)
            """;
        // Progress reports ride along with the extension ($6..$10: job ids, fractions, messages, metadata, lease tokens), written
        // only for leases held; a heartbeat without reports sets nothing more than before.
        Sql = schema.Apply(Build(withProgress: false));
        SqlWithProgress = schema.Apply(Build(withProgress: true));
    }

    public string SqlWithProgress { get; }

    public string Sql { get; }

    public NpgsqlCommand Command(NpgsqlDataSource dataSource, string workerId, IReadOnlyList<JobLease> leases, TimeSpan leaseDuration, DateTimeOffset? now, IReadOnlyList<JobProgressUpdate>? progress = null)
    {
        var reports = progress is { Count: > 0 } ? progress : null;
        var command = dataSource.CreateCommand(reports is null ? Sql : SqlWithProgress);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = workerId, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = leaseDuration, NpgsqlDbType = NpgsqlDbType.Interval });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = leases.Select(l => l.JobId).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = leases.Select(l => l.Token).ToArray() });
        if (reports is null) return command;
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = reports.Select(r => r.Lease.JobId).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = reports.Select(r => r.Progress.Fraction).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Double });
        command.Parameters.Add(new NpgsqlParameter { Value = reports.Select(r => r.Progress.Message).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = reports.Select(r => r.Progress.MetadataJson).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
        command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = reports.Select(r => r.Lease.Token).ToArray() });
        return command;
    }

    public static async Task<List<HeldLease>> ReadAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        var held = new List<HeldLease>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) held.Add(new HeldLease(reader.GetInt64(RowId), reader.GetGuid(RowToken), reader.GetBoolean(RowCancelRequested), reader.GetBoolean(RowExtended)));
        return held;
    }
}
