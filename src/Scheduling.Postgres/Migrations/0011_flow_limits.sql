-- Flow control in the claim: partition keys with per-key caps, rate limits and fair interleaving,
-- and deadlines (latest start times) with the terminal state 'expired'.
-- Keys compare and sort byte-wise (COLLATE "C"), as the in-memory store orders them (ordinal).
-- Both new job columns are nullable without defaults: added without rewriting the table. The new
-- indexes are partial on them, so jobs that use neither cost nothing more to write.
ALTER TABLE {schema}.jobs
    ADD COLUMN partition_key   text COLLATE "C",
    ADD COLUMN latest_start_at timestamptz;

ALTER TABLE {schema}.jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE {schema}.jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('waiting', 'available', 'running', 'succeeded', 'cancelled', 'dead', 'expired'));

DROP INDEX {schema}.jobs_finished_idx;
CREATE INDEX jobs_finished_idx ON {schema}.jobs (finalized_at) WHERE state IN ('succeeded', 'cancelled', 'dead', 'expired');

-- A key's due jobs in acquisition order, and its active jobs by state (the running count a cap
-- reads, and whether a key has any active job left).
CREATE INDEX jobs_key_fetch_idx ON {schema}.jobs (queue, partition_key, sort_rank DESC, sort_at, id)
    WHERE state = 'available' AND partition_key IS NOT NULL;
CREATE INDEX jobs_key_active_idx ON {schema}.jobs (queue, partition_key, state)
    WHERE partition_key IS NOT NULL AND state IN ('waiting', 'available', 'running');
-- Expiry finds the unstarted jobs past their latest start.
CREATE INDEX jobs_deadline_idx ON {schema}.jobs (latest_start_at)
    WHERE latest_start_at IS NOT NULL AND state IN ('waiting', 'available');

-- A queue's limits. rate_tat / queue_keys.rate_tat: the token bucket as one timestamp (the generic
-- cell rate algorithm, rate_allowance). limited: whether the claim goes through claim_limited.
ALTER TABLE {schema}.queues
    ADD COLUMN rate_count         integer CHECK (rate_count > 0),
    ADD COLUMN rate_period_us     bigint  CHECK (rate_period_us > 0),
    ADD COLUMN rate_tat           timestamptz,
    ADD COLUMN key_rate_count     integer CHECK (key_rate_count > 0),
    ADD COLUMN key_rate_period_us bigint  CHECK (key_rate_period_us > 0),
    ADD COLUMN key_concurrency    integer CHECK (key_concurrency > 0),
    ADD COLUMN fair_keys          boolean NOT NULL DEFAULT false,
    ADD COLUMN limited            boolean GENERATED ALWAYS AS (
        rate_count IS NOT NULL OR key_rate_count IS NOT NULL OR key_concurrency IS NOT NULL OR fair_keys) STORED,
    ADD CONSTRAINT queues_rate_check CHECK ((rate_count IS NULL) = (rate_period_us IS NULL)),
    ADD CONSTRAINT queues_key_rate_check CHECK ((key_rate_count IS NULL) = (key_rate_period_us IS NULL));

-- The partition keys with active jobs, one row each: registered by the enqueue (and a redrive),
-- forgotten by the claim once a key has no active job. The row is what a claim locks to count and
-- spend a key alone, its round-robin position (visited_at) and its bucket.
CREATE TABLE {schema}.queue_keys (
    queue         text NOT NULL,
    partition_key text COLLATE "C" NOT NULL,
    visited_at    timestamptz,
    rate_tat      timestamptz,
    PRIMARY KEY (queue, partition_key)
);
CREATE INDEX queue_keys_visit_idx ON {schema}.queue_keys (queue, visited_at NULLS FIRST, partition_key);
ALTER TABLE {schema}.queue_keys SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0, fillfactor = 70);
