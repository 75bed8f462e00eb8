// docvlm/backend/device_decoder.hpp — DeviceDecoder: a Decoder<W> (model/decoder.hpp) uploaded to
// a Backend and run there, its KV caches on the device.
//
// The same layers in the same order as the CPU decoder (layers/decoder_block.hpp,
// layers/attention.hpp), spelled as Backend operations:
//   [cross: x += g_a ⊙ o(attn(q(norm1 x), vision k, v));  x += g_m ⊙ mlp(norm2 x)]
//   h = norm1(x);  q, k, v = q(h), k(h), v(h) → cache;  rope(q), rope(k);  x += o(causal attn)
//   x += mlp(norm2(x))                       (gated: down(act(gate h) · up h); plain: fc2(act(fc1 h)))
//   logits = head(norm(x))
// Embeddings, rope tables and the vision tokens' keys/values are computed on the host and
// uploaded; logits come back to the host, where the sampler chooses. One call runs at a time
// (a mutex): states are independent, the activation scratch is shared.
#pragma once

#include <docvlm/backend/backend.hpp>
#include <docvlm/backend/device_layers.hpp>
#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace backend {

class DeviceDecoder {
public:
    using Norm = DeviceNorm;
    using Mlp = DeviceMlp;
    struct Block {
        Norm norm1, norm2;
        DeviceLinear q, k, v, o;
        Mlp mlp;
        std::size_t heads = 0, kv_heads = 0, head_dim = 0;
    };
    /// A gated cross-attention layer; its k and v projections stay on the host (VisionKV).
    struct Cross {
        Norm norm1, norm2;
        DeviceLinear q, o;
        Mlp mlp;
        DeviceBuffer attn_gate, mlp_gate;
        std::size_t attn_gate_size = 0, mlp_gate_size = 0, heads = 0, kv_heads = 0, head_dim = 0;
    };

    /// One sequence's device memory: a KV cache of `capacity` tokens per block and the projected
    /// vision keys/values per cross-attention layer.
    struct State {
        std::shared_ptr<Backend> owner;  // outlives the buffers below (members are destroyed last to first)
        std::size_t capacity = 0;
        std::vector<DeviceBuffer> k, v;          // per block [capacity][kv_heads · head_dim]
        std::vector<DeviceBuffer> vis_k, vis_v;  // per cross layer [tokens][kv_heads · head_dim]
        std::vector<std::size_t> vis_tokens;
    };

    DeviceDecoder(std::shared_ptr<Backend> be, std::size_t hidden, std::size_t vocab) : be_(std::move(be)), hidden_(hidden), vocab_(vocab) {}

    Backend& backend() const { return *be_; }
    std::size_t hidden() const { return hidden_; }
    std::size_t vocab() const { return vocab_; }

    // ---- building (Decoder<W>::to_device adds its parts in order) ----
    void add_block(Block b) { blocks_.push_back(std::move(b)); }
    void add_cross(Cross c) { cross_.push_back(std::move(c)); }
    void set_tail(std::vector<int> cross_before, Norm norm, DeviceLinear head);

    // ---- running ----
    std::unique_ptr<State> new_state(std::size_t capacity) const;
    /// Uploads cross layer c's vision keys/values k, v [tokens][kv_heads · head_dim] into s.
    void attach(State& s, std::size_t c, const std::vector<float>& k, const std::vector<float>& v, std::size_t tokens) const;
    /// n tokens (x [n, hidden] on the host) after the `len` cached ones; rope cos/sin [n, head_dim].
    /// Writes the last token's logits, or every token's (all_logits), to `logits` [rows, vocab].
    void forward(State& s, std::size_t len, const float* x, std::size_t n, const float* cos, const float* sin, bool all_logits,
                 float* logits);
    /// One token for each of n states: row r of x [n, hidden] follows the len[r] tokens of
    /// *states[r], with rope row r. Writes logits [n, vocab].
    void step(State* const* states, const std::size_t* len, const float* x, std::size_t n, const float* cos, const float* sin,
              float* logits);
    /// The keys/values of src's first len tokens into dst (both of this decoder, capacity ≥ len).
    void copy_tokens(State& dst, const State& src, std::size_t len) const;

private:
    std::shared_ptr<Backend> be_;
    std::size_t hidden_ = 0, vocab_ = 0;
    std::vector<Block> blocks_;
    std::vector<Cross> cross_;
    std::vector<int> cross_before_;
    Norm norm_;
    DeviceLinear head_;
    std::size_t head_dim_ = 0;

