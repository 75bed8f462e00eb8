// docvlm/kernels/activations.hpp — GELU (erf, tanh), QuickGELU, SiLU.
//
// The scalar definitions are in kernels/activation_kind.hpp, the row form `activate` for every
// ISA in kernels/rowwise.hpp; this header adds the AVX-512 register forms that the AVX-512 GEMM
// epilogues apply to a tile in registers. All use the polynomials of kernels/simd/rowwise-inl.hpp,
// whose error against the scalar definitions is bounded by 2e-6 · max(1, |x|) absolute (tested
// over [-20, 20] and at the extremes, for every copy).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/kernels/activation_kind.hpp>
#include <docvlm/kernels/rowwise.hpp>

#if DOCVLM_X86_64
#include <immintrin.h>
#endif

DOCVLM_NAMESPACE_BEGIN
DOCVLM_SIMD_WARNINGS_OFF

namespace kernels {
namespace detail {

#if DOCVLM_X86_64
// The AVX-512 register forms: the one-source polynomials of kernels/simd/rowwise-inl.hpp.
DOCVLM_TARGET("avx512f,avx512bw,avx512vl") DOCVLM_ALWAYS_INLINE __m512 exp512(__m512 x) { return simd::avx512::exp(x); }
DOCVLM_TARGET("avx512f,avx512bw,avx512vl") DOCVLM_ALWAYS_INLINE __m512 activate512(Activation act, __m512 x) {
    return simd::avx512::activate(act, x);
}
#endif

}  // namespace detail

}  // namespace kernels
DOCVLM_SIMD_WARNINGS_ON
DOCVLM_NAMESPACE_END
