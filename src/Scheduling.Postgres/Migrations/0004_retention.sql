-- Retention: finished jobs are deleted in bounded batches by age, through this index; run history too.
CREATE INDEX jobs_finished_idx ON {schema}.jobs (finalized_at) WHERE state IN ('succeeded', 'cancelled', 'dead');
CREATE INDEX run_history_finished_idx ON {schema}.run_history (finished_at);

-- A queue table changes most of its rows every few minutes: vacuum it early and unthrottled, and
-- leave room on each page for the updates that lease and finish jobs. See docs/operations.md.
ALTER TABLE {schema}.jobs SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0.02,
    fillfactor = 90
);
