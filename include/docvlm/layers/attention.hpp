// docvlm/layers/attention.hpp — Mlp, SelfAttention<W, Mask, Pos> and GatedCrossAttentionLayer<W>.
//
//   Mlp                  plain: fc2(act(fc1 x)), or gated: down(act(gate x) · up x) (SwiGLU)
//   SelfAttention        q/k/v/o projections (bias optional), multi-head or grouped-query,
//                        Mask = FullAttention | CausalAttention | WindowAnchor<w, a>,
//                        Pos = NoPosition | Rope1D | Rope2D | MRope<...> (a RopeTable per call),
//                        fused flash-style attention (memory linear in the sequence length)
//   GatedCrossAttentionLayer  Flamingo / Llama-3.2-Vision style block reading vision tokens:
//                        x += tanh(g_attn) ⊙ o(attn(q(norm1 x), k(vis), v(vis)))
//                        x += tanh(g_mlp)  ⊙ mlp(norm2 x)
//                        gates are one scalar or one value per channel; vision keys and values
//                        are projected once per image (VisionKV) and reused for every token.
// Layers are read-only: activations live in the caller's Workspace, so one layer serves many
// threads, each with its own workspace.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/core/trace.hpp>
#include <docvlm/kernels/activations.hpp>
#include <docvlm/kernels/attention.hpp>
#include <docvlm/kernels/ops.hpp>
#include <docvlm/layers/linear.hpp>
#include <docvlm/layers/norm.hpp>
#include <docvlm/layers/rope.hpp>
#include <docvlm/layers/workspace.hpp>
#include <docvlm/core/policies.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// Feed-forward block.
template <WeightPolicy W>
class Mlp {
public:
    Mlp() = default;
    /// fc2(act(fc1 x))
    static Mlp plain(Linear<W> fc1, Linear<W> fc2, Activation act);
    /// down(act(gate x) · up x)
    static Mlp gated(Linear<W> gate, Linear<W> up, Linear<W> down, Activation act = Activation::silu);
    /// y [n, out] (stride ldy) = mlp(x [n, in]) (+ residual, which may be y); the hidden
    /// activations in ws.g [n, hidden_features()].
    void forward(const float* x, std::size_t n, float* y, std::size_t ldy, Workspace& ws, const float* residual = nullptr,
                 std::size_t ld_res = 0) const;
    /// Traces the pieces of forward(x) — gated: prefix + gate_proj, act, up_proj, down_proj; plain:
    /// fc1, act, fc2 — computed on the side, unfused (forward's own results are not touched).
    void trace(const float* x, std::size_t n, const Trace& t, const std::string& prefix) const;
    std::size_t hidden_features() const { return first_.out_features(); }
    std::size_t in_features() const { return first_.in_features(); }
    std::size_t out_features() const { return last_.out_features(); }
    /// The parts: fc1 or gate, up (gated only), fc2 or down; the activation; whether gated.
    const Linear<W>& first() const { return first_; }
    const Linear<W>& up() const { return up_; }
    const Linear<W>& last() const { return last_; }
    Activation activation() const { return act_; }
    bool is_gated() const { return gated_; }

private:
    Linear<W> first_, up_, last_;
    Activation act_ = Activation::none;
    bool gated_ = false;
};

/// The dot products inside attention (kernels::AttentionParams): float; bf16 inputs with float
/// sums; int8 (bf16 for the shapes the int8 kernel does not take). A family chooses what its
/// reference computes; the default is float, bf16 with bf16 weights. Int8 weights keep float
/// attention by default, as the quantisation-aware training that made docvlm-small's weights
/// computed it: with bf16 attention its tiny int8 test model followed PyTorch's QAT greedy tokens
/// for 178 of 378 tokens on an AMD Zen 4 (where bf16 dot products are used), 330 with float.
enum class AttentionInputs { f32, bf16, int8 };
template <WeightPolicy W>
inline constexpr AttentionInputs default_attention_inputs = std::is_same_v<W, BF16> ? AttentionInputs::bf16 : AttentionInputs::f32;

