// docvlm/io/sentencepiece.hpp — SentencePiece BPE tokenizer (LLaMA / LLaVA-1.5 `tokenizer.model`),
// encoding as transformers' slow LlamaTokenizer with legacy = true:
//   1. added tokens (<s>, </s>, <unk>, <image>, <pad>, ... from tokenizer_config.json's
//      added_tokens_decoder and added_tokens.json) are split off first, longest match first;
//   2. every other chunk goes to SentencePiece on its own: spaces become U+2581 "▁" and one "▁" is
//      put in front (add_dummy_prefix); symbols start as single characters and the adjacent pair
//      whose concatenation is a piece with the highest score is merged (leftmost on ties) until
//      no pair is a piece; a symbol that is not a piece becomes its UTF-8 bytes' <0xNN> pieces
//      (byte_fallback) or <unk>;
//   3. <s> is put first when add_bos_token.
// Decoding is SentencePiece's for the model's pieces (added tokens beyond them read as their
// text): control pieces vanish, <unk> reads " ⁇ ", byte pieces are joined
// into UTF-8 (invalid sequences become U+FFFD), "▁" reads as a space and the first piece loses
// its leading one. The model file is protobuf (sentencepiece_model.proto), read here field by
// field; anything malformed throws docvlm::Error naming the file.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/io/json.hpp>
#include <docvlm/io/tokenizer.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace io {

class SentencePieceTokenizer {
public:
    enum class PieceType : std::uint8_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

    /// Reads a SentencePiece BPE model (tokenizer.model bytes); `source` names it in errors.
    static SentencePieceTokenizer from_model(std::span<const std::uint8_t> bytes, const std::string& source);
    /// Reads a Hugging Face LLaMA tokenizer folder: tokenizer.model, plus tokenizer_config.json
    /// (add_bos_token, add_eos_token, added_tokens_decoder) and added_tokens.json when present.
    static SentencePieceTokenizer from_folder(const std::string& dir);

    /// Adds a token matched as a whole before SentencePiece (its id may extend the vocabulary).
    void add_token(const AddedToken& t);
    /// Token ids of `text`: <s> first when add_bos (default: the folder's add_bos_token).
    std::vector<std::int32_t> encode(std::string_view text, std::optional<bool> add_bos = {}) const;
    /// SentencePiece's decoding of `ids`; skip_special drops added tokens marked special. An id
    /// outside the tokenizer throws (a model's vocabulary may be larger: its untrained rows).
    std::string decode(std::span<const std::int32_t> ids, bool skip_special = false) const;
    /// The piece of a token ("▁Hello", "<0x0A>", "<s>", "<image>").
    const std::string& token_string(std::int32_t id) const;
    std::optional<std::int32_t> token_id(std::string_view piece) const;
    /// One past the largest id (pieces and added tokens).
    std::size_t size() const { return pieces_.size(); }
    std::int32_t bos_id() const { return bos_; }
    std::int32_t eos_id() const { return eos_; }

private:
    struct Piece {
        std::string text;
        float score = 0;
        PieceType type = PieceType::normal;
        bool added = false, special = false;
    };
    void encode_chunk(std::string_view text, std::vector<std::int32_t>& out) const;

