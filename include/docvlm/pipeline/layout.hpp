// docvlm/pipeline/layout.hpp — a classical page segmenter for models without a layout stage
// (docvlm's embedded model): binarise, cut the page into regions, columns, blocks and lines by
// white space (XY-cut), and cut lines into crops a line recogniser can read.
//
//   1. ink: pixel < threshold (Otsu's threshold of the page, clamped to [96, 208], unless given);
//   2. unit L: the median height of ink bands (≈ one text line);
//   3. strips: the page cut at white rows at least `block_gap` · L tall;
//   4. columns: a strip with a white gutter (ink in at most 1/50 of its height per pixel column, so
//      a centred page number does not close it) at least `column_gap` · L wide near its middle, with
//      text of at least a quarter of the width on both sides, is split there; consecutive strips
//      whose gutters overlap are merged first, so two columns stay two columns even where their
//      paragraph gaps line up. Reading order: strips top to bottom, in a strip the left column
//      before the right one;
//   5. blocks: each column cut again at white rows ≥ block_gap · L; lines: bands of ink rows, thin
//      bands (accents, fraction bars, sub/superscripts) merged into their nearest neighbour;
//      rules (thin, long, dense bands) are dropped;
//   6. chunks: each line split at wide gaps (≥ cell_gap · L: table cells, layout columns), then at
//      word gaps so that no crop is wider than `max_chunk_width` after scaling to `chunk_height`;
//   7. kinds: a block whose lines have several cells lined up in columns is a table; a single-line
//      block at least 1.3 L tall is a title; ink more than 6 L tall is a figure; a block of at
//      most 3 lines set off from both column edges is marked `displayed` (formula candidate).
// Coordinates are pixels of the page image; the Blocks are the ones MinerU2.5's layout stage
// produces (pipeline/mineru.hpp), so both models share Document and its writers.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/pipeline/mineru.hpp>

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

struct LayoutOptions {
    int ink_threshold = 0;          ///< 0: Otsu's threshold of the page
    double block_gap = 1.0;         ///< white rows (in line heights) that separate blocks
    double column_gap = 1.2;        ///< gutter width (in line heights) that separates columns
    double cell_gap = 1.6;          ///< gap (in line heights) that separates cells within a line
    int chunk_height = 24;          ///< crops are scaled to this height by the recogniser...
    int max_chunk_width = 512;      ///< ...and must then be at most this wide
    int margin = 1;                 ///< pixels of white around each crop's ink
    /// Long thin horizontal rules (at least a sixth of the ink's width) are erased before lines
    /// are cut, as they would join the rows of a ruled table into one band. By default only rules
    /// with a twin of the same extent go (a table's; a lone rule may be a fraction bar); true
    /// erases every one (for a crop known to be a table).
    bool erase_horizontal_rules = false;
};

/// One crop to recognise: the ink box of part of a line, and the cell (0-based) it belongs to.
struct TextChunk {
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    int cell = 0;
};

struct TextLine {
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    std::vector<TextChunk> chunks;
    int cells = 1;
};

/// A block with its lines; for tables, `columns` holds the x of each column's left edge.
/// `displayed`: at most 3 lines, set off from both edges of its column (a display-formula
/// candidate; the parser decides from what the model reads).
struct LayoutRegion {
    Block block;
    std::vector<TextLine> lines;
    std::vector<int> columns;
    bool displayed = false;
};

/// A thin straight rule (table border, booktabs line, frame edge), [x0, x1) × [y0, y1) pixels.
struct Rule {
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    bool vertical() const { return y1 - y0 > x1 - x0; }
};

struct PageLayout {
    int width = 0, height = 0;
    int threshold = 0;    ///< the ink threshold used
    int line_height = 0;  ///< the unit L
    std::vector<LayoutRegion> regions;  ///< in reading order
    /// Rules found: vertical ones (erased before lines are cut), horizontal ones (dropped from
    /// blocks, or erased first with LayoutOptions::erase_horizontal_rules).
    std::vector<Rule> rules;
};

/// Segments a page image (gray or RGB).
PageLayout segment_page(const io::Image& page, const LayoutOptions& opt = {});

/// Otsu's threshold of an 8-bit gray image.
int otsu_threshold(const io::Image& gray);

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

