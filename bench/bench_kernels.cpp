// Kernel benchmarks: docvlm's int8 GEMM (qgemm/*) and, in the same binary, oneDNN and OpenBLAS
// on the same shapes (onednn_s8/*, onednn_f32/*, openblas_sgemm/*); the machine's own limits
// (roofline/*) are in bench_roofline.cpp. Shapes are MinerU2.5's: Qwen2-0.5B decoding and prefill, the 1280-wide ViT on
// a 1036x1036 page (5476 patches). Counters: GOP/s (2·M·N·K per second) and, for M = 1, GB/s of
// weights streamed. Threads: docvlm uses $DOCVLM_NUM_THREADS (default: all cores); oneDNN and
// OpenBLAS use OMP_NUM_THREADS / OPENBLAS_NUM_THREADS (default: all cores).
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/kernels/attention.hpp>
#include <docvlm/kernels/gemm.hpp>
#include <docvlm/kernels/qgemm.hpp>

#include <benchmark/benchmark.h>
#include <cblas.h>
#include <dnnl.hpp>

#include <random>
#include <type_traits>
#include <vector>

DOCVLM_SIMD_WARNINGS_OFF
namespace {

using namespace docvlm;

struct Shape {
    const char* name;
    std::size_t m, k, n;
};
constexpr Shape shapes[] = {
    {"decode_qkv", 1, 896, 1152},       {"decode_up", 1, 896, 4864},        {"decode_down", 1, 4864, 896},
    {"lm_head", 1, 896, 151936},        {"prefill_up", 512, 896, 4864},     {"vision_qkv", 5476, 1280, 3840},
    {"vision_fc1", 5476, 1280, 5120},   {"vision_fc2", 5476, 5120, 1280},
};

std::vector<float> random_floats(std::size_t n, unsigned seed, float scale = 1.0f) {
    std::vector<float> v(n);
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, scale);
    for (auto& x : v) x = nd(rng);
    return v;
}

