-- Lever "finished jobs leave the hot table": the library's completion fence as a DELETE that moves the
-- row into an archive (same columns, primary key only), in the transaction that completes it.
WITH moved AS (
    DELETE FROM SCHEMA.jobs j USING unnest(:ids::bigint[], :tokens::uuid[]) AS t(id, token)
    WHERE j.id = ANY (:ids::bigint[]) AND j.id = t.id AND j.lease_token = t.token
    RETURNING j.*)
INSERT INTO SCHEMA.archive SELECT * FROM moved;
