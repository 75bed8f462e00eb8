// Tests of docvlm/core: dtypes (exhaustive against scalar references), CPU capping, tensors,
// aligned buffers and arenas, the thread pool.
#include "test_util.hpp"

#include <docvlm/core/cpu.hpp>
#include <docvlm/core/dtype.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/core/thread_pool.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

using namespace docvlm;

namespace {

// ---- Obviously-correct references, written from the IEEE definitions with double arithmetic ----

// Exact value of a bf16 / f16 bit pattern as a double (NaN for NaN patterns, ±inf for inf).
double ref_value_bf16(std::uint16_t h) { return double(std::bit_cast<float>(std::uint32_t(h) << 16)); }

double ref_value_f16(std::uint16_t h) {
    const int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
    double v;
    if (exp == 31) v = mant ? std::nan("") : INFINITY;
    else if (exp == 0) v = std::ldexp(double(mant), -24);
    else v = std::ldexp(double(1024 + mant), exp - 25);
    return sign ? -v : v;
}

// Round |x| to the nearest of the finite positive patterns 0..max_pattern (ordered by value),
// treating pattern max_pattern+1 as having value `overflow` (the first unrepresentable power of two):
// nearest wins, ties go to the even pattern, exactly as IEEE round-to-nearest-even.
template <class ValueOf>
std::uint16_t ref_round(double ax, std::uint16_t max_pattern, double overflow, ValueOf value_of) {
    std::uint32_t lo = 0, hi = max_pattern;  // binary search: largest pattern with value <= ax
    if (ax >= overflow) return std::uint16_t(max_pattern + 1);
    while (lo < hi) {
        const std::uint32_t mid = (lo + hi + 1) / 2;
        if (value_of(std::uint16_t(mid)) <= ax) lo = mid;
        else hi = mid - 1;
    }
    const double a = value_of(std::uint16_t(lo));
    const double b = lo == max_pattern ? overflow : value_of(std::uint16_t(lo + 1));
    if (ax - a < b - ax) return std::uint16_t(lo);
    if (ax - a > b - ax) return std::uint16_t(lo + 1);
    return std::uint16_t((lo & 1) ? lo + 1 : lo);
}

std::uint16_t ref_f32_to_bf16(float x) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
    const std::uint16_t sign = std::uint16_t((u >> 16) & 0x8000);
    if (std::isnan(x)) return std::uint16_t(0x7fc0 | sign);  // compared as "some quiet NaN" below
    if (std::isinf(x)) return std::uint16_t(0x7f80 | sign);
    return std::uint16_t(sign | ref_round(std::fabs(double(x)), 0x7f7f, std::ldexp(1.0, 128), ref_value_bf16));
}

std::uint16_t ref_f32_to_f16(float x) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
    const std::uint16_t sign = std::uint16_t((u >> 16) & 0x8000);
    if (std::isnan(x)) return std::uint16_t(0x7e00 | sign);
    if (std::isinf(x)) return std::uint16_t(0x7c00 | sign);
    return std::uint16_t(sign | ref_round(std::fabs(double(x)), 0x7bff, 65536.0, ref_value_f16));
}

bool is_nan_bf16(std::uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f); }
bool is_nan_f16(std::uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }

// Test points for f32 -> 16-bit conversion built from every 16-bit pattern: the value itself,
// the exact midpoint to the next pattern and one float ulp either side of it.
template <class ValueOf>
std::vector<float> rounding_points(ValueOf value_of, std::uint16_t max_pattern, double overflow) {
    std::vector<float> pts;
    for (std::uint32_t h = 0; h <= max_pattern; ++h) {
        const double a = value_of(std::uint16_t(h));
        const double b = h == max_pattern ? overflow : value_of(std::uint16_t(h + 1));
        const float mid = float((a + b) / 2);  // exact: one more bit than the 16-bit format has
        REQUIRE(double(mid) == (a + b) / 2);
        for (float v : {float(a), mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
            pts.push_back(v);
            pts.push_back(-v);
        }
    }
    return pts;
}

// The conversion paths this CPU can run, by name.
std::vector<std::string> available_paths() {
    std::vector<std::string> p{"generic"};
    const CpuFeatures f = detect_cpu();
    if (f.avx2 && f.f16c) p.push_back("avx2");
    if (f.avx512()) p.push_back("avx512");
    return p;
}

template <class Src, class Dst>
void convert_on(const std::string& path, const Src* s, Dst* d, std::size_t n) {
#if DOCVLM_X86_64
    if (path == "avx2") return detail::convert_avx2(s, d, n);
    if (path == "avx512") return detail::convert_avx512(s, d, n);
#else
    (void)path;  // only the portable conversion exists off x86-64
#endif
    detail::convert_generic(s, d, n);
}

}  // namespace

