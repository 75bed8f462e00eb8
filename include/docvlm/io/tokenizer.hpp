// docvlm/io/tokenizer.hpp — Qwen2 byte-level BPE tokenizer (Qwen2 / Qwen2-VL / MinerU2.5).
//
// Reads a Hugging Face tokenizer.json (what checkpoints ship), or vocab.json + merges.txt plus a
// list of added tokens, or a tiktoken file (Qwen / Qwen-VL's qwen.tiktoken: the same vocabulary,
// encoded as tiktoken encodes: no normalisation, and any adjacent pair whose concatenation is a
// token may merge, lowest rank first). Encoding, exactly as Hugging Face's Qwen2 tokenizer:
//   1. added (special) tokens are split off first, longest match first, never normalised;
//   2. every other segment is NFC-normalised (utf8proc);
//   3. pre-tokenised with Qwen2's pattern
//        (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//      (implemented by hand over code points with Unicode categories, not with a regex engine);
//   4. each piece's UTF-8 bytes go through the GPT-2 byte-to-unicode map and BPE merges by rank.
// Decoding maps tokens back to bytes; invalid UTF-8 becomes U+FFFD (Python's errors="replace");
// StreamDecoder holds back incomplete UTF-8 sequences at token boundaries while streaming.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>

#include <docvlm/io/base64.hpp>
#include <docvlm/io/json.hpp>

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace io {

/// A token that is matched as a whole before BPE (e.g. "<|im_start|>").
struct AddedToken {
    std::string content;
    std::int32_t id = 0;
    bool special = true;
};

class Tokenizer {
public:
    /// Loads a Hugging Face tokenizer.json of a byte-level BPE model with Qwen2's pre-tokenizer;
    /// throws docvlm::Error naming the file and the field for anything else.
    static Tokenizer from_json(const std::string& path);
    /// Loads vocab.json + merges.txt and adds `added` tokens (ids must not collide with the vocab).
    static Tokenizer from_vocab_merges(const std::string& vocab_json, const std::string& merges_txt,
                                       const std::vector<AddedToken>& added);
    /// Loads a tiktoken BPE file ("base64(token bytes) rank" per line, ranks 0, 1, 2, ... = ids)
    /// and adds `added` tokens; encodes without NFC, as tiktoken does.
    static Tokenizer from_tiktoken(const std::string& path, const std::vector<AddedToken>& added);

    /// Token ids of `text` (no BOS/EOS added, as Qwen2).
    std::vector<std::int32_t> encode(std::string_view text) const;
    /// UTF-8 text of `ids`; skip_special drops added tokens marked special. An id outside the
    /// tokenizer throws (a model's vocabulary may be larger: its untrained rows have no text).
    std::string decode(std::span<const std::int32_t> ids, bool skip_special = false) const;
    /// The raw bytes one token stands for (may be part of a UTF-8 character).
    std::string token_bytes(std::int32_t id) const;
    /// The vocabulary string of a token (byte-level form for BPE tokens), as in vocab.json.
    const std::string& token_string(std::int32_t id) const;
    /// Id of an exact vocabulary or added-token string, if any.
    std::optional<std::int32_t> token_id(std::string_view token) const;
    bool is_special(std::int32_t id) const;
    /// One past the largest id.
    std::size_t size() const { return id_to_token_.size(); }
    const std::vector<AddedToken>& added_tokens() const { return added_; }
    /// Forgets the per-word BPE cache (it only speeds up repeated words; bounded to 100k words).
    void clear_cache() const {
        std::lock_guard lock(*cache_mutex_);
        cache_.clear();
    }

    /// Turns a stream of ids into UTF-8 text pieces, holding back incomplete characters.
    class StreamDecoder {
    public:
        explicit StreamDecoder(const Tokenizer& t, bool skip_special = false) : tok_(&t), skip_(skip_special) {}
        /// Text completed by this token (possibly empty).
        std::string push(std::int32_t id);
        /// Whatever is left at the end (incomplete sequences become U+FFFD).
        std::string finish();

    private:
        const Tokenizer* tok_;
        bool skip_;
        std::string pending_;
    };

private:
    void build_tables();
    void add_token(const AddedToken& t, const std::string& where);
    void encode_segment(std::string_view text, std::vector<std::int32_t>& out) const;
    void bpe(std::string_view piece, std::vector<std::int32_t>& out) const;

    std::unordered_map<std::string, std::int32_t> token_to_id_;
    std::vector<std::string> id_to_token_;
    std::vector<std::uint8_t> is_added_, is_special_;
    bool nfc_ = true;  // Hugging Face's NFC normaliser (tiktoken has none)
    std::unordered_map<std::uint64_t, std::pair<std::int32_t, std::int32_t>> merges_;  // (a, b) -> (rank, merged id)
    std::vector<AddedToken> added_;  // sorted longest first
    std::array<std::int32_t, 256> byte_token_{};  // id of the single-byte token for each byte
    // Small cache of BPE results per piece (most text repeats its words).
    mutable std::unordered_map<std::string, std::vector<std::int32_t>> cache_;
    mutable std::unique_ptr<std::mutex> cache_mutex_ = std::make_unique<std::mutex>();
};

/// UTF-8 text with invalid sequences replaced by U+FFFD, as Python's bytes.decode(errors="replace").
std::string utf8_replace_invalid(std::string_view bytes);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {

// GPT-2's reversible byte -> unicode code point map: printable bytes map to themselves, the others
// to 256, 257, ... in order.
inline const std::array<std::int32_t, 256>& byte_to_codepoint() {
    static const std::array<std::int32_t, 256> table = [] {
        std::array<std::int32_t, 256> t{};
        int next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            t[b] = printable ? b : next++;
        }
        return t;
    }();
    return table;
}

inline std::string encode_utf8(std::int32_t cp) {
    char buf[4];
    const auto n = utf8proc_encode_char(cp, reinterpret_cast<utf8proc_uint8_t*>(buf));
    return std::string(buf, std::size_t(n));
}

// Byte-level form of raw bytes (each byte -> its mapped code point, UTF-8 encoded).
inline std::string bytes_to_token_string(std::string_view bytes) {
    static const std::array<std::string, 256> enc = [] {
        std::array<std::string, 256> e;
        for (int b = 0; b < 256; ++b) e[b] = encode_utf8(byte_to_codepoint()[b]);
        return e;
    }();
    std::string s;
    s.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) s += enc[c];
    return s;
}

