// docvlm/pipeline/table_structure.hpp — a table's structure from docvlm-small's table heads: the
// table task's OTSL grid with cell boxes (parse_table_tokens, and otsl_constraint keeping its
// answers well-formed), the table splitter's separator maps read as a grid (read_split_grid,
// split_aligned_rows), and the HTML of a grid filled with the text of the region's crops.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/model/gated_vlm.hpp>
#include <docvlm/pipeline/document.hpp>
#include <docvlm/pipeline/page_layout.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

/// One cell of a table as the table task writes it: its OTSL kind and, for a filled cell, its box
/// in the model's input pixels (ends exclusive): from its first column's left to its last column's
/// right extent, from its first row's top to its last row's bottom extent.
struct OtslCell {
    enum Kind { fcel, ecel, lcel, ucel, xcel } kind = ecel;
    bool has_box = false;
    double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

/// The rows of a table-task output (GatedVlmDims::Table: the column extents as coordinate pairs and
/// an end-of-row token, then per row its extent as a coordinate pair, one OTSL token per column and
/// an end-of-row token). Tokens out of place are skipped; a filled cell whose columns or rows lack
/// extents has no box.
std::vector<std::vector<OtslCell>> parse_table_tokens(std::span<const std::int32_t> ids, const GatedVlmDims::Table& t);

/// A table's grid read from the table splitter's maps (GatedVlmModel::table_split_maps) of its
/// input `img` (prepare_table), as tools/train/table_split.py's read_grid reads it: the rows
/// (columns) are the runs of pixel rows (columns) whose separator probability is at most
/// `separator` (or in a run above it that never reaches `peak`) inside the extent of the input's
/// ink, kept where they hold text ink (darker than `ink`, or halfway between the darkest pixel and
/// white where even that is lighter; a pixel row dark across more than 60 % of the ink's width is
/// a rule, not text); a cell is joined to the one
/// on its left (above) where the mean local separator probability over the gap between them, in
/// the patch rows (columns) of its row (column), is below `join`; joins grow into rectangles row
/// by row, left to right. Every cell comes out as fcel with its box (a span: its first position;
/// the others lcel, ucel, xcel). Empty when the input has no ink; throws when the maps are not the
/// input's. The defaults are table_split.py's SEPARATOR, JOIN and PEAK (chosen on validation tables).
std::vector<std::vector<OtslCell>> read_split_grid(const io::Image& img, const SplitMaps& maps, int ink = 160, double separator = 0.5,
                                                   double join = 0.1, double peak = 0.7);

/// A GenerationOptions::constrain for the table task: only well-formed answers — column extents in
/// pairs (x1 ≥ x0, each x0 at most `slack` units left of the previous column's x1), at most
/// `max_cols` of them, end-of-row after at least one; then per row y0 (at most `slack` units above
/// the previous row's y1), y1 ≥ y0, one OTSL token per column (lcel only after the first column,
/// ucel only below the first row, xcel where both hold) and end-of-row; `eos` only where a row
/// would start, after at least one row. The same rules as the training code's common.otsl_allowed.
std::function<void(std::span<const std::int32_t>, std::span<float>)> otsl_constraint(const GatedVlmDims::Table& t, std::int32_t eos,
                                                                                      std::int32_t slack = 2, std::size_t max_cols = 24);

/// The HTML of a table from its structure (parse_table_tokens) and the text of the region's crops:
/// each crop goes to the filled cell whose box holds its centre, else to the nearest one; a cell's
/// crops are joined in reading order. `scale` and (ox, oy) map page pixels to model input pixels:
/// (x − ox) · scale. Empty when the structure is not a table (ragged rows, a span with nothing to
/// extend, no filled cell).
std::string table_html(const std::vector<std::vector<OtslCell>>& rows, const LayoutRegion& region,
                       const std::vector<std::vector<std::string>>& texts, double scale, double ox, double oy);

/// A splitter grid (read_split_grid) with rows cut where the text of their cells says so. In a
/// row that no vertical span enters, a level where new text lines start in most of its non-empty
/// cells (at least two; a line: at least half the table's median line height, tops within half of
/// it), with no line across it, is a row boundary if most cells also hold text above and below it;
/// the row is cut halfway between the ink above and the level. A wrapped cell beside shorter ones
/// stays one row, and so does a cell whose middle line is level with centred single lines beside
/// it; what is cut is the table whose rows sit a line apart, which the splitter may read as one
/// row of wrapped cells. Crops go to cells as in table_html (`region`, `texts`, `scale`, `ox`, `oy`
/// as there). A grid table_html would refuse comes back as it is.
std::vector<std::vector<OtslCell>> split_aligned_rows(std::vector<std::vector<OtslCell>> rows, const LayoutRegion& region,
                                                      const std::vector<std::vector<std::string>>& texts, double scale, double ox,
                                                      double oy);


// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline std::vector<std::vector<OtslCell>> parse_table_tokens(std::span<const std::int32_t> ids, const GatedVlmDims::Table& t) {
    auto coord = [&](std::size_t i) { return i < ids.size() && ids[i] >= t.coord_token && ids[i] < t.coord_token + std::int32_t(t.coords); };
    using Extent = std::array<std::int32_t, 2>;  // coordinate units, inclusive
    std::vector<Extent> cols;
    std::size_t i = 0;
    for (; i < ids.size() && ids[i] != t.nl; ++i)
        if (coord(i) && coord(i + 1)) cols.push_back({ids[i] - t.coord_token, ids[i + 1] - t.coord_token}), ++i;
    std::vector<std::vector<OtslCell>> rows;
    std::vector<std::optional<Extent>> extents;
    std::vector<OtslCell> row;
    std::optional<Extent> y;
    for (++i; i < ids.size(); ++i) {
        const std::int32_t id = ids[i];
        OtslCell c;
        if (id == t.nl) {
            rows.push_back(std::move(row)), extents.push_back(y);
            row.clear(), y.reset();
            continue;
        }
        if (row.empty() && !y && coord(i) && coord(i + 1)) {
            y = Extent{id - t.coord_token, ids[i + 1] - t.coord_token}, ++i;
            continue;
        }
        if (id == t.fcel) c.kind = OtslCell::fcel;
        else if (id == t.ecel) c.kind = OtslCell::ecel;
        else if (id == t.lcel) c.kind = OtslCell::lcel;
        else if (id == t.ucel) c.kind = OtslCell::ucel;
        else if (id == t.xcel) c.kind = OtslCell::xcel;
        else continue;
        row.push_back(c);
    }
    if (!row.empty()) rows.push_back(std::move(row)), extents.push_back(y);
    // a filled cell spans the lcel cells right of it and the ucel cells below it
    const double u = double(t.coord_unit);
    for (std::size_t r = 0; r < rows.size(); ++r)
        for (std::size_t c = 0; c < rows[r].size(); ++c) {
            if (rows[r][c].kind != OtslCell::fcel) continue;
            std::size_t c1 = c, r1 = r;
            while (c1 + 1 < rows[r].size() && rows[r][c1 + 1].kind == OtslCell::lcel) ++c1;
            while (r1 + 1 < rows.size() && c < rows[r1 + 1].size() && rows[r1 + 1][c].kind == OtslCell::ucel) ++r1;
            if (c1 >= cols.size() || !extents[r] || !extents[r1]) continue;
            OtslCell& cell = rows[r][c];
            cell.has_box = true;
            cell.x0 = cols[c][0] * u, cell.x1 = (cols[c1][1] + 1) * u;
            cell.y0 = (*extents[r])[0] * u, cell.y1 = ((*extents[r1])[1] + 1) * u;
        }
    return rows;
}

