// docvlm/layers/linear.hpp — y = x · Wᵀ + b with the weight policy of the model (F32, BF16, int8).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/io/safetensors.hpp>
#include <docvlm/kernels/gemm.hpp>
#include <docvlm/kernels/qgemm.hpp>
#include <docvlm/model/config.hpp>

#include <string>
#include <type_traits>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// Reads tensor `name` as float and checks its shape; the error names the tensor and both shapes.
inline Array<float> load_tensor(const io::Checkpoint& ck, const std::string& name, const std::vector<std::size_t>& shape) {
    if (!ck.contains(name)) detail::fail(ck.source(), ": missing tensor '", name, "'");
    const auto& info = ck.info(name);
    if (info.shape != shape) {
        std::string want, got;
        for (std::size_t d : shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
        for (std::size_t d : info.shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
        detail::fail(ck.source(), ": tensor '", name, "' has shape [", got, "], the model expects [", want, "]");
    }
    if (!is_floating(info.dtype)) detail::fail(ck.source(), ": tensor '", name, "' is ", dtype_name(info.dtype), ", expected a float type");
    return ck.to_f32(name);
}

/// A linear layer W [out, in] (+ bias [out]) stored as the policy W dictates.
template <WeightPolicy W>
class Linear {
public:
    Linear() = default;
    /// From a float matrix [out, in] (row-major) and an optional bias.
    Linear(const float* w, std::size_t out, std::size_t in, const float* bias = nullptr);
    /// From checkpoint tensors `weight` [out, in] and, if non-empty, `bias` [out].
    static Linear load(const io::Checkpoint& ck, const std::string& weight, const std::string& bias, std::size_t out, std::size_t in);

    /// y [m, out] (stride ldy) = x [m, in] (stride ldx) · Wᵀ + b, then the epilogue (activation,
    /// residual). The layer's own bias is added before `ep`'s activation.
    void forward(const float* x, std::size_t m, std::size_t ldx, float* y, std::size_t ldy, kernels::Epilogue ep = {}) const;

    std::size_t out_features() const { return out_; }
    std::size_t in_features() const { return in_; }

private:
    std::size_t out_ = 0, in_ = 0;
    std::vector<float> bias_;
    std::conditional_t<std::is_same_v<W, F32>, kernels::PackedF32,
                       std::conditional_t<std::is_same_v<W, BF16>, kernels::PackedBF16, kernels::QuantizedWeight>>
        w_;
};

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
Linear<W> Linear<W>::load(const io::Checkpoint& ck, const std::string& weight, const std::string& bias, std::size_t out,
                          std::size_t in) {
    const Array<float> w = load_tensor(ck, weight, {out, in});
    if (bias.empty()) return Linear(w.data(), out, in);
    const Array<float> b = load_tensor(ck, bias, {out});
    return Linear(w.data(), out, in, b.data());
}

template <WeightPolicy W>
void Linear<W>::forward(const float* x, std::size_t m, std::size_t ldx, float* y, std::size_t ldy, kernels::Epilogue ep) const {
    if (!bias_.empty()) ep.bias = bias_.data();
    if constexpr (std::is_same_v<W, F32>) kernels::sgemm(x, m, ldx, w_, y, ldy, ep);
    else if constexpr (std::is_same_v<W, BF16>) kernels::bgemm(x, m, ldx, w_, y, ldy, ep);
    else kernels::qgemm(x, m, ldx, w_, y, ldy, ep);
}

DOCVLM_NAMESPACE_END
