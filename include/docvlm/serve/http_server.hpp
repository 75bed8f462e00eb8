// docvlm/serve/http_server.hpp — docvlm's HTTP server (`docvlm serve`): an OpenAI-compatible
// chat API that MinerU's client can use, a document parsing API, and a web page. Built on
// cpp-httplib (Debian libcpp-httplib-dev; link docvlm::server).
//
//   GET  /health                       {"status": "ok", "model": ID}
//   GET  /v1/models                    the one model served
//   POST /v1/chat/completions          OpenAI chat completion (stream: SSE chunks, then [DONE])
//   POST /v1/chat/completions/batch    vLLM's batch route: messages = a list of conversations;
//                                      one answer, choices[i] for conversation i
//   POST /v1/parse                     multipart: file (PNG, JPEG, BMP, TIFF, PDF), format
//                                      (md | json | html), pages ("1-3,7"), cross_page_tables (1:
//                                      tables broken by a page break joined, as MinerU joins
//                                      them), stream (1: SSE
//                                      progress and one event per page, then the result); or
//                                      the file as the body, the fields in the query string
//   GET  /                             the web page (web_page.hpp); GET /assets/...: Debian's
//                                      marked and KaTeX (/usr/share/javascript), when installed
// With an API key every /v1/ route wants "Authorization: Bearer KEY" (401 otherwise). Every
// error is {"error": {"message", "type", "code"}} with its status; 429 and 503 carry Retry-After.
// stop() stops accepting, lets in-flight requests finish, and returns once they have.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/pipeline/mineru_cross_page.hpp>
#include <docvlm/serve/chat_engine.hpp>
#include <docvlm/serve/multipart.hpp>
#include <docvlm/serve/openai_api.hpp>
#include <docvlm/serve/uploads.hpp>
#include <docvlm/serve/web_page.hpp>

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <random>
#include <semaphore>
#include <string>

DOCVLM_NAMESPACE_BEGIN
namespace serve {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8000;                              ///< 0: any free port (see HttpServer::port())
    std::string api_key;                          ///< empty: no authentication
    std::size_t max_body_bytes = 64u << 20;       ///< larger bodies get 413
    std::size_t connection_threads = 128;         ///< connections served at once (MinerU opens up to 100)
    std::size_t parse_jobs = 2;                   ///< documents parsed at once (more wait)
    int keep_alive_seconds = 5;                   ///< an idle connection is closed after this
    RequestLimits request;
    UploadLimits uploads;
    std::string assets_dir = "/usr/share/javascript";  ///< served under /assets (marked, katex)
    /// Called once per answered request: method, path, status.
    std::function<void(const std::string&, const std::string&, int)> log;
};

class HttpServer {
public:
    HttpServer(ChatEngine& engine, ServerOptions opt = {});
    /// Binds the address; throws docvlm::Error when it cannot. Returns the port.
    int bind();
    /// Serves until stop(); returns once every connection has closed (requests in flight
    /// answered, idle keep-alive connections timed out: at most keep_alive_seconds).
    void run();
    /// Stops accepting connections (callable from any thread, not from a signal handler).
    void stop() { server_.stop(); }
    int port() const { return port_; }
    /// Requests read and not yet answered. After stop(), 0 means every accepted request has its
    /// answer: a process may exit then without waiting for idle keep-alive connections.
    std::size_t in_flight() const { return in_flight_.load(); }

private:
    void routes();
    void chat(const httplib::Request& req, httplib::Response& res);
    void chat_batch(const httplib::Request& req, httplib::Response& res);
    void parse(const httplib::Request& req, httplib::Response& res);
    // cross_page_tables: the engine's check, then MinerU's merge, over the document's pages.
    void join_cross_page_tables(std::vector<std::pair<int, pipeline::Document>>& pages);
    // Images of a request decoded (415 / 413 / 400 for bad ones).
    std::vector<io::Image> images_of(const ChatRequest& r) const;
    void check_model(const ChatRequest& r) const;
    static void send_json(httplib::Response& res, const nlohmann::json& j, int status = 200);
    static void send_error(httplib::Response& res, const ApiError& e);
    std::string new_id(std::string_view prefix);

