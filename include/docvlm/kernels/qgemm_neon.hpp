// docvlm/kernels/qgemm_neon.hpp — the int8 GEMM's micro-kernel for AArch64 CPUs with the
// dot-product instructions (Armv8.2 DotProd: Apple M1 and later, Graviton 2 and later,
// Cortex-A76 and later), used by kernels/qgemm.hpp as QPath::neondot.
//
// The packed weight layout is the one the x86 VNNI kernels read (kernels/qgemm.hpp):
// data[panel][k / 4][column % 32][k % 4]. One 16-byte load holds 4 columns × 4 values of K,
// and `sdot` adds, per column, the 4 products with the row's 4 values broadcast to every lane —
// s8 × s8 into int32, exact (no offset, no saturation).
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

}  // namespace kernels::detail
DOCVLM_NAMESPACE_END
#endif  // __aarch64__
