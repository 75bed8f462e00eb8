// Tests of docvlm/layers against PyTorch: tests/data/reference/layers.safetensors holds inputs,
// weights and outputs computed with torch by tools/reference/layers_reference.py.
#include "test_util.hpp"

#include <docvlm/layers/attention.hpp>
#include <docvlm/layers/grid_resize.hpp>
#include <docvlm/layers/patch_embed.hpp>
#include <docvlm/layers/projector.hpp>
#include <docvlm/layers/rope.hpp>
#include <docvlm/model/weights.hpp>

#include <cmath>
#include <map>
#include <random>

using namespace docvlm;

namespace {

const io::Checkpoint& ref() {
    static const io::Checkpoint ck = io::Checkpoint::open(test::data("reference/layers.safetensors"));
    return ck;
}
const nlohmann::json& cases() {
    static const nlohmann::json j = nlohmann::json::parse(ref().shards()[0].metadata().at("cases"));
    return j;
}
std::vector<float> get(const std::string& name) {
    const auto a = ref().to_f32(name);
    return {a.begin(), a.end()};
}
std::size_t rows(const std::string& name) { return ref().info(name).shape[0]; }
std::size_t cols(const std::string& name) { return ref().info(name).shape.size() > 1 ? ref().info(name).shape[1] : 1; }

template <WeightPolicy W = F32>
Linear<W> lin(const std::string& c, const std::string& name, bool bias = true) {
    const std::string w = c + "." + name + ".weight";
    return load_linear<W>(ref(), w, bias && ref().contains(c + "." + name + ".bias") ? c + "." + name + ".bias" : "", rows(w), cols(w));
}

Activation act_of(const std::string& s) {
    if (s == "gelu_erf") return Activation::gelu_erf;
    if (s == "gelu_tanh") return Activation::gelu_tanh;
    if (s == "quick_gelu") return Activation::quick_gelu;
    return Activation::silu;
}

double vec_rel_err(const std::vector<float>& got, const std::vector<float>& want) {
    REQUIRE(got.size() == want.size());
    double e = 0, s = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        e = test::worse(e, std::fabs(double(got[i]) - want[i]));
        s = std::max(s, std::fabs(double(want[i])));
    }
    return e / s;
}

// q | k | v of a case as one projection: the weights' rows (and biases) stacked.
Linear<F32> fused_qkv(const std::string& c) {
    std::vector<float> w, b;
    for (const char* part : {"q", "k", "v"}) {
        const auto pw = get(c + "." + part + ".weight");
        w.insert(w.end(), pw.begin(), pw.end());
        const std::string bias = c + "." + part + ".bias";
        const auto pb = ref().contains(bias) ? get(bias) : std::vector<float>(rows(c + "." + part + ".weight"), 0.0f);
        b.insert(b.end(), pb.begin(), pb.end());
    }
    return Linear<F32>(w.data(), b.size(), cols(c + ".q.weight"), b.data());
}

// Runs one self-attention case with the mask and position policies named in its settings (q, k
// and v as three projections, or fused into one).
template <class Mask, class Pos>
std::vector<float> run_attention(const std::string& c, const RopeTable* rope, bool fused = false) {
    const auto& cfg = cases()[c];
    using A = SelfAttention<F32, Mask, Pos>;
    const A attn = fused ? A::fused(fused_qkv(c), lin(c, "o"), cfg["heads"], cfg["kv_heads"])
                         : A(lin(c, "q"), lin(c, "k"), lin(c, "v"), lin(c, "o"), cfg["heads"], cfg["kv_heads"]);
    const auto x = get(c + ".x");
    const std::size_t n = rows(c + ".x"), d = cols(c + ".x");
    std::vector<float> y(n * d);
    Workspace ws;
    attn.forward(x.data(), n, rope, ws, y.data(), d);
    return y;
}

}  // namespace

