-- The ARA report's reads by enqueue time: the jobs ARA sizes (a definition) were in 0002's
-- jobs_created_definition_idx, but the hash audit reads every job with a command or a hash, so it
-- scanned the table (1,000,000 jobs: 90-160 ms). One index for both: a query's "definition_id IS NOT
-- NULL", or "command IS NOT NULL OR command_hash IS NOT NULL", implies this predicate. Partial: a job
-- with none of the three (most of a queue's traffic) never writes to it.
CREATE INDEX jobs_created_command_idx ON {schema}.jobs (created_at)
    WHERE definition_id IS NOT NULL OR command IS NOT NULL OR command_hash IS NOT NULL;
DROP INDEX {schema}.jobs_created_definition_idx;
