// docvlm/kernels/attention_rows.hpp — attention for few queries (decoding): scores straight from
// the token-major key rows and P·V from the value rows, no packing (kernels::attention picks it).
#pragma once

#include <docvlm/kernels/attention_tiles.hpp>

DOCVLM_NAMESPACE_BEGIN
DOCVLM_SIMD_WARNINGS_OFF
namespace kernels {

namespace detail {

// The fewest positions per slice of attention_rows_sliced; shorter caches keep one item per KV head.
inline constexpr std::size_t min_slice_keys = 256;

// How many position slices attention_rows cuts n_kv keys into: one item per (query, KV head)
// already feeds the threads when there are enough such items; otherwise (decoding with GQA: one
// query, 2 KV heads) as many slices as threads, each at least min_slice_keys long.
inline std::size_t attention_slices(std::size_t n_q, std::size_t n_kv, std::size_t kv_heads, std::size_t threads) {
    if (threads < 2 || n_q * kv_heads >= 2 * threads) return 1;
    return std::clamp<std::size_t>(n_kv / min_slice_keys, 1, threads);
}

// The merge of attention_rows_sliced: partials of query i, slice s at parts + (i · slices + s) ·
// item_stride, one row [o[d], m, l] per head; out row i, head h = Σ e_s o_s / Σ e_s l_s with
// e_s = exp(m_s − M), M = max m_s (zero where no slice saw a key).
inline void merge_attention_slices(const float* parts, std::size_t item_stride, std::size_t slices, std::size_t n_q,
                                   std::size_t heads, std::size_t d, float* out, std::size_t ldo) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    for (std::size_t i = 0; i < n_q; ++i)
        for (std::size_t h = 0; h < heads; ++h) {
            const float* part = parts + i * slices * item_stride + h * (d + 2);  // slice 0's row of head h
            float mx = neg_inf;
            for (std::size_t s = 0; s < slices; ++s) mx = std::max(mx, part[s * item_stride + d]);
            float* o = out + i * ldo + h * d;
            std::fill(o, o + d, 0.0f);
            if (mx == neg_inf) continue;
            float l = 0.0f;
            for (std::size_t s = 0; s < slices; ++s) {
                const float* ps = part + s * item_stride;
                if (ps[d] == neg_inf) continue;
                const float e = std::exp(ps[d] - mx);
                l += e * ps[d + 1];
                for (std::size_t t = 0; t < d; ++t) o[t] += e * ps[t];
            }
            for (std::size_t t = 0; t < d; ++t) o[t] /= l;
        }
}

// attention_rows with the positions cut into `slices` ranges, one item per (query, slice), each
// over every KV head: a thread then reads whole rows of the cache in order (both heads of a
// position, 64 positions at a time, so the second head's half comes from L2), where one item per
// KV head makes each thread read half of every row — which took twice as long from DRAM on a
// 2-core Zen 3 (group_scores over 1024 positions of a 48 MB cache: 59-61 µs for half rows, 29 µs
// for whole rows). Per query head an item keeps m = max s over its slice, l = Σ exp(s − m) and
// o = Σ exp(s − m) v, which merge_attention_slices combines. Memory: the calling thread's
// scratch, grown in steps of 4096 positions.
inline void attention_rows_sliced(const float* q, std::size_t ldq, const float* k, std::size_t ldk, const float* v, std::size_t ldv,
                                  float* out, std::size_t ldo, std::size_t n_q, std::size_t n_kv, const AttentionParams& p,
                                  std::size_t slices, ThreadPool& pool) {
    const std::size_t d = p.head_dim, group = p.heads / p.kv_heads, ldp = d + 2;  // partial row: o[d], m, l
    const float neg_inf = -std::numeric_limits<float>::infinity();
    constexpr std::size_t sub = 64;  // positions per pass over the KV heads
    const std::size_t span = (n_kv + slices - 1) / slices, stride = (span + 4095) / 4096 * 4096;
    const std::size_t per_item = p.heads * stride + p.heads * ldp;  // scores [heads][stride], partials [heads][ldp]
    thread_local std::vector<float> scratch;
    if (scratch.size() < n_q * slices * per_item) scratch.resize(n_q * slices * per_item);
    float* const base = scratch.data();
    pool.parallel_for(n_q * slices, [&](std::size_t begin, std::size_t end) {
        for (std::size_t item = begin; item < end; ++item) {
            const std::size_t i = item / slices, s = item % slices, pos = p.q_offset + i;
            const std::size_t j0 = n_kv * s / slices, j1 = n_kv * (s + 1) / slices, n = j1 - j0;
            float* sc = base + item * per_item;        // [heads][stride], head h's score of key j0 + j at h·stride + j
            float* part = sc + p.heads * stride;       // [heads][ldp]
            for (std::size_t jb = j0; jb < j1; jb += sub)
                for (std::size_t kvh = 0; kvh < p.kv_heads; ++kvh)
                    group_scores(q + i * ldq + kvh * group * d, k + jb * ldk + kvh * d, ldk, std::min(sub, j1 - jb), d, group, p.scale,
                                 sc + kvh * group * stride + (jb - j0), stride);
            for (std::size_t j = std::max(j0, p.window != 0 ? 0 : p.causal ? std::min(n_kv, pos + 1) : n_kv); j < j1; ++j)
                if (!attention_visible(p, pos, j))
                    for (std::size_t h = 0; h < p.heads; ++h) sc[h * stride + j - j0] = neg_inf;
            for (std::size_t h = 0; h < p.heads; ++h) {
                float* row = sc + h * stride;
                const float m = row_max(row, n, neg_inf);
                part[h * ldp + d] = m;
                if (m == neg_inf) std::fill(row, row + n, 0.0f), part[h * ldp + d + 1] = 0.0f;  // no visible key here
                else part[h * ldp + d + 1] = exp_sum(row, n, m);
                std::fill(part + h * ldp, part + h * ldp + d, 0.0f);
            }
            for (std::size_t jb = j0; jb < j1; jb += sub)
                for (std::size_t kvh = 0; kvh < p.kv_heads; ++kvh)
                    group_weighted_rows(sc + kvh * group * stride + (jb - j0), stride, group, v + jb * ldv + kvh * d, ldv,
                                        std::min(sub, j1 - jb), d, part + kvh * group * ldp, ldp);
        }
    });
    merge_attention_slices(base + p.heads * stride, per_item, slices, n_q, p.heads, d, out, ldo);
}

// Few queries (decoding): scores straight from the token-major K rows and P·V straight from V rows,
// with no packing; the query heads that share a key/value head are processed together so every K
// and V row is read once per step. Memory: one row of n_kv scores per query head.
inline void attention_rows(const float* q, std::size_t ldq, const float* k, std::size_t ldk, const float* v, std::size_t ldv,
                           float* out, std::size_t ldo, std::size_t n_q, std::size_t n_kv, const AttentionParams& p,
                           ThreadPool& pool) {
    const std::size_t d = p.head_dim, group = p.heads / p.kv_heads;
    if (const std::size_t slices = attention_slices(n_q, n_kv, p.kv_heads, pool.size()); slices > 1)
        return attention_rows_sliced(q, ldq, k, ldk, v, ldv, out, ldo, n_q, n_kv, p, slices, pool);
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
