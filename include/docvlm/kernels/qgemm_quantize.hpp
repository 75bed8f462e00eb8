// docvlm/kernels/qgemm_quantize.hpp — the operands of the int8 GEMM (kernels/qgemm.hpp): the code
// paths, weights quantised and packed once (QuantizedWeight: per output channel or per group of
// K, 32-column panels with their column sums), activations quantised per row at run time
// (QuantizedActivations: s8, u8 = s8 + 128, int16, or 12-row tiles, as each path reads them).
// The layouts are described in qgemm.hpp's header comment.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/cpu.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/kernels/rowwise.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#if DOCVLM_X86_64
#include <immintrin.h>
#endif

DOCVLM_NAMESPACE_BEGIN
DOCVLM_SIMD_WARNINGS_OFF
namespace kernels {

/// The int8 code paths. avx2u8 is AVX2's fast path for weights within ±63 (see weight_qmax).
enum class QPath { generic, avx2, avx2u8, avxvnni, avx512vnni, amx, neon, neondot, neoni8mm };

/// The fastest path `f` supports for any weights (never avx2u8: that one depends on the weights,
/// see activation_qpath).
QPath best_qpath(const CpuFeatures& f = cpu());
/// Whether `f` can run `path`.
bool qpath_supported(QPath path, const CpuFeatures& f = detect_cpu());
const char* qpath_name(QPath path);

/// Output columns per packed weight panel.
inline constexpr std::size_t qpanel = 32;

/// int8 weights W [n, k], packed for the kernels (the layout: kernels/qgemm.hpp's header comment).
struct QuantizedWeight {
    std::size_t n = 0, k = 0;   ///< logical shape
    std::size_t k_padded = 0;   ///< k rounded up to a multiple of 4 (and of group)
    std::size_t group = 0;      ///< 0: one scale per output channel; else 32, 64 or 128 values of K per scale
    AlignedBuffer<std::int8_t> data;       ///< [panels][k_padded / 4][32][4]
    AlignedBuffer<float> scales;           ///< [panels * 32][groups]: w ≈ q · scale
    AlignedBuffer<std::int32_t> col_sums;  ///< [panels * 32][groups]: Σ q over the group
    std::int32_t qmax = 127;    ///< every value lies in [-qmax, qmax]

    std::size_t panels() const { return (n + qpanel - 1) / qpanel; }
    std::size_t groups() const { return group ? k_padded / group : 1; }
    /// The quantised value of W[row, col] (for tests and tools; not for hot loops).
    std::int8_t at(std::size_t row, std::size_t col) const {
        return data[((row / qpanel * (k_padded / 4) + col / 4) * qpanel + row % qpanel) * 4 + col % 4];
    }
};

/// The int8 range quantize_weight uses by default on `path`: ±63 on AVX2 without VNNI, whose fast
/// kernel (vpmaddubsw, QPath::avx2u8) would saturate on larger weights — one bit of weight
/// precision for 1.3-1.45x the exact int16 kernel's speed —, ±127 everywhere else.
int weight_qmax(QPath path);
/// The range quantize_weight uses unless told: weight_qmax(best_qpath()), or ±127 on every CPU
/// with the environment variable DOCVLM_INT8_WEIGHTS=full (the same weights everywhere; AVX2
/// without VNNI then runs them on its exact int16 kernel). DOCVLM_INT8_WEIGHTS=auto or unset:
/// the default.
int default_weight_qmax();
/// Quantises and packs float weights W [n, k] (row-major), symmetrically within ±qmax (1..127).
/// group: 0 (per channel), 32, 64 or 128.
QuantizedWeight quantize_weight(const float* w, std::size_t n, std::size_t k, std::size_t group = 0,
                                int qmax = default_weight_qmax());
/// Packs weights that are already int8 (values in [-127, 127]) with their scales
/// ([n] per channel, or [n][ceil(k / group)] per group).
QuantizedWeight pack_weight(const std::int8_t* q, const float* scales, std::size_t n, std::size_t k, std::size_t group = 0);

/// The path activations for `w` are quantised for on a CPU whose best path is `path`: avx2u8
/// where `path` is avx2 and w lies within ±63, else `path`.
QPath activation_qpath(const QuantizedWeight& w, QPath path = best_qpath());

/// Activations x [m, k] quantised per row, laid out for one code path.
struct QuantizedActivations {
    QPath path = QPath::generic;
    std::size_t m = 0, k = 0, k_padded = 0;
    std::size_t row_bytes = 0;        ///< stride between rows in `data`
    /// s8 (generic), u8 = s8 + 128 (VNNI paths, amx, avx2u8), int16 (avx2); rows of row_bytes, except on the
    /// avx512vnni path: tiles of 12 rows, [m / 12][k_padded / 4][12][4], so that the kernel reads
    /// one sequential stream (row r's bytes 4kk..4kk+3 at tile + 48·kk + 4·(r % 12)).
    AlignedBuffer<std::byte> data;
    AlignedBuffer<float> scales;      ///< [m]: x ≈ q · scale

