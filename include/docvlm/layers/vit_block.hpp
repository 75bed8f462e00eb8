// docvlm/layers/vit_block.hpp — ViTBlock<W, Mask, Pos>: the pre-norm transformer encoder block of
// every vision tower (CLIP, Qwen-VL's ViT, Qwen2-VL's NaViT, docvlm-small's tower and its table
// splitter):
//
//   x += attn(norm1 x)      (SelfAttention<W, Mask, Pos>: full, causal or window + anchors; q, k, v
//                            separate or fused; rope rows when Pos has positions)
//   x += mlp(norm2 x)       (plain: fc2(act(fc1 ·)), the activation the family's config names)
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/trace.hpp>
#include <docvlm/layers/attention.hpp>
#include <docvlm/layers/norm.hpp>
#include <docvlm/layers/rope.hpp>
#include <docvlm/layers/workspace.hpp>

#include <string>

DOCVLM_NAMESPACE_BEGIN

template <WeightPolicy W, AttentionPolicy Mask = FullAttention, PositionPolicy Pos = NoPosition>
struct ViTBlock {
    LayerNorm norm1, norm2;
    SelfAttention<W, Mask, Pos> attn;
    Mlp<W> mlp;

    /// x [n, dim] in place; activations in ws; rope: n rows unless Pos is NoPosition. Traced
    /// under `prefix`: layer_norm1, the attention's pieces (SelfAttention::forward), layer_norm2,
    /// fc1, act, fc2, out (transformers' CLIP names).
    void forward(float* x, std::size_t n, Workspace& ws, const RopeTable* rope = nullptr, const Trace& trace = {},
                 const std::string& prefix = {}) const {
        const std::size_t d = norm1.dim();
        float* h = ws.h.room(n * d);
        norm1.forward(x, n, d, h, d);
        if (trace) trace(prefix + "layer_norm1", h, n, d);
        attn.forward(h, n, rope, ws, x, d, x, d, trace, prefix);
        norm2.forward(x, n, d, h, d);
        if (trace) trace(prefix + "layer_norm2", h, n, d);
        mlp.trace(h, n, trace, prefix);
        mlp.forward(h, n, x, d, ws, x, d);
        if (trace) trace(prefix + "out", x, n, d);
    }
};

/// The blocks of a vision tower, run in order over x [n, dim] in place. Traced: block 0's pieces
/// under "vision_blk0_" and every block's output as "vision_block_out_<b>".
template <WeightPolicy W, AttentionPolicy Mask = FullAttention, PositionPolicy Pos = NoPosition>
struct ViTStack {
    using Block = ViTBlock<W, Mask, Pos>;
    std::vector<Block> blocks;

    void forward(float* x, std::size_t n, Workspace& ws, const RopeTable* rope = nullptr, const Trace& trace = {}) const {
        const std::size_t d = blocks.empty() ? 0 : blocks.front().norm1.dim();
        for (std::size_t b = 0; b < blocks.size(); ++b) {
            blocks[b].forward(x, n, ws, rope, b == 0 ? trace : Trace{}, "vision_blk0_");
            if (trace) trace("vision_block_out_" + std::to_string(b), x, n, d);
        }
    }
    /// A workspace with room for n tokens (one allocation per buffer, before the first block).
    Workspace workspace(std::size_t n) const {
        Workspace ws;
        if (blocks.empty()) return ws;
        const auto& a = blocks.front().attn;
        ws.reserve(n, blocks.front().norm1.dim(), a.q_width(), a.kv_width(), blocks.front().mlp.hidden_features());
        return ws;
    }
};

DOCVLM_NAMESPACE_END
