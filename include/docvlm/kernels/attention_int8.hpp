// docvlm/kernels/attention_int8.hpp — the int8 attention path (AttentionParams::int8; AMX,
// AVX-512 VNNI, AVX-VNNI, AVX2, AArch64 I8MM): keys centred and quantised per head in qgemm's weight
// layout, queries as u8, u8 · s8 dot products for the scores, an exp2 softmax written as u8
// probabilities, P·V in int8 with per-channel value scales.
#pragma once

#include <docvlm/kernels/attention_tiles.hpp>

DOCVLM_NAMESPACE_BEGIN
DOCVLM_SIMD_WARNINGS_OFF
namespace kernels {

#if DOCVLM_X86_64 || defined(__aarch64__)
namespace detail {

// The int8 path's packed inputs (see AttentionParams::int8), built once per call.
struct AttentionInt8Scratch {
    AlignedBuffer<std::int8_t> kq;     // keys − mean: [kv_heads][key panels][dq / 4][32][4] (qgemm's weight layout)
    AlignedBuffer<std::int32_t> koff;  // [kv_heads][key panels · 32]: 128 · Σ_t kq (the u8 offset of the queries)
    AlignedBuffer<float> ks;           // [kv_heads][key panels · 32]: key scales (0 for padding keys)
    AlignedBuffer<float> kmean;        // [kv_heads][head_dim]
    AlignedBuffer<std::int8_t> vq;     // [kv_heads][d panels][keys padded to 32 / 4][32][4]
    AlignedBuffer<float> vs;           // [kv_heads][d panels · 32]: per-channel V scales
    // [heads][n_q rounded up to T::mr][dq]: round(q / sq) + 128, as T lays them out (AVX-512: in
    // tiles of 12 queries [dq / 4][12][4], as the int8 GEMM's activations, one sequential stream
    // for the kernel; the other paths: plain rows)
    AlignedBuffer<std::uint8_t> qu;
    AlignedBuffer<float> qsc;          // [heads][n_q]: sq · scale · log2 e
};

#if DOCVLM_X86_64

// dst[r][0..32) = (raw[r][0..32) − koff) · ks: a tile of int8 scores back to float, still without
// the query's factor (qsc, applied by exp2_sum_u8; it is >= 0, so a row's largest score is qsc
// times its largest entry here); the first `valid` of the 32 (the real keys) also go into each
// row's running lane maxima vmax[r][0..16) (so the row's max needs no second pass over its scores).
DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
inline void scores_from_i32(const std::int32_t* raw, std::size_t mr, const std::int32_t* koff, const float* ks, float* dst,
                            std::size_t ldd, std::size_t valid, float* vmax) {
    const __m512 s0 = _mm512_loadu_ps(ks), s1 = _mm512_loadu_ps(ks + 16);
    // raw · ks − koff · ks in one FMA (koff · ks rounded once: an error near 1e-7 of it)
    const __m512 o0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(koff)), s0),
                 o1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(koff + 16)), s1);
    const __mmask16 k0 = __mmask16(docvlm::detail::tail_mask16(std::min<std::size_t>(valid, 16))),
                    k1 = __mmask16(docvlm::detail::tail_mask16(valid > 16 ? valid - 16 : 0));
    for (std::size_t r = 0; r < mr; ++r) {
        const __m512 a = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(raw + r * 32)), s0, o0);
        const __m512 b = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(raw + r * 32 + 16)), s1, o1);
        _mm512_storeu_ps(dst + r * ldd, a);
        _mm512_storeu_ps(dst + r * ldd + 16, b);
        __m512 mx = _mm512_loadu_ps(vmax + r * 16);
        mx = _mm512_mask_max_ps(mx, k0, mx, a);
        _mm512_storeu_ps(vmax + r * 16, _mm512_mask_max_ps(mx, k1, mx, b));
    }
}

// The largest of a row's 16 running lane maxima.
DOCVLM_TARGET("avx512f,avx512bw,avx512vl") inline float lanes_max(const float* vmax) { return _mm512_reduce_max_ps(_mm512_loadu_ps(vmax)); }

// 2^x for x <= 0 (−inf and anything below −160 give 0) from a polynomial p(r) ≈ 2^r on
// |r| <= 1/2, coefficients from the constant term up: x = k + r, 2^x = p(r) · 2^k.
template <class... C>
DOCVLM_TARGET("avx512f,avx512bw,avx512vl") DOCVLM_ALWAYS_INLINE __m512 exp2_512_poly(__m512 x, C... c) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-160.0f));
    const __m512 k = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 r = _mm512_sub_ps(x, k);
    const float coef[] = {float(c)...};
    __m512 p = _mm512_set1_ps(coef[sizeof...(C) - 1]);
    for (std::size_t i = sizeof...(C) - 1; i-- > 0;) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(coef[i]));
    return _mm512_scalef_ps(p, k);
}

// 2^x by the degree-6 Taylor polynomial in r·ln 2 (relative error < 2e-7).
DOCVLM_TARGET("avx512f,avx512bw,avx512vl") inline __m512 exp2_512(__m512 x) {
    return exp2_512_poly(x, 1.0f, 6.9314718056e-1f, 2.4022650696e-1f, 5.5504108665e-2f, 9.6181291076e-3f, 1.3333558146e-3f,
                         1.5403530393e-4f);
}