/// Multi-head self-attention with a mask policy and a position policy.
template <WeightPolicy W, AttentionPolicy Mask, PositionPolicy Pos>
class SelfAttention {
public:
    SelfAttention() = default;
    /// Separate projections q, k, v (biases optional) and o.
    SelfAttention(Linear<W> q, Linear<W> k, Linear<W> v, Linear<W> o, std::size_t heads, std::size_t kv_heads,
                  AttentionInputs inputs = default_attention_inputs<W>);
    /// One projection whose output rows hold q | k | v (Qwen2-VL's tower: attn.qkv).
    static SelfAttention fused(Linear<W> qkv, Linear<W> o, std::size_t heads, std::size_t kv_heads,
                               AttentionInputs inputs = default_attention_inputs<W>);
    /// y [n, dim] = o(attention(q x, k x, v x)) (+ residual, which may be y); activations in ws.
    /// `rope` holds n tokens (required unless Pos is NoPosition). Traced under `prefix`: q_proj,
    /// k_proj, v_proj (or qkv, fused), q_rot and k_rot (after rope), attn_context, out_proj
    /// (without the residual).
    void forward(const float* x, std::size_t n, const RopeTable* rope, Workspace& ws, float* y, std::size_t ldy,
                 const float* residual = nullptr, std::size_t ld_res = 0, const Trace& trace = {}, const std::string& prefix = {}) const;
    std::size_t heads() const { return heads_; }
    std::size_t head_dim() const { return hd_; }
    /// Row widths forward() uses in a workspace: q (q | k | v when fused), and k and v.
    std::size_t q_width() const { return fused_ ? (heads_ + 2 * kv_heads_) * hd_ : heads_ * hd_; }
    std::size_t kv_width() const { return fused_ ? 0 : kv_heads_ * hd_; }
    // The parts, for backends that run the layer elsewhere (backend/device_vit.hpp): q (fused: the
    // projection to q | k | v), k and v (empty when fused), o.
    const Linear<W>& q_proj() const { return q_; }
    const Linear<W>& k_proj() const { return k_; }
    const Linear<W>& v_proj() const { return v_; }
    const Linear<W>& o_proj() const { return o_; }
    bool is_fused() const { return fused_; }
    std::size_t kv_heads() const { return kv_heads_; }

private:
    Linear<W> q_, k_, v_, o_;  // fused: q_ projects q | k | v, k_ and v_ are empty
    std::size_t heads_ = 0, kv_heads_ = 0, hd_ = 0;
    bool fused_ = false;
    AttentionInputs inputs_ = AttentionInputs::f32;

    void check_output() const;
};

/// Vision keys and values of one image, projected by a GatedCrossAttention block.
struct VisionKV {
    std::size_t tokens = 0;
    std::vector<float> k, v;  ///< [tokens][kv_heads · head_dim]
};

/// Self-attention for several decoding sequences at once, one new token each (batched decoding):
/// for row r, appends row r of k and v ([n][kv_heads · head_dim]) at position pos[r] of that
/// sequence's own cache (k_cache[r], v_cache[r]: [capacity][kv_heads · head_dim]), rotates row r of
/// q and the appended key with rope row r, and writes causal attention over the pos[r] + 1 cached
/// tokens to row r of ctx ([n][heads · head_dim]). Per row the same arithmetic as a single
/// sequence's decoding step.
inline void attend_new_rows(std::size_t n, float* q, const float* k, const float* v, float* const* k_cache, float* const* v_cache,
                            const std::size_t* pos, const RopeTable& rope, std::size_t heads, std::size_t kv_heads, std::size_t head_dim,
                            float* ctx) {
    const std::size_t qd = heads * head_dim, kvd = kv_heads * head_dim;
    for (std::size_t r = 0; r < n; ++r) {
        float* kc = k_cache[r] + pos[r] * kvd;
        std::copy_n(k + r * kvd, kvd, kc);
        std::copy_n(v + r * kvd, kvd, v_cache[r] + pos[r] * kvd);
        kernels::rope(q + r * qd, heads, head_dim, rope.cos_row(r), rope.sin_row(r));
        kernels::rope(kc, kv_heads, head_dim, rope.cos_row(r), rope.sin_row(r));
        const kernels::AttentionParams ap{.heads = heads, .kv_heads = kv_heads, .head_dim = head_dim,
                                          .scale = 1.0f / std::sqrt(float(head_dim)), .causal = true, .q_offset = pos[r]};
        kernels::attention(q + r * qd, qd, k_cache[r], kvd, v_cache[r], kvd, ctx + r * qd, qd, 1, pos[r] + 1, ap);
    }
}

