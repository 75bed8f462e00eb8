// docvlm/pipeline/scripts.hpp — the writing systems of a page's readings, and letters in a script
// the page does not use.
//
// A byte-level reader that cannot read a glyph (a blurred symbol, a piece of a drawing) can still
// write a fluent character: on held-out English pages (tools/eval/make_heldout_pages.py) docvlm-small
// wrote 学 and 号 inside equations, a line of Arabic under a formula and Cyrillic in a symbol table,
// every one of them invented. The rule: Latin and Greek (mathematics) are always the page's own;
// another script is the page's own when it holds at least `min_share` of the page's letters.
// Letters of any other script are foreign: a reading made mostly of them is unreadable, and in a
// reading that is mostly the page's own they are dropped.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/pipeline/py_text.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

/// Writing systems, coarse: what a page's text can be written in.
enum class Script : std::uint8_t { none, latin, greek, cyrillic, armenian, hebrew, arabic, indic, thai, cjk, hangul, other };
inline constexpr std::size_t script_count = 12;

/// The script of a letter (Unicode categories L*); `none` for everything else — digits,
/// punctuation, symbols, the mathematical alphanumerics (U+1D400–1D7FF) and letterlike symbols
/// (U+2100–214F), which belong to mathematics in any script.
Script script_of(char32_t c);

/// Letters per script in UTF-8 text.
struct ScriptCounts {
    std::array<std::size_t, script_count> letters{};
    void add(std::string_view utf8);
    std::size_t total() const;
};

/// Which scripts are the page's own (see the header): Latin, Greek, and any other with at least
/// `min_share` of the letters counted.
struct PageScripts {
    std::array<bool, script_count> own{};
    explicit PageScripts(const ScriptCounts& page, double min_share = 0.1);
    bool foreign(char32_t c) const;
};

/// What to do with one reading: keep it as it is, keep it without its foreign letters, or leave
/// it out as unreadable (foreign letters at least half of its letters).
enum class ForeignVerdict { keep, strip, unreadable };
ForeignVerdict judge_foreign_letters(std::string_view utf8, const PageScripts& page);
/// `utf8` without the page's foreign letters; runs of spaces left where they stood become one.
std::string strip_foreign_letters(std::string_view utf8, const PageScripts& page);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline Script script_of(char32_t c) {
    if (c > 0x10ffff || c < 'A') return Script::none;
    const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
    if (cat < UTF8PROC_CATEGORY_LU || cat > UTF8PROC_CATEGORY_LO) return Script::none;  // not a letter
    if ((c >= 0x1d400 && c < 0x1d800) || (c >= 0x2100 && c < 0x2150)) return Script::none;
    if (c < 0x250 || (c >= 0x1e00 && c < 0x1f00) || (c >= 0xff21 && c < 0xff5b) || (c >= 0xfb00 && c < 0xfb07)) return Script::latin;
    if ((c >= 0x370 && c < 0x400) || (c >= 0x1f00 && c < 0x2000)) return Script::greek;
    if (c >= 0x400 && c < 0x530) return Script::cyrillic;
    if (c >= 0x530 && c < 0x590) return Script::armenian;
    if ((c >= 0x590 && c < 0x600) || (c >= 0xfb1d && c < 0xfb50)) return Script::hebrew;
    if ((c >= 0x600 && c < 0x800) || (c >= 0xfb50 && c < 0xfe00) || (c >= 0xfe70 && c < 0xff00)) return Script::arabic;
    if (c >= 0x900 && c < 0xe00) return Script::indic;
    if (c >= 0xe00 && c < 0xe80) return Script::thai;
    if ((c >= 0x3040 && c < 0x3100) || (c >= 0x3400 && c < 0xa000) || (c >= 0xf900 && c < 0xfb00) || (c >= 0x20000 && c < 0x30000) ||
        (c >= 0xff66 && c < 0xffa0))
        return Script::cjk;
    if ((c >= 0xac00 && c < 0xd7b0) || (c >= 0x1100 && c < 0x1200) || (c >= 0x3130 && c < 0x3190)) return Script::hangul;
    return Script::other;
}

inline void ScriptCounts::add(std::string_view utf8) {
    for (std::size_t i = 0; i < utf8.size(); i += py::cp_len(utf8, i))
        if (const Script s = script_of(py::cp_at(utf8, i)); s != Script::none) ++letters[std::size_t(s)];
}

inline std::size_t ScriptCounts::total() const {
    std::size_t n = 0;
    for (std::size_t v : letters) n += v;
    return n;
}

inline PageScripts::PageScripts(const ScriptCounts& page, double min_share) {
    const double total = double(page.total());
    for (std::size_t s = 0; s < script_count; ++s) own[s] = total > 0 && double(page.letters[s]) >= min_share * total;
    own[std::size_t(Script::none)] = own[std::size_t(Script::latin)] = own[std::size_t(Script::greek)] = true;
}

inline bool PageScripts::foreign(char32_t c) const { return !own[std::size_t(script_of(c))]; }

inline ForeignVerdict judge_foreign_letters(std::string_view utf8, const PageScripts& page) {
    std::size_t letters = 0, foreign = 0;
    for (std::size_t i = 0; i < utf8.size(); i += py::cp_len(utf8, i)) {
        const char32_t c = py::cp_at(utf8, i);
        if (script_of(c) == Script::none) continue;
        ++letters, foreign += page.foreign(c);
    }
    if (foreign == 0) return ForeignVerdict::keep;
    return 2 * foreign >= letters ? ForeignVerdict::unreadable : ForeignVerdict::strip;
}

inline std::string strip_foreign_letters(std::string_view utf8, const PageScripts& page) {
    std::string out;
    bool dropped = false;  // a foreign letter was dropped since the last character kept
    for (std::size_t i = 0; i < utf8.size();) {
        const std::size_t n = py::cp_len(utf8, i);
        if (page.foreign(py::cp_at(utf8, i))) {
            dropped = true;
        } else {
            if (!(dropped && utf8[i] == ' ' && (out.empty() || out.back() == ' '))) out.append(utf8.substr(i, n));
            dropped = false;
        }
        i += n;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    while (!out.empty() && out.front() == ' ') out.erase(out.begin());
    return out;
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
