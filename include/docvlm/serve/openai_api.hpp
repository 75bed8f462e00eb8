// docvlm/serve/openai_api.hpp — the OpenAI chat-completions contract as docvlm's server speaks
// it: request bodies decoded and checked (bytes → ChatRequest), answers and errors encoded
// (ChatResult → JSON). No sockets here: every function is pure, so the fuzzer and the tests drive
// it directly.
//
// Accepted (what OpenAI's SDK, vLLM's clients and MinerU's client send):
//   model, messages [{role: system|user|assistant, content: "text" | [{type: "text", text},
//   {type: "image_url", image_url: {url: "data:image/...;base64,..."} | "data:..."}]}],
//   temperature, top_p, top_k, presence_penalty, frequency_penalty, repetition_penalty, seed,
//   max_tokens | max_completion_tokens, stream, stream_options.include_usage,
//   skip_special_tokens, vllm_xargs.no_repeat_ngram_size, priority (ignored), n (= 1 only).
// Other fields are ignored, as OpenAI-compatible servers do. Images come only as data: URLs (the
// server reaches no network). Every violation is an ApiError naming the field.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/model/generation.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace serve {

/// A failure the HTTP client is told about: status (400, 401, 404, 413, 415, 429, 503, 500), a
/// short machine-readable code and a message naming what is wrong.
class ApiError : public Error {
public:
    ApiError(int status, std::string code, const std::string& message) : Error(message), status_(status), code_(std::move(code)) {}
    int status() const { return status_; }
    const std::string& code() const { return code_; }
    /// OpenAI's error type for the status ("invalid_request_error", "authentication_error", ...).
    std::string_view type() const;

private:
    int status_;
    std::string code_;
};

/// Throws ApiError(status, code, concatenated message).
template <class... Args>
[[noreturn]] void reject(int status, std::string code, Args&&... message) {
    throw ApiError(status, std::move(code), detail::concat(std::forward<Args>(message)...));
}

/// Bounds on one request body (the HTTP layer bounds the body's size itself).
struct RequestLimits {
    std::size_t max_messages = 64;
    std::size_t max_images = 8;               ///< per conversation
    std::size_t max_image_bytes = 32u << 20;  ///< decoded bytes of one data URL
    std::size_t max_text_bytes = 1u << 20;    ///< all text parts of a conversation together
    std::size_t max_conversations = 256;      ///< per batch request
    std::size_t max_tokens = 1u << 20;        ///< largest max_tokens accepted
};

/// One part of a message: text, or an image's encoded bytes (PNG, JPEG, ... as sent).
struct ChatPart {
    bool is_image = false;
    std::string text;  ///< the text, or the image's bytes
};

struct ChatMessage {
    std::string role;  ///< system, user or assistant
    std::vector<ChatPart> parts;
};

/// One conversation to answer, with its sampling settings (OpenAI / vLLM defaults where absent).
struct ChatRequest {
    std::string model;
    std::vector<ChatMessage> messages;
    float temperature = 1.0f, top_p = 1.0f;
    std::size_t top_k = 0;  ///< 0: off (vLLM's -1)
    float presence_penalty = 0.0f, frequency_penalty = 0.0f, repetition_penalty = 1.0f;
    std::size_t no_repeat_ngram = 0;       ///< vllm_xargs.no_repeat_ngram_size: over generated tokens only
    std::optional<std::size_t> max_tokens;  ///< absent: the rest of the context
    std::optional<std::uint64_t> seed;
    bool stream = false, include_usage = false;
    bool skip_special_tokens = true;  ///< vLLM's default; MinerU's client sends false

    std::size_t image_count() const;
    /// The user's last text (its parts joined), which selects a task for task models.
    std::string last_user_text() const;
};

/// Standard base64 (padding optional, no whitespace inside); throws ApiError 400 otherwise.
std::string base64_decode(std::string_view text);
/// The bytes of a "data:<type>;base64,<data>" URL; http(s) URLs and other schemes are refused.
std::string data_url_bytes(std::string_view url, const RequestLimits& limits = {});

/// Decodes POST /v1/chat/completions.
ChatRequest parse_chat_request(std::string_view body, const RequestLimits& limits = {});
/// Decodes POST /v1/chat/completions/batch: the fields of one request, but `messages` is a list
/// of conversations; each becomes a ChatRequest with the shared settings.
std::vector<ChatRequest> parse_batch_request(std::string_view body, const RequestLimits& limits = {});

/// The sampler's settings for a request (max_new_tokens and stop tokens are the engine's).
GenerationOptions generation_options(const ChatRequest& request);

