-- Finished jobs by unique key, for the job lists' unique-key filter (CLI, dashboard): a key of an
-- active job, or one held in any state, is already in a unique index (0001, 0005); a finished job's
-- key with the active scope was in none (0001, 0005), so looking one up walked the table. Partial: written once,
-- when a job with such a key finishes; no enqueue, claim or other job's completion writes to it.
CREATE INDEX jobs_finished_key_idx ON {schema}.jobs (unique_key)
    WHERE unique_key IS NOT NULL AND NOT unique_any_state AND state IN ('succeeded', 'cancelled', 'dead', 'expired');
