#!/usr/bin/env bash
# tools/cuda/check_on_gpu.sh — the CUDA backend's proof, one command on a GPU machine, from the
# repository root with .gpu-kit/ (tools/cuda/pack_for_gpu.sh) beside the tree:
#   1. docvlm_cuda_tests: every backend operation against its scalar reference; the decoder on
#      the GPU against transformers (Qwen2-VL, LLaVA-1.5, Qwen-VL goldens: logits, step logits,
#      greedy ids); batched decoding; the embedded models against PyTorch (f32) and the QAT
#      simulation (int8). A case skipped there (no device) fails this script. The operations
#      again under compute-sanitizer's memcheck where it runs.
#   2. docvlm_bench_cuda, the CPU and the GPU in the same run: MinerU2.5's vision tower on a 1036²
#      page, its decoder prefilling 512 tokens and decoding at 1k (int8 and bf16), and the
#      embedded model parsing the sample page end to end.
# Logs go to $OUT (the device tool's folder) or /tmp/docvlm-gpu.
set -uo pipefail
kit="${1:-.gpu-kit}"
out="${OUT:-/tmp/docvlm-gpu}"
mkdir -p "$out"
[ -x "$kit/bin/docvlm_cuda_tests" ] || { echo "check_on_gpu: $kit/bin/docvlm_cuda_tests missing: run tools/cuda/pack_for_gpu.sh first" >&2; exit 2; }
# cuBLAS 13: the toolkit's, else the one PyTorch's wheels bring
cublas_wheel="$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null || true)"
export LD_LIBRARY_PATH="$PWD/$kit/lib:${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64:${cublas_wheel}"
export DOCVLM_TEST_DATA="$PWD/tests/data" DOCVLM_MODEL_DIR="$PWD/models/docvlm-small" \
    DOCVLM_SAMPLE_PAGE="$PWD/examples/data/sample_page.png"
nvidia-smi -L 2>&1 | tee "$out/gpu.txt"
status=0
"$kit/bin/docvlm_cuda_tests" --no-intro --force-colors=0 --duration=true 2>&1 | tee "$out/cuda_tests.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
if grep -q "skipped" "$out/cuda_tests.log" && ! grep -q "| 0 skipped" "$out/cuda_tests.log"; then
    echo "check_on_gpu: GPU cases were skipped: this is no proof" >&2
    status=1
fi
# The operations once more under compute-sanitizer's memcheck, where it works (it refuses some
# virtualised GPUs): an out-of-bounds access in a kernel fails the check (exit 3).
if command -v compute-sanitizer >/dev/null; then
    compute-sanitizer --tool memcheck --error-exitcode 3 "$kit/bin/docvlm_cuda_tests" --no-intro --force-colors=0 \
        --test-case='cuda: every operation*' > "$out/memcheck.log" 2>&1
    case $? in
        0) echo "check_on_gpu: memcheck clean" ;;
        3) echo "check_on_gpu: memcheck found errors (memcheck.log)" >&2; tail -n 40 "$out/memcheck.log"; status=1 ;;
        *) echo "check_on_gpu: compute-sanitizer did not run here (memcheck.log): $(tail -n 1 "$out/memcheck.log")" ;;
    esac
fi
"$kit/bin/docvlm_bench_cuda" --benchmark_out="$out/bench_cuda.json" --benchmark_out_format=json 2>&1 | tee "$out/bench_cuda.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "check_on_gpu: $([ $status -eq 0 ] && echo passed || echo FAILED)"
exit $status
