-- One entry of a job's error history, as stored in jobs.errors. C# twin: JobTransitions.ErrorToJson
-- (and ErrorsFromJson, which reads both). Re-applied by the migrator whenever this file changes.
CREATE OR REPLACE FUNCTION {schema}.job_error(attempt integer, at timestamptz, message text) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT jsonb_build_object('attempt', attempt, 'at', at, 'message', message) $$;