/// Gated cross-attention from text to vision tokens (see the header comment).
template <WeightPolicy W>
class GatedCrossAttentionLayer {
public:
    GatedCrossAttentionLayer() = default;
    GatedCrossAttentionLayer(RMSNorm norm1, Linear<W> q, Linear<W> k, Linear<W> v, Linear<W> o, std::vector<float> attn_gate, RMSNorm norm2,
                        Mlp<W> mlp, std::vector<float> mlp_gate, std::size_t heads, std::size_t kv_heads);
    /// Projects vision tokens vis [n_vis, vision_dim] once per image.
    VisionKV project(const float* vis, std::size_t n_vis) const;
    /// x [n, dim] updated in place; every row reads the same vision tokens.
    void forward(float* x, std::size_t n, const VisionKV& kv, Workspace& ws) const {
        const VisionKV* one = &kv;
        forward_impl(x, n, &one, 0, ws);
    }
    /// x [n, dim] updated in place; row r reads the vision tokens *kv_of_row[r] (a batch of
    /// sequences, one token each, over different images).
    void forward_rows(float* x, std::size_t n, const VisionKV* const* kv_of_row, Workspace& ws) const { forward_impl(x, n, kv_of_row, 1, ws); }

    // The parts, for backends that run the layer elsewhere (backend/device_decoder.hpp). The gates
    // are tanh(g) already.
    const RMSNorm& norm1() const { return norm1_; }
    const RMSNorm& norm2() const { return norm2_; }
    const Linear<W>& q() const { return q_; }
    const Linear<W>& o() const { return o_; }
    const Mlp<W>& mlp() const { return mlp_; }
    const std::vector<float>& attn_gate() const { return attn_gate_; }
    const std::vector<float>& mlp_gate() const { return mlp_gate_; }
    std::size_t heads() const { return heads_; }
    std::size_t kv_heads() const { return kv_heads_; }
    std::size_t head_dim() const { return hd_; }

private:
    RMSNorm norm1_, norm2_;
    Linear<W> q_, k_, v_, o_;
    Mlp<W> mlp_;
    std::vector<float> attn_gate_, mlp_gate_;  // tanh already applied; size 1 or dim
    std::size_t heads_ = 0, kv_heads_ = 0, hd_ = 0, dim_ = 0;

