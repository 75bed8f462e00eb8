// docvlm/kernels/qgemm.hpp — int8 matrix multiplication: y = act(x · Wᵀ + bias) + residual.
//
// Weights W [N, K] (torch Linear layout) are quantised once, symmetrically, per output channel
// or per group of K (32/64/128), into int8 in [-127, 127] and packed into 32-column panels:
//     data[panel][k / 4][column % 32][k % 4]            (K padded to a multiple of 4 / group)
// with the column sums Σ_k w the u8×s8 instructions need. Activations x [M, K] are quantised per
// row (per token) at run time: q = round(x · 127 / max|x_row|). The int32 accumulator
// Σ_k q[m,k]·w[n,k] is exact and identical on every code path:
//   avx512vnni  vpdpbusd zmm on u8 = q + 128, then − 128·Σw      (12 rows × 32 columns per tile)
//   amx         tdpbusd on AMX tiles, same u8 trick; fewer than    (32 rows × 32 columns)
//               32 rows (decoding) take avx512vnni
//   avxvnni     vpdpbusd ymm, same trick                          (6 rows × 16 columns)
//   avx2        q and w widened to int16, vpmaddwd (no saturation) (6 rows × 8 columns)
//   avx2u8      vpmaddubsw on u8 = q + 128 and w within ±63 (no    (5 rows × 16 columns)
//               saturation: 2 · 255 · 63 < 2^15), vpmaddwd by ones; the weights quantize_weight
//               makes by default on AVX2 without VNNI (weight_qmax)
//   neon        AArch64 smull + sadalp on s8 (kernels/qgemm_neon.hpp) (6 rows × 8 columns)
//   neondot     AArch64 sdot on s8                                  (6 rows × 16 columns)
//   neoni8mm    AArch64 smmla on s8, rows in pairs; one row: sdot   (6 rows × 16 columns)
//   generic     plain C++ over the packed layout
// The per-channel epilogue y = act(float(sum) · (sa · sw) + bias) · multiplier + residual takes
// the product and the bias (0 without one) in one fused multiply-add, and a multiplier with a
// residual in another, on every path: never a product and a separate add, which a compiler may
// fuse in one function and not in another (GCC does under its default -ffp-contract=fast), so
// that a row's result would depend on the tile it fell in, that is on how many rows came with it.
// Each path of a CPU gives a row the same floats however many rows are multiplied with it
// (tests/test_kernels.cpp and tests/test_embedded.cpp check this bit for bit). The one exception,
// an activation followed by a residual, is asked for by no layer.
// The AVX2 / AVX-VNNI micro-kernels live in kernels/qgemm_avx2.hpp, the AArch64 one in
// kernels/qgemm_neon.hpp; the AVX-512 ones and the schedules here; quantisation and packing in
// kernels/qgemm_quantize.hpp.
// The path is chosen once from cpu(); tests run every path the CPU has against
// qgemm_reference_s32, a plain triple loop over unpacked int8 data.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/cpu.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/kernels/activations.hpp>
#include <docvlm/kernels/qgemm_avx2.hpp>
#include <docvlm/kernels/qgemm_neon.hpp>
#include <docvlm/kernels/qgemm_quantize.hpp>
#include <docvlm/kernels/rowwise.hpp>
#include <docvlm/kernels/tiling.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if DOCVLM_X86_64
#include <immintrin.h>
#endif

