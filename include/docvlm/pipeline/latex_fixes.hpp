// docvlm/pipeline/latex_fixes.hpp — the MinerU2.5 client's repairs of recognised LaTeX (display
// equations) and of text with inline maths, as opendatalab/mineru-vl-utils 1.2.1 applies them in
// post_process (equation_*.py, text_*.py). Each function gives exactly the client's result,
// Python's str and re semantics included (whitespace and digits are Unicode's); the rules,
// quirks included, are stated with each function. tests/data/mineru-client holds the client's
// own outputs on ~1,000 inputs.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/pipeline/py_text.hpp>

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

/// Strips whitespace, then one leading "\[" and one trailing "\]", then whitespace again.
std::string strip_display_delimiters(std::string_view latex);
/// Closes unmatched \left / \right with "\left. " / " \right.", per array cell (see the
/// implementation for the client's cell rules, which this reproduces).
std::string balance_left_right(std::string_view latex);
/// Deletes double subscripts  _{a}_{b}  (both groups, as the client does).
std::string drop_double_subscripts(std::string_view latex);
/// \eqqcolon → "=:", then \coloneqq → ":=".
std::string replace_colon_equals(std::string_view latex);
/// \big{(} → \big( and alike for the \big family of sizes and ( ) [ ] \{ \} | \| \langle \rangle
/// (an optional space before the brace); \bigtimes → \times.
std::string fix_big_delimiters(std::string_view latex);
/// "<" → "< ".
std::string space_after_less_than(std::string_view latex);
/// Deletes braces without a partner; escaped braces (odd number of backslashes before) are kept.
std::string drop_unbalanced_braces(std::string_view latex);
/// The client's equation repairs in its order: the seven functions above.
std::string fix_equation(std::string_view latex);

/// In text, \[ … \] holding only digits, dashes (- –), commas and whitespace stays; any other
/// \[ … \] becomes inline \( … \).
std::string display_to_inline(std::string_view text);
/// Inside \( … \): a space between \cong \to \times \subset \in and a single letter glued to
/// them ("\timesX" → "\times X"), except \top \int \inf.
std::string space_after_macros(std::string_view text);
/// Inside \( … \): runs of three or more underscores (blanks to fill in) move out of the maths:
/// "\( a ___ b \)" → "\( a \) ___ \( b \)".
std::string move_underscores_outside(std::string_view text);
/// The client's text repairs in its order: the three functions above.
std::string fix_text(std::string_view text);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail::latex {

inline bool at(std::string_view s, std::size_t i, std::string_view w) { return s.substr(i, w.size()) == w; }

inline std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
    std::string out;
    std::size_t i = 0;
    for (std::size_t j; (j = s.find(from, i)) != std::string_view::npos; i = j + from.size()) out.append(s.substr(i, j - i)).append(to);
    return out.append(s.substr(i));
}

inline std::size_t count(std::string_view s, std::string_view w) {
    std::size_t n = 0;
    for (std::size_t j = s.find(w); j != std::string_view::npos; j = s.find(w, j + w.size())) ++n;
    return n;
}

// The client's \left / \right tokens. Counting and splitting use the regex alternatives
// (tried in this order at each position; "\right" followed by any character but a newline is
// the last right alternative, so "\rightarrow" counts as a right); matching uses the exact
// token lists, which differ (e.g. "\left)" and "\left/" are matched but not split out).
inline constexpr std::array<std::string_view, 18> left_alternatives = {
    "\\left\\lbrace", "\\left\\lVert",  "\\left\\lvert",  "\\left\\rvert",  "\\left\\rVert", "\\left\\vert",
    "\\left\\Vert",   "\\left\\lfloor", "\\left\\lbrack", "\\left\\langle", "\\left|",       "\\left\\|",
    "\\left[",        "\\left]",        "\\left(",        "\\left\\{",      "\\left\\}",     "\\left."};
inline constexpr std::array<std::string_view, 17> right_alternatives = {
    "\\right\\rbrace", "\\right\\lVert",  "\\right\\lvert",  "\\right\\rvert", "\\right\\rVert", "\\right\\vert",
    "\\right\\Vert",   "\\right\\rfloor", "\\right\\rbrack", "\\right\\rangle", "\\right|",      "\\right\\|",
    "\\right]",        "\\right[",        "\\right)",        "\\right\\}",     "\\right\\{"};
