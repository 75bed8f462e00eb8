// docvlm/kernels/gemm.hpp — float and bfloat16 matrix multiplication: y = act(x · Wᵀ + bias) + residual.
//
// Weights W [N, K] (torch Linear layout) are packed once into 32-column panels:
//   f32:  data[panel][k][32]                 (AVX-512: 12 rows × 32 columns of FMAs per tile;
//                                             AVX2 and NEON: 6 rows × 16 columns, two passes)
//   bf16: data[panel][k / 2][32][2]          (AVX512-BF16 vdpbf16ps: pairs of k per lane)
// x stays float in memory; for bf16 it is rounded to bf16 (nearest even) into a per-thread buffer.
// Accumulation is in float on every path. sgemm_reference is the plain scalar oracle.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/cpu.hpp>
#include <docvlm/core/dtype.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/kernels/activations.hpp>
#include <docvlm/kernels/qgemm.hpp>  // Epilogue
#include <docvlm/kernels/tiling.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if DOCVLM_X86_64
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

DOCVLM_NAMESPACE_BEGIN
DOCVLM_SIMD_WARNINGS_OFF
namespace kernels {

/// The float / bf16 code paths.
enum class FPath { generic, avx2, avx512, neon };
FPath best_fpath(const CpuFeatures& f = cpu());
bool fpath_supported(FPath p, const CpuFeatures& f = detect_cpu());

/// Output columns per packed panel.
inline constexpr std::size_t fpanel = 32;

/// Float weights W [n, k] packed as data[panel][k][32] (zero-padded columns).
struct PackedF32 {
    std::size_t n = 0, k = 0;
    AlignedBuffer<float> data;
    std::size_t panels() const { return (n + fpanel - 1) / fpanel; }
};
/// bf16 weights W [n, k] packed as data[panel][k_padded / 2][32][2], k_padded = k rounded up to even.
struct PackedBF16 {
    std::size_t n = 0, k = 0, k_padded = 0;
    AlignedBuffer<bf16> data;
    std::size_t panels() const { return (n + fpanel - 1) / fpanel; }
};

PackedF32 pack_f32(const float* w, std::size_t n, std::size_t k);
/// Rounds float weights to bf16 (nearest even) and packs them.
PackedBF16 pack_bf16(const float* w, std::size_t n, std::size_t k);
/// Packs weights that are bf16 already (e.g. straight from a bf16 checkpoint).
PackedBF16 pack_bf16(const bf16* w, std::size_t n, std::size_t k);

/// y [m, n] (stride ldy) = act(x [m, k] (stride ldx) · Wᵀ + bias) + residual, in float.
void sgemm(const float* x, std::size_t m, std::size_t ldx, const PackedF32& w, float* y, std::size_t ldy,
           const Epilogue& ep = {}, ThreadPool& pool = thread_pool(), FPath path = best_fpath());
/// Same with bf16 weights; x is rounded to bf16; products accumulate in float. Uses AVX512-BF16
/// when present, else converts to float (same values, same result up to summation order).
void bgemm(const float* x, std::size_t m, std::size_t ldx, const PackedBF16& w, float* y, std::size_t ldy,
           const Epilogue& ep = {}, ThreadPool& pool = thread_pool());
/// Scalar reference: y [m, n] = x · wᵀ with w [n, k] row-major, accumulated in double.
void sgemm_reference(const float* x, std::size_t m, std::size_t ldx, const float* w, std::size_t n, std::size_t k, float* y,
                     std::size_t ldy);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline bool fpath_supported(FPath p, const CpuFeatures& f) {
    switch (p) {
        case FPath::generic: return true;
        case FPath::avx2: return f.avx2 && f.fma;
        case FPath::avx512: return f.avx512();
        case FPath::neon: return f.neon;
    }
    return false;
}
inline FPath best_fpath(const CpuFeatures& f) {
    for (FPath p : {FPath::avx512, FPath::avx2, FPath::neon})
        if (fpath_supported(p, f)) return p;
    return FPath::generic;
}

inline PackedF32 pack_f32(const float* w, std::size_t n, std::size_t k) {
    if (n == 0 || k == 0) docvlm::detail::fail("pack_f32: empty matrix ", n, "x", k);
    PackedF32 p;
    p.n = n;
    p.k = k;
    p.data = AlignedBuffer<float>(p.panels() * fpanel * k);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < k; ++c) p.data[(r / fpanel * k + c) * fpanel + r % fpanel] = w[r * k + c];
    return p;
}

namespace detail {
template <class Get>
PackedBF16 pack_bf16_from(std::size_t n, std::size_t k, Get&& get) {
    if (n == 0 || k == 0) docvlm::detail::fail("pack_bf16: empty matrix ", n, "x", k);
    PackedBF16 p;
    p.n = n;
    p.k = k;
    p.k_padded = (k + 1) / 2 * 2;
    p.data = AlignedBuffer<bf16>(p.panels() * fpanel * p.k_padded);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < k; ++c)
            p.data[((r / fpanel * (p.k_padded / 2) + c / 2) * fpanel + r % fpanel) * 2 + c % 2] = get(r * k + c);
    return p;
}
}  // namespace detail

