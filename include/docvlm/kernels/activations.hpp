// docvlm/kernels/activations.hpp — GELU (erf, tanh), QuickGELU, SiLU: scalar reference + SIMD.
//
// The scalar functions are the definitions (std::erf / std::tanh / std::exp in float). The
// AVX-512 path uses polynomial exp/erf approximations; their error against the scalar reference
// is bounded by 2e-6 * max(1, |x|) absolute (tested over [-20, 20] and at the extremes).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/cpu.hpp>
#include <docvlm/core/error.hpp>

#include <cmath>
#include <cstddef>

#if DOCVLM_X86_64
#include <immintrin.h>
#endif

DOCVLM_NAMESPACE_BEGIN
DOCVLM_SIMD_WARNINGS_OFF

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

/// x[i] = act(x[i]) for n elements (SIMD where available).
void activate(Activation act, float* x, std::size_t n);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {

inline void activate_generic(Activation act, float* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) x[i] = activate_scalar(act, x[i]);
}

// x[i] *= m[i] (the Epilogue's multiplier on the portable paths).
inline void multiply_by(float* x, const float* m, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) x[i] *= m[i];
}

#if DOCVLM_X86_64
// exp(x) for x in float range: x = k ln2 + r, |r| <= ln2/2, exp(r) by a degree-6 polynomial
// (relative error < 2e-7), scaled by 2^k with vscalefps (which underflows to subnormals / 0 and
// overflows to inf like exp itself).
DOCVLM_TARGET("avx512f,avx512bw,avx512vl") inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.37626f)), _mm512_set1_ps(-104.0f));  // below: 0 via scalef
    const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.3981999507e-3f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, k);
}

// erf(x): Abramowitz & Stegun 7.1.26: erf(|x|) = 1 - t*poly(t)*exp(-x^2),
// t = 1/(1 + p|x|); absolute error < 1.5e-7 (plus exp512's error), sign restored.
DOCVLM_TARGET("avx512f,avx512bw,avx512vl") inline __m512 erf512(__m512 x) {
    const __m512 ax = _mm512_abs_ps(x);
    const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), ax, _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(ax, ax)));
    const __m512 y = _mm512_fnmadd_ps(_mm512_mul_ps(p, t), e, _mm512_set1_ps(1.0f));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(y),
                                               _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(int(0x80000000u)))));
}

DOCVLM_TARGET("avx512f,avx512bw,avx512vl") inline __m512 activate512(Activation act, __m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    switch (act) {
        case Activation::none: return x;
        case Activation::gelu_erf:
            return _mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_add_ps(one, erf512(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f)))));
        case Activation::gelu_tanh: {
            // tanh(u) = 1 - 2 / (1 + exp(2u))
            const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
            const __m512 u = _mm512_mul_ps(_mm512_set1_ps(0.79788456080286536f), _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), x3, x));
            const __m512 th = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(one, exp512(_mm512_add_ps(u, u)))));
            return _mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_add_ps(one, th));
        }
        case Activation::quick_gelu:
            return _mm512_div_ps(x, _mm512_add_ps(one, exp512(_mm512_mul_ps(x, _mm512_set1_ps(-1.702f)))));
        case Activation::silu:
            return _mm512_div_ps(x, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
    }
    return x;
}

DOCVLM_TARGET("avx512f,avx512bw,avx512vl") inline void activate_avx512(Activation act, float* x, std::size_t n) {
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 m = __mmask16(docvlm::detail::tail_mask16(n - i));
        _mm512_mask_storeu_ps(x + i, m, activate512(act, _mm512_maskz_loadu_ps(m, x + i)));
    }
}
#endif

}  // namespace detail

inline void activate(Activation act, float* x, std::size_t n) {
    if (act == Activation::none) return;
#if DOCVLM_X86_64
    if (cpu().avx512()) return detail::activate_avx512(act, x, n);
#endif
    detail::activate_generic(act, x, n);
}

}  // namespace kernels
DOCVLM_SIMD_WARNINGS_ON
DOCVLM_NAMESPACE_END
