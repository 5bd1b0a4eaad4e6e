-- The error history as stored in jobs.errors: one entry {"attempt", "at", "message"}, and appending
-- one while keeping at most `keep` entries. C# twin: JobTransitions.ErrorToJson (and ErrorsFromJson,
-- which reads both). Re-applied by the migrator whenever this file changes.
CREATE OR REPLACE FUNCTION {schema}.job_error(attempt integer, at timestamptz, message text) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT jsonb_build_object('attempt', attempt, 'at', at, 'message', message) $$;

-- PL/pgSQL, not SQL, on purpose: an inlined subquery would be planned into every statement that
-- names it, and the acknowledgement statement names it for the rare failure only.
CREATE OR REPLACE FUNCTION {schema}.append_job_error(errors jsonb, attempt integer, at timestamptz, message text, keep integer) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(e.value ORDER BY e.ordinality), '[]'::jsonb)
            FROM jsonb_array_elements(errors) WITH ORDINALITY AS e
            WHERE e.ordinality > jsonb_array_length(errors) - (keep - 1))
        || jsonb_build_array({schema}.job_error(attempt, at, message));
END
$fn$;
