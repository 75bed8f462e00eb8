// docvlm/model/sequence_score.hpp — a model's own score of given readings of one image: the
// log-probability of a token sequence and its end token after a prompt, teacher-forced (every
// position's logits). Used to compare spellings of a reading (pipeline/word_correction.hpp).
//
// ReadingScorer keeps one context per image: the vision tokens are read once, and the tokens a
// reading shares with the one scored before it are not run again (Context::truncate), so scoring
// many spellings that differ late in a line costs only their tails.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// log_softmax(logits)[target], in double.
inline double log_softmax_at(std::span<const float> logits, std::size_t target) {
    const float mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (float v : logits) sum += std::exp(double(v - mx));
    return double(logits[target] - mx) - std::log(sum);
}

/// Readings of one image for one task under a model whose Context has prefill (vision, prompt,
/// trace, all_logits), append (ids, all_logits) and truncate (n), and whose dims() give the task
/// token, vocab, eos_token_id and max_tokens — docvlm-small's GatedVlmModel. A reading and its task
/// token hold at most max_tokens tokens.
template <class Model>
class ReadingScorer {
public:
    ReadingScorer(const Model& model, const Tensor<float, 2>& vision, std::string_view task)
        : vision_(&vision), prompt_{model.dims().task_token(task)}, vocab_(model.dims().vocab), end_(model.dims().eos_token_id),
          max_tokens_(model.dims().max_tokens), ctx_(model.context(max_tokens_)) {}

    /// log P(ids[from..to) | image, prompt, ids[..from)), index ids.size() standing for the end
    /// token: the reading's score from token `from` to `to` (default: the whole reading and its end).
    double logprob(std::span<const std::int32_t> ids, std::size_t from = 0, std::size_t to = std::size_t(-1)) {
        to = std::min(to, ids.size() + 1);
        const std::size_t p = prompt_.size(), n = p + to - 1;  // the positions run: up to the one predicting token to - 1
        if (n > max_tokens_) detail::fail("sequence_logprob: ", n, " prompt and output tokens, more than the model's ", max_tokens_);
        if (from >= to) detail::fail("sequence_logprob: scoring tokens ", from, " to ", to, " of ", ids.size());
        for (std::int32_t t : ids)
            if (t < 0 || std::size_t(t) >= vocab_) detail::fail("sequence_logprob: token ", t, " outside the vocabulary of ", vocab_);
        // seq = prompt + ids[..to - 1); the logits of position r predict seq[r + 1] (the end after
        // the last token). Positions p + from - 1 .. n - 1 are needed, so the context keeps at most
        // p + from - 1 of the tokens it shares with seq (the image's vision tokens stay read).
        seq_.assign(prompt_.begin(), prompt_.end());
        seq_.insert(seq_.end(), ids.begin(), ids.begin() + std::ptrdiff_t(n - p));
        std::size_t shared = 0;
        while (shared < std::min(held_.size(), n) && held_[shared] == seq_[shared]) ++shared;
        const std::size_t keep = std::min(shared, p + from - 1);
        std::span<const float> logits;
        if (held_.empty()) {
            logits = ctx_.prefill(*vision_, seq_, {}, true);
        } else {
            ctx_.truncate(keep);
            logits = ctx_.append(std::span<const std::int32_t>(seq_).subspan(keep), true);
        }
        held_.assign(seq_.begin(), seq_.end());
        double total = 0;
        for (std::size_t pos = p + from - 1; pos < n; ++pos) {
            const std::int32_t target = pos + 1 < p + ids.size() ? ids[pos + 1 - p] : end_;
            total += log_softmax_at(logits.subspan((pos - keep) * vocab_, vocab_), std::size_t(target));
        }
        return total;
    }

private:
    const Tensor<float, 2>* vision_;
    std::vector<std::int32_t> prompt_, seq_, held_;  // held_: the tokens in the context (prompt first)
    std::size_t vocab_;
    std::int32_t end_;
    std::size_t max_tokens_;
    typename Model::Context ctx_;
};

/// log P(ids, end | image, task): one reading's whole score (ReadingScorer).
template <class Model>
double sequence_logprob(const Model& model, const Tensor<float, 2>& vision, std::string_view task, std::span<const std::int32_t> ids) {
    return ReadingScorer<Model>(model, vision, task).logprob(ids);
}

DOCVLM_NAMESPACE_END
