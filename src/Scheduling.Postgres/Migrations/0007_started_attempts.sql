-- An attempt is charged when its host reports the job running (its first heartbeat), not when it
-- is leased: a job leased but never started (fetched ahead and waiting for a slot when its host
-- died) is rescued with its attempt given back. unstarted_rescues bounds that, so a job that kills
-- its host before the first heartbeat is charged from its third such rescue on.
-- Both columns have constant defaults: added without rewriting the table. Running jobs of an older
-- library count as started, as they always did.
ALTER TABLE {schema}.jobs
    ADD COLUMN started boolean NOT NULL DEFAULT true,
    ADD COLUMN unstarted_rescues smallint NOT NULL DEFAULT 0;
