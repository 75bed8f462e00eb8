// The machine's own limits, measured rather than assumed: streaming read bandwidth and the peak
// rate of each arithmetic instruction docvlm's kernels are built on, for the instruction sets this
// CPU has (x86-64: AVX-512 VNNI/BF16/FMA, AVX-VNNI, AVX2 vpmaddubsw and FMA; AArch64: sdot,
// smmla, fmla). A benchmark whose instruction the CPU lacks reports an error and is skipped;
// DOCVLM_ISA caps what counts as present. Ratios in the README are against these.
#include <docvlm/core/cpu.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/core/thread_pool.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#if DOCVLM_X86_64
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

DOCVLM_SIMD_WARNINGS_OFF
namespace {

using namespace docvlm;

// Read bandwidth: every thread sums its share of a 512 MiB buffer (far larger than the caches)
// with the widest loads the CPU has (capped by DOCVLM_ISA).
#if DOCVLM_X86_64
DOCVLM_TARGET("avx512f") float sum_avx512(const float* p, std::size_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t i = 0; i + 64 <= n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + i + 48));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}
DOCVLM_TARGET("avx2") float sum_avx2(const float* p, std::size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t i = 0; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
    }
    alignas(32) float t[8];
    _mm256_store_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#endif

#if defined(__aarch64__)
float sum_neon(const float* p, std::size_t n) {
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t i = 0; i + 16 <= n; i += 16) {
        a0 = vaddq_f32(a0, vld1q_f32(p + i));
        a1 = vaddq_f32(a1, vld1q_f32(p + i + 4));
        a2 = vaddq_f32(a2, vld1q_f32(p + i + 8));
        a3 = vaddq_f32(a3, vld1q_f32(p + i + 12));
    }
    return vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
}
#endif

float sum_any(const float* p, std::size_t n) {
#if DOCVLM_X86_64
    if (cpu().avx512()) return sum_avx512(p, n);
    if (cpu().avx2) return sum_avx2(p, n);
#elif defined(__aarch64__)
    if (cpu().neon) return sum_neon(p, n);
#endif
    float a[4] = {0, 0, 0, 0};
    for (std::size_t i = 0; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; ++j) a[j] += p[i + std::size_t(j)];
    return a[0] + a[1] + a[2] + a[3];
}

