// docvlm/model/sequence_score.hpp — a model's own score of a given reading: the log-probability of
// a token sequence and its end token after a prompt, teacher-forced (one prefill with every
// position's logits). Used to compare spellings of a reading (pipeline/word_correction.hpp).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// log_softmax(logits)[target], in double.
inline double log_softmax_at(std::span<const float> logits, std::size_t target) {
    const float mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (float v : logits) sum += std::exp(double(v - mx));
    return double(logits[target] - mx) - std::log(sum);
}

/// log P(ids, end | image, prompt) under a model whose Context prefills (vision, prompt tokens,
/// trace, all_logits) — docvlm-small's GatedVlmModel. `vocab` and `end` are the model's; at most
/// `max_tokens` prompt and output tokens together.
template <class Model>
double sequence_logprob(const Model& model, const Tensor<float, 2>& vision, std::span<const std::int32_t> prompt,
                        std::span<const std::int32_t> ids, std::size_t vocab, std::int32_t end, std::size_t max_tokens) {
    const std::size_t n = prompt.size() + ids.size();
    if (prompt.empty()) detail::fail("sequence_logprob: empty prompt");
    if (n > max_tokens) detail::fail("sequence_logprob: ", n, " prompt and output tokens, more than the model's ", max_tokens);
    for (std::int32_t t : ids)
        if (t < 0 || std::size_t(t) >= vocab) detail::fail("sequence_logprob: token ", t, " outside the vocabulary of ", vocab);
    std::vector<std::int32_t> in(prompt.begin(), prompt.end());
    in.insert(in.end(), ids.begin(), ids.end());
    auto ctx = model.context(n);
    const std::span<const float> logits = ctx.prefill(vision, in, {}, true);  // [n, vocab]: row i predicts token i + 1
    double total = 0;
    for (std::size_t i = prompt.size() - 1; i < n; ++i) {
        const std::int32_t target = i + 1 < n ? in[i + 1] : end;
        total += log_softmax_at(logits.subspan(i * vocab, vocab), std::size_t(target));
    }
    return total;
}

DOCVLM_NAMESPACE_END
