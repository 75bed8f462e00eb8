// docvlm/io/lexicon.hpp — a word list (a model folder's lexicon.txt): lower-case ASCII words of 3
// to 32 letters, one per line; empty lines and lines starting with '#' are skipped. Any other line
// is an error naming its number. The words are kept sorted by length, then alphabetically, so that
// a search letter by letter can ask whether any word of a length starts with a prefix
// (pipeline/word_correction.hpp).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace io {

class Lexicon {
public:
    static constexpr std::size_t min_length = 3, max_length = 32;
    static constexpr std::size_t max_bytes = std::size_t(64) << 20;  ///< a larger file is refused

    /// Parses a word list's text; `source` names it in errors.
    static Lexicon parse(std::string_view text, std::string_view source = "lexicon");
    /// Reads and parses a word list file.
    static Lexicon load(const std::string& path);

    /// True when `word` (lower-case) is listed.
    bool contains(std::string_view word) const;
    /// True when a listed word of `length` letters starts with `prefix` (lower-case).
    bool has_prefix(std::size_t length, std::string_view prefix) const;
    /// The listed words of `length` letters, sorted (none past max_length).
    const std::vector<std::string>& words_of_length(std::size_t length) const;
    std::size_t size() const;

private:
    std::array<std::vector<std::string>, max_length + 1> by_length_;  // [length] sorted words
};


// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline Lexicon Lexicon::parse(std::string_view text, std::string_view source) {
    if (text.size() > max_bytes) docvlm::detail::fail(source, ": ", text.size(), " bytes, more than a word list may hold (", max_bytes, ")");
    Lexicon lex;
    std::size_t line_no = 0;
    while (!text.empty()) {
        const std::size_t end = std::min(text.find('\n'), text.size());
        std::string_view line = text.substr(0, end);
        text.remove_prefix(std::min(end + 1, text.size()));
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty() || line.front() == '#') continue;
        const bool letters = std::all_of(line.begin(), line.end(), [](char c) { return c >= 'a' && c <= 'z'; });
        if (!letters || line.size() < min_length || line.size() > max_length)
            docvlm::detail::fail(source, " line ", line_no, ": '", line.substr(0, 40), "' is not a word of ", min_length, " to ", max_length,
                         " lower-case ASCII letters");
        lex.by_length_[line.size()].emplace_back(line);
    }
    for (auto& words : lex.by_length_) {
        std::sort(words.begin(), words.end());
        words.erase(std::unique(words.begin(), words.end()), words.end());
    }
    return lex;
}

inline Lexicon Lexicon::load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) docvlm::detail::fail("cannot open the word list ", path);
    in.seekg(0, std::ios::end);
    const auto size = in.tellg();
    if (size < 0) docvlm::detail::fail("cannot read the word list ", path);
    if (std::size_t(size) > max_bytes) docvlm::detail::fail(path, ": ", std::size_t(size), " bytes, more than a word list may hold (", max_bytes, ")");
    in.seekg(0);
    std::string text(std::size_t(size), '\0');
    if (!in.read(text.data(), size)) docvlm::detail::fail("cannot read the word list ", path);
    return parse(text, path);
}

inline bool Lexicon::contains(std::string_view word) const {
    if (word.size() > max_length) return false;
    const auto& words = by_length_[word.size()];
    return std::binary_search(words.begin(), words.end(), word, [](std::string_view a, std::string_view b) { return a < b; });
}

inline bool Lexicon::has_prefix(std::size_t length, std::string_view prefix) const {
    if (length > max_length || prefix.size() > length) return false;
    const auto& words = by_length_[length];
    const auto it = std::lower_bound(words.begin(), words.end(), prefix, [](std::string_view a, std::string_view b) { return a < b; });
    return it != words.end() && std::string_view(*it).substr(0, prefix.size()) == prefix;
}

inline const std::vector<std::string>& Lexicon::words_of_length(std::size_t length) const {
    static const std::vector<std::string> none;
    return length <= max_length ? by_length_[length] : none;
}

inline std::size_t Lexicon::size() const {
    std::size_t n = 0;
    for (const auto& words : by_length_) n += words.size();
    return n;
}

}  // namespace io
DOCVLM_NAMESPACE_END
