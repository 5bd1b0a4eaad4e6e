using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>Run records (the ARA history written with acknowledgements), queue statistics and the purge of old finished jobs.</summary>
internal sealed class Retention
{
    private const int StatQueue = 0, StatDue = 1, StatScheduled = 2, StatRunning = 3, StatOldestDue = 4, StatWaiting = 5, StatReadAt = 6, StatPaused = 7, StatLimits = 8, StatHosts = StatLimits + QueueControl.LimitColumnCount;

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

        // $1 now. Every queue with active jobs, or paused, or limited. The active jobs per queue from the
        // maintained counts (migration 0022: job_counts and the changes not folded yet; the batch folds them
        // first), so the cost follows the number of queues, kinds and states, not of jobs. Due and scheduled
        // split the available jobs by the SQL twin of JobTransitions.Visible, on the available jobs' due-time
        // index: the scheduled ones are the range after now, the oldest due one the first entry.
        Stats = schema.Apply($"""
            WITH per_queue AS (
                SELECT queue, coalesce(sum(n) FILTER (WHERE state = 'available'), 0) AS available,
                       coalesce(sum(n) FILTER (WHERE state = 'running'), 0) AS running,
                       coalesce(sum(n) FILTER (WHERE state = 'waiting'), 0) AS waiting
                FROM (SELECT queue, state, n FROM {"{schema}"}.job_counts WHERE state IN ('waiting', 'available', 'running')
                      UNION ALL
                      SELECT queue, state, n FROM {"{schema}"}.job_count_changes WHERE state IN ('waiting', 'available', 'running')) c
                GROUP BY queue HAVING sum(n) > 0),
            listed AS (SELECT queue FROM per_queue UNION SELECT queue FROM {"{schema}"}.queues WHERE paused_at IS NOT NULL OR limited)
            SELECT l.queue, (coalesce(q.available, 0) - s.scheduled)::bigint, s.scheduled, coalesce(q.running, 0)::bigint,
                   (SELECT o.run_at FROM {"{schema}"}.jobs o WHERE o.queue = l.queue AND o.state = 'available' AND o.run_at <= coalesce($1, now())
                    ORDER BY o.run_at LIMIT 1),
                   coalesce(q.waiting, 0)::bigint, coalesce($1, now()), c.paused_at IS NOT NULL, {string.Join(", ", QueueControl.LimitColumns.Split(", ").Select(column => "c." + column))},
                   (SELECT count(*) FROM {"{schema}"}.hosts h WHERE h.expires_at > coalesce($1, now()) AND l.queue = ANY (h.queues))::integer
            FROM listed l
            LEFT JOIN per_queue q ON q.queue = l.queue
            CROSS JOIN LATERAL (SELECT count(*) AS scheduled FROM {"{schema}"}.jobs j
                                WHERE j.queue = l.queue AND j.state = 'available' AND j.run_at > coalesce($1, now())) s
            LEFT JOIN {"{schema}"}.queues c ON c.queue = l.queue
            ORDER BY l.queue
            """);