void set_counters(benchmark::State& state, const Shape& s, double weight_bytes) {
    const double ops = 2.0 * double(s.m) * double(s.n) * double(s.k);
    state.counters["GOP/s"] = benchmark::Counter(ops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    if (s.m == 1)
        state.counters["GB/s"] = benchmark::Counter(weight_bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- docvlm int8 ---------------------------------------------------------------------------------

// qmax: the weights' int8 range (kernels::default_weight_qmax(): ±63 on AVX2 without VNNI).
void qgemm_bench(benchmark::State& state, Shape s, bool quantize_input, int qmax) {
    const auto w = random_floats(s.n * s.k, 1, 0.05f);
    const kernels::QuantizedWeight qw = kernels::quantize_weight(w.data(), s.n, s.k, 0, qmax);
    const auto x = random_floats(s.m * s.k, 2);
    kernels::QuantizedActivations acts;
    kernels::quantize_activations(x.data(), s.m, s.k, s.k, acts, kernels::activation_qpath(qw));
    std::vector<float> y(s.m * s.n);
    for (auto _ : state) {
        if (quantize_input) kernels::qgemm(x.data(), s.m, s.k, qw, y.data(), s.n);
        else kernels::qgemm(acts, qw, y.data(), s.n);
        benchmark::DoNotOptimize(y.data());
    }
    set_counters(state, s, double(s.n) * double(qw.k_padded));
    state.SetLabel(kernels::qpath_name(acts.path));
}

// GEMV with weights out of every cache: four lm_head-sized matrices (4 x 136 MB of int8, more
// than an L3 of 260 MB) used in turn, as the 512 MiB of roofline/bandwidth are; compare its GB/s
// with that benchmark's in the same run.
void qgemv_streaming(benchmark::State& state) {
    const Shape s{"lm_head", 1, 896, 151936};
    std::vector<kernels::QuantizedWeight> ws;
    {
        const auto w = random_floats(s.n * s.k, 1, 0.05f);
        for (int i = 0; i < 4; ++i) ws.push_back(kernels::quantize_weight(w.data(), s.n, s.k));
    }
    const auto x = random_floats(s.k, 2);
    kernels::QuantizedActivations acts;
    kernels::quantize_activations(x.data(), 1, s.k, s.k, acts, kernels::activation_qpath(ws[0]));
    std::vector<float> y(s.n);
    std::size_t i = 0;
    for (auto _ : state) {
        kernels::qgemm(acts, ws[i++ % ws.size()], y.data(), s.n);
        benchmark::DoNotOptimize(y.data());
    }
    set_counters(state, s, double(s.n) * double(ws[0].k_padded));
    state.SetLabel(kernels::qpath_name(acts.path));
}
BENCHMARK(qgemv_streaming)->Name("qgemm/lm_head_x4_streaming")->Unit(benchmark::kMillisecond)->UseRealTime();

// ---- docvlm f32 and bf16 ---------------------------------------------------------------------------

void sgemm_bench(benchmark::State& state, Shape s) {
    const auto w = random_floats(s.n * s.k, 1, 0.05f), x = random_floats(s.m * s.k, 2);
    const kernels::PackedF32 pw = kernels::pack_f32(w.data(), s.n, s.k);
    std::vector<float> y(s.m * s.n);
    for (auto _ : state) {
        kernels::sgemm(x.data(), s.m, s.k, pw, y.data(), s.n);
        benchmark::DoNotOptimize(y.data());
    }
    set_counters(state, s, double(s.n) * double(s.k) * 4.0);
}

void bgemm_bench(benchmark::State& state, Shape s) {
    const auto w = random_floats(s.n * s.k, 1, 0.05f), x = random_floats(s.m * s.k, 2);
    const kernels::PackedBF16 pw = kernels::pack_bf16(w.data(), s.n, s.k);
    std::vector<float> y(s.m * s.n);
    for (auto _ : state) {
        kernels::bgemm(x.data(), s.m, s.k, pw, y.data(), s.n);
        benchmark::DoNotOptimize(y.data());
    }
    set_counters(state, s, double(s.n) * double(pw.k_padded) * 2.0);
}

// ---- attention -------------------------------------------------------------------------------------

// The ViT layer of the layout pass: 5476 tokens, 16 heads of 80, full attention. Counter: GFLOP/s of
// QKᵀ + PV (4·n²·d per head). Arg bf16: 1 takes the bf16 path; the int8 variant takes the int8 one.
void attention_vision(benchmark::State& state, bool int8) {
    const std::size_t n = 5476, heads = 16, d = 80, ld = 3 * heads * d;
    const auto qkv = random_floats(n * ld, 9);
    std::vector<float> out(n * heads * d);
    kernels::AttentionParams p{.heads = heads, .kv_heads = heads, .head_dim = d, .scale = 1.0f / std::sqrt(80.0f),
                               .bf16 = !int8 && state.range(0) != 0, .bf16_even_if_slower = true, .int8 = int8};
    for (auto _ : state) {
        kernels::attention(qkv.data(), ld, qkv.data() + heads * d, ld, qkv.data() + 2 * heads * d, ld, out.data(), heads * d, n, n, p);
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["GFLOP/s"] = benchmark::Counter(4.0 * n * n * d * heads * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK_CAPTURE(attention_vision, f32_bf16, false)->Name("attention/vision_5476x16x80")->ArgName("bf16")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(attention_vision, int8, true)->Name("attention/vision_5476x16x80_int8")->Unit(benchmark::kMillisecond)->UseRealTime();

// The decoder's prefill of MinerU2.5's layout prompt: 1394 tokens, 14 query heads and 2 KV heads of
// 64 (Qwen2-0.5B), causal. Counter: GFLOP/s of the visible half of QKᵀ + PV (2·n²·d per head).
// Arg int8: 1 takes the int8 path (what int8 models use), 0 the f32 one.
void attention_prefill(benchmark::State& state) {
    const std::size_t n = 1394, heads = 14, kvh = 2, d = 64, ld = (heads + 2 * kvh) * d;
    const auto qkv = random_floats(n * ld, 12);
    std::vector<float> out(n * heads * d);
    kernels::AttentionParams p{.heads = heads, .kv_heads = kvh, .head_dim = d, .scale = 0.125f, .causal = true,
                               .int8 = state.range(0) != 0};
    for (auto _ : state) {
        kernels::attention(qkv.data(), ld, qkv.data() + heads * d, ld, qkv.data() + (heads + kvh) * d, ld, out.data(), heads * d, n, n, p);
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * d * heads * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(attention_prefill)->Name("attention/prefill_1394x14x64_causal")->ArgName("int8")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// One decoding step of Qwen2-0.5B attention (14 query heads, 2 KV heads of 64) over `context` cached tokens.
void attention_decode(benchmark::State& state) {
    const std::size_t ctx = std::size_t(state.range(0)), heads = 14, kvh = 2, d = 64;
    const auto q = random_floats(heads * d, 10), kv = random_floats(ctx * 2 * kvh * d, 11);
    std::vector<float> out(heads * d);
    kernels::AttentionParams p{.heads = heads, .kv_heads = kvh, .head_dim = d, .scale = 0.125f, .causal = true, .q_offset = ctx - 1};
    for (auto _ : state) {
        kernels::attention(q.data(), heads * d, kv.data(), 2 * kvh * d, kv.data() + kvh * d, 2 * kvh * d, out.data(), heads * d, 1, ctx, p);
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["GB/s"] = benchmark::Counter(double(ctx) * 2 * kvh * d * 4 * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(attention_decode)->Name("attention/decode")->ArgName("context")->Arg(1024)->Arg(4096)->Unit(benchmark::kMicrosecond)->UseRealTime();

// ---- baselines -----------------------------------------------------------------------------------

void onednn_bench(benchmark::State& state, Shape s, bool int8) {
    using namespace dnnl;
    engine eng(engine::kind::cpu, 0);
    stream strm(eng);
    const memory::dims src_dims = {memory::dim(s.m), memory::dim(s.k)}, wei_dims = {memory::dim(s.k), memory::dim(s.n)},
                       dst_dims = {memory::dim(s.m), memory::dim(s.n)};
    const auto st = int8 ? memory::data_type::u8 : memory::data_type::f32;
    const auto wt = int8 ? memory::data_type::s8 : memory::data_type::f32;
    memory::desc src_md(src_dims, st, memory::format_tag::ab), dst_md(dst_dims, memory::data_type::f32, memory::format_tag::ab);
    memory::desc wei_any(wei_dims, wt, memory::format_tag::any), wei_plain(wei_dims, wt, memory::format_tag::ba);
    primitive_attr attr;
    if (int8) attr.set_output_scales(0, {0.01f});
    matmul::primitive_desc pd(matmul::desc(src_md, wei_any, dst_md), attr, eng);
    memory src(src_md, eng), dst(dst_md, eng), wei_user(wei_plain, eng), wei(pd.weights_desc(), eng);
    std::mt19937 rng(3);
    if (int8) {
        auto* p = static_cast<std::uint8_t*>(src.get_data_handle());
        for (std::size_t i = 0; i < s.m * s.k; ++i) p[i] = std::uint8_t(rng());
        auto* q = static_cast<std::int8_t*>(wei_user.get_data_handle());
        for (std::size_t i = 0; i < s.k * s.n; ++i) q[i] = std::int8_t(rng() % 255 - 127);
    } else {
        const auto a = random_floats(s.m * s.k, 4), b = random_floats(s.k * s.n, 5);
        std::memcpy(src.get_data_handle(), a.data(), a.size() * 4);
        std::memcpy(wei_user.get_data_handle(), b.data(), b.size() * 4);
    }
    reorder(wei_user, wei).execute(strm, wei_user, wei);  // packed once, like docvlm's weights
    matmul prim(pd);
    for (auto _ : state) {
        prim.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
        strm.wait();
    }
    set_counters(state, s, double(s.k) * double(s.n) * (int8 ? 1.0 : 4.0));
}

void openblas_bench(benchmark::State& state, Shape s) {
    const auto a = random_floats(s.m * s.k, 6), w = random_floats(s.n * s.k, 7);
    std::vector<float> c(s.m * s.n);
    for (auto _ : state) {
        // y [M, N] = x [M, K] · W [N, K]ᵀ
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(s.m), int(s.n), int(s.k), 1.0f, a.data(), int(s.k), w.data(),
                    int(s.k), 0.0f, c.data(), int(s.n));
        benchmark::DoNotOptimize(c.data());
    }
    set_counters(state, s, double(s.k) * double(s.n) * 4.0);
}

const int registered = [] {
    for (const Shape& s : shapes) {
        const std::string n = s.name;
        const auto unit = s.m == 1 ? benchmark::kMicrosecond : benchmark::kMillisecond;
        const int qmax = kernels::default_weight_qmax();
        benchmark::RegisterBenchmark(("qgemm/" + n).c_str(), qgemm_bench, s, false, qmax)->Unit(unit)->UseRealTime();
        benchmark::RegisterBenchmark(("qgemm_f32in/" + n).c_str(), qgemm_bench, s, true, qmax)->Unit(unit)->UseRealTime();
        // where the default range is narrower (AVX2 without VNNI), the full-range weights too
        if (qmax != 127)
            benchmark::RegisterBenchmark(("qgemm_w127/" + n).c_str(), qgemm_bench, s, false, 127)->Unit(unit)->UseRealTime();
        benchmark::RegisterBenchmark(("sgemm/" + n).c_str(), sgemm_bench, s)->Unit(unit)->UseRealTime();
        benchmark::RegisterBenchmark(("bgemm/" + n).c_str(), bgemm_bench, s)->Unit(unit)->UseRealTime();
        benchmark::RegisterBenchmark(("onednn_s8/" + n).c_str(), onednn_bench, s, true)->Unit(unit)->UseRealTime();
        benchmark::RegisterBenchmark(("onednn_f32/" + n).c_str(), onednn_bench, s, false)->Unit(unit)->UseRealTime();
        benchmark::RegisterBenchmark(("openblas_sgemm/" + n).c_str(), openblas_bench, s)->Unit(unit)->UseRealTime();
    }
    return 0;
}();

}  // namespace
DOCVLM_SIMD_WARNINGS_ON