DOCVLM_NAMESPACE_BEGIN
DOCVLM_SIMD_WARNINGS_OFF
namespace kernels {

/// What happens to each output after the int8 product: y = act(acc + bias) + residual.
struct Epilogue {
    const float* bias = nullptr;      ///< [n] or null
    const float* residual = nullptr;  ///< [m][ld_residual] or null; may alias y
    std::size_t ld_residual = 0;
    Activation act = Activation::none;
    /// [m][ld_multiplier] or null: y = act(x · Wᵀ + bias) · multiplier + residual, elementwise;
    /// may alias y. A gated MLP's up projection multiplies by act(gate x) this way, in place.
    const float* multiplier = nullptr;
    std::size_t ld_multiplier = 0;
};

/// y [m, n] (row stride ldy) = act(x · Wᵀ + bias) · multiplier + residual (Epilogue), with x
/// already quantised.
void qgemm(const QuantizedActivations& x, const QuantizedWeight& w, float* y, std::size_t ldy, const Epilogue& ep = {},
           ThreadPool& pool = thread_pool());
/// Same, quantising x [m, k] (row stride ldx) into a per-thread scratch buffer first.
void qgemm(const float* x, std::size_t m, std::size_t ldx, const QuantizedWeight& w, float* y, std::size_t ldy,
           const Epilogue& ep = {}, ThreadPool& pool = thread_pool());
/// The exact int32 accumulators c [m, n] = Σ_k xq[m,k]·wq[n,k] (per-channel weights only).
void qgemm_s32(const QuantizedActivations& x, const QuantizedWeight& w, std::int32_t* c, std::size_t ldc,
               ThreadPool& pool = thread_pool());
/// Scalar reference: c [m, n] = Σ_k a[m,k]·w[n,k] on plain row-major int8 matrices.
void qgemm_reference_s32(const std::int8_t* a, std::size_t lda, const std::int8_t* w, std::size_t ldw, std::size_t m,
                         std::size_t n, std::size_t k, std::int32_t* c, std::size_t ldc);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {

// ---- micro-kernels: out[r][0..32) = Σ_{kk<k4} Σ_{t<4} A[r][4kk+t] · W[panel col][4kk+t] (raw) ----

inline void qkernel_generic(const std::byte* a, std::size_t lda, std::size_t mr, const std::int8_t* w, std::size_t k4,
                            std::int32_t* out) {
    for (std::size_t r = 0; r < mr; ++r) {
        const auto* ar = reinterpret_cast<const std::int8_t*>(a + r * lda);
        std::int32_t acc[qpanel] = {};
        for (std::size_t kk = 0; kk < k4; ++kk) {
            const std::int8_t* wk = w + kk * qpanel * 4;
            const std::int32_t a0 = ar[4 * kk], a1 = ar[4 * kk + 1], a2 = ar[4 * kk + 2], a3 = ar[4 * kk + 3];
            for (std::size_t j = 0; j < qpanel; ++j)
                acc[j] += a0 * wk[4 * j] + a1 * wk[4 * j + 1] + a2 * wk[4 * j + 2] + a3 * wk[4 * j + 3];
        }
        std::memcpy(out + r * qpanel, acc, sizeof acc);
    }
}

#if DOCVLM_X86_64
// One step kk of the product loop: c += A[.., 4kk..4kk+3] · W[4kk..4kk+3, panel].
template <int MR, int NV, bool Tiled>
DOCVLM_TARGET("avx512f,avx512bw,avx512vl,avx512vnni") DOCVLM_ALWAYS_INLINE
void qkernel_avx512vnni_step(__m512i (&c)[MR][NV], const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t kk,
                             const float* pf, std::size_t ldpf) {
    // pf: the [MR][32] floats this tile's epilogue will write; one of their 2·MR lines is
    // asked for with write intent every 4 steps, so the reads for ownership overlap the
    // products instead of stalling the epilogue's stores (a burst of them fills the buffers).
    if (pf && kk % 4 == 0 && kk < 8 * MR) asm volatile("prefetchw %0" : : "m"(pf[kk / 8 * ldpf + kk % 8 * 4]));
    const std::int8_t* wk = w + kk * 128;
    __m512i wv[NV];
    for (int v = 0; v < NV; ++v) wv[v] = _mm512_load_si512(wk + 64 * v);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
        const __m512i b = _mm512_set1_epi32(load_i32(Tiled ? a + 4 * qtile_rows * kk + 4 * r : a + r * lda + 4 * kk));
        for (int v = 0; v < NV; ++v) c[r][v] = _mm512_dpbusd_epi32(c[r][v], b, wv[v]);
    }
}

// The product loop of qkernel_avx512vnni on accumulators c (already initialised). With one row
// (decoding), NV accumulators are too few to cover vpdpbusd's latency: S sets of them take the
// steps in turn and are added at the end (int32: the same sums in any order). Measured on the
// Intel Xeon, decode_qkv 1 x 896 x 1152: 1.4x; with two rows, two sets were slower.
template <int MR, int NV, bool Tiled>
DOCVLM_TARGET("avx512f,avx512bw,avx512vl,avx512vnni") DOCVLM_ALWAYS_INLINE
void qkernel_avx512vnni_loop(__m512i (&c)[MR][NV], const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t k4,
                             const float* pf, std::size_t ldpf) {
    constexpr int S = MR == 1 ? 8 / NV : 1;
    if constexpr (S == 1) {
#pragma GCC unroll 4
        for (std::size_t kk = 0; kk < k4; ++kk) qkernel_avx512vnni_step<MR, NV, Tiled>(c, a, lda, w, kk, pf, ldpf);
    } else {
        __m512i d[S][MR][NV];
        for (int s = 1; s < S; ++s)
            for (int r = 0; r < MR; ++r)
                for (int v = 0; v < NV; ++v) d[s][r][v] = _mm512_setzero_si512();
        for (int r = 0; r < MR; ++r)
            for (int v = 0; v < NV; ++v) d[0][r][v] = c[r][v];
        std::size_t kk = 0;
        for (; kk + S <= k4; kk += S)
#pragma GCC unroll 8
            for (int s = 0; s < S; ++s) qkernel_avx512vnni_step<MR, NV, Tiled>(d[s], a, lda, w, kk + s, pf, ldpf);
        for (; kk < k4; ++kk) qkernel_avx512vnni_step<MR, NV, Tiled>(d[0], a, lda, w, kk, pf, ldpf);
        for (int r = 0; r < MR; ++r)
            for (int v = 0; v < NV; ++v) {
                __m512i sum = d[0][r][v];
                for (int s = 1; s < S; ++s) sum = _mm512_add_epi32(sum, d[s][r][v]);
                c[r][v] = sum;
            }
    }
}

// 12 rows x one 32-column panel: 24 accumulators; each 128-byte row of the panel feeds 24
// vpdpbusd while the 12 rows of A stay in L1. The sums start at zero, or at `init` [MR][32]
// (K split in chunks). NV = 1: only the panel's first 16 columns (out[r][16..32) untouched).
// Tiled: A in the tiled layout of QuantizedActivations (row r of step kk at a + 48·kk + 4·r;
// lda unused); else row r at a + r·lda.
template <int MR, int NV = 2, bool Tiled = false>
DOCVLM_TARGET("avx512f,avx512bw,avx512vl,avx512vnni")
void qkernel_avx512vnni(const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t k4, std::int32_t* out,
                        const std::int32_t* init = nullptr, const float* pf = nullptr, std::size_t ldpf = 0) {
    __m512i c[MR][NV];
#pragma GCC unroll 24
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) c[r][v] = init ? _mm512_load_si512(init + r * 32 + 16 * v) : _mm512_setzero_si512();
    qkernel_avx512vnni_loop<MR, NV, Tiled>(c, a, lda, w, k4, pf, ldpf);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) _mm512_storeu_si512(out + r * 32 + 16 * v, c[r][v]);
}

