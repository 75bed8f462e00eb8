// docvlm/core/dtype.hpp — element types: f32, bf16, f16 (round-to-nearest-even), integers.
//
// bf16 and f16 are 16-bit storage types; arithmetic happens in float. Conversions round to
// nearest, ties to even, keep subnormals (no flush to zero), map overflow to ±inf and every NaN
// to a quiet NaN of the same sign. The SIMD paths give bit-identical results to the scalar ones.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/cpu.hpp>
#include <docvlm/core/error.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

#if DOCVLM_X86_64
#include <immintrin.h>
#endif

DOCVLM_NAMESPACE_BEGIN
DOCVLM_SIMD_WARNINGS_OFF

/// Element types docvlm reads and writes (the safetensors set).
enum class DType : std::uint8_t { f64, f32, f16, bf16, i64, i32, i16, i8, u64, u32, u16, u8, boolean };

/// Bytes per element.
constexpr std::size_t dtype_size(DType t);
/// The safetensors spelling: "F32", "BF16", "I8", "BOOL", ...
constexpr std::string_view dtype_name(DType t);
/// Parses a safetensors dtype string; std::nullopt if unknown.
constexpr std::optional<DType> dtype_from_name(std::string_view name);
/// True for f64, f32, f16, bf16.
constexpr bool is_floating(DType t) { return t == DType::f64 || t == DType::f32 || t == DType::f16 || t == DType::bf16; }

/// bfloat16 storage: the upper 16 bits of an IEEE float.
struct bf16 {
    std::uint16_t bits = 0;
    friend constexpr bool operator==(bf16, bf16) = default;
};
/// IEEE half-precision storage.
struct f16 {
    std::uint16_t bits = 0;
    friend constexpr bool operator==(f16, f16) = default;
};

/// The DType of a C++ element type: dtype_of<float> == DType::f32.
template <class T> inline constexpr DType dtype_of = DType::boolean;  // specialised below
template <> inline constexpr DType dtype_of<double> = DType::f64;
template <> inline constexpr DType dtype_of<float> = DType::f32;
template <> inline constexpr DType dtype_of<f16> = DType::f16;
template <> inline constexpr DType dtype_of<bf16> = DType::bf16;
template <> inline constexpr DType dtype_of<std::int64_t> = DType::i64;
template <> inline constexpr DType dtype_of<std::int32_t> = DType::i32;
template <> inline constexpr DType dtype_of<std::int16_t> = DType::i16;
template <> inline constexpr DType dtype_of<std::int8_t> = DType::i8;
template <> inline constexpr DType dtype_of<std::uint64_t> = DType::u64;
template <> inline constexpr DType dtype_of<std::uint32_t> = DType::u32;
template <> inline constexpr DType dtype_of<std::uint16_t> = DType::u16;
template <> inline constexpr DType dtype_of<std::uint8_t> = DType::u8;
template <> inline constexpr DType dtype_of<bool> = DType::boolean;

// Scalar conversions (bit-exact definitions of what every path computes).
constexpr float bf16_to_f32(bf16 h);
constexpr bf16 f32_to_bf16(float x);
constexpr float f16_to_f32(f16 h);
constexpr f16 f32_to_f16(float x);

// Array conversions: n elements, src and dst must not overlap. SIMD where the CPU has it.
void convert(const bf16* src, float* dst, std::size_t n);
void convert(const float* src, bf16* dst, std::size_t n);
void convert(const f16* src, float* dst, std::size_t n);
void convert(const float* src, f16* dst, std::size_t n);

/// Converts n elements of any DType (read from possibly unaligned memory) to float.
void convert_to_f32(DType type, const void* src, float* dst, std::size_t n);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

constexpr std::size_t dtype_size(DType t) {
    switch (t) {
        case DType::f64: case DType::i64: case DType::u64: return 8;
        case DType::f32: case DType::i32: case DType::u32: return 4;
        case DType::f16: case DType::bf16: case DType::i16: case DType::u16: return 2;
        case DType::i8: case DType::u8: case DType::boolean: return 1;
    }
    return 0;
}

constexpr std::string_view dtype_name(DType t) {
    switch (t) {
        case DType::f64: return "F64";
        case DType::f32: return "F32";
        case DType::f16: return "F16";
        case DType::bf16: return "BF16";
        case DType::i64: return "I64";
        case DType::i32: return "I32";
        case DType::i16: return "I16";
        case DType::i8: return "I8";
        case DType::u64: return "U64";
        case DType::u32: return "U32";
        case DType::u16: return "U16";
        case DType::u8: return "U8";
        case DType::boolean: return "BOOL";
    }
    return "?";
}

