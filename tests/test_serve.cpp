// Tests of docvlm's server (include/docvlm/serve/): request decoding against MinerU's own request
// bodies (tests/data/serve/mineru_requests, built by mineru-vl-utils' build_request_body), the
// chat template against transformers' text, uploads against files Pillow wrote, both engines,
// and the HTTP server end to end on loopback (errors, streaming, parse, shutdown, load).
#include "test_util.hpp"
#include "tiny_tokenizer.hpp"

#include <docvlm/docvlm.hpp>
#include <docvlm/pipeline/mineru.hpp>
#include <docvlm/presets/docvlm_small.hpp>
#include <docvlm/presets/qwen2vl.hpp>
#include <docvlm/serve/embedded_engine.hpp>
#include <docvlm/serve/http_server.hpp>
#include <docvlm/serve/qwen_engine.hpp>

#include <atomic>
#include <fstream>
#include <iterator>
#include <thread>

using namespace docvlm;
using namespace docvlm::serve;

namespace {

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in, path);
    return {std::istreambuf_iterator<char>(in), {}};
}

std::string fixture(const std::string& name) { return read_bytes(test::data("serve/mineru_requests/" + name + ".json")); }

// A fixture with its image replaced by `png` (the bytes of an image file).
std::string with_image(const std::string& name, const std::string& image_file) {
    nlohmann::json j = nlohmann::json::parse(fixture(name));
    const std::string bytes = read_bytes(image_file);
    static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string enc;
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        const std::uint32_t n = std::uint32_t(std::uint8_t(bytes[i])) << 16 | (i + 1 < bytes.size() ? std::uint32_t(std::uint8_t(bytes[i + 1])) << 8 : 0) |
                                (i + 2 < bytes.size() ? std::uint8_t(bytes[i + 2]) : 0);
        enc += b64[n >> 18 & 63], enc += b64[n >> 12 & 63];
        enc += i + 1 < bytes.size() ? b64[n >> 6 & 63] : '=';
        enc += i + 2 < bytes.size() ? b64[n & 63] : '=';
    }
    j["messages"][1]["content"][0]["image_url"]["url"] = "data:image/png;base64," + enc;
    return j.dump();
}

// Runs `f` and returns the ApiError it throws (fails the test if it throws none).
template <class F>
ApiError api_error(F&& f) {
    try {
        f();
    } catch (const ApiError& e) {
        return e;
    }
    FAIL("no ApiError thrown");
    return ApiError(0, "", "");
}

std::size_t resident_kib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with("VmRSS:")) return std::stoul(line.substr(6));
    return 0;
}

// An HttpServer on a free loopback port, serving on a thread of its own while the object lives.
struct LiveServer {
    HttpServer server;
    std::thread thread;
    explicit LiveServer(ChatEngine& engine, ServerOptions opt = {}) : server(engine, [&] {
        opt.port = 0;
        return opt;
    }()) {
        server.bind();
        thread = std::thread([this] { server.run(); });
    }
    ~LiveServer() {
        server.stop();
        thread.join();
    }
    httplib::Client client() const {
        httplib::Client c("127.0.0.1", server.port());
        c.set_read_timeout(120);
        return c;
    }
};

}  // namespace