// The coefficients of exp2_512_u8's polynomial times a factor (folded in: one multiplication
// fewer per 16 probabilities).
struct Exp2U8 {
    __m512 c0, c1, c2, c3;
};
DOCVLM_TARGET("avx512f,avx512bw,avx512vl") inline Exp2U8 exp2_u8_coefficients(float factor) {
    // a degree-3 polynomial fitted to 2^r on [0, 1) for relative error (7.5e-5)
    return {_mm512_set1_ps(9.999251962e-1f * factor), _mm512_set1_ps(6.958335042e-1f * factor),
            _mm512_set1_ps(2.260671705e-1f * factor), _mm512_set1_ps(7.802452147e-2f * factor)};
}

// factor · 2^x to a relative error of 7.5e-5 (x = floor(x) + r, p(r) ≈ 2^r, vscalefps adds
// floor(x) to the exponent): for probabilities rounded to u8 (steps of 1/255 of the largest) and
// their sum. Clamp: x may be −inf or NaN (a masked key, or one times a zero query), which give 0;
// without it x must be a number (anything far below 0 still gives 0).
template <bool Clamp>
DOCVLM_TARGET("avx512f,avx512bw,avx512vl") DOCVLM_ALWAYS_INLINE __m512 exp2_512_u8(__m512 x, const Exp2U8& c) {
    if constexpr (Clamp) x = _mm512_max_ps(x, _mm512_set1_ps(-160.0f));  // vmaxps returns its second operand for NaN
    const __m512 r = _mm512_sub_ps(x, _mm512_roundscale_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC));
    const __m512 p = _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_fmadd_ps(c.c3, r, c.c2), r, c.c1), r, c.c0);
    return _mm512_scalef_ps(p, x);
}

// 16 probabilities inv · 2^(t · q − mx), added to sum, rounded to int32 (exp2_sum_u8's step).
template <bool Clamp>
DOCVLM_TARGET("avx512f,avx512bw,avx512vl") DOCVLM_ALWAYS_INLINE __m512i exp2_lanes(const float* t, __m512 vq, __m512 vm, const Exp2U8& c, __m512& sum) {
    const __m512 e = exp2_512_u8<Clamp>(_mm512_fmsub_ps(_mm512_loadu_ps(t), vq, vm), c);
    sum = _mm512_add_ps(sum, e);
    return _mm512_cvtps_epi32(e);
}

template <bool Clamp>
DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
inline float exp2_sum_u8_impl(const float* t, std::size_t n, float q, float mx, float inv, std::uint8_t* out) {
    const __m512 vq = _mm512_set1_ps(q), vm = _mm512_set1_ps(mx);
    const Exp2U8 c = exp2_u8_coefficients(inv);
    __m512 sum = _mm512_setzero_ps();
    // 64 at a time: two saturating packs and one dword permutation instead of four vpmovusdb
    // (two shuffle-port µops each). After the packs, dword 4L + j holds source j's values
    // 4L..4L+3; dword D must hold source D / 4's values 4(D % 4)..: index 4(D % 4) + D / 4.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    std::size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        // named values, not an array: GCC 12 kept an array of four on the stack
        const __m512i q0 = exp2_lanes<Clamp>(t + i, vq, vm, c, sum), q1 = exp2_lanes<Clamp>(t + i + 16, vq, vm, c, sum),
                      q2 = exp2_lanes<Clamp>(t + i + 32, vq, vm, c, sum), q3 = exp2_lanes<Clamp>(t + i + 48, vq, vm, c, sum);
        const __m512i packed = _mm512_packus_epi16(_mm512_packus_epi32(q0, q1), _mm512_packus_epi32(q2, q3));
        _mm512_storeu_si512(out + i, _mm512_permutexvar_epi32(order, packed));
    }
    for (; i < n; i += 16) {
        const __mmask16 k = __mmask16(docvlm::detail::tail_mask16(n - i));
        const __m512 e = _mm512_maskz_mov_ps(k, exp2_512_u8<true>(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(k, t + i), vq, vm), c));
        sum = _mm512_add_ps(sum, e);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(e)));
    }
    return _mm512_reduce_add_ps(sum) / inv;
}

// Scores t · q in log2 units (the queries' factor q >= 0 carries log2 e): out[0..n) =
// round(2^(t · q − mx) · inv) as u8, zero from n up to n rounded up to 16 (the caller's row must
// have room); returns Σ 2^(t · q − mx) in float, without writing t back. `masked`: t holds −inf
// (hidden keys). (Whole 16-byte stores: a masked vpmovusdb to memory cost 40 % of this.)
inline float exp2_sum_u8(const float* t, std::size_t n, float q, float mx, float inv, std::uint8_t* out, bool masked) {
    return masked ? exp2_sum_u8_impl<true>(t, n, q, mx, inv, out) : exp2_sum_u8_impl<false>(t, n, q, mx, inv, out);
}

