// docvlm/kernels/attention.hpp — fused multi-head attention, flash-attention style.
//
// out = softmax(q · kᵀ · scale + mask) · v, computed tile by tile (block_q queries × block_k keys)
// with an online softmax, so memory stays linear in the sequence length: no n × n score matrix is
// ever allocated. Masks: full, causal, and windowed with global anchors (a query sees keys within
// `window` positions of itself and the first `anchors` tokens; anchor queries see every key), which
// may be combined with causal. Grouped-query attention: query head h reads key/value head
// h / (heads / kv_heads). Tiles outside a query block's window are skipped, so windowed attention
// costs O(n · (window + anchors)).
//
// Layout (token-major, as projections produce it): q [n_q][ldq] holding heads × head_dim,
// k and v [n_kv][ldk / ldv] holding kv_heads × head_dim, out [n_q][ldo] holding heads × head_dim.
// Query i sits at position q_offset + i; key j at position j (a KV cache of n_kv tokens).
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
#include <docvlm/kernels/attention_int8.hpp>
#include <docvlm/kernels/attention_rows.hpp>
#include <docvlm/kernels/attention_tiles.hpp>

DOCVLM_NAMESPACE_BEGIN
DOCVLM_SIMD_WARNINGS_OFF
namespace kernels {

/// Fused attention (see the header comment for layouts).
void attention(const float* q, std::size_t ldq, const float* k, std::size_t ldk, const float* v, std::size_t ldv, float* out,
               std::size_t ldo, std::size_t n_q, std::size_t n_kv, const AttentionParams& p, ThreadPool& pool = thread_pool());

/// The int8 range of keys and values where AttentionParams::int8 takes effect on a CPU with `f`:
/// 127 (AVX512-VNNI, AVX-VNNI, AArch64 with I8MM), 63 (AVX2 without VNNI), 0 (attention runs in f32).
int attention_int8_range(const CpuFeatures& f = cpu());

/// Dense reference: every score row in full, masked, softmax in double. O(n_q · n_kv) memory per row only.
void attention_reference(const float* q, std::size_t ldq, const float* k, std::size_t ldk, const float* v, std::size_t ldv,
                         float* out, std::size_t ldo, std::size_t n_q, std::size_t n_kv, const AttentionParams& p);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline int attention_int8_range(const CpuFeatures& f) {
    if ((f.avx512() && f.avx512vnni) || (f.avx2 && f.fma && f.avxvnni) || (f.neon && f.dotprod && f.i8mm)) return 127;
    return f.avx2 && f.fma ? 63 : 0;
}

inline void attention(const float* q, std::size_t ldq, const float* k, std::size_t ldk, const float* v, std::size_t ldv,
                      float* out, std::size_t ldo, std::size_t n_q, std::size_t n_kv, const AttentionParams& p,
                      ThreadPool& pool) {
    detail::check_attention(p);
    if (n_q == 0) return;
    if (n_kv == 0) docvlm::detail::fail("attention: no keys");
    if (n_q <= 4) return detail::attention_rows(q, ldq, k, ldk, v, ldv, out, ldo, n_q, n_kv, p, pool);
    if (p.int8 && p.head_dim <= 512 && p.scale >= 0.0f) {
#if DOCVLM_X86_64
        // AMX tiles hold 32 queries: fewer would all run on AVX-512 VNNI, with head_dim padded to 64
        // (4-9 % slower than the AVX-512 path at 16-31 queries against 1369 keys, heads of 80)
        if (cpu().amx_int8 && cpu().avx512() && n_q >= detail::amx_tile_rows)
            return detail::attention_int8<detail::Int8AttentionAmx>(q, ldq, k, ldk, v, ldv, out, ldo, n_q, n_kv, p, pool);
        if (cpu().avx512() && cpu().avx512vnni)
            return detail::attention_int8<detail::Int8AttentionAvx512>(q, ldq, k, ldk, v, ldv, out, ldo, n_q, n_kv, p, pool);
        if (cpu().avx2 && cpu().fma && cpu().avxvnni)
            return detail::attention_int8<detail::Int8AttentionAvxVnni>(q, ldq, k, ldk, v, ldv, out, ldo, n_q, n_kv, p, pool);
        if (cpu().avx2 && cpu().fma)
            return detail::attention_int8<detail::Int8AttentionAvx2>(q, ldq, k, ldk, v, ldv, out, ldo, n_q, n_kv, p, pool);
#elif defined(__aarch64__)
        if (cpu().neon && cpu().dotprod && cpu().i8mm)
            return detail::attention_int8<detail::Int8AttentionNeonUsdot>(q, ldq, k, ldk, v, ldv, out, ldo, n_q, n_kv, p, pool);
#endif
    }
    const std::size_t d = p.head_dim, panels = (n_kv + fpanel - 1) / fpanel;
    const FPath path = best_fpath();

    // Kᵀ packed once per call into 32-key panels, so scores come from the f32 GEMM micro-kernel.
    thread_local detail::AttentionScratch scratch;
    const std::size_t kt_size = p.kv_heads * panels * d * fpanel;
    if (scratch.kt.size() < kt_size) scratch.kt = AlignedBuffer<float>(kt_size);
    float* kt = scratch.kt.data();
    // V in 32-wide slices of head_dim (zero-padded), so P·V is the same micro-kernel again.
    const std::size_t dpanels = (d + fpanel - 1) / fpanel, vp_size = p.kv_heads * dpanels * n_kv * fpanel;
    if (scratch.vp.size() < vp_size) scratch.vp = AlignedBuffer<float>(vp_size);
    float* vp = scratch.vp.data();
    pool.parallel_for(p.kv_heads * panels, [&](std::size_t b, std::size_t e) {
        for (std::size_t item = b; item < e; ++item) {
            const std::size_t h = item / panels, pn = item % panels;
            float* dst = kt + (h * panels + pn) * d * fpanel;
            for (std::size_t jj = 0; jj < fpanel; ++jj) {
                const std::size_t j = pn * fpanel + jj;
                if (j < n_kv) {
                    const float* src = k + j * ldk + h * d;
                    for (std::size_t t = 0; t < d; ++t) dst[t * fpanel + jj] = src[t];
                } else {
                    for (std::size_t t = 0; t < d; ++t) dst[t * fpanel + jj] = 0.0f;
                }
            }
            for (std::size_t j = pn * fpanel; j < std::min(n_kv, (pn + 1) * fpanel); ++j) {
                const float* src = v + j * ldv + h * d;
                for (std::size_t dp = 0; dp < dpanels; ++dp) {
                    float* dst2 = vp + ((h * dpanels + dp) * n_kv + j) * fpanel;
                    for (std::size_t c = 0; c < fpanel; ++c) dst2[c] = dp * fpanel + c < d ? src[dp * fpanel + c] : 0.0f;
                }
            }
        }
    });

#if DOCVLM_X86_64
    const bool use_bf16 = p.bf16 && cpu().avx512bf16 && (cpu().bf16_dot_fast() || p.bf16_even_if_slower) && d % 2 == 0;
#else
    const bool use_bf16 = false;
#endif
    bf16* ktb = nullptr;
    bf16* vpb = nullptr;
    bf16* qbf = nullptr;
    const std::size_t qd = p.heads * d, kv_pad = panels * fpanel;
    if (use_bf16) {
        const std::size_t nk = p.kv_heads * panels * d * fpanel, nv = p.kv_heads * dpanels * kv_pad * fpanel;
        if (scratch.ktb.size() < nk) scratch.ktb = AlignedBuffer<bf16>(nk);
        if (scratch.vpb.size() < nv) scratch.vpb = AlignedBuffer<bf16>(nv);
        if (scratch.qb.size() < n_q * qd) scratch.qb = AlignedBuffer<bf16>(n_q * qd);
        ktb = scratch.ktb.data(), vpb = scratch.vpb.data(), qbf = scratch.qb.data();
        pool.parallel_for(p.kv_heads * panels, [&](std::size_t b, std::size_t e) {
            for (std::size_t item = b; item < e; ++item) {
                const std::size_t h = item / panels, pn = item % panels;
                const float* src = kt + (h * panels + pn) * d * fpanel;  // [d][32] floats
                bf16* dst = ktb + (h * panels + pn) * d * fpanel;       // [d/2][32][2]
                for (std::size_t t = 0; t < d; ++t)
                    for (std::size_t j = 0; j < fpanel; ++j) dst[((t / 2) * fpanel + j) * 2 + t % 2] = f32_to_bf16(src[t * fpanel + j]);
                for (std::size_t dp = 0; dp < dpanels; ++dp) {  // V: pairs of keys
                    const float* vs = vp + (h * dpanels + dp) * n_kv * fpanel;
                    bf16* vd = vpb + (h * dpanels + dp) * kv_pad * fpanel;
                    for (std::size_t jj = 0; jj < fpanel; ++jj) {
                        const std::size_t j = pn * fpanel + jj;
                        for (std::size_t c = 0; c < fpanel; ++c)
                            vd[((j / 2) * fpanel + c) * 2 + j % 2] = j < n_kv ? f32_to_bf16(vs[j * fpanel + c]) : bf16{};
                    }
                }
            }
        });
    }
    // Queries pre-multiplied by the scale (so score tiles need no pass of their own), as bf16
    // for the bf16 path, else as float.
    if (scratch.qs.size() < n_q * qd) scratch.qs = AlignedBuffer<float>(n_q * qd);
    float* qs = scratch.qs.data();
    pool.parallel_for(n_q, [&](std::size_t b, std::size_t e) {
        for (std::size_t r = b; r < e; ++r) {
            for (std::size_t t = 0; t < qd; ++t) qs[r * qd + t] = q[r * ldq + t] * p.scale;
            if (use_bf16) convert(qs + r * qd, qbf + r * qd, qd);
        }
    });

    const std::size_t bq = p.block_q ? p.block_q : p.window ? 24 : 96, bk = p.block_k, qblocks = (n_q + bq - 1) / bq;
    // The last panel of head_dim when it holds at most 16 real columns (P·V skips the rest).
    const std::size_t half_panel = d % fpanel != 0 && d % fpanel <= 16 ? dpanels - 1 : dpanels;
    const float neg_inf = -std::numeric_limits<float>::infinity();
    // Items (head, query block) go to whichever thread is free (causal blocks differ in cost).
    pool.parallel_for_balanced(p.heads * qblocks, [&](std::size_t begin, std::size_t end) {
        // Per-thread tiles that only grow. acc rows are padded to whole 32-column panels so the
        // kernels accumulate in place.
        const std::size_t dpad = dpanels * fpanel;
        thread_local std::vector<float> s, acc, m, l;
        thread_local std::vector<bf16> pb;
        if (s.size() < bq * bk) s.resize(bq * bk);
        if (acc.size() < bq * dpad) acc.resize(bq * dpad);
        if (m.size() < bq) m.resize(bq);
        if (l.size() < bq) l.resize(bq);
        if (use_bf16 && pb.size() < bq * bk) pb.resize(bq * bk);
        for (std::size_t item = begin; item < end; ++item) {
            // named copies, not a structured binding: lambdas below capture them (clang < 16 cannot
            // capture a binding)
            const detail::QueryBlock qb = detail::query_block(p, item, qblocks, bq, n_q, n_kv);
            const std::size_t h = qb.h, kvh = qb.kvh, i0 = qb.i0, rows = qb.rows, pos0 = qb.pos0, lo = qb.lo, hi = qb.hi;
            detail::start_rows(acc.data(), dpad, m.data(), l.data(), rows);
            const float* kth = kt + kvh * panels * d * fpanel;

            // Keys [j0, j1) with j0 a multiple of 32; keys below `from` belong to another sweep.
            auto process = [&](std::size_t j0, std::size_t j1, std::size_t from) {
                const std::size_t cols = j1 - j0;
                // scores s[r][c] = (scale · q_r) · k_{j0+c}, written by the kernel straight into s
                // (columns past `cols` in the last panel are ignored below)
                for (std::size_t pn = 0; pn * fpanel < cols; ++pn) {
                    const float* panel = kth + (j0 / fpanel + pn) * d * fpanel;
                    for (std::size_t r0 = 0; r0 < rows; r0 += detail::fmr) {
                        const std::size_t mr = std::min(detail::fmr, rows - r0);
                        float* dst = s.data() + r0 * bk + pn * fpanel;
#if DOCVLM_X86_64
                        if (use_bf16)
                            detail::bkernel(qbf + (i0 + r0) * qd + h * d, qd, mr, ktb + (kvh * panels + j0 / fpanel + pn) * d * fpanel, d / 2,
                                            dst, bk);
                        else
#endif
                            detail::fkernel(path, qs + (i0 + r0) * qd + h * d, qd, mr, panel, d, dst, bk);
                    }
                }
                for (std::size_t r = 0; r < rows; ++r) {
                    float* sr = s.data() + r * bk;
                    detail::mask_scores(p, sr, pos0 + r, j0, cols, from);
                    const float mx = detail::row_max(sr, cols, m[r]);
                    if (mx == neg_inf) {  // nothing visible yet in this row: contributes zeros
                        if (use_bf16) std::fill(pb.begin() + r * bk, pb.begin() + r * bk + (cols + 1) / 2 * 2, bf16{});
                        else std::fill(sr, sr + cols, 0.0f);
                        continue;
                    }
                    const float alpha = std::exp(m[r] - mx);  // 0 when m[r] was -inf
#if DOCVLM_X86_64
                    // bf16: the probabilities go straight to the bf16 rows P·V reads (no float pass)
                    if (use_bf16) l[r] = l[r] * alpha + detail::exp_sum_bf16_avx512(sr, cols, mx, pb.data() + r * bk);
                    else
#endif
                        l[r] = l[r] * alpha + detail::exp_sum(sr, cols, mx);
                    m[r] = mx;
                    if (alpha != 1.0f) {
                        float* ar = acc.data() + r * dpad;
                        for (std::size_t t = 0; t < dpad; ++t) ar[t] *= alpha;
                    }
                }
                // acc += P · V, 32 columns of head_dim at a time
                [[maybe_unused]] const std::size_t cols2 = (cols + 1) / 2;  // key pairs (bf16 path, x86-64; V is zero-padded)
                for (std::size_t dp = 0; dp < dpanels; ++dp) {
                    const float* vpanel = vp + ((kvh * dpanels + dp) * n_kv + j0) * fpanel;
                    for (std::size_t r0 = 0; r0 < rows; r0 += detail::fmr) {
                        const std::size_t mr = std::min(detail::fmr, rows - r0);
                        float* dst = acc.data() + r0 * dpad + dp * fpanel;
#if DOCVLM_X86_64
                        if (use_bf16 && dp == half_panel)  // the last 16 columns of head_dim (e.g. 80 = 32 + 32 + 16)
                            detail::bkernel16(pb.data() + r0 * bk, bk, mr, vpb + ((kvh * dpanels + dp) * kv_pad + j0) * fpanel, cols2,
                                              dst, dpad, true);
                        else if (use_bf16)
                            detail::bkernel(pb.data() + r0 * bk, bk, mr, vpb + ((kvh * dpanels + dp) * kv_pad + j0) * fpanel, cols2, dst,
                                            dpad, true);
                        else
#endif
                        if (dp == half_panel)
                            detail::fkernel16(path, s.data() + r0 * bk, bk, mr, vpanel, cols, dst, dpad, true);
                        else
                            detail::fkernel(path, s.data() + r0 * bk, bk, mr, vpanel, cols, dst, dpad, true);
                    }
                }
            };
            detail::sweep_keys(p, pos0, lo, hi, n_kv, bk, process);
            detail::finish_rows(acc.data(), dpad, l.data(), rows, d, out + i0 * ldo + h * d, ldo);
        }
    });
}

inline void attention_reference(const float* q, std::size_t ldq, const float* k, std::size_t ldk, const float* v,
                                std::size_t ldv, float* out, std::size_t ldo, std::size_t n_q, std::size_t n_kv,
                                const AttentionParams& p) {
    detail::check_attention(p);
    const std::size_t d = p.head_dim, group = p.heads / p.kv_heads;
    std::vector<double> sc(n_kv);
    for (std::size_t h = 0; h < p.heads; ++h)
        for (std::size_t i = 0; i < n_q; ++i) {
            const std::size_t kvh = h / group, pos = p.q_offset + i;
            double mx = -INFINITY;
            for (std::size_t j = 0; j < n_kv; ++j) {
                if (!attention_visible(p, pos, j)) {
                    sc[j] = -INFINITY;
                    continue;
                }
                double dot = 0;
                for (std::size_t t = 0; t < d; ++t) dot += double(q[i * ldq + h * d + t]) * k[j * ldk + kvh * d + t];
                sc[j] = dot * p.scale;
                mx = std::max(mx, sc[j]);
            }
            double sum = 0;
            for (std::size_t j = 0; j < n_kv; ++j) sum += sc[j] == -INFINITY ? 0.0 : (sc[j] = std::exp(sc[j] - mx));
            for (std::size_t t = 0; t < d; ++t) {
                double o = 0;
                for (std::size_t j = 0; j < n_kv; ++j)
                    if (sc[j] != -INFINITY) o += sc[j] * v[j * ldv + kvh * d + t];
                out[i * ldo + h * d + t] = sum > 0 ? float(o / sum) : 0.0f;
            }
        }
}


}  // namespace kernels
DOCVLM_SIMD_WARNINGS_ON
DOCVLM_NAMESPACE_END