inline PackedBF16 pack_bf16(const float* w, std::size_t n, std::size_t k) {
    return detail::pack_bf16_from(n, k, [&](std::size_t i) { return f32_to_bf16(w[i]); });
}
inline PackedBF16 pack_bf16(const bf16* w, std::size_t n, std::size_t k) {
    return detail::pack_bf16_from(n, k, [&](std::size_t i) { return w[i]; });
}

namespace detail {

inline constexpr std::size_t fmr = 12;  // rows per micro-tile

// out[r * ldo + 0..32) (+)= Σ_k a[r][k] · panel[k][0..32); with `accumulate` the sums start from out.
inline void fkernel_generic(const float* a, std::size_t lda, std::size_t mr, const float* w, std::size_t k, float* out,
                            std::size_t ldo, bool accumulate) {
    for (std::size_t r = 0; r < mr; ++r) {
        float acc[fpanel] = {};
        if (accumulate) std::memcpy(acc, out + r * ldo, sizeof acc);
        for (std::size_t t = 0; t < k; ++t) {
            const float av = a[r * lda + t];
            for (std::size_t j = 0; j < fpanel; ++j) acc[j] += av * w[t * fpanel + j];
        }
        std::memcpy(out + r * ldo, acc, sizeof acc);
    }
}

#if DOCVLM_X86_64
// The accumulators of an MR x (16 NV) float tile: from out (accumulate) or zero, and back to out.
template <int MR, int NV>
DOCVLM_TARGET("avx512f") DOCVLM_ALWAYS_INLINE void load_tile512(__m512 (&c)[MR][NV], const float* out, std::size_t ldo, bool accumulate) {
#pragma GCC unroll 24
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) c[r][v] = accumulate ? _mm512_loadu_ps(out + r * ldo + 16 * v) : _mm512_setzero_ps();
}
template <int MR, int NV>
DOCVLM_TARGET("avx512f") DOCVLM_ALWAYS_INLINE void store_tile512(const __m512 (&c)[MR][NV], float* out, std::size_t ldo) {
#pragma GCC unroll 24
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) _mm512_storeu_ps(out + r * ldo + 16 * v, c[r][v]);
}

// NV = 2: all 32 columns of the panel; NV = 1: only its first 16.
// Tiled: a holds the rows packed by pack_rows_tiled (row r of step t at a[12 t + r]; lda unused),
// one sequential stream; else row r at a + r·lda.
template <int MR, int NV = 2, bool Tiled = false>
DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
// pf: where the tile's results will go (null: nowhere yet); its lines are prefetched for
// writing during the first steps, as in qkernel_avx512vnni.
void fkernel_avx512(const float* a, std::size_t lda, const float* w, std::size_t k, float* out, std::size_t ldo, bool accumulate,
                    const float* pf = nullptr, std::size_t ldpf = 0) {
    __m512 c[MR][NV];
    load_tile512(c, out, ldo, accumulate);
    for (std::size_t t = 0; t < k; ++t) {
        if (pf && t % 4 == 0 && t < 8 * MR) asm volatile("prefetchw %0" : : "m"(pf[t / 8 * ldpf + t % 8 * 4]));
        __m512 wv[NV];
        for (int v = 0; v < NV; ++v) wv[v] = _mm512_load_ps(w + t * 32 + 16 * v);
#pragma GCC unroll 12
        for (int r = 0; r < MR; ++r) {
            const __m512 b = _mm512_set1_ps(Tiled ? a[t * fmr + r] : a[r * lda + t]);
            for (int v = 0; v < NV; ++v) c[r][v] = _mm512_fmadd_ps(b, wv[v], c[r][v]);
        }
    }
    store_tile512(c, out, ldo);
}
template <int MR>
DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
void fkernel_tiled_avx512(const float* a, const float* w, std::size_t k, float* out, bool accumulate, const float* pf,
                          std::size_t ldpf) {
    fkernel_avx512<MR, 2, true>(a, 0, w, k, out, fpanel, accumulate, pf, ldpf);
}
template <int MR>
DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
void fkernel16_avx512(const float* a, std::size_t lda, const float* w, std::size_t k, float* out, std::size_t ldo, bool accumulate) {
    fkernel_avx512<MR, 1>(a, lda, w, k, out, ldo, accumulate);
}

