// docvlm/model/beam_search.hpp — beam search over many sequences stepped together: each sequence
// keeps its `width` most probable partial readings (by the sum of their tokens' log-probabilities)
// and ends when its best finished reading scores at least as high as every partial one (a partial
// reading's score only falls as it grows, so none can overtake it). No length normalisation: a
// reading's score is log P(tokens, end | prompt), the quantity the model was trained on. A
// continuation that reaches the sequence's bound without the end token takes its place in the beam
// but stops there, unfinished; it is the result only when no reading ended (so width 1 is greedy
// decoding under the same bound).
//
// Slots: sequence i owns slots [i · width, (i + 1) · width); a slot is one decoding context. The
// caller supplies step_rows(slots, tokens) -> logits [slots.size(), vocab] (feeds each slot its
// token) and fork(from, to) (makes slot `to` hold slot `from`'s tokens). After a step, a reading
// that continues its parent stays in the parent's slot; its other continuations are forked into
// slots whose readings were dropped, so a fork never overwrites a slot still in use.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/model/generation.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// One sequence's most probable reading.
struct BeamReading {
    std::vector<std::int32_t> ids;                ///< without the end token
    std::vector<float> logprobs;                  ///< per token of ids, then the end token's when ended
    std::vector<TokenAlternative> alternatives;   ///< `alternatives` per step, most likely first
    double score = -std::numeric_limits<double>::infinity();  ///< the sum of logprobs
    bool ended = false;                           ///< false: it reached its bound without the end token
};

namespace detail {

// A partial reading of one sequence, held in one slot.
struct Beam {
    BeamReading r;
    std::size_t slot = 0;
    std::int32_t next = 0;  // the token its slot is fed at the next step
};

// A continuation of beam `parent` by `token`.
struct BeamCandidate {
    double score;
    std::size_t parent;
    std::int32_t token;
    float logprob;
};

// log_softmax of one row of logits, and the indices of its `top` largest entries, largest first
// (ties: the lower token first, as greedy argmax chooses).
inline void beam_row(std::span<const float> logits, std::size_t top, std::vector<float>& logp, std::vector<std::int32_t>& order) {
    const float mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (float v : logits) sum += std::exp(double(v - mx));
    const float lse = mx + float(std::log(sum));
    logp.resize(logits.size());
    for (std::size_t t = 0; t < logits.size(); ++t) logp[t] = logits[t] - lse;
    order.resize(logits.size());
    for (std::size_t t = 0; t < order.size(); ++t) order[t] = std::int32_t(t);
    top = std::min(top, order.size());
    std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(top), order.end(),
                      [&](std::int32_t a, std::int32_t b) { return logp[std::size_t(a)] > logp[std::size_t(b)] || (logp[std::size_t(a)] == logp[std::size_t(b)] && a < b); });
    order.resize(top);
}

// The alternatives of a step that chose `chosen`: the `n` most likely other tokens.
inline void beam_alternatives(std::span<const std::int32_t> order, std::span<const float> logp, std::int32_t chosen, std::size_t n,
                              std::vector<TokenAlternative>& out) {
    std::size_t added = 0;
    for (std::int32_t t : order) {
        if (added == n) break;
        if (t == chosen) continue;
        out.push_back({t, logp[std::size_t(t)]});
        ++added;
    }
    for (; added < n; ++added) out.push_back({});
}

}  // namespace detail