    // row r reads *kv[r * step] (step 0: every row the same)
    void forward_impl(float* x, std::size_t n, const VisionKV* const* kv, std::size_t step, Workspace& ws) const;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

template <WeightPolicy W>
Mlp<W> Mlp<W>::plain(Linear<W> fc1, Linear<W> fc2, Activation act) {
    if (fc2.in_features() != fc1.out_features()) detail::fail("Mlp: fc1 gives ", fc1.out_features(), " values, fc2 takes ", fc2.in_features());
    Mlp m;
    m.first_ = std::move(fc1);
    m.last_ = std::move(fc2);
    m.act_ = act;
    return m;
}

template <WeightPolicy W>
Mlp<W> Mlp<W>::gated(Linear<W> gate, Linear<W> up, Linear<W> down, Activation act) {
    if (gate.out_features() != up.out_features() || gate.in_features() != up.in_features() || down.in_features() != up.out_features())
        detail::fail("Mlp: gate/up/down shapes do not chain");
    Mlp m;
    m.first_ = std::move(gate);
    m.up_ = std::move(up);
    m.last_ = std::move(down);
    m.act_ = act;
    m.gated_ = true;
    return m;
}

template <WeightPolicy W>
void Mlp<W>::forward(const float* x, std::size_t n, float* y, std::size_t ldy, Workspace& ws, const float* residual, std::size_t ld_res) const {
    const std::size_t in = first_.in_features(), hid = first_.out_features();
    float* h = ws.g.room(n * hid);
    if (gated_)
        forward_same_input<W>(x, n, in, ws.acts, {{first_, h, hid, {.act = act_}}, {up_, h, hid, {.multiplier = h, .ld_multiplier = hid}}});
    else
        first_.forward(x, n, in, h, hid, {.act = act_});
    last_.forward(h, n, hid, y, ldy, {.residual = residual, .ld_residual = ld_res});
}

template <WeightPolicy W>
void Mlp<W>::trace(const float* x, std::size_t n, const Trace& t, const std::string& prefix) const {
    if (!t) return;
    const std::size_t in = first_.in_features(), hid = first_.out_features(), out = last_.out_features();
    std::vector<float> a(n * hid), y(n * out);
    first_.forward(x, n, in, a.data(), hid);
    t(prefix + (gated_ ? "gate_proj" : "fc1"), a.data(), n, hid);
    kernels::activate(act_, a.data(), a.size());
    t(prefix + "act", a.data(), n, hid);
    if (gated_) {
        std::vector<float> u(n * hid);
        up_.forward(x, n, in, u.data(), hid);
        t(prefix + "up_proj", u.data(), n, hid);
        for (std::size_t i = 0; i < a.size(); ++i) a[i] *= u[i];
    }
    last_.forward(a.data(), n, hid, y.data(), out);
    t(prefix + (gated_ ? "down_proj" : "fc2"), y.data(), n, out);
}

template <WeightPolicy W, AttentionPolicy Mask, PositionPolicy Pos>
SelfAttention<W, Mask, Pos>::SelfAttention(Linear<W> q, Linear<W> k, Linear<W> v, Linear<W> o, std::size_t heads, std::size_t kv_heads,
                                           AttentionInputs inputs)
    : q_(std::move(q)), k_(std::move(k)), v_(std::move(v)), o_(std::move(o)), heads_(heads), kv_heads_(kv_heads), inputs_(inputs) {
    if (heads == 0 || kv_heads == 0 || heads % kv_heads) detail::fail("SelfAttention: ", kv_heads, " kv heads do not divide ", heads, " heads");
    if (q_.out_features() % heads) detail::fail("SelfAttention: ", heads, " heads do not divide ", q_.out_features());
    hd_ = q_.out_features() / heads;
    if (k_.out_features() != kv_heads * hd_ || v_.out_features() != kv_heads * hd_)
        detail::fail("SelfAttention: k/v projections give ", k_.out_features(), " values, expected ", kv_heads * hd_);
    check_output();
}

template <WeightPolicy W, AttentionPolicy Mask, PositionPolicy Pos>
SelfAttention<W, Mask, Pos> SelfAttention<W, Mask, Pos>::fused(Linear<W> qkv, Linear<W> o, std::size_t heads, std::size_t kv_heads,
                                                               AttentionInputs inputs) {
    if (heads == 0 || kv_heads == 0 || heads % kv_heads) detail::fail("SelfAttention: ", kv_heads, " kv heads do not divide ", heads, " heads");
    SelfAttention a;
    a.heads_ = heads, a.kv_heads_ = kv_heads, a.inputs_ = inputs, a.fused_ = true;
    if (qkv.out_features() % (heads + 2 * kv_heads))
        detail::fail("SelfAttention: a fused projection of ", qkv.out_features(), " values is not q | k | v for ", heads, " + 2 x ", kv_heads, " heads");
    a.hd_ = qkv.out_features() / (heads + 2 * kv_heads);
    a.q_ = std::move(qkv), a.o_ = std::move(o);
    a.check_output();
    return a;
}

template <WeightPolicy W, AttentionPolicy Mask, PositionPolicy Pos>
void SelfAttention<W, Mask, Pos>::check_output() const {
    if (hd_ == 0) detail::fail("SelfAttention: head_dim is 0");
    if (o_.in_features() != heads_ * hd_) detail::fail("SelfAttention: o takes ", o_.in_features(), " values, expected ", heads_ * hd_);
}

template <WeightPolicy W, AttentionPolicy Mask, PositionPolicy Pos>
void SelfAttention<W, Mask, Pos>::forward(const float* x, std::size_t n, const RopeTable* rope, Workspace& ws, float* y, std::size_t ldy,
                                          const float* residual, std::size_t ld_res, const Trace& trace, const std::string& prefix) const {
    const std::size_t dim = q_.in_features(), qd = heads_ * hd_, kvd = kv_heads_ * hd_;
    // q [n][ldq], k and v [n][ldkv]: three buffers, or one of rows q | k | v
    const std::size_t ldq = fused_ ? qd + 2 * kvd : qd, ldkv = fused_ ? ldq : kvd;
    float* q = ws.q.room(n * ldq);
    float* k = fused_ ? q + qd : ws.k.room(n * kvd);
    float* v = fused_ ? k + kvd : ws.v.room(n * kvd);
    float* ctx = ws.ctx.room(n * qd);
    if (fused_) {
        q_.forward(x, n, dim, q, ldq);
        if (trace) trace(prefix + "qkv", q, n, ldq);
    } else {
        forward_same_input<W>(x, n, dim, ws.acts, {{q_, q, qd}, {k_, k, kvd}, {v_, v, kvd}});
        if (trace) trace(prefix + "q_proj", q, n, qd), trace(prefix + "k_proj", k, n, kvd), trace(prefix + "v_proj", v, n, kvd);
    }
    if constexpr (!std::is_same_v<Pos, NoPosition>) {
        if (!rope || rope->tokens < n || rope->head_dim != hd_) detail::fail("SelfAttention: a rope table for ", n, " tokens of ", hd_, " is needed");
        parallel_for(n, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t r = r0; r < r1; ++r) {
                kernels::rope(q + r * ldq, heads_, hd_, rope->cos_row(r), rope->sin_row(r));
                kernels::rope(k + r * ldkv, kv_heads_, hd_, rope->cos_row(r), rope->sin_row(r));
            }
        }, 64);
        if (trace) {  // the rotated rows, gathered on the side
            std::vector<float> qr(n * qd), kr(n * kvd);
            for (std::size_t r = 0; r < n; ++r) {
                std::copy_n(q + r * ldq, qd, qr.data() + r * qd);
                std::copy_n(k + r * ldkv, kvd, kr.data() + r * kvd);
            }
            trace(prefix + "q_rot", qr.data(), n, qd), trace(prefix + "k_rot", kr.data(), n, kvd);
        }
    }
    kernels::AttentionParams p{.heads = heads_, .kv_heads = kv_heads_, .head_dim = hd_, .scale = 1.0f / std::sqrt(float(hd_)),
                               .bf16 = inputs_ != AttentionInputs::f32, .int8 = inputs_ == AttentionInputs::int8};
    if constexpr (std::is_same_v<Mask, CausalAttention>) p.causal = true;
    if constexpr (detail::is_window_anchor<Mask>::value) {
        p.window = std::size_t(Mask::window);
        p.anchors = std::size_t(Mask::anchors);
    }
    kernels::attention(q, ldq, k, ldkv, v, ldkv, ctx, qd, n, n, p);
    if (trace) {  // o without the residual, on the side
        trace(prefix + "attn_context", ctx, n, qd);
        std::vector<float> out(n * o_.out_features());
        o_.forward(ctx, n, qd, out.data(), o_.out_features());
        trace(prefix + "out_proj", out.data(), n, o_.out_features());
    }
    o_.forward(ctx, n, qd, y, ldy, {.residual = residual, .ld_residual = ld_res});
}

