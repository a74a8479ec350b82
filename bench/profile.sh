#!/usr/bin/env bash
# Where exbrief's CPU goes under load (issue 9): exbrief (release) on SQLite (or PostgreSQL with
# BACKEND=postgresql, in a database of its own that is dropped at exit) against the fake model
# at 0 ms, driven at RATE summaries/s for SECONDS_PER_RUN while `perf record` samples it, then
# bench/perf_breakdown.py prints the share of each part. The recording stays in $OUT.data.
# Needs perf (Debian's linux-perf). Every process listens on 127.0.0.1 and is stopped by PID.
#
#   bench/profile.sh       # RATE=150 SECONDS_PER_RUN=8 OUT=/tmp/exbrief-profile BACKEND=sqlite
set -euo pipefail
ulimit -n "$(ulimit -Hn)"
cd "$(dirname "$0")/.."
RATE="${RATE:-150}"
SECS="${SECONDS_PER_RUN:-8}"
OUT="${OUT:-/tmp/exbrief-profile}"
command -v perf >/dev/null || { echo "perf not found: apt-get install linux-perf" >&2; exit 1; }
cargo build --release --quiet --bin exbrief --example loadbench
BIN="${EXBRIEF_BIN:-$PWD/target/release/exbrief}"
source bench/common.sh
bench_url profile
key=$(bench_key "$BIN" "$url")
"$LB" fake --port "$FAKE_PORT" --latency-ms 0 & pids+=("$!")
"$BIN" --database-url "$url" serve --listen "127.0.0.1:$EX_PORT" >"$work/ex.log" 2>&1 & ex=$!; pids+=("$ex")
wait_port "$FAKE_PORT"; wait_port "$EX_PORT"
"$LB" load --url "http://127.0.0.1:$EX_PORT" --rate 50 --seconds 2 --key "$key" >/dev/null
perf record -F 999 -g --call-graph dwarf,16384 -p "$ex" -o "$OUT.data" -- sleep "$SECS" 2>/dev/null &
rec=$!
"$LB" load --url "http://127.0.0.1:$EX_PORT" --rate "$RATE" --seconds "$SECS" --key "$key"
wait "$rec"
perf script -i "$OUT.data" -F comm,tid,ip,sym 2>/dev/null >"$OUT.txt"
python3 bench/perf_breakdown.py "$OUT.txt"
