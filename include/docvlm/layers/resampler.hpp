// docvlm/layers/resampler.hpp — CrossAttentionResampler<W>: a fixed number of learned queries read
// a variable set of vision tokens through one multi-head cross-attention (Qwen-VL's attn_pool):
//
//   kv   = ln_kv(kv_proj(x))                    x [n, kv_dim] → [n, dim]
//   out  = o(attention(q(ln_q(query) + pos_q), k(kv + pos_kv), v(kv)))     [queries, dim]
//
// pos_q are the queries' 2D sin-cos positions, pos_kv the same table resized (bicubic) to the
// tokens' grid. The queries do not depend on the image, so their projection q(·) is computed once
// at construction.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/trace.hpp>
#include <docvlm/kernels/attention.hpp>
#include <docvlm/layers/linear.hpp>
#include <docvlm/layers/norm.hpp>

#include <cmath>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

template <WeightPolicy W>
class CrossAttentionResampler {
public:
    CrossAttentionResampler() = default;
    /// queries_in [queries, dim] = ln_q(query) + pos_q (the query side's input, fixed);
    /// pos_kv [n_kv, dim]: the position added to the keys' input; kv_proj may be empty (identity).
    CrossAttentionResampler(const std::vector<float>& queries_in, std::vector<float> pos_kv, Linear<W> kv_proj, LayerNorm ln_kv, Linear<W> q,
                            Linear<W> k, Linear<W> v, Linear<W> o, std::size_t heads);

    /// x [n_kv, kv_dim] → out [queries, dim]. Traced: resampler_kv_proj, resampler_ln_kv,
    /// resampler_k_pos, resampler_query_in (ln_q(query) + pos_q), resampler_key_in, resampler_q,
    /// resampler_k, resampler_v (after the in-projection), resampler_context, resampler_out.
    void forward(const float* x, std::size_t n_kv, float* out, const Trace& trace = {}) const;
    std::size_t queries() const { return queries_; }
    std::size_t dim() const { return dim_; }
    std::size_t kv_tokens() const { return pos_kv_.size() / dim_; }

private:
    std::size_t queries_ = 0, dim_ = 0, heads_ = 0;
    std::vector<float> q_in_;    // [queries, dim]: ln_q(query) + pos_q
    std::vector<float> q_;       // [queries, dim]: the projected queries
    std::vector<float> pos_kv_;  // [n_kv, dim]
    Linear<W> kv_proj_, k_, v_, o_;
    bool has_kv_proj_ = false;
    LayerNorm ln_kv_;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

template <WeightPolicy W>
CrossAttentionResampler<W>::CrossAttentionResampler(const std::vector<float>& queries_in, std::vector<float> pos_kv, Linear<W> kv_proj,
                                                    LayerNorm ln_kv, Linear<W> q, Linear<W> k, Linear<W> v, Linear<W> o, std::size_t heads)
    : dim_(q.in_features()), heads_(heads), pos_kv_(std::move(pos_kv)), kv_proj_(std::move(kv_proj)), k_(std::move(k)), v_(std::move(v)),
      o_(std::move(o)), ln_kv_(std::move(ln_kv)) {
    has_kv_proj_ = kv_proj_.out_features() > 0;
    if (heads_ == 0 || dim_ % heads_) detail::fail("resampler: ", heads_, " heads do not divide ", dim_);
    if (queries_in.empty() || queries_in.size() % dim_) detail::fail("resampler: queries of ", queries_in.size(), " values for width ", dim_);
    if (pos_kv_.empty() || pos_kv_.size() % dim_) detail::fail("resampler: key positions of ", pos_kv_.size(), " values for width ", dim_);
    if (q.out_features() != dim_ || k_.out_features() != dim_ || v_.out_features() != dim_ || k_.in_features() != dim_ ||
        o_.in_features() != dim_ || o_.out_features() != dim_ || ln_kv_.dim() != dim_ || (has_kv_proj_ && kv_proj_.out_features() != dim_))
        detail::fail("resampler: the projections do not all map ", dim_, " channels");
    queries_ = queries_in.size() / dim_;
    q_in_ = queries_in;
    q_.resize(queries_ * dim_);
    q.forward(queries_in.data(), queries_, dim_, q_.data(), dim_);
}

template <WeightPolicy W>
void CrossAttentionResampler<W>::forward(const float* x, std::size_t n, float* out, const Trace& trace) const {
    if (n != kv_tokens()) detail::fail("resampler: ", n, " vision tokens, the key positions are for ", kv_tokens());
    const std::size_t d = dim_;
    std::vector<float> kv(n * d), kin(n * d), k(n * d), v(n * d), ctx(queries_ * d);
    if (has_kv_proj_) kv_proj_.forward(x, n, kv_proj_.in_features(), kv.data(), d);
    else std::copy_n(x, n * d, kv.data());
    detail::emit(trace, "resampler_kv_proj", kv.data(), n, d);
    ln_kv_.forward(kv.data(), n, d, kv.data(), d);
    detail::emit(trace, "resampler_ln_kv", kv.data(), n, d);
    for (std::size_t i = 0; i < n * d; ++i) kin[i] = kv[i] + pos_kv_[i];
    detail::emit(trace, "resampler_k_pos", pos_kv_.data(), n, d);
    detail::emit(trace, "resampler_query_in", q_in_.data(), queries_, d);
    detail::emit(trace, "resampler_key_in", kin.data(), n, d);
    k_.forward(kin.data(), n, d, k.data(), d);
    v_.forward(kv.data(), n, d, v.data(), d);
    detail::emit(trace, "resampler_q", q_.data(), queries_, d);
    detail::emit(trace, "resampler_k", k.data(), n, d);
    detail::emit(trace, "resampler_v", v.data(), n, d);
    const std::size_t hd = d / heads_;
    const kernels::AttentionParams ap{.heads = heads_, .kv_heads = heads_, .head_dim = hd, .scale = 1.0f / std::sqrt(float(hd))};
    kernels::attention(q_.data(), d, k.data(), d, v.data(), d, ctx.data(), d, queries_, n, ap);
    detail::emit(trace, "resampler_context", ctx.data(), queries_, d);
    o_.forward(ctx.data(), queries_, d, out, d);
    detail::emit(trace, "resampler_out", out, queries_, d);
}

DOCVLM_NAMESPACE_END
