// docvlm/backend/device_vit.hpp — DeviceViT: the blocks of a vision tower (layers/vit_block.hpp's
// ViTStack) uploaded to a Backend and run there, the same operations in the same order:
//
//   h = norm1(x);  q | k | v = qkv(h) (or q(h), k(h), v(h));  rope(q), rope(k) where the tower has positions
//   x += o(attention(q, k, v))                 (full, causal, or window + anchors)
//   x += mlp(norm2(x))
//
// The patch embedding before the blocks and what comes after them (merger, projector, resampler)
// stay on the host; forward() takes and returns the host's x. One call runs at a time.
#pragma once

#include <docvlm/backend/backend.hpp>
#include <docvlm/backend/device_layers.hpp>
#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/layers/rope.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace backend {

class DeviceViT {
public:
    struct Block {
        DeviceNorm norm1, norm2;
        DeviceLinear q, k, v, o;  // fused: q projects to q | k | v, k and v are empty
        bool fused = false;
        DeviceMlp mlp;
        std::size_t heads = 0, kv_heads = 0, head_dim = 0;
    };

    /// `mask`: causal / window / anchors of the tower's attention (its sizes come from the blocks);
    /// `positions`: whether the tower rotates q and k (a RopeTable per call).
    DeviceViT(std::shared_ptr<Backend> be, AttentionSpec mask, bool positions) : be_(std::move(be)), mask_(mask), positions_(positions) {}

    Backend& backend() const { return *be_; }
    void add_block(Block b) { blocks_.push_back(std::move(b)); }

    /// x [n, dim] (host) in place through every block; rope: n rows of head_dim (towers with positions).
    void forward(float* x, std::size_t n, const RopeTable* rope);

private:
    std::shared_ptr<Backend> be_;
    AttentionSpec mask_;
    bool positions_ = false;
    std::vector<Block> blocks_;

    std::mutex mutex_;
    std::size_t rows_ = 0;
    DeviceBuffer x_, h_, q_, k_, v_, ctx_, g_, cos_, sin_;

    void reserve(std::size_t n);
    void run_block(const Block& b, std::size_t n);
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline void DeviceViT::reserve(std::size_t n) {
    if (n <= rows_) return;
    std::size_t d = 0, qkv = 0, kvd = 0, qd = 0, hid = 0, hd = 0;
    for (const Block& b : blocks_) {
        d = std::max(d, b.norm1.dim), hd = std::max(hd, b.head_dim), hid = std::max(hid, b.mlp.hidden());
        qd = std::max(qd, b.heads * b.head_dim), kvd = std::max(kvd, b.kv_heads * b.head_dim);
        qkv = std::max(qkv, b.fused ? (b.heads + 2 * b.kv_heads) * b.head_dim : b.heads * b.head_dim);
    }
    auto grow = [&](DeviceBuffer& b, std::size_t floats) { b = be_->alloc(std::max<std::size_t>(n * floats, 1) * sizeof(float)); };
    grow(x_, d), grow(h_, d), grow(q_, qkv), grow(k_, kvd), grow(v_, kvd), grow(ctx_, qd), grow(g_, hid), grow(cos_, hd), grow(sin_, hd);
    rows_ = n;
}

inline void DeviceViT::run_block(const Block& b, std::size_t n) {
    const std::size_t d = b.norm1.dim, hd = b.head_dim, qd = b.heads * hd, kvd = b.kv_heads * hd;
    // q [n][ldq], k and v [n][ldkv]: one buffer of rows q | k | v, or three
    const std::size_t ldq = b.fused ? qd + 2 * kvd : qd, ldkv = b.fused ? ldq : kvd;
    float* x = x_.f32();
    float* q = q_.f32();
    float* k = b.fused ? q + qd : k_.f32();
    float* v = b.fused ? k + kvd : v_.f32();
    run_norm(*be_, b.norm1, x, n, d, h_.f32(), d);
    be_->linear(b.q, h_.f32(), n, d, q, ldq);
    if (!b.fused) be_->linear(b.k, h_.f32(), n, d, k, kvd), be_->linear(b.v, h_.f32(), n, d, v, kvd);
    if (positions_) {
        be_->rope(q, n, ldq, b.heads, hd, cos_.f32(), sin_.f32());
        be_->rope(k, n, ldkv, b.kv_heads, hd, cos_.f32(), sin_.f32());
    }
    AttentionSpec spec = mask_;
    spec.heads = b.heads, spec.kv_heads = b.kv_heads, spec.head_dim = hd, spec.scale = 1.0f / std::sqrt(float(hd)), spec.q_offset = 0;
    be_->attention(q, ldq, k, ldkv, v, ldkv, ctx_.f32(), qd, n, n, spec);
    be_->linear(b.o, ctx_.f32(), n, qd, x, d, {.residual = x, .ld_residual = d});
    run_norm(*be_, b.norm2, x, n, d, h_.f32(), d);
    run_mlp(*be_, b.mlp, h_.f32(), n, g_.f32(), x, d, x);
}

inline void DeviceViT::forward(float* x, std::size_t n, const RopeTable* rope) {
    if (blocks_.empty() || n == 0) return;
    const std::size_t d = blocks_.front().norm1.dim, hd = blocks_.front().head_dim;
    if (positions_ && (!rope || rope->tokens < n || rope->head_dim != hd))
        detail::fail("vision tower on ", be_->name(), ": a rope table for ", n, " tokens of ", hd, " is needed");
    std::lock_guard lock(mutex_);
    reserve(n);
    be_->upload(x_.data(), x, n * d * sizeof(float));
    if (positions_) {
        be_->upload(cos_.data(), rope->cos.data(), n * hd * sizeof(float));
        be_->upload(sin_.data(), rope->sin.data(), n * hd * sizeof(float));
    }
    for (const Block& b : blocks_) run_block(b, n);
    be_->download(x, x_.data(), n * d * sizeof(float));
}

}  // namespace backend
DOCVLM_NAMESPACE_END
