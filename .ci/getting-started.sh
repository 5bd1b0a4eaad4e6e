#!/usr/bin/env bash
# Builds and runs docs/getting-started.md as written: its first bash block (the new console app and
# its packages, taken from the packed artifacts/packages for Scheduling.*), its first json block
# (appsettings.json) and its first csharp block (Program.cs), against a throwaway PostgreSQL with password authentication; passes
# when the handler's log line appears. Run from the repository root after `dotnet pack -o artifacts/packages`.
set -euo pipefail
repo=$(pwd)
doc="$repo/docs/getting-started.md"
feed="$repo/artifacts/packages"
work=$(mktemp -d)
chmod 755 "$work"
block() { awk -v lang="$1" '$0 == "```" lang { inside = 1; next } inside && $0 == "```" { exit } inside { print }' "$doc"; }

source "$repo/.ci/throwaway-postgres.sh" "$work/pg"
cleanup() { pg_stop; rm -rf "$work"; }
trap cleanup EXIT

cd "$work"
source "$repo/.ci/packed-feed.sh" "$feed"
# The doc's commands, as written (the comments are shell comments).
block bash > steps.sh
bash -e steps.sh >/dev/null
app=$(sed -n 's/^dotnet new console -n \([A-Za-z0-9_]*\).*/\1/p' steps.sh)
cd "$app"
block json > appsettings.json
block csharp > Program.cs
sed -i "s|Host=localhost;Database=app;Username=app;Password=secret|$pg_connection|" appsettings.json
dotnet build -v quiet -nologo >/dev/null
dotnet run --no-build > run.log 2>&1 &
pid=$!
for _ in $(seq 1 120); do
  if grep -q "Sending to ada@example.com (attempt 1)" run.log; then kill "$pid"; wait "$pid" 2>/dev/null || true; echo "ok: the getting-started app, built from the docs' text, processed its job"; exit 0; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 1
done
kill "$pid" 2>/dev/null || true
echo "the getting-started app did not process its job; its output:"; cat run.log
exit 1
