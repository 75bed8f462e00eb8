// docvlm/pipeline/mineru_table_merge.hpp — MinerU's cross-page table merge on one pair of tables
// (mineru/utils/table_merge.py; the official client imports its reading of tables to decide which
// may continue on the next page, MinerU joins them with the rest):
//   HTML → rows (<tr>, every one in the markup) → cells (<td>/<th> under a row) with their
//   colspan/rowspan → per row: the columns it occupies once rowspans from above are counted
//   (effective), the sum of its colspans (actual), its cell count (visual); the first rows'
//   signatures (spans and texts, to find repeated header rows); and per row the rendered segments
//   — runs of columns drawn by one source cell, rowspans from above included.
//   Joining (merge_table_into) moves the second table's rows under the first, as
//   perform_table_merge does.
// Spans are read with Python's int(); a value int() refuses, one beyond max_span, or a table whose
// cells cover more than max_table_cells grid cells throws docvlm::Error (the client raises on the
// first; the others would only make Python slow).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/pipeline/html_parse.hpp>
#include <docvlm/pipeline/py_text.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

/// How many leading rows may be a repeated header (MinerU's MAX_HEADER_ROWS).
inline constexpr std::size_t max_header_rows = 5;
/// The largest colspan or rowspan read; larger ones are refused (a table that wide is an attack).
inline constexpr long long max_span = 1000;
/// The most grid cells (Σ colspan × rowspan) a table's cells may cover.
inline constexpr long long max_table_cells = 1000000;

/// One row's column counts (MinerU's RowMetrics).
struct RowMetrics {
    long long row = 0;             ///< index among the table's rows
    long long effective_cols = 0;  ///< 1 + the last column occupied, rowspans from above included
    long long actual_cols = 0;     ///< the sum of its cells' colspans
    long long visual_cols = 0;     ///< its cell count
};

/// A leading row's signature, to compare header rows across two tables.
struct RowSignature {
    long long effective_cols = 0;
    std::vector<long long> colspans, rowspans;
    std::vector<std::string> normalized_texts;  ///< cell text, fullwidth ASCII folded, no whitespace
    std::vector<std::string> display_texts;     ///< cell text stripped, fullwidth ASCII folded
};

/// A run of columns in a row drawn by one source cell (its text; rowspans from above included).
struct RenderedSegment {
    std::string text;
    long long start_col = 0, end_col = 0;  ///< [start, end)
};

/// Columns occupied past a table's last row by its rowspans: row offset (0 = the row after the
/// last) → columns.
using TailOccupancy = std::map<long long, std::set<long long>>;

/// A table read for merging (MinerU's TableMergeState built from HTML alone).
struct TableState {
    std::shared_ptr<html::Tree> tree;  ///< shared with the tables merged into this one
    int tbody = -1;         ///< where appended rows go: the first <tbody>, else the first <table>, else none
    std::vector<int> rows;  ///< <tr> nodes in document order
    long long total_cols = 0;
    std::vector<RowSignature> front_header_info;  ///< the first max_header_rows rows
    std::vector<RowMetrics> front_row_metrics;    ///< the first max_header_rows + 1 rows, scanned alone
    std::optional<RowMetrics> last_data_row;      ///< the last row that has cells
    std::vector<long long> row_effective_cols;
    TailOccupancy tail_occupied;
};

/// build_table_state_from_html: nullopt for empty markup or a table without rows.
std::optional<TableState> table_state_from_html(std::string_view html);
/// detect_table_headers' count: leading rows both tables share — same spans and texts, or failing
/// that same texts and rendered segment counts.
std::size_t detect_table_headers(const TableState& previous, const TableState& current);
/// The header count grown to cover rows that its cells' rowspans reach.
std::size_t expand_header_count_by_rowspan(const TableState& table, std::size_t header_count);
/// can_merge_by_structure: table widths (x1 - x0 of the boxes) within 10 % and the same column
/// count, or a boundary row match (check_rows_match).
bool can_merge_by_structure(const TableState& current, const TableState& previous,
                            std::array<double, 4> current_bbox, std::array<double, 4> previous_bbox);
/// build_row_rendered_cell_segments for row `row` (negative: from the end).
std::vector<RenderedSegment> row_rendered_segments(const TableState& table, long long row,
                                                   const TailOccupancy& initial = {});
