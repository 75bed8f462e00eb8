// The checks every Backend (include/docvlm/backend/backend.hpp) must pass: the CPU backend's in
// docvlm_tests (tests/test_backend.cpp), the CUDA backend's in docvlm_cuda_tests (tests/test_cuda.cpp).
//   check_ops       each operation against a scalar reference in double
//   check_goldens   the vision blocks and the decoder on the backend against transformers
//                   (golden_check with a device): Qwen2-VL, LLaVA-1.5, Qwen-VL vision outputs,
//                   logits, step logits and greedy ids
//   check_batch     batched decoding on the backend
//   check_embedded  the gated models on the backend: f32 against PyTorch (greedy tokens identical,
//                   vision tokens and logits within 1e-4), int8 against PyTorch's QAT simulation
//                   (the bound the CPU's int8 path is held to)
#pragma once

#include "embedded_util.hpp"
#include "golden_util.hpp"
#include "test_util.hpp"

#include <docvlm/backend/backend.hpp>
#include <docvlm/backend/dense_weights.hpp>
#include <docvlm/core/dtype.hpp>
#include <docvlm/kernels/attention.hpp>
#include <docvlm/kernels/ops.hpp>
#include <docvlm/io/image_processor.hpp>
#include <docvlm/presets/docvlm_small.hpp>
#include <docvlm/presets/qwen2vl.hpp>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace backend_test {

using namespace docvlm;
using backend::Backend;
using backend::DeviceBuffer;

inline std::vector<float> random_floats(std::size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = u(rng);
    return v;
}

inline DeviceBuffer put(Backend& be, const std::vector<float>& v) {
    DeviceBuffer b = be.alloc(v.size() * sizeof(float));
    be.upload(b.data(), v.data(), v.size() * sizeof(float));
    return b;
}
inline std::vector<float> get(Backend& be, const DeviceBuffer& b, std::size_t n) {
    std::vector<float> v(n);
    be.download(v.data(), b.data(), n * sizeof(float));
    return v;
}

/// max |got − want| / max |want|.
inline double rel_diff(const std::vector<float>& got, const std::vector<double>& want) {
    REQUIRE(got.size() == want.size());
    double e = 0, s = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        e = test::worse(e, std::fabs(double(got[i]) - want[i]));
        s = std::max(s, std::fabs(want[i]));
    }
    return e / std::max(s, 1e-30);
}

/// W [out, in] as the dense form holds it, in double (int8: q · scale).
inline std::vector<double> dense_values(const backend::DenseLinear& d) {
    std::vector<double> w(d.out * d.in);
    const std::size_t groups = d.group ? (d.in + d.group - 1) / d.group : 1;
    for (std::size_t r = 0; r < d.out; ++r)
        for (std::size_t c = 0; c < d.in; ++c) {
            const std::size_t i = r * d.in + c;
            if (d.form == backend::DenseLinear::Form::f32) w[i] = d.f32[i];
            else if (d.form == backend::DenseLinear::Form::bf16) w[i] = bf16_to_f32(bf16{d.bf16[i]});
            else w[i] = double(d.q[i]) * d.scales[r * groups + (d.group ? c / d.group : 0)];
        }
    return w;
}

