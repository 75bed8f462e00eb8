// docvlm/core/cpu.hpp — which instruction sets this CPU has, detected once at run time.
//
// docvlm is never built with -march=native: the same binary must run on a CPU without AVX-512.
// Kernels are compiled for several ISAs with DOCVLM_TARGET(...) and pick one through cpu().
// The environment variable DOCVLM_ISA caps what cpu() reports, so every path can be tested and
// benchmarked on one machine:
//   DOCVLM_ISA=generic      no SIMD beyond the compiler's baseline
//   DOCVLM_ISA=avx2         AVX2 + FMA + F16C
//   DOCVLM_ISA=avxvnni      AVX2 + AVX-VNNI
//   DOCVLM_ISA=avx512       AVX-512 F/BW/VL (no VNNI, no BF16)
//   DOCVLM_ISA=avx512vnni   AVX-512 + VNNI (no BF16, no AMX)
//   DOCVLM_ISA=neon         AArch64: Advanced SIMD without the int8 dot products
//   DOCVLM_ISA=dotprod      AArch64: NEON + the dot products (sdot), without the int8 matrix
//                           multiply (smmla)
//   DOCVLM_ISA=native       everything detected (the default), AMX included
// On AArch64 the x86 level names keep every AArch64 feature; on x86-64 `neon` and `dotprod` are generic.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#if DOCVLM_X86_64 && defined(__GNUC__)
#include <cpuid.h>
#endif
#if DOCVLM_X86_64 && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <string>
#include <string_view>
#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

DOCVLM_NAMESPACE_BEGIN

/// Instruction-set features relevant to docvlm's kernels.
struct CpuFeatures {
    bool avx2 = false, fma = false, f16c = false;
    bool avx512f = false, avx512bw = false, avx512vl = false;
    bool avx512vnni = false, avx512bf16 = false, avxvnni = false;
    bool amx_int8 = false;  ///< AMX tiles with int8 dot products (tdpbusd), the OS letting this process use them
    bool amd = false;  ///< AuthenticAMD
    bool neon = false, dotprod = false;  ///< AArch64 Advanced SIMD and its sdot/udot instructions
    bool i8mm = false;                   ///< AArch64 int8 matrix multiply (smmla, Armv8.6 I8MM)

    /// True when the AVX-512 F/BW/VL subset every docvlm AVX-512 kernel needs is present.
    bool avx512() const { return avx512f && avx512bw && avx512vl; }
    /// True when bf16 dot products (vdpbf16ps) are expected to outrun f32 FMA here, so kernels that
    /// may round to bf16 for speed (attention with `bf16`) should. AMD: on the Zen 5 machines this
    /// was developed on, the bf16 dot peak was about twice the f32 FMA peak (870 vs 436 GFLOP/s,
    /// 2 threads, recorded in the kernels issue); other AMD CPUs with AVX512-BF16 are assumed alike.
    /// Intel Xeon family 6 model 207 (Emerald Rapids): `roofline/bf16_peak` measured 163–168 vs
    /// `roofline/f32_peak` 326–343 GFLOP/s (2 threads, register-only loops in inline assembly),
    /// and the 12 x 32 micro-kernels, one core, ran at 77–83 (bf16) vs 166–168 (f32) GFLOP/s: f32
    /// is faster there.
    bool bf16_dot_fast() const { return avx512bf16 && amd; }
    /// A short human-readable summary, e.g. "avx2 fma f16c avx512 avx512vnni".
    std::string describe() const;
};

namespace detail {
/// Lane mask for the last `left` elements of a 16-wide vector loop (all 16 lanes when left >= 16).
constexpr std::uint16_t tail_mask16(std::size_t left) {
    return left >= 16 ? std::uint16_t(0xffff) : std::uint16_t((1u << left) - 1u);
}
}  // namespace detail

/// Features of the CPU itself, ignoring DOCVLM_ISA.
CpuFeatures detect_cpu();

/// Caps `features` to the named level (see the header comment); throws docvlm::Error on an unknown name.
CpuFeatures cap_cpu(CpuFeatures features, std::string_view level);