constexpr std::optional<DType> dtype_from_name(std::string_view name) {
    for (DType t : {DType::f64, DType::f32, DType::f16, DType::bf16, DType::i64, DType::i32, DType::i16,
                    DType::i8, DType::u64, DType::u32, DType::u16, DType::u8, DType::boolean})
        if (dtype_name(t) == name) return t;
    return std::nullopt;
}

constexpr float bf16_to_f32(bf16 h) { return std::bit_cast<float>(std::uint32_t(h.bits) << 16); }

constexpr bf16 f32_to_bf16(float x) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{std::uint16_t((u >> 16) | 0x0040u)};  // quiet NaN
    const std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);                            // ties to even
    return bf16{std::uint16_t((u + rounding) >> 16)};
}

constexpr float f16_to_f32(f16 h) {
    const std::uint32_t sign = std::uint32_t(h.bits & 0x8000u) << 16;
    const std::uint32_t exp = (h.bits >> 10) & 0x1fu;
    std::uint32_t mant = h.bits & 0x3ffu;
    if (exp == 0x1f)  // inf or NaN (NaN made quiet, as the F16C instructions do)
        return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13) | (mant ? 0x00400000u : 0u));
    if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
    if (mant == 0) return std::bit_cast<float>(sign);
    // Subnormal half: normalise the mantissa into a float exponent.
    std::uint32_t e = 113;
    while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --e;
    }
    return std::bit_cast<float>(sign | (e << 23) | ((mant & 0x3ffu) << 13));
}

constexpr f16 f32_to_f16(float x) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
    const std::uint16_t sign = std::uint16_t((u >> 16) & 0x8000u);
    const std::uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u)  // inf, or NaN made quiet keeping the top payload bits
        return f16{std::uint16_t(sign | (a > 0x7f800000u ? 0x7e00u | ((a >> 13) & 0x3ffu) : 0x7c00u))};
    if (a >= 0x477ff000u) return f16{std::uint16_t(sign | 0x7c00u)};  // >= 65520 rounds to inf
    if (a >= 0x38800000u) {                                            // normal half
        std::uint32_t y = a - 0x38000000u;                             // rebias exponent 127 -> 15
        y += 0xfffu + ((y >> 13) & 1u);
        return f16{std::uint16_t(sign | (y >> 13))};
    }
    if (a < 0x33000000u) return f16{sign};  // below half the smallest subnormal (ties to 0, even)
    // Subnormal half: value = m * 2^(e-150); in units of 2^-24 that is m >> (126 - e).
    const std::uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - e;  // 14..24
    std::uint32_t q = m >> shift;
    const std::uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return f16{std::uint16_t(sign | q)};
}

namespace detail {

inline void convert_generic(const bf16* s, float* d, std::size_t n) { for (std::size_t i = 0; i < n; ++i) d[i] = bf16_to_f32(s[i]); }
inline void convert_generic(const float* s, bf16* d, std::size_t n) { for (std::size_t i = 0; i < n; ++i) d[i] = f32_to_bf16(s[i]); }
inline void convert_generic(const f16* s, float* d, std::size_t n) { for (std::size_t i = 0; i < n; ++i) d[i] = f16_to_f32(s[i]); }
inline void convert_generic(const float* s, f16* d, std::size_t n) { for (std::size_t i = 0; i < n; ++i) d[i] = f32_to_f16(s[i]); }

#if DOCVLM_X86_64
// AVX2 + F16C paths, 8 elements per step; the tail goes through the scalar definitions.
DOCVLM_TARGET("avx2,f16c") inline void convert_avx2(const bf16* s, float* d, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
        _mm256_storeu_ps(d + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    }
    convert_generic(s + i, d + i, n - i);
}
DOCVLM_TARGET("avx2,f16c") inline void convert_avx2(const float* s, bf16* d, std::size_t n) {
    std::size_t i = 0;
    const __m256i bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1), quiet = _mm256_set1_epi32(0x40);
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(s + i);
        __m256i u = _mm256_castps_si256(x);
        __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(u, 16), one)));
        r = _mm256_srli_epi32(r, 16);
        __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), quiet);
        r = _mm256_blendv_epi8(r, nan, _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)));
        // pack 32 -> 16 bits (values fit in 16 bits, so unsigned saturation is exact)
        __m128i lo = _mm256_castsi256_si128(r), hi = _mm256_extracti128_si256(r, 1);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), _mm_packus_epi32(lo, hi));
    }
    convert_generic(s + i, d + i, n - i);
}
DOCVLM_TARGET("avx2,f16c") inline void convert_avx2(const f16* s, float* d, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
    convert_generic(s + i, d + i, n - i);
}
DOCVLM_TARGET("avx2,f16c") inline void convert_avx2(const float* s, f16* d, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    convert_generic(s + i, d + i, n - i);
}

