// docvlm/layers/projector.hpp — Projector<W>: vision features into the decoder's width, the
// connector of the families whose image tokens join the prompt:
//
//   y = fc2(act(fc1(norm(x))))       rows of `group` consecutive tokens taken as one
//
//   Qwen2-VL's patch merger   LayerNorm, group = merge² (the processor puts a 2×2 window's
//                             patches next to each other), GELU (erf)
//   LLaVA's projector         no norm, group 1, the config's projector_hidden_act
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/core/trace.hpp>
#include <docvlm/kernels/activations.hpp>
#include <docvlm/layers/linear.hpp>
#include <docvlm/layers/norm.hpp>

#include <optional>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

template <WeightPolicy W>
struct Projector {
    std::optional<LayerNorm> norm;
    Linear<W> fc1, fc2;
    Activation act = Activation::gelu_erf;
    std::size_t group = 1;
    /// What the trace calls the normalised input, fc1's output before its activation (computed
    /// on the side), after it, and the output; an empty name is not traced.
    struct Names {
        std::string norm, fc1, act, out;
    } names;

    /// x [n, dim] (n a multiple of group) → [n / group, fc2.out_features()].
    Tensor<float, 2> forward(const float* x, std::size_t n, const Trace& trace = {}) const;
};

template <WeightPolicy W>
Tensor<float, 2> Projector<W>::forward(const float* x, std::size_t n, const Trace& trace) const {
    const std::size_t in = fc1.in_features(), mid_w = fc1.out_features(), out_w = fc2.out_features();
    if (group == 0 || in % group || n % group || fc2.in_features() != mid_w)
        detail::fail("Projector: ", n, " tokens in groups of ", group, " do not fit fc1 (", in, " inputs) and fc2 (", fc2.in_features(), ")");
    const std::size_t dim = in / group, rows = n / group;
    auto emit = [&](const std::string& name, const float* p, std::size_t r, std::size_t c) {
        if (trace && !name.empty()) trace(name, p, r, c);
    };
    std::vector<float> normed;
    if (norm) {
        if (norm->dim() != dim) detail::fail("Projector: the norm takes ", norm->dim(), " channels, tokens have ", dim);
        normed.resize(n * dim);
        norm->forward(x, n, dim, normed.data(), dim);
        x = normed.data();
        emit(names.norm, x, n, dim);
    }
    std::vector<float> mid(rows * mid_w);
    if (trace && !names.fc1.empty()) {
        fc1.forward(x, rows, in, mid.data(), mid_w);
        trace(names.fc1, mid.data(), rows, mid_w);
    }
    fc1.forward(x, rows, in, mid.data(), mid_w, {.act = act});
    emit(names.act, mid.data(), rows, mid_w);
    Tensor<float, 2> out = Tensor<float, 2>::from_shape({rows, out_w});
    fc2.forward(mid.data(), rows, mid_w, out.data(), out_w);
    emit(names.out, out.data(), rows, out_w);
    return out;
}

DOCVLM_NAMESPACE_END