/// calculate_row_rendered_segments: the number of segments of row `row`.
std::size_t row_rendered_segment_count(const TableState& table, long long row);
/// perform_table_merge: `current` continues `previous` on the next page. Its rows after the header
/// rows both repeat (grown by their rowspans) move to the end of `previous` — blank rowspan cells
/// that the previous page's rowspans already cover dropped, colspans widened where one table has
/// fewer columns, and where `cell_merge` (the client's, per column) has a 1 the first moved row's
/// cell joins the cell above (that row dropped when nothing is left in it). `previous.tree` holds
/// the merged table: previous.tree->to_html() is what MinerU writes.
void merge_table_into(TableState& previous, TableState& current, const std::vector<int>& cell_merge);


// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {

// int(cell.get(name, 1)).
inline long long cell_span(const html::Tree& tree, int cell, std::string_view name) {
    const std::optional<std::string> v = tree.attribute(cell, name);
    if (!v) return 1;
    const std::optional<long long> n = py::to_int(*v);
    if (!n) throw Error("table merge: " + std::string(name) + "=\"" + *v + "\" is not a number");
    if (*n > max_span || *n < -max_span) throw Error("table merge: " + std::string(name) + "=" + *v + " is too large");
    return *n;
}

inline std::vector<int> row_cells(const html::Tree& tree, int row) { return tree.find_all(row, {"td", "th"}); }

// Adds a cell's grid cells to `covered`; throws past max_table_cells.
inline void count_cells(long long& covered, long long colspan, long long rowspan) {
    if (colspan > 0 && rowspan > 0) covered += colspan * rowspan;
    if (covered > max_table_cells) throw Error("table merge: the table's cells cover more than " + std::to_string(max_table_cells) + " grid cells");
}

// full_to_half: U+FF01..U+FF5E → ASCII.
inline std::string full_to_half(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = py::cp_len(s, i);
        const char32_t c = py::cp_at(s, i);
        if (c >= 0xff01 && c <= 0xff5e) out += char(c - 0xfee0);
        else out.append(s.substr(i, n));
        i += n;
    }
    return out;
}

struct RowScan {
    std::vector<long long> row_effective_cols;
    std::vector<RowMetrics> row_metrics;
    long long total_cols = 0;
    std::optional<RowMetrics> last_nonempty;
    TailOccupancy tail_occupied;
};

// _scan_rows: column occupancy row by row; `initial` holds rowspans reaching in from above.
inline RowScan scan_rows(const html::Tree& tree, const std::vector<int>& rows, const TailOccupancy& initial = {},
                         long long start_row = 0) {
    std::map<long long, std::set<long long>> occupied;
    RowScan r;
    long long covered = 0;
    for (const auto& [offset, cols] : initial)
        if (!cols.empty()) occupied[offset] = cols, r.total_cols = std::max(r.total_cols, *cols.rbegin() + 1);
    for (long long local = 0; local < (long long)rows.size(); ++local) {
        std::set<long long>& row_occ = occupied[local];
        const std::vector<int> cells = row_cells(tree, rows[std::size_t(local)]);
        long long col = 0, actual = 0;
        for (int cell : cells) {
            while (row_occ.count(col)) ++col;
            const long long colspan = cell_span(tree, cell, "colspan"), rowspan = cell_span(tree, cell, "rowspan");
            count_cells(covered, colspan, rowspan);
            actual += colspan;
            for (long long ro = 0; ro < rowspan; ++ro) {
                std::set<long long>& target = occupied[local + ro];
                for (long long c = col; c < col + colspan; ++c) target.insert(c);
            }
            col += colspan;
            r.total_cols = std::max(r.total_cols, col);
        }
        const long long effective = row_occ.empty() ? 0 : *row_occ.rbegin() + 1;
        r.row_effective_cols.push_back(effective);
        r.total_cols = std::max(r.total_cols, effective);
        r.row_metrics.push_back({start_row + local, effective, actual, (long long)cells.size()});
        if (!cells.empty()) r.last_nonempty = r.row_metrics.back();
    }
    for (const auto& [row, cols] : occupied)
        if (row >= (long long)rows.size() && !cols.empty()) r.tail_occupied[row - (long long)rows.size()] = cols;
    return r;
}

