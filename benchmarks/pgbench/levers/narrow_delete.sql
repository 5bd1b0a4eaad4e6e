DELETE FROM SCHEMA.hot j USING unnest(:ids::bigint[], :tokens::uuid[]) AS t(id, token) WHERE j.id = ANY (:ids::bigint[]) AND j.id = t.id AND j.lease_token = t.token;