enum class CharClass : std::uint8_t { letter, number, space, newline, other };

inline bool is_white_space(std::int32_t c) {  // Unicode White_Space property
    return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
           c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

inline CharClass classify(std::int32_t c) {
    if (c == '\r' || c == '\n') return CharClass::newline;
    if (is_white_space(c)) return CharClass::space;
    switch (utf8proc_category(c)) {
        case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO: return CharClass::letter;
        case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO: return CharClass::number;
        default: return CharClass::other;
    }
}

// Splits NFC text into Qwen2 pre-tokens; calls emit(byte_begin, byte_end) for each.
template <class Emit>
void pretokenize(std::string_view text, Emit&& emit) {
    // Decode once into code points with their byte offsets and classes.
    std::vector<std::int32_t> cps;
    std::vector<std::size_t> offs;
    std::vector<CharClass> cls;
    cps.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        std::int32_t cp = 0;
        auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + i), utf8proc_ssize_t(text.size() - i), &cp);
        if (n <= 0) {  // invalid byte: treat as a lone "other" character of one byte
            cp = 0xfffd;
            n = 1;
        }
        cps.push_back(cp);
        offs.push_back(i);
        cls.push_back(classify(cp));
        i += std::size_t(n);
    }
    offs.push_back(text.size());
    const std::size_t n = cps.size();
    auto is_s = [&](std::size_t k) { return cls[k] == CharClass::space || cls[k] == CharClass::newline; };
    auto lower = [&](std::size_t k) { return cps[k] < 128 ? std::int32_t(std::tolower(cps[k])) : cps[k]; };
    std::size_t i = 0;
    while (i < n) {
        std::size_t end = i;
        // 1. contractions
        if (cps[i] == '\'' && i + 1 < n) {
            const std::int32_t a = lower(i + 1), b = i + 2 < n ? lower(i + 2) : 0;
            if (a == 's' || a == 't' || a == 'm' || a == 'd') end = i + 2;
            else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) end = i + 3;
        }
        // 2. [^\r\n\p{L}\p{N}]?\p{L}+
        if (end == i) {
            std::size_t j = i;
            if (cls[j] != CharClass::letter && cls[j] != CharClass::number && cls[j] != CharClass::newline && j + 1 < n &&
                cls[j + 1] == CharClass::letter)
                ++j;
            if (cls[j] == CharClass::letter) {
                while (j < n && cls[j] == CharClass::letter) ++j;
                end = j;
            }
        }
        // 3. \p{N}
        if (end == i && cls[i] == CharClass::number) end = i + 1;
        // 4. ' '?[^\s\p{L}\p{N}]+[\r\n]*
        if (end == i) {
            std::size_t j = i;
            if (cps[j] == ' ' && j + 1 < n && cls[j + 1] == CharClass::other) ++j;
            if (cls[j] == CharClass::other) {
                while (j < n && cls[j] == CharClass::other) ++j;
                while (j < n && cls[j] == CharClass::newline) ++j;
                end = j;
            }
        }
        if (end == i) {
            // whitespace run [i, ws)
            std::size_t ws = i;
            while (ws < n && is_s(ws)) ++ws;
            // 5. \s*[\r\n]+ : up to and including the last newline of the run
            std::size_t last_nl = n;
            for (std::size_t k = i; k < ws; ++k)
                if (cls[k] == CharClass::newline) last_nl = k;
            if (last_nl != n) end = last_nl + 1;
            // 6. \s+(?!\S) : the run, minus its last character when something follows
            else if (ws == n) end = ws;
            else if (ws - i >= 2) end = ws - 1;
            // 7. \s+
            else end = ws;
        }
        emit(offs[i], offs[end]);
        i = end;
    }
}

}  // namespace detail

