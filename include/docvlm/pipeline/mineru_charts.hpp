// docvlm/pipeline/mineru_charts.hpp — what the MinerU2.5 client (opendatalab/mineru-vl-utils
// 1.2.1) does with a chart's content, a Markdown table, when image analysis is on, reproduced
// exactly:
//   - repair_chart_repetition (chart_invalid_repetition.try_fix_chart_invalid_repetition): when
//     the answer shows a repetition loop (an escaped pipe, 5 blank lines, the whole answer
//     repeated, a character 20 times, an overlong or self-repeating cell, a repeated line, a token 8
//     times in a row), the largest well-formed table found in it replaces it;
//   - has_malformed_markdown_table and markdown_table_to_html (image_analysis_postprocess.py).
// Lengths count code points and whitespace is Python's (py_text.hpp).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/pipeline/document.hpp>
#include <docvlm/pipeline/py_text.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

/// try_fix_chart_invalid_repetition: `content`, or the largest legal Markdown table in it when it
/// shows a repetition loop (and holds such a table).
std::string repair_chart_repetition(std::string_view content);
/// has_malformed_markdown_table: a separator line without a header row of the same column count
/// (at least 2) above it, a data row of another count below it, or two or more table-like rows
/// with no well-formed table.
bool has_malformed_markdown_table(std::string_view content);
/// convert_markdown_table_to_html: a whole-content Markdown table (header, separator, rows of the
/// header's width, no blank line) as <table> with <th> and <td> cells (escaped); nullopt otherwise.
std::optional<std::string> markdown_table_to_html(std::string_view content);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail::charts {

using Cells = std::vector<std::string>;

inline std::string_view trim_pipes(std::string_view s) {
    if (s.starts_with('|')) s.remove_prefix(1);
    if (s.ends_with('|')) s.remove_suffix(1);
    return s;
}

// chart_invalid_repetition.split_markdown_row: cells of a stripped line holding '|', split outside
// backtick code; a backslash keeps itself and the next character.
inline std::optional<Cells> split_row(std::string_view line) {
    std::string_view text = py::strip(line);
    if (text.empty() || text.find('|') == std::string_view::npos) return std::nullopt;
    text = trim_pipes(text);
    Cells cells;
    std::string buf;
    bool escaped = false, code = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (escaped) escaped = false;
        else if (c == '\\') escaped = true;
        else if (c == '`') code = !code;
        else if (c == '|' && !code) {
            cells.emplace_back(py::strip(buf));
            buf.clear();
            continue;
        }
        buf += c;
    }
    cells.emplace_back(py::strip(buf));
    return cells;
}

// A cell of ":?-{3,}:?" once its spaces are removed; every cell of a non-empty row.
inline bool is_separator_row(const std::optional<Cells>& cells) {
    if (!cells || cells->empty()) return false;
    for (const std::string& cell : *cells) {
        std::string c;
        for (char ch : cell)
            if (ch != ' ') c += ch;
        std::string_view v = c;
        if (v.starts_with(':')) v.remove_prefix(1);
        if (v.ends_with(':')) v.remove_suffix(1);
        if (v.size() < 3 || v.find_first_not_of('-') != std::string_view::npos) return false;
    }
    return true;
}

inline std::size_t count(std::string_view s, std::string_view what) {  // str.count: non-overlapping
    std::size_t n = 0;
    for (std::size_t i = s.find(what); i != std::string_view::npos; i = s.find(what, i + what.size())) ++n;
    return n;
}

// detect_cell_repetition_issue: over 300 code points, over 20 "::" or 30 ";", or a fragment
// (between "::", ";", "," and "|"; spaces collapsed, lower-cased, ≥ 3 code points) 8 times.
inline bool cell_repeats(std::string_view cell) {
    if (py::length(cell) > 300 || count(cell, "::") > 20 || count(cell, ";") > 30) return true;
    std::map<std::string, int> seen;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= cell.size();) {
        const std::size_t sep = i == cell.size()          ? 1
                                : cell.substr(i, 2) == "::" ? 2
                                : (cell[i] == ';' || cell[i] == ',' || cell[i] == '|') ? 1
                                                                                       : 0;
        if (!sep) {
            ++i;
            continue;
        }
        const std::string fragment = py::lower(py::strip(py::collapse_spaces(cell.substr(start, i - start))));
        if (py::length(fragment) >= 3 && ++seen[fragment] >= 8) return true;
        i += sep;
        start = i;
    }
    return false;
}

