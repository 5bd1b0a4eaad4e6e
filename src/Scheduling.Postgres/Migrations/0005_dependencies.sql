-- Dependencies (a DAG), priority inheritance, and aging by a stored sort key.

-- The sort key, in one place: strict priority orders by (effective priority, run_at); aging by
-- run_at less one step per priority level. IMMUTABLE holds: the interval has only a microseconds
-- part, so the arithmetic never depends on the session time zone. JobOrder (C#) is the same rule.
CREATE FUNCTION {schema}.job_sort_rank(priority smallint, aging_step_us bigint) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN aging_step_us IS NULL THEN priority ELSE 0::smallint END $$;
CREATE FUNCTION {schema}.job_sort_at(run_at timestamptz, priority smallint, aging_step_us bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN aging_step_us IS NULL THEN run_at ELSE run_at - (priority::bigint * aging_step_us) * interval '1 microsecond' END $$;

ALTER TABLE {schema}.jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE {schema}.jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('waiting', 'available', 'running', 'succeeded', 'cancelled', 'dead'));

ALTER TABLE {schema}.jobs
    -- Raised above priority while a higher-priority job waits on this one; NULL when not raised.
    ADD COLUMN effective_priority smallint,
    -- The aging step in force when the job was enqueued (NULL: strict priority).
    ADD COLUMN aging_step_us      bigint CHECK (aging_step_us > 0),
    -- Parents not finished yet; a waiting job becomes available when this reaches zero.
    ADD COLUMN parents_pending    integer NOT NULL DEFAULT 0,
    ADD COLUMN on_parent_failure  text    NOT NULL DEFAULT 'cancel' CHECK (on_parent_failure IN ('cancel', 'run')),
    ADD COLUMN sort_rank smallint GENERATED ALWAYS AS ({schema}.job_sort_rank(coalesce(effective_priority, priority), aging_step_us)) STORED,
    ADD COLUMN sort_at timestamptz GENERATED ALWAYS AS ({schema}.job_sort_at(run_at, coalesce(effective_priority, priority), aging_step_us)) STORED;

-- Acquisition: equality on queue, then exactly the ORDER BY of the fetch statements.
DROP INDEX {schema}.jobs_fetch_idx;
CREATE INDEX jobs_fetch_idx ON {schema}.jobs (queue, sort_rank DESC, sort_at, id) WHERE state = 'available';

-- Heartbeats name their leases by job id now, so nothing looks running jobs up by worker: one
-- index fewer to write on every acquisition.
DROP INDEX {schema}.jobs_worker_idx;

-- A waiting job holds its unique key like any other active job.
DROP INDEX {schema}.jobs_unique_key_idx;
CREATE UNIQUE INDEX jobs_unique_key_idx ON {schema}.jobs (unique_key)
    WHERE unique_key IS NOT NULL AND NOT unique_any_state AND state IN ('waiting', 'available', 'running');

-- One row per edge. resolved: the parent finished and the child has counted it (exactly once).
-- No foreign keys: they would add trigger work to every update of the hot table; purging removes
-- a job's edges itself.
CREATE TABLE {schema}.job_dependencies (
    parent_id bigint  NOT NULL,
    child_id  bigint  NOT NULL,
    resolved  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX job_dependencies_child_idx ON {schema}.job_dependencies (child_id);

-- Lowers the effective priority of the unfinished parents of jobs that stopped waiting without
-- running (cancelled), and of their ancestors in turn: max(own, waiting children's effective).
CREATE FUNCTION {schema}.recompute_priorities(stopped bigint[]) RETURNS void
    LANGUAGE plpgsql AS $fn$
DECLARE
    frontier bigint[] := stopped;
BEGIN
    WHILE cardinality(frontier) > 0 LOOP
        WITH parents AS (
            SELECT DISTINCT d.parent_id AS id FROM {schema}.job_dependencies d
            WHERE d.child_id = ANY (frontier) AND NOT d.resolved),
        target AS (
            SELECT p.id, greatest(p.priority, (
                       SELECT max(coalesce(c.effective_priority, c.priority))
                       FROM {schema}.job_dependencies e JOIN {schema}.jobs c ON c.id = e.child_id
                       WHERE e.parent_id = p.id AND NOT e.resolved AND c.state = 'waiting')) AS effective
            FROM parents JOIN {schema}.jobs p ON p.id = parents.id
            WHERE p.state IN ('waiting', 'available', 'running')),
        changed AS (
            UPDATE {schema}.jobs j SET effective_priority = nullif(t.effective, j.priority)
            FROM target t
            WHERE j.id = t.id AND coalesce(j.effective_priority, j.priority) <> t.effective
            RETURNING j.id, j.state)
        SELECT coalesce(array_agg(id) FILTER (WHERE state = 'waiting'), '{}') INTO frontier FROM changed;
    END LOOP;
END
$fn$;

-- Called in the transaction that finished jobs: each edge of a finished parent is resolved once;
-- a child whose last parent finished becomes available (due from now at the earliest); a dead or
-- cancelled parent cancels children with the 'cancel' policy, and theirs in turn. Each loop runs
-- with a fresh snapshot, so an edge committed by a concurrent enqueue (which locks the parent) is
-- seen. Returns how many jobs became available.
CREATE FUNCTION {schema}.settle_dependents(finished bigint[], at timestamptz, channel text) RETURNS integer
    LANGUAGE plpgsql AS $fn$
DECLARE
    frontier bigint[] := finished;
    stopped bigint[] := finished;
    newly_cancelled bigint[];
    queues text[];
    became_available integer := 0;
    n integer;
BEGIN
    WHILE cardinality(frontier) > 0 LOOP
        WITH resolved AS (
            UPDATE {schema}.job_dependencies d SET resolved = true
            FROM {schema}.jobs p
            WHERE d.parent_id = ANY (frontier) AND NOT d.resolved
              AND p.id = d.parent_id AND p.state IN ('succeeded', 'cancelled', 'dead')
            RETURNING d.child_id, d.parent_id, p.state AS parent_state),
        per_child AS (
            SELECT child_id, count(*)::integer AS n,
                   (array_agg(parent_id ORDER BY parent_id) FILTER (WHERE parent_state <> 'succeeded'))[1] AS failed_parent,
                   (array_agg(parent_state ORDER BY parent_id) FILTER (WHERE parent_state <> 'succeeded'))[1] AS failed_state
            FROM resolved GROUP BY child_id),
        changed AS (
            UPDATE {schema}.jobs c
            SET parents_pending = CASE WHEN pc.failed_parent IS NOT NULL AND c.on_parent_failure = 'cancel' THEN 0 ELSE c.parents_pending - pc.n END,
                state = CASE WHEN pc.failed_parent IS NOT NULL AND c.on_parent_failure = 'cancel' THEN 'cancelled'
                             WHEN c.parents_pending - pc.n <= 0 THEN 'available' ELSE 'waiting' END,
                finalized_at = CASE WHEN pc.failed_parent IS NOT NULL AND c.on_parent_failure = 'cancel' THEN at END,
                run_at = CASE WHEN pc.failed_parent IS NOT NULL AND c.on_parent_failure = 'cancel' THEN c.run_at
                              WHEN c.parents_pending - pc.n <= 0 THEN greatest(c.run_at, at) ELSE c.run_at END,
                errors = CASE WHEN pc.failed_parent IS NOT NULL AND c.on_parent_failure = 'cancel'
                              THEN c.errors || jsonb_build_array(jsonb_build_object('attempt', 0, 'at', at,
                                   'message', format('Parent job %s ended %s; cancelled by the CancelChild policy.', pc.failed_parent, pc.failed_state)))
                              ELSE c.errors END
            FROM per_child pc
            WHERE c.id = pc.child_id AND c.state = 'waiting'
            RETURNING c.id, c.state, c.queue)
        SELECT coalesce(array_agg(id) FILTER (WHERE state = 'cancelled'), '{}'),
               coalesce(array_agg(DISTINCT queue) FILTER (WHERE state = 'available'), '{}'),
               count(*) FILTER (WHERE state = 'available')
        INTO newly_cancelled, queues, n
        FROM changed;
        PERFORM pg_notify(channel, q) FROM unnest(queues) AS q;
        became_available := became_available + n;
        stopped := stopped || newly_cancelled;
        frontier := newly_cancelled;
    END LOOP;
    -- Jobs that stopped waiting without running no longer lend their priority to their ancestors.
    PERFORM {schema}.recompute_priorities(stopped);
    RETURN became_available;
END
$fn$;