/// What an engine answered.
struct ChatResult {
    std::string text;
    std::string finish_reason = "stop";  ///< "stop", or "length" when max_tokens or the context ran out
    std::size_t prompt_tokens = 0, completion_tokens = 0;
};

/// {"error": {"message", "type", "code", "param": null}}
nlohmann::json error_body(const ApiError& e);
/// The usage object.
nlohmann::json usage_json(std::size_t prompt_tokens, std::size_t completion_tokens);
/// A chat.completion object with one choice per result (choices[i].index = i).
nlohmann::json completion_body(std::string_view id, std::string_view model, std::int64_t created, const std::vector<ChatResult>& results);
/// A chat.completion.chunk carrying `delta` (and finish_reason when given).
nlohmann::json chunk_body(std::string_view id, std::string_view model, std::int64_t created, const nlohmann::json& delta,
                          std::optional<std::string_view> finish_reason);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline std::string_view ApiError::type() const {
    switch (status_) {
        case 401: return "authentication_error";
        case 404: return "not_found_error";
        case 413: return "request_too_large";
        case 415: return "unsupported_media_type";
        case 429: return "rate_limit_error";
        case 503: return "service_unavailable";
        default: return status_ >= 500 ? "server_error" : "invalid_request_error";
    }
}

inline std::size_t ChatRequest::image_count() const {
    std::size_t n = 0;
    for (const auto& m : messages)
        for (const auto& p : m.parts) n += p.is_image;
    return n;
}

inline std::string ChatRequest::last_user_text() const {
    for (auto m = messages.rbegin(); m != messages.rend(); ++m) {
        if (m->role != "user") continue;
        std::string s;
        for (const auto& p : m->parts)
            if (!p.is_image) s += p.text;
        return s;
    }
    return {};
}

inline std::string base64_decode(std::string_view t) {
    static constexpr auto table = [] {
        std::array<std::int8_t, 256> a{};
        a.fill(-1);
        const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (int i = 0; i < 64; ++i) a[std::size_t(std::uint8_t(alphabet[i]))] = std::int8_t(i);
        return a;
    }();
    while (!t.empty() && t.back() == '=') t.remove_suffix(1);
    if (t.size() % 4 == 1) reject(400, "invalid_base64", "base64 data has an impossible length (", t.size(), " characters)");
    std::string out;
    out.reserve(t.size() / 4 * 3 + 2);
    std::uint32_t acc = 0;
    int bits = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
        const std::int8_t v = table[std::uint8_t(t[i])];
        if (v < 0) reject(400, "invalid_base64", "base64 data holds an invalid character at offset ", i);
        acc = acc << 6 | std::uint32_t(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += char(std::uint8_t(acc >> bits));
        }
    }
    return out;
}

inline std::string data_url_bytes(std::string_view url, const RequestLimits& limits) {
    if (!url.starts_with("data:")) {
        const std::size_t colon = url.find(':');
        reject(400, "unsupported_image_url", "image_url must be a data: URL (this server fetches nothing from the network); got ",
               colon == std::string_view::npos || colon > 16 ? std::string("a relative or malformed URL")
                                                            : "a " + std::string(url.substr(0, colon)) + ": URL");
    }
    const std::size_t comma = url.find(',');
    if (comma == std::string_view::npos) reject(400, "invalid_image_url", "data: URL without a ',' before its data");
    const std::string_view header = url.substr(5, comma - 5);
    if (!header.ends_with(";base64")) reject(400, "invalid_image_url", "data: URL is not base64-encoded (expected ';base64,')");
    const std::string_view data = url.substr(comma + 1);
    if (data.size() / 4 * 3 > limits.max_image_bytes)
        reject(413, "image_too_large", "an image of about ", data.size() / 4 * 3, " bytes is above the limit of ", limits.max_image_bytes);
    return base64_decode(data);
}