// Pairs (left, right) that close each other; "\left." and "\right." stand for any of their side.
inline constexpr std::array<std::pair<std::string_view, std::string_view>, 17> pairs = {{
    {"\\left\\lbrace", "\\right\\rbrace"}, {"\\left\\lVert", "\\right\\lVert"},   {"\\left\\lvert", "\\right\\lvert"},
    {"\\left\\vert", "\\right\\vert"},     {"\\left\\Vert", "\\right\\Vert"},     {"\\left\\lfloor", "\\right\\rfloor"},
    {"\\left\\lbrack", "\\right\\rbrack"}, {"\\left\\langle", "\\right\\rangle"}, {"\\left|", "\\right|"},
    {"\\left\\|", "\\right\\|"},           {"\\left[", "\\right]"},               {"\\left]", "\\right["},
    {"\\left(", "\\right)"},               {"\\left)", "\\right("},               {"\\left\\{", "\\right\\}"},
    {"\\left\\}", "\\right\\{"},           {"\\left/", "\\right/"}}};
inline constexpr std::array<std::string_view, 3> extra_left = {"\\left\\rvert", "\\left\\rVert", "\\left."};
inline constexpr std::array<std::string_view, 3> extra_right = {"\\right\\rvert", "\\right\\rVert", "\\right."};

template <std::size_t N>
std::size_t match_any(std::string_view s, std::size_t i, const std::array<std::string_view, N>& words) {
    for (std::string_view w : words)
        if (at(s, i, w)) return w.size();
    return 0;
}
inline std::size_t match_left(std::string_view s, std::size_t i) { return match_any(s, i, left_alternatives); }
inline std::size_t match_right(std::string_view s, std::size_t i) {
    if (const std::size_t n = match_any(s, i, right_alternatives)) return n;
    if (at(s, i, "\\right") && i + 6 < s.size() && s[i + 6] != '\n') return 6 + py::cp_len(s, i + 6);
    return 0;
}

template <class Match>
std::size_t count_matches(std::string_view s, Match match) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < s.size();)
        if (const std::size_t m = match(s, i)) ++n, i += m;
        else ++i;
    return n;
}
inline std::size_t count_left(std::string_view s) { return count_matches(s, match_left); }
inline std::size_t count_right(std::string_view s) { return count_matches(s, match_right); }

// re.split with one capturing group: text, token, text, ..., text (texts may be empty).
template <class Match>
std::vector<std::string> split_keep(std::string_view s, Match match) {
    std::vector<std::string> out;
    std::size_t from = 0;
    for (std::size_t i = 0; i < s.size();)
        if (const std::size_t m = match(s, i)) {
            out.emplace_back(s.substr(from, i - from));
            out.emplace_back(s.substr(i, m));
            from = i += m;
        } else {
            ++i;
        }
    out.emplace_back(s.substr(from));
    return out;
}

// The cell separators: "&", "\\", "\begin{array}" \s* "{" [a-zA-Z\s]* "}", "\end{array}".
inline std::size_t match_separator(std::string_view s, std::size_t i) {
    if (at(s, i, "&")) return 1;
    if (at(s, i, "\\\\")) return 2;
    if (at(s, i, "\\begin{array}")) {
        std::size_t k = i + 13;
        while (const std::size_t n = py::space_at(s, k)) k += n;
        if (at(s, k, "{")) {
            ++k;
            for (;;) {
                if (k < s.size() && ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z'))) ++k;
                else if (const std::size_t n = py::space_at(s, k)) k += n;
                else break;
            }
            if (at(s, k, "}")) return k + 1 - i;
        }
    }
    if (at(s, i, "\\end{array}")) return 11;
    return 0;
}

inline bool is_separator(std::string_view node) { return node == "&" || node == "\\\\"; }
inline bool is_array_bound(std::string_view node) {
    return node.find("\\begin{array}") != std::string_view::npos || node.find("\\end{array}") != std::string_view::npos;
}

struct ArrayRange {
    int tag = 0;
    std::size_t begin = 0, end = 0;  // node indices of \begin{array} and \end{array}
    std::vector<int> contained;      // tags of the arrays strictly inside
};

// Arrays by their begin/end nodes; nullopt when they do not nest properly.
inline std::optional<std::vector<ArrayRange>> find_arrays(const std::vector<std::string>& nodes) {
    std::vector<std::pair<int, std::size_t>> open;
    std::vector<ArrayRange> arrays;
    int tag = 0;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        if (nodes[i].find("\\begin{array}") != std::string::npos) {
            open.emplace_back(++tag, i);
        } else if (nodes[i] == "\\end{array}") {
            if (open.empty()) return std::nullopt;
            arrays.push_back({open.back().first, open.back().second, i, {}});
            open.pop_back();
        }
    }
    if (!open.empty()) return std::nullopt;
    for (ArrayRange& a : arrays)
        for (const ArrayRange& b : arrays)
            if (&a != &b && a.begin < b.begin && a.end > b.end) a.contained.push_back(b.tag);
    return arrays;
}

