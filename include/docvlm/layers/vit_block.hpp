// docvlm/layers/vit_block.hpp — ViTBlock<W, Mask, Pos>: the pre-norm transformer encoder block of
// every vision tower (CLIP, Qwen-VL's ViT, Qwen2-VL's NaViT, docvlm-small's tower and its table
// splitter):
//
//   x += attn(norm1 x)      (SelfAttention<W, Mask, Pos>: full, causal or window + anchors; q, k, v
//                            separate or fused; rope rows when Pos has positions)
//   x += mlp(norm2 x)       (plain: fc2(act(fc1 ·)), the activation the family's config names)
//
// ViTStack::to_device(backend) runs the blocks on a Backend from then on (backend/device_vit.hpp);
// traces then hold none of the blocks' tensors.
#pragma once

#include <docvlm/backend/device_vit.hpp>
#include <docvlm/core/config.hpp>
#include <docvlm/core/trace.hpp>
#include <docvlm/layers/attention.hpp>
#include <docvlm/layers/norm.hpp>
#include <docvlm/layers/rope.hpp>
#include <docvlm/layers/workspace.hpp>

#include <memory>
#include <string>
#include <type_traits>

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
    /// Null: the CPU kernels; else the backend holding the blocks (to_device).
    std::shared_ptr<backend::DeviceViT> device;

    void forward(float* x, std::size_t n, Workspace& ws, const RopeTable* rope = nullptr, const Trace& trace = {}) const {
        if (device) return device->forward(x, n, rope);
        const std::size_t d = blocks.empty() ? 0 : blocks.front().norm1.dim();
        for (std::size_t b = 0; b < blocks.size(); ++b) {
            blocks[b].forward(x, n, ws, rope, b == 0 ? trace : Trace{}, "vision_blk0_");
            if (trace) trace("vision_block_out_" + std::to_string(b), x, n, d);
        }
    }
    /// Uploads the blocks to `be`; forward runs there from now on (the CPU weights stay).
    void to_device(const std::shared_ptr<backend::Backend>& be) {
        backend::AttentionSpec mask;
        if constexpr (std::is_same_v<Mask, CausalAttention>) mask.causal = true;
        if constexpr (detail::is_window_anchor<Mask>::value) mask.window = std::size_t(Mask::window), mask.anchors = std::size_t(Mask::anchors);
        auto dev = std::make_shared<backend::DeviceViT>(be, mask, !std::is_same_v<Pos, NoPosition>);
        for (const Block& b : blocks) {
            using backend::upload_linear;
            backend::DeviceViT::Block d;
            d.norm1 = backend::upload_norm(*be, b.norm1), d.norm2 = backend::upload_norm(*be, b.norm2);
            d.fused = b.attn.is_fused();
            d.q = upload_linear(*be, b.attn.q_proj()), d.o = upload_linear(*be, b.attn.o_proj());
            if (!d.fused) d.k = upload_linear(*be, b.attn.k_proj()), d.v = upload_linear(*be, b.attn.v_proj());
            d.mlp = backend::upload_mlp(*be, b.mlp);
            d.heads = b.attn.heads(), d.kv_heads = b.attn.kv_heads(), d.head_dim = b.attn.head_dim();
            dev->add_block(std::move(d));
        }
        device = std::move(dev);
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
