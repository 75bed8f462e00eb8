// docvlm/model/generator.hpp — the decoding loops every family's Context shares: one sequence
// (Context::generate) and many at once (generate_batch). A family supplies how to prefill and how
// to step; the loops choose tokens (Sampler), apply the stop rules, stream and time.
//
// Stop rules: a sequence ends when the sampler says done (a stop token, or max_new_tokens), or its
// context is full. `hidden_end` (≥ 0) is an end token that is not part of the output (docvlm-small's
// end of text); otherwise every chosen token is output, the stop token included (as transformers'
// generate returns it).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/model/generation.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// Streams each output token.
using TokenCallback = std::function<void(std::int32_t)>;

/// One sequence: `prefill()` returns the prompt's last logits, `step(token)` appends a token and
/// returns the next logits, `room()` says whether the context takes another token.
template <class Prefill, class Step, class Room>
std::vector<std::int32_t> generate_sequence(Sampler& sampler, std::size_t vocab, std::size_t prompt_tokens, Prefill&& prefill, Step&& step,
                                            Room&& room, std::size_t max_out, const TokenCallback& on_token, GenerationStats* stats,
                                            std::int32_t hidden_end = -1) {
    using clock = std::chrono::steady_clock;
    std::vector<float> logits(vocab);
    const auto t0 = clock::now();
    std::span<const float> l = prefill();
    const auto t1 = clock::now();
    std::vector<std::int32_t> out;
    out.reserve(max_out + 1);  // no growth while decoding
    for (;;) {
        std::copy(l.begin(), l.end(), logits.begin());
        const std::int32_t t = sampler.next(logits);
        sampler.accept(t);
        if (t == hidden_end) break;
        out.push_back(t);
        if (on_token) on_token(t);
        if (sampler.done(t) || !room()) break;
        l = step(t);
    }
    if (stats) {
        stats->prefill_seconds += std::chrono::duration<double>(t1 - t0).count();
        stats->decode_seconds += std::chrono::duration<double>(clock::now() - t1).count();
        stats->prompt_tokens += prompt_tokens;
        stats->generated_tokens += out.size();
    }
    return out;
}

/// Many sequences stepped together: `active` lists the sequences still running and `tokens` the
/// token each feeds next; `step_rows(active, tokens)` advances them one token and returns their logits
/// [active.size(), vocab] (std::span<float>: the sampler works on them in place); `room(i)` as above. Appends each sequence's tokens to out[i].
template <class StepRows, class Room>
void generate_rows(std::span<Sampler> samplers, std::vector<std::vector<std::int32_t>>& out, std::vector<std::size_t> active,
                   std::vector<std::int32_t> tokens, std::size_t vocab, StepRows&& step_rows, Room&& room, std::int32_t hidden_end = -1) {
    std::vector<std::size_t> still;
    std::vector<std::int32_t> next;
    while (!active.empty()) {
        const std::span<float> logits = step_rows(std::span<const std::size_t>(active), std::span<const std::int32_t>(tokens));
        still.clear(), next.clear();
        for (std::size_t r = 0; r < active.size(); ++r) {
            const std::size_t i = active[r];
            const std::int32_t t = samplers[i].next(logits.subspan(r * vocab, vocab));
            samplers[i].accept(t);
            if (t == hidden_end) continue;
            out[i].push_back(t);
            if (samplers[i].done(t) || !room(i)) continue;
            still.push_back(i), next.push_back(t);
        }
        active.swap(still), tokens.swap(next);
    }
}

DOCVLM_NAMESPACE_END
