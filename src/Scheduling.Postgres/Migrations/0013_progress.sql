-- What a running job last reported (JobOutput.ReportProgress / SetMetadata), written by its worker's
-- heartbeat under the lease: no round trip of its own. Bounded by the writer (a 200-character
-- message, 4 KiB of metadata). Nullable without defaults: added without rewriting the table.
ALTER TABLE {schema}.jobs
    ADD COLUMN progress          float8,
    ADD COLUMN progress_message  text,
    ADD COLUMN progress_metadata jsonb,
    ADD COLUMN progress_at       timestamptz;
