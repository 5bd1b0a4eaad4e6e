-- Batch counting and settling: the current bodies (re-applied by the migrator whenever this file
-- changes). C# twin: InMemoryJobQueue.CountInBatch and SettleBatchIfDone, with the rules of
-- BatchRules (OutcomeOf, SuccessCallbackRuns, AsMember; SuccessCallbackCancelled is the message below).

-- Moves one member's count: out of a terminal state it is pending again, into one it counts for its
-- outcome (succeeded; cancelled; dead or expired: failed). A callback is not a member. member is null
-- for a nested batch that settled. Settles the batch when no member is pending.
CREATE OR REPLACE FUNCTION {schema}.count_in_batch(batch bigint, member bigint, from_state text, to_state text, at timestamptz, channel text) RETURNS void
    LANGUAGE plpgsql AS $fn$
DECLARE
    done text[] := ARRAY['succeeded', 'cancelled', 'dead', 'expired'];
    d_pending integer := 0;
    d_succeeded integer := 0;
    d_failed integer := 0;
    d_cancelled integer := 0;
    left_pending integer;
BEGIN
    IF from_state = ANY (done) THEN
        d_pending := d_pending + 1;
        IF from_state = 'succeeded' THEN d_succeeded := d_succeeded - 1;
        ELSIF from_state = 'cancelled' THEN d_cancelled := d_cancelled - 1;
        ELSE d_failed := d_failed - 1; END IF;
    END IF;
    IF to_state = ANY (done) THEN
        d_pending := d_pending - 1;
        IF to_state = 'succeeded' THEN d_succeeded := d_succeeded + 1;
        ELSIF to_state = 'cancelled' THEN d_cancelled := d_cancelled + 1;
        ELSE d_failed := d_failed + 1; END IF;
    END IF;
    UPDATE {schema}.batches
    SET pending = pending + d_pending, succeeded = succeeded + d_succeeded, failed = failed + d_failed, cancelled = cancelled + d_cancelled
    WHERE id = batch AND (member IS NULL OR member NOT IN (coalesce(on_success_job_id, 0), coalesce(on_complete_job_id, 0)))
    RETURNING pending INTO left_pending;
    IF left_pending <= 0 THEN
        PERFORM {schema}.settle_batch(batch, at, channel);
    END IF;
END
$fn$;

-- New members, in their initial states (born cancelled counts as finished), then settles when none is pending.
CREATE OR REPLACE FUNCTION {schema}.add_batch_members(batch bigint, members bigint[], at timestamptz, channel text) RETURNS void
    LANGUAGE plpgsql AS $fn$
DECLARE
    left_pending integer;
BEGIN
    UPDATE {schema}.batches b
    SET total = b.total + n.total, pending = b.pending + n.pending, succeeded = b.succeeded + n.succeeded,
        failed = b.failed + n.failed, cancelled = b.cancelled + n.cancelled
    FROM (SELECT count(*)::integer AS total,
                 count(*) FILTER (WHERE state NOT IN ('succeeded', 'cancelled', 'dead', 'expired'))::integer AS pending,
                 count(*) FILTER (WHERE state = 'succeeded')::integer AS succeeded,
                 count(*) FILTER (WHERE state IN ('dead', 'expired'))::integer AS failed,
                 count(*) FILTER (WHERE state = 'cancelled')::integer AS cancelled
          FROM {schema}.jobs WHERE id = ANY (members)) n
    WHERE b.id = batch
    RETURNING b.pending INTO left_pending;
    IF left_pending <= 0 THEN
        PERFORM {schema}.settle_batch(batch, at, channel);
    END IF;
END
$fn$;

-- Settles a batch once: its on-complete callback becomes due; its on-success callback too when every
-- member succeeded, else it is cancelled (and its own dependents settled); then the batch counts as
-- one finished member of its parent batch.
CREATE OR REPLACE FUNCTION {schema}.settle_batch(batch bigint, at timestamptz, channel text) RETURNS void
    LANGUAGE plpgsql AS $fn$
DECLARE
    b {schema}.batches%ROWTYPE;
    q text;
BEGIN
    UPDATE {schema}.batches SET settled_at = at WHERE id = batch AND settled_at IS NULL RETURNING * INTO b;
    IF NOT FOUND THEN RETURN; END IF;
    FOR q IN
        UPDATE {schema}.jobs SET state = 'available', parents_pending = 0, run_at = greatest(run_at, at)
        WHERE id IN (b.on_complete_job_id, CASE WHEN b.failed = 0 AND b.cancelled = 0 THEN b.on_success_job_id END) AND state = 'waiting'
        RETURNING queue
    LOOP
        PERFORM pg_notify(channel, q);
    END LOOP;
    IF b.on_success_job_id IS NOT NULL AND (b.failed > 0 OR b.cancelled > 0) THEN
        UPDATE {schema}.jobs SET state = 'cancelled', parents_pending = 0, finalized_at = at,
            errors = errors || jsonb_build_array({schema}.job_error(0, at,
                format('Batch %s settled with %s failed and %s cancelled of %s members; its on-success callback does not run.', b.id, b.failed, b.cancelled, b.total)))
        WHERE id = b.on_success_job_id AND state = 'waiting';
        IF FOUND THEN
            PERFORM {schema}.settle_dependents(ARRAY[b.on_success_job_id], at, channel);
        END IF;
    END IF;
    IF b.parent_batch_id IS NOT NULL THEN
        PERFORM {schema}.count_in_batch(b.parent_batch_id, NULL, 'waiting',
            CASE WHEN b.failed > 0 THEN 'dead' WHEN b.cancelled > 0 THEN 'cancelled' ELSE 'succeeded' END, at, channel);
    END IF;
END
$fn$;

-- The trigger on jobs (migration 0015): a member moved into or out of a terminal state.
CREATE OR REPLACE FUNCTION {schema}.count_batch_member() RETURNS trigger
    LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM {schema}.count_in_batch(NEW.batch_id, NEW.id, OLD.state, NEW.state, coalesce(NEW.finalized_at, now()), TG_TABLE_SCHEMA || '_jobs');
    RETURN NULL;
END
$fn$;
