// docvlm/kernels/qgemm_avx2.hpp — the int8 GEMM's micro-kernels on 256-bit registers, used by
// kernels/qgemm.hpp as QPath::avx2, QPath::avx2u8 and QPath::avxvnni, and the unaligned loads
// every x86 kernel of it shares. Layouts as kernels/qgemm.hpp describes: weights data[panel]
// [k / 4][column % 32][k % 4]; activations u8 = s8 + 128 rows (avxvnni, avx2u8) or int16 rows
// (avx2). Each kernel writes out[r][0..32) = Σ_{kk<k4} Σ_{t<4} A[r][4kk+t] · W[panel column][4kk+t] for r < MR (raw sums:
// the u8 offset is taken off by the epilogue).
#pragma once

#include <docvlm/core/config.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if DOCVLM_X86_64
#include <immintrin.h>

DOCVLM_NAMESPACE_BEGIN
DOCVLM_SIMD_WARNINGS_OFF
namespace kernels::detail {

DOCVLM_ALWAYS_INLINE std::int32_t load_i32(const std::byte* p) {
    std::int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
DOCVLM_ALWAYS_INLINE long long load_i64(const std::byte* p) {
    long long v;
    std::memcpy(&v, p, 8);
    return v;
}

// The shared parts of the six-row inline-assembly loops (qkernel_avx2_steps,
// qkernel_avx2u8_steps): r8 = weights, r9 / r10 = rows 0-2 / 3-5 of A (stride %[lda]), r11 =
// iterations left; ROW(addr, i) is one row's step on accumulators %[ci0], %[ci1]; the
// accumulators are the operands c[6][2]; ymm12-15 are the loops' scratch.
#define DOCVLM_ASM_SIX_ROWS_SETUP    \
    "mov %[w], %%r8\n\t"              \
    "mov %[a], %%r9\n\t"              \
    "lea (%[a],%[lda],2), %%r10\n\t"  \
    "add %[lda], %%r10\n\t"           \
    "mov %[n], %%r11\n\t"             \
    "1:\n\t"
#define DOCVLM_ASM_SIX_ROWS(ROW, off)                                                              \
    ROW(off "(%%r9)", 0) ROW(off "(%%r9,%[lda])", 1) ROW(off "(%%r9,%[lda],2)", 2) ROW(off "(%%r10)", 3) \
    ROW(off "(%%r10,%[lda])", 4) ROW(off "(%%r10,%[lda],2)", 5)
#define DOCVLM_ASM_SIX_ROWS_ACCUMULATORS(c)                                                              \
    [c00] "+x"(c[0][0]), [c01] "+x"(c[0][1]), [c10] "+x"(c[1][0]), [c11] "+x"(c[1][1]), [c20] "+x"(c[2][0]), \
    [c21] "+x"(c[2][1]), [c30] "+x"(c[3][0]), [c31] "+x"(c[3][1]), [c40] "+x"(c[4][0]), [c41] "+x"(c[4][1]), \
    [c50] "+x"(c[5][0]), [c51] "+x"(c[5][1])
#define DOCVLM_ASM_SIX_ROWS_CLOBBERS "xmm12", "xmm13", "xmm14", "xmm15", "r8", "r9", "r10", "r11", "memory", "cc"

// The GEMV's weights stream from memory once per token: the two cache lines of the step
// `qgemv_prefetch` bytes ahead are asked for by software, which the hardware prefetchers alone
// did not keep up with. Measured on the Intel Xeon (2 threads, the 169 weights of a Qwen2-0.5B
// decoding step, 494 MB, one after another): DOCVLM_ISA=avx2 17.1-17.8 GB/s without, 20.1-22.0
// with 4 KB (2-16 KB alike); avxvnni 13.4-15.6 without, 17.7-19.0 with. The AVX-512 kernel
// gained nothing measurable from it (17.0-18.5 against 16.8-18.6) and goes without.
inline constexpr std::size_t qgemv_prefetch = 4096;
DOCVLM_ALWAYS_INLINE void prefetch_panel_ahead(const std::int8_t* w) {
    _mm_prefetch(reinterpret_cast<const char*>(w) + qgemv_prefetch, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(w) + qgemv_prefetch + 64, _MM_HINT_T0);
}

// One step kk of qkernel_avxvnni's product loop: c[r][0..NV) += row r's 4 bytes at 4·kk times
// NV · 32 weight bytes at wp + 128·kk (NV · 8 columns).
template <int MR, int NV>
DOCVLM_TARGET("avx2,avxvnni") DOCVLM_ALWAYS_INLINE
void qkernel_avxvnni_step(__m256i (&c)[MR][NV], const std::byte* a, std::size_t lda, const std::int8_t* wp, std::size_t kk) {
    const std::int8_t* wk = wp + kk * 128;
    __m256i wv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) wv[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(wk + 32 * v));
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
        const __m256i b = _mm256_set1_epi32(load_i32(a + r * lda + 4 * kk));
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) c[r][v] = _mm256_dpbusd_avx_epi32(c[r][v], b, wv[v]);
    }
}

