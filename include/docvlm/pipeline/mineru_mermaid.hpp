// docvlm/pipeline/mineru_mermaid.hpp — what the MinerU2.5 client (opendatalab/mineru-vl-utils
// 1.2.1) does with a flowchart's content, Mermaid code, when image analysis is on, reproduced
// exactly:
//   - mermaid_repetition_issues (mermaid_repetition.detect_mermaid_repetition_issues): the reasons
//     an answer looks like a repetition loop (a node id of repeated letter pairs or over 128 code
//     points, a label's line repeated, the same edge or edge label 8 times, repeated free lines);
//     the client then drops the flowchart's content;
//   - fix_mermaid_node_ids (mermaid_node_id_legalize): edge endpoints that are not identifiers get
//     one, declared once with the original text as label; chains and statements re-joined;
//   - drop_mermaid_single_pipe_edges (mermaid_invalid_edge_lines): edge lines with one stray '|';
//   - fix_mermaid_subgraph_ids (mermaid_invalid_subgraph_lines): subgraph titles given an id.
// (The last step, mermaid_strict, is in mineru_image_analysis.hpp, as in the client.)
// Lengths count code points and whitespace is Python's (py_text.hpp).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/pipeline/py_text.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

/// The client's repetition reasons for Mermaid code, in its order ("node_id_token_repetition",
/// "consecutive_line_repetition", "same_edge_repetition", ...); empty when it looks sound.
std::vector<std::string> mermaid_repetition_issues(std::string_view content);
/// try_fix_mermaid_node_id_legalization.
std::string fix_mermaid_node_ids(std::string_view content);
/// try_fix_mermaid_invalid_edge_lines.
std::string drop_mermaid_single_pipe_edges(std::string_view content);
/// try_fix_mermaid_invalid_subgraph_lines.
std::string fix_mermaid_subgraph_ids(std::string_view content);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail::mermaid {

inline bool ascii_alnum(char32_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool id_start(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
inline bool id_char(char32_t c) { return id_start(c) || (c >= '0' && c <= '9'); }
// [A-Za-z0-9_\u4e00-\u9fa5\-]: the clients' node-id characters
inline bool node_char(char32_t c) { return id_char(c) || c == '-' || (c >= 0x4e00 && c <= 0x9fa5); }

inline bool is_identifier(std::string_view s) {  // ^[A-Za-z_][A-Za-z0-9_]*$
    if (s.empty() || !id_start(char32_t(s[0]))) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return id_char(char32_t(static_cast<unsigned char>(c))); });
}

// End (byte) of the run of code points satisfying pred from i.
template <class Pred>
std::size_t run_end(std::string_view s, std::size_t i, Pred pred) {
    while (i < s.size() && pred(py::cp_at(s, i))) i += py::cp_len(s, i);
    return i;
}

inline std::size_t skip_spaces(std::string_view s, std::size_t i) {
    while (const std::size_t n = py::space_at(s, i)) i += n;
    return i;
}

inline std::string join_lines(const std::vector<std::string>& lines, std::string_view content) {
    std::string out;
    for (std::size_t i = 0; i < lines.size(); ++i) out += (i ? "\n" : "") + lines[i];
    if (content.ends_with('\n')) out += '\n';
    return out;
}

// re.sub(r"\\+n", "\n") then <br>, <br/>, <br /> (any case) → "\n".
inline std::string normalise_newlines(std::string_view s) {
    std::string a;
    for (std::size_t i = 0; i < s.size();) {
        std::size_t j = i;
        while (j < s.size() && s[j] == '\\') ++j;
        if (j > i && j < s.size() && s[j] == 'n') {
            a += '\n', i = j + 1;
        } else {
            a.append(s.substr(i, std::max<std::size_t>(j - i, 1))), i = std::max(j, i + 1);
        }
    }
    std::string out;
    for (std::size_t i = 0; i < a.size();) {
        if (a[i] == '<' && i + 3 <= a.size() && (a[i + 1] == 'b' || a[i + 1] == 'B') && (a[i + 2] == 'r' || a[i + 2] == 'R')) {
            std::size_t j = skip_spaces(a, i + 3);
            if (j < a.size() && a[j] == '/') ++j;
            if (j < a.size() && a[j] == '>') {
                out += '\n', i = j + 1;
                continue;
            }
        }
        out += a[i++];
    }
    return out;
}

// The longest run of one repeated line and that count.
inline std::size_t longest_run(const std::vector<std::string>& lines) {
    std::size_t best = lines.empty() ? 0 : 1, run = 1;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        run = lines[i] == lines[i - 1] ? run + 1 : 1;
        best = std::max(best, run);
    }
    return best;
}

