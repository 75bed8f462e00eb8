// docvlm/layers/decoder_block.hpp — DecoderBlock<W>: one pre-norm decoder layer with a KV cache,
// the layer of Qwen2, LLaMA and docvlm-small alike:
//
//   h = norm1(x);  q, k, v = q(h), k(h), v(h)          (biases optional; GQA: kv_heads divide heads)
//   q, k = rope(q), rope(k)                             (rotate-half layout, one RopeTable row per token)
//   x += o(attention(q, cache ⊕ k, cache ⊕ v))          (causal; the new keys/values join the cache)
//   x += mlp(norm2(x))                                  (SwiGLU: down(silu(gate h) · up h))
//
// Two ways to run it: forward() for n new tokens of one sequence (prefill, or one decoding step),
// forward_rows() for one new token of each of n sequences (batched decoding). Activations live in
// the caller's Workspace, which grows to the largest n it has seen and then allocates nothing.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/core/trace.hpp>
#include <docvlm/kernels/attention.hpp>
#include <docvlm/layers/attention.hpp>
#include <docvlm/layers/linear.hpp>
#include <docvlm/layers/norm.hpp>
#include <docvlm/layers/rope.hpp>
#include <docvlm/layers/workspace.hpp>

#include <cmath>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

template <WeightPolicy W>
struct DecoderBlock {
    RMSNorm norm1, norm2;
    Linear<W> q, k, v, o;
    Mlp<W> mlp;
    std::size_t heads = 0, kv_heads = 0, head_dim = 0;
    /// Prefill attention with int8 dot products (kernels::AttentionParams::int8); one token at a
    /// time always attends in float.
    bool int8_attention = false;

    /// Checks that the parts fit together; sets head_dim.
    void validate() const;
    std::size_t dim() const { return q.in_features(); }
    std::size_t kv_dim() const { return kv_heads * head_dim; }

    /// n new tokens of one sequence: x [n, dim] in place. Their keys and values
    /// are written at rows len .. len + n of k_cache / v_cache [capacity][kv_heads · head_dim], and
    /// they attend causally to all len + n. `rope` holds one row per new token. With a trace, the
    /// block's intermediates are traced under `prefix` (input_layernorm, q_proj, ..., out).
    void forward(float* x, std::size_t n, const RopeTable& rope, float* k_cache, float* v_cache, std::size_t len, Workspace& ws,
                 const Trace& trace = {}, const std::string& prefix = {}) const;

    /// One new token for each of n sequences: row r of x [n, dim] belongs to the sequence whose
    /// cache k_cache[r] / v_cache[r] holds len[r] tokens; rope row r is its position.
    void forward_rows(float* x, std::size_t n, const RopeTable& rope, float* const* k_cache, float* const* v_cache, const std::size_t* len,
                      Workspace& ws) const;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

template <WeightPolicy W>
void DecoderBlock<W>::validate() const {
    const std::size_t d = q.in_features();
    if (heads == 0 || kv_heads == 0 || heads % kv_heads) detail::fail("DecoderBlock: ", kv_heads, " kv heads do not divide ", heads, " heads");
    if (head_dim == 0 || head_dim % 2 || q.out_features() != heads * head_dim)
        detail::fail("DecoderBlock: q gives ", q.out_features(), " values, not ", heads, " heads of an even head_dim ", head_dim);
    if (k.out_features() != kv_dim() || v.out_features() != kv_dim() || k.in_features() != d || v.in_features() != d)
        detail::fail("DecoderBlock: k/v do not map ", d, " channels to ", kv_heads, " kv heads of ", head_dim);
    if (o.in_features() != heads * head_dim || o.out_features() != d || mlp.in_features() != d || mlp.out_features() != d ||
        norm1.dim() != d || norm2.dim() != d)
        detail::fail("DecoderBlock: o / mlp / norms do not map back to ", d, " channels");
}

template <WeightPolicy W>
void DecoderBlock<W>::forward(float* x, std::size_t n, const RopeTable& rope, float* k_cache, float* v_cache, std::size_t len,
                              Workspace& ws, const Trace& trace, const std::string& prefix) const {
    const std::size_t d = dim(), hd = head_dim, qd = heads * hd, kvd = kv_dim(), hid = mlp.hidden_features();
    ws.reserve(n, d, qd, 0, hid);  // h, q, ctx, g (the keys and values go straight into the cache)
    float* kc = k_cache + len * kvd;
    float* vc = v_cache + len * kvd;
    auto emit = [&](const char* name, const float* p, std::size_t cols) {
        if (trace) trace(prefix + name, p, n, cols);  // no string is built without a trace: decoding allocates nothing
    };
    norm1.forward(x, n, d, ws.h.data(), d);
    emit("input_layernorm", ws.h.data(), d);
    forward_same_input<W>(ws.h.data(), n, d, ws.acts, {{q, ws.q.data(), qd}, {k, kc, kvd}, {v, vc, kvd}});
    emit("q_proj", ws.q.data(), qd), emit("k_proj", kc, kvd), emit("v_proj", vc, kvd);
    parallel_for(n, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) {
            kernels::rope(ws.q.data() + r * qd, heads, hd, rope.cos_row(r), rope.sin_row(r));
            kernels::rope(kc + r * kvd, kv_heads, hd, rope.cos_row(r), rope.sin_row(r));
        }
    }, 64);
    emit("q_rot", ws.q.data(), qd), emit("k_rot", kc, kvd);
    const kernels::AttentionParams ap{.heads = heads, .kv_heads = kv_heads, .head_dim = hd, .scale = 1.0f / std::sqrt(float(hd)),
                                      .causal = true, .q_offset = len, .int8 = int8_attention};
    kernels::attention(ws.q.data(), qd, k_cache, kvd, v_cache, kvd, ws.ctx.data(), qd, n, len + n, ap);
    emit("attn_context", ws.ctx.data(), qd);
    if (trace) {  // o without the residual, on the side
        o.forward(ws.ctx.data(), n, qd, ws.h.data(), d);
        emit("attn_out", ws.h.data(), d);
    }
    o.forward(ws.ctx.data(), n, qd, x, d, {.residual = x, .ld_residual = d});
    norm2.forward(x, n, d, ws.h.data(), d);
    emit("post_attention_layernorm", ws.h.data(), d);
    mlp.trace(ws.h.data(), n, trace, prefix);
    mlp.forward(ws.h.data(), n, x, d, ws, x, d);
    emit("out", x, d);
}

template <WeightPolicy W>
void DecoderBlock<W>::forward_rows(float* x, std::size_t n, const RopeTable& rope, float* const* k_cache, float* const* v_cache,
                                   const std::size_t* len, Workspace& ws) const {
    const std::size_t d = dim(), qd = heads * head_dim, kvd = kv_dim();
    ws.reserve(n, d, qd, kvd, mlp.hidden_features());
    norm1.forward(x, n, d, ws.h.data(), d);
    forward_same_input<W>(ws.h.data(), n, d, ws.acts, {{q, ws.q.data(), qd}, {k, ws.k.data(), kvd}, {v, ws.v.data(), kvd}});
    attend_new_rows(n, ws.q.data(), ws.k.data(), ws.v.data(), k_cache, v_cache, len, rope, heads, kv_heads, head_dim, ws.ctx.data());
    o.forward(ws.ctx.data(), n, qd, x, d, {.residual = x, .ld_residual = d});
    norm2.forward(x, n, d, ws.h.data(), d);
    mlp.forward(ws.h.data(), n, x, d, ws, x, d);
}

DOCVLM_NAMESPACE_END