// The online softmax's per-row update for rows [0, n), from each row's running max m and this
// tile's max bm (log2 units; −inf: nothing visible): alpha = 2^(m − m'), the factor for what was
// accumulated (1 when the tile has nothing visible), pmax = 2^(bm − m'), the tile's largest
// probability, and m = m' = max(m, bm).
DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
inline void softmax_rows_update(float* m, const float* bm, float* alpha, float* pmax, std::size_t n) {
    const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 k = __mmask16(docvlm::detail::tail_mask16(n - i));
        const __m512 vm = _mm512_mask_loadu_ps(neg_inf, k, m + i), vb = _mm512_mask_loadu_ps(neg_inf, k, bm + i);
        const __m512 mx = _mm512_max_ps(vm, vb);
        const __mmask16 seen = _mm512_cmp_ps_mask(vb, neg_inf, _CMP_NEQ_OQ);
        // m = −inf with bm finite: 2^(−inf) = 0 (nothing accumulated yet); both −inf: alpha 1
        const __m512 a = _mm512_mask_blend_ps(seen, _mm512_set1_ps(1.0f), exp2_512(_mm512_sub_ps(vm, mx)));
        _mm512_mask_storeu_ps(alpha + i, k, a);
        _mm512_mask_storeu_ps(pmax + i, k, _mm512_maskz_mov_ps(seen, exp2_512(_mm512_sub_ps(vb, mx))));
        _mm512_mask_storeu_ps(m + i, k, mx);
    }
}

// acc[r][0..cols) = acc[r][0..cols) · alpha[r] + raw[r][0..cols) · sp[r] · vs[0..cols) (cols 16 or 32).
DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
inline void accumulate_pv(const std::int32_t* raw, std::size_t mr, const float* sp, const float* alpha, const float* vs,
                          std::size_t cols, float* acc, std::size_t lda) {
    const __m512 v0 = _mm512_loadu_ps(vs), v1 = _mm512_loadu_ps(vs + 16);
    for (std::size_t r = 0; r < mr; ++r) {
        const __m512 s = _mm512_set1_ps(sp[r]), a = _mm512_set1_ps(alpha[r]);
        float* o = acc + r * lda;
        _mm512_storeu_ps(o, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(raw + r * 32)), _mm512_mul_ps(s, v0),
                                            _mm512_mul_ps(_mm512_loadu_ps(o), a)));
        if (cols > 16)
            _mm512_storeu_ps(o + 16, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(raw + r * 32 + 16)), _mm512_mul_ps(s, v1),
                                                     _mm512_mul_ps(_mm512_loadu_ps(o + 16), a)));
    }
}

// Keys' mean and V's per-channel scales (largest |v| / 127; zero past d up to `width`) of kv
// heads [0, nh) (d channels apart in a row): k and v point at the first head's first channel of
// key 0; head h's results go to kmean + h·d and vs + h·width. Any mean would do (q·mean is the
// same for every key of a query, so softmax ignores it): float sums are enough.
DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
inline void kv_stats_avx512(const float* k, std::size_t ldk, const float* v, std::size_t ldv, std::size_t n_kv, std::size_t d,
                            std::size_t nh, float* kmean, float* vs, std::size_t width) {
    // Key by key, all nh heads of a row together (one contiguous stretch of the row instead of
    // one strided pass per head), sums and maxima in a per-thread buffer; each head's channel
    // still sums its keys in order.
    const std::size_t dp = (d + 15) / 16 * 16;
    thread_local std::vector<float> buf;
    if (buf.size() < 2 * nh * dp) buf.resize(2 * nh * dp);
    float *sum = buf.data(), *vmax = buf.data() + nh * dp;
    std::fill(buf.begin(), buf.begin() + std::ptrdiff_t(2 * nh * dp), 0.0f);
    for (std::size_t j = 0; j < n_kv; ++j)
        for (std::size_t h = 0; h < nh; ++h)
            for (std::size_t t = 0; t < d; t += 16) {
                const __mmask16 m = __mmask16(docvlm::detail::tail_mask16(d - t));
                float *s = sum + h * dp + t, *x = vmax + h * dp + t;
                _mm512_storeu_ps(s, _mm512_add_ps(_mm512_loadu_ps(s), _mm512_maskz_loadu_ps(m, k + j * ldk + h * d + t)));
                _mm512_storeu_ps(x, _mm512_max_ps(_mm512_loadu_ps(x), _mm512_abs_ps(_mm512_maskz_loadu_ps(m, v + j * ldv + h * d + t))));
            }
    for (std::size_t h = 0; h < nh; ++h) {
        for (std::size_t t = 0; t < d; t += 16) {
            const __mmask16 m = __mmask16(docvlm::detail::tail_mask16(d - t));
            _mm512_mask_storeu_ps(kmean + h * d + t, m, _mm512_mul_ps(_mm512_loadu_ps(sum + h * dp + t), _mm512_set1_ps(1.0f / float(n_kv))));
            _mm512_mask_storeu_ps(vs + h * width + t, m, _mm512_mul_ps(_mm512_loadu_ps(vmax + h * dp + t), _mm512_set1_ps(1.0f / 127.0f)));
        }
        std::fill(vs + h * width + d, vs + (h + 1) * width, 0.0f);
    }
}

#endif  // DOCVLM_X86_64

// One 32-key panel of keys (n <= 32 real ones, the rest zero): k − mean quantised per key within
// ±qmax into dst [dq / 4][32][4] (dq >= d, a multiple of 4; zero past d), with each key's scale
// and 128 · Σ q (the queries' u8 offset) in ks / koff; the row work in the ISA copy `isa` names.
template <class Isa>
void pack_keys(Isa isa, const float* k, std::size_t ldk, std::size_t n, std::size_t d, std::size_t dq, const float* kmean,
               std::int8_t* dst, float* ks, std::int32_t* koff, float qmax) {
    alignas(64) float row[512];
    alignas(64) std::int8_t q[512];
    std::memset(dst, 0, fpanel * dq);
    for (std::size_t jj = 0; jj < fpanel; ++jj) {
        ks[jj] = 0.0f, koff[jj] = 0;
        if (jj >= n) continue;
        ks[jj] = int8_centred_key(isa, k + jj * ldk, kmean, d, row, q, qmax);
        for (std::size_t t = 0; t < d; ++t) koff[jj] += 128 * q[t];
        for (std::size_t t = 0; t < d; ++t) dst[(t / 4 * fpanel + jj) * 4 + t % 4] = q[t];
    }
}