inline std::size_t most_frequent(const std::vector<std::string>& lines) {
    std::map<std::string, std::size_t> freq;
    std::size_t best = 0;
    for (const std::string& l : lines) best = std::max(best, ++freq[l]);
    return best;
}

// _detect_node_id_issues: over 128 code points; a letter pair ([A-Z][a-z] or [A-Z]{2}; else
// sliding pairs of 8+ letter runs) 8 times.
inline void node_id_issues(std::string_view id, std::vector<std::string>& issues) {
    if (id.empty()) return;
    if (py::length(id) > 128) issues.emplace_back("oversized_node_id");
    std::map<std::string, std::size_t> freq;
    for (std::size_t i = 0; i < id.size();) {
        const char c = id[i], d = i + 1 < id.size() ? id[i + 1] : '\0';
        if (c >= 'A' && c <= 'Z' && ((d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z'))) {
            ++freq[std::string(id.substr(i, 2))], i += 2;
        } else {
            ++i;
        }
    }
    if (freq.empty()) {
        auto letter = [](char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
        for (std::size_t i = 0; i < id.size();) {
            const std::size_t e = run_end(id, i, letter);
            if (e - i >= 8)
                for (std::size_t k = i; k + 1 < e; ++k) ++freq[std::string(id.substr(k, 2))];
            i = e > i ? e : i + py::cp_len(id, i);
        }
    }
    std::size_t best = 0;
    for (const auto& [token, n] : freq) best = std::max(best, n);
    if (best >= 8) issues.emplace_back("node_id_token_repetition");
}

struct Edge {
    std::string_view src, dst;
};

// _EDGE_LINE_RE: ^\s*SRC\s*-->\s*(\|[^|\n]*\|\s*)?DST(\s*([..]|(..)|{..}))?\s*$ (SRC and DST node
// ids; SRC gives back trailing '-' to the arrow when it must: its lengths are tried longest first).
inline std::optional<Edge> simple_edge(std::string_view line) {
    const std::size_t s0 = skip_spaces(line, 0), s1 = run_end(line, s0, node_char);
    auto with_source = [&](std::size_t se) -> std::optional<Edge> {
        std::size_t i = skip_spaces(line, se);
        if (line.substr(i, 3) != "-->") return std::nullopt;
        i = skip_spaces(line, i + 3);
        if (i < line.size() && line[i] == '|') {
            const std::size_t close = line.find_first_of("|\n", i + 1);
            if (close == std::string_view::npos || line[close] != '|') return std::nullopt;
            i = skip_spaces(line, close + 1);
        }
        const std::size_t d1 = run_end(line, i, node_char);
        if (d1 == i) return std::nullopt;
        const Edge edge{line.substr(s0, se - s0), line.substr(i, d1 - i)};
        const std::size_t j = skip_spaces(line, d1);
        static constexpr std::string_view open = "[({", close = "])}";
        if (j < line.size() && open.find(line[j]) != std::string_view::npos) {
            const std::size_t c = line.find(close[open.find(line[j])], j + 1);
            if (c != std::string_view::npos && skip_spaces(line, c + 1) == line.size()) return edge;
        }
        if (j == line.size()) return edge;
        return std::nullopt;
    };
    for (std::size_t se = s1; se > s0; --se)
        if (const auto e = with_source(se)) return e;
    return std::nullopt;
}

// _EDGE_LABELED_RE: ^\s*SRC\s*-->\s*DST\s*\["LABEL"\]\s*$, LABEL of [^"\\] and \\\\. ; its label.
inline std::optional<std::string_view> labelled_edge(std::string_view line) {
    const std::size_t s0 = skip_spaces(line, 0), s1 = run_end(line, s0, node_char);
    auto with_source = [&](std::size_t se) -> std::optional<std::string_view> {
        std::size_t i = skip_spaces(line, se);
        if (line.substr(i, 3) != "-->") return std::nullopt;
        i = skip_spaces(line, i + 3);
        const std::size_t d1 = run_end(line, i, node_char);
        if (d1 == i) return std::nullopt;
        std::size_t j = skip_spaces(line, d1);
        if (line.substr(j, 2) != "[\"") return std::nullopt;
        const std::size_t l0 = j + 2;
        for (j = l0; j < line.size() && line[j] != '"';) {
            if (line[j] != '\\') ++j;
            else if (j + 2 < line.size() && line[j + 1] == '\\' && line[j + 2] != '\n') j += 2 + py::cp_len(line, j + 2);
            else return std::nullopt;
        }
        if (line.substr(j, 2) != "\"]" || skip_spaces(line, j + 2) != line.size()) return std::nullopt;
        return line.substr(l0, j - l0);
    };
    for (std::size_t se = s1; se > s0; --se)
        if (const auto label = with_source(se)) return label;
    return std::nullopt;
}

// _extract_edge_endpoint_id: a leading |label| dropped, then the leading node id.
inline std::string_view endpoint_id(std::string_view segment) {
    std::string_view s = py::strip(segment);
    if (s.starts_with('|')) {
        const std::size_t close = s.find_first_of("|\n", 1);
        if (close != std::string_view::npos && s[close] == '|') s = s.substr(skip_spaces(s, close + 1));
    }
    return s.substr(0, run_end(s, 0, node_char));
}

// Label-level checks of every NODE["label"] (the label's own \" escapes kept).
inline void label_issues(std::string_view content, std::vector<std::string>& issues) {
    for (std::size_t p = 0; p < content.size();) {
        if (!node_char(py::cp_at(content, p))) {
            p += py::cp_len(content, p);
            continue;
        }
        const std::size_t e = run_end(content, p, node_char);
        std::size_t j = skip_spaces(content, e);
        bool matched = false;
        if (content.substr(j, 2) == "[\"") {
            std::size_t k = j + 2;
            while (k < content.size() && content[k] != '"') {
                if (content[k] != '\\') k += py::cp_len(content, k);
                else if (k + 1 < content.size()) k += 1 + py::cp_len(content, k + 1);
                else break;
            }
            if (content.substr(k, 2) == "\"]") {
                matched = true;
                node_id_issues(content.substr(p, e - p), issues);
                const std::string label = normalise_newlines(content.substr(j + 2, k - j - 2));
                std::vector<std::string> lines;
                for (std::string_view l : py::splitlines(label))
                    if (!py::strip(l).empty()) lines.emplace_back(py::strip(l));
                if (!lines.empty()) {
                    if (longest_run(lines) >= 8) {
                        issues.emplace_back("consecutive_line_repetition");
                    } else if (most_frequent(lines) >= 20) {
                        issues.emplace_back("overall_line_repetition");
                    } else {
                        const std::set<std::string> unique(lines.begin(), lines.end());
                        if (py::length(label) >= 2000 && double(unique.size()) / double(lines.size()) <= 0.2)
                            issues.emplace_back("long_low_diversity_label");
                    }
                }
                p = k + 2;
            }
        }
        if (!matched) p = e;
    }
}

inline bool structure_line(std::string_view line) {
    const std::string_view s = py::strip(line);
    if (s.empty()) return true;
    const std::string l = py::lower(s);
    for (std::string_view w : {"graph ", "flowchart ", "subgraph ", "direction ", "%%"})
        if (std::string_view(l).starts_with(w)) return true;
    return l == "end" || s.find("-->") != std::string_view::npos;
}

// _normalize_free_text_line: leading []()"' whitespace > and trailing []()"' whitespace ,.;: removed,
// whitespace collapsed.
inline std::string free_text_line(std::string_view line) {
    std::string_view s = py::strip(line);
    auto lead = [](char c) { return std::string_view("[]()\"'>").find(c) != std::string_view::npos; };
    auto trail = [](char c) { return std::string_view("[]()\"',.;:").find(c) != std::string_view::npos; };
    for (;;) {
        if (!s.empty() && lead(s.front())) s.remove_prefix(1);
        else if (const std::size_t n = py::space_at(s, 0)) s.remove_prefix(n);
        else break;
    }
    for (;;) {
        if (!s.empty() && trail(s.back())) s.remove_suffix(1);
        else if (const std::size_t n = py::space_before(s, s.size())) s.remove_suffix(n);
        else break;
    }
    return std::string(py::strip(py::collapse_spaces(s)));
}

}  // namespace detail::mermaid

namespace detail::mermaid {

using Lines = std::vector<std::string_view>;

// How often each key was seen, first seen first (the client's dict order).
inline void tally(std::vector<std::pair<std::string, std::size_t>>& counts, const std::string& key) {
    auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == key; });
    if (it == counts.end()) counts.emplace_back(key, 1);
    else ++it->second;
}

// The same SRC --> DST edge 8 times.
inline void same_edge_issues(const Lines& lines, std::vector<std::string>& issues) {
    std::vector<std::pair<std::string, std::size_t>> edges;
    for (std::string_view l : lines)
        if (const auto e = simple_edge(l)) tally(edges, std::string(e->src) + "-->" + std::string(e->dst));
    for (const auto& [key, n] : edges)
        if (n >= 8) issues.emplace_back("same_edge_repetition");
}

// The node ids at the ends of every edge line (each link of a chain).
inline void endpoint_issues(const Lines& lines, std::vector<std::string>& issues) {
    for (std::string_view l : lines) {
        const std::string_view s = py::strip(l);
        std::vector<std::string_view> segments;
        for (std::size_t start = 0;;) {
            const std::size_t arrow = s.find("-->", start);
            segments.push_back(s.substr(start, arrow == std::string_view::npos ? std::string_view::npos : arrow - start));
            if (arrow == std::string_view::npos) break;
            start = arrow + 3;
        }
        if (segments.size() >= 3) {
            for (std::string_view seg : segments) node_id_issues(endpoint_id(seg), issues);
        } else if (segments.size() == 2) {
            if (const auto e = simple_edge(l)) node_id_issues(e->src, issues), node_id_issues(e->dst, issues);
        }
    }
}

// Edges into labelled nodes: one label 8 times, or 8 times in a row.
inline void labelled_edge_issues(const Lines& lines, std::vector<std::string>& issues) {
    std::vector<std::pair<std::string, std::size_t>> labels;
    std::string previous;
    std::size_t run = 0, best = 0;
    for (std::string_view l : lines) {
        const auto label = labelled_edge(l);
        if (!label) {
            run = 0;
            continue;
        }
        const std::string text(py::strip(*label));
        if (text.empty()) continue;
        tally(labels, text);
        run = run > 0 && text == previous ? run + 1 : 1;
        previous = text;
        best = std::max(best, run);
    }
    for (const auto& [text, n] : labels)
        if (n >= 8) issues.emplace_back("same_label_edge_repetition");
    if (best >= 8) issues.emplace_back("consecutive_same_label_edges");
}

// Free text lines (labels the patterns above could not read): one 8 times in a row or 20 times.
inline void free_line_issues(const Lines& lines, std::vector<std::string>& issues) {
    std::vector<std::string> free;
    for (std::string_view l : lines)
        if (!structure_line(l))
            if (std::string t = free_text_line(l); !t.empty()) free.push_back(std::move(t));
    if (free.empty()) return;
    if (longest_run(free) >= 8) issues.emplace_back("raw_consecutive_line_repetition");
    if (most_frequent(free) >= 20) issues.emplace_back("raw_overall_line_repetition");
}

}  // namespace detail::mermaid