// A whole 12 x 32 tile of per-channel int8 products, finished in registers:
// y = float(sums − 128·Σw) · (sa · sw) [+ bias]. The general epilogue (activation, multiplier,
// residual) inlined here instead made the loop 25 % slower (code size, spills); see
// qepilogue_avx512 for those. Always inlined into qgemm_tile_avx512vnni: GCC kept the bias
// variant as a function of its own, and called that way it ran 20-25 % slower than the plain
// variant on the AMD Zen 4 machine (vision_qkv 5476 x 1280 x 3840 with bias: 74-77 ms, inlined
// 60-64 ms, plain 61-65 ms; a harness alternating them in one process).
template <bool Bias>
DOCVLM_TARGET("avx512f,avx512bw,avx512vl,avx512vnni") DOCVLM_ALWAYS_INLINE
void qkernel_avx512vnni_dequant(const std::byte* a, const std::int8_t* w, std::size_t k4, const std::int32_t* col_sums,
                                const float* w_scales, const float* a_scales, const float* bias, float* y, std::size_t ldy) {
    __m512i c[12][2];
#pragma GCC unroll 24
    for (int r = 0; r < 12; ++r) c[r][0] = c[r][1] = _mm512_setzero_si512();
    qkernel_avx512vnni_loop<12, 2, true>(c, a, 0, w, k4, y, ldy);
    asm volatile("" ::: "memory");  // every register holds an accumulator in the loop: no loads hoisted above it
    const __m512i off[2] = {_mm512_slli_epi32(_mm512_loadu_si512(col_sums), 7), _mm512_slli_epi32(_mm512_loadu_si512(col_sums + 16), 7)};
    const __m512 ws[2] = {_mm512_loadu_ps(w_scales), _mm512_loadu_ps(w_scales + 16)};
    __m512 b[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    if constexpr (Bias) b[0] = _mm512_loadu_ps(bias), b[1] = _mm512_loadu_ps(bias + 16);
#pragma GCC unroll 12
    for (int r = 0; r < 12; ++r) {
        const __m512 sa = _mm512_set1_ps(a_scales[r]);
        for (int v = 0; v < 2; ++v) {
            const __m512 a = _mm512_cvtepi32_ps(_mm512_sub_epi32(c[r][v], off[v]));
            _mm512_storeu_ps(y + r * ldy + 16 * v, _mm512_fmadd_ps(a, _mm512_mul_ps(sa, ws[v]), b[v]));  // b: the bias or 0
        }
    }
}
template <int MR>
DOCVLM_TARGET("avx512f,avx512bw,avx512vl,avx512vnni")
void qkernel16_avx512vnni(const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t k4, std::int32_t* out,
                          const std::int32_t* init = nullptr) {
    qkernel_avx512vnni<MR, 1>(a, lda, w, k4, out, init);
}

// qkernel_avx512vnni for mr = 1..12 rows, the sums starting at `init` when given; with
// `first16`, only the panel's first 16 columns.
// With `tiled`, A is in QuantizedActivations' tiled layout (lda unused).
inline void qkernel_avx512vnni_rows(const std::byte* a, std::size_t lda, std::size_t mr, const std::int8_t* w, std::size_t k4,
                                    std::int32_t* out, const std::int32_t* init = nullptr, bool first16 = false,
                                    bool tiled = false, const float* pf = nullptr, std::size_t ldpf = 0) {
#define DOCVLM_QKERNEL_CASE(n)                                                                          \
    case n:                                                                                             \
        if (tiled) qkernel_avx512vnni<n, 2, true>(a, lda, w, k4, out, init, pf, ldpf);                  \
        else if (first16) qkernel16_avx512vnni<n>(a, lda, w, k4, out, init);                            \
        else qkernel_avx512vnni<n>(a, lda, w, k4, out, init);                                           \
        return;
    switch (mr) {
        DOCVLM_QKERNEL_CASE(1) DOCVLM_QKERNEL_CASE(2) DOCVLM_QKERNEL_CASE(3) DOCVLM_QKERNEL_CASE(4)
        DOCVLM_QKERNEL_CASE(5) DOCVLM_QKERNEL_CASE(6) DOCVLM_QKERNEL_CASE(7) DOCVLM_QKERNEL_CASE(8)
        DOCVLM_QKERNEL_CASE(9) DOCVLM_QKERNEL_CASE(10) DOCVLM_QKERNEL_CASE(11) default: DOCVLM_QKERNEL_CASE(12)
    }
#undef DOCVLM_QKERNEL_CASE
}
#endif

#define DOCVLM_QKERNEL_DISPATCH(fn, mr, ...) \
    switch (mr) {                            \
        case 1: fn<1>(__VA_ARGS__); break;   \
        case 2: fn<2>(__VA_ARGS__); break;   \
        case 3: fn<3>(__VA_ARGS__); break;   \
        case 4: fn<4>(__VA_ARGS__); break;   \
        case 5: fn<5>(__VA_ARGS__); break;   \
        default: fn<6>(__VA_ARGS__); break;  \
    }

inline void qkernel(QPath path, const std::byte* a, std::size_t lda, std::size_t mr, const std::int8_t* w, std::size_t k4,
                    std::int32_t* out) {
    (void)path;  // unused where the build has no SIMD kernel
#if DOCVLM_X86_64
    switch (path) {
        case QPath::avx512vnni: qkernel_avx512vnni_rows(a, lda, mr, w, k4, out, nullptr, false, true); return;
        case QPath::amx: qkernel_avx512vnni_rows(a, lda, mr, w, k4, out); return;
        case QPath::avxvnni: DOCVLM_QKERNEL_DISPATCH(qkernel_avxvnni, mr, a, lda, w, k4, out) return;
        case QPath::avx2: DOCVLM_QKERNEL_DISPATCH(qkernel_avx2, mr, a, lda, w, k4, out) return;
        case QPath::avx2u8: DOCVLM_QKERNEL_DISPATCH(qkernel_avx2u8, mr, a, lda, w, k4, out) return;
        case QPath::generic:
        case QPath::neon:
        case QPath::neondot:
        case QPath::neoni8mm: break;
    }
#elif defined(__aarch64__)
    if (path == QPath::neoni8mm && mr > 1) {
        DOCVLM_QKERNEL_DISPATCH(qkernel_neoni8mm, mr, a, lda, w, k4, out)
        return;
    }
    if (path == QPath::neondot || path == QPath::neoni8mm) {
        DOCVLM_QKERNEL_DISPATCH(qkernel_neondot, mr, a, lda, w, k4, out)
        return;
    }
    if (path == QPath::neon) {
        DOCVLM_QKERNEL_DISPATCH(qkernel_neon, mr, a, lda, w, k4, out)
        return;
    }
#endif
    qkernel_generic(a, lda, mr, w, k4, out);
}
#undef DOCVLM_QKERNEL_DISPATCH

// Per-thread scratch that only grows (no allocation in steady state).
struct QScratch {
    QuantizedActivations acts;
};
inline QScratch& qscratch() {
    thread_local QScratch s;
    return s;
}

// Longest K of per-channel weights: int32 sums of u8 · s8 products stay exact below
// 2^31 / (255 · 127) ≈ 66,300 terms (per-group weights sum at most 128 at a time).
inline constexpr std::size_t qmax_k = 65536;

inline void check_qgemm(const QuantizedActivations& x, const QuantizedWeight& w) {
    if (x.k != w.k) docvlm::detail::fail("qgemm: activations have k = ", x.k, " but weights have k = ", w.k);
    if (x.path == QPath::avx2u8 && w.qmax > 63)
        docvlm::detail::fail("qgemm: activations quantised for the avx2u8 path, but the weights reach ±", w.qmax,
                             " (that path needs ±63: quantise the activations for activation_qpath(w))");
    if (w.group == 0 && w.k_padded > qmax_k)
        docvlm::detail::fail("qgemm: k = ", w.k, " exceeds ", qmax_k, " for per-channel int8 weights (int32 sums could overflow; use groups)");
}

// Runs the micro-kernels over all (row tile, panel) pairs in parallel; calls
// tile(m0, mr, panel, group, raw) with raw = int32 [mr][32] for each group of K.
template <class Tile>
void qgemm_tiles(const QuantizedActivations& x, const QuantizedWeight& w, ThreadPool& pool, Tile&& tile) {
    check_qgemm(x, w);
    if (x.m == 0) return;
    const std::size_t k4 = w.k_padded / 4, groups = w.groups(), gk4 = k4 / groups;
    const std::size_t step = 4 * qa_elem_bytes(x.path);  // bytes of A per k4 step
    parallel_tiles(x.m, x.row_bytes, 256u << 10, tile_rows(x.path), w.panels(), pool,
                   [&](std::size_t m0, std::size_t mr, std::size_t p) {
                       alignas(64) std::int32_t raw[qmr * qpanel];
                       for (std::size_t g = 0; g < groups; ++g) {
                           const std::size_t k_off = g * gk4 * step * (x.path == QPath::avx512vnni ? qtile_rows : 1);
                           qkernel(x.path, x.data.data() + m0 * x.row_bytes + k_off, x.row_bytes, mr,
                                   w.data.data() + (p * k4 + g * gk4) * qpanel * 4, gk4, raw);
                           tile(m0, mr, p, g, raw);
                       }
                   });
}

}  // namespace detail

