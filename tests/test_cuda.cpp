// The CUDA backend (cuda/docvlm_cuda.cu) through the checks every backend passes
// (tests/backend_checks.hpp): each operation against its scalar reference, the transformers
// goldens of Qwen2-VL, LLaVA-1.5 and Qwen-VL with the vision blocks and the decoder on the GPU,
// batched decoding, and the embedded models against PyTorch. Built only with -DDOCVLM_CUDA=ON.
//
// Without a CUDA device every GPU case is skipped: doctest counts it as skipped (never passed),
// and a line names it and the runtime's reason.
#include "backend_checks.hpp"
#include "test_util.hpp"

#include <docvlm/backend/backend.hpp>
#include <docvlm/backend/cpu_backend.hpp>

#include <cstdio>
#include <memory>

using namespace docvlm;

namespace {

bool no_device() {
    static const bool none = backend::cuda_device_count() == 0;
    return none;
}

// The decorator of a case that needs a GPU: skipped, and said so by name, when there is none.
doctest::skip on_gpu(const char* name) {
    if (no_device()) std::printf("docvlm_cuda_tests: no CUDA device present: skipped \"%s\"\n", name);
    return doctest::skip(no_device());
}

std::shared_ptr<backend::Backend> gpu() {
    static const std::shared_ptr<backend::Backend> be = backend::make_cuda_backend(0);
    return be;
}

#define GPU_CASE(name) TEST_CASE(name * on_gpu(name))

}  // namespace

TEST_SUITE("cuda") {

TEST_CASE("cuda: a device that does not exist is refused, naming the reason (runs without a GPU too)") {
    CHECK_THROWS_WITH_AS(backend::make_cuda_backend(4096), doctest::Contains("cuda: "), Error);
    CHECK_THROWS_WITH_AS(backend::make_backend("cuda:64"), doctest::Contains("cuda: "), Error);
}

GPU_CASE("cuda: the backend names its device") {
    CHECK(gpu()->name().rfind("cuda:0 (", 0) == 0);
    MESSAGE("device: ", gpu()->name());
}

GPU_CASE("cuda: every operation against its scalar reference") { backend_test::check_ops(*gpu()); }

GPU_CASE("cuda: the vision blocks and the decoder on the GPU pass the transformers goldens (Qwen2-VL, LLaVA-1.5, Qwen-VL)") {
    backend_test::check_goldens(gpu());
}

GPU_CASE("cuda: batched decoding on the GPU gives each request what it gets alone") { backend_test::check_batch(gpu()); }

GPU_CASE("cuda: the embedded models on the GPU against PyTorch (f32) and the QAT simulation (int8)") {
    backend_test::check_embedded(gpu(), 1 << 20);
}

}  // TEST_SUITE
