// Benchmarks of core/ and io/: dtype conversion per code path (bytes/s), Pillow-exact resize of a
// page for MinerU2.5's layout stage, PNG decoding, and parallel_for dispatch latency.
#include <docvlm/core/dtype.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/io/image.hpp>

#include <benchmark/benchmark.h>

#include <random>
#include <vector>

namespace {

using namespace docvlm;

// bf16 -> f32 over 4M elements (8 MB in, 16 MB out: out of cache). Arg: 0 generic, 1 avx2, 2 avx512.
void convert_bf16_to_f32(benchmark::State& state) {
    const std::size_t n = std::size_t(1) << 22;
    std::vector<bf16> src(n);
    std::vector<float> dst(n);
    std::mt19937 rng(1);
    for (auto& v : src) v.bits = std::uint16_t(rng());
    const int path = int(state.range(0));
    const CpuFeatures f = detect_cpu();
    if ((path == 1 && !f.avx2) || (path == 2 && !f.avx512())) {
        state.SkipWithError("this CPU lacks the instruction set");
        return;
    }
    for (auto _ : state) {
#if DOCVLM_X86_64
        if (path == 2) detail::convert_avx512(src.data(), dst.data(), n);
        else if (path == 1) detail::convert_avx2(src.data(), dst.data(), n);
        else
#endif
            detail::convert_generic(src.data(), dst.data(), n);
        benchmark::DoNotOptimize(dst.data());
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n * 6));
}
BENCHMARK(convert_bf16_to_f32)->Name("convert/bf16_to_f32")->ArgName("path")->Arg(0)->Arg(1)->Arg(2);

void convert_f32_to_f16(benchmark::State& state) {
    const std::size_t n = std::size_t(1) << 22;
    std::vector<float> src(n);
    std::vector<f16> dst(n);
    std::mt19937 rng(2);
    std::normal_distribution<float> nd;
    for (auto& v : src) v = nd(rng);
    for (auto _ : state) {
        convert(src.data(), dst.data(), n);
        benchmark::DoNotOptimize(dst.data());
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n * 6));
}
BENCHMARK(convert_f32_to_f16)->Name("convert/f32_to_f16");

// MinerU2.5 stage 1: the page (850x1100 sample, RGB) to 1036x1036, Pillow-exact bicubic.
void resize_page_for_layout(benchmark::State& state) {
    const io::Image page = io::load_image(DOCVLM_SAMPLE_PAGE);
    for (auto _ : state) benchmark::DoNotOptimize(io::resize(page, 1036, 1036).pixels.data());
    state.SetItemsProcessed(std::int64_t(state.iterations()));
}
BENCHMARK(resize_page_for_layout)->Name("resize/page_to_1036_bicubic")->Unit(benchmark::kMillisecond);

void decode_page_png(benchmark::State& state) {
    io::MappedFile file(DOCVLM_SAMPLE_PAGE);
    for (auto _ : state) benchmark::DoNotOptimize(io::decode_image(file.bytes()).pixels.data());
}
BENCHMARK(decode_page_png)->Name("decode/page_png")->Unit(benchmark::kMillisecond);

// Cost of one parallel_for over the global pool with trivial work (a decode step issues ~170).
void parallel_for_dispatch(benchmark::State& state) {
    std::vector<int> sink(64);
    for (auto _ : state)
        parallel_for(sink.size(), [&](std::size_t b, std::size_t e) {
            for (std::size_t i = b; i < e; ++i) benchmark::DoNotOptimize(sink[i] += 1);
        });
}
BENCHMARK(parallel_for_dispatch)->Name("threads/parallel_for_dispatch")->Unit(benchmark::kMicrosecond);

}  // namespace