inline std::string utf8_replace_invalid(std::string_view b) {
    std::string out;
    out.reserve(b.size());
    std::size_t i = 0;
    while (i < b.size()) {
        const unsigned char c = static_cast<unsigned char>(b[i]);
        std::size_t len = 0;
        std::uint32_t lo = 0x80, hi = 0xbf;  // allowed range of the second byte
        if (c < 0x80) len = 1;
        else if (c >= 0xc2 && c <= 0xdf) len = 2;
        else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        }
        if (len == 0) {  // invalid lead byte
            out += "\xef\xbf\xbd";
            ++i;
            continue;
        }
        // Maximal subpart: consume continuation bytes while they are valid.
        std::size_t k = 1;
        for (; k < len && i + k < b.size(); ++k) {
            const unsigned char cc = static_cast<unsigned char>(b[i + k]);
            const std::uint32_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xbf;
            if (cc < l || cc > h) break;
        }
        if (k == len) out.append(b.substr(i, len));
        else out += "\xef\xbf\xbd";
        i += k;
    }
    return out;
}

inline void Tokenizer::add_token(const AddedToken& t, const std::string& where) {
    if (t.id < 0) docvlm::detail::fail(where, ": added token '", t.content, "' has a negative id");
    if (t.content.empty()) docvlm::detail::fail(where, ": an added token has empty content");
    if (std::size_t(t.id) >= id_to_token_.size()) {
        if (std::size_t(t.id) > (1u << 24)) docvlm::detail::fail(where, ": added token id ", t.id, " is implausibly large");
        id_to_token_.resize(std::size_t(t.id) + 1);
    }
    auto it = token_to_id_.find(t.content);
    if (it != token_to_id_.end() && it->second != t.id)
        docvlm::detail::fail(where, ": added token '", t.content, "' has id ", t.id, " but the vocabulary says ", it->second);
    if (!id_to_token_[std::size_t(t.id)].empty() && id_to_token_[std::size_t(t.id)] != t.content)
        docvlm::detail::fail(where, ": id ", t.id, " is both '", id_to_token_[std::size_t(t.id)], "' and added token '", t.content, "'");
    id_to_token_[std::size_t(t.id)] = t.content;
    token_to_id_[t.content] = t.id;
    added_.push_back(t);
}

