// docvlm/core/trace.hpp — Trace: an optional observer of intermediate tensors.
//
// Layers and models call a Trace, when one is set, with the tensors they compute, under the names of
// the Hugging Face goldens (vision_blk0_qkv, dec_l0_q_proj, logits, ...). Rule: a trace observes, it
// never changes what flows on — a value the model computes fused (an activation or a residual add in
// a GEMM epilogue) is traced by computing the unfused piece a second time on the side.
#pragma once

#include <docvlm/core/config.hpp>

#include <cstddef>
#include <functional>
#include <string_view>

DOCVLM_NAMESPACE_BEGIN

/// Sees intermediate tensors: name, data, rows, columns (row-major, contiguous).
using Trace = std::function<void(std::string_view name, const float* data, std::size_t rows, std::size_t cols)>;

namespace detail {
/// Calls `trace` when set.
inline void emit(const Trace& trace, std::string_view name, const float* data, std::size_t rows, std::size_t cols) {
    if (trace) trace(name, data, rows, cols);
}
}  // namespace detail

DOCVLM_NAMESPACE_END