// AVX-VNNI (Alder Lake and later, Zen 5): {vex} vpdpbusd on ymm, u8 rows x s8 weights. Three to
// six rows: 16 columns per pass (12 accumulators), two passes per panel; one or two rows (the
// GEMV): all 32 columns in one pass, so the panel is read once in order, and one row keeps two
// independent sums per accumulator (its vpdpbusd chains would otherwise wait on their latency;
// int32 sums, so the result is the same). pf (or null): the [MR][32] floats the tile's epilogue
// will write, ldpf apart; during the first pass one of their 2·MR cache lines is asked for with
// write intent every 4 steps, so that the reads for ownership overlap the products instead of
// stalling the epilogue's stores.
template <int MR>
DOCVLM_TARGET("avx2,avxvnni")
void qkernel_avxvnni(const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t k4, std::int32_t* out,
                     const float* pf = nullptr, std::size_t ldpf = 0) {
    constexpr int NV = MR <= 2 ? 4 : 2, passes = 4 / NV, S = MR == 1 ? 2 : 1;
    for (int pass = 0; pass < passes; ++pass) {
        __m256i c[S][MR][NV];
#pragma GCC unroll 12
        for (int s = 0; s < S; ++s)
            for (int r = 0; r < MR; ++r)
                for (int v = 0; v < NV; ++v) c[s][r][v] = _mm256_setzero_si256();
        const std::int8_t* wp = w + pass * NV * 32;
        std::size_t kk = 0;
        for (; kk + S <= k4; kk += S) {
            if constexpr (MR <= 2)  // the GEMV: weights streamed from memory
                for (int s = 0; s < S; ++s) prefetch_panel_ahead(wp + (kk + std::size_t(s)) * 128);
            if (pass == 0 && pf && kk % 4 < S && kk < 8 * MR) asm volatile("prefetchw %0" : : "m"(pf[kk / 8 * ldpf + kk % 8 / 4 * 16]));
#pragma GCC unroll 2
            for (int s = 0; s < S; ++s) qkernel_avxvnni_step<MR, NV>(c[s], a, lda, wp, kk + std::size_t(s));
        }
        for (; kk < k4; ++kk) qkernel_avxvnni_step<MR, NV>(c[0], a, lda, wp, kk);
#pragma GCC unroll 6
        for (int r = 0; r < MR; ++r)
            for (int v = 0; v < NV; ++v) {
                for (int s = 1; s < S; ++s) c[0][r][v] = _mm256_add_epi32(c[0][r][v], c[s][r][v]);
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * 32 + pass * NV * 8 + v * 8), c[0][r][v]);
            }
    }
}

// ---- AVX2 vpmaddubsw on u8 rows and s8 weights within ±63 (QPath::avx2u8, the int8 attention) ----
// vpmaddubsw's int16 pair sums (at most 2 · 255 · 63 = 32130) cannot saturate, vpmaddwd with ones
// adds the pairs into the int32 lanes: three instructions per 32 products, where the exact int16
// path (qkernel_avx2) needs four per 16. Weights quantised within ±127 would saturate here.

