// docvlm/model/token_concat.hpp — TokenConcatContext<Family>: prompting and generation for the
// families whose image tokens replace placeholder tokens of the prompt (Qwen2-VL / MinerU2.5,
// LLaVA-1.5). One implementation: prefill, decode_step, generate, generate_batch.
//
// A Family provides
//   using Weights;                                   the weight policy
//   const Decoder<Weights>& decoder() const;
//   std::int32_t image_token() const;                the placeholder id
//   std::size_t max_positions() const;
//   RopePositions positions(ids, grids) const;       positions of a prompt (t, h, w; 1-D: three equal axes)
//   void rope(RopeTable&, const std::int64_t* const pos[3], std::size_t n, const Trace&) const;
//                                                    rope rows of n tokens at pos[axis][i]
// A text token decoded at cache position c sits at c + RopePositions::delta on every axis.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/core/trace.hpp>
#include <docvlm/model/decoder.hpp>
#include <docvlm/model/generation.hpp>
#include <docvlm/model/generator.hpp>
#include <docvlm/model/rope_index.hpp>

#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

template <class Family>
class TokenConcatContext {
    using W = typename Family::Weights;

public:
    /// A context with a KV cache for `max_tokens` tokens (prompt + output).
    TokenConcatContext(const Family& m, std::size_t max_tokens);

    /// Runs the prompt (image tokens replaced by the rows of `images`, in order) and returns the
    /// logits of its last token. With all_logits, returns logits for every prompt token [n, vocab].
    std::span<const float> prefill(std::span<const std::int32_t> ids, std::span<const Tensor<float, 2>> images,
                                   std::span<const ImageGrid> grids = {}, const Trace& trace = {}, bool all_logits = false) {
        return prefill(ids, images, grids, m_->positions(ids, grids), trace, all_logits);
    }
    /// prefill with explicit positions instead of the family's (e.g. Hugging Face's plain
    /// forward(), which without position_ids numbers the tokens 0, 1, 2, ... on all axes).
    std::span<const float> prefill(std::span<const std::int32_t> ids, std::span<const Tensor<float, 2>> images,
                                   std::span<const ImageGrid> grids, RopePositions positions, const Trace& trace = {},
                                   bool all_logits = false);
    /// Appends one token and returns the logits for the next one.
    std::span<const float> decode_step(std::int32_t token);
    /// prefill + decode loop with the sampler; calls on_token for each generated token and, if
    /// `stats` is given, records where the time went. The stop token is part of the output.
    std::vector<std::int32_t> generate(std::span<const std::int32_t> ids, std::span<const Tensor<float, 2>> images,
                                       std::span<const ImageGrid> grids, const GenerationOptions& opt, const TokenCallback& on_token = {},
                                       GenerationStats* stats = nullptr);
    std::size_t length() const { return state_.length(); }
    bool room() const { return state_.room(); }
    /// Positions of the last prefill (t, h, w per prompt token).
    const RopePositions& positions() const { return pos_; }

    /// Scratch of step_rows.
    struct Batch {
        typename Decoder<W>::Batch dec;
        std::vector<typename Decoder<W>::State*> states;
        std::vector<std::int64_t> pos;
        RopeTable rope;
    };
    /// One decoding step for n prefilled contexts of one model (one new token each at its own
    /// position); returns logits [n, vocab] (in `b`).
    static std::span<float> step_rows(TokenConcatContext* const* ctxs, const std::int32_t* ids, std::size_t n, Batch& b);

private:
    std::span<const float> forward(const float* x, std::size_t n, const std::int64_t* const* pos, const Trace& trace, bool all_logits);

    const Family* m_;
    typename Decoder<W>::State state_;
    RopePositions pos_;
    RopeTable rope_;
    std::vector<float> emb_;
};

/// Positions 0, 1, 2, ... of n tokens on all three axes (families with 1-D rope: LLaVA, Qwen-VL).
inline RopePositions plain_positions(std::size_t n) {
    RopePositions p;
    for (auto& a : p.pos) {
        a.resize(n);
        for (std::size_t i = 0; i < n; ++i) a[i] = std::int64_t(i);
    }
    return p;
}