inline std::vector<std::string> mermaid_repetition_issues(std::string_view content) {
    using namespace detail::mermaid;
    std::vector<std::string> issues;
    label_issues(content, issues);
    const std::string normalised = normalise_newlines(content);
    const Lines lines = py::splitlines(normalised);
    same_edge_issues(lines, issues);
    endpoint_issues(lines, issues);
    labelled_edge_issues(lines, issues);
    free_line_issues(lines, issues);
    return issues;
}

namespace detail::mermaid {

// Splits `s` at top-level occurrences of `sep` (outside "quotes" with \ escapes, brackets ([{ and
// |pipe labels|).
inline std::vector<std::string_view> split_top_level(std::string_view s, std::string_view sep) {
    std::vector<std::string_view> parts;
    std::size_t start = 0, depth = 0;
    bool quote = false, escaped = false, pipe = false;
    for (std::size_t i = 0; i < s.size();) {
        const char c = s[i];
        if (escaped) escaped = false;
        else if (quote) escaped = c == '\\', quote = c != '"';
        else if (c == '"') quote = true;
        else if (c == '[' || c == '(' || c == '{') ++depth;
        else if (c == ']' || c == ')' || c == '}') depth -= depth > 0;
        else if (c == '|' && depth == 0) pipe = !pipe;
        else if (depth == 0 && !pipe && s.substr(i, sep.size()) == sep) {
            parts.push_back(s.substr(start, i - start));
            i += sep.size(), start = i;
            continue;
        }
        ++i;
    }
    parts.push_back(s.substr(start));
    return parts;
}

// _sanitize_node_id: alphanumeric runs joined, the later ones capitalised; "n" before a digit.
inline std::string sanitize_node_id(std::string_view raw) {
    std::string id;
    bool first = true;
    for (std::size_t i = 0; i < raw.size();) {
        const std::size_t e = run_end(raw, i, ascii_alnum);
        if (e == i) {
            i += py::cp_len(raw, i);
            continue;
        }
        std::string part(raw.substr(i, e - i));
        if (!first) {
            for (char& c : part) c = char(std::tolower(static_cast<unsigned char>(c)));
            part[0] = char(std::toupper(static_cast<unsigned char>(part[0])));
        }
        id += part, first = false, i = e;
    }
    if (first)  // no alphanumerics: the underscores kept
        for (char c : raw)
            if (c == '_') id += c;
    if (id.empty()) id = "node";
    if (id[0] >= '0' && id[0] <= '9') id = "n" + id;
    return id;
}

struct NodeIds {
    std::set<std::string> declared;
    std::vector<std::pair<std::string, std::string>> map;  // raw → id, first seen first

