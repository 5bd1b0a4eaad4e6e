-- The floor (the harness's raw-batch/raw-single): lock a batch and delete it in one transaction;
-- the jobs would run inside it.
BEGIN;
SELECT coalesce(array_agg(id), '{}') AS ids FROM (SELECT id FROM SCHEMA.raw_jobs WHERE queue = 'default' AND run_at <= now() ORDER BY run_at, id LIMIT :batch FOR UPDATE SKIP LOCKED) p \gset
DELETE FROM SCHEMA.raw_jobs WHERE id = ANY (:ids::bigint[]);
COMMIT;
