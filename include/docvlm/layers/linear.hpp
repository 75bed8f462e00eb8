// docvlm/layers/linear.hpp — y = x · Wᵀ + b with the weight policy of the model (F32, BF16, int8).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/kernels/gemm.hpp>
#include <docvlm/kernels/qgemm.hpp>
#include <docvlm/core/policies.hpp>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// A linear layer W [out, in] (+ bias [out]) stored as the policy W dictates.
template <WeightPolicy W>
class Linear {
public:
    Linear() = default;
    /// From a float matrix [out, in] (row-major) and an optional bias.
    Linear(const float* w, std::size_t out, std::size_t in, const float* bias = nullptr);
    /// From an int8 weight already packed (what `docvlm quantize` writes); int8 policies only.
    Linear(kernels::QuantizedWeight w, const float* bias = nullptr) requires(!std::is_same_v<W, F32> && !std::is_same_v<W, BF16>)
        : out_(w.n), in_(w.k), w_(std::move(w)) {
        if (bias) bias_.assign(bias, bias + out_);
    }

    /// y [m, out] (stride ldy) = x [m, in] (stride ldx) · Wᵀ + b, then the epilogue (activation,
    /// residual). The layer's own bias is added before `ep`'s activation.
    void forward(const float* x, std::size_t m, std::size_t ldx, float* y, std::size_t ldy, kernels::Epilogue ep = {}) const;

    /// The same from activations already quantised (int8 policies): one input shared by several
    /// layers, see forward_same_input.
    void forward(const kernels::QuantizedActivations& x, float* y, std::size_t ldy, kernels::Epilogue ep = {}) const
        requires(!std::is_same_v<W, F32> && !std::is_same_v<W, BF16>)
    {
        if (!bias_.empty()) ep.bias = bias_.data();
        kernels::qgemm(x, w_, y, ldy, ep);
    }

    std::size_t out_features() const { return out_; }
    std::size_t in_features() const { return in_; }
    /// The weights as packed for this policy (kernels::PackedF32, PackedBF16 or QuantizedWeight).
    const auto& packed() const { return w_; }
    /// [out] or empty.
    const std::vector<float>& bias() const { return bias_; }
    /// The packed int8 weights (int8 policies).
    const kernels::QuantizedWeight& int8_weight() const
        requires(!std::is_same_v<W, F32> && !std::is_same_v<W, BF16>)
    {
        return w_;
    }

private:
    std::size_t out_ = 0, in_ = 0;
    std::vector<float> bias_;
    std::conditional_t<std::is_same_v<W, F32>, kernels::PackedF32,
                       std::conditional_t<std::is_same_v<W, BF16>, kernels::PackedBF16, kernels::QuantizedWeight>>
        w_;
};

/// One output of forward_same_input: a layer, where its result goes and its epilogue.
template <WeightPolicy W>
struct LinearOutput {
    const Linear<W>& layer;
    float* y;
    std::size_t ldy;
    kernels::Epilogue ep = {};
};

/// Several layers that read the same input x [m, in] (q, k and v; gate and up), run in the order
/// given (a later epilogue may read an earlier output). Int8 policies quantise x once for all of
/// them, into `acts` (the caller's: a workspace's), instead of once per layer (the outputs are bit
/// for bit those of separate forward calls); the float policies run each layer's forward.
template <WeightPolicy W>
void forward_same_input(const float* x, std::size_t m, std::size_t ldx, kernels::QuantizedActivations& acts,
                        std::initializer_list<LinearOutput<W>> outputs) {
    if (outputs.size() == 0) return;
    const std::size_t in = outputs.begin()->layer.in_features();
    for (const auto& o : outputs)
        if (o.layer.in_features() != in) detail::fail("forward_same_input: layers take ", in, " and ", o.layer.in_features(), " inputs");
    if constexpr (std::is_same_v<W, F32> || std::is_same_v<W, BF16>) {
        for (const auto& o : outputs) o.layer.forward(x, m, ldx, o.y, o.ldy, o.ep);
    } else {
        // avx2u8 only where every layer's weights allow it (they come from one quantiser).
        const kernels::QPath best = kernels::best_qpath();
        kernels::QPath path = kernels::activation_qpath(outputs.begin()->layer.int8_weight(), best);
        for (const auto& o : outputs)
            if (kernels::activation_qpath(o.layer.int8_weight(), best) != path) path = best;
        kernels::quantize_activations(x, m, in, ldx, acts, path);
        for (const auto& o : outputs) o.layer.forward(acts, o.y, o.ldy, o.ep);
    }
}

// ------------------------------------------------------------------------------------------------

template <WeightPolicy W>
Linear<W>::Linear(const float* w, std::size_t out, std::size_t in, const float* bias) : out_(out), in_(in) {
    if (bias) bias_.assign(bias, bias + out);
    if constexpr (std::is_same_v<W, F32>) w_ = kernels::pack_f32(w, out, in);
    else if constexpr (std::is_same_v<W, BF16>) w_ = kernels::pack_bf16(w, out, in);
    else if constexpr (std::is_same_v<W, Int8PerChannel>) w_ = kernels::quantize_weight(w, out, in, 0);
    else w_ = kernels::quantize_weight(w, out, in, std::size_t(W::group));
}

template <WeightPolicy W>
void Linear<W>::forward(const float* x, std::size_t m, std::size_t ldx, float* y, std::size_t ldy, kernels::Epilogue ep) const {
    if (!bias_.empty()) ep.bias = bias_.data();
    if constexpr (std::is_same_v<W, F32>) kernels::sgemm(x, m, ldx, w_, y, ldy, ep);
    else if constexpr (std::is_same_v<W, BF16>) kernels::bgemm(x, m, ldx, w_, y, ldy, ep);
    else kernels::qgemm(x, m, ldx, w_, y, ldy, ep);
}

DOCVLM_NAMESPACE_END
