#!/usr/bin/env bash
# Redaction cost in instructions (issue 3), which unlike wall time does not move with what else
# the machine is doing: builds the redaction bench, runs its counting mode under
# `valgrind --tool=callgrind` (two uncounted warm-up passes, then PASSES counted passes over the
# free-text corpus and the fixtures) and prints instructions per byte of free text and per
# bundle. Compare builds with REDACT_BIN=<a copy of target/release/deps/redact-…>.
#
#   bench/instructions.sh        # PASSES=3
#   REDACT_COPYING=1 bench/instructions.sh   # bundles counted with a copy each, as the bench
#                                            # counted them before the service redacted in place
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind not found: apt-get install valgrind" >&2; exit 1; }
if [[ -z "${REDACT_BIN:-}" ]]; then
  REDACT_BIN=$(cargo bench --bench redact --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "redact" and m.get("executable"):
        print(m["executable"])')
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for pass in counted_text_pass counted_bundle_pass; do
  info=$(REDACT_COUNT=1 PASSES="${PASSES:-3}" valgrind --tool=callgrind --callgrind-out-file="$out" \
    --collect-atstart=no --toggle-collect="*$pass*" "$REDACT_BIN" 2>/dev/null)
  total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  python3 - "$pass" "$total" "$info" <<'PY'
import sys
name, total, info = sys.argv[1], int(sys.argv[2]), dict(kv.split("=") for kv in sys.argv[3].split())
passes = int(info["passes"])
if name == "counted_text_pass":
    per = total / passes
    print(f"free text: {per / 1e6:.1f} M instructions per pass over {info['texts']} texts, "
          f"{per / int(info['text_bytes']):.0f} per byte")
else:
    per = total / passes / int(info["bundles"])
    print(f"bundles: {per / 1e3:.0f} k instructions per bundle ({info['bundles']} fixtures)")
PY
done
