// Tests of docvlm/kernels against plain scalar references: int8 GEMM on every code path
// (bit-identical int32 accumulators), its float epilogue, per-group weights, activations.
#include "test_util.hpp"

#include <docvlm/kernels/activations.hpp>
#include <docvlm/kernels/qgemm.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

using namespace docvlm;
using namespace docvlm::kernels;

namespace {

std::vector<QPath> supported_paths() {
    std::vector<QPath> out;
    for (QPath p : {QPath::generic, QPath::avx2, QPath::avx2u8, QPath::avxvnni, QPath::avx512vnni, QPath::amx, QPath::neon, QPath::neondot,
                    QPath::neoni8mm})
        if (qpath_supported(p)) out.push_back(p);
    return out;
}

// Integer-valued float rows in [-127, 127], each holding ±127 so that quantisation is exact.
std::vector<float> int_rows(std::size_t m, std::size_t k, std::mt19937& rng, int mode) {
    std::vector<float> x(m * k);
    std::uniform_int_distribution<int> d(-127, 127);
    for (std::size_t i = 0; i < x.size(); ++i) {
        int v = d(rng);
        if (mode == 1) v = (rng() & 1) ? 127 : -127;  // adversarial: extremes only
        if (mode == 2) v = 127;                       // all maximal: the largest accumulators
        x[i] = float(v);
    }
    for (std::size_t r = 0; r < m; ++r) x[r * k + (rng() % k)] = (rng() & 1) ? 127.0f : -127.0f;
    return x;
}

// Weights within ±qmax: uniform (mode 0), the extremes only (1), all -qmax (2).
std::vector<std::int8_t> int8_matrix(std::size_t n, std::size_t k, std::mt19937& rng, int mode, int qmax = 127) {
    std::vector<std::int8_t> w(n * k);
    std::uniform_int_distribution<int> d(-qmax, qmax);
    for (auto& v : w) v = std::int8_t(mode == 1 ? ((rng() & 1) ? qmax : -qmax) : mode == 2 ? -qmax : d(rng));
    return w;
}

}  // namespace