using Cell = std::optional<std::pair<int, int>>;  // (array tag, cell index); nullopt: outside every array

// Each node's cell in the innermost array holding it. The client ranks arrays by how many arrays
// they contain (most first) and takes the first array that tags a node. Without arrays it
// returns a single untagged entry, so only the first node is considered later.
inline std::vector<Cell> tag_cells(const std::vector<std::string>& nodes, std::vector<ArrayRange> arrays) {
    if (arrays.empty()) return {Cell{}};
    std::stable_sort(arrays.begin(), arrays.end(),
                     [](const ArrayRange& a, const ArrayRange& b) { return a.contained.size() > b.contained.size(); });
    std::vector<Cell> tags(nodes.size());
    std::vector<bool> tagged(nodes.size(), false);
    for (const ArrayRange& a : arrays) {
        std::vector<bool> masked(nodes.size(), false);
        for (int t : a.contained)
            for (const ArrayRange& b : arrays)
                if (b.tag == t)
                    for (std::size_t i = b.begin; i <= b.end; ++i) masked[i] = true;
        int cell = 0;
        for (std::size_t i = a.begin; i <= a.end; ++i) {
            if (masked[i]) continue;
            if (is_separator(nodes[i])) ++cell;
            else if (!tagged[i]) tags[i] = std::pair{a.tag, cell}, tagged[i] = true;
        }
    }
    return tags;
}

inline bool closes(std::string_view l, std::string_view r) {
    for (const auto& [pl, pr] : pairs)
        if ((l == pl || l == "\\left.") && (r == pr || r == "\\right.")) return true;
    return false;
}

inline bool is_token(std::string_view t) {
    auto in = [&](auto&& list) { return std::find(list.begin(), list.end(), t) != list.end(); };
    if (in(extra_left) || in(extra_right)) return true;
    return std::any_of(pairs.begin(), pairs.end(), [&](const auto& p) { return p.first == t || p.second == t; });
}

// Closes the unmatched \left / \right tokens of one cell (its nodes, in order).
inline void balance_cell(std::vector<std::string>& nodes, const std::vector<std::size_t>& members) {
    std::size_t lefts = 0, rights = 0;
    for (std::size_t i : members) lefts += count_left(nodes[i]), rights += count_right(nodes[i]);
    if (lefts == rights) return;
    auto match_token = [](std::string_view s, std::size_t i) {
        const std::size_t n = match_left(s, i);
        return n ? n : match_right(s, i);
    };
    std::vector<std::vector<std::string>> pieces;
    for (std::size_t i : members) {
        auto parts = split_keep(nodes[i], match_token);
        std::erase_if(parts, [](const std::string& p) { return py::strip(p).empty(); });
        pieces.push_back(std::move(parts));
    }
    std::vector<std::pair<std::size_t, std::size_t>> stack;  // open tokens: (node, piece)
    for (std::size_t n = 0; n < pieces.size(); ++n)
        for (std::size_t k = 0; k < pieces[n].size(); ++k) {
            if (!is_token(pieces[n][k])) continue;
            if (!stack.empty() && closes(pieces[stack.back().first][stack.back().second], pieces[n][k])) stack.pop_back();
            else stack.emplace_back(n, k);
        }
    for (const auto& [n, k] : stack) {
        std::string& t = pieces[n][k];
        if (t.find("\\left") != std::string::npos) t += " \\right.";
        else if (t.find("\\right") != std::string::npos) t = "\\left. " + t;
    }
    for (std::size_t n = 0; n < members.size(); ++n) {
        std::string joined;
        for (const std::string& p : pieces[n]) joined += p;
        nodes[members[n]] = std::move(joined);
    }
}