template <WeightPolicy W>
GatedCrossAttentionLayer<W>::GatedCrossAttentionLayer(RMSNorm norm1, Linear<W> q, Linear<W> k, Linear<W> v, Linear<W> o,
                                            std::vector<float> attn_gate, RMSNorm norm2, Mlp<W> mlp, std::vector<float> mlp_gate,
                                            std::size_t heads, std::size_t kv_heads)
    : norm1_(std::move(norm1)), norm2_(std::move(norm2)), q_(std::move(q)), k_(std::move(k)), v_(std::move(v)), o_(std::move(o)),
      mlp_(std::move(mlp)), attn_gate_(std::move(attn_gate)), mlp_gate_(std::move(mlp_gate)), heads_(heads), kv_heads_(kv_heads) {
    dim_ = q_.in_features();
    if (heads == 0 || kv_heads == 0 || heads % kv_heads || q_.out_features() % heads)
        detail::fail("GatedCrossAttentionLayer: ", heads, " heads / ", kv_heads, " kv heads do not fit ", q_.out_features());
    hd_ = q_.out_features() / heads;
    if (k_.out_features() != kv_heads * hd_ || v_.out_features() != kv_heads * hd_ || k_.in_features() != v_.in_features())
        detail::fail("GatedCrossAttentionLayer: k/v projections do not match ", kv_heads, " kv heads of ", hd_);
    if (o_.out_features() != dim_ || mlp_.out_features() != dim_ || mlp_.in_features() != dim_)
        detail::fail("GatedCrossAttentionLayer: o / mlp do not map back to ", dim_, " channels");
    for (auto* g : {&attn_gate_, &mlp_gate_}) {
        if (g->size() != 1 && g->size() != dim_) detail::fail("GatedCrossAttentionLayer: a gate has ", g->size(), " values, expected 1 or ", dim_);
        for (float& v : *g) v = std::tanh(v);
    }
}