namespace detail {

inline const nlohmann::json* field(const nlohmann::json& j, const char* name) {
    const auto it = j.find(name);
    return it == j.end() || it->is_null() ? nullptr : &*it;
}

inline double number_field(const nlohmann::json& j, const char* name, double fallback, double lo, double hi) {
    const nlohmann::json* v = field(j, name);
    if (!v) return fallback;
    if (!v->is_number()) reject(400, "invalid_field", "'", name, "' must be a number");
    const double x = v->get<double>();
    if (!(x >= lo && x <= hi)) reject(400, "invalid_field", "'", name, "' = ", x, " is outside [", lo, ", ", hi, "]");
    return x;
}

inline bool bool_field(const nlohmann::json& j, const char* name, bool fallback) {
    const nlohmann::json* v = field(j, name);
    if (!v) return fallback;
    if (!v->is_boolean()) reject(400, "invalid_field", "'", name, "' must be true or false");
    return v->get<bool>();
}

inline ChatMessage parse_message(const nlohmann::json& m, const RequestLimits& limits, std::size_t& images, std::size_t& text_bytes) {
    if (!m.is_object()) reject(400, "invalid_messages", "each message must be an object");
    const nlohmann::json* role = field(m, "role");
    if (!role || !role->is_string()) reject(400, "invalid_messages", "a message has no 'role' string");
    ChatMessage out{role->get<std::string>(), {}};
    if (out.role != "system" && out.role != "user" && out.role != "assistant")
        reject(400, "invalid_messages", "message role '", out.role, "' is not system, user or assistant");
    auto add_text = [&](const nlohmann::json& t) {
        if (!t.is_string()) reject(400, "invalid_messages", "a text part must be a string");
        text_bytes += t.get_ref<const std::string&>().size();
        if (text_bytes > limits.max_text_bytes) reject(413, "text_too_large", "the messages' text is above the limit of ", limits.max_text_bytes, " bytes");
        out.parts.push_back({false, t.get<std::string>()});
    };
    const nlohmann::json* content = field(m, "content");
    if (!content) reject(400, "invalid_messages", "a ", out.role, " message has no 'content'");
    if (content->is_string()) {
        add_text(*content);
        return out;
    }
    if (!content->is_array()) reject(400, "invalid_messages", "'content' must be a string or a list of parts");
    for (const auto& part : *content) {
        const nlohmann::json* type = part.is_object() ? field(part, "type") : nullptr;
        if (!type || !type->is_string()) reject(400, "invalid_messages", "a content part has no 'type' string");
        const std::string& t = type->get_ref<const std::string&>();
        if (t == "text") {
            const nlohmann::json* text = field(part, "text");
            if (!text) reject(400, "invalid_messages", "a text part has no 'text'");
            add_text(*text);
        } else if (t == "image_url") {
            if (out.role != "user") reject(400, "invalid_messages", "images are accepted in user messages only");
            const nlohmann::json* iu = field(part, "image_url");
            const nlohmann::json* url = iu && iu->is_object() ? field(*iu, "url") : iu;
            if (!url || !url->is_string()) reject(400, "invalid_messages", "an image_url part has no 'url' string");
            if (++images > limits.max_images) reject(400, "too_many_images", "more than ", limits.max_images, " images in one conversation");
            out.parts.push_back({true, data_url_bytes(url->get_ref<const std::string&>(), limits)});
        } else {
            reject(400, "invalid_messages", "content part type '", t, "' is not supported (text and image_url are)");
        }
    }
    return out;
}

inline std::vector<ChatMessage> parse_conversation(const nlohmann::json& list, const RequestLimits& limits) {
    if (!list.is_array() || list.empty()) reject(400, "invalid_messages", "'messages' must be a non-empty list");
    if (list.size() > limits.max_messages) reject(400, "invalid_messages", list.size(), " messages, above the limit of ", limits.max_messages);
    std::vector<ChatMessage> out;
    std::size_t images = 0, text_bytes = 0;
    for (const auto& m : list) out.push_back(parse_message(m, limits, images, text_bytes));
    if (out.back().role != "user") reject(400, "invalid_messages", "the last message must be the user's");
    return out;
}

// Every field but `messages`.
inline ChatRequest parse_settings(const nlohmann::json& j, const RequestLimits& limits) {
    ChatRequest r;
    if (const auto* m = field(j, "model")) {
        if (!m->is_string()) reject(400, "invalid_field", "'model' must be a string");
        r.model = m->get<std::string>();
    }
    r.temperature = float(number_field(j, "temperature", 1.0, 0.0, 2.0));
    r.top_p = float(number_field(j, "top_p", 1.0, 1e-9, 1.0));
    const double top_k = number_field(j, "top_k", -1, -1, 1e9);
    r.top_k = top_k <= 0 ? 0 : std::size_t(top_k);
    r.presence_penalty = float(number_field(j, "presence_penalty", 0.0, -2.0, 2.0));
    r.frequency_penalty = float(number_field(j, "frequency_penalty", 0.0, -2.0, 2.0));
    r.repetition_penalty = float(number_field(j, "repetition_penalty", 1.0, 1e-3, 100.0));
    if (const auto* n = field(j, "n"); n && !(n->is_number_integer() && n->get<std::int64_t>() == 1))
        reject(400, "invalid_field", "'n' must be 1 (one answer per request)");
    if (bool_field(j, "logprobs", false)) reject(400, "invalid_field", "'logprobs' is not supported");
    if (const auto* s = field(j, "seed")) {
        if (!s->is_number_integer()) reject(400, "invalid_field", "'seed' must be an integer");
        r.seed = s->get<std::uint64_t>();
    }
    for (const char* name : {"max_tokens", "max_completion_tokens"})
        if (field(j, name)) r.max_tokens = std::size_t(number_field(j, name, 0, 1, double(limits.max_tokens)));
    r.stream = bool_field(j, "stream", false);
    if (const auto* so = field(j, "stream_options"); so && so->is_object()) r.include_usage = bool_field(*so, "include_usage", false);
    r.skip_special_tokens = bool_field(j, "skip_special_tokens", true);
    if (const auto* x = field(j, "vllm_xargs")) {
        if (!x->is_object()) reject(400, "invalid_field", "'vllm_xargs' must be an object");
        r.no_repeat_ngram = std::size_t(number_field(*x, "no_repeat_ngram_size", 0, 0, 100000));
    }
    if (const auto* stop = field(j, "stop"); stop && !(stop->is_array() && stop->empty()))
        reject(400, "invalid_field", "'stop' strings are not supported (the model's end tokens stop it)");
    return r;
}

inline nlohmann::json parse_body(std::string_view body) {
    nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded()) reject(400, "invalid_json", "the request body is not valid JSON");
    if (!j.is_object()) reject(400, "invalid_json", "the request body must be a JSON object");
    return j;
}

}  // namespace detail