// One row against NP neighbouring panels at once (decoding): y[32 q + j] = Σ_t x[t] · panel q[t][j]
// for q < NP, panels `stride` floats apart. A single panel gives only two FMA chains and waits on
// the FMA latency; NP = 4 keeps eight in flight (decode_qkv/up/down 1.06-1.23x in a harness
// alternating old and new; the weights then come from L3 at ~160 GB/s: NP = 2, 6 or 8 and
// software prefetching 8-32 steps ahead, 25 % slower, did no better). Every output still sums
// its K steps in order, one FMA each, exactly as fkernel_avx512 does for a row of a taller tile:
// the results are identical.
template <int NP>
DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
void fgemv_avx512(const float* x, const float* w, std::size_t stride, std::size_t k, float* out) {
    __m512 c[NP][2];
    for (int q = 0; q < NP; ++q) c[q][0] = c[q][1] = _mm512_setzero_ps();
    for (std::size_t t = 0; t < k; ++t) {
        const __m512 b = _mm512_set1_ps(x[t]);
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q) {
            const float* wq = w + q * stride + t * fpanel;
            c[q][0] = _mm512_fmadd_ps(b, _mm512_load_ps(wq), c[q][0]);
            c[q][1] = _mm512_fmadd_ps(b, _mm512_load_ps(wq + 16), c[q][1]);
        }
    }
    for (int q = 0; q < NP; ++q) {
        _mm512_store_ps(out + q * fpanel, c[q][0]);
        _mm512_store_ps(out + q * fpanel + 16, c[q][1]);
    }
}
inline constexpr std::size_t fgemv_panels = 4;

// AVX2: two passes of 16 columns, at most 6 rows each time (16 registers).
template <int MR>
DOCVLM_TARGET("avx2,fma")
void fkernel_avx2_rows(const float* a, std::size_t lda, const float* w, std::size_t k, float* out, std::size_t ldo, bool accumulate) {
    for (int pass = 0; pass < 2; ++pass) {
        __m256 c[MR][2];
#pragma GCC unroll 12
        for (int r = 0; r < MR; ++r) {
            c[r][0] = accumulate ? _mm256_loadu_ps(out + r * ldo + pass * 16) : _mm256_setzero_ps();
            c[r][1] = accumulate ? _mm256_loadu_ps(out + r * ldo + pass * 16 + 8) : _mm256_setzero_ps();
        }
        for (std::size_t t = 0; t < k; ++t) {
            const __m256 w0 = _mm256_load_ps(w + t * 32 + pass * 16), w1 = _mm256_load_ps(w + t * 32 + pass * 16 + 8);
#pragma GCC unroll 6
            for (int r = 0; r < MR; ++r) {
                const __m256 b = _mm256_broadcast_ss(a + r * lda + t);
                c[r][0] = _mm256_fmadd_ps(b, w0, c[r][0]);
                c[r][1] = _mm256_fmadd_ps(b, w1, c[r][1]);
            }
        }
#pragma GCC unroll 6
        for (int r = 0; r < MR; ++r) {
            _mm256_storeu_ps(out + r * ldo + pass * 16, c[r][0]);
            _mm256_storeu_ps(out + r * ldo + pass * 16 + 8, c[r][1]);
        }
    }
}

#endif

#if defined(__aarch64__)
// NEON (the AArch64 baseline): two passes of 16 columns, at most 6 rows each time (24
// accumulators, 4 weight registers and the broadcast value: 29 of the 32). Each output sums its
// K steps in order, one FMA each, for any number of rows: a row gives the same result alone or
// inside a taller tile.
template <int MR>
void fkernel_neon_rows(const float* a, std::size_t lda, const float* w, std::size_t k, float* out, std::size_t ldo, bool accumulate) {
    for (int pass = 0; pass < 2; ++pass) {
        float32x4_t c[MR][4];
        for (int r = 0; r < MR; ++r)
            for (int v = 0; v < 4; ++v) c[r][v] = accumulate ? vld1q_f32(out + r * ldo + pass * 16 + 4 * v) : vdupq_n_f32(0.0f);
        for (std::size_t t = 0; t < k; ++t) {
            float32x4_t wv[4];
            for (int v = 0; v < 4; ++v) wv[v] = vld1q_f32(w + t * fpanel + pass * 16 + 4 * v);
            for (int r = 0; r < MR; ++r) {
                const float32x4_t b = vld1q_dup_f32(a + r * lda + t);
                for (int v = 0; v < 4; ++v) c[r][v] = vfmaq_f32(c[r][v], b, wv[v]);
            }
        }
        for (int r = 0; r < MR; ++r)
            for (int v = 0; v < 4; ++v) vst1q_f32(out + r * ldo + pass * 16 + 4 * v, c[r][v]);
    }
}
#endif