    // _convert_endpoint
    std::string endpoint(std::string_view token) {
        const std::string_view raw = py::strip(token);
        if (raw.empty() || raw.find_first_of("[](){}\"|") != std::string_view::npos) return std::string(token);
        if (is_identifier(raw)) return std::string(raw);
        auto it = std::find_if(map.begin(), map.end(), [&](const auto& m) { return m.first == raw; });
        std::string fixed;
        if (it != map.end()) {
            fixed = it->second;
        } else {
            const std::string base = sanitize_node_id(raw);
            fixed = base;
            auto taken = [&](const std::string& id) {
                return declared.count(id) || std::any_of(map.begin(), map.end(), [&](const auto& m) { return m.second == id; });
            };
            for (int k = 2; taken(fixed); ++k) fixed = base + std::to_string(k);
            map.emplace_back(std::string(raw), fixed);
        }
        if (declared.insert(fixed).second) return fixed + "[\"" + std::string(raw) + "\"]";
        return fixed;
    }

    // _fix_edge_target_segment: "|label| dst" (label without parentheses, spaces collapsed) or dst.
    std::string target(std::string_view segment) {
        const std::string_view s = py::strip(segment);
        if (s.starts_with('|'))
            for (std::size_t q = s.find('|', 1); q != std::string_view::npos; q = s.find('|', q + 1)) {
                const std::string_view rest = s.substr(q + 1);
                if (rest.empty()) continue;
                // \s*(.+?)\s*$ : the rest without its outer whitespace; all whitespace: its last character
                const std::size_t w = skip_spaces(rest, 0);
                const std::string_view dst = w < rest.size() ? py::strip(rest) : rest.substr(rest.size() - py::space_before(rest, rest.size()));
                std::string label;
                for (char c : s.substr(1, q - 1))
                    if (c != '(' && c != ')' && !(c == ' ' && !label.empty() && label.back() == ' ')) label += c;
                return "|" + std::string(py::strip(label)) + "| " + endpoint(dst);
            }
        return endpoint(s);
    }

