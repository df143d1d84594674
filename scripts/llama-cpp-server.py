"""llama-cpp-python's OpenAI-compatible server, with `--no-repack` added: the same switch as
llama-cpp-bench.py's (see llama_cpp_repack.py). Every other argument is the server's own.

    scripts/llama-server.sh serve PORT [--no-repack]
"""
import sys

import llama_cpp_repack

if __name__ == "__main__":
    if "--no-repack" in sys.argv:
        sys.argv.remove("--no-repack")
        llama_cpp_repack.turn_off()
    from llama_cpp.server.__main__ import main

    main()
