-- How many times a job was snoozed with its attempt given back (bounded by JobTransitions.MaxSnoozes).
-- A constant default: added without rewriting the table; older code never snoozes.
ALTER TABLE {schema}.jobs
    ADD COLUMN snoozes smallint NOT NULL DEFAULT 0;
