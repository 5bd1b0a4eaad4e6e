-- A job's own attempt timeout (JobRequest.Timeout), in milliseconds; null: the host's default for
-- its kind. Nullable without a default: added without rewriting the table, and ignored by older code.
ALTER TABLE {schema}.jobs
    ADD COLUMN timeout_ms integer CHECK (timeout_ms IS NULL OR timeout_ms > 0);
