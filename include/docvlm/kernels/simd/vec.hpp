// docvlm/kernels/simd/vec.hpp — one float vector type per instruction set, with the same operations.
//
// The row kernels (kernels/simd/rowwise-inl.hpp) are written once against this interface and
// compiled once per ISA, each copy inside functions that carry that ISA's target attribute, so one
// binary runs on every CPU and picks a copy at run time (kernels/rowwise.hpp). Every operation of a
// type carries its ISA's target attribute too: GCC inlines a function into another only when the
// callee needs no ISA the caller lacks, and always_inline makes that hold at -O0 as well.
//
//   VecAvx512   16 lanes  AVX-512 F/BW/VL (masked tails)
//   VecAvx2      8 lanes  AVX2 + FMA (vmaskmov tails)
//   VecNeon      4 lanes  AArch64 Advanced SIMD (baseline on every ARM64 CPU)
//   VecGeneric   4 lanes  portable C++ (any CPU; the compiler may vectorise it)
//
// Interface (R = the register type, n < lanes for the *_part forms):
//   zero, set1(f), load(p), store(p, v), load_part(p, n, fill), store_part(p, v, n)
//   add sub mul div min max abs, fma(a, b, c) = a·b + c, fnma(a, b, c) = c − a·b
//   round(v) to nearest even, ldexp(p, k) = p·2^k for integral k in [−150, 128] (underflows to 0)
//   pow2(k) = 2^k for integral k in [−127, 127], with 0 for k = −127 (a cheaper ldexp(1, k))
//   copysign(mag, sign), reduce_add, reduce_max, sums(acc[lanes]) = lane i holds Σ acc[i]'s lanes
//   store_i8_part(q, v, n): the first n lanes, integral and within ±127, as int8
//   store_u8_part(q, v, n): the first n lanes, integral and within [0, 255], as uint8
//   load_i32(p), load_i32_part(p, n): int32 values converted to float (rounded to nearest even),
//   the part form's missing lanes 0
//   load_i32_minus(p, s, k), load_i32_minus_part(p, s, k, n): float(p[i] − k·s[i]), the
//   difference exact in int32 (the u8 paths' offset, taken off before the conversion)
// NaN: min / max return their second operand on x86 and in VecGeneric, NaN on NEON, so a NaN in
// a row gives a finite or a NaN result depending on the ISA (never undefined behaviour).
// xsimd 8.1 (Debian 12) is not used here: it selects its ISAs from the compiler's -m flags when
// first included, so a header-only library cannot hold an AVX2 and an AVX-512 copy of its code
// in one translation unit built without -march (docs/simd.md).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/cpu.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if DOCVLM_X86_64
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#define DOCVLM_AARCH64 1
#else
#define DOCVLM_AARCH64 0
#endif