    /// The s8 value q of row r, column c, read back from `data` (for tests and tools; not for hot loops).
    std::int8_t at(std::size_t r, std::size_t c) const;
};

/// Quantises x [m, k] (row stride ldx) into `out`, reusing its memory when large enough.
void quantize_activations(const float* x, std::size_t m, std::size_t k, std::size_t ldx, QuantizedActivations& out,
                          QPath path = best_qpath());

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline bool qpath_supported(QPath p, const CpuFeatures& f) {
    switch (p) {
        case QPath::generic: return true;
        case QPath::avx2:
        case QPath::avx2u8: return f.avx2;
        case QPath::avxvnni: return f.avx2 && f.avxvnni;
        case QPath::avx512vnni: return f.avx512() && f.avx512vnni;
        case QPath::amx: return f.avx512() && f.avx512vnni && f.amx_int8;
        case QPath::neon: return f.neon;
        case QPath::neondot: return f.neon && f.dotprod;
        case QPath::neoni8mm: return f.neon && f.dotprod && f.i8mm;  // its one-row tiles run on sdot
    }
    return false;
}

inline QPath best_qpath(const CpuFeatures& f) {
    for (QPath p : {QPath::amx, QPath::avx512vnni, QPath::avxvnni, QPath::avx2, QPath::neoni8mm, QPath::neondot, QPath::neon})
        if (qpath_supported(p, f)) return p;
    return QPath::generic;
}

inline const char* qpath_name(QPath p) {
    switch (p) {
        case QPath::generic: return "generic";
        case QPath::avx2: return "avx2";
        case QPath::avx2u8: return "avx2u8";
        case QPath::avxvnni: return "avxvnni";
        case QPath::avx512vnni: return "avx512vnni";
        case QPath::amx: return "amx";
        case QPath::neon: return "neon";
        case QPath::neondot: return "neondot";
        case QPath::neoni8mm: return "neoni8mm";
    }
    return "?";
}

namespace detail {

inline constexpr std::size_t qmr = 12;  // most rows per micro-tile (AVX-512; the others use 6 or 5)
inline constexpr std::size_t qtile_rows = qmr;  // rows per tile of the tiled activation layout
// Where row r's bytes 4kk..4kk+3 start in the tiled layout, less 4·qtile_rows·kk.
inline std::size_t tiled_row_offset(std::size_t r, std::size_t row_bytes) {
    return (r - r % qtile_rows) * row_bytes + 4 * (r % qtile_rows);
}
inline constexpr std::size_t avx2u8_tile_rows = 5;  // see qkernel_avx2u8_steps
inline constexpr std::size_t amx_tile_rows = 32;    // see qgemm_amx
// Rows per micro-tile of the shared tile loop (qgemm_tiles); amx's edge rows and per-group weights
// run the AVX-512 VNNI kernel on its rows.
inline std::size_t tile_rows(QPath p) {
    return p == QPath::avx512vnni || p == QPath::amx ? 12 : p == QPath::avx2u8 ? avx2u8_tile_rows : 6;
}

inline bool uses_u8_offset(QPath p) { return p == QPath::avx512vnni || p == QPath::amx || p == QPath::avxvnni || p == QPath::avx2u8; }
inline std::size_t qa_elem_bytes(QPath p) { return p == QPath::avx2 ? 2 : 1; }

}  // namespace detail

namespace detail {

inline void check_group(std::size_t group) {
    if (group != 0 && group != 32 && group != 64 && group != 128)
        docvlm::detail::fail("int8 weights: group size ", group, " is not 0 (per channel), 32, 64 or 128");
}

// An empty (zeroed) packed weight of n x k with its buffers sized.
inline QuantizedWeight allocate_weight(std::size_t n, std::size_t k, std::size_t group) {
    check_group(group);
    if (n == 0 || k == 0) docvlm::detail::fail("int8 weights: empty matrix ", n, "x", k);
    QuantizedWeight w;
    w.n = n;
    w.k = k;
    w.group = group;
    const std::size_t align = group ? group : 4;
    w.k_padded = (k + align - 1) / align * align;
    const std::size_t np = w.panels() * qpanel, groups = w.groups();
    w.data = AlignedBuffer<std::int8_t>(np * w.k_padded);
    w.scales = AlignedBuffer<float>(np * groups);
    w.col_sums = AlignedBuffer<std::int32_t>(np * groups);
    return w;
}

// Shared by quantize_weight and pack_weight: q(row, col) gives the int8 value, scale(row, g) the scale.
template <class Q, class S>
QuantizedWeight pack(std::size_t n, std::size_t k, std::size_t group, Q&& q, S&& scale) {
    QuantizedWeight w = allocate_weight(n, k, group);
    const std::size_t groups = w.groups(), k4 = w.k_padded / 4;
    w.qmax = 0;
    for (std::size_t row = 0; row < n; ++row) {
        std::int8_t* panel = w.data.data() + row / qpanel * k4 * qpanel * 4;
        const std::size_t j = row % qpanel;
        for (std::size_t col = 0; col < k; ++col) {
            const std::int8_t v = q(row, col);
            panel[(col / 4 * qpanel + j) * 4 + col % 4] = v;
            w.qmax = std::max(w.qmax, std::abs(std::int32_t(v)));
            w.col_sums[row * groups + (group ? col / group : 0)] += v;
        }
        for (std::size_t g = 0; g < groups; ++g) w.scales[row * groups + g] = scale(row, g);
    }
    return w;
}

#if DOCVLM_X86_64
// Rows [r0, r1) of quantize_weight's per-channel case with AVX-512: the same values (IEEE
// division, vcvtps2dq rounding half to even as nearbyint does), written 4 columns at a time.
DOCVLM_TARGET("avx512f,avx512bw,avx512vl")
inline void quantize_rows_avx512(const float* w, std::size_t k, std::size_t r0, std::size_t r1, int qmax, QuantizedWeight& out) {
    const std::size_t k4 = out.k_padded / 4;
    alignas(64) std::int8_t q[64];
    for (std::size_t row = r0; row < r1; ++row) {
        const float* x = w + row * k;
        __m512 vmax = _mm512_setzero_ps();
        for (std::size_t i = 0; i < k; i += 16) {
            const __mmask16 m = __mmask16(docvlm::detail::tail_mask16(k - i));
            vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_maskz_loadu_ps(m, x + i)));
        }
        const float scale = _mm512_reduce_max_ps(vmax) / float(qmax);
        out.scales[row] = scale;
        std::int8_t* panel = out.data.data() + row / qpanel * k4 * qpanel * 4 + (row % qpanel) * 4;
        __m512i sum = _mm512_setzero_si512();
        for (std::size_t i = 0; i < k; i += 64) {
            __m128i bytes[4];
            for (int u = 0; u < 4; ++u) {
                const std::size_t c = i + 16 * std::size_t(u);
                const __mmask16 m = __mmask16(docvlm::detail::tail_mask16(c < k ? k - c : 0));
                __m512i v = scale > 0.0f ? _mm512_cvtps_epi32(_mm512_div_ps(_mm512_maskz_loadu_ps(m, x + c), _mm512_set1_ps(scale)))
                                         : _mm512_setzero_si512();
                v = _mm512_maskz_mov_epi32(m, _mm512_min_epi32(_mm512_max_epi32(v, _mm512_set1_epi32(-qmax)), _mm512_set1_epi32(qmax)));
                sum = _mm512_add_epi32(sum, v);
                bytes[u] = _mm512_cvtepi32_epi8(v);
            }
            for (int u = 0; u < 4; ++u) _mm_store_si128(reinterpret_cast<__m128i*>(q + 16 * u), bytes[u]);
            for (std::size_t c4 = i / 4; c4 < std::min(k4, (i + 64) / 4); ++c4) std::memcpy(panel + c4 * qpanel * 4, q + 4 * (c4 - i / 4), 4);
        }
        out.col_sums[row] = _mm512_reduce_add_epi32(sum);
    }
}
#endif
}  // namespace detail