// detect_cell_repetition_pattern: a repeating cell in a table's data rows (after its separator).
inline bool table_cells_repeat(std::string_view content) {
    bool in_table = false, separator = false;
    for (std::string_view line : py::splitlines(content)) {
        const auto row = split_row(line);
        if (!row) {
            in_table = separator = false;
        } else if (!in_table) {
            in_table = true, separator = false;
        } else if (!separator) {
            separator = is_separator_row(row);
        } else {
            for (const std::string& cell : *row)
                if (!py::strip(cell).empty() && cell_repeats(py::strip(cell))) return true;
        }
    }
    return false;
}

// repeated_whole_content: the answer (spaces collapsed, ≥ 80 code points) is one unit repeated.
inline bool whole_content_repeats(std::string_view content) {
    const std::string compact(py::strip(py::collapse_spaces(content)));
    if (py::length(compact) < 80) return false;
    const std::size_t period = (compact + compact).find(compact, 1);
    return period > 0 && period < compact.size() && compact.size() % period == 0;
}

// REPEATED_CHAR_RUN_RE: an ASCII letter or digit 20 times in a row.
inline bool char_run(std::string_view s) {
    for (std::size_t i = 0, run = 0; i < s.size(); ++i) {
        const bool alnum = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z');
        run = alnum && i > 0 && s[i] == s[i - 1] ? run + 1 : 1;
        if (alnum && run >= 20) return true;
    }
    return false;
}

// A non-empty stripped line repeated (3 times, or twice when ≥ 30 code points), or a line of ≥ 30
// code points (not a separator) 4 times anywhere.
inline bool lines_repeat(std::string_view content) {
    while (content.starts_with('\n')) content.remove_prefix(1);
    while (content.ends_with('\n')) content.remove_suffix(1);
    std::vector<std::string_view> lines;
    for (std::string_view l : py::splitlines(content)) lines.push_back(py::strip(l));
    for (std::size_t i = 0; i < lines.size();) {
        if (lines[i].empty()) {
            ++i;
            continue;
        }
        std::size_t j = i + 1;
        while (j < lines.size() && lines[j] == lines[i]) ++j;
        if ((j - i >= 2 && py::length(lines[i]) >= 30) || j - i >= 3) return true;
        i = j;
    }
    std::map<std::string_view, int> seen;
    for (std::string_view l : lines)
        if (py::length(l) >= 30 && !is_separator_row(split_row(l)) && ++seen[l] >= 4) return true;
    return false;
}

// REPEAT_TOKEN_RE's tokens ([A-Za-z0-9]+ joined by - _ . /, or one non-space code point) of the
// content without its separator lines: the same token (lower-cased) 8 times in a row.
inline bool token_run(std::string_view content) {
    std::string text;
    bool first = true;
    for (std::string_view line : py::splitlines(content))
        if (!is_separator_row(split_row(line))) text += (first ? "" : "\n") + std::string(line), first = false;
    auto alnum = [&](std::size_t i) {
        const char c = text[i];
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    };
    std::string previous;
    int run = 0;
    for (std::size_t i = 0; i < text.size();) {
        if (const std::size_t n = py::space_at(text, i)) {
            i += n;
            continue;
        }
        std::size_t j = i;
        if (alnum(i)) {
            while (j < text.size() && alnum(j)) ++j;
            while (j + 1 < text.size() && (text[j] == '-' || text[j] == '_' || text[j] == '.' || text[j] == '/') && alnum(j + 1))
                for (++j; j < text.size() && alnum(j);) ++j;
        } else {
            j += py::cp_len(text, i);
        }
        const std::string token = py::lower(std::string_view(text).substr(i, j - i));
        run = token == previous ? run + 1 : 1;
        if (run >= 8) return true;
        previous = token;
        i = j;
    }
    return false;
}

// validate_content_repetition, as a yes/no.
inline bool shows_repetition(std::string_view content) {
    return content.find("\\|") != std::string_view::npos || content.find("\n\n\n\n\n") != std::string_view::npos ||
           whole_content_repeats(content) || char_run(content) || table_cells_repeat(content) || lines_repeat(content) ||
           token_run(content);
}

// split_repair_markdown_row: a stripped line with fullwidth and broken pipes and "\|" read as '|',
// when it splits into at least 2 cells.
inline std::optional<Cells> repair_row(std::string_view line) {
    // one pass: a fullwidth or broken bar, or a backslash before any of the three bars, is '|'
    const std::string_view t = py::strip(line);
    auto bar = [&](std::size_t i) -> std::size_t {
        for (std::string_view b : {std::string_view("|"), std::string_view("\uff5c"), std::string_view("\u00a6")})
            if (t.substr(i, b.size()) == b) return b.size();
        return 0;
    };
    std::string s;
    for (std::size_t i = 0; i < t.size();) {
        const std::size_t escaped = t[i] == '\\' ? bar(i + 1) : 0;
        if (const std::size_t n = escaped ? escaped + 1 : bar(i)) s += '|', i += n;
        else s += t[i++];
    }
    if (s.find('|') == std::string::npos) return std::nullopt;
    auto cells = split_row(s);
    if (!cells || cells->size() < 2) return std::nullopt;
    return cells;
}