/// Rope1D rows of n tokens at pos[0][i] (the three axes agree); traced as dec_rope_cos / dec_rope_sin.
inline void rope1d_rows(RopeTable& t, const std::int64_t* const* pos, std::size_t n, std::span<const float> inv_freq, const Trace& trace) {
    rope1d_fill(t, pos[0], n, inv_freq);
    detail::emit(trace, "dec_rope_cos", t.cos.data(), n, t.head_dim);
    detail::emit(trace, "dec_rope_sin", t.sin.data(), n, t.head_dim);
}

/// One request of token_concat_generate_batch: a prompt with its images, and its own options.
struct BatchRequest {
    std::span<const std::int32_t> ids;
    std::span<const Tensor<float, 2>> images;
    std::span<const ImageGrid> grids;
    GenerationOptions options;
};

/// Runs several requests at once: each prompt is prefilled on its own, then the decoder steps all
/// unfinished sequences together, so each weight matrix (the LM head above all) is read once per
/// step for the whole batch. Each result is what generate() gives for that request in a context of
/// ids.size() + options.max_new_tokens tokens (rows are computed independently); `stats`, if
/// given, gets the prefill and decode time of all.
template <class Family>
std::vector<std::vector<std::int32_t>> token_concat_generate_batch(const Family& m, std::span<const BatchRequest> requests,
                                                                   GenerationStats* stats);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

template <class Family>
TokenConcatContext<Family>::TokenConcatContext(const Family& m, std::size_t max_tokens)
    : m_(&m), state_(m.decoder(), max_tokens <= m.max_positions()
                                      ? max_tokens
                                      : (detail::fail("context: ", max_tokens, " tokens exceed the model's max_position_embeddings of ",
                                                      m.max_positions()),
                                         0)) {}

template <class Family>
std::span<const float> TokenConcatContext<Family>::forward(const float* x, std::size_t n, const std::int64_t* const* pos, const Trace& trace,
                                                           bool all_logits) {
    m_->rope(rope_, pos, n, trace);
    return m_->decoder().forward(state_, x, n, rope_, trace, all_logits);
}

template <class Family>
std::span<const float> TokenConcatContext<Family>::prefill(std::span<const std::int32_t> ids, std::span<const Tensor<float, 2>> images,
                                                           std::span<const ImageGrid> grids, RopePositions positions, const Trace& trace,
                                                           bool all_logits) {
    const Decoder<W>& dec = m_->decoder();
    const std::size_t h = dec.hidden();
    if (ids.empty()) detail::fail("prefill: empty prompt");
    if (state_.length() != 0) detail::fail("prefill: the context already holds ", state_.length(), " tokens");
    if (!state_.room(ids.size())) detail::fail("prefill: the prompt has ", ids.size(), " tokens, the context holds ", state_.capacity());
    for (const auto& a : positions.pos)
        if (a.size() != ids.size()) detail::fail("prefill: ", a.size(), " positions for ", ids.size(), " tokens");
    if (!grids.empty() && images.size() != grids.size()) detail::fail("prefill: ", images.size(), " images but ", grids.size(), " grids");
    pos_ = std::move(positions);
    std::vector<float> x(ids.size() * h);
    std::size_t image = 0, row = 0;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] == m_->image_token()) {
            if (image >= images.size() || images[image].shape()[1] != h)
                detail::fail("prefill: image token ", i, " has no matching image embedding");
            std::copy_n(images[image].data() + row * h, h, x.data() + i * h);
            if (++row == images[image].shape()[0]) ++image, row = 0;
        } else {
            dec.embed.row(ids[i], x.data() + i * h);
        }
    }
    if (image != images.size() || row != 0) detail::fail("prefill: image tokens and image embeddings do not match in number");
    detail::emit(trace, "inputs_embeds", x.data(), ids.size(), h);
    const std::int64_t* pos[3] = {pos_.pos[0].data(), pos_.pos[1].data(), pos_.pos[2].data()};
    return forward(x.data(), ids.size(), pos, trace, all_logits);
}

template <class Family>
std::span<const float> TokenConcatContext<Family>::decode_step(std::int32_t token) {
    if (state_.length() == 0) detail::fail("decode_step: call prefill first");
    const std::size_t h = m_->decoder().hidden();
    if (emb_.size() < h) emb_.resize(h);  // first step only
    m_->decoder().embed.row(token, emb_.data());
    const std::int64_t p = std::int64_t(state_.length()) + pos_.delta;
    const std::int64_t* pos[3] = {&p, &p, &p};
    return forward(emb_.data(), 1, pos, {}, false);
}

