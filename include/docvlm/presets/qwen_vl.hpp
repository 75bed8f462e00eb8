// docvlm/presets/qwen_vl.hpp — ready Configs for the Qwen-VL family (model/qwen_vl.hpp).
//
//   presets::QwenVL<W>   every size docvlm::dynamic: loads Qwen-VL, Qwen-VL-Chat or a tiny test
//                        checkpoint with one binary (sizes from config.json)
//   W = F32 | BF16 | Int8PerChannel | Int8PerGroup<g>  (default Int8PerChannel)
#pragma once

#include <docvlm/model/config.hpp>
#include <docvlm/model/qwen_vl.hpp>

DOCVLM_NAMESPACE_BEGIN
namespace presets {

template <WeightPolicy Weights = Int8PerChannel>
struct QwenVL {
    struct vision {  // OpenCLIP-style ViT
        static constexpr int depth = dynamic, dim = dynamic, heads = dynamic, mlp = dynamic, patch = dynamic;
        using attention = FullAttention;
        using position = NoPosition;  // a learned table, resized to the patch grid
    };
    struct text {  // Qwen-7B
        static constexpr int layers = dynamic, hidden = dynamic, heads = dynamic, kv_heads = dynamic, mlp = dynamic, vocab = dynamic;
        using attention = CausalAttention;
        using position = Rope1D;
    };
    using fusion = Resampler<dynamic>;  // 256 queries in Qwen-VL-Chat
    using weights = Weights;
};

}  // namespace presets

DOCVLM_NAMESPACE_END
