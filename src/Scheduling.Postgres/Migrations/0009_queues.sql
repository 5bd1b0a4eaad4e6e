-- Queues as their own rows, for what is set per queue for every host at once: for now, whether it
-- is paused. The claim reads it (one probe of this small table per queue per claim), so a paused
-- queue's jobs are never leased, never bounced and never re-written.
CREATE TABLE {schema}.queues (
    queue text PRIMARY KEY,
    paused_at timestamptz
);
