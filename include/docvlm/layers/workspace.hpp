// docvlm/layers/workspace.hpp — Workspace: the activations a block computes between its input and
// its output, owned by whoever runs the layers (a decoding context, a vision pass), never by the
// layers themselves: layers are read-only and may be shared by many threads, each with its own
// workspace.
//
//   h    [n, dim]               a normalised copy of the residual stream
//   q    [n, q_dim]             queries (a fused projection: q | k | v per row)
//   k, v [n, kv_dim]            keys and values that do not go straight into a KV cache
//   ctx  [n, q_dim]             attention's output before the output projection
//   g    [n, mlp]               the MLP's hidden activations
//   o    [n, dim]               a gated branch's output before it joins the residual stream
//   acts                        int8 activations shared by projections of one input (q, k, v)
//
// Buffers grow to the largest n they have seen and never shrink: a context that reserves for its
// largest step, or has run it once, computes every later step without allocating.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/kernels/qgemm_quantize.hpp>

#include <cstddef>
#include <memory>

DOCVLM_NAMESPACE_BEGIN

struct Workspace {
    /// Floats that only grow, left uninitialised: a layer writes what it reads back within one call.
    class Buffer {
    public:
        /// At least n floats (the old contents are not kept when it grows).
        float* room(std::size_t n) {
            if (size_ < n) data_.reset(new float[n]), size_ = n;
            return data_.get();
        }
        float* data() { return data_.get(); }
        const float* data() const { return data_.get(); }

    private:
        std::unique_ptr<float[]> data_;
        std::size_t size_ = 0;
    };

    Buffer h, q, k, v, ctx, g, o;
    kernels::QuantizedActivations acts;

    /// Room for n rows of a block with these widths (q_dim: the fused q | k | v width where the
    /// block projects them at once).
    void reserve(std::size_t n, std::size_t dim, std::size_t q_dim, std::size_t kv_dim, std::size_t mlp) {
        h.room(n * dim), q.room(n * q_dim), ctx.room(n * q_dim), k.room(n * kv_dim), v.room(n * kv_dim), g.room(n * mlp), o.room(n * dim);
    }
};

DOCVLM_NAMESPACE_END