DOCVLM_NAMESPACE_BEGIN
DOCVLM_SIMD_WARNINGS_OFF
namespace kernels::simd {

// ------------------------------------------------------------------------------------------------
// Portable: four floats in a struct.
// ------------------------------------------------------------------------------------------------
struct VecGeneric {
    struct R {
        float v[4];
    };
    static constexpr std::size_t lanes = 4;
    template <class F>
    DOCVLM_ALWAYS_INLINE static R map(R a, R b, F f) {
        R r;
        for (int i = 0; i < 4; ++i) r.v[i] = f(a.v[i], b.v[i]);
        return r;
    }
    DOCVLM_ALWAYS_INLINE static R zero() { return set1(0.0f); }
    DOCVLM_ALWAYS_INLINE static R set1(float x) { return R{{x, x, x, x}}; }
    DOCVLM_ALWAYS_INLINE static R load(const float* p) {
        R r;
        std::memcpy(r.v, p, sizeof r.v);
        return r;
    }
    DOCVLM_ALWAYS_INLINE static void store(float* p, R v) { std::memcpy(p, v.v, sizeof v.v); }
    DOCVLM_ALWAYS_INLINE static R load_part(const float* p, std::size_t n, float fill) {
        R r = set1(fill);
        std::memcpy(r.v, p, n * sizeof(float));
        return r;
    }
    DOCVLM_ALWAYS_INLINE static void store_part(float* p, R v, std::size_t n) { std::memcpy(p, v.v, n * sizeof(float)); }
    DOCVLM_ALWAYS_INLINE static R add(R a, R b) { return map(a, b, [](float x, float y) { return x + y; }); }
    DOCVLM_ALWAYS_INLINE static R sub(R a, R b) { return map(a, b, [](float x, float y) { return x - y; }); }
    DOCVLM_ALWAYS_INLINE static R mul(R a, R b) { return map(a, b, [](float x, float y) { return x * y; }); }
    DOCVLM_ALWAYS_INLINE static R div(R a, R b) { return map(a, b, [](float x, float y) { return x / y; }); }
    // as x86 minps / maxps: the second operand where either is NaN
    DOCVLM_ALWAYS_INLINE static R min(R a, R b) { return map(a, b, [](float x, float y) { return x < y ? x : y; }); }
    DOCVLM_ALWAYS_INLINE static R max(R a, R b) { return map(a, b, [](float x, float y) { return x > y ? x : y; }); }
    DOCVLM_ALWAYS_INLINE static R abs(R a) { return map(a, a, [](float x, float) { return std::fabs(x); }); }
    DOCVLM_ALWAYS_INLINE static R fma(R a, R b, R c) {
        R r;
        for (int i = 0; i < 4; ++i) r.v[i] = std::fma(a.v[i], b.v[i], c.v[i]);
        return r;
    }
    DOCVLM_ALWAYS_INLINE static R fnma(R a, R b, R c) {
        R r;
        for (int i = 0; i < 4; ++i) r.v[i] = std::fma(-a.v[i], b.v[i], c.v[i]);
        return r;
    }
    DOCVLM_ALWAYS_INLINE static R round(R a) { return map(a, a, [](float x, float) { return std::nearbyint(x); }); }
    DOCVLM_ALWAYS_INLINE static R ldexp(R p, R k) { return map(p, k, [](float x, float e) { return std::ldexp(x, int(e)); }); }
    DOCVLM_ALWAYS_INLINE static R pow2(R k) {
        return map(k, k, [](float e, float) { return e <= -127.0f ? 0.0f : std::ldexp(1.0f, int(e)); });
    }
    DOCVLM_ALWAYS_INLINE static R copysign(R m, R s) { return map(m, s, [](float x, float y) { return std::copysign(x, y); }); }
    DOCVLM_ALWAYS_INLINE static float reduce_add(R a) { return (a.v[0] + a.v[2]) + (a.v[1] + a.v[3]); }
    DOCVLM_ALWAYS_INLINE static float reduce_max(R a) { return std::max(std::max(a.v[0], a.v[2]), std::max(a.v[1], a.v[3])); }
    DOCVLM_ALWAYS_INLINE static R sums(const R (&acc)[4]) {
        R r;
        for (int i = 0; i < 4; ++i) r.v[i] = reduce_add(acc[i]);
        return r;
    }
    DOCVLM_ALWAYS_INLINE static void store_i8_part(std::int8_t* q, R v, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) q[i] = std::int8_t(v.v[i]);
    }
    DOCVLM_ALWAYS_INLINE static void store_u8_part(std::uint8_t* q, R v, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) q[i] = std::uint8_t(v.v[i]);
    }
    DOCVLM_ALWAYS_INLINE static R load_i32_part(const std::int32_t* p, std::size_t n) {
        R r = zero();
        for (std::size_t i = 0; i < n; ++i) r.v[i] = float(p[i]);
        return r;
    }
    DOCVLM_ALWAYS_INLINE static R load_i32(const std::int32_t* p) { return load_i32_part(p, 4); }
    DOCVLM_ALWAYS_INLINE static R load_i32_minus_part(const std::int32_t* p, const std::int32_t* s, std::int32_t k, std::size_t n) {
        R r = zero();
        for (std::size_t i = 0; i < n; ++i) r.v[i] = float(p[i] - k * s[i]);
        return r;
    }
    DOCVLM_ALWAYS_INLINE static R load_i32_minus(const std::int32_t* p, const std::int32_t* s, std::int32_t k) {
        return load_i32_minus_part(p, s, k, 4);
    }
};