inline std::function<void(std::span<const std::int32_t>, std::span<float>)> otsl_constraint(const GatedVlmDims::Table& t, std::int32_t eos,
                                                                                             std::int32_t slack, std::size_t max_cols) {
    return [t, eos, slack, max_cols](std::span<const std::int32_t> generated, std::span<float> logits) {
        bool header = true;
        std::size_t ncols = 0, row = 0, col = 0, coords = 0;
        std::int32_t last = 0;  // the last coordinate written
        for (const std::int32_t id : generated) {
            if (id == t.nl) {
                row += !header;
                header = false, col = 0, coords = 0;
            } else if (id >= t.coord_token && id < t.coord_token + std::int32_t(t.coords)) {
                last = id - t.coord_token;
                if (++coords % 2 == 0 && header) ++ncols;
            } else if (id == t.fcel || id == t.ecel || id == t.lcel || id == t.ucel || id == t.xcel) {
                ++col;
            }
        }
        // what may come next: coordinates from `lo` on (none when lo < 0) and the tokens in keep
        std::int32_t lo = -1, keep[5];
        std::size_t n = 0;
        auto from = [&](std::int32_t v) { lo = std::clamp(v, 0, std::int32_t(t.coords) - 1); };
        if (header) {
            if (coords % 2) {
                from(last);
            } else {
                if (ncols < max_cols) from(ncols ? last - slack : 0);
                if (ncols) keep[n++] = t.nl;
            }
        } else if (coords == 0) {
            from(row ? last - slack : 0);
            if (row) keep[n++] = eos;
        } else if (coords == 1) {
            from(last);
        } else if (col == ncols) {
            keep[n++] = t.nl;
        } else {
            keep[n++] = t.fcel, keep[n++] = t.ecel;
            if (col) keep[n++] = t.lcel;
            if (row) keep[n++] = t.ucel;
            if (col && row) keep[n++] = t.xcel;
        }
        constexpr float none = -std::numeric_limits<float>::infinity();
        for (std::size_t i = 0; i < logits.size(); ++i) {
            const std::int32_t id = std::int32_t(i);
            const bool ok = (lo >= 0 && id >= t.coord_token + lo && id < t.coord_token + std::int32_t(t.coords)) ||
                            std::find(keep, keep + n, id) != keep + n;
            if (!ok) logits[i] = none;
        }
    };
}