TEST_SUITE("kernels") {

TEST_CASE("int8 GEMM: every path gives the reference int32 accumulators bit for bit") {
    // Weights within ±127, and within ±63 for avx2u8 (vpmaddubsw: modes 1 and 2 reach its largest
    // int16 pair sums, 2 · 255 · 63, against activations of ±127).
    std::mt19937 rng(42);
    struct Shape { std::size_t m, n, k; };
    const Shape shapes[] = {{1, 1, 1}, {1, 64, 4}, {1, 65, 3}, {2, 7, 9},     {6, 64, 64},   {7, 130, 129},
                            {13, 200, 300}, {1, 1152, 896}, {25, 96, 1030}, {5, 33, 5000},
                            {1, 40, 1030},   // one row: 8 accumulator sets on AVX512-VNNI, 258 steps (a tail of 2)
                            {4, 40, 36}, {9, 50, 44}, {10, 33, 20},  // tiles of 3 and 4 rows; odd and even K steps
                            // AMX: one 32-row tile; one and 13 rows more, K with a tail past the
                            // last whole 64; two tiles and 6 rows, a 1032-value K
                            {32, 64, 64}, {45, 70, 200}, {70, 96, 1030}};
    const auto paths = supported_paths();
    MESSAGE("int8 paths on this CPU: ", [&] {
        std::string s;
        for (QPath p : paths) s += std::string(qpath_name(p)) + " ";
        return s;
    }());
    for (int mode : {0, 1, 2}) {
        for (const Shape& s : shapes) {
            CAPTURE(s.m);
            CAPTURE(s.n);
            CAPTURE(s.k);
            CAPTURE(mode);
            const auto x = int_rows(s.m, s.k, rng, mode);
            std::vector<std::int8_t> xq(x.size());
            for (std::size_t i = 0; i < x.size(); ++i) xq[i] = std::int8_t(x[i]);
            struct Weights { QuantizedWeight packed; std::vector<std::int32_t> ref; };
            auto weights = [&](int qmax) {
                const auto wq = int8_matrix(s.n, s.k, rng, mode, qmax);
                std::vector<float> scales(s.n, 1.0f);
                Weights out{pack_weight(wq.data(), scales.data(), s.n, s.k), std::vector<std::int32_t>(s.m * s.n)};
                REQUIRE(out.packed.qmax <= qmax);  // pack_weight records the largest |value|
                if (mode != 0) REQUIRE(out.packed.qmax == qmax);
                for (std::size_t r = 0; r < s.n; r += 7)
                    for (std::size_t c = 0; c < s.k; c += 5) REQUIRE(out.packed.at(r, c) == wq[r * s.k + c]);
                qgemm_reference_s32(xq.data(), s.k, wq.data(), s.k, s.m, s.n, s.k, out.ref.data(), s.n);
                return out;
            };
            const Weights wide = weights(127), narrow = weights(63);
            for (QPath p : paths) {
                CAPTURE(qpath_name(p));
                const QuantizedWeight& w = p == QPath::avx2u8 ? narrow.packed : wide.packed;
                const std::vector<std::int32_t>& ref = p == QPath::avx2u8 ? narrow.ref : wide.ref;
                QuantizedActivations acts;
                quantize_activations(x.data(), s.m, s.k, s.k, acts, p);
                for (std::size_t r = 0; r < s.m; ++r) {
                    REQUIRE(acts.scales[r] == 1.0f);
                    for (std::size_t c = 0; c < acts.k_padded; ++c) REQUIRE(acts.at(r, c) == (c < s.k ? xq[r * s.k + c] : 0));
                }
                std::vector<std::int32_t> got(s.m * s.n, -1);
                qgemm_s32(acts, w, got.data(), s.n);
                REQUIRE(got == ref);
            }
        }
    }
}

#if DOCVLM_X86_64
TEST_CASE("AMX product (the int8 attention's): u8 rows times a packed panel, bit for bit, with K tails and short tiles") {
    if (!cpu().amx_int8) {
        MESSAGE("no AMX on this CPU (or a DOCVLM_ISA cap): nothing to run");
        return;
    }
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> u8(0, 255), s8(-127, 127);
    // rows 32: tiles (whole 64s of K) and the VNNI tail; fewer rows: the VNNI kernel alone
    for (const std::size_t rows : {32, 20, 1})
        for (const std::size_t k4 : {16, 20, 32, 37, 3}) {
            CAPTURE(rows);
            CAPTURE(k4);
            const std::size_t lda = 4 * k4 + 64;  // rows apart by more than their length
            std::vector<std::uint8_t> a(rows * lda);
            for (auto& v : a) v = std::uint8_t(u8(rng));
            AlignedBuffer<std::int8_t> panel(k4 * qpanel * 4);  // [k4][32][4], 64-byte aligned as packed weights are
            for (auto& v : panel) v = std::int8_t(s8(rng));
            std::vector<std::int32_t> want(rows * qpanel, 0);
            for (std::size_t r = 0; r < rows; ++r)
                for (std::size_t j = 0; j < qpanel; ++j)
                    for (std::size_t t = 0; t < 4 * k4; ++t)
                        want[r * qpanel + j] += std::int32_t(a[r * lda + t]) * panel[(t / 4 * qpanel + j) * 4 + t % 4];
            alignas(64) std::int32_t got[kernels::detail::amx_tile_rows * qpanel];
            std::fill(std::begin(got), std::end(got), -1);
            kernels::detail::amx_configure();
            kernels::detail::qproduct_amx(reinterpret_cast<const std::byte*>(a.data()), lda, rows, panel.data(), k4, got);
            kernels::detail::amx_release();
            CHECK(std::equal(want.begin(), want.end(), got));
        }
}
#endif

TEST_CASE("int8 GEMM: each row's floats are the same bit for bit however many rows are multiplied with it") {
    // 40 rows take whole tiles and edge tiles (and AMX's 32 rows, which fewer rows leave for
    // AVX512-VNNI); each row alone must give what it gives among them, with each epilogue.
    std::mt19937 rng(9);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const std::size_t m = 40, n = 70, k = 200;
    std::vector<float> x(m * k), wf(n * k), bias(n), res(m * n), mul(m * n);
    for (auto* v : {&x, &wf, &bias, &res, &mul})
        for (auto& e : *v) e = nd(rng);
    for (int variant = 0; variant < 4; ++variant) {  // bias; residual; multiplier and residual; bias and SiLU
        CAPTURE(variant);
        for (QPath p : supported_paths()) {
            CAPTURE(qpath_name(p));
            const QuantizedWeight w = quantize_weight(wf.data(), n, k, 0, weight_qmax(p));
            auto run = [&](std::size_t r0, std::size_t rows) {
                QuantizedActivations acts;
                quantize_activations(x.data() + r0 * k, rows, k, k, acts, p);
                std::vector<float> y(rows * n);
                const Epilogue ep{.bias = variant == 0 || variant == 3 ? bias.data() : nullptr,
                                  .residual = variant == 1 || variant == 2 ? res.data() + r0 * n : nullptr, .ld_residual = n,
                                  .act = variant == 3 ? Activation::silu : Activation::none,
                                  .multiplier = variant == 2 ? mul.data() + r0 * n : nullptr, .ld_multiplier = n};
                qgemm(acts, w, y.data(), n, ep);
                return y;
            };
            const std::vector<float> all = run(0, m);
            for (std::size_t r = 0; r < m; ++r) {
                const std::vector<float> one = run(r, 1);
                CHECK_MESSAGE(std::equal(one.begin(), one.end(), all.begin() + std::ptrdiff_t(r * n)), "row ", r);
            }
        }
    }
}

TEST_CASE("int8 GEMM: float epilogue (scales, bias, activation, aliased residual) matches the reference") {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    // m = 13: a row tile of 12 and one of 1; n = 1100: 35 panels, the last one of 12 columns, in
    // panel ranges and groups (AVX512-VNNI: 16 panels of k = 200 in a group); k = 21000: panels
    // of 672 KB, one per group.
    for (const auto [m, n, k] : {std::array<std::size_t, 3>{11, 70, 200}, std::array<std::size_t, 3>{13, 70, 2501},
                                 std::array<std::size_t, 3>{40, 1100, 200}, std::array<std::size_t, 3>{13, 70, 21000}}) {
    CAPTURE(k);
    std::vector<float> x(m * k), wf(n * k), bias(n), res(m * n);
    for (auto& v : x) v = nd(rng);
    for (auto& v : wf) v = 0.05f * nd(rng);
    for (auto& v : bias) v = nd(rng);
    for (auto& v : res) v = nd(rng);
    // variants: bias and residual (aliasing the output) with each activation; bias alone; nothing
    // (whole AVX512-VNNI and avx2u8 tiles with no more than a bias are finished in registers)
    for (int variant = 0; variant < 5; ++variant) {
        const Activation act = variant == 1 ? Activation::gelu_erf : variant == 2 ? Activation::silu : Activation::none;
        const bool with_bias = variant != 4, with_res = variant < 3;
        CAPTURE(variant);
        for (QPath p : supported_paths()) {
            CAPTURE(qpath_name(p));
            const QuantizedWeight w = quantize_weight(wf.data(), n, k, 0, weight_qmax(p));
            QuantizedActivations acts;
            quantize_activations(x.data(), m, k, k, acts, p);
            std::vector<float> y = with_res ? res : std::vector<float>(m * n, 7.0f);
            qgemm(acts, w, y.data(), n, {.bias = with_bias ? bias.data() : nullptr, .residual = with_res ? y.data() : nullptr,
                                         .ld_residual = n, .act = act});
            double worst = 0, dot = 0, nref = 0, ngot = 0;
            for (std::size_t i = 0; i < m; ++i)
                for (std::size_t j = 0; j < n; ++j) {
                    // dequantised reference from the same int8 values
                    double acc = 0, exact = 0;
                    for (std::size_t t = 0; t < k; ++t) {
                        acc += double(acts.at(i, t)) * w.at(j, t);
                        exact += double(x[i * k + t]) * wf[j * k + t];
                    }
                    const float b = with_bias ? bias[j] : 0.0f;
                    const double r = with_res ? res[i * n + j] : 0.0;
                    const float pre = float(acc * acts.scales[i] * w.scales[j] + b);
                    const double want = double(activate_scalar(act, pre)) + r;
                    const double got = y[i * n + j];
                    worst = test::worse(worst, std::fabs(got - want));
                    const double truth = double(activate_scalar(act, float(exact + b))) + r;
                    dot += got * truth;
                    nref += truth * truth;
                    ngot += got * got;
                }
            CHECK(worst < 2e-5 * std::sqrt(double(k) / 200));
            // int8 vs float: close. Rounding to steps of max/qmax adds noise of power
            // (max/qmax)²/12 to each operand, and a Gaussian row's max over k values is about
            // σ·sqrt(2 ln k): 1 − cosine ≈ ½ · (2 ln k / 12) · (1/qmax_w² + 1/127²), allowed 1.3x.
            const double qw = double(w.qmax), expected = 0.5 * (2.0 * std::log(double(k)) / 12.0) * (1.0 / (qw * qw) + 1.0 / (127.0 * 127.0));
            CHECK(1.0 - dot / std::sqrt(nref * ngot) < 1.3 * expected);
        }
    }
    }
}

TEST_CASE("int8 weights: per-channel quantisation equals its scalar definition, packed the same") {
    std::mt19937 rng(12);
    const float w_small[1] = {1.0f};
    std::normal_distribution<float> nd(0.0f, 1.0f);
    CHECK(weight_qmax(QPath::avx2) == 63);  // the default where AVX2 has no VNNI: the avx2u8 kernel's range
    for (QPath p : {QPath::generic, QPath::avxvnni, QPath::avx512vnni, QPath::amx, QPath::neon, QPath::neondot, QPath::neoni8mm})
        CHECK(weight_qmax(p) == 127);
    CHECK(default_weight_qmax() == weight_qmax(best_qpath()));
    {
        const test::ScopedEnv full("DOCVLM_INT8_WEIGHTS", "full");
        CHECK(default_weight_qmax() == 127);
    }
    {
        const test::ScopedEnv junk("DOCVLM_INT8_WEIGHTS", "7bit");
        CHECK_ERROR_HAS(default_weight_qmax(), "DOCVLM_INT8_WEIGHTS=7bit", "full or auto");
    }
    CHECK_ERROR_HAS(quantize_weight(w_small, 1, 1, 0, 128), "±128", "1..127");
    for (const int qmax : {127, 63})
    for (const auto& [n, k] : {std::pair<std::size_t, std::size_t>{1, 1}, {33, 5}, {70, 64}, {65, 130}, {40, 896}, {3, 1283}}) {
        CAPTURE(qmax);
        CAPTURE(n);
        CAPTURE(k);
        std::vector<float> w(n * k);
        for (std::size_t i = 0; i < w.size(); ++i) w[i] = nd(rng) * (i % 7 == 0 ? 8.0f : 1.0f);
        if (n > 2) std::fill(w.begin() + std::ptrdiff_t(k), w.begin() + std::ptrdiff_t(2 * k), 0.0f);  // an all-zero row
        if (k >= 3) {  // row 0 with scale 1 exactly: 2.5 and -3.5 are half-way between steps (to even: 2, -4)
            std::fill(w.begin(), w.begin() + std::ptrdiff_t(k), 0.25f);
            w[0] = float(qmax), w[1] = 2.5f, w[2] = -3.5f;
        }
        // the definition: s = max|w_row| / qmax, q = clamp(round_half_even(w / s), ±qmax)
        std::vector<std::int8_t> q(n * k);
        std::vector<float> scales(n);
        for (std::size_t r = 0; r < n; ++r) {
            float amax = 0.0f;
            for (std::size_t c = 0; c < k; ++c) amax = std::max(amax, std::fabs(w[r * k + c]));
            scales[r] = amax / float(qmax);
            for (std::size_t c = 0; c < k; ++c)
                q[r * k + c] = scales[r] > 0.0f ? std::int8_t(std::clamp(std::nearbyint(w[r * k + c] / scales[r]), -float(qmax), float(qmax))) : 0;
        }
        const QuantizedWeight got = quantize_weight(w.data(), n, k, 0, qmax), want = pack_weight(q.data(), scales.data(), n, k);
        CHECK(got.qmax == qmax);
        CHECK(want.qmax == qmax);
        REQUIRE(got.data.size() == want.data.size());
        CHECK(std::equal(got.data.data(), got.data.data() + got.data.size(), want.data.data()));
        CHECK(std::equal(got.scales.data(), got.scales.data() + got.scales.size(), want.scales.data()));
        CHECK(std::equal(got.col_sums.data(), got.col_sums.data() + got.col_sums.size(), want.col_sums.data()));
    }
}

TEST_CASE("int8 GEMM: per-group weights (32, 64, 128) and thread counts") {
    std::mt19937 rng(8);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const std::size_t m = 9, n = 129, k = 300;  // k is not a multiple of any group
    std::vector<float> x(m * k), wf(n * k);
    for (auto& v : x) v = nd(rng);
    for (std::size_t i = 0; i < wf.size(); ++i) wf[i] = nd(rng) * (i % k < 64 ? 10.0f : 0.1f);  // uneven magnitudes
    ThreadPool one(1), three(3);
    for (std::size_t group : {32u, 64u, 128u}) {
        CAPTURE(group);
        for (QPath p : supported_paths()) {
            CAPTURE(qpath_name(p));
            const QuantizedWeight w = quantize_weight(wf.data(), n, k, group, weight_qmax(p));
            CHECK(w.groups() == (k + group - 1) / group);
            QuantizedActivations acts;
            quantize_activations(x.data(), m, k, k, acts, p);
            std::vector<float> y1(m * n), y3(m * n);
            qgemm(acts, w, y1.data(), n, {}, one);
            qgemm(acts, w, y3.data(), n, {}, three);
            CHECK(y1 == y3);
            double worst = 0, scale = 0;
            for (std::size_t i = 0; i < m; ++i)
                for (std::size_t j = 0; j < n; ++j) {
                    double want = 0;
                    for (std::size_t t = 0; t < k; ++t)
                        want += double(acts.at(i, t)) * w.at(j, t) * w.scales[j * w.groups() + t / group];
                    want *= acts.scales[i];
                    worst = test::worse(worst, std::fabs(y1[i * n + j] - want));
                    scale = std::max(scale, std::fabs(want));
                }
            CHECK(worst <= 1e-5 * scale);
        }
    }
    CHECK_ERROR_HAS(quantize_weight(wf.data(), n, k, 48), "group size 48");
    const std::int8_t bad[4] = {1, -128, 3, 4};
    const float s[1] = {1.0f};
    CHECK_ERROR_HAS(pack_weight(bad, s, 1, 4), "-128", "column 1");
    QuantizedActivations acts;
    quantize_activations(x.data(), m, k - 1, k, acts);
    std::vector<float> y(m * n);
    CHECK_ERROR_HAS(qgemm(acts, quantize_weight(wf.data(), n, k), y.data(), n), "k = 299", "k = 300");
    // activations laid out for avx2u8 refuse weights beyond ±63 (vpmaddubsw would saturate)
    if (qpath_supported(QPath::avx2u8)) {
        quantize_activations(x.data(), m, k, k, acts, QPath::avx2u8);
        CHECK_ERROR_HAS(qgemm(acts, quantize_weight(wf.data(), n, k, 0, 127), y.data(), n), "avx2u8", "±127");
        const QuantizedWeight narrow = quantize_weight(wf.data(), n, k, 0, 63);
        CHECK(activation_qpath(narrow, QPath::avx2) == QPath::avx2u8);
        CHECK(activation_qpath(quantize_weight(wf.data(), n, k, 0, 127), QPath::avx2) == QPath::avx2);
        CHECK(activation_qpath(narrow, QPath::avxvnni) == QPath::avxvnni);
    }
    // per channel, int32 sums over more than 65,536 values could overflow; per group they cannot
    const std::size_t kb = 65600;
    std::vector<float> xb(kb, 1.0f), wb(kb, 1.0f), yb(1);
    quantize_activations(xb.data(), 1, kb, kb, acts);
    CHECK_ERROR_HAS(qgemm(acts, quantize_weight(wb.data(), 1, kb), yb.data(), 1), "k = 65600", "overflow");
    qgemm(acts, quantize_weight(wb.data(), 1, kb, 128), yb.data(), 1);
    CHECK(yb[0] == doctest::Approx(double(kb)).epsilon(1e-5));
}

TEST_CASE("GEMM tilings: every (row, panel) visited exactly once, in tiles of at most mr rows, for any thread count") {
    struct Case { std::size_t m, row_bytes, budget, panels, group; };
    // one row block and a few panels (GEMV), odd numbers of blocks below and above 4 per thread,
    // groups larger than a thread's panel range, ragged last tiles
    const Case cases[] = {{1, 896, 256 << 10, 152, 16}, {13, 5120, 256 << 10, 3, 4}, {512, 4864, 1 << 20, 28, 4},
                          {1394, 896, 256 << 10, 152, 16}, {100, 1280, 30000, 7, 3}, {37, 100, 1000, 1, 1}};
    for (const Case& c : cases)
        for (std::size_t threads : {1u, 2u, 3u}) {
            CAPTURE(c.m);
            CAPTURE(c.panels);
            CAPTURE(threads);
            ThreadPool pool(threads);
            for (bool grouped : {false, true}) {
                std::vector<std::atomic<int>> seen(c.m * c.panels);
                std::atomic<bool> too_tall{false};
                auto tile = [&](std::size_t m0, std::size_t rows, std::size_t p) {
                    if (rows == 0 || rows > 12) too_tall = true;
                    for (std::size_t r = m0; r < m0 + rows; ++r) seen[r * c.panels + p]++;
                };
                if (grouped) kernels::detail::parallel_grouped_tiles(c.m, c.row_bytes, c.budget, 12, c.panels, c.group, pool, tile);
                else kernels::detail::parallel_tiles(c.m, c.row_bytes, c.budget, 12, c.panels, pool, tile);
                CHECK_FALSE(too_tall);
                CHECK(std::all_of(seen.begin(), seen.end(), [](const std::atomic<int>& v) { return v == 1; }));
            }
        }
}

TEST_CASE("GEMM tilings: a few row blocks are cut into a multiple of the thread count of items") {
    // 512 rows of 4864 bytes in blocks of at most 1 MB: 3 blocks, which in 3 panel ranges each
    // would make 9 items, 5 for one thread of 2 and 4 for the other (the pool hands out items
    // one at a time, and they are about equal)
    for (std::size_t threads : {2u, 3u}) {
        CAPTURE(threads);
        ThreadPool pool(threads);
        std::mutex mutex;
        std::size_t items = 0, work = 0;
        kernels::detail::parallel_block_ranges(512, 4864, 1 << 20, 12, 28, pool, [&](std::size_t m0, std::size_t m1, std::size_t p0, std::size_t p1) {
            std::lock_guard lock(mutex);
            ++items;
            work += (m1 - m0) * (p1 - p0);
        });
        CHECK(work == 512 * 28);
        CHECK(items % threads == 0);
    }
}

TEST_CASE("GEMM tilings: one row over many panels is cut into short items") {
    // decoding's lm_head: one row, 4748 panels; items of at most max_item_panels, a multiple of
    // the thread count of them, every panel once
    const std::size_t panels = 4748;
    for (std::size_t threads : {2u, 3u}) {
        CAPTURE(threads);
        ThreadPool pool(threads);
        std::mutex mutex;
        std::size_t items = 0, widest = 0;
        std::vector<int> seen(panels, 0);
        kernels::detail::parallel_block_ranges(1, 896, 1 << 20, 1, panels, pool, [&](std::size_t m0, std::size_t m1, std::size_t p0, std::size_t p1) {
            std::lock_guard lock(mutex);
            CHECK((m0 == 0 && m1 == 1));
            ++items;
            widest = std::max(widest, p1 - p0);
            for (std::size_t p = p0; p < p1; ++p) ++seen[p];
        });
        CHECK(widest <= kernels::detail::max_item_panels);
        CHECK(items % threads == 0);
        CHECK(std::all_of(seen.begin(), seen.end(), [](int v) { return v == 1; }));
    }
}

}  // TEST_SUITE