#if DOCVLM_X86_64
// One 32-key panel of values (n <= 32 real ones, the rest zero), int8 per channel with scales
// vs: for each 32-channel slice (slice_stride bytes apart), [key / 4][32 channels][4 keys]. Four
// keys and 16 channels make one 64-byte store.
DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
inline void pack_values_avx512(const float* v, std::size_t ldv, std::size_t n, std::size_t d, const float* vs, std::int8_t* dst,
                               std::size_t slice_stride) {
    const std::size_t width = (d + fpanel - 1) / fpanel * fpanel;
    for (std::size_t j4 = 0; j4 < fpanel; j4 += 4)
        for (std::size_t t = 0; t < width; t += 16) {
            std::int8_t* out = dst + (t / fpanel) * slice_stride + j4 * fpanel + (t % fpanel) * 4;
            const __mmask16 m = __mmask16(docvlm::detail::tail_mask16(t < d ? d - t : 0));
            const __m512 s16 = _mm512_maskz_loadu_ps(m, vs + t);
            const __m512 inv = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(s16, _mm512_setzero_ps(), _CMP_GT_OQ), _mm512_set1_ps(1.0f), s16);
            __m512i word = _mm512_setzero_si512();
            for (std::size_t u = 0; u < 4 && j4 + u < n; ++u) {
                __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, v + (j4 + u) * ldv + t), inv));  // half to even
                q = _mm512_min_epi32(_mm512_max_epi32(q, _mm512_set1_epi32(-127)), _mm512_set1_epi32(127));
                word = _mm512_or_si512(word, _mm512_slli_epi32(_mm512_and_si512(q, _mm512_set1_epi32(0xff)), unsigned(8 * u)));
            }
            _mm512_storeu_si512(out, word);
        }
}

#endif  // DOCVLM_X86_64

// One 32-key panel of values (n <= 32 real ones, the rest zero) as pack_values_avx512 writes it,
// in portable code: the same products v · (1 / vs), rounded half to even and clamped to ±qmax.
inline void pack_values_portable(const float* v, std::size_t ldv, std::size_t n, std::size_t d, const float* vs, std::int8_t* dst,
                                 std::size_t slice_stride, float qmax) {
    const std::size_t slices = (d + fpanel - 1) / fpanel;
    for (std::size_t sl = 0; sl < slices; ++sl) std::memset(dst + sl * slice_stride, 0, fpanel * fpanel);
    float inv[512];  // head_dim <= 512 (checked by the caller)
    for (std::size_t t = 0; t < d; ++t) inv[t] = vs[t] > 0.0f ? 1.0f / vs[t] : 0.0f;
    for (std::size_t j = 0; j < n; ++j)
        for (std::size_t t = 0; t < d; ++t) {
            const float q = std::clamp(std::nearbyint(v[j * ldv + t] * inv[t]), -qmax, qmax);
            dst[(t / fpanel) * slice_stride + (j / 4 * fpanel + t % fpanel) * 4 + j % 4] = std::int8_t(q);
        }
}

// The online softmax's per-row update (as softmax_rows_update, in scalar code for the paths
// without AVX-512; once per row and key tile).
inline void softmax_rows_update_portable(float* m, const float* bm, float* alpha, float* pmax, std::size_t n) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    for (std::size_t i = 0; i < n; ++i) {
        const float mx = std::max(m[i], bm[i]);
        const bool seen = bm[i] != neg_inf;
        alpha[i] = seen ? std::exp2(m[i] - mx) : 1.0f;
        pmax[i] = seen ? std::exp2(bm[i] - mx) : 0.0f;
        m[i] = mx;
    }
}