    // _fix_mermaid_edge_statement
    std::string statement(std::string_view st) {
        const std::string_view s = py::strip(st);
        if (s.find("-->") == std::string_view::npos || s.starts_with("%%")) return std::string(s);
        const auto chain = split_top_level(s, "-->");
        if (chain.size() < 2) return std::string(s);
        std::string out = endpoint(py::strip(chain[0]));
        for (std::size_t i = 1; i < chain.size(); ++i) {
            const std::string t = target(chain[i]);
            out += (t.starts_with('|') ? " -->" : " --> ") + t;
        }
        return out;
    }
};

// <\s*-\s*-\s*> at i: its byte length, else 0.
inline std::size_t bidirectional_at(std::string_view s, std::size_t i) {
    if (i >= s.size() || s[i] != '<') return 0;
    std::size_t j = skip_spaces(s, i + 1);
    if (j >= s.size() || s[j] != '-') return 0;
    j = skip_spaces(s, j + 1);
    if (j >= s.size() || s[j] != '-') return 0;
    j = skip_spaces(s, j + 1);
    return j < s.size() && s[j] == '>' ? j + 1 - i : 0;
}

}  // namespace detail::mermaid

inline std::string fix_mermaid_node_ids(std::string_view content) {
    using namespace detail::mermaid;
    const auto lines = py::splitlines(content);
    NodeIds ids;
    for (std::string_view l : lines) {  // ^\s*ID\s*[\[\(\{] : declared ids
        const std::string_view s = py::strip(l);
        const std::size_t e = run_end(s, 0, id_char);
        if (e > 0 && id_start(char32_t(s[0]))) {
            const std::size_t j = skip_spaces(s, e);
            if (j < s.size() && (s[j] == '[' || s[j] == '(' || s[j] == '{')) ids.declared.insert(std::string(s.substr(0, e)));
        }
    }
    std::vector<std::string> out;
    for (std::string_view line : lines) {
        bool bidirectional = false;
        for (std::size_t i = 0; i < line.size() && !bidirectional; ++i) bidirectional = bidirectional_at(line, i) > 0;
        if (bidirectional || line.find("-->") == std::string_view::npos || py::strip(line).starts_with("%%")) {
            out.emplace_back(line);
            continue;
        }
        auto statements = split_top_level(line, ";");
        const bool trailing = statements.size() > 1 && py::strip(statements.back()).empty();
        if (trailing) statements.pop_back();
        std::string joined;
        bool any = false;
        for (std::string_view st : statements)
            if (!py::strip(st).empty()) joined += (any ? "; " : "") + ids.statement(st), any = true;
        if (!any) out.emplace_back(line);
        else out.push_back("  " + joined + (trailing ? ";" : ""));
    }
    return join_lines(out, content);
}

