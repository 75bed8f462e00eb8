// docvlm/presets/docvlm_small.hpp — docvlm's embedded default model (models/docvlm-small).
//
//   presets::DocvlmSmall<W>        the shipped model: ViT 4 × 256 (4 heads, MLP 1024, 8×8 gray
//                                  patches, windowed attention ±24 tokens with 4 global anchors),
//                                  decoder 4 × 256 (4/2 heads, SwiGLU 704; the vocabulary, read
//                                  from config.json, is 264 for the byte model — 256 bytes and
//                                  specials — and 400 with a table task: OTSL structure tokens and
//                                  cell coordinates)
//                                  reading the vision tokens through gated cross-attention in every
//                                  layer (tools/train/model.py)
//   presets::GatedVlmFamily<...>   the same composition with other sizes or policies (any size may
//                                  be docvlm::dynamic and is then read from config.json)
//   W = F32 | BF16 | Int8PerChannel | Int8PerGroup<g>  (default Int8PerChannel: the model is trained
//   with int8 quantisation in the loop and ships as int8)
#pragma once

#include <docvlm/core/error.hpp>
#include <docvlm/model/config.hpp>
#include <docvlm/model/gated_vlm.hpp>
#include <docvlm/model/model.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

DOCVLM_NAMESPACE_BEGIN
namespace presets {

template <int VDepth, int VDim, int VHeads, int VMlp, int Window, int Anchors, int Layers, int Hidden, int Heads, int KvHeads, int Mlp,
          int Vocab, int XattnEvery, WeightPolicy Weights>
struct GatedVlmFamily {
    struct vision {
        static constexpr int depth = VDepth, dim = VDim, heads = VHeads, mlp = VMlp, patch = 8;
        using attention = WindowAnchor<Window, Anchors>;
        using position = NoPosition;
    };
    struct text {
        static constexpr int layers = Layers, hidden = Hidden, heads = Heads, kv_heads = KvHeads, mlp = Mlp, vocab = Vocab;
        using attention = CausalAttention;
        using position = Rope1D;
    };
    using fusion = GatedCrossAttention<XattnEvery>;
    using weights = Weights;
};

template <WeightPolicy W = Int8PerChannel>
using DocvlmSmall = GatedVlmFamily<4, 256, 4, 1024, 24, 4, 4, 256, 4, 2, 704, dynamic, 1, W>;

}  // namespace presets

/// The folder of docvlm's embedded model: $DOCVLM_MODEL_DIR if set, else where the build (the
/// source tree's models/docvlm-small) or the installation (share/docvlm/models/docvlm-small) put it.
inline std::string default_model_dir() {
    if (const char* env = std::getenv("DOCVLM_MODEL_DIR"); env && *env) return env;
#ifdef DOCVLM_DEFAULT_MODEL_DIR
    return DOCVLM_DEFAULT_MODEL_DIR;
#else
    return "models/docvlm-small";
#endif
}

/// Loads the embedded model (int8 unless another weight policy is asked for).
template <WeightPolicy W = Int8PerChannel>
Model<presets::DocvlmSmall<W>> load_default_model() {
    const std::string dir = default_model_dir();
    if (!std::filesystem::exists(std::filesystem::path(dir) / "model.safetensors"))
        detail::fail("docvlm's embedded model is not at ", dir, " (set DOCVLM_MODEL_DIR to the folder holding models/docvlm-small)");
    return load<presets::DocvlmSmall<W>>(dir);
}

DOCVLM_NAMESPACE_END