namespace detail {

#if DOCVLM_X86_64
// Per-channel epilogue of one [mr][32] tile with AVX-512:
// y = act(float(raw − offset·Σw) · (sa · sw) + bias) + residual.
DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
inline void qepilogue_avx512(const std::int32_t* raw, std::size_t m0, std::size_t mr, std::size_t n0, std::size_t cols,
                             const QuantizedActivations& x, const QuantizedWeight& w, std::int32_t offset, float* y,
                             std::size_t ldy, const Epilogue& ep) {
    // The panel's column values (offset · Σw, weight scales, bias) are loaded once, then row by row.
    __mmask16 mk[2];
    __m512i off[2];
    __m512 ws[2], bias[2];
    const std::size_t nv = (cols + 15) / 16;
    for (std::size_t v = 0; v < nv; ++v) {
        mk[v] = __mmask16(docvlm::detail::tail_mask16(cols - 16 * v));
        off[v] = _mm512_mullo_epi32(_mm512_loadu_si512(w.col_sums.data() + n0 + 16 * v), _mm512_set1_epi32(offset));
        ws[v] = _mm512_loadu_ps(w.scales.data() + n0 + 16 * v);
        bias[v] = ep.bias ? _mm512_maskz_loadu_ps(mk[v], ep.bias + n0 + 16 * v) : _mm512_setzero_ps();
    }
    for (std::size_t r = 0; r < mr; ++r) {
        const __m512 sa = _mm512_set1_ps(x.scales[m0 + r]);
        float* yr = y + (m0 + r) * ldy + n0;
        const float* res = ep.residual ? ep.residual + (m0 + r) * ep.ld_residual + n0 : nullptr;
        const float* mul = ep.multiplier ? ep.multiplier + (m0 + r) * ep.ld_multiplier + n0 : nullptr;
        for (std::size_t v = 0; v < nv; ++v) {
            const __m512i acc = _mm512_sub_epi32(_mm512_loadu_si512(raw + r * qpanel + 16 * v), off[v]);
            __m512 y16 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(sa, ws[v]), bias[v]);  // bias[v]: the bias or 0
            if (ep.act != Activation::none) y16 = activate512(ep.act, y16);
            if (mul && res) y16 = _mm512_fmadd_ps(y16, _mm512_maskz_loadu_ps(mk[v], mul + 16 * v), _mm512_maskz_loadu_ps(mk[v], res + 16 * v));
            else if (mul) y16 = _mm512_mul_ps(y16, _mm512_maskz_loadu_ps(mk[v], mul + 16 * v));
            else if (res) y16 = _mm512_add_ps(y16, _mm512_maskz_loadu_ps(mk[v], res + 16 * v));
            _mm512_mask_storeu_ps(yr + 16 * v, mk[v], y16);
        }
    }
}
#endif

// Per-channel epilogue of one [mr][32] tile on every ISA (the row copies of kernels/rowwise.hpp):
// y = act(float(raw − offset·Σw) · (sa · sw) + bias) · multiplier + residual.
inline void qepilogue_rows(const std::int32_t* raw, std::size_t m0, std::size_t mr, std::size_t n0, std::size_t cols,
                           const QuantizedActivations& x, const QuantizedWeight& w, std::int32_t offset, float* y,
                           std::size_t ldy, const Epilogue& ep) {
    const simd::RowIsa isa = simd::row_isa();
    // The u8 paths' offset · Σw comes off inside the row kernel: a separate pass here would store
    // narrower vectors than the row kernel loads, and each load would wait for its stores to
    // retire (no store forwarding).
    const std::int32_t* col_sums = offset != 0 ? w.col_sums.data() + n0 : nullptr;
    for (std::size_t r = 0; r < mr; ++r) {
        const std::size_t m = m0 + r;
        dequantize_row(isa, raw + r * qpanel, col_sums, offset, x.scales[m], w.scales.data() + n0,
                       ep.bias ? ep.bias + n0 : nullptr, ep.act,
                       ep.multiplier ? ep.multiplier + m * ep.ld_multiplier + n0 : nullptr,
                       ep.residual ? ep.residual + m * ep.ld_residual + n0 : nullptr, y + m * ldy + n0, cols);
    }
}

