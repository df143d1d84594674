#!/usr/bin/env bash
# Assembles a CUDA 13.0 build toolkit from PyPI wheels (no system CUDA, no GPU needed), so that
# `cargo build --release --features cuda` links here and the binary runs on an H100 machine
# with driver 580 (CUDA 13.0). Nothing is installed system-wide.
#
#   scripts/cuda-toolkit.sh          # fetch + unpack into $HALUBENCH_TOOLS/cuda (default .tools/cuda)
#   eval "$(scripts/cuda-toolkit.sh)"  # ... and export the build environment (progress goes to stderr)
#
# Why CUDA 13.0 exactly, not the newest 13.x:
# - cudarc (candle-core's `cuda-version-from-build-system`) reads `nvcc --version` and binds the
#   driver API of that release; Rust links with `-z now`, so a cu* symbol newer than the target
#   driver (580 = CUDA 13.0) makes the binary fail to load.
# - candle-kernels embeds PTX made by this nvcc; a 13.0 driver cannot JIT a newer PTX ISA.
# The library wheels are the ones PyTorch 2.11+cu130 pins, so the SONAMEs we link against
# (libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libnvrtc.so.13, libcudart.so.13) are the
# ones found on the target.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${HALUBENCH_TOOLS:-$PWD/.tools}"
dest="$tools/cuda"
root="$dest/nvidia/cu13" # every cu13 wheel unpacks under nvidia/cu13: bin/ include/ lib/ nvvm/

wheels=(
    nvidia-cuda-nvcc==13.0.88    # bin/nvcc, ptxas, fatbinary, nvlink
    nvidia-cuda-crt==13.0.88     # include/crt/* (split out of nvcc in 13.x)
    nvidia-nvvm==13.0.88         # nvvm/bin/cicc, libdevice (split out of nvcc in 13.x)
    nvidia-cuda-runtime==13.0.96 # cuda.h, cuda_runtime.h, cuda_fp16/bf16/fp8.h, libcudart.so.13
    nvidia-cuda-cccl==13.0.85    # cub/, thrust/, cuda/std (candle-kernels' moe kernels)
    nvidia-cuda-nvrtc==13.0.88   # libnvrtc.so.13
    nvidia-curand==10.4.0.35     # libcurand.so.10
    nvidia-cublas==13.1.0.3      # libcublas.so.13, libcublasLt.so.13 (423 MB of the ~680 MB)
)

install() {
    mkdir -p "$tools/wheels" "$dest"
    local spec name whl
    for spec in "${wheels[@]}"; do
        name="${spec%%==*}"
        whl=$(ls "$tools/wheels/${name//-/_}-${spec##*==}"-*.whl 2>/dev/null | head -1 || true)
        if [ -z "$whl" ]; then
            echo "fetching $spec" >&2
            python3 -m pip download --quiet --no-deps --dest "$tools/wheels" "$spec" >&2
            whl=$(ls "$tools/wheels/${name//-/_}-${spec##*==}"-*.whl | head -1)
        fi
        # One marker per wheel, so a re-run skips the unpacking (cublasLt alone is 540 MB).
        if [ ! -f "$dest/.unpacked-$name-${spec##*==}" ]; then
            python3 -m zipfile -e "$whl" "$dest"
            touch "$dest/.unpacked-$name-${spec##*==}"
        fi
    done
    # zipfile drops the exec bits.
    chmod +x "$root"/bin/* "$root"/nvvm/bin/* 2>/dev/null || true

    # The toolkit layout the build scripts search: cudarc links from $CUDA_ROOT/{lib,lib64}
    # (+ /stubs), cudaforge (candle-kernels) derives include/ and lib64/ from nvcc's location,
    # and nvcc.profile adds $TOP/targets/x86_64-linux/{include,lib} (the real toolkit's layout).
    ln -sfn lib "$root/lib64"
    mkdir -p "$root/targets/x86_64-linux"
    ln -sfn ../../include "$root/targets/x86_64-linux/include"
    ln -sfn ../../lib "$root/targets/x86_64-linux/lib"
    # `-lcublas` etc. need the unversioned names; the wheels ship only the SONAME files.
    local so
    for so in libcudart.so.13 libnvrtc.so.13 libcurand.so.10 libcublas.so.13 libcublasLt.so.13; do
        ln -sfn "$so" "$root/lib/${so%.so.*}.so"
    done

    # No wheel ships the driver (libcuda.so), nor the toolkit's link stub. Make the stub: a
    # shared library named libcuda.so.1 (the driver's SONAME, so the binary asks the target's
    # driver for it at run time) defining every cu* name cuda.h mentions, both the plain names and
    # the _v2/_v3 ones its #defines map them to (that covers every driver function cudarc 0.19
    # binds for CUDA 13.0), plus cuProfilerInitialize, which cudarc declares unconditionally and
    # 13.0's headers no longer do. It is only linked against, never loaded.
    if [ ! -f "$root/lib/stubs/libcuda.so" ]; then
        mkdir -p "$root/lib/stubs"
        { grep -oE '\bcu[A-Z][A-Za-z0-9_]*\b' "$root/include/cuda.h"; echo cuProfilerInitialize; } | sort -u |
            sed 's/.*/void &(void) {}/' >"$root/lib/stubs/libcuda-stub.c"
        gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$root/lib/stubs/libcuda.so" \
            "$root/lib/stubs/libcuda-stub.c"
    fi

    "$root/bin/nvcc" --version | grep -q 'release 13.0,' ||
        { echo "error: $root/bin/nvcc is not CUDA 13.0" >&2; exit 1; }
    echo "toolkit: $root" >&2
}

print_env() {
    cat <<EOF
export PATH="$root/bin:\$PATH"
export NVCC="$root/bin/nvcc"
export CUDA_HOME="$root" CUDA_PATH="$root" CUDA_ROOT="$root" CUDA_TOOLKIT_ROOT_DIR="$root"
export LIBRARY_PATH="$root/lib:$root/lib/stubs\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
export CUDA_COMPUTE_CAP=90
export CUDAFORGE_THREADS=\${CUDAFORGE_THREADS:-2}
EOF
}

case "${1:-install}" in
    install) install; print_env ;;
    env) print_env ;;
    *) echo "usage: $0 [install | env]" >&2; exit 2 ;;
esac