alignas(32) inline const std::int16_t avx2_ones16[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

// c[r][0..1] += steps kk < n of qkernel_avx2u8's loop: row r's 4 bytes at a + r·lda + 4·kk, the
// pass's 64 weight bytes (16 columns x 4 k) at w + 128·kk. qkernel_avx2u8_steps: four or five
// rows in inline assembly, two steps per iteration (GCC spills this loop's accumulators, as for
// qkernel_avx2_steps); other row counts and an odd last step in C++ (_cpp).
template <int MR>
DOCVLM_TARGET("avx2") DOCVLM_ALWAYS_INLINE
void qkernel_avx2u8_steps_cpp(__m256i (&c)[MR][2], const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t n) {
    const __m256i one = _mm256_load_si256(reinterpret_cast<const __m256i*>(avx2_ones16));
    for (std::size_t kk = 0; kk < n; ++kk, w += 128, a += 4) {
        const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w)),
                      w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 32));
#pragma GCC unroll 6
        for (int r = 0; r < MR; ++r) {
            const __m256i b = _mm256_set1_epi32(load_i32(a + r * lda));
            c[r][0] = _mm256_add_epi32(c[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(b, w0), one));
            c[r][1] = _mm256_add_epi32(c[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(b, w1), one));
        }
    }
}

// The assembly loop's registers: ymm10/11 the step's weights (columns 0-7 / 8-15), ymm12 the
// ones, ymm14 a row's broadcast (then its second product), ymm15 its first product; r8-r11 as in
// DOCVLM_ASM_SIX_ROWS_SETUP. Every operand but the broadcast stays in a register: with the
// weights as vpmaddubsw's memory operands, six rows ran at 91 % of the register-only peak on one
// thread, five rows this way at 99 % (a harness on one tile, Intel Xeon).
#define DOCVLM_AVX2U8_ROW(addr, i)                    \
    "vpbroadcastd " addr ", %%ymm14\n\t"              \
    "vpmaddubsw %%ymm10, %%ymm14, %%ymm15\n\t"        \
    "vpmaddubsw %%ymm11, %%ymm14, %%ymm14\n\t"        \
    "vpmaddwd %%ymm12, %%ymm15, %%ymm15\n\t"          \
    "vpmaddwd %%ymm12, %%ymm14, %%ymm14\n\t"          \
    "vpaddd %%ymm15, %[c" #i "0], %[c" #i "0]\n\t"    \
    "vpaddd %%ymm14, %[c" #i "1], %[c" #i "1]\n\t"
#define DOCVLM_AVX2U8_FOUR_ROWS(off) \
    DOCVLM_AVX2U8_ROW(off "(%%r9)", 0) DOCVLM_AVX2U8_ROW(off "(%%r9,%[lda])", 1) DOCVLM_AVX2U8_ROW(off "(%%r9,%[lda],2)", 2) DOCVLM_AVX2U8_ROW(off "(%%r10)", 3)
#define DOCVLM_AVX2U8_FIVE_ROWS(off) DOCVLM_AVX2U8_FOUR_ROWS(off) DOCVLM_AVX2U8_ROW(off "(%%r10,%[lda])", 4)
#define DOCVLM_AVX2U8_LOOP(ROWS, ...)                                                                            \
    asm volatile("vmovdqa %[ones], %%ymm12\n\t" DOCVLM_ASM_SIX_ROWS_SETUP                                        \
                 "vmovdqa (%%r8), %%ymm10\n\t" "vmovdqa 32(%%r8), %%ymm11\n\t" ROWS("")                          \
                 "vmovdqa 128(%%r8), %%ymm10\n\t" "vmovdqa 160(%%r8), %%ymm11\n\t" ROWS("4")                     \
                 "add $256, %%r8\n\t" "add $8, %%r9\n\t" "add $8, %%r10\n\t" "dec %%r11\n\t" "jnz 1b"            \
                 : __VA_ARGS__                                                                                 \
                 : [w] "r"(w), [a] "r"(a), [lda] "r"(lda), [n] "r"(n / 2), [ones] "m"(*reinterpret_cast<const __m256i*>(avx2_ones16)) \
                 : "xmm10", "xmm11", DOCVLM_ASM_SIX_ROWS_CLOBBERS)

