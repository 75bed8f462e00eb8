// docvlm/serve/qwen_engine.hpp — QwenChatEngine: a Qwen2-VL-family model (MinerU2.5, Qwen2-VL)
// answering conversations with continuous batching.
//
// One scheduler thread owns the model's decoding. Each turn it admits waiting requests (up to
// max_batch running at once: vision features from the cache or the encoder, then the prompt's
// prefill and first token), then steps every running sequence one token together
// (TokenConcatContext::step_rows: each weight matrix read once for all of them), streams each
// new piece of text to its ChatJob and retires finished sequences, whose places the next turn
// refills. A sequence's tokens are exactly what Context::generate gives for it alone.
//
// Stop rules: <|im_end|> or <|endoftext|> ends an answer (not part of its text; finish_reason
// "stop"); max_tokens (default: the rest of the context, capped by Options::max_new_tokens) or a
// full context ends it with "length".
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/io/image_processor.hpp>
#include <docvlm/io/tokenizer.hpp>
#include <docvlm/model/generation.hpp>
#include <docvlm/pipeline/page_parser.hpp>
#include <docvlm/serve/chat_engine.hpp>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace serve {

struct QwenEngineOptions {
    std::size_t max_batch = 16;        ///< sequences decoded together
    std::size_t max_queue = 1024;      ///< requests waiting beyond that get 429
    std::size_t max_new_tokens = 16384;  ///< cap of an answer whose request sets no max_tokens
    pipeline::PageParserOptions parse;  ///< for POST /v1/parse
};

template <class M>
class QwenChatEngine final : public ChatEngine {
    using Context = typename M::Context;

public:
    QwenChatEngine(const M& model, const io::Tokenizer& tokenizer, std::string model_id, QwenEngineOptions opt = {});
    ~QwenChatEngine() override { drain(); }

    const std::string& model_id() const override { return id_; }
    std::shared_ptr<ChatJob> submit(const ChatRequest& request, std::vector<io::Image> images) override;
    pipeline::Document parse_page(const io::Image& page, const ParseProgress& progress) override;
    void check_cross_page_tables(std::vector<pipeline::Document>& pages) override;
    void drain() override;
    /// Vision features reused so far (a retried or repeated image skips the encoder).
    std::size_t vision_cache_hits() const { return cache_.hits(); }

private:
    // A request waiting for the scheduler: its prompt ids and preprocessed images.
    struct Pending {
        std::shared_ptr<ChatJob> job;
        std::vector<std::int32_t> ids;
        std::vector<io::PixelValues> pixels;
        std::vector<std::uint64_t> keys;  // VisionCache keys of the images
        GenerationOptions opt;
        bool skip_special = true;
    };
    // A sequence being decoded (owned by the scheduler thread).
    struct Running {
        std::shared_ptr<ChatJob> job;
        std::unique_ptr<Context> ctx;
        std::unique_ptr<Sampler> sampler;
        io::Tokenizer::StreamDecoder text;
        std::string all;
        std::size_t prompt_tokens = 0, generated = 0, max_new = 0;
        std::int32_t next = 0;
    };

    void loop();
    // Vision, prefill and first token of a request; a Running entry if it goes on.
    void start(Pending& p);
    // Takes the sequence's chosen token; false when the sequence has ended (its job finished).
    bool take(Running& r, std::int32_t token);
    void end(Running& r, const char* reason);
    std::shared_ptr<const Tensor<float, 2>> vision(const io::PixelValues& px, std::uint64_t key);

    const M* model_;
    const io::Tokenizer* tok_;
    std::string id_;
    QwenEngineOptions opt_;
    std::vector<std::int32_t> stop_;
    pipeline::VisionCache cache_{32};