#include <docvlm/kernels/gemm.hpp>

TEST_SUITE("kernels") {

TEST_CASE("f32 GEMM: every path matches the scalar reference, with epilogue") {
    std::mt19937 rng(21);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    struct Shape { std::size_t m, n, k; };
    for (const Shape& s : {Shape{1, 1, 1}, Shape{1, 32, 7}, Shape{5, 33, 64}, Shape{12, 64, 100}, Shape{13, 70, 129},
                           Shape{40, 96, 300}, Shape{1, 1000, 896}, Shape{600, 40, 1100},  // K in chunks, several row blocks
                           Shape{200, 70, 1500}}) {  // long rows: K in slices (fewer than 96 rows fit a block)
        CAPTURE(s.m);
        CAPTURE(s.n);
        CAPTURE(s.k);
        std::vector<float> x(s.m * s.k), w(s.n * s.k), bias(s.n), ref(s.m * s.n);
        for (auto& v : x) v = nd(rng);
        for (auto& v : w) v = nd(rng);
        for (auto& v : bias) v = nd(rng);
        sgemm_reference(x.data(), s.m, s.k, w.data(), s.n, s.k, ref.data(), s.n);
        const PackedF32 pw = pack_f32(w.data(), s.n, s.k);
        for (FPath p : {FPath::generic, FPath::avx2, FPath::avx512, FPath::neon}) {
            if (!fpath_supported(p)) continue;
            CAPTURE(int(p));
            std::vector<float> y(s.m * s.n, 7.0f);
            sgemm(x.data(), s.m, s.k, pw, y.data(), s.n, {.bias = bias.data(), .residual = y.data(), .ld_residual = s.n},
                  thread_pool(), p);
            double worst = 0;
            for (std::size_t i = 0; i < y.size(); ++i)
                worst = test::worse(worst, std::fabs(double(y[i]) - (double(ref[i]) + bias[i % s.n] + 7.0)) / std::sqrt(double(s.k)));
            CHECK(worst < 1e-5);
        }
    }
}

TEST_CASE("f32 GEMM: strided rows, and a buffer refilled between calls gives the new result") {
    // The AVX-512 path packs each row block once per call; a second call on the same x buffer
    // (new values) must not reuse the first call's packed rows.
    std::mt19937 rng(23);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const std::size_t m = 150, n = 70, k = 300, ldx = 311;
    std::vector<float> x(m * ldx), w(n * k), ref(m * n), y(m * n), xd(m * k);
    for (auto& v : w) v = nd(rng);
    const PackedF32 pw = pack_f32(w.data(), n, k);
    for (int call = 0; call < 3; ++call) {
        CAPTURE(call);
        for (auto& v : x) v = nd(rng);
        for (std::size_t r = 0; r < m; ++r) std::copy_n(x.data() + r * ldx, k, xd.data() + r * k);
        sgemm_reference(xd.data(), m, k, w.data(), n, k, ref.data(), n);
        for (FPath p : {FPath::generic, FPath::avx2, FPath::avx512, FPath::neon}) {
            if (!fpath_supported(p)) continue;
            CAPTURE(int(p));
            sgemm(x.data(), m, ldx, pw, y.data(), n, {}, thread_pool(), p);
            double worst = 0;
            for (std::size_t i = 0; i < y.size(); ++i) worst = test::worse(worst, std::fabs(double(y[i]) - ref[i]) / std::sqrt(double(k)));
            CHECK(worst < 1e-5);
        }
    }
}

#if DOCVLM_X86_64
TEST_CASE("f32 GEMM: the AVX-512 row packing writes what the scalar one writes") {
    if (!cpu().avx512()) return;
    std::mt19937 rng(26);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    // whole tiles and a partial one; K below, at and past multiples of 16
    for (const auto [m, k] : {std::array<std::size_t, 2>{12, 16}, std::array<std::size_t, 2>{13, 17}, std::array<std::size_t, 2>{25, 100},
                              std::array<std::size_t, 2>{7, 40}, std::array<std::size_t, 2>{36, 5}, std::array<std::size_t, 2>{96, 1283}}) {
        CAPTURE(m);
        CAPTURE(k);
        const std::size_t ldx = k + 3, padded = (m + kernels::detail::fmr - 1) / kernels::detail::fmr * kernels::detail::fmr * k;
        std::vector<float> x(m * ldx), scalar(padded, -1.0f), simd(padded, -2.0f);
        for (auto& v : x) v = nd(rng);
        kernels::detail::pack_rows_tiled(x.data(), ldx, m, k, scalar.data());
        kernels::detail::pack_rows_tiled_avx512(x.data(), ldx, m, k, simd.data());
        CHECK(std::memcmp(scalar.data(), simd.data(), padded * sizeof(float)) == 0);
    }
}
#endif

TEST_CASE("f32 GEMM: one row alone gives bit for bit what it gives inside a taller call") {
    // Batched decoding of f32 models must equal decoding one sequence at a time: the one-row path
    // (several panels at once) and the tiled path must sum each output's K steps in the same order.
    std::mt19937 rng(25);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (const auto [n, k] : {std::array<std::size_t, 2>{40, 300}, std::array<std::size_t, 2>{100, 1100},
                              std::array<std::size_t, 2>{230, 77}, std::array<std::size_t, 2>{1000, 896}}) {
        CAPTURE(n);
        CAPTURE(k);
        const std::size_t m = 13;
        std::vector<float> x(m * k), w(n * k), bias(n), all(m * n), one(n);
        for (auto* v : {&x, &w, &bias})
            for (auto& e : *v) e = nd(rng);
        const PackedF32 pw = pack_f32(w.data(), n, k);
        for (FPath p : {FPath::generic, FPath::avx2, FPath::avx512, FPath::neon}) {
            if (!fpath_supported(p)) continue;
            CAPTURE(int(p));
            const Epilogue ep{.bias = bias.data(), .act = Activation::gelu_tanh};
            sgemm(x.data(), m, k, pw, all.data(), n, ep, thread_pool(), p);
            for (std::size_t r : {std::size_t(0), std::size_t(5), m - 1}) {
                CAPTURE(r);
                sgemm(x.data() + r * k, 1, k, pw, one.data(), n, ep, thread_pool(), p);
                CHECK(std::memcmp(one.data(), all.data() + r * n, n * sizeof(float)) == 0);
            }
        }
    }
}

TEST_CASE("bf16 GEMM matches the reference on bf16-rounded inputs") {
    std::mt19937 rng(22);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (std::size_t k : {1u, 2u, 33u, 256u, 1001u, 3001u}) {  // 3001 with 200 rows: K in slices
        const std::size_t m = k > 2000 ? 200 : 14, n = 45;
        std::vector<float> x(m * k), w(n * k), ref(m * n), y(m * n);
        for (auto& v : x) v = bf16_to_f32(f32_to_bf16(nd(rng)));  // exactly representable in bf16
        for (auto& v : w) v = bf16_to_f32(f32_to_bf16(nd(rng)));
        sgemm_reference(x.data(), m, k, w.data(), n, k, ref.data(), n);
        bgemm(x.data(), m, k, pack_bf16(w.data(), n, k), y.data(), n, {.act = Activation::silu});
        double worst = 0;
        for (std::size_t i = 0; i < y.size(); ++i)
            worst = test::worse(worst, std::fabs(double(y[i]) - activate_scalar(Activation::silu, ref[i])) / std::sqrt(double(k)));
        CAPTURE(k);
        CHECK(worst < 1e-5);
    }
}

TEST_CASE("GEMM epilogue multiplier (gated MLP): y = act(x·Wᵀ + b) · m, in place or from another buffer, every kind and path") {
    // The reference is each kind's own product without the multiplier, multiplied afterwards in
    // double: only the epilogue's order (act, then multiply, then residual) is under test.
    std::mt19937 rng(24);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (const auto [m, n, k] : {std::array<std::size_t, 3>{1, 70, 200}, std::array<std::size_t, 3>{13, 70, 2501},
                                 std::array<std::size_t, 3>{130, 45, 300}}) {
        CAPTURE(m);
        CAPTURE(k);
        std::vector<float> x(m * k), wf(n * k), bias(n), mul(m * n), res(m * n);
        for (auto* v : {&x, &wf, &bias, &mul, &res})
            for (auto& e : *v) e = nd(rng);
        // plain: act(x·Wᵀ + b); got_*: the same call with the multiplier (and a residual)
        auto check = [&](auto&& gemm) {
            std::vector<float> plain(m * n), in_place = mul, with_res = res;
            gemm(plain.data(), Epilogue{.bias = bias.data(), .act = Activation::silu});
            gemm(in_place.data(), Epilogue{.bias = bias.data(), .act = Activation::silu, .multiplier = in_place.data(), .ld_multiplier = n});
            gemm(with_res.data(), Epilogue{.bias = bias.data(), .residual = with_res.data(), .ld_residual = n, .act = Activation::silu,
                                           .multiplier = mul.data(), .ld_multiplier = n});
            double worst = 0;  // relative to the value: float rounding of one product and one sum
            for (std::size_t i = 0; i < m * n; ++i) {
                const double a = double(plain[i]) * mul[i], b = a + res[i];
                worst = test::worse(worst, std::fabs(double(in_place[i]) - a) / std::max(1.0, std::fabs(a)));
                worst = test::worse(worst, std::fabs(double(with_res[i]) - b) / std::max(1.0, std::fabs(a) + std::fabs(res[i])));
            }
            CHECK(worst < 3e-7);
        };
        for (QPath p : supported_paths()) {
            CAPTURE(qpath_name(p));
            const QuantizedWeight qw = quantize_weight(wf.data(), n, k, 0, weight_qmax(p));
            QuantizedActivations acts;
            quantize_activations(x.data(), m, k, k, acts, p);
            check([&](float* y, const Epilogue& ep) { qgemm(acts, qw, y, n, ep); });
        }
        const PackedF32 pw = pack_f32(wf.data(), n, k);
        for (FPath p : {FPath::generic, FPath::avx2, FPath::avx512, FPath::neon}) {
            if (!fpath_supported(p)) continue;
            CAPTURE(int(p));
            check([&](float* y, const Epilogue& ep) { sgemm(x.data(), m, k, pw, y, n, ep, thread_pool(), p); });
        }
        const PackedBF16 bw = pack_bf16(wf.data(), n, k);
        check([&](float* y, const Epilogue& ep) { bgemm(x.data(), m, k, bw, y, n, ep); });
    }
}

}  // TEST_SUITE

