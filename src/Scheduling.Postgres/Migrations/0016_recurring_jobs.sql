-- Recurring jobs managed at run time (IRecurringJobStore): one row per job, changed by the API and
-- the CLI; each change NOTIFYs the queue's channel with '#recurring' (never a queue name), so every
-- host's recurring scheduler reloads at once.
CREATE TABLE {schema}.recurring_jobs (
    name                 text PRIMARY KEY,
    cron                 text NOT NULL,
    kind                 text NOT NULL,
    payload              jsonb,
    queue                text NOT NULL,
    priority             smallint NOT NULL,
    max_attempts         integer NOT NULL,
    time_zone            text NOT NULL,
    expected_duration_ms bigint NOT NULL,
    misfire              text NOT NULL,
    max_catch_up         integer NOT NULL,
    paused               boolean NOT NULL DEFAULT false,
    updated_at           timestamptz NOT NULL
);
