// docvlm/pipeline/languages.hpp — the languages of a page's readings, told by their function
// words, and readings written in a language the page does not use.
//
// A line reader that cannot read a line (rotated words crossing it, a smudge) can still write a
// fluent one: on an English held-out page (tools/eval/make_heldout_pages.py) docvlm-small wrote
// "Ummatin instellung in all der LATEX preferent alle die Umgebung wird und" over a line that
// rotated text crossed, with a confidence no gate could refuse without refusing real lines. The
// rule: each line's function words (short words every sentence of a language needs: "the",
// "der", "les") are counted per language; English is every page's own (code, commands and names
// are written in it), another language is when it holds at least `min_share` of the function
// words of the page's other lines. A line with at least 3 function words of languages that are
// not the page's own, and more than twice as many as of the page's own, is left out as
// unreadable. A page in German, or one that quotes a paragraph of French, keeps them: the other
// lines of the page vouch for them.
#pragma once

#include <docvlm/core/config.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

/// The languages told apart; `none` for words of no list.
enum class Language : std::uint8_t { none, english, german, french };
inline constexpr std::size_t language_count = 4;

/// Function words per language in ASCII text (lower-cased words of ASCII letters).
struct LanguageCounts {
    std::array<std::size_t, language_count> words{};
    void add(std::string_view text);
    std::size_t total() const;
};

/// The language of one lower-case word: a function word of one list, or `none` (words two of the
/// languages share — "in", "an", "des", "so" — are in no list).
Language language_of_word(std::string_view lower);

/// Which languages are the page's own: English, and those with at least `min_share` of its
/// function words.
struct PageLanguages {
    std::array<bool, language_count> own{};
    explicit PageLanguages(const LanguageCounts& page, double min_share = 0.1);
};

/// True if a line is written in a language the rest of the page does not use (see the header):
/// `page` counts the whole page, this line included.
bool foreign_language(std::string_view line, const LanguageCounts& page, double min_share = 0.1);


// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline Language language_of_word(std::string_view w) {
    static constexpr std::string_view english[] = {"the", "and", "of", "to", "is", "are", "that", "this", "with", "for",
                                                   "which", "be", "can", "it", "not", "you", "by", "from", "or", "at",
                                                   "we", "if", "when", "have", "has", "will", "there", "these", "was", "were"};
    static constexpr std::string_view german[] = {"der", "die", "das", "und", "ist", "nicht", "mit", "ein", "eine", "einer",
                                                  "dem", "den", "wird", "werden", "auch", "auf", "sich", "zu", "bei", "oder",
                                                  "wenn", "wie", "sind", "kann", "alle", "aus", "von", "im", "nach", "einen"};
    static constexpr std::string_view french[] = {"le", "la", "les", "et", "est", "une", "un", "du", "que", "qui",
                                                  "dans", "pour", "pas", "sur", "par", "avec", "ce", "cette", "sont", "ou",
                                                  "au", "aux", "mais", "peut", "il", "elle", "nous", "vous", "se", "ses"};
    auto in = [&](const auto& list) { return std::find(std::begin(list), std::end(list), w) != std::end(list); };
    if (in(english)) return Language::english;
    if (in(german)) return Language::german;
    if (in(french)) return Language::french;
    return Language::none;
}

/// Calls f(word) for each run of ASCII letters in `text`, lower-cased; a run touching a non-ASCII
/// byte (a word with an accent or umlaut) is no function word of these lists and is skipped.
template <class F>
inline void for_each_ascii_word(std::string_view text, F&& f) {
    std::string w;
    bool clean = true;
    for (std::size_t i = 0; i <= text.size(); ++i) {
        const unsigned char c = i < text.size() ? static_cast<unsigned char>(text[i]) : ' ';
        if (std::isalpha(c) && c < 0x80) {
            w.push_back(char(std::tolower(c)));
            continue;
        }
        if (c >= 0x80) {
            clean = false;
            continue;
        }
        if (!w.empty() && clean) f(std::string_view(w));
        w.clear();
        clean = true;
    }
}

inline void LanguageCounts::add(std::string_view text) {
    for_each_ascii_word(text, [&](std::string_view w) { ++words[std::size_t(language_of_word(w))]; });
}

inline std::size_t LanguageCounts::total() const {
    std::size_t n = 0;
    for (std::size_t l = 1; l < language_count; ++l) n += words[l];
    return n;
}

inline PageLanguages::PageLanguages(const LanguageCounts& page, double min_share) {
    const double total = double(page.total());
    own[std::size_t(Language::english)] = true;  // code, commands and names are written in it on any page
    for (std::size_t l = 1; l < language_count; ++l) own[l] = own[l] || (total > 0 && double(page.words[l]) >= min_share * total);
}

inline bool foreign_language(std::string_view text, const LanguageCounts& page, double min_share) {
    LanguageCounts line, rest = page;
    line.add(text);
    for (std::size_t l = 0; l < language_count; ++l) rest.words[l] -= std::min(rest.words[l], line.words[l]);
    const PageLanguages languages(rest, min_share);
    std::size_t own = 0, foreign = 0;
    for (std::size_t l = 1; l < language_count; ++l) (languages.own[l] ? own : foreign) += line.words[l];
    return foreign >= 3 && foreign > 2 * own;
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