inline ChatRequest parse_chat_request(std::string_view body, const RequestLimits& limits) {
    const nlohmann::json j = detail::parse_body(body);
    ChatRequest r = detail::parse_settings(j, limits);
    const nlohmann::json* m = detail::field(j, "messages");
    if (!m) reject(400, "invalid_messages", "the request has no 'messages'");
    r.messages = detail::parse_conversation(*m, limits);
    return r;
}

inline std::vector<ChatRequest> parse_batch_request(std::string_view body, const RequestLimits& limits) {
    const nlohmann::json j = detail::parse_body(body);
    const ChatRequest shared = detail::parse_settings(j, limits);
    if (shared.stream) reject(400, "invalid_field", "a batch request cannot stream");
    const nlohmann::json* m = detail::field(j, "messages");
    if (!m || !m->is_array() || m->empty()) reject(400, "invalid_messages", "'messages' must be a non-empty list of conversations");
    if (m->size() > limits.max_conversations)
        reject(400, "invalid_messages", m->size(), " conversations, above the limit of ", limits.max_conversations);
    std::vector<ChatRequest> out;
    for (const auto& conv : *m) {
        out.push_back(shared);
        out.back().messages = detail::parse_conversation(conv, limits);
    }
    return out;
}

inline GenerationOptions generation_options(const ChatRequest& r) {
    GenerationOptions o;
    o.temperature = r.temperature;
    o.top_p = r.top_p;
    o.top_k = r.top_k;
    o.presence_penalty = r.presence_penalty;
    o.frequency_penalty = r.frequency_penalty;
    o.repetition_penalty = r.repetition_penalty;
    o.no_repeat_ngram = r.no_repeat_ngram;
    o.ngram_over_prompt = false;
    o.seed = r.seed.value_or(0);
    return o;
}

inline nlohmann::json error_body(const ApiError& e) {
    return {{"error", {{"message", e.what()}, {"type", e.type()}, {"code", e.code()}, {"param", nullptr}}}};
}

inline nlohmann::json usage_json(std::size_t prompt_tokens, std::size_t completion_tokens) {
    return {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens}, {"total_tokens", prompt_tokens + completion_tokens}};
}

inline nlohmann::json completion_body(std::string_view id, std::string_view model, std::int64_t created, const std::vector<ChatResult>& results) {
    nlohmann::json choices = nlohmann::json::array();
    std::size_t prompt = 0, completion = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
        const ChatResult& r = results[i];
        choices.push_back({{"index", i},
                           {"message", {{"role", "assistant"}, {"content", r.text}}},
                           {"finish_reason", r.finish_reason},
                           {"logprobs", nullptr}});
        prompt += r.prompt_tokens, completion += r.completion_tokens;
    }
    return {{"id", id}, {"object", "chat.completion"}, {"created", created}, {"model", model}, {"choices", choices},
            {"usage", usage_json(prompt, completion)}};
}

inline nlohmann::json chunk_body(std::string_view id, std::string_view model, std::int64_t created, const nlohmann::json& delta,
                                 std::optional<std::string_view> finish_reason) {
    nlohmann::json choice = {{"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", nullptr}};
    if (finish_reason) choice["finish_reason"] = *finish_reason;
    return {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model}, {"choices", {choice}}};
}

}  // namespace serve
DOCVLM_NAMESPACE_END
