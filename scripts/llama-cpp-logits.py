"""Teacher-forced logits of llama.cpp on given token ids, for comparing them with the local
judge's (benches/logit_agreement.rs runs this). Run it with the venv's python:

    scripts/llama-server.sh logits --model FILE --prompts prompts.json --out DIR

prompts.json is a list of {"text": ..., "ids": [...]} objects: the ids our tokenizer made of
the rendered chat prompt, and that text. For each prompt i, the ids are fed to llama.cpp in
one context (no BOS added: the ids carry whatever the chat template wrote) and the logits
after every position are saved as DIR/llama-cpp-<i>.npy, float32 [positions, vocab].
llama.cpp also tokenizes the text itself (special tokens parsed, no BOS added), so that a
template or tokenizer difference shows up apart from arithmetic.

The last line printed is one JSON object: the settings and, per prompt, whether llama.cpp's
own tokenization gave the same ids.
"""
import argparse
import json
import os

import llama_cpp
import llama_cpp_repack
import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", required=True, help="JSON list of {text, ids}")
    ap.add_argument("--out", required=True, help="directory for llama-cpp-<i>.npy")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--flash-attn",
        choices=["on", "off"],
        default="off",
        help="llama.cpp's flash attention (its CPU kernel accumulates V in F16)",
    )
    ap.add_argument(
        "--kv-cache",
        choices=["f16", "f32"],
        default="f16",
        help="type of llama.cpp's KV cache (its default is f16)",
    )
    ap.add_argument(
        "--no-repack",
        action="store_true",
        help="llama.cpp's -nr; 0.3.36 crashes in the repacked path on some AVX-512/AMX CPUs",
    )
    a = ap.parse_args()
    if a.no_repack:
        llama_cpp_repack.turn_off()

    with open(a.prompts) as f:
        prompts = json.load(f)
    longest = max(len(p["ids"]) for p in prompts)
    kv_type = llama_cpp.GGML_TYPE_F16 if a.kv_cache == "f16" else llama_cpp.GGML_TYPE_F32
    llm = llama_cpp.Llama(
        model_path=a.model,
        n_threads=a.threads,
        n_threads_batch=a.threads,
        n_ctx=longest + 8,
        n_batch=512,
        n_ubatch=512,
        logits_all=True,
        flash_attn=a.flash_attn == "on",
        type_k=kv_type,
        type_v=kv_type,
        verbose=False,
    )
    os.makedirs(a.out, exist_ok=True)
    same_tokens = []
    for i, prompt in enumerate(prompts):
        ids = prompt["ids"]
        own = llm.tokenize(prompt["text"].encode(), add_bos=False, special=True)
        same_tokens.append(own == ids)
        llm.reset()
        llm.eval(ids)
        logits = np.array(llm.scores[: len(ids)], dtype=np.float32)
        np.save(os.path.join(a.out, f"llama-cpp-{i}.npy"), logits)
        print(f"prompt {i}: {len(ids)} positions, own tokenization equal: {own == ids}")
    print(
        json.dumps(
            {
                "engine": "llama.cpp",
                "llama_cpp_python": llama_cpp.__version__,
                "model": os.path.basename(a.model),
                "flash_attn": a.flash_attn,
                "kv_cache": a.kv_cache,
                "repack": not a.no_repack,
                "same_tokenization": same_tokens,
            }
        )
    )


if __name__ == "__main__":
    main()
