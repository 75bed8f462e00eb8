// docvlm/backend/dense_weights.hpp — a Linear<W>'s weights unpacked to row-major W [out, in]:
// what a backend uploads (backend::DenseLinear). The CPU kernels keep their own packed panels
// (kernels/gemm.hpp, kernels/qgemm_quantize.hpp); other devices want the plain matrix.
//
//   unpack_f32  (PackedF32)        → float  [n, k]
//   unpack_bf16 (PackedBF16)       → bf16   [n, k]
//   unpack_int8 (QuantizedWeight)  → int8   [n, k] + scales [n][groups]  (w ≈ q · scale)
#pragma once

#include <docvlm/backend/backend.hpp>
#include <docvlm/core/config.hpp>
#include <docvlm/core/dtype.hpp>
#include <docvlm/core/policies.hpp>
#include <docvlm/kernels/gemm.hpp>
#include <docvlm/kernels/qgemm_quantize.hpp>
#include <docvlm/layers/linear.hpp>

#include <cstdint>
#include <type_traits>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace backend {

std::vector<float> unpack_f32(const kernels::PackedF32& p);
std::vector<std::uint16_t> unpack_bf16(const kernels::PackedBF16& p);
/// q [n, k] and scales [n][groups] (groups = ceil(k / group), 1 per row without groups).
void unpack_int8(const kernels::QuantizedWeight& w, std::vector<std::int8_t>& q, std::vector<float>& scales);

/// A linear layer's weights unpacked, owning the arrays its `view` points into.
struct HostLinear {
    std::vector<float> f32, scales, bias;
    std::vector<std::uint16_t> bf16;
    std::vector<std::int8_t> q;
    DenseLinear view;
};

/// Unpacks the weights and bias of `l`.
template <WeightPolicy W>
HostLinear host_linear(const Linear<W>& l);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline std::vector<float> unpack_f32(const kernels::PackedF32& p) {
    std::vector<float> w(p.n * p.k);
    for (std::size_t r = 0; r < p.n; ++r)
        for (std::size_t c = 0; c < p.k; ++c) w[r * p.k + c] = p.data[(r / kernels::fpanel * p.k + c) * kernels::fpanel + r % kernels::fpanel];
    return w;
}

inline std::vector<std::uint16_t> unpack_bf16(const kernels::PackedBF16& p) {
    using kernels::fpanel;
    std::vector<std::uint16_t> w(p.n * p.k);
    for (std::size_t r = 0; r < p.n; ++r)
        for (std::size_t c = 0; c < p.k; ++c)
            w[r * p.k + c] = p.data[((r / fpanel * (p.k_padded / 2) + c / 2) * fpanel + r % fpanel) * 2 + c % 2].bits;
    return w;
}

inline void unpack_int8(const kernels::QuantizedWeight& w, std::vector<std::int8_t>& q, std::vector<float>& scales) {
    const std::size_t groups = w.group ? (w.k + w.group - 1) / w.group : 1, stored = w.groups();
    q.resize(w.n * w.k);
    scales.resize(w.n * groups);
    for (std::size_t r = 0; r < w.n; ++r) {
        for (std::size_t c = 0; c < w.k; ++c) q[r * w.k + c] = w.at(r, c);
        for (std::size_t g = 0; g < groups; ++g) scales[r * groups + g] = w.scales[r * stored + g];
    }
}

template <WeightPolicy W>
HostLinear host_linear(const Linear<W>& l) {
    HostLinear h;
    h.bias = l.bias();
    DenseLinear& v = h.view;
    v.out = l.out_features(), v.in = l.in_features();
    if constexpr (std::is_same_v<W, F32>) {
        h.f32 = unpack_f32(l.packed());
        v.form = DenseLinear::Form::f32, v.f32 = h.f32.data();
    } else if constexpr (std::is_same_v<W, BF16>) {
        h.bf16 = unpack_bf16(l.packed());
        v.form = DenseLinear::Form::bf16, v.bf16 = h.bf16.data();
    } else {
        unpack_int8(l.packed(), h.q, h.scales);
        v.form = DenseLinear::Form::int8, v.q = h.q.data(), v.scales = h.scales.data();
        v.group = l.packed().group, v.qmax = l.packed().qmax;
    }
    v.bias = h.bias.empty() ? nullptr : h.bias.data();
    return h;
}

}  // namespace backend
DOCVLM_NAMESPACE_END
