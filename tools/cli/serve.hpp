// tools/cli/serve.hpp — `docvlm serve`: loads a model, picks its engine (the embedded model or a
// docvlm-small folder: EmbeddedChatEngine; a Qwen2-VL-family folder such as MinerU2.5:
// QwenChatEngine) and runs the HTTP server until SIGTERM or SIGINT, which stop new connections,
// let the requests in flight finish, then exit 0.
#pragma once

#include <docvlm/docvlm.hpp>
#include <docvlm/presets/docvlm_small.hpp>
#include <docvlm/presets/qwen2vl.hpp>
#include <docvlm/serve/embedded_engine.hpp>
#include <docvlm/serve/http_server.hpp>
#include <docvlm/serve/qwen_engine.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>

#include <docvlm/backend/cpu_backend.hpp>

namespace docvlm_cli {

inline const char* serve_help = R"(usage: docvlm serve [--model DIR] [--host ADDR] [--port N] [--api-key KEY] [--name ID]
                    [--threads N] [--weights int8|bf16|f32] [--device cpu|cuda[:N]] [--max-batch N]
                    [--max-tokens N] [--max-body-mb N] [--max-pixels N] [--max-pages N] [--parse-jobs N] [--quiet]

Serves a model over HTTP (default http://127.0.0.1:8000; --port 0 picks a free port):
  GET  /                            a web page: drop a document, follow progress, read or download
                                    the result (Markdown, HTML, JSON)
  GET  /v1/models, GET /health
  POST /v1/chat/completions         OpenAI-compatible (images as data: URLs; "stream": true for SSE)
  POST /v1/chat/completions/batch   vLLM's batch route (messages = a list of conversations)
  POST /v1/parse                    multipart form: file (PNG, JPEG, BMP, TIFF, PDF), format
                                    (md|json|html), pages ("1-3,7"), stream=1 for progress events

With MinerU2.5 (--model DIR) the server answers MinerU's own client unchanged; requests that
arrive together are decoded together (continuous batching, --max-batch at once). With the
embedded model (the default) MinerU's task prompts select its tasks and layout detection
answers with its segmenter's blocks, so MinerU's two-step flow runs end to end on any CPU.

Point MinerU at it:
  mineru -p doc.pdf -o out -b vlm-http-client -u http://127.0.0.1:8000
  (mineru-vl-utils: MINERU_VL_SERVER=http://127.0.0.1:8000, MINERU_VL_API_KEY=KEY if set)

--device cuda runs the vision tower's blocks and the decoder on a GPU (a docvlm built with
-DDOCVLM_CUDA=ON); the page parser stays on the CPU.

Input filtering: file types are read from the bytes (415 for others); bodies above --max-body-mb
(default 64), images above --max-pixels (default 67108864) and documents above --max-pages
(default 200) get 413; corrupt, truncated and polyglot files get 400. Every error is JSON
{"error": {"message", "type", "code"}}. The API key may also come from $DOCVLM_API_KEY; it is
required on every /v1/ route then.

examples:
  docvlm serve
  docvlm serve --model ~/models/MinerU2.5-2509-1.2B --port 30000 --api-key secret
)";

/// Moves a model's vision blocks and decoder to `device` ("cpu": they stay with the CPU kernels; "cuda", "cuda:N").
template <class Model>
void on_device(Model& m, const std::string& device) {
    if (device != "cpu") m.to_device(docvlm::backend::make_backend(device));
}

namespace detail {

struct ServeOptions {
    std::string model, name, weights = "int8", device = "cpu";
    docvlm::serve::ServerOptions server;
    std::size_t max_batch = 16, max_tokens = 16384, threads = 0;
    bool quiet = false;
};

inline ServeOptions serve_options(const std::vector<std::string>& args) {
    ServeOptions o;
    if (const char* k = std::getenv("DOCVLM_API_KEY")) o.server.api_key = k;
    auto value = [&](std::size_t& i) -> const std::string& {
        if (i + 1 >= args.size()) docvlm::detail::fail("option ", args[i], " needs a value");
        return args[++i];
    };
    auto number = [&](std::size_t& i, long lo) {
        const std::string& v = value(i);
        char* end = nullptr;
        const long long n = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end || n < lo) docvlm::detail::fail("option ", args[i - 1], ": '", v, "' is not a number >= ", lo);
        return std::size_t(n);
    };
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--model") o.model = value(i);
        else if (a == "--name") o.name = value(i);
        else if (a == "--host") o.server.host = value(i);
        else if (a == "--port") o.server.port = int(std::min<std::size_t>(number(i, 0), 65535));
        else if (a == "--api-key") o.server.api_key = value(i);
        else if (a == "--weights") o.weights = value(i);
        else if (a == "--device") o.device = value(i);
        else if (a == "--threads") o.threads = number(i, 1);
        else if (a == "--max-batch") o.max_batch = number(i, 1);
        else if (a == "--max-tokens") o.max_tokens = number(i, 1);
        else if (a == "--max-body-mb") o.server.max_body_bytes = number(i, 1) << 20;
        else if (a == "--max-pixels") o.server.uploads.max_pixels = number(i, 1);
        else if (a == "--max-pages") o.server.uploads.max_pages = number(i, 1);
        else if (a == "--parse-jobs") o.server.parse_jobs = number(i, 1);
        else if (a == "--quiet") o.quiet = true;
        else docvlm::detail::fail("unknown option ", a, " (see docvlm serve --help)");
    }
    if (o.weights != "int8" && o.weights != "bf16" && o.weights != "f32") docvlm::detail::fail("--weights must be int8, bf16 or f32");
    o.server.request.max_image_bytes = o.server.max_body_bytes;
    if (o.threads) docvlm::set_num_threads(o.threads);
    return o;
}