    std::vector<Piece> pieces_;
    std::size_t model_pieces_ = 0;  // ids below: pieces of the model file; above: added tokens
    std::unordered_map<std::string, std::int32_t> mergeable_;  // normal / user-defined pieces: what merges may make
    std::unordered_map<std::string, std::int32_t> lookup_;     // every piece and added token
    std::vector<AddedToken> added_;
    std::int32_t unk_ = 0, bos_ = 1, eos_ = 2, byte_[256] = {};
    bool byte_fallback_ = false, dummy_prefix_ = true, add_bos_ = true, add_eos_ = false;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {
// A protobuf message: fields read one at a time (wire types 0 varint, 1 fixed64, 2 bytes, 5 fixed32).
struct ProtoReader {
    std::span<const std::uint8_t> b;
    std::size_t at = 0;
    const std::string* source;

    bool done() const { return at >= b.size(); }
    std::uint64_t varint() {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (at >= b.size()) docvlm::detail::fail(*source, ": truncated SentencePiece model (varint)");
            const std::uint8_t c = b[at++];
            v |= std::uint64_t(c & 0x7f) << shift;
            if (!(c & 0x80)) return v;
        }
        docvlm::detail::fail(*source, ": malformed SentencePiece model (varint longer than 10 bytes)");
    }
    std::span<const std::uint8_t> bytes() {
        const std::uint64_t n = varint();
        if (n > b.size() - at) docvlm::detail::fail(*source, ": truncated SentencePiece model (a field of ", n, " bytes)");
        const auto s = b.subspan(at, std::size_t(n));
        at += std::size_t(n);
        return s;
    }
    std::uint32_t fixed32() {
        if (b.size() - at < 4) docvlm::detail::fail(*source, ": truncated SentencePiece model (fixed32)");
        std::uint32_t v;
        std::memcpy(&v, b.data() + at, 4);  // little-endian on every target docvlm builds for
        at += 4;
        return v;
    }
    void skip(int wire) {
        switch (wire) {
            case 0: varint(); break;
            case 1:
                if (b.size() - at < 8) docvlm::detail::fail(*source, ": truncated SentencePiece model (fixed64)");
                at += 8;
                break;
            case 2: bytes(); break;
            case 5: fixed32(); break;
            default: docvlm::detail::fail(*source, ": malformed SentencePiece model (wire type ", wire, ")");
        }
    }
    // Calls f(field, wire) for each field; f reads the value or returns false to have it skipped.
    template <class F>
    void each(F&& f) {
        while (!done()) {
            const std::uint64_t key = varint();
            const int field = int(key >> 3), wire = int(key & 7);
            if (!f(field, wire)) skip(wire);
        }
    }
};
}  // namespace detail