TEST_SUITE("layers") {

TEST_CASE("MLPs (GELU erf/tanh, QuickGELU, SwiGLU) match PyTorch") {
    for (const char* cname : {"mlp_gelu_erf", "mlp_gelu_tanh", "mlp_quick_gelu", "mlp_swiglu"}) {
        const std::string c = cname;
        CAPTURE(c);
        const auto& cfg = cases()[c];
        const Mlp<F32> mlp = cfg["gated"].get<bool>() ? Mlp<F32>::gated(lin(c, "gate", false), lin(c, "up", false), lin(c, "down", false))
                                                       : Mlp<F32>::plain(lin(c, "fc1"), lin(c, "fc2"), act_of(cfg["act"]));
        const auto x = get(c + ".x");
        std::vector<float> y(rows(c + ".y") * cols(c + ".y"));
        Workspace ws;
        mlp.forward(x.data(), rows(c + ".x"), y.data(), cols(c + ".y"), ws);
        CHECK(vec_rel_err(y, get(c + ".y")) <= 1e-5);
    }
}

TEST_CASE("a 16 x 16 position table resized to 32, 24, 5 and 4 cells a side matches F.interpolate(bicubic)") {
    const auto& cfg = cases()["grid_resize"];
    const std::size_t src = cfg["src"], ch = cfg["channels"];
    const auto x = get("grid_resize.x");
    for (std::size_t side : cfg["sides"].get<std::vector<std::size_t>>()) {
        CAPTURE(side);
        // PyTorch adds the 16 weighted cells in another order: float rounding of 16 products with
        // weights |w| ≤ 1.3 stays within 16 · 2^-24 · Σ|w| ≈ 4e-6 of the inputs' scale
        CHECK(vec_rel_err(resize_grid_bicubic(x.data(), src, src, ch, side, side), get("grid_resize.y" + std::to_string(side))) <= 4e-6);
    }
    CHECK_THROWS_AS(resize_grid_bicubic(x.data(), 0, src, ch, 4, 4), Error);
}

TEST_CASE("RMSNorm and LayerNorm match PyTorch") {
    const auto x = get("rmsnorm.x");
    std::vector<float> y(x.size());
    load_rms_norm(ref(), "rmsnorm.norm.weight", 64, 1e-6f).forward(x.data(), 11, 64, y.data(), 64);
    CHECK(vec_rel_err(y, get("rmsnorm.y")) <= 1e-5);
    const auto xl = get("layernorm.x");
    load_layer_norm(ref(), "layernorm.norm", 64, 1e-6f).forward(xl.data(), 11, 64, y.data(), 64);
    CHECK(vec_rel_err(y, get("layernorm.y")) <= 1e-5);
}

TEST_CASE("self-attention: full + 2D rope, causal GQA + 1D rope, window + anchors match PyTorch, q/k/v separate or fused") {
    for (const bool fused : {false, true}) {
        CAPTURE(fused);
        {
            const auto r = get("attn_full_rope2d.rows"), c = get("attn_full_rope2d.cols");
            const std::vector<std::int64_t> ri(r.begin(), r.end()), ci(c.begin(), c.end());
            const RopeTable rope = rope2d_table(ri, ci, 16, 10000.0f);
            CHECK(vec_rel_err(run_attention<FullAttention, Rope2D>("attn_full_rope2d", &rope, fused), get("attn_full_rope2d.y")) <= 1e-5);
        }
        {
            std::vector<std::int64_t> pos(29);
            for (std::size_t i = 0; i < pos.size(); ++i) pos[i] = std::int64_t(i);
            const RopeTable rope = rope1d_table(pos, 16, 10000.0f);
            CHECK(vec_rel_err(run_attention<CausalAttention, Rope1D>("attn_causal_gqa_rope1d", &rope, fused), get("attn_causal_gqa_rope1d.y")) <= 1e-5);
        }
        CHECK(vec_rel_err(run_attention<WindowAnchor<6, 3>, NoPosition>("attn_window_anchor", nullptr, fused), get("attn_window_anchor.y")) <= 1e-5);
        CHECK_ERROR_HAS((run_attention<FullAttention, Rope2D>("attn_full_rope2d", nullptr, fused)), "rope table");
    }
    CHECK_ERROR_HAS((SelfAttention<F32, FullAttention, NoPosition>::fused(lin("attn_full_rope2d", "q"), lin("attn_full_rope2d", "o"), 3, 3)),
                    "is not q | k | v");
}

TEST_CASE("gated cross-attention (scalar and per-channel gates) matches PyTorch") {
    for (const char* cname : {"xattn_scalar_gate", "xattn_channel_gate"}) {
        const std::string c = cname;
        CAPTURE(c);
        const auto& cfg = cases()[c];
        const GatedCrossAttentionLayer<F32> block(load_rms_norm(ref(), c + ".norm1.weight", 64, 1e-6f), lin(c, "q"), lin(c, "k"), lin(c, "v"),
                                             lin(c, "o"), get(c + ".attn_gate"), load_rms_norm(ref(), c + ".norm2.weight", 64, 1e-6f),
                                             Mlp<F32>::plain(lin(c, "fc1"), lin(c, "fc2"), act_of(cfg["act"])), get(c + ".mlp_gate"),
                                             cfg["heads"], cfg["kv_heads"]);
        const auto vis = get(c + ".vision");
        const VisionKV kv = block.project(vis.data(), rows(c + ".vision"));
        auto x = get(c + ".x");
        Workspace ws;
        block.forward(x.data(), rows(c + ".x"), kv, ws);
        CHECK(vec_rel_err(x, get(c + ".y")) <= 1e-5);
        // int8 weights stay close
        const GatedCrossAttentionLayer<Int8PerChannel> q8(
            load_rms_norm(ref(), c + ".norm1.weight", 64, 1e-6f), lin<Int8PerChannel>(c, "q"), lin<Int8PerChannel>(c, "k"),
            lin<Int8PerChannel>(c, "v"), lin<Int8PerChannel>(c, "o"), get(c + ".attn_gate"), load_rms_norm(ref(), c + ".norm2.weight", 64, 1e-6f),
            Mlp<Int8PerChannel>::plain(lin<Int8PerChannel>(c, "fc1"), lin<Int8PerChannel>(c, "fc2"), act_of(cfg["act"])), get(c + ".mlp_gate"),
            cfg["heads"], cfg["kv_heads"]);
        auto x8 = get(c + ".x");
        q8.forward(x8.data(), rows(c + ".x"), q8.project(vis.data(), rows(c + ".vision")), ws);
        CHECK(vec_rel_err(x8, get(c + ".y")) <= 3e-2);
    }
    CHECK_ERROR_HAS(GatedCrossAttentionLayer<F32>(RMSNorm({1, 1}, 1e-6f), Linear<F32>(std::vector<float>(4).data(), 2, 2), Linear<F32>(std::vector<float>(4).data(), 2, 2),
                                             Linear<F32>(std::vector<float>(4).data(), 2, 2), Linear<F32>(std::vector<float>(4).data(), 2, 2), {0, 0, 0},
                                             RMSNorm({1, 1}, 1e-6f), Mlp<F32>::plain(Linear<F32>(std::vector<float>(4).data(), 2, 2), Linear<F32>(std::vector<float>(4).data(), 2, 2), Activation::none),
                                             {0}, 1, 1),
                    "gate has 3 values");
}

TEST_CASE("PatchEmbed is a convolution whose stride is its kernel, patches numbered by rows or by columns") {
    std::mt19937 rng(9);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const std::size_t C = 3, P = 4, H = 12, Wd = 8, dim = 5, rows = H / P, cols = Wd / P;
    std::vector<float> image(C * H * Wd), w(dim * C * P * P), bias(dim);
    for (auto* v : {&image, &w, &bias})
        for (float& e : *v) e = nd(rng);
    const PatchEmbed<F32> pe(Linear<F32>(w.data(), dim, C * P * P, bias.data()), C, P);
    for (const PatchOrder order : {PatchOrder::rows, PatchOrder::columns}) {
        std::vector<float> got(rows * cols * dim);
        pe.forward(image.data(), H, Wd, order, got.data(), dim);
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t c = 0; c < cols; ++c)
                for (std::size_t o = 0; o < dim; ++o) {  // the convolution at output pixel (r, c), channel o
                    double want = bias[o];
                    for (std::size_t ch = 0; ch < C; ++ch)
                        for (std::size_t y = 0; y < P; ++y)
                            for (std::size_t x = 0; x < P; ++x)
                                want += double(w[((o * C + ch) * P + y) * P + x]) * image[(ch * H + r * P + y) * Wd + c * P + x];
                    const std::size_t token = order == PatchOrder::rows ? r * cols + c : c * rows + r;
                    CHECK(std::fabs(got[token * dim + o] - want) <= 1e-5 * (1 + std::fabs(want)));
                }
    }
    std::vector<float> out(100);
    CHECK_ERROR_HAS(pe.forward(image.data(), 10, Wd, PatchOrder::rows, out.data(), dim), "is not made of 4-pixel patches");
}

