-- Priority inheritance, lowered: the current body of recompute_priorities (re-applied by the
-- migrator whenever this file changes). C# twin: InMemoryJobQueue.Recompute / LowerParents.
-- Lowers the effective priority of the unfinished parents of jobs that stopped waiting without
-- running (cancelled), and of their ancestors in turn: max(own, waiting children's effective).
CREATE OR REPLACE FUNCTION {schema}.recompute_priorities(stopped bigint[]) RETURNS void
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