inline SentencePieceTokenizer SentencePieceTokenizer::from_model(std::span<const std::uint8_t> bytes, const std::string& source) {
    SentencePieceTokenizer t;
    int model_type = 1;  // UNIGRAM unless the trainer spec says otherwise
    std::uint64_t pieces_seen = 0;
    detail::ProtoReader top{bytes, 0, &source};
    top.each([&](int field, int wire) {
        if (wire != 2) return false;
        detail::ProtoReader sub{top.bytes(), 0, &source};
        if (field == 1) {  // SentencePiece { piece = 1; score = 2; type = 3 }
            if (++pieces_seen > (1u << 22)) docvlm::detail::fail(source, ": more than 4M pieces");
            Piece p;
            sub.each([&](int f, int w) {
                if (f == 1 && w == 2) {
                    const auto s = sub.bytes();
                    p.text.assign(s.begin(), s.end());
                } else if (f == 2 && w == 5) {
                    const std::uint32_t u = sub.fixed32();
                    std::memcpy(&p.score, &u, 4);
                } else if (f == 3 && w == 0) {
                    const std::uint64_t ty = sub.varint();
                    if (ty < 1 || ty > 6) docvlm::detail::fail(source, ": piece type ", ty, " is not one SentencePiece defines");
                    p.type = PieceType(ty);
                } else {
                    return false;
                }
                return true;
            });
            if (p.text.empty()) docvlm::detail::fail(source, ": piece ", t.pieces_.size(), " is empty");
            t.pieces_.push_back(std::move(p));
        } else if (field == 2) {  // TrainerSpec { model_type = 3; byte_fallback = 35 }
            sub.each([&](int f, int w) {
                if (w != 0 || (f != 3 && f != 35)) return false;
                const std::uint64_t v = sub.varint();
                if (f == 3) model_type = int(v);
                else t.byte_fallback_ = v != 0;
                return true;
            });
        } else if (field == 3) {  // NormalizerSpec { name = 1; precompiled_charsmap = 2; add_dummy_prefix = 3; remove_extra_whitespaces = 4 }
            sub.each([&](int f, int w) {
                if (f == 2 && w == 2) {
                    if (!sub.bytes().empty())
                        docvlm::detail::fail(source, ": the normalizer has a precompiled character map (NFKC); docvlm reads identity-normalised models (LLaMA's)");
                } else if ((f == 3 || f == 4) && w == 0) {
                    const bool v = sub.varint() != 0;
                    if (f == 3) t.dummy_prefix_ = v;
                    else if (v) docvlm::detail::fail(source, ": remove_extra_whitespaces is set; docvlm reads models without it (LLaMA's)");
                } else {
                    return false;
                }
                return true;
            });
        } else {
            return false;
        }
        return true;
    });
    if (model_type != 2) docvlm::detail::fail(source, ": model type ", model_type, " is not BPE (2); docvlm reads SentencePiece BPE models");
    if (t.pieces_.empty()) docvlm::detail::fail(source, ": no pieces");
    t.model_pieces_ = t.pieces_.size();
    bool have_unk = false;
    for (std::int32_t& b : t.byte_) b = -1;
    for (std::size_t i = 0; i < t.pieces_.size(); ++i) {
        const Piece& p = t.pieces_[i];
        const auto id = std::int32_t(i);
        if (!t.lookup_.emplace(p.text, id).second) docvlm::detail::fail(source, ": piece '", p.text, "' appears twice");
        if (p.type == PieceType::normal || p.type == PieceType::user_defined) t.mergeable_.emplace(p.text, id);
        if (p.type == PieceType::unknown) t.unk_ = id, have_unk = true;
        if (p.type == PieceType::byte) {
            unsigned v = 0;
            if (p.text.size() != 6 || std::sscanf(p.text.c_str(), "<0x%2X>", &v) != 1)
                docvlm::detail::fail(source, ": byte piece '", p.text, "' is not <0xNN>");
            t.byte_[v] = id;
        }
        if (p.type == PieceType::control && p.text == "<s>") t.bos_ = id;
        if (p.type == PieceType::control && p.text == "</s>") t.eos_ = id;
    }
    if (!have_unk) docvlm::detail::fail(source, ": no <unk> piece");
    if (t.byte_fallback_)
        for (int v = 0; v < 256; ++v)
            if (t.byte_[v] < 0) docvlm::detail::fail(source, ": byte_fallback is set but piece <0x", std::hex, v, "> is missing");
    return t;
}

inline SentencePieceTokenizer SentencePieceTokenizer::from_folder(const std::string& dir) {
    namespace fs = std::filesystem;
    const std::string model = (fs::path(dir) / "tokenizer.model").string();
    std::ifstream in(model, std::ios::binary);
    if (!in) docvlm::detail::fail(model, ": cannot open");
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SentencePieceTokenizer t = from_model(bytes, model);
    const std::string cfg = (fs::path(dir) / "tokenizer_config.json").string();
    if (fs::exists(cfg)) {
        const nlohmann::json j = read_json_file(cfg);
        if (!j.is_object()) docvlm::detail::fail(cfg, ": expected a JSON object");
        t.add_bos_ = json_flag(j, "add_bos_token", true, cfg);
        t.add_eos_ = json_flag(j, "add_eos_token", false, cfg);
        if (j.contains("added_tokens_decoder")) {
            const auto& a = j["added_tokens_decoder"];
            if (!a.is_object()) docvlm::detail::fail(cfg, ": added_tokens_decoder must be an object");
            for (const auto& [key, v] : a.items()) {
                char* end = nullptr;
                const long id = std::strtol(key.c_str(), &end, 10);
                if (key.empty() || *end || id < 0 || id >= (1 << 24) || !v.is_object())
                    docvlm::detail::fail(cfg, ": added_tokens_decoder key '", key, "' is not a token id with an object");
                t.add_token({json_string(v, "content", "", cfg), std::int32_t(id), json_flag(v, "special", true, cfg)});
            }
        }
    }
    const std::string added = (fs::path(dir) / "added_tokens.json").string();
    if (fs::exists(added)) {
        const nlohmann::json j = read_json_file(added);
        if (!j.is_object()) docvlm::detail::fail(added, ": expected an object of token → id");
        for (const auto& [content, v] : j.items()) {
            if (!v.is_number_integer() || v.get<long long>() < 0 || v.get<long long>() >= (1 << 24))
                docvlm::detail::fail(added, ": the id of '", content, "' is not an integer in [0, 2^24)");
            if (!t.token_id(content)) t.add_token({content, v.get<std::int32_t>(), true});
        }
    }
    return t;
}