/// Beam search of `sequences` readings at once, each fed `first` at its first step and bounded by
/// max_new[i] tokens (end excluded). `alternatives`: how many unchosen tokens to record per step.
template <class StepRows, class Fork>
std::vector<BeamReading> beam_search_rows(std::size_t sequences, std::size_t width, std::int32_t first, std::int32_t end, std::size_t vocab,
                                          std::span<const std::size_t> max_new, std::size_t alternatives, StepRows&& step_rows, Fork&& fork) {
    if (width == 0) detail::fail("beam search: a width of 0");
    if (max_new.size() != sequences) detail::fail("beam search: ", max_new.size(), " bounds for ", sequences, " sequences");
    if (end < 0 || std::size_t(end) >= vocab) detail::fail("beam search: end token ", end, " outside the vocabulary of ", vocab);
    std::vector<std::vector<detail::Beam>> alive(sequences);
    std::vector<BeamReading> best(sequences);       // the best finished reading (or, at the bound, unfinished)
    for (std::size_t i = 0; i < sequences; ++i) {
        alive[i].push_back({{}, i * width, first});
        alive[i].back().r.score = 0;  // nothing read yet
    }
    std::vector<std::size_t> slots;
    std::vector<std::int32_t> tokens;
    std::vector<detail::BeamCandidate> cands;
    std::vector<std::vector<std::int32_t>> orders;  // per row of this step
    std::vector<std::vector<float>> logps;
    for (;;) {
        slots.clear(), tokens.clear();
        for (const auto& beams : alive)
            for (const detail::Beam& b : beams) slots.push_back(b.slot), tokens.push_back(b.next);
        if (slots.empty()) break;
        const std::span<const float> logits = step_rows(std::span<const std::size_t>(slots), std::span<const std::int32_t>(tokens));
        std::size_t row = 0;
        for (std::size_t i = 0; i < sequences; ++i) {
            auto& beams = alive[i];
            if (beams.empty()) continue;
            // candidates: each beam's width + 1 most likely tokens (at most one is the end)
            cands.clear();
            orders.resize(std::max(orders.size(), beams.size())), logps.resize(std::max(logps.size(), beams.size()));
            for (std::size_t b = 0; b < beams.size(); ++b, ++row) {
                detail::beam_row(logits.subspan(row * vocab, vocab), std::max(width + 1, alternatives + 1), logps[b], orders[b]);
                for (std::size_t c = 0; c < std::min(width + 1, orders[b].size()); ++c) {
                    const std::int32_t t = orders[b][c];
                    const float lp = logps[b][std::size_t(t)];
                    cands.push_back({beams[b].r.score + lp, b, t, lp});
                }
            }
            std::stable_sort(cands.begin(), cands.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
            std::vector<detail::Beam> next;
            std::vector<std::uint8_t> slot_kept(beams.size(), 0);  // the parent's slot is taken by its first continuation
            std::vector<std::size_t> parent_of;
            std::size_t taken = 0;  // continuations kept, those stopped by the bound included
            for (const detail::BeamCandidate& c : cands) {
                if (taken == width) break;
                const detail::Beam& p = beams[c.parent];
                BeamReading r = p.r;
                r.score = c.score;
                r.logprobs.push_back(c.logprob);
                if (alternatives) detail::beam_alternatives(orders[c.parent], logps[c.parent], c.token, alternatives, r.alternatives);
                if (c.token == end) {
                    r.ended = true;
                    if (!best[i].ended || r.score > best[i].score) best[i] = std::move(r);
                    continue;
                }
                r.ids.push_back(c.token);
                ++taken;
                if (r.ids.size() >= max_new[i]) {  // the bound: unfinished, kept only if nothing ends
                    if (!best[i].ended && r.score > best[i].score) best[i] = std::move(r);
                    continue;
                }
                next.push_back({std::move(r), p.slot, c.token});
                parent_of.push_back(c.parent);
            }
            // slots: the first continuation of a parent keeps its slot, the others take free ones
            std::vector<std::uint8_t> used(width, 0);
            for (std::size_t n = 0; n < next.size(); ++n)
                if (!slot_kept[parent_of[n]]) slot_kept[parent_of[n]] = 1, used[next[n].slot - i * width] = 1;
                else next[n].slot = std::size_t(-1);
            std::size_t free_slot = 0;
            for (std::size_t n = 0; n < next.size(); ++n) {
                if (next[n].slot != std::size_t(-1)) continue;
                while (used[free_slot]) ++free_slot;
                used[free_slot] = 1;
                next[n].slot = i * width + free_slot;
                fork(beams[parent_of[n]].slot, next[n].slot);
            }
            // done when the best finished reading outscores every partial one
            const bool settled = best[i].ended && std::all_of(next.begin(), next.end(), [&](const auto& b) { return b.r.score <= best[i].score; });
            beams = settled ? std::vector<detail::Beam>{} : std::move(next);
        }
    }
    return best;
}

DOCVLM_NAMESPACE_END
