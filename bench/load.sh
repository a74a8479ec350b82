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
# EXBRIEF_BIN: an exbrief binary built elsewhere (e.g. from another commit, to compare two
# builds in one sitting); by default the checkout's own release build.
if [[ -n "${EXBRIEF_BIN:-}" ]]; then
  cargo build --release --quiet --example loadbench
  BIN="$EXBRIEF_BIN"
else
  cargo build --release --quiet --bin exbrief --example loadbench
  BIN="$PWD/target/release/exbrief"
fi
source bench/common.sh
pg_db="exbrief_load_$$"
on_exit() {
  if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_mib() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$1/status"; }

fake_pid=""
start_fake() { # latency-ms
  [[ -n "$fake_pid" ]] && { kill "$fake_pid"; wait "$fake_pid" 2>/dev/null || true; }
  "$LB" fake --port "$FAKE_PORT" --latency-ms "$1" & fake_pid=$!; pids+=("$fake_pid")
  wait_port "$FAKE_PORT"
}

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
  key=$(bench_key "$BIN" "$url")
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
  phase "$label model=2000ms" "$ex" "$LB" burst --direct "http://127.0.0.1:$FAKE_PORT/v1" --n "$BURST"
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
