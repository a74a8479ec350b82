#!/usr/bin/env bash
# Issue 9's load benchmark: exbrief (release) against a fast fake OpenAI-compatible model, driven
# open-loop by examples/loadbench.rs, compared in the same sitting with the same model requests
# sent straight to the fake. Prints throughput, p50/p90/p99, errors, exbrief's CPU and peak RSS.
# Every process listens on 127.0.0.1 and is stopped by PID at the end.
#
#   bench/load.sh     # RATE=500 SECONDS_PER_RUN=10 BURST=2000 MAX_CONCURRENT=8192 (MAX_IN_PROGRESS=n); SQLite, then PostgreSQL
#   BACKENDS=sqlite LATENCIES=0 EXBRIEF_BIN=/tmp/exbrief-old bench/load.sh   # a subset, another build
set -euo pipefail
ulimit -n "$(ulimit -Hn)"
cd "$(dirname "$0")/.."
RATE="${RATE:-500}"
SECS="${SECONDS_PER_RUN:-10}"
BURST="${BURST:-2000}"
EX_PORT=18090
FAKE_PORT=18091
# EXBRIEF_BIN: an exbrief binary built elsewhere (e.g. from another commit, to compare two
# builds in one sitting); by default the checkout's own release build.
if [[ -n "${EXBRIEF_BIN:-}" ]]; then
  cargo build --release --quiet --example loadbench
  BIN="$EXBRIEF_BIN"
else
  cargo build --release --quiet --bin exbrief --example loadbench
  BIN="$PWD/target/release/exbrief"
fi
LB="$PWD/target/release/examples/loadbench"
work="$(mktemp -d)"
pg_db="exbrief_load_$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
  if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
wait_port() { for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_mib() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$1/status"; }

fake_pid=""
start_fake() { # latency-ms
  [[ -n "$fake_pid" ]] && { kill "$fake_pid"; wait "$fake_pid" 2>/dev/null || true; }
  "$LB" fake --port "$FAKE_PORT" --latency-ms "$1" & fake_pid=$!; pids+=("$fake_pid")
  wait_port "$FAKE_PORT"
}

export EXBRIEF_VAULT__KEY="$(head -c 32 /dev/urandom | base64)"
export EXBRIEF_LOG=warn
export EXBRIEF_LLM__BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" EXBRIEF_LLM__MODEL=fake-model EXBRIEF_LLM__API_KEY=sk-bench
export EXBRIEF_LLM__MAX_CONCURRENT="${MAX_CONCURRENT:-8192}" EXBRIEF_LLM__TIMEOUT_SECS=60
# MAX_IN_PROGRESS: limits.max_summaries_in_progress (default 256; the rest of a burst waits
# unread). Unset, the binary's default applies (and builds older than the setting still start).
if [[ -n "${MAX_IN_PROGRESS:-}" ]]; then export EXBRIEF_LIMITS__MAX_SUMMARIES_IN_PROGRESS="$MAX_IN_PROGRESS"; fi
export EXBRIEF_LIMITS__REQUESTS_PER_MINUTE=10000000 EXBRIEF_LIMITS__BURST=1000000
export EXBRIEF_DATABASE__MAX_CONNECTIONS="${DB_CONNECTIONS:-16}"

phase() { # label exbrief-pid command...
  local label=$1 pid=$2; shift 2
  local t0 c0 out
  t0=$(date +%s.%N); c0=$(cpu_ticks "$pid")
  out=$("$@")
  local t1 c1
  t1=$(date +%s.%N); c1=$(cpu_ticks "$pid")
  local cpu
  cpu=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b - a) / hz / (e - s)}')
  echo "$label $out {\"exbrief_cpu_cores\": $cpu, \"exbrief_peak_rss_mib\": $(hwm_mib "$pid")}"
}

run_backend() { # label url
  local label=$1 url=$2
  local key
  key=$("$BIN" --database-url "$url" keys create --name bench --scopes summarize | awk '/^secret:/ {print $2}')
  for latency in ${LATENCIES:-0 500}; do
    start_fake "$latency"
    "$BIN" --database-url "$url" serve --listen "127.0.0.1:$EX_PORT" >"$work/ex.log" 2>&1 & local ex=$!; pids+=("$ex")
    wait_port "$EX_PORT"
    # Warm-up (connections, caches), not reported.
    "$LB" load --url "http://127.0.0.1:$EX_PORT" --rate 50 --seconds 2 --key "$key" >/dev/null
    phase "$label model=${latency}ms" "$ex" "$LB" load --direct "http://127.0.0.1:$FAKE_PORT/v1" --rate "$RATE" --seconds "$SECS"
    phase "$label model=${latency}ms" "$ex" "$LB" load --url "http://127.0.0.1:$EX_PORT" --rate "$RATE" --seconds "$SECS" --key "$key"
    kill "$ex"; wait "$ex" 2>/dev/null || true
  done
  start_fake 2000
  "$BIN" --database-url "$url" serve --listen "127.0.0.1:$EX_PORT" >"$work/ex.log" 2>&1 & local ex=$!; pids+=("$ex")
  wait_port "$EX_PORT"
  phase "$label model=2000ms" "$ex" "$LB" burst --url "http://127.0.0.1:$EX_PORT" --n "$BURST" --key "$key"
  kill "$ex"; wait "$ex" 2>/dev/null || true
}

backends="${BACKENDS:-sqlite postgresql}"
if [[ " $backends " == *" sqlite "* ]]; then
  run_backend SQLite "sqlite://$work/load.db"
fi
if [[ " $backends " == *" postgresql "* ]]; then
  if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $pg_db" >/dev/null
    run_backend PostgreSQL "postgres://postgres@127.0.0.1:5432/$pg_db"
  else
    echo "PostgreSQL not answering on 127.0.0.1:5432: skipped"
  fi
fi