TEST_SUITE("core") {

TEST_CASE("dtype names and sizes round-trip") {
    for (DType t : {DType::f64, DType::f32, DType::f16, DType::bf16, DType::i64, DType::i32, DType::i16, DType::i8,
                    DType::u64, DType::u32, DType::u16, DType::u8, DType::boolean}) {
        CHECK(dtype_from_name(dtype_name(t)) == t);
        CHECK(dtype_size(t) >= 1);
    }
    CHECK(dtype_size(DType::bf16) == 2);
    CHECK(dtype_size(DType::f64) == 8);
    CHECK_FALSE(dtype_from_name("F8_E4M3").has_value());
    CHECK_FALSE(dtype_from_name("f32").has_value());  // safetensors names are upper case
}

TEST_CASE("bf16 -> f32: all 65536 patterns, every path, against the reference") {
    std::vector<bf16> all(65536);
    for (std::uint32_t h = 0; h < 65536; ++h) all[h].bits = std::uint16_t(h);
    for (const std::string& path : available_paths()) {
        CAPTURE(path);
        std::vector<float> out(65536);
        convert_on(path, all.data(), out.data(), all.size());
        for (std::uint32_t h = 0; h < 65536; ++h) {
            const double ref = ref_value_bf16(std::uint16_t(h));
            const float scalar = bf16_to_f32(all[h]);
            REQUIRE(std::bit_cast<std::uint32_t>(out[h]) == std::bit_cast<std::uint32_t>(scalar));
            if (std::isnan(ref)) REQUIRE(std::isnan(scalar));
            else REQUIRE(double(scalar) == ref);
        }
    }
}

TEST_CASE("f16 -> f32: all 65536 patterns, every path, against the reference") {
    std::vector<f16> all(65536);
    for (std::uint32_t h = 0; h < 65536; ++h) all[h].bits = std::uint16_t(h);
    for (const std::string& path : available_paths()) {
        CAPTURE(path);
        std::vector<float> out(65536);
        convert_on(path, all.data(), out.data(), all.size());
        for (std::uint32_t h = 0; h < 65536; ++h) {
            CAPTURE(h);
            const double ref = ref_value_f16(std::uint16_t(h));
            const float scalar = f16_to_f32(all[h]);
            REQUIRE(std::bit_cast<std::uint32_t>(out[h]) == std::bit_cast<std::uint32_t>(scalar));
            if (std::isnan(ref)) {
                REQUIRE(std::isnan(scalar));
                REQUIRE(std::signbit(scalar) == bool(h & 0x8000));
            } else {
                REQUIRE(double(scalar) == ref);
            }
        }
    }
}

TEST_CASE("f32 -> bf16 rounds to nearest even at every rounding boundary, every path") {
    std::vector<float> pts = rounding_points(ref_value_bf16, 0x7f7f, std::ldexp(1.0, 128));
    std::mt19937 rng(7);
    for (int i = 0; i < 200000; ++i) pts.push_back(std::bit_cast<float>(std::uint32_t(rng())));
    for (float v : {INFINITY, -INFINITY, NAN, -NAN, 0.0f, -0.0f, 1e-45f, 3.4028235e38f})
        pts.push_back(v);
    for (const std::string& path : available_paths()) {
        CAPTURE(path);
        std::vector<bf16> out(pts.size());
        convert_on(path, pts.data(), out.data(), pts.size());
        for (std::size_t i = 0; i < pts.size(); ++i) {
            CAPTURE(pts[i]);
            const std::uint16_t scalar = f32_to_bf16(pts[i]).bits, ref = ref_f32_to_bf16(pts[i]);
            REQUIRE(out[i].bits == scalar);
            if (std::isnan(pts[i])) {
                REQUIRE(is_nan_bf16(scalar));
                REQUIRE((scalar & 0x40) != 0);  // quiet
                REQUIRE(bool(scalar & 0x8000) == std::signbit(pts[i]));
            } else {
                REQUIRE(scalar == ref);
            }
        }
    }
}

TEST_CASE("f32 -> f16 rounds to nearest even at every rounding boundary, every path") {
    std::vector<float> pts = rounding_points(ref_value_f16, 0x7bff, 65536.0);
    std::mt19937 rng(11);
    for (int i = 0; i < 200000; ++i) pts.push_back(std::bit_cast<float>(std::uint32_t(rng())));
    std::uniform_real_distribution<float> small(-70000.0f, 70000.0f);
    for (int i = 0; i < 100000; ++i) pts.push_back(small(rng));
    for (float v : {INFINITY, -INFINITY, NAN, -NAN, 0.0f, -0.0f, 1e-45f, 65504.0f, 65519.99f, 65520.0f, 1e30f})
        pts.push_back(v);
    for (const std::string& path : available_paths()) {
        CAPTURE(path);
        std::vector<f16> out(pts.size());
        convert_on(path, pts.data(), out.data(), pts.size());
        for (std::size_t i = 0; i < pts.size(); ++i) {
            CAPTURE(pts[i]);
            const std::uint16_t scalar = f32_to_f16(pts[i]).bits, ref = ref_f32_to_f16(pts[i]);
            REQUIRE(out[i].bits == scalar);
            if (std::isnan(pts[i])) {
                REQUIRE(is_nan_f16(scalar));
                REQUIRE(bool(scalar & 0x8000) == std::signbit(pts[i]));
            } else {
                REQUIRE(scalar == ref);
            }
        }
    }
}

TEST_CASE("convert() dispatches and handles every length, including ragged tails") {
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 10.0f);
    for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 15u, 16u, 17u, 33u, 1000u}) {
        std::vector<float> x(n), back(n);
        for (float& v : x) v = nd(rng);
        std::vector<bf16> b(n);
        std::vector<f16> h(n);
        convert(x.data(), b.data(), n);
        convert(x.data(), h.data(), n);
        for (std::size_t i = 0; i < n; ++i) {
            CHECK(b[i] == f32_to_bf16(x[i]));
            CHECK(h[i] == f32_to_f16(x[i]));
        }
        convert(b.data(), back.data(), n);
        for (std::size_t i = 0; i < n; ++i) CHECK(std::fabs(back[i] - x[i]) <= std::fabs(x[i]) * 0x1p-8f);
    }
}

