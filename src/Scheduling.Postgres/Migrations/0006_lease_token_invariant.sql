-- A lease token exists exactly while a job runs. Statements on leased jobs match the token alone
-- (by primary key), so this invariant is what makes that safe; the database holds it.
-- NOT VALID: every writer has kept it from the start, and checking the existing rows would hold
-- the table's exclusive lock for a full scan of a busy queue; new and changed rows are checked.
ALTER TABLE {schema}.jobs ADD CONSTRAINT jobs_lease_token_check
    CHECK ((lease_token IS NOT NULL) = (state = 'running')) NOT VALID;