// Portable epilogue for per-group weights: per-group partial sums are accumulated in float
// in a per-thread [12][32] tile and finished after the last group.
inline void qepilogue_generic(const std::int32_t* raw, std::size_t m0, std::size_t mr, std::size_t p, std::size_t g,
                              const QuantizedActivations& x, const QuantizedWeight& w, std::int32_t offset, float* y,
                              std::size_t ldy, const Epilogue& ep) {
    thread_local float acc[qmr * qpanel];
    const std::size_t groups = w.groups(), n0 = p * qpanel, cols = std::min(qpanel, w.n - n0);
    for (std::size_t r = 0; r < mr; ++r)
        for (std::size_t j = 0; j < cols; ++j) {
            const std::size_t idx = (n0 + j) * groups + g;
            const float v = float(raw[r * qpanel + j] - offset * w.col_sums[idx]) * w.scales[idx];
            acc[r * qpanel + j] = g == 0 ? v : acc[r * qpanel + j] + v;
        }
    if (g + 1 < groups) return;
    for (std::size_t r = 0; r < mr; ++r) {
        const std::size_t m = m0 + r;
        float* t = acc + r * qpanel;
        const float sa = x.scales[m];
        for (std::size_t j = 0; j < cols; ++j) t[j] = t[j] * sa + (ep.bias ? ep.bias[n0 + j] : 0.0f);
        activate(ep.act, t, cols);
        if (ep.multiplier) multiply_by(t, ep.multiplier + m * ep.ld_multiplier + n0, cols);
        float* yr = y + m * ldy + n0;
        if (ep.residual) {  // read before writing: the residual may be y itself
            const float* res = ep.residual + m * ep.ld_residual + n0;
            for (std::size_t j = 0; j < cols; ++j) yr[j] = t[j] + res[j];
        } else {
            std::memcpy(yr, t, cols * sizeof(float));
        }
    }
}

#if DOCVLM_X86_64
// Per-channel weights on the AVX512-VNNI path, over the whole of K at once (see qmax_k). Row
// blocks hold `qblock_bytes` of activations, or at least `qmin_block_rows` rows up to
// `qmax_block_bytes` when K is long (each group of panels then serves more tiles); each 12-row
// tile (≤ 12 · K bytes, in L1) runs over a group of panels whose weights fill about
// `qgroup_bytes` of L2 before the next tile (parallel_grouped_tiles). Measured on the Intel Xeon
// against the previous schedule (K cut into 1 KB chunks, each chunk of one panel in L1 while the
// block's tiles passed over it, the next chunk prefetched into L2), alternated in one process:
// 1.06-1.08x on prefill_up, 1.10-1.12x on vision_qkv / fc1 / fc2, 1.0-1.13x on the GEMV shapes.
inline constexpr std::size_t qblock_bytes = 256u << 10, qgroup_bytes = 640u << 10, qmax_group = 16;
inline constexpr std::size_t qmin_block_rows = 192, qmax_block_bytes = 1u << 20;

// That schedule's panels per group and bytes of activations per row block for x · wᵀ (every
// per-channel path but the GEMV's shares it).
struct QSchedule {
    std::size_t group, block_bytes;
};
inline QSchedule qschedule(const QuantizedActivations& x, const QuantizedWeight& w) {
    return {std::clamp<std::size_t>(qgroup_bytes / (w.k_padded * qpanel), 1, qmax_group),
            std::clamp(qmin_block_rows * x.row_bytes, qblock_bytes, qmax_block_bytes)};
}

// One 12-row tile (mr ≤ 12) against panel p, epilogue included; one target function so that the
// kernel and the epilogue inline into it (a whole panel's width is a constant: the masks fold).
DOCVLM_TARGET("avx512f,avx512bw,avx512vl,avx512vnni")
inline void qgemm_tile_avx512vnni(const QuantizedActivations& x, const QuantizedWeight& w, float* y, std::size_t ldy,
                                  const Epilogue& ep, std::size_t m0, std::size_t mr, std::size_t p) {
    const std::size_t k4 = w.k_padded / 4, n0 = p * qpanel;
    // A whole tile with no more than a bias to add (plain products, q/k/v projections): the
    // accumulators are converted in registers (2-4 % faster on prefill_up and vision_qkv).
    if (mr == qmr && n0 + qpanel <= w.n && !ep.residual && !ep.multiplier && ep.act == Activation::none) {
        const std::byte* a = x.data.data() + m0 * x.row_bytes;
        const std::int8_t* panel = w.data.data() + p * k4 * qpanel * 4;
        const std::int32_t* col_sums = w.col_sums.data() + n0;
        const float *ws = w.scales.data() + n0, *sa = x.scales.data() + m0;
        if (ep.bias) qkernel_avx512vnni_dequant<true>(a, panel, k4, col_sums, ws, sa, ep.bias + n0, y + m0 * ldy + n0, ldy);
        else qkernel_avx512vnni_dequant<false>(a, panel, k4, col_sums, ws, sa, nullptr, y + m0 * ldy + n0, ldy);
        return;
    }
    alignas(64) std::int32_t sums[qmr * qpanel];
    qkernel_avx512vnni_rows(x.data.data() + m0 * x.row_bytes, x.row_bytes, mr, w.data.data() + p * k4 * qpanel * 4, k4, sums,
                            nullptr, false, true, y + m0 * ldy + n0, ldy);
    if (n0 + qpanel <= w.n) qepilogue_avx512(sums, m0, mr, n0, qpanel, x, w, 128, y, ldy, ep);
    else qepilogue_avx512(sums, m0, mr, n0, w.n - n0, x, w, 128, y, ldy, ep);
}