template <int MR>
DOCVLM_TARGET("avx2") DOCVLM_ALWAYS_INLINE
void qkernel_avx2u8_steps(__m256i (&c)[MR][2], const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t n) {
    if constexpr (MR == 4 || MR == 5) {
        if (n % 2) qkernel_avx2u8_steps_cpp<MR>(c, a + 4 * (n - 1), lda, w + 128 * (n - 1), 1);  // the odd step
        if (n < 2) return;
        if constexpr (MR == 5)
            DOCVLM_AVX2U8_LOOP(DOCVLM_AVX2U8_FIVE_ROWS, [c00] "+x"(c[0][0]), [c01] "+x"(c[0][1]), [c10] "+x"(c[1][0]), [c11] "+x"(c[1][1]),
                               [c20] "+x"(c[2][0]), [c21] "+x"(c[2][1]), [c30] "+x"(c[3][0]), [c31] "+x"(c[3][1]), [c40] "+x"(c[4][0]),
                               [c41] "+x"(c[4][1]));
        else
            DOCVLM_AVX2U8_LOOP(DOCVLM_AVX2U8_FOUR_ROWS, [c00] "+x"(c[0][0]), [c01] "+x"(c[0][1]), [c10] "+x"(c[1][0]), [c11] "+x"(c[1][1]),
                               [c20] "+x"(c[2][0]), [c21] "+x"(c[2][1]), [c30] "+x"(c[3][0]), [c31] "+x"(c[3][1]));
    } else {
        qkernel_avx2u8_steps_cpp<MR>(c, a, lda, w, n);
    }
}
#undef DOCVLM_AVX2U8_LOOP
#undef DOCVLM_AVX2U8_FIVE_ROWS
#undef DOCVLM_AVX2U8_FOUR_ROWS
#undef DOCVLM_AVX2U8_ROW

// One row (the GEMV): all 32 columns in one pass over K, so the panel is read once, in order.
DOCVLM_TARGET("avx2")
inline void qkernel_avx2u8_row(const std::byte* a, const std::int8_t* w, std::size_t k4, std::int32_t* out) {
    const __m256i one = _mm256_set1_epi16(1);
    __m256i c[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) c[v] = _mm256_setzero_si256();
    for (std::size_t kk = 0; kk < k4; ++kk, w += 128) {
        prefetch_panel_ahead(w);
        const __m256i b = _mm256_set1_epi32(load_i32(a + 4 * kk));
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v)
            c[v] = _mm256_add_epi32(
                c[v], _mm256_madd_epi16(_mm256_maddubs_epi16(b, _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 32 * v))), one));
    }
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8 * v), c[v]);
}

// part[pass][r][v] = row r's sums of columns 16·pass + 8·v + [0, 8) for MR <= 6 rows: 16 columns
// per pass (12 accumulators), K in chunks of `kc` steps, each chunk's two passes in turn, so that
// the chunk's weights (kc x 128 bytes) stay in L1 for both (a whole panel, 28-160 KB, does not).
// Lanes hold whole columns: no reordering after.
template <int MR>
DOCVLM_TARGET("avx2") DOCVLM_ALWAYS_INLINE
void qkernel_avx2u8_sums(const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t k4, __m256i (&part)[2][MR][2]) {
    constexpr std::size_t kc = 128;
#pragma GCC unroll 24
    for (int pass = 0; pass < 2; ++pass)
        for (int r = 0; r < MR; ++r) part[pass][r][0] = part[pass][r][1] = _mm256_setzero_si256();
    for (std::size_t k0 = 0; k0 < k4; k0 += kc) {
        const std::size_t k1 = std::min(k4, k0 + kc);
        for (int pass = 0; pass < 2; ++pass) {
            __m256i c[MR][2];
#pragma GCC unroll 12
            for (int r = 0; r < MR; ++r) c[r][0] = part[pass][r][0], c[r][1] = part[pass][r][1];
            qkernel_avx2u8_steps<MR>(c, a + k0 * 4, lda, w + k0 * 128 + pass * 64, k1 - k0);
#pragma GCC unroll 12
            for (int r = 0; r < MR; ++r) part[pass][r][0] = c[r][0], part[pass][r][1] = c[r][1];
        }
    }
}