inline int weight_qmax(QPath path) { return path == QPath::avx2 || path == QPath::avx2u8 ? 63 : 127; }

inline int default_weight_qmax() {
    const char* env = std::getenv("DOCVLM_INT8_WEIGHTS");
    const std::string_view v = env ? env : "";
    if (v == "full") return 127;
    if (!v.empty() && v != "auto") docvlm::detail::fail("DOCVLM_INT8_WEIGHTS=", v, ": unknown value (use full or auto)");
    return weight_qmax(best_qpath());
}

inline QPath activation_qpath(const QuantizedWeight& w, QPath path) {
    return path == QPath::avx2 && w.qmax <= 63 ? QPath::avx2u8 : path;
}

inline QuantizedWeight quantize_weight(const float* w, std::size_t n, std::size_t k, std::size_t group, int qmax) {
    detail::check_group(group);
    if (qmax < 1 || qmax > 127) docvlm::detail::fail("int8 weights: range ±", qmax, " is not within 1..127");
#if DOCVLM_X86_64
    if (group == 0 && cpu().avx512()) {
        QuantizedWeight out = detail::allocate_weight(n, k, 0);
        out.qmax = qmax;
        parallel_for(n, [&](std::size_t r0, std::size_t r1) { detail::quantize_rows_avx512(w, k, r0, r1, qmax, out); }, 32);
        return out;
    }
#endif
    const std::size_t span = group ? group : k, groups = (k + span - 1) / span;
    AlignedBuffer<float> scales(n * groups);
    for (std::size_t row = 0; row < n; ++row)
        for (std::size_t g = 0; g < groups; ++g) {
            float amax = 0.0f;
            for (std::size_t col = g * span; col < std::min(k, (g + 1) * span); ++col) amax = std::max(amax, std::fabs(w[row * k + col]));
            scales[row * groups + g] = amax / float(qmax);
        }
    QuantizedWeight out = detail::pack(
        n, k, group,
        [&](std::size_t row, std::size_t col) {
            const float s = scales[row * groups + (group ? col / group : 0)];
            const float v = s > 0.0f ? std::nearbyint(w[row * k + col] / s) : 0.0f;
            return std::int8_t(std::clamp(v, -float(qmax), float(qmax)));
        },
        [&](std::size_t row, std::size_t g) { return g < groups ? scales[row * groups + g] : 0.0f; });
    out.qmax = qmax;  // the bound, even where no value reaches it
    return out;
}

