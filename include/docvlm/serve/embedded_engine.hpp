// docvlm/serve/embedded_engine.hpp — EmbeddedChatEngine: docvlm's embedded model (or another
// line-reading GatedVlmModel) behind MinerU2.5's task prompts, so MinerU's two-step client works
// against it end to end:
//   "\nLayout Detection:"    → the segmenter's blocks in MinerU's layout grammar
//                             (<|box_start|>x0 y0 x1 y1<|box_end|><|ref_start|>type<|ref_end|><|rotate_up|>,
//                             coordinates 0..1000 of the image, one block per line, reading order)
//   "\nText Recognition:", "\nImage Analysis:"  → the crop's text (EmbeddedPageParser::recognise, text)
//   "\nTable Recognition:"   → the table as <table> HTML (MinerU's client keeps HTML as it is)
//   "\nFormula Recognition:" → the formula's LaTeX
//   MinerU's cross-page table merge (text only: "Please merge the next two tables." with the
//                             boundary rows) → a JSON list of 0/1 by rule (cross_page_merge_answer)
// Any other prompt, or an image prompt without exactly one image, is refused (400): the model
// knows only these tasks. Requests run on `workers` threads; the kernels inside share the
// process's thread pool.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/pipeline/embedded_parser.hpp>
#include <docvlm/pipeline/layout.hpp>
#include <docvlm/pipeline/mineru.hpp>
#include <docvlm/pipeline/mineru_cross_page.hpp>
#include <docvlm/serve/chat_engine.hpp>

#include <cmath>
#include <cstdio>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace serve {

using pipeline::cross_page_merge_answer;
using pipeline::parse_python_rows;

struct EmbeddedEngineOptions {
    std::size_t workers = 2;        ///< requests answered at once
    std::size_t max_queue = 1024;   ///< requests waiting beyond that get 429
    pipeline::EmbeddedParserOptions parse;
};

/// The task a MinerU prompt asks for ("layout", "text", "table", "formula"), or "" for another prompt.
std::string_view mineru_task_of(std::string_view prompt);

/// A page layout in MinerU2.5's layout grammar (boxes scaled to 0..1000 of width × height).
std::string layout_grammar(const pipeline::PageLayout& layout);

template <class M>
class EmbeddedChatEngine final : public ChatEngine {
public:
    EmbeddedChatEngine(const M& model, std::string model_id, EmbeddedEngineOptions opt = {});
    ~EmbeddedChatEngine() override { drain(); }

    const std::string& model_id() const override { return id_; }
    std::shared_ptr<ChatJob> submit(const ChatRequest& request, std::vector<io::Image> images) override;
    pipeline::Document parse_page(const io::Image& page, const ParseProgress& progress) override;
    void check_cross_page_tables(std::vector<pipeline::Document>& pages) override;
    void drain() override;

private:
    struct Task {
        std::shared_ptr<ChatJob> job;
        std::string task;
        io::Image image;
        std::size_t max_tokens = 0;  // bytes of output (the model's tokens are bytes); 0: no limit
    };
    void work();
    ChatResult answer(const Task& t) const;

