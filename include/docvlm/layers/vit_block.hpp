// docvlm/layers/vit_block.hpp — ViTBlock<W, Mask, Pos>: the pre-norm transformer encoder block of
// CLIP, docvlm-small's vision tower and its table splitter:
//
//   x += attn(norm1 x)      (SelfAttention<W, Mask, Pos>: full, causal or window + anchors)
//   x += mlp(norm2 x)       (plain: fc2(act(fc1 ·)), the activation the family's config names)
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/trace.hpp>
#include <docvlm/layers/attention.hpp>
#include <docvlm/layers/norm.hpp>
#include <docvlm/layers/rope.hpp>

#include <string>

DOCVLM_NAMESPACE_BEGIN

template <WeightPolicy W, AttentionPolicy Mask = FullAttention, PositionPolicy Pos = NoPosition>
struct ViTBlock {
    LayerNorm norm1, norm2;
    SelfAttention<W, Mask, Pos> attn;
    Mlp<W> mlp;

    /// x [n, dim] in place; h: scratch [n, dim]; rope: n rows unless Pos is NoPosition. Traced
    /// under `prefix`: layer_norm1, q_proj, k_proj, v_proj, attn_context, out_proj, layer_norm2,
    /// fc1, act, fc2, out (transformers' CLIP names).
    void forward(float* x, std::size_t n, float* h, const RopeTable* rope = nullptr, const Trace& trace = {},
                 const std::string& prefix = {}) const {
        const std::size_t d = norm1.dim();
        norm1.forward(x, n, d, h, d);
        if (trace) trace(prefix + "layer_norm1", h, n, d);
        attn.forward(h, n, rope, x, d, x, d, trace, prefix);
        norm2.forward(x, n, d, h, d);
        if (trace) trace(prefix + "layer_norm2", h, n, d);
        mlp.trace(h, n, trace, prefix);
        mlp.forward(h, n, x, d, x, d);
        if (trace) trace(prefix + "out", x, n, d);
    }
};

DOCVLM_NAMESPACE_END
