namespace Scheduling.Postgres;

/// <summary>
/// Every statement on the jobs table, in one place. <c>{schema}</c> is replaced by the quoted,
/// validated schema; everything else is a parameter. <c>$now</c> below means
/// <c>coalesce(&lt;param&gt;, now())</c>: the database clock unless a test clock is passed.
/// </summary>
internal sealed class JobSql
{
    private const string Active = "('waiting', 'available', 'running')";

    public JobSql(PostgresSchema schema, bool notifyOnEnqueue)
    {
        string S(string sql) => schema.Apply(sql);
        var notifyJoin = notifyOnEnqueue ? " CROSS JOIN LATERAL pg_notify($9, ins.queue) AS n" : "";

        // $1 queue, $2 kind, $3 priority, $4 run_at, $5 max_attempts, $6 payload, $7 now, $8 unique_key, $9 channel,
        // $10.. the command, its sizing and its trace context (see ResourceColumns)
        Insert = S($"""
            WITH ins AS (
                INSERT INTO {"{schema}"}.jobs (queue, kind, priority, run_at, max_attempts, payload, created_at, unique_key, {ResourceColumns}, {GraphColumns})
                VALUES ($1, $2, $3, coalesce($4, $7, now()), $5, $6, coalesce($7, now()), $8, {ResourceValues}, {GraphValues})
                RETURNING id, queue)
            SELECT ins.id, true FROM ins{notifyJoin}
            """);

        string InsertUniqueSql(bool anyState)
        {
            var predicate = anyState ? "unique_any_state" : $"NOT unique_any_state AND state IN {Active}";
            var existing = anyState ? "j.unique_any_state" : $"NOT j.unique_any_state AND j.state IN {Active}";
            return S($"""
                WITH ins AS (
                    INSERT INTO {"{schema}"}.jobs (queue, kind, priority, run_at, max_attempts, payload, created_at, unique_key, unique_any_state, {ResourceColumns}, {GraphColumns})
                    SELECT $1, $2, $3, coalesce($4, $7, now()), $5, $6, coalesce($7, now()), $8, {(anyState ? "true" : "false")}, {ResourceValues}, {GraphValues}
                    -- A job born cancelled (a parent had failed) is outside the active index, so check the key by hand.
                    WHERE $27 <> 'cancelled' OR {(anyState ? "true" : $"NOT EXISTS (SELECT 1 FROM {"{schema}"}.jobs j WHERE j.unique_key = $8 AND {existing})")}
                    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND {predicate} DO NOTHING
                    RETURNING id, queue)
                SELECT ins.id, true FROM ins{notifyJoin}
                UNION ALL
                SELECT j.id, false FROM {"{schema}"}.jobs j
                WHERE j.unique_key = $8 AND {existing} AND NOT EXISTS (SELECT 1 FROM ins)
                LIMIT 1
                """);
        }

        InsertUnique = InsertUniqueSql(anyState: false);
        InsertUniqueAnyState = InsertUniqueSql(anyState: true);

        // $1 count, $2 now: the clock and a block of ids for a COPY.
        ReserveIds = S("""
            SELECT coalesce($2, now()), array(SELECT nextval(pg_get_serial_sequence('{schema}.jobs', 'id')) FROM generate_series(1, $1))
            """);

        Copy = S($"COPY {"{schema}"}.jobs (id, queue, kind, priority, run_at, max_attempts, payload, created_at, {ResourceColumns}, {GraphColumns}) FROM STDIN (FORMAT BINARY)");

        // $1 parent ids: locked so a concurrent completion waits for this enqueue's edges (and sees them).
        LockParents = S("SELECT id, state FROM {schema}.jobs WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE");

        // $1 parents, $2 children, $3 resolved (the parent had already finished)
        InsertEdges = S("""
            INSERT INTO {schema}.job_dependencies (parent_id, child_id, resolved)
            SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::boolean[]) ON CONFLICT DO NOTHING
            """);

        // $1 new waiting jobs: their unfinished ancestors inherit their priority (priority inheritance).
        RaiseAncestors = S($"""
            WITH RECURSIVE up(id, p) AS (
                SELECT d.parent_id, coalesce(c.effective_priority, c.priority)
                FROM {"{schema}"}.jobs c JOIN {"{schema}"}.job_dependencies d ON d.child_id = c.id AND NOT d.resolved
                WHERE c.id = ANY ($1) AND c.state = 'waiting'
                UNION
                SELECT d.parent_id, up.p
                FROM up JOIN {"{schema}"}.jobs j ON j.id = up.id AND j.state = 'waiting'
                JOIN {"{schema}"}.job_dependencies d ON d.child_id = up.id AND NOT d.resolved)
            UPDATE {"{schema}"}.jobs j SET effective_priority = m.p
            FROM (SELECT id, max(p) AS p FROM up GROUP BY id) m
            WHERE j.id = m.id AND j.state IN {Active} AND coalesce(j.effective_priority, j.priority) < m.p
            """);

        // $1 job ids that may have finished, $2 now, $3 channel: releases or cancels their waiting children.
        // For jobs that were running (acknowledged or rescued): their own parents are all settled, so
        // only children matter, and one index probe (in this statement's fresh snapshot, so an edge
        // committed by an enqueue this transaction waited for is seen) spares the call when there are none.
        SettleFinished = S("""
            SELECT {schema}.settle_dependents($1, coalesce($2, now()), $3)
            WHERE EXISTS (SELECT 1 FROM {schema}.job_dependencies WHERE parent_id = ANY ($1) AND NOT resolved)
            """);

        // The same for a cancelled job, which may have been waiting (its ancestors then lose its priority): always called.
        SettleCancelled = S("SELECT {schema}.settle_dependents($1, coalesce($2, now()), $3)");

        // $1 channel, $2 queues
        NotifyQueues = "SELECT pg_notify($1, q) FROM unnest($2::text[]) AS q";

        const string Returned = """
            j.id, j.queue, j.kind, j.payload, j.priority, j.attempt, j.max_attempts, j.run_at, j.created_at, j.lease_token, j.lease_expires_at,
            j.command, j.definition_id, j.memory_mb, j.cpu_millicores, j.gpus, j.baseline_memory_mb, j.ara_source, j.ara_skip_reason, j.ara_samples, j.ara_clamped, j.ara_ceiling_hit, j.ara_statistic,
            j.trace_parent, j.trace_state, j.sort_rank, j.sort_at
            """;
        const string Lease = """
            SET state = 'running', attempt = j.attempt + 1, locked_by = $W, lease_token = gen_random_uuid(),
                lease_expires_at = coalesce($NOW, now()) + $LEASE, attempted_at = coalesce($NOW, now())
            """;
        // Leases the jobs of the CTE "picked" and returns them in queue order (UPDATE ... RETURNING keeps none).
        var LeasePicked = $"""
            leased AS (
                UPDATE {"{schema}"}.jobs j
                {Lease}
                WHERE j.id = ANY (ARRAY(SELECT id FROM picked)) -- by primary key, whatever the planner guesses of picked
                RETURNING {Returned})
            SELECT * FROM leased ORDER BY sort_rank DESC, sort_at, id
            """;
        // The due jobs of one queue in acquisition order: exactly the fetch index's equality column and order.
        static string Due(string queue, string also = "") => $"""
            SELECT id FROM {"{schema}"}.jobs
            WHERE state = 'available' AND queue = {queue} AND run_at <= coalesce($4, now()){also}
            ORDER BY sort_rank DESC, sort_at, id
            """;
        static string Leased(string sql) => sql.Replace("$W", "$3", StringComparison.Ordinal).Replace("$NOW", "$4", StringComparison.Ordinal).Replace("$LEASE", "$5", StringComparison.Ordinal);

        // $1 queue, $2 max jobs, $3 worker, $4 now, $5 lease duration
        Acquire = S(Leased($"""
            WITH picked AS MATERIALIZED (
                {Due("$1")}
                LIMIT $2
                FOR UPDATE SKIP LOCKED),
            {LeasePicked}
            """));

        // $1 queues, $2 their quotas, $3 worker, $4 now, $5 lease duration, $6 max jobs in all, $7 the queues' weights.
        // Each queue first takes its quota; queues that filled it share what the others left, the
        // n-th extra job of a queue of weight w ranked at n / w (FairShare.SpareRank).
        AcquireShared = S(Leased($"""
            WITH q AS (SELECT * FROM unnest($1::text[], $2::integer[], $7::integer[]) AS q(queue, quota, weight)),
            by_quota AS MATERIALIZED (
                SELECT c.id, q.queue FROM q CROSS JOIN LATERAL (
                    {Due("q.queue")}
                    LIMIT q.quota
                    FOR UPDATE SKIP LOCKED) c),
            spare AS (SELECT $6 - (SELECT count(*) FROM by_quota) AS n),
            more AS MATERIALIZED (
                SELECT c.id, row_number() OVER (PARTITION BY q.queue ORDER BY c.ord)::float8 / q.weight AS rank
                FROM q CROSS JOIN spare CROSS JOIN LATERAL (
                    SELECT id, row_number() OVER () AS ord FROM (
                        {Due("q.queue", " AND id NOT IN (SELECT f.id FROM by_quota f WHERE f.queue = q.queue)")}
                        LIMIT spare.n
                        FOR UPDATE SKIP LOCKED) l) c
                WHERE spare.n > 0 AND (SELECT count(*) FROM by_quota f WHERE f.queue = q.queue) >= q.quota),
            picked AS (
                SELECT id FROM by_quota
                UNION ALL
                (SELECT id FROM more ORDER BY rank, id LIMIT (SELECT n FROM spare))),
            {LeasePicked}
            """));

        // Heartbeat and the statements below look leased jobs up by primary key (j.id = ANY) and match
        // the token, which only a running job has (migration 6 checks it). Saying state = 'running' as
        // well would offer the planner the lease index: a hash or loop over every running job,
        // O(running) per batch, which it picks once many jobs run.
        // $1 worker, $2 lease duration, $3 now, $4 job ids, $5 their lease tokens
        Heartbeat = S("""
            UPDATE {schema}.jobs j SET lease_expires_at = coalesce($3, now()) + $2
            FROM (SELECT DISTINCT id, token FROM unnest($4::bigint[], $5::uuid[]) AS l(id, token)) l
            WHERE j.id = ANY ($4) AND j.id = l.id AND j.lease_token = l.token AND j.locked_by = $1
            RETURNING j.id, j.cancel_requested
            """);

        // $1 now, $2 batch size: expired leases, locked, with the facts a rescue is decided from (ReadRescueCandidate).
        RescueCandidates = S("""
            SELECT id, lease_token, attempt, max_attempts, cancel_requested, locked_by, coalesce($1, now())
            FROM {schema}.jobs
            WHERE state = 'running' AND lease_expires_at < coalesce($1, now())
            ORDER BY lease_expires_at
            LIMIT $2
            FOR UPDATE SKIP LOCKED
            """);

        // $1 ids, $2 peak memory, $3 peak cpu, $4 duration ms, $5 exit code, $6 oom, $7 now: runs of sized jobs with a command.
        RecordRuns = S("""
            INSERT INTO {schema}.run_history (job_id, definition_id, command_hash, normalized_command_hash, allocated_memory_mb,
                                              peak_memory_mb, peak_cpu_millicores, duration_ms, exit_code, oom_killed, finished_at)
            SELECT j.id, j.definition_id, j.command_hash, j.normalized_command_hash, j.memory_mb,
                   CASE WHEN u.oom THEN least(coalesce(u.peak, j.memory_mb), j.memory_mb) ELSE u.peak END,
                   u.cpu, u.duration_ms, u.exit_code, u.oom, coalesce($7, now())
            FROM unnest($1::bigint[], $2::integer[], $3::integer[], $4::bigint[], $5::integer[], $6::boolean[]) AS u(id, peak, cpu, duration_ms, exit_code, oom)
            JOIN {schema}.jobs j ON j.id = u.id
            WHERE j.definition_id IS NOT NULL AND j.command_hash IS NOT NULL AND j.memory_mb IS NOT NULL AND (u.oom OR u.peak IS NOT NULL)
            """);

        // $1 finished before, $2 batch size
        Purge = S("""
            WITH purged AS (
                DELETE FROM {schema}.jobs WHERE id IN (
                    SELECT id FROM {schema}.jobs
                    WHERE state IN ('succeeded', 'cancelled', 'dead') AND finalized_at < $1
                    ORDER BY finalized_at LIMIT $2
                    FOR UPDATE SKIP LOCKED)
                RETURNING id),
            as_parent AS (DELETE FROM {schema}.job_dependencies d USING purged WHERE d.parent_id = purged.id),
            as_child AS (DELETE FROM {schema}.job_dependencies d USING purged WHERE d.child_id = purged.id)
            SELECT count(*)::integer FROM purged
            """);

        // $1 now
        Stats = S("""
            SELECT queue,
                   count(*) FILTER (WHERE state = 'available' AND run_at <= coalesce($1, now())),
                   count(*) FILTER (WHERE state = 'available' AND run_at > coalesce($1, now())),
                   count(*) FILTER (WHERE state = 'running'),
                   min(run_at) FILTER (WHERE state = 'available' AND run_at <= coalesce($1, now())),
                   count(*) FILTER (WHERE state = 'waiting')
            FROM {schema}.jobs WHERE state IN ('waiting', 'available', 'running')
            GROUP BY queue ORDER BY queue
            """);

        // $1 job id, $2 now
        Get = S("""
            SELECT id, queue, kind, payload,
                   CASE WHEN state = 'available' AND run_at > coalesce($2, now()) THEN 'scheduled' ELSE state END,
                   priority, attempt, max_attempts, run_at, created_at, attempted_at, finalized_at, locked_by,
                   lease_expires_at, cancel_requested, unique_key, errors,
                   command, definition_id, memory_mb, cpu_millicores, gpus, baseline_memory_mb, ara_source, ara_skip_reason, ara_samples, ara_clamped, ara_ceiling_hit, ara_statistic,
                   command_hash, description,
                   coalesce(effective_priority, priority), parents_pending, on_parent_failure,
                   (SELECT coalesce(jsonb_agg(jsonb_build_array(p.id, CASE WHEN p.state = 'available' AND p.run_at > coalesce($2, now()) THEN 'scheduled' ELSE p.state END) ORDER BY p.id), '[]')
                    FROM {schema}.job_dependencies d JOIN {schema}.jobs p ON p.id = d.parent_id WHERE d.child_id = j.id)::text,
                   (SELECT coalesce(jsonb_agg(jsonb_build_array(c.id, CASE WHEN c.state = 'available' AND c.run_at > coalesce($2, now()) THEN 'scheduled' ELSE c.state END) ORDER BY c.id), '[]')
                    FROM {schema}.job_dependencies d JOIN {schema}.jobs c ON c.id = d.child_id WHERE d.parent_id = j.id)::text
            FROM {schema}.jobs j WHERE id = $1
            """);
    }