/// The features kernels should use: detect_cpu() capped by $DOCVLM_ISA. Computed once.
const CpuFeatures& cpu();

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline std::string CpuFeatures::describe() const {
    std::string s;
    auto add = [&](bool on, const char* name) {
        if (!on) return;
        if (!s.empty()) s += ' ';
        s += name;
    };
    add(avx2, "avx2");
    add(fma, "fma");
    add(f16c, "f16c");
    add(avxvnni, "avxvnni");
    add(avx512(), "avx512");
    add(avx512vnni, "avx512vnni");
    add(avx512bf16, "avx512bf16");
    add(amx_int8, "amx_int8");
    add(neon, "neon");
    add(dotprod, "dotprod");
    add(i8mm, "i8mm");
    return s.empty() ? std::string("generic") : s;
}

namespace detail {
// Whether this process may use the AMX tile registers: the OS saves their state (XCR0 bits 17 and
// 18) and, on Linux, grants the permission that each process must ask for
// (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA); Linux 5.16 and later).
inline bool amx_tiles_usable() {
#if DOCVLM_X86_64 && defined(__GNUC__) && defined(__linux__)
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false;  // OSXSAVE
    unsigned lo = 0, hi = 0;
    asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) return false;
    constexpr long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
    return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
#else
    return false;
#endif
}
}  // namespace detail

inline CpuFeatures detect_cpu() {
    CpuFeatures f;
#if DOCVLM_X86_64 && defined(__GNUC__)
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.f16c = f.avx2;  // every AVX2 CPU has F16C; GCC 12 has no "f16c" name for __builtin_cpu_supports
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx512bw = __builtin_cpu_supports("avx512bw");
    f.avx512vl = __builtin_cpu_supports("avx512vl");
    // The newer features straight from CPUID leaf 7 (compilers disagree on their builtin names);
    // the OS support for their register state is implied by the AVX2 / AVX-512 checks above.
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid(0, &a, &b, &c, &d)) f.amd = b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u;  // "AuthenticAMD"
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        f.avx512vnni = f.avx512() && (c & (1u << 11));
        f.amx_int8 = f.avx512vnni && (d & (1u << 24)) && (d & (1u << 25)) && detail::amx_tiles_usable();  // AMX-TILE, AMX-INT8
    }
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
        f.avxvnni = f.avx2 && (a & (1u << 4));
        f.avx512bf16 = f.avx512() && (a & (1u << 5));
    }
#endif
#if defined(__aarch64__)
    f.neon = true;  // Advanced SIMD is part of the AArch64 baseline
#if defined(__linux__)
    f.dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#if defined(HWCAP2_I8MM)
    f.i8mm = (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0;
#endif
#endif
#endif
    return f;
}

inline CpuFeatures cap_cpu(CpuFeatures f, std::string_view level) {
    CpuFeatures none;
    if (level.empty() || level == "native") return f;
    if (level == "generic") return none;
    CpuFeatures c = none;
    c.neon = f.neon;
    if (level == "neon") return c;
    c.dotprod = f.dotprod;
    if (level == "dotprod") return c;
    c.i8mm = f.i8mm;
    c.amd = f.amd;
    c.avx2 = f.avx2;
    c.fma = f.fma;
    c.f16c = f.f16c;
    if (level == "avx2") return c;
    if (level == "avxvnni") {
        c.avxvnni = f.avxvnni;
        return c;
    }
    c.avx512f = f.avx512f;
    c.avx512bw = f.avx512bw;
    c.avx512vl = f.avx512vl;
    if (level == "avx512") return c;
    if (level == "avx512vnni") {
        c.avx512vnni = f.avx512vnni;
        return c;
    }
    detail::fail("DOCVLM_ISA=", level,
                 ": unknown level (use generic, avx2, avxvnni, avx512, avx512vnni, neon, dotprod or native)");
}

inline const CpuFeatures& cpu() {
    static const CpuFeatures features = [] {
        const char* env = std::getenv("DOCVLM_ISA");
        return cap_cpu(detect_cpu(), env ? std::string_view(env) : std::string_view());
    }();
    return features;
}

DOCVLM_NAMESPACE_END
