-- What the batch trigger (migration 0015) costs jobs that are not batch members: the same UPDATE of
-- state on 200,000 rows, alternately with the trigger enabled and disabled, vacuumed between runs.
-- Run against a schema named "trig" migrated by `scheduling migrate --schema trig`:
--   psql -h HOST -p PORT -U postgres -f benchmarks/sql/batch_trigger_cost.sql
\timing on
TRUNCATE trig.jobs;
INSERT INTO trig.jobs (queue, kind, priority, max_attempts, state, run_at, created_at)
SELECT 'default', 'k', 0, 1, 'available', now(), now() FROM generate_series(1, 200000);
VACUUM ANALYZE trig.jobs;
\echo with trigger
BEGIN; UPDATE trig.jobs SET state = 'succeeded', finalized_at = now(); ROLLBACK; VACUUM trig.jobs;
ALTER TABLE trig.jobs DISABLE TRIGGER jobs_count_batch_member;
\echo without trigger
BEGIN; UPDATE trig.jobs SET state = 'succeeded', finalized_at = now(); ROLLBACK; VACUUM trig.jobs;
ALTER TABLE trig.jobs ENABLE TRIGGER jobs_count_batch_member;
\echo with trigger
BEGIN; UPDATE trig.jobs SET state = 'succeeded', finalized_at = now(); ROLLBACK; VACUUM trig.jobs;
ALTER TABLE trig.jobs DISABLE TRIGGER jobs_count_batch_member;
\echo without trigger
BEGIN; UPDATE trig.jobs SET state = 'succeeded', finalized_at = now(); ROLLBACK; VACUUM trig.jobs;
ALTER TABLE trig.jobs ENABLE TRIGGER jobs_count_batch_member;
\echo with trigger
BEGIN; UPDATE trig.jobs SET state = 'succeeded', finalized_at = now(); ROLLBACK; VACUUM trig.jobs;
ALTER TABLE trig.jobs DISABLE TRIGGER jobs_count_batch_member;
\echo without trigger
BEGIN; UPDATE trig.jobs SET state = 'succeeded', finalized_at = now(); ROLLBACK; VACUUM trig.jobs;
ALTER TABLE trig.jobs ENABLE TRIGGER jobs_count_batch_member;
