-- The worker hosts that are alive: what each serves and what it can hold (WorkerHostInfo). A host
-- upserts its row when it starts and every heartbeat interval; a row whose expires_at has passed is
-- a host that stopped reporting (killed), and the next report of any host deletes rows a day past
-- expiry. Nothing references this table, so a registration race cannot violate a key.
CREATE TABLE {schema}.hosts (
    worker_id      text PRIMARY KEY,
    queues         text[] NOT NULL,
    memory_mb      integer CHECK (memory_mb >= 0),
    cpu_millicores integer CHECK (cpu_millicores >= 0),
    gpus           integer CHECK (gpus >= 0),
    started_at     timestamptz NOT NULL,
    seen_at        timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL
);
