// docvlm/model/generation.hpp — choosing the next token: greedy or sampled, with the usual
// logit processors, and stop rules.
//
// Order (a caller's constraint first, then as Hugging Face applies its processors, then
// OpenAI-style penalties):
//   constrain           (GenerationOptions::constrain: tokens that may not come next get −∞)
//   repetition_penalty  (HF: logit / p if > 0 else logit · p, for every token already in the sequence)
//   presence / frequency penalties (OpenAI: logit −= presence · [count > 0] + frequency · count,
//                        counted over generated tokens only)
//   no_repeat_ngram     (HF: ban tokens that would complete an n-gram already present in the sequence)
//   temperature, top_k, top_p, then sampling (temperature 0 or do_sample false: argmax)
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

struct GenerationOptions {
    std::size_t max_new_tokens = 512;
    float temperature = 0.0f;         ///< 0: greedy
    std::size_t top_k = 0;            ///< 0: off
    float top_p = 1.0f;               ///< 1: off
    float repetition_penalty = 1.0f;  ///< 1: off (HF semantics, over prompt and output)
    float presence_penalty = 0.0f;    ///< OpenAI semantics, over generated tokens
    float frequency_penalty = 0.0f;   ///< OpenAI semantics, over generated tokens
    std::size_t no_repeat_ngram = 0;  ///< 0: off; HF semantics over the whole sequence (prompt included)
    bool ngram_over_prompt = true;    ///< false: only generated tokens count (vLLM client semantics)
    std::vector<std::int32_t> stop_tokens;
    std::uint64_t seed = 0;
    /// Record each chosen token's log-probability under the model: log_softmax of the logits as
    /// the model gives them (before `constrain` and the processors below), Sampler::logprobs().
    bool logprobs = false;
    /// With `logprobs`: also record, per step, the `alternatives` most likely tokens next() did not
    /// choose, by the same log-probabilities (Sampler::alternatives()).
    std::size_t alternatives = 0;
    /// Optional constraint, applied before every other processor: given the tokens generated so
    /// far, sets the logits of the tokens that may not come next to −∞ (a grammar, e.g.
    /// pipeline::otsl_constraint). It must leave at least one token allowed.
    std::function<void(std::span<const std::int32_t> generated, std::span<float> logits)> constrain;
};

/// A token a step did not choose, with its log-probability (GenerationOptions::alternatives);
/// token -1 fills the places a vocabulary too small leaves empty.
struct TokenAlternative {
    std::int32_t token = -1;
    float logprob = -std::numeric_limits<float>::infinity();
};

/// Where the time of one generate() call went.
struct GenerationStats {
    double prefill_seconds = 0, decode_seconds = 0;
    std::size_t prompt_tokens = 0, generated_tokens = 0;
};

/// The state of one generation: the sequence so far and the counters the processors need.
/// Storage is reserved up front, so choosing a token allocates nothing.
class Sampler {
public:
    Sampler(const GenerationOptions& opt, std::span<const std::int32_t> prompt, std::size_t vocab);

    /// Applies the processors to `logits` (modified in place) and returns the chosen token.
    std::int32_t next(std::span<float> logits);
    /// Records a token as generated (call after next(), or to force a token).
    void accept(std::int32_t token);
    /// True when `token` is a stop token or max_new_tokens tokens have been generated.
    bool done(std::int32_t token) const;
    std::span<const std::int32_t> generated() const { return {seq_.data() + prompt_len_, seq_.size() - prompt_len_}; }
    /// With GenerationOptions::logprobs: the log-probability of each token next() chose, in order.
    std::span<const float> logprobs() const { return logprobs_; }
    /// With GenerationOptions::alternatives = k: k entries per step, most likely first.
    std::span<const TokenAlternative> alternatives() const { return alternatives_; }

private:
    std::int32_t choose(std::span<float> logits);  // next() without the log-probability
    void ban_repeated_ngrams(std::span<float> logits) const;

