-- A lease token exists exactly while a job runs. Statements on leased jobs match the token alone
-- (by primary key), so this invariant is what makes that safe; the database holds it.
ALTER TABLE {schema}.jobs ADD CONSTRAINT jobs_lease_token_check
    CHECK ((lease_token IS NOT NULL) = (state = 'running'));