inline std::vector<std::vector<OtslCell>> read_split_grid(const io::Image& img, const SplitMaps& m, int ink, double separator, double join,
                                                          double peak) {
    const int P = int(m.patch), H = int(m.rows) * P, W = int(m.cols) * P;
    if (img.channels != 1 || img.width != W || img.height != H || m.local_row.size() != m.cols * std::size_t(H) ||
        m.local_col.size() != m.rows * std::size_t(W) || m.row.size() != std::size_t(H) || m.col.size() != std::size_t(W))
        docvlm::detail::fail("read_split_grid: maps of a ", W, "x", H, " input for a ", img.width, "x", img.height, " image with ", img.channels,
                     " channels");
    int darkest = 255;
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) darkest = std::min<int>(darkest, img.at(x, y));
    const double thr = std::max(double(ink), (darkest + 255.0) / 2);
    std::vector<int> row_dark(std::size_t(H), 0), col_dark(std::size_t(W), 0);
    int x_lo = W, x_hi = -1, y_lo = H, y_hi = -1;
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x)
            if (img.at(x, y) < thr) {
                ++row_dark[std::size_t(y)], ++col_dark[std::size_t(x)];
                x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x), y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
            }
    if (x_hi < 0) return {};
    using Extent = std::pair<int, int>;  // [first, end)
    auto sigmoid = [](float v) { return 1.0 / (1.0 + std::exp(-double(v))); };
    // separator positions: above `separator`, in runs that reach `peak` (hysteresis)
    auto separators = [&](const std::vector<float>& logits) {
        std::vector<char> sep(logits.size());
        for (std::size_t i = 0; i < sep.size(); ++i) sep[i] = sigmoid(logits[i]) > separator;
        for (std::size_t i = 0; i < sep.size();) {
            if (!sep[i]) {
                ++i;
                continue;
            }
            std::size_t j = i;
            double top = 0;
            for (; j < sep.size() && sep[j]; ++j) top = std::max(top, sigmoid(logits[j]));
            if (top < peak) std::fill(sep.begin() + std::ptrdiff_t(i), sep.begin() + std::ptrdiff_t(j), 0);
            i = j;
        }
        return sep;
    };
    // runs of non-separator positions inside the ink's extent that hold text (not rules)
    auto lines = [](const std::vector<char>& sep, const std::vector<int>& dark, int extent) {
        std::vector<char> text(dark.size());
        for (std::size_t i = 0; i < dark.size(); ++i) text[i] = dark[i] > 0 && dark[i] <= 0.6 * std::max(1, extent);
        std::vector<Extent> out;
        int first = -1, last = -1;
        for (int i = 0; i < int(text.size()); ++i)
            if (text[std::size_t(i)]) last = i, first = first < 0 ? i : first;
        if (first < 0) return out;
        int start = -1;
        auto keep = [&](int a, int b) {
            for (int i = a; i < b; ++i)
                if (text[std::size_t(i)]) return out.push_back({a, b});
        };
        for (int i = first; i <= last; ++i) {
            if (!sep[std::size_t(i)]) {
                if (start < 0) start = i;
            } else if (start >= 0) {
                keep(start, i), start = -1;
            }
        }
        if (start >= 0) keep(start, last + 1);
        return out;
    };
    const std::vector<Extent> rows = lines(separators(m.row), row_dark, x_hi - x_lo + 1),
                              cols = lines(separators(m.col), col_dark, y_hi - y_lo + 1);
    if (rows.empty() || cols.empty()) return {};
    // the patch rows (columns) whose centres fall in each extent, else the nearest one
    auto bands = [P](const std::vector<Extent>& ext, int n) {
        std::vector<std::vector<int>> out;
        for (auto [a, b] : ext) {
            std::vector<int> k;
            for (int i = 0; i < n; ++i)
                if (a <= i * P + P / 2.0 && i * P + P / 2.0 < b) k.push_back(i);
            if (k.empty()) k.push_back(std::min(n - 1, int(std::floor((a + b) / 2.0 / P))));
            out.push_back(std::move(k));
        }
        return out;
    };
    const auto prow = bands(rows, int(m.rows)), pcol = bands(cols, int(m.cols));
    // mean separator probability of a local map over some of its lines and a range of positions
    auto mean_prob = [&](const std::vector<float>& map, std::size_t stride, const std::vector<int>& which, int a, int b) {
        double sum = 0;
        for (int w : which)
            for (int i = a; i < b; ++i) sum += sigmoid(map[std::size_t(w) * stride + std::size_t(i)]);
        return b > a ? sum / double(which.size() * std::size_t(b - a)) : 1.0;
    };
    const std::size_t R = rows.size(), K = cols.size();
    std::vector<std::vector<char>> join_left(R, std::vector<char>(K, 0));
    std::vector<std::vector<double>> sep_up(R, std::vector<double>(K, 1.0));
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t c = 1; c < K; ++c)
            join_left[r][c] = mean_prob(m.local_col, std::size_t(W), prow[r], cols[c - 1].second, cols[c].first) < join;
    for (std::size_t r = 1; r < R; ++r)
        for (std::size_t c = 0; c < K; ++c) sep_up[r][c] = mean_prob(m.local_row, std::size_t(H), pcol[c], rows[r - 1].second, rows[r].first);
    std::vector<std::vector<int>> id(R, std::vector<int>(K, -1));
    std::vector<std::vector<OtslCell>> out(R, std::vector<OtslCell>(K));
    int next = 0;
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t c = 0; c < K; ++c) {
            if (id[r][c] >= 0) continue;
            std::size_t c1 = c, r1 = r;
            while (c1 + 1 < K && id[r][c1 + 1] < 0 && join_left[r][c1 + 1]) ++c1;
            for (;;) {
                if (r1 + 1 >= R) break;
                double sum = 0;
                bool free = true;
                for (std::size_t k = c; k <= c1; ++k) free = free && id[r1 + 1][k] < 0, sum += sep_up[r1 + 1][k];
                if (!free || sum / double(c1 - c + 1) >= join) break;
                ++r1;
            }
            for (std::size_t rr = r; rr <= r1; ++rr)
                for (std::size_t k = c; k <= c1; ++k) {
                    id[rr][k] = next;
                    out[rr][k].kind = rr == r && k == c ? OtslCell::fcel : rr == r ? OtslCell::lcel : k == c ? OtslCell::ucel : OtslCell::xcel;
                }
            OtslCell& f = out[r][c];
            f.has_box = true;
            f.x0 = cols[c].first, f.x1 = cols[c1].second, f.y0 = rows[r].first, f.y1 = rows[r1].second;
            ++next;
        }
    return out;
}