    // httplib's server with a deeper accept queue: Debian's build listens with a backlog of 5,
    // so a burst of connections (MinerU opens up to 100 at once) overflows it, and a client
    // whose first packets were dropped may send its request after the keep-alive wait ends.
    struct Listener : httplib::Server {
        void deepen_backlog(int n) { ::listen(svr_sock_, n); }  // Linux: listen() again sets the new backlog
    };

    static constexpr const char* form_type_header = "X-Docvlm-Form-Content-Type";
    // One of the parse_jobs places, held for the life of the object.
    struct ParseSlot {
        std::counting_semaphore<1024>& slots;
        explicit ParseSlot(std::counting_semaphore<1024>& s) : slots(s) { slots.acquire(); }
        ~ParseSlot() { slots.release(); }
        ParseSlot(const ParseSlot&) = delete;
        ParseSlot& operator=(const ParseSlot&) = delete;
    };

    ChatEngine* engine_;
    ServerOptions opt_;
    Listener server_;
    int port_ = 0;
    std::counting_semaphore<1024> parse_slots_;
    std::atomic<std::size_t> in_flight_{0};
    std::mutex id_mutex_;
    std::mt19937_64 id_rng_{std::random_device{}()};
};

/// Seconds since 1970 (OpenAI's `created`).
inline std::int64_t unix_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// Serialises JSON for the wire (invalid UTF-8 replaced, never thrown).
inline std::string wire(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline HttpServer::HttpServer(ChatEngine& engine, ServerOptions opt)
    : engine_(&engine), opt_(std::move(opt)), parse_slots_(std::ptrdiff_t(std::clamp<std::size_t>(opt_.parse_jobs, 1, 1024))) {
    const std::size_t threads = std::max<std::size_t>(4, opt_.connection_threads);
    server_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    server_.set_payload_max_length(opt_.max_body_bytes);
    server_.set_keep_alive_max_count(1000);
    server_.set_keep_alive_timeout(opt_.keep_alive_seconds);
    server_.set_read_timeout(60);
    server_.set_write_timeout(600);
    routes();
}

inline int HttpServer::bind() {
    if (opt_.port == 0) port_ = server_.bind_to_any_port(opt_.host);
    else port_ = server_.bind_to_port(opt_.host, opt_.port) ? opt_.port : -1;
    if (port_ <= 0) docvlm::detail::fail("cannot listen on ", opt_.host, ":", opt_.port, " (address in use, or not an address of this machine)");
    server_.deepen_backlog(1024);
    return port_;
}

inline void HttpServer::run() {
    if (port_ <= 0) bind();
    server_.listen_after_bind();
}

inline void HttpServer::send_json(httplib::Response& res, const nlohmann::json& j, int status) {
    res.status = status;
    res.set_content(wire(j), "application/json");
}

inline void HttpServer::send_error(httplib::Response& res, const ApiError& e) {
    if (e.status() == 429 || e.status() == 503) res.set_header("Retry-After", "1");
    send_json(res, error_body(e), e.status());
}

inline std::string HttpServer::new_id(std::string_view prefix) {
    std::lock_guard lock(id_mutex_);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id_rng_()));
    return std::string(prefix) + buf;
}

inline void HttpServer::check_model(const ChatRequest& r) const {
    if (!r.model.empty() && r.model != engine_->model_id())
        reject(404, "model_not_found", "the model '", r.model, "' does not exist; this server has '", engine_->model_id(), "'");
}

inline std::vector<io::Image> HttpServer::images_of(const ChatRequest& r) const {
    std::vector<io::Image> out;
    for (const auto& m : r.messages)
        for (const auto& p : m.parts)
            if (p.is_image) out.push_back(decode_chat_image(p.text, opt_.uploads));
    return out;
}