TEST_SUITE("serve") {

TEST_CASE("MinerU's request bodies decode field by field (the client's own build_request_body output)") {
    struct Expect {
        const char* name;
        const char* prompt;
        float presence, frequency;
    };
    for (const Expect& e : {Expect{"layout", "\nLayout Detection:", 0.0f, 0.0f}, Expect{"text", "\nText Recognition:", 1.0f, 0.05f},
                            Expect{"table", "\nTable Recognition:", 1.0f, 0.005f}, Expect{"formula", "\nFormula Recognition:", 1.0f, 0.05f},
                            Expect{"image_analysis", "\nImage Analysis:", 1.0f, 0.05f}}) {
        INFO(e.name);
        const std::string body = fixture(e.name);
        const ChatRequest r = parse_chat_request(body);
        CHECK(r.model == "docvlm-small");
        REQUIRE(r.messages.size() == 2);
        CHECK(r.messages[0].role == "system");
        CHECK(r.messages[0].parts[0].text == "You are a helpful assistant.");
        REQUIRE(r.messages[1].parts.size() == 2);
        CHECK(r.messages[1].parts[0].is_image);
        CHECK(r.messages[1].parts[0].text.starts_with("\x89PNG"));
        CHECK(r.last_user_text() == e.prompt);
        CHECK(r.temperature == 0.0f);
        CHECK(r.top_p == doctest::Approx(0.01));
        CHECK(r.top_k == 1);
        CHECK(r.presence_penalty == doctest::Approx(e.presence));
        CHECK(r.frequency_penalty == doctest::Approx(e.frequency));
        CHECK(r.repetition_penalty == 1.0f);
        CHECK(r.no_repeat_ngram == 100);
        CHECK_FALSE(r.skip_special_tokens);
        CHECK_FALSE(r.max_tokens.has_value());
        CHECK_FALSE(r.stream);
        const GenerationOptions o = generation_options(r);
        CHECK(o.temperature == 0.0f);
        CHECK(o.no_repeat_ngram == 100);
        CHECK_FALSE(o.ngram_over_prompt);  // vLLM's processor counts generated tokens only
        CHECK(o.presence_penalty == doctest::Approx(e.presence));
        // httpx < 0.28 sent spaced JSON with \u escapes: the same request
        const ChatRequest spaced = parse_chat_request(nlohmann::json::parse(body).dump(1, ' ', true));
        CHECK(spaced.last_user_text() == r.last_user_text());
        CHECK(spaced.messages[1].parts[0].text == r.messages[1].parts[0].text);
    }
    for (const char* name : {"cross_page_merge", "cross_page_merge_zh"}) {  // text only
        const ChatRequest r = parse_chat_request(fixture(name));
        CHECK(r.image_count() == 0);
        CHECK(r.last_user_text().starts_with("Please merge the next two tables."));
    }
    const ChatRequest s = parse_chat_request(fixture("stream"));
    CHECK(s.stream);
    CHECK(s.temperature == 1.0f);  // no sampling fields: OpenAI's defaults
}

TEST_CASE("base64 decodes RFC 4648's test vectors and refuses what is not base64") {
    const std::pair<const char*, const char*> vectors[] = {{"", ""},         {"Zg==", "f"},       {"Zm8=", "fo"},     {"Zm9v", "foo"},
                                                           {"Zm9vYg==", "foob"}, {"Zm9vYmE=", "fooba"}, {"Zm9vYmFy", "foobar"}, {"Zm9vYmE", "fooba"}};
    for (const auto& [in, out] : vectors) CHECK(base64_decode(in) == out);
    CHECK(api_error([] { base64_decode("Zm9v!mFy"); }).code() == "invalid_base64");
    CHECK(api_error([] { base64_decode("Zm9vY"); }).code() == "invalid_base64");
    CHECK(data_url_bytes("data:image/png;base64,Zm9v") == "foo");
    CHECK(api_error([] { data_url_bytes("https://example.com/a.png"); }).code() == "unsupported_image_url");
    CHECK(api_error([] { data_url_bytes("data:image/png,rawbytes"); }).code() == "invalid_image_url");
    RequestLimits small;
    small.max_image_bytes = 10;
    CHECK(api_error([&] { data_url_bytes("data:image/png;base64,Zm9vYmFyZm9vYmFyZm9vYmFy", small); }).status() == 413);
}

TEST_CASE("bad chat requests are refused with a status and a code naming the problem") {
    const std::string img = R"({"type":"image_url","image_url":{"url":"data:image/png;base64,Zm9v"}})";
    const std::pair<std::string, std::string> cases[] = {
        {"not json", "invalid_json"},
        {"[1,2]", "invalid_json"},
        {R"({"model":"m"})", "invalid_messages"},
        {R"({"messages":[]})", "invalid_messages"},
        {R"({"messages":[{"role":"robot","content":"x"}]})", "invalid_messages"},
        {R"({"messages":[{"role":"user"}]})", "invalid_messages"},
        {R"({"messages":[{"role":"user","content":[{"type":"audio"}]}]})", "invalid_messages"},
        {R"({"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}]})", "invalid_messages"},
        {R"({"messages":[{"role":"system","content":[)" + img + R"(]},{"role":"user","content":"x"}]})", "invalid_messages"},
        {R"({"messages":[{"role":"user","content":"x"}],"temperature":3})", "invalid_field"},
        {R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})", "invalid_field"},
        {R"({"messages":[{"role":"user","content":"x"}],"n":2})", "invalid_field"},
        {R"({"messages":[{"role":"user","content":"x"}],"stop":["\n"]})", "invalid_field"},
        {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})", "invalid_field"},
        {R"({"messages":[{"role":"user","content":"x"}],"vllm_xargs":3})", "invalid_field"},
    };
    for (const auto& [body, code] : cases) {
        INFO(body);
        const ApiError e = api_error([&] { parse_chat_request(body); });
        CHECK(e.status() == 400);
        CHECK(e.code() == code);
        CHECK(error_body(e)["error"]["type"] == "invalid_request_error");
    }
    RequestLimits two;
    two.max_images = 2;
    const std::string three = R"({"messages":[{"role":"user","content":[)" + img + "," + img + "," + img + "]}]}";
    CHECK(api_error([&] { parse_chat_request(three, two); }).code() == "too_many_images");
    CHECK(parse_chat_request(R"({"messages":[{"role":"user","content":"x"}],"max_completion_tokens":7,"priority":3})").max_tokens == 7u);
}

TEST_CASE("batch requests: one ChatRequest per conversation, the settings shared") {
    const auto rs = parse_batch_request(
        R"({"model":"m","temperature":0,"messages":[[{"role":"user","content":"a"}],[{"role":"system","content":"s"},{"role":"user","content":"b"}]]})");
    REQUIRE(rs.size() == 2);
    CHECK(rs[0].last_user_text() == "a");
    CHECK(rs[1].messages.size() == 2);
    CHECK(rs[1].temperature == 0.0f);
    CHECK(api_error([] { parse_batch_request(R"({"stream":true,"messages":[[{"role":"user","content":"a"}]]})"); }).code() == "invalid_field");
    CHECK(api_error([] { parse_batch_request(R"({"messages":[{"role":"user","content":"a"}]})"); }).code() == "invalid_messages");
}

TEST_CASE("responses carry what OpenAI's and MinerU's clients read") {
    const nlohmann::json c = completion_body("id1", "m", 5, {{"<|box_start|>1 2 3 4<|box_end|>", "stop", 10, 3}, {"x", "length", 1, 1}});
    CHECK(c["object"] == "chat.completion");
    CHECK(c["choices"][0]["message"]["content"] == "<|box_start|>1 2 3 4<|box_end|>");
    CHECK(c["choices"][1]["index"] == 1);
    CHECK(c["choices"][1]["finish_reason"] == "length");
    CHECK(c["usage"]["total_tokens"] == 15);
    const nlohmann::json k = chunk_body("id1", "m", 5, {{"content", "x"}}, std::nullopt);
    CHECK(k["object"] == "chat.completion.chunk");
    CHECK(k["choices"][0]["delta"]["content"] == "x");
    CHECK(k["choices"][0]["finish_reason"].is_null());
    CHECK(wire(nlohmann::json("\xff")) == "\"\xef\xbf\xbd\"");  // invalid UTF-8 is replaced, never thrown
}