TEST_CASE("Projector: norm, groups of tokens as one row, fc1 + activation, fc2; traced under the names given") {
    std::mt19937 rng(10);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const std::size_t n = 8, dim = 6, group = 4, mid = 10, out_w = 3;
    std::vector<float> x(n * dim), w1(mid * group * dim), w2(out_w * mid), g(dim, 1.5f), b(dim, 0.25f);
    for (auto* v : {&x, &w1, &w2})
        for (float& e : *v) e = nd(rng);
    Projector<F32> p;
    p.norm = LayerNorm(g, b, 1e-6f);
    p.fc1 = Linear<F32>(w1.data(), mid, group * dim);
    p.fc2 = Linear<F32>(w2.data(), out_w, mid);
    p.act = Activation::gelu_erf;
    p.group = group;
    p.names.norm = "normed", p.names.out = "projected";
    std::map<std::string, std::vector<float>> seen;
    const Trace trace = [&](std::string_view name, const float* v, std::size_t r, std::size_t c) { seen[std::string(name)].assign(v, v + r * c); };
    const Tensor<float, 2> y = p.forward(x.data(), n, trace);
    REQUIRE(y.shape()[0] == n / group);
    // the same steps, one at a time
    std::vector<float> h(n * dim), m((n / group) * mid), want((n / group) * out_w);
    p.norm->forward(x.data(), n, dim, h.data(), dim);
    p.fc1.forward(h.data(), n / group, group * dim, m.data(), mid);
    kernels::activate(Activation::gelu_erf, m.data(), m.size());
    p.fc2.forward(m.data(), n / group, mid, want.data(), out_w);
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(std::fabs(y.data()[i] - want[i]) <= 1e-5f * (1 + std::fabs(want[i])));
    CHECK(seen.size() == 2);
    CHECK(seen["normed"] == h);
    CHECK(seen["projected"] == std::vector<float>(y.data(), y.data() + y.size()));
    CHECK_ERROR_HAS(p.forward(x.data(), 6, trace), "in groups of 4");
}