inline void qgemm_avx512vnni(const QuantizedActivations& x, const QuantizedWeight& w, float* y, std::size_t ldy,
                             const Epilogue& ep, ThreadPool& pool) {
    check_qgemm(x, w);
    const auto [group, block_bytes] = qschedule(x, w);
    parallel_grouped_tiles(x.m, x.row_bytes, block_bytes, qmr, w.panels(), group, pool,
                           [&](std::size_t m0, std::size_t mr, std::size_t p) { qgemm_tile_avx512vnni(x, w, y, ldy, ep, m0, mr, p); });
}

// ---- AMX (QPath::amx): tdpbusd on tiles ----
// A tile of 32 rows x one panel (32 columns) in four 16 x 16 int32 accumulator tiles (tmm0-3):
// per 64 values of K, two activation tiles (tmm4/5: 16 rows x 64 u8, the rows of A as they are)
// and two weight tiles (tmm6/7: 16 steps of 4 k x 16 columns, the panel's rows of 128 bytes read
// 64 at a time), four tdpbusd. The int32 sums are those of every other path; K beyond the last
// whole 64 is added by the AVX-512 VNNI kernel.
struct alignas(64) AmxTileConfig {
    std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
    std::uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};  // bytes per row of tmm0-7
    std::uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

// The process must have asked Linux for the tile registers first: cpu() (detect_cpu) does, and
// CpuFeatures::amx_int8 says it was granted; without it the first tile instruction faults.
DOCVLM_TARGET("amx-tile")
inline void amx_configure() {
    static const AmxTileConfig config;
    _tile_loadconfig(&config);
}
DOCVLM_TARGET("amx-tile")
inline void amx_release() { _tile_release(); }

// raw[32][32] = the sums of rows a[0..32) (stride lda) over k64 chunks of 64 values of K. After
// the tdpbusd of chunk c, between(c) runs: vector work placed there overlaps the tile unit's.
template <class Between>
DOCVLM_TARGET("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512vnni")
void qkernel_amx(const std::byte* a, std::size_t lda, const std::int8_t* w, std::size_t k64, std::int32_t* raw, Between&& between) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (std::size_t c = 0; c < k64; ++c, a += 64, w += 16 * 4 * qpanel) {
        _tile_loadd(4, a, lda);
        _tile_loadd(5, a + 16 * lda, lda);
        _tile_loadd(6, w, 4 * qpanel);
        _tile_loadd(7, w + 64, 4 * qpanel);
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        _tile_dpbusd(2, 5, 6);
        _tile_dpbusd(3, 5, 7);
        between(c);
    }
    constexpr std::size_t ld = qpanel * sizeof(std::int32_t);
    _tile_stored(0, raw, ld);
    _tile_stored(1, raw + 16, ld);
    _tile_stored(2, raw + 16 * qpanel, ld);
    _tile_stored(3, raw + 16 * qpanel + 16, ld);
}

// Adds the sums over K steps [from4, k4) (4 values each) to raw[rows][32], or writes them when
// from4 == 0: the AVX-512 VNNI kernel, 12 rows at a time, on u8 rows of stride lda. AMX's K past
// its last whole 64 and its rows past the last whole 32.
inline void qkernel_vnni_steps(const std::byte* a, std::size_t lda, std::size_t rows, const std::int8_t* panel, std::size_t from4,
                               std::size_t k4, std::int32_t* raw) {
    if (from4 >= k4) return;
    for (std::size_t r = 0; r < rows; r += qmr) {
        std::int32_t* out = raw + r * qpanel;
        qkernel_avx512vnni_rows(a + r * lda + 4 * from4, lda, std::min(qmr, rows - r), panel + from4 * 4 * qpanel, k4 - from4, out,
                                from4 > 0 ? out : nullptr);
    }
}

// raw[rows][32] = u8 rows a (stride lda) · a packed panel of k4 steps (64-byte aligned, as packed
// weights are): with the tiles configured, the whole 64s of K on AMX when rows == 32, the rest on
// AVX-512 VNNI.
inline void qproduct_amx(const std::byte* a, std::size_t lda, std::size_t rows, const std::int8_t* panel, std::size_t k4,
                         std::int32_t* raw) {
    const std::size_t k64 = rows == amx_tile_rows ? k4 / 16 : 0;
    if (k64 > 0) qkernel_amx(a, lda, panel, k64, raw, [](std::size_t) {});
    qkernel_vnni_steps(a, lda, rows, panel, 16 * k64, k4, raw);
}

// One thread's tiles in an item of work. The epilogue of a 32-row tile is deferred to the next
// tile, a few rows after each of its K chunks, so that the vector unit finishes one tile while
// the tile unit computes the next. Run right after the loop, the epilogue waited for the tile
// stores while the tile unit sat idle (Sapphire Rapids, 2 threads, bench qgemm/*, TOP/s before ->
// after: prefill_up 4.0 -> 4.7, vision_qkv 3.1 -> 4.3-4.8, vision_fc1 2.9 -> 4.0-4.3, vision_fc2
// 4.4 -> 4.3-4.8). Two buffers of sums: the tile computing and the tile being finished.
struct AmxTileRun {
    alignas(64) std::int32_t raw[2][amx_tile_rows * qpanel];
    int next = 0;                     // the buffer the next tile fills
    std::size_t m0 = 0, p = 0;        // the pending tile
    std::size_t done = amx_tile_rows;  // its rows finished (all: none pending)

    static AmxTileRun& of_this_thread() {
        thread_local AmxTileRun run;
        return run;
    }
    // Finishes pending rows up to `end` through sink(m0, rows, p, raw).
    template <class Sink>
    void finish(std::size_t end, Sink& sink) {
        if (end <= done) return;
        sink(m0 + done, end - done, p, raw[next ^ 1] + done * qpanel);
        done = end;
    }
};

