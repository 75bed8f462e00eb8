// docvlm/core/config.hpp — version, ABI namespace and compiler helpers.
//
// Every docvlm declaration lives in `docvlm::DOCVLM_ABI_NAMESPACE`, an inline namespace whose name
// encodes the version and every macro that changes data layout. Two translation units built with
// different settings then fail to link instead of silently sharing incompatible types.
#pragma once

#define DOCVLM_VERSION_MAJOR 0
#define DOCVLM_VERSION_MINOR 1
#define DOCVLM_VERSION_PATCH 0

#if defined(XTENSOR_USE_XSIMD)
#define DOCVLM_ABI_XSIMD _xsimd
#else
#define DOCVLM_ABI_XSIMD
#endif

#define DOCVLM_ABI_CONCAT_(a, b, c, d) v##a##_##b##_##c##d
#define DOCVLM_ABI_CONCAT(a, b, c, d) DOCVLM_ABI_CONCAT_(a, b, c, d)
#define DOCVLM_ABI_NAMESPACE \
    DOCVLM_ABI_CONCAT(DOCVLM_VERSION_MAJOR, DOCVLM_VERSION_MINOR, DOCVLM_VERSION_PATCH, DOCVLM_ABI_XSIMD)

#define DOCVLM_NAMESPACE_BEGIN namespace docvlm { inline namespace DOCVLM_ABI_NAMESPACE {
#define DOCVLM_NAMESPACE_END } }

#if defined(__GNUC__)
#define DOCVLM_ALWAYS_INLINE inline __attribute__((always_inline))
#define DOCVLM_TARGET(isa) __attribute__((target(isa)))
#else
#define DOCVLM_ALWAYS_INLINE inline
#define DOCVLM_TARGET(isa)
#endif

#if defined(__x86_64__) || defined(_M_X64)
#define DOCVLM_X86_64 1
#else
#define DOCVLM_X86_64 0
#endif

// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsics (they start from
// _mm512_undefined_*; GCC bug 105593). Kernel headers silence exactly that warning around their code.
#if defined(__GNUC__) && !defined(__clang__)
#define DOCVLM_SIMD_WARNINGS_OFF                                     \
    _Pragma("GCC diagnostic push")                                   \
    _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")      \
    _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#define DOCVLM_SIMD_WARNINGS_ON _Pragma("GCC diagnostic pop")
#else
#define DOCVLM_SIMD_WARNINGS_OFF
#define DOCVLM_SIMD_WARNINGS_ON
#endif
