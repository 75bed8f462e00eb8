// docvlm/layers/grid_resize.hpp — learned position embeddings laid out on a square grid, resized
// to another grid as PyTorch's F.interpolate(mode="bicubic", align_corners=False) resizes them
// (Qwen-VL's get_abs_pos: a 16 × 16 table read at the image's 32 × 32 patches).
//
// Per output cell (y, x): the source point is s · (y + 0.5) − 0.5 with s = in / out (the same for
// x); the 4 × 4 source cells around it (indices clamped to the grid) are weighted by the cubic
// convolution kernel with A = −0.75, rows first, then the column. Channels are independent.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

namespace detail {
// PyTorch's get_cubic_upsample_coefficients (A = -0.75).
inline std::array<float, 4> cubic_weights(float t) {
    constexpr float A = -0.75f;
    auto near = [](float x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };
    auto far = [](float x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };
    return {far(t + 1.0f), near(t), near(1.0f - t), far(2.0f - t)};
}
}  // namespace detail

/// src [in_h · in_w][channels] (row-major cells) → [out_h · out_w][channels].
inline std::vector<float> resize_grid_bicubic(const float* src, std::size_t in_h, std::size_t in_w, std::size_t channels,
                                              std::size_t out_h, std::size_t out_w) {
    if (!in_h || !in_w || !out_h || !out_w) detail::fail("resize_grid_bicubic: empty grid");
    std::vector<float> out(out_h * out_w * channels);
    auto axis = [](std::size_t in, std::size_t o, std::size_t i, std::array<std::size_t, 4>& idx) {
        const float real = float(in) / float(o) * (float(i) + 0.5f) - 0.5f;
        const float base = std::floor(real);
        for (int k = 0; k < 4; ++k) {
            const long v = long(base) - 1 + k;
            idx[std::size_t(k)] = std::size_t(v < 0 ? 0 : v >= long(in) ? long(in) - 1 : v);
        }
        return detail::cubic_weights(real - base);
    };
    std::array<std::size_t, 4> ys{}, xs{};
    for (std::size_t y = 0; y < out_h; ++y) {
        const auto wy = axis(in_h, out_h, y, ys);
        for (std::size_t x = 0; x < out_w; ++x) {
            const auto wx = axis(in_w, out_w, x, xs);
            float* o = out.data() + (y * out_w + x) * channels;
            for (std::size_t c = 0; c < channels; ++c) {
                float col = 0;
                for (int j = 0; j < 4; ++j) {
                    const float* r = src + ys[std::size_t(j)] * in_w * channels + c;
                    const float row = r[xs[0] * channels] * wx[0] + r[xs[1] * channels] * wx[1] + r[xs[2] * channels] * wx[2] +
                                      r[xs[3] * channels] * wx[3];
                    col += row * wy[std::size_t(j)];
                }
                o[c] = col;
            }
        }
    }
    return out;
}

DOCVLM_NAMESPACE_END
