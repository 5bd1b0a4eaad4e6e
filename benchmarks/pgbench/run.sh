#!/usr/bin/env bash
# The database's share of the drain ratios, with no .NET code at all: pgbench runs, on the same
# server and table sizes, the floor (floor.sql), the smallest loop that commits a claim before the
# job runs (claim.sql), and the library's own statements (the Statements' text, printed by the benchmark
# project's pgbench-script command).
#   bash benchmarks/pgbench/run.sh "host=localhost port=5432 user=postgres dbname=postgres" [jobs] [clients]
set -euo pipefail
conn=${1:?usage: run.sh CONNINFO [jobs] [clients]}
jobs=${2:-400000}
clients=${3:-8}
here=$(cd "$(dirname "$0")" && pwd)
schema=pgbench_$$
work=$(mktemp -d)
trap 'psql "$conn" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

source "$here/schema.sh"

setup() {
    load_schema
    psql "$conn" -q -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE $schema.raw_jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, queue text NOT NULL DEFAULT 'default', payload jsonb, run_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON $schema.raw_jobs (queue, run_at, id);
INSERT INTO $schema.raw_jobs (payload) SELECT NULL FROM generate_series(1, $jobs);
VACUUM ANALYZE $schema.raw_jobs, $schema.claim_jobs, $schema.jobs;
SQL
}

# jobs/s of one script and batch size: every client runs until its share of the jobs is done.
rate() {
    local script=$1 batch=$2
    local tps
    [ -f "$work/$script" ] || sed "s/SCHEMA\./$schema./g" "$here/$script" > "$work/$script"
    tps=$(pgbench "$conn" -n -M prepared -c "$clients" -j 2 -t $((jobs / batch / clients)) -D batch="$batch" -f "$work/$script" 2>&1 \
        | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    awk -v t="$tps" -v b="$batch" 'BEGIN { printf "%.0f", t * b }'
}

dotnet build -c Release -v q "$here/../Scheduling.Benchmarks" >&2
dotnet run -c Release --no-build --project "$here/../Scheduling.Benchmarks" -- pgbench-script --schema "$schema" > "$work/library.sql"

for batch in 100 1; do
    setup
    floor=$(rate floor.sql "$batch")
    claim=$(rate claim.sql "$batch")
    library=$(rate library.sql "$batch")
    awk -v b="$batch" -v f="$floor" -v c="$claim" -v l="$library" -v n="$clients" 'BEGIN {
        printf "batch %3d  clients %d  floor %7d  claim-then-delete %7d (%.2f)  library statements %7d (%.2f of floor, %.2f of claim-then-delete) jobs/s\n",
            b, n, f, c, c / f, l, l / f, l / c }'
done