#if DOCVLM_X86_64
// bf16 pairs: a holds bf16 rows (k_padded each), w holds [k/2][32][2]. NV = 2: all 32 columns of
// the panel; NV = 1: only its first 16 (a head_dim of 80 = 32 + 32 + 16 wastes nothing).
template <int MR, int NV = 2>
DOCVLM_TARGET("avx512f,avx512bw,avx512vl,avx512bf16")
void bkernel_avx512bf16(const bf16* a, std::size_t lda, const bf16* w, std::size_t k2, float* out, std::size_t ldo, bool accumulate) {
    __m512 c[MR][NV];
    load_tile512(c, out, ldo, accumulate);
    for (std::size_t t = 0; t < k2; ++t) {
        __m512bh wv[NV];
        for (int v = 0; v < NV; ++v) wv[v] = (__m512bh)_mm512_load_si512(w + t * 64 + 32 * v);
#pragma GCC unroll 12
        for (int r = 0; r < MR; ++r) {
            std::int32_t pair;
            std::memcpy(&pair, a + r * lda + 2 * t, 4);
            const __m512bh b = (__m512bh)_mm512_set1_epi32(pair);
            for (int v = 0; v < NV; ++v) c[r][v] = _mm512_dpbf16_ps(c[r][v], b, wv[v]);
        }
    }
    store_tile512(c, out, ldo);
}
template <int MR>
DOCVLM_TARGET("avx512f,avx512bw,avx512vl,avx512bf16")
void bkernel16_avx512bf16(const bf16* a, std::size_t lda, const bf16* w, std::size_t k2, float* out, std::size_t ldo, bool accumulate) {
    bkernel_avx512bf16<MR, 1>(a, lda, w, k2, out, ldo, accumulate);
}

#define DOCVLM_FKERNEL_DISPATCH12(fn, mr, ...)                                                                 \
    switch (mr) {                                                                                          \
        case 1: fn<1>(__VA_ARGS__); break;  case 2: fn<2>(__VA_ARGS__); break;  case 3: fn<3>(__VA_ARGS__); break;   \
        case 4: fn<4>(__VA_ARGS__); break;  case 5: fn<5>(__VA_ARGS__); break;  case 6: fn<6>(__VA_ARGS__); break;   \
        case 7: fn<7>(__VA_ARGS__); break;  case 8: fn<8>(__VA_ARGS__); break;  case 9: fn<9>(__VA_ARGS__); break;   \
        case 10: fn<10>(__VA_ARGS__); break; case 11: fn<11>(__VA_ARGS__); break; default: fn<12>(__VA_ARGS__); break; \
    }
#endif

#if DOCVLM_X86_64
// out[r * ldo + 0..32) (+)= Σ_t a[r][2t..2t+1] · w[t][0..32][0..1] on bf16 pairs (AVX512-BF16 only).
inline void bkernel(const bf16* a, std::size_t lda, std::size_t mr, const bf16* w, std::size_t k2, float* out,
                    std::size_t ldo = fpanel, bool accumulate = false) {
    DOCVLM_FKERNEL_DISPATCH12(bkernel_avx512bf16, mr, a, lda, w, k2, out, ldo, accumulate)
}
// The same for the first 16 columns of the panel only.
inline void bkernel16(const bf16* a, std::size_t lda, std::size_t mr, const bf16* w, std::size_t k2, float* out,
                      std::size_t ldo, bool accumulate) {
    DOCVLM_FKERNEL_DISPATCH12(bkernel16_avx512bf16, mr, a, lda, w, k2, out, ldo, accumulate)
}
#endif

// Runs kernel.template operator()<R>(a + r0·lda, out + r0·ldo) over mr rows, 6 rows (R ≤ 6) at a time.
template <class Kernel>
void fkernel_six_rows(std::size_t mr, const float* a, std::size_t lda, float* out, std::size_t ldo, Kernel&& kernel) {
    for (std::size_t r0 = 0; r0 < mr; r0 += 6) {
        const float* ar = a + r0 * lda;
        float* o = out + r0 * ldo;
        switch (std::min<std::size_t>(6, mr - r0)) {
            case 1: kernel.template operator()<1>(ar, o); break;
            case 2: kernel.template operator()<2>(ar, o); break;
            case 3: kernel.template operator()<3>(ar, o); break;
            case 4: kernel.template operator()<4>(ar, o); break;
            case 5: kernel.template operator()<5>(ar, o); break;
            default: kernel.template operator()<6>(ar, o); break;
        }
    }
}

// out[r * ldo + 0..32) (+)= Σ_k a[r][k] · panel[k][0..32) on the given path.
// pf, ldpf: the tile's final destination, prefetched for writing on the AVX-512 path (or null).
inline void fkernel(FPath path, const float* a, std::size_t lda, std::size_t mr, const float* w, std::size_t k, float* out,
                    std::size_t ldo = fpanel, bool accumulate = false, const float* pf = nullptr, std::size_t ldpf = 0) {
    (void)path, (void)pf, (void)ldpf;  // pf: AVX-512 only; path: where a SIMD kernel exists
#if DOCVLM_X86_64
    if (path == FPath::avx512) {
        DOCVLM_FKERNEL_DISPATCH12(fkernel_avx512, mr, a, lda, w, k, out, ldo, accumulate, pf, ldpf)
        return;
    }
    if (path == FPath::avx2) return fkernel_six_rows(mr, a, lda, out, ldo, [&]<int R>(const float* ar, float* o) {
        fkernel_avx2_rows<R>(ar, lda, w, k, o, ldo, accumulate);
    });
#elif defined(__aarch64__)
    if (path == FPath::neon) return fkernel_six_rows(mr, a, lda, out, ldo, [&]<int R>(const float* ar, float* o) {
        fkernel_neon_rows<R>(ar, lda, w, k, o, ldo, accumulate);
    });
#endif
    fkernel_generic(a, lda, mr, w, k, out, ldo, accumulate);
}