inline void Tokenizer::build_tables() {
    is_added_.assign(id_to_token_.size(), 0);
    is_special_.assign(id_to_token_.size(), 0);
    for (const AddedToken& t : added_) {
        is_added_[std::size_t(t.id)] = 1;
        is_special_[std::size_t(t.id)] = t.special;
    }
    std::stable_sort(added_.begin(), added_.end(), [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
    for (int b = 0; b < 256; ++b) {
        const auto it = token_to_id_.find(detail::encode_utf8(detail::byte_to_codepoint()[b]));
        if (it == token_to_id_.end()) docvlm::detail::fail("tokenizer: the vocabulary lacks the byte-level token for byte ", b);
        byte_token_[b] = it->second;
    }
}

namespace detail {
inline void add_merge(std::unordered_map<std::uint64_t, std::pair<std::int32_t, std::int32_t>>& merges,
                      const std::unordered_map<std::string, std::int32_t>& vocab, const std::string& a, const std::string& b,
                      std::int32_t rank, const std::string& where) {
    auto ia = vocab.find(a), ib = vocab.find(b), im = vocab.find(a + b);
    if (ia == vocab.end() || ib == vocab.end() || im == vocab.end())
        docvlm::detail::fail(where, ": merge ", rank, " ('", a, "' '", b, "') uses tokens missing from the vocabulary");
    merges.emplace((std::uint64_t(std::uint32_t(ia->second)) << 32) | std::uint32_t(ib->second), std::pair{rank, im->second});
}

inline void load_vocab(const nlohmann::json& v, std::unordered_map<std::string, std::int32_t>& t2i, std::vector<std::string>& i2t,
                       const std::string& where) {
    if (!v.is_object()) docvlm::detail::fail(where, ": vocab must be an object {token: id}");
    for (auto it = v.begin(); it != v.end(); ++it) {
        if (!it.value().is_number_integer() || it.value().get<std::int64_t>() < 0 || it.value().get<std::int64_t>() > (1 << 24))
            docvlm::detail::fail(where, ": vocab entry '", it.key(), "' has no valid id");
        const auto id = it.value().get<std::int32_t>();
        if (std::size_t(id) >= i2t.size()) i2t.resize(std::size_t(id) + 1);
        if (!i2t[std::size_t(id)].empty()) docvlm::detail::fail(where, ": id ", id, " appears twice in the vocabulary");
        i2t[std::size_t(id)] = it.key();
        t2i[it.key()] = id;
    }
}

}  // namespace detail

inline Tokenizer Tokenizer::from_json(const std::string& path) {
    const nlohmann::json j = read_json_file(path);
    auto need = [&](const nlohmann::json& obj, const char* key) -> const nlohmann::json& {
        if (!obj.is_object() || !obj.contains(key)) docvlm::detail::fail(path, ": missing field '", key, "'");
        return obj[key];
    };
    const auto& model = need(j, "model");
    if (json_string(model, "type", "", path) != "BPE")
        docvlm::detail::fail(path, ": model.type is '", json_string(model, "type", "?", path), "', docvlm reads byte-level BPE tokenizers");
    // The pre-tokenizer must be Qwen2's split + byte level (docvlm implements exactly that one).
    const std::string pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"].dump() : "null";
    if (pre.find("ByteLevel") == std::string::npos || pre.find("\\\\p{L}") == std::string::npos ||
        pre.find("(?i:'s|'t|'re|'ve|'m|'ll|'d)") == std::string::npos)
        docvlm::detail::fail(path, ": pre_tokenizer is not Qwen2's (regex split + ByteLevel): ", pre.substr(0, 200));
    Tokenizer t;
    detail::load_vocab(need(model, "vocab"), t.token_to_id_, t.id_to_token_, path);
    const auto& merges = need(model, "merges");
    if (!merges.is_array()) docvlm::detail::fail(path, ": model.merges must be an array");
    std::int32_t rank = 0;
    for (const auto& m : merges) {
        std::string a, b;
        if (m.is_string()) {  // "a b"
            const std::string s = m.get<std::string>();
            const auto sp = s.find(' ');
            if (sp == std::string::npos) docvlm::detail::fail(path, ": merge ", rank, " '", s, "' is not 'a b'");
            a = s.substr(0, sp);
            b = s.substr(sp + 1);
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["a", "b"]
            a = m[0].get<std::string>();
            b = m[1].get<std::string>();
        } else {
            docvlm::detail::fail(path, ": merge ", rank, " is neither \"a b\" nor [\"a\", \"b\"]");
        }
        detail::add_merge(t.merges_, t.token_to_id_, a, b, rank++, path);
    }
    if (j.contains("added_tokens")) {
        if (!j["added_tokens"].is_array()) docvlm::detail::fail(path, ": added_tokens must be an array");
        for (const auto& a : j["added_tokens"]) {
            if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") || !a["content"].is_string())
                docvlm::detail::fail(path, ": an added_tokens entry lacks an integer 'id' or a string 'content'");
            t.add_token({a["content"].get<std::string>(), std::int32_t(json_number(a, "id", 0, 0, 1 << 24, true, path)),
                         json_flag(a, "special", true, path)},
                        path);
        }
    }
    t.build_tables();
    return t;
}

inline Tokenizer Tokenizer::from_vocab_merges(const std::string& vocab_json, const std::string& merges_txt,
                                              const std::vector<AddedToken>& added) {
    Tokenizer t;
    detail::load_vocab(read_json_file(vocab_json), t.token_to_id_, t.id_to_token_, vocab_json);
    std::ifstream in(merges_txt, std::ios::binary);
    if (!in) docvlm::detail::fail(merges_txt, ": cannot open");
    std::string line;
    std::int32_t rank = 0;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line.rfind("#version", 0) == 0) continue;
        const auto sp = line.find(' ');
        if (sp == std::string::npos) docvlm::detail::fail(merges_txt, ": line '", line, "' is not 'a b'");
        detail::add_merge(t.merges_, t.token_to_id_, line.substr(0, sp), line.substr(sp + 1), rank++, merges_txt);
    }
    for (const AddedToken& a : added) t.add_token(a, vocab_json);
    t.build_tables();
    return t;
}