// AVX-512 paths, 16 elements per step, masked tail.
DOCVLM_TARGET("avx512f,avx512bw,avx512vl") inline void convert_avx512(const bf16* s, float* d, std::size_t n) {
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 m = __mmask16(docvlm::detail::tail_mask16(n - i));
        __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, s + i));
        _mm512_mask_storeu_ps(d + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
    }
}
DOCVLM_TARGET("avx512f,avx512bw,avx512vl") inline void convert_avx512(const float* s, bf16* d, std::size_t n) {
    const __m512i bias = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x40);
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 m = __mmask16(docvlm::detail::tail_mask16(n - i));
        __m512 x = _mm512_maskz_loadu_ps(m, s + i);
        __m512i u = _mm512_castps_si512(x);
        __m512i hi = _mm512_srli_epi32(u, 16);
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(hi, one))), 16);
        r = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), r, _mm512_or_si512(hi, quiet));
        _mm256_mask_storeu_epi16(d + i, m, _mm512_cvtepi32_epi16(r));
    }
}
DOCVLM_TARGET("avx512f,avx512bw,avx512vl") inline void convert_avx512(const f16* s, float* d, std::size_t n) {
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 m = __mmask16(docvlm::detail::tail_mask16(n - i));
        _mm512_mask_storeu_ps(d + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, s + i)));
    }
}
DOCVLM_TARGET("avx512f,avx512bw,avx512vl") inline void convert_avx512(const float* s, f16* d, std::size_t n) {
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 m = __mmask16(docvlm::detail::tail_mask16(n - i));
        __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(d + i, m, h);
    }
}
#endif

template <class Src, class Dst>
void convert_dispatch(const Src* s, Dst* d, std::size_t n) {
#if DOCVLM_X86_64
    const CpuFeatures& f = cpu();
    if (f.avx512()) return convert_avx512(s, d, n);
    if (f.avx2 && f.f16c) return convert_avx2(s, d, n);
#endif
    convert_generic(s, d, n);
}

template <class T>
void load_as_f32(const void* src, float* dst, std::size_t n) {
    const auto* bytes = static_cast<const unsigned char*>(src);
    for (std::size_t i = 0; i < n; ++i) {
        T v;
        std::memcpy(&v, bytes + i * sizeof(T), sizeof(T));
        dst[i] = static_cast<float>(v);
    }
}

}  // namespace detail

inline void convert(const bf16* s, float* d, std::size_t n) { detail::convert_dispatch(s, d, n); }
inline void convert(const float* s, bf16* d, std::size_t n) { detail::convert_dispatch(s, d, n); }
inline void convert(const f16* s, float* d, std::size_t n) { detail::convert_dispatch(s, d, n); }
inline void convert(const float* s, f16* d, std::size_t n) { detail::convert_dispatch(s, d, n); }

inline void convert_to_f32(DType type, const void* src, float* dst, std::size_t n) {
    if (n == 0) return;  // an empty tensor may come with null pointers; memcpy forbids them
    switch (type) {
        case DType::f32: std::memcpy(dst, src, n * sizeof(float)); return;
        case DType::f64: return detail::load_as_f32<double>(src, dst, n);
        case DType::bf16:
        case DType::f16: {
            // Convert through an aligned stack chunk: src may be unaligned (safetensors offsets).
            constexpr std::size_t chunk = 1024;
            std::uint16_t tmp[chunk];
            for (std::size_t i = 0; i < n; i += chunk) {
                const std::size_t m = n - i < chunk ? n - i : chunk;
                std::memcpy(tmp, static_cast<const unsigned char*>(src) + 2 * i, 2 * m);
                if (type == DType::bf16) convert(reinterpret_cast<const bf16*>(tmp), dst + i, m);
                else convert(reinterpret_cast<const f16*>(tmp), dst + i, m);
            }
            return;
        }
        case DType::i64: return detail::load_as_f32<std::int64_t>(src, dst, n);
        case DType::i32: return detail::load_as_f32<std::int32_t>(src, dst, n);
        case DType::i16: return detail::load_as_f32<std::int16_t>(src, dst, n);
        case DType::i8: return detail::load_as_f32<std::int8_t>(src, dst, n);
        case DType::u64: return detail::load_as_f32<std::uint64_t>(src, dst, n);
        case DType::u32: return detail::load_as_f32<std::uint32_t>(src, dst, n);
        case DType::u16: return detail::load_as_f32<std::uint16_t>(src, dst, n);
        case DType::u8: return detail::load_as_f32<std::uint8_t>(src, dst, n);
        case DType::boolean: {
            const auto* b = static_cast<const unsigned char*>(src);
            for (std::size_t i = 0; i < n; ++i) dst[i] = b[i] ? 1.0f : 0.0f;
            return;
        }
    }
    detail::fail("convert_to_f32: invalid dtype");
}

DOCVLM_SIMD_WARNINGS_ON
DOCVLM_NAMESPACE_END
