// docvlm/presets/llava15.hpp — ready Configs for the LLaVA-1.5 family (model/llava.hpp).
//
//   presets::Llava15<W>   every size docvlm::dynamic: loads llava-1.5-7b-hf, llava-1.5-13b-hf or a
//                         tiny test checkpoint with one binary (sizes from config.json)
//   W = F32 | BF16 | Int8PerChannel | Int8PerGroup<g>  (default Int8PerChannel)
#pragma once

#include <docvlm/model/config.hpp>
#include <docvlm/model/llava.hpp>

DOCVLM_NAMESPACE_BEGIN
namespace presets {

template <WeightPolicy Weights = Int8PerChannel>
struct Llava15 {
    struct vision {  // CLIP ViT
        static constexpr int depth = dynamic, dim = dynamic, heads = dynamic, mlp = dynamic, patch = dynamic;
        using attention = FullAttention;
        using position = NoPosition;  // learned position embeddings
    };
    struct text {  // LLaMA / Vicuna
        static constexpr int layers = dynamic, hidden = dynamic, heads = dynamic, kv_heads = dynamic, mlp = dynamic, vocab = dynamic;
        using attention = CausalAttention;
        using position = Rope1D;
    };
    using fusion = MlpProjector;
    using weights = Weights;
};

}  // namespace presets

DOCVLM_NAMESPACE_END
