using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>Run records (the ARA history written with acknowledgements), queue statistics and the purge of old finished jobs.</summary>
internal sealed class Retention
{
    private const int StatQueue = 0, StatDue = 1, StatScheduled = 2, StatRunning = 3, StatOldestDue = 4, StatWaiting = 5, StatReadAt = 6, StatPaused = 7, StatLimits = 8, StatHosts = StatLimits + QueueControl.LimitColumnCount, StatCapped = StatHosts + 1;

    public Retention(PostgresSchema schema)
    {
        // $1 ids, $2 peak memory, $3 peak cpu, $4 duration ms, $5 exit code, $6 oom, $7 now, $8 lease tokens: runs of sized
        // jobs with a command, recorded only under the acknowledgement's valid lease. It runs before the fenced transition in
        // the same transaction, so a stale acknowledgement, or a batch written again after it committed, records nothing.
        RecordRuns = schema.Apply("""
            INSERT INTO {schema}.run_history (job_id, definition_id, command_hash, normalized_command_hash, allocated_memory_mb,
                                              peak_memory_mb, peak_cpu_millicores, duration_ms, exit_code, oom_killed, finished_at)
            SELECT j.id, j.definition_id, j.command_hash, j.normalized_command_hash, j.memory_mb,
                   CASE WHEN u.oom THEN least(coalesce(u.peak, j.memory_mb), j.memory_mb) ELSE u.peak END,
                   u.cpu, u.duration_ms, u.exit_code, u.oom, coalesce($7, now())
            FROM unnest($1::bigint[], $2::integer[], $3::integer[], $4::bigint[], $5::integer[], $6::boolean[], $8::uuid[]) AS u(id, peak, cpu, duration_ms, exit_code, oom, token)
            JOIN {schema}.jobs j ON j.id = u.id AND j.lease_token = u.token AND j.state = 'running'
            WHERE j.definition_id IS NOT NULL AND j.command_hash IS NOT NULL AND j.memory_mb IS NOT NULL AND (u.oom OR u.peak IS NOT NULL)
            """);

        // $1 age, $2 batch size, $3 now: the cutoff on the clock that dated the finish.
        Purge = schema.Apply("""
            WITH purged AS (
                DELETE FROM {schema}.jobs WHERE id IN (
                    SELECT id FROM {schema}.jobs
                    WHERE state IN ('succeeded', 'cancelled', 'dead', 'expired') AND finalized_at < coalesce($3, now()) - $1
                    ORDER BY finalized_at LIMIT $2
                    FOR UPDATE SKIP LOCKED)
                RETURNING id),
            as_parent AS (DELETE FROM {schema}.job_dependencies d USING purged WHERE d.parent_id = purged.id),
            as_child AS (DELETE FROM {schema}.job_dependencies d USING purged WHERE d.child_id = purged.id),
            -- A batch settled before the cutoff goes once none of its jobs is left (seen before this
            -- statement's own deletes: its last members' batch goes in the next round). C# twin: InMemoryJobQueue.PurgeFinishedAsync.
            old_batches AS (
                DELETE FROM {schema}.batches b WHERE b.id IN (
                    SELECT id FROM {schema}.batches
                    WHERE settled_at < coalesce($3, now()) - $1
                      AND NOT EXISTS (SELECT 1 FROM {schema}.jobs j WHERE j.batch_id = batches.id)
                    ORDER BY settled_at LIMIT $2
                    FOR UPDATE SKIP LOCKED))
            SELECT count(*)::integer FROM purged
            """);

        // $1 now. Due and scheduled split the available jobs by the SQL twin of JobTransitions.Visible. The
        // last column says whether a live host declared a capacity: only then are oversized jobs counted
        // (OversizedStats), so a schema without such hosts pays nothing for it.
        Stats = schema.Apply($"""
            WITH live AS MATERIALIZED (SELECT queues, memory_mb, cpu_millicores, gpus FROM {"{schema}"}.hosts WHERE expires_at > coalesce($1, now()))
            SELECT s.*, c.paused_at IS NOT NULL, {string.Join(", ", QueueControl.LimitColumns.Split(", ").Select(column => "c." + column))},
                   (SELECT count(*) FROM live WHERE s.queue = ANY (live.queues))::integer,
                   EXISTS (SELECT 1 FROM live WHERE memory_mb IS NOT NULL OR cpu_millicores IS NOT NULL OR gpus IS NOT NULL)
            FROM (
                SELECT queue,
                       count(*) FILTER (WHERE {"{schema}"}.job_visible_state(state, run_at, coalesce($1, now())) = 'available'),
                       count(*) FILTER (WHERE {"{schema}"}.job_visible_state(state, run_at, coalesce($1, now())) = 'scheduled'),
                       count(*) FILTER (WHERE state = 'running'),
                       min(run_at) FILTER (WHERE {"{schema}"}.job_visible_state(state, run_at, coalesce($1, now())) = 'available'),
                       count(*) FILTER (WHERE state = 'waiting'),
                       coalesce($1, now())
                FROM {"{schema}"}.jobs WHERE state IN ('waiting', 'available', 'running')
                GROUP BY queue) AS s
            LEFT JOIN {"{schema}"}.queues c ON c.queue = s.queue
            ORDER BY s.queue
            """);

        Ahead = schema.Apply("""
            WITH me AS (
                SELECT queue, sort_rank, sort_at, id FROM {schema}.jobs
                WHERE id = $1 AND state = 'available' AND run_at <= coalesce($3, now()) AND (latest_start_at IS NULL OR latest_start_at >= coalesce($3, now())))
            SELECT least($2,
                (SELECT count(*) FROM (SELECT 1 FROM {schema}.jobs j WHERE j.queue = me.queue AND j.state = 'available' AND j.sort_rank > me.sort_rank
                    AND j.run_at <= coalesce($3, now()) AND (j.latest_start_at IS NULL OR j.latest_start_at >= coalesce($3, now()))
                    ORDER BY j.sort_rank DESC, j.sort_at, j.id LIMIT $2) higher)
              + (SELECT count(*) FROM (SELECT 1 FROM {schema}.jobs j WHERE j.queue = me.queue AND j.state = 'available' AND j.sort_rank = me.sort_rank
                    AND (j.sort_at, j.id) < (me.sort_at, me.id)
                    AND j.run_at <= coalesce($3, now()) AND (j.latest_start_at IS NULL OR j.latest_start_at >= coalesce($3, now()))
                    ORDER BY j.sort_rank DESC, j.sort_at, j.id LIMIT $2) earlier))
            FROM me
            """);
        Activity = schema.Apply("""
            SELECT queue, date_trunc('minute', finalized_at, 'UTC') AS minute,
                   count(*) FILTER (WHERE state = 'succeeded'), count(*) FILTER (WHERE state = 'dead'), count(*) FILTER (WHERE state IN ('cancelled', 'expired'))
            FROM {schema}.jobs
            WHERE state IN ('succeeded', 'cancelled', 'dead', 'expired') AND finalized_at >= coalesce($2, now()) - $1
            GROUP BY 1, 2
            ORDER BY 2, 1
            """);

        // $1 now. Per queue, the waiting and due jobs no live host serving it can hold: the SQL twin of
        // WorkerHostInfo.FitsNone, over the queues some host with a declared capacity serves. Jobs are grouped
        // by their amounts first, so the per-host test runs once per distinct size, not once per job.
        OversizedStats = schema.Apply("""
            WITH live AS MATERIALIZED (SELECT queues, memory_mb, cpu_millicores, gpus FROM {schema}.hosts WHERE expires_at > coalesce($1, now())),
            capped AS (SELECT coalesce(array_agg(DISTINCT q), '{}') AS queues FROM live, unnest(live.queues) AS q
                       WHERE memory_mb IS NOT NULL OR cpu_millicores IS NOT NULL OR gpus IS NOT NULL),
            sized AS (SELECT queue, memory_mb, cpu_millicores, gpus, count(*) AS n FROM {schema}.jobs
                      WHERE state IN ('waiting', 'available') AND queue = ANY ((SELECT queues FROM capped)::text[])
                        AND (memory_mb > 0 OR cpu_millicores > 0 OR gpus > 0)
                      GROUP BY 1, 2, 3, 4)
            SELECT queue, sum(n)::bigint FROM sized s
            WHERE NOT EXISTS (SELECT 1 FROM live h WHERE s.queue = ANY (h.queues)
                              AND coalesce(s.memory_mb, 0) <= coalesce(h.memory_mb, 2147483647)
                              AND coalesce(s.cpu_millicores, 0) <= coalesce(h.cpu_millicores, 2147483647)
                              AND coalesce(s.gpus, 0) <= coalesce(h.gpus, 2147483647))
            GROUP BY queue
            """);
    }

