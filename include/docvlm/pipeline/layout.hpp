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
//      paragraph gaps line up. A gutter is no page gutter when one side's lines mostly stand
//      more than 1.5 L apart (a listing's lines that run on past spaces) or when both sides are
//      ragged and one is mostly of several cells (a table) or both are filled across, row after
//      row (a list of symbols: the right side's lines all share rows with the left's and it has a
//      hole where the left has a line); a drawing beside text always makes columns (drawings:
//      pipeline/drawings.hpp, each one solid block before lines are cut).
//      Reading order: strips top to bottom, in a strip the left column before the right one;
//   5. blocks: each column cut again at white rows ≥ block_gap · L; lines: bands of ink rows (a
//      band ≥ 2 L tall cut where little ink crosses a row: lines a scan's blur or a superscript
//      joined: detail::split_touching_lines), thin bands (accents, fraction bars,
//      sub/superscripts) merged into their nearest neighbour; rules (thin, long, dense bands) are
//      dropped;
//   6. chunks: each line split at wide gaps (≥ cell_gap · L: table cells, layout columns), then at
//      word gaps so that no crop is wider than `max_chunk_width` after scaling to `chunk_height`;
//   7. kinds: a block whose lines have several cells lined up in columns is a table; a single-line
//      block at least 1.3 L tall is a title; ink more than 6 L tall, or a drawing, is a figure; a
//      block of at most 3 lines set off from both column edges is marked `displayed` (formula
//      candidate).
// Coordinates are pixels of the page image; the Blocks are the ones MinerU2.5's layout stage
// produces (pipeline/mineru.hpp), so both models share Document and its writers.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/pipeline/drawings.hpp>
#include <docvlm/pipeline/ink.hpp>
#include <docvlm/pipeline/page_layout.hpp>
#include <docvlm/pipeline/table_grid.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

PageLayout segment_page(const io::Image& page, const LayoutOptions& opt = {});

/// Otsu's threshold of an 8-bit gray image.
int otsu_threshold(const io::Image& gray);


// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {

/// How many of the image's bytes hold each value.
inline std::array<std::uint64_t, 256> histogram(const io::Image& g) {
    // pieces of 256 KB counted on the pool's threads, each in four interleaved counts (a run of
    // equal pixels does not wait on one counter)
    constexpr std::size_t piece = std::size_t(1) << 18;
    const std::size_t n = g.pixels.size(), pieces = (n + piece - 1) / piece;
    std::vector<std::array<std::uint64_t, 256>> partial(pieces);
    parallel_for(pieces, [&](std::size_t pb, std::size_t pe) {
        for (std::size_t q = pb; q < pe; ++q) {
            std::array<std::array<std::uint32_t, 256>, 4> counts{};
            const std::uint8_t* p = g.pixels.data() + q * piece;
            const std::size_t m = std::min(piece, n - q * piece);
            for (std::size_t i = 0; i + 4 <= m; i += 4)
                for (std::size_t k = 0; k < 4; ++k) ++counts[k][p[i + k]];
            for (std::size_t i = m - m % 4; i < m; ++i) ++counts[0][p[i]];
            for (std::size_t v = 0; v < 256; ++v) partial[q][v] = std::uint64_t(counts[0][v]) + counts[1][v] + counts[2][v] + counts[3][v];
        }
    });
    std::array<std::uint64_t, 256> h{};
    for (const auto& c : partial)
        for (std::size_t v = 0; v < 256; ++v) h[v] += c[v];
    return h;
}

}  // namespace detail

