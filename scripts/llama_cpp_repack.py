"""Turns off llama.cpp's weight repacking (its `-nr`: no extra CPU buffer types) for every
model llama-cpp-python loads from now on. llama-cpp-python 0.3.36 crashes (SIGSEGV in its
first llama_decode) in the repacked path on some AVX-512/AMX CPUs, on every file tried.

Its high-level Llama takes no such argument, so the default model parameters it starts from
are patched instead, before it reads them. Shared by llama-cpp-bench.py, llama-cpp-logits.py
and llama-cpp-server.py.
"""
import llama_cpp


def turn_off():
    defaults = llama_cpp.llama_cpp.llama_model_default_params

    def without_repacking():
        params = defaults()
        params.use_extra_bufts = False
        return params

    llama_cpp.llama_cpp.llama_model_default_params = without_repacking