    public string RecordRuns { get; }
    public string Purge { get; }
    public string Stats { get; }

    /// <summary>
    /// $1 job id, $2 cap, $3 now: how many due jobs of its queue come before a due job in acquisition
    /// order, in two ranges of the fetch index (a higher rank; the same rank and an earlier (sort_at, id)),
    /// each stopping at the cap. No row when the job is not due. C# twin: InMemoryJobQueue.CountAheadAsync.
    /// The ORDER BY is the fetch index's order: without it PostgreSQL may scan the table for the LIMIT
    /// (1,000,000 jobs: 270 ms by a scan, 0.5-48 ms by the index for a cap of 10,000).
    /// </summary>
    public string Ahead { get; }

    /// <summary>$1 window, $2 now: finished jobs per queue and minute, by how they ended (the finished-jobs index's range).</summary>
    public string Activity { get; }
    public string OversizedStats { get; }

    /// <summary>The run records of the acknowledgements that carry one (JobValidation.CarriesRunRecord); null when none does.</summary>
    public NpgsqlBatchCommand? RecordRunsCommand(IReadOnlyList<JobAck> acks, DateTimeOffset? now)
    {
        var measured = acks.Where(JobValidation.CarriesRunRecord).ToArray();
        if (measured.Length == 0) return null;
        var command = new NpgsqlBatchCommand(RecordRuns);
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = measured.Select(a => a.Lease.JobId).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = measured.Select(a => a.Usage!.PeakMemoryMb).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        command.Parameters.Add(new NpgsqlParameter { Value = measured.Select(a => a.Usage!.PeakCpuMillicores).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = measured.Select(a => (long)(a.RunDuration ?? TimeSpan.Zero).TotalMilliseconds).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = measured.Select(a => a.Usage!.ExitCode).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        command.Parameters.Add(new NpgsqlParameter<bool[]> { TypedValue = measured.Select(a => a.Usage!.OomKilled).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = measured.Select(a => a.Lease.Token).ToArray() });
        return command;
    }

    public NpgsqlCommand PurgeCommand(NpgsqlDataSource dataSource, TimeSpan olderThan, DateTimeOffset? now, int batchSize)
    {
        var command = dataSource.CreateCommand(Purge);
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = olderThan, NpgsqlDbType = NpgsqlDbType.Interval });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = batchSize });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        return command;
    }

    public NpgsqlCommand StatsCommand(NpgsqlDataSource dataSource, DateTimeOffset? now, bool oversized = false)
    {
        var command = dataSource.CreateCommand(oversized ? OversizedStats : Stats);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        return command;
    }

    /// <summary>The statistics, and whether a live host declared a capacity (then <see cref="OversizedStats"/> has counts to add).</summary>
    public static async Task<(List<QueueStats> Stats, bool Capped)> ReadStatsAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        var stats = new List<QueueStats>();
        var capped = false;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            stats.Add(new QueueStats(reader.GetString(StatQueue), reader.GetInt64(StatDue), reader.GetInt64(StatScheduled), reader.GetInt64(StatRunning),
                reader.IsDBNull(StatOldestDue) ? null : reader.GetFieldValue<DateTimeOffset>(StatOldestDue)) { Waiting = reader.GetInt64(StatWaiting), ReadAt = reader.GetFieldValue<DateTimeOffset>(StatReadAt), Paused = reader.GetBoolean(StatPaused), Limits = QueueControl.ReadLimits(reader, StatLimits), Hosts = reader.GetInt32(StatHosts) });
            capped = reader.GetBoolean(StatCapped);
        }

        return (stats, capped);
    }

    public NpgsqlCommand AheadCommand(NpgsqlDataSource dataSource, long jobId, int cap, DateTimeOffset? now)
    {
        var command = dataSource.CreateCommand(Ahead);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = jobId });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = cap });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        return command;
    }

    public NpgsqlCommand ActivityCommand(NpgsqlDataSource dataSource, TimeSpan window, DateTimeOffset? now)
    {
        var command = dataSource.CreateCommand(Activity);
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = window, NpgsqlDbType = NpgsqlDbType.Interval });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        return command;
    }

    public static async Task<IReadOnlyList<QueueActivity>> ReadActivityAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        var rows = new List<QueueActivity>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            rows.Add(new QueueActivity(reader.GetString(0), reader.GetFieldValue<DateTimeOffset>(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4)));
        return rows;
    }

    /// <summary>Adds the oversized counts <see cref="OversizedStats"/> read to <paramref name="stats"/>.</summary>
    public static async Task<List<QueueStats>> ReadOversizedAsync(NpgsqlDataReader reader, List<QueueStats> stats, CancellationToken cancellationToken)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) counts[reader.GetString(0)] = reader.GetInt64(1);
        return stats.ConvertAll(q => counts.TryGetValue(q.Queue, out var n) ? q with { Oversized = n } : q);
    }
}
