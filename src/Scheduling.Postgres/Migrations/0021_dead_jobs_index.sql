-- The dead jobs, newest first: what an operator looks for first ("what failed?"), in the CLI's and
-- the dashboard's job lists, which otherwise walk the primary key back through every other job.
-- Partial: only dead rows are in it, so no enqueue, claim or completion writes to it.
CREATE INDEX jobs_dead_idx ON {schema}.jobs (id) WHERE state = 'dead';