inline void SentencePieceTokenizer::add_token(const AddedToken& a) {
    if (a.content.empty()) docvlm::detail::fail("added token ", a.id, " is empty");
    if (a.id < 0 || a.id >= (1 << 24)) docvlm::detail::fail("added token '", a.content, "' has id ", a.id, " outside [0, 2^24)");
    const auto id = std::size_t(a.id);
    if (id < pieces_.size() && !pieces_[id].added && pieces_[id].text != a.content)
        docvlm::detail::fail("added token '", a.content, "' would replace piece ", id, " '", pieces_[id].text, "'");
    if (id >= pieces_.size()) pieces_.resize(id + 1, Piece{"", 0, PieceType::unused, true, false});
    Piece& p = pieces_[id];
    if (p.added && !p.text.empty() && p.text != a.content) lookup_.erase(p.text);
    p.text = a.content;
    p.added = true;
    p.special = a.special;
    lookup_[a.content] = a.id;
    std::erase_if(added_, [&](const AddedToken& x) { return x.id == a.id; });
    added_.push_back(a);
}

inline const std::string& SentencePieceTokenizer::token_string(std::int32_t id) const {
    if (id < 0 || std::size_t(id) >= pieces_.size()) docvlm::detail::fail("token id ", id, " is outside the vocabulary of ", pieces_.size());
    return pieces_[std::size_t(id)].text;
}

inline std::optional<std::int32_t> SentencePieceTokenizer::token_id(std::string_view piece) const {
    const auto it = lookup_.find(std::string(piece));
    if (it == lookup_.end()) return std::nullopt;
    return it->second;
}

inline std::vector<std::int32_t> SentencePieceTokenizer::encode(std::string_view text, std::optional<bool> add_bos) const {
    std::vector<std::int32_t> out;
    if (add_bos.value_or(add_bos_)) out.push_back(bos_);
    std::size_t start = 0, i = 0;
    while (i < text.size()) {  // split off added tokens, the longest one where several start
        const AddedToken* best = nullptr;
        for (const AddedToken& a : added_)
            if (text.substr(i, a.content.size()) == a.content && (!best || a.content.size() > best->content.size())) best = &a;
        if (!best) {
            ++i;
            continue;
        }
        encode_chunk(text.substr(start, i - start), out);
        out.push_back(best->id);
        i += best->content.size();
        start = i;
    }
    encode_chunk(text.substr(start), out);
    if (add_eos_) out.push_back(eos_);
    return out;
}