// One group of nested-balanced braces  {…}  whose inner groups hold no braces, starting at s[i]
// ('{'); returns the index after its '}', or npos.
inline std::size_t brace_group_end(std::string_view s, std::size_t i) {
    if (!at(s, i, "{")) return std::string_view::npos;
    for (std::size_t k = i + 1; k < s.size();) {
        if (s[k] == '}') return k + 1;
        if (s[k] != '{') {
            ++k;
            continue;
        }
        const std::size_t close = s.find_first_of("{}", k + 1);
        if (close == std::string_view::npos || s[close] != '}') return std::string_view::npos;
        k = close + 1;
    }
    return std::string_view::npos;
}

inline std::size_t skip_spaces(std::string_view s, std::size_t k) {
    while (const std::size_t n = py::space_at(s, k)) k += n;
    return k;
}

// "_" \s* {…} \s* "_" \s* {…} at s[i]: the index after it, or npos.
inline std::size_t double_subscript_end(std::string_view s, std::size_t i) {
    if (!at(s, i, "_")) return std::string_view::npos;
    std::size_t k = brace_group_end(s, skip_spaces(s, i + 1));
    if (k == std::string_view::npos) return k;
    k = skip_spaces(s, k);
    if (!at(s, k, "_")) return std::string_view::npos;
    return brace_group_end(s, skip_spaces(s, k + 1));
}

// The \big family: the sizes, and for each the delimiters the client rewrites with what it writes.
inline constexpr std::array<std::string_view, 16> big_sizes = {"big",  "bigr",  "bigm",  "bigl",  "bigg",  "biggr",  "biggm",  "biggl",
                                                               "Big",  "Bigr",  "Bigm",  "Bigl",  "Bigg",  "Biggr",  "Biggm",  "Biggl"};

// What "\SIZE{DELIM}" becomes after "\SIZE", or nullopt when the client leaves it.
inline std::optional<std::string_view> big_replacement(std::string_view size, std::string_view delim) {
    const bool biggm = size == "biggm" || size == "Biggm", biggl = size == "biggl" || size == "Biggl";
    if (delim == "(" || delim == ")" || delim == "|" || delim == "\\|") return delim;
    if (delim == "\\{" || delim == "\\}") return size == "Biggm" ? std::nullopt : std::optional{delim};
    if (delim == "\\langle") return size == "Biggm" ? std::nullopt : std::optional<std::string_view>{"\\langle "};
    if (delim == "\\rangle") return size == "Biggm" ? std::nullopt : std::optional<std::string_view>{"\\rangle "};
    if (delim == "[") return biggm || biggl ? "\\[" : "[";
    if (delim == "]") return biggm || biggl ? "\\]" : "]";
    return std::nullopt;
}

// Python's re.sub over every non-overlapping "\(" … "\)" (DOTALL, lazy; `min_inner` is 0 for
// .*? and 1 for .+?): text outside copied, each match's inner part given to f.
template <class F>
std::string map_inline_maths(std::string_view s, std::size_t min_inner, F f) {
    std::string out;
    std::size_t i = 0;
    for (;;) {
        const std::size_t open = s.find("\\(", i);
        if (open == std::string_view::npos) break;
        const std::size_t close = s.find("\\)", open + 2 + min_inner);
        if (close == std::string_view::npos) break;
        out.append(s.substr(i, open - i));
        out += f(s.substr(open, close + 2 - open), s.substr(open + 2, close - open - 2));
        i = close + 2;
    }
    return out.append(s.substr(i));
}

}  // namespace detail::latex

