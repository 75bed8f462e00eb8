// docvlm/pipeline/table_grid.hpp — the text of a segmented region (lines joined, or an HTML table
// with a cell per column), and the HTML table of a crop known to hold one table, from its lines,
// rules and recognised text (grid_table_html).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/pipeline/page_layout.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

/// Joins the recognised text of a region: lines by '\n' (cells of a line by a space), or for a
/// table an HTML <table> with one row per line and a cell per column. texts[line][chunk].
std::string region_content(const LayoutRegion& region, const std::vector<std::vector<std::string>>& texts);

/// The HTML <table> of a crop known to hold one table, from its text lines (gathered from every
/// region the segmenter found in it) and their recognised text (texts[line][chunk]): lines that
/// overlap vertically form one row; columns are cut at the x ranges that at most a fifth of the
/// rows cover with ink (so a header spanning several columns does not join them), at least
/// 0.3 line heights wide, through the widest least covered part, and at every vertical rule inside
/// the table (neighbouring chunks of a line with the same cell index are one cell; in a table with
/// inner vertical rules a white cut must part text in two rows between the same rules); a chunk that
/// crosses a cut spans the columns it covers (colspan). Rows: where horizontal
/// rules separate most neighbouring lines, the lines between two rules are one row; else see the
/// comment in the implementation on wrapped cells. Empty when there are no lines.
std::string grid_table_html(const std::vector<TextLine>& lines, const std::vector<std::vector<std::string>>& texts,
                            const std::vector<Rule>& rules = {});

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline std::string region_content(const LayoutRegion& r, const std::vector<std::vector<std::string>>& texts) {
    if (texts.size() != r.lines.size()) docvlm::detail::fail("region_content: ", texts.size(), " lines of text for ", r.lines.size(), " lines");
    auto join_cells = [&](std::size_t li, auto&& cell_of) {
        std::vector<std::string> cells;
        for (std::size_t c = 0; c < r.lines[li].chunks.size(); ++c) {
            const std::size_t k = cell_of(r.lines[li].chunks[c]);
            if (cells.size() <= k) cells.resize(k + 1);
            if (texts[li].size() <= c || texts[li][c].empty()) continue;
            if (!cells[k].empty()) cells[k] += ' ';
            cells[k] += texts[li][c];
        }
        return cells;
    };
    std::string s;
    if (r.block.type == "table" && r.columns.size() >= 2) {
        s = "<table>";
        for (std::size_t li = 0; li < r.lines.size(); ++li) {
            auto cells = join_cells(li, [&](const TextChunk& ch) {
                const int cx = (ch.x0 + ch.x1) / 2;
                std::size_t k = 0;
                while (k + 1 < r.columns.size() && r.columns[k + 1] <= cx) ++k;
                return k;
            });
            cells.resize(r.columns.size());
            s += "<tr>";
            for (const auto& c : cells) s += "<td>" + html_escape(c) + "</td>";
            s += "</tr>";
        }
        return s + "</table>";
    }
    for (std::size_t li = 0; li < r.lines.size(); ++li) {
        const auto cells = join_cells(li, [](const TextChunk& ch) { return std::size_t(ch.cell); });
        std::string line;
        for (const auto& c : cells)
            if (!c.empty()) line += (line.empty() ? "" : " ") + c;
        if (line.empty()) continue;
        if (!s.empty()) s += '\n';
        s += line;
    }
    return s;
}