namespace detail {
// Whether table_html takes `rows`: rows of one length, spans that extend something, a filled cell
// with a box.
inline bool is_table_grid(const std::vector<std::vector<OtslCell>>& rows) {
    if (rows.empty() || rows[0].empty()) return false;
    bool filled = false;
    for (std::size_t r = 0; r < rows.size(); ++r) {
        if (rows[r].size() != rows[0].size()) return false;
        for (std::size_t c = 0; c < rows[r].size(); ++c) {
            const auto k = rows[r][c].kind;
            if ((k == OtslCell::lcel || k == OtslCell::xcel) && c == 0) return false;
            if ((k == OtslCell::ucel || k == OtslCell::xcel) && r == 0) return false;
            filled = filled || (k == OtslCell::fcel && rows[r][c].has_box);
        }
    }
    return filled;
}

// Calls f(r, c, l, k, y0, y1) for every crop k of line l of `region` with text, in reading order,
// with the filled cell (r, c) nearest its centre and its extent in model input pixels.
template <class F>
void for_each_cell_crop(const std::vector<std::vector<OtslCell>>& rows, const LayoutRegion& region,
                        const std::vector<std::vector<std::string>>& texts, double scale, double ox, double oy, F&& f) {
    for (std::size_t l = 0; l < region.lines.size() && l < texts.size(); ++l)
        for (std::size_t k = 0; k < region.lines[l].chunks.size() && k < texts[l].size(); ++k) {
            if (texts[l][k].empty()) continue;
            const TextChunk& ch = region.lines[l].chunks[k];
            const double cx = ((ch.x0 + ch.x1) * 0.5 - ox) * scale, cy = ((ch.y0 + ch.y1) * 0.5 - oy) * scale;
            double best = -1;
            std::size_t br = 0, bc = 0;
            for (std::size_t r = 0; r < rows.size(); ++r)
                for (std::size_t c = 0; c < rows[r].size(); ++c) {
                    const OtslCell& cell = rows[r][c];
                    if (cell.kind != OtslCell::fcel || !cell.has_box) continue;
                    const double dx = std::max({cell.x0 - cx, 0.0, cx - cell.x1}), dy = std::max({cell.y0 - cy, 0.0, cy - cell.y1});
                    if (const double d = dx * dx + dy * dy; best < 0 || d < best) best = d, br = r, bc = c;
                }
            if (best >= 0) f(br, bc, l, k, (ch.y0 - oy) * scale, (ch.y1 - oy) * scale);
        }
}
}  // namespace detail