// y = act(x · Wᵀ + b) · G + R for each weight form, G and y one buffer (the gated MLP's aliasing).
// Bounds: float weights 1e-5 of the largest output; bf16 weights 1e-2 (the inputs may be rounded
// to bf16: 2⁻⁹ each); int8 2e-2 (the CPU quantises the inputs to int8 per row: 1/254 each).
inline void check_linear(Backend& be) {
    const std::size_t m = 5, k = 70, n = 45, ldx = 73, ldy = 50;
    const auto w = random_floats(n * k, 1), x = random_floats(m * ldx, 2), bias = random_floats(n, 3), g = random_floats(m * ldy, 4),
               res = random_floats(m * ldy, 5);
    struct Form {
        const char* name;
        backend::HostLinear h;
        double bound;
    };
    const Form forms[] = {{"f32", backend::host_linear(Linear<F32>(w.data(), n, k, bias.data())), 1e-5},
                          {"bf16", backend::host_linear(Linear<BF16>(w.data(), n, k, bias.data())), 1e-2},
                          {"int8", backend::host_linear(Linear<Int8PerChannel>(w.data(), n, k, bias.data())), 2e-2},
                          {"int8/32", backend::host_linear(Linear<Int8PerGroup<32>>(w.data(), n, k, bias.data())), 2e-2}};
    for (const Form& f : forms) {
        CAPTURE(f.name);
        const backend::DeviceLinear l = be.upload_linear(f.h.view);
        CHECK(l.out_features() == n);
        CHECK(l.in_features() == k);
        const std::vector<double> wd = dense_values(f.h.view);
        std::vector<double> plain(m * ldy, 0.0), gated(m * ldy, 0.0);
        for (std::size_t r = 0; r < m; ++r)
            for (std::size_t c = 0; c < ldy; ++c) {
                const std::size_t i = r * ldy + c;
                if (c >= n) {  // outside the matrix: left as it was
                    plain[i] = 0.0, gated[i] = g[i];
                    continue;
                }
                double s = bias[c];
                for (std::size_t j = 0; j < k; ++j) s += double(x[r * ldx + j]) * wd[c * k + j];
                plain[i] = s;
                gated[i] = double(kernels::activate_scalar(Activation::silu, float(s))) * g[i] + res[i];
            }
        const DeviceBuffer dx = put(be, x), dy = put(be, std::vector<float>(m * ldy, 0.0f)), dr = put(be, res);
        be.linear(l, dx.f32(), m, ldx, dy.f32(), ldy);
        CHECK(rel_diff(get(be, dy, m * ldy), plain) <= f.bound);
        const DeviceBuffer dg = put(be, g);
        be.linear(l, dx.f32(), m, ldx, dg.f32(), ldy,
                  {.act = Activation::silu, .multiplier = dg.f32(), .ld_multiplier = ldy, .residual = dr.f32(), .ld_residual = ldy});
        CHECK(rel_diff(get(be, dg, m * ldy), gated) <= f.bound);
    }
}

// Attention against kernels::attention_reference (double) on the shapes the models use.
inline void check_attention(Backend& be) {
    struct Case {
        const char* name;
        std::size_t n_q, n_kv, heads, kv_heads, hd, q_offset, window, anchors;
        bool causal;
    };
    const Case cases[] = {
        {"full, GQA, head_dim 80", 37, 37, 4, 2, 80, 0, 0, 0, false},
        {"causal prefill after a cache, chunks of keys", 9, 300, 4, 2, 64, 291, 0, 0, true},
        {"one decoding step over 1000 keys", 1, 1000, 14, 2, 64, 999, 0, 0, true},
        {"window and anchors", 300, 300, 2, 2, 32, 0, 24, 4, false},
        {"head_dim 256, MHA", 5, 140, 2, 2, 256, 0, 0, 0, false},
    };
    for (const Case& c : cases) {
        CAPTURE(c.name);
        const std::size_t qd = c.heads * c.hd, kvd = c.kv_heads * c.hd, ldq = qd + 3, ldk = kvd + 1;
        const auto q = random_floats(c.n_q * ldq, 11, -2, 2), k = random_floats(c.n_kv * ldk, 12, -2, 2), v = random_floats(c.n_kv * kvd, 13);
        const kernels::AttentionParams p{.heads = c.heads, .kv_heads = c.kv_heads, .head_dim = c.hd, .scale = 1.0f / std::sqrt(float(c.hd)),
                                         .causal = c.causal, .q_offset = c.q_offset, .window = c.window, .anchors = c.anchors};
        std::vector<float> want(c.n_q * qd);
        kernels::attention_reference(q.data(), ldq, k.data(), ldk, v.data(), kvd, want.data(), qd, c.n_q, c.n_kv, p);
        const DeviceBuffer dq = put(be, q), dk = put(be, k), dv = put(be, v), dout = put(be, std::vector<float>(c.n_q * qd, 0.0f));
        be.attention(dq.f32(), ldq, dk.f32(), ldk, dv.f32(), kvd, dout.f32(), qd, c.n_q, c.n_kv,
                     {.heads = c.heads, .kv_heads = c.kv_heads, .head_dim = c.hd, .scale = p.scale, .causal = c.causal,
                      .q_offset = c.q_offset, .window = c.window, .anchors = c.anchors});
        CHECK(rel_diff(get(be, dout, want.size()), std::vector<double>(want.begin(), want.end())) <= 1e-5);
    }
}