#if DOCVLM_X86_64
// What differs between the int8 paths; attention_int8 is written once against it.
//   mr                      queries per micro-tile
//   padded_dim(d)           bytes of a packed query or key row (d rounded up; zeros past d)
//   begin_work(), end_work() around each work item on its thread (AMX: the tile configuration)
//   query_offset(i, dq)     where query i's packed u8 row (dq bytes) starts in a head's buffer
//   write_query(q, dq, dst) query i's int8 values (dq, zero-padded) as u8 = q + 128 at dst
//   kv_stats, quantize, pack_keys, pack_values, scores, lanes_max, exp2_sum, accumulate: the
//   float work (the AVX-512 helpers above, or one copy of the row kernels of kernels/rowwise.hpp:
//   AVX2 or NEON, Int8AttentionRows below)
//   qk(tile, dq, mr, panel, d4, raw), pv(rows, ldp, mr, panel, k4, raw, width): the products
//   update_rows(m, bm, alpha, pmax, n): the online softmax's per-row update
struct Int8AttentionAvx512 {
    static constexpr std::size_t mr = qmr;  // 12, the tiled layout of qgemm's AVX-512 activations
    static std::size_t padded_dim(std::size_t d) { return (d + 3) / 4 * 4; }
    static void begin_work() {}
    static void end_work() {}
    static std::size_t query_offset(std::size_t i, std::size_t dq) { return tiled_row_offset(i, dq); }
    static void write_query(const std::int8_t* q, std::size_t dq, std::uint8_t* dst) {
        for (std::size_t kk = 0; kk < dq / 4; ++kk) {  // 4 bytes at a time, each + 128 (sign bit flipped)
            std::uint32_t word;
            std::memcpy(&word, q + 4 * kk, 4);
            word ^= 0x80808080u;
            std::memcpy(dst + kk * 4 * qmr, &word, 4);
        }
    }
    static void kv_stats(const float* k, std::size_t ldk, const float* v, std::size_t ldv, std::size_t n_kv, std::size_t d,
                         std::size_t nh, float* kmean, float* vs, std::size_t width) {
        kv_stats_avx512(k, ldk, v, ldv, n_kv, d, nh, kmean, vs, width);
    }
    static float quantize(const float* x, std::size_t d, std::int8_t* q) { return simd::avx512::quantize_row(simd::avx512::Isa{}, x, d, q); }
    static void pack_keys(const float* k, std::size_t ldk, std::size_t n, std::size_t d, std::size_t dq, const float* kmean,
                          std::int8_t* dst, float* ks, std::int32_t* koff) {
        detail::pack_keys(simd::avx512::Isa{}, k, ldk, n, d, dq, kmean, dst, ks, koff, 127.0f);
    }
    static void pack_values(const float* v, std::size_t ldv, std::size_t n, std::size_t d, const float* vs, std::int8_t* dst,
                            std::size_t slice_stride) {
        pack_values_avx512(v, ldv, n, d, vs, dst, slice_stride);
    }
    static void qk(const std::uint8_t* tile, std::size_t, std::size_t rows, const std::int8_t* panel, std::size_t d4, std::int32_t* raw) {
        qkernel_avx512vnni_rows(reinterpret_cast<const std::byte*>(tile), 0, rows, panel, d4, raw, nullptr, false, true);
    }
    static void scores(const std::int32_t* raw, std::size_t rows, const std::int32_t* koff, const float* ks, float* dst,
                       std::size_t ldd, std::size_t valid, float* vmax) {
        scores_from_i32(raw, rows, koff, ks, dst, ldd, valid, vmax);
    }
    static float row_lanes_max(const float* vmax) { return lanes_max(vmax); }
    static float exp2_sum(const float* t, std::size_t n, float q, float mx, float inv, std::uint8_t* out, bool masked) {
        return exp2_sum_u8(t, n, q, mx, inv, out, masked);
    }
    static void pv(const std::uint8_t* p, std::size_t ldp, std::size_t rows, const std::int8_t* panel, std::size_t k4,
                   std::int32_t* raw, std::size_t width) {
        qkernel_avx512vnni_rows(reinterpret_cast<const std::byte*>(p), ldp, rows, panel, k4, raw, nullptr, width <= 16);
    }
    static void accumulate(const std::int32_t* raw, std::size_t rows, const float* sp, const float* alpha, const float* vs,
                           std::size_t cols, float* acc, std::size_t lda) {
        accumulate_pv(raw, rows, sp, alpha, vs, cols, acc, lda);
    }
    static void update_rows(float* m, const float* bm, float* alpha, float* pmax, std::size_t n) {
        softmax_rows_update(m, bm, alpha, pmax, n);
    }
};

// AMX (Sapphire Rapids and later): the products on tiles (qproduct_amx), 32 queries at a time,
// queries as plain u8 rows and keys as panels of head_dim rounded up to 64 (whole chunks of K for
// tdpbusd: a head of 80 computes 128), the float work as on AVX-512.
struct Int8AttentionAmx : Int8AttentionAvx512 {
    static constexpr std::size_t mr = amx_tile_rows;
    static std::size_t padded_dim(std::size_t d) { return (d + 63) / 64 * 64; }
    static void begin_work() { amx_configure(); }
    static void end_work() { amx_release(); }
    static std::size_t query_offset(std::size_t i, std::size_t dq) { return i * dq; }
    static void write_query(const std::int8_t* q, std::size_t dq, std::uint8_t* dst) {
        for (std::size_t t = 0; t < dq; ++t) dst[t] = std::uint8_t(q[t]) ^ 0x80u;
    }
    static void qk(const std::uint8_t* rows, std::size_t dq, std::size_t mr, const std::int8_t* panel, std::size_t d4, std::int32_t* raw) {
        qproduct_amx(reinterpret_cast<const std::byte*>(rows), dq, mr, panel, d4, raw);
    }
    static void pv(const std::uint8_t* p, std::size_t ldp, std::size_t mr, const std::int8_t* panel, std::size_t k4,
                   std::int32_t* raw, std::size_t) {
        qproduct_amx(reinterpret_cast<const std::byte*>(p), ldp, mr, panel, k4, raw);
    }
};
#endif  // DOCVLM_X86_64