        // $1 now. Per queue, the waiting and available jobs no live host serving it can hold: the SQL twin of
        // WorkerHostInfo.FitsNone (a job that needs something, in a queue a live host serves, that no live
        // host serving it can hold), over the maintained counts by amounts (job_sized_counts and the changes
        // not folded yet, summed unmerged: the test depends on the amounts alone), so it runs once per distinct
        // size, against the hosts of that queue (an anti-join on the queue). Read only when some live host
        // declared a capacity (a one-time filter): otherwise no host can be too small. 100,000 distinct sizes
        // and two capped hosts: 42-78 ms.
        OversizedStats = schema.Apply("""
            WITH live AS MATERIALIZED (SELECT q AS queue, memory_mb, cpu_millicores, gpus FROM {schema}.hosts, unnest(queues) AS q WHERE expires_at > coalesce($1, now()))
            SELECT queue, sum(n)::bigint
            FROM (SELECT queue, memory_mb, cpu_millicores, gpus, n FROM {schema}.job_sized_counts
                  UNION ALL
                  SELECT queue, memory_mb, cpu_millicores, gpus, n FROM {schema}.job_count_changes WHERE memory_mb > 0 OR cpu_millicores > 0 OR gpus > 0) s
            WHERE EXISTS (SELECT 1 FROM live WHERE memory_mb IS NOT NULL OR cpu_millicores IS NOT NULL OR gpus IS NOT NULL)
              AND s.queue IN (SELECT queue FROM live)
              AND NOT EXISTS (SELECT 1 FROM live h WHERE h.queue = s.queue
                              AND s.memory_mb <= coalesce(h.memory_mb, 2147483647)
                              AND s.cpu_millicores <= coalesce(h.cpu_millicores, 2147483647)
                              AND s.gpus <= coalesce(h.gpus, 2147483647))
            GROUP BY queue HAVING sum(n) <> 0
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
        // $1 window, $2 now: the finish events per queue and minute, from job_activity and the changes not folded yet.
        Activity = schema.Apply("""
            SELECT queue, minute,
                   coalesce(sum(n) FILTER (WHERE state = 'succeeded'), 0)::bigint, coalesce(sum(n) FILTER (WHERE state = 'dead'), 0)::bigint,
                   coalesce(sum(n) FILTER (WHERE state IN ('cancelled', 'expired')), 0)::bigint
            FROM (SELECT queue, minute, state, n FROM {schema}.job_activity
                  UNION ALL
                  SELECT queue, finished_minute, state, n FROM {schema}.job_count_changes WHERE n > 0 AND finished_minute IS NOT NULL) a
            WHERE minute >= date_trunc('minute', coalesce($2, now()) - $1, 'UTC')
            GROUP BY 1, 2
            ORDER BY 2, 1
            """);

        Fold = schema.Apply("SELECT {schema}.fold_job_counts(coalesce($1, now()))");
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

    /// <summary>$1 now: folds the maintained counts' changes (fold_job_counts); first in the statistics and activity batches.</summary>
    public string Fold { get; }

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

    /// <summary>The fold, the statistics and the oversized counts, in one round trip and one implicit transaction.</summary>
    public NpgsqlBatch StatsBatch(NpgsqlDataSource dataSource, DateTimeOffset? now)
    {
        var batch = FoldThen(dataSource, Stats, now);
        batch.BatchCommands.Add(NowCommand(OversizedStats, now));
        return batch;
    }

    private NpgsqlBatch FoldThen(NpgsqlDataSource dataSource, string read, DateTimeOffset? now, TimeSpan? window = null)
    {
        var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(NowCommand(Fold, now));
        var command = new NpgsqlBatchCommand(read);
        if (window is { } w) command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = w, NpgsqlDbType = NpgsqlDbType.Interval });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        batch.BatchCommands.Add(command);
        return batch;
    }

    private static NpgsqlBatchCommand NowCommand(string sql, DateTimeOffset? now)
    {
        var command = new NpgsqlBatchCommand(sql);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        return command;
    }

    public static async Task<List<QueueStats>> ReadStatsAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false); // past the fold's row
        var stats = new List<QueueStats>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            stats.Add(new QueueStats(reader.GetString(StatQueue), reader.GetInt64(StatDue), reader.GetInt64(StatScheduled), reader.GetInt64(StatRunning),
                reader.IsDBNull(StatOldestDue) ? null : reader.GetFieldValue<DateTimeOffset>(StatOldestDue))
            {
                Waiting = reader.GetInt64(StatWaiting), ReadAt = reader.GetFieldValue<DateTimeOffset>(StatReadAt), Paused = reader.GetBoolean(StatPaused),
                Limits = QueueControl.ReadLimits(reader, StatLimits), Hosts = reader.GetInt32(StatHosts),
            });
        }

        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var oversized = new Dictionary<string, long>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) oversized[reader.GetString(0)] = reader.GetInt64(1);
        return oversized.Count == 0 ? stats : stats.ConvertAll(q => oversized.TryGetValue(q.Queue, out var n) ? q with { Oversized = n } : q);
    }

    public NpgsqlCommand AheadCommand(NpgsqlDataSource dataSource, long jobId, int cap, DateTimeOffset? now)
    {
        var command = dataSource.CreateCommand(Ahead);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = jobId });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = cap });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        return command;
    }

    /// <summary>The fold, then the activity, in one round trip and one implicit transaction.</summary>
    public NpgsqlBatch ActivityBatch(NpgsqlDataSource dataSource, TimeSpan window, DateTimeOffset? now) => FoldThen(dataSource, Activity, now, window);

    public static async Task<IReadOnlyList<QueueActivity>> ReadActivityAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false); // past the fold's row
        var rows = new List<QueueActivity>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            rows.Add(new QueueActivity(reader.GetString(0), reader.GetFieldValue<DateTimeOffset>(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4)));
        return rows;
    }
}
