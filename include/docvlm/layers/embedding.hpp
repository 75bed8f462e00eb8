// docvlm/layers/embedding.hpp — Embedding: token id → row of a [vocab, dim] table.
//
// The table is kept in float (exact) or bfloat16 (half the memory: 136 MB instead of 272 MB for
// Qwen2's 151,936 × 896); a row is converted to float when read. Ids outside the vocabulary throw.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/dtype.hpp>
#include <docvlm/core/error.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

class Embedding {
public:
    Embedding() = default;
    /// table [vocab, dim], row-major; stored in bfloat16 when `bf16_storage`.
    Embedding(const float* table, std::size_t vocab, std::size_t dim, bool bf16_storage) : vocab_(vocab), dim_(dim) {
        if (bf16_storage) {
            b16_.resize(vocab * dim);
            convert(table, b16_.data(), b16_.size());
        } else {
            f32_.assign(table, table + vocab * dim);
        }
    }
    /// out [dim] = row `token`.
    void row(std::int32_t token, float* out) const {
        if (token < 0 || std::size_t(token) >= vocab_) detail::fail("token id ", token, " is outside the vocabulary of ", vocab_);
        const std::size_t at = std::size_t(token) * dim_;
        if (f32_.empty()) convert(b16_.data() + at, out, dim_);
        else std::copy_n(f32_.data() + at, dim_, out);
    }
    /// out [n, dim] = the rows of ids[0..n).
    void rows(const std::int32_t* ids, std::size_t n, float* out) const {
        for (std::size_t i = 0; i < n; ++i) row(ids[i], out + i * dim_);
    }
    std::size_t vocab() const { return vocab_; }
    std::size_t dim() const { return dim_; }

private:
    std::size_t vocab_ = 0, dim_ = 0;
    std::vector<float> f32_;
    std::vector<bf16> b16_;
};

DOCVLM_NAMESPACE_END
