// Comparing docvlm's tensors with reference .npy files (the golden tests).
#pragma once

#include "../tools/cli/golden_check.hpp"
#include "test_util.hpp"

#include <docvlm/core/tensor.hpp>
#include <docvlm/model/generation.hpp>
#include <docvlm/model/token_concat.hpp>

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

/// max |got − want| over a reference .npy of the same size (pixel values).
inline double golden_abs_error(const float* got, std::size_t n, const std::string& npy) {
    auto want = xt::load_npy<float>(npy);
    REQUIRE(n == want.size());
    double err = 0;
    for (std::size_t i = 0; i < n; ++i) err = worse(err, std::fabs(double(got[i]) - want.data()[i]));
    return err;
}

/// Runs golden_check on a reference folder: every comparison must pass; returns them all.
inline std::vector<docvlm::GoldenResult> check_golden_set(const std::string& dir) {
    std::vector<docvlm::GoldenResult> results;
    CHECK(docvlm::golden_check(dir, [&](const docvlm::GoldenResult& r) {
        CAPTURE(r.name);
        CHECK(r.passed);
        results.push_back(r);
    }));
    return results;
}

/// Context::generate and generate_batch (a second request cut at `short_n` tokens) give the
/// reference's greedy ids (dir/generated_ids.npy) for a prompt with one image.
template <class Model>
void check_generate_matches_golden(const Model& model, const std::vector<std::int32_t>& ids, const docvlm::Tensor<float, 2>& vision,
                                   const std::string& dir, std::size_t short_n = 5) {
    auto want64 = xt::load_npy<std::int64_t>(dir + "/generated_ids.npy");
    const std::vector<std::int32_t> want(want64.begin(), want64.end());
    auto options = [](std::size_t n) {
        docvlm::GenerationOptions o;
        o.max_new_tokens = n;
        return o;
    };
    auto ctx = model.context(ids.size() + want.size());
    CHECK(ctx.generate(ids, {&vision, 1}, {}, options(want.size())) == want);
    const docvlm::BatchRequest reqs[2] = {{ids, {&vision, 1}, {}, options(want.size())}, {ids, {&vision, 1}, {}, options(short_n)}};
    const auto batch = model.generate_batch(reqs);
    REQUIRE(batch.size() == 2);
    CHECK(batch[0] == want);
    CHECK(batch[1] == std::vector<std::int32_t>(want.begin(), want.begin() + std::ptrdiff_t(short_n)));
}

}  // namespace test
