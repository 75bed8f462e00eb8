// docvlm/kernels/attention_tiles.hpp — what every attention path shares: the parameters (heads,
// scale, masks, precision), which keys a query sees (attention_visible), the key range and the
// tiles of a query block, score masking, the online-softmax row state and per-thread scratch.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/kernels/activations.hpp>
#include <docvlm/kernels/gemm.hpp>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
DOCVLM_SIMD_WARNINGS_OFF
namespace kernels {

struct AttentionParams {
    std::size_t heads = 1, kv_heads = 1, head_dim = 64;
    float scale = 0.125f;      ///< usually 1 / sqrt(head_dim)
    bool causal = false;       ///< key j visible only when j <= query position
    std::size_t q_offset = 0;  ///< position of query 0 (decoding with a KV cache: n_kv - n_q)
    std::size_t window = 0;    ///< 0: no window; else |query position - j| <= window, except anchors
    std::size_t anchors = 0;   ///< tokens [0, anchors) see and are seen by every token (window masks only)
    /// Queries per tile; 0 chooses: 96 without a window (every K/V tile streamed through the cache
    /// serves more queries: the 5476-token ViT layer ran ~15 % faster than with 24 on a 2-core Xeon),
    /// 24 with one (a tile's key range grows with it: queries ± window). The int8 path rounds it
    /// up to a multiple of its query tile (12 on AVX-512, 32 on AMX, 6 or 4 on 256-bit vectors).
    std::size_t block_q = 0;
    std::size_t block_k = 256; ///< keys per tile (a multiple of 32)
    /// Compute q·kᵀ and p·v from bf16-rounded inputs (float accumulation, float softmax) with
    /// AVX512-BF16 when head_dim is even and the CPU's bf16 dot products are faster than its f32
    /// FMA (CpuFeatures::bf16_dot_fast); otherwise this is ignored and attention runs in f32.
    bool bf16 = false;
    /// Tests and benchmarks: take the bf16 path wherever AVX512-BF16 exists, fast or not.
    bool bf16_even_if_slower = false;
    /// Compute q·kᵀ and p·v with int8 dot products (AMX tiles; AVX512-VNNI; AVX-VNNI or AVX2 on ymm; AArch64
    /// `usdot` with I8MM; see attention_int8_range; takes precedence over bf16; other CPUs,
    /// n_q <= 4, head_dim > 512 and a negative scale run in f32). Quantisation, all symmetric: keys minus their mean over the keys (softmax is
    /// unchanged by it) per key and head, queries per query and head, V per channel and head, the
    /// probabilities of each row and key tile as u8 relative to their largest value; keys and V
    /// within ±127, or ±63 on AVX2 without VNNI (its vpmaddubsw pair sums must not saturate).
    /// Scores, softmax and the accumulation of output rows stay in float. Error (tested on random
    /// inputs): worst output error within 3 % of max|v|, mean within 0.3 %; twice that on AVX2
    /// without VNNI (half the resolution).
    bool int8 = false;
};

/// Whether query position `qi` may attend key `j` under `p` (the mask, as a predicate).
bool attention_visible(const AttentionParams& p, std::size_t qi, std::size_t j);

inline bool attention_visible(const AttentionParams& p, std::size_t qi, std::size_t j) {
    if (p.causal && j > qi) return false;
    if (p.window == 0 || j < p.anchors || qi < p.anchors) return true;
    return (qi >= j ? qi - j : j - qi) <= p.window;
}

namespace detail {

inline void check_attention(const AttentionParams& p) {
    if (p.heads == 0 || p.kv_heads == 0 || p.head_dim == 0) docvlm::detail::fail("attention: zero heads or head_dim");
    if (p.heads % p.kv_heads != 0)
        docvlm::detail::fail("attention: ", p.heads, " query heads are not a multiple of ", p.kv_heads, " key/value heads");
    if (p.block_k == 0 || p.block_k % fpanel != 0)
        docvlm::detail::fail("attention: block_k must be a positive multiple of ", fpanel);
}

// Key range [lo, hi) that query positions [q0, q1) can see outside the anchors, clipped to n_kv.
inline void key_range(const AttentionParams& p, std::size_t q0, std::size_t q1, std::size_t n_kv, std::size_t& lo,
                      std::size_t& hi) {
    hi = p.causal ? std::min(n_kv, q1) : n_kv;  // q1 is one past the last position: keys <= q1 - 1
    lo = 0;
    if (p.window != 0 && q0 >= p.anchors) {
        lo = q0 > p.window ? q0 - p.window : 0;
        hi = std::min(hi, q1 - 1 + p.window + 1);
    }
}

// Calls process(j0, j1, from) for the key tiles (at most bk keys, j0 a multiple of 32) that a
// query block starting at position pos0 must visit, [lo, hi) being its key_range: with a window
// and anchors, the anchors [0, anchors) first, then the window; keys below `from` in a tile belong
// to another sweep (the caller masks them).
template <class Process>
void sweep_keys(const AttentionParams& p, std::size_t pos0, std::size_t lo, std::size_t hi, std::size_t n_kv, std::size_t bk,
                Process&& process) {
    auto sweep = [&](std::size_t from, std::size_t to) {  // tiles covering keys [from, to)
        for (std::size_t j0 = from / fpanel * fpanel; j0 < to; j0 += bk) process(j0, std::min(to, j0 + bk), from);
    };
    if (p.window != 0 && pos0 >= p.anchors && p.anchors > 0) {
        const std::size_t a = std::min(p.anchors, n_kv);
        if (lo > a) {
            sweep(0, a);
            sweep(lo, hi);
        } else {
            sweep(0, std::max(a, hi));
        }
    } else {
        sweep(lo, hi);
    }
}

// One work item of the tiled paths: query block qb of head h, the kv head it reads, its rows and
// positions, and the key range it sees outside the anchors (key_range).
struct QueryBlock {
    std::size_t h, kvh, i0, rows, pos0, lo, hi;
};
inline QueryBlock query_block(const AttentionParams& p, std::size_t item, std::size_t qblocks, std::size_t bq, std::size_t n_q,
                              std::size_t n_kv) {
    QueryBlock b{};
    b.h = item / qblocks;
    b.kvh = b.h / (p.heads / p.kv_heads);
    b.i0 = item % qblocks * bq;
    b.rows = std::min(bq, n_q - b.i0);
    b.pos0 = p.q_offset + b.i0;
    key_range(p, b.pos0, b.pos0 + b.rows, n_kv, b.lo, b.hi);
    return b;
}

// Row r of a score tile over keys [j0, j0 + cols): −inf for keys below `from` (another sweep's)
// and for keys the mask hides from query position pos.
// The hidden keys form at most four ranges (attention_visible's mask as ranges): most tiles have
// none, so most rows cost a few comparisons.
// Returns whether it hid any.
inline bool mask_scores(const AttentionParams& p, float* sr, std::size_t pos, std::size_t j0, std::size_t cols, std::size_t from) {
    const std::size_t end = j0 + cols;
    bool hid = false;
    auto hide = [&](std::size_t a, std::size_t b) {  // keys [a, b), clipped to the tile
        a = std::max(a, j0), b = std::min(b, end);
        if (a < b) std::fill(sr + (a - j0), sr + (b - j0), -std::numeric_limits<float>::infinity()), hid = true;
    };
    hide(0, from);
    if (p.causal) hide(pos + 1, end);
    if (p.window != 0 && pos >= p.anchors) {  // outside the anchors, only keys within the window
        if (pos > p.window) hide(p.anchors, pos - p.window);
        hide(pos + p.window + 1, end);
    }
    return hid;
}

// The online softmax of a query block: start (acc 0, running max −inf, sum 0) and finish
// (out rows = acc / sum; rows that saw no key are zero).
inline void start_rows(float* acc, std::size_t dpad, float* m, float* l, std::size_t rows) {
    std::fill(acc, acc + rows * dpad, 0.0f);
    std::fill(m, m + rows, -std::numeric_limits<float>::infinity());
    std::fill(l, l + rows, 0.0f);
}
inline void finish_rows(const float* acc, std::size_t dpad, const float* l, std::size_t rows, std::size_t d, float* out,
                        std::size_t ldo) {
    for (std::size_t r = 0; r < rows; ++r) {
        const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        for (std::size_t t = 0; t < d; ++t) out[r * ldo + t] = acc[r * dpad + t] * inv;
    }
}

struct AttentionScratch {
    AlignedBuffer<float> kt;  // Kᵀ for every kv head in 32-key panels: [kv_heads][key panels][head_dim][32]
    AlignedBuffer<float> vp;  // V for every kv head in 32-wide slices of head_dim: [kv_heads][d panels][keys][32]
    // bf16 variants: Kᵀ as [kv_heads][key panels][head_dim / 2][32][2], V as
    // [kv_heads][d panels][keys (padded to 32) / 2][32][2], queries as rows of bf16.
    AlignedBuffer<bf16> ktb, vpb, qb;
    AlignedBuffer<float> qs;  // scaled queries [n_q][heads · head_dim]
};

// Row helpers of the online softmax (row_max, exp_sum, group_scores, group_weighted_rows): kernels/rowwise.hpp.
#if DOCVLM_X86_64
// exp_sum, writing exp(x - mx) as bf16 to out[0 .. n rounded up to even) (x is left as it is;
// a padding column is zero) instead of back to x.
DOCVLM_TARGET("avx512f,avx512bw,avx512vl,avx512bf16")
inline float exp_sum_bf16_avx512(const float* x, std::size_t n, float mx, bf16* out) {
    const __m512 vm = _mm512_set1_ps(mx);
    __m512 sum = _mm512_setzero_ps();
    const std::size_t n2 = (n + 1) / 2 * 2;
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 k = __mmask16(docvlm::detail::tail_mask16(n - i)), k2 = __mmask16(docvlm::detail::tail_mask16(n2 - i));
        const __m512 e = _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm)));
        sum = _mm512_add_ps(sum, e);
        _mm256_mask_storeu_epi16(out + i, k2, (__m256i)_mm512_cvtneps_pbh(e));
    }
    return _mm512_reduce_add_ps(sum);
}
#endif

}  // namespace detail


}  // namespace kernels
DOCVLM_SIMD_WARNINGS_ON
DOCVLM_NAMESPACE_END