inline QuantizedWeight pack_weight(const std::int8_t* q, const float* scales, std::size_t n, std::size_t k, std::size_t group) {
    detail::check_group(group);
    const std::size_t groups = group ? (k + group - 1) / group : 1;
    for (std::size_t i = 0; i < n * k; ++i)
        if (q[i] == -128)
            docvlm::detail::fail("int8 weights: value -128 at row ", i / k, ", column ", i % k,
                                 " (symmetric int8 weights lie in [-127, 127])");
    return detail::pack(
        n, k, group, [&](std::size_t row, std::size_t col) { return q[row * k + col]; },
        [&](std::size_t row, std::size_t g) { return g < groups ? scales[row * groups + g] : 0.0f; });
}

namespace detail {

// One row: q = clamp(round_half_even(x · 127 / max|x|), ±127); returns the scale max|x| / 127.
// The scalar reference of simd::quantize_row (kernels/rowwise.hpp), which is bit-identical to it.
inline float quantize_row_generic(const float* x, std::size_t k, std::int8_t* q) {
    float amax = 0.0f;
    for (std::size_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (std::size_t i = 0; i < k; ++i) q[i] = std::int8_t(std::clamp(std::nearbyint(x[i] * inv), -127.0f, 127.0f));
    return amax / 127.0f;
}

#if DOCVLM_X86_64
// dst = src with the sign bit of every byte flipped (s8 -> u8 + 128); n a multiple of 64.
DOCVLM_TARGET("avx512f,avx512bw")
inline void flip_sign_bits_avx512(const std::int8_t* src, std::byte* dst, std::size_t n) {
    const __m512i bit = _mm512_set1_epi8(char(0x80));
    for (std::size_t i = 0; i < n; i += 64)
        _mm512_storeu_si512(dst + i, _mm512_xor_si512(_mm512_loadu_si512(src + i), bit));
}

// One row into the tiled layout with the sign bits flipped: 4-byte step kk of qr to t + 48·kk.
DOCVLM_TARGET("avx512f,avx512bw")
inline void scatter_tiled_avx512(const std::int8_t* qr, std::byte* t, std::size_t k_padded) {
    const __m512i bit = _mm512_set1_epi8(char(0x80));
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(int(qtile_rows)));
    for (std::size_t i = 0; i < k_padded; i += 64)  // k_padded is a multiple of 128
        _mm512_i32scatter_epi32(t + qtile_rows * i, idx, _mm512_xor_si512(_mm512_loadu_si512(qr + i), bit), 4);
}
#endif

}  // namespace detail