inline std::string clean_cell(const std::string& cell) {
    std::string c = cell;
    std::replace(c.begin(), c.end(), '\t', ' ');
    c = std::string(py::strip(py::collapse_spaces(c)));
    if (std::count(c.begin(), c.end(), '`') % 2 == 1) c += '`';
    std::string out;
    for (char ch : c) out += ch == '|' ? std::string("\\|") : std::string(1, ch);
    return out;
}

inline std::string format_row(const Cells& cells) {
    std::string s = "| ";
    for (std::size_t i = 0; i < cells.size(); ++i) s += (i ? " | " : "") + clean_cell(cells[i]);
    return s + " |";
}

inline std::string format_table(const Cells& header, std::vector<const Cells*> rows) {
    std::string s = format_row(header) + "\n| ";
    for (std::size_t i = 0; i < header.size(); ++i) s += i ? " | ---" : "---";
    s += " |";
    for (const Cells* r : rows) s += "\n" + format_row(*r);
    return s;
}

// parsed_table_blocks: runs of table rows; after a block's separator, rows with repeating cells go.
inline std::vector<std::vector<Cells>> table_blocks(std::string_view content) {
    std::vector<std::vector<Cells>> blocks;
    std::vector<Cells> current;
    bool separator = false;
    for (std::string_view line : py::splitlines(content)) {
        auto cells = repair_row(line);
        if (!cells) {
            if (!current.empty()) blocks.push_back(std::move(current)), current.clear();
            separator = false;
        } else if (current.empty()) {
            current.push_back(std::move(*cells)), separator = false;
        } else if (!separator) {
            separator = is_separator_row(cells);
            current.push_back(std::move(*cells));
        } else if (is_separator_row(cells) ||  // is_noisy_table_row
                   !std::any_of(cells->begin(), cells->end(), [](const std::string& c) { return !py::strip(c).empty() && cell_repeats(py::strip(c)); })) {
            current.push_back(std::move(*cells));
        }
    }
    if (!current.empty()) blocks.push_back(std::move(current));
    return blocks;
}

inline bool pipe_bounded(std::string_view line) {
    const std::string_view s = py::strip(line);
    return s.starts_with('|') && s.ends_with('|');
}

// validate_repaired_markdown_table.
inline bool legal_table(std::string_view table) {
    const auto lines = py::splitlines(py::strip(table));
    if (lines.size() < 3) return false;
    const auto header = split_row(lines[0]), separator = split_row(lines[1]);
    if (!header || !separator || !is_separator_row(separator) || !pipe_bounded(lines[0]) || !pipe_bounded(lines[1]) ||
        header->size() != separator->size())
        return false;
    for (std::size_t i = 2; i < lines.size(); ++i) {
        const auto row = split_row(lines[i]);
        if (!row || !pipe_bounded(lines[i]) || row->size() != header->size()) return false;
    }
    return true;
}

// extract_largest_legal_markdown_table: every table a block holds (from each separator with the
// row above it, and runs of rows of one width), the largest by (lines, columns, length).
inline std::string largest_legal_table(std::string_view content) {
    std::vector<std::string> candidates;
    for (const auto& rows : table_blocks(content)) {
        for (std::size_t s = 0; s < rows.size(); ++s) {
            if (!is_separator_row(rows[s]) || s == 0 || rows[s - 1].size() < 2 || is_separator_row(rows[s - 1])) continue;
            std::vector<const Cells*> data;
            for (std::size_t r = s + 1; r < rows.size() && !is_separator_row(rows[r]) && rows[r].size() == rows[s - 1].size(); ++r)
                data.push_back(&rows[r]);
            if (data.empty()) continue;
            std::string t = format_table(rows[s - 1], data);
            if (legal_table(t)) candidates.push_back(std::move(t));
        }
        for (std::size_t i = 0; i < rows.size();) {
            if (is_separator_row(rows[i]) || rows[i].size() < 2) {
                ++i;
                continue;
            }
            std::size_t j = i + 1;
            while (j < rows.size() && !is_separator_row(rows[j]) && rows[j].size() == rows[i].size()) ++j;
            if (j - i >= 2) {
                std::vector<const Cells*> data;
                for (std::size_t r = i + 1; r < j; ++r) data.push_back(&rows[r]);
                std::string t = format_table(rows[i], data);
                if (legal_table(t)) candidates.push_back(std::move(t));
            }
            i = std::max(j, i + 1);
        }
    }
    auto score = [](const std::string& t) {
        const auto lines = py::splitlines(t);
        const auto first = split_row(lines.at(0));
        return std::tuple(lines.size(), first ? first->size() : 0, py::length(t));
    };
    const std::string* best = nullptr;
    for (const std::string& c : candidates)
        if (!best || score(c) > score(*best)) best = &c;
    return best ? *best : std::string();
}

