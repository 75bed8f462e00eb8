// docvlm/model/rope_index.hpp — Qwen2-VL's M-RoPE position ids (Hugging Face get_rope_index).
//
// Text tokens count up on all three axes (t, h, w). The tokens of an image (a run of
// image_token_id) take (st + t, st + row, st + col) over the merged grid (t, h / merge, w / merge),
// st being one past the largest position before them; text after an image continues from one
// past the largest position so far. rope_delta = max position + 1 − sequence length; a token
// decoded at cache position c then sits at c + rope_delta on every axis.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

struct ImageGrid {
    int t = 1, h = 0, w = 0;  ///< in patches
};

struct RopePositions {
    std::array<std::vector<std::int64_t>, 3> pos;  ///< [axis][token]
    std::int64_t delta = 0;
};

/// Positions of `ids`, whose image tokens belong, run after run, to `grids` (merge: spatial merge size).
RopePositions rope_index(std::span<const std::int32_t> ids, std::int32_t image_token_id, std::span<const ImageGrid> grids,
                         int merge);

inline RopePositions rope_index(std::span<const std::int32_t> ids, std::int32_t image_token_id, std::span<const ImageGrid> grids,
                                int merge) {
    RopePositions r;
    for (auto& a : r.pos) a.reserve(ids.size());
    std::int64_t next = 0;  // one past the largest position so far
    std::size_t i = 0, image = 0;
    while (i < ids.size()) {
        if (ids[i] != image_token_id) {
            for (auto& a : r.pos) a.push_back(next);
            ++next;
            ++i;
            continue;
        }
        if (image >= grids.size()) detail::fail("rope_index: more image-token runs than images (", grids.size(), ")");
        const ImageGrid g = grids[image++];
        const std::int64_t gh = g.h / merge, gw = g.w / merge, n = std::int64_t(g.t) * gh * gw;
        if (g.h % merge || g.w % merge || n <= 0) detail::fail("rope_index: image grid ", g.h, "x", g.w, " does not merge by ", merge);
        if (i + std::size_t(n) > ids.size()) detail::fail("rope_index: image ", image - 1, " needs ", n, " image tokens, the prompt ends first");
        for (std::int64_t k = 0; k < n; ++k) {
            if (ids[i + std::size_t(k)] != image_token_id)
                detail::fail("rope_index: image ", image - 1, " has ", k, " image tokens, its grid needs ", n);
            r.pos[0].push_back(next + k / (gh * gw));
            r.pos[1].push_back(next + (k / gw) % gh);
            r.pos[2].push_back(next + k % gw);
        }
        next += std::max<std::int64_t>({g.t, gh, gw});
        i += std::size_t(n);
    }
    if (image != grids.size()) detail::fail("rope_index: ", grids.size(), " images but ", image, " image-token runs");
    r.delta = next - std::int64_t(ids.size());
    return r;
}

DOCVLM_NAMESPACE_END
