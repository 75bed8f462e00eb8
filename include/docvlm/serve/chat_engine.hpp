// docvlm/serve/chat_engine.hpp — what the server asks of a model: answer a conversation
// (streaming its text) and parse a page. A ChatJob carries one answer from the engine's thread
// to the HTTP thread that waits for it; either side may end it early (an error, a client gone).
//
// Engines: QwenChatEngine (Qwen2-VL family, MinerU2.5: continuous batching, qwen_engine.hpp) and
// EmbeddedChatEngine (docvlm's embedded model behind MinerU's task prompts, embedded_engine.hpp).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/pipeline/document.hpp>
#include <docvlm/serve/openai_api.hpp>

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace serve {

/// One answer in progress. The engine appends text (emit) and ends it (finish / fail); the
/// client reads the text as it comes (next) or waits for the end (wait), and may cancel.
class ChatJob {
public:
    // --- the engine's side
    void emit(std::string_view text);
    void finish(ChatResult result);
    void fail(std::exception_ptr error);
    bool cancelled() const;

    // --- the client's side
    /// Blocks until there is new text (appended to `out`; true) or the job has ended (false; the
    /// result is then ready, or wait() rethrows the engine's error).
    bool next(std::string& out);
    /// Blocks until the end; returns the result or rethrows the engine's error.
    ChatResult wait();
    /// The client is gone: the engine stops at its next token.
    void cancel();

private:
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::string unread_;
    bool done_ = false, cancelled_ = false;
    ChatResult result_;
    std::exception_ptr error_;
};

/// The requests an engine has accepted and not started: bounded (429 beyond `capacity`), closed
/// by drain() (503 afterwards), first in first out.
template <class T>
class AdmissionQueue {
public:
    explicit AdmissionQueue(std::size_t capacity) : capacity_(capacity) {}
    /// Queues `item`; ApiError 503 once closed, 429 when `capacity` items are waiting.
    void push(T item);
    /// Up to `n` items in arrival order. With `wait`, blocks until there is one or the queue is
    /// closed; an empty result then means closed and empty (the consumer's end).
    std::vector<T> take(std::size_t n, bool wait);
    /// Refuses new items; those queued are still taken.
    void close();

private:
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<T> items_;
    std::size_t capacity_;
    bool closed_ = false;
};

/// Progress of a page parse: phase ("layout", "content"), items done, items in total.
using ParseProgress = std::function<void(std::string_view phase, std::size_t done, std::size_t total)>;

class ChatEngine {
public:
    virtual ~ChatEngine() = default;
    /// The one model this engine serves (GET /v1/models).
    virtual const std::string& model_id() const = 0;
    /// Starts answering `request`, whose image parts are `images` (decoded, RGB, in order).
    /// Throws ApiError for a request the model cannot answer.
    virtual std::shared_ptr<ChatJob> submit(const ChatRequest& request, std::vector<io::Image> images) = 0;
    /// Parses one page image (POST /v1/parse).
    virtual pipeline::Document parse_page(const io::Image& page, const ParseProgress& progress) = 0;
    /// The MinerU client's cross-page table check over a document's parsed pages (POST /v1/parse
    /// with cross_page_tables): Block::cell_merge on tables that continue the previous page's.
    virtual void check_cross_page_tables(std::vector<pipeline::Document>& pages) = 0;
    /// Finishes the jobs already submitted, refuses new ones (ApiError 503), then returns.
    virtual void drain() = 0;
};

/// The Qwen2-VL / MinerU2.5 chat template: a default system message unless the first is one,
/// each message as <|im_start|>ROLE\n ... <|im_end|>\n, an image as <|vision_start|> then
/// <|image_pad|> × image_tokens[i] <|vision_end|>, and the assistant's turn opened.
std::string qwen2vl_chat_text(const std::vector<ChatMessage>& messages, const std::vector<std::size_t>& image_tokens);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

template <class T>
void AdmissionQueue<T>::push(T item) {
    {
        std::lock_guard lock(mutex_);
        if (closed_) reject(503, "shutting_down", "the server is shutting down");
        if (items_.size() >= capacity_) reject(429, "queue_full", items_.size(), " requests are waiting; try again later");
        items_.push_back(std::move(item));
    }
    ready_.notify_one();
}

template <class T>
std::vector<T> AdmissionQueue<T>::take(std::size_t n, bool wait) {
    std::unique_lock lock(mutex_);
    if (wait) ready_.wait(lock, [&] { return closed_ || !items_.empty(); });
    std::vector<T> out;
    while (!items_.empty() && out.size() < n) {
        out.push_back(std::move(items_.front()));
        items_.pop_front();
    }
    return out;
}

template <class T>
void AdmissionQueue<T>::close() {
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
    }
    ready_.notify_all();
}

inline void ChatJob::emit(std::string_view text) {
    if (text.empty()) return;
    std::lock_guard lock(mutex_);
    unread_ += text;
    changed_.notify_all();
}

inline void ChatJob::finish(ChatResult result) {
    std::lock_guard lock(mutex_);
    if (done_) return;
    result_ = std::move(result);
    done_ = true;
    changed_.notify_all();
}

inline void ChatJob::fail(std::exception_ptr error) {
    std::lock_guard lock(mutex_);
    if (done_) return;
    error_ = std::move(error);
    done_ = true;
    changed_.notify_all();
}

inline bool ChatJob::cancelled() const {
    std::lock_guard lock(mutex_);
    return cancelled_;
}

inline bool ChatJob::next(std::string& out) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return done_ || !unread_.empty(); });
    if (!unread_.empty()) {
        out += unread_;
        unread_.clear();
        return true;
    }
    return false;
}

inline ChatResult ChatJob::wait() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return done_; });
    if (error_) std::rethrow_exception(error_);
    return result_;
}

inline void ChatJob::cancel() {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
}

inline std::string qwen2vl_chat_text(const std::vector<ChatMessage>& messages, const std::vector<std::size_t>& image_tokens) {
    std::string s;
    std::size_t image = 0;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        const ChatMessage& m = messages[i];
        if (i == 0 && m.role != "system") s += "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n";
        s += "<|im_start|>" + m.role + "\n";
        for (const ChatPart& p : m.parts) {
            if (!p.is_image) {
                s += p.text;
                continue;
            }
            if (image >= image_tokens.size()) docvlm::detail::fail("qwen2vl_chat_text: more images than image token counts");
            s += "<|vision_start|>";
            for (std::size_t k = 0; k < image_tokens[image]; ++k) s += "<|image_pad|>";
            s += "<|vision_end|>";
            ++image;
        }
        s += "<|im_end|>\n";
    }
    return s + "<|im_start|>assistant\n";
}

}  // namespace serve
DOCVLM_NAMESPACE_END
