-- Dependency settling: the current body of settle_dependents (re-applied by the migrator whenever
-- this file changes). C# twin: InMemoryJobQueue.Settle, with the rules of DependencyRules
-- (Cancels, CancelledBecause: the message below is the same text).
-- Called in the transaction that finished jobs: each edge of a finished parent is resolved once;
-- a child whose last parent finished becomes available (due from now at the earliest); a dead or
-- cancelled parent cancels children with the 'cancel' policy, and theirs in turn. Each loop runs
-- with a fresh snapshot, so an edge committed by a concurrent enqueue (which locks the parent) is
-- seen. Returns how many jobs became available.
CREATE OR REPLACE FUNCTION {schema}.settle_dependents(finished bigint[], at timestamptz, channel text) RETURNS integer
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
              AND p.id = d.parent_id AND p.state IN ('succeeded', 'cancelled', 'dead', 'expired')
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
                              THEN c.errors || jsonb_build_array({schema}.job_error(0, at,
                                   format('Parent job %s ended %s; cancelled by the CancelChild policy.', pc.failed_parent, pc.failed_state)))
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
