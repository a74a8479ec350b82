#!/usr/bin/env bash
# A summary's cost in instructions (issue 9), which unlike CPU time does not move with what else
# the machine is doing: exbrief (release) on SQLite runs under `valgrind --tool=callgrind`
# against the fake model at 0 ms; after a warm-up the counters are zeroed, RATE summaries/s are
# sent for SECONDS_PER_RUN, and the counters are dumped. Prints instructions per summary, and
# the same without sha256's block function: valgrind's CPU lacks the SHA extensions, so the
# chain hashes run in software there (about a quarter of the count) while the service uses
# SHA-NI where the CPU has it. The recording stays in $OUT.* for callgrind_annotate.
# Every process listens on 127.0.0.1 and is stopped by PID.
#
#   bench/serve-instructions.sh                         # RATE=20 SECONDS_PER_RUN=10 OUT=/tmp/exbrief-callgrind
#   EXBRIEF_BIN=/tmp/exbrief-before bench/serve-instructions.sh   # another build
set -euo pipefail
ulimit -n "$(ulimit -Hn)"
cd "$(dirname "$0")/.."
RATE="${RATE:-20}"
SECS="${SECONDS_PER_RUN:-10}"
OUT="${OUT:-/tmp/exbrief-callgrind}"
command -v valgrind >/dev/null || { echo "valgrind not found: apt-get install valgrind" >&2; exit 1; }
cargo build --release --quiet --bin exbrief --example loadbench
BIN="${EXBRIEF_BIN:-$PWD/target/release/exbrief}"
source bench/common.sh
url="sqlite://$work/instructions.db"
key=$(bench_key "$BIN" "$url")
"$LB" fake --port "$FAKE_PORT" --latency-ms 0 & pids+=("$!")
rm -f "$OUT" "$OUT".*
valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BIN" --database-url "$url" serve \
  --listen "127.0.0.1:$EX_PORT" 2>"$work/valgrind.log" & ex=$!; pids+=("$ex")
wait_port "$FAKE_PORT"
# Under valgrind the start takes seconds.
for _ in $(seq 1 600); do (exec 3<>/dev/tcp/127.0.0.1/"$EX_PORT") 2>/dev/null && break; sleep 0.1; done
"$LB" load --url "http://127.0.0.1:$EX_PORT" --rate 5 --seconds 4 --key "$key" >/dev/null
sleep 1
callgrind_control -z "$ex" >/dev/null
"$LB" load --url "http://127.0.0.1:$EX_PORT" --rate "$RATE" --seconds "$SECS" --key "$key"
sleep 1
callgrind_control -d "$ex" >/dev/null
sleep 1
kill "$ex"; wait "$ex" 2>/dev/null || true
dump=$(ls "$OUT".* | tail -n1)
total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
sha=$(callgrind_annotate --inclusive=yes "$dump" 2>/dev/null |
  awk '/sha2::sha256::compress256 \[/ && !done {gsub(",", "", $1); print $1; done = 1}')
python3 -c "t, s, n = $total, ${sha:-0}, $RATE * $SECS
print(f'{t / n / 1e6:.3f} M instructions per summary, {(t - s) / n / 1e6:.3f} M without sha256 ({n} summaries; {\"$dump\"})')"
