// docvlm/pipeline/drawings.hpp — drawings (plots, diagrams, line art) on a binarised page, found
// before the segmenter cuts it into lines: a line cutter slices a plot's thin curves into "lines"
// that a recogniser then reads as invented text.
//
//   1. pieces: connected components of ink once rules are erased (8-connected) that are either
//      large — at least 4 L wide and 4 L tall, with at least a tenth of their pixels more than L
//      inside their box — or strokes: at least 2 L long, at least L/2 across the other way (a
//      straight rule segment is no stroke: a table's short rules join its borders), at most two
//      runs of ink per row and at most L/2 pixels of ink per pixel of length (a curve, not a
//      word). No glyph is large (a tall bracket or integral is narrow, a fraction bar flat, a
//      frame drawn around text has all its ink on its edges), and glyphs that are strokes
//      (brackets, long arrows) stand alone;
//   2. groups: pieces that the page's ink joins, rules included (a plot's curves are cut where
//      they cross its grid, which the rule eraser took away), are one group, and groups that
//      come within L of each other join (a faint curve the threshold broke). A group is a drawing
//      when its pieces' box is at least 4 L wide and 4 L tall, or 8 L one way and 2 L the other
//      (a long slanted arrow), with at least a tenth of their pixels more than L inside it;
//   3. grown: a drawing's box takes in every erased rule that crosses it (the grid and frame of a
//      plot), and drawings whose boxes overlap become one, until nothing changes.
// Units: pixels of the page; L is the page's median line height.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/pipeline/ink.hpp>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {
namespace detail {

/// Boxes of the drawings on `m` (steps 1–3 above); `page` is the ink before the rules were erased
/// from it (the same size), `rules` those rules.
std::vector<Box> find_drawings(const InkMap& page, const InkMap& m, int L, const std::vector<Box>& rules);

/// Sets every pixel of each box to ink: a drawing becomes one solid block that strips, gutters
/// and lines treat as a whole.
void fill_boxes(InkMap& m, const std::vector<Box>& boxes);


// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

/// Disjoint sets of 0..n-1; a set's root is its smallest member.
struct UnionFind {
    std::vector<int> parent;
    explicit UnionFind(std::size_t n = 0) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
    int root(int i) {
        while (parent[std::size_t(i)] != i) i = parent[std::size_t(i)] = parent[std::size_t(parent[std::size_t(i)])];
        return i;
    }
    void join(int a, int b) {
        a = root(a), b = root(b);
        if (a != b) parent[std::size_t(std::max(a, b))] = std::min(a, b);
    }
};

/// Every run of ink, row by row, and the sets of runs that touch (UnionFind over run ids).
struct Components : UnionFind {
    struct Run {
        int x0, x1, y, id;
    };
    std::vector<Run> runs;
};

/// Runs of ink joined into 8-connected components.
inline Components connected_runs(const InkMap& m) {
    Components c;
    std::size_t prev_begin = 0, prev_end = 0;  // runs of the row above in c.runs
    for (int y = 0; y < m.h; ++y) {
        const std::size_t begin = c.runs.size();
        for_each_run(m.ink.data() + std::size_t(y) * std::size_t(m.w), m.w, [](std::uint8_t v) { return v != 0; },
                     [&](int x, int e) {
                         const int id = int(c.runs.size());
                         c.runs.push_back({x, e, y, id});
                         c.parent.push_back(id);
                         // runs above, sorted by x: skip those that end left of this one
                         while (prev_begin < prev_end && c.runs[prev_begin].x1 < x) ++prev_begin;
                         for (std::size_t k = prev_begin; k < prev_end && c.runs[k].x0 <= e; ++k)
                             c.join(id, c.runs[k].id);  // touching, diagonals included
                     });
        prev_begin = begin, prev_end = c.runs.size();
    }
    return c;
}

inline bool overlaps(const Box& a, const Box& b) { return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1; }

inline Box united(const Box& a, const Box& b) {
    return {std::min(a.x0, b.x0), std::min(a.y0, b.y0), std::max(a.x1, b.x1), std::max(a.y1, b.y1)};
}

/// Box, pixel count and root id of each component of `c` (indexed by root run id).
struct ComponentBoxes {
    std::vector<Box> box;
    std::vector<long> pixels, runs;
};

inline ComponentBoxes component_boxes(Components& c, int w, int h) {
    const std::size_t n = c.runs.size();
    ComponentBoxes out{std::vector<Box>(n, Box{w, h, 0, 0}), std::vector<long>(n, 0), std::vector<long>(n, 0)};
    for (auto& r : c.runs) {
        const auto k = std::size_t(c.root(r.id));
        out.box[k] = united(out.box[k], {r.x0, r.y, r.x1, r.y + 1});
        out.pixels[k] += r.x1 - r.x0;
        ++out.runs[k];
    }
    return out;
}

/// Pixels of run r more than L inside box b.
inline long inner_pixels(const Components::Run& r, const Box& b, int L) {
    if (r.y < b.y0 + L || r.y >= b.y1 - L) return 0;
    return std::max(0, std::min(r.x1, b.x1 - L) - std::max(r.x0, b.x0 + L));
}

/// The component of `page` that holds each pixel of run r: the id of any run of `page` that
/// contains the run's first pixel (runs of `m` lie inside runs of `page`).
inline int page_root(Components& page, const std::vector<std::size_t>& row_begin, const Components::Run& r) {
    const auto first = page.runs.begin() + std::ptrdiff_t(row_begin[std::size_t(r.y)]);
    const auto last = page.runs.begin() + std::ptrdiff_t(row_begin[std::size_t(r.y) + 1]);
    const auto it = std::upper_bound(first, last, r.x0, [](int x, const Components::Run& p) { return x < p.x0; });
    return it == first ? -1 : page.root(std::prev(it)->id);
}

/// Ids (root runs of `c`) of the components that are drawing pieces: large or strokes (step 1).
inline std::vector<std::size_t> drawing_pieces(Components& c, const ComponentBoxes& parts, int L) {
    std::vector<long> inner(c.runs.size(), 0);
    for (auto& r : c.runs) {
        const auto k = std::size_t(c.root(r.id));
        inner[k] += inner_pixels(r, parts.box[k], L);
    }
    std::vector<std::size_t> out;
    for (std::size_t k = 0; k < c.runs.size(); ++k) {
        if (c.parent[k] != int(k)) continue;
        const Box& b = parts.box[k];
        const int len = std::max(b.width(), b.height());
        const bool large = b.width() >= 4 * L && b.height() >= 4 * L && inner[k] * 10 >= parts.pixels[k];
        const bool stroke = len >= 2 * L && 2 * std::min(b.width(), b.height()) >= L && parts.runs[k] <= 2L * b.height() &&
                            parts.pixels[k] * 2 <= long(len) * L;
        if (large || stroke) out.push_back(k);
    }
    return out;
}

/// Less than `d` of white between two boxes, across and down.
inline bool near(const Box& a, const Box& b, int d) {
    return std::max({a.x0 - b.x1, b.x0 - a.x1, 0}) < d && std::max({a.y0 - b.y1, b.y0 - a.y1, 0}) < d;
}

/// Group of each piece (an index into `pieces`; step 2): pieces in one component of `page`, or
/// whose groups' boxes come within L of each other (a faint curve that the threshold broke).
inline std::vector<std::size_t> group_pieces(const InkMap& page, Components& c, const ComponentBoxes& parts,
                                             const std::vector<std::size_t>& pieces, int L) {
    Components g = connected_runs(page);
    std::vector<std::size_t> row_begin(std::size_t(page.h) + 1, g.runs.size());
    for (std::size_t i = g.runs.size(); i-- > 0;) row_begin[std::size_t(g.runs[i].y)] = i;
    for (int y = page.h - 1; y >= 0; --y) row_begin[std::size_t(y)] = std::min(row_begin[std::size_t(y)], row_begin[std::size_t(y) + 1]);
    UnionFind u(pieces.size());
    std::vector<int> first_of(g.runs.size(), -1);  // the first piece seen in each page component
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        const int root = page_root(g, row_begin, c.runs[pieces[i]]);
        if (root < 0) continue;
        int& f = first_of[std::size_t(root)];
        if (f < 0)
            f = int(i);
        else
            u.join(int(i), f);
    }
    std::vector<Box> box(pieces.size(), Box{page.w, page.h, 0, 0});
    for (std::size_t i = 0; i < pieces.size(); ++i) box[std::size_t(u.root(int(i)))] = united(box[std::size_t(u.root(int(i)))], parts.box[pieces[i]]);
    for (bool changed = true; changed;) {
        changed = false;
        for (std::size_t i = 0; i < pieces.size(); ++i)
            for (std::size_t j = i + 1; j < pieces.size(); ++j) {
                const auto a = std::size_t(u.root(int(i))), b = std::size_t(u.root(int(j)));
                if (a == b || !near(box[a], box[b], L)) continue;
                u.join(int(a), int(b));
                const auto r = std::size_t(u.root(int(a)));
                box[r] = united(box[a], box[b]);
                changed = true;
            }
    }
    std::vector<std::size_t> out(pieces.size());
    for (std::size_t i = 0; i < pieces.size(); ++i) out[i] = std::size_t(u.root(int(i)));
    return out;
}

