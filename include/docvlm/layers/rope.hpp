// docvlm/layers/rope.hpp — rotary position tables (cos/sin per token and head dimension) for
// the position policies: Rope1D (text), Rope2D (Qwen2-VL vision: row and column frequencies),
// MRope (Qwen2-VL text: t/h/w sections). Tables use the "rotate half" layout: entry i and
// i + head_dim/2 share one angle.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// cos and sin, [tokens][head_dim] each. Refilling a table reuses its memory.
struct RopeTable {
    std::size_t tokens = 0, head_dim = 0;
    std::vector<float> cos, sin;
    const float* cos_row(std::size_t t) const { return cos.data() + t * head_dim; }
    const float* sin_row(std::size_t t) const { return sin.data() + t * head_dim; }
    void reshape(std::size_t n, std::size_t hd) {
        tokens = n;
        head_dim = hd;
        cos.resize(n * hd);
        sin.resize(n * hd);
    }
};

/// inv_freq[k] = 1 / theta^(2k / dim), k < dim / 2, in float as PyTorch computes it.
inline std::vector<float> rope_inv_freq(std::size_t dim, float theta) {
    std::vector<float> f(dim / 2);
    for (std::size_t k = 0; k < f.size(); ++k) f[k] = 1.0f / std::pow(theta, float(2 * k) / float(dim));
    return f;
}

/// Rope1D: angle(token, k) = position · inv_freq[k]. Fills `t` in place (no allocation once it
/// has held as many tokens); inv_freq over head_dim.
inline void rope1d_fill(RopeTable& t, const std::int64_t* positions, std::size_t tokens, std::span<const float> inv) {
    const std::size_t half = inv.size(), head_dim = 2 * half;
    t.reshape(tokens, head_dim);
    for (std::size_t r = 0; r < tokens; ++r)
        for (std::size_t k = 0; k < half; ++k) {
            const float a = float(positions[r]) * inv[k];
            t.cos[r * head_dim + k] = t.cos[r * head_dim + k + half] = std::cos(a);
            t.sin[r * head_dim + k] = t.sin[r * head_dim + k + half] = std::sin(a);
        }
}

/// Rope1D table for the given positions.
inline RopeTable rope1d_table(std::span<const std::int64_t> positions, std::size_t head_dim, float theta) {
    if (head_dim % 2) detail::fail("rope: head_dim ", head_dim, " is odd");
    RopeTable t;
    rope1d_fill(t, positions.data(), positions.size(), rope_inv_freq(head_dim, theta));
    return t;
}

/// Rope2D (Qwen2-VL vision): the first head_dim/4 frequencies turn with the row, the next
/// head_dim/4 with the column; inv_freq over head_dim / 2 with base theta.
inline RopeTable rope2d_table(std::span<const std::int64_t> rows, std::span<const std::int64_t> cols, std::size_t head_dim, float theta) {
    if (head_dim % 4) detail::fail("rope2d: head_dim ", head_dim, " is not a multiple of 4");
    if (rows.size() != cols.size()) detail::fail("rope2d: ", rows.size(), " rows but ", cols.size(), " columns");
    const std::size_t half = head_dim / 2, quarter = head_dim / 4;
    const auto inv = rope_inv_freq(half, theta);
    RopeTable t;
    t.reshape(rows.size(), head_dim);
    for (std::size_t r = 0; r < rows.size(); ++r)
        for (std::size_t k = 0; k < half; ++k) {
            const float a = float(k < quarter ? rows[r] : cols[r]) * inv[k % quarter];
            t.cos[r * head_dim + k] = t.cos[r * head_dim + half + k] = std::cos(a);
            t.sin[r * head_dim + k] = t.sin[r * head_dim + half + k] = std::sin(a);
        }
    return t;
}

/// MRope (Qwen2-VL text): frequency k takes its position from axis t, h or w by section.
/// Fills `t` in place (no allocation once it has held as many tokens); inv_freq over head_dim.
inline void mrope_fill(RopeTable& t, const std::array<const std::int64_t*, 3>& pos, std::size_t tokens, std::span<const float> inv,
                       const std::array<int, 3>& sections) {
    const std::size_t head_dim = inv.size() * 2;
    if (std::size_t(sections[0] + sections[1] + sections[2]) * 2 != head_dim)
        detail::fail("mrope: sections sum to ", sections[0] + sections[1] + sections[2], ", head_dim / 2 is ", head_dim / 2);
    const std::size_t half = head_dim / 2;
    t.reshape(tokens, head_dim);
    for (std::size_t r = 0; r < tokens; ++r)
        for (std::size_t i = 0; i < head_dim; ++i) {
            const int k = int(i % half);
            const int axis = k < sections[0] ? 0 : k < sections[0] + sections[1] ? 1 : 2;
            const float a = float(pos[std::size_t(axis)][r]) * inv[std::size_t(k)];
            t.cos[r * head_dim + i] = std::cos(a);
            t.sin[r * head_dim + i] = std::sin(a);
        }
}

DOCVLM_NAMESPACE_END