inline void HttpServer::routes() {
    using httplib::Request, httplib::Response;
    // Errors thrown by handlers, and errors httplib answers itself (404, 413, 400), become JSON.
    server_.set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
        try {
            std::rethrow_exception(ep);
        } catch (const ApiError& e) {
            send_error(res, e);
        } catch (const std::exception& e) {
            send_error(res, ApiError(500, "internal_error", e.what()));
        } catch (...) {
            send_error(res, ApiError(500, "internal_error", "unknown error"));
        }
    });
    server_.set_error_handler([](const Request& req, Response& res) {
        if (!res.body.empty()) return;
        if (res.status == 413) send_error(res, ApiError(413, "body_too_large", "the request body is above the server's limit"));
        else if (res.status == 404) send_error(res, ApiError(404, "not_found", "no route " + req.method + " " + req.path));
        else send_error(res, ApiError(res.status, "bad_request", "the request could not be read (status " + std::to_string(res.status) + ")"));
    });
    // A request is in flight from routing until the logger sees its answer written (httplib runs
    // both on the connection's thread; answers it gives itself, such as 413, skip routing).
    static thread_local bool routed = false;
    server_.set_pre_routing_handler([this](const Request& req, Response&) {
        routed = true;
        ++in_flight_;
        // cpp-httplib 0.11 refuses multipart bodies with a preamble before the first boundary
        // (Node 18's fetch sends one) with a bare 400. /v1/parse reads its form itself
        // (parse_multipart): the body is read raw, the form's content type kept aside. The
        // request is not const where httplib owns it; this runs before its body is read.
        if (req.path == "/v1/parse" && req.is_multipart_form_data()) {
            auto& headers = const_cast<httplib::Headers&>(req.headers);
            const std::string type = req.get_header_value("Content-Type");
            headers.erase("Content-Type");
            headers.emplace("Content-Type", "application/octet-stream");
            headers.emplace(form_type_header, type);
        }
        return httplib::Server::HandlerResponse::Unhandled;
    });
    server_.set_logger([this](const Request& req, const Response& res) {
        if (opt_.log) opt_.log(req.method, req.path, res.status);
        if (routed) routed = false, --in_flight_;
    });
    server_.Get("/health", [this](const Request&, Response& res) { send_json(res, {{"status", "ok"}, {"model", engine_->model_id()}}); });
    // With an API key, /v1/ routes check it in their handler: httplib reads a POST's body only
    // after routing, so a refusal before it would leave the body on a keep-alive connection.
    auto guarded = [this](auto handler) {
        return [this, handler](const Request& req, Response& res) {
            if (!opt_.api_key.empty() && req.get_header_value("Authorization") != "Bearer " + opt_.api_key)
                reject(401, "invalid_api_key", "missing or wrong API key (send 'Authorization: Bearer KEY')");
            handler(req, res);
        };
    };
    server_.Get("/v1/models", guarded([this](const Request&, Response& res) {
        const std::int64_t now = unix_seconds();
        send_json(res, {{"object", "list"},
                        {"data", {{{"id", engine_->model_id()}, {"object", "model"}, {"created", now}, {"owned_by", "docvlm"}}}}});
    }));
    server_.Post("/v1/chat/completions", guarded([this](const Request& req, Response& res) { chat(req, res); }));
    server_.Post("/v1/chat/completions/batch", guarded([this](const Request& req, Response& res) { chat_batch(req, res); }));
    server_.Post("/v1/parse", guarded([this](const Request& req, Response& res) { parse(req, res); }));
    server_.Get("/", [](const Request&, Response& res) { res.set_content(std::string(web_page_html), "text/html; charset=utf-8"); });
    if (std::filesystem::is_directory(opt_.assets_dir)) server_.set_mount_point("/assets", opt_.assets_dir);
}