inline RowSignature row_signature(const html::Tree& tree, int row, long long effective_cols) {
    RowSignature s;
    s.effective_cols = effective_cols;
    for (int cell : row_cells(tree, row)) {
        s.colspans.push_back(cell_span(tree, cell, "colspan"));
        s.rowspans.push_back(cell_span(tree, cell, "rowspan"));
        const std::string text = tree.get_text(cell);
        s.normalized_texts.push_back(py::remove_spaces(full_to_half(text)));
        s.display_texts.push_back(full_to_half(py::strip(text)));
    }
    return s;
}

inline std::string display_text(const html::Tree& tree, int cell) { return full_to_half(py::strip(tree.get_text(cell))); }

// _build_front_cache: the first rows scanned on their own.
inline void build_front_cache(TableState& t) {
    const std::size_t front = std::min(t.rows.size(), max_header_rows + 1);
    const std::vector<int> front_rows(t.rows.begin(), t.rows.begin() + std::ptrdiff_t(front));
    const RowScan scan = scan_rows(*t.tree, front_rows);
    t.front_header_info.clear();
    for (std::size_t i = 0; i < std::min(front, max_header_rows); ++i)
        t.front_header_info.push_back(row_signature(*t.tree, front_rows[i], scan.row_effective_cols[i]));
    t.front_row_metrics = scan.row_metrics;
}

// (source row, source cell) of each column of the target row; source row -1: a rowspan from
// `initial`. Returns the target row's columns and the table's column count up to it.
using ColumnSources = std::map<long long, std::pair<long long, long long>>;
inline constexpr std::pair<long long, long long> no_source{-2, -2};  // sources have row ≥ -1

inline std::pair<ColumnSources, long long> scan_row_visual_sources(const html::Tree& tree, const std::vector<int>& rows,
                                                                   long long target, const TailOccupancy& initial) {
    const long long n = (long long)rows.size();
    if (target < 0) target += n;
    if (target < 0 || target >= n) return {{}, 0};
    std::map<long long, ColumnSources> occupied;
    long long total = 0, covered = 0;
    for (const auto& [offset, cols] : initial) {
        if (cols.empty()) continue;
        for (long long c : cols) occupied[offset][c] = {-1, c};
        total = std::max(total, *cols.rbegin() + 1);
    }
    for (long long r = 0; r <= target; ++r) {
        ColumnSources& row_occ = occupied[r];
        long long col = 0;
        const std::vector<int> cells = row_cells(tree, rows[std::size_t(r)]);
        for (std::size_t ci = 0; ci < cells.size(); ++ci) {
            while (row_occ.count(col)) ++col;
            const long long colspan = cell_span(tree, cells[ci], "colspan"), rowspan = cell_span(tree, cells[ci], "rowspan");
            count_cells(covered, colspan, rowspan);
            for (long long ro = 0; ro < rowspan; ++ro) {
                ColumnSources& occ = occupied[r + ro];
                for (long long c = col; c < col + colspan; ++c) occ[c] = {r, (long long)ci};
            }
            col += colspan;
            total = std::max(total, col);
        }
    }
    return {occupied[target], total};
}

}  // namespace detail

inline std::optional<TableState> table_state_from_html(std::string_view html) {
    if (html.empty()) return std::nullopt;
    TableState t;
    t.tree = std::make_shared<html::Tree>(html::parse(html));
    t.tbody = t.tree->find(0, "tbody");
    if (t.tbody < 0) t.tbody = t.tree->find(0, "table");
    t.rows = t.tree->find_all(0, {"tr"});
    if (t.rows.empty()) return std::nullopt;
    detail::RowScan scan = detail::scan_rows(*t.tree, t.rows);
    detail::build_front_cache(t);
    t.total_cols = scan.total_cols;
    t.last_data_row = scan.last_nonempty;
    t.row_effective_cols = std::move(scan.row_effective_cols);
    t.tail_occupied = std::move(scan.tail_occupied);
    return t;
}