TEST_CASE("convert_to_f32 reads every dtype from unaligned memory") {
    std::vector<unsigned char> buf(1 + 8 * 4);
    const std::int16_t vals[4] = {-3, 0, 7, 32767};
    std::memcpy(buf.data() + 1, vals, sizeof vals);  // deliberately misaligned
    float out[4];
    convert_to_f32(DType::i16, buf.data() + 1, out, 4);
    CHECK(out[0] == -3.0f);
    CHECK(out[3] == 32767.0f);
    const bf16 bvals[3] = {f32_to_bf16(1.5f), f32_to_bf16(-2.0f), f32_to_bf16(0.25f)};
    std::memcpy(buf.data() + 1, bvals, sizeof bvals);
    convert_to_f32(DType::bf16, buf.data() + 1, out, 3);
    CHECK(out[0] == 1.5f);
    CHECK(out[1] == -2.0f);
    CHECK(out[2] == 0.25f);
    const double d = -0.125;
    std::memcpy(buf.data() + 1, &d, 8);
    convert_to_f32(DType::f64, buf.data() + 1, out, 1);
    CHECK(out[0] == -0.125f);
}

TEST_CASE("cpu features can be capped for testing") {
    CpuFeatures all;
    all.avx2 = all.fma = all.f16c = all.avx512f = all.avx512bw = all.avx512vl = all.avx512vnni = all.avx512bf16 =
        all.avxvnni = true;
    CHECK(cap_cpu(all, "generic").describe() == "generic");
    CHECK(cap_cpu(all, "avx2").describe() == "avx2 fma f16c");
    CHECK(cap_cpu(all, "avxvnni").avxvnni);
    CHECK_FALSE(cap_cpu(all, "avx512").avx512vnni);
    CHECK(cap_cpu(all, "avx512").avx512());
    CHECK(cap_cpu(all, "avx512vnni").avx512vnni);
    CHECK_FALSE(cap_cpu(all, "avx512vnni").avx512bf16);
    CHECK(cap_cpu(all, "native").avx512bf16);
    CHECK_ERROR_HAS(cap_cpu(all, "sse9"), "DOCVLM_ISA=sse9", "unknown level");
    CpuFeatures arm;
    arm.neon = arm.dotprod = arm.i8mm = true;
    CHECK(cap_cpu(arm, "neon").describe() == "neon");
    CHECK(cap_cpu(arm, "dotprod").describe() == "neon dotprod");
    CHECK(cap_cpu(arm, "avx2").describe() == "neon dotprod i8mm");  // x86 names leave AArch64 features alone
    CHECK(cap_cpu(arm, "native").i8mm);
    CpuFeatures none;
    CHECK_FALSE(cap_cpu(none, "avx512vnni").avx512vnni);  // capping never adds features
    CHECK_FALSE(cap_cpu(none, "native").i8mm);
    MESSAGE("this CPU: ", detect_cpu().describe());
}

