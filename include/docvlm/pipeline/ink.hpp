// docvlm/pipeline/ink.hpp — the segmenter's measurements on a binarised page (InkMap): runs of
// ink, rules erased (vertical table borders; horizontal rules with a twin), row and column ink
// counts, white gaps, ink bands, white gutters, the lines of a block and the chunks of a line.
// All in pixels; L is the page's unit, the median line height.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/pipeline/page_layout.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

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
    std::vector<Box> hrules;        // horizontal rules erased from `ink` (a ruled table's, header and footer rules)
    bool at(int x, int y) const { return ink[std::size_t(y) * std::size_t(w) + std::size_t(x)] != 0; }
};

/// Calls f(x, e) for each run [x, e) of pixels of a row (w wide) for which on(pixel) holds.
template <class On, class F>
inline void for_each_run(const std::uint8_t* row, int w, On&& on, F&& f) {
    const bool zero_off = !on(std::uint8_t(0));  // then blank stretches are skipped 8 pixels at a time
    for (int x = 0; x < w;) {
        if (zero_off) {
            std::uint64_t eight;
            while (x + 8 <= w && (std::memcpy(&eight, row + x, 8), eight == 0)) x += 8;
            if (x == w) break;
        }
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
    // columns in ranges on the pool's threads, each range row by row
    parallel_for(W, [&](std::size_t xb, std::size_t xe) {
        for (int y = 0; y <= m.h; ++y)
            for (int x = int(xb); x < int(xe); ++x) {
                const bool on = y < m.h && m.at(x, y);
                int& s = start[std::size_t(x)];
                if (on && s < 0) s = y;
                if (!on && s >= 0) {
                    if (y - s >= min_len)
                        for (int k = s; k < y; ++k) cand[std::size_t(k) * W + std::size_t(x)] = 1;
                    s = -1;
                }
            }
    }, 64);
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
    // pieces of one rule that a column or two left standing cut apart (a stroke crossing it, a
    // scan's broken row) are one rule: boxes side by side in the same rows, at most 2 pixels apart
    // (sorted by top row: the boxes that can share a's rows follow it; a box joined into another
    // is left empty, its top row kept, and skipped)
    std::vector<Box> boxes = std::move(rules.boxes);
    std::sort(boxes.begin(), boxes.end(), [](const Box& a, const Box& b) { return a.y0 != b.y0 ? a.y0 < b.y0 : a.x0 < b.x0; });
    for (std::size_t i = 0; i < boxes.size(); ++i)
        for (std::size_t j = i + 1; !boxes[i].empty() && j < boxes.size() && boxes[j].y0 < boxes[i].y1;) {
            Box& a = boxes[i];
            Box& b = boxes[j];
            if (b.empty() || std::max(a.x0, b.x0) - std::min(a.x1, b.x1) > 2) {
                ++j;
                continue;
            }
            a = {std::min(a.x0, b.x0), a.y0, std::max(a.x1, b.x1), std::max(a.y1, b.y1)};
            b.x1 = b.x0;
            j = i + 1;  // a grew: the boxes passed over may touch it now
        }
    std::vector<Box> out;
    for (const Box& r : boxes) {
        if (r.empty() || r.width() < min_len) continue;
        out.push_back(r);
        // the rule's anti-aliased fringe: an ink pixel in the row right above or below it with no
        // ink further out (broken into runs too short to be candidates, it would stay behind as a
        // thin band of 'text'); a stroke that touches the rule continues outwards and stays
        for (const auto [y, out_y] : {std::array<int, 2>{r.y0 - 1, r.y0 - 2}, std::array<int, 2>{r.y1, r.y1 + 1}}) {
            if (y < 0 || y >= m.h) continue;
            std::uint8_t* ink = m.ink.data() + std::size_t(y) * W;
            const std::uint8_t* beyond = out_y >= 0 && out_y < m.h ? m.ink.data() + std::size_t(out_y) * W : nullptr;
            for (int x = r.x0; x < r.x1; ++x)
                if (ink[x] && (!beyond || !beyond[x])) ink[x] = 0;
        }
    }
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

/// A band at least 2 L tall cut at its emptiest row at least 0.6 L from either edge, when at most
/// 2 pixels of ink cross that row (two text lines that a scan's blur joined at a descender) or
/// less than 1/32 of a row of text's ink (the band's upper quartile: a long line's superscript
/// reaching into the gap below, a frame's sides around two lines) with lines at least 4 L long
/// on both sides. The rows of a matrix between its brackets (entries are sparse: the brackets'
/// ink is no small part of a row's), a fraction bar or a tall symbol stay whole. Appends the
/// pieces to `out`, top to bottom.
inline void split_touching_lines(const InkMap& m, const Box& band, int L, std::vector<Box>& out) {
    const int edge = (3 * L + 4) / 5;
    if (band.empty() || band.height() < 2 * L) {
        if (!band.empty()) out.push_back(band);
        return;
    }
    std::vector<int> rows(std::size_t(band.height()), 0);  // ink per row of the band
    for (int y = band.y0; y < band.y1; ++y)
        for (int x = band.x0; x < band.x1; ++x) rows[std::size_t(y - band.y0)] += m.at(x, y);
    std::vector<int> sorted = rows;
    const auto quartile = sorted.begin() + std::ptrdiff_t(sorted.size() * 3 / 4);
    std::nth_element(sorted.begin(), quartile, sorted.end());
    int best = -1, least = std::max(3, (*quartile + 31) / 32);  // a cut row has less ink than this
    for (int y = band.y0 + edge; y < band.y1 - edge; ++y)
        if (rows[std::size_t(y - band.y0)] < least) least = rows[std::size_t(y - band.y0)], best = y;
    const Box above = best < 0 ? Box{} : tighten(m, {band.x0, band.y0, band.x1, best});
    const Box below = best < 0 ? Box{} : tighten(m, {band.x0, best + (least > 0 ? 1 : 0), band.x1, band.y1});
    // past 2 pixels, both sides are lines at least 4 L long (not a drawing's stray stroke)
    if (best < 0 || (least > 2 && std::min(above.width(), below.width()) < 4 * L)) {
        out.push_back(band);
        return;
    }
    split_touching_lines(m, above, L, out);
    split_touching_lines(m, below, L, out);
}

/// A band at most L/4 tall and at least `min_len` long: what a blurred rule leaves (dashes,
/// remains along a line's top). No line of text is that flat, and a recogniser reads a sliver
/// scaled up eightfold as anything.
inline bool sliver(const Box& b, int L, int min_len) { return b.height() * 4 <= L && b.width() >= min_len; }

/// A band at most L/4 tall inside an erased horizontal rule's box (1 pixel around it): what a
/// slightly tilted rule leaves once its long runs are erased, pieces of its top or bottom rows
/// that are too short to be candidates. Merged into the line beside it, it joins the line's
/// cells across their gap and is read as invented text.
inline bool rule_remnant(const InkMap& m, const Box& band, int L) {
    return band.height() * 4 <= L && std::any_of(m.hrules.begin(), m.hrules.end(), [&](const Box& r) {
               return band.x0 >= r.x0 - 1 && band.x1 <= r.x1 + 1 && band.y0 >= r.y0 - 1 && band.y1 <= r.y1 + 1;
           });
}

/// Lines of a block: ink bands (joined lines cut apart: split_touching_lines) less what erased
/// rules left, thin ones merged into the nearest neighbour, rules, specks and slivers dropped.
inline std::vector<Box> block_lines(const InkMap& m, const Box& b, int L, std::vector<Rule>* rules = nullptr) {
    std::vector<Box> lines;
    for (const auto& band : bands(m, b)) split_touching_lines(m, tighten(m, {b.x0, band[0], b.x1, band[1]}), L, lines);
    std::erase_if(lines, [&](const Box& l) { return rule_remnant(m, l, L); });
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
    // merge thin bands (accents, limits, a sub- or superscript row) into the closer neighbour
    // when it is near. A band as tall as lower-case letters (at least 0.4 L), a word or more long,
    // whose middle row crosses letters' stems (ink in a fifth of it: not a dashed rule) and over
    // L/3 away is a line of its own without ascenders or descenders ("massa."), which in a face
    // with a small x-height is under L/2 tall
    auto lower_case_line = [&](const Box& l, int gap) {
        if (l.height() * 5 < 2 * L || l.width() < 2 * L || gap * 3 <= L) return false;
        const int y = (l.y0 + l.y1) / 2;
        int ink = 0;
        for (int x = l.x0; x < l.x1; ++x) ink += m.at(x, y);
        return ink * 5 >= l.width();
    };
    // A flat band (at most L/3) of solid pieces (inked columns in runs of L on average) over 4 L
    // wider than the line it would join is a bar of shades (a running head's coloured rule,
    // broken where a shade is lighter than the ink threshold), not part of the line: it goes,
    // lest the line's crop be mostly bar. A leader's dots are short runs and join their line.
    auto shade_bar = [&](const Box& band, const Box& line) {
        if (band.height() * 3 > L || band.width() <= line.width() + 4 * L) return false;
        const auto cc = col_counts(m, band);
        const long filled = std::count_if(cc.begin(), cc.end(), [](int c) { return c > 0; });
        return filled >= long(gaps(cc).size() + 1) * L;
    };
    // after a change at band i, the bands before i − 1 keep their neighbours and gaps: the scan
    // resumes at i − 1 (a page of many thin bands costs no rescans from the top)
    bool merged = true;
    std::size_t from = 0;
    while (merged && kept.size() > 1) {
        merged = false;
        for (std::size_t i = from; i < kept.size(); ++i) {
            if (kept[i].height() * 2 >= L) continue;
            const int up = i > 0 ? kept[i].y0 - kept[i - 1].y1 : 1 << 30;
            const int down = i + 1 < kept.size() ? kept[i + 1].y0 - kept[i].y1 : 1 << 30;
            const int gap = std::min(up, down);
            if (gap > L / 2 + 1) continue;
            if (lower_case_line(kept[i], gap)) continue;
            const std::size_t j = up <= down ? i - 1 : i + 1;
            Box& t = kept[j];
            if (!shade_bar(kept[i], t))
                t = {std::min(t.x0, kept[i].x0), std::min(t.y0, kept[i].y0), std::max(t.x1, kept[i].x1), std::max(t.y1, kept[i].y1)};
            kept.erase(kept.begin() + std::ptrdiff_t(i));
            from = i > 0 ? i - 1 : 0;
            merged = true;
            break;
        }
    }
    // specks left on their own (what remains of an erased rule's rounded corner, dust), and
    // slivers at least 4 L long that no line took in (a scanned rule broken into dashes)
    const int speck = std::max(2, L / 4);
    std::erase_if(kept, [&](const Box& l) { return (l.width() <= speck && l.height() <= speck) || sliver(l, L, 4 * L); });
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
    // ink thinner than a twelfth of a line is no glyph at this text size (a period is about a
    // tenth), nor is a sliver 2 L long: what is left of a rule the line touches — neither a cell
    // nor a piece to read (both were read as invented text)
    auto too_thin = [&](const Box& b) { return b.height() * 12 < L || sliver(b, L, 2 * L); };
    // a cell at most L/8 (2 px) wide with ink in fewer than half of its rows: the specks a faint
    // (grey) or dotted vertical line leaves after thresholding, read as "1", "l", "!" or ":" (a
    // stem such as "l" or "|" is inked along its height; a lone "." or "," is solid too)
    auto speck_column = [&](const Box& b) {
        if (b.width() > std::max(2, L / 8)) return false;
        const auto rc = row_counts(m, b);
        return 2 * std::count_if(rc.begin(), rc.end(), [](int c) { return c > 0; }) < b.height();
    };
    int kept = 0;
    for (std::size_t i = 0; i < cells.size(); ++i) {
        Box cell = tighten(m, cells[i]);
        if (cell.empty() || rule_residue(cell) || too_thin(cell) || speck_column(cell)) continue;
        const int c = kept++;
        // word gaps inside the cell (≥ 2 px), as page columns
        std::vector<std::array<int, 2>> wg;
        for (const auto& gp : g) {
            const int a = line.x0 + gp[0], e = line.x0 + gp[1];
            if (a > cell.x0 && e < cell.x1 && e - a >= 2) wg.push_back({a, e});
        }
        auto push = [&](const Box& t) {
            if (!t.empty() && !too_thin(t)) tl.chunks.push_back({t.x0, t.y0, t.x1, t.y1, c});
        };
        int x = cell.x0;
        while (x < cell.x1) {
            // widest piece starting at x that fits after scaling (height: the piece's ink)
            const double scale = double(opt.chunk_height) / double(std::max(1, cell.height() + 2 * opt.margin));
            const int max_w = int(double(opt.max_chunk_width) / scale) - 2 * opt.margin;
            if (cell.x1 - x <= max_w) {
                push(tighten(m, {x, cell.y0, cell.x1, cell.y1}));
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
            push(tighten(m, {x, cell.y0, cut, cell.y1}));
            x = cut_end;
        }
    }
    tl.cells = std::max(1, kept);
    return tl;
}

/// The dark fill of a line (a box's title bar, a shaded label), whose text, if any, is light: the
/// rows from its first to its last solid row (ink in 9 columns of 10), at least 3/4 L apart (room
/// for a line of text), across the line (at least 4 L long) and at least 3/5 ink. Empty when the
/// line has none (bold or blurred text is dense but has no solid rows above and below its
/// letters).
inline Box dark_fill(const InkMap& m, const Box& line, int L) {
    if (line.width() < 4 * L || line.height() * 4 < 3 * L) return {};
    const auto rc = row_counts(m, line);
    int first = -1, last = -1;
    for (int i = 0; i < int(rc.size()); ++i)
        if (rc[std::size_t(i)] * 10 >= line.width() * 9) first = first < 0 ? i : first, last = i;
    if (first < 0 || (last + 1 - first) * 4 < 3 * L) return {};
    const Box fill{line.x0, line.y0 + first, line.x1, line.y0 + last + 1};
    long ink = 0;
    for (int i = first; i <= last; ++i) ink += rc[std::size_t(i)];
    return ink * 5 >= long(fill.width()) * fill.height() * 3 ? fill : Box{};
}

/// Chunks of a dark fill's light text (the fill from dark_fill), marked inverse: line_chunks of
/// the paper-light pixels inside the fill, a margin of max(2, L/3) off its ends and a row off its
/// top and bottom (a rounded corner's paper and an antialiased edge are light too); the columns
/// of an erased vertical rule stay dark. None when the fill holds no light text at least L/2 tall
/// (dark text on a grey fill is ink on ink here; a scan's holes in a fill are specks).
inline TextLine inverse_line_chunks(const InkMap& m, const Box& line, int L, const LayoutOptions& opt) {
    const int mx = std::max(2, L / 3), my = 1;
    std::vector<std::uint8_t> ruled(std::size_t(line.width()), 0);  // columns of a vertical rule erased across the fill
    for (const Box& r : m.vrules)
        if (r.y0 < line.y1 && r.y1 > line.y0)
            for (int x = std::max(r.x0, line.x0); x < std::min(r.x1, line.x1); ++x) ruled[std::size_t(x - line.x0)] = 1;
    InkMap light{line.width(), line.height(), std::vector<std::uint8_t>(std::size_t(line.width()) * std::size_t(line.height()), 0), {}, {}};
    for (int y = my; y < light.h - my; ++y)
        for (int x = mx; x < light.w - mx; ++x)
            light.ink[std::size_t(y) * std::size_t(light.w) + std::size_t(x)] = !m.at(line.x0 + x, line.y0 + y) && !ruled[std::size_t(x)];
    TextLine tl{line.x0, line.y0, line.x1, line.y1, {}, 1};
    const Box text = tighten(light, {0, 0, light.w, light.h});
    if (text.empty() || text.height() * 2 < L) return tl;
    const TextLine local = line_chunks(light, text, L, opt);
    for (TextChunk c : local.chunks) {
        c.x0 += line.x0, c.x1 += line.x0, c.y0 += line.y0, c.y1 += line.y0, c.inverse = true;
        tl.chunks.push_back(c);
    }
    tl.cells = local.cells;
    return tl;
}

/// A row at which a line's cells part: every cell above it ends by it, every cell below starts at
/// or after it, and each side is at least L/2 tall; -1 when there is none. Cells far apart
/// whose rows only meet (a code line and, beside it, the top of a display formula a scan's
/// blur joined to it) are two lines; cells of one line share rows.
inline int cells_row_cut(const TextLine& tl, int L) {
    std::vector<std::array<int, 2>> rows(std::size_t(tl.cells), {1 << 30, -(1 << 30)});  // [y0, y1) per cell
    for (const TextChunk& c : tl.chunks) {
        auto& r = rows[std::size_t(c.cell)];
        r = {std::min(r[0], c.y0), std::max(r[1], c.y1)};
    }
    std::erase_if(rows, [](const auto& r) { return r[0] >= r[1]; });
    std::sort(rows.begin(), rows.end());
    int top = rows.empty() ? 0 : rows[0][0], bottom = top;
    for (std::size_t k = 0; k < rows.size(); ++k) {
        if (k > 0 && bottom <= rows[k][0] && 2 * (bottom - top) >= L) {
            int end = rows[k][1];
            for (std::size_t j = k; j < rows.size(); ++j) end = std::max(end, rows[j][1]);
            if (2 * (end - rows[k][0]) >= L) return rows[k][0];
        }
        bottom = std::max(bottom, rows[k][1]);
    }
    return -1;
}

}  // namespace detail

}  // namespace pipeline
DOCVLM_NAMESPACE_END
