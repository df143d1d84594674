#!/usr/bin/env bash
# End-to-end check of `--judge openai` against a real OpenAI-compatible server: llama.cpp's
# server (llama-cpp-python) with SmolLM2-135M-Instruct, both installed by llama-server.sh.
# SmolLM2 is far too small to judge well: this checks the plumbing (requests, replies,
# verdict parsing, usage, reports), not accuracy.
#
#   scripts/e2e-llama.sh [extra halubench run flags]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/llama-server.sh install >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
# HALUBENCH_LLAMA_NO_REPACK=1 on CPUs where llama-cpp-python 0.3.36 crashes repacking weights.
scripts/llama-server.sh serve "$port" ${HALUBENCH_LLAMA_NO_REPACK:+--no-repack} >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 120); do
    curl -sf "http://127.0.0.1:$port/v1/models" >/dev/null && break
    kill -0 $server 2>/dev/null || { cat "$log"; echo "the server died" >&2; exit 1; }
    sleep 1
done
cargo run --quiet --release -- run --judge openai --model smollm2 \
    --base-url "http://127.0.0.1:$port/v1" --no-cache "$@"
