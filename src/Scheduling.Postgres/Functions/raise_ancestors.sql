-- Priority inheritance, raised: the current body of raise_ancestors (re-applied by the migrator
-- whenever this file changes). C# twin: InMemoryJobQueue.Raise.
-- New waiting jobs lend their priority to their unfinished ancestors. The seeds are taken one
-- priority level at a time, highest first, and a walk stops at an ancestor already at that level or
-- above (its own ancestors are then too: a waiting job's ancestors always hold at least its effective
-- priority). So each ancestor is raised by the highest level that reaches it and walked past once,
-- where one walk from every seed at once carried each (ancestor, level) pair: a chain enqueued with
-- rising priorities was quadratic in its length.
CREATE OR REPLACE FUNCTION {schema}.raise_ancestors(waiting bigint[]) RETURNS void
    LANGUAGE plpgsql AS $fn$
DECLARE
    level integer;
    seeds bigint[];
BEGIN
    FOR level, seeds IN
        SELECT coalesce(effective_priority, priority), array_agg(id) FROM {schema}.jobs
        WHERE id = ANY (waiting) AND state = 'waiting'
        GROUP BY 1 ORDER BY 1 DESC
    LOOP
        -- A seed raised by a higher level meanwhile: its ancestors were walked by that level.
        seeds := array(SELECT id FROM {schema}.jobs WHERE id = ANY (seeds) AND coalesce(effective_priority, priority) = level);
        CONTINUE WHEN cardinality(seeds) = 0;
        WITH RECURSIVE up(id) AS (
            SELECT d.parent_id
            FROM {schema}.jobs c JOIN {schema}.job_dependencies d ON d.child_id = c.id AND NOT d.resolved
            WHERE c.id = ANY (seeds)
            UNION
            SELECT d.parent_id
            FROM up JOIN {schema}.jobs j ON j.id = up.id AND j.state = 'waiting' AND coalesce(j.effective_priority, j.priority) < level
            JOIN {schema}.job_dependencies d ON d.child_id = up.id AND NOT d.resolved)
        UPDATE {schema}.jobs j SET effective_priority = level
        FROM up
        WHERE j.id = up.id AND j.state IN ('waiting', 'available', 'running') AND coalesce(j.effective_priority, j.priority) < level;
    END LOOP;
END
$fn$;