TEST_CASE("the chat template: MinerU's messages give the text transformers' template gives") {
    const ChatRequest r = parse_chat_request(fixture("text"));
    // tests/data/golden/qwen2vl-tiny-a/README.md: Qwen2-VL's chat template for these messages
    std::string expect = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|>";
    for (int i = 0; i < 60; ++i) expect += "<|image_pad|>";
    expect += "<|vision_end|>\nText Recognition:<|im_end|>\n<|im_start|>assistant\n";
    CHECK(qwen2vl_chat_text(r.messages, {60}) == expect);
    CHECK(qwen2vl_chat_text(r.messages, {60}) == pipeline::chat_prompt("\nText Recognition:", 60));
    // without a system message the template adds the default one; assistant turns are kept
    const ChatRequest t = parse_chat_request(R"({"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yes"},{"role":"user","content":"more"}]})");
    CHECK(qwen2vl_chat_text(t.messages, {}) ==
          "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyes<|im_end|>\n"
          "<|im_start|>user\nmore<|im_end|>\n<|im_start|>assistant\n");
}

TEST_CASE("uploads: types from the bytes, limits before decoding, clear refusals") {
    CHECK(sniff_file(read_bytes(test::data("upload/tiff_p1.png"))) == FileKind::png);
    CHECK(sniff_file(read_bytes(test::data("upload/two_pages.tiff"))) == FileKind::tiff);
    CHECK(sniff_file(read_bytes(test::data("pdf/two_pages.pdf"))) == FileKind::pdf);
    CHECK(sniff_file(read_bytes(test::data("upload/page.gif"))) == FileKind::gif);
    CHECK(sniff_file("<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>") == FileKind::svg);
    CHECK(sniff_file("hello") == FileKind::unknown);
    const io::Image png = decode_chat_image(read_bytes(test::data("upload/tiff_p1.png")));
    CHECK(png.width == 37);
    CHECK(png.channels == 3);
    auto status = [](const std::string& bytes, const UploadLimits& lim = {}) { return api_error([&] { decode_chat_image(bytes, lim); }); };
    CHECK(status(read_bytes(test::data("upload/page.gif"))).status() == 415);
    CHECK(status(read_bytes(test::data("pdf/two_pages.pdf"))).status() == 415);  // a chat image is not a document
    CHECK(status("plain text").status() == 415);
    const ApiError poly = status(read_bytes(test::data("upload/polyglot.png")));
    CHECK(poly.status() == 400);
    CHECK(poly.code() == "polyglot_file");
    const ApiError bomb = status(read_bytes(test::data("upload/bomb.png")));  // 10000 x 10000, refused from its header
    CHECK(bomb.status() == 413);
    CHECK(std::string(bomb.what()).find("100000000 pixels") != std::string::npos);
    std::string cut = read_bytes(test::data("upload/tiff_p1.png"));
    cut.resize(cut.size() / 2);
    CHECK(status(cut).status() == 400);
    const std::string tiff = read_bytes(test::data("upload/two_pages.tiff"));
    CHECK(status(tiff.substr(0, 3000)).status() == 400);  // page 1's directory (at byte 3424) cut off
    UploadedDocument tail_cut(tiff.substr(0, tiff.size() - 100), "1");  // page 1 whole, page 2's directory cut
    CHECK(tail_cut.page(0).width == 37);
    CHECK(api_error([&] { UploadedDocument(tiff.substr(0, tiff.size() - 100), "2").page(0); }).status() == 400);
    UploadLimits tiny;
    tiny.max_pixels = 100;
    CHECK(status(read_bytes(test::data("upload/tiff_p1.png")), tiny).status() == 413);
    CHECK(status(read_bytes(test::data("upload/two_pages.tiff")), tiny).status() == 413);
}

TEST_CASE("TIFF pages decode to the pixels Pillow wrote") {
    const std::string tiff = read_bytes(test::data("upload/two_pages.tiff"));
    const auto b = std::as_bytes(std::span(tiff.data(), tiff.size()));
    CHECK(io::tiff_page_count(b) == 2);
    const io::Image p1 = io::decode_tiff(b, 0), p2 = io::decode_tiff(b, 1, io::ColorMode::gray);
    CHECK(p1.pixels == io::load_image(test::data("upload/tiff_p1.png")).pixels);
    CHECK(p2.pixels == io::load_image(test::data("upload/tiff_p2.png"), io::ColorMode::gray).pixels);
    CHECK_ERROR_HAS(io::decode_tiff(b, 2), "no page 3");
    UploadedDocument doc(tiff, "");
    CHECK(doc.page_count() == 2);
    CHECK(doc.page(1).width == 29);
}

TEST_CASE("PDF uploads: page lists, page limits, corrupt files") {
    const std::string pdf = read_bytes(test::data("pdf/two_pages.pdf"));
    UploadedDocument all(pdf, "");
    CHECK(all.kind() == FileKind::pdf);
    CHECK(all.page_count() == 2);
    UploadedDocument second(pdf, "2");
    REQUIRE(second.page_count() == 1);
    CHECK(second.page_number(0) == 2);
    CHECK(second.page(0).width > 100);
    UploadLimits one;
    one.max_pages = 1;
    CHECK(api_error([&] { UploadedDocument(pdf, "", one); }).code() == "too_many_pages");
    CHECK(api_error([&] { UploadedDocument(pdf, "3"); }).status() == 400);
    CHECK(api_error([&] { UploadedDocument(pdf.substr(0, 200), ""); }).status() == 400);
    UploadLimits small;
    small.max_pixels = 1000;
    UploadedDocument big(pdf, "1", small);
    CHECK(api_error([&] { big.page(0); }).status() == 413);
}

