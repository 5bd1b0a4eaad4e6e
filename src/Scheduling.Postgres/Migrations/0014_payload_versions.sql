-- The version of a job's payload shape (JobRequest.PayloadVersion), so a newer handler upgrades a
-- payload an older deploy enqueued. A constant default: added without rewriting the table.
ALTER TABLE {schema}.jobs
    ADD COLUMN payload_version smallint NOT NULL DEFAULT 0 CHECK (payload_version >= 0);
