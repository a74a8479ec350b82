#!/usr/bin/env bash
# Issue 9's heap measurement: exbrief built without mimalloc (so heaptrack sees every
# allocation through glibc's malloc), run under heaptrack against the fake model at 3 s, one
# burst of BURST summaries at once (SQLite). Prints the burst's outcome, exbrief's peak RSS
# under heaptrack and heaptrack's peak heap; the recording stays in $OUT.zst for
# `heaptrack_print -f $OUT.zst --print-peaks 1` or a flamegraph of peak memory.
# Needs Debian's heaptrack (apt-get install heaptrack). Every process listens on 127.0.0.1 and is
# stopped by PID.
#
#   bench/heap.sh                                   # BURST=1000 OUT=/tmp/exbrief-heap
#   EXBRIEF_BIN=/tmp/exbrief-glibc bench/heap.sh    # a binary built elsewhere (same feature)
set -euo pipefail
ulimit -n "$(ulimit -Hn)"
cd "$(dirname "$0")/.."
BURST="${BURST:-1000}"
OUT="${OUT:-/tmp/exbrief-heap}"
command -v heaptrack >/dev/null || { echo "heaptrack not found: apt-get install heaptrack" >&2; exit 1; }
cargo build --release --quiet --example loadbench
if [[ -z "${EXBRIEF_BIN:-}" ]]; then
  cargo build --release --quiet --bin exbrief --no-default-features
  cp target/release/exbrief target/release/exbrief-glibc
  EXBRIEF_BIN="$PWD/target/release/exbrief-glibc"
fi
source bench/common.sh
url="sqlite://$work/heap.db"
key=$(bench_key "$EXBRIEF_BIN" "$url")
"$LB" fake --port "$FAKE_PORT" --latency-ms 3000 & pids+=("$!")
wait_port "$FAKE_PORT"
rm -f "$OUT.zst"
heaptrack -o "$OUT" "$EXBRIEF_BIN" --database-url "$url" serve --listen "127.0.0.1:$EX_PORT" >"$work/ex.log" 2>&1 &
pids+=("$!")
wait_port "$EX_PORT"
"$LB" load --url "http://127.0.0.1:$EX_PORT" --rate 20 --seconds 2 --key "$key" >/dev/null
"$LB" burst --url "http://127.0.0.1:$EX_PORT" --n "$BURST" --key "$key"
ex=$(pgrep -f "^$EXBRIEF_BIN --database-url $url serve") || { echo "exbrief is gone" >&2; exit 1; }
echo "peak RSS under heaptrack: $(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$ex/status") MiB"
kill "$ex"
for _ in $(seq 1 100); do kill -0 "$ex" 2>/dev/null || break; sleep 0.1; done
sleep 1
heaptrack_print -f "$OUT.zst" --print-peaks 0 --print-allocators 0 --print-temporary 0 --print-leaks 0 2>/dev/null \
  | grep -E "peak heap memory|calls to allocation"
# The glibc build above replaced target/release/exbrief; put the shipped build (mimalloc) back,
# so that a copy of it taken for another benchmark is what it claims to be.
if [[ "$EXBRIEF_BIN" == "$PWD/target/release/exbrief-glibc" ]]; then
  cargo build --release --quiet --bin exbrief
fi
