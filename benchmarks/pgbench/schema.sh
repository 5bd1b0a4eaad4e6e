# Sourced by run.sh and levers.sh: the library's schema (its migrations and functions) loaded under
# $schema with $jobs due no-op jobs, beside claim_jobs, the 5-column table of the claim-then-delete
# floor (claim.sql) with as many. Needs conn, schema and jobs set.
pgbench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

load_schema() {
    psql "$conn" -q -v ON_ERROR_STOP=1 -c "DROP SCHEMA IF EXISTS $schema CASCADE" -c "CREATE SCHEMA $schema" 2>/dev/null
    for f in "$pgbench_dir"/../../src/Scheduling.Postgres/Migrations/0*.sql "$pgbench_dir"/../../src/Scheduling.Postgres/Functions/*.sql; do
        sed "s/{schema}/$schema/g" "$f"
    done | psql "$conn" -q -v ON_ERROR_STOP=1 >/dev/null
    psql "$conn" -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE TABLE $schema.claim_jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, queue text NOT NULL DEFAULT 'default', state text NOT NULL DEFAULT 'available', run_at timestamptz NOT NULL DEFAULT now(), lease_expires_at timestamptz);
CREATE INDEX ON $schema.claim_jobs (queue, run_at, id) WHERE state = 'available';
INSERT INTO $schema.claim_jobs (state) SELECT 'available' FROM generate_series(1, $jobs);
INSERT INTO $schema.jobs (queue, kind, run_at, max_attempts, created_at) SELECT 'default', 'noop', now(), 3, now() FROM generate_series(1, $jobs);
SQL
}
