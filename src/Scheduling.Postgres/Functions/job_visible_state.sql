-- The state a reader sees: an available job that is not due yet reads as 'scheduled' (never stored).
-- C# twin: JobTransitions.Visible. Used where SQL must filter or count by it (statistics, listings);
-- statements that return jobs return the stored state and let C# compute it. Re-applied by the
-- migrator whenever this file changes.
CREATE OR REPLACE FUNCTION {schema}.job_visible_state(state text, run_at timestamptz, now timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN state = 'available' AND run_at > now THEN 'scheduled' ELSE state END $$;