inline Tokenizer Tokenizer::from_tiktoken(const std::string& path, const std::vector<AddedToken>& added) {
    std::ifstream in(path, std::ios::binary);
    if (!in) docvlm::detail::fail(path, ": cannot open");
    Tokenizer t;
    t.nfc_ = false;
    std::vector<std::string> raw;  // token bytes by rank
    std::string line;
    for (std::size_t n = 1; std::getline(in, line); ++n) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        const auto sp = line.find(' ');
        const auto bytes = sp == std::string::npos ? std::nullopt : base64_decode(std::string_view(line).substr(0, sp));
        char* end = nullptr;
        const long rank = sp == std::string::npos ? -1 : std::strtol(line.c_str() + sp + 1, &end, 10);
        if (!bytes || bytes->empty() || rank != long(raw.size()) || (end && *end))
            docvlm::detail::fail(path, ": line ", n, " is not 'base64 rank' with rank ", raw.size());
        if (raw.size() >= (1u << 24)) docvlm::detail::fail(path, ": more than 2^24 tokens");
        raw.push_back(*bytes);
        const std::string token = detail::bytes_to_token_string(*bytes);
        if (!t.token_to_id_.emplace(token, std::int32_t(rank)).second) docvlm::detail::fail(path, ": line ", n, " repeats a token");
        t.id_to_token_.push_back(token);
    }
    // every split of a token into two tokens merges to it at its rank (tiktoken's rule)
    std::unordered_map<std::string_view, std::int32_t> by_bytes;
    for (std::size_t r = 0; r < raw.size(); ++r) by_bytes.emplace(raw[r], std::int32_t(r));
    for (std::size_t r = 0; r < raw.size(); ++r) {
        const std::string_view b = raw[r];
        for (std::size_t k = 1; k < b.size(); ++k) {
            const auto l = by_bytes.find(b.substr(0, k)), rr = by_bytes.find(b.substr(k));
            if (l != by_bytes.end() && rr != by_bytes.end())
                t.merges_.emplace((std::uint64_t(std::uint32_t(l->second)) << 32) | std::uint32_t(rr->second), std::pair{std::int32_t(r), std::int32_t(r)});
        }
    }
    for (const AddedToken& a : added) t.add_token(a, path);
    t.build_tables();
    return t;
}