// out[r][0..32) for MR <= 6 rows (raw sums; the GEMM's tiles have 5, the int8 attention's 4).
template <int MR>
DOCVLM_TARGET("avx2")
void qkernel_avx2u8(const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t k4, std::int32_t* out) {
    if constexpr (MR == 1) return qkernel_avx2u8_row(a, w, k4, out);
    __m256i part[2][MR][2];
    qkernel_avx2u8_sums<MR>(a, lda, w, k4, part);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r)
        for (int pass = 0; pass < 2; ++pass)
            for (int v = 0; v < 2; ++v) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * 32 + pass * 16 + v * 8), part[pass][r][v]);
}

// A whole tile of MR rows and a panel with at most a bias to add, dequantised from the
// accumulators: y[r][j] = float(sum − 128·col_sums[j]) · (sa[r] · ws[j]) + bias[j], j < 32, in
// the order of simd::dequantize_row; the raw sums are never stored and loaded back.
template <int MR, bool Bias>
DOCVLM_TARGET("avx2,fma")
void qkernel_avx2u8_dequant(const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t k4, const std::int32_t* col_sums,
                            const float* ws, const float* sa, const float* bias, float* y, std::size_t ldy) {
    __m256i part[2][MR][2];
    qkernel_avx2u8_sums<MR>(a, lda, w, k4, part);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
        const __m256i cs = _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(col_sums + 8 * j)), 7);
        const __m256 wsj = _mm256_loadu_ps(ws + 8 * j);
        const __m256 bj = Bias ? _mm256_loadu_ps(bias + 8 * j) : _mm256_setzero_ps();
#pragma GCC unroll 6
        for (int r = 0; r < MR; ++r) {
            const __m256 a = _mm256_cvtepi32_ps(_mm256_sub_epi32(part[j / 2][r][j % 2], cs));
            const __m256 v = _mm256_fmadd_ps(a, _mm256_mul_ps(_mm256_set1_ps(sa[r]), wsj), bj);  // bj: the bias or 0
            _mm256_storeu_ps(y + r * ldy + 8 * j, v);
        }
    }
}

// c[r][0..1] += steps kk < n of qkernel_avx2's product loop (row r's int16 values at a + r·lda
// + 8·kk, the pass's 32 weight bytes at w + 128·kk). Six rows: inline assembly, because GCC
// spills accumulators of this loop to the stack however it is written (measured: 40-60 % of the
// vpmaddwd peak); fewer rows (edge tiles) in C++.
template <int MR>
DOCVLM_TARGET("avx2") DOCVLM_ALWAYS_INLINE
void qkernel_avx2_steps(__m256i (&c)[MR][2], const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t n) {
    if (n == 0) return;
    if constexpr (MR == 6) {
        // ymm12/13: the step's weights widened (4 columns each), ymm14: a row's broadcast,
        // ymm15: a product (the other registers: DOCVLM_ASM_SIX_ROWS_SETUP).
#define DOCVLM_AVX2_ROW(addr, i)                                   \
    "vpbroadcastq " addr ", %%ymm14\n\t"                            \
    "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\t"                        \
    "vpaddd %%ymm15, %[c" #i "0], %[c" #i "0]\n\t"                   \
    "vpmaddwd %%ymm13, %%ymm14, %%ymm15\n\t"                        \
    "vpaddd %%ymm15, %[c" #i "1], %[c" #i "1]\n\t"
        asm volatile(
            DOCVLM_ASM_SIX_ROWS_SETUP
            "vpmovsxbw (%%r8), %%ymm12\n\t"
            "vpmovsxbw 16(%%r8), %%ymm13\n\t"
            DOCVLM_ASM_SIX_ROWS(DOCVLM_AVX2_ROW, "")
            "sub $-128, %%r8\n\t"
            "add $8, %%r9\n\t"
            "add $8, %%r10\n\t"
            "dec %%r11\n\t"
            "jnz 1b"
            : DOCVLM_ASM_SIX_ROWS_ACCUMULATORS(c)
            : [w] "r"(w), [a] "r"(a), [lda] "r"(lda), [n] "r"(n)
            : DOCVLM_ASM_SIX_ROWS_CLOBBERS);
#undef DOCVLM_AVX2_ROW
    } else {
        for (std::size_t kk = 0; kk < n; ++kk, w += 128, a += 8) {
            const __m256i lo = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(w)));
            const __m256i hi = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(w + 16)));
