# Sourced by bench/load.sh, bench/heap.sh and bench/profile.sh from the project root: the ports,
# a work directory, the processes stopped by PID at exit, waiting for a port, an API key, and
# exbrief's settings against the fake model (logs at warn, rate limits out of the way).
EX_PORT=18090
FAKE_PORT=18091
LB="$PWD/target/release/examples/loadbench"
work="$(mktemp -d)"
pids=()
on_exit() { :; } # a script may redefine it (bench/load.sh drops its PostgreSQL database)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
  on_exit
}
trap cleanup EXIT
wait_port() { for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
# bench_url NAME: sets `url` to a SQLite file in the work directory, or with BACKEND=postgresql to a
# database of its own that is dropped at exit.
bench_url() {
  if [[ "${BACKEND:-sqlite}" == postgresql ]]; then
    pg_db="exbrief_${1}_$$"
    on_exit() { psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true; }
    psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $pg_db" >/dev/null
    url="postgres://postgres@127.0.0.1:5432/$pg_db"
  else
    url="sqlite://$work/$1.db"
  fi
}
bench_key() { # exbrief-binary database-url
  "$1" --database-url "$2" keys create --name bench --scopes summarize | awk '/^secret:/ {print $2}'
}

export EXBRIEF_VAULT__KEY="$(head -c 32 /dev/urandom | base64)"
export EXBRIEF_LOG=warn
export EXBRIEF_LLM__BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" EXBRIEF_LLM__MODEL=fake-model EXBRIEF_LLM__API_KEY=sk-bench
export EXBRIEF_LLM__MAX_CONCURRENT="${MAX_CONCURRENT:-8192}" EXBRIEF_LLM__TIMEOUT_SECS=60
# MAX_IN_PROGRESS: limits.max_summaries_in_progress (default 2048; the rest of a burst waits
# unread). Unset, the binary's default applies (and builds older than the setting still start).
if [[ -n "${MAX_IN_PROGRESS:-}" ]]; then export EXBRIEF_LIMITS__MAX_SUMMARIES_IN_PROGRESS="$MAX_IN_PROGRESS"; fi
export EXBRIEF_LIMITS__REQUESTS_PER_MINUTE=10000000 EXBRIEF_LIMITS__BURST=1000000
