-- A job's result (JobOutput.SetResult, at most 64 KiB of JSON), written by the acknowledgement of
-- its success and read by its children (ParentResultsAsync). Nullable without a default: added
-- without rewriting the table; large values go to TOAST, off the hot row's page.
ALTER TABLE {schema}.jobs
    ADD COLUMN result jsonb;