// The paths whose float work runs on one copy of the row kernels (kernels/rowwise.hpp) and whose
// queries are plain u8 rows; K names the copy (K::Isa), the queries per tile (K::mr), the int8
// range of keys and values (K::qmax) and the product kernel (K::kernel: u8 rows · s8 panel).
template <class K>
struct Int8AttentionRows {
    static constexpr std::size_t mr = K::mr;
    static constexpr float qmax = K::qmax;
    using Isa = typename K::Isa;
    static std::size_t padded_dim(std::size_t d) { return (d + 3) / 4 * 4; }
    static void begin_work() {}
    static void end_work() {}
    static std::size_t query_offset(std::size_t i, std::size_t dq) { return i * dq; }
    static void write_query(const std::int8_t* q, std::size_t dq, std::uint8_t* dst) {
        for (std::size_t t = 0; t < dq; ++t) dst[t] = std::uint8_t(q[t]) ^ 0x80u;
    }
    static void kv_stats(const float* k, std::size_t ldk, const float* v, std::size_t ldv, std::size_t n_kv, std::size_t d,
                         std::size_t nh, float* kmean, float* vs, std::size_t width) {
        thread_local std::vector<float> buf;
        if (buf.size() < 2 * nh * d) buf.resize(2 * nh * d);
        int8_kv_stats(Isa{}, k, ldk, v, ldv, n_kv, d, nh, kmean, vs, width, buf.data(), qmax);
    }
    static float quantize(const float* x, std::size_t d, std::int8_t* q) { return quantize_row(Isa{}, x, d, q); }
    static void pack_keys(const float* k, std::size_t ldk, std::size_t n, std::size_t d, std::size_t dq, const float* kmean,
                          std::int8_t* dst, float* ks, std::int32_t* koff) {
        detail::pack_keys(Isa{}, k, ldk, n, d, dq, kmean, dst, ks, koff, qmax);
    }
    static void pack_values(const float* v, std::size_t ldv, std::size_t n, std::size_t d, const float* vs, std::int8_t* dst,
                            std::size_t slice_stride) {
        pack_values_portable(v, ldv, n, d, vs, dst, slice_stride, qmax);
    }
    static void qk(const std::uint8_t* tile, std::size_t dq, std::size_t rows, const std::int8_t* panel, std::size_t d4, std::int32_t* raw) {
        K::kernel(reinterpret_cast<const std::byte*>(tile), dq, rows, panel, d4, raw);
    }
    static void scores(const std::int32_t* raw, std::size_t rows, const std::int32_t* koff, const float* ks, float* dst,
                       std::size_t ldd, std::size_t valid, float* vmax) {
        int8_scores(Isa{}, raw, rows, koff, ks, dst, ldd, valid, vmax);
    }
    static float row_lanes_max(const float* vmax) { return int8_lanes_max(Isa{}, vmax); }
    static float exp2_sum(const float* t, std::size_t n, float q, float mx, float inv, std::uint8_t* out, bool) {
        return int8_exp2_sum(Isa{}, t, n, q, mx, inv, out);
    }
    static void pv(const std::uint8_t* p, std::size_t ldp, std::size_t rows, const std::int8_t* panel, std::size_t k4,
                   std::int32_t* raw, std::size_t) {
        K::kernel(reinterpret_cast<const std::byte*>(p), ldp, rows, panel, k4, raw);
    }
    static void accumulate(const std::int32_t* raw, std::size_t rows, const float* sp, const float* alpha, const float* vs,
                           std::size_t cols, float* acc, std::size_t lda) {
        int8_accumulate_pv(Isa{}, raw, rows, sp, alpha, vs, (cols + 7) / 8 * 8, acc, lda);
    }
    static void update_rows(float* m, const float* bm, float* alpha, float* pmax, std::size_t n) {
        softmax_rows_update_portable(m, bm, alpha, pmax, n);
    }
};

// Calls kernel.operator()<R>() with R = min(rows, MR), MR <= 6: a tile's rows as a template argument.
template <std::size_t MR, class Kernel>
void int8_tile_kernel(std::size_t rows, Kernel&& kernel) {
    switch (std::min(rows, MR)) {
        case 1: return kernel.template operator()<1>();
        case 2: return kernel.template operator()<2>();
        case 3: return kernel.template operator()<3>();
        case 4: return kernel.template operator()<4>();
        case 5: if constexpr (MR >= 5) return kernel.template operator()<5>(); else return;
        default: if constexpr (MR >= 6) return kernel.template operator()<6>(); else return;
    }
}

#if DOCVLM_X86_64
// The 256-bit paths, the float work from the AVX2 row kernels:
// - AVX-VNNI (Alder Lake and later, Zen 5 without AVX-512): {vex} vpdpbusd on ymm (qgemm's
//   qkernel_avxvnni, 6 queries per tile, plain u8 rows), keys and values within ±127.
// - AVX2 without VNNI: vpmaddubsw + vpmaddwd (qkernel_avx2u8, 4 queries per tile), whose int16
//   pair sums cannot saturate because keys and values are quantised within ±63 (2 · 255 · 63 <
//   32767): one bit less for them, about twice the f32 FMA's rate.
struct Int8KernelAvxVnni {
    static constexpr std::size_t mr = 6;
    static constexpr float qmax = 127.0f;
    using Isa = simd::avx2::Isa;
    static void kernel(const std::byte* a, std::size_t lda, std::size_t rows, const std::int8_t* w, std::size_t k4, std::int32_t* raw) {
        int8_tile_kernel<mr>(rows, [&]<int R>() { qkernel_avxvnni<R>(a, lda, w, k4, raw); });
    }
};
struct Int8KernelAvx2 {
    static constexpr std::size_t mr = 4;
    static constexpr float qmax = 63.0f;
    using Isa = simd::avx2::Isa;
    static void kernel(const std::byte* a, std::size_t lda, std::size_t rows, const std::int8_t* w, std::size_t k4, std::int32_t* raw) {
        int8_tile_kernel<mr>(rows, [&]<int R>() { qkernel_avx2u8<R>(a, lda, w, k4, raw); });
    }
};
using Int8AttentionAvxVnni = Int8AttentionRows<Int8KernelAvxVnni>;
using Int8AttentionAvx2 = Int8AttentionRows<Int8KernelAvx2>;
#endif  // DOCVLM_X86_64

