"""Reference figures for `benches/local_decode.rs --random-8b` on a GPU: the same Llama 3 8B
shape with random BF16 weights in PyTorch + transformers (eager attention, static KV cache
off, greedy), same prompt ids (token i = 1000 + (i * 7919) % 40000), same prompt and decode
lengths. Prints prefill and decode tokens per second, batch 1 and batched decode.

    python3 scripts/torch-reference-bench.py [--prompt-tokens 512] [--decode-tokens 128]

Needs torch with CUDA and transformers (the GPU machines here have both); downloads nothing.
"""

import argparse
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--decode-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    config = LlamaConfig(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336,
        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
        max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=500000.0,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    started = time.time()
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    print(f"random Llama-3-8B shape, bf16, torch {torch.__version__}: built in {time.time() - started:.1f} s")
    prompt = [1000 + (i * 7919) % 40000 for i in range(args.prompt_tokens)]

    def run(batch):
        ids = torch.tensor([prompt] * batch, device="cuda")
        with torch.inference_mode():
            torch.cuda.synchronize()
            t0 = time.time()
            out = model(ids, use_cache=True)
            past = out.past_key_values
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            torch.cuda.synchronize()
            prefill = batch * len(prompt) / (time.time() - t0)
            t0 = time.time()
            for _ in range(args.decode_tokens - 1):
                out = model(nxt, past_key_values=past, use_cache=True)
                past = out.past_key_values
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
                nxt.cpu()  # one sync per step, as the Rust bench's argmax does
            decode = batch * (args.decode_tokens - 1) / (time.time() - t0)
        return prefill, decode

    for batch in [1, 2, 4, 8, 16]:
        runs = [run(batch) for _ in range(args.repeats)]
        prefills = sorted(r[0] for r in runs)
        decodes = sorted(r[1] for r in runs)
        mid = len(runs) // 2
        if batch == 1:
            print(f"batch 1: prefill {prefills[mid]:.1f} tok/s, decode {decodes[mid]:.1f} tok/s (runs {[round(d, 1) for d in decodes]})")
        else:
            print(f"batch {batch}: decode {decodes[mid]:.1f} tok/s summed over the sequences (runs {[round(d, 1) for d in decodes]})")


if __name__ == "__main__":
    main()