inline std::vector<RenderedSegment> row_rendered_segments(const TableState& t, long long row, const TailOccupancy& initial) {
    const auto [sources, total] = detail::scan_row_visual_sources(*t.tree, t.rows, row, initial);
    std::vector<RenderedSegment> out;
    if (total == 0) return out;
    std::pair<long long, long long> current = detail::no_source;
    RenderedSegment seg;
    for (long long col = 0; col < total; ++col) {
        const auto it = sources.find(col);
        if (it == sources.end() || it->second != current) {
            if (current != detail::no_source) seg.end_col = col, out.push_back(seg);
            current = detail::no_source;
            if (it == sources.end()) continue;
            current = it->second;
            seg = RenderedSegment{{}, col, 0};
            const auto [src_row, src_cell] = it->second;
            if (src_row >= 0) {
                const std::vector<int> cells = detail::row_cells(*t.tree, t.rows[std::size_t(src_row)]);
                if (src_cell < (long long)cells.size()) seg.text = detail::display_text(*t.tree, cells[std::size_t(src_cell)]);
            }
        }
    }
    if (current != detail::no_source) seg.end_col = total, out.push_back(seg);
    return out;
}

inline std::size_t row_rendered_segment_count(const TableState& t, long long row) {
    const auto [sources, total] = detail::scan_row_visual_sources(*t.tree, t.rows, row, {});
    std::size_t count = 0;
    std::pair<long long, long long> previous = detail::no_source;
    for (long long col = 0; col < total; ++col) {
        const auto it = sources.find(col);
        if (it == sources.end()) {
            previous = detail::no_source;
            continue;
        }
        if (it->second != previous) ++count, previous = it->second;
    }
    return count;
}

inline std::size_t detect_table_headers(const TableState& a, const TableState& b) {
    const std::size_t rows = std::min({a.front_header_info.size(), b.front_header_info.size(), max_header_rows});
    std::size_t headers = 0;
    for (std::size_t i = 0; i < rows; ++i) {
        const RowSignature &r1 = a.front_header_info[i], &r2 = b.front_header_info[i];
        if (r1.colspans.size() != r2.colspans.size() || r1.effective_cols != r2.effective_cols || r1.colspans != r2.colspans ||
            r1.rowspans != r2.rowspans || r1.normalized_texts != r2.normalized_texts)
            break;
        ++headers;
    }
    if (headers > 0) return headers;
    for (std::size_t i = 0; i < rows; ++i) {  // _detect_table_headers_visual: spans may have been lost
        if (a.front_header_info[i].normalized_texts != b.front_header_info[i].normalized_texts ||
            row_rendered_segment_count(a, (long long)i) != row_rendered_segment_count(b, (long long)i))
            break;
        ++headers;
    }
    return headers;
}

inline std::size_t expand_header_count_by_rowspan(const TableState& t, std::size_t header_count) {
    if (header_count == 0 || t.rows.empty()) return header_count;
    std::size_t expanded = std::min(header_count, t.rows.size());
    for (std::size_t r = 0; r < expanded; ++r)
        for (int cell : detail::row_cells(*t.tree, t.rows[r])) {
            const long long rowspan = detail::cell_span(*t.tree, cell, "rowspan");
            if (rowspan > 1) expanded = std::min(std::max<std::size_t>(expanded, r + std::size_t(rowspan)), t.rows.size());
        }
    return expanded;
}

namespace detail {

// check_rows_match: the previous table's last row against the current one's first data row.
inline bool rows_match(const TableState& previous, const TableState& current) {
    if (!previous.last_data_row) return false;
    const std::size_t headers = expand_header_count_by_rowspan(current, detect_table_headers(previous, current));
    if (headers >= current.front_row_metrics.size()) return false;
    const RowMetrics &last = *previous.last_data_row, &first = current.front_row_metrics[headers];
    return last.effective_cols == first.effective_cols || last.actual_cols == first.actual_cols ||
           row_rendered_segment_count(previous, last.row) == row_rendered_segment_count(current, first.row);
}

}  // namespace detail

inline bool can_merge_by_structure(const TableState& current, const TableState& previous,
                                   std::array<double, 4> current_bbox, std::array<double, 4> previous_bbox) {
    const double w1 = current_bbox[2] - current_bbox[0], w2 = previous_bbox[2] - previous_bbox[0];
    if (w1 > 0 && w2 > 0 && std::abs(w1 - w2) / std::min(w1, w2) >= 0.1) return false;
    if (previous.total_cols == current.total_cols) return true;
    return detail::rows_match(previous, current);
}

