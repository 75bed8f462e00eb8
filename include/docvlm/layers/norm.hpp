// docvlm/layers/norm.hpp — LayerNorm and RMSNorm over the rows of a matrix.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/kernels/ops.hpp>

#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// y = (x − mean) / sqrt(var + eps) · weight + bias, per row of `dim` values.
class LayerNorm {
public:
    LayerNorm() = default;
    LayerNorm(std::vector<float> weight, std::vector<float> bias, float eps)
        : w_(std::move(weight)), b_(std::move(bias)), eps_(eps) {}
    /// x, y: [m, dim] with the given strides; y may be x.
    void forward(const float* x, std::size_t m, std::size_t ldx, float* y, std::size_t ldy) const {
        parallel_for(m, [&](std::size_t b, std::size_t e) {
            for (std::size_t r = b; r < e; ++r) kernels::layer_norm(x + r * ldx, w_.data(), b_.data(), y + r * ldy, w_.size(), eps_);
        }, 16);
    }
    std::size_t dim() const { return w_.size(); }
    const std::vector<float>& weight() const { return w_; }
    const std::vector<float>& bias() const { return b_; }
    float eps() const { return eps_; }

private:
    std::vector<float> w_, b_;
    float eps_ = 1e-6f;
};

/// y = x / sqrt(mean(x²) + eps) · weight, per row of `dim` values.
class RMSNorm {
public:
    RMSNorm() = default;
    RMSNorm(std::vector<float> weight, float eps) : w_(std::move(weight)), eps_(eps) {}
    void forward(const float* x, std::size_t m, std::size_t ldx, float* y, std::size_t ldy) const {
        parallel_for(m, [&](std::size_t b, std::size_t e) {
            for (std::size_t r = b; r < e; ++r) kernels::rms_norm(x + r * ldx, w_.data(), y + r * ldy, w_.size(), eps_);
        }, 16);
    }
    std::size_t dim() const { return w_.size(); }
    const std::vector<float>& weight() const { return w_; }
    float eps() const { return eps_; }

private:
    std::vector<float> w_;
    float eps_ = 1e-6f;
};

DOCVLM_NAMESPACE_END
