// docvlm/kernels/qgemm_neon.hpp — the int8 GEMM's micro-kernels for AArch64 CPUs, used by
// kernels/qgemm.hpp:
//   QPath::neon      plain Advanced SIMD (every AArch64 CPU, e.g. Cortex-A53/A72 of the Raspberry
//                    Pi 3/4): `smull` into int16 and `sadalp` into int32, 4 products per instruction;
//   QPath::neondot   the dot-product instructions (Armv8.2 DotProd: Apple M1 and later,
//                    Graviton 2 and later, Cortex-A76 and later): `sdot`, 16 products per instruction;
//   QPath::neoni8mm  the int8 matrix multiply (Armv8.6 I8MM: Apple M2 and later, Graviton 3 and
//                    later, Neoverse N2/V1, Cortex-A710 and later): `smmla`, 32 products per instruction.
// All are s8 × s8 into int32, exact (no offset, no saturation: the plain kernel adds two products
// in int16 before widening, and 2 · 127 · 127 < 2^15).
//
// The packed weight layout is the one the x86 VNNI kernels read (kernels/qgemm.hpp):
// data[panel][k / 4][column % 32][k % 4]. One 16-byte load holds 4 columns × 4 values of K.
// `sdot` adds, per column, the 4 products with the row's 4 values broadcast to every lane.
// `smmla` multiplies a 2 × 8 block of rows by a 2 × 8 block of columns into a 2 × 2 block of sums
// (c += A · Bᵀ, int32x4 = [r0·c0, r0·c1, r1·c0, r1·c1]): its column operand, columns j and j+1
// over 8 values of K, is two consecutive K steps of the packed panel interleaved 4 bytes at a time
// (zip1/zip2 on 32-bit lanes), so both kernels read the same packed weights.
#pragma once

#include <docvlm/core/config.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__aarch64__)
#include <arm_neon.h>

