#!/usr/bin/env bash
# tools/cuda/pack_for_gpu.sh — prepares the CUDA backend's proof, on a development machine with the
# CUDA toolkit (nvcc) and no GPU: builds build-cuda/ (docvlm_cuda_tests, docvlm_bench_cuda) and
# copies both binaries, with the Debian libraries they load that a CUDA machine may lack, into
# .gpu-kit/ (ignored by git, about 6 MB). The GPU machine runs tools/cuda/check_on_gpu.sh with
# .gpu-kit carried beside the working tree; it needs only the NVIDIA driver and cuBLAS 13.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
nvcc="$(command -v nvcc || true)"
for d in "${CUDA_HOME:-}" /usr/local/cuda; do
    [ -z "$nvcc" ] && [ -n "$d" ] && [ -x "$d/bin/nvcc" ] && nvcc="$d/bin/nvcc"
done
[ -n "$nvcc" ] || { echo "pack_for_gpu: no nvcc (install the CUDA toolkit or set CUDA_HOME)" >&2; exit 1; }
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DDOCVLM_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc" \
    -DDOCVLM_BUILD_TESTS=ON -DDOCVLM_BUILD_BENCH=ON -DDOCVLM_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-cuda --target docvlm_cuda_tests docvlm_bench_cuda
rm -rf .gpu-kit
mkdir -p .gpu-kit/bin .gpu-kit/lib
cp build-cuda/bin/docvlm_cuda_tests build-cuda/bin/docvlm_bench_cuda .gpu-kit/bin/
# every library the binaries load except the C library's own and CUDA's (the GPU machine's driver
# and toolkit provide those)
ldd .gpu-kit/bin/* | awk '$3 ~ /^\// {print $3}' | sort -u | while read -r lib; do
    case "$(basename "$lib")" in
        libc.so*|libm.so*|libpthread.so*|librt.so*|libdl.so*|ld-linux*|libcublas*|libcudart*|libcuda.so*) ;;
        *) cp -L "$lib" .gpu-kit/lib/ ;;
    esac
done
grep -qx '/.gpu-kit/' .git/info/exclude 2>/dev/null || echo '/.gpu-kit/' >> .git/info/exclude
echo "pack_for_gpu: .gpu-kit/ ready ($(du -sh .gpu-kit | cut -f1)): on the GPU machine run tools/cuda/check_on_gpu.sh (carry .gpu-kit)"
