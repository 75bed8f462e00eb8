// Tests of docvlm/io/tokenizer.hpp against Hugging Face's Qwen2 tokenizer: every case of
// tests/data/tokenizers/qwen2/tokenizer_tests.json and llama.cpp's qwen2 vocabulary tests.
#include "test_util.hpp"

#include <docvlm/io/tokenizer.hpp>
#include <docvlm/model/qwen_vl.hpp>

#include <fstream>
#include <map>
#include <sstream>

using namespace docvlm;
using docvlm::io::Tokenizer;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<io::AddedToken> qwen2vl_added() {
    std::vector<io::AddedToken> out;
    std::ifstream in(test::data("tokenizers/qwen2/tokenizer_tests.json"));
    const auto doc = nlohmann::json::parse(in);
    for (auto it = doc["special_tokens"].begin(); it != doc["special_tokens"].end(); ++it)
        out.push_back({it.key(), it.value().get<std::int32_t>(), true});
    return out;
}

const Tokenizer& qwen2() {
    static const Tokenizer t = Tokenizer::from_vocab_merges(test::data("tokenizers/qwen2/vocab.json"),
                                                            test::data("tokenizers/qwen2/merges.txt"), qwen2vl_added());
    return t;
}

// A tokenizer.json in Hugging Face's layout, assembled from the same vocab, merges and added tokens.
std::string write_tokenizer_json(const test::TempDir& dir, bool merges_as_pairs) {
    nlohmann::json vocab = nlohmann::json::parse(slurp(test::data("tokenizers/qwen2/vocab.json")));
    nlohmann::json merges = nlohmann::json::array();
    std::istringstream ms(slurp(test::data("tokenizers/qwen2/merges.txt")));
    std::string line;
    while (std::getline(ms, line)) {
        if (line.empty() || line.rfind("#version", 0) == 0) continue;
        const auto sp = line.find(' ');
        if (merges_as_pairs) merges.push_back({line.substr(0, sp), line.substr(sp + 1)});
        else merges.push_back(line);
    }
    nlohmann::json added = nlohmann::json::array();
    for (const auto& a : qwen2vl_added())
        added.push_back({{"id", a.id}, {"content", a.content}, {"special", true}, {"lstrip", false}, {"rstrip", false},
                         {"normalized", false}, {"single_word", false}});
    const std::string regex = R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    nlohmann::json j = {
        {"version", "1.0"},
        {"added_tokens", added},
        {"normalizer", {{"type", "NFC"}}},
        {"pre_tokenizer",
         {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}}}}},
        {"decoder", {{"type", "ByteLevel"}}},
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"byte_fallback", false}}}};
    const std::string path = dir / "tokenizer.json";
    std::ofstream(path) << j.dump();
    return path;
}

// qwen.tiktoken's layout (base64 token bytes and rank = id per line) for Qwen's 151,643 BPE tokens,
// the vocabulary Qwen2's vocab.json spells in byte-level form; written from vocab.json.
void write_qwen_tiktoken(const std::string& path) {
    const nlohmann::json vocab = nlohmann::json::parse(slurp(test::data("tokenizers/qwen2/vocab.json")));
    std::vector<std::string> by_id(vocab.size());
    std::map<std::int32_t, std::uint8_t> cp_to_byte;  // GPT-2's byte-level code points back to bytes
    for (int b = 0; b < 256; ++b) {
        const int cp = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255) ? b : -1;
        if (cp >= 0) cp_to_byte[cp] = std::uint8_t(b);
    }
    for (int b = 0, next = 256; b < 256; ++b)
        if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) cp_to_byte[next++] = std::uint8_t(b);
    static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        std::string bytes;
        const std::string& s = it.key();
        for (std::size_t i = 0; i < s.size();) {  // UTF-8 code points → bytes
            const auto c = std::uint8_t(s[i]);
            const int n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
            std::int32_t cp = n == 1 ? c : c & (0xff >> (n + 1));
            for (int k = 1; k < n; ++k) cp = cp << 6 | (std::uint8_t(s[i + std::size_t(k)]) & 0x3f);
            bytes += char(cp_to_byte.at(cp));
            i += std::size_t(n);
        }
        std::string enc;
        for (std::size_t i = 0; i < bytes.size(); i += 3) {
            std::uint32_t x = std::uint32_t(std::uint8_t(bytes[i])) << 16;
            if (i + 1 < bytes.size()) x |= std::uint32_t(std::uint8_t(bytes[i + 1])) << 8;
            if (i + 2 < bytes.size()) x |= std::uint8_t(bytes[i + 2]);
            enc += b64[x >> 18], enc += b64[(x >> 12) & 63];
            enc += i + 1 < bytes.size() ? b64[(x >> 6) & 63] : '=';
            enc += i + 2 < bytes.size() ? b64[x & 63] : '=';
        }
        by_id[std::size_t(it.value().get<std::int32_t>())] = enc;
    }
    std::ofstream f(path);
    for (std::size_t id = 0; id < by_id.size(); ++id) f << by_id[id] << ' ' << id << '\n';
}

}  // namespace