inline int otsu_threshold(const io::Image& gray) {
    const auto counts = detail::histogram(gray);
    std::array<double, 256> hist{};
    for (std::size_t v = 0; v < 256; ++v) hist[v] = double(counts[v]);
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
    detail::InkMap m{gray.width, gray.height, std::vector<std::uint8_t>(gray.pixels.size()), {}, {}};
    for (std::size_t i = 0; i < gray.pixels.size(); ++i) m.ink[i] = gray.pixels[i] < out.threshold;

    Box page_box = detail::tighten(m, {0, 0, gray.width, gray.height});
    if (page_box.empty()) return out;
    const detail::InkMap page_ink = m;  // before rules are erased
    // unit L: median height of ink bands that look like text (not rules, not tiny specks); once
    // more after erasing vertical rules (which join the rows of a ruled table into one band).
    // Slices crossed by a pixel column inked over 80 % of the ink's height (a vertical rule of a
    // table with few rows, where rules may outnumber the slices of plain text) are left out
    // unless every slice is.
    auto unit = [&](int slices) {
        std::vector<int> col(std::size_t(page_box.width()), 0);
        parallel_for(col.size(), [&](std::size_t cb, std::size_t ce) {  // column ranges on the pool's threads
            for (int y = page_box.y0; y < page_box.y1; ++y)
                for (std::size_t c = cb; c < ce; ++c) col[c] += m.at(page_box.x0 + int(c), y);
        }, 64);
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
            for (int y = std::max(0, r.y0 - 1); y < std::min(m.h, r.y1 + 1); ++y)  // put a lone rule (and its fringe) back
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
        m.hrules = hrules;
        page_box = detail::tighten(m, {0, 0, gray.width, gray.height});
        if (page_box.empty()) return out;
    }
    if (!m.vrules.empty()) page_box = detail::tighten(m, {0, 0, gray.width, gray.height});
    if (page_box.empty()) return out;
    const int L = unit(1);
    out.line_height = L;
    for (const Box& r : m.vrules) out.rules.push_back({r.x0, r.y0, r.x1, r.y1});
    for (const Box& r : hrules) out.rules.push_back({r.x0, r.y0, r.x1, r.y1});
    // drawings become solid blocks: a plot's curves are not cut into lines of 'text'
    std::vector<Box> erased = m.vrules;
    erased.insert(erased.end(), hrules.begin(), hrules.end());
    const std::vector<Box> drawings = detail::find_drawings(page_ink, m, L, erased);
    detail::fill_boxes(m, drawings);
    auto drawing = [&](const Box& b) {  // mostly inside a drawing
        return std::any_of(drawings.begin(), drawings.end(), [&](const Box& d) {
            const long w = std::min(b.x1, d.x1) - std::max(b.x0, d.x0), h = std::min(b.y1, d.y1) - std::max(b.y0, d.y0);
            return w > 0 && h > 0 && w * h * 2 >= long(b.width()) * b.height();
        });
    };
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
    std::function<void(const Box&)> add_column = [&](const Box& col) {
        for (const Box& blk : detail::split_rows(m, col, block_gap)) {
            LayoutRegion r;
            r.block.type = "text";
            r.block.x0 = blk.x0, r.block.y0 = blk.y0, r.block.x1 = blk.x1, r.block.y1 = blk.y1;
            auto close = [&] {  // the lines so far are a block; a new one starts
                if (r.lines.empty()) return;
                box_of(r), blocks.push_back({std::move(r), col});
                r = LayoutRegion{}, r.block.type = "text";
            };
            // a line's chunks (a dark fill's: its light text); lines whose rows only meet are cut
            // apart (cells_row_cut), each part again
            auto add_line = [&](auto&& self, const Box& line) -> void {
                const Box fill = detail::dark_fill(m, line, L);
                TextLine tl = fill.empty() ? TextLine{} : detail::inverse_line_chunks(m, fill, L, opt);
                if (tl.chunks.empty()) tl = detail::line_chunks(m, line, L, opt);  // no light text: as it is
                if (tl.chunks.empty()) return;
                if (const int cut = detail::cells_row_cut(tl, L); cut > 0) {
                    self(self, detail::tighten(m, {line.x0, line.y0, line.x1, cut}));
                    self(self, detail::tighten(m, {line.x0, cut, line.x1, line.y1}));
                    return;
                }
                r.lines.push_back(std::move(tl));
            };
            for (const Box& line : detail::block_lines(m, blk, L, &out.rules)) {
                // a band over 6 L tall, not mostly inside a drawing, with a white gutter half a
                // column gap wide: two columns whose lines interleave, so that no white row crosses
                // both (a list of names beside its code), where the gutter was narrower than a
                // column gap (a scan's blur makes L a pixel or two taller): each side is a column
                const auto g = line.height() > 6 * L && !drawing(line) ? detail::gutter(m, line, L, opt.column_gap / 2) : std::array<int, 2>{0, 0};
                if (g[1] > g[0]) {
                    close();
                    add_column({line.x0, line.y0, g[0], line.y1});
                    add_column({g[1], line.y0, line.x1, line.y1});
                    continue;
                }
                if (line.height() > 6 * L || drawing(line)) {  // a figure, not text
                    LayoutRegion fig;
                    fig.block.type = "image";
                    fig.block.x0 = line.x0, fig.block.y0 = line.y0, fig.block.x1 = line.x1, fig.block.y1 = line.y1;
                    close();
                    blocks.push_back({std::move(fig), col});
                    continue;
                }
                add_line(add_line, line);
            }
            close();
        }
    };
    // Page columns are mostly lines that fill their column, one after another; a table's columns
    // are ragged. A gutter stays inside its section (a table's, a code listing's) when one side's
    // lines stand apart, most of them more than 1.5 L below the one above (the other side's lines
    // fill the rows between: a listing's comments past a run of spaces), or when both sides are
    // ragged and one side's lines are mostly of several cells. A drawing beside text is a column.
    // Ragged sides filled across, row after row (a two-column list of symbols or terms): every line
    // of the right side shares its row with a line of the left side, and the right side has a hole
    // where the left side has a line (a heading, an odd entry). Columns of text or of an index fill
    // the left side first, so their right side has lines of its own.
    auto filled_across = [&](const std::vector<Box>& left, const std::vector<Box>& right) {
        auto same_row = [](const Box& a, const Box& b) {
            return 2 * (std::min(a.y1, b.y1) - std::max(a.y0, b.y0)) >= std::min(a.height(), b.height());
        };
        auto partnered = [&](const Box& line, const std::vector<Box>& other) {
            return std::any_of(other.begin(), other.end(), [&](const Box& o) { return same_row(line, o); });
        };
        if (right.size() < 3 || !std::all_of(right.begin(), right.end(), [&](const Box& r) { return partnered(r, left); })) return false;
        return std::any_of(left.begin(), left.end(), [&](const Box& l) {
            return l.y0 > right.front().y1 && l.y1 < right.back().y0 && !partnered(l, right);
        });
    };
    // A row inked in every column from L before the gutter to L past it (only a rule crosses a
    // gutter whole) with lines of both sides above and below it: a rule between a table's rows
    // (twinned rules of equal extent, booktabs' top and bottom, are erased before; this is the
    // lone one between them). Page columns (both sides at least 12 L wide and filled) stay columns.
    auto rule_across = [&](const Box& left, const Box& right, const std::array<std::vector<Box>, 2>& sides) {
        const int x0 = std::max(left.x0, left.x1 - L), x1 = std::min(right.x1, right.x0 + L);
        for (int y = std::max(left.y0, right.y0); y < std::min(left.y1, right.y1); ++y) {
            bool solid = true;
            for (int x = x0; x < x1 && solid; ++x) solid = m.at(x, y);
            auto around = [y](const std::vector<Box>& lines) {
                return std::any_of(lines.begin(), lines.end(), [y](const Box& l) { return l.y1 <= y; }) &&
                       std::any_of(lines.begin(), lines.end(), [y](const Box& l) { return l.y0 > y; });
            };
            if (solid && around(sides[0]) && around(sides[1])) return true;
        }
        return false;
    };
    auto table_gutter = [&](const Box& left, const Box& right) {
        std::array<std::vector<Box>, 2> sides{detail::block_lines(m, left, L), detail::block_lines(m, right, L)};
        for (const auto& lines : sides)
            for (const Box& line : lines)
                if (line.height() > 6 * L || drawing(line)) return false;
        // a side whose lines mostly fill it (4 in 10 at least 85 % of its width): a page column's
        auto filled = [](const std::vector<Box>& lines, const Box& side) {
            const auto full = std::count_if(lines.begin(), lines.end(), [&](const Box& l) { return l.width() * 100 >= side.width() * 85; });
            return full * 10 >= long(lines.size()) * 4;
        };
        auto page_column = [&](std::size_t k) {
            const Box& side = k == 0 ? left : right;
            return side.width() >= 12 * L && filled(sides[k], side);
        };
        if (rule_across(left, right, sides) && !(page_column(0) && page_column(1))) return true;
        for (const auto& lines : sides) {
            int apart = 0;
            for (std::size_t i = 1; i < lines.size(); ++i) apart += lines[i].y0 - lines[i - 1].y1 > 3 * L / 2;
            if (lines.size() >= 2 && apart * 2 >= int(lines.size()) - 1) return true;
        }
        int multi_side = 0;
        for (std::size_t k = 0; k < 2; ++k) {
            const Box& side = k == 0 ? left : right;
            const int n = int(sides[k].size());
            if (n < 2 || filled(sides[k], side)) return false;
            int multi = 0;
            for (const Box& line : sides[k]) multi += detail::line_chunks(m, line, L, opt).cells > 1;
            multi_side += multi * 2 >= n;
        }
        return multi_side > 0 || filled_across(sides[0], sides[1]);
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


}  // namespace pipeline
DOCVLM_NAMESPACE_END