inline void Tokenizer::bpe(std::string_view piece, std::vector<std::int32_t>& out) const {
    {
        std::lock_guard lock(*cache_mutex_);
        auto it = cache_.find(std::string(piece));
        if (it != cache_.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    std::vector<std::int32_t> sym;
    sym.reserve(piece.size());
    for (unsigned char c : piece) sym.push_back(byte_token_[c]);
    // Merge the lowest-ranked adjacent pair until none is left.
    while (sym.size() > 1) {
        std::int32_t best_rank = INT32_MAX, best_id = -1;
        std::size_t best = 0;
        for (std::size_t i = 0; i + 1 < sym.size(); ++i) {
            auto it = merges_.find((std::uint64_t(std::uint32_t(sym[i])) << 32) | std::uint32_t(sym[i + 1]));
            if (it != merges_.end() && it->second.first < best_rank) {
                best_rank = it->second.first;
                best_id = it->second.second;
                best = i;
            }
        }
        if (best_id < 0) break;
        // Merge every occurrence of this pair, left to right (as the reference implementation does).
        const std::int32_t a = sym[best], b = sym[best + 1];
        std::size_t w = 0;
        for (std::size_t i = 0; i < sym.size();) {
            if (i + 1 < sym.size() && sym[i] == a && sym[i + 1] == b) {
                sym[w++] = best_id;
                i += 2;
            } else {
                sym[w++] = sym[i++];
            }
        }
        sym.resize(w);
    }
    out.insert(out.end(), sym.begin(), sym.end());
    if (piece.size() <= 64) {
        std::lock_guard lock(*cache_mutex_);
        if (cache_.size() > 100000) cache_.clear();
        cache_.emplace(std::string(piece), std::move(sym));
    }
}

inline void Tokenizer::encode_segment(std::string_view text, std::vector<std::int32_t>& out) const {
    if (text.empty()) return;
    if (!nfc_) {
        detail::pretokenize(text, [&](std::size_t b, std::size_t e) { bpe(text.substr(b, e - b), out); });
        return;
    }
    // NFC of exactly these bytes, NULs included (utf8proc returns a malloc'd string; invalid
    // UTF-8 is kept as is)
    std::string nfc;
    utf8proc_uint8_t* p = nullptr;
    const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), utf8proc_ssize_t(text.size()), &p,
                                            utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (n >= 0) nfc.assign(reinterpret_cast<const char*>(p), std::size_t(n));
    else nfc = std::string(text);
    std::free(p);
    detail::pretokenize(nfc, [&](std::size_t b, std::size_t e) { bpe(std::string_view(nfc).substr(b, e - b), out); });
}

inline std::vector<std::int32_t> Tokenizer::encode(std::string_view text) const {
    std::vector<std::int32_t> out;
    std::size_t seg = 0, i = 0;
    while (i < text.size()) {
        const AddedToken* hit = nullptr;
        for (const AddedToken& a : added_)
            if (text.compare(i, a.content.size(), a.content) == 0) {
                hit = &a;
                break;
            }
        if (!hit) {
            ++i;
            continue;
        }
        encode_segment(text.substr(seg, i - seg), out);
        out.push_back(hit->id);
        i += hit->content.size();
        seg = i;
    }
    encode_segment(text.substr(seg), out);
    return out;
}

inline const std::string& Tokenizer::token_string(std::int32_t id) const {
    if (id < 0 || std::size_t(id) >= id_to_token_.size() || id_to_token_[std::size_t(id)].empty())
        docvlm::detail::fail("tokenizer: id ", id, " is not in the vocabulary (size ", id_to_token_.size(), ")");
    return id_to_token_[std::size_t(id)];
}

inline std::string Tokenizer::token_bytes(std::int32_t id) const {
    const std::string& s = token_string(id);
    if (is_added_[std::size_t(id)]) return s;
    static const std::unordered_map<std::int32_t, unsigned char> back = [] {
        std::unordered_map<std::int32_t, unsigned char> m;
        for (int b = 0; b < 256; ++b) m[detail::byte_to_codepoint()[b]] = static_cast<unsigned char>(b);
        return m;
    }();
    std::string bytes;
    for (std::size_t i = 0; i < s.size();) {
        std::int32_t cp = 0;
        const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i), utf8proc_ssize_t(s.size() - i), &cp);
        auto it = n > 0 ? back.find(cp) : back.end();
        if (it == back.end()) docvlm::detail::fail("tokenizer: token ", id, " '", s, "' is not in byte-level form");
        bytes += char(it->second);
        i += std::size_t(n);
    }
    return bytes;
}

