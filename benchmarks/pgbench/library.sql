-- The library's two writes per job, as JobSql runs them (Acquire, then Finish and the settle probe),
-- in one transaction like drain-single's acknowledge-and-acquire: lease a batch, then complete it.
BEGIN;
WITH picked AS MATERIALIZED (
    SELECT id FROM SCHEMA.jobs WHERE state = 'available' AND queue = 'default' AND run_at <= now()
    ORDER BY sort_rank DESC, sort_at, id LIMIT :batch FOR UPDATE SKIP LOCKED),
leased AS (
    UPDATE SCHEMA.jobs j SET state = 'running', attempt = j.attempt + 1, locked_by = 'pgbench', lease_token = gen_random_uuid(),
        lease_expires_at = now() + interval '5 minutes', attempted_at = now()
    WHERE j.id = ANY (ARRAY(SELECT id FROM picked))
    RETURNING j.id, j.queue, j.kind, j.payload, j.priority, j.attempt, j.max_attempts, j.run_at, j.created_at, j.lease_token, j.lease_expires_at,
        j.command, j.definition_id, j.memory_mb, j.cpu_millicores, j.gpus, j.baseline_memory_mb, j.ara_source, j.ara_skip_reason, j.ara_samples,
        j.ara_clamped, j.ara_ceiling_hit, j.ara_statistic, j.trace_parent, j.trace_state, j.sort_rank, j.sort_at)
SELECT coalesce(array_agg(id), '{}') AS ids, coalesce(array_agg(lease_token), '{}') AS tokens, count(*) AS n FROM leased \gset
UPDATE SCHEMA.jobs j SET state = a.state, finalized_at = now(), locked_by = NULL, lease_token = NULL, lease_expires_at = NULL
FROM unnest(:ids::bigint[], :tokens::uuid[], array_fill('succeeded'::text, ARRAY[:n::int])) AS a(id, token, state)
WHERE j.id = ANY (:ids::bigint[]) AND j.id = a.id AND j.lease_token = a.token
RETURNING j.id, j.state;
SELECT SCHEMA.settle_dependents(:ids::bigint[], now(), 'pgbench')
WHERE EXISTS (SELECT 1 FROM SCHEMA.job_dependencies WHERE parent_id = ANY (:ids::bigint[]) AND NOT resolved);
COMMIT;