namespace detail {

// build_visual_col_mapping: the first column of each cell of row `target`, past columns that
// rowspans from earlier rows (or `initial`) hold.
inline std::vector<long long> visual_col_mapping(const html::Tree& tree, const std::vector<int>& rows, long long target,
                                                 const TailOccupancy& initial = {}) {
    if (target < 0) target += (long long)rows.size();
    if (target < 0 || target >= (long long)rows.size()) return {};
    const auto [occupied, total] = scan_row_visual_sources(tree, rows, target, initial);
    std::vector<long long> mapping;
    long long col = 0;
    for (int cell : row_cells(tree, rows[std::size_t(target)])) {
        for (auto it = occupied.find(col); it != occupied.end() && it->second.first < target; it = occupied.find(col)) ++col;
        mapping.push_back(col);
        col += cell_span(tree, cell, "colspan");
    }
    return mapping;
}

// _cell_has_semantic_content: text that is not whitespace, or an image, formula, table, ...
inline bool has_semantic_content(const html::Tree& tree, int cell) {
    std::vector<int> todo = {cell};  // get_text(strip=True): some string not only whitespace
    while (!todo.empty()) {
        const html::Node& n = tree[todo.back()];
        todo.pop_back();
        if ((n.kind == html::Node::Kind::text || n.kind == html::Node::Kind::cdata) && !py::strip(n.text).empty()) return true;
        todo.insert(todo.end(), n.children.begin(), n.children.end());
    }
    return !tree.find_all(cell, {"img", "svg", "math", "eq", "table", "figure", "object", "embed", "canvas"}).empty();
}

inline bool row_has_semantic_content(const html::Tree& tree, int row) {
    for (int c : row_cells(tree, row))
        if (has_semantic_content(tree, c)) return true;
    return false;
}

// _insert_cell_before_visual_column: `cell` goes before the first cell of row `target` that starts
// at or after column `start`, else at the row's end.
inline void insert_cell_before_visual_column(html::Tree& tree, const std::vector<int>& rows, long long target, long long start, int cell) {
    const std::vector<int> cells = row_cells(tree, rows[std::size_t(target)]);
    const std::vector<long long> mapping = visual_col_mapping(tree, rows, target);
    for (std::size_t i = 0; i < mapping.size(); ++i)
        if (mapping[i] >= start) return tree.insert_before(cells[i], cell);
    tree.append(rows[std::size_t(target)], cell);
}

// A copy of `cell` whose rowspan is `rowspan` (the attribute dropped for 1).
inline int copy_with_rowspan(html::Tree& tree, int cell, long long rowspan) {
    const int copy = tree.copy(tree, cell);
    if (rowspan > 1) tree.set_attribute(copy, "rowspan", std::to_string(rowspan));
    else tree.remove_attribute(copy, "rowspan");
    return copy;
}

// _carry_rowspan_structure_to_next_row: before row `row` is dropped, its blank cells that span
// further rows move down one row, one row shorter.
inline void carry_rowspan_structure_to_next_row(html::Tree& tree, const std::vector<int>& rows, std::size_t row) {
    if (row + 1 >= rows.size()) return;
    const std::vector<int> cells = row_cells(tree, rows[row]);
    const std::vector<long long> mapping = visual_col_mapping(tree, rows, (long long)row);
    std::vector<std::pair<long long, int>> carried;
    for (std::size_t i = 0; i < std::min(cells.size(), mapping.size()); ++i) {
        const long long rowspan = cell_span(tree, cells[i], "rowspan");
        if (rowspan <= 1 || has_semantic_content(tree, cells[i])) continue;
        carried.emplace_back(mapping[i], copy_with_rowspan(tree, cells[i], rowspan - 1));
    }
    std::stable_sort(carried.begin(), carried.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [start, cell] : carried) insert_cell_before_visual_column(tree, rows, (long long)row + 1, start, cell);
}

// _clip_overlapped_blank_rowspan_cells: blank rowspan cells standing where the previous page's
// rowspans (`initial`) already are lose those rows (moved down, or dropped). True if any did.
inline bool clip_overlapped_blank_rowspan_cells(html::Tree& tree, const std::vector<int>& rows, const TailOccupancy& initial) {
    if (rows.empty() || initial.empty()) return false;
    std::vector<int> removed;
    std::vector<std::tuple<long long, long long, int>> moved;  // target row, start column, cell
    for (std::size_t r = 0; r < rows.size(); ++r) {
        const std::vector<int> cells = row_cells(tree, rows[r]);
        const std::vector<long long> mapping = visual_col_mapping(tree, rows, (long long)r);
        for (std::size_t i = 0; i < std::min(cells.size(), mapping.size()); ++i) {
            const long long rowspan = cell_span(tree, cells[i], "rowspan");
            if (rowspan <= 1 || has_semantic_content(tree, cells[i])) continue;
            const long long colspan = cell_span(tree, cells[i], "colspan");
            if (colspan <= 0) continue;
            long long overlap = 0;
            for (; overlap < rowspan; ++overlap) {
                const auto it = initial.find((long long)r + overlap);
                bool covered = it != initial.end();
                for (long long c = mapping[i]; covered && c < mapping[i] + colspan; ++c) covered = it->second.count(c) > 0;
                if (!covered) break;
            }
            if (overlap == 0) continue;
            const long long remaining = rowspan - overlap, target = (long long)r + overlap;
            if (remaining > 0 && target >= (long long)rows.size()) continue;
            removed.push_back(cells[i]);
            if (remaining > 0) moved.emplace_back(target, mapping[i], copy_with_rowspan(tree, cells[i], remaining));
        }
    }
    if (removed.empty()) return false;
    for (int c : removed) tree.extract(c);
    std::stable_sort(moved.begin(), moved.end(), [](const auto& a, const auto& b) {
        return std::tie(std::get<0>(a), std::get<1>(a)) > std::tie(std::get<0>(b), std::get<1>(b));
    });
    for (const auto& [target, start, cell] : moved) insert_cell_before_visual_column(tree, rows, target, start, cell);
    return true;
}

inline std::vector<long long> row_colspans(const html::Tree& tree, int row) {
    std::vector<long long> spans;
    for (int c : row_cells(tree, row)) spans.push_back(cell_span(tree, c, "colspan"));
    return spans;
}

// adjust_table_rows_colspan: rows [begin, end) narrower than `target_cols` are widened — to the
// reference row's colspans when they have its cells, else by widening their last cell.
inline void adjust_rows_colspan(html::Tree& tree, const std::vector<int>& rows, std::size_t begin, std::size_t end,
                                const std::vector<long long>& effective_cols, const std::vector<long long>& reference,
                                long long target_cols, const std::vector<long long>& match_colspans) {
    for (std::size_t r = begin; r < end; ++r) {
        const std::vector<int> cells = row_cells(tree, rows[r]);
        if (cells.empty()) continue;
        const std::vector<long long> spans = row_colspans(tree, rows[r]);
        long long actual = 0;
        for (long long v : spans) actual += v;
        if (effective_cols[r] >= target_cols || actual >= target_cols) continue;
        if (spans.size() == reference.size() && spans == match_colspans) {
            for (std::size_t i = 0; i < cells.size() && i < reference.size(); ++i)
                if (reference[i] > 1) tree.set_attribute(cells[i], "colspan", std::to_string(reference[i]));
        } else if (target_cols - effective_cols[r] > 0) {
            tree.set_attribute(cells.back(), "colspan", std::to_string(spans.back() + target_cols - effective_cols[r]));
        }
    }
}

// _refresh_table_state_metrics.
inline void refresh_metrics(TableState& t) {
    RowScan scan = scan_rows(*t.tree, t.rows);
    t.row_effective_cols = std::move(scan.row_effective_cols);
    t.total_cols = scan.total_cols;
    t.last_data_row = scan.last_nonempty;
    t.tail_occupied = std::move(scan.tail_occupied);
    build_front_cache(t);
}

// _apply_cell_merge: per column flagged 1, the cell of current's first data row joins the cell
// above it; the row goes when nothing is left in it.
inline void apply_cell_merge(TableState& previous, TableState& current, std::size_t headers, const std::vector<int>& cell_merge) {
    if (cell_merge.empty() || headers >= current.rows.size() || previous.rows.empty()) return;
    const std::shared_ptr<html::Tree> tree = previous.tree;  // current's too, by now
    const int first = current.rows[headers], last = previous.rows.back();
    const std::vector<int> cells1 = row_cells(*previous.tree, last), cells2 = row_cells(*current.tree, first);
    const std::vector<long long> map1 = visual_col_mapping(*previous.tree, previous.rows, (long long)previous.rows.size() - 1);
    const std::vector<int> merge_rows(current.rows.begin() + std::ptrdiff_t(headers), current.rows.end());
    const std::vector<long long> map2 = visual_col_mapping(*current.tree, merge_rows, 0, previous.tail_occupied);
    auto by_column = [](const html::Tree& tree, const std::vector<int>& cells, const std::vector<long long>& map) {
        std::map<long long, std::size_t> m;
        for (std::size_t i = 0; i < map.size(); ++i)
            for (long long c = map[i]; c < map[i] + cell_span(tree, cells[i], "colspan"); ++c) m[c] = i;
        return m;
    };
    const auto col1 = by_column(*previous.tree, cells1, map1), col2 = by_column(*current.tree, cells2, map2);
    std::set<std::pair<std::size_t, std::size_t>> moved;
    for (std::size_t v = 0; v < cell_merge.size(); ++v) {
        const auto a = col1.find((long long)v), b = col2.find((long long)v);
        if (cell_merge[v] != 1 || a == col1.end() || b == col2.end()) continue;
        if (moved.insert({a->second, b->second}).second)
            for (int child : std::vector<int>((*tree)[cells2[b->second]].children)) tree->append(cells1[a->second], child);
    }
    std::set<std::size_t> cleared;
    for (std::size_t v = 0; v < cell_merge.size(); ++v) {
        const auto a = col1.find((long long)v), b = col2.find((long long)v);
        if (cell_merge[v] == 1 && a != col1.end() && b != col2.end() && cleared.insert(b->second).second)
            current.tree->clear(cells2[b->second]);
    }
    if (!row_has_semantic_content(*current.tree, first)) {
        carry_rowspan_structure_to_next_row(*current.tree, current.rows, headers);
        current.tree->extract(first);
        current.rows.erase(current.rows.begin() + std::ptrdiff_t(headers));
    }
}

}  // namespace detail