void roofline_bandwidth(benchmark::State& state) {
    const std::size_t n = std::size_t(1) << 27;  // 512 MiB of floats
    AlignedBuffer<float> buf(n);
    for (std::size_t i = 0; i < n; i += 1024) buf[i] = 1.0f;
    std::vector<float> sums(thread_pool().size());
    for (auto _ : state) {
        thread_pool().parallel_for(thread_pool().size(), [&](std::size_t b, std::size_t e) {
            for (std::size_t t = b; t < e; ++t) {
                const std::size_t chunk = n / thread_pool().size();
                sums[t] = sum_any(buf.data() + t * chunk, chunk);
            }
        });
        benchmark::DoNotOptimize(sums.data());
    }
    state.counters["GB/s"] = benchmark::Counter(double(n) * 4e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(roofline_bandwidth)->Name("roofline/bandwidth")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

#if DOCVLM_X86_64
// Arithmetic peaks: 16 independent accumulators per thread, one instruction each per step,
// registers only. The loop body is inline assembly: compiled from intrinsics, GCC 12 copies every
// accumulator through another register each step (vmovaps), which costs a vector-port slot on
// Intel cores (no zmm move elimination): up to half of the measured peak there. Each Op names the
// instruction (AT&T operand order: src3, src2, dest += src2 · src3), its operations per vector,
// and the ISA it needs.
struct Int8Dot {  // vpdpbusd: 64 u8·s8 products + adds
    static constexpr double ops = 128;
    static bool supported() { return cpu().avx512vnni; }
};
struct Bf16Dot {  // vdpbf16ps: 32 bf16 pairs → 64 multiply-adds into 16 floats
    static constexpr double ops = 64;
    static bool supported() { return cpu().avx512bf16; }
};
struct F32Fma {  // vfmadd231ps: 16 multiply-adds
    static constexpr double ops = 32;
    static bool supported() { return cpu().avx512(); }
};

#define DOCVLM_PEAK_STEP(insn, i) insn " %[b], %[a], %[c" #i "]\n\t"
// Eight accumulators per statement (GCC allows 30 asm operands; "+v" counts twice).
#define DOCVLM_PEAK_EIGHT(insn, o)                                                                          \
    asm volatile(DOCVLM_PEAK_STEP(insn, 0) DOCVLM_PEAK_STEP(insn, 1) DOCVLM_PEAK_STEP(insn, 2) DOCVLM_PEAK_STEP(insn, 3) \
                 DOCVLM_PEAK_STEP(insn, 4) DOCVLM_PEAK_STEP(insn, 5) DOCVLM_PEAK_STEP(insn, 6) DOCVLM_PEAK_STEP(insn, 7) \
                 : [c0] "+v"(c##o##0), [c1] "+v"(c##o##1), [c2] "+v"(c##o##2), [c3] "+v"(c##o##3), [c4] "+v"(c##o##4),  \
                   [c5] "+v"(c##o##5), [c6] "+v"(c##o##6), [c7] "+v"(c##o##7)                                     \
                 : [a] "v"(a), [b] "v"(b))
#define DOCVLM_PEAK_BODY(insn) \
    do {                       \
        DOCVLM_PEAK_EIGHT(insn, a); \
        DOCVLM_PEAK_EIGHT(insn, b); \
    } while (0)

template <class Op>
DOCVLM_TARGET("avx512f,avx512bw,avx512vnni,avx512bf16") std::int32_t peak_loop(std::size_t iters) {
    // Named variables, not an array: GCC keeps an array in memory and stores it every step.
    __m512i ca0 = _mm512_setzero_si512(), ca1 = ca0, ca2 = ca0, ca3 = ca0, ca4 = ca0, ca5 = ca0, ca6 = ca0, ca7 = ca0;
    __m512i cb0 = ca0, cb1 = ca0, cb2 = ca0, cb3 = ca0, cb4 = ca0, cb5 = ca0, cb6 = ca0, cb7 = ca0;
    // Small operands keep the float accumulators finite (1e-6 per step at most).
    const __m512i a = _mm512_set1_epi32(0x3a833a83), b = _mm512_set1_epi32(0x3a833a83);
    for (std::size_t i = 0; i < iters; ++i) {
        if constexpr (std::is_same_v<Op, Int8Dot>) DOCVLM_PEAK_BODY("vpdpbusd");
        else if constexpr (std::is_same_v<Op, Bf16Dot>) DOCVLM_PEAK_BODY("vdpbf16ps");
        else DOCVLM_PEAK_BODY("vfmadd231ps");
    }
    const __m512i c[16] = {ca0, ca1, ca2, ca3, ca4, ca5, ca6, ca7, cb0, cb1, cb2, cb3, cb4, cb5, cb6, cb7};
    __m512i s = c[0];
    for (int j = 1; j < 16; ++j) s = _mm512_xor_si512(s, c[j]);
    return _mm512_reduce_add_epi32(s);
}
#undef DOCVLM_PEAK_BODY
#undef DOCVLM_PEAK_EIGHT
#undef DOCVLM_PEAK_STEP

// The same on 256-bit registers for AVX2 machines (register constraint "x": ymm0-15 only, as
// VEX encodes them). Int8Maddubs is AVX2's int8 dot product: vpmaddubsw (32 u8·s8 products
// summed in pairs to s16), vpmaddwd by ones (pairs to s32), vpaddd into the accumulator — 64
// operations per three instructions, the sequence docvlm's AVX2 int8 GEMM runs.
struct Int8Maddubs {
    static constexpr double ops = 64;
    static bool supported() { return cpu().avx2; }
};
struct Int8DotVex {  // {vex} vpdpbusd ymm (AVX-VNNI): 32 u8·s8 products + adds
    static constexpr double ops = 64;
    static bool supported() { return cpu().avxvnni; }
};
struct F32Fma256 {  // vfmadd231ps ymm: 8 multiply-adds
    static constexpr double ops = 16;
    static bool supported() { return cpu().avx2 && cpu().fma; }
};

#define DOCVLM_PEAK_STEP(insn, i) insn " %[b], %[a], %[c" #i "]\n\t"
// Twelve accumulators and the two operands: 14 of the 16 registers VEX can name.
#define DOCVLM_PEAK_BODY256(insn)                                                                            \
    asm volatile(DOCVLM_PEAK_STEP(insn, 0) DOCVLM_PEAK_STEP(insn, 1) DOCVLM_PEAK_STEP(insn, 2) DOCVLM_PEAK_STEP(insn, 3) \
                 DOCVLM_PEAK_STEP(insn, 4) DOCVLM_PEAK_STEP(insn, 5) DOCVLM_PEAK_STEP(insn, 6) DOCVLM_PEAK_STEP(insn, 7) \
                 DOCVLM_PEAK_STEP(insn, 8) DOCVLM_PEAK_STEP(insn, 9) DOCVLM_PEAK_STEP(insn, 10) DOCVLM_PEAK_STEP(insn, 11) \
                 : [c0] "+x"(ca0), [c1] "+x"(ca1), [c2] "+x"(ca2), [c3] "+x"(ca3), [c4] "+x"(ca4), [c5] "+x"(ca5),     \
                   [c6] "+x"(ca6), [c7] "+x"(ca7), [c8] "+x"(cb0), [c9] "+x"(cb1), [c10] "+x"(cb2), [c11] "+x"(cb3)  \
                 : [a] "x"(a), [b] "x"(b))
// One maddubs step on accumulator i through temporary t_i.
#define DOCVLM_MADDUBS_STEP(i) "vpmaddubsw %[b], %[a], %[t" #i "]\n\tvpmaddwd %[one], %[t" #i "], %[t" #i "]\n\tvpaddd %[t" #i "], %[c" #i "], %[c" #i "]\n\t"

// The target names AVX-VNNI for its one inline-assembly use; the compiled C++ around the loops
// (set1, xor, extract) is plain AVX2, so the other two ops run on AVX2-only CPUs.
template <class Op>
DOCVLM_TARGET("avx2,fma,avxvnni") std::int32_t peak_loop256(std::size_t iters) {
    __m256i ca0 = _mm256_setzero_si256(), ca1 = ca0, ca2 = ca0, ca3 = ca0, ca4 = ca0, ca5 = ca0, ca6 = ca0, ca7 = ca0;
    __m256i cb0 = ca0, cb1 = ca0, cb2 = ca0, cb3 = ca0;
    const __m256i a = _mm256_set1_epi32(0x3a833a83), b = _mm256_set1_epi32(0x3a833a83), one = _mm256_set1_epi16(1);
    for (std::size_t i = 0; i < iters; ++i) {
        if constexpr (std::is_same_v<Op, Int8Maddubs>) {
            __m256i t0, t1, t2, t3, t4, t5;  // 6 accumulators + 6 temporaries + 3 operands: 15 of 16 registers
            asm volatile(DOCVLM_MADDUBS_STEP(0) DOCVLM_MADDUBS_STEP(1) DOCVLM_MADDUBS_STEP(2) DOCVLM_MADDUBS_STEP(3)
                         DOCVLM_MADDUBS_STEP(4) DOCVLM_MADDUBS_STEP(5)
                         : [c0] "+x"(ca0), [c1] "+x"(ca1), [c2] "+x"(ca2), [c3] "+x"(ca3), [c4] "+x"(cb0), [c5] "+x"(cb1),
                           [t0] "=&x"(t0), [t1] "=&x"(t1), [t2] "=&x"(t2), [t3] "=&x"(t3), [t4] "=&x"(t4), [t5] "=&x"(t5)
                         : [a] "x"(a), [b] "x"(b), [one] "x"(one));
        } else if constexpr (std::is_same_v<Op, Int8DotVex>) {
            DOCVLM_PEAK_BODY256("%{vex%} vpdpbusd");  // %{ %}: literal braces in GCC asm
        } else {
            DOCVLM_PEAK_BODY256("vfmadd231ps");
        }
    }
    const __m256i c[12] = {ca0, ca1, ca2, ca3, ca4, ca5, ca6, ca7, cb0, cb1, cb2, cb3};
    __m256i s = c[0];
    for (int j = 1; j < 12; ++j) s = _mm256_xor_si256(s, c[j]);
    return _mm256_extract_epi32(s, 0);
}
#undef DOCVLM_MADDUBS_STEP
#undef DOCVLM_PEAK_BODY256
#undef DOCVLM_PEAK_STEP

template <class Op>
void roofline_peak_x86(benchmark::State& state) {
    if (!Op::supported()) return state.SkipWithError("the CPU lacks this instruction");
    constexpr bool wide = std::is_same_v<Op, Int8Dot> || std::is_same_v<Op, Bf16Dot> || std::is_same_v<Op, F32Fma>;
    const std::size_t iters = 1 << 20;
    // per step: 16 accumulators on 512 bits, 12 on 256 bits, 6 for Int8Maddubs (a temporary each)
    const double steps = wide ? 16 : std::is_same_v<Op, Int8Maddubs> ? 6 : 12;
    std::vector<std::int32_t> out(thread_pool().size());
    for (auto _ : state) {
        thread_pool().parallel_for(out.size(), [&](std::size_t b, std::size_t e) {
            for (std::size_t t = b; t < e; ++t) {
                if constexpr (wide) out[t] = peak_loop<Op>(iters);
                else out[t] = peak_loop256<Op>(iters);
            }
        });
        benchmark::DoNotOptimize(out.data());
    }
    const double ops = double(iters) * steps * Op::ops * double(out.size());
    state.counters["GOP/s"] = benchmark::Counter(ops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(roofline_peak_x86<Int8Dot>)->Name("roofline/int8_peak")->UseRealTime();
BENCHMARK(roofline_peak_x86<Bf16Dot>)->Name("roofline/bf16_peak")->UseRealTime();
BENCHMARK(roofline_peak_x86<F32Fma>)->Name("roofline/f32_peak")->UseRealTime();
BENCHMARK(roofline_peak_x86<Int8Maddubs>)->Name("roofline/int8_maddubs_peak_avx2")->UseRealTime();
BENCHMARK(roofline_peak_x86<Int8DotVex>)->Name("roofline/int8_peak_avxvnni")->UseRealTime();
BENCHMARK(roofline_peak_x86<F32Fma256>)->Name("roofline/f32_peak_avx2")->UseRealTime();
#endif

#if defined(__aarch64__)
// AArch64: 16 independent accumulators per thread on 128-bit registers, one instruction each per
// step, registers only (an empty asm statement per step keeps each accumulator in its register).
struct SdotPeak {  // sdot .4s: 16 s8·s8 products + adds
    static constexpr double ops = 32;
    static bool supported() { return cpu().dotprod; }
};
struct SmmlaPeak {  // smmla: a 2 x 8 by 8 x 2 int8 product, 32 products + adds
    static constexpr double ops = 64;
    static bool supported() { return cpu().i8mm; }
};
struct FmlaPeak {  // fmla .4s: 4 multiply-adds
    static constexpr double ops = 8;
    static bool supported() { return cpu().neon; }
};

// Sixteen accumulators as named variables (an array would live in memory), each updated by
// OP(acc) once per step; the empty asm statements keep every one in its register and live.
#define DOCVLM_ARM_PEAK_STEP(OP)                                                                         \
    do {                                                                                                 \
        c0 = OP(c0), c1 = OP(c1), c2 = OP(c2), c3 = OP(c3), c4 = OP(c4), c5 = OP(c5), c6 = OP(c6), c7 = OP(c7); \
        c8 = OP(c8), c9 = OP(c9), c10 = OP(c10), c11 = OP(c11), c12 = OP(c12), c13 = OP(c13), c14 = OP(c14);     \
        c15 = OP(c15);                                                                                   \
        asm volatile("" : "+w"(c0), "+w"(c1), "+w"(c2), "+w"(c3), "+w"(c4), "+w"(c5), "+w"(c6), "+w"(c7));      \
        asm volatile("" : "+w"(c8), "+w"(c9), "+w"(c10), "+w"(c11), "+w"(c12), "+w"(c13), "+w"(c14), "+w"(c15)); \
    } while (0)

template <class Op>
DOCVLM_TARGET("arch=armv8.2-a+dotprod+i8mm") std::int32_t peak_loop_arm(std::size_t iters) {
    if constexpr (std::is_same_v<Op, FmlaPeak>) {
        float32x4_t c0 = vdupq_n_f32(0.0f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
        float32x4_t c8 = c0, c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0, c15 = c0;
        const float32x4_t a = vdupq_n_f32(1e-6f), b = vdupq_n_f32(1e-6f);  // the sums stay finite
#define DOCVLM_FMLA(x) vfmaq_f32(x, a, b)
        for (std::size_t i = 0; i < iters; ++i) DOCVLM_ARM_PEAK_STEP(DOCVLM_FMLA);
#undef DOCVLM_FMLA
        const float32x4_t s = vaddq_f32(vaddq_f32(vaddq_f32(vaddq_f32(c0, c1), vaddq_f32(c2, c3)), vaddq_f32(vaddq_f32(c4, c5), vaddq_f32(c6, c7))),
                                        vaddq_f32(vaddq_f32(vaddq_f32(c8, c9), vaddq_f32(c10, c11)), vaddq_f32(vaddq_f32(c12, c13), vaddq_f32(c14, c15))));
        return std::int32_t(vaddvq_f32(s));
    } else {
        int32x4_t c0 = vdupq_n_s32(0), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
        int32x4_t c8 = c0, c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0, c15 = c0;
        const int8x16_t a = vdupq_n_s8(3), b = vdupq_n_s8(5);
#define DOCVLM_SDOT(x) vdotq_s32(x, a, b)
#define DOCVLM_SMMLA(x) vmmlaq_s32(x, a, b)
        for (std::size_t i = 0; i < iters; ++i) {
            if constexpr (std::is_same_v<Op, SdotPeak>) DOCVLM_ARM_PEAK_STEP(DOCVLM_SDOT);
            else DOCVLM_ARM_PEAK_STEP(DOCVLM_SMMLA);
        }
#undef DOCVLM_SDOT
#undef DOCVLM_SMMLA
        const int32x4_t s = veorq_s32(veorq_s32(veorq_s32(veorq_s32(c0, c1), veorq_s32(c2, c3)), veorq_s32(veorq_s32(c4, c5), veorq_s32(c6, c7))),
                                      veorq_s32(veorq_s32(veorq_s32(c8, c9), veorq_s32(c10, c11)), veorq_s32(veorq_s32(c12, c13), veorq_s32(c14, c15))));
        return vaddvq_s32(s);
    }
}
#undef DOCVLM_ARM_PEAK_STEP

template <class Op>
void roofline_peak_arm(benchmark::State& state) {
    if (!Op::supported()) return state.SkipWithError("the CPU lacks this instruction");
    const std::size_t iters = 1 << 20;
    std::vector<std::int32_t> out(thread_pool().size());
    for (auto _ : state) {
        thread_pool().parallel_for(out.size(), [&](std::size_t b, std::size_t e) {
            for (std::size_t t = b; t < e; ++t) out[t] = peak_loop_arm<Op>(iters);
        });
        benchmark::DoNotOptimize(out.data());
    }
    const double ops = double(iters) * 16 * Op::ops * double(out.size());
    state.counters["GOP/s"] = benchmark::Counter(ops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(roofline_peak_arm<SdotPeak>)->Name("roofline/int8_peak_sdot")->UseRealTime();
BENCHMARK(roofline_peak_arm<SmmlaPeak>)->Name("roofline/int8_peak_smmla")->UseRealTime();
BENCHMARK(roofline_peak_arm<FmlaPeak>)->Name("roofline/f32_peak_neon")->UseRealTime();
#endif

}  // namespace
DOCVLM_SIMD_WARNINGS_ON