    // scratch, grown to the largest call
    std::mutex mutex_;
    std::size_t rows_ = 0;
    DeviceBuffer x_, h_, q_, k_, v_, ctx_, g_, out_, cos_, sin_, logits_;

    void reserve(std::size_t n);
    void upload_rows(const float* x, const float* cos, const float* sin, std::size_t n);
    // row r of x attends vision tokens vis[r * step] (step 0: every row the same)
    void run_cross(const Cross& c, std::size_t n, State* const* states, std::size_t index, std::size_t step);
    void run_block(std::size_t l, std::size_t n, State& s, std::size_t len);
    void run_block_rows(std::size_t l, std::size_t n, State* const* states, const std::size_t* len);
    void run_head(std::size_t first_row, std::size_t rows, float* logits);
    void check_attached(const State& s) const {
        for (std::size_t t : s.vis_tokens)
            if (t == 0) detail::fail("device decoder: the sequence has no image attached for its cross-attention layers");
    }
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline void DeviceDecoder::set_tail(std::vector<int> cross_before, Norm norm, DeviceLinear head) {
    if (blocks_.empty()) detail::fail("device decoder: no layers");
    cross_before_ = std::move(cross_before);
    norm_ = std::move(norm);
    head_ = std::move(head);
    head_dim_ = blocks_.front().head_dim;
}

inline std::unique_ptr<DeviceDecoder::State> DeviceDecoder::new_state(std::size_t capacity) const {
    auto s = std::make_unique<State>();
    s->owner = be_;
    s->capacity = capacity;
    for (const Block& b : blocks_) {
        s->k.push_back(be_->alloc(capacity * b.kv_heads * b.head_dim * sizeof(float)));
        s->v.push_back(be_->alloc(capacity * b.kv_heads * b.head_dim * sizeof(float)));
    }
    s->vis_k.resize(cross_.size()), s->vis_v.resize(cross_.size()), s->vis_tokens.assign(cross_.size(), 0);
    return s;
}

inline void DeviceDecoder::copy_tokens(State& dst, const State& src, std::size_t len) const {
    if (len > dst.capacity || len > src.capacity || dst.k.size() != blocks_.size() || src.k.size() != blocks_.size())
        detail::fail("device decoder: cannot copy ", len, " tokens between these states");
    for (std::size_t l = 0; l < blocks_.size(); ++l) {
        const std::size_t row = blocks_[l].kv_heads * blocks_[l].head_dim * sizeof(float);
        be_->copy_rows(dst.k[l].f32(), row, src.k[l].f32(), row, row, len);
        be_->copy_rows(dst.v[l].f32(), row, src.v[l].f32(), row, row, len);
    }
}

inline void DeviceDecoder::attach(State& s, std::size_t c, const std::vector<float>& k, const std::vector<float>& v, std::size_t tokens) const {
    const std::size_t bytes = k.size() * sizeof(float);
    if (c >= cross_.size() || v.size() != k.size() || k.size() != tokens * cross_[c].kv_heads * cross_[c].head_dim)
        detail::fail("device decoder: vision keys/values of ", tokens, " tokens do not fit cross-attention layer ", c);
    if (s.vis_k[c].bytes() < bytes) s.vis_k[c] = be_->alloc(bytes), s.vis_v[c] = be_->alloc(bytes);
    be_->upload(s.vis_k[c].data(), k.data(), bytes);
    be_->upload(s.vis_v[c].data(), v.data(), bytes);
    s.vis_tokens[c] = tokens;
}

inline void DeviceDecoder::reserve(std::size_t n) {
    if (n <= rows_) return;
    std::size_t qd = 0, kvd = 0, hid = 0;
    for (const Block& b : blocks_)
        qd = std::max(qd, b.heads * b.head_dim), kvd = std::max(kvd, b.kv_heads * b.head_dim), hid = std::max(hid, b.mlp.hidden());
    for (const Cross& c : cross_) qd = std::max(qd, c.heads * c.head_dim), hid = std::max(hid, c.mlp.hidden());
    auto grow = [&](DeviceBuffer& b, std::size_t floats) { b = be_->alloc(n * floats * sizeof(float)); };
    grow(x_, hidden_), grow(h_, hidden_), grow(out_, hidden_), grow(q_, qd), grow(k_, kvd), grow(v_, kvd), grow(ctx_, qd);
    grow(g_, hid), grow(cos_, head_dim_), grow(sin_, head_dim_), grow(logits_, vocab_);
    rows_ = n;
}

inline void DeviceDecoder::upload_rows(const float* x, const float* cos, const float* sin, std::size_t n) {
    reserve(n);
    be_->upload(x_.data(), x, n * hidden_ * sizeof(float));
    be_->upload(cos_.data(), cos, n * head_dim_ * sizeof(float));
    be_->upload(sin_.data(), sin, n * head_dim_ * sizeof(float));
}

inline void DeviceDecoder::run_cross(const Cross& c, std::size_t n, State* const* states, std::size_t index, std::size_t step) {
    const std::size_t d = hidden_, qd = c.heads * c.head_dim, kvd = c.kv_heads * c.head_dim;
    const AttentionSpec spec{.heads = c.heads, .kv_heads = c.kv_heads, .head_dim = c.head_dim, .scale = 1.0f / std::sqrt(float(c.head_dim))};
    float* x = x_.f32();
    run_norm(*be_, c.norm1, x, n, d, h_.f32(), d);
    be_->linear(c.q, h_.f32(), n, d, q_.f32(), qd);
    if (step == 0) {
        const State& s = *states[0];
        be_->attention(q_.f32(), qd, s.vis_k[index].f32(), kvd, s.vis_v[index].f32(), kvd, ctx_.f32(), qd, n, s.vis_tokens[index], spec);
    } else {
        for (std::size_t r = 0; r < n; ++r) {
            const State& s = *states[r * step];
            be_->attention(q_.f32() + r * qd, qd, s.vis_k[index].f32(), kvd, s.vis_v[index].f32(), kvd, ctx_.f32() + r * qd, qd, 1,
                           s.vis_tokens[index], spec);
        }
    }
    be_->linear(c.o, ctx_.f32(), n, qd, out_.f32(), d);
    be_->gated_add(x, out_.f32(), n, d, c.attn_gate.f32(), c.attn_gate_size);
    run_norm(*be_, c.norm2, x, n, d, h_.f32(), d);
    run_mlp(*be_, c.mlp, h_.f32(), n, g_.f32(), out_.f32(), d, nullptr);
    be_->gated_add(x, out_.f32(), n, d, c.mlp_gate.f32(), c.mlp_gate_size);
}

inline void DeviceDecoder::run_block(std::size_t l, std::size_t n, State& s, std::size_t len) {
    const Block& b = blocks_[l];
    const std::size_t d = hidden_, qd = b.heads * b.head_dim, kvd = b.kv_heads * b.head_dim;
    float* x = x_.f32();
    float* kc = s.k[l].f32() + len * kvd;
    float* vc = s.v[l].f32() + len * kvd;
    run_norm(*be_, b.norm1, x, n, d, h_.f32(), d);
    be_->linear(b.q, h_.f32(), n, d, q_.f32(), qd);
    be_->linear(b.k, h_.f32(), n, d, kc, kvd);
    be_->linear(b.v, h_.f32(), n, d, vc, kvd);
    be_->rope(q_.f32(), n, qd, b.heads, b.head_dim, cos_.f32(), sin_.f32());
    be_->rope(kc, n, kvd, b.kv_heads, b.head_dim, cos_.f32(), sin_.f32());
    const AttentionSpec spec{.heads = b.heads, .kv_heads = b.kv_heads, .head_dim = b.head_dim,
                             .scale = 1.0f / std::sqrt(float(b.head_dim)), .causal = true, .q_offset = len};
    be_->attention(q_.f32(), qd, s.k[l].f32(), kvd, s.v[l].f32(), kvd, ctx_.f32(), qd, n, len + n, spec);
    be_->linear(b.o, ctx_.f32(), n, qd, x, d, {.residual = x, .ld_residual = d});
    run_norm(*be_, b.norm2, x, n, d, h_.f32(), d);
    run_mlp(*be_, b.mlp, h_.f32(), n, g_.f32(), x, d, x);
}

inline void DeviceDecoder::run_block_rows(std::size_t l, std::size_t n, State* const* states, const std::size_t* len) {
    const Block& b = blocks_[l];
    const std::size_t d = hidden_, qd = b.heads * b.head_dim, kvd = b.kv_heads * b.head_dim;
    float* x = x_.f32();
    run_norm(*be_, b.norm1, x, n, d, h_.f32(), d);
    be_->linear(b.q, h_.f32(), n, d, q_.f32(), qd);
    be_->linear(b.k, h_.f32(), n, d, k_.f32(), kvd);
    be_->linear(b.v, h_.f32(), n, d, v_.f32(), kvd);
    be_->rope(q_.f32(), n, qd, b.heads, b.head_dim, cos_.f32(), sin_.f32());
    be_->rope(k_.f32(), n, kvd, b.kv_heads, b.head_dim, cos_.f32(), sin_.f32());
    for (std::size_t r = 0; r < n; ++r) {
        State& s = *states[r];
        const std::size_t row = kvd * sizeof(float);
        be_->copy_rows(s.k[l].f32() + len[r] * kvd, row, k_.f32() + r * kvd, row, row, 1);
        be_->copy_rows(s.v[l].f32() + len[r] * kvd, row, v_.f32() + r * kvd, row, row, 1);
        const AttentionSpec spec{.heads = b.heads, .kv_heads = b.kv_heads, .head_dim = b.head_dim,
                                 .scale = 1.0f / std::sqrt(float(b.head_dim)), .causal = true, .q_offset = len[r]};
        be_->attention(q_.f32() + r * qd, qd, s.k[l].f32(), kvd, s.v[l].f32(), kvd, ctx_.f32() + r * qd, qd, 1, len[r] + 1, spec);
    }
    be_->linear(b.o, ctx_.f32(), n, qd, x, d, {.residual = x, .ld_residual = d});
    run_norm(*be_, b.norm2, x, n, d, h_.f32(), d);
    run_mlp(*be_, b.mlp, h_.f32(), n, g_.f32(), x, d, x);
}

inline void DeviceDecoder::run_head(std::size_t first_row, std::size_t rows, float* logits) {
    const std::size_t d = hidden_;
    run_norm(*be_, norm_, x_.f32() + first_row * d, rows, d, h_.f32(), d);
    be_->linear(head_, h_.f32(), rows, d, logits_.f32(), vocab_);
    be_->download(logits, logits_.data(), rows * vocab_ * sizeof(float));
}

inline void DeviceDecoder::forward(State& s, std::size_t len, const float* x, std::size_t n, const float* cos, const float* sin,
                                   bool all_logits, float* logits) {
    if (n == 0 || len + n > s.capacity) detail::fail("device decoder: ", len + n, " tokens exceed the capacity of ", s.capacity);
    check_attached(s);
    std::lock_guard lock(mutex_);
    upload_rows(x, cos, sin, n);
    State* one = &s;
    for (std::size_t l = 0; l < blocks_.size(); ++l) {
        if (!cross_before_.empty() && cross_before_[l] >= 0) run_cross(cross_[std::size_t(cross_before_[l])], n, &one, std::size_t(cross_before_[l]), 0);
        run_block(l, n, s, len);
    }
    const std::size_t rows = all_logits ? n : 1;
    run_head(n - rows, rows, logits);
}

inline void DeviceDecoder::step(State* const* states, const std::size_t* len, const float* x, std::size_t n, const float* cos,
                                const float* sin, float* logits) {
    for (std::size_t r = 0; r < n; ++r)
        if (len[r] + 1 > states[r]->capacity) detail::fail("device decoder: ", len[r] + 1, " tokens exceed the capacity of ", states[r]->capacity);
    for (std::size_t r = 0; r < n; ++r) check_attached(*states[r]);
    if (n == 0) return;
    std::lock_guard lock(mutex_);
    upload_rows(x, cos, sin, n);
    for (std::size_t l = 0; l < blocks_.size(); ++l) {
        if (!cross_before_.empty() && cross_before_[l] >= 0) run_cross(cross_[std::size_t(cross_before_[l])], n, states, std::size_t(cross_before_[l]), 1);
        run_block_rows(l, n, states, len);
    }
    run_head(0, n, logits);
}

}  // namespace backend
DOCVLM_NAMESPACE_END
