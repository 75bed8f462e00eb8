// docvlm/kernels/rowwise.hpp — the row kernels (softmax, norms, rope, activations, attention's
// per-row work, activation quantisation), one source compiled for every ISA, chosen at run time.
//
// kernels/simd/rowwise-inl.hpp holds the code; it is included here once per instruction set
// (AVX-512, AVX2 + FMA on x86-64; NEON on AArch64; portable C++ everywhere), each copy in its own
// namespace with its own target attribute. `simd::dispatch(f)` calls f with the tag of the copy
// this CPU runs (cpu(), capped by $DOCVLM_ISA); `simd::each_isa(f)` calls f with every copy the
// CPU can run, for tests and benchmarks. The public functions below are what layers call.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/cpu.hpp>
#include <docvlm/kernels/activation_kind.hpp>
#include <docvlm/kernels/simd/vec.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>

DOCVLM_NAMESPACE_BEGIN
DOCVLM_SIMD_WARNINGS_OFF
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // vector arguments between functions of one ISA
#endif
namespace kernels::simd {

#define DOCVLM_SIMD_NS generic
#define DOCVLM_SIMD_VEC VecGeneric
#define DOCVLM_SIMD_ATTR
#include <docvlm/kernels/simd/rowwise-inl.hpp>
#undef DOCVLM_SIMD_NS
#undef DOCVLM_SIMD_VEC
#undef DOCVLM_SIMD_ATTR

#if DOCVLM_X86_64
#define DOCVLM_SIMD_NS avx2
#define DOCVLM_SIMD_VEC VecAvx2
#define DOCVLM_SIMD_ATTR DOCVLM_TARGET("avx2,fma")
#include <docvlm/kernels/simd/rowwise-inl.hpp>
#undef DOCVLM_SIMD_NS
#undef DOCVLM_SIMD_VEC
#undef DOCVLM_SIMD_ATTR

#define DOCVLM_SIMD_NS avx512
#define DOCVLM_SIMD_VEC VecAvx512
#define DOCVLM_SIMD_ATTR DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
#include <docvlm/kernels/simd/rowwise-inl.hpp>
#undef DOCVLM_SIMD_NS
#undef DOCVLM_SIMD_VEC
#undef DOCVLM_SIMD_ATTR
#endif

#if DOCVLM_AARCH64
#define DOCVLM_SIMD_NS neon
#define DOCVLM_SIMD_VEC VecNeon
#define DOCVLM_SIMD_ATTR
#include <docvlm/kernels/simd/rowwise-inl.hpp>
#undef DOCVLM_SIMD_NS
#undef DOCVLM_SIMD_VEC
#undef DOCVLM_SIMD_ATTR
#endif

/// The copies of the row kernels, widest first.
enum class RowIsa { avx512, avx2, neon, generic };

inline const char* row_isa_name(RowIsa isa) {
    switch (isa) {
        case RowIsa::avx512: return "avx512";
        case RowIsa::avx2: return "avx2";
        case RowIsa::neon: return "neon";
        case RowIsa::generic: return "generic";
    }
    return "?";
}

/// True when this CPU (capped by $DOCVLM_ISA) can run the copy.
inline bool row_isa_supported(RowIsa isa) {
    switch (isa) {
        case RowIsa::avx512: return DOCVLM_X86_64 && cpu().avx512();
        case RowIsa::avx2: return DOCVLM_X86_64 && cpu().avx2 && cpu().fma;
        case RowIsa::neon: return DOCVLM_AARCH64 && cpu().neon;
        case RowIsa::generic: return true;
    }
    return false;
}

/// The copy the public functions run: the widest supported one. Chosen once.
inline RowIsa row_isa() {
    static const RowIsa isa = [] {
        for (RowIsa i : {RowIsa::avx512, RowIsa::avx2, RowIsa::neon})
            if (row_isa_supported(i)) return i;
        return RowIsa::generic;
    }();
    return isa;
}

/// f(tag) with the tag of copy `isa` (which must be supported).
template <class F>
decltype(auto) run(RowIsa isa, F&& f) {
    switch (isa) {
#if DOCVLM_X86_64
        case RowIsa::avx512: return f(avx512::Isa{});
        case RowIsa::avx2: return f(avx2::Isa{});
#endif
#if DOCVLM_AARCH64
        case RowIsa::neon: return f(neon::Isa{});
#endif
        default: return f(generic::Isa{});
    }
}

/// f(tag) with the copy this CPU runs.
template <class F>
decltype(auto) dispatch(F&& f) {
    return run(row_isa(), std::forward<F>(f));
}

/// f(isa, tag) for every copy this CPU can run.
template <class F>
void each_isa(F&& f) {
    for (RowIsa i : {RowIsa::avx512, RowIsa::avx2, RowIsa::neon, RowIsa::generic})
        if (row_isa_supported(i)) run(i, [&](auto tag) { f(i, tag); });
}

}  // namespace kernels::simd