inline std::string drop_mermaid_single_pipe_edges(std::string_view content) {
    using namespace detail::mermaid;
    auto invalid = [](std::string_view line) {
        const std::string_view s = py::strip(line);
        if (s.empty() || s.starts_with("%%") || line.find("-->") == std::string_view::npos || line.find('|') == std::string_view::npos)
            return false;
        // -->\s*\|[^|\n]+\|\s*\S : a proper |label| after an arrow
        for (std::size_t a = line.find("-->"); a != std::string_view::npos; a = line.find("-->", a + 1)) {
            const std::size_t p = skip_spaces(line, a + 3);
            if (p >= line.size() || line[p] != '|') continue;
            const std::size_t q = line.find_first_of("|\n", p + 1);
            if (q == std::string_view::npos || line[q] != '|' || q == p + 1) continue;
            if (skip_spaces(line, q + 1) < line.size()) return false;
        }
        std::size_t pipes = 0;  // outside quotes
        bool single = false, dbl = false, escaped = false;
        for (char c : line) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '\'' && !dbl) single = !single;
            else if (c == '"' && !single) dbl = !dbl;
            else if (c == '|' && !single && !dbl) ++pipes;
        }
        if (pipes != 1) return false;
        // -->\s*[^|\n]*\|\s*[^|\n]+$ : an arrow, one pipe, then text to the end
        for (std::size_t a = s.find("-->"); a != std::string_view::npos; a = s.find("-->", a + 1)) {
            const std::size_t q = s.find_first_of("|\n", a + 3);
            if (q == std::string_view::npos || s[q] != '|') continue;
            const std::string_view rest = s.substr(q + 1);
            if (!rest.empty() && rest.find_first_of("|\n") == std::string_view::npos) return true;
        }
        return false;
    };
    std::vector<std::string> kept;
    for (std::string_view line : py::splitlines(content))
        if (!invalid(line)) kept.emplace_back(line);
    return join_lines(kept, content);
}

