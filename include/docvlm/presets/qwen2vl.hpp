// docvlm/presets/qwen2vl.hpp — ready Configs for the Qwen2-VL family.
//
//   presets::Qwen2VLFamily<sizes..., W>  any member, sizes as template arguments
//   presets::Qwen2VL<W>   every size docvlm::dynamic: loads MinerU2.5, Qwen2-VL-2B or a tiny test
//                         checkpoint with one binary (sizes from config.json)
//   W = F32 | BF16 | Int8PerChannel | Int8PerGroup<g>  (default Int8PerChannel)
// MinerU2.5-2509-1.2B with every size fixed at compile time: presets/mineru25.hpp.
#pragma once

#include <docvlm/model/config.hpp>
#include <docvlm/model/qwen2vl.hpp>

DOCVLM_NAMESPACE_BEGIN
namespace presets {

/// Any member of the family, sizes as template arguments (docvlm::dynamic allowed).
template <int VDepth, int VDim, int VHeads, int VMlp, int Layers, int Hidden, int Heads, int KvHeads, int Mlp, int Vocab,
          int SecT, int SecH, int SecW, WeightPolicy Weights>
struct Qwen2VLFamily {
    struct vision {
        static constexpr int depth = VDepth, dim = VDim, heads = VHeads, mlp = VMlp, patch = 14;
        using attention = FullAttention;
        using position = Rope2D;
    };
    struct text {
        static constexpr int layers = Layers, hidden = Hidden, heads = Heads, kv_heads = KvHeads, mlp = Mlp, vocab = Vocab;
        using attention = CausalAttention;
        using position = MRope<SecT, SecH, SecW>;
    };
    using fusion = TokenConcat;
    using weights = Weights;
};

template <WeightPolicy W = Int8PerChannel>
using Qwen2VL = Qwen2VLFamily<dynamic, dynamic, dynamic, dynamic, dynamic, dynamic, dynamic, dynamic, dynamic, dynamic, dynamic,
                              dynamic, dynamic, W>;

}  // namespace presets

DOCVLM_NAMESPACE_END