TEST_CASE("tensor views, aligned buffers and arenas") {
    AlignedBuffer<float> buf(6);
    CHECK(reinterpret_cast<std::uintptr_t>(buf.data()) % buffer_alignment == 0);
    for (std::size_t i = 0; i < 6; ++i) CHECK(buf[i] == 0.0f);
    for (std::size_t i = 0; i < 6; ++i) buf[i] = float(i);
    auto v = make_view(buf.data(), std::array<std::size_t, 2>{2, 3});
    CHECK(v.shape()[0] == 2);
    CHECK(v.shape()[1] == 3);
    CHECK(v(1, 2) == 5.0f);
    v(0, 1) = 42.0f;  // a view writes through to the buffer
    CHECK(buf[1] == 42.0f);
    Tensor<float, 2> owned = v;  // and copies into an owning tensor
    buf[1] = 0.0f;
    CHECK(owned(0, 1) == 42.0f);

    Arena arena(1024);
    float* a = arena.allocate<float>(3);
    std::int8_t* b = arena.allocate<std::int8_t>(100);
    CHECK(reinterpret_cast<std::uintptr_t>(a) % buffer_alignment == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(b) % buffer_alignment == 0);
    CHECK(reinterpret_cast<std::byte*>(b) >= reinterpret_cast<std::byte*>(a + 3));
    CHECK_ERROR_HAS(arena.allocate<double>(1000), "Arena", "do not fit");
    CHECK_ERROR_HAS(arena.allocate<double>(std::size_t(-1) / 4), "Arena");
    arena.reset();
    CHECK(arena.allocate<float>(256) == a);  // memory is reused after reset
    CHECK_ERROR_HAS(AlignedBuffer<double>(std::size_t(-1) / 2), "overflow");
}

TEST_CASE("parallel_for covers every index exactly once") {
    for (std::size_t threads : {1u, 2u, 3u, 8u}) {
        ThreadPool pool(threads);
        CHECK(pool.size() == threads);
        for (std::size_t n : {0u, 1u, 2u, 5u, 64u, 1001u}) {
            for (std::size_t grain : {1u, 3u, 100u}) {
                std::vector<std::atomic<int>> hits(n);
                std::atomic<std::size_t> calls{0};
                pool.parallel_for(
                    n,
                    [&](std::size_t b, std::size_t e) {
                        REQUIRE(b < e);
                        if (e - b < grain) REQUIRE((b == 0 && e == n));  // pieces honour the grain
                        for (std::size_t i = b; i < e; ++i) hits[i]++;
                        calls++;
                    },
                    grain);
                for (std::size_t i = 0; i < n; ++i) REQUIRE(hits[i] == 1);
                CHECK(calls <= threads);
            }
        }
    }
}

TEST_CASE("parallel_for: nesting, exceptions, concurrent callers, global pool") {
    ThreadPool pool(4);
    std::atomic<int> inner{0};
    pool.parallel_for(8, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i)
            pool.parallel_for(10, [&](std::size_t b2, std::size_t e2) { inner += int(e2 - b2); });
    });
    CHECK(inner == 80);

    CHECK_THROWS_WITH_AS(pool.parallel_for(100,
                                           [](std::size_t b, std::size_t) {
                                               if (b > 0) throw Error("boom in a worker");
                                           }),
                         "boom in a worker", Error);
    // The pool still works after an exception.
    std::atomic<std::size_t> sum{0};
    pool.parallel_for(100, [&](std::size_t b, std::size_t e) { sum += e - b; });
    CHECK(sum == 100);

    std::vector<std::thread> callers;
    std::atomic<std::size_t> total{0};
    for (int t = 0; t < 4; ++t)
        callers.emplace_back([&] {
            for (int r = 0; r < 50; ++r) pool.parallel_for(37, [&](std::size_t b, std::size_t e) { total += e - b; });
        });
    for (auto& c : callers) c.join();
    CHECK(total == 4u * 50u * 37u);

    set_num_threads(3);
    CHECK(thread_pool().size() == 3);
    std::atomic<std::size_t> g{0};
    parallel_for(1000, [&](std::size_t b, std::size_t e) { g += e - b; }, 10);
    CHECK(g == 1000);
    set_num_threads(default_thread_count());
    CHECK_ERROR_HAS(ThreadPool(0), "at least 1");
}

}  // TEST_SUITE