TEST_CASE("multipart forms: RFC 7578 bodies as browsers, curl and Node send them") {
    const std::string crlf = "--b1\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.png\"\r\nContent-Type: image/png\r\n\r\n"
                             "\x89PNG\r\n--not-it\r\n--b1\r\nContent-Disposition: form-data; name=format\r\n\r\nmd\r\n--b1--\r\n";
    const auto parts = parse_multipart(crlf, "multipart/form-data; boundary=b1");
    REQUIRE(parts.size() == 2);
    CHECK(parts[0].name == "file");
    CHECK(parts[0].filename == "a b.png");
    CHECK(parts[0].content_type == "image/png");
    CHECK(parts[0].data == "\x89PNG\r\n--not-it");  // a line that only resembles the boundary is data
    CHECK(form_field(parts, "format")->data == "md");
    CHECK(parse_multipart("preamble\r\n" + crlf, "multipart/form-data; boundary=\"b1\"").size() == 2);
    CHECK(parse_multipart("--b1\nContent-Disposition: form-data; name=\"x\"\n\n1\n--b1--\n", "multipart/form-data; boundary=b1")[0].data == "1");
    CHECK(parse_multipart("--b1\r\n\r\nno headers\r\n--b1--", "multipart/form-data; boundary=b1")[0].data == "no headers");
    CHECK(api_error([&] { parse_multipart(crlf.substr(0, 80), "multipart/form-data; boundary=b1"); }).code() == "invalid_multipart");
    CHECK(api_error([&] { parse_multipart(crlf, "multipart/form-data"); }).code() == "invalid_multipart");
    CHECK(api_error([&] { parse_multipart(crlf, "multipart/form-data; boundary=zz"); }).code() == "invalid_multipart");
    CHECK(api_error([&] { parse_multipart(crlf, "application/json"); }).code() == "not_multipart");
    CHECK(api_error([&] { parse_multipart(crlf, "multipart/form-data; boundary=b1", 1); }).code() == "invalid_multipart");
}

TEST_CASE("cross-page table merge: answers in the client's format, right on the client's own cases") {
    // the answers mineru-vl-utils' tests expect for these prompts (tests/data/serve/mineru_requests/README.md)
    CHECK(cross_page_merge_answer(parse_chat_request(fixture("cross_page_merge")).last_user_text()) == "[0, 1, 0]");
    CHECK(cross_page_merge_answer(parse_chat_request(fixture("cross_page_merge_zh")).last_user_text()) == "[1, 0]");
    const std::string head = "Please merge the next two tables.\n\n## Table 1 (Previous Page - Last Table)\n\n**Caption:** (No caption)\n**Last Row(s) Data:**\n";
    const std::string mid = "\n\n---\n\n## Table 2 (Current Page - First Table)\n\n**Caption:** (No caption)\n**First Data Row(s):**\n";
    CHECK(cross_page_merge_answer(head + "[['1', 'a', 'b']]" + mid + "[['2', 'c', 'd']]") == "[0, 0, 0]");  // a complete row is new
    CHECK(cross_page_merge_answer(head + "[['1', \"it's\"]]" + mid + "[['', 'more']]") == "[0, 1]");
    CHECK_FALSE(cross_page_merge_answer("What is this?").has_value());
    const auto rows = parse_python_rows("[['a\\'b', \"c\\\\d\"], []]");
    REQUIRE(rows.has_value());
    CHECK((*rows)[0][0] == "a'b");
    CHECK((*rows)[0][1] == "c\\d");
    CHECK((*rows)[1].empty());
    CHECK_FALSE(parse_python_rows("[['a', ").has_value());
}

TEST_CASE("QwenChatEngine: requests decoded together get what generate gives each alone") {
    test::TempDir dir;
    const io::Tokenizer tok = test::tiny_tokenizer(dir);
    const auto model = Model<presets::Qwen2VL<F32>>::load(test::data("golden/qwen2vl-tiny-a"));
    const io::Image page = io::load_image(test::data("golden/qwen2vl-tiny-a/input.png"));
    QwenEngineOptions qo;
    qo.max_batch = 3;  // six requests: the batch is refilled as sequences finish
    QwenChatEngine engine(model, tok, "tiny", qo);
    const char* prompts[] = {"\nText Recognition:", "\nTable Recognition:", "\nFormula Recognition:", "\nLayout Detection:", "\nText Recognition:", "hi"};
    std::vector<ChatRequest> reqs;
    for (int i = 0; i < 6; ++i) {
        ChatRequest r = parse_chat_request(fixture(i == 1 ? "table" : "text"));
        r.messages[1].parts[1].text = prompts[i];
        r.max_tokens = std::size_t(3 + 2 * i);
        reqs.push_back(r);
    }
    std::vector<std::shared_ptr<ChatJob>> jobs(6);
    std::vector<std::thread> clients;
    for (int i = 0; i < 6; ++i) clients.emplace_back([&, i] { jobs[std::size_t(i)] = engine.submit(reqs[std::size_t(i)], {page}); });
    for (auto& c : clients) c.join();
    for (int i = 0; i < 6; ++i) {
        INFO("request ", i);
        const ChatResult got = jobs[std::size_t(i)]->wait();
        // the same request through Context::generate (checked against transformers in the golden suite)
        const io::PixelValues px = io::preprocess_qwen2vl(page, model.image_config());
        const Tensor<float, 2> vision = model.encode_image(px);
        const std::vector<std::int32_t> ids = tok.encode(qwen2vl_chat_text(reqs[std::size_t(i)].messages, {vision.shape()[0]}));
        GenerationOptions o = generation_options(reqs[std::size_t(i)]);
        o.max_new_tokens = *reqs[std::size_t(i)].max_tokens;
        o.stop_tokens = {982, 980};
        const ImageGrid grid{px.grid_t, px.grid_h, px.grid_w};
        auto ctx = model.context(ids.size() + o.max_new_tokens);
        std::vector<std::int32_t> out = ctx.generate(ids, {&vision, 1}, {&grid, 1}, o);
        const bool stopped = !out.empty() && (out.back() == 982 || out.back() == 980);
        if (stopped) out.pop_back();
        std::vector<std::int32_t> known;
        for (std::int32_t t : out)
            if (std::size_t(t) < tok.size()) known.push_back(t);
        CHECK(got.text == tok.decode(known));
        CHECK(got.completion_tokens == out.size());
        CHECK(got.prompt_tokens == ids.size());
        CHECK(got.finish_reason == (stopped ? "stop" : "length"));
    }
    CHECK(engine.vision_cache_hits() >= 5);  // one image, encoded once
    // streaming: the pieces add up to the answer
    ChatRequest s = reqs[0];
    s.max_tokens = 9;
    auto job = engine.submit(s, {page});
    std::string streamed;
    while (job->next(streamed)) {
    }
    CHECK(streamed == job->wait().text);
    // a prompt longer than the context
    ChatRequest huge = reqs[0];
    huge.messages[1].parts[1].text = std::string(40000, 'x');
    CHECK(api_error([&] { engine.submit(huge, {page}); }).code() == "context_length_exceeded");
    engine.drain();
    CHECK(api_error([&] { engine.submit(reqs[0], {page}); }).status() == 503);
}

