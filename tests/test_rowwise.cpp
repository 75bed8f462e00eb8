// Tests of the one-source row kernels (kernels/rowwise.hpp): every copy this CPU can run
// (AVX-512, AVX2, NEON, portable) against the double references of kernels/ops.hpp.
//
// The bounds are derived from each kernel's order of operations (u = 2⁻²⁴, one float rounding):
// a copy with L lanes sums n values in one vector accumulator, ⌈n / L⌉ additions per lane and
// log2(L) in the final reduction, so a sum of non-negative terms is within γ(⌈n/L⌉ + log2 L) of
// the exact sum, γ(k) = k·u / (1 − k·u). First-order bounds: second-order terms (products of two
// errors, ~1e-12 here) are covered by a factor 1.01. The references return float, so each bound
// also holds their own final rounding, u/2 of the value.
#include "test_util.hpp"

#include <docvlm/kernels/attention.hpp>
#include <docvlm/kernels/ops.hpp>
#include <docvlm/kernels/qgemm.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

using namespace docvlm;
using namespace docvlm::kernels;

namespace {

constexpr double u = 5.9604644775390625e-8;  // 2^-24

double rounding_gamma(double k) { return k * u / (1.0 - k * u); }

// additions on one lane's path when a copy with `lanes` lanes sums n values
double sum_steps(std::size_t n, std::size_t lanes) {
    return double((n + lanes - 1) / lanes) + std::log2(double(lanes));
}

// exp's relative error: Cephes expf's polynomial on the reduced range (peak 1.7e-7, as Cephes
// documents it) plus three roundings in its evaluation (the last FMA, 1 + r, the product with
// 2^k is exact). Checked against std::exp in double below; softmax's bound uses it.
constexpr double exp_rel = 1.7e-7 + 3 * u;

}  // namespace