template <WeightPolicy W>
VisionKV GatedCrossAttentionLayer<W>::project(const float* vis, std::size_t n_vis) const {
    VisionKV kv;
    kv.tokens = n_vis;
    const std::size_t kvd = kv_heads_ * hd_;
    kv.k.resize(n_vis * kvd);
    kv.v.resize(n_vis * kvd);
    kernels::QuantizedActivations acts;  // once per image
    forward_same_input<W>(vis, n_vis, k_.in_features(), acts, {{k_, kv.k.data(), kvd}, {v_, kv.v.data(), kvd}});
    return kv;
}

template <WeightPolicy W>
void GatedCrossAttentionLayer<W>::forward_impl(float* x, std::size_t n, const VisionKV* const* kvs, std::size_t step, Workspace& ws) const {
    const std::size_t qd = heads_ * hd_, kvd = kv_heads_ * hd_;
    float* h = ws.h.room(n * dim_);
    float* q = ws.q.room(n * qd);
    float* ctx = ws.ctx.room(n * qd);
    float* out = ws.o.room(n * dim_);
    auto gated_add = [&](const std::vector<float>& gate) {
        for (std::size_t r = 0; r < n; ++r)
            for (std::size_t c = 0; c < dim_; ++c) x[r * dim_ + c] += gate[gate.size() == 1 ? 0 : c] * out[r * dim_ + c];
    };
    norm1_.forward(x, n, dim_, h, dim_);
    q_.forward(h, n, dim_, q, qd);
    const kernels::AttentionParams p{.heads = heads_, .kv_heads = kv_heads_, .head_dim = hd_, .scale = 1.0f / std::sqrt(float(hd_))};
    if (step == 0) {
        kernels::attention(q, qd, kvs[0]->k.data(), kvd, kvs[0]->v.data(), kvd, ctx, qd, n, kvs[0]->tokens, p);
    } else {
        for (std::size_t r = 0; r < n; ++r) {
            const VisionKV& kv = *kvs[r * step];
            kernels::attention(q + r * qd, qd, kv.k.data(), kvd, kv.v.data(), kvd, ctx + r * qd, qd, 1, kv.tokens, p);
        }
    }
    o_.forward(ctx, n, qd, out, dim_);
    gated_add(attn_gate_);
    norm2_.forward(x, n, dim_, h, dim_);
    mlp_.forward(h, n, out, dim_, ws);
    gated_add(mlp_gate_);
}

DOCVLM_NAMESPACE_END
