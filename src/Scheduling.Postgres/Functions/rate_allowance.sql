-- A rate limit's token bucket as one timestamp, the theoretical arrival time (tat) of the next
-- start (the generic cell rate algorithm): with period P and count C, each start moves tat on by
-- P / C (rounded up to a whole microsecond, so rounding never allows more), and at `at`
-- floor((P - max(tat - at, 0)) * C / P) starts are allowed: C with a full bucket, then one per P / C.
-- Exact integer arithmetic in microseconds. C# twin: RateAllowance. Re-applied by the migrator
-- whenever this file changes.
CREATE OR REPLACE FUNCTION {schema}.rate_allowance(tat timestamptz, at timestamptz, count integer, period_us bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE WHEN a.ahead_us >= period_us THEN 0
                ELSE least(count, (period_us - a.ahead_us) * count / period_us)::integer END
    FROM (SELECT greatest((extract(epoch FROM coalesce(tat, at) - at) * 1000000)::bigint, 0) AS ahead_us) AS a
    $$;

-- The bucket after `starts` starts at `at`.
CREATE OR REPLACE FUNCTION {schema}.rate_spend(tat timestamptz, at timestamptz, count integer, period_us bigint, starts integer) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT greatest(coalesce(tat, at), at) + ((starts * period_us + count - 1) / count) * interval '1 microsecond' $$;