inline std::string grid_table_html(const std::vector<TextLine>& lines, const std::vector<std::vector<std::string>>& texts,
                                   const std::vector<Rule>& rules) {
    if (texts.size() != lines.size()) docvlm::detail::fail("grid_table_html: ", texts.size(), " lines of text for ", lines.size(), " lines");
    struct Item {
        int x0, y0, x1, y1;
        std::string text;
    };
    std::vector<Item> items;
    std::vector<int> heights;
    for (std::size_t li = 0; li < lines.size(); ++li) {
        heights.push_back(lines[li].y1 - lines[li].y0);
        const TextChunk* prev = nullptr;
        for (std::size_t c = 0; c < lines[li].chunks.size(); ++c) {
            const TextChunk& ch = lines[li].chunks[c];
            if (ch.x1 <= ch.x0) continue;
            std::string text = c < texts[li].size() ? texts[li][c] : std::string();
            // pieces of one cell (a long cell cut at a word gap to fit the recogniser) are one item:
            // the narrow gap between them is no column gap
            if (prev && prev->cell == ch.cell && ch.x0 >= prev->x1) {
                Item& it = items.back();
                it.x1 = std::max(it.x1, ch.x1), it.y0 = std::min(it.y0, ch.y0), it.y1 = std::max(it.y1, ch.y1);
                if (!text.empty()) it.text += (it.text.empty() ? "" : " ") + text;
            } else {
                items.push_back({ch.x0, ch.y0, ch.x1, ch.y1, std::move(text)});
            }
            prev = &ch;
        }
    }
    if (items.empty()) return "";
    std::nth_element(heights.begin(), heights.begin() + std::ptrdiff_t(heights.size() / 2), heights.end());
    const int L = std::max(1, heights[heights.size() / 2]);
    // rows: chunks sorted by their vertical centre join the open row while they overlap it by half
    // the smaller height
    std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.y0 + a.y1 < b.y0 + b.y1; });
    std::vector<std::vector<const Item*>> rows;
    int ry0 = 0, ry1 = 0;
    for (const Item& it : items) {
        const int overlap = std::min(ry1, it.y1) - std::max(ry0, it.y0);
        if (!rows.empty() && 2 * overlap >= std::min(ry1 - ry0, it.y1 - it.y0)) {
            rows.back().push_back(&it);
            ry0 = std::min(ry0, it.y0), ry1 = std::max(ry1, it.y1);
        } else {
            rows.push_back({&it});
            ry0 = it.y0, ry1 = it.y1;
        }
    }
    // columns: cut at runs of x that few rows cover
    int xmin = items[0].x0, xmax = items[0].x1;
    for (const Item& it : items) xmin = std::min(xmin, it.x0), xmax = std::max(xmax, it.x1);
    std::vector<int> cover(std::size_t(xmax - xmin), 0);
    for (const auto& row : rows) {
        std::vector<char> hit(cover.size(), 0);
        for (const Item* it : row)
            for (int x = it->x0; x < it->x1; ++x) hit[std::size_t(x - xmin)] = 1;
        for (std::size_t x = 0; x < cover.size(); ++x) cover[x] += hit[x];
    }
    const int few = int(rows.size()) / 5, min_gap = std::max(2, L * 3 / 10);
    std::vector<int> cuts;  // x of each cut between columns
    for (std::size_t x = 0; x < cover.size();) {
        if (cover[x] > few) {
            ++x;
            continue;
        }
        std::size_t e = x;
        while (e < cover.size() && cover[e] <= few) ++e;
        if (x > 0 && e < cover.size() && int(e - x) >= min_gap) {
            // the cut goes through the middle of the widest least covered part of the run
            const int low = *std::min_element(cover.begin() + std::ptrdiff_t(x), cover.begin() + std::ptrdiff_t(e));
            std::size_t a = x, b = x;
            for (std::size_t i = x; i < e;) {
                if (cover[i] != low) {
                    ++i;
                    continue;
                }
                std::size_t j = i;
                while (j < e && cover[j] == low) ++j;
                if (j - i > b - a) a = i, b = j;
                i = j;
            }
            cuts.push_back(xmin + int(a + b) / 2);
        }
        x = e;
    }
    // vertical rules inside the table cut too (a whitespace cut next to one gives way to it)
    {
        int ty0 = items[0].y0, ty1 = items[0].y1;
        for (const Item& it : items) ty0 = std::min(ty0, it.y0), ty1 = std::max(ty1, it.y1);
        std::vector<int> forced;
        for (const Rule& r : rules) {
            const int x = (r.x0 + r.x1) / 2;
            if (r.vertical() && x > xmin && x < xmax && std::min(r.y1, ty1) - std::max(r.y0, ty0) >= L) forced.push_back(x);
        }
        std::sort(forced.begin(), forced.end());
        // Between two inner rules (or a rule and the table's edge) a white cut must part text in
        // at least two rows (one when the table has one row): a ruled table's cells are bounded
        // by its rules, and one cell's inner gap ("t  /ms") is no column.
        auto parts_rows = [&](int c) {
            const auto hi_it = std::upper_bound(forced.begin(), forced.end(), c);
            const int lo = hi_it == forced.begin() ? xmin : *(hi_it - 1), hi = hi_it == forced.end() ? xmax : *hi_it;
            std::size_t n = 0;
            for (const auto& row : rows) {
                bool left = false, right = false;
                for (const Item* it : row) {
                    left = left || (it->x1 <= c && it->x0 >= lo);
                    right = right || (it->x0 >= c && it->x1 <= hi);
                }
                n += left && right;
            }
            return n >= std::min<std::size_t>(2, rows.size());
        };
        std::vector<int> all = forced;
        for (int c : cuts)
            if (std::none_of(forced.begin(), forced.end(), [&](int f) { return std::abs(f - c) < 2 * min_gap; }) &&
                (forced.empty() || parts_rows(c)))
                all.push_back(c);
        std::sort(all.begin(), all.end());
        all.erase(std::unique(all.begin(), all.end(), [&](int a, int b) { return b - a < 2; }), all.end());
        cuts = std::move(all);
    }
    const int ncols = int(cuts.size()) + 1;
    auto column_of = [&](int x) { return int(std::upper_bound(cuts.begin(), cuts.end(), x) - cuts.begin()); };
    // cells of each line-row: [first column, last column] and text; chunks whose spans meet are joined
    struct Cell {
        int c0, c1;
        std::string text;
        int rows = 1;  // rowspan
    };
    struct Row {
        int y0, y1;
        std::vector<Cell> cells;
    };
    std::vector<Row> out;
    for (const auto& row : rows) {
        Row r{row[0]->y0, row[0]->y1, {}};
        std::vector<const Item*> sorted = row;
        std::sort(sorted.begin(), sorted.end(), [](const Item* a, const Item* b) { return a->x0 < b->x0; });
        for (const Item* it : sorted) {
            r.y0 = std::min(r.y0, it->y0), r.y1 = std::max(r.y1, it->y1);
            const int c0 = column_of(it->x0), c1 = std::max(c0, column_of(it->x1 - 1));
            if (!r.cells.empty() && c0 <= r.cells.back().c1) {
                r.cells.back().c1 = std::max(r.cells.back().c1, c1);
                if (!it->text.empty()) r.cells.back().text += (r.cells.back().text.empty() ? "" : " ") + it->text;
            } else {
                r.cells.push_back({c0, c1, it->text});
            }
        }
        out.push_back(std::move(r));
    }
    // a horizontal rule between two line-rows (its middle between their middles, across part of
    // the table)
    auto ruled = [&](const Row& a, const Row& b) {
        return std::any_of(rules.begin(), rules.end(), [&](const Rule& r) {
            const int y2 = r.y0 + r.y1;
            return !r.vertical() && y2 > a.y0 + a.y1 && y2 < b.y0 + b.y1 && std::min(r.x1, xmax) - std::max(r.x0, xmin) >= L;
        });
    };
    std::size_t separated = 0;
    for (std::size_t i = 1; i < out.size(); ++i) separated += ruled(out[i - 1], out[i]);
    auto join = [](Row& prev, const Row& r) {  // r's cells into the row above (new columns as cells of their own)
        prev.y1 = std::max(prev.y1, r.y1);
        for (const Cell& c : r.cells) {
            auto it = std::find_if(prev.cells.begin(), prev.cells.end(), [&](const Cell& p) { return p.c0 <= c.c1 && c.c0 <= p.c1; });
            if (it == prev.cells.end()) {
                prev.cells.insert(std::upper_bound(prev.cells.begin(), prev.cells.end(), c, [](const Cell& a, const Cell& b) { return a.c0 < b.c0; }), c);
                continue;
            }
            it->c0 = std::min(it->c0, c.c0), it->c1 = std::max(it->c1, c.c1);
            if (!c.text.empty()) it->text += (it->text.empty() ? "" : " ") + c.text;
        }
    };
    if (out.size() >= 3 && separated * 5 >= (out.size() - 1) * 3) {
        // ruled rows (a grid, or rules under every row): the lines between two rules are one row
        std::vector<Row> merged{out[0]};
        for (std::size_t i = 1; i < out.size(); ++i) {
            if (ruled(out[i - 1], out[i])) merged.push_back(out[i]);
            else join(merged.back(), out[i]);
        }
        out = std::move(merged);
    } else if (out.size() >= 3) {
        // wrapped cells: where the white gaps between line-rows fall in two groups (the smaller
        // ones between the lines of a cell, the larger between table rows), a line-row after a
        // small gap, with nothing in the first column, whose cells all lie in columns the row
        // above has text in, continues that row
        int gmin = 1 << 30, gmax = -(1 << 30);
        for (std::size_t i = 1; i < out.size(); ++i) {
            const int g = out[i].y0 - out[i - 1].y1;
            gmin = std::min(gmin, g), gmax = std::max(gmax, g);
        }
        const int split = (gmin + gmax) / 2;
        if (gmax - gmin >= std::max(2, L / 4)) {
            std::vector<Row> merged{out[0]};
            for (std::size_t i = 1; i < out.size(); ++i) {
                Row& prev = merged.back();
                const Row& r = out[i];
                const bool small = r.y0 - out[i - 1].y1 < split;
                bool cont = small && r.cells.front().c0 > 0;
                for (const Cell& c : r.cells) {
                    bool under = false;
                    for (const Cell& p : prev.cells) under |= p.c0 <= c.c0 && c.c1 <= p.c1;
                    cont &= under;
                }
                // a cell centred on its row begins above the row's other cells: a row so far with
                // nothing in the first column, whose cells all lie over cells of this line-row,
                // is the top of this line-row's row
                bool over = small && !cont && prev.cells.front().c0 > 0 && r.cells.front().c0 == 0;
                for (const Cell& p : prev.cells) {
                    bool above = false;
                    for (const Cell& c : r.cells) above |= c.c0 <= p.c0 && p.c1 <= c.c1;
                    over &= above;
                }
                if (cont || over) join(prev, r);
                else merged.push_back(r);
            }
            out = std::move(merged);
        }
    }
    // Row groups: a line-row whose cells all lie in columns that the rows on both sides leave
    // empty, and whose neighbours are less than 1.5 row pitches apart (a sparse row of its own
    // would be a pitch from each), is a label centred beside an even number of rows (it overlaps
    // neither of the middle two). It spans the rows around it, as many above as below, as far as
    // both sides stay empty in its columns.
    if (out.size() >= 3) {
        std::vector<int> pitches;
        for (std::size_t i = 1; i < out.size(); ++i) pitches.push_back((out[i].y0 + out[i].y1 - out[i - 1].y0 - out[i - 1].y1) / 2);
        std::nth_element(pitches.begin(), pitches.begin() + std::ptrdiff_t(pitches.size() / 2), pitches.end());
        const int pitch = pitches[pitches.size() / 2];
        // columns [c0, c1] of each row that a span placed so far covers (they are not empty)
        std::vector<std::vector<std::array<int, 2>>> covered(out.size());
        auto empty_under = [&](std::size_t r, const Cell& c) {
            return std::none_of(out[r].cells.begin(), out[r].cells.end(), [&](const Cell& o) { return o.c0 <= c.c1 && c.c0 <= o.c1; }) &&
                   std::none_of(covered[r].begin(), covered[r].end(), [&](const auto& o) { return o[0] <= c.c1 && c.c0 <= o[1]; });
        };
        auto lone = [&](std::size_t i, std::size_t a, std::size_t b) {
            return std::all_of(out[i].cells.begin(), out[i].cells.end(), [&](const Cell& c) { return empty_under(a, c) && empty_under(b, c); });
        };
        std::vector<Row> grouped;
        std::vector<char> gone(out.size(), 0);
        for (std::size_t i = 1; i + 1 < out.size(); ++i) {
            const int apart = (out[i + 1].y0 + out[i + 1].y1 - out[i - 1].y0 - out[i - 1].y1) / 2;
            if (gone[i - 1] || out[i].cells.empty() || 2 * apart >= 3 * pitch || !lone(i, i - 1, i + 1)) continue;
            std::size_t k = 1;
            while (k + 1 <= i && i + k + 1 < out.size() && !gone[i - k - 1] && lone(i, i - k - 1, i + k + 1)) ++k;
            for (Cell c : out[i].cells) {
                c.rows = int(2 * k);
                for (std::size_t r = i - k; r <= i + k; ++r) covered[r].push_back({c.c0, c.c1});
                Row& top = out[i - k];
                top.cells.insert(std::upper_bound(top.cells.begin(), top.cells.end(), c, [](const Cell& a, const Cell& b) { return a.c0 < b.c0; }), c);
            }
            gone[i] = 1;
        }
        for (std::size_t i = 0; i < out.size(); ++i)
            if (!gone[i]) grouped.push_back(std::move(out[i]));
        out = std::move(grouped);
    }
    std::string s = "<table>";
    std::vector<int> busy(std::size_t(ncols), 0);  // rows still covered by a rowspan from above
    for (const Row& row : out) {
        s += "<tr>";
        int c = 0;
        auto pad_to = [&](int e) {
            for (; c < e; ++c)
                if (busy[std::size_t(c)] == 0) s += "<td></td>";
        };
        for (const Cell& cell : row.cells) {
            pad_to(cell.c0);
            s += "<td";
            if (cell.rows > 1) s += " rowspan=\"" + std::to_string(cell.rows) + "\"";
            if (cell.c1 > cell.c0) s += " colspan=\"" + std::to_string(cell.c1 - cell.c0 + 1) + "\"";
            s += ">" + html_escape(cell.text) + "</td>";
            c = cell.c1 + 1;
        }
        pad_to(ncols);
        for (int& b : busy) b = std::max(0, b - 1);
        for (const Cell& cell : row.cells)
            for (int x = cell.c0; x <= cell.c1; ++x) busy[std::size_t(x)] = std::max(busy[std::size_t(x)], cell.rows - 1);
        s += "</tr>";
    }
    return s + "</table>";
}


}  // namespace pipeline
DOCVLM_NAMESPACE_END