TEST_SUITE("kernels") {

TEST_CASE("row kernels: every ISA copy is listed and the chosen one is the widest supported") {
    std::string names;
    simd::each_isa([&](simd::RowIsa isa, auto) { names += std::string(simd::row_isa_name(isa)) + " "; });
    MESSAGE("row kernel copies on this CPU (DOCVLM_ISA caps them): ", names, "- running ", std::string(simd::row_isa_name(simd::row_isa())));
    CHECK(simd::row_isa_supported(simd::RowIsa::generic));
    CHECK(simd::row_isa_supported(simd::row_isa()));
    CHECK(names.rfind(simd::row_isa_name(simd::row_isa()), 0) == 0);
}

TEST_CASE("row kernels: exp within its stated relative error, exp(-inf) = 0, no overflow to inf") {
    std::vector<float> xs;
    for (float x = -87.0f; x <= 88.0f; x += 0.0037f) xs.push_back(x);
    for (float x : {0.0f, -0.0f, 1e-30f, -1e-30f, 0.34657359f, -0.34657359f}) xs.push_back(x);
    simd::each_isa([&](simd::RowIsa isa, auto tag) {
        const std::string copy = simd::row_isa_name(isa);
            CAPTURE(copy);
        std::vector<float> e = xs;
        exp_sum(tag, e.data(), e.size(), 0.0f);
        double worst = 0;
        for (std::size_t i = 0; i < xs.size(); ++i) {
            const double want = std::exp(double(xs[i]));
            worst = test::worse(worst, std::fabs(e[i] - want) / want);
        }
        MESSAGE(copy, ": exp's worst relative error ", worst, " (bound ", exp_rel, ")");
        CHECK(worst <= exp_rel);
        std::vector<float> row = {-INFINITY, -INFINITY, -INFINITY};  // a fully masked row: padding adds nothing
        CHECK(exp_sum(tag, row.data(), row.size(), 0.0f) == 0.0f);
        std::vector<float> neg = {-INFINITY, -1000.0f, -104.0f, 89.0f, 0.0f};
        exp_sum(tag, neg.data(), neg.size(), 0.0f);
        CHECK(neg[0] == 0.0f);
        CHECK(neg[1] == 0.0f);
        CHECK(neg[2] == 0.0f);
        CHECK(std::isfinite(neg[3]));  // clamped at 88.376: FLT_MAX range, not inf
        CHECK(neg[4] == 1.0f);
    });
}

TEST_CASE("row kernels: softmax, RMSNorm and LayerNorm within the rounding bound of their summation") {
    std::mt19937 rng(31);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    for (std::size_t n : {1u, 3u, 7u, 8u, 16u, 17u, 64u, 80u, 896u, 1280u, 5477u}) {
        CAPTURE(n);
        std::vector<float> x(n), w(n), b(n);
        for (auto& v : x) v = nd(rng);
        for (auto& v : w) v = 1.0f + 0.2f * nd(rng);
        for (auto& v : b) v = nd(rng);
        const float mx = *std::max_element(x.begin(), x.end());
        double spread = 0, mean = 0, mean_abs = 0, var = 0;
        for (float v : x) {
            spread = std::max(spread, double(mx) - v);
            mean += v;
            mean_abs += std::fabs(v);
        }
        mean /= double(n);
        mean_abs /= double(n);
        for (float v : x) var += (v - mean) * (v - mean);
        const double inv_ln = 1.0 / std::sqrt(var / double(n) + 1e-6);
        simd::each_isa([&](simd::RowIsa isa, auto tag) {
            const std::string copy = simd::row_isa_name(isa);
            CAPTURE(copy);
            const double g = rounding_gamma(sum_steps(n, decltype(tag)::lanes));
            // softmax: each exp term within exp_rel + u·|x − max| (the float subtraction), the sum
            // within that plus g, then 1 / sum and the product: 2 roundings.
            std::vector<float> s1 = x, s2 = x;
            softmax(tag, s1.data(), n);
            softmax_reference(s2.data(), n);
            double worst = 0;
            for (std::size_t i = 0; i < n; ++i) {
                const double bound = 1.01 * (2 * exp_rel + u * (double(mx) - x[i]) + u * spread + g + 2.5 * u);
                worst = test::worse(worst, std::fabs(double(s1[i]) - s2[i]) / s2[i] / bound);
            }
            CHECK(worst <= 1.0);
            // RMSNorm: sum of squares within g (exact products in the FMA); / n, + eps, sqrt, 1 /
            // and two products: half of g plus 6 roundings.
            std::vector<float> r1(n), r2(n);
            rms_norm(tag, x.data(), w.data(), r1.data(), n, 1e-6f);
            rms_norm_reference(x.data(), w.data(), r2.data(), n, 1e-6f);
            worst = 0;
            for (std::size_t i = 0; i < n; ++i)
                worst = test::worse(worst, std::fabs(double(r1[i]) - r2[i]) / (1.01 * (g / 2 + 6.5 * u) * std::fabs(r2[i]) + 1e-37));
            CHECK(worst <= 1.0);
            // LayerNorm (in place): the mean within g·mean|x| + u·|mean|, x − mean one rounding,
            // 1 / sqrt(var + eps) within g / 2 + 5 roundings, the last FMA one rounding of |y|.
            std::vector<float> l1 = x, l2(n);
            layer_norm(tag, l1.data(), w.data(), b.data(), l1.data(), n, 1e-6f);
            layer_norm_reference(x.data(), w.data(), b.data(), l2.data(), n, 1e-6f);
            worst = 0;
            for (std::size_t i = 0; i < n; ++i) {
                const double d = std::fabs(x[i] - mean);
                const double bound = 1.01 * (std::fabs(w[i]) * inv_ln * (g * mean_abs + u * std::fabs(mean) + d * (g / 2 + 6 * u)) +
                                             1.5 * u * std::fabs(l2[i]));
                worst = test::worse(worst, std::fabs(double(l1[i]) - l2[i]) / (bound + 1e-37));
            }
            CHECK(worst <= 1.0);
        });
    }
    simd::each_isa([&](simd::RowIsa isa, auto tag) {  // no overflow: the largest value is subtracted first
        const std::string copy = simd::row_isa_name(isa);
            CAPTURE(copy);
        std::vector<float> big = {1000.0f, 1000.0f, -1000.0f};
        softmax(tag, big.data(), big.size());
        CHECK(big[0] == doctest::Approx(0.5));
        CHECK(big[2] == 0.0f);
    });
}

TEST_CASE("row kernels: rope within two roundings of each product, every head size") {
    std::mt19937 rng(32);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    for (std::size_t hd : {2u, 16u, 24u, 64u, 80u, 128u}) {
        CAPTURE(hd);
        const std::size_t heads = 3, half = hd / 2;
        std::vector<float> x(heads * hd), c(hd), s(hd);
        for (auto& v : x) v = nd(rng);
        for (std::size_t i = 0; i < half; ++i) {
            const float ang = 0.37f * float(i + 1);
            c[i] = c[i + half] = std::cos(ang);
            s[i] = s[i + half] = std::sin(ang);
        }
        std::vector<float> r = x;
        rope_reference(r.data(), heads, hd, c.data(), s.data());
        simd::each_isa([&](simd::RowIsa isa, auto tag) {
            const std::string copy = simd::row_isa_name(isa);
            CAPTURE(copy);
            std::vector<float> a = x;
            rope(tag, a.data(), heads, hd, c.data(), s.data());
            double worst = 0;
            for (std::size_t h = 0; h < heads; ++h)
                for (std::size_t i = 0; i < hd; ++i) {
                    const std::size_t j = i < half ? i + half : i - half;
                    const double bound = 2 * u * (std::fabs(x[h * hd + i] * c[i]) + std::fabs(x[h * hd + j] * s[i])) +
                                         0.5 * u * std::fabs(r[h * hd + i]);
                    worst = test::worse(worst, std::fabs(double(a[h * hd + i]) - r[h * hd + i]) / (bound + 1e-37));
                }
            CHECK(worst <= 1.0);
        });
    }
}

TEST_CASE("row kernels: activations within 2e-6 · max(1, |x|) of the scalar definitions") {
    std::vector<float> xs;
    for (float x = -20.0f; x <= 20.0f; x += 0.001f) xs.push_back(x);
    for (float x : {0.0f, -0.0f, 1e-30f, -1e-30f, 80.0f, -80.0f, 100.0f, -100.0f, 1e6f, -1e6f}) xs.push_back(x);
    simd::each_isa([&](simd::RowIsa isa, auto tag) {
        const std::string copy = simd::row_isa_name(isa);
            CAPTURE(copy);
        for (Activation act : {Activation::gelu_erf, Activation::gelu_tanh, Activation::quick_gelu, Activation::silu}) {
            CAPTURE(int(act));
            std::vector<float> y = xs;
            activate(tag, act, y.data(), y.size());
            double worst = 0;
            for (std::size_t i = 0; i < xs.size(); ++i) {
                REQUIRE(std::isfinite(y[i]));
                worst = test::worse(worst, std::fabs(y[i] - activate_scalar(act, xs[i])) / std::max(1.0, double(std::fabs(xs[i]))));
            }
            CHECK(worst <= 2e-6);
        }
    });
    std::vector<float> same = xs;
    activate(Activation::none, same.data(), same.size());
    CHECK(same == xs);
}

TEST_CASE("row kernels: attention's row work (max, scores of a head group, weighted rows)") {
    std::mt19937 rng(33);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (std::size_t d : {3u, 16u, 20u, 36u, 40u, 64u, 80u, 128u})  // tails for 4, 8 and 16 lanes
        for (std::size_t n : {1u, 5u, 16u, 33u, 100u}) {
            CAPTURE(d);
            CAPTURE(n);
            const std::size_t group = d % 3 == 0 ? 9 : 3, ldk = d + 5, ldw = n + 3, ldo = d + 2;  // 9: more than 8 heads
            std::vector<float> q(group * d), k(n * ldk), w(group * ldw), o0(group * ldo);
            for (auto& v : q) v = nd(rng);
            for (auto& v : k) v = nd(rng);
            for (auto& v : w) v = std::fabs(nd(rng));
            for (auto& v : o0) v = nd(rng);
            w[n / 2] = 0.0f;  // a hidden key
            const float scale = 0.125f;
            simd::each_isa([&](simd::RowIsa isa, auto tag) {
                const std::string copy = simd::row_isa_name(isa);
            CAPTURE(copy);
                const std::size_t lanes = decltype(tag)::lanes;
                CHECK(row_max(tag, k.data(), n, -INFINITY) == *std::max_element(k.begin(), k.begin() + n));
                CHECK(row_max(tag, k.data(), n, 1e9f) == 1e9f);
                // scores: ⌈d / L⌉ FMAs per lane, the cross-lane sum, the scale: within
                // γ(⌈d / L⌉ + log2 L + 1) of scale · Σ|q·k|
                std::vector<float> sc(group * (n + 3));
                group_scores(tag, q.data(), k.data(), ldk, n, d, group, scale, sc.data(), n + 3);
                double worst = 0;
                for (std::size_t g = 0; g < group; ++g)
                    for (std::size_t j = 0; j < n; ++j) {
                        double want = 0, mag = 0;
                        for (std::size_t t = 0; t < d; ++t) {
                            want += double(q[g * d + t]) * k[j * ldk + t];
                            mag += std::fabs(double(q[g * d + t]) * k[j * ldk + t]);
                        }
                        const double bound = 1.01 * rounding_gamma(sum_steps(d, lanes) + 1) * scale * mag;
                        worst = test::worse(worst, std::fabs(sc[g * (n + 3) + j] - scale * want) / bound);
                    }
                CHECK(worst <= 1.0);
                // weighted rows of the group: n FMAs per output on top of o: within γ(n) of
                // Σ|w·v| + |o|; the padding between output rows untouched
                std::vector<float> o = o0;
                group_weighted_rows(tag, w.data(), ldw, group, k.data(), ldk, n, d, o.data(), ldo);
                worst = 0;
                for (std::size_t g = 0; g < group; ++g) {
                    for (std::size_t t = 0; t < d; ++t) {
                        double want = o0[g * ldo + t], mag = std::fabs(o0[g * ldo + t]);
                        for (std::size_t j = 0; j < n; ++j) {
                            want += double(w[g * ldw + j]) * k[j * ldk + t];
                            mag += std::fabs(double(w[g * ldw + j]) * k[j * ldk + t]);
                        }
                        worst = test::worse(worst, std::fabs(o[g * ldo + t] - want) / (1.01 * rounding_gamma(double(n) + 1) * mag));
                    }
                    CHECK(o[g * ldo + d] == o0[g * ldo + d]);
                    CHECK(o[g * ldo + d + 1] == o0[g * ldo + d + 1]);
                }
                CHECK(worst <= 1.0);
            });
        }
}

TEST_CASE("few-query attention over a long cache, cut into position slices, matches dense masked attention") {
    std::mt19937 rng(35);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    struct Case {
        std::size_t n_q, n_kv, heads, kv_heads, d, q_offset, window, anchors;
        bool causal;
    };
    const Case cases[] = {
        {1, 1500, 14, 2, 64, 1499, 0, 0, true},  // a Qwen2-0.5B decoding step
        {2, 1200, 14, 1, 64, 1198, 0, 0, true},  {1, 1000, 4, 1, 32, 999, 100, 8, true},  // window + anchors
        {1, 800, 2, 2, 16, 300, 0, 0, true},     // keys past the query: the last slices see none
        {3, 600, 6, 1, 80, 597, 0, 0, false},    {1, 513, 3, 1, 20, 512, 0, 0, true},
    };
    ThreadPool two(2), three(3);
    for (const Case& c : cases)
        for (ThreadPool* pool : {&two, &three}) {
            CAPTURE(c.n_q);
            CAPTURE(c.n_kv);
            CAPTURE(pool->size());
            CHECK(kernels::detail::attention_slices(c.n_q, c.n_kv, c.kv_heads, pool->size()) > 1);  // the sliced path is the one tested
            const AttentionParams p{.heads = c.heads, .kv_heads = c.kv_heads, .head_dim = c.d, .scale = 1.0f / std::sqrt(float(c.d)),
                                    .causal = c.causal, .q_offset = c.q_offset, .window = c.window, .anchors = c.anchors};
            const std::size_t qd = c.heads * c.d, kd = c.kv_heads * c.d;
            std::vector<float> q(c.n_q * qd), k(c.n_kv * kd), v(c.n_kv * kd);
            for (auto* x : {&q, &k, &v})
                for (auto& e : *x) e = nd(rng);
            std::vector<float> got(c.n_q * qd, -1.0f), want(c.n_q * qd);
            attention(q.data(), qd, k.data(), kd, v.data(), kd, got.data(), qd, c.n_q, c.n_kv, p, *pool);
            attention_reference(q.data(), qd, k.data(), kd, v.data(), kd, want.data(), qd, c.n_q, c.n_kv, p);
            double worst = 0;
            for (std::size_t i = 0; i < got.size(); ++i) worst = test::worse(worst, std::fabs(double(got[i]) - want[i]));
            CHECK(worst < 2e-5);  // the bound the unsliced path is held to (test_kernels.cpp)
        }
}

TEST_CASE("row kernels: activation quantisation is bit-identical to its scalar definition on every copy") {
    std::mt19937 rng(34);
    std::normal_distribution<float> nd(0.0f, 2.0f);
    for (std::size_t k : {1u, 7u, 8u, 15u, 16u, 33u, 896u, 1001u}) {
        CAPTURE(k);
        std::vector<float> x(k);
        for (auto& v : x) v = nd(rng);
        if (k >= 3) {  // max|x| = 127: x · 127 / max|x| = x, so 2.5 and −3.5 are ties (to 2 and −4)
            x[0] = 127.0f;
            x[1] = 2.5f;
            x[2] = -3.5f;
        }
        std::vector<std::int8_t> want(k);
        const float ws = kernels::detail::quantize_row_generic(x.data(), k, want.data());
        std::vector<float> zero(k, 0.0f);
        simd::each_isa([&](simd::RowIsa isa, auto tag) {
            const std::string copy = simd::row_isa_name(isa);
            CAPTURE(copy);
            std::vector<std::int8_t> got(k + 1, std::int8_t(99));  // one guard byte
            CHECK(quantize_row(tag, x.data(), k, got.data()) == ws);
            CHECK(std::equal(want.begin(), want.end(), got.begin()));
            CHECK(got[k] == 99);
            CHECK(quantize_row(tag, zero.data(), k, got.data()) == 0.0f);
            CHECK(std::all_of(got.begin(), got.begin() + long(k), [](std::int8_t v) { return v == 0; }));
        });
    }
}

TEST_CASE("row kernels: the int8 GEMM's row epilogue (dequantize_row) against its definition, aliased or not") {
    // y = act(float(acc) · (sa · ws) + bias) · mul + res, every lane count, activation and alias;
    // a lane read from the wrong place or a tail lane lost is off by O(1), the bound is rounding.
    std::mt19937 rng(11);
    std::uniform_int_distribution<std::int32_t> iacc(-(1 << 26), 1 << 26);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    simd::each_isa([&](simd::RowIsa isa, auto tag) {
        const std::string copy = simd::row_isa_name(isa);
        CAPTURE(copy);
        for (std::size_t n : {1, 3, 4, 7, 8, 15, 16, 17, 32, 33}) {
            CAPTURE(n);
            for (Activation act : {Activation::none, Activation::gelu_erf, Activation::silu})
                for (int alias = 0; alias < 6; ++alias) {  // % 3 — 0: none, 1: res is y, 2: mul is y; ≥ 3: the u8 offset
                    CAPTURE(int(act));
                    CAPTURE(alias);
                    std::vector<std::int32_t> acc(n), col_sums(n);
                    std::vector<float> ws(n), bias(n), mul(n), res(n), y(n);
                    for (std::size_t j = 0; j < n; ++j)
                        acc[j] = iacc(rng), col_sums[j] = iacc(rng) >> 9, ws[j] = u(rng) * 1e-6f, bias[j] = u(rng),
                        mul[j] = u(rng), res[j] = u(rng);
                    const float sa = 0.37f;
                    const std::int32_t offset = alias >= 3 ? 128 : 0;
                    if (alias % 3 == 1) y = res;
                    if (alias % 3 == 2) y = mul;
                    dequantize_row(tag, acc.data(), offset ? col_sums.data() : nullptr, offset, sa, ws.data(), bias.data(), act,
                                   alias % 3 == 2 ? y.data() : mul.data(), alias % 3 == 1 ? y.data() : res.data(), y.data(), n);
                    for (std::size_t j = 0; j < n; ++j) {
                        const std::int64_t a = std::int64_t(acc[j]) - std::int64_t(offset) * col_sums[j];
                        const double pre = double(float(a)) * double(sa * ws[j]) + double(bias[j]);
                        const double want = double(activate_scalar(act, float(pre))) * mul[j] + res[j];
                        CHECK(std::fabs(y[j] - want) <= 1e-5 * (std::fabs(pre) + std::fabs(res[j]) + 1.0));
                    }
                }
        }
    });
}

TEST_CASE("row kernels: the int8 attention's float work (scores, exp2 and its sum, accumulation) against their definitions") {
    std::mt19937 rng(35);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::uniform_int_distribution<std::int32_t> iraw(-(1 << 20), 1 << 20);
    const float neg_inf = -std::numeric_limits<float>::infinity();
    simd::each_isa([&](simd::RowIsa isa, auto tag) {
        const std::string copy = simd::row_isa_name(isa);
        CAPTURE(copy);
        const std::size_t lanes = decltype(tag)::lanes;
        // exp2 as u8: out[j] = round(inv · 2^(t·q − mx)) (the polynomial's 7.5e-5 of at most 255
        // plus the rounding: within 0.52), zero past n up to a whole vector, the sum within 1e-4
        for (std::size_t n : {1u, 5u, 8u, 17u, 33u, 64u}) {
            CAPTURE(n);
            for (float q : {0.7f, 0.0f}) {  // q = 0 with hidden keys: −inf · 0 is NaN, which must give 0
                std::vector<float> t(n);
                for (std::size_t j = 0; j < n; ++j) t[j] = j % 5 == 3 ? neg_inf : 20.0f * u(rng);
                float mx = neg_inf;
                for (float x : t) mx = std::max(mx, x * q);
                if (mx == neg_inf) mx = 0.0f;
                std::vector<std::uint8_t> out(n + 32, 0xAA);
                const float sum = int8_exp2_sum(tag, t.data(), n, q, mx, 255.0f, out.data());
                double want_sum = 0;
                for (std::size_t j = 0; j < n; ++j) {
                    const double e = t[j] == neg_inf ? 0.0 : std::exp2(double(t[j]) * q - mx);
                    want_sum += e;
                    CHECK(std::fabs(double(out[j]) - 255.0 * e) <= 0.52);
                }
                for (std::size_t j = n; j < (n + lanes - 1) / lanes * lanes; ++j) CHECK(out[j] == 0);
                CHECK(std::fabs(sum - want_sum) <= 1e-4 * want_sum);
            }
        }
        // scores: dst = float(raw − koff) · ks for all 32 keys, the running lane maxima over the
        // first `valid`; accumulation: acc · alpha + raw · (sp · vs), one rounding each
        for (std::size_t valid : {1u, 7u, 16u, 31u, 32u}) {
            CAPTURE(valid);
            const std::size_t mr = 3, ldd = 40;
            std::vector<std::int32_t> raw(mr * 32), koff(32);
            std::vector<float> ks(32), dst(mr * ldd), vmax(mr * 16, neg_inf);
            for (auto& x : raw) x = iraw(rng);
            for (auto& x : koff) x = iraw(rng);
            for (auto& x : ks) x = u(rng);
            int8_scores(tag, raw.data(), mr, koff.data(), ks.data(), dst.data(), ldd, valid, vmax.data());
            for (std::size_t r = 0; r < mr; ++r) {
                float want_max = neg_inf;
                for (std::size_t j = 0; j < 32; ++j) {
                    const float want = float(raw[r * 32 + j] - koff[j]) * ks[j];
                    CHECK(dst[r * ldd + j] == want);
                    if (j < valid) want_max = std::max(want_max, want);
                }
                CHECK(int8_lanes_max(tag, vmax.data() + r * 16) == want_max);
            }
            std::vector<float> acc(mr * ldd), sp(mr), alpha(mr), vs(32);
            for (auto& x : acc) x = u(rng);
            for (std::size_t r = 0; r < mr; ++r) sp[r] = std::fabs(u(rng)), alpha[r] = std::fabs(u(rng));
            for (auto& x : vs) x = std::fabs(u(rng)) * 1e-3f;
            const std::vector<float> acc0 = acc;
            const std::size_t cols = valid <= 16 ? 16 : 32;
            int8_accumulate_pv(tag, raw.data(), mr, sp.data(), alpha.data(), vs.data(), cols, acc.data(), ldd);
            for (std::size_t r = 0; r < mr; ++r)
                for (std::size_t c = 0; c < ldd; ++c) {
                    if (c >= cols) {
                        CHECK(acc[r * ldd + c] == acc0[r * ldd + c]);
                        continue;
                    }
                    const double want = double(acc0[r * ldd + c]) * alpha[r] + double(raw[r * 32 + c]) * double(sp[r] * vs[c]);
                    const double mag = std::fabs(double(acc0[r * ldd + c]) * alpha[r]) + std::fabs(double(raw[r * 32 + c]) * double(sp[r] * vs[c]));
                    CHECK(std::fabs(acc[r * ldd + c] - want) <= 3e-7 * mag);
                }
        }
    });
}

}  // TEST_SUITE