inline void HttpServer::chat(const httplib::Request& req, httplib::Response& res) {
    const ChatRequest r = parse_chat_request(req.body, opt_.request);
    check_model(r);
    auto job = engine_->submit(r, images_of(r));
    const std::string id = new_id("chatcmpl-"), model = engine_->model_id();
    const std::int64_t created = unix_seconds();
    if (!r.stream) {
        send_json(res, completion_body(id, model, created, {job->wait()}));
        return;
    }
    const bool usage = r.include_usage;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [job, id, model, created, usage](std::size_t, httplib::DataSink& sink) {
            auto event = [&](const nlohmann::json& j) {
                const std::string s = "data: " + wire(j) + "\n\n";
                return sink.write(s.data(), s.size());
            };
            bool open = event(chunk_body(id, model, created, {{"role", "assistant"}, {"content", ""}}, std::nullopt));
            std::string text;
            while (open && job->next(text)) {
                open = event(chunk_body(id, model, created, {{"content", text}}, std::nullopt));
                text.clear();
            }
            if (!open) {  // the client went away: stop generating for it
                job->cancel();
                return false;
            }
            try {
                const ChatResult r = job->wait();
                event(chunk_body(id, model, created, nlohmann::json::object(), r.finish_reason));
                if (usage) {
                    nlohmann::json u = chunk_body(id, model, created, nlohmann::json::object(), std::nullopt);
                    u["choices"] = nlohmann::json::array();
                    u["usage"] = usage_json(r.prompt_tokens, r.completion_tokens);
                    event(u);
                }
            } catch (const ApiError& e) {
                event(error_body(e));
            } catch (const std::exception& e) {
                event(error_body(ApiError(500, "internal_error", e.what())));
            }
            const std::string done = "data: [DONE]\n\n";
            sink.write(done.data(), done.size());
            sink.done();
            return true;
        },
        [job](bool success) {
            if (!success) job->cancel();
        });
}

inline void HttpServer::chat_batch(const httplib::Request& req, httplib::Response& res) {
    const std::vector<ChatRequest> rs = parse_batch_request(req.body, opt_.request);
    std::vector<std::shared_ptr<ChatJob>> jobs;
    for (const ChatRequest& r : rs) {
        check_model(r);
        jobs.push_back(engine_->submit(r, images_of(r)));
    }
    std::vector<ChatResult> results;
    std::exception_ptr first_error;
    for (auto& j : jobs) {  // every job is waited for, even after a failure (none is left running)
        try {
            results.push_back(j->wait());
        } catch (...) {
            if (!first_error) first_error = std::current_exception();
        }
    }
    if (first_error) std::rethrow_exception(first_error);
    const std::int64_t created = unix_seconds();
    send_json(res, completion_body(new_id("chatcmpl-"), engine_->model_id(), created, results));
}

namespace detail {

// Pages of one document put together in `format`: md (pages joined by a blank line), html (one
// page of every block), json ({"pages": [{"page": n, "blocks": [...], "warnings": [...]}]}).
inline std::string combine_pages(const std::vector<std::pair<int, pipeline::Document>>& pages, std::string_view format) {
    if (format == "json") {
        nlohmann::json all = nlohmann::json::array();
        for (const auto& [n, d] : pages) {
            nlohmann::json j = nlohmann::json::parse(d.json());
            j["page"] = n;
            all.push_back(std::move(j));
        }
        return wire({{"pages", all}});
    }
    if (format == "html") {
        pipeline::Document one;
        for (const auto& [n, d] : pages) one.blocks.insert(one.blocks.end(), d.blocks.begin(), d.blocks.end());
        return one.html();
    }
    std::string md;
    for (const auto& [n, d] : pages) {
        const std::string m = d.markdown();
        if (!md.empty() && !m.empty()) md += "\n\n";
        md += m;
    }
    return md;
}

inline std::string_view content_type_of(std::string_view format) {
    return format == "json" ? "application/json" : format == "html" ? "text/html; charset=utf-8" : "text/markdown; charset=utf-8";
}

}  // namespace detail