inline void SentencePieceTokenizer::encode_chunk(std::string_view text, std::vector<std::int32_t>& out) const {
    if (text.empty()) return;
    static constexpr std::string_view space = "\xe2\x96\x81";  // U+2581
    std::string s;
    s.reserve(text.size() + 3 * 8);
    if (dummy_prefix_) s += space;
    for (char c : text) {
        if (c == ' ') s += space;
        else s += c;
    }
    // symbols: one UTF-8 character each (a stray byte on its own), as a doubly linked list
    struct Symbol {
        std::size_t begin, size;
        int prev, next;
    };
    std::vector<Symbol> sym;
    for (std::size_t at = 0; at < s.size();) {
        const auto c = std::uint8_t(s[at]);
        std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
        if (at + n > s.size()) n = 1;
        for (std::size_t k = 1; k < n; ++k)
            if ((std::uint8_t(s[at + k]) & 0xc0) != 0x80) n = 1;
        sym.push_back({at, n, int(sym.size()) - 1, int(sym.size()) + 1});
        at += n;
    }
    sym.back().next = -1;
    // the agenda: candidate merges by score (highest first), then by position (leftmost first)
    struct Pair {
        float score;
        int left, right;
        std::size_t size;
    };
    auto worse = [](const Pair& a, const Pair& b) { return a.score != b.score ? a.score < b.score : a.left > b.left; };
    std::priority_queue<Pair, std::vector<Pair>, decltype(worse)> agenda(worse);
    auto consider = [&](int l, int r) {
        if (l < 0 || r < 0) return;
        const auto it = mergeable_.find(s.substr(sym[std::size_t(l)].begin, sym[std::size_t(l)].size + sym[std::size_t(r)].size));
        if (it != mergeable_.end()) agenda.push({pieces_[std::size_t(it->second)].score, l, r, sym[std::size_t(l)].size + sym[std::size_t(r)].size});
    };
    for (std::size_t k = 0; k + 1 < sym.size(); ++k) consider(int(k), int(k + 1));
    while (!agenda.empty()) {
        const Pair p = agenda.top();
        agenda.pop();
        Symbol &l = sym[std::size_t(p.left)], &r = sym[std::size_t(p.right)];
        if (l.size == 0 || r.size == 0 || l.next != p.right || l.size + r.size != p.size) continue;  // stale
        l.size += r.size;
        r.size = 0;
        l.next = r.next;
        if (r.next >= 0) sym[std::size_t(r.next)].prev = p.left;
        consider(l.prev, p.left);
        consider(p.left, l.next);
    }
    for (int k = 0; k >= 0; k = sym[std::size_t(k)].next) {
        const std::string_view piece(s.data() + sym[std::size_t(k)].begin, sym[std::size_t(k)].size);
        const auto it = mergeable_.find(std::string(piece));
        if (it != mergeable_.end()) out.push_back(it->second);
        else if (byte_fallback_)
            for (char c : piece) out.push_back(byte_[std::uint8_t(c)]);
        else out.push_back(unk_);
    }
}

inline std::string SentencePieceTokenizer::decode(std::span<const std::int32_t> ids, bool skip_special) const {
    static constexpr std::string_view space = "\xe2\x96\x81";
    std::string out, bytes;
    bool first = true;  // the first piece that writes text loses one leading "▁"
    auto put = [&](std::string_view piece) {
        if (first && piece.starts_with(space)) piece.remove_prefix(space.size());
        for (std::size_t at = 0; at < piece.size();) {
            if (piece.substr(at, space.size()) == space) out += ' ', at += space.size();
            else out += piece[at++];
        }
        first = false;
    };
    auto flush = [&] {
        if (bytes.empty()) return;
        const std::string text = utf8_replace_invalid(bytes);
        bytes.clear();
        put(text);
    };
    for (std::int32_t id : ids) {
        token_string(id);  // throws for an id outside the tokenizer
        const Piece& p = pieces_[std::size_t(id)];
        const bool model_piece = std::size_t(id) < model_pieces_;
        if (model_piece && p.type == PieceType::byte) {
            bytes += char(std::strtol(p.text.c_str() + 3, nullptr, 16));
            continue;
        }
        flush();
        if (!model_piece) {
            if (!(skip_special && p.special)) put(p.text);
        } else if (p.type == PieceType::control || p.type == PieceType::unused) {
            // nothing
        } else if (p.type == PieceType::unknown) {
            put(" \xe2\x81\x87 ");
        } else {
            put(p.text);
        }
    }
    flush();
    return out;
}

}  // namespace io
DOCVLM_NAMESPACE_END