namespace detail {

struct Box {
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    int width() const { return x1 - x0; }
    int height() const { return y1 - y0; }
    bool empty() const { return x1 <= x0 || y1 <= y0; }
};

struct InkMap {
    int w = 0, h = 0;
    std::vector<std::uint8_t> ink;  // 1 = ink
    std::vector<Box> vrules;        // vertical rules erased from `ink` (table borders)
    bool at(int x, int y) const { return ink[std::size_t(y) * std::size_t(w) + std::size_t(x)] != 0; }
};

/// Calls f(x, e) for each run [x, e) of pixels of a row (w wide) for which on(pixel) holds.
template <class On, class F>
inline void for_each_run(const std::uint8_t* row, int w, On&& on, F&& f) {
    for (int x = 0; x < w;) {
        if (!on(row[x])) {
            ++x;
            continue;
        }
        int e = x;
        while (e < w && on(row[e])) ++e;
        f(x, e);
        x = e;
    }
}

/// Boxes of runs gathered row by row, top to bottom: a run joins the box of a run it overlaps in
/// the row above, or starts a box.
struct RunBoxes {
    std::vector<Box> boxes;
    std::vector<int> prev, cur;  // the box each column belonged to in the row above / this row
    explicit RunBoxes(int w) : prev(std::size_t(w), -1), cur(std::size_t(w), -1) {}
    void add(int x, int e, int y) {
        int id = -1;
        for (int k = x; k < e && id < 0; ++k) id = prev[std::size_t(k)];
        if (id >= 0) {
            Box& r = boxes[std::size_t(id)];
            r = {std::min(r.x0, x), r.y0, std::max(r.x1, e), y + 1};
        } else {
            id = int(boxes.size());
            boxes.push_back({x, y, e, y + 1});
        }
        std::fill(cur.begin() + x, cur.begin() + e, id);
    }
    void end_row() {  // the next row's runs join this row's
        std::swap(prev, cur);
        std::fill(cur.begin(), cur.end(), -1);
    }
};

/// Erases thin vertical rules: ink runs at least min_len tall in a pixel column, where at most
/// max_w such columns stand side by side (a filled bar stays). Table borders otherwise join all
/// rows of a table into one tall band. The erased rules are kept in m.vrules.
inline void erase_vertical_rules(InkMap& m, int min_len, int max_w) {
    const std::size_t W = std::size_t(m.w);
    std::vector<std::uint8_t> cand(m.ink.size(), 0);
    std::vector<int> start(W, -1);
    for (int y = 0; y <= m.h; ++y)
        for (int x = 0; x < m.w; ++x) {
            const bool on = y < m.h && m.at(x, y);
            int& s = start[std::size_t(x)];
            if (on && s < 0) s = y;
            if (!on && s >= 0) {
                if (y - s >= min_len)
                    for (int k = s; k < y; ++k) cand[std::size_t(k) * W + std::size_t(x)] = 1;
                s = -1;
            }
        }
    // runs of candidate columns in each row; erase the thin ones, and gather rule boxes
    RunBoxes rules(m.w);
    for (int y = 0; y < m.h; ++y) {
        std::uint8_t* ink = m.ink.data() + std::size_t(y) * W;
        for_each_run(cand.data() + std::size_t(y) * W, m.w, [](std::uint8_t c) { return c != 0; }, [&](int x, int e) {
            if (e - x > max_w) return;
            std::fill(ink + x, ink + e, std::uint8_t(0));
            rules.add(x, e, y);
        });
        rules.end_row();
    }
    for (const Box& r : rules.boxes) {
        if (r.height() < min_len) continue;
        m.vrules.push_back(r);
        // the rule's anti-aliased fringe: an ink pixel right beside it with no ink further out
        // (broken into runs too short to be candidates, it would stay as a sliver of a 'cell')
        for (int y = r.y0; y < r.y1; ++y) {
            std::uint8_t* ink = m.ink.data() + std::size_t(y) * W;
            if (r.x0 >= 1 && ink[r.x0 - 1] && (r.x0 < 2 || !ink[r.x0 - 2])) ink[r.x0 - 1] = 0;
            if (r.x1 < m.w && ink[r.x1] && (r.x1 + 1 >= m.w || !ink[r.x1 + 1])) ink[r.x1] = 0;
        }
    }
}

/// The same for horizontal rules (ink runs at least min_len wide in a pixel row, at most max_h
/// such rows stacked); returns the rules erased. Row by row, like the map.
inline std::vector<Box> erase_horizontal_rules(InkMap& m, int min_len, int max_h) {
    const std::size_t W = std::size_t(m.w);
    std::vector<std::uint8_t> cand(m.ink.size(), 0), has(std::size_t(m.h) + 1, 0);  // has[y]: row y has candidates
    for (int y = 0; y < m.h; ++y) {
        std::uint8_t* c = cand.data() + std::size_t(y) * W;
        for_each_run(m.ink.data() + std::size_t(y) * W, m.w, [](std::uint8_t v) { return v != 0; }, [&](int x, int e) {
            if (e - x >= min_len) std::fill(c + x, c + e, std::uint8_t(1)), has[std::size_t(y)] = 1;
        });
    }
    // stacks of candidate rows in each column: the thin ones are erased (marked 2 in cand); rows
    // with no candidate, after a row with none, change nothing (most rows of a page)
    std::vector<int> start(W, -1);
    for (int y = 0; y <= m.h; ++y) {
        if (!has[std::size_t(y)] && (y == 0 || !has[std::size_t(y) - 1])) continue;
        for (int x = 0; x < m.w; ++x) {
            const bool on = y < m.h && cand[std::size_t(y) * W + std::size_t(x)];
            int& s = start[std::size_t(x)];
            if (on && s < 0) s = y;
            if (!on && s >= 0) {
                if (y - s <= max_h)
                    for (int k = s; k < y; ++k) {
                        cand[std::size_t(k) * W + std::size_t(x)] = 2;
                        m.ink[std::size_t(k) * W + std::size_t(x)] = 0;
                    }
                s = -1;
            }
        }
    }
    // rule boxes: runs of erased pixels in a row, joined to the rule of an overlapping run above
    RunBoxes rules(m.w);
    for (int y = 0; y < m.h; ++y) {
        // a row without candidates has nothing erased: its end_row breaks every run (once is enough)
        if (!has[std::size_t(y)] && (y == 0 || !has[std::size_t(y) - 1])) continue;
        if (has[std::size_t(y)])
            for_each_run(cand.data() + std::size_t(y) * W, m.w, [](std::uint8_t c) { return c == 2; },
                         [&](int x, int e) { rules.add(x, e, y); });
        rules.end_row();
    }
    std::vector<Box> out;
    for (const Box& r : rules.boxes)
        if (r.width() >= min_len) out.push_back(r);
    return out;
}

/// True if an erased vertical rule lies within columns [a, e) and crosses rows [y0, y1).
inline bool rule_between(const InkMap& m, int a, int e, int y0, int y1) {
    return std::any_of(m.vrules.begin(), m.vrules.end(),
                       [&](const Box& r) { return r.x0 >= a - 1 && r.x1 <= e + 1 && r.y0 < y1 && y0 < r.y1; });
}

inline std::vector<int> row_counts(const InkMap& m, const Box& b) {
    std::vector<int> c(std::size_t(b.height()), 0);
    for (int y = b.y0; y < b.y1; ++y) {
        const std::uint8_t* r = m.ink.data() + std::size_t(y) * std::size_t(m.w);
        int s = 0;
        for (int x = b.x0; x < b.x1; ++x) s += r[x];
        c[std::size_t(y - b.y0)] = s;
    }
    return c;
}

inline std::vector<int> col_counts(const InkMap& m, const Box& b) {
    std::vector<int> c(std::size_t(b.width()), 0);
    for (int y = b.y0; y < b.y1; ++y) {
        const std::uint8_t* r = m.ink.data() + std::size_t(y) * std::size_t(m.w);
        for (int x = b.x0; x < b.x1; ++x) c[std::size_t(x - b.x0)] += r[x];
    }
    return c;
}

/// Shrinks a box to its ink; empty if there is none.
inline Box tighten(const InkMap& m, const Box& b) {
    const auto rc = row_counts(m, b);
    int y0 = 0, y1 = int(rc.size());
    while (y0 < y1 && rc[std::size_t(y0)] == 0) ++y0;
    while (y1 > y0 && rc[std::size_t(y1 - 1)] == 0) --y1;
    if (y0 == y1) return {};
    const Box rows{b.x0, b.y0 + y0, b.x1, b.y0 + y1};
    const auto cc = col_counts(m, rows);
    int x0 = 0, x1 = int(cc.size());
    while (x0 < x1 && cc[std::size_t(x0)] == 0) ++x0;
    while (x1 > x0 && cc[std::size_t(x1 - 1)] == 0) --x1;
    return {b.x0 + x0, rows.y0, b.x0 + x1, rows.y1};
}

/// Runs [begin, end) of counts == 0 strictly inside the profile (margins excluded).
inline std::vector<std::array<int, 2>> gaps(const std::vector<int>& counts) {
    std::vector<std::array<int, 2>> g;
    int i = 0;
    const int n = int(counts.size());
    while (i < n && counts[std::size_t(i)] == 0) ++i;
    while (i < n) {
        if (counts[std::size_t(i)] != 0) {
            ++i;
            continue;
        }
        int j = i;
        while (j < n && counts[std::size_t(j)] == 0) ++j;
        if (j < n) g.push_back({i, j});
        i = j;
    }
    return g;
}

/// Ink bands (runs of rows with ink) of a box, as [y0, y1) page rows.
inline std::vector<std::array<int, 2>> bands(const InkMap& m, const Box& b) {
    const auto rc = row_counts(m, b);
    std::vector<std::array<int, 2>> out;
    int y = 0;
    const int n = int(rc.size());
    while (y < n) {
        if (rc[std::size_t(y)] == 0) {
            ++y;
            continue;
        }
        int e = y;
        while (e < n && rc[std::size_t(e)] != 0) ++e;
        out.push_back({b.y0 + y, b.y0 + e});
        y = e;
    }
    return out;
}

/// Splits a box at white rows at least min_gap tall; parts tightened, in order.
inline std::vector<Box> split_rows(const InkMap& m, const Box& b, int min_gap) {
    std::vector<Box> parts;
    int start = b.y0;
    const auto rc = row_counts(m, b);
    for (const auto& g : gaps(rc)) {
        if (g[1] - g[0] < min_gap) continue;
        parts.push_back({b.x0, start, b.x1, b.y0 + g[0]});
        start = b.y0 + g[1];
    }
    parts.push_back({b.x0, start, b.x1, b.y1});
    std::vector<Box> out;
    for (const Box& p : parts) {
        const Box t = tighten(m, p);
        if (!t.empty()) out.push_back(t);
    }
    return out;
}

/// The best column gutter of a box as [x0, x1) page columns, or {0, 0}.
inline std::array<int, 2> gutter(const InkMap& m, const Box& b, int L, double column_gap) {
    // A gutter may be crossed by a little ink (a centred page number, a footnote mark): columns
    // with at most 1/50 of the strip's height in ink count as white.
    auto cc = col_counts(m, b);
    const int tol = std::max(1, b.height() / 50);
    for (int& c : cc) c = c <= tol ? 0 : c;
    std::array<int, 2> best{0, 0};
    const int W = b.width();
    for (const auto& g : gaps(cc)) {
        const int gw = g[1] - g[0];
        if (gw < int(column_gap * L)) continue;
        const int mid = (g[0] + g[1]) / 2;
        if (mid < W / 4 || mid > 3 * W / 4) continue;
        if (g[0] < W / 4 || W - g[1] < W / 4) continue;
        if (gw > best[1] - best[0]) best = {b.x0 + g[0], b.x0 + g[1]};
    }
    return best;
}

inline int median(std::vector<int> v, int fallback) {
    if (v.empty()) return fallback;
    std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
    return v[v.size() / 2];
}

/// Lines of a block: ink bands, thin ones merged into the nearest neighbour, rules and specks dropped.
inline std::vector<Box> block_lines(const InkMap& m, const Box& b, int L, std::vector<Rule>* rules = nullptr) {
    std::vector<Box> lines;
    for (const auto& band : bands(m, b)) lines.push_back(tighten(m, {b.x0, band[0], b.x1, band[1]}));
    // rules: at least 4 L long, ink in nine columns of ten, and at most max(3, L/4) pixels of ink
    // per column away from the ends (which may curve: the rounded corners of a frame)
    std::vector<Box> kept;
    const int thick = std::max(3, L / 4);
    for (const Box& l : lines) {
        if (l.empty()) continue;
        if (l.height() <= 2 * L && l.width() >= 4 * L) {
            const auto cc = col_counts(m, l);
            const long filled = std::count_if(cc.begin(), cc.end(), [](int c) { return c > 0; });
            const bool thin = std::all_of(cc.begin() + L, cc.end() - L, [&](int c) { return c <= thick; });
            if (filled * 10 >= long(l.width()) * 9 && thin) {
                if (rules) rules->push_back({l.x0, l.y0, l.x1, l.y1});
                continue;
            }
        }
        kept.push_back(l);
    }
    // merge thin bands into the closer neighbour when it is near
    bool merged = true;
    while (merged && kept.size() > 1) {
        merged = false;
        for (std::size_t i = 0; i < kept.size(); ++i) {
            if (kept[i].height() * 2 >= L) continue;
            const int up = i > 0 ? kept[i].y0 - kept[i - 1].y1 : 1 << 30;
            const int down = i + 1 < kept.size() ? kept[i + 1].y0 - kept[i].y1 : 1 << 30;
            const int gap = std::min(up, down);
            if (gap > L / 2 + 1) continue;
            const std::size_t j = up <= down ? i - 1 : i + 1;
            Box& t = kept[j];
            t = {std::min(t.x0, kept[i].x0), std::min(t.y0, kept[i].y0), std::max(t.x1, kept[i].x1), std::max(t.y1, kept[i].y1)};
            kept.erase(kept.begin() + std::ptrdiff_t(i));
            merged = true;
            break;
        }
    }
    // specks left on their own (what remains of an erased rule's rounded corner, dust)
    const int speck = std::max(2, L / 4);
    std::erase_if(kept, [&](const Box& l) { return l.width() <= speck && l.height() <= speck; });
    return kept;
}

/// Chunks of one line: cells at wide gaps, then pieces that fit the recogniser's width.
inline TextLine line_chunks(const InkMap& m, const Box& line, int L, const LayoutOptions& opt) {
    TextLine tl{line.x0, line.y0, line.x1, line.y1, {}, 1};
    const auto cc = col_counts(m, line);
    const auto g = gaps(cc);
    // cells
    std::vector<Box> cells;
    int start = 0;
    for (const auto& gp : g)
        if (gp[1] - gp[0] >= int(opt.cell_gap * L) || rule_between(m, line.x0 + gp[0], line.x0 + gp[1], line.y0, line.y1)) {
            cells.push_back({line.x0 + start, line.y0, line.x0 + gp[0], line.y1});
            start = gp[1];
        }
    cells.push_back({line.x0 + start, line.y0, line.x1, line.y1});
    // what anti-aliasing leaves beside an erased vertical rule: a sliver at most L/8 (2 px) wide
    // within 2 px of it, no cell
    auto rule_residue = [&](const Box& b) {
        return b.width() <= std::max(2, L / 8) && std::any_of(m.vrules.begin(), m.vrules.end(), [&](const Box& v) {
                   return v.x0 - 2 <= b.x1 && b.x0 <= v.x1 + 2 && v.y0 <= b.y1 && b.y0 <= v.y1;
               });
    };
    int kept = 0;
    for (std::size_t i = 0; i < cells.size(); ++i) {
        Box cell = tighten(m, cells[i]);
        if (cell.empty() || rule_residue(cell)) continue;
        const int c = kept++;
        // word gaps inside the cell (≥ 2 px), as page columns
        std::vector<std::array<int, 2>> wg;
        for (const auto& gp : g) {
            const int a = line.x0 + gp[0], e = line.x0 + gp[1];
            if (a > cell.x0 && e < cell.x1 && e - a >= 2) wg.push_back({a, e});
        }
        int x = cell.x0;
        while (x < cell.x1) {
            // widest piece starting at x that fits after scaling (height: the piece's ink)
            const double scale = double(opt.chunk_height) / double(std::max(1, cell.height() + 2 * opt.margin));
            const int max_w = int(double(opt.max_chunk_width) / scale) - 2 * opt.margin;
            if (cell.x1 - x <= max_w) {
                const Box t = tighten(m, {x, cell.y0, cell.x1, cell.y1});
                if (!t.empty()) tl.chunks.push_back({t.x0, t.y0, t.x1, t.y1, c});
                break;
            }
            // cut at the widest gap in the last 40 % of the allowed range, else at the last gap
            int cut = -1, cut_end = -1, best = -1;
            for (const auto& gp : wg) {
                if (gp[0] <= x || gp[0] > x + max_w) continue;
                const int w = gp[1] - gp[0];
                const bool late = gp[0] >= x + max_w * 6 / 10;
                const int score = w * 4 + (late ? 1000 : 0);
                if (score >= best) best = score, cut = gp[0], cut_end = gp[1];
            }
            if (cut < 0) cut = cut_end = x + max_w;  // no gap: cut through
            const Box t = tighten(m, {x, cell.y0, cut, cell.y1});
            if (!t.empty()) tl.chunks.push_back({t.x0, t.y0, t.x1, t.y1, c});
            x = cut_end;
        }
    }
    tl.cells = std::max(1, kept);
    return tl;
}

}  // namespace detail