// The first 16 columns of the panel only (out[r * ldo + 0..16)); other paths compute all 32.
inline void fkernel16(FPath path, const float* a, std::size_t lda, std::size_t mr, const float* w, std::size_t k, float* out,
                      std::size_t ldo, bool accumulate) {
#if DOCVLM_X86_64
    if (path == FPath::avx512) {
        DOCVLM_FKERNEL_DISPATCH12(fkernel16_avx512, mr, a, lda, w, k, out, ldo, accumulate)
        return;
    }
#endif
    fkernel(path, a, lda, mr, w, k, out, ldo, accumulate);
}

#if DOCVLM_X86_64
DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
inline void store_tile_avx512(const float* tile, std::size_t m0, std::size_t mr, std::size_t n0, std::size_t cols, float* y,
                              std::size_t ldy, const Epilogue& ep) {
    for (std::size_t j = 0; j < cols; j += 16) {
        const __mmask16 m = __mmask16(docvlm::detail::tail_mask16(cols - j));
        const __m512 bias = ep.bias ? _mm512_maskz_loadu_ps(m, ep.bias + n0 + j) : _mm512_setzero_ps();
        for (std::size_t r = 0; r < mr; ++r) {
            __m512 v = _mm512_add_ps(_mm512_loadu_ps(tile + r * fpanel + j), bias);
            if (ep.act != Activation::none) v = activate512(ep.act, v);
            if (ep.multiplier) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, ep.multiplier + (m0 + r) * ep.ld_multiplier + n0 + j));
            if (ep.residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, ep.residual + (m0 + r) * ep.ld_residual + n0 + j));
            _mm512_mask_storeu_ps(y + (m0 + r) * ldy + n0 + j, m, v);
        }
    }
}
#endif

// Applies the epilogue to a [mr][32] tile of float sums and stores it (residual may alias y).
inline void store_tile(const float* tile, std::size_t m0, std::size_t mr, std::size_t n0, std::size_t cols, float* y,
                       std::size_t ldy, const Epilogue& ep) {
#if DOCVLM_X86_64
    if (cpu().avx512()) return store_tile_avx512(tile, m0, mr, n0, cols, y, ldy, ep);
#endif
    float t[fpanel];
    for (std::size_t r = 0; r < mr; ++r) {
        for (std::size_t j = 0; j < cols; ++j) t[j] = tile[r * fpanel + j] + (ep.bias ? ep.bias[n0 + j] : 0.0f);
        activate(ep.act, t, cols);
        if (ep.multiplier) multiply_by(t, ep.multiplier + (m0 + r) * ep.ld_multiplier + n0, cols);
        float* yr = y + (m0 + r) * ldy + n0;
        if (ep.residual) {
            const float* res = ep.residual + (m0 + r) * ep.ld_residual + n0;
            for (std::size_t j = 0; j < cols; ++j) yr[j] = t[j] + res[j];
        } else {
            std::memcpy(yr, t, cols * sizeof(float));
        }
    }
}

// Row blocks of x hold gemm_block_bytes; K is split in chunks of gemm_kc steps.
// Row blocks of fewer rows than gemm_min_block_rows (long rows) have K cut into slices
// instead (see parallel_chunked_tiles).
inline constexpr std::size_t gemm_block_bytes = 512u << 10, gemm_kc = 256, gemm_min_block_rows = 8 * fmr;

// Parallel loop over tiles (see parallel_tiles); `sums` is a per-call [12][32] scratch tile.
template <class Tile>
void gemm_tiles(std::size_t m, std::size_t row_bytes, std::size_t panels, ThreadPool& pool, Tile&& tile) {
    parallel_tiles(m, row_bytes, gemm_block_bytes, fmr, panels, pool, [&](std::size_t m0, std::size_t mr, std::size_t p) {
        alignas(64) float sums[fmr * fpanel];
        tile(m0, mr, p, sums);
    });
}

