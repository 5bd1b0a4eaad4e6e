-- Maintained job counts: what the statistics, the gauges and the dashboard read instead of scanning
-- the jobs table (1,000,000 active jobs: one 400-700 ms scan per read before this migration).
-- Every statement that inserts, moves or deletes jobs appends its net change, grouped by key, to
-- job_count_changes (the statement triggers below, bodies in Functions/job_counts.sql): an append,
-- never an update of a shared row, so concurrent workers do not queue on a counter. A reader folds
-- the changes into job_counts, job_sized_counts and job_activity (fold_job_counts) and reads them plus
-- the few changes not folded yet.
--
-- The key: queue, kind, stored state; a waiting or available job's amounts (for oversized counts,
-- 0 when not set); a finished job's minute of finalisation (for the activity chart).
CREATE TABLE {schema}.job_count_changes (
    queue           text NOT NULL,
    kind            text NOT NULL,
    state           text NOT NULL,
    memory_mb       integer NOT NULL,
    cpu_millicores  integer NOT NULL,
    gpus            integer NOT NULL,
    finished_minute timestamptz,
    n               bigint NOT NULL
);

CREATE TABLE {schema}.job_counts (
    queue text NOT NULL,
    kind  text NOT NULL,
    state text NOT NULL,
    n     bigint NOT NULL,
    PRIMARY KEY (queue, kind, state)
);

-- The waiting and available jobs that need an amount, per queue and amounts: what oversized counts
-- read, only when a live host declared a capacity. Apart from job_counts because ARA sizes are exact
-- (100,000 distinct sizes made the statistics read 100,000 rows every time: 310-360 ms).
CREATE TABLE {schema}.job_sized_counts (
    queue          text NOT NULL,
    memory_mb      integer NOT NULL,
    cpu_millicores integer NOT NULL,
    gpus           integer NOT NULL,
    n              bigint NOT NULL,
    PRIMARY KEY (queue, memory_mb, cpu_millicores, gpus)
);

-- Jobs that finished, per queue, minute and end state: events, so a dead job retried later still
-- died in its minute, and purging finished jobs leaves the chart as it was. Kept for a day.
CREATE TABLE {schema}.job_activity (
    queue  text NOT NULL,
    minute timestamptz NOT NULL,
    state  text NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (queue, minute, state)
);

-- A job's counting key is its queue, kind and stored state, its amounts while it waits or is
-- available (what oversized counts need; 0 otherwise and when not set), and, for a move into a
-- finished state, the minute it finished (the activity). Scalar SQL functions, inlined where used
-- (a composite key function was not, nor one calling the STABLE date_trunc with a zone: either
-- made an insert's trigger cost two to three times as much).
CREATE FUNCTION {schema}.job_count_amount(state text, amount integer) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$ SELECT CASE WHEN state IN ('waiting', 'available') THEN coalesce(amount, 0) ELSE 0 END $fn$;
CREATE FUNCTION {schema}.job_finish_minute(state text, finalized_at timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$ SELECT CASE WHEN state IN ('succeeded', 'cancelled', 'dead', 'expired') THEN date_trunc('minute', finalized_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' END $fn$;

-- Replaced by Functions/job_counts.sql right after the migrations (in this transaction).
CREATE FUNCTION {schema}.count_job_changes() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN RETURN NULL; END $fn$;

-- Statement triggers with transition tables: a claim or completion of 100 jobs appends one row per
-- key it changed, not one per job. An UPDATE trigger may not name columns when it has transition
-- tables, so a heartbeat fires it too; its body then finds no key changed and appends nothing.
CREATE TRIGGER jobs_count_insert AFTER INSERT ON {schema}.jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_job_changes();
CREATE TRIGGER jobs_count_update AFTER UPDATE ON {schema}.jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_job_changes();
CREATE TRIGGER jobs_count_delete AFTER DELETE ON {schema}.jobs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_job_changes();
-- TRUNCATE has no transition table: the counts start again from nothing (the activity, being events, stays).
CREATE TRIGGER jobs_count_truncate AFTER TRUNCATE ON {schema}.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_job_changes();

-- The jobs there are now, counted once under the triggers' lock (no job can change before this commits).
INSERT INTO {schema}.job_counts (queue, kind, state, n)
SELECT queue, kind, state, count(*) FROM {schema}.jobs GROUP BY 1, 2, 3;
INSERT INTO {schema}.job_sized_counts (queue, memory_mb, cpu_millicores, gpus, n)
SELECT queue, memory_mb, cpu_millicores, gpus, count(*)
FROM (SELECT queue, {schema}.job_count_amount(state, memory_mb) AS memory_mb, {schema}.job_count_amount(state, cpu_millicores) AS cpu_millicores,
             {schema}.job_count_amount(state, gpus) AS gpus
      FROM {schema}.jobs WHERE state IN ('waiting', 'available')) j
WHERE memory_mb > 0 OR cpu_millicores > 0 OR gpus > 0
GROUP BY 1, 2, 3, 4;
INSERT INTO {schema}.job_activity (queue, minute, state, n)
SELECT queue, {schema}.job_finish_minute(state, finalized_at), state, count(*)
FROM {schema}.jobs
WHERE state IN ('succeeded', 'cancelled', 'dead', 'expired') AND finalized_at >= now() - interval '1 day 1 minute'
GROUP BY 1, 2, 3;

-- Available jobs by due time: a queue's oldest due job is its first entry, its scheduled jobs the
-- range after now (the statistics, and the job list's "scheduled" filter). Partial, so a claim or a
-- completion never writes to it; an enqueue and a retry do.
CREATE INDEX jobs_available_run_idx ON {schema}.jobs (queue, run_at) WHERE state = 'available';