inline void HttpServer::join_cross_page_tables(std::vector<std::pair<int, pipeline::Document>>& pages) {
    std::vector<pipeline::Document> docs;
    for (auto& [n, d] : pages) docs.push_back(std::move(d));
    engine_->check_cross_page_tables(docs);
    pipeline::merge_cross_page_tables(docs);
    for (std::size_t i = 0; i < pages.size(); ++i) pages[i].second = std::move(docs[i]);
}

inline void HttpServer::parse(const httplib::Request& req, httplib::Response& res) {
    // A form (multipart/form-data, read by parse_multipart: see the pre-routing handler), or the
    // file as the whole body with the other fields in the query string.
    const std::string form_type = req.get_header_value(form_type_header);
    std::vector<FormPart> form;
    if (!form_type.empty()) form = parse_multipart(req.body, form_type);
    else if (!req.body.empty()) form.push_back({"file", "", req.get_header_value("Content-Type"), req.body});
    const FormPart* file = form_field(form, "file");
    if (!file) reject(400, "no_file", "send the document as the multipart form field 'file' (or as the request body)");
    auto field = [&](const char* name, std::string fallback) {
        if (const FormPart* p = form_field(form, name)) return p->data;
        return req.has_param(name) ? req.get_param_value(name) : fallback;
    };
    const std::string format = field("format", "md"), stream = field("stream", "0"), cross = field("cross_page_tables", "0");
    const bool join_tables = cross == "1" || cross == "true";
    if (format != "md" && format != "json" && format != "html") reject(400, "invalid_field", "'format' must be md, json or html");
    auto doc = std::make_shared<UploadedDocument>(file->data, field("pages", ""), opt_.uploads);
    if (stream != "1" && stream != "true") {
        const ParseSlot slot(parse_slots_);
        std::vector<std::pair<int, pipeline::Document>> pages;
        for (std::size_t i = 0; i < doc->page_count(); ++i) pages.emplace_back(doc->page_number(i), engine_->parse_page(doc->page(i), {}));
        if (join_tables) join_cross_page_tables(pages);
        res.set_content(detail::combine_pages(pages, format), std::string(detail::content_type_of(format)));
        return;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [this, doc, format, join_tables](std::size_t, httplib::DataSink& sink) {
        std::mutex m;  // progress may be reported from the parser's worker threads
        bool open = true;
        auto event = [&](std::string_view name, const nlohmann::json& j) {
            std::lock_guard lock(m);
            const std::string s = "event: " + std::string(name) + "\ndata: " + wire(j) + "\n\n";
            open = open && sink.write(s.data(), s.size());
            return open;
        };
        const ParseSlot slot(parse_slots_);
        std::vector<std::pair<int, pipeline::Document>> pages;
        try {
            const std::size_t n = doc->page_count();
            for (std::size_t i = 0; i < n && open; ++i) {
                const int page = doc->page_number(i);
                event("progress", {{"page", page}, {"index", i + 1}, {"pages", n}, {"phase", "decode"}, {"done", 0}, {"total", 1}});
                const io::Image img = doc->page(i);
                pipeline::Document d = engine_->parse_page(img, [&](std::string_view phase, std::size_t done, std::size_t total) {
                    event("progress", {{"page", page}, {"index", i + 1}, {"pages", n}, {"phase", phase}, {"done", done}, {"total", total}});
                });
                event("page", {{"page", page}, {"index", i + 1}, {"pages", n}, {"markdown", d.markdown()}});
                pages.emplace_back(page, std::move(d));
            }
            if (open && join_tables) join_cross_page_tables(pages);
            if (open)
                event("result", {{"format", format}, {"content", detail::combine_pages(pages, format)}, {"markdown", detail::combine_pages(pages, "md")},
                                 {"html", detail::combine_pages(pages, "html")}, {"json", detail::combine_pages(pages, "json")}});
        } catch (const ApiError& e) {
            event("error", error_body(e));
        } catch (const std::exception& e) {
            event("error", error_body(ApiError(400, "parse_failed", e.what())));
        }
        if (!open) return false;
        sink.done();
        return true;
    });
}

}  // namespace serve
DOCVLM_NAMESPACE_END