// The same with K split in chunks of `gemm_kc` steps (a 32 KB chunk of a panel in f32 or bf16
// pairs stays in L1; see parallel_chunked_tiles): tile(m0, mr, p, k0, kn, sums) accumulates
// steps [k0, k0 + kn) into sums (from zero when k0 == 0) and finishes the tile when k0 + kn == k.
// Each output sees the same sequence of FMAs as without chunks: the results are identical.
// panel_at(p, k0) is the address of step k0 of weight panel p, step_bytes the bytes per step:
// the next chunk's weights are prefetched into L2 while a chunk computes — except on AMD, where
// the hardware prefetchers did better without it (measured on Zen 4 only, f32, alternated in a
// harness: vision_fc2 201-202 GFLOP/s without, 193-198 with; vision_qkv 207-211 vs 203-207;
// prefill_up unchanged; benchmark binaries alternated, 12 repetitions each: vision_fc2 346-367 ms
// vs 351-377 ms; the bf16 shapes stayed within the noise of two alternated runs).
inline constexpr std::size_t gemm_chunked_rows = gemm_block_bytes / (gemm_kc * 4 + 4) / fmr * fmr + fmr;
template <class Tile, class PanelAt, class BeginBlock = NoHook>
void gemm_chunked_tiles(std::size_t m, std::size_t row_bytes, std::size_t panels, std::size_t k, ThreadPool& pool, Tile&& tile,
                        PanelAt&& panel_at, std::size_t step_bytes, BeginBlock&& begin_block = {}) {
    parallel_chunked_tiles<float, gemm_chunked_rows>(
        m, row_bytes, gemm_block_bytes, fmr, panels, k, gemm_kc, gemm_min_block_rows, pool, tile, begin_block,
        [&, ahead = !cpu().amd](std::size_t p, std::size_t k0, std::size_t kn, std::size_t i, std::size_t n) {
            if (ahead) prefetch_part_l2(panel_at(p, k0), kn * step_bytes, i, n);
        });
}

// Rows [0, rows) of x (stride ldx, k columns) packed for fkernel_tiled_avx512: tiles of fmr rows, each
// as [k][fmr] (row r of step t at dst[(tile · k + t) · fmr + r]); missing rows of the last tile
// are zero.
inline void pack_rows_tiled(const float* x, std::size_t ldx, std::size_t rows, std::size_t k, float* dst) {
    for (std::size_t r0 = 0; r0 < rows; r0 += fmr) {
        float* d = dst + r0 * k;
        const std::size_t n = std::min(fmr, rows - r0);
        for (std::size_t r = 0; r < fmr; ++r) {
            const float* src = x + (r0 + r) * ldx;
            if (r < n)
                for (std::size_t t = 0; t < k; ++t) d[t * fmr + r] = src[t];
            else
                for (std::size_t t = 0; t < k; ++t) d[t * fmr + r] = 0.0f;
        }
    }
}

#if DOCVLM_X86_64
// pack_rows_tiled with AVX-512: whole 12-row tiles 16 steps at a time by an in-register transpose
// (12 loads, 56 shuffles and 16 stores for 192 floats instead of one scalar load and store each:
// 4.4x faster for 96 x 5120 on AMD Zen 4), the rest as pack_rows_tiled does it. The same bytes.
DOCVLM_TARGET("avx512f")
inline void pack_rows_tiled_avx512(const float* x, std::size_t ldx, std::size_t rows, std::size_t k, float* dst) {
    const std::size_t full = rows / fmr * fmr, k16 = k / 16 * 16;
    for (std::size_t r0 = 0; r0 < full; r0 += fmr) {
        const float* src = x + r0 * ldx;
        float* d = dst + r0 * k;
        for (std::size_t t0 = 0; t0 < k16; t0 += 16) {
            __m512 t[12], u[12];
            for (int i = 0; i < 6; ++i) {  // [a0 b0 a1 b1 | ...] and [a2 b2 a3 b3 | ...] per 128-bit lane
                const __m512 a = _mm512_loadu_ps(src + 2 * i * ldx + t0), b = _mm512_loadu_ps(src + (2 * i + 1) * ldx + t0);
                t[2 * i] = _mm512_unpacklo_ps(a, b);
                t[2 * i + 1] = _mm512_unpackhi_ps(a, b);
            }
            for (int g = 0; g < 3; ++g) {  // u[4g + j], lane L: rows 4g..4g+3 of step 4L + j
                const __m512d p0 = _mm512_castps_pd(t[4 * g]), p1 = _mm512_castps_pd(t[4 * g + 1]),
                              p2 = _mm512_castps_pd(t[4 * g + 2]), p3 = _mm512_castps_pd(t[4 * g + 3]);
                u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(p0, p2));
                u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(p0, p2));
                u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(p1, p3));
                u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(p1, p3));
            }
            for (int j = 0; j < 4; ++j) {  // step 4L + j: lane L of u[j], u[4 + j], u[8 + j] (the 4th lane unused)
                const __m512 lo01 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x44), lo2 = _mm512_shuffle_f32x4(u[8 + j], u[8 + j], 0x44);
                const __m512 hi01 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xEE), hi2 = _mm512_shuffle_f32x4(u[8 + j], u[8 + j], 0xEE);
                const __m512 s0 = _mm512_shuffle_f32x4(lo01, lo2, 0x88), s1 = _mm512_shuffle_f32x4(lo01, lo2, 0xDD);
                const __m512 s2 = _mm512_shuffle_f32x4(hi01, hi2, 0x88), s3 = _mm512_shuffle_f32x4(hi01, hi2, 0xDD);
                float* o = d + t0 * fmr;
                _mm512_mask_storeu_ps(o + (0 + j) * fmr, 0x0FFF, s0);
                _mm512_mask_storeu_ps(o + (4 + j) * fmr, 0x0FFF, s1);
                _mm512_mask_storeu_ps(o + (8 + j) * fmr, 0x0FFF, s2);
                _mm512_mask_storeu_ps(o + (12 + j) * fmr, 0x0FFF, s3);
            }
        }
        for (std::size_t r = 0; r < fmr; ++r)
            for (std::size_t t = k16; t < k; ++t) d[t * fmr + r] = src[r * ldx + t];
    }
    if (full < rows) pack_rows_tiled(x + full * ldx, ldx, rows - full, k, dst + full * k);
}
#endif

