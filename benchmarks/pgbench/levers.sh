#!/usr/bin/env bash
# Issue 19's levers, weighed side by side in one run with no .NET code: pgbench runs the floor (claim.sql:
# a committed claim, then a delete, on a 5-column table) and the library's lease loop (its own acquire,
# committed, then its fenced completion and settle probe in one transaction: the Statements' text, printed by
# the benchmark project's pgbench-script command) as it is and with each lever applied by hand (levers/):
# completion moving the row to an archive, completion deleting it (the bound: no archive), a narrow hot row,
# and a narrow hot row whose completion deletes (batches of 100 over [jobs]; one by one over a tenth of them). Each variant gets a freshly loaded schema and a checkpoint;
# the variants alternate for --rounds rounds and the median is printed, with the WAL each job wrote.
#   bash benchmarks/pgbench/levers.sh "host=... user=... dbname=..." [jobs] [clients] [rounds]
set -euo pipefail
conn=${1:?usage: levers.sh CONNINFO [jobs] [clients] [rounds]}
jobs=${2:-80000}
clients=${3:-1}
rounds=${4:-3}
here=$(cd "$(dirname "$0")" && pwd)
schema=levers_$$
work=$(mktemp -d)
trap 'psql "$conn" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

dotnet build -c Release -v q "$here/../Scheduling.Benchmarks" >&2
dotnet run -c Release --no-build --project "$here/../Scheduling.Benchmarks" -- pgbench-script --schema "$schema" > "$work/library.sql"
# The generated script is one transaction: BEGIN; acquire; complete; settle; COMMIT. The lease loop commits the acquire first.
acquire=$(sed -n 2p "$work/library.sql"); complete=$(sed -n 3p "$work/library.sql"); settle=$(sed -n 4p "$work/library.sql")
lever() { sed "s/SCHEMA\./$schema./g" "$here/levers/$1"; }
sed "s/SCHEMA\./$schema./g" "$here/claim.sql" > "$work/floor"
printf '%s\nBEGIN;\n%s\n%s\nCOMMIT;\n' "$acquire" "$complete" "$settle" > "$work/library"
printf '%s\nBEGIN;\n%s\n%s\nCOMMIT;\n' "$acquire" "$(lever archive.sql)" "$settle" > "$work/archive"
printf '%s\nBEGIN;\n%s\n%s\nCOMMIT;\n' "$acquire" "$(lever delete.sql)" "$settle" > "$work/delete"
printf '%s\nBEGIN;\n%s\n%s\nCOMMIT;\n' "$(lever narrow_claim.sql)" "$(lever narrow_update.sql)" "$settle" > "$work/narrow"
printf '%s\nBEGIN;\n%s\n%s\nCOMMIT;\n' "$(lever narrow_claim.sql)" "$(lever narrow_delete.sql)" "$settle" > "$work/narrow-delete"
variants=(floor library archive delete narrow narrow-delete)

source "$here/schema.sh"

setup() {
    load_schema
    psql "$conn" -q -v ON_ERROR_STOP=1 -c "CREATE TABLE $schema.archive (LIKE $schema.jobs)" -c "ALTER TABLE $schema.archive ADD PRIMARY KEY (id)"
    case $1 in narrow*) lever narrow_setup.sql | psql "$conn" -q -v ON_ERROR_STOP=1 >/dev/null ;; esac
    psql "$conn" -q -v ON_ERROR_STOP=1 -c "VACUUM ANALYZE $schema.claim_jobs, $schema.jobs" -c "CHECKPOINT"
}

wal() { psql "$conn" -tAc "SELECT wal_bytes FROM pg_stat_wal"; }

# One measurement: jobs/s and WAL bytes per job of a variant at a batch size.
measure() {
    local variant=$1 batch=$2 before after tps n
    n=$(( (batch == 1 ? jobs / 10 : jobs) / batch / clients * 9 / 10 ))  # a tenth of the jobs one by one; 90 % of the table drained
    setup "$variant"
    before=$(wal)
    tps=$(pgbench "$conn" -n -M prepared -c "$clients" -j "$clients" -t "$n" -D batch="$batch" -f "$work/$variant" 2>&1 \
        | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    after=$(wal)
    awk -v t="$tps" -v b="$batch" -v w=$((after - before)) -v n=$((n * clients * batch)) 'BEGIN { printf "%.0f %.0f\n", t * b, w / n }'
}

for batch in 100 1; do
    declare -A rates=() walb=()
    for ((r = 1; r <= rounds; r++)); do
        for v in "${variants[@]}"; do
            read -r rate bytes < <(measure "$v" "$batch")
            rates[$v]+="$rate "; walb[$v]+="$bytes "
        done
    done
    median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
    floor=$(median "${rates[floor]}")
    printf '\nbatch %d, %d client(s), median of %d rounds\n' "$batch" "$clients" "$rounds"
    printf '%-14s %10s %8s %12s   %s\n' variant jobs/s "/floor" "WAL B/job" "rounds (jobs/s)"
    for v in "${variants[@]}"; do
        m=$(median "${rates[$v]}")
        printf '%-14s %10d %8.2f %12d   %s\n' "$v" "$m" "$(awk -v a="$m" -v b="$floor" 'BEGIN { print a / b }')" "$(median "${walb[$v]}")" "${rates[$v]}"
    done
    unset rates walb
done
