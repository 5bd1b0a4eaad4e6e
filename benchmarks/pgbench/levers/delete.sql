-- The bound of that lever: the same fenced completion as a plain DELETE (no archive: the finished row is lost).
DELETE FROM SCHEMA.jobs j USING unnest(:ids::bigint[], :tokens::uuid[]) AS t(id, token)
WHERE j.id = ANY (:ids::bigint[]) AND j.id = t.id AND j.lease_token = t.token;