TEST_CASE("EmbeddedChatEngine: MinerU's prompts select the embedded model's tasks") {
    const auto model = load_default_model<Int8PerChannel>();
    EmbeddedChatEngine engine(model, "docvlm-small");
    const io::Image page = io::load_image(std::string(DOCVLM_TEST_DATA) + "/../../examples/data/sample_page.png");
    const io::Image line = io::load_image(std::string(DOCVLM_TEST_DATA) + "/../../examples/data/line.png");
    // layout: the segmenter's blocks in MinerU's grammar, which the client's parser (ported in
    // pipeline::parse_layout, tested against the client) reads back without a warning
    const std::string layout = engine.submit(parse_chat_request(fixture("layout")), {page})->wait().text;
    CHECK(layout == layout_grammar(pipeline::segment_page(page)));
    std::vector<std::string> warnings;
    const auto blocks = pipeline::parse_layout(layout, &warnings);
    CHECK(blocks.size() >= 10);
    CHECK(warnings.empty());
    const ChatResult text = engine.submit(parse_chat_request(fixture("text")), {line})->wait();
    CHECK(text.text.find("Cotton et al") != std::string::npos);
    CHECK(text.finish_reason == "stop");
    ChatRequest capped = parse_chat_request(fixture("text"));
    capped.max_tokens = 5;
    const ChatResult cut = engine.submit(capped, {line})->wait();
    CHECK(cut.text.size() <= 5);
    CHECK(cut.finish_reason == "length");
    CHECK(engine.submit(parse_chat_request(fixture("cross_page_merge")), {})->wait().text == "[0, 1, 0]");
    CHECK(api_error([&] { engine.submit(parse_chat_request(fixture("stream")), {line}); }).code() == "unsupported_prompt");
    CHECK(api_error([&] { engine.submit(parse_chat_request(fixture("text")), {line, line}); }).code() == "unsupported_prompt");
}

TEST_CASE("HTTP server: the OpenAI contract, MinerU's bodies, errors as JSON") {
    const auto model = load_default_model<Int8PerChannel>();
    EmbeddedChatEngine engine(model, "docvlm-small");
    ServerOptions opt;
    opt.max_body_bytes = 4u << 20;
    LiveServer live(engine, opt);
    auto cli = live.client();
    const std::string line = std::string(DOCVLM_TEST_DATA) + "/../../examples/data/line.png";

    auto health = cli.Get("/health");
    REQUIRE(health);
    CHECK(health->status == 200);
    auto models = cli.Get("/v1/models");
    REQUIRE(models);
    const auto mj = nlohmann::json::parse(models->body);
    CHECK(mj["object"] == "list");
    REQUIRE(mj["data"].size() == 1);  // MinerU's client wants exactly one
    CHECK(mj["data"][0]["id"] == "docvlm-small");

    auto r = cli.Post("/v1/chat/completions", with_image("text", line), "application/json");
    REQUIRE(r);
    CHECK(r->status == 200);
    const auto j = nlohmann::json::parse(r->body);
    CHECK(j["choices"][0]["finish_reason"] == "stop");
    CHECK(j["choices"][0]["message"]["content"].get<std::string>().find("Cotton et al") != std::string::npos);

    // streaming: SSE chunks, the role first, the finish reason last, then [DONE]
    nlohmann::json sj = nlohmann::json::parse(with_image("text", line));
    sj["stream"] = true;
    sj["stream_options"] = {{"include_usage", true}};
    auto st = cli.Post("/v1/chat/completions", sj.dump(), "application/json");
    REQUIRE(st);
    CHECK(st->status == 200);
    CHECK(st->get_header_value("Content-Type") == "text/event-stream");
    std::vector<nlohmann::json> chunks;
    std::string content;
    for (std::size_t at = 0; (at = st->body.find("data: ", at)) != std::string::npos;) {
        const std::size_t end = st->body.find("\n\n", at);
        const std::string data = st->body.substr(at + 6, end - at - 6);
        at = end;
        if (data == "[DONE]") break;
        chunks.push_back(nlohmann::json::parse(data));
        if (!chunks.back()["choices"].empty() && chunks.back()["choices"][0]["delta"].contains("content"))
            content += chunks.back()["choices"][0]["delta"]["content"].get<std::string>();
    }
    CHECK(st->body.ends_with("data: [DONE]\n\n"));
    REQUIRE(chunks.size() >= 3);
    CHECK(chunks.front()["choices"][0]["delta"]["role"] == "assistant");
    CHECK(chunks[chunks.size() - 2]["choices"][0]["finish_reason"] == "stop");
    CHECK(chunks.back()["usage"]["completion_tokens"].get<int>() > 0);
    CHECK(content == j["choices"][0]["message"]["content"]);

    // vLLM's batch route
    const auto b0 = nlohmann::json::parse(with_image("text", line)), b1 = nlohmann::json::parse(fixture("cross_page_merge"));
    nlohmann::json batch = b0;
    batch["messages"] = {b0["messages"], b1["messages"]};
    auto br = cli.Post("/v1/chat/completions/batch", batch.dump(), "application/json");
    REQUIRE(br);
    CHECK(br->status == 200);
    const auto bj = nlohmann::json::parse(br->body);
    REQUIRE(bj["choices"].size() == 2);
    CHECK(bj["choices"][1]["index"] == 1);
    CHECK(bj["choices"][1]["message"]["content"] == "[0, 1, 0]");

    // errors: status, and the JSON shape OpenAI's clients read
    auto expect_error = [&](const httplib::Result& res, int status, const char* code) {
        REQUIRE(res);
        CHECK(res->status == status);
        const auto e = nlohmann::json::parse(res->body, nullptr, false);
        REQUIRE(e.is_object());
        CHECK(e["error"]["code"] == code);
        CHECK(e["error"]["message"].is_string());
    };
    expect_error(cli.Post("/v1/chat/completions", "{", "application/json"), 400, "invalid_json");
    nlohmann::json wrong = nlohmann::json::parse(fixture("text"));
    wrong["model"] = "gpt-4o";
    expect_error(cli.Post("/v1/chat/completions", wrong.dump(), "application/json"), 404, "model_not_found");
    expect_error(cli.Post("/v1/chat/completions", with_image("text", test::data("upload/page.gif")), "application/json"), 415, "unsupported_file_type");
    expect_error(cli.Post("/v1/chat/completions", with_image("text", test::data("upload/bomb.png")), "application/json"), 413, "image_too_large");
    expect_error(cli.Post("/v1/chat/completions", with_image("text", test::data("upload/polyglot.png")), "application/json"), 400, "polyglot_file");
    expect_error(cli.Post("/v1/chat/completions", std::string(5u << 20, ' '), "application/json"), 413, "body_too_large");
    expect_error(cli.Get("/v1/nothing"), 404, "not_found");
    CHECK(cli.Get("/health")->status == 200);  // none of it took the server down

    // the web page and its scripts
    auto page = cli.Get("/");
    REQUIRE(page);
    CHECK(page->body.find("<title>docvlm") != std::string::npos);
}

