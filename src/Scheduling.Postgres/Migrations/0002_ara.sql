-- Adaptive resource allocation: what each job runs and was given, and a narrow run history.
-- A clean break: history starts empty, keyed by the hash of the final command only.
ALTER TABLE {schema}.jobs
    ADD COLUMN command                 text,
    ADD COLUMN command_hash            text,      -- md5(command), never of the description; NULL without a command
    ADD COLUMN normalized_command_hash text,      -- the cold-start fallback key (opt-in)
    ADD COLUMN description             text,      -- display only
    ADD COLUMN definition_id           text,
    ADD COLUMN baseline_memory_mb      integer,
    ADD COLUMN memory_mb               integer,
    ADD COLUMN cpu_millicores          integer,
    ADD COLUMN gpus                    integer,
    ADD COLUMN ara_source              text,      -- baseline | command_history | normalized_command_history | definition_history
    ADD COLUMN ara_skip_reason         text,      -- disabled | gpu | null_command_hash
    ADD COLUMN ara_samples             integer,
    ADD COLUMN ara_clamped             boolean,
    ADD COLUMN ara_ceiling_hit         boolean,
    ADD COLUMN ara_statistic           text;

CREATE TABLE {schema}.run_history (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id                  bigint,
    definition_id           text        NOT NULL,
    command_hash            text        NOT NULL,
    normalized_command_hash text,
    allocated_memory_mb     integer     NOT NULL,
    peak_memory_mb          integer     NOT NULL,
    peak_cpu_millicores     integer,
    duration_ms             bigint      NOT NULL,
    exit_code               integer,
    oom_killed              boolean     NOT NULL,
    finished_at             timestamptz NOT NULL
);

-- One index per level of the estimator's fallback chain, each ending in the recency order it reads.
CREATE INDEX run_history_command_idx ON {schema}.run_history (definition_id, command_hash, finished_at DESC);
CREATE INDEX run_history_normalized_idx ON {schema}.run_history (definition_id, normalized_command_hash, finished_at DESC)
    WHERE normalized_command_hash IS NOT NULL;
CREATE INDEX run_history_definition_idx ON {schema}.run_history (definition_id, finished_at DESC);

-- The impact report reads jobs by day.
CREATE INDEX jobs_created_definition_idx ON {schema}.jobs (created_at) WHERE definition_id IS NOT NULL;