inline std::string strip_display_delimiters(std::string_view latex) {
    std::string_view s = py::strip(latex);
    if (s.substr(0, 2) == "\\[") s.remove_prefix(2);
    if (s.size() >= 2 && s.substr(s.size() - 2) == "\\]") s.remove_suffix(2);
    return std::string(py::strip(s));
}

// The client's rules: when the counts of \left and \right differ and \begin{array} and
// \end{array} are as many, the formula is cut at "&", "\\", "\begin{array}{…}" and "\end{array}"
// into stripped nodes; each node belongs to the cell of the innermost array holding it (nodes
// outside every array share one cell; without any array only the first node is looked at).
// In a cell whose counts differ, tokens are matched in order across its nodes and each one left
// open gets "\left. " before it or " \right." after it; whitespace-only pieces of those nodes
// are dropped. The nodes are then joined without separators' surrounding whitespace. Arrays
// that do not nest leave the formula as it was.
inline std::string balance_left_right(std::string_view latex) {
    using namespace detail::latex;
    if (count_left(latex) == count_right(latex)) return std::string(latex);
    if (count(latex, "\\begin{array}") != count(latex, "\\end{array}")) return std::string(latex);
    std::vector<std::string> nodes;
    for (std::string& part : split_keep(py::strip(latex), match_separator))
        if (!part.empty()) nodes.emplace_back(py::strip(part));
    const auto arrays = find_arrays(nodes);
    if (!arrays) return std::string(latex);
    const std::vector<Cell> tags = tag_cells(nodes, *arrays);
    std::map<Cell, std::vector<std::size_t>> cells;  // each cell's nodes, in order
    for (std::size_t i = 0; i < tags.size(); ++i)
        if (!is_separator(nodes[i]) && !is_array_bound(nodes[i])) cells[tags[i]].push_back(i);
    for (const auto& [cell, members] : cells) balance_cell(nodes, members);
    std::string out;
    for (const std::string& n : nodes) out += n;
    return out;
}

inline std::string drop_double_subscripts(std::string_view latex) {
    std::string out;
    std::size_t copied = 0;
    for (std::size_t i = 0; i < latex.size();) {
        const std::size_t end = detail::latex::double_subscript_end(latex, i);
        if (end == std::string_view::npos) {
            ++i;
            continue;
        }
        out.append(latex.substr(copied, i - copied));
        copied = i = end;
    }
    return out.append(latex.substr(copied));
}

inline std::string replace_colon_equals(std::string_view latex) {
    using detail::latex::replace_all;
    return replace_all(replace_all(latex, "\\eqqcolon", "=:"), "\\coloneqq", ":=");
}

inline std::string fix_big_delimiters(std::string_view latex) {
    using namespace detail::latex;
    static constexpr std::array<std::string_view, 10> delims = {"(", ")", "\\{", "\\}", "|", "\\|", "[", "]", "\\langle", "\\rangle"};
    std::string out;
    for (std::size_t i = 0; i < latex.size();) {
        if (latex[i] == '\\') {
            std::size_t k = i + 1;
            while (k < latex.size() && ((latex[k] >= 'a' && latex[k] <= 'z') || (latex[k] >= 'A' && latex[k] <= 'Z'))) ++k;
            const std::string_view size = latex.substr(i + 1, k - i - 1);
            if (std::find(big_sizes.begin(), big_sizes.end(), size) != big_sizes.end()) {
                const std::size_t brace = at(latex, k, " {") ? k + 1 : k;
                for (std::string_view d : delims) {
                    if (!at(latex, brace, "{") || !at(latex, brace + 1, d) || !at(latex, brace + 1 + d.size(), "}")) continue;
                    if (const auto r = big_replacement(size, d)) {
                        out.append("\\").append(size).append(*r);
                        i = brace + d.size() + 2;
                        goto next;
                    }
                }
            }
        }
        out += latex[i++];
    next:;
    }
    return replace_all(out, "\\bigtimes", "\\times");
}

inline std::string space_after_less_than(std::string_view latex) { return detail::latex::replace_all(latex, "<", "< "); }