TEST_CASE("HTTP server: every MinerU request body, replayed, gets what the client reads (both engines)") {
    // mineru-vl-utils' get_response_content: status 200, a JSON object that is not an error, a
    // non-empty choices list, finish_reason "stop" (or "length", accepted with a warning), and
    // message.content a string; special tokens kept (skip_special_tokens false).
    auto replay = [](LiveServer& live, const std::string& image, bool embedded) {
        auto cli = live.client();
        auto models = nlohmann::json::parse(cli.Get("/v1/models")->body);
        const std::string id = models["data"][0]["id"];
        for (const char* name : {"layout", "text", "table", "formula", "image_analysis", "cross_page_merge", "cross_page_merge_zh"}) {
            INFO(name);
            const bool text_only = std::string_view(name).starts_with("cross_page");
            nlohmann::json body = nlohmann::json::parse(text_only ? fixture(name) : with_image(name, image));
            body["model"] = id;  // the client sends the id it read from /v1/models
            auto r = cli.Post("/v1/chat/completions", body.dump(), "application/json");
            REQUIRE(r);
            CHECK(r->status == 200);
            const auto j = nlohmann::json::parse(r->body);
            CHECK(j["object"] == "chat.completion");
            REQUIRE(j["choices"].size() == 1);
            const std::string finish = j["choices"][0]["finish_reason"];
            CHECK((finish == "stop" || finish == "length"));
            CHECK(j["choices"][0]["message"]["content"].is_string());
            if (embedded && text_only) CHECK(j["choices"][0]["message"]["content"].get<std::string>().starts_with("["));
            if (embedded && std::string_view(name) == "layout")
                CHECK(j["choices"][0]["message"]["content"].get<std::string>().find("<|box_start|>") != std::string::npos);
        }
    };
    {
        const auto model = load_default_model<Int8PerChannel>();
        EmbeddedChatEngine engine(model, "docvlm-small");
        LiveServer live(engine);
        replay(live, std::string(DOCVLM_TEST_DATA) + "/../../examples/data/sample_page.png", true);
    }
    test::TempDir dir;
    const io::Tokenizer tok = test::tiny_tokenizer(dir);
    const auto model = Model<presets::Qwen2VL<F32>>::load(test::data("golden/qwen2vl-tiny-a"));
    QwenEngineOptions qo;
    qo.max_new_tokens = 24;  // a random model never stops by itself
    QwenChatEngine engine(model, tok, "tiny", qo);
    LiveServer live(engine);
    replay(live, test::data("golden/qwen2vl-tiny-a/input.png"), false);
    // a full queue is 429 with Retry-After, which MinerU's client honours before retrying
    QwenEngineOptions full = qo;
    full.max_queue = 0;
    QwenChatEngine busy(model, tok, "tiny", full);
    LiveServer busy_live(busy);
    nlohmann::json body = nlohmann::json::parse(with_image("text", test::data("golden/qwen2vl-tiny-a/input.png")));
    body["model"] = "tiny";
    auto r = busy_live.client().Post("/v1/chat/completions", body.dump(), "application/json");
    REQUIRE(r);
    CHECK(r->status == 429);
    CHECK(r->get_header_value("Retry-After") == "1");
}