#if DOCVLM_X86_64
// ------------------------------------------------------------------------------------------------
// AVX2 + FMA.
// ------------------------------------------------------------------------------------------------
#define DOCVLM_VEC_AVX2 DOCVLM_TARGET("avx2,fma") DOCVLM_ALWAYS_INLINE static
struct VecAvx2 {
    using R = __m256;
    static constexpr std::size_t lanes = 8;
    DOCVLM_VEC_AVX2 __m256i first(std::size_t n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    DOCVLM_VEC_AVX2 R zero() { return _mm256_setzero_ps(); }
    DOCVLM_VEC_AVX2 R set1(float x) { return _mm256_set1_ps(x); }
    DOCVLM_VEC_AVX2 R load(const float* p) { return _mm256_loadu_ps(p); }
    DOCVLM_VEC_AVX2 void store(float* p, R v) { _mm256_storeu_ps(p, v); }
    DOCVLM_VEC_AVX2 R load_part(const float* p, std::size_t n, float fill) {
        const __m256i m = first(n);
        return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
    }
    DOCVLM_VEC_AVX2 void store_part(float* p, R v, std::size_t n) { _mm256_maskstore_ps(p, first(n), v); }
    DOCVLM_VEC_AVX2 R add(R a, R b) { return _mm256_add_ps(a, b); }
    DOCVLM_VEC_AVX2 R sub(R a, R b) { return _mm256_sub_ps(a, b); }
    DOCVLM_VEC_AVX2 R mul(R a, R b) { return _mm256_mul_ps(a, b); }
    DOCVLM_VEC_AVX2 R div(R a, R b) { return _mm256_div_ps(a, b); }
    DOCVLM_VEC_AVX2 R min(R a, R b) { return _mm256_min_ps(a, b); }
    DOCVLM_VEC_AVX2 R max(R a, R b) { return _mm256_max_ps(a, b); }
    DOCVLM_VEC_AVX2 R abs(R a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
    DOCVLM_VEC_AVX2 R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
    DOCVLM_VEC_AVX2 R fnma(R a, R b, R c) { return _mm256_fnmadd_ps(a, b, c); }
    DOCVLM_VEC_AVX2 R round(R a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    // p · 2^k as p · 2^(k/2) · 2^(k − k/2): each factor's exponent stays within the normal range.
    DOCVLM_VEC_AVX2 R ldexp(R p, R k) {
        const __m256i ki = _mm256_cvtps_epi32(k), k1 = _mm256_srai_epi32(ki, 1), k2 = _mm256_sub_epi32(ki, k1);
        const __m256i bias = _mm256_set1_epi32(127);
        const R f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
        const R f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
        return _mm256_mul_ps(_mm256_mul_ps(p, f1), f2);
    }
    // the exponent field k + 127 (0 for k = −127: the float 0)
    DOCVLM_VEC_AVX2 R pow2(R k) {
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23));
    }
    DOCVLM_VEC_AVX2 R copysign(R m, R s) {
        const R sign = _mm256_set1_ps(-0.0f);
        return _mm256_or_ps(_mm256_andnot_ps(sign, m), _mm256_and_ps(sign, s));
    }
    DOCVLM_VEC_AVX2 float reduce_add(R a) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
    }
    DOCVLM_VEC_AVX2 float reduce_max(R a) {
        __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
    }
    DOCVLM_VEC_AVX2 R sums(const R (&v)[8]) {  // a tree of horizontal adds: 7 hadds, 1 cross-lane add
        const R a = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
        const R b = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
        // a = [s0 s1 s2 s3 | s0' s1' s2' s3'] (low / high 128-bit halves of v[0..3]); b likewise
        return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
    }
    DOCVLM_VEC_AVX2 void store_i8_part(std::int8_t* q, R v, std::size_t n) {
        const __m256i i32 = _mm256_cvtps_epi32(v);
        const __m128i i16 = _mm_packs_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
        const __m128i i8 = _mm_packs_epi16(i16, i16);
        if (n == 8) return _mm_storel_epi64(reinterpret_cast<__m128i*>(q), i8);
        alignas(16) std::int8_t t[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(t), i8);
        std::memcpy(q, t, n);
    }
    DOCVLM_VEC_AVX2 void store_u8_part(std::uint8_t* q, R v, std::size_t n) {
        const __m256i i32 = _mm256_cvtps_epi32(v);
        const __m128i i16 = _mm_packus_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
        const __m128i u8 = _mm_packus_epi16(i16, i16);
        if (n == 8) return _mm_storel_epi64(reinterpret_cast<__m128i*>(q), u8);
        alignas(16) std::uint8_t t[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(t), u8);
        std::memcpy(q, t, n);
    }
    DOCVLM_VEC_AVX2 R load_i32(const std::int32_t* p) {
        return _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
    DOCVLM_VEC_AVX2 R load_i32_part(const std::int32_t* p, std::size_t n) {
        return _mm256_cvtepi32_ps(_mm256_maskload_epi32(reinterpret_cast<const int*>(p), first(n)));
    }
    DOCVLM_VEC_AVX2 R load_i32_minus(const std::int32_t* p, const std::int32_t* s, std::int32_t k) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
                      b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s));
        return _mm256_cvtepi32_ps(_mm256_sub_epi32(a, _mm256_mullo_epi32(b, _mm256_set1_epi32(k))));
    }
    DOCVLM_VEC_AVX2 R load_i32_minus_part(const std::int32_t* p, const std::int32_t* s, std::int32_t k, std::size_t n) {
        const __m256i a = _mm256_maskload_epi32(reinterpret_cast<const int*>(p), first(n)),
                      b = _mm256_maskload_epi32(reinterpret_cast<const int*>(s), first(n));
        return _mm256_cvtepi32_ps(_mm256_sub_epi32(a, _mm256_mullo_epi32(b, _mm256_set1_epi32(k))));
    }
};
#undef DOCVLM_VEC_AVX2