// image_analysis_postprocess's own row helpers (no backtick rule; "\|" is a pipe in a cell).
inline std::size_t column_count(std::string_view line) {
    const std::string_view s = trim_pipes(py::strip(line));
    return std::size_t(std::count(s.begin(), s.end(), '|')) + 1;
}

inline bool is_row_candidate(std::string_view line) {
    const std::string_view s = py::strip(line);
    return !s.empty() && s.find('|') != std::string_view::npos && column_count(s) >= 2;
}

// ^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$ : two or more dash cells between pipes.
inline bool is_separator_line(std::string_view line) {
    std::string_view s = trim_pipes(py::strip(line));
    std::size_t cells = 0;
    for (std::size_t start = 0;; ++cells) {
        const std::size_t bar = s.find('|', start);
        std::string_view cell = py::strip(s.substr(start, bar == std::string_view::npos ? std::string_view::npos : bar - start));
        if (cell.starts_with(':')) cell.remove_prefix(1);
        if (cell.ends_with(':')) cell.remove_suffix(1);
        if (cell.size() < 3 || cell.find_first_not_of('-') != std::string_view::npos) return false;
        if (bar == std::string_view::npos) break;
        start = bar + 1;
    }
    return cells + 1 >= 2;
}

inline Cells split_cells(std::string_view line) {
    const std::string_view s = trim_pipes(py::strip(line));
    Cells cells;
    std::string cur;
    bool escaped = false;
    for (char c : s) {
        if (escaped) {
            if (c != '|') cur += '\\';
            cur += c;
            escaped = false;
        } else if (c == '\\') {
            escaped = true;
        } else if (c == '|') {
            cells.emplace_back(py::strip(cur));
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (escaped) cur += '\\';
    cells.emplace_back(py::strip(cur));
    return cells;
}

}  // namespace detail::charts

inline std::string repair_chart_repetition(std::string_view content) {
    if (!detail::charts::shows_repetition(content)) return std::string(content);
    std::string table = detail::charts::largest_legal_table(content);
    return table.empty() ? std::string(content) : table;
}

inline bool has_malformed_markdown_table(std::string_view content) {
    using namespace detail::charts;
    const auto lines = py::splitlines(content);
    std::size_t rows = 0;
    bool table = false;
    for (std::string_view l : lines) rows += is_row_candidate(l);
    for (std::size_t s = 0; s < lines.size(); ++s) {
        if (!is_separator_line(lines[s])) continue;
        std::ptrdiff_t h = std::ptrdiff_t(s) - 1;
        while (h >= 0 && py::strip(lines[std::size_t(h)]).empty()) --h;
        if (h < 0 || !is_row_candidate(lines[std::size_t(h)])) return true;
        const std::size_t cols = column_count(lines[std::size_t(h)]);
        if (cols < 2 || column_count(lines[s]) != cols) return true;
        for (std::size_t r = s + 1; r < lines.size() && !py::strip(lines[r]).empty() && is_row_candidate(lines[r]); ++r)
            if (column_count(lines[r]) != cols) return true;
        table = true;
    }
    return rows >= 2 && !table;
}

inline std::optional<std::string> markdown_table_to_html(std::string_view content) {
    using namespace detail::charts;
    if (py::strip(content).empty()) return std::nullopt;
    std::vector<std::string_view> lines;
    for (std::string_view l : py::splitlines(py::strip(content))) lines.push_back(py::strip(l));
    if (lines.size() < 2 || std::any_of(lines.begin(), lines.end(), [](std::string_view l) { return l.empty(); })) return std::nullopt;
    if (!is_row_candidate(lines[0]) || !is_separator_line(lines[1])) return std::nullopt;
    const Cells header = split_cells(lines[0]);
    if (header.size() < 2 || split_cells(lines[1]).size() != header.size()) return std::nullopt;
    std::string html = "<table><tr>";
    for (const std::string& c : header) html += "<th>" + html_escape(c) + "</th>";
    html += "</tr>";
    for (std::size_t i = 2; i < lines.size(); ++i) {
        if (!is_row_candidate(lines[i])) return std::nullopt;
        const Cells row = split_cells(lines[i]);
        if (row.size() != header.size()) return std::nullopt;
        html += "<tr>";
        for (const std::string& c : row) html += "<td>" + html_escape(c) + "</td>";
        html += "</tr>";
    }
    return html + "</table>";
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
