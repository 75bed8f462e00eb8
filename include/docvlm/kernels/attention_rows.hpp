// docvlm/kernels/attention_rows.hpp — attention for few queries (decoding): scores straight from
// the token-major key rows and P·V from the value rows, no packing (kernels::attention picks it).
#pragma once

#include <docvlm/kernels/attention_tiles.hpp>

DOCVLM_NAMESPACE_BEGIN
DOCVLM_SIMD_WARNINGS_OFF
namespace kernels {

namespace detail {

// Few queries (decoding): scores straight from the token-major K rows and P·V straight from V rows,
// with no packing; the query heads that share a key/value head are processed together so every K
// and V row is read once per step. Memory: one row of n_kv scores per query head.
inline void attention_rows(const float* q, std::size_t ldq, const float* k, std::size_t ldk, const float* v, std::size_t ldv,
                           float* out, std::size_t ldo, std::size_t n_q, std::size_t n_kv, const AttentionParams& p,
                           ThreadPool& pool) {
    const std::size_t d = p.head_dim, group = p.heads / p.kv_heads;
    const float neg_inf = -std::numeric_limits<float>::infinity();
    // Score rows for every (query, kv head) item, owned by the calling thread (workers allocate
    // nothing). They grow in steps of 4096 keys, so decoding token after token allocates at most
    // once per 4096 tokens of context, never in between.
    thread_local std::vector<float> scores;
    const std::size_t stride = group * ((n_kv + 4095) / 4096 * 4096);
    if (scores.size() < n_q * p.kv_heads * stride) scores.resize(n_q * p.kv_heads * stride);
    float* const base = scores.data();  // a pointer: inside the tasks `scores` would name the worker's own
    pool.parallel_for(n_q * p.kv_heads, [&](std::size_t begin, std::size_t end) {
        for (std::size_t item = begin; item < end; ++item) {
            float* sc = base + item * stride;
            const std::size_t i = item / p.kv_heads, kvh = item % p.kv_heads, pos = p.q_offset + i;
            const float* qi = q + i * ldq + kvh * group * d;
            group_scores(qi, k + kvh * d, ldk, n_kv, d, group, p.scale, sc, n_kv);
            // Causal only: the keys after the query's position; with a window, every key asks the mask.
            for (std::size_t j = p.window != 0 ? 0 : p.causal ? std::min(n_kv, pos + 1) : n_kv; j < n_kv; ++j)
                if (!attention_visible(p, pos, j))
                    for (std::size_t g = 0; g < group; ++g) sc[g * n_kv + j] = neg_inf;
            // Each head's probabilities (unnormalised: exp(s − max)), then P·V for the group at
            // once (each V row read once), then each head's output divided by its sum.
            float* o = out + i * ldo + kvh * group * d;
            std::fill(o, o + group * d, 0.0f);
            thread_local std::vector<float> inv;
            inv.assign(group, 0.0f);
            for (std::size_t g = 0; g < group; ++g) {
                float* row = sc + g * n_kv;
                const float mx = row_max(row, n_kv, neg_inf);
                if (mx == neg_inf) std::fill(row, row + n_kv, 0.0f);  // no visible key: a zero output
                else inv[g] = 1.0f / exp_sum(row, n_kv, mx);
            }
            group_weighted_rows(sc, n_kv, group, v + kvh * d, ldv, n_kv, d, o, d);
            for (std::size_t g = 0; g < group; ++g)
                for (std::size_t t = 0; t < d; ++t) o[g * d + t] *= inv[g];
        }
    });
}

}  // namespace detail


}  // namespace kernels
DOCVLM_SIMD_WARNINGS_ON
DOCVLM_NAMESPACE_END