inline std::string fix_mermaid_subgraph_ids(std::string_view content) {
    using namespace detail::mermaid;
    std::set<std::string> seen;
    std::vector<std::string> out;
    for (std::string_view line : py::splitlines(content)) {
        // ^(\s*)subgraph\s+(.+?)\s*$
        const std::size_t k = skip_spaces(line, 0);
        std::optional<std::string_view> body;
        if (line.substr(k, 8) == "subgraph" && py::space_at(line, k + 8)) {
            const std::size_t b = skip_spaces(line, k + 8);
            std::size_t e = line.size();
            while (const std::size_t n = py::space_before(line, e)) e -= n;
            if (b < line.size()) body = line.substr(b, e - b);
            else if (b - (k + 8) > py::space_at(line, k + 8)) body = line.substr(line.size() - py::space_before(line, line.size()));
        }
        if (!body) {
            out.emplace_back(line);
            continue;
        }
        const std::string_view indent = line.substr(0, k), title = *body, t = py::strip(title);
        // ID\s*(?=[\[\(]) : already explicit
        const std::size_t e = !t.empty() && id_start(char32_t(t[0])) ? run_end(t, 0, id_char) : 0;
        const std::size_t j = skip_spaces(t, e);
        if (e > 0 && j < t.size() && (t[j] == '[' || t[j] == '(')) {
            seen.insert(std::string(t.substr(0, e)));
            out.emplace_back(line);
            continue;
        }
        if (t.empty()) {
            out.emplace_back(line);
            continue;
        }
        std::size_t first_end = 0;
        while (first_end < t.size() && !py::space_at(t, first_end)) first_end += py::cp_len(t, first_end);
        if (is_identifier(t.substr(0, first_end))) {
            seen.insert(std::string(t.substr(0, first_end)));
            out.emplace_back(line);
            continue;
        }
        std::string id;  // runs of other characters as one '_', no '_' at the ends
        for (std::size_t i = 0; i < title.size();) {
            const char32_t c = py::cp_at(title, i);
            const bool keep = ascii_alnum(c);
            if (keep) id += char(c);
            else if (id.empty() || id.back() != '_') id += '_';
            i += py::cp_len(title, i);
        }
        while (id.starts_with('_')) id.erase(0, 1);
        while (id.ends_with('_')) id.pop_back();
        if (id.empty()) id = "sg";
        if (id[0] >= '0' && id[0] <= '9') id = "sg_" + id;
        std::string sid = id;
        for (int n = 2; seen.count(sid); ++n) sid = id + "_" + std::to_string(n);
        seen.insert(sid);
        std::string escaped;
        for (char c : title) escaped += c == '"' ? std::string("\\\"") : std::string(1, c);
        out.push_back(std::string(indent) + "subgraph " + sid + "[\"" + escaped + "\"]");
    }
    return join_lines(out, content);
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