/// Boxes grown by the rules that cross them and joined where they overlap (step 3).
inline void grow_by_rules(std::vector<Box>& found, const std::vector<Box>& rules) {
    for (bool changed = true; changed;) {
        changed = false;
        for (auto& d : found)
            for (const Box& r : rules)
                if (overlaps(d, r) && united(d, r).width() + united(d, r).height() > d.width() + d.height())
                    d = united(d, r), changed = true;
        for (std::size_t i = 0; i < found.size(); ++i)
            for (std::size_t j = i + 1; j < found.size(); ++j)
                if (overlaps(found[i], found[j])) {
                    found[i] = united(found[i], found[j]);
                    found.erase(found.begin() + std::ptrdiff_t(j));
                    changed = true;
                    --j;
                }
    }
}

inline std::vector<Box> find_drawings(const InkMap& page, const InkMap& m, int L, const std::vector<Box>& rules) {
    Components c = connected_runs(m);
    const ComponentBoxes parts = component_boxes(c, m.w, m.h);
    const std::vector<std::size_t> pieces = drawing_pieces(c, parts, L);
    const std::vector<std::size_t> group = group_pieces(page, c, parts, pieces, L);
    // each group's box, then its pixels and those more than L inside the box
    std::vector<int> group_of(c.runs.size(), -1);  // by component root
    std::vector<Box> box(pieces.size(), Box{m.w, m.h, 0, 0});
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        group_of[pieces[i]] = int(group[i]);
        box[group[i]] = united(box[group[i]], parts.box[pieces[i]]);
    }
    std::vector<long> pixels(pieces.size(), 0), inner(pieces.size(), 0);
    for (auto& r : c.runs) {
        const int gk = group_of[std::size_t(c.root(r.id))];
        if (gk < 0) continue;
        pixels[std::size_t(gk)] += r.x1 - r.x0;
        inner[std::size_t(gk)] += inner_pixels(r, box[std::size_t(gk)], L);
    }
    std::vector<Box> found;
    for (std::size_t k = 0; k < pieces.size(); ++k) {
        const int lo = std::min(box[k].width(), box[k].height()), hi = std::max(box[k].width(), box[k].height());
        if (pixels[k] > 0 && (lo >= 4 * L || (lo >= 2 * L && hi >= 8 * L)) && inner[k] * 10 >= pixels[k]) found.push_back(box[k]);
    }
    grow_by_rules(found, rules);
    return found;
}

inline void fill_boxes(InkMap& m, const std::vector<Box>& boxes) {
    for (const Box& b : boxes)
        for (int y = std::max(0, b.y0); y < std::min(m.h, b.y1); ++y)
            std::fill(m.ink.begin() + std::ptrdiff_t(std::size_t(y) * std::size_t(m.w) + std::size_t(std::max(0, b.x0))),
                      m.ink.begin() + std::ptrdiff_t(std::size_t(y) * std::size_t(m.w) + std::size_t(std::min(m.w, b.x1))),
                      std::uint8_t(1));
}

}  // namespace detail
}  // namespace pipeline
DOCVLM_NAMESPACE_END
