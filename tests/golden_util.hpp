// Comparing docvlm's tensors with reference .npy files (the golden tests).
#pragma once

#include "test_util.hpp"

#include <xtensor/xnpy.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace test {

/// max |got − want| / max |want| over a reference .npy. `heads` > 0: the reference is
/// [1, heads, seq, d] and `got` [seq, heads · d] (rotated q / k as transformers lays them out).
inline double golden_rel_error(const std::vector<float>& got, const std::string& npy, std::size_t heads = 0) {
    auto want = xt::load_npy<float>(npy);
    REQUIRE(got.size() == want.size());
    std::vector<float> w(want.begin(), want.end());
    if (heads) {
        const std::size_t d = want.shape()[3], seq = want.shape()[2];
        for (std::size_t h = 0; h < heads; ++h)
            for (std::size_t s = 0; s < seq; ++s)
                for (std::size_t t = 0; t < d; ++t) w[s * heads * d + h * d + t] = want(0, h, s, t);
    }
    double err = 0, scale = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
        err = worse(err, std::fabs(double(got[i]) - w[i]));
        scale = std::max(scale, std::fabs(double(w[i])));
    }
    return err / std::max(scale, 1e-30);
}

}  // namespace test
