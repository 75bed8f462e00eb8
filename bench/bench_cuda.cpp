// The CUDA backend beside the CPU in the same run, on MinerU2.5's sizes with random weights built
// in memory: the vision tower's 32 blocks (1280 wide, 16 heads of 80, MLP 5120, 2D rope) over a
// 1036 x 1036 page's 5476 patches, and the decoder (Qwen2-0.5B: 24 layers, 896 wide, 14 / 2 heads
// of 64, SwiGLU 4864, vocabulary 151936, tied head) prefilling 512 tokens and decoding at 1k
// tokens of context; weights int8 per channel (MinerU's default here), the decoder also bf16; and a
// page end to end: the embedded model (docvlm-small, int8) parsing examples/data/sample_page.png.
// Arg 0: the CPU kernels, 1: CUDA device 0 (skipped, with the reason, where there is none).
//
// Built with -DDOCVLM_CUDA=ON -DDOCVLM_BUILD_BENCH=ON (docvlm_bench_cuda); tools/cuda/check_on_gpu.sh runs it.
#include <docvlm/backend/backend.hpp>
#include <docvlm/model/decoder.hpp>
#include <docvlm/layers/rope.hpp>
#include <docvlm/layers/vit_block.hpp>
#include <docvlm/pipeline/embedded_parser.hpp>
#include <docvlm/presets/docvlm_small.hpp>

#include <benchmark/benchmark.h>

#include <cstdlib>

#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace docvlm;

constexpr std::size_t layers = 24, hidden = 896, heads = 14, kv_heads = 2, head_dim = 64, mlp = 4864, vocab = 151936;

std::vector<float> normal(std::size_t n, float scale, std::mt19937& rng) {
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = nd(rng);
    return v;
}

template <WeightPolicy W>
Linear<W> random_linear(std::size_t out, std::size_t in, bool bias, std::mt19937& rng) {
    const auto w = normal(out * in, 1.0f / std::sqrt(float(in)), rng), b = normal(out, 0.02f, rng);
    return Linear<W>(w.data(), out, in, bias ? b.data() : nullptr);
}

template <WeightPolicy W>
Decoder<W> random_decoder() {
    std::mt19937 rng(11);
    Decoder<W> dec;
    for (std::size_t l = 0; l < layers; ++l) {
        DecoderBlock<W> b;
        b.norm1 = RMSNorm(std::vector<float>(hidden, 1.0f), 1e-6f);
        b.norm2 = RMSNorm(std::vector<float>(hidden, 1.0f), 1e-6f);
        b.q = random_linear<W>(heads * head_dim, hidden, true, rng);
        b.k = random_linear<W>(kv_heads * head_dim, hidden, true, rng);
        b.v = random_linear<W>(kv_heads * head_dim, hidden, true, rng);
        b.o = random_linear<W>(hidden, heads * head_dim, false, rng);
        b.mlp = Mlp<W>::gated(random_linear<W>(mlp, hidden, false, rng), random_linear<W>(mlp, hidden, false, rng),
                              random_linear<W>(hidden, mlp, false, rng));
        b.heads = heads, b.kv_heads = kv_heads, b.head_dim = head_dim;
        dec.blocks.push_back(std::move(b));
    }
    dec.norm = RMSNorm(std::vector<float>(hidden, 1.0f), 1e-6f);
    const auto table = normal(vocab * hidden, 0.02f, rng);
    dec.embed = Embedding(table.data(), vocab, hidden, true);
    dec.head = Linear<W>(table.data(), vocab, hidden);
    dec.validate();
    return dec;
}

// One object per (type, device), made on first use and moved to CUDA device 0 for `cuda`; null
// (the benchmark skipped with the runtime's reason) where there is no such device.
template <class T, class Make>
T* made_on(bool cuda, benchmark::State& state, Make&& make) {
    static std::map<bool, std::unique_ptr<T>> made;
    auto& t = made[cuda];
    if (!t) {
        std::shared_ptr<backend::Backend> be;
        if (cuda) {
            try {
                be = backend::make_cuda_backend(0);
            } catch (const Error& e) {
                state.SkipWithError(e.what());
                return nullptr;
            }
        }
        t = std::make_unique<T>(make());
        if (be) t->to_device(be);
    }
    return t.get();
}

template <WeightPolicy W>
Decoder<W>* decoder(bool cuda, benchmark::State& state) {
    return made_on<Decoder<W>>(cuda, state, [] { return random_decoder<W>(); });
}

template <WeightPolicy W>
std::vector<float> embed(const Decoder<W>& dec, std::size_t n, std::size_t from) {
    std::vector<float> x(n * hidden);
    for (std::size_t i = 0; i < n; ++i) dec.embed.row(std::int32_t(100 + (from + i) * 7919 % 100000), x.data() + i * hidden);
    return x;
}

RopeTable rope_rows(std::size_t from, std::size_t n) {
    std::vector<std::int64_t> pos(n);
    for (std::size_t i = 0; i < n; ++i) pos[i] = std::int64_t(from + i);
    return rope1d_table(pos, head_dim, 1000000.0f);
}