// rms_norm and layer_norm (in place), rope, gated_add and copy_rows against scalar references.
inline void check_row_ops(Backend& be) {
    {  // rms_norm, y = x
        const std::size_t m = 3, dim = 100, ld = 104;
        const auto x = random_floats(m * ld, 21, -3, 3), w = random_floats(dim, 22);
        std::vector<double> want(x.begin(), x.end());
        for (std::size_t r = 0; r < m; ++r) {
            std::vector<float> y(dim);
            kernels::rms_norm_reference(x.data() + r * ld, w.data(), y.data(), dim, 1e-6f);
            for (std::size_t c = 0; c < dim; ++c) want[r * ld + c] = y[c];
        }
        const DeviceBuffer dx = put(be, x), dw = put(be, w);
        be.rms_norm(dx.f32(), m, ld, dw.f32(), dim, 1e-6f, dx.f32(), ld);
        CHECK(rel_diff(get(be, dx, x.size()), want) <= 1e-5);  // a float sum of 100 squares: n · 2⁻²⁴ ≈ 6e-6
    }
    {  // layer_norm, y = x
        const std::size_t m = 3, dim = 100, ld = 104;
        const auto x = random_floats(m * ld, 29, 1, 4), w = random_floats(dim, 30), b = random_floats(dim, 31);
        std::vector<double> want(x.begin(), x.end());
        for (std::size_t r = 0; r < m; ++r) {
            std::vector<float> y(dim);
            kernels::layer_norm_reference(x.data() + r * ld, w.data(), b.data(), y.data(), dim, 1e-5f);
            for (std::size_t c = 0; c < dim; ++c) want[r * ld + c] = y[c];
        }
        const DeviceBuffer dx = put(be, x), dw = put(be, w), db = put(be, b);
        be.layer_norm(dx.f32(), m, ld, dw.f32(), db.f32(), dim, 1e-5f, dx.f32(), ld);
        CHECK(rel_diff(get(be, dx, x.size()), want) <= 1e-5);
    }
    {  // rope: 4 rows of 3 heads of 64, row stride 197
        const std::size_t m = 4, heads = 3, hd = 64, ld = heads * hd + 5;
        const auto x = random_floats(m * ld, 23), angle = random_floats(m * hd / 2, 24, -10, 10);
        std::vector<float> cos(m * hd), sin(m * hd);
        for (std::size_t r = 0; r < m; ++r)
            for (std::size_t i = 0; i < hd / 2; ++i) {
                cos[r * hd + i] = cos[r * hd + i + hd / 2] = std::cos(angle[r * hd / 2 + i]);
                sin[r * hd + i] = sin[r * hd + i + hd / 2] = std::sin(angle[r * hd / 2 + i]);
            }
        std::vector<float> ref = x;
        for (std::size_t r = 0; r < m; ++r) kernels::rope_reference(ref.data() + r * ld, heads, hd, cos.data() + r * hd, sin.data() + r * hd);
        const DeviceBuffer dx = put(be, x), dc = put(be, cos), ds = put(be, sin);
        be.rope(dx.f32(), m, ld, heads, hd, dc.f32(), ds.f32());
        CHECK(rel_diff(get(be, dx, x.size()), std::vector<double>(ref.begin(), ref.end())) <= 1e-6);
    }
    for (const std::size_t gate_size : {std::size_t(1), std::size_t(48)}) {  // gated_add
        const std::size_t m = 3, dim = 48;
        const auto x = random_floats(m * dim, 25), y = random_floats(m * dim, 26), gate = random_floats(gate_size, 27);
        std::vector<double> want(m * dim);
        for (std::size_t i = 0; i < want.size(); ++i) want[i] = double(x[i]) + double(gate[gate_size == 1 ? 0 : i % dim]) * y[i];
        const DeviceBuffer dx = put(be, x), dy = put(be, y), dg = put(be, gate);
        be.gated_add(dx.f32(), dy.f32(), m, dim, dg.f32(), gate_size);
        CHECK(rel_diff(get(be, dx, x.size()), want) <= 1e-6);
    }
    {  // copy_rows: 3 rows of 5 floats, source stride 7, destination stride 9
        const auto src = random_floats(21, 28);
        const DeviceBuffer ds = put(be, src), dd = put(be, std::vector<float>(27, 0.0f));
        be.copy_rows(dd.f32(), 9 * sizeof(float), ds.f32(), 7 * sizeof(float), 5 * sizeof(float), 3);
        const auto got = get(be, dd, 27);
        for (std::size_t r = 0; r < 3; ++r)
            for (std::size_t c = 0; c < 9; ++c) CHECK(got[r * 9 + c] == (c < 5 ? src[r * 7 + c] : 0.0f));
    }
}