    GenerationOptions opt_;
    std::vector<std::int32_t> seq_;
    std::size_t prompt_len_ = 0;
    std::vector<std::uint32_t> counts_;   // per token: times generated
    std::vector<std::uint8_t> in_seq_;    // per token: present anywhere in the sequence
    std::vector<std::int32_t> order_;     // scratch for top-k / top-p
    std::mt19937_64 rng_;
    std::vector<float> raw_;              // the model's logits of this step (logprobs only)
    std::vector<float> logprobs_;
    std::vector<TokenAlternative> alternatives_;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline Sampler::Sampler(const GenerationOptions& opt, std::span<const std::int32_t> prompt, std::size_t vocab)
    : opt_(opt), prompt_len_(prompt.size()), counts_(vocab, 0), in_seq_(vocab, 0), order_(vocab), rng_(opt.seed) {
    if (opt.no_repeat_ngram > 100000) detail::fail("no_repeat_ngram ", opt.no_repeat_ngram, " is absurdly large");
    if (opt.alternatives > 1024) detail::fail("alternatives ", opt.alternatives, " is absurdly large (at most 1024 per step)");
    if (!(opt.temperature >= 0.0f)) detail::fail("temperature must be >= 0");
    if (!(opt.top_p > 0.0f && opt.top_p <= 1.0f)) detail::fail("top_p must be in (0, 1]");
    if (!(opt.repetition_penalty > 0.0f)) detail::fail("repetition_penalty must be > 0");
    seq_.reserve(prompt.size() + opt.max_new_tokens + 1);
    if (opt.logprobs) raw_.resize(vocab), logprobs_.reserve(opt.max_new_tokens + 1);
    if (opt.logprobs) alternatives_.reserve((opt.max_new_tokens + 1) * opt.alternatives);
    for (std::int32_t t : prompt) {
        if (t < 0 || std::size_t(t) >= vocab) detail::fail("prompt token ", t, " is outside the vocabulary of ", vocab);
        seq_.push_back(t);
        in_seq_[std::size_t(t)] = 1;
    }
}

inline void Sampler::accept(std::int32_t token) {
    seq_.push_back(token);
    in_seq_[std::size_t(token)] = 1;
    ++counts_[std::size_t(token)];
}

inline bool Sampler::done(std::int32_t token) const {
    if (seq_.size() - prompt_len_ >= opt_.max_new_tokens) return true;
    return std::find(opt_.stop_tokens.begin(), opt_.stop_tokens.end(), token) != opt_.stop_tokens.end();
}

inline void Sampler::ban_repeated_ngrams(std::span<float> logits) const {
    const std::size_t n = opt_.no_repeat_ngram;
    const std::size_t begin = opt_.ngram_over_prompt ? 0 : prompt_len_;
    const std::size_t len = seq_.size() - begin;
    if (n == 0 || len + 1 < n) return;
    const std::int32_t* s = seq_.data() + begin;
    // The last n-1 tokens; every earlier occurrence of them bans the token that followed.
    const std::int32_t* tail = s + len - (n - 1);
    for (std::size_t i = 0; i + n <= len; ++i)
        if (std::equal(tail, tail + (n - 1), s + i)) logits[std::size_t(s[i + n - 1])] = -std::numeric_limits<float>::infinity();
}

inline std::int32_t Sampler::next(std::span<float> logits) {
    if (!opt_.logprobs) return choose(logits);
    if (logits.size() != raw_.size()) detail::fail("sampler: ", logits.size(), " logits for a vocabulary of ", raw_.size());
    std::copy(logits.begin(), logits.end(), raw_.begin());
    const std::int32_t t = choose(logits);
    const float mx = *std::max_element(raw_.begin(), raw_.end());
    double sum = 0;
    for (float l : raw_) sum += std::exp(double(l - mx));
    const double log_sum = std::log(sum);
    logprobs_.push_back(float(double(raw_[std::size_t(t)] - mx) - log_sum));
    if (opt_.alternatives > 0) {
        // the k largest logits other than the chosen one (order_ is choose()'s scratch, free now)
        std::iota(order_.begin(), order_.end(), 0);
        std::swap(order_[std::size_t(t)], order_.back());
        const std::size_t n = std::min(opt_.alternatives, order_.size() - 1);
        std::partial_sort(order_.begin(), order_.begin() + std::ptrdiff_t(n), order_.end() - 1,
                          [&](std::int32_t a, std::int32_t b) { return raw_[std::size_t(a)] > raw_[std::size_t(b)]; });
        for (std::size_t i = 0; i < opt_.alternatives; ++i)
            alternatives_.push_back(i < n ? TokenAlternative{order_[i], float(double(raw_[std::size_t(order_[i])] - mx) - log_sum)}
                                          : TokenAlternative{});
    }
    return t;
}

inline std::int32_t Sampler::choose(std::span<float> logits) {
    if (logits.size() != counts_.size()) detail::fail("sampler: ", logits.size(), " logits for a vocabulary of ", counts_.size());
    // NaN or +inf (a checkpoint holding non-finite weights, or activations that overflowed) would
    // make every choice below arbitrary: stop with an error instead of writing garbage.
    bool bad = false;
    for (float l : logits) bad |= !(l < std::numeric_limits<float>::infinity());
    if (bad) {
        std::size_t nan = 0, inf = 0;
        for (float l : logits) nan += std::isnan(l), inf += l == std::numeric_limits<float>::infinity();
        detail::fail("the model's logits at generated token ", seq_.size() - prompt_len_ + 1, " hold ", nan, " NaN and ", inf,
                     " +inf values: its weights or input are not finite numbers (a corrupt checkpoint?)");
    }
    if (opt_.constrain) opt_.constrain(generated(), logits);
    if (opt_.repetition_penalty != 1.0f)
        for (std::size_t t = 0; t < logits.size(); ++t)
            if (in_seq_[t]) logits[t] = logits[t] > 0 ? logits[t] / opt_.repetition_penalty : logits[t] * opt_.repetition_penalty;
    if (opt_.presence_penalty != 0.0f || opt_.frequency_penalty != 0.0f)
        for (std::size_t t = 0; t < logits.size(); ++t)
            if (counts_[t]) logits[t] -= opt_.presence_penalty + opt_.frequency_penalty * float(counts_[t]);
    ban_repeated_ngrams(logits);
    if (opt_.temperature == 0.0f)
        return std::int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    for (float& l : logits) l /= opt_.temperature;
    std::iota(order_.begin(), order_.end(), 0);
    std::size_t keep = logits.size();
    if (opt_.top_k > 0 && opt_.top_k < keep) keep = opt_.top_k;
    std::partial_sort(order_.begin(), order_.begin() + std::ptrdiff_t(keep), order_.end(),
                      [&](std::int32_t a, std::int32_t b) { return logits[std::size_t(a)] > logits[std::size_t(b)]; });
    const float mx = logits[std::size_t(order_[0])];
    double total = 0;
    for (std::size_t i = 0; i < keep; ++i) total += std::exp(double(logits[std::size_t(order_[i])] - mx));
    if (opt_.top_p < 1.0f) {  // smallest prefix whose probability reaches top_p (at least one token)
        double acc = 0;
        std::size_t i = 0;
        for (; i < keep; ++i) {
            acc += std::exp(double(logits[std::size_t(order_[i])] - mx)) / total;
            if (acc >= opt_.top_p) break;
        }
        keep = std::min(keep, i + 1);
        total = 0;
        for (std::size_t j = 0; j < keep; ++j) total += std::exp(double(logits[std::size_t(order_[j])] - mx));
    }
    double u = std::uniform_real_distribution<double>(0.0, total)(rng_);
    for (std::size_t i = 0; i < keep; ++i) {
        u -= std::exp(double(logits[std::size_t(order_[i])] - mx));
        if (u <= 0) return order_[i];
    }
    return order_[keep - 1];
}

DOCVLM_NAMESPACE_END
