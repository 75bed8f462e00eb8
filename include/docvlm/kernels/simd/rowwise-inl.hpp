// docvlm/kernels/simd/rowwise-inl.hpp — the row kernels, written once for every instruction set.
//
// No include guard: kernels/rowwise.hpp includes this file once per ISA, inside namespace
// docvlm::kernels::simd, with
//   DOCVLM_SIMD_NS    the namespace of this copy (avx512, avx2, neon, generic)
//   DOCVLM_SIMD_VEC   its vector type (kernels/simd/vec.hpp)
//   DOCVLM_SIMD_ATTR  its target attribute (empty where the ISA is the compiler's baseline)
// Every function takes the copy's tag `Isa` first, so callers pick a copy by overload (ADL).
// Lambdas are avoided on purpose: GCC does not give a lambda its enclosing function's target.
//
// Accuracy (what the tests hold the copies to, against the double references in kernels/ops.hpp):
// sums run in one vector accumulator, so a row of n values is summed in ⌈n / lanes⌉ + log2(lanes)
// roundings; exp's polynomial is within 2e-7 relative on |r| ≤ ln2 / 2; erf within 1.5e-7 absolute.

namespace DOCVLM_SIMD_NS {

struct Isa {
    using V = DOCVLM_SIMD_VEC;
    static constexpr std::size_t lanes = V::lanes;
};
using V = DOCVLM_SIMD_VEC;
using R = V::R;
inline constexpr std::size_t L = V::lanes;

#define DOCVLM_SIMD_INLINE DOCVLM_SIMD_ATTR DOCVLM_ALWAYS_INLINE
#define DOCVLM_SIMD_FN DOCVLM_SIMD_ATTR inline

// exp(x): x = k·ln2 + r, |r| ≤ ln2/2, exp(r) by a degree-6 polynomial, times 2^k. Inputs below
// −104 give 0 (exp(−inf) = 0 exactly), above 88.376 inf-free FLT_MAX range.
DOCVLM_SIMD_INLINE R exp(R x) {
    x = V::max(V::min(x, V::set1(88.37626f)), V::set1(-104.0f));
    const R k = V::round(V::mul(x, V::set1(1.44269504088896341f)));
    R r = V::fnma(k, V::set1(0.693359375f), x);
    r = V::fnma(k, V::set1(-2.12194440e-4f), r);
    R p = V::set1(1.3981999507e-3f);
    p = V::fma(p, r, V::set1(8.3334519073e-3f));
    p = V::fma(p, r, V::set1(4.1665795894e-2f));
    p = V::fma(p, r, V::set1(1.6666665459e-1f));
    p = V::fma(p, r, V::set1(5.0000001201e-1f));
    p = V::fma(p, V::mul(r, r), V::add(r, V::set1(1.0f)));
    return V::ldexp(p, k);
}

// erf(x), Abramowitz & Stegun 7.1.26: erf(|x|) = 1 − t·poly(t)·exp(−x²), t = 1 / (1 + 0.3275911|x|).
DOCVLM_SIMD_INLINE R erf(R x) {
    const R ax = V::abs(x), one = V::set1(1.0f);
    const R t = V::div(one, V::fma(V::set1(0.3275911f), ax, one));
    R p = V::set1(1.061405429f);
    p = V::fma(p, t, V::set1(-1.453152027f));
    p = V::fma(p, t, V::set1(1.421413741f));
    p = V::fma(p, t, V::set1(-0.284496736f));
    p = V::fma(p, t, V::set1(0.254829592f));
    const R e = exp(V::sub(V::zero(), V::mul(ax, ax)));
    return V::copysign(V::fnma(V::mul(p, t), e, one), x);
}

DOCVLM_SIMD_INLINE R activate(Activation act, R x) {
    const R one = V::set1(1.0f), half = V::set1(0.5f);
    switch (act) {
        case Activation::none: return x;
        case Activation::gelu_erf:
            return V::mul(V::mul(half, x), V::add(one, erf(V::mul(x, V::set1(0.70710678118654752f)))));
        case Activation::gelu_tanh: {  // tanh(u) = 1 − 2 / (1 + exp(2u))
            const R x3 = V::mul(V::mul(x, x), x);
            const R u = V::mul(V::set1(0.79788456080286536f), V::fma(V::set1(0.044715f), x3, x));
            const R th = V::sub(one, V::div(V::set1(2.0f), V::add(one, exp(V::add(u, u)))));
            return V::mul(V::mul(half, x), V::add(one, th));
        }
        case Activation::quick_gelu: return V::div(x, V::add(one, exp(V::mul(x, V::set1(-1.702f)))));
        case Activation::silu: return V::div(x, V::add(one, exp(V::sub(V::zero(), x))));
    }
    return x;
}

// max(init, x[0..n))
DOCVLM_SIMD_FN float row_max(Isa, const float* x, std::size_t n, float init) {
    R m = V::set1(init);
    std::size_t i = 0;
    for (; i + L <= n; i += L) m = V::max(m, V::load(x + i));
    if (i < n) m = V::max(m, V::load_part(x + i, n - i, init));
    return V::reduce_max(m);
}

// x = exp(x − mx) in place (exp(−inf) = 0); returns the sum.
DOCVLM_SIMD_FN float exp_sum(Isa, float* x, std::size_t n, float mx) {
    const R vm = V::set1(mx);
    R sum = V::zero();
    std::size_t i = 0;
    for (; i + L <= n; i += L) {
        const R e = exp(V::sub(V::load(x + i), vm));
        V::store(x + i, e);
        sum = V::add(sum, e);
    }
    if (i < n) {
        V::store_part(x + i, exp(V::sub(V::load_part(x + i, n - i, 0.0f), vm)), n - i);
        sum = V::add(sum, V::load_part(x + i, n - i, 0.0f));  // the padding lanes add 0 whatever mx is
    }
    return V::reduce_add(sum);
}

// x[0..n) *= s
DOCVLM_SIMD_FN void scale(Isa, float* x, std::size_t n, float s) {
    const R vs = V::set1(s);
    std::size_t i = 0;
    for (; i + L <= n; i += L) V::store(x + i, V::mul(V::load(x + i), vs));
    if (i < n) V::store_part(x + i, V::mul(V::load_part(x + i, n - i, 0.0f), vs), n - i);
}

DOCVLM_SIMD_FN void softmax(Isa isa, float* x, std::size_t n) {
    if (n == 0) return;
    const float mx = row_max(isa, x, n, -INFINITY);
    scale(isa, x, n, 1.0f / exp_sum(isa, x, n, mx));
}

// y = x / sqrt(mean(x²) + eps) · w
DOCVLM_SIMD_FN void rms_norm(Isa, const float* x, const float* w, float* y, std::size_t n, float eps) {
    R ss = V::zero();
    std::size_t i = 0;
    for (; i + L <= n; i += L) {
        const R v = V::load(x + i);
        ss = V::fma(v, v, ss);
    }
    if (i < n) {
        const R v = V::load_part(x + i, n - i, 0.0f);
        ss = V::fma(v, v, ss);
    }
    const R inv = V::set1(1.0f / std::sqrt(V::reduce_add(ss) / float(n) + eps));
    for (i = 0; i + L <= n; i += L) V::store(y + i, V::mul(V::mul(V::load(x + i), inv), V::load(w + i)));
    if (i < n)
        V::store_part(y + i, V::mul(V::mul(V::load_part(x + i, n - i, 0.0f), inv), V::load_part(w + i, n - i, 0.0f)), n - i);
}

// y = (x − mean) / sqrt(var + eps) · g + b (biased variance)
DOCVLM_SIMD_FN void layer_norm(Isa, const float* x, const float* g, const float* b, float* y, std::size_t n, float eps) {
    R s = V::zero();
    std::size_t i = 0;
    for (; i + L <= n; i += L) s = V::add(s, V::load(x + i));
    if (i < n) s = V::add(s, V::load_part(x + i, n - i, 0.0f));
    const float mean = V::reduce_add(s) / float(n);
    const R vm = V::set1(mean);
    R v2 = V::zero();
    for (i = 0; i + L <= n; i += L) {
        const R d = V::sub(V::load(x + i), vm);
        v2 = V::fma(d, d, v2);
    }
    if (i < n) {
        const R d = V::sub(V::load_part(x + i, n - i, mean), vm);  // padding: d = 0
        v2 = V::fma(d, d, v2);
    }
    const R inv = V::set1(1.0f / std::sqrt(V::reduce_add(v2) / float(n) + eps));
    for (i = 0; i + L <= n; i += L)
        V::store(y + i, V::fma(V::mul(V::sub(V::load(x + i), vm), inv), V::load(g + i), V::load(b + i)));
    if (i < n) {
        const std::size_t r = n - i;
        const R d = V::mul(V::sub(V::load_part(x + i, r, mean), vm), inv);
        V::store_part(y + i, V::fma(d, V::load_part(g + i, r, 0.0f), V::load_part(b + i, r, 0.0f)), r);
    }
}

// One head: v[i] = a·cos − b·sin, v[i + half] = b·cos' + a·sin' for the two halves a, b; the
// second product of each is rounded, the first enters the FMA exactly.
DOCVLM_SIMD_INLINE void rope_span(float* v, std::size_t half, std::size_t i, std::size_t cnt, const float* cos, const float* sin) {
    const bool full = cnt == L;
    const R a = full ? V::load(v + i) : V::load_part(v + i, cnt, 0.0f);
    const R b = full ? V::load(v + half + i) : V::load_part(v + half + i, cnt, 0.0f);
    const R c1 = full ? V::load(cos + i) : V::load_part(cos + i, cnt, 0.0f);
    const R s1 = full ? V::load(sin + i) : V::load_part(sin + i, cnt, 0.0f);
    const R c2 = full ? V::load(cos + half + i) : V::load_part(cos + half + i, cnt, 0.0f);
    const R s2 = full ? V::load(sin + half + i) : V::load_part(sin + half + i, cnt, 0.0f);
    const R lo = V::fma(a, c1, V::sub(V::zero(), V::mul(b, s1))), hi = V::fma(b, c2, V::mul(a, s2));
    if (full) {
        V::store(v + i, lo);
        V::store(v + half + i, hi);
    } else {
        V::store_part(v + i, lo, cnt);
        V::store_part(v + half + i, hi, cnt);
    }
}

DOCVLM_SIMD_FN void rope(Isa, float* x, std::size_t heads, std::size_t head_dim, const float* cos, const float* sin) {
    const std::size_t half = head_dim / 2;
    for (std::size_t h = 0; h < heads; ++h)
        for (std::size_t i = 0; i < half; i += L) rope_span(x + h * head_dim, half, i, std::min(L, half - i), cos, sin);
}

DOCVLM_SIMD_FN void activate(Isa, Activation act, float* x, std::size_t n) {
    std::size_t i = 0;
    for (; i + L <= n; i += L) V::store(x + i, activate(act, V::load(x + i)));
    if (i < n) V::store_part(x + i, activate(act, V::load_part(x + i, n - i, 0.0f)), n - i);
}

// x[i] *= m[i]
DOCVLM_SIMD_FN void multiply_by(Isa, float* x, const float* m, std::size_t n) {
    std::size_t i = 0;
    for (; i + L <= n; i += L) V::store(x + i, V::mul(V::load(x + i), V::load(m + i)));
    if (i < n) V::store_part(x + i, V::mul(V::load_part(x + i, n - i, 0.0f), V::load_part(m + i, n - i, 0.0f)), n - i);
}

// Lanes [0, cnt) of p, zeros after them (cnt ≤ L).
DOCVLM_SIMD_INLINE R load_lanes(const float* p, std::size_t cnt) { return cnt == L ? V::load(p) : V::load_part(p, cnt, 0.0f); }

// One vector of dequantize_row: lanes [j, j + cnt), cnt ≤ L (the last one partial).
DOCVLM_SIMD_INLINE void dequantize_lanes(const std::int32_t* acc, const std::int32_t* col_sums, std::int32_t offset, R sa,
                                         const float* ws, const float* bias, Activation act, const float* mul,
                                         const float* res, float* y, std::size_t cnt) {
    const bool full = cnt == L;
    R v = col_sums ? (full ? V::load_i32_minus(acc, col_sums, offset) : V::load_i32_minus_part(acc, col_sums, offset, cnt))
                   : (full ? V::load_i32(acc) : V::load_i32_part(acc, cnt));
    v = V::fma(v, V::mul(sa, load_lanes(ws, cnt)), bias ? load_lanes(bias, cnt) : V::zero());
    v = activate(act, v);
    if (mul && res) v = V::fma(v, load_lanes(mul, cnt), load_lanes(res, cnt));
    else if (mul) v = V::mul(v, load_lanes(mul, cnt));
    else if (res) v = V::add(v, load_lanes(res, cnt));
    if (full) V::store(y, v);
    else V::store_part(y, v, cnt);
}

// The int8 GEMM's epilogue for one output row (kernels/qgemm.hpp): with a = acc[j] − offset ·
// col_sums[j] in int32 (the u8 paths' offset; col_sums null: a = acc[j]),
// y[j] = act(float(a) · (sa · ws[j]) + bias[j]) · mul[j] + res[j], j < n. bias, mul and res may
// be null; res and mul may alias y (each lane is read before it is written). The product and the
// bias (0 without one), and mul with res, go in fused multiply-adds, as in every per-channel
// epilogue of kernels/qgemm.hpp.
DOCVLM_SIMD_FN void dequantize_row(Isa, const std::int32_t* acc, const std::int32_t* col_sums, std::int32_t offset, float sa,
                                   const float* ws, const float* bias, Activation act, const float* mul, const float* res,
                                   float* y, std::size_t n) {
    const R vsa = V::set1(sa);
    for (std::size_t j = 0; j < n; j += L)
        dequantize_lanes(acc + j, col_sums ? col_sums + j : nullptr, offset, vsa, ws + j, bias ? bias + j : nullptr, act,
                         mul ? mul + j : nullptr, res ? res + j : nullptr, y + j, std::min(L, n - j));
}

// Σ q[t]·k[t], t < d, in one vector (not yet reduced).
DOCVLM_SIMD_INLINE R dot_lanes(const float* q, const float* k, std::size_t d, R acc) {
    std::size_t t = 0;
    for (; t + L <= d; t += L) acc = V::fma(V::load(q + t), V::load(k + t), acc);
    if (t < d) acc = V::fma(V::load_part(q + t, d - t, 0.0f), V::load_part(k + t, d - t, 0.0f), acc);
    return acc;
}

// Scores of `group` query heads (qg: [group][d]) against n keys (rows of k with stride ldk):
// sc[g·stride + j] = scale · q_g · k_j. Keys go `lanes` at a time: each register of q is loaded
// once and multiplied into the lanes keys' accumulators, which one V::sums adds across lanes;
// the rest one by one.
DOCVLM_SIMD_FN void group_scores(Isa, const float* qg, const float* k, std::size_t ldk, std::size_t n, std::size_t d,
                                 std::size_t group, float scale, float* sc, std::size_t stride) {
    const R vscale = V::set1(scale);
    std::size_t j0 = 0;
    for (; j0 + L <= n; j0 += L)
        for (std::size_t g = 0; g < group; ++g) {
            const float* q = qg + g * d;
            const float* kj = k + j0 * ldk;
            R acc[L];
#pragma GCC unroll 16
            for (std::size_t jj = 0; jj < L; ++jj) acc[jj] = V::zero();
            std::size_t t = 0;
            for (; t + L <= d; t += L) {
                const R qv = V::load(q + t);
#pragma GCC unroll 16
                for (std::size_t jj = 0; jj < L; ++jj) acc[jj] = V::fma(qv, V::load(kj + jj * ldk + t), acc[jj]);
            }
            if (t < d) {
                const R qv = V::load_part(q + t, d - t, 0.0f);
#pragma GCC unroll 16
                for (std::size_t jj = 0; jj < L; ++jj) acc[jj] = V::fma(qv, V::load_part(kj + jj * ldk + t, d - t, 0.0f), acc[jj]);
            }
            V::store(sc + g * stride + j0, V::mul(V::sums(acc), vscale));
        }
    for (std::size_t j = j0; j < n; ++j)
        for (std::size_t g = 0; g < group; ++g)
            sc[g * stride + j] = V::reduce_add(dot_lanes(qg + g * d, k + j * ldk, d, V::zero())) * scale;
}

// G heads of group_weighted_rows over the keys [j0, j1) and the c ≤ L columns at t (Full: c = L):
// one accumulator per head, so each V row's vector is loaded once and serves all G heads, and
// neither the head count nor the width is tested inside the loop over keys.
template <std::size_t G, bool Full>
DOCVLM_SIMD_INLINE void weighted_rows_heads(const float* w, std::size_t ldw, const float* v, std::size_t ldv, std::size_t j0,
                                            std::size_t j1, float* o, std::size_t ldo, std::size_t t, std::size_t c) {
    R acc[G];
#pragma GCC unroll 8
    for (std::size_t g = 0; g < G; ++g) acc[g] = Full ? V::load(o + g * ldo + t) : V::load_part(o + g * ldo + t, c, 0.0f);
    for (std::size_t j = j0; j < j1; ++j) {
        const R vj = Full ? V::load(v + j * ldv + t) : V::load_part(v + j * ldv + t, c, 0.0f);
#pragma GCC unroll 8
        for (std::size_t g = 0; g < G; ++g) acc[g] = V::fma(V::set1(w[g * ldw + j]), vj, acc[g]);
    }
#pragma GCC unroll 8
    for (std::size_t g = 0; g < G; ++g) {
        if (Full) V::store(o + g * ldo + t, acc[g]);
        else V::store_part(o + g * ldo + t, acc[g], c);
    }
}

template <std::size_t G>
DOCVLM_SIMD_INLINE void weighted_rows_columns(const float* w, std::size_t ldw, const float* v, std::size_t ldv, std::size_t j0,
                                              std::size_t j1, std::size_t d, float* o, std::size_t ldo) {
    std::size_t t = 0;
    for (; t + L <= d; t += L) weighted_rows_heads<G, true>(w, ldw, v, ldv, j0, j1, o, ldo, t, L);
    if (t < d) weighted_rows_heads<G, false>(w, ldw, v, ldv, j0, j1, o, ldo, t, d - t);
}

// o[g·ldo + t] += Σ_{j<n} w[g·ldw + j] · v_j[t] for heads g < group and t < d (rows of V with
// stride ldv): the query heads that share a value head, together. Keys go in blocks that stay in
// L1 while the block's columns pass over them, up to 8 heads at a time, so each row of V is read
// from memory once per step however many heads share it. Every output sums its keys in order.
DOCVLM_SIMD_FN void group_weighted_rows(Isa, const float* w, std::size_t ldw, std::size_t group, const float* v, std::size_t ldv,
                                        std::size_t n, std::size_t d, float* o, std::size_t ldo) {
    constexpr std::size_t block = 64;
    for (std::size_t g0 = 0; g0 < group; g0 += 8) {
        const float* wg = w + g0 * ldw;
        float* og = o + g0 * ldo;
        for (std::size_t j0 = 0; j0 < n; j0 += block) {
            const std::size_t j1 = std::min(n, j0 + block);
            switch (std::min<std::size_t>(8, group - g0)) {
                case 1: weighted_rows_columns<1>(wg, ldw, v, ldv, j0, j1, d, og, ldo); break;
                case 2: weighted_rows_columns<2>(wg, ldw, v, ldv, j0, j1, d, og, ldo); break;
                case 3: weighted_rows_columns<3>(wg, ldw, v, ldv, j0, j1, d, og, ldo); break;
                case 4: weighted_rows_columns<4>(wg, ldw, v, ldv, j0, j1, d, og, ldo); break;
                case 5: weighted_rows_columns<5>(wg, ldw, v, ldv, j0, j1, d, og, ldo); break;
                case 6: weighted_rows_columns<6>(wg, ldw, v, ldv, j0, j1, d, og, ldo); break;
                case 7: weighted_rows_columns<7>(wg, ldw, v, ldv, j0, j1, d, og, ldo); break;
                default: weighted_rows_columns<8>(wg, ldw, v, ldv, j0, j1, d, og, ldo); break;
            }
        }
    }
}

// One row to int8 within ±qmax: q = clamp(round_half_even(x · qmax / max|x|), ±qmax); returns
// max|x| / qmax. Bit-identical on every ISA (one float multiply, then round to nearest even).
DOCVLM_SIMD_FN float quantize_row_to(Isa, const float* x, std::size_t k, std::int8_t* q, float qmax) {
    R vmax = V::zero();
    std::size_t i = 0;
    for (; i + L <= k; i += L) vmax = V::max(vmax, V::abs(V::load(x + i)));
    if (i < k) vmax = V::max(vmax, V::abs(V::load_part(x + i, k - i, 0.0f)));
    const float amax = V::reduce_max(vmax);
    const R inv = V::set1(amax > 0.0f ? qmax / amax : 0.0f), lo = V::set1(-qmax), hi = V::set1(qmax);
    for (i = 0; i < k; i += L) {
        const std::size_t c = std::min(L, k - i);
        const R v = c == L ? V::load(x + i) : V::load_part(x + i, c, 0.0f);
        V::store_i8_part(q + i, V::min(V::max(V::round(V::mul(v, inv)), lo), hi), c);
    }
    return amax / qmax;
}

// One row to int8: quantize_row_to with qmax = 127 (the int8 GEMM's activations).
DOCVLM_SIMD_FN float quantize_row(Isa isa, const float* x, std::size_t k, std::int8_t* q) { return quantize_row_to(isa, x, k, q, 127.0f); }

// ---- the int8 attention's float work (kernels/attention_int8.hpp, the 256-bit path) ----

// kmean[h·d + t] = the mean over keys j < n_kv of k[j·ldk + h·d + t] and vs[h·width + t] = max_j
// |v[j·ldv + h·d + t]| / qmax (0 from d up to width) for kv heads h < nh; buf: 2·nh·d floats.
DOCVLM_SIMD_FN void int8_kv_stats(Isa, const float* k, std::size_t ldk, const float* v, std::size_t ldv, std::size_t n_kv,
                                  std::size_t d, std::size_t nh, float* kmean, float* vs, std::size_t width, float* buf, float qmax) {
    float *sum = buf, *vmax = buf + nh * d;
    std::fill(buf, buf + 2 * nh * d, 0.0f);
    for (std::size_t j = 0; j < n_kv; ++j)  // key by key: a row's heads are one stretch of memory
        for (std::size_t t = 0; t < nh * d; t += L) {
            const std::size_t c = std::min(L, nh * d - t);
            V::store_part(sum + t, V::add(V::load_part(sum + t, c, 0.0f), V::load_part(k + j * ldk + t, c, 0.0f)), c);
            V::store_part(vmax + t, V::max(V::load_part(vmax + t, c, 0.0f), V::abs(V::load_part(v + j * ldv + t, c, 0.0f))), c);
        }
    for (std::size_t h = 0; h < nh; ++h) {
        for (std::size_t t = 0; t < d; ++t) {
            kmean[h * d + t] = sum[h * d + t] * (1.0f / float(n_kv));
            vs[h * width + t] = vmax[h * d + t] / qmax;
        }
        std::fill(vs + h * width + d, vs + (h + 1) * width, 0.0f);
    }
}

// One key minus the keys' mean, quantised as quantize_row_to does: q[0..d) within ±qmax and its
// scale (row: d floats of scratch).
DOCVLM_SIMD_FN float int8_centred_key(Isa isa, const float* k, const float* mean, std::size_t d, float* row, std::int8_t* q,
                                      float qmax) {
    for (std::size_t t = 0; t < d; t += L) {
        const std::size_t c = std::min(L, d - t);
        V::store_part(row + t, V::sub(V::load_part(k + t, c, 0.0f), V::load_part(mean + t, c, 0.0f)), c);
    }
    return quantize_row_to(isa, row, d, q, qmax);
}

// A [mr][32] tile of raw int8 score sums back to float: dst[r·ldd + j] = (raw[r·32 + j] − koff[j])
// · ks[j] (the difference exact in int32), j < 32; the first `valid` of the 32 also go into row r's
// running lane maxima vmax[r·16 .. r·16 + L).
DOCVLM_SIMD_FN void int8_scores(Isa, const std::int32_t* raw, std::size_t mr, const std::int32_t* koff, const float* ks,
                                float* dst, std::size_t ldd, std::size_t valid, float* vmax) {
    for (std::size_t r = 0; r < mr; ++r) {
        R mx = V::load(vmax + r * 16);
        for (std::size_t c = 0; c < 32; c += L) {
            const R a = V::mul(V::load_i32_minus(raw + r * 32 + c, koff + c, 1), V::load(ks + c));
            V::store(dst + r * ldd + c, a);
            if (c + L <= valid) mx = V::max(mx, a);
            else if (c < valid) mx = V::max(mx, V::load_part(dst + r * ldd + c, valid - c, -INFINITY));
        }
        V::store(vmax + r * 16, mx);
    }
}

// The largest of a row's running lane maxima (int8_scores).
DOCVLM_SIMD_FN float int8_lanes_max(Isa, const float* vmax) { return V::reduce_max(V::load(vmax)); }

// out[0..n) = round(inv · 2^(t·q − mx)) as u8 (inv ≥ 1), zero from n up to n rounded up to L;
// returns Σ 2^(t·q − mx). 2^x = p(r)·2^k with k = round(x), p(r) ≈ 2^r on |r| ≤ 1/2 (degree 3,
// relative error 7.5e-5, inv folded into its coefficients). x below −126.5 gives 0, and so does a
// hidden key (t = −inf): q ≥ 0 is taken as at least the smallest normal float, so −inf · q is
// never NaN (a zero query's scores all become 0, the hidden keys' −inf).
DOCVLM_SIMD_FN float int8_exp2_sum(Isa, const float* t, std::size_t n, float q, float mx, float inv, std::uint8_t* out) {
    const R vq = V::set1(std::max(q, std::numeric_limits<float>::min())), neg_mx = V::set1(-mx), lo = V::set1(-127.0f);
    const R c0 = V::set1(9.999280572e-1f * inv), c1 = V::set1(6.932609677e-1f * inv), c2 = V::set1(2.426111400e-1f * inv),
            c3 = V::set1(5.517167225e-2f * inv);
    R sum = V::zero();
    for (std::size_t i = 0; i < n; i += L) {
        const std::size_t c = std::min(L, n - i);
        const R x = V::max(V::fma(c == L ? V::load(t + i) : V::load_part(t + i, c, -INFINITY), vq, neg_mx), lo);
        const R k = V::round(x), r = V::sub(x, k);
        const R e = V::mul(V::fma(V::fma(V::fma(c3, r, c2), r, c1), r, c0), V::pow2(k));
        sum = V::add(sum, e);
        V::store_u8_part(out + i, V::round(e), L);
    }
    return V::reduce_add(sum) / inv;
}

// acc[r·lda + c] = acc[r·lda + c] · alpha[r] + raw[r·32 + c] · sp[r] · vs[c] for c < cols (a multiple of L).
DOCVLM_SIMD_FN void int8_accumulate_pv(Isa, const std::int32_t* raw, std::size_t mr, const float* sp, const float* alpha,
                                       const float* vs, std::size_t cols, float* acc, std::size_t lda) {
    for (std::size_t r = 0; r < mr; ++r) {
        const R s = V::set1(sp[r]), a = V::set1(alpha[r]);
        float* o = acc + r * lda;
        for (std::size_t c = 0; c < cols; c += L)
            V::store(o + c, V::fma(V::load_i32(raw + r * 32 + c), V::mul(s, V::load(vs + c)), V::mul(V::load(o + c), a)));
    }
}

#undef DOCVLM_SIMD_INLINE
#undef DOCVLM_SIMD_FN

}  // namespace DOCVLM_SIMD_NS