inline void check_ops(Backend& be) {
    check_linear(be);
    check_attention(be);
    check_row_ops(be);
}

/// golden_check of the three transformers golden sets with the vision blocks and the decoder on
/// `be`: every check passes, and the logits, step logits and greedy ids are among them.
inline void check_goldens(const std::shared_ptr<Backend>& be) {
    for (const std::string set : {"golden/qwen2vl-tiny-a", "golden/llava-tiny-a", "golden/qwenvl-tiny-a"}) {
        CAPTURE(set);
        std::vector<std::string> seen;
        CHECK(golden_check(test::data(set), [&](const GoldenResult& r) {
            CAPTURE(r.name);
            CAPTURE(r.note);
            CHECK(r.passed);
            seen.push_back(r.name);
        }, be));
        for (const char* name : {"logits", "generated_step_logits", "generated_ids"}) {
            CAPTURE(name);
            CHECK(std::find(seen.begin(), seen.end(), name) != seen.end());
        }
    }
}

/// Batched decoding on `be` (Decoder::step → DeviceDecoder::step): generate_batch gives each
/// request what generate gives it alone, on the Qwen2-VL golden model (f32) with requests of
/// different lengths and sampling settings.
inline void check_batch(const std::shared_ptr<Backend>& be) {
    const std::string dir = test::data("golden/qwen2vl-tiny-a");
    auto model = load<presets::Qwen2VL<F32>>(dir);
    model.to_device(be);
    const io::PixelValues px = io::preprocess_qwen2vl(io::load_image(dir + "/input.png"), model.image_config());
    const Tensor<float, 2> vision = model.encode_image(px);
    const ImageGrid grid{px.grid_t, px.grid_h, px.grid_w};
    const auto ids64 = xt::load_npy<std::int64_t>(dir + "/input_ids.npy");
    const std::vector<std::int32_t> ids(ids64.begin(), ids64.end()), shorter(ids.begin(), ids.end() - 2);
    GenerationOptions greedy;
    greedy.max_new_tokens = 16;
    GenerationOptions penalised = greedy;
    penalised.max_new_tokens = 24, penalised.no_repeat_ngram = 3, penalised.presence_penalty = 1.0f;
    GenerationOptions short_run = greedy;
    short_run.max_new_tokens = 5;
    const std::vector<BatchRequest> reqs = {{ids, {&vision, 1}, {&grid, 1}, greedy},
                                            {shorter, {&vision, 1}, {&grid, 1}, penalised},
                                            {ids, {&vision, 1}, {&grid, 1}, short_run}};
    const auto batched = model.generate_batch(reqs);
    REQUIRE(batched.size() == reqs.size());
    for (std::size_t i = 0; i < reqs.size(); ++i) {
        CAPTURE(i);
        auto ctx = model.context(reqs[i].ids.size() + reqs[i].options.max_new_tokens);
        CHECK(batched[i] == ctx.generate(reqs[i].ids, reqs[i].images, reqs[i].grids, reqs[i].options));
    }
    CHECK(batched[2].size() == 5);
}