    /// <summary>The command, sizing and trace-context columns written at enqueue, in parameter order from $10.</summary>
    public const string ResourceColumns = "command, command_hash, normalized_command_hash, description, definition_id, baseline_memory_mb, memory_mb, cpu_millicores, gpus, ara_source, ara_skip_reason, ara_samples, ara_clamped, ara_ceiling_hit, ara_statistic, trace_parent, trace_state";
    private const string ResourceValues = "$10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26";

    /// <summary>The dependency and ordering columns written at enqueue (by INSERT, in parameter order from $27, and by COPY).</summary>
    private const string GraphColumns = "state, parents_pending, on_parent_failure, aging_step_us, errors, finalized_at";
    private const string GraphValues = "$27, $28, $29, $30, coalesce($31, '[]'::jsonb), CASE WHEN $27 = 'cancelled' THEN coalesce($7, now()) END";

    public string RecordRuns { get; }
    public string Stats { get; }
    public string Purge { get; }
    public string Insert { get; }
    public string InsertUnique { get; }
    public string InsertUniqueAnyState { get; }
    public string ReserveIds { get; }
    public string Copy { get; }
    public string NotifyQueues { get; }
    public string Acquire { get; }
    public string AcquireShared { get; }
    public string LockParents { get; }
    public string InsertEdges { get; }
    public string RaiseAncestors { get; }
    public string SettleFinished { get; }
    public string SettleCancelled { get; }
    public string Heartbeat { get; }
    public string RescueCandidates { get; }

    /// <summary>A row of <see cref="RescueCandidates"/>: the lease, the facts, the clock.</summary>
    public static (long JobId, Guid Token, JobFacts Facts, DateTimeOffset Now) ReadRescueCandidate(Npgsql.NpgsqlDataReader reader) =>
        (reader.GetInt64(0), reader.GetGuid(1),
         new JobFacts(JobState.Running, reader.GetInt32(2), reader.GetInt32(3), reader.GetBoolean(4), reader.IsDBNull(5) ? null : reader.GetString(5)),
         reader.GetFieldValue<DateTimeOffset>(6));
    public string Get { get; }
}
