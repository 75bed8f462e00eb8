// docvlm/model/model.hpp — Model<Config>: the model type a Config describes.
//
// The fusion policy picks the composition: TokenConcat → Qwen2VLModel (vision tokens replace the
// image-pad tokens of the prompt, as Qwen2-VL and MinerU2.5 do); MlpProjector → LlavaModel
// (LLaVA-1.5: projected CLIP tokens replace the <image> tokens); Resampler<q> → QwenVLModel
// (Qwen-VL: q resampled tokens replace the image span); GatedCrossAttention<k> →
// GatedVlmModel (the decoder reads the vision tokens through gated cross-attention every k layers,
// as docvlm's embedded model does).
#pragma once

#include <docvlm/model/config.hpp>
#include <docvlm/model/gated_vlm.hpp>
#include <docvlm/model/llava.hpp>
#include <docvlm/model/qwen_vl.hpp>
#include <docvlm/model/qwen2vl.hpp>

#include <type_traits>

DOCVLM_NAMESPACE_BEGIN

namespace detail {
template <class Config, class Fusion = typename Config::fusion>
struct ModelFor {
    static_assert(sizeof(Config) == 0, "Model<Config>: no model composition exists yet for this fusion policy");
};
template <class Config>
struct ModelFor<Config, TokenConcat> {
    using type = Qwen2VLModel<Config>;
};
template <class Config>
struct ModelFor<Config, MlpProjector> {
    using type = LlavaModel<Config>;
};
template <class Config, int Queries>
struct ModelFor<Config, Resampler<Queries>> {
    using type = QwenVLModel<Config>;
};
template <class Config, int Every>
struct ModelFor<Config, GatedCrossAttention<Every>> {
    using type = GatedVlmModel<Config>;
};
}  // namespace detail

/// The model type of `Config` (static_assert-checked: see check_model_config).
template <class Config>
using Model = typename detail::ModelFor<Config>::type;

/// Loads a checkpoint directory as Model<Config>.
template <class Config>
Model<Config> load(const std::string& dir) {
    return Model<Config>::load(dir);
}

DOCVLM_NAMESPACE_END
