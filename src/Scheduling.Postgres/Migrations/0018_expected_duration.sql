-- How long a run of the job's command usually takes at most, from the history that sized it
-- (ResourceAllocation.ExpectedDuration); NULL without history. Written once at enqueue.
ALTER TABLE {schema}.jobs ADD COLUMN expected_duration_ms bigint CHECK (expected_duration_ms >= 0);