inline std::vector<std::vector<OtslCell>> split_aligned_rows(std::vector<std::vector<OtslCell>> rows, const LayoutRegion& region,
                                                             const std::vector<std::vector<std::string>>& texts, double scale,
                                                             double ox, double oy) {
    if (!detail::is_table_grid(rows)) return rows;
    const std::size_t cols = rows[0].size();
    // each cell's text lines: its crops grouped where their extents overlap, top to bottom
    struct Band {
        double y0, y1;
    };
    std::vector<std::vector<std::vector<Band>>> bands(rows.size(), std::vector<std::vector<Band>>(cols));
    detail::for_each_cell_crop(rows, region, texts, scale, ox, oy, [&](std::size_t r, std::size_t c, std::size_t, std::size_t, double y0, double y1) {
        bands[r][c].push_back({y0, y1});
    });
    for (auto& row : bands)
        for (auto& cell : row) {
            std::sort(cell.begin(), cell.end(), [](const Band& a, const Band& b) { return a.y0 < b.y0; });
            std::vector<Band> merged;
            for (const Band& b : cell)
                if (!merged.empty() && b.y0 < merged.back().y1) merged.back().y1 = std::max(merged.back().y1, b.y1);
                else merged.push_back(b);
            cell = std::move(merged);
        }
    const auto spanned = [&](std::size_t r) {  // a vertical span starts, ends or passes in row r
        const auto down = [](OtslCell::Kind k) { return k == OtslCell::ucel || k == OtslCell::xcel; };
        for (std::size_t c = 0; c < cols; ++c)
            if (down(rows[r][c].kind) || (r + 1 < rows.size() && down(rows[r + 1][c].kind))) return true;
        return false;
    };
    // the text lines' height: the median over the table (leader dots and rules' remains are lower)
    std::vector<double> heights;
    for (const auto& row : bands)
        for (const auto& cell : row)
            for (const Band& b : cell) heights.push_back(b.y1 - b.y0);
    if (heights.empty()) return rows;
    std::nth_element(heights.begin(), heights.begin() + std::ptrdiff_t(heights.size() / 2), heights.end());
    const double line = heights[heights.size() / 2];
    std::vector<std::vector<OtslCell>> out;
    for (std::size_t r = 0; r < rows.size(); ++r) {
        std::vector<double> cuts;
        std::size_t filled = 0;
        std::vector<Band> all;
        struct Start {
            double y0;
            std::size_t col;
        };
        std::vector<Start> starts;
        for (std::size_t c = 0; c < cols; ++c) {
            filled += !bands[r][c].empty();
            for (const Band& b : bands[r][c]) {
                all.push_back(b);
                if (b.y1 - b.y0 >= 0.5 * line) starts.push_back({b.y0, c});  // a line of text starts here
            }
        }
        if (!spanned(r) && filled >= 2) {
            const double tolerance = 0.5 * line;
            std::sort(starts.begin(), starts.end(), [](const Start& x, const Start& y) { return x.y0 < y.y0; });
            for (std::size_t i = 0; i < starts.size();) {
                const double top = starts[i].y0;
                std::vector<bool> seen(cols, false);
                std::size_t level_cols = 0, j = i;
                for (; j < starts.size() && starts[j].y0 < top + tolerance; ++j)
                    if (!seen[starts[j].col]) seen[starts[j].col] = true, ++level_cols;
                // a level of new lines in most of the row's cells, with no line across it: a row boundary
                double above = -1e300;
                bool across = false;
                for (const Band& b : all)
                    if (b.y0 < top) above = std::max(above, b.y1), across = across || b.y1 > top;
                if (i > 0 && !across && level_cols >= 2 && 2 * level_cols > filled) cuts.push_back((above + top) * 0.5);
                i = std::max(j, i + 1);  // (j == i only where lines have no height)
            }
            // and text in most of the cells on both sides of every cut (else a cell's middle line
            // level with the single lines of the cells beside it, all centred, would be cut off)
            const auto holds_most = [&](double y0, double y1) {
                std::size_t n = 0;
                for (std::size_t c = 0; c < cols; ++c)
                    n += std::any_of(bands[r][c].begin(), bands[r][c].end(), [&](const Band& b) {
                        const double m = (b.y0 + b.y1) * 0.5;
                        return b.y1 - b.y0 >= 0.5 * line && m > y0 && m < y1;
                    });
                return n >= 2 && 2 * n > filled;
            };
            std::vector<double> kept;
            for (const double cut : cuts)
                if (holds_most(kept.empty() ? -1e300 : kept.back(), cut)) kept.push_back(cut);
            while (!kept.empty() && !holds_most(kept.back(), 1e300)) kept.pop_back();
            cuts = std::move(kept);
        }
        if (cuts.empty()) {
            out.push_back(std::move(rows[r]));
            continue;
        }
        for (std::size_t i = 0; i <= cuts.size(); ++i) {
            std::vector<OtslCell> row = rows[r];
            for (OtslCell& cell : row)
                if (cell.kind == OtslCell::fcel && cell.has_box) {
                    if (i > 0) cell.y0 = cuts[i - 1];
                    if (i < cuts.size()) cell.y1 = cuts[i];
                }
            out.push_back(std::move(row));
        }
    }
    return out;
}