template <WeightPolicy W>
void prefill_512(benchmark::State& state) {
    Decoder<W>* dec = decoder<W>(state.range(0) == 1, state);
    if (!dec) return;
    const std::size_t n = 512;
    const auto x = embed(*dec, n, 0);
    const RopeTable rope = rope_rows(0, n);
    for (auto _ : state) {
        typename Decoder<W>::State s(*dec, n);
        benchmark::DoNotOptimize(dec->forward(s, x.data(), n, rope).data());
    }
    state.counters["tokens/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
}

template <WeightPolicy W>
void decode_at_1k(benchmark::State& state) {
    Decoder<W>* dec = decoder<W>(state.range(0) == 1, state);
    if (!dec) return;
    const std::size_t context = 1000, steps = 64;
    typename Decoder<W>::State s(*dec, context + steps + 1);
    dec->forward(s, embed(*dec, context, 0).data(), context, rope_rows(0, context));
    std::size_t at = context;
    for (auto _ : state) {
        const auto x = embed(*dec, 1, at);
        benchmark::DoNotOptimize(dec->forward(s, x.data(), 1, rope_rows(at, 1)).data());
        ++at;
    }
    state.counters["tokens/s"] = benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- the vision tower ----
using Tower = ViTStack<Int8PerChannel, FullAttention, Rope2D>;
constexpr std::size_t v_depth = 32, v_dim = 1280, v_heads = 16, v_mlp = 5120, grid = 74;

Tower random_tower() {
    std::mt19937 rng(13);
    Tower t;
    for (std::size_t l = 0; l < v_depth; ++l) {
        Tower::Block b;
        b.norm1 = LayerNorm(std::vector<float>(v_dim, 1.0f), std::vector<float>(v_dim, 0.0f), 1e-6f);
        b.norm2 = LayerNorm(std::vector<float>(v_dim, 1.0f), std::vector<float>(v_dim, 0.0f), 1e-6f);
        b.attn = SelfAttention<Int8PerChannel, FullAttention, Rope2D>::fused(random_linear<Int8PerChannel>(3 * v_dim, v_dim, true, rng),
                                                                             random_linear<Int8PerChannel>(v_dim, v_dim, true, rng), v_heads,
                                                                             v_heads, AttentionInputs::int8);
        b.mlp = Mlp<Int8PerChannel>::plain(random_linear<Int8PerChannel>(v_mlp, v_dim, true, rng),
                                           random_linear<Int8PerChannel>(v_dim, v_mlp, true, rng), Activation::quick_gelu);
        t.blocks.push_back(std::move(b));
    }
    return t;
}

void vision_tower_page(benchmark::State& state) {
    Tower* t = made_on<Tower>(state.range(0) == 1, state, random_tower);
    if (!t) return;
    const std::size_t n = grid * grid;
    std::vector<std::int64_t> rows(n), cols(n);
    for (std::size_t i = 0; i < n; ++i) rows[i] = std::int64_t(i / grid), cols[i] = std::int64_t(i % grid);
    const RopeTable rope = rope2d_table(rows, cols, v_dim / v_heads, 10000.0f);
    std::mt19937 rng(3);
    const auto x0 = normal(n * v_dim, 1.0f, rng);
    Workspace ws = t->workspace(n);
    for (auto _ : state) {
        std::vector<float> x = x0;
        t->forward(x.data(), n, ws, &rope);
        benchmark::DoNotOptimize(x.data());
    }
    state.counters["patches/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
}

// ---- a page end to end ----
void embedded_page(benchmark::State& state) {
    using Small = Model<presets::DocvlmSmall<Int8PerChannel>>;
    Small* m = made_on<Small>(state.range(0) == 1, state, [] { return load_default_model<Int8PerChannel>(); });
    if (!m) return;
    const char* env = std::getenv("DOCVLM_SAMPLE_PAGE");
    const io::Image page = io::load_image(env && *env ? env : DOCVLM_SAMPLE_PAGE, io::ColorMode::gray);
    const pipeline::EmbeddedPageParser parser(*m);
    for (auto _ : state) benchmark::DoNotOptimize(parser.parse(page));
    state.counters["crops"] = double(parser.phase_times().blocks) / double(parser.phase_times().pages);
}

BENCHMARK(embedded_page)->Name("cuda/embedded_parse_sample_page/int8/gpu")->Arg(0)->Arg(1)->Unit(benchmark::kSecond)->Iterations(3)->UseRealTime();
BENCHMARK(vision_tower_page)->Name("cuda/vision_tower_1036x1036_page/int8/gpu")->Arg(0)->Arg(1)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();
BENCHMARK(prefill_512<Int8PerChannel>)->Name("cuda/decoder_prefill_512/int8/gpu")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(decode_at_1k<Int8PerChannel>)->Name("cuda/decoder_decode_at_1k/int8/gpu")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(64)->UseRealTime();
BENCHMARK(prefill_512<BF16>)->Name("cuda/decoder_prefill_512/bf16/gpu")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(decode_at_1k<BF16>)->Name("cuda/decoder_decode_at_1k/bf16/gpu")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(64)->UseRealTime();

}  // namespace