// ------------------------------------------------------------------------------------------------
// AVX-512 F/BW/VL.
// ------------------------------------------------------------------------------------------------
#define DOCVLM_VEC_AVX512 DOCVLM_TARGET("avx512f,avx512bw,avx512vl") DOCVLM_ALWAYS_INLINE static
struct VecAvx512 {
    using R = __m512;
    static constexpr std::size_t lanes = 16;
    DOCVLM_VEC_AVX512 __mmask16 first(std::size_t n) { return __mmask16(docvlm::detail::tail_mask16(n)); }
    DOCVLM_VEC_AVX512 R zero() { return _mm512_setzero_ps(); }
    DOCVLM_VEC_AVX512 R set1(float x) { return _mm512_set1_ps(x); }
    DOCVLM_VEC_AVX512 R load(const float* p) { return _mm512_loadu_ps(p); }
    DOCVLM_VEC_AVX512 void store(float* p, R v) { _mm512_storeu_ps(p, v); }
    DOCVLM_VEC_AVX512 R load_part(const float* p, std::size_t n, float fill) {
        return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), first(n), p);
    }
    DOCVLM_VEC_AVX512 void store_part(float* p, R v, std::size_t n) { _mm512_mask_storeu_ps(p, first(n), v); }
    DOCVLM_VEC_AVX512 R add(R a, R b) { return _mm512_add_ps(a, b); }
    DOCVLM_VEC_AVX512 R sub(R a, R b) { return _mm512_sub_ps(a, b); }
    DOCVLM_VEC_AVX512 R mul(R a, R b) { return _mm512_mul_ps(a, b); }
    DOCVLM_VEC_AVX512 R div(R a, R b) { return _mm512_div_ps(a, b); }
    DOCVLM_VEC_AVX512 R min(R a, R b) { return _mm512_min_ps(a, b); }
    DOCVLM_VEC_AVX512 R max(R a, R b) { return _mm512_max_ps(a, b); }
    DOCVLM_VEC_AVX512 R abs(R a) { return _mm512_abs_ps(a); }
    DOCVLM_VEC_AVX512 R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
    DOCVLM_VEC_AVX512 R fnma(R a, R b, R c) { return _mm512_fnmadd_ps(a, b, c); }
    DOCVLM_VEC_AVX512 R round(R a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    DOCVLM_VEC_AVX512 R ldexp(R p, R k) { return _mm512_scalef_ps(p, k); }
    DOCVLM_VEC_AVX512 R pow2(R k) {
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(k), _mm512_set1_epi32(127)), 23));
    }
    DOCVLM_VEC_AVX512 R copysign(R m, R s) {
        const __m512i sign = _mm512_set1_epi32(int(0x80000000u));
        return _mm512_castsi512_ps(_mm512_or_si512(_mm512_andnot_si512(sign, _mm512_castps_si512(m)),
                                                   _mm512_and_si512(sign, _mm512_castps_si512(s))));
    }
    DOCVLM_VEC_AVX512 float reduce_add(R a) { return _mm512_reduce_add_ps(a); }
    DOCVLM_VEC_AVX512 float reduce_max(R a) { return _mm512_reduce_max_ps(a); }
    DOCVLM_VEC_AVX512 R sums(const R (&v)[16]) {  // a transpose-and-add tree: 28 shuffles and 28 adds
        R a[8], b[4];
        for (int i = 0; i < 8; ++i)  // per 128-bit lane: [x0+x2, y0+y2, x1+x3, y1+y3] of v[2i], v[2i+1]
            a[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
        for (int i = 0; i < 4; ++i)  // per 128-bit lane L: the lane-L sums of v[4i .. 4i+3]
            b[i] = _mm512_add_ps(_mm512_shuffle_ps(a[2 * i], a[2 * i + 1], 0x44), _mm512_shuffle_ps(a[2 * i], a[2 * i + 1], 0xEE));
        const R s01 = _mm512_add_ps(_mm512_shuffle_f32x4(b[0], b[1], 0x44), _mm512_shuffle_f32x4(b[0], b[1], 0xEE));
        const R s23 = _mm512_add_ps(_mm512_shuffle_f32x4(b[2], b[3], 0x44), _mm512_shuffle_f32x4(b[2], b[3], 0xEE));
        return _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, 0x88), _mm512_shuffle_f32x4(s01, s23, 0xDD));
    }
    DOCVLM_VEC_AVX512 void store_i8_part(std::int8_t* q, R v, std::size_t n) {
        _mm_mask_storeu_epi8(q, first(n), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
    }
    DOCVLM_VEC_AVX512 void store_u8_part(std::uint8_t* q, R v, std::size_t n) {
        _mm_mask_storeu_epi8(q, first(n), _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(v)));
    }
    DOCVLM_VEC_AVX512 R load_i32(const std::int32_t* p) { return _mm512_cvtepi32_ps(_mm512_loadu_si512(p)); }
    DOCVLM_VEC_AVX512 R load_i32_part(const std::int32_t* p, std::size_t n) {
        return _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(first(n), p));
    }
    DOCVLM_VEC_AVX512 R load_i32_minus(const std::int32_t* p, const std::int32_t* s, std::int32_t k) {
        return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_loadu_si512(p), _mm512_mullo_epi32(_mm512_loadu_si512(s), _mm512_set1_epi32(k))));
    }
    DOCVLM_VEC_AVX512 R load_i32_minus_part(const std::int32_t* p, const std::int32_t* s, std::int32_t k, std::size_t n) {
        const __m512i a = _mm512_maskz_loadu_epi32(first(n), p), b = _mm512_maskz_loadu_epi32(first(n), s);
        return _mm512_cvtepi32_ps(_mm512_sub_epi32(a, _mm512_mullo_epi32(b, _mm512_set1_epi32(k))));
    }
};
#undef DOCVLM_VEC_AVX512
#endif  // DOCVLM_X86_64

