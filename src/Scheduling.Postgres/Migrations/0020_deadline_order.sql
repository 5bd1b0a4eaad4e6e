-- Deadline ordering (JobQueueOptions.DeadlineLead): a job with a latest start is ordered as if it
-- became due deadline_lead_us before it, when that is earlier than its own sort time, so waiting jobs
-- nearest their deadlines go first. Same rule as JobOrder.At (its C# twin); least() ignores the NULL
-- of a job without a deadline or a queue without the option, leaving 0017's key unchanged.
-- Re-adding the column rewrites the table once, under this migration's lock.
ALTER TABLE {schema}.jobs ADD COLUMN deadline_lead_us bigint CHECK (deadline_lead_us > 0);
ALTER TABLE {schema}.jobs DROP COLUMN sort_at;
ALTER TABLE {schema}.jobs
    ADD COLUMN sort_at timestamptz GENERATED ALWAYS AS (
        least(
            CASE WHEN aging_step_us IS NULL THEN run_at
                 ELSE ((run_at AT TIME ZONE 'UTC')
                       - (coalesce(effective_priority, priority)::bigint * aging_step_us) * interval '1 microsecond') AT TIME ZONE 'UTC'
            END,
            ((latest_start_at AT TIME ZONE 'UTC') - deadline_lead_us * interval '1 microsecond') AT TIME ZONE 'UTC')
    ) STORED;

-- Dropped with the column; the same definitions as 0017.
CREATE INDEX jobs_fetch_idx ON {schema}.jobs (queue, sort_rank DESC, sort_at, id) WHERE state = 'available';
CREATE INDEX jobs_key_fetch_idx ON {schema}.jobs (queue, partition_key, sort_rank DESC, sort_at, id)
    WHERE state = 'available' AND partition_key IS NOT NULL;