TEST_CASE("HTTP server: an API key guards /v1/, the page and /health stay open") {
    const auto model = load_default_model<Int8PerChannel>();
    EmbeddedChatEngine engine(model, "docvlm-small");
    ServerOptions opt;
    opt.api_key = "s3cret";
    LiveServer live(engine, opt);
    auto cli = live.client();
    auto no = cli.Get("/v1/models");
    REQUIRE(no);
    CHECK(no->status == 401);
    CHECK(nlohmann::json::parse(no->body)["error"]["type"] == "authentication_error");
    CHECK(cli.Get("/v1/models", {{"Authorization", "Bearer wrong"}})->status == 401);
    CHECK(cli.Get("/v1/models", {{"Authorization", "Bearer s3cret"}})->status == 200);
    CHECK(cli.Get("/health")->status == 200);
    CHECK(cli.Get("/")->status == 200);
    // a refused POST leaves nothing of its body on a kept-alive connection for the next request
    httplib::Client keep("127.0.0.1", live.server.port());
    keep.set_keep_alive(true);
    auto refused = keep.Post("/v1/chat/completions", {{"Authorization", "Bearer wrong"}}, fixture("text"), "application/json");
    REQUIRE(refused);
    CHECK(refused->status == 401);
    auto next = keep.Get("/v1/models", {{"Authorization", "Bearer s3cret"}});
    REQUIRE(next);
    CHECK(next->status == 200);
}

TEST_CASE("HTTP server: /v1/parse parses images, TIFFs and PDFs; refuses bad files") {
    const auto model = load_default_model<Int8PerChannel>();
    EmbeddedChatEngine engine(model, "docvlm-small");
    LiveServer live(engine);
    auto cli = live.client();
    const std::string sample = read_bytes(std::string(DOCVLM_TEST_DATA) + "/../../examples/data/sample_page.png");
    auto md = cli.Post("/v1/parse", httplib::MultipartFormDataItems{{"file", sample, "page.png", "image/png"}});
    REQUIRE(md);
    CHECK(md->status == 200);
    CHECK(md->get_header_value("Content-Type").starts_with("text/markdown"));
    CHECK(md->body.find("Introduction") != std::string::npos);
    // the same page as the library parses it
    const pipeline::EmbeddedPageParser parser(model);
    CHECK(md->body == parser.parse(io::load_image(std::string(DOCVLM_TEST_DATA) + "/../../examples/data/sample_page.png")).markdown());

    auto pdf = cli.Post("/v1/parse", httplib::MultipartFormDataItems{{"file", read_bytes(test::data("pdf/two_pages.pdf")), "a.bin", ""},
                                                                      {"format", "json", "", ""}});
    REQUIRE(pdf);
    CHECK(pdf->status == 200);
    const auto pj = nlohmann::json::parse(pdf->body);
    REQUIRE(pj["pages"].size() == 2);
    CHECK(pj["pages"][1]["page"] == 2);

    // streamed: progress events, one event per page, the result last
    auto st = cli.Post("/v1/parse", httplib::MultipartFormDataItems{{"file", read_bytes(test::data("upload/two_pages.tiff")), "t.tiff", ""},
                                                                     {"stream", "1", "", ""}});
    REQUIRE(st);
    CHECK(st->status == 200);
    CHECK(st->body.find("event: progress") != std::string::npos);
    CHECK(st->body.find("event: page\ndata: {\"index\":2") != std::string::npos);
    const std::size_t result = st->body.find("event: result\ndata: ");
    REQUIRE(result != std::string::npos);
    const auto rj = nlohmann::json::parse(st->body.substr(result + 20));
    CHECK(rj.contains("markdown"));
    CHECK(nlohmann::json::parse(rj["json"].get<std::string>())["pages"].size() == 2);

    auto refused = [&](const std::string& bytes, int status, const char* code, const std::string& pages = "") {
        auto r = cli.Post("/v1/parse", httplib::MultipartFormDataItems{{"file", bytes, "x.png", "image/png"}, {"pages", pages, "", ""}});
        REQUIRE(r);
        CHECK(r->status == status);
        CHECK(nlohmann::json::parse(r->body)["error"]["code"] == code);
    };
    refused(read_bytes(test::data("upload/page.gif")), 415, "unsupported_file_type");
    refused(read_bytes(test::data("upload/polyglot.png")), 400, "polyglot_file");
    refused(read_bytes(test::data("upload/bomb.png")), 413, "image_too_large");
    refused(read_bytes(test::data("pdf/two_pages.pdf")).substr(0, 300), 400, "corrupt_document");
    refused(read_bytes(test::data("pdf/two_pages.pdf")), 400, "corrupt_document", "5");
    auto not_a_document = cli.Post("/v1/parse", "{}", "application/json");
    REQUIRE(not_a_document);
    CHECK(not_a_document->status == 415);
    auto nothing = cli.Post("/v1/parse", "", "application/octet-stream");
    REQUIRE(nothing);
    CHECK(nothing->status == 400);
    // the file as the body, the fields in the query string
    auto raw = cli.Post("/v1/parse?format=json&pages=2", read_bytes(test::data("pdf/two_pages.pdf")), "application/pdf");
    REQUIRE(raw);
    CHECK(raw->status == 200);
    CHECK(nlohmann::json::parse(raw->body)["pages"][0]["page"] == 2);
    // a form with a preamble before its first boundary (Node 18's fetch sends one)
    const std::string form = "\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.png\"\r\nContent-Type: image/png\r\n\r\n" +
                             sample + "\r\n--XyZ\r\nContent-Disposition: form-data; name=\"format\"\r\n\r\nhtml\r\n--XyZ--\r\n";
    auto pre = cli.Post("/v1/parse", form, "multipart/form-data; boundary=XyZ");
    REQUIRE(pre);
    CHECK(pre->status == 200);
    CHECK(pre->get_header_value("Content-Type").starts_with("text/html"));
}