    AdmissionQueue<Pending> pending_;
    std::vector<Running> running_;  // scheduler thread only
    std::thread thread_;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

template <class M>
QwenChatEngine<M>::QwenChatEngine(const M& model, const io::Tokenizer& tok, std::string id, QwenEngineOptions opt)
    : model_(&model), tok_(&tok), id_(std::move(id)), opt_(std::move(opt)), pending_(opt_.max_queue) {
    stop_ = {model.dims().eos_token_id};
    if (auto e = tok.token_id("<|endoftext|>"); e && *e != stop_[0]) stop_.push_back(*e);
    if (auto e = tok.token_id("<|im_end|>"); e && std::find(stop_.begin(), stop_.end(), *e) == stop_.end()) stop_.push_back(*e);
    thread_ = std::thread([this] { loop(); });
}

template <class M>
std::shared_ptr<ChatJob> QwenChatEngine<M>::submit(const ChatRequest& request, std::vector<io::Image> images) {
    const auto& ic = model_->image_config();
    Pending p;
    std::vector<std::size_t> counts;
    for (const io::Image& img : images) {
        p.pixels.push_back(io::preprocess_qwen2vl(img, ic));
        const io::PixelValues& px = p.pixels.back();
        counts.push_back(std::size_t(px.grid_t * px.grid_h * px.grid_w) / (ic.merge_size * ic.merge_size));
        p.keys.push_back(pipeline::VisionCache::key(img, ic));
    }
    p.ids = tok_->encode(qwen2vl_chat_text(request.messages, counts));
    const std::size_t limit = model_->dims().max_positions;
    if (p.ids.size() + 1 > limit)
        reject(400, "context_length_exceeded", "the prompt has ", p.ids.size(), " tokens; the model's context holds ", limit);
    p.opt = generation_options(request);
    const std::size_t room = limit - p.ids.size();
    p.opt.max_new_tokens = std::min(room, request.max_tokens.value_or(std::min(room, opt_.max_new_tokens)));
    p.skip_special = request.skip_special_tokens;
    p.job = std::make_shared<ChatJob>();
    auto job = p.job;
    pending_.push(std::move(p));
    return job;
}

template <class M>
pipeline::Document QwenChatEngine<M>::parse_page(const io::Image& page, const ParseProgress& progress) {
    pipeline::PageParserOptions o = opt_.parse;
    o.progress = progress;
    const pipeline::MinerUPageParser<M> parser(*model_, *tok_, o);
    return parser.parse(page);
}

template <class M>
void QwenChatEngine<M>::check_cross_page_tables(std::vector<pipeline::Document>& pages) {
    const pipeline::MinerUPageParser<M> parser(*model_, *tok_, opt_.parse);
    parser.check_cross_page_tables(pages);
}

template <class M>
void QwenChatEngine<M>::drain() {
    pending_.close();
    if (thread_.joinable()) thread_.join();
}

template <class M>
std::shared_ptr<const Tensor<float, 2>> QwenChatEngine<M>::vision(const io::PixelValues& px, std::uint64_t key) {
    if (auto hit = cache_.find(key)) return hit;
    auto v = std::make_shared<const Tensor<float, 2>>(model_->encode_image(px));
    cache_.insert(key, v);
    return v;
}

template <class M>
void QwenChatEngine<M>::end(Running& r, const char* reason) {
    r.all += r.text.finish();
    ChatResult res;
    res.text = r.all;
    res.finish_reason = reason;
    res.prompt_tokens = r.prompt_tokens;
    res.completion_tokens = r.generated;
    r.job->finish(std::move(res));
}

template <class M>
bool QwenChatEngine<M>::take(Running& r, std::int32_t t) {
    r.sampler->accept(t);
    if (std::find(stop_.begin(), stop_.end(), t) != stop_.end()) return end(r, "stop"), false;
    ++r.generated;
    if (t >= 0 && std::size_t(t) < tok_->size()) {  // a model's vocabulary may be larger than its tokenizer
        const std::string piece = r.text.push(t);
        r.all += piece;
        r.job->emit(piece);
    }
    if (r.generated >= r.max_new || !r.ctx->room()) return end(r, "length"), false;
    if (r.job->cancelled()) return end(r, "stop"), false;
    r.next = t;
    return true;
}

template <class M>
void QwenChatEngine<M>::start(Pending& p) {
    std::vector<std::shared_ptr<const Tensor<float, 2>>> cached;
    std::vector<ImageGrid> grids;
    for (std::size_t i = 0; i < p.pixels.size(); ++i) {
        cached.push_back(vision(p.pixels[i], p.keys[i]));
        grids.push_back({p.pixels[i].grid_t, p.pixels[i].grid_h, p.pixels[i].grid_w});
    }
    // prefill reads the images as one array: one image is passed as it is cached, several are copied
    std::vector<Tensor<float, 2>> copies;
    if (cached.size() > 1)
        for (const auto& c : cached) copies.push_back(*c);
    const std::span<const Tensor<float, 2>> feats = cached.size() == 1 ? std::span<const Tensor<float, 2>>(cached[0].get(), 1)
                                                                       : std::span<const Tensor<float, 2>>(copies);
    Running r{.job = p.job,
              .ctx = std::make_unique<Context>(*model_, p.ids.size() + p.opt.max_new_tokens),
              .sampler = std::make_unique<Sampler>(p.opt, p.ids, model_->decoder().vocab()),
              .text = io::Tokenizer::StreamDecoder(*tok_, p.skip_special),
              .all = {},
              .prompt_tokens = p.ids.size(),
              .generated = 0,
              .max_new = p.opt.max_new_tokens,
              .next = 0};
    const auto l = r.ctx->prefill(p.ids, feats, grids);
    std::vector<float> logits(l.begin(), l.end());
    if (take(r, r.sampler->next(logits))) running_.push_back(std::move(r));
}

template <class M>
void QwenChatEngine<M>::loop() {
    typename Context::Batch batch;
    std::vector<Context*> rows;
    std::vector<std::int32_t> tokens;
    const std::size_t vocab = model_->decoder().vocab();
    for (;;) {
        // new requests fill the free places; with nothing running, wait for one
        const std::size_t cap = std::max<std::size_t>(1, opt_.max_batch);
        std::vector<Pending> admit = pending_.take(running_.size() < cap ? cap - running_.size() : 0, running_.empty());
        if (admit.empty() && running_.empty()) return;  // drained
        for (Pending& p : admit) {
            try {
                start(p);
            } catch (...) {
                p.job->fail(std::current_exception());
            }
        }
        if (running_.empty()) continue;
        rows.clear(), tokens.clear();
        for (Running& r : running_) rows.push_back(r.ctx.get()), tokens.push_back(r.next);
        try {
            const std::span<float> logits = Context::step_rows(rows.data(), tokens.data(), rows.size(), batch);
            std::size_t kept = 0;  // finished sequences leave; the others close up in order
            for (std::size_t i = 0; i < running_.size(); ++i)
                if (take(running_[i], running_[i].sampler->next(logits.subspan(i * vocab, vocab))) && kept++ != i)
                    running_[kept - 1] = std::move(running_[i]);
            running_.erase(running_.begin() + std::ptrdiff_t(kept), running_.end());
        } catch (...) {  // a step failed (out of memory, non-finite logits): every sequence in it ends with the error
            for (Running& r : running_) r.job->fail(std::current_exception());
            running_.clear();
        }
    }
}

}  // namespace serve
DOCVLM_NAMESPACE_END