TEST_CASE("forward_same_input gives what separate forward calls give, bit for bit, and checks the layers' inputs") {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const std::size_t m = 37, in = 96;
    std::vector<float> x(m * in), wq(64 * in), wk(32 * in), bias(64), wrong(32 * 40);
    for (auto* v : {&x, &wq, &wk, &bias, &wrong})
        for (float& e : *v) e = nd(rng);
    auto check = [&]<class W>(W) {
        const Linear<W> q(wq.data(), 64, in, bias.data()), k(wk.data(), 32, in);
        std::vector<float> q1(m * 64), k1(m * 32), q2(m * 64, -1.0f), k2(m * 32, -1.0f);
        q.forward(x.data(), m, in, q1.data(), 64);
        k.forward(x.data(), m, in, k1.data(), 32, {.multiplier = q1.data(), .ld_multiplier = 64});  // reads q's output
        kernels::QuantizedActivations acts;
        forward_same_input<W>(x.data(), m, in, acts, {{q, q2.data(), 64}, {k, k2.data(), 32, {.multiplier = q2.data(), .ld_multiplier = 64}}});
        CHECK(q1 == q2);
        CHECK(k1 == k2);
        const Linear<W> other(wrong.data(), 32, 40);
        CHECK_ERROR_HAS(forward_same_input<W>(x.data(), m, in, acts, {{q, q2.data(), 64}, {other, k2.data(), 32}}), "take 96 and 40");
    };
    check(F32{});
    check(Int8PerChannel{});
    check(Int8PerGroup<32>{});
    check(BF16{});
}

}  // TEST_SUITE
