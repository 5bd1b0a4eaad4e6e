-- The maintained job counts (migration 0022): the current bodies, re-applied by the migrator
-- whenever this file changes. C# twin of what they count: the in-memory store's statistics.

-- One statement's net change per key (the key: migration 0022's job_count_amount and job_finish_minute):
-- -1 for each row as it was, +1 for each row as it is, summed per key, and the keys that net to zero
-- dropped, so an update that keeps every row's key (a heartbeat, progress, a statement that matched
-- nothing) appends nothing. Two aggregates, no join of the transition tables: a join on id made a
-- single-row update's trigger cost about a third more. A row with a finish minute and a positive
-- count is a finish: the activity (no statement moves a job from one finished key to another).
CREATE OR REPLACE FUNCTION {schema}.count_job_changes() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {schema}.job_count_changes (queue, kind, state, memory_mb, cpu_millicores, gpus, finished_minute, n)
        SELECT queue, kind, state, {schema}.job_count_amount(state, memory_mb), {schema}.job_count_amount(state, cpu_millicores),
               {schema}.job_count_amount(state, gpus), {schema}.job_finish_minute(state, finalized_at), count(*)
        FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6, 7;
    ELSIF TG_OP = 'TRUNCATE' THEN
        DELETE FROM {schema}.job_count_changes;
        DELETE FROM {schema}.job_counts;
        DELETE FROM {schema}.job_sized_counts;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO {schema}.job_count_changes (queue, kind, state, memory_mb, cpu_millicores, gpus, finished_minute, n)
        SELECT queue, kind, state, {schema}.job_count_amount(state, memory_mb), {schema}.job_count_amount(state, cpu_millicores),
               {schema}.job_count_amount(state, gpus), NULL::timestamptz, -count(*)
        FROM old_rows GROUP BY 1, 2, 3, 4, 5, 6;
    ELSIF EXISTS (SELECT 1 FROM new_rows) THEN
        -- (An update that matched nothing, as most rescue and expiry rounds do, stops at the test above:
        -- 10 µs less per such statement than running the aggregate over nothing.)
        INSERT INTO {schema}.job_count_changes (queue, kind, state, memory_mb, cpu_millicores, gpus, finished_minute, n)
        SELECT queue, kind, state, memory_mb, cpu_millicores, gpus, finished_minute, sum(n)
        FROM (SELECT queue, kind, state, {schema}.job_count_amount(state, memory_mb) AS memory_mb,
                     {schema}.job_count_amount(state, cpu_millicores) AS cpu_millicores, {schema}.job_count_amount(state, gpus) AS gpus,
                     {schema}.job_finish_minute(state, finalized_at) AS finished_minute, -1 AS n
              FROM old_rows
              UNION ALL
              SELECT queue, kind, state, {schema}.job_count_amount(state, memory_mb), {schema}.job_count_amount(state, cpu_millicores),
                     {schema}.job_count_amount(state, gpus), {schema}.job_finish_minute(state, finalized_at), 1
              FROM new_rows) r
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        HAVING sum(n) <> 0;
    END IF;
    RETURN NULL;
END
$fn$;

-- Folds the changes committed so far into job_counts, job_sized_counts and job_activity, and drops
-- activity older than a day (the longest window GetActivityAsync takes) before at. One folder at a
-- time per schema (a try-lock: another caller skips, and readers add the unfolded changes themselves),
-- so the upserts never wait on each other. Run by the statistics and activity reads; a reader that
-- may not write (a read-only role, a read-only transaction, a standby) skips it and only reads.
CREATE OR REPLACE FUNCTION {schema}.fold_job_counts(at timestamptz) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    IF current_setting('transaction_read_only') = 'on'
       OR NOT has_table_privilege('{schema}.job_count_changes', 'DELETE')
       OR NOT has_table_privilege('{schema}.job_counts', 'INSERT, UPDATE, DELETE')
       OR NOT has_table_privilege('{schema}.job_sized_counts', 'INSERT, UPDATE, DELETE')
       OR NOT has_table_privilege('{schema}.job_activity', 'INSERT, UPDATE, DELETE') THEN
        RETURN;
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('scheduling.fold_job_counts.{schema}')) THEN RETURN; END IF;
    WITH folded AS (DELETE FROM {schema}.job_count_changes RETURNING *),
    counted AS (
        INSERT INTO {schema}.job_counts AS c (queue, kind, state, n)
        SELECT queue, kind, state, sum(n) FROM folded GROUP BY 1, 2, 3
        ON CONFLICT (queue, kind, state) DO UPDATE SET n = c.n + excluded.n),
    sized AS (
        INSERT INTO {schema}.job_sized_counts AS s (queue, memory_mb, cpu_millicores, gpus, n)
        SELECT queue, memory_mb, cpu_millicores, gpus, sum(n) FROM folded
        WHERE memory_mb > 0 OR cpu_millicores > 0 OR gpus > 0
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (queue, memory_mb, cpu_millicores, gpus) DO UPDATE SET n = s.n + excluded.n)
    INSERT INTO {schema}.job_activity AS a (queue, minute, state, n)
    SELECT queue, finished_minute, state, sum(n) FROM folded
    WHERE n > 0 AND finished_minute IS NOT NULL AND finished_minute >= at - interval '1 day 1 minute'
    GROUP BY 1, 2, 3
    ON CONFLICT (queue, minute, state) DO UPDATE SET n = a.n + excluded.n;
    DELETE FROM {schema}.job_counts WHERE n = 0;
    DELETE FROM {schema}.job_sized_counts WHERE n = 0;
    DELETE FROM {schema}.job_activity WHERE minute < at - interval '1 day 1 minute';
END
$fn$;