inline int otsu_threshold(const io::Image& gray) {
    std::array<double, 256> hist{};
    for (std::uint8_t p : gray.pixels) hist[p] += 1;
    const double total = double(gray.pixels.size());
    double sum = 0;
    for (int i = 0; i < 256; ++i) sum += i * hist[std::size_t(i)];
    double sum_b = 0, w_b = 0, best = -1;
    int t = 128;
    for (int i = 0; i < 256; ++i) {
        w_b += hist[std::size_t(i)];
        if (w_b == 0) continue;
        const double w_f = total - w_b;
        if (w_f == 0) break;
        sum_b += i * hist[std::size_t(i)];
        const double m_b = sum_b / w_b, m_f = (sum - sum_b) / w_f;
        const double between = w_b * w_f * (m_b - m_f) * (m_b - m_f);
        if (between > best) best = between, t = i + 1;
    }
    return t;
}

inline PageLayout segment_page(const io::Image& page, const LayoutOptions& opt) {
    using detail::Box;
    if (page.width <= 0 || page.height <= 0) docvlm::detail::fail("segment_page: empty page image");
    const io::Image gray = page.channels == 1 ? page : io::to_gray(page);
    PageLayout out;
    out.width = gray.width;
    out.height = gray.height;
    out.threshold = opt.ink_threshold > 0 ? opt.ink_threshold : std::clamp(otsu_threshold(gray), 96, 208);
    detail::InkMap m{gray.width, gray.height, std::vector<std::uint8_t>(gray.pixels.size()), {}};
    for (std::size_t i = 0; i < gray.pixels.size(); ++i) m.ink[i] = gray.pixels[i] < out.threshold;

    Box page_box = detail::tighten(m, {0, 0, gray.width, gray.height});
    if (page_box.empty()) return out;
    // unit L: median height of ink bands that look like text (not rules, not tiny specks); once
    // more after erasing vertical rules (which join the rows of a ruled table into one band).
    // Slices crossed by a pixel column inked over 80 % of the ink's height (a vertical rule of a
    // table with few rows, where rules may outnumber the slices of plain text) are left out
    // unless every slice is.
    auto unit = [&](int slices) {
        std::vector<int> col(std::size_t(page_box.width()), 0);
        for (int y = page_box.y0; y < page_box.y1; ++y)
            for (int x = page_box.x0; x < page_box.x1; ++x) col[std::size_t(x - page_box.x0)] += m.at(x, y);
        const int tall = std::max(1, page_box.height() * 4 / 5);
        std::vector<int> heights, ruled;
        for (int i = 0; i < slices; ++i) {
            const Box slice{page_box.x0 + page_box.width() * i / slices, page_box.y0,
                            page_box.x0 + page_box.width() * (i + 1) / slices, page_box.y1};
            const bool rule = std::any_of(col.begin() + (slice.x0 - page_box.x0), col.begin() + (slice.x1 - page_box.x0),
                                          [&](int c) { return c >= tall; });
            for (const auto& b : detail::bands(m, slice))
                if (b[1] - b[0] >= 4) (rule ? ruled : heights).push_back(b[1] - b[0]);
        }
        return std::max(6, detail::median(heights.empty() ? ruled : heights, 16));
    };
    // horizontal rules: found on the whole map (before vertical rules are erased, which would cut
    // them at every crossing), at least a sixth of the ink's width long and at most 5 px thick; the
    // unit is measured without them (they join the rows of a grid). On a page, only rules with a
    // twin of the same extent go (a ruled table's, or a header and a footer rule): a lone long
    // rule may be a fraction bar.
    detail::InkMap hr = m;
    std::vector<detail::Box> hrules = detail::erase_horizontal_rules(hr, std::max(16, page_box.width() / 6), 5);
    if (!opt.erase_horizontal_rules) {
        const int tol = std::max(4, page_box.width() / 100);
        std::vector<detail::Box> twins;
        for (const auto& r : hrules) {
            const bool twin = std::any_of(hrules.begin(), hrules.end(), [&](const detail::Box& o) {
                return &o != &r && std::abs(o.x0 - r.x0) <= tol && std::abs(o.x1 - r.x1) <= tol;
            });
            if (twin) {
                twins.push_back(r);
                continue;
            }
            for (int y = r.y0; y < r.y1; ++y)  // put a lone rule back
                std::copy(m.ink.begin() + std::ptrdiff_t(std::size_t(y) * std::size_t(m.w) + std::size_t(r.x0)),
                          m.ink.begin() + std::ptrdiff_t(std::size_t(y) * std::size_t(m.w) + std::size_t(r.x1)),
                          hr.ink.begin() + std::ptrdiff_t(std::size_t(y) * std::size_t(m.w) + std::size_t(r.x0)));
        }
        hrules = std::move(twins);
    }
    const bool erase = !hrules.empty();
    if (erase) std::swap(m.ink, hr.ink);
    // in vertical slices, most bands are text lines even where rules join the rows of a table
    const int L0 = unit(std::max(1, std::min(16, page_box.width() / 64)));
    if (erase) std::swap(m.ink, hr.ink);
    detail::erase_vertical_rules(m, 4 * L0, std::max(3, L0 / 5));
    if (erase) {
        for (std::size_t i = 0; i < m.ink.size(); ++i) m.ink[i] &= hr.ink[i];
        page_box = detail::tighten(m, {0, 0, gray.width, gray.height});
        if (page_box.empty()) return out;
    }
    if (!m.vrules.empty()) page_box = detail::tighten(m, {0, 0, gray.width, gray.height});
    if (page_box.empty()) return out;
    const int L = unit(1);
    out.line_height = L;
    for (const Box& r : m.vrules) out.rules.push_back({r.x0, r.y0, r.x1, r.y1});
    for (const Box& r : hrules) out.rules.push_back({r.x0, r.y0, r.x1, r.y1});
    const int block_gap = std::max(2, int(opt.block_gap * L));

    // strips, their gutters, and sections of strips that share a gutter
    const auto strips = detail::split_rows(m, page_box, block_gap);
    struct Section {
        Box box;
        std::array<int, 2> gutter;
    };
    std::vector<Section> sections;
    // a strip framed by vertical rules at both edges is one box (a ruled table, a code listing)
    auto framed = [&](const Box& s) {
        auto edge = [&](bool left) {
            return std::any_of(m.vrules.begin(), m.vrules.end(), [&](const Box& r) {
                const int ov = std::min(r.y1, s.y1) - std::max(r.y0, s.y0);
                return ov * 10 >= s.height() * 6 && (left ? r.x0 <= s.x0 + L : r.x1 >= s.x1 - L);
            });
        };
        return edge(true) && edge(false);
    };
    for (const Box& s : strips) {
        auto g = s.height() >= 2 * L && !framed(s) ? detail::gutter(m, s, L, opt.column_gap) : std::array<int, 2>{0, 0};
        if (!sections.empty()) {
            Section& last = sections.back();
            const bool both = g[1] > g[0] && last.gutter[1] > last.gutter[0];
            const int lo = std::max(g[0], last.gutter[0]), hi = std::min(g[1], last.gutter[1]);
            if (both && hi - lo >= int(opt.column_gap * L) / 2) {
                last.box = {std::min(last.box.x0, s.x0), last.box.y0, std::max(last.box.x1, s.x1), s.y1};
                last.gutter = {lo, hi};
                continue;
            }
            // a short strip (a heading, a single line) inside a column pair: its gutter test has no
            // reliable answer; keep it on its own
        }
        sections.push_back({s, g});
    }
    // columns → blocks → lines
    auto box_of = [](LayoutRegion& r) {  // the box of the lines kept
        r.block.x0 = r.lines[0].x0, r.block.y0 = r.lines[0].y0, r.block.x1 = r.lines[0].x1, r.block.y1 = r.lines[0].y1;
        for (const auto& l : r.lines) {
            r.block.x0 = std::min<double>(r.block.x0, l.x0), r.block.y0 = std::min<double>(r.block.y0, l.y0);
            r.block.x1 = std::max<double>(r.block.x1, l.x1), r.block.y1 = std::max<double>(r.block.y1, l.y1);
        }
    };
    auto multi_cell = [](const LayoutRegion& r) {
        int n = 0;
        for (const auto& l : r.lines) n += l.cells > 1;
        return n;
    };
    // lines of table rows: mostly of several cells, or a row whose cells wrap (a line of several
    // cells, then lines of one)
    auto rows_like = [&](const LayoutRegion& r) { return multi_cell(r) * 2 >= int(r.lines.size()) || r.lines[0].cells > 1; };
    // cover[x − x0] += the number of lines whose chunks cover column x, over [x0, x0 + cover.size())
    auto add_cover = [](std::vector<int>& cover, const LayoutRegion& r, int x0) {
        const int x1 = x0 + int(cover.size());
        for (const auto& l : r.lines)
            for (const auto& c : l.chunks)
                for (int x = std::max(c.x0, x0); x < std::min(c.x1, x1); ++x) ++cover[std::size_t(x - x0)];
    };
    // a vertical rule crossing the white gap between two blocks, within their x range
    auto rule_joins = [&](const LayoutRegion& a, const LayoutRegion& b) {
        const int x0 = int(std::min(a.block.x0, b.block.x0)) - L, x1 = int(std::max(a.block.x1, b.block.x1)) + L;
        return std::any_of(m.vrules.begin(), m.vrules.end(), [&](const Box& r) {
            return r.x0 >= x0 && r.x1 <= x1 && r.y0 <= int(a.block.y1) && r.y1 >= int(b.block.y0);
        });
    };
    // the left edge of the page's text
    int text_x0 = std::numeric_limits<int>::max();
    for (const Section& s : sections) text_x0 = std::min(text_x0, s.box.x0);
    // lines of two cells whose second is short and ends at the column's right edge: numbered
    // display equations, not a table — unless the lines (with those of `with`, a block they may
    // join) all start at the left edge of the page's text: display equations are centred, the
    // labels of such a table are not
    auto numbered_equations = [&](const LayoutRegion& r, const Box& col, const LayoutRegion* with = nullptr) {
        const bool equation_like = std::all_of(r.lines.begin(), r.lines.end(), [&](const TextLine& l) {
            const TextChunk& last = l.chunks.back();
            return l.cells == 2 && last.cell == 1 && last.x1 - last.x0 <= 4 * L && last.x1 >= col.x1 - L;
        });
        if (!equation_like) return false;
        int lo = std::numeric_limits<int>::max(), hi = std::numeric_limits<int>::min(), n = 0;
        for (const LayoutRegion* b : {&r, with})
            if (b)
                for (const TextLine& l : b->lines) lo = std::min(lo, l.chunks.front().x0), hi = std::max(hi, l.chunks.front().x0), ++n;
        return n < 2 || hi - lo > L / 2 || lo > text_x0 + L;
    };
    struct Raw {
        LayoutRegion r;
        Box col;         // the column the block lies in
        int pieces = 1;  // blocks joined into it
    };
    std::vector<Raw> blocks;  // text blocks and figures in reading order
    // a white column (no chunk of either block's lines) at least L/2 wide strictly inside both
    // blocks' common x range: the two blocks' cells line up
    auto common_gutter = [&](const LayoutRegion& a, const LayoutRegion& b) {
        const int x0 = int(std::max(a.block.x0, b.block.x0)), x1 = int(std::min(a.block.x1, b.block.x1));
        if (x1 - x0 < 2 * L) return false;
        std::vector<int> cover(std::size_t(x1 - x0), 0);
        add_cover(cover, a, x0), add_cover(cover, b, x0);
        const auto white = detail::gaps(cover);  // margins excluded
        return std::any_of(white.begin(), white.end(), [&](const auto& g) { return g[1] - g[0] >= std::max(2, L / 2); });
    };
    auto add_column = [&](const Box& col) {
        for (const Box& blk : detail::split_rows(m, col, block_gap)) {
            LayoutRegion r;
            r.block.type = "text";
            r.block.x0 = blk.x0, r.block.y0 = blk.y0, r.block.x1 = blk.x1, r.block.y1 = blk.y1;
            for (const Box& line : detail::block_lines(m, blk, L, &out.rules)) {
                if (line.height() > 6 * L) {  // a figure, not text
                    LayoutRegion fig;
                    fig.block.type = "image";
                    fig.block.x0 = line.x0, fig.block.y0 = line.y0, fig.block.x1 = line.x1, fig.block.y1 = line.y1;
                    if (!r.lines.empty()) box_of(r), blocks.push_back({std::move(r), col}), r = LayoutRegion{}, r.block.type = "text";
                    blocks.push_back({std::move(fig), col});
                    continue;
                }
                TextLine tl = detail::line_chunks(m, line, L, opt);
                if (tl.chunks.empty()) continue;
                r.lines.push_back(std::move(tl));
            }
            if (r.lines.empty()) continue;
            box_of(r);
            blocks.push_back({std::move(r), col});
        }
    };
    // Page columns are mostly lines that fill their column; a table's columns are ragged. A gutter
    // with ragged lines on both sides, one side's lines mostly of several cells, is a gutter of a
    // table: its section stays whole.
    auto table_gutter = [&](const Box& left, const Box& right) {
        int multi_side = 0;
        for (const Box& side : {left, right}) {
            int n = 0, full = 0, multi = 0;
            for (const Box& line : detail::block_lines(m, side, L)) {
                ++n;
                full += line.width() * 100 >= side.width() * 85;
                multi += detail::line_chunks(m, line, L, opt).cells > 1;
            }
            if (n < 2 || full * 10 >= n * 4) return false;
            multi_side += multi * 2 >= n;
        }
        return multi_side > 0;
    };
    for (const Section& s : sections) {
        if (s.gutter[1] > s.gutter[0]) {
            const Box left = detail::tighten(m, {s.box.x0, s.box.y0, s.gutter[0], s.box.y1});
            const Box right = detail::tighten(m, {s.gutter[1], s.box.y0, s.box.x1, s.box.y1});
            if (!table_gutter(left, right)) {
                add_column(left);
                add_column(right);
                continue;
            }
        }
        add_column(s.box);
    }
    // the rows of a table are often blocks of their own (white gaps of a line height or more
    // between them): a block right below the previous one, overlapping it in x, joins it when the
    // lines of both are mostly of several cells, or when a vertical rule crosses the gap between
    std::vector<Raw> merged;
    for (auto& b : blocks) {
        if (!merged.empty() && b.r.block.type != "image" && merged.back().r.block.type != "image") {
            Raw& p = merged.back();
            const LayoutRegion &a = p.r, &r = b.r;
            const double gap = r.block.y0 - a.block.y1;
            const double overlap = std::min(a.block.x1, r.block.x1) - std::max(a.block.x0, r.block.x0);
            const bool below = gap >= 0 && overlap > 0.5 * std::min(a.block.x1 - a.block.x0, r.block.x1 - r.block.x0);
            const bool tabular = rows_like(a) && rows_like(r) && !numbered_equations(a, p.col, &r) && !numbered_equations(r, b.col, &a);
            if (below && ((tabular && gap <= 2.5 * L && common_gutter(a, r)) || rule_joins(a, r))) {
                p.r.lines.insert(p.r.lines.end(), std::make_move_iterator(b.r.lines.begin()), std::make_move_iterator(b.r.lines.end()));
                box_of(p.r);
                p.col = {std::min(p.col.x0, b.col.x0), p.col.y0, std::max(p.col.x1, b.col.x1), b.col.y1};
                p.pieces += b.pieces;
                continue;
            }
        }
        merged.push_back(std::move(b));
    }
    for (auto& [r, col, pieces] : merged) {
        if (r.block.type == "image") {
            out.regions.push_back(std::move(r));
            continue;
        }
        const int multi = multi_cell(r);
        const Box bb{int(r.block.x0), int(r.block.y0), int(r.block.x1), int(r.block.y1)};
        // a vertical rule inside the block (not at its edges) along most of its height
        const bool inner_rule = std::any_of(m.vrules.begin(), m.vrules.end(), [&](const Box& v) {
            return v.x0 > bb.x0 + L && v.x1 < bb.x1 - L && (std::min(v.y1, bb.y1) - std::max(v.y0, bb.y0)) * 10 >= bb.height() * 6;
        });
        // (two lines are enough when a vertical rule parts both into cells)
        const bool ruled_pair = r.lines.size() == 2 && inner_rule && multi == 2;
        if ((r.lines.size() >= 3 || ruled_pair) && (multi * 2 >= int(r.lines.size()) || inner_rule) && !numbered_equations(r, col)) {
            // a table: column edges at gutters at least a line height wide, and at vertical rules.
            // Where the block is surely a table (rows found apart, or ruled: a vertical rule
            // inside, horizontal rules across), a gutter may be crossed by a fifth of its lines (a
            // cell spanning columns); else it is white from top to bottom.
            const int ruled_rows = int(std::count_if(hrules.begin(), hrules.end(), [&](const Box& h) {
                return h.y0 >= bb.y0 - L && h.y1 <= bb.y1 + L && (std::min(h.x1, bb.x1) - std::max(h.x0, bb.x0)) * 2 >= bb.width();
            }));
            const bool surely = pieces > 1 || inner_rule || ruled_rows >= 2;
            std::vector<int> cover(std::size_t(bb.width()), 0);
            add_cover(cover, r, bb.x0);
            const int few = surely ? int(r.lines.size()) / 5 : 0;
            for (auto& c : cover) c = c > few ? 1 : 0;
            r.columns.push_back(bb.x0);
            for (const auto& g : detail::gaps(cover))
                if (g[1] - g[0] >= L || detail::rule_between(m, bb.x0 + g[0], bb.x0 + g[1], bb.y0, bb.y1))
                    r.columns.push_back(bb.x0 + g[1]);
            if (r.columns.size() >= 2) r.block.type = "table";
            else r.columns.clear();
        } else if (r.lines.size() == 1 && r.lines[0].y1 - r.lines[0].y0 >= L * 13 / 10 && r.lines[0].y1 - r.lines[0].y0 <= 4 * L) {
            r.block.type = "title";
        }
        // set off from both column edges (an equation number may sit at the right edge)
        if (r.block.type != "table" && r.lines.size() <= 3) {
            const double cw = double(col.x1 - col.x0);
            const auto& last = r.lines[0].chunks.back();
            const bool numbered = r.lines.size() == 1 && r.lines[0].cells > 1 && last.x1 >= col.x1 - L;
            const double right = numbered ? double(r.lines[0].chunks.size() > 1 ? r.lines[0].chunks[r.lines[0].chunks.size() - 2].x1
                                                                                   : last.x0)
                                          : r.block.x1;
            r.displayed = r.block.x0 - col.x0 >= 0.08 * cw && col.x1 - right >= 0.08 * cw;
        }
        out.regions.push_back(std::move(r));
    }
    return out;
}

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