DOCVLM_NAMESPACE_BEGIN
namespace kernels::detail {

// out[r][0..32) = Σ_{kk<k4} Σ_{t<4} A[r][4kk+t] · W[panel column][4kk+t], A s8 rows of stride lda.
// MR ≤ 6 rows × 16 columns per pass (24 accumulators, 4 weight registers, the broadcast row:
// 29 of the 32 vector registers); two passes cover the panel's 32 columns.
template <int MR>
DOCVLM_TARGET("arch=armv8.2-a+dotprod")
void qkernel_neondot(const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t k4, std::int32_t* out) {
    for (int pass = 0; pass < 2; ++pass) {
        int32x4_t c[MR][4];
        for (int r = 0; r < MR; ++r)
            for (int v = 0; v < 4; ++v) c[r][v] = vdupq_n_s32(0);
        const std::int8_t* wk = w + pass * 64;
        for (std::size_t kk = 0; kk < k4; ++kk, wk += 128) {
            int8x16_t wv[4];
            for (int v = 0; v < 4; ++v) wv[v] = vld1q_s8(wk + 16 * v);
            for (int r = 0; r < MR; ++r) {
                std::int32_t four;
                std::memcpy(&four, a + r * lda + 4 * kk, 4);
                const int8x16_t b = vreinterpretq_s8_s32(vdupq_n_s32(four));
                for (int v = 0; v < 4; ++v) c[r][v] = vdotq_s32(c[r][v], wv[v], b);
            }
        }
        for (int r = 0; r < MR; ++r)
            for (int v = 0; v < 4; ++v) vst1q_s32(out + r * 32 + pass * 16 + 4 * v, c[r][v]);
    }
}

// The same tile with `usdot` (I8MM's mixed-sign dot product: u8 rows · s8 weights, the x86 VNNI
// instructions' arithmetic): the int8 attention's queries (q + 128) and probabilities (0..255)
// against keys and values (kernels/attention_int8.hpp). Not a path of the GEMM, whose rows are s8.
template <int MR>
DOCVLM_TARGET("arch=armv8.2-a+dotprod+i8mm")
void qkernel_neonusdot(const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t k4, std::int32_t* out) {
    for (int pass = 0; pass < 2; ++pass) {
        int32x4_t c[MR][4];
        for (int r = 0; r < MR; ++r)
            for (int v = 0; v < 4; ++v) c[r][v] = vdupq_n_s32(0);
        const std::int8_t* wk = w + pass * 64;
        for (std::size_t kk = 0; kk < k4; ++kk, wk += 128) {
            int8x16_t wv[4];
            for (int v = 0; v < 4; ++v) wv[v] = vld1q_s8(wk + 16 * v);
            for (int r = 0; r < MR; ++r) {
                std::uint32_t four;
                std::memcpy(&four, a + r * lda + 4 * kk, 4);
                const uint8x16_t b = vreinterpretq_u8_u32(vdupq_n_u32(four));
                for (int v = 0; v < 4; ++v) c[r][v] = vusdotq_s32(c[r][v], b, wv[v]);
            }
        }
        for (int r = 0; r < MR; ++r)
            for (int v = 0; v < 4; ++v) vst1q_s32(out + r * 32 + pass * 16 + 4 * v, c[r][v]);
    }
}

// The same product with plain NEON, MR ≤ 6 rows × 8 columns per pass (four passes): per row and
// pair of columns one accumulator whose lanes hold the pairs (K 0-1, K 2-3) of each column, so
// `smull` of 8 weight bytes by the broadcast row gives 8 products that `sadalp` adds pairwise into
// it; `addp` of two such accumulators gives the 4 columns' sums. 24 accumulators, 2 weight
// registers and the broadcast row.
template <int MR>
void qkernel_neon(const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t k4, std::int32_t* out) {
    for (int pass = 0; pass < 4; ++pass) {
        int32x4_t c[MR][4];  // [r][2g + h]: columns 4g + 2h, 4g + 2h + 1 of the pass
        for (int r = 0; r < MR; ++r)
            for (int q = 0; q < 4; ++q) c[r][q] = vdupq_n_s32(0);
        const std::int8_t* wk = w + pass * 32;
        for (std::size_t kk = 0; kk < k4; ++kk, wk += 128) {
            const int8x16_t wv[2] = {vld1q_s8(wk), vld1q_s8(wk + 16)};  // columns 4g..4g+3 × K 0..3
            for (int r = 0; r < MR; ++r) {
                std::int32_t four;
                std::memcpy(&four, a + r * lda + 4 * kk, 4);
                const int8x16_t b = vreinterpretq_s8_s32(vdupq_n_s32(four));
                for (int g = 0; g < 2; ++g) {
                    c[r][2 * g] = vpadalq_s16(c[r][2 * g], vmull_s8(vget_low_s8(wv[g]), vget_low_s8(b)));
                    c[r][2 * g + 1] = vpadalq_s16(c[r][2 * g + 1], vmull_high_s8(wv[g], b));
                }
            }
        }
        for (int r = 0; r < MR; ++r)
            for (int g = 0; g < 2; ++g) vst1q_s32(out + r * 32 + pass * 8 + 4 * g, vpaddq_s32(c[r][2 * g], c[r][2 * g + 1]));
    }
}

// One block of 8 values of K for qkernel_neoni8mm: the row pairs ap[p] times the panel's columns
// 0..15 of a pass, whose K steps are wk (values 0..3) and, with has_hi, wk + 128 (values 4..7).
template <int P>
DOCVLM_TARGET("arch=armv8.2-a+dotprod+i8mm") DOCVLM_ALWAYS_INLINE
void qneoni8mm_block(int32x4_t (&c)[P][8], const int8x16_t (&ap)[P], const std::int8_t* wk, bool has_hi) {
    for (int v = 0; v < 4; ++v) {  // columns 4v..4v+3 of the pass
        const int32x4_t lo = vreinterpretq_s32_s8(vld1q_s8(wk + 16 * v));
        const int32x4_t hi = has_hi ? vreinterpretq_s32_s8(vld1q_s8(wk + 128 + 16 * v)) : vdupq_n_s32(0);
        const int8x16_t b0 = vreinterpretq_s8_s32(vzip1q_s32(lo, hi));  // columns 4v, 4v+1
        const int8x16_t b1 = vreinterpretq_s8_s32(vzip2q_s32(lo, hi));  // columns 4v+2, 4v+3
        for (int p = 0; p < P; ++p) {
            c[p][2 * v] = vmmlaq_s32(c[p][2 * v], ap[p], b0);
            c[p][2 * v + 1] = vmmlaq_s32(c[p][2 * v + 1], ap[p], b1);
        }
    }
}

// The same product as qkernel_neondot with `smmla`: MR ≤ 6 rows as 3 pairs (an odd last row is
// paired with itself and its copy's sums dropped) × 16 columns per pass; 24 accumulators (pair p,
// columns 2q, 2q+1), 3 row-pair operands, 2 loaded and 2 interleaved weight registers (31 of 32).
// One iteration takes two K steps (8 values); an odd last step pairs its 4 values with zeros.
template <int MR>
DOCVLM_TARGET("arch=armv8.2-a+dotprod+i8mm")
void qkernel_neoni8mm(const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t k4, std::int32_t* out) {
    constexpr int P = (MR + 1) / 2;
    const std::int8_t* row[2 * P];
    for (int r = 0; r < 2 * P; ++r) row[r] = reinterpret_cast<const std::int8_t*>(a + std::size_t(r < MR ? r : MR - 1) * lda);
    for (int pass = 0; pass < 2; ++pass) {
        int32x4_t c[P][8];
        for (int p = 0; p < P; ++p)
            for (int q = 0; q < 8; ++q) c[p][q] = vdupq_n_s32(0);
        const std::int8_t* wk = w + pass * 64;
        std::size_t kk = 0;
        for (; kk + 2 <= k4; kk += 2, wk += 256) {
            int8x16_t ap[P];
            for (int p = 0; p < P; ++p) ap[p] = vcombine_s8(vld1_s8(row[2 * p] + 4 * kk), vld1_s8(row[2 * p + 1] + 4 * kk));
            qneoni8mm_block<P>(c, ap, wk, true);
        }
        if (kk < k4) {
            int8x16_t ap[P];
            for (int p = 0; p < P; ++p) {
                std::uint32_t lanes[4] = {};  // [row 2p's 4 values, 0, row 2p+1's 4 values, 0]
                std::memcpy(&lanes[0], row[2 * p] + 4 * kk, 4);
                std::memcpy(&lanes[2], row[2 * p + 1] + 4 * kk, 4);
                ap[p] = vreinterpretq_s8_u32(vld1q_u32(lanes));
            }
            qneoni8mm_block<P>(c, ap, wk, false);
        }
        // c[p][2v] = [r0·c0, r0·c1, r1·c0, r1·c1] and c[p][2v+1] the same for columns 2, 3:
        // their low halves make row 2p's 4 columns, their high halves row 2p+1's.
        for (int p = 0; p < P; ++p)
            for (int v = 0; v < 4; ++v) {
                const int64x2_t s0 = vreinterpretq_s64_s32(c[p][2 * v]), s1 = vreinterpretq_s64_s32(c[p][2 * v + 1]);
                std::int32_t* o = out + 2 * p * 32 + pass * 16 + 4 * v;
                vst1q_s32(o, vreinterpretq_s32_s64(vzip1q_s64(s0, s1)));
                if (2 * p + 1 < MR) vst1q_s32(o + 32, vreinterpretq_s32_s64(vzip2q_s64(s0, s1)));
            }
    }
}

}  // namespace kernels::detail
DOCVLM_NAMESPACE_END
#endif  // __aarch64__