// A thread's packed copy of the row block it works on (all of K), kept while the block meets
// panel after panel: `call` tells one sgemm call from the next (the same x may hold new values).
// The buffer stays with the thread for the next call (a block's rows: about gemm_block_bytes, or
// gemm_min_block_rows rows of all of K when K is sliced).
struct FPackedRows {
    AlignedBuffer<float> data;
    std::uint64_t call = 0;
    std::size_t m_begin = ~std::size_t(0);
};
inline FPackedRows& fpacked_rows() {
    thread_local FPackedRows s;
    return s;
}
inline std::uint64_t next_gemm_call() {
    static std::atomic<std::uint64_t> serial{0};
    return ++serial;
}

struct BScratch {
    AlignedBuffer<bf16> x;
    AlignedBuffer<float> xf;
};
inline BScratch& bscratch() {
    thread_local BScratch s;
    return s;
}

}  // namespace detail

inline void sgemm(const float* x, std::size_t m, std::size_t ldx, const PackedF32& w, float* y, std::size_t ldy,
                  const Epilogue& ep, ThreadPool& pool, FPath path) {
    const std::size_t k = w.k;
    const auto panel_at = [&](std::size_t p, std::size_t k0) { return w.data.data() + (p * k + k0) * fpanel; };
    const auto finish = [&](std::size_t m0, std::size_t mr, std::size_t p, float* sums) {
        detail::store_tile(sums, m0, mr, p * fpanel, std::min(fpanel, w.n - p * fpanel), y, ldy, ep);
    };
#if DOCVLM_X86_64
    if (path == FPath::avx512 && m == 1) {
        // Decoding: each thread takes a range of panels, fgemv_panels at a time, all of K at once
        // (x stays in L1; each weight byte is read once).
        const auto gemv = [&](std::size_t, std::size_t, std::size_t p0, std::size_t p1) {
            alignas(64) float sums[detail::fgemv_panels * fpanel];
            for (std::size_t p = p0; p < p1; p += detail::fgemv_panels) {
                const std::size_t np = std::min(detail::fgemv_panels, p1 - p);
                const float* wp = panel_at(p, 0);
                switch (np) {
                    case 1: detail::fgemv_avx512<1>(x, wp, k * fpanel, k, sums); break;
                    case 2: detail::fgemv_avx512<2>(x, wp, k * fpanel, k, sums); break;
                    case 3: detail::fgemv_avx512<3>(x, wp, k * fpanel, k, sums); break;
                    default: detail::fgemv_avx512<4>(x, wp, k * fpanel, k, sums); break;
                }
                for (std::size_t q = 0; q < np; ++q) finish(0, 1, p + q, sums + q * fpanel);
            }
        };
        detail::parallel_block_ranges(1, k * sizeof(float), detail::gemm_block_bytes, 1, w.panels(), pool, gemv);
        return;
    }
    if (path == FPath::avx512 && m > 1) {
        // Each row block is packed once per thread (one sequential stream for the kernel instead of
        // 12 rows at stride ldx) and stays in L2 while the weight panels pass.
        const std::uint64_t call = detail::next_gemm_call();
        detail::gemm_chunked_tiles(
            m, k * sizeof(float), w.panels(), k, pool,
            [&](std::size_t m0, std::size_t mr, std::size_t p, std::size_t k0, std::size_t kn, float* sums) {
                const detail::FPackedRows& rows = detail::fpacked_rows();
                const float* a = rows.data.data() + (m0 - rows.m_begin) * k + k0 * detail::fmr;
                const bool last = k0 + kn == k;
                const float* pf = last ? y + m0 * ldy + p * fpanel : nullptr;
                DOCVLM_FKERNEL_DISPATCH12(detail::fkernel_tiled_avx512, mr, a, panel_at(p, k0), kn, sums, k0 > 0, pf, ldy)
                if (last) finish(m0, mr, p, sums);
            },
            panel_at, fpanel * sizeof(float), [&](std::size_t m_begin, std::size_t m_end, std::size_t) {
                detail::FPackedRows& rows = detail::fpacked_rows();
                if (rows.call == call && rows.m_begin == m_begin) return;
                const std::size_t need = (m_end - m_begin + detail::fmr - 1) / detail::fmr * detail::fmr * k;
                if (rows.data.size() < need) rows.data = AlignedBuffer<float>(need);
                detail::pack_rows_tiled_avx512(x + m_begin * ldx, ldx, m_end - m_begin, k, rows.data.data());
                rows.call = call;
                rows.m_begin = m_begin;
            });
        return;
    }
#endif
    detail::gemm_chunked_tiles(
        m, k * sizeof(float), w.panels(), k, pool,
        [&](std::size_t m0, std::size_t mr, std::size_t p, std::size_t k0, std::size_t kn, float* sums) {
            const bool last = k0 + kn == k;
            detail::fkernel(path, x + m0 * ldx + k0, ldx, mr, panel_at(p, k0), kn, sums, fpanel, k0 > 0,
                            last ? y + m0 * ldy + p * fpanel : nullptr, ldy);
            if (last) finish(m0, mr, p, sums);
        },
        panel_at, fpanel * sizeof(float));
}