namespace kernels {

/// x[0..n) = softmax(x) in place.
inline void softmax(float* x, std::size_t n) {
    simd::dispatch([&](auto isa) { softmax(isa, x, n); });
}
/// y = x / sqrt(mean(x²) + eps) · weight  (Qwen2 / LLaMA RMSNorm). y may be x.
inline void rms_norm(const float* x, const float* weight, float* y, std::size_t n, float eps) {
    simd::dispatch([&](auto isa) { rms_norm(isa, x, weight, y, n, eps); });
}
/// y = (x − mean) / sqrt(var + eps) · gamma + beta  (biased variance). y may be x.
inline void layer_norm(const float* x, const float* gamma, const float* beta, float* y, std::size_t n, float eps) {
    simd::dispatch([&](auto isa) { layer_norm(isa, x, gamma, beta, y, n, eps); });
}
/// Rotary embedding, "rotate half" form (Hugging Face apply_rotary_pos_emb) on `heads` vectors of
/// head_dim laid out one after another: x = x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁].
/// cos and sin have head_dim entries (the two halves repeat the same angles).
inline void rope(float* x, std::size_t heads, std::size_t head_dim, const float* cos, const float* sin) {
    simd::dispatch([&](auto isa) { rope(isa, x, heads, head_dim, cos, sin); });
}
/// x[i] = act(x[i]) for n elements.
inline void activate(Activation act, float* x, std::size_t n) {
    if (act == Activation::none) return;
    simd::dispatch([&](auto isa) { activate(isa, act, x, n); });
}

namespace detail {
/// y[j] = act(float(acc[j] − offset · col_sums[j]) · (sa · ws[j]) + bias[j]) · mul[j] + res[j],
/// j < n (simd::dequantize_row; col_sums null: no offset).
inline void dequantize_row(simd::RowIsa isa, const std::int32_t* acc, const std::int32_t* col_sums, std::int32_t offset,
                           float sa, const float* ws, const float* bias, Activation act, const float* mul, const float* res,
                           float* y, std::size_t n) {
    simd::run(isa, [&](auto tag) { dequantize_row(tag, acc, col_sums, offset, sa, ws, bias, act, mul, res, y, n); });
}
// x[i] *= m[i] (the Epilogue's multiplier on the portable paths).
inline void multiply_by(float* x, const float* m, std::size_t n) {
    simd::dispatch([&](auto isa) { multiply_by(isa, x, m, n); });
}
// max(init, x[0..n))
inline float row_max(const float* x, std::size_t n, float init) {
    return simd::dispatch([&](auto isa) { return row_max(isa, x, n, init); });
}
// x = exp(x - mx) in place (exp(-inf) = 0); returns the sum.
inline float exp_sum(float* x, std::size_t n, float mx) {
    return simd::dispatch([&](auto isa) { return exp_sum(isa, x, n, mx); });
}
// sc[g · stride + j] = scale · q_g · k_j for `group` query heads (qg: [group][d]) and n keys.
inline void group_scores(const float* qg, const float* k, std::size_t ldk, std::size_t n, std::size_t d, std::size_t group,
                         float scale, float* sc, std::size_t stride) {
    simd::dispatch([&](auto isa) { group_scores(isa, qg, k, ldk, n, d, group, scale, sc, stride); });
}
// o[g·ldo + t] += Σ_j w[g·ldw + j] · v_j[t] for `group` heads (rows of V with stride ldv).
inline void group_weighted_rows(const float* w, std::size_t ldw, std::size_t group, const float* v, std::size_t ldv,
                                std::size_t n, std::size_t d, float* o, std::size_t ldo) {
    simd::dispatch([&](auto isa) { group_weighted_rows(isa, w, ldw, group, v, ldv, n, d, o, ldo); });
}
}  // namespace detail

}  // namespace kernels
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
DOCVLM_SIMD_WARNINGS_ON
DOCVLM_NAMESPACE_END