/// The embedded models with their vision blocks and decoder on `be`: the tiny gated model (f32)
/// against PyTorch (greedy tokens identical, vision tokens and teacher-forced logits within 1e-4
/// of the largest; beam search's scores its readings' teacher-forced log-probabilities), then the shipped
/// docvlm-small in int8 against PyTorch's QAT simulation on the first `small_crops` text and
/// formula crops (at least 8 in 10 identical, the CPU int8 path's bound in test_embedded.cpp).
inline void check_embedded(const std::shared_ptr<Backend>& be, int small_crops) {
    using namespace embedded_test;
    using Tiny = presets::GatedVlmFamily<2, 64, 2, 128, 5, 2, 3, 64, 4, 2, 96, 400, 2, F32>;
    const std::string dir = test::data("gated-tiny");
    auto tiny = load<Tiny>(dir);
    tiny.to_device(be);
    const io::Checkpoint ref = io::Checkpoint::open(dir + "/reference.safetensors");
    int checked = 0;
    for (const int i : crops_to_check(ref)) {
        if (!ref.contains("tokens" + std::to_string(i))) continue;
        CAPTURE(i);
        const std::string task = task_of(ref, tiny.dims(), i);
        const Tensor<float, 2> vis = tiny.encode_image(crop_of(ref, i));
        const auto toks = tokens_of(ref, "tokens" + std::to_string(i));
        auto ctx = tiny.context();
        CHECK(ctx.generate(vis, task, gen_for(ref, tiny.dims(), task)) == toks);
        ++checked;
        if (!ref.contains("vision" + std::to_string(i))) continue;  // tensors stored for the first crops only
        const Array<float> want_vis = ref.to_f32("vision" + std::to_string(i));
        REQUIRE(vis.size() == want_vis.size());
        CHECK(rel_err(vis.data(), want_vis) <= 1e-4);
        CHECK(teacher_forced_error(tiny, ref, i, vis, task, toks) <= 1e-4);
    }
    CHECK(checked > 0);
    // beam search on `be`: a forked sequence's KV cache (DeviceDecoder::copy_tokens) holds its
    // parent's tokens, so each reading's score is its teacher-forced log-probability
    std::vector<Tensor<float, 2>> vis;
    for (const int i : crops_to_check(ref))
        if (task_of(ref, tiny.dims(), i) == "text" && vis.size() < 3) vis.push_back(tiny.encode_image(crop_of(ref, i)));
    REQUIRE(!vis.empty());
    const std::vector<std::size_t> bound(vis.size(), 24);
    const auto beams = tiny.generate_beams(vis, "text", 4, bound);
    for (std::size_t i = 0; i < vis.size(); ++i) {
        const double teacher = teacher_score(tiny, vis[i], beams[i]);
        CHECK(std::fabs(beams[i].score - teacher) <= 1e-4 * std::max(1.0, std::fabs(teacher)));
    }

    auto small = load_default_model<Int8PerChannel>();
    small.to_device(be);
    const io::Checkpoint sref = io::Checkpoint::open(test::data("docvlm-small/reference.safetensors"));
    int same = 0, lines = 0;
    for (int i = 0; sref.contains("crop" + std::to_string(i)) && lines < small_crops; ++i) {
        if (!sref.contains("qat_tokens" + std::to_string(i))) continue;
        const std::string task = task_of(sref, small.dims(), i);
        if (task == "table") continue;
        auto ctx = small.context();
        const auto out = ctx.generate(small.encode_image(crop_of(sref, i)), task, gen_for(sref, small.dims(), task));
        same += out == tokens_of(sref, "qat_tokens" + std::to_string(i)), ++lines;
    }
    MESSAGE("docvlm-small int8, decoder on ", be->name(), ": ", same, " of ", lines, " crops as PyTorch's QAT simulation reads them");
    CHECK(lines > 0);
    CHECK(same * 10 >= lines * 8);
}

}  // namespace backend_test
