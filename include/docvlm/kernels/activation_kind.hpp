// docvlm/kernels/activation_kind.hpp — the element-wise activations and their scalar definitions.
#pragma once

#include <docvlm/core/config.hpp>

#include <cmath>

DOCVLM_NAMESPACE_BEGIN

/// Element-wise activation applied in GEMM epilogues and MLPs.
enum class Activation { none, gelu_erf, gelu_tanh, quick_gelu, silu };

namespace kernels {

/// The reference definition of each activation, in float.
inline float activate_scalar(Activation act, float x) {
    switch (act) {
        case Activation::none: return x;
        case Activation::gelu_erf: return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
        case Activation::gelu_tanh:
            return 0.5f * x * (1.0f + std::tanh(0.79788456080286536f * (x + 0.044715f * x * x * x)));
        case Activation::quick_gelu: return x / (1.0f + std::exp(-1.702f * x));
        case Activation::silu: return x / (1.0f + std::exp(-x));
    }
    return x;
}

}  // namespace kernels
DOCVLM_NAMESPACE_END