TEST_SUITE("tokenizer") {

TEST_CASE("every case of tokenizer_tests.json: ids and decoded text") {
    std::ifstream in(test::data("tokenizers/qwen2/tokenizer_tests.json"));
    const auto doc = nlohmann::json::parse(in);
    int n = 0;
    for (const auto& c : doc["cases"]) {
        const std::string text = c["text"];
        CAPTURE(text);
        const auto ids = qwen2().encode(text);
        CHECK(ids == c["ids"].get<std::vector<std::int32_t>>());
        if (c.contains("decoded")) CHECK(qwen2().decode(c["ids"].get<std::vector<std::int32_t>>()) == c["decoded"].get<std::string>());
        if (c.contains("decoded_skip_special"))
            CHECK(qwen2().decode(c["ids"].get<std::vector<std::int32_t>>(), true) == c["decoded_skip_special"].get<std::string>());
        if (c.contains("tokens")) {
            const auto toks = c["tokens"].get<std::vector<std::string>>();
            REQUIRE(toks.size() == ids.size());
            for (std::size_t i = 0; i < ids.size(); ++i) CHECK(qwen2().token_string(ids[i]) == toks[i]);
        }
        ++n;
    }
    MESSAGE(n, " cases");
    CHECK(n == 71);
}

TEST_CASE("llama.cpp qwen2 vocabulary tests (.inp / .out)") {
    const std::string inp = slurp(test::data("tokenizers/qwen2/llamacpp/ggml-vocab-qwen2.gguf.inp"));
    std::istringstream out(slurp(test::data("tokenizers/qwen2/llamacpp/ggml-vocab-qwen2.gguf.out")));
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> texts;
    for (std::size_t pos = 0;;) {
        const auto next = inp.find(sep, pos);
        if (next == std::string::npos) break;
        texts.push_back(inp.substr(pos, next - pos));
        pos = next + sep.size();
    }
    std::string line;
    std::size_t i = 0;
    while (std::getline(out, line) && i < texts.size()) {
        std::istringstream ls(line);
        std::vector<std::int32_t> want;
        for (std::int32_t id; ls >> id;) want.push_back(id);
        CAPTURE(texts[i]);
        CHECK(qwen2().encode(texts[i]) == want);
        ++i;
    }
    CHECK(i == 43);
}

TEST_CASE("a tiktoken file of the same vocabulary (Qwen's qwen.tiktoken layout) encodes the NFC-stable cases alike") {
    test::TempDir dir;
    write_qwen_tiktoken(dir / "qwen.tiktoken");
    const Tokenizer tik = Tokenizer::from_tiktoken(dir / "qwen.tiktoken", qwen2vl_added());
    CHECK(tik.size() == qwen2().size());
    std::ifstream in(test::data("tokenizers/qwen2/tokenizer_tests.json"));
    const auto doc = nlohmann::json::parse(in);
    int n = 0;
    for (const auto& c : doc["cases"]) {
        const std::string text = c["text"];
        utf8proc_uint8_t* p = nullptr;
        const auto len = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), utf8proc_ssize_t(text.size()), &p,
                                      utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
        const bool nfc_stable = len >= 0 && std::string(reinterpret_cast<const char*>(p), std::size_t(len)) == text;
        std::free(p);
        if (!nfc_stable) continue;  // Hugging Face normalises to NFC first, tiktoken does not
        CAPTURE(text);
        CHECK(tik.encode(text) == c["ids"].get<std::vector<std::int32_t>>());
        CHECK(tik.decode(c["ids"].get<std::vector<std::int32_t>>()) == qwen2().decode(c["ids"].get<std::vector<std::int32_t>>()));
        ++n;
    }
    MESSAGE(n, " NFC-stable cases");
    CHECK(n >= 60);
    std::ofstream(dir / "bad.tiktoken") << "SGVsbG8= 0\nnot-base64! 1\n";
    CHECK_ERROR_HAS(Tokenizer::from_tiktoken(dir / "bad.tiktoken", {}), "bad.tiktoken", "line 2");
}

TEST_CASE("Qwen-VL-Chat's prompt: make_context's tokens equal its raw text's, the image span as pads") {
    test::TempDir dir;
    write_qwen_tiktoken(dir / "qwen.tiktoken");
    const Tokenizer tok = Tokenizer::from_tiktoken(dir / "qwen.tiktoken", qwen_vl_special_tokens());
    CHECK(tok.token_id("<|im_start|>") == 151644);
    CHECK(tok.token_id("<img>") == 151857);  // Qwen-VL-Chat's config.json visual.image_start_id
    CHECK(tok.token_id("<imgpad>") == 151859);
    const QwenVLDims d;                        // Qwen-VL-Chat: 256 queries
    const auto ids = qwen_vl_prompt(tok, d, "What is the title of this page?");
    std::string pads;
    for (std::size_t i = 0; i < d.queries; ++i) pads += "<imgpad>";
    CHECK(ids == tok.encode("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nPicture 1: <img>" + pads +
                            "</img>\nWhat is the title of this page?<|im_end|>\n<|im_start|>assistant\n"));
}