inline void merge_table_into(TableState& previous, TableState& current, const std::vector<int>& cell_merge) {
    if (current.tree != previous.tree) {  // one tree from here on: cells and rows move between the tables
        const int offset = previous.tree->adopt(std::move(*current.tree));
        for (int& r : current.rows) r += offset;
        if (current.tbody >= 0) current.tbody += offset;
        current.tree = previous.tree;
    }
    const std::size_t headers = expand_header_count_by_rowspan(current, detect_table_headers(previous, current));
    if (headers < current.rows.size()) {
        const std::vector<int> merge_rows(current.rows.begin() + std::ptrdiff_t(headers), current.rows.end());
        if (detail::clip_overlapped_blank_rowspan_cells(*current.tree, merge_rows, previous.tail_occupied)) detail::refresh_metrics(current);
    }
    if (!previous.rows.empty() && headers < current.rows.size()) {
        const int last = previous.rows.back(), first = current.rows[headers];
        if (previous.total_cols > current.total_cols) {
            const std::vector<long long> reference = detail::row_colspans(*previous.tree, last);
            detail::adjust_rows_colspan(*current.tree, current.rows, headers, current.rows.size(), current.row_effective_cols, reference,
                                        previous.total_cols, detail::row_colspans(*current.tree, first));
        } else if (current.total_cols > previous.total_cols) {
            const std::vector<long long> reference = detail::row_colspans(*current.tree, first);
            detail::adjust_rows_colspan(*previous.tree, previous.rows, 0, previous.rows.size(), previous.row_effective_cols, reference,
                                        current.total_cols, detail::row_colspans(*previous.tree, last));
            detail::refresh_metrics(previous);
        }
    }
    detail::apply_cell_merge(previous, current, headers, cell_merge);
    const long long start = (long long)previous.rows.size();
    std::vector<int> appended;
    if (previous.tbody >= 0 && current.tbody >= 0)
        for (std::size_t r = headers; r < current.rows.size(); ++r) {
            previous.tree->append(previous.tbody, current.rows[r]);
            appended.push_back(current.rows[r]);
        }
    previous.rows.insert(previous.rows.end(), appended.begin(), appended.end());
    if (appended.empty()) return;
    detail::RowScan scan = detail::scan_rows(*previous.tree, appended, previous.tail_occupied, start);
    previous.row_effective_cols.insert(previous.row_effective_cols.end(), scan.row_effective_cols.begin(), scan.row_effective_cols.end());
    previous.total_cols = std::max(previous.total_cols, scan.total_cols);
    if (scan.last_nonempty) previous.last_data_row = scan.last_nonempty;
    previous.tail_occupied = std::move(scan.tail_occupied);
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