inline std::string table_html(const std::vector<std::vector<OtslCell>>& rows, const LayoutRegion& region,
                              const std::vector<std::vector<std::string>>& texts, double scale, double ox, double oy) {
    if (!detail::is_table_grid(rows)) return "";
    const std::size_t cols = rows[0].size();
    // every crop to a cell, in reading order (lines top to bottom, crops left to right)
    std::vector<std::vector<std::string>> cell_text(rows.size(), std::vector<std::string>(cols));
    detail::for_each_cell_crop(rows, region, texts, scale, ox, oy, [&](std::size_t r, std::size_t c, std::size_t l, std::size_t k, double, double) {
        std::string& t = cell_text[r][c];
        t += (t.empty() ? "" : " ") + texts[l][k];
    });
    std::string otsl;
    static constexpr std::string_view tags[] = {"<fcel>", "<ecel>", "<lcel>", "<ucel>", "<xcel>"};
    for (std::size_t r = 0; r < rows.size(); ++r) {
        for (std::size_t c = 0; c < cols; ++c) {
            otsl += tags[rows[r][c].kind];
            // otsl_to_html escapes the text; a cell whose text holds an OTSL tag itself ("<nl>")
            // would be split there (text read from a table cell, so not expected in practice)
            if (rows[r][c].kind == OtslCell::fcel) otsl += cell_text[r][c];
        }
        otsl += "<nl>";
    }
    return otsl_to_html(otsl);
}


}  // namespace pipeline
DOCVLM_NAMESPACE_END