// The AVX-512 path's schedule (qschedule) with 32-row tiles: sink(m0, mr, p, raw) gets the int32
// sums raw[mr][32] of rows m0.. against panel p (a whole tile, or the rows of one in turn). Each
// thread configures the tiles before an item of work that has a whole tile and releases them
// after. Rows past the last whole 32 run the AVX-512 VNNI kernel on the same row layout. The sink
// runs while the next tile's accumulators live in tmm0-3: it must not use AMX.
template <class Sink>
void amx_tiles(const QuantizedActivations& x, const QuantizedWeight& w, ThreadPool& pool, Sink&& sink) {
    check_qgemm(x, w);
    constexpr std::size_t mt = amx_tile_rows;
    const std::size_t k4 = w.k_padded / 4, k64 = w.k_padded / 64;
    const auto [group, block_bytes] = qschedule(x, w);
    parallel_grouped_tiles(
        x.m, x.row_bytes, block_bytes, mt, w.panels(), group, pool,
        [&](std::size_t m0, std::size_t mr, std::size_t p) {
            AmxTileRun& run = AmxTileRun::of_this_thread();
            const std::byte* a = x.data.data() + m0 * x.row_bytes;
            const std::int8_t* panel = w.data.data() + p * k4 * qpanel * 4;
            std::int32_t* raw = run.raw[run.next];
            if (mr < mt || k64 == 0) {
                run.finish(mt, sink);
                qkernel_vnni_steps(a, x.row_bytes, mr, panel, 0, k4, raw);
                return sink(m0, mr, p, raw);
            }
            const std::size_t per_chunk = (mt + k64 - 1) / k64;
            qkernel_amx(a, x.row_bytes, panel, k64, raw, [&](std::size_t c) { run.finish(std::min(mt, (c + 1) * per_chunk), sink); });
            qkernel_vnni_steps(a, x.row_bytes, mt, panel, 16 * k64, k4, raw);
            run.m0 = m0, run.p = p, run.done = 0, run.next ^= 1;
        },
        [](std::size_t m_begin, std::size_t m_end) {
            AmxTileRun::of_this_thread().done = mt;  // nothing pending from an item that did not end
            if (m_end - m_begin >= mt) amx_configure();
        },
        [&](std::size_t m_begin, std::size_t m_end) {
            AmxTileRun::of_this_thread().finish(mt, sink);
            if (m_end - m_begin >= mt) amx_release();
        });
}

// y[mr][32] = float(raw − 128·Σw) · (sa · sw) (+ bias): the epilogue of whole panels with no
// more than a bias to add (plain products, q/k/v projections), 2-7 % faster on AMX than
// qepilogue_avx512's masked, general one (a harness on the four bench shapes).
template <bool Bias>
DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
inline void qepilogue_panel_avx512(const std::int32_t* raw, std::size_t mr, const std::int32_t* col_sums, const float* w_scales,
                                   const float* a_scales, const float* bias, float* y, std::size_t ldy) {
    const __m512i off[2] = {_mm512_slli_epi32(_mm512_loadu_si512(col_sums), 7), _mm512_slli_epi32(_mm512_loadu_si512(col_sums + 16), 7)};
    const __m512 ws[2] = {_mm512_loadu_ps(w_scales), _mm512_loadu_ps(w_scales + 16)};
    __m512 b[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    if constexpr (Bias) b[0] = _mm512_loadu_ps(bias), b[1] = _mm512_loadu_ps(bias + 16);
    for (std::size_t r = 0; r < mr; ++r) {
        const __m512 sa = _mm512_set1_ps(a_scales[r]);
        for (int v = 0; v < 2; ++v) {
            const __m512i acc = _mm512_sub_epi32(_mm512_loadu_si512(raw + r * qpanel + 16 * v), off[v]);
            _mm512_storeu_ps(y + r * ldy + 16 * v, _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(sa, ws[v]), b[v]));  // b: the bias or 0
        }
    }
}

inline void qgemm_amx(const QuantizedActivations& x, const QuantizedWeight& w, float* y, std::size_t ldy, const Epilogue& ep,
                      ThreadPool& pool) {
    const bool plain = !ep.residual && !ep.multiplier && ep.act == Activation::none;
    amx_tiles(x, w, pool, [&](std::size_t m0, std::size_t mr, std::size_t p, const std::int32_t* raw) {
        const std::size_t n0 = p * qpanel;
        if (!plain || n0 + qpanel > w.n) return qepilogue_avx512(raw, m0, mr, n0, std::min(qpanel, w.n - n0), x, w, 128, y, ldy, ep);
        const std::int32_t* col_sums = w.col_sums.data() + n0;
        const float *ws = w.scales.data() + n0, *sa = x.scales.data() + m0;
        if (ep.bias) qepilogue_panel_avx512<true>(raw, mr, col_sums, ws, sa, ep.bias + n0, y + m0 * ldy + n0, ldy);
        else qepilogue_panel_avx512<false>(raw, mr, col_sums, ws, sa, nullptr, y + m0 * ldy + n0, ldy);
    });
}

// The AVX-VNNI kernel for mr <= 6 rows, prefetching the epilogue's output lines (pf, ldpf) for
// writing.
inline void qkernel_avxvnni_rows(const std::byte* a, std::size_t lda, std::size_t mr, const std::int8_t* w, std::size_t k4,
                                 std::int32_t* out, const float* pf, std::size_t ldpf) {
    switch (mr) {
        case 1: return qkernel_avxvnni<1>(a, lda, w, k4, out, pf, ldpf);
        case 2: return qkernel_avxvnni<2>(a, lda, w, k4, out, pf, ldpf);
        case 3: return qkernel_avxvnni<3>(a, lda, w, k4, out, pf, ldpf);
        case 4: return qkernel_avxvnni<4>(a, lda, w, k4, out, pf, ldpf);
        case 5: return qkernel_avxvnni<5>(a, lda, w, k4, out, pf, ldpf);
        default: return qkernel_avxvnni<6>(a, lda, w, k4, out, pf, ldpf);
    }
}

