// docvlm/kernels/ops.hpp — row-wise kernels: softmax, RMSNorm, LayerNorm, rotary embedding.
//
// Each has a scalar reference here (`*_reference`, accumulating in double); the vectorised
// versions, one source for every ISA, are in kernels/rowwise.hpp. Tests hold every copy to the
// reference within the rounding bound of its summation order (tests/test_rowwise.cpp).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/cpu.hpp>
#include <docvlm/kernels/activations.hpp>
#include <docvlm/kernels/rowwise.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>

DOCVLM_NAMESPACE_BEGIN
DOCVLM_SIMD_WARNINGS_OFF
namespace kernels {

// softmax, rms_norm, layer_norm and rope themselves: kernels/rowwise.hpp (one source, every ISA).

void softmax_reference(float* x, std::size_t n);
void rms_norm_reference(const float* x, const float* weight, float* y, std::size_t n, float eps);
void layer_norm_reference(const float* x, const float* gamma, const float* beta, float* y, std::size_t n, float eps);
void rope_reference(float* x, std::size_t heads, std::size_t head_dim, const float* cos, const float* sin);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline void softmax_reference(float* x, std::size_t n) {
    if (n == 0) return;
    const float mx = *std::max_element(x, x + n);
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += std::exp(double(x[i]) - mx);
    for (std::size_t i = 0; i < n; ++i) x[i] = float(std::exp(double(x[i]) - mx) / sum);
}

inline void rms_norm_reference(const float* x, const float* weight, float* y, std::size_t n, float eps) {
    double ss = 0;
    for (std::size_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
    const double inv = 1.0 / std::sqrt(ss / double(n) + eps);
    for (std::size_t i = 0; i < n; ++i) y[i] = float(x[i] * inv * weight[i]);
}

inline void layer_norm_reference(const float* x, const float* gamma, const float* beta, float* y, std::size_t n, float eps) {
    double mean = 0, var = 0;
    for (std::size_t i = 0; i < n; ++i) mean += x[i];
    mean /= double(n);
    for (std::size_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
    const double inv = 1.0 / std::sqrt(var / double(n) + eps);
    for (std::size_t i = 0; i < n; ++i) y[i] = float((x[i] - mean) * inv * gamma[i] + beta[i]);
}

inline void rope_reference(float* x, std::size_t heads, std::size_t head_dim, const float* cos, const float* sin) {
    const std::size_t half = head_dim / 2;
    for (std::size_t h = 0; h < heads; ++h) {
        float* v = x + h * head_dim;
        for (std::size_t i = 0; i < half; ++i) {
            const double a = v[i], b = v[i + half];
            v[i] = float(a * cos[i] - b * sin[i]);
            v[i + half] = float(b * cos[i + half] + a * sin[i + half]);
        }
    }
}

}  // namespace kernels
DOCVLM_SIMD_WARNINGS_ON
DOCVLM_NAMESPACE_END
