-- The claim of a limited queue (queues.limited): called by the acquisition statement for a queue
-- that is not paused and has limits, it picks and locks the jobs to lease and spends the buckets;
-- the caller leases exactly the ids returned. C# twin: InMemoryJobQueue.ClaimLimited, with the
-- dealing of LimitedClaim.Deal. Re-applied by the migrator whenever this file changes.
--
-- The queue's bucket bounds the batch (one claimer at a time spends it: the queue row is locked).
-- Without per-key controls the due jobs are taken in queue order. With them, the least recently
-- visited keys are locked (SKIP LOCKED: a key another claimer holds is left to it), each is
-- allowed what its cap (counted from its running jobs, by a statement that starts after the keys'
-- locks are held, so it sees every lease committed before) and its bucket leave, and the batch is
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
    tats timestamptz[] := '{}';
    running integer[];
    given integer[];
    asks integer[];
    open boolean[];
    visited boolean[];
    got_slots bigint[];
    counts integer[];
    slot bigint;
    unkeyed bigint[];
    got bigint[];
    visit integer := greatest(2 * max_jobs, 32); -- LimitedClaim.KeysVisited
    share integer;
    n integer;
    open_count integer;
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

        -- The keys to visit, locked, in round-robin order (slot 1 is the unkeyed jobs, when there are any).
        SELECT coalesce(array_agg(l.partition_key ORDER BY l.ord), '{}'), coalesce(array_agg(l.rate_tat ORDER BY l.ord), '{}')
        INTO keys, tats
        FROM (SELECT k.partition_key, k.rate_tat, row_number() OVER () AS ord FROM (
                  SELECT partition_key, rate_tat FROM {schema}.queue_keys
                  WHERE queue = q
                  ORDER BY visited_at NULLS FIRST, partition_key
                  LIMIT visit
                  FOR UPDATE SKIP LOCKED) AS k) AS l;
        IF cardinality(unkeyed) > 0 THEN
            keys := array_prepend(NULL::text, keys);
            tats := array_prepend(NULL::timestamptz, tats);
        END IF;
        -- Their running jobs, counted by a statement that starts after the locks are held.
        IF lim.key_concurrency IS NOT NULL THEN
            running := ARRAY(
                SELECT coalesce(r.n, 0) FROM unnest(keys) WITH ORDINALITY AS k(partition_key, ord)
                LEFT JOIN LATERAL (SELECT count(*)::integer AS n FROM {schema}.jobs j
                                   WHERE j.queue = q AND j.partition_key = k.partition_key AND j.state = 'running') AS r ON true
                ORDER BY k.ord);
        END IF;
        allowed := array_fill(want, ARRAY[cardinality(keys)]);
        FOR i IN 1 .. cardinality(keys) LOOP
            CONTINUE WHEN keys[i] IS NULL;
            IF lim.key_concurrency IS NOT NULL THEN allowed[i] := least(allowed[i], lim.key_concurrency - running[i]); END IF;
            IF lim.key_rate_count IS NOT NULL THEN
                allowed[i] := least(allowed[i], {schema}.rate_allowance(tats[i], at, lim.key_rate_count, lim.key_rate_period_us));
            END IF;
            allowed[i] := greatest(allowed[i], 0);
        END LOOP;

        -- LimitedClaim.Deal: passes of equal shares, each taken in one statement.
        given := array_fill(0, ARRAY[cardinality(keys)]);
        open := ARRAY(SELECT a > 0 FROM unnest(allowed) WITH ORDINALITY AS t(a, i) ORDER BY i);
        visited := ARRAY(SELECT a <= 0 FROM unnest(allowed) WITH ORDINALITY AS t(a, i) ORDER BY i);
        LOOP
            open_count := (SELECT count(*) FROM unnest(open) AS o WHERE o);
            EXIT WHEN want <= 0 OR open_count = 0;
            share := greatest(1, want / open_count);
            asks := array_fill(0, ARRAY[cardinality(keys)]);
            n := want;
            -- The least served first: a slot asked nothing yet goes before one asked again.
            FOR slot IN SELECT t.i FROM unnest(given) WITH ORDINALITY AS t(g, i) ORDER BY t.g, t.i LOOP
                CONTINUE WHEN NOT open[slot];
                asks[slot] := least(share, allowed[slot] - given[slot], n);
                n := n - asks[slot];
            END LOOP;

            SELECT coalesce(array_agg(t.id), '{}'), coalesce(array_agg(t.slot), '{}') INTO got, got_slots FROM (
                SELECT u.id, 1 AS slot FROM (
                    SELECT id FROM {schema}.jobs
                    WHERE keys[1] IS NULL AND asks[1] > 0 AND id = ANY (unkeyed[given[1] + 1 : given[1] + asks[1]]) AND state = 'available'
                    ORDER BY sort_rank DESC, sort_at, id
                    FOR UPDATE SKIP LOCKED) AS u
                UNION ALL
                SELECT j.id, k.slot FROM unnest(keys, asks) WITH ORDINALITY AS k(partition_key, ask, slot)
                CROSS JOIN LATERAL (
                    SELECT id FROM {schema}.jobs
                    WHERE state = 'available' AND queue = q AND partition_key = k.partition_key AND run_at <= at
                      AND (latest_start_at IS NULL OR latest_start_at >= at) AND id <> ALL (picked)
                    ORDER BY sort_rank DESC, sort_at, id
                    LIMIT k.ask
                    FOR UPDATE SKIP LOCKED) AS j
                WHERE k.partition_key IS NOT NULL AND k.ask > 0) AS t;
            picked := picked || got;
            counts := array_fill(0, ARRAY[cardinality(keys)]);
            FOREACH slot IN ARRAY got_slots LOOP counts[slot] := counts[slot] + 1; END LOOP;
            FOR i IN 1 .. cardinality(keys) LOOP
                CONTINUE WHEN asks[i] = 0;
                visited[i] := true;
                given[i] := given[i] + counts[i];
                want := want - counts[i];
                IF counts[i] < asks[i] OR given[i] >= allowed[i] THEN open[i] := false; END IF;
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