// Per-channel weights on the 256-bit u8 paths (avxvnni, avx2u8): the AVX-512 path's schedule
// with tile_rows(path) rows per tile; on AVX-VNNI the epilogue's output lines are prefetched for writing by the kernel.
inline void qgemm_ymm_u8(const QuantizedActivations& x, const QuantizedWeight& w, float* y, std::size_t ldy,
                         const Epilogue& ep, ThreadPool& pool) {
    check_qgemm(x, w);
    const std::size_t k4 = w.k_padded / 4, mr_max = tile_rows(x.path);
    const auto [group, block_bytes] = qschedule(x, w);
    parallel_grouped_tiles(x.m, x.row_bytes, block_bytes, mr_max, w.panels(), group, pool, [&](std::size_t m0, std::size_t mr, std::size_t p) {
        const std::byte* a = x.data.data() + m0 * x.row_bytes;
        const std::int8_t* panel = w.data.data() + p * k4 * qpanel * 4;
        const std::size_t n0 = p * qpanel;
        // avx2u8: a whole tile with no more than a bias to add is finished in registers.
        if (x.path == QPath::avx2u8 && mr == avx2u8_tile_rows && n0 + qpanel <= w.n && !ep.residual && !ep.multiplier &&
            ep.act == Activation::none) {
            const std::int32_t* col_sums = w.col_sums.data() + n0;
            const float *ws = w.scales.data() + n0, *sa = x.scales.data() + m0;
            float* yt = y + m0 * ldy + n0;
            constexpr int rows = avx2u8_tile_rows;
            if (ep.bias) qkernel_avx2u8_dequant<rows, true>(a, x.row_bytes, panel, k4, col_sums, ws, sa, ep.bias + n0, yt, ldy);
            else qkernel_avx2u8_dequant<rows, false>(a, x.row_bytes, panel, k4, col_sums, ws, sa, nullptr, yt, ldy);
            return;
        }
        alignas(64) std::int32_t raw[qmr * qpanel];
        if (x.path == QPath::avxvnni) qkernel_avxvnni_rows(a, x.row_bytes, mr, panel, k4, raw, y + m0 * ldy + n0, ldy);
        else qkernel(x.path, a, x.row_bytes, mr, panel, k4, raw);
        qepilogue_rows(raw, m0, mr, n0, std::min(qpanel, w.n - n0), x, w, 128, y, ldy, ep);
    });
}
#endif

}  // namespace detail

inline void qgemm(const QuantizedActivations& x, const QuantizedWeight& w, float* y, std::size_t ldy, const Epilogue& ep,
                  ThreadPool& pool) {
    const std::int32_t offset = detail::uses_u8_offset(x.path) ? 128 : 0;
#if DOCVLM_X86_64
    if (w.group == 0 && x.path == QPath::avx512vnni) return detail::qgemm_avx512vnni(x, w, y, ldy, ep, pool);
    if (w.group == 0 && x.path == QPath::amx) return detail::qgemm_amx(x, w, y, ldy, ep, pool);
    if (w.group == 0 && (x.path == QPath::avxvnni || x.path == QPath::avx2u8)) return detail::qgemm_ymm_u8(x, w, y, ldy, ep, pool);
    if (w.group == 0 && cpu().avx512()) {
        detail::qgemm_tiles(x, w, pool, [&](std::size_t m0, std::size_t mr, std::size_t p, std::size_t, const std::int32_t* raw) {
            detail::qepilogue_avx512(raw, m0, mr, p * qpanel, std::min(qpanel, w.n - p * qpanel), x, w, offset, y, ldy, ep);
        });
        return;
    }
#endif
    if (w.group == 0) {
        detail::qgemm_tiles(x, w, pool, [&](std::size_t m0, std::size_t mr, std::size_t p, std::size_t, const std::int32_t* raw) {
            detail::qepilogue_rows(raw, m0, mr, p * qpanel, std::min(qpanel, w.n - p * qpanel), x, w, offset, y, ldy, ep);
        });
        return;
    }
    detail::qgemm_tiles(x, w, pool, [&](std::size_t m0, std::size_t mr, std::size_t p, std::size_t g, const std::int32_t* raw) {
        detail::qepilogue_generic(raw, m0, mr, p, g, x, w, offset, y, ldy, ep);
    });
}

inline void qgemm(const float* x, std::size_t m, std::size_t ldx, const QuantizedWeight& w, float* y, std::size_t ldy,
                  const Epilogue& ep, ThreadPool& pool) {
    QuantizedActivations& acts = detail::qscratch().acts;
    quantize_activations(x, m, w.k, ldx, acts, activation_qpath(w));
    qgemm(acts, w, y, ldy, ep, pool);
}

inline void qgemm_s32(const QuantizedActivations& x, const QuantizedWeight& w, std::int32_t* c, std::size_t ldc, ThreadPool& pool) {
    if (w.group != 0) docvlm::detail::fail("qgemm_s32: per-group weights have no single int32 accumulator");
    const std::int32_t offset = detail::uses_u8_offset(x.path) ? 128 : 0;
    auto store = [&](std::size_t m0, std::size_t mr, std::size_t p, const std::int32_t* raw) {
        const std::size_t n0 = p * qpanel, cols = std::min(qpanel, w.n - n0);
        for (std::size_t r = 0; r < mr; ++r)
            for (std::size_t j = 0; j < cols; ++j) c[(m0 + r) * ldc + n0 + j] = raw[r * qpanel + j] - offset * w.col_sums[n0 + j];
    };
#if DOCVLM_X86_64
    if (x.path == QPath::amx) return detail::amx_tiles(x, w, pool, store);
#endif
    detail::qgemm_tiles(x, w, pool, [&](std::size_t m0, std::size_t mr, std::size_t p, std::size_t, const std::int32_t* raw) {
        store(m0, mr, p, raw);
    });
}

inline void qgemm_reference_s32(const std::int8_t* a, std::size_t lda, const std::int8_t* w, std::size_t ldw, std::size_t m,
                                std::size_t n, std::size_t k, std::int32_t* c, std::size_t ldc) {
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            std::int32_t acc = 0;
            for (std::size_t t = 0; t < k; ++t) acc += std::int32_t(a[i * lda + t]) * std::int32_t(w[j * ldw + t]);
            c[i * ldc + j] = acc;
        }
}

}  // namespace kernels
DOCVLM_SIMD_WARNINGS_ON
DOCVLM_NAMESPACE_END
