// Layer benchmarks: one ViT block at Qwen2-VL size (1280 wide, 16 heads, MLP 5120, int8 weights)
// for 1369 and 5476 tokens, and window + anchor attention against full attention at 4k and 16k
// tokens (16 heads of 80, bf16 inputs), with the attention scratch memory as a counter.
#include <docvlm/layers/attention.hpp>
#include <docvlm/layers/norm.hpp>
#include <docvlm/layers/rope.hpp>
#include <docvlm/layers/vit_block.hpp>

#include <benchmark/benchmark.h>

#include <random>
#include <vector>

namespace {

using namespace docvlm;

std::vector<float> randn(std::size_t n, float scale, unsigned seed) {
    std::vector<float> v(n);
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, scale);
    for (auto& x : v) x = nd(rng);
    return v;
}

Linear<Int8PerChannel> random_linear(std::size_t out, std::size_t in, unsigned seed) {
    const auto w = randn(out * in, 1.0f / std::sqrt(float(in)), seed);
    const auto b = randn(out, 0.02f, seed + 1);
    return Linear<Int8PerChannel>(w.data(), out, in, b.data());
}

// x += attn(norm1 x); x += mlp(norm2 x), a Qwen2-VL vision block as MinerU2.5 runs it with int8
// weights (fused q | k | v, 2D rope, int8 attention).
void vit_block(benchmark::State& state) {
    const std::size_t n = std::size_t(state.range(0)), d = 1280, heads = 16, hd = 80, mlp = 5120;
    using A = SelfAttention<Int8PerChannel, FullAttention, Rope2D>;
    ViTBlock<Int8PerChannel, FullAttention, Rope2D> block;
    block.norm1 = block.norm2 = LayerNorm(std::vector<float>(d, 1.0f), std::vector<float>(d, 0.0f), 1e-6f);
    block.attn = A::fused(random_linear(3 * d, d, 1), random_linear(d, d, 7), heads, heads, AttentionInputs::int8);
    block.mlp = Mlp<Int8PerChannel>::plain(random_linear(mlp, d, 9), random_linear(d, mlp, 11), Activation::quick_gelu);
    std::vector<std::int64_t> rows(n), cols(n);
    const std::size_t side = std::size_t(std::sqrt(double(n)));
    for (std::size_t i = 0; i < n; ++i) rows[i] = std::int64_t(i / side), cols[i] = std::int64_t(i % side);
    const RopeTable rope = rope2d_table(rows, cols, hd, 10000.0f);
    auto x = randn(n * d, 1.0f, 13);
    Workspace ws;
    ws.reserve(n, d, 3 * d, 0, mlp);
    for (auto _ : state) {
        block.forward(x.data(), n, ws, &rope);
        benchmark::DoNotOptimize(x.data());
    }
    state.counters["tokens/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(vit_block)->Name("layers/vit_block_1280x16")->ArgName("tokens")->Arg(1369)->Arg(5476)->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MinWarmUpTime(1.0);  // first calls grow the kernels' per-thread packing buffers

// Full vs window (±128 tokens) + 16 anchors, bf16 inputs. Counter: attention scratch bytes
// (packed K/V and scaled queries: linear in n, no n x n matrix in either case).
void attention_mask(benchmark::State& state) {
    const std::size_t n = std::size_t(state.range(0)), heads = 16, hd = 80, qd = heads * hd, ld = 3 * qd;
    const bool window = state.range(1) != 0;
    const auto qkv = randn(n * ld, 1.0f, 17);
    std::vector<float> out(n * qd);
    kernels::AttentionParams p{.heads = heads, .kv_heads = heads, .head_dim = hd, .scale = 1.0f / std::sqrt(80.0f),
                               .window = window ? 128u : 0u, .anchors = window ? 16u : 0u, .bf16 = true};
    for (auto _ : state) {
        kernels::attention(qkv.data(), ld, qkv.data() + qd, ld, qkv.data() + 2 * qd, ld, out.data(), qd, n, n, p);
        benchmark::DoNotOptimize(out.data());
    }
    const std::size_t panels = (n + 31) / 32, dpanels = (hd + 31) / 32;
    const double scratch = double(heads) * panels * 32 * hd * (4 + 2) + double(heads) * dpanels * n * 32 * (4 + 2) + double(n) * qd * (4 + 2);
    state.counters["scratch_MB"] = scratch / 1e6;
    state.counters["n_x_n_f32_MB"] = double(n) * double(n) * 4 * heads / 1e6;  // what a score matrix would need
}
BENCHMARK(attention_mask)->Name("layers/attention_16x80")->ArgNames({"tokens", "window_anchor"})
    ->Args({4096, 0})->Args({4096, 1})->Args({16384, 0})->Args({16384, 1})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace
