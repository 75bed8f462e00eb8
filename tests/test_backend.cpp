// The dispatch interface (include/docvlm/backend/): dense weights unpacked from the CPU's packed
// layouts, and the CPU backend through every check a backend must pass (tests/backend_checks.hpp),
// which the CUDA backend runs too (tests/test_cuda.cpp, on a GPU).
#include "backend_checks.hpp"
#include "test_util.hpp"

#include <docvlm/backend/cpu_backend.hpp>
#include <docvlm/backend/dense_weights.hpp>
#include <docvlm/kernels/gemm.hpp>
#include <docvlm/kernels/qgemm_quantize.hpp>

using namespace docvlm;

TEST_SUITE("backend") {

TEST_CASE("dense weights: unpacking gives back the matrix the CPU packed (f32, bf16, int8 per channel and per group)") {
    const std::size_t n = 45, k = 70;  // a partial panel and K not a multiple of 4
    const auto w = backend_test::random_floats(n * k, 7);
    CHECK(backend::unpack_f32(kernels::pack_f32(w.data(), n, k)) == w);
    const auto b16 = backend::unpack_bf16(kernels::pack_bf16(w.data(), n, k));
    for (std::size_t i = 0; i < w.size(); ++i) REQUIRE(b16[i] == f32_to_bf16(w[i]).bits);
    for (const std::size_t group : {std::size_t(0), std::size_t(32)}) {
        CAPTURE(group);
        const kernels::QuantizedWeight q = kernels::quantize_weight(w.data(), n, k, group);
        std::vector<std::int8_t> values;
        std::vector<float> scales;
        backend::unpack_int8(q, values, scales);
        const std::size_t groups = group ? (k + group - 1) / group : 1;
        REQUIRE(scales.size() == n * groups);
        for (std::size_t r = 0; r < n; ++r)
            for (std::size_t c = 0; c < k; ++c) {
                REQUIRE(values[r * k + c] == q.at(r, c));
                // the value times its scale is the weight to within half a step
                const float s = scales[r * groups + (group ? c / group : 0)];
                REQUIRE(std::fabs(values[r * k + c] * s - w[r * k + c]) <= 0.5f * s * 1.0001f);
            }
        // packing the dense form again gives the same packed bytes
        const kernels::QuantizedWeight again = kernels::pack_weight(values.data(), scales.data(), n, k, group);
        CHECK(std::equal(again.data.begin(), again.data.end(), q.data.begin(), q.data.end()));
        CHECK(std::equal(again.col_sums.begin(), again.col_sums.end(), q.col_sums.begin(), q.col_sums.end()));
    }
}

TEST_CASE("CPU backend: every operation against its scalar reference") {
    backend::CpuBackend be;
    backend_test::check_ops(be);
}

TEST_CASE("CPU backend: the vision blocks and the decoder on a backend pass the transformers goldens (Qwen2-VL, LLaVA-1.5, Qwen-VL)") {
    backend_test::check_goldens(std::make_shared<backend::CpuBackend>());
}

TEST_CASE("CPU backend: batched decoding on a backend gives each request what it gets alone") {
    backend_test::check_batch(std::make_shared<backend::CpuBackend>());
}

TEST_CASE("CPU backend: the embedded models on a backend against PyTorch (f32) and the QAT simulation (int8)") {
    backend_test::check_embedded(std::make_shared<backend::CpuBackend>(), 12);
}

TEST_CASE("a context made before the decoder moved to a backend is refused; make_backend names what is wrong") {
    const std::string dir = test::data("golden/qwen2vl-tiny-a");
    auto model = load<presets::Qwen2VL<F32>>(dir);
    auto before = model.context(64);
    model.to_device(backend::make_backend("cpu"));
    const std::vector<std::int32_t> ids{1, 2, 3};
    CHECK_THROWS_WITH_AS(before.prefill(ids, {}, {}), doctest::Contains("made before the decoder moved to cpu"), Error);
    auto after = model.context(2);
    CHECK_THROWS_WITH_AS(after.prefill(ids, {}, {}), doctest::Contains("the context holds 2"), Error);
    CHECK_THROWS_WITH_AS(backend::make_backend("tpu"), doctest::Contains("unknown device"), Error);
    CHECK_THROWS_WITH_AS(backend::make_backend("cuda:x"), doctest::Contains("not a number"), Error);
#ifndef DOCVLM_WITH_CUDA
    CHECK_THROWS_WITH_AS(backend::make_backend("cuda"), doctest::Contains("built without CUDA"), Error);
#endif
}

}  // TEST_SUITE