// Serves with `engine` until SIGTERM / SIGINT (blocked here, taken by a waiting thread).
inline int run_server(docvlm::serve::ChatEngine& engine, const ServeOptions& o) {
    docvlm::serve::ServerOptions so = o.server;
    if (!o.quiet)
        so.log = [](const std::string& method, const std::string& path, int status) {
            std::fprintf(stderr, "%s %s %d\n", method.c_str(), path.c_str(), status);
        };
    docvlm::serve::HttpServer server(engine, so);
    const int port = server.bind();
    std::printf("docvlm serve: %s on http://%s:%d (Ctrl-C or SIGTERM to stop)\n", engine.model_id().c_str(), o.server.host.c_str(), port);
    std::fflush(stdout);
    std::atomic<bool> returned{false};
    std::thread serving([&] {
        server.run();
        returned = true;
    });
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sig = 0;
    sigwait(&set, &sig);
    std::fprintf(stderr, "docvlm serve: signal %d, finishing the requests in flight\n", sig);
    server.stop();  // no new connections
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a request being read now gets routed
    while (server.in_flight() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    engine.drain();
    std::fprintf(stderr, "docvlm serve: stopped\n");
    // Every request read has its answer; idle keep-alive connections are not waited for.
    for (int i = 0; i < 25 && !returned; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!returned) {
        std::fflush(nullptr);
        std::_Exit(0);
    }
    serving.join();
    return 0;
}

}  // namespace detail

inline int cmd_serve(const std::vector<std::string>& args) {
    // SIGTERM and SIGINT go to the waiting thread only: blocked before any thread starts.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);  // a client gone mid-answer is an error on its socket, not the end of the server
    const detail::ServeOptions o = detail::serve_options(args);
    const std::string dir = o.model.empty() ? docvlm::default_model_dir() : o.model;
    auto type = [&] {
        try {
            return docvlm::io::read_json_file((std::filesystem::path(dir) / "config.json").string()).value("model_type", std::string());
        } catch (const std::exception&) {
            return std::string();
        }
    }();
    const std::string name = !o.name.empty() ? o.name
                             : o.model.empty() ? "docvlm-small"
                                               : std::filesystem::path(dir).lexically_normal().filename().string();
    if (!o.quiet) std::fprintf(stderr, "loading %s (%s weights)...\n", dir.c_str(), o.weights.c_str());
    auto run = [&](auto tag) {
        using W = decltype(tag);
        if (o.model.empty() || type == "docvlm_small") {
            auto model = o.model.empty() ? docvlm::load_default_model<W>() : docvlm::load<docvlm::presets::DocvlmSmall<W>>(dir);
            on_device(model, o.device);
            docvlm::serve::EmbeddedEngineOptions eo;
            docvlm::serve::EmbeddedChatEngine engine(model, name, eo);
            return detail::run_server(engine, o);
        }
        if (type == "llava" || type == "qwen")
            docvlm::detail::fail(dir, ": docvlm serve runs Qwen2-VL-family models (MinerU2.5) and docvlm-small; use 'docvlm ask' for ", type);
        const auto tok = docvlm::io::Tokenizer::from_json((std::filesystem::path(dir) / "tokenizer.json").string());
        auto model = docvlm::Model<docvlm::presets::Qwen2VL<W>>::load(dir);
        on_device(model, o.device);
        docvlm::serve::QwenEngineOptions qo;
        qo.max_batch = o.max_batch;
        qo.max_new_tokens = o.max_tokens;
        docvlm::serve::QwenChatEngine engine(model, tok, name, qo);
        return detail::run_server(engine, o);
    };
    if (o.weights == "f32") return run(docvlm::F32{});
    if (o.weights == "bf16") return run(docvlm::BF16{});
    return run(docvlm::Int8PerChannel{});
}

}  // namespace docvlm_cli