#if DOCVLM_AARCH64
// ------------------------------------------------------------------------------------------------
// AArch64 Advanced SIMD (NEON): baseline, no target attribute needed.
// ------------------------------------------------------------------------------------------------
struct VecNeon {
    using R = float32x4_t;
    static constexpr std::size_t lanes = 4;
    DOCVLM_ALWAYS_INLINE static R zero() { return vdupq_n_f32(0.0f); }
    DOCVLM_ALWAYS_INLINE static R set1(float x) { return vdupq_n_f32(x); }
    DOCVLM_ALWAYS_INLINE static R load(const float* p) { return vld1q_f32(p); }
    DOCVLM_ALWAYS_INLINE static void store(float* p, R v) { vst1q_f32(p, v); }
    DOCVLM_ALWAYS_INLINE static R load_part(const float* p, std::size_t n, float fill) {
        float t[4] = {fill, fill, fill, fill};
        std::memcpy(t, p, n * sizeof(float));
        return vld1q_f32(t);
    }
    DOCVLM_ALWAYS_INLINE static void store_part(float* p, R v, std::size_t n) {
        float t[4];
        vst1q_f32(t, v);
        std::memcpy(p, t, n * sizeof(float));
    }
    DOCVLM_ALWAYS_INLINE static R add(R a, R b) { return vaddq_f32(a, b); }
    DOCVLM_ALWAYS_INLINE static R sub(R a, R b) { return vsubq_f32(a, b); }
    DOCVLM_ALWAYS_INLINE static R mul(R a, R b) { return vmulq_f32(a, b); }
    DOCVLM_ALWAYS_INLINE static R div(R a, R b) { return vdivq_f32(a, b); }
    DOCVLM_ALWAYS_INLINE static R min(R a, R b) { return vminq_f32(a, b); }
    DOCVLM_ALWAYS_INLINE static R max(R a, R b) { return vmaxq_f32(a, b); }
    DOCVLM_ALWAYS_INLINE static R abs(R a) { return vabsq_f32(a); }
    DOCVLM_ALWAYS_INLINE static R fma(R a, R b, R c) { return vfmaq_f32(c, a, b); }
    DOCVLM_ALWAYS_INLINE static R fnma(R a, R b, R c) { return vfmsq_f32(c, a, b); }
    DOCVLM_ALWAYS_INLINE static R round(R a) { return vrndnq_f32(a); }
    DOCVLM_ALWAYS_INLINE static R ldexp(R p, R k) {
        const int32x4_t ki = vcvtq_s32_f32(k), k1 = vshrq_n_s32(ki, 1), k2 = vsubq_s32(ki, k1);
        const int32x4_t bias = vdupq_n_s32(127);
        const R f1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k1, bias), 23));
        const R f2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k2, bias), 23));
        return vmulq_f32(vmulq_f32(p, f1), f2);
    }
    DOCVLM_ALWAYS_INLINE static R pow2(R k) {
        return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(k), vdupq_n_s32(127)), 23));
    }
    DOCVLM_ALWAYS_INLINE static R copysign(R m, R s) { return vbslq_f32(vdupq_n_u32(0x80000000u), s, m); }
    DOCVLM_ALWAYS_INLINE static float reduce_add(R a) { return vaddvq_f32(a); }
    DOCVLM_ALWAYS_INLINE static float reduce_max(R a) { return vmaxvq_f32(a); }
    DOCVLM_ALWAYS_INLINE static R sums(const R (&v)[4]) {
        return vpaddq_f32(vpaddq_f32(v[0], v[1]), vpaddq_f32(v[2], v[3]));
    }
    DOCVLM_ALWAYS_INLINE static void store_i8_part(std::int8_t* q, R v, std::size_t n) {
        const int16x4_t i16 = vqmovn_s32(vcvtnq_s32_f32(v));
        const int8x8_t i8 = vqmovn_s16(vcombine_s16(i16, i16));
        std::int8_t t[8];
        vst1_s8(t, i8);
        std::memcpy(q, t, n);
    }
    DOCVLM_ALWAYS_INLINE static void store_u8_part(std::uint8_t* q, R v, std::size_t n) {
        const uint16x4_t u16 = vqmovun_s32(vcvtnq_s32_f32(v));
        const uint8x8_t u8 = vqmovn_u16(vcombine_u16(u16, u16));
        std::uint8_t t[8];
        vst1_u8(t, u8);
        std::memcpy(q, t, n);
    }
    DOCVLM_ALWAYS_INLINE static R load_i32(const std::int32_t* p) { return vcvtq_f32_s32(vld1q_s32(p)); }
    DOCVLM_ALWAYS_INLINE static R load_i32_part(const std::int32_t* p, std::size_t n) {
        std::int32_t t[4] = {0, 0, 0, 0};
        std::memcpy(t, p, n * sizeof(std::int32_t));
        return vcvtq_f32_s32(vld1q_s32(t));
    }
    DOCVLM_ALWAYS_INLINE static R load_i32_minus(const std::int32_t* p, const std::int32_t* s, std::int32_t k) {
        return vcvtq_f32_s32(vmlsq_s32(vld1q_s32(p), vld1q_s32(s), vdupq_n_s32(k)));
    }
    DOCVLM_ALWAYS_INLINE static R load_i32_minus_part(const std::int32_t* p, const std::int32_t* s, std::int32_t k, std::size_t n) {
        std::int32_t a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
        std::memcpy(a, p, n * sizeof(std::int32_t));
        std::memcpy(b, s, n * sizeof(std::int32_t));
        return load_i32_minus(a, b, k);
    }
};
#endif  // DOCVLM_AARCH64

}  // namespace kernels::simd
DOCVLM_SIMD_WARNINGS_ON
DOCVLM_NAMESPACE_END