template <class Family>
std::vector<std::int32_t> TokenConcatContext<Family>::generate(std::span<const std::int32_t> ids, std::span<const Tensor<float, 2>> images,
                                                               std::span<const ImageGrid> grids, const GenerationOptions& opt,
                                                               const TokenCallback& on_token, GenerationStats* stats) {
    const std::size_t vocab = m_->decoder().vocab();
    Sampler sampler(opt, ids, vocab);
    return generate_sequence(
        sampler, vocab, ids.size(), [&] { return prefill(ids, images, grids); }, [&](std::int32_t t) { return decode_step(t); },
        [&] { return state_.room(); }, std::min(opt.max_new_tokens, state_.capacity()), on_token, stats);
}

template <class Family>
std::span<float> TokenConcatContext<Family>::step_rows(TokenConcatContext* const* ctxs, const std::int32_t* ids, std::size_t n, Batch& b) {
    b.pos.resize(n), b.states.resize(n);
    const Family& m = *ctxs[0]->m_;
    for (std::size_t r = 0; r < n; ++r) {
        if (ctxs[r]->length() == 0) detail::fail("generate_batch: a context was not prefilled");
        if (ctxs[r]->m_ != &m) detail::fail("generate_batch: contexts of different models");
        b.pos[r] = std::int64_t(ctxs[r]->length()) + ctxs[r]->pos_.delta;  // a text token: the same position on all three axes
        b.states[r] = &ctxs[r]->state_;
    }
    const std::int64_t* p[3] = {b.pos.data(), b.pos.data(), b.pos.data()};
    m.rope(b.rope, p, n, {});
    return m.decoder().step(b.states.data(), ids, n, b.rope, b.dec);
}

template <class Family>
std::vector<std::vector<std::int32_t>> token_concat_generate_batch(const Family& m, std::span<const BatchRequest> requests,
                                                                   GenerationStats* stats) {
    using clock = std::chrono::steady_clock;
    using Context = TokenConcatContext<Family>;
    const std::size_t n = requests.size(), vocab = m.decoder().vocab();
    std::vector<Context> ctxs;
    std::vector<Sampler> samplers;
    ctxs.reserve(n), samplers.reserve(n);
    std::vector<std::vector<std::int32_t>> out(n);
    std::vector<std::size_t> active;
    std::vector<std::int32_t> tokens;
    const auto t0 = clock::now();
    for (std::size_t i = 0; i < n; ++i) {  // as Context::generate: prefill, then the first token
        const BatchRequest& q = requests[i];
        ctxs.emplace_back(m, q.ids.size() + q.options.max_new_tokens);
        samplers.emplace_back(q.options, q.ids, vocab);
        const auto l = ctxs[i].prefill(q.ids, q.images, q.grids);
        std::vector<float> logits(l.begin(), l.end());
        const std::int32_t t = samplers[i].next(logits);
        samplers[i].accept(t);
        out[i].push_back(t);
        if (!samplers[i].done(t) && ctxs[i].room()) active.push_back(i), tokens.push_back(t);
    }
    const auto t1 = clock::now();
    typename Context::Batch batch;
    std::vector<Context*> rows;
    generate_rows(
        std::span<Sampler>(samplers), out, std::move(active), std::move(tokens), vocab,
        [&](std::span<const std::size_t> act, std::span<const std::int32_t> ids) {
            rows.clear();
            for (std::size_t i : act) rows.push_back(&ctxs[i]);
            return Context::step_rows(rows.data(), ids.data(), act.size(), batch);
        },
        [&](std::size_t i) { return ctxs[i].room(); });
    if (stats) {
        stats->prefill_seconds += std::chrono::duration<double>(t1 - t0).count();
        stats->decode_seconds += std::chrono::duration<double>(clock::now() - t1).count();
        for (std::size_t i = 0; i < n; ++i) stats->prompt_tokens += requests[i].ids.size(), stats->generated_tokens += out[i].size();
    }
    return out;
}

DOCVLM_NAMESPACE_END
