// docvlm/kernels/ops.hpp — row-wise kernels: softmax, RMSNorm, LayerNorm, rotary embedding.
//
// Each has a scalar reference (`*_reference`, accumulating in double) and a vectorised version
// (AVX-512 where present, else scalar float); tests hold them within 1e-6 relative of each other.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/cpu.hpp>
#include <docvlm/kernels/activations.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>

#if DOCVLM_X86_64
#include <immintrin.h>
#endif

DOCVLM_NAMESPACE_BEGIN
DOCVLM_SIMD_WARNINGS_OFF
namespace kernels {

/// x[0..n) = softmax(x) in place.
void softmax(float* x, std::size_t n);
/// y = x / sqrt(mean(x²) + eps) · weight  (Qwen2 / LLaMA RMSNorm). y may be x.
void rms_norm(const float* x, const float* weight, float* y, std::size_t n, float eps);
/// y = (x − mean) / sqrt(var + eps) · gamma + beta  (biased variance). y may be x.
void layer_norm(const float* x, const float* gamma, const float* beta, float* y, std::size_t n, float eps);
/// Rotary embedding, "rotate half" form (Hugging Face apply_rotary_pos_emb) on `heads` vectors of
/// head_dim laid out one after another: x = x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁].
/// cos and sin have head_dim entries (the two halves repeat the same angles).
void rope(float* x, std::size_t heads, std::size_t head_dim, const float* cos, const float* sin);

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

namespace detail {

#if DOCVLM_X86_64

DOCVLM_TARGET("avx512f,avx512bw,avx512vl") inline void softmax_avx512(float* x, std::size_t n) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (std::size_t i = 0; i < n; i += 16) vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), docvlm::detail::tail_mask16(n - i), x + i));
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    __m512 sum = _mm512_setzero_ps();
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 m = docvlm::detail::tail_mask16(n - i);
        const __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mx)));
        _mm512_mask_storeu_ps(x + i, m, e);
        sum = _mm512_add_ps(sum, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 m = docvlm::detail::tail_mask16(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
}

DOCVLM_TARGET("avx512f,avx512bw,avx512vl") inline void rms_norm_avx512(const float* x, const float* w, float* y, std::size_t n, float eps) {
    __m512 ss = _mm512_setzero_ps();
    for (std::size_t i = 0; i < n; i += 16) {
        const __m512 v = _mm512_maskz_loadu_ps(docvlm::detail::tail_mask16(n - i), x + i);
        ss = _mm512_fmadd_ps(v, v, ss);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / std::sqrt(_mm512_reduce_add_ps(ss) / float(n) + eps));
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 m = docvlm::detail::tail_mask16(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv), _mm512_maskz_loadu_ps(m, w + i)));
    }
}

DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
inline void layer_norm_avx512(const float* x, const float* g, const float* b, float* y, std::size_t n, float eps) {
    __m512 s = _mm512_setzero_ps();
    for (std::size_t i = 0; i < n; i += 16) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(docvlm::detail::tail_mask16(n - i), x + i));
    const float mean = _mm512_reduce_add_ps(s) / float(n);
    const __m512 vm = _mm512_set1_ps(mean);
    __m512 v2 = _mm512_setzero_ps();
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 m = docvlm::detail::tail_mask16(n - i);
        const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vm);
        v2 = _mm512_fmadd_ps(d, d, v2);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / std::sqrt(_mm512_reduce_add_ps(v2) / float(n) + eps));
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 m = docvlm::detail::tail_mask16(n - i);
        const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), inv);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(m, g + i), _mm512_maskz_loadu_ps(m, b + i)));
    }
}

DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
inline void rope_avx512(float* x, std::size_t heads, std::size_t head_dim, const float* cos, const float* sin) {
    const std::size_t half = head_dim / 2;
    for (std::size_t h = 0; h < heads; ++h) {
        float* v = x + h * head_dim;
        for (std::size_t i = 0; i < half; i += 16) {
            const __mmask16 m = docvlm::detail::tail_mask16(half - i);
            const __m512 a = _mm512_maskz_loadu_ps(m, v + i), b = _mm512_maskz_loadu_ps(m, v + half + i);
            const __m512 c1 = _mm512_maskz_loadu_ps(m, cos + i), s1 = _mm512_maskz_loadu_ps(m, sin + i);
            const __m512 c2 = _mm512_maskz_loadu_ps(m, cos + half + i), s2 = _mm512_maskz_loadu_ps(m, sin + half + i);
            _mm512_mask_storeu_ps(v + i, m, _mm512_fmsub_ps(a, c1, _mm512_mul_ps(b, s1)));
            _mm512_mask_storeu_ps(v + half + i, m, _mm512_fmadd_ps(b, c2, _mm512_mul_ps(a, s2)));
        }
    }
}
#endif

inline void softmax_generic(float* x, std::size_t n) {
    if (n == 0) return;
    const float mx = *std::max_element(x, x + n);
    float sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - mx));
    const float inv = 1.0f / sum;
    for (std::size_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace detail

inline void softmax(float* x, std::size_t n) {
#if DOCVLM_X86_64
    if (cpu().avx512()) return detail::softmax_avx512(x, n);
#endif
    detail::softmax_generic(x, n);
}

inline void rms_norm(const float* x, const float* weight, float* y, std::size_t n, float eps) {
#if DOCVLM_X86_64
    if (cpu().avx512()) return detail::rms_norm_avx512(x, weight, y, n, eps);
#endif
    float ss = 0;
    for (std::size_t i = 0; i < n; ++i) ss += x[i] * x[i];
    const float inv = 1.0f / std::sqrt(ss / float(n) + eps);
    for (std::size_t i = 0; i < n; ++i) y[i] = x[i] * inv * weight[i];
}

inline void layer_norm(const float* x, const float* gamma, const float* beta, float* y, std::size_t n, float eps) {
#if DOCVLM_X86_64
    if (cpu().avx512()) return detail::layer_norm_avx512(x, gamma, beta, y, n, eps);
#endif
    float mean = 0, var = 0;
    for (std::size_t i = 0; i < n; ++i) mean += x[i];
    mean /= float(n);
    for (std::size_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
    const float inv = 1.0f / std::sqrt(var / float(n) + eps);
    for (std::size_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * inv * gamma[i] + beta[i];
}

inline void rope(float* x, std::size_t heads, std::size_t head_dim, const float* cos, const float* sin) {
#if DOCVLM_X86_64
    if (cpu().avx512()) return detail::rope_avx512(x, heads, head_dim, cos, sin);
#endif
    const std::size_t half = head_dim / 2;
    for (std::size_t h = 0; h < heads; ++h) {
        float* v = x + h * head_dim;
        for (std::size_t i = 0; i < half; ++i) {
            const float a = v[i], b = v[i + half];
            v[i] = a * cos[i] - b * sin[i];
            v[i + half] = b * cos[i + half] + a * sin[i + half];
        }
    }
}

}  // namespace kernels
DOCVLM_SIMD_WARNINGS_ON
DOCVLM_NAMESPACE_END