inline void quantize_activations(const float* x, std::size_t m, std::size_t k, std::size_t ldx, QuantizedActivations& out,
                                 QPath path) {
    // AMX tiles take 32 rows at a time; fewer rows (decoding) run the AVX-512 VNNI kernels, whose
    // activation layout they keep.
    if (path == QPath::amx && m < detail::amx_tile_rows) path = QPath::avx512vnni;
    out.path = path;
    out.m = m;
    out.k = k;
    out.k_padded = (k + 127) / 128 * 128;  // covers every group size and the 4-byte steps
    out.row_bytes = out.k_padded * detail::qa_elem_bytes(path);
    const bool tiled = path == QPath::avx512vnni;
    const std::size_t rows = tiled ? (m + detail::qtile_rows - 1) / detail::qtile_rows * detail::qtile_rows : m;
    if (out.data.size() < rows * out.row_bytes) out.data = AlignedBuffer<std::byte>(rows * out.row_bytes);
    if (out.scales.size() < m) out.scales = AlignedBuffer<float>(m);
    const bool offset = detail::uses_u8_offset(path);
    const simd::RowIsa isa = simd::row_isa();
    // Rows are independent: split them over the pool (a ViT layer quantises 5476 x 5120 values).
    parallel_for(m, [&](std::size_t r0, std::size_t r1) {
        // one row's s8 values, in a per-thread buffer that only grows (decoding allocates nothing)
        thread_local AlignedBuffer<std::int8_t> row;
        if (row.size() < out.k_padded) row = AlignedBuffer<std::int8_t>(out.k_padded);
        for (std::size_t r = r0; r < r1; ++r) {
            std::int8_t* qr = row.data();
            out.scales[r] = simd::run(isa, [&](auto tag) { return quantize_row(tag, x + r * ldx, k, qr); });
            std::fill(qr + k, qr + out.k_padded, std::int8_t(0));
            std::byte* dst = out.data.data() + r * out.row_bytes;
            if (tiled) {
                // Tile of 12 rows: the 4 bytes of row r at step kk lie at tile + 48·kk + 4·(r % 12).
                std::byte* t = out.data.data() + detail::tiled_row_offset(r, out.row_bytes);
#if DOCVLM_X86_64
                if (cpu().avx512()) {
                    detail::scatter_tiled_avx512(qr, t, out.k_padded);
                    continue;
                }
#endif
                for (std::size_t kk = 0; kk < out.k_padded / 4; ++kk) {
                    std::uint32_t v;
                    std::memcpy(&v, qr + 4 * kk, 4);
                    v ^= 0x80808080u;
                    std::memcpy(t + 4 * detail::qtile_rows * kk, &v, 4);
                }
            } else if (path == QPath::avx2) {
                for (std::size_t i = 0; i < out.k_padded; ++i) {
                    const std::int16_t v = qr[i];
                    std::memcpy(dst + 2 * i, &v, 2);
                }
            } else if (offset) {
                // u8 = s8 + 128 is the same as flipping the sign bit; padding becomes 128 and is
                // corrected for by the column sums (padded weights are zero, so it adds nothing).
#if DOCVLM_X86_64
                if (cpu().avx512()) {
                    detail::flip_sign_bits_avx512(qr, dst, out.k_padded);  // k_padded is a multiple of 128
                    continue;
                }
#endif
                for (std::size_t i = 0; i < out.k_padded; ++i) dst[i] = std::byte(std::uint8_t(qr[i]) ^ 0x80u);
            } else {
                std::memcpy(dst, qr, out.k_padded);
            }
        }
    }, 4);
}

inline std::int8_t QuantizedActivations::at(std::size_t r, std::size_t c) const {
    if (r >= m || c >= k_padded) docvlm::detail::fail("QuantizedActivations::at: (", r, ", ", c, ") outside ", m, " x ", k_padded);
    const std::byte* row = data.data() + r * row_bytes;
    switch (path) {
        case QPath::avx512vnni:
            return std::int8_t(std::uint8_t(data[detail::tiled_row_offset(r, row_bytes) + c / 4 * 4 * detail::qtile_rows + c % 4]) ^
                               0x80u);
        case QPath::amx:
        case QPath::avxvnni:
        case QPath::avx2u8: return std::int8_t(std::uint8_t(row[c]) ^ 0x80u);
        case QPath::avx2: {
            std::int16_t v;
            std::memcpy(&v, row + 2 * c, 2);
            return std::int8_t(v);
        }
        case QPath::generic:
        case QPath::neon:
        case QPath::neondot:
        case QPath::neoni8mm: break;
    }
    return std::int8_t(row[c]);
}

}  // namespace kernels
DOCVLM_SIMD_WARNINGS_ON
DOCVLM_NAMESPACE_END