#pragma GCC unroll 6
            for (int r = 0; r < MR; ++r) {
                const __m256i b = _mm256_set1_epi64x(load_i64(a + r * lda));
                c[r][0] = _mm256_add_epi32(c[r][0], _mm256_madd_epi16(b, lo));
                c[r][1] = _mm256_add_epi32(c[r][1], _mm256_madd_epi16(b, hi));
            }
        }
    }
}

// A is int16 here; each 32-byte weight slice holds 8 columns x 4 k; widened halves hold 4 columns.
// Per step and row: one broadcast of 4 int16 values, two vpmaddwd, two vpaddd (the products can
// not overflow: |a|, |w| <= 127). 6 rows: 12 accumulators, 2 weight vectors, the broadcast and a
// product fill the 16 ymm registers, so the 32 columns take 4 passes of 8. K goes in chunks of
// `kc` steps, each chunk's 4 passes in turn, so that the chunk's weights (kc x 128 bytes) stay in
// L1 for all 4 (a whole panel, 28-160 KB, does not).
// One row (the GEMV): all 32 columns in one pass over K, so the panel is read once, in order
// (four passes of 8 columns read each of its cache lines four times); 8 accumulators of
// (k0+k1, k2+k3) pairs for 4 columns each, one weight vector widened at a time.
DOCVLM_TARGET("avx2")
inline void qkernel_avx2_row(const std::byte* a, const std::int8_t* w, std::size_t k4, std::int32_t* out) {
    __m256i c[8];
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v) c[v] = _mm256_setzero_si256();
    for (std::size_t kk = 0; kk < k4; ++kk, w += 128, a += 8) {
        prefetch_panel_ahead(w);
        const __m256i b = _mm256_set1_epi64x(load_i64(a));
#pragma GCC unroll 8
        for (int v = 0; v < 8; ++v)
            c[v] = _mm256_add_epi32(c[v], _mm256_madd_epi16(b, _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(w + 16 * v)))));
    }
#pragma GCC unroll 4
    for (int pass = 0; pass < 4; ++pass) {
        const __m256i s = _mm256_permute4x64_epi64(_mm256_hadd_epi32(c[2 * pass], c[2 * pass + 1]), 0xd8);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + pass * 8), s);
    }
}

template <int MR>
DOCVLM_TARGET("avx2")
void qkernel_avx2(const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t k4, std::int32_t* out) {
    if constexpr (MR == 1) return qkernel_avx2_row(a, w, k4, out);
    constexpr std::size_t kc = 64;
    __m256i part[4][MR][2];  // raw accumulators of each pass between chunks
    for (std::size_t k0 = 0; k0 < k4; k0 += kc) {
        const std::size_t k1 = std::min(k4, k0 + kc);
        for (int pass = 0; pass < 4; ++pass) {
            __m256i c[MR][2];
#pragma GCC unroll 12
            for (int r = 0; r < MR; ++r)
                for (int v = 0; v < 2; ++v) c[r][v] = k0 == 0 ? _mm256_setzero_si256() : part[pass][r][v];
            qkernel_avx2_steps<MR>(c, a + k0 * 8, lda, w + k0 * 128 + pass * 32, k1 - k0);
#pragma GCC unroll 12
            for (int r = 0; r < MR; ++r)
                for (int v = 0; v < 2; ++v) part[pass][r][v] = c[r][v];
        }
    }
    // Lanes hold (k0+k1, k2+k3) per column: add the pairs and restore column order.
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r)
        for (int pass = 0; pass < 4; ++pass) {
            const __m256i s = _mm256_permute4x64_epi64(_mm256_hadd_epi32(part[pass][r][0], part[pass][r][1]), 0xd8);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * 32 + pass * 8), s);
        }
}

#undef DOCVLM_ASM_SIX_ROWS_SETUP
#undef DOCVLM_ASM_SIX_ROWS
#undef DOCVLM_ASM_SIX_ROWS_ACCUMULATORS
#undef DOCVLM_ASM_SIX_ROWS_CLOBBERS

}  // namespace kernels::detail
DOCVLM_SIMD_WARNINGS_ON
DOCVLM_NAMESPACE_END
#endif  // DOCVLM_X86_64