#include <docvlm/kernels/attention.hpp>

TEST_SUITE("kernels") {

#if DOCVLM_X86_64
namespace {
// e = 2^x, e8 = 2^x at u8-probability precision (with its clamp, and times 255 in e255)
DOCVLM_TARGET("avx512f,avx512bw,avx512vl") void exp2_both(const float* x, float* e, float* e8, float* e255 = nullptr) {
    _mm512_storeu_ps(e, kernels::detail::exp2_512(_mm512_loadu_ps(x)));
    _mm512_storeu_ps(e8, kernels::detail::exp2_512_u8<true>(_mm512_loadu_ps(x), kernels::detail::exp2_u8_coefficients(1.0f)));
    if (e255) _mm512_storeu_ps(e255, kernels::detail::exp2_512_u8<false>(_mm512_loadu_ps(x), kernels::detail::exp2_u8_coefficients(255.0f)));
}
}  // namespace

TEST_CASE("exp2 for the softmax: relative error against std::exp2 (full and u8-probability precision)") {
    if (!cpu().avx512()) return;
    double worst = 0, worst_u8 = 0, worst_255 = 0;
    alignas(64) float x[16], e[16], e8[16], e255[16];
    for (int i = 0; i < 200000; i += 16) {
        for (int l = 0; l < 16; ++l) x[l] = -120.0f * float(i + l) / 200000.0f;  // 0 down to −120
        exp2_both(x, e, e8, e255);
        for (int l = 0; l < 16; ++l) {
            const double want = std::exp2(double(x[l]));
            worst = test::worse(worst, std::abs(e[l] - want) / want);
            worst_u8 = test::worse(worst_u8, std::abs(e8[l] - want) / want);
            worst_255 = test::worse(worst_255, std::abs(e255[l] - 255.0 * want) / (255.0 * want));
        }
    }
    CHECK(worst < 3e-7);
    CHECK(worst_u8 < 8e-5);
    CHECK(worst_255 < 8e-5);
    // the clamp: −inf (a masked key) and NaN (a masked key times a zero query) give 0
    x[0] = -std::numeric_limits<float>::infinity(), x[1] = -1000.0f, x[2] = std::numeric_limits<float>::quiet_NaN();
    for (int l = 3; l < 16; ++l) x[l] = 0.0f;
    exp2_both(x, e, e8);
    CHECK(e[0] == 0.0f);
    CHECK(e8[0] == 0.0f);
    CHECK(e8[1] == 0.0f);
    CHECK(e8[2] == 0.0f);
    CHECK(e8[3] == doctest::Approx(1.0).epsilon(1e-4));
}
#endif

TEST_CASE("attention: the int8 path's range of keys and values on each instruction set") {
    CpuFeatures f;
    CHECK(attention_int8_range(f) == 0);  // portable code: f32
    f.neon = f.dotprod = true;
    CHECK(attention_int8_range(f) == 0);  // sdot alone: f32 (its s8 rows cannot hold u8 probabilities)
    f.i8mm = true;
    CHECK(attention_int8_range(f) == 127);  // usdot
    CpuFeatures x;
    x.avx2 = x.fma = true;
    CHECK(attention_int8_range(x) == 63);  // vpmaddubsw: keys and values within ±63
    x.avxvnni = true;
    CHECK(attention_int8_range(x) == 127);
}

TEST_CASE("fused attention matches dense masked attention: full, causal, GQA, window + anchors, tiles") {
    std::mt19937 rng(41);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    struct Case {
        std::size_t n_q, n_kv, heads, kv_heads, d, q_offset, window, anchors, bq, bk;
        bool causal;
    };
    const Case cases[] = {
        {1, 1, 1, 1, 16, 0, 0, 0, 48, 64, false},     {37, 37, 4, 4, 16, 0, 0, 0, 48, 64, false},
        {100, 100, 4, 2, 64, 0, 0, 0, 12, 32, true},  {1, 300, 14, 2, 64, 299, 0, 0, 48, 64, true},  // decode step
        {5, 300, 14, 2, 64, 295, 0, 0, 48, 64, true}, {200, 200, 2, 2, 80, 0, 16, 0, 48, 64, false},
        {300, 300, 2, 1, 32, 0, 20, 5, 24, 32, false}, {300, 300, 2, 1, 32, 0, 20, 40, 48, 64, false},
        {257, 257, 3, 3, 48, 0, 33, 7, 12, 32, true},  {90, 90, 2, 2, 80, 0, 0, 0, 7, 32, false},
        {250, 250, 2, 2, 80, 0, 0, 0, 0, 256, false},  {300, 300, 4, 2, 64, 0, 0, 0, 0, 256, true},  // block_q chosen
    };
    for (const Case& c : cases) {
        CAPTURE(c.n_q);
        CAPTURE(c.n_kv);
        CAPTURE(c.window);
        CAPTURE(c.anchors);
        CAPTURE(c.causal);
        AttentionParams p{.heads = c.heads, .kv_heads = c.kv_heads, .head_dim = c.d, .scale = 1.0f / std::sqrt(float(c.d)),
                          .causal = c.causal, .q_offset = c.q_offset, .window = c.window, .anchors = c.anchors,
                          .block_q = c.bq, .block_k = c.bk};
        // q, k, v interleaved in one buffer per token, as a fused qkv projection writes them
        const std::size_t qd = c.heads * c.d, kd = c.kv_heads * c.d, ld = qd + 2 * kd;
        const std::size_t n = std::max(c.n_q, c.n_kv);
        std::vector<float> qkv(n * ld);
        for (auto& x : qkv) x = nd(rng);
        std::vector<float> got(c.n_q * qd, -1.0f), want(c.n_q * qd);
        attention(qkv.data(), ld, qkv.data() + qd, ld, qkv.data() + qd + kd, ld, got.data(), qd, c.n_q, c.n_kv, p);
        attention_reference(qkv.data(), ld, qkv.data() + qd, ld, qkv.data() + qd + kd, ld, want.data(), qd, c.n_q, c.n_kv, p);
        double worst = 0;
        for (std::size_t i = 0; i < got.size(); ++i) worst = test::worse(worst, std::fabs(double(got[i]) - want[i]));
        CHECK(worst < 2e-5);
    }
    // bf16 inputs (AVX512-BF16): close to the f32 reference.
    if (detect_cpu().avx512bf16 && cpu().avx512bf16) {
        for (const Case& c : cases) {
            if (c.n_q <= 4 || c.d % 2) continue;  // the few-query path and odd head_dim stay f32
            AttentionParams p{.heads = c.heads, .kv_heads = c.kv_heads, .head_dim = c.d, .scale = 1.0f / std::sqrt(float(c.d)),
                              .causal = c.causal, .q_offset = c.q_offset, .window = c.window, .anchors = c.anchors,
                              .block_q = c.bq, .block_k = c.bk, .bf16 = true, .bf16_even_if_slower = true};
            const std::size_t qd = c.heads * c.d, kd = c.kv_heads * c.d, ld = qd + 2 * kd, n = std::max(c.n_q, c.n_kv);
            std::vector<float> qkv(n * ld);
            for (auto& x : qkv) x = nd(rng);
            std::vector<float> got(c.n_q * qd), want(c.n_q * qd);
            attention(qkv.data(), ld, qkv.data() + qd, ld, qkv.data() + qd + kd, ld, got.data(), qd, c.n_q, c.n_kv, p);
            attention_reference(qkv.data(), ld, qkv.data() + qd, ld, qkv.data() + qd + kd, ld, want.data(), qd, c.n_q, c.n_kv, p);
            double worst = 0, scale = 0;
            for (std::size_t i = 0; i < got.size(); ++i) {
                worst = test::worse(worst, std::fabs(double(got[i]) - want[i]));
                scale = std::max(scale, std::fabs(double(want[i])));
            }
            CAPTURE(c.n_q);
            CAPTURE(c.d);
            CHECK(worst <= 2e-2 * scale);
        }
    }
    // int8 dot products (AVX512-VNNI, AVX-VNNI, AVX2, AArch64 I8MM): within the documented bound of the f32 reference, on every
    // mask and tile shape, on peaked attention (queries ×3) and on keys with a large common offset
    // (what the mean subtraction is for), and with some queries all zero (their scores are 0 · a
    // hidden key's −inf inside the kernel: uniform over the visible keys, as in the reference).
    // Other CPUs run f32 and are held to the f32 bound above.
    for (int variant = 0; variant < 4; ++variant)
        for (const Case& c : cases) {
            if (c.n_q <= 4) continue;  // the few-query path stays f32
            AttentionParams p{.heads = c.heads, .kv_heads = c.kv_heads, .head_dim = c.d, .scale = 1.0f / std::sqrt(float(c.d)),
                              .causal = c.causal, .q_offset = c.q_offset, .window = c.window, .anchors = c.anchors,
                              .block_q = c.bq, .block_k = c.bk, .int8 = true};
            const std::size_t qd = c.heads * c.d, kd = c.kv_heads * c.d, ld = qd + 2 * kd, n = std::max(c.n_q, c.n_kv);
            std::vector<float> qkv(n * ld), key_offset(kd);
            for (auto& x : key_offset) x = variant == 2 ? 5.0f * nd(rng) : 0.0f;
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t t = 0; t < ld; ++t)
                    qkv[i * ld + t] = (t < qd && variant == 3 && i % 7 == 0) ? 0.0f
                                      : nd(rng) * (t < qd && variant == 1 ? 3.0f : 1.0f) + (t >= qd && t < qd + kd ? key_offset[t - qd] : 0.0f);
            std::vector<float> got(c.n_q * qd), want(c.n_q * qd);
            attention(qkv.data(), ld, qkv.data() + qd, ld, qkv.data() + qd + kd, ld, got.data(), qd, c.n_q, c.n_kv, p);
            attention_reference(qkv.data(), ld, qkv.data() + qd, ld, qkv.data() + qd + kd, ld, want.data(), qd, c.n_q, c.n_kv, p);
            double worst = 0, mean = 0, vmax = 0;
            std::size_t not_finite = 0;  // (a NaN also fails the bounds below; this names it)
            for (std::size_t i = 0; i < got.size(); ++i) {
                const double e = std::fabs(double(got[i]) - want[i]);
                not_finite += !std::isfinite(got[i]);
                worst = test::worse(worst, e);
                mean += e / double(got.size());
            }
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t t = qd + kd; t < ld; ++t) vmax = std::max(vmax, std::fabs(double(qkv[i * ld + t])));
            CAPTURE(variant);
            CAPTURE(c.n_q);
            CAPTURE(c.d);
            CAPTURE(c.window);
            CAPTURE(worst / vmax);
            CAPTURE(mean / vmax);
            CHECK(not_finite == 0);
            // AVX2 without VNNI quantises keys and values within ±63 (attention_int8.hpp): half
            // the resolution of the other int8 paths, twice their bound
            if (const int range = attention_int8_range(); range > 0) {
                const double bound = 127.0 / range;
                CHECK(worst > 1e-6);  // the int8 path ran: its result is not the f32 one
                CHECK(worst <= 0.03 * bound * vmax);
                CHECK(mean <= 0.003 * bound * vmax);
            } else {
                CHECK(worst < 2e-5);
            }
        }
    // A negative scale (the int8 path's row maxima assume scale >= 0) runs in f32.
    {
        AttentionParams p{.heads = 2, .kv_heads = 1, .head_dim = 32, .scale = -0.2f, .causal = true, .int8 = true};
        const std::size_t n = 70, ld = 4 * 32;
        std::vector<float> qkv(n * ld), got(n * 64), want(n * 64);
        for (auto& x : qkv) x = nd(rng);
        attention(qkv.data(), ld, qkv.data() + 64, ld, qkv.data() + 96, ld, got.data(), 64, n, n, p);
        attention_reference(qkv.data(), ld, qkv.data() + 64, ld, qkv.data() + 96, ld, want.data(), 64, n, n, p);
        double worst = 0;
        for (std::size_t i = 0; i < got.size(); ++i) worst = test::worse(worst, std::fabs(double(got[i]) - want[i]));
        CHECK(worst < 2e-5);
    }
    // Window masks agree with the predicate, and a smaller tile gives the same long-sequence result.
    AttentionParams p{.heads = 2, .kv_heads = 2, .head_dim = 32, .scale = 0.2f, .window = 50, .anchors = 4};
    const std::size_t n = 2000, ld = 3 * 64;
    std::vector<float> qkv(n * ld);
    for (auto& x : qkv) x = nd(rng);
    std::vector<float> a(n * 64), b(n * 64);
    attention(qkv.data(), ld, qkv.data() + 64, ld, qkv.data() + 128, ld, a.data(), 64, n, n, p);
    p.block_q = 5;
    p.block_k = 32;
    attention(qkv.data(), ld, qkv.data() + 64, ld, qkv.data() + 128, ld, b.data(), 64, n, n, p);
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) worst = test::worse(worst, std::fabs(double(a[i]) - b[i]));
    CHECK(worst < 1e-5);
    CHECK(attention_visible(p, 100, 2));     // anchor key
    CHECK(attention_visible(p, 1, 1999));    // anchor query
    CHECK(attention_visible(p, 100, 150));   // inside the window
    CHECK_FALSE(attention_visible(p, 100, 151));
    CHECK_ERROR_HAS(attention(qkv.data(), ld, qkv.data(), ld, qkv.data(), ld, a.data(), 64, 4, 4,
                              AttentionParams{.heads = 3, .kv_heads = 2}),
                    "not a multiple");
}

}  // TEST_SUITE