inline void bgemm(const float* x, std::size_t m, std::size_t ldx, const PackedBF16& w, float* y, std::size_t ldy,
                  const Epilogue& ep, ThreadPool& pool) {
    detail::BScratch& s = detail::bscratch();
    const std::size_t kp = w.k_padded;
    if (s.x.size() < m * kp) s.x = AlignedBuffer<bf16>(m * kp);
    for (std::size_t r = 0; r < m; ++r) {
        convert(x + r * ldx, s.x.data() + r * kp, w.k);
        if (kp > w.k) s.x[r * kp + w.k] = bf16{};
    }
#if DOCVLM_X86_64
    if (cpu().avx512bf16) {
        const std::size_t k2 = kp / 2;
        const auto panel_at = [&](std::size_t p, std::size_t k0) { return w.data.data() + (p * k2 + k0) * fpanel * 2; };
        detail::gemm_chunked_tiles(
            m, kp * 2, w.panels(), k2, pool,
            [&](std::size_t m0, std::size_t mr, std::size_t p, std::size_t k0, std::size_t kn, float* sums) {
                detail::bkernel(s.x.data() + m0 * kp + 2 * k0, kp, mr, panel_at(p, k0), kn, sums, fpanel, k0 > 0);
                if (k0 + kn == k2) detail::store_tile(sums, m0, mr, p * fpanel, std::min(fpanel, w.n - p * fpanel), y, ldy, ep);
            },
            panel_at, fpanel * 2 * sizeof(bf16));
        return;
    }
#endif
    // Without AVX512-BF16: widen the rounded x and each weight panel to float, then the f32 kernel.
    if (s.xf.size() < m * kp) s.xf = AlignedBuffer<float>(m * kp);
    convert(s.x.data(), s.xf.data(), m * kp);
    const FPath path = best_fpath();
    detail::gemm_tiles(m, kp * 4, w.panels(), pool, [&](std::size_t m0, std::size_t mr, std::size_t p, float* sums) {
        thread_local AlignedBuffer<float> panel;
        if (panel.size() < fpanel * kp) panel = AlignedBuffer<float>(fpanel * kp);
        const bf16* src = w.data.data() + p * fpanel * kp;
        for (std::size_t t = 0; t < kp; ++t)
            for (std::size_t j = 0; j < fpanel; ++j) panel[t * fpanel + j] = bf16_to_f32(src[((t / 2) * fpanel + j) * 2 + t % 2]);
        detail::fkernel(path, s.xf.data() + m0 * kp, kp, mr, panel.data(), kp, sums);
        detail::store_tile(sums, m0, mr, p * fpanel, std::min(fpanel, w.n - p * fpanel), y, ldy, ep);
    });
}

inline void sgemm_reference(const float* x, std::size_t m, std::size_t ldx, const float* w, std::size_t n, std::size_t k,
                            float* y, std::size_t ldy) {
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            double acc = 0;
            for (std::size_t t = 0; t < k; ++t) acc += double(x[i * ldx + t]) * double(w[j * k + t]);
            y[i * ldy + j] = float(acc);
        }
}

#if DOCVLM_X86_64
#undef DOCVLM_FKERNEL_DISPATCH12
#endif

}  // namespace kernels
DOCVLM_SIMD_WARNINGS_ON
DOCVLM_NAMESPACE_END
