-- The claim of a limited queue (queues.limited): called by the acquisition statement for a queue
-- that is not paused and has limits, it picks and locks the jobs to lease and spends the buckets;
-- the caller leases exactly the ids returned. C# twin: InMemoryJobQueue.ClaimLimited, with the
-- dealing of LimitedClaim.Deal. Re-applied by the migrator whenever this file changes.
--
-- The queue's bucket bounds the batch (one claimer at a time spends it: the queue row is locked).
-- Without per-key controls the due jobs are taken in queue order. With them, the least recently
-- visited keys are locked (SKIP LOCKED: a key another claimer holds is left to it), each is
-- allowed what its cap (counted from its running jobs, by a statement that starts after the key's
-- lock is held, so it sees every lease committed before) and its bucket leave, and the batch is
-- dealt in equal shares pass after pass (LimitedClaim.Deal). Unkeyed jobs among the first due ones
-- are one more key. Every visited key (asked for jobs, or allowed none) moves to the back of the
-- round, a key the batch filled up before keeps its place; a key with no active job left is forgotten.
CREATE OR REPLACE FUNCTION {schema}.claim_limited(q text, max_jobs integer, at timestamptz) RETURNS bigint[]
    LANGUAGE plpgsql AS $fn$
DECLARE
    lim record;
    want integer := max_jobs;
    picked bigint[] := '{}';
    keys text[] := '{}';
    allowed integer[] := '{}';
    given integer[];
    open boolean[];
    visited boolean[];
    unkeyed bigint[];
    got bigint[];
    visit integer := greatest(2 * max_jobs, 32); -- LimitedClaim.KeysVisited
    share integer;
    n integer;
    open_count integer;
    r record;
BEGIN
    IF max_jobs <= 0 THEN RETURN picked; END IF;
    SELECT * INTO lim FROM {schema}.queues WHERE queue = q AND paused_at IS NULL AND limited;
    IF NOT FOUND THEN RETURN picked; END IF;
    IF lim.rate_count IS NOT NULL THEN
        SELECT * INTO lim FROM {schema}.queues WHERE queue = q FOR UPDATE;
        want := least(want, {schema}.rate_allowance(lim.rate_tat, at, lim.rate_count, lim.rate_period_us));
        IF want <= 0 THEN RETURN picked; END IF;
    END IF;

    IF NOT (lim.key_concurrency IS NOT NULL OR lim.key_rate_count IS NOT NULL OR lim.fair_keys) THEN
        picked := ARRAY(
            SELECT id FROM {schema}.jobs
            WHERE state = 'available' AND queue = q AND run_at <= at AND (latest_start_at IS NULL OR latest_start_at >= at)
            ORDER BY sort_rank DESC, sort_at, id
            LIMIT want
            FOR UPDATE SKIP LOCKED);
    ELSE
        unkeyed := ARRAY(
            SELECT f.id FROM (
                SELECT id, partition_key, sort_rank, sort_at FROM {schema}.jobs
                WHERE state = 'available' AND queue = q AND run_at <= at AND (latest_start_at IS NULL OR latest_start_at >= at)
                ORDER BY sort_rank DESC, sort_at, id
                LIMIT visit) AS f
            WHERE f.partition_key IS NULL
            ORDER BY f.sort_rank DESC, f.sort_at, f.id);
        IF cardinality(unkeyed) > 0 THEN
            keys := keys || NULL::text;
            allowed := allowed || want;
        END IF;

        FOR r IN
            SELECT k.partition_key, k.rate_tat FROM {schema}.queue_keys k
            WHERE k.queue = q
            ORDER BY k.visited_at NULLS FIRST, k.partition_key
            LIMIT visit
            FOR UPDATE SKIP LOCKED
        LOOP
            n := want;
            IF lim.key_concurrency IS NOT NULL THEN
                n := least(n, lim.key_concurrency - (
                    SELECT count(*)::integer FROM {schema}.jobs j
                    WHERE j.queue = q AND j.partition_key = r.partition_key AND j.state = 'running'));
            END IF;
            IF lim.key_rate_count IS NOT NULL THEN
                n := least(n, {schema}.rate_allowance(r.rate_tat, at, lim.key_rate_count, lim.key_rate_period_us));
            END IF;
            keys := keys || r.partition_key;
            allowed := allowed || greatest(n, 0);
        END LOOP;

        given := array_fill(0, ARRAY[cardinality(keys)]);
        open := ARRAY(SELECT a > 0 FROM unnest(allowed) WITH ORDINALITY AS t(a, i) ORDER BY i);
        visited := ARRAY(SELECT a <= 0 FROM unnest(allowed) WITH ORDINALITY AS t(a, i) ORDER BY i);
        LOOP
            open_count := (SELECT count(*) FROM unnest(open) AS o WHERE o);
            EXIT WHEN want <= 0 OR open_count = 0;
            share := greatest(1, want / open_count);
            FOR i IN 1 .. cardinality(keys) LOOP
                EXIT WHEN want <= 0;
                CONTINUE WHEN NOT open[i];
                n := least(share, allowed[i] - given[i], want);
                IF keys[i] IS NULL THEN
                    got := ARRAY(
                        SELECT id FROM {schema}.jobs
                        WHERE id = ANY (unkeyed[given[i] + 1 : given[i] + n]) AND state = 'available'
                        ORDER BY sort_rank DESC, sort_at, id
                        FOR UPDATE SKIP LOCKED);
                ELSE
                    got := ARRAY(
                        SELECT id FROM {schema}.jobs
                        WHERE state = 'available' AND queue = q AND partition_key = keys[i] AND run_at <= at
                          AND (latest_start_at IS NULL OR latest_start_at >= at) AND id <> ALL (picked)
                        ORDER BY sort_rank DESC, sort_at, id
                        LIMIT n
                        FOR UPDATE SKIP LOCKED);
                END IF;
                visited[i] := true;
                given[i] := given[i] + cardinality(got);
                want := want - cardinality(got);
                picked := picked || got;
                IF cardinality(got) < n OR given[i] >= allowed[i] THEN open[i] := false; END IF;
            END LOOP;
        END LOOP;

        UPDATE {schema}.queue_keys k
        SET visited_at = at,
            rate_tat = CASE WHEN lim.key_rate_count IS NOT NULL AND v.n > 0
                            THEN {schema}.rate_spend(k.rate_tat, at, lim.key_rate_count, lim.key_rate_period_us, v.n)
                            ELSE k.rate_tat END
        FROM unnest(keys, given, visited) AS v(partition_key, n, visited)
        WHERE k.queue = q AND k.partition_key = v.partition_key AND v.visited;

        DELETE FROM {schema}.queue_keys k
        USING unnest(keys, given, visited) AS v(partition_key, n, visited)
        WHERE k.queue = q AND k.partition_key = v.partition_key AND v.visited AND v.n = 0
          AND NOT EXISTS (SELECT 1 FROM {schema}.jobs j
                          WHERE j.queue = q AND j.partition_key = k.partition_key AND j.state IN ('waiting', 'available', 'running'));
    END IF;

    IF lim.rate_count IS NOT NULL AND cardinality(picked) > 0 THEN
        UPDATE {schema}.queues SET rate_tat = {schema}.rate_spend(lim.rate_tat, at, lim.rate_count, lim.rate_period_us, cardinality(picked))
        WHERE queue = q;
    END IF;
    RETURN picked;
END
$fn$;