TEST_CASE("tokenizer.json (both merge spellings) loads the same tokenizer") {
    test::TempDir dir;
    for (bool pairs : {false, true}) {
        const Tokenizer t = Tokenizer::from_json(write_tokenizer_json(dir, pairs));
        for (const char* s : {"Hello world", "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>\nText Recognition:<|im_end|>",
                              "\\frac{a}{b} 12345 中文 😀", "  trailing  \n\n"})
            CHECK(t.encode(s) == qwen2().encode(s));
        CHECK(t.token_id("<|image_pad|>") == 151655);
        CHECK(t.is_special(151645));
        CHECK_FALSE(t.is_special(100));
    }
}

TEST_CASE("malformed tokenizer files are refused with a clear error") {
    test::TempDir dir;
    auto write = [&](const std::string& text) {
        std::ofstream(dir / "t.json") << text;
        return dir / "t.json";
    };
    CHECK_ERROR_HAS(Tokenizer::from_json(write("{not json")), "t.json", "not valid JSON");
    CHECK_ERROR_HAS(Tokenizer::from_json(write(R"({"model": {"type": "Unigram"}})")), "t.json", "Unigram");
    CHECK_ERROR_HAS(Tokenizer::from_json(write(R"({"model": {"type": "BPE"}, "pre_tokenizer": {"type": "Whitespace"}})")),
                    "pre_tokenizer is not Qwen2's");
    const std::string pre = R"("pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"}}, {"type": "ByteLevel"}]})";
    CHECK_ERROR_HAS(Tokenizer::from_json(write("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}, " + pre + "}")),
                    "merge 0", "missing from the vocabulary");
    CHECK_ERROR_HAS(Tokenizer::from_json(write("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}, \"merges\": []}, " + pre + "}")),
                    "'a'", "no valid id");
    CHECK_ERROR_HAS(Tokenizer::from_json(write("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, " + pre + "}")),
                    "lacks the byte-level token");
    CHECK_ERROR_HAS(Tokenizer::from_json(write("{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": [3]}, " + pre + "}")),
                    "merge 0 is neither");
    CHECK_ERROR_HAS(Tokenizer::from_json(dir / "missing.json"), "missing.json", "cannot open");
    CHECK_ERROR_HAS(qwen2().decode(std::vector<std::int32_t>{5, 999999}), "id 999999");
}

TEST_CASE("streaming decode holds back split UTF-8 and equals the full decode") {
    const std::string text = "中文 😀 naïve café — ∑ x² 𝔘𝔫𝔦 龘靐齉 <|im_end|> done";
    const auto ids = qwen2().encode(text);
    Tokenizer::StreamDecoder sd(qwen2());
    std::string streamed;
    bool split_seen = false;
    for (std::int32_t id : ids) {
        const std::string piece = sd.push(id);
        CHECK(piece.find("\xef\xbf\xbd") == std::string::npos);  // never a replacement char mid-stream
        split_seen |= piece.empty();
        streamed += piece;
    }
    streamed += sd.finish();
    CHECK(streamed == text);
    CHECK(split_seen);  // some token ended inside a character
    CHECK(qwen2().decode(ids) == text);
    Tokenizer::StreamDecoder skip(qwen2(), true);
    std::string no_special;
    for (std::int32_t id : ids) no_special += skip.push(id);
    CHECK(no_special.find("<|im_end|>") == std::string::npos);
    CHECK(io::utf8_replace_invalid("a\xe4\xb8") == "a\xef\xbf\xbd");
    CHECK(io::utf8_replace_invalid("\xff\xc3\xa9\xed\xa0\x80") == "\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

}  // TEST_SUITE

TEST_CASE("text with NUL bytes and combining marks: every byte is encoded, decomposed letters come back composed (NFC)") {
    using namespace std::string_literals;
    const std::string text = "a\0b\0\0c "s + "e\xcc\x81";  // "e" + U+0301 COMBINING ACUTE ACCENT
    const auto ids = qwen2().encode(text);
    CHECK(qwen2().decode(ids) == "a\0b\0\0c "s + "\xc3\xa9");  // U+00E9, as Hugging Face's NFC normaliser gives
    const std::string bad = "x\xff\xfe y";  // invalid UTF-8: every byte is encoded; decode shows U+FFFD for each
    std::string bytes;
    for (std::int32_t id : qwen2().encode(bad)) bytes += qwen2().token_bytes(id);
    CHECK(bytes == bad);
    CHECK(qwen2().decode(qwen2().encode(bad)) == "x\xef\xbf\xbd\xef\xbf\xbd y");
}