#if defined(__aarch64__)
// AArch64 with I8MM: `usdot` (u8 · s8, the VNNI instructions' arithmetic; qkernel_neonusdot,
// 6 queries per tile), keys and values within ±127, the float work from the NEON row kernels.
struct Int8KernelNeonUsdot {
    static constexpr std::size_t mr = 6;
    static constexpr float qmax = 127.0f;
    using Isa = simd::neon::Isa;
    static void kernel(const std::byte* a, std::size_t lda, std::size_t rows, const std::int8_t* w, std::size_t k4, std::int32_t* raw) {
        int8_tile_kernel<mr>(rows, [&]<int R>() { qkernel_neonusdot<R>(a, lda, w, k4, raw); });
    }
};
using Int8AttentionNeonUsdot = Int8AttentionRows<Int8KernelNeonUsdot>;
#endif

template <class T>
void attention_int8(const float* q, std::size_t ldq, const float* k, std::size_t ldk, const float* v, std::size_t ldv,
                           float* out, std::size_t ldo, std::size_t n_q, std::size_t n_kv, const AttentionParams& p, ThreadPool& pool) {
    const std::size_t d = p.head_dim, dq = T::padded_dim(d), d4 = dq / 4;
    const std::size_t panels = (n_kv + fpanel - 1) / fpanel, kv_pad = panels * fpanel, dpanels = (d + fpanel - 1) / fpanel;
    // A reference: inside the tasks the thread_local itself would name each worker's own copy.
    thread_local AttentionInt8Scratch scratch;
    AttentionInt8Scratch& sc = scratch;
    auto grow = [](auto& buf, std::size_t n) {
        if (buf.size() < n) buf = std::remove_reference_t<decltype(buf)>(n);
    };
    grow(sc.kq, p.kv_heads * kv_pad * dq);
    grow(sc.koff, p.kv_heads * kv_pad);
    grow(sc.ks, p.kv_heads * kv_pad);
    grow(sc.kmean, p.kv_heads * d);
    grow(sc.vq, p.kv_heads * dpanels * kv_pad * fpanel);
    grow(sc.vs, p.kv_heads * dpanels * fpanel);
    const std::size_t qtiles = (n_q + T::mr - 1) / T::mr;
    grow(sc.qu, p.heads * qtiles * T::mr * dq);
    grow(sc.qsc, n_q * p.heads);

    // Per kv head: the keys' mean and the largest |v| of each channel; then per 32-key panel the
    // keys minus their mean and the values, as int8 (see the helpers). Items run panel by panel,
    // every head of a panel in turn, so the rows are read in stretches rather than one head's
    // 4·head_dim bytes at a time (the layer's key and value packing: ~4.2 % of its perf samples
    // -> 1.5-1.7 % on AMD Zen 4; outputs bit-identical).
    pool.parallel_for(p.kv_heads, [&](std::size_t b, std::size_t e) {
        T::kv_stats(k + b * d, ldk, v + b * d, ldv, n_kv, d, e - b, sc.kmean.data() + b * d, sc.vs.data() + b * dpanels * fpanel,
                        dpanels * fpanel);
    });
    pool.parallel_for(p.kv_heads * panels, [&](std::size_t b, std::size_t e) {
        for (std::size_t item = b; item < e; ++item) {
            const std::size_t pn = item / p.kv_heads, h = item % p.kv_heads, j0 = pn * fpanel;
            T::pack_keys(k + j0 * ldk + h * d, ldk, std::min(fpanel, n_kv - j0), d, dq, sc.kmean.data() + h * d,
                             sc.kq.data() + (h * panels + pn) * fpanel * dq, sc.ks.data() + h * kv_pad + j0, sc.koff.data() + h * kv_pad + j0);
            T::pack_values(v + j0 * ldv + h * d, ldv, std::min(fpanel, n_kv - j0), d, sc.vs.data() + h * dpanels * fpanel,
                               sc.vq.data() + (h * dpanels * kv_pad + j0) * fpanel, kv_pad * fpanel);
        }
    });
    // Queries per row and head as u8 = q + 128 (padding: 128, i.e. zero), laid out as T says.
    pool.parallel_for(n_q, [&](std::size_t b, std::size_t e) {
        alignas(64) std::int8_t qrow[512];  // head_dim <= 512 (checked by the caller)
        for (std::size_t i = b; i < e; ++i)
            for (std::size_t h = 0; h < p.heads; ++h) {
                // log2 e: the scores come out in log2 units, for exp2 (softmax is the same)
                sc.qsc[h * n_q + i] = T::quantize(q + i * ldq + h * d, d, qrow) * p.scale * 1.44269504088896341f;
                for (std::size_t t = d; t < dq; ++t) qrow[t] = 0;
                T::write_query(qrow, dq, sc.qu.data() + h * qtiles * T::mr * dq + T::query_offset(i, dq));
            }
    });

    // query blocks start on a tile of T::mr queries (the layout of qu)
    const std::size_t bq = ((p.block_q ? p.block_q : p.window ? 24 : 96) + T::mr - 1) / T::mr * T::mr, bk = p.block_k,
                      qblocks = (n_q + bq - 1) / bq;
    const std::size_t dpad = dpanels * fpanel;
    const float neg_inf = -std::numeric_limits<float>::infinity();
    pool.parallel_for_balanced(p.heads * qblocks, [&](std::size_t begin, std::size_t end) {
        thread_local std::vector<float> s, acc, m, l, sp, bm, alpha, pmax, vmax;
        thread_local std::vector<std::uint8_t> pu;
        thread_local std::vector<char> hid;  // per row: whether the tile hid any of its keys
        if (hid.size() < bq) hid.resize(bq);
        if (s.size() < bq * bk) s.resize(bq * bk);
        if (vmax.size() < bq * 16) vmax.resize(bq * 16);
        if (pu.size() < bq * bk) pu.resize(bq * bk);
        if (acc.size() < bq * dpad) acc.resize(bq * dpad);
        for (auto* vec : {&m, &l, &sp, &bm, &alpha, &pmax})
            if (vec->size() < bq) vec->resize(bq);
        alignas(64) std::int32_t raw[T::mr * qpanel];
        T::begin_work();
        for (std::size_t item = begin; item < end; ++item) {
            // named copies, not a structured binding: lambdas below capture them (clang < 16 cannot
            // capture a binding)
            const QueryBlock qb = query_block(p, item, qblocks, bq, n_q, n_kv);
            const std::size_t h = qb.h, kvh = qb.kvh, i0 = qb.i0, rows = qb.rows, pos0 = qb.pos0, lo = qb.lo, hi = qb.hi;
            start_rows(acc.data(), dpad, m.data(), l.data(), rows);
            const float* qs = sc.qsc.data() + h * n_q + i0;
            const std::uint8_t* qh = sc.qu.data() + (h * qtiles * T::mr + i0) * dq;  // i0: a multiple of T::mr
            auto process = [&](std::size_t j0, std::size_t j1, std::size_t from) {
                const std::size_t cols = j1 - j0, cols4 = (cols + 3) / 4;
                std::fill(vmax.begin(), vmax.begin() + std::ptrdiff_t(rows * 16), neg_inf);
                for (std::size_t pn = 0; pn * fpanel < cols; ++pn) {
                    const std::size_t kp = j0 / fpanel + pn;
                    const std::int8_t* panel = sc.kq.data() + (kvh * panels + kp) * fpanel * dq;
                    for (std::size_t r0 = 0; r0 < rows; r0 += T::mr) {
                        const std::size_t mr = std::min(T::mr, rows - r0);
                        T::qk(qh + r0 * dq, dq, mr, panel, d4, raw);
                        T::scores(raw, mr, sc.koff.data() + kvh * kv_pad + kp * fpanel, sc.ks.data() + kvh * kv_pad + kp * fpanel,
                                        s.data() + r0 * bk + pn * fpanel, bk, std::min(fpanel, cols - pn * fpanel), vmax.data() + r0 * 16);
                    }
                }
                for (std::size_t r = 0; r < rows; ++r) {  // a masked row's max again from what is left
                    float* sr = s.data() + r * bk;
                    hid[r] = mask_scores(p, sr, pos0 + r, j0, cols, from);
                    const float tmax = hid[r] ? row_max(sr, cols, neg_inf) : T::row_lanes_max(vmax.data() + r * 16);
                    bm[r] = tmax == neg_inf ? neg_inf : tmax * qs[r];  // qs[r] >= 0 (0 · −inf would be NaN)
                }
                T::update_rows(m.data(), bm.data(), alpha.data(), pmax.data(), rows);
                for (std::size_t r = 0; r < rows; ++r) {
                    std::uint8_t* pr = pu.data() + r * bk;
                    // Nothing visible in this tile for this row, or nothing that counts: a tile whose
                    // largest probability is below 2^-64 of the row's running maximum adds less than
                    // float resolution to its sum (and 255 / pmax would overflow below ~2^-120).
                    if (bm[r] == neg_inf || pmax[r] < 0x1p-64f) {
                        std::fill(pr, pr + cols4 * 4, std::uint8_t(0));
                        sp[r] = 0.0f;
                        continue;
                    }
                    // the acc rows are scaled by alpha in accumulate_pv below; the row of bk bytes
                    // (a multiple of 32) has room for exp2_sum_u8's whole 16-byte stores
                    l[r] = l[r] * alpha[r] + T::exp2_sum(s.data() + r * bk, cols, qs[r], m[r], 255.0f / pmax[r], pr, hid[r]);
                    sp[r] = pmax[r] / 255.0f;
                }
                for (std::size_t dp = 0; dp < dpanels; ++dp) {
                    const std::int8_t* vpanel = sc.vq.data() + ((kvh * dpanels + dp) * kv_pad + j0) * fpanel;
                    const std::size_t width = std::min(fpanel, d - dp * fpanel);
                    for (std::size_t r0 = 0; r0 < rows; r0 += T::mr) {
                        const std::size_t mr = std::min(T::mr, rows - r0);
                        T::pv(pu.data() + r0 * bk, bk, mr, vpanel, cols4, raw, width);
                        T::accumulate(raw, mr, sp.data() + r0, alpha.data() + r0, sc.vs.data() + (kvh * dpanels + dp) * fpanel,
                                      width, acc.data() + r0 * dpad + dp * fpanel, dpad);
                    }
                }
            };
            sweep_keys(p, pos0, lo, hi, n_kv, bk, process);
            finish_rows(acc.data(), dpad, l.data(), rows, d, out + i0 * ldo + h * d, ldo);
        }
        T::end_work();
    });
}

}  // namespace detail
#endif


}  // namespace kernels
DOCVLM_SIMD_WARNINGS_ON
DOCVLM_NAMESPACE_END