    const M* model_;
    std::string id_;
    EmbeddedEngineOptions opt_;
    pipeline::EmbeddedPageParser<M> parser_;
    AdmissionQueue<Task> queue_;
    std::vector<std::thread> workers_;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline std::string_view mineru_task_of(std::string_view prompt) {
    using pipeline::Task, pipeline::mineru_prompt, pipeline::py::strip;
    prompt = strip(prompt);
    if (prompt == strip(mineru_prompt(Task::layout))) return "layout";
    if (prompt == strip(mineru_prompt(Task::text)) || prompt == strip(mineru_prompt(Task::image))) return "text";
    if (prompt == strip(mineru_prompt(Task::table))) return "table";
    if (prompt == strip(mineru_prompt(Task::formula))) return "formula";
    return "";
}

inline std::string layout_grammar(const pipeline::PageLayout& layout) {
    std::string out;
    auto scale = [](double v, int size) { return std::clamp(int(std::lround(v / std::max(size, 1) * 1000.0)), 0, 1000); };
    for (const auto& r : layout.regions) {
        const auto& b = r.block;
        const int x0 = scale(b.x0, layout.width), y0 = scale(b.y0, layout.height);
        const int x1 = scale(b.x1, layout.width), y1 = scale(b.y1, layout.height);
        if (x0 == x1 || y0 == y1) continue;  // MinerU's client drops zero-area boxes
        char box[64];
        std::snprintf(box, sizeof box, "%03d %03d %03d %03d", x0, y0, x1, y1);
        if (!out.empty()) out += '\n';
        out += "<|box_start|>" + std::string(box) + "<|box_end|><|ref_start|>" + b.type + "<|ref_end|><|rotate_up|>";
    }
    return out;
}

template <class M>
EmbeddedChatEngine<M>::EmbeddedChatEngine(const M& model, std::string id, EmbeddedEngineOptions opt)
    : model_(&model), id_(std::move(id)), opt_(std::move(opt)), parser_(model, opt_.parse), queue_(opt_.max_queue) {
    for (std::size_t i = 0; i < std::max<std::size_t>(1, opt_.workers); ++i) workers_.emplace_back([this] { work(); });
}

template <class M>
std::shared_ptr<ChatJob> EmbeddedChatEngine<M>::submit(const ChatRequest& request, std::vector<io::Image> images) {
    const std::string prompt = request.last_user_text();
    Task t;
    if (images.empty())
        if (auto merge = cross_page_merge_answer(prompt)) {  // answered at once, by rule
            auto job = std::make_shared<ChatJob>();
            job->emit(*merge);
            job->finish({*merge, "stop", 0, merge->size()});
            return job;
        }
    t.task = std::string(mineru_task_of(prompt));
    if (t.task.empty())
        reject(400, "unsupported_prompt", "the embedded model answers MinerU2.5's task prompts only (\"\\nText Recognition:\", "
               "\"\\nTable Recognition:\", \"\\nFormula Recognition:\", \"\\nImage Analysis:\", \"\\nLayout Detection:\"); load a "
               "model that follows free instructions for other prompts");
    if (images.size() != 1) reject(400, "unsupported_prompt", "the embedded model needs exactly one image per request; this one has ", images.size());
    t.image = std::move(images[0]);
    t.max_tokens = request.max_tokens.value_or(0);
    t.job = std::make_shared<ChatJob>();
    auto job = t.job;
    queue_.push(std::move(t));
    return job;
}

template <class M>
ChatResult EmbeddedChatEngine<M>::answer(const Task& t) const {
    ChatResult r;
    // The answer is sent whole: the parser's streamed pieces are not always its final text (a
    // table's cells are read before its structure).
    r.text = t.task == "layout" ? layout_grammar(pipeline::segment_page(t.image, opt_.parse.layout)) : parser_.recognise(t.image, t.task);
    r.completion_tokens = r.text.size();  // the model's tokens are bytes
    if (t.max_tokens && r.text.size() > t.max_tokens) {
        std::size_t cut = t.max_tokens;
        while (cut > 0 && (std::uint8_t(r.text[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
        r.text.resize(cut);
        r.completion_tokens = t.max_tokens;
        r.finish_reason = "length";
    }
    t.job->emit(r.text);
    return r;
}

template <class M>
void EmbeddedChatEngine<M>::work() {
    for (;;) {
        std::vector<Task> next = queue_.take(1, true);
        if (next.empty()) return;  // drained
        Task& t = next[0];
        try {
            t.job->finish(answer(t));
        } catch (...) {
            t.job->fail(std::current_exception());
        }
    }
}

template <class M>
pipeline::Document EmbeddedChatEngine<M>::parse_page(const io::Image& page, const ParseProgress& progress) {
    pipeline::EmbeddedParserOptions o = opt_.parse;
    o.progress = progress;
    const pipeline::EmbeddedPageParser<M> parser(*model_, o);
    return parser.parse(page);
}

template <class M>
void EmbeddedChatEngine<M>::check_cross_page_tables(std::vector<pipeline::Document>& pages) {
    const pipeline::EmbeddedPageParser<M> parser(*model_, opt_.parse);
    parser.check_cross_page_tables(pages);
}

template <class M>
void EmbeddedChatEngine<M>::drain() {
    queue_.close();
    for (auto& w : workers_)
        if (w.joinable()) w.join();
}

}  // namespace serve
DOCVLM_NAMESPACE_END
