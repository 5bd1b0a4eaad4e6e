-- Lever "a narrow hot row": what a lease and a transition touch in one table, everything written once at
-- enqueue in another (joined by the claim for the worker).
CREATE TABLE SCHEMA.hot (id bigint PRIMARY KEY, queue text NOT NULL, state text NOT NULL DEFAULT 'available', priority smallint NOT NULL DEFAULT 0,
  run_at timestamptz NOT NULL, sort_rank smallint NOT NULL DEFAULT 0, sort_at timestamptz NOT NULL, attempt int NOT NULL DEFAULT 0, max_attempts int NOT NULL,
  locked_by text, lease_token uuid, lease_expires_at timestamptz, attempted_at timestamptz, started boolean NOT NULL DEFAULT true,
  latest_start_at timestamptz, finalized_at timestamptz);
CREATE INDEX ON SCHEMA.hot (queue, sort_rank DESC, sort_at, id) WHERE state = 'available';
CREATE INDEX ON SCHEMA.hot (lease_expires_at) WHERE state = 'running';
CREATE INDEX ON SCHEMA.hot (finalized_at) WHERE state IN ('succeeded', 'cancelled', 'dead', 'expired');
CREATE TABLE SCHEMA.details AS SELECT id, kind, payload, command, trace_parent, trace_state, definition_id, memory_mb, cpu_millicores, gpus,
  timeout_ms, payload_version, batch_id, created_at FROM SCHEMA.jobs;
ALTER TABLE SCHEMA.details ADD PRIMARY KEY (id);
INSERT INTO SCHEMA.hot (id, queue, run_at, sort_at, max_attempts) SELECT id, queue, run_at, run_at, max_attempts FROM SCHEMA.jobs;
ANALYZE SCHEMA.hot, SCHEMA.details;
