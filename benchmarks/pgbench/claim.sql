-- The smallest loop that runs jobs outside a transaction (what a lease makes possible): a committed
-- claim, then a delete. The design notes' "fetch + complete" loop, on a 5-column table.
WITH claimed AS (
    UPDATE SCHEMA.claim_jobs SET state = 'running', lease_expires_at = now() + interval '5 minutes'
    WHERE id IN (SELECT id FROM SCHEMA.claim_jobs WHERE queue = 'default' AND state = 'available' AND run_at <= now()
                 ORDER BY run_at, id LIMIT :batch FOR UPDATE SKIP LOCKED)
    RETURNING id)
SELECT coalesce(array_agg(id), '{}') AS ids FROM claimed \gset
DELETE FROM SCHEMA.claim_jobs WHERE id = ANY (:ids::bigint[]);
