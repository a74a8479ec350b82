#!/usr/bin/env bash
# Issue 7's export benchmark: fills a fresh database with $ROWS prompt-log rows (the rows the
# offline pipeline writes for the fixtures, copied with fresh ids; see examples/seed_audit.rs),
# then exports them as JSONL and CSV with the CLI and over HTTP, and prints wall time and peak
# RSS of the exporting process. SQLite, then PostgreSQL when 127.0.0.1:5432 answers.
# Target: 100,000 rows in under 10 s with a peak RSS under 100 MiB.
#
#   bench/audit-export.sh            # ROWS=100000
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${ROWS:-100000}"
PORT="${PORT:-18089}"
cargo build --release --quiet --bin exbrief --example seed_audit
BIN="$PWD/target/release/exbrief"
SEED="$PWD/target/release/examples/seed_audit"
work="$(mktemp -d)"
pg_db="exbrief_bench_$$"
server=""
cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
  if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
EXBRIEF_VAULT__KEY="$(head -c 32 /dev/urandom | base64)"
export EXBRIEF_VAULT__KEY EXBRIEF_LOG=warn

measure_cli() { # url label format
  /usr/bin/time -f "%e %M" -o "$work/time" \
    "$BIN" --database-url "$1" audit export --format "$3" "$work/out.$3"
  read -r secs kib < "$work/time"
  printf '%-10s %-4s CLI   %7d lines %6d MiB  %6.2f s  peak RSS %4d MiB\n' "$2" "$3" \
    "$(wc -l < "$work/out.$3")" "$(( $(stat -c %s "$work/out.$3") / 1048576 ))" "$secs" "$(( kib / 1024 ))"
}

measure_http() { # url label format key
  "$BIN" --database-url "$1" serve --listen "127.0.0.1:$PORT" >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local base
  base=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
  local secs
  secs=$(curl -fsS -H "Authorization: Bearer $4" -o "$work/http.$3" -w '%{time_total}' \
    "http://127.0.0.1:$PORT/v1/audit/export?format=$3") || { echo "HTTP export failed" >&2; exit 1; }
  local kib
  kib=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  printf '%-10s %-4s HTTP  %7d lines %6d MiB  %6.2f s  peak RSS %4d MiB (%d MiB before the export)\n' "$2" "$3" \
    "$(wc -l < "$work/http.$3")" "$(( $(stat -c %s "$work/http.$3") / 1048576 ))" "$secs" \
    "$(( kib / 1024 ))" "$(( base / 1024 ))"
}

run() { # url label
  "$SEED" "$1" "$ROWS"
  for f in jsonl csv; do measure_cli "$1" "$2" "$f"; done
  # The export needs a key with the audit scope.
  local key
  key=$("$BIN" --database-url "$1" keys create --name bench-audit --scopes audit | awk '/^secret:/ {print $2}')
  for f in jsonl csv; do measure_http "$1" "$2" "$f" "$key"; done
  "$BIN" --database-url "$1" audit verify >/dev/null && echo "$2: chain verifies"
}

run "sqlite://$work/bench.db" SQLite
if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $pg_db" >/dev/null
  run "postgres://postgres@127.0.0.1:5432/$pg_db" PostgreSQL
else
  echo "PostgreSQL not answering on 127.0.0.1:5432: skipped"
fi