TEST_CASE("POST /v1/parse with cross_page_tables: a table broken by the page break comes back joined") {
    // An engine whose pages are a table and its continuation (header repeated, the first row
    // continuing the last row's second cell); its check answers by the embedded model's rule.
    struct TableEngine final : ChatEngine {
        std::string id = "tables";
        std::atomic<int> calls{0};
        const std::string& model_id() const override { return id; }
        std::shared_ptr<ChatJob> submit(const ChatRequest&, std::vector<io::Image>) override { reject(400, "x", "no chat"); }
        pipeline::Document parse_page(const io::Image&, const ParseProgress&) override {
            pipeline::Document d;
            pipeline::Block b;
            b.type = "table", b.x0 = 0.1, b.x1 = 0.9, b.y0 = 0.2, b.y1 = 0.8;
            b.content = calls++ % 2 == 0 ? "<table><tr><td>Item</td><td>Note</td></tr><tr><td>A</td><td>starts here</td></tr></table>"
                                         : "<table><tr><td>Item</td><td>Note</td></tr><tr><td></td><td>and ends here</td></tr>"
                                           "<tr><td>B</td><td>new</td></tr></table>";
            d.blocks.push_back(b);
            return d;
        }
        void check_cross_page_tables(std::vector<pipeline::Document>& pages) override {
            pipeline::check_cross_page_tables(pages, [](const std::vector<std::string>& prompts) {
                std::vector<std::string> answers;
                for (const auto& p : prompts) answers.push_back(pipeline::cross_page_merge_answer(p).value_or(""));
                return answers;
            });
        }
        void drain() override {}
    } engine;
    LiveServer live(engine);
    auto cli = live.client();
    const std::string tiff = read_bytes(test::data("upload/two_pages.tiff"));
    auto joined = cli.Post("/v1/parse", httplib::MultipartFormDataItems{{"file", tiff, "t.tiff", ""}, {"format", "json", "", ""},
                                                                         {"cross_page_tables", "1", "", ""}});
    REQUIRE(joined);
    REQUIRE(joined->status == 200);
    const auto j = nlohmann::json::parse(joined->body);
    REQUIRE(j["pages"].size() == 2);
    REQUIRE(j["pages"][0]["blocks"].size() == 1);
    CHECK(j["pages"][0]["blocks"][0]["content"] ==
          "<table><tr><td>Item</td><td>Note</td></tr><tr><td>A</td><td>starts hereand ends here</td></tr><tr><td>B</td><td>new</td></tr></table>");
    CHECK(j["pages"][1]["blocks"].empty());
    auto apart = cli.Post("/v1/parse", httplib::MultipartFormDataItems{{"file", tiff, "t.tiff", ""}, {"format", "json", "", ""}});
    REQUIRE(apart);
    CHECK(nlohmann::json::parse(apart->body)["pages"][1]["blocks"].size() == 1);
}

TEST_CASE("HTTP server: stop() lets the requests in flight finish") {
    // An engine whose answers take 300 ms, so that stop() arrives while one is being computed.
    struct SlowEngine final : ChatEngine {
        std::string id = "slow";
        std::vector<std::thread> threads;
        const std::string& model_id() const override { return id; }
        std::shared_ptr<ChatJob> submit(const ChatRequest&, std::vector<io::Image>) override {
            auto job = std::make_shared<ChatJob>();
            threads.emplace_back([job] {
                std::this_thread::sleep_for(std::chrono::milliseconds(300));
                job->emit("done");
                job->finish({"done", "stop", 1, 1});
            });
            return job;
        }
        pipeline::Document parse_page(const io::Image&, const ParseProgress&) override { return {}; }
        void check_cross_page_tables(std::vector<pipeline::Document>&) override {}
        void drain() override {
            for (auto& t : threads) t.join();
            threads.clear();
        }
        ~SlowEngine() override { drain(); }
    } engine;
    auto live = std::make_unique<LiveServer>(engine);
    const int port = live->server.port();
    std::optional<httplib::Result> answer;
    std::thread client([&] {
        httplib::Client c("127.0.0.1", port);
        answer.emplace(c.Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}]})", "application/json"));
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    live.reset();  // stop() and join: returns only when the request in flight has its answer
    client.join();
    REQUIRE(answer.has_value());
    REQUIRE(*answer);
    CHECK((*answer)->status == 200);
    CHECK(nlohmann::json::parse((*answer)->body)["choices"][0]["message"]["content"] == "done");
    httplib::Client after("127.0.0.1", port);
    after.set_connection_timeout(1);
    CHECK_FALSE(after.Get("/health"));  // no longer listening
}

TEST_CASE("HTTP server under load: 16 clients x 8 requests, none fails, memory flat") {
    const auto model = load_default_model<Int8PerChannel>();
    EmbeddedChatEngine engine(model, "docvlm-small");
    LiveServer live(engine);
    const std::string body = with_image("text", std::string(DOCVLM_TEST_DATA) + "/../../examples/data/line.png");
    std::atomic<int> failed{0}, ok{0};
    std::size_t rss_first = 0;
    for (int round = 0; round < 8; ++round) {
        std::vector<std::thread> clients;
        for (int c = 0; c < 16; ++c)
            clients.emplace_back([&] {
                auto cli = live.client();
                auto r = cli.Post("/v1/chat/completions", body, "application/json");
                if (r && r->status == 200 && r->body.find("Cotton et al") != std::string::npos) {
                    ++ok;
                } else {
                    ++failed;
                    MESSAGE("failed: ", r ? std::to_string(r->status) + " " + r->body.substr(0, 300) : httplib::to_string(r.error()));
                }
            });
        for (auto& t : clients) t.join();
        if (round == 0) rss_first = resident_kib();
    }
    CHECK(failed == 0);
    CHECK(ok == 128);
    const std::size_t rss_last = resident_kib();
    INFO("resident after round 1: ", rss_first, " KiB, after round 8: ", rss_last, " KiB");
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer keeps freed memory in quarantine (up to 256 MB), so resident memory grows
    // with every allocation there; its leak checker covers this build instead.
    MESSAGE("resident memory not compared under AddressSanitizer");
#else
    CHECK(rss_last < rss_first + 32 * 1024);  // no growth with the number of requests served
#endif
}

}  // TEST_SUITE