inline std::optional<std::int32_t> Tokenizer::token_id(std::string_view token) const {
    auto it = token_to_id_.find(std::string(token));
    if (it == token_to_id_.end()) return std::nullopt;
    return it->second;
}

inline bool Tokenizer::is_special(std::int32_t id) const {
    return id >= 0 && std::size_t(id) < is_special_.size() && is_special_[std::size_t(id)];
}

inline std::string Tokenizer::decode(std::span<const std::int32_t> ids, bool skip_special) const {
    std::string bytes;
    for (std::int32_t id : ids) {
        if (skip_special && is_special(id)) continue;
        bytes += token_bytes(id);
    }
    return utf8_replace_invalid(bytes);
}

inline std::string Tokenizer::StreamDecoder::push(std::int32_t id) {
    if (skip_ && tok_->is_special(id)) return {};
    pending_ += tok_->token_bytes(id);
    // Emit everything up to the start of a trailing incomplete (but so far valid) sequence.
    std::size_t cut = pending_.size();
    for (std::size_t back = 1; back <= 3 && back <= pending_.size(); ++back) {
        const unsigned char c = static_cast<unsigned char>(pending_[pending_.size() - back]);
        if ((c & 0xc0) == 0x80) continue;  // continuation byte: keep looking for the lead
        const std::size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (need > back) cut = pending_.size() - back;
        break;
    }
    std::string done = utf8_replace_invalid(std::string_view(pending_).substr(0, cut));
    pending_.erase(0, cut);
    return done;
}

inline std::string Tokenizer::StreamDecoder::finish() {
    std::string rest = utf8_replace_invalid(pending_);
    pending_.clear();
    return rest;
}

}  // namespace io
DOCVLM_NAMESPACE_END