inline std::string drop_unbalanced_braces(std::string_view latex) {
    std::vector<std::size_t> open;
    std::vector<bool> drop(latex.size(), false);
    for (std::size_t i = 0; i < latex.size(); ++i) {
        if (latex[i] != '{' && latex[i] != '}') continue;
        std::size_t slashes = 0;
        while (slashes < i && latex[i - 1 - slashes] == '\\') ++slashes;
        if (slashes % 2 == 1) continue;
        if (latex[i] == '{') open.push_back(i);
        else if (!open.empty()) open.pop_back();
        else drop[i] = true;
    }
    for (std::size_t i : open) drop[i] = true;
    std::string out;
    for (std::size_t i = 0; i < latex.size(); ++i)
        if (!drop[i]) out += latex[i];
    return out;
}

inline std::string fix_equation(std::string_view latex) {
    std::string s = strip_display_delimiters(latex);
    s = balance_left_right(s);
    s = drop_double_subscripts(s);
    s = replace_colon_equals(s);
    s = fix_big_delimiters(s);
    s = space_after_less_than(s);
    return drop_unbalanced_braces(s);
}

inline std::string display_to_inline(std::string_view text) {
    auto plain_numbers = [](char32_t c) { return c == U'\u2013' || c == '-' || c == ',' || py::is_space(c) || py::is_decimal(c); };
    std::string out;
    std::size_t i = 0;
    for (;;) {
        const std::size_t open = text.find("\\[", i);
        if (open == std::string_view::npos) break;
        const std::size_t close = text.find("\\]", open + 2);
        if (close == std::string_view::npos) break;
        const std::string_view inner = text.substr(open + 2, close - open - 2);
        const bool keep = !inner.empty() && py::all_code_points(inner, plain_numbers);
        out.append(text.substr(i, open - i)).append(keep ? "\\[" : "\\(").append(inner).append(keep ? "\\]" : "\\)");
        i = close + 2;
    }
    return out.append(text.substr(i));
}

inline std::string space_after_macros(std::string_view text) {
    static constexpr std::array<std::string_view, 5> macros = {"\\cong", "\\to", "\\times", "\\subset", "\\in"};
    static constexpr std::array<std::string_view, 3> known = {"\\top", "\\int", "\\inf"};
    auto letter = [](std::string_view s, std::size_t i) { return i < s.size() && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')); };
    auto fix = [&](std::string_view, std::string_view inner) {
        std::string s(inner);
        for (std::string_view m : macros) {
            std::string out;
            std::size_t i = 0;
            for (std::size_t j = s.find(m); j != std::string::npos; j = s.find(m, j + 1)) {
                const std::size_t l = j + m.size();
                if (j < i || !letter(s, l) || letter(s, l + 1)) continue;
                const std::string glued = std::string(m) + s[l];
                const bool is_known = std::find(known.begin(), known.end(), glued) != known.end();
                out.append(s, i, j - i).append(is_known ? glued : std::string(m) + " " + s[l]);
                i = l + 1;
            }
            s = out.append(s, i);
        }
        return "\\(" + s + "\\)";
    };
    return detail::latex::map_inline_maths(text, 0, fix);
}

inline std::string move_underscores_outside(std::string_view text) {
    auto fix = [](std::string_view whole, std::string_view inner) {
        std::vector<std::string> parts;  // text, run, text, ..., text
        std::size_t from = 0;
        for (std::size_t i = 0; i < inner.size();) {
            std::size_t k = i;
            while (k < inner.size() && inner[k] == '_') ++k;
            if (k - i >= 3) {
                parts.emplace_back(inner.substr(from, i - from));
                parts.emplace_back(inner.substr(i, k - i));
                from = k;
            }
            i = k > i ? k : i + 1;
        }
        if (parts.empty()) return std::string(whole);
        parts.emplace_back(inner.substr(from));
        std::string out;
        for (std::size_t n = 0; n < parts.size(); ++n) {
            const bool run = n % 2 == 1;
            if (!run && py::strip(parts[n]).empty()) continue;
            if (!out.empty()) out += ' ';
            out += run ? parts[n] : "\\(" + parts[n] + "\\)";
        }
        return out;
    };
    return detail::latex::map_inline_maths(text, 1, fix);
}

inline std::string fix_text(std::string_view text) {
    return move_underscores_outside(space_after_macros(display_to_inline(text)));
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
