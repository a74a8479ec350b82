#!/usr/bin/env bash
# Where a summary's time goes under load (issue 9): exbrief (release) on SQLite (or PostgreSQL with
# BACKEND=postgresql, in a database of its own that is dropped at exit) against the fake
# model at 0 ms, driven at RATE summaries/s for SECONDS_PER_RUN, with its debug-level timing
# events on (`exbrief::timing`: the claim, then redaction, rendering, the model calls, building
# the document and storing it, and each transaction of the writer tasks: `claims_batch` for
# claims alone, `store_batch` for summaries); prints p50/p90/p99/max of each, and with
# TIMELINE=1 each second's request p50/p99/max (a start-up transient or a steady tail), and
# exbrief's CPU time per summary over the run (read once the generator has every answer), the
# part of it in SQLite's threads (on PostgreSQL, the server's CPU per summary), the bytes
# written per summary, and the fake model's CPU per call (both share the cores). Every process listens on 127.0.0.1 and is stopped by PID.
#
#   bench/stages.sh       # RATE=500 SECONDS_PER_RUN=10 BACKEND=sqlite
#   TIMELINE=1 BACKEND=postgresql bench/stages.sh
#   DB_FROM=/tmp/before.db EXBRIEF_BIN=/tmp/exbrief bench/stages.sh
#   BURST=2000 BACKEND=postgresql bench/stages.sh   # one burst of BURST at once, model at 2 s
set -euo pipefail
ulimit -n "$(ulimit -Hn)"
cd "$(dirname "$0")/.."
RATE="${RATE:-500}"
SECS="${SECONDS_PER_RUN:-10}"
cargo build --release --quiet --bin exbrief --example loadbench
BIN="${EXBRIEF_BIN:-$PWD/target/release/exbrief}"
source bench/common.sh
# DB_FROM: start from a copy of this SQLite file (e.g. one migrated and then altered by hand, to
# compare schemas with one binary).
if [[ -n "${DB_FROM:-}" ]]; then
  cp "$DB_FROM" "$work/stages.db"; url="sqlite://$work/stages.db"
else
  bench_url stages
fi
key=$(bench_key "$BIN" "$url")
# BURST: the stages of one burst of that many summaries at once against the model at 2 s (the
# load of bench/load.sh's burst run) instead of RATE summaries/s at 0 ms.
"$LB" fake --port "$FAKE_PORT" --latency-ms "$([[ -n "${BURST:-}" ]] && echo 2000 || echo 0)" & fake=$!; pids+=("$fake")
EXBRIEF_LOG="warn,exbrief::timing=debug" EXBRIEF_SERVER__LOG_FORMAT=json \
  "$BIN" --database-url "$url" serve --listen "127.0.0.1:$EX_PORT" 2>"$work/timing.log" & ex=$!; pids+=("$ex")
wait_port "$FAKE_PORT"; wait_port "$EX_PORT"
"$LB" load --url "http://127.0.0.1:$EX_PORT" --rate 50 --seconds 2 --key "$key" >/dev/null
: >"$work/timing.log"
# exbrief's CPU (user + system clock ticks, fields 14 and 15 of /proc/PID/stat) around the run,
# that of sqlx's SQLite connection threads alone, and the bytes exbrief handed to write calls
# (`wchar`: the write-ahead log, checkpoints and sockets).
ticks() { awk '{print $14 + $15}' "/proc/${1:-$ex}/stat"; }
sqlite_ticks() { cat /proc/"$ex"/task/*/stat | awk '/\(sqlx-sqlite/ {s += $14 + $15} END {print s + 0}'; }
written() { awk '/^wchar/ {print $2}' "/proc/$ex/io"; }
# PostgreSQL's processes (the server shares the cores): "pid ticks" of each, to sum what each
# used over the run (one that started during it counts whole).
pg_ticks() { cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == "(postgres)" {print $1, $14 + $15}'; }
fake_before=$(ticks "$fake"); before=$(ticks); sqlite_before=$(sqlite_ticks); written_before=$(written)
pg_ticks >"$work/pg_before"
if [[ -n "${BURST:-}" ]]; then
  "$LB" burst --url "http://127.0.0.1:$EX_PORT" --n "$BURST" --key "$key"
  n="$BURST"
else
  "$LB" load --url "http://127.0.0.1:$EX_PORT" --rate "$RATE" --seconds "$SECS" --key "$key" ${TIMELINE:+--timeline}
  n=$((RATE * SECS))
fi
fake_after=$(ticks "$fake"); after=$(ticks); sqlite_after=$(sqlite_ticks); written_after=$(written)
pg_ticks >"$work/pg_after"
python3 -c "import sys; t, hz, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print(f'exbrief CPU: {t / hz:.2f} s for {n} summaries, {1000 * t / hz / n:.2f} ms each')" \
  "$((after - before))" "$(getconf CLK_TCK)" "$n"
# The fake model shares the cores: its CPU per model call (three per summary).
python3 -c "import sys; t, hz, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print(f'fake model CPU: {t / hz:.2f} s, {1e6 * t / hz / (3 * n):.0f} us per call')" \
  "$((fake_after - fake_before))" "$(getconf CLK_TCK)" "$n"
if [[ "${BACKEND:-sqlite}" != postgresql ]]; then
  echo "of which SQLite's threads: $(( (sqlite_after - sqlite_before) * 1000000 / $(getconf CLK_TCK) / n )) us per summary"
else
  python3 - "$work/pg_before" "$work/pg_after" "$(getconf CLK_TCK)" "$n" <<'PY'
import sys
before = dict(l.split() for l in open(sys.argv[1]))
t = sum(int(v) - int(before.get(p, 0)) for p, v in (l.split() for l in open(sys.argv[2])))
hz, n = int(sys.argv[3]), int(sys.argv[4])
print(f"PostgreSQL server CPU: {t / hz:.2f} s, {1000 * t / hz / n:.2f} ms per summary")
PY
fi
echo "written: $(( (written_after - written_before) / n )) bytes per summary"
python3 - "$work/timing.log" <<'PY'
import json, sys
stages = {}
for line in open(sys.argv[1]):
    try:
        fields = json.loads(line).get("fields", {})
    except ValueError:
        continue
    for k, v in fields.items():
        if k.endswith("_us"):
            stages.setdefault(k[:-3], []).append(v)
for name, v in stages.items():
    v.sort()
    n = len(v)
    q = lambda p: v[min(n - 1, int(n * p))] / 1000
    print(f"{name:8} n={n} p50={q(.5):.2f} p90={q(.9):.2f} p99={q(.99):.2f} max={v[-1] / 1000:.2f} ms")
PY
