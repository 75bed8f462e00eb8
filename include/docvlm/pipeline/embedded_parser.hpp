// docvlm/pipeline/embedded_parser.hpp — page parsing with a line-reading model such as docvlm's
// embedded model (GatedVlmModel): the classical segmenter of layout.hpp finds blocks, lines and
// crops; every crop is read by the model (text task); tables come out as HTML: their structure
// (rows, columns, spans) from the model's table splitter (separator maps) or table task where it
// has one, else from the segmenter's grid reader.
//
// Crops are recognised in parallel on the process's thread pool, in batches: crops of similar
// width go through the decoder together (Model::generate_batch: each weight matrix is read once
// per step for the batch), and the batches are dealt out to the workers (the kernels inside run
// single-threaded there), which suits a small model far better than splitting each small matrix
// product across threads.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/model/gated_vlm.hpp>
#include <docvlm/model/generation.hpp>
#include <docvlm/pipeline/layout.hpp>
#include <docvlm/pipeline/page_parser.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

struct EmbeddedParserOptions {
    LayoutOptions layout;
    std::size_t max_new_tokens = 160;  ///< per crop
    std::size_t batch = 8;             ///< crops decoded together (1: one at a time)
    /// Display formulas as LaTeX: a `displayed` block whose text reads like mathematics (see
    /// looks_like_math) is read again with the formula task, its equation number kept apart.
    bool formulas = true;
    /// Table structure from the model's table task (when it has one): each table block is read
    /// once more, as a whole, into a grid (column and row extents, OTSL cells); the text of its
    /// crops fills the cells.
    /// A model without the table task cuts the block as a grid (grid_table_region: every cell a
    /// crop) and takes its structure from its table splitter (read_split_grid, then
    /// split_aligned_rows) where it has one,
    /// else (or when the splitter finds no table) from grid_table_html: rows, columns and spanning
    /// cells from the positions of its text and rules.
    /// Off, or when the model's structure is malformed, the segmenter's rows and columns stay.
    bool tables = true;
    /// Take a table's structure from the model's table splitter where it has one; off, from
    /// grid_table_html as for a model without one (the text's positions and rules).
    bool table_splitter = true;
    /// Called as crops are read: ("content", done, total).
    std::function<void(std::string_view phase, std::size_t done, std::size_t total)> progress;
};

/// Decodes the model's byte tokens (ids < 256) as UTF-8, invalid sequences replaced by U+FFFD.
std::string bytes_to_text(std::span<const std::int32_t> ids);

/// True for text that reads like a display formula: a relation or operator sign (= < > ≤ ≥ ≠ ≈
/// ∑ ∏ ∫ √ ∞ ∂ ∇ ±) and few words of three or more letters.
bool looks_like_math(std::string_view text);

/// True when a decoded sequence ends in a loop: its last 1–32 tokens repeated at least `times`
/// times in a row, over at least 16 tokens (a model that lost its place in the image).
bool ends_in_loop(std::span<const std::int32_t> ids, std::size_t times = 4);
/// The period of such a loop, or 0.
std::size_t loop_period(std::span<const std::int32_t> ids, std::size_t times = 4);
/// The length of `ids` with a trailing loop (ends_in_loop) cut to its first turn.
std::size_t without_loop(std::span<const std::int32_t> ids);

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

/// A crop of `page` around `box` grown by `margin` pixels, white outside the page.
io::Image crop_with_margin(const io::Image& page, int x0, int y0, int x1, int y1, int margin);

/// A crop known to hold one table, cut for the grid reader (grid_table_html): the lines of every
/// region the segmenter finds in box [x0, x1) × [y0, y1) of `gray`, with cells at gaps of 0.8
/// line heights (each cell a chunk of its own) and horizontal rules erased before lines are cut;
/// `rules` receives the crop's rules. Coordinates are `gray`'s. No lines when the box is blank.
LayoutRegion grid_table_region(const io::Image& gray, const TextChunk& box, LayoutOptions layout, std::vector<Rule>& rules);

template <class M>
class EmbeddedPageParser {
public:
    explicit EmbeddedPageParser(const M& model, EmbeddedParserOptions opt = {}) : model_(&model), opt_(std::move(opt)) {
        opt_.layout.chunk_height = int(model.dims().height_of("text"));
        opt_.layout.max_chunk_width = int(model.dims().max_width());
    }

    /// Blocks, lines and their text for one page image (gray or RGB).
    Document parse(const io::Image& page) const;
    /// The text of one crop for a task the model knows ("text", "formula", "table"): a text crop
    /// with several lines, or a line too long for one pass, is segmented first; a table crop is
    /// read line by line and its structure comes from the table task (HTML), or from the
    /// segmenter when the model has no table task or its output is not a table.
    std::string recognise(const io::Image& crop, std::string_view task,
                          const std::function<void(std::string_view piece)>& on_piece = {}) const;
    /// Adds time spent decoding page images (by the caller) to the profile.
    void add_decode_image_time(double seconds) const {
        std::lock_guard lock(mutex_);
        times_.decode_image += seconds;
    }
    /// Seconds spent per phase over all calls so far.
    PhaseTimes phase_times() const {
        std::lock_guard lock(mutex_);
        return times_;
    }

private:
    // The model's input for a chunk and a bound on its output length.
    io::Image input_of(const io::Image& gray, const TextChunk& c, std::string_view task, std::size_t& max_new) const;
    // `ended`, if given, is set to false when decoding ran into its length bound or into a loop.
    std::string read_one(const io::Image& gray, const TextChunk& c, std::string_view task, typename M::Context& ctx,
                         const std::function<void(std::int32_t)>& on_token, double& vision_s, double& decode_s,
                         std::size_t& tokens, bool* ended = nullptr) const;

    // The HTML of a table region from the table splitter or the table task (structure) and the
    // text of its crops; empty when the model has neither or its output is not a table. `rules`:
    // the region's rules (grid_table_region), inside the splitter's crop with a quarter line
    // height of white around it.
    std::string read_table(const io::Image& gray, const LayoutRegion& region, const std::vector<Rule>& rules,
                           const std::vector<std::vector<std::string>>& texts, typename M::Context& ctx, double& vision_s,
                           double& decode_s, std::size_t& tokens) const;

    const M* model_;
    EmbeddedParserOptions opt_;
    mutable std::mutex mutex_;
    mutable PhaseTimes times_;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline std::string bytes_to_text(std::span<const std::int32_t> ids) {
    std::string raw;
    for (std::int32_t t : ids)
        if (t >= 0 && t < 256) raw += char(std::uint8_t(t));
    return io::utf8_replace_invalid(raw);
}

inline bool looks_like_math(std::string_view t) {
    static constexpr std::string_view signs[] = {"=", "<", ">", "\u2264", "\u2265", "\u2260", "\u2248", "\u2211", "\u220f",
                                                 "\u222b", "\u221a", "\u221e", "\u2202", "\u2207", "\u00b1"};
    bool sign = false;
    for (std::string_view s : signs) sign = sign || t.find(s) != std::string_view::npos;
    if (!sign) return false;
    int words = 0, run = 0;
    for (char c : t) {
        const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (letter) ++run;
        else words += run >= 3, run = 0;
    }
    words += run >= 3;
    return words <= 3;
}

inline std::size_t loop_period(std::span<const std::int32_t> ids, std::size_t times) {
    for (std::size_t period = 1; period <= 32; ++period) {  // byte tokens: "α 2 − " is 9 of them
        // at least `times` repeats covering at least 16 tokens ("}}}}" or "...." can be real)
        const std::size_t reps = std::max(times, (16 + period - 1) / period);
        if (ids.size() < period * reps) continue;
        const std::size_t start = ids.size() - period * reps;
        bool loop = true;
        for (std::size_t i = start + period; i < ids.size() && loop; ++i) loop = ids[i] == ids[i - period];
        if (loop) return period;
    }
    return 0;
}

inline bool ends_in_loop(std::span<const std::int32_t> ids, std::size_t times) { return loop_period(ids, times) != 0; }

inline std::size_t without_loop(std::span<const std::int32_t> ids) {
    const std::size_t period = loop_period(ids, 4);
    if (period == 0) return ids.size();
    std::size_t s = ids.size() - period;  // the loop's first turn starts at s
    while (s > 0 && ids[s - 1] == ids[s - 1 + period]) --s;
    return s + period;
}

inline io::Image crop_with_margin(const io::Image& page, int x0, int y0, int x1, int y1, int margin) {
    x0 -= margin, y0 -= margin, x1 += margin, y1 += margin;
    if (x1 <= x0 || y1 <= y0) docvlm::detail::fail("crop_with_margin: empty box");
    io::Image out(x1 - x0, y1 - y0, page.channels, 255);
    const int sx0 = std::max(0, x0), sy0 = std::max(0, y0), sx1 = std::min(page.width, x1), sy1 = std::min(page.height, y1);
    for (int y = sy0; y < sy1; ++y)
        std::copy_n(page.row(y) + std::size_t(sx0) * page.channels, std::size_t(sx1 - sx0) * page.channels,
                    out.row(y - y0) + std::size_t(sx0 - x0) * page.channels);
    return out;
}

inline LayoutRegion grid_table_region(const io::Image& gray, const TextChunk& box, LayoutOptions lo, std::vector<Rule>& rules) {
    lo.cell_gap = std::min(lo.cell_gap, 0.8), lo.erase_horizontal_rules = true;
    const int x0 = std::max(0, box.x0), y0 = std::max(0, box.y0), x1 = std::min(gray.width, box.x1), y1 = std::min(gray.height, box.y1);
    const bool whole = x0 == 0 && y0 == 0 && x1 == gray.width && y1 == gray.height;
    const PageLayout lay = segment_page(whole ? gray : crop_with_margin(gray, x0, y0, x1, y1, 0), lo);
    LayoutRegion all;
    all.block.type = "table";
    all.block.x0 = x1, all.block.y0 = y1, all.block.x1 = x0, all.block.y1 = y0;
    for (const auto& r : lay.regions) {
        if (r.block.type == "image") continue;
        for (TextLine l : r.lines) {
            l.x0 += x0, l.x1 += x0, l.y0 += y0, l.y1 += y0;
            for (auto& c : l.chunks) c.x0 += x0, c.x1 += x0, c.y0 += y0, c.y1 += y0;
            all.block.x0 = std::min<double>(all.block.x0, l.x0), all.block.y0 = std::min<double>(all.block.y0, l.y0);
            all.block.x1 = std::max<double>(all.block.x1, l.x1), all.block.y1 = std::max<double>(all.block.y1, l.y1);
            all.lines.push_back(std::move(l));
        }
    }
    rules.clear();
    for (Rule r : lay.rules) rules.push_back({r.x0 + x0, r.y0 + y0, r.x1 + x0, r.y1 + y0});
    if (all.lines.empty()) all.block.x0 = x0, all.block.y0 = y0, all.block.x1 = x1, all.block.y1 = y1;
    return all;
}

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

template <class M>
io::Image EmbeddedPageParser<M>::input_of(const io::Image& gray, const TextChunk& c, std::string_view task, std::size_t& max_new) const {
    io::Image input = model_->prepare(crop_with_margin(gray, c.x0, c.y0, c.x1, c.y1, opt_.layout.margin), task);
    // A text crop holds at most about one character per 3 pixels of its width: a bound that stops
    // a decoding loop early without cutting real text.
    max_new = task == "text" ? std::min(opt_.max_new_tokens, std::size_t(input.width) / 3 + 8) : opt_.max_new_tokens;
    return input;
}

template <class M>
std::string EmbeddedPageParser<M>::read_one(const io::Image& gray, const TextChunk& c, std::string_view task, typename M::Context& ctx,
                                            const std::function<void(std::int32_t)>& on_token, double& vision_s, double& decode_s,
                                            std::size_t& tokens, bool* ended) const {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    GenerationOptions gen;
    const auto vis = model_->encode_image(input_of(gray, c, task, gen.max_new_tokens));
    const auto t1 = clock::now();
    const auto ids = ctx.generate(vis, task, gen, on_token);
    if (ended) *ended = ids.size() < gen.max_new_tokens && !ends_in_loop(ids);
    vision_s += std::chrono::duration<double>(t1 - t0).count();
    decode_s += std::chrono::duration<double>(clock::now() - t1).count();
    tokens += ids.size();
    return bytes_to_text(ids);
}

template <class M>
std::string EmbeddedPageParser<M>::read_table(const io::Image& gray, const LayoutRegion& region, const std::vector<Rule>& rules,
                                              const std::vector<std::vector<std::string>>& texts, typename M::Context& ctx,
                                              double& vision_s, double& decode_s, std::size_t& tokens) const {
    const bool split = model_->dims().split.present && opt_.table_splitter;
    if ((!model_->dims().table.present && !split) || region.lines.empty()) return "";
    using clock = std::chrono::steady_clock;
    // the crop's scale comes from its median line height (the ink of a text line)
    std::vector<int> heights;
    for (const auto& line : region.lines) heights.push_back(line.y1 - line.y0);
    std::nth_element(heights.begin(), heights.begin() + std::ptrdiff_t(heights.size() / 2), heights.end());
    const double line_height = heights[heights.size() / 2];
    Block b = region.block;
    int m = opt_.layout.margin;
    if (split) {  // the splitter learnt tables whole, with their rules and some white around them
        for (const Rule& r : rules)
            b.x0 = std::min<double>(b.x0, r.x0), b.y0 = std::min<double>(b.y0, r.y0), b.x1 = std::max<double>(b.x1, r.x1),
            b.y1 = std::max<double>(b.y1, r.y1);
        m = std::max(m, int(std::lround(0.25 * line_height)));
    }
    const int x0 = int(b.x0) - m, y0 = int(b.y0) - m;
    double scale = 1;
    const auto t0 = clock::now();
    const io::Image input = model_->prepare_table(crop_with_margin(gray, int(b.x0), int(b.y0), int(b.x1), int(b.y1), m), line_height, scale);
    if (split) {  // the table splitter: its grid from separator maps, no decoding
        const auto rows = split_aligned_rows(read_split_grid(input, model_->table_split_maps(input), model_->dims().ink_threshold),
                                             region, texts, scale, x0, y0);
        vision_s += std::chrono::duration<double>(clock::now() - t0).count();
        return table_html(rows, region, texts, scale, x0, y0);
    }
    const auto vis = model_->encode_image(input);
    const auto t1 = clock::now();
    GenerationOptions gen;
    gen.max_new_tokens = model_->dims().max_tokens - 2;
    gen.constrain = otsl_constraint(model_->dims().table, model_->dims().eos_token_id);
    const auto ids = ctx.generate(vis, "table", gen);
    vision_s += std::chrono::duration<double>(t1 - t0).count();
    decode_s += std::chrono::duration<double>(clock::now() - t1).count();
    tokens += ids.size();
    return table_html(parse_table_tokens(ids, model_->dims().table), region, texts, scale, x0, y0);
}

template <class M>
Document EmbeddedPageParser<M>::parse(const io::Image& page) const {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    const io::Image gray = page.channels == 1 ? page : io::to_gray(page);
    PageLayout layout = segment_page(gray, opt_.layout);
    // without a table task, a table region is cut again as a table crop (every cell a crop of its
    // own, rules between rows erased) and its grid found from the positions of its text
    const bool grid_tables = opt_.tables && !model_->dims().table.present;
    std::vector<std::vector<Rule>> table_rules(layout.regions.size());
    if (grid_tables)
        for (std::size_t r = 0; r < layout.regions.size(); ++r) {
            LayoutRegion& region = layout.regions[r];
            if (region.block.type != "table") continue;
            const Block& b = region.block;
            LayoutRegion grid = grid_table_region(gray, {int(b.x0), int(b.y0), int(b.x1), int(b.y1)}, opt_.layout, table_rules[r]);
            if (!grid.lines.empty()) region.lines = std::move(grid.lines);
        }
    const auto t1 = clock::now();
    // every chunk of every line, flattened
    struct Item {
        std::size_t region, line, chunk;
    };
    std::vector<Item> items;
    std::vector<std::vector<std::vector<std::string>>> texts(layout.regions.size());
    for (std::size_t r = 0; r < layout.regions.size(); ++r) {
        texts[r].resize(layout.regions[r].lines.size());
        for (std::size_t l = 0; l < layout.regions[r].lines.size(); ++l) {
            texts[r][l].resize(layout.regions[r].lines[l].chunks.size());
            for (std::size_t c = 0; c < layout.regions[r].lines[l].chunks.size(); ++c) items.push_back({r, l, c});
        }
    }
    std::atomic<std::size_t> done{0};
    std::mutex progress_mutex;
    double vision_s = 0, decode_s = 0;
    std::size_t tokens = 0;
    std::mutex sum_mutex;
    // batches of crops of similar width (their outputs end at similar steps), dealt out in turn
    // to the workers
    std::vector<std::uint8_t> item_looped(items.size(), 0);  // the crop's reading ran into a loop (one writer each)
    auto chunk_of = [&](const Item& it) -> const TextChunk& { return layout.regions[it.region].lines[it.line].chunks[it.chunk]; };
    std::vector<std::size_t> order(items.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    auto aspect = [&](std::size_t i) {
        const TextChunk& c = chunk_of(items[i]);
        return double(c.x1 - c.x0 + 2) / double(c.y1 - c.y0 + 2);
    };
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return aspect(a) < aspect(b); });
    const std::size_t batch = std::max<std::size_t>(1, opt_.batch);
    const std::size_t batches = (items.size() + batch - 1) / batch, workers = thread_pool().size();
    parallel_for(workers, [&](std::size_t wb, std::size_t we) {
        double vs = 0, ds = 0;
        std::size_t tk = 0;
        std::vector<Tensor<float, 2>> vision;
        std::vector<std::size_t> bound;
        for (std::size_t w = wb; w < we; ++w)
            for (std::size_t k = w; k < batches; k += workers) {
                const std::size_t b = k * batch, e = std::min(items.size(), b + batch);
                const auto t0 = clock::now();
                vision.clear(), bound.clear();
                for (std::size_t i = b; i < e; ++i) {
                    bound.emplace_back();
                    vision.push_back(model_->encode_image(input_of(gray, chunk_of(items[order[i]]), "text", bound.back())));
                }
                const auto t1 = clock::now();
                const auto outs = model_->generate_batch(vision, "text", GenerationOptions{}, bound);
                for (std::size_t i = b; i < e; ++i) {
                    const Item& it = items[order[i]];
                    std::span<const std::int32_t> ids = outs[i - b];
                    if (const std::size_t keep = without_loop(ids); keep < ids.size()) {  // one turn of a loop
                        ids = ids.first(keep);
                        item_looped[order[i]] = 1;
                    }
                    texts[it.region][it.line][it.chunk] = bytes_to_text(ids);
                    tk += outs[i - b].size();
                }
                vs += std::chrono::duration<double>(t1 - t0).count();
                ds += std::chrono::duration<double>(clock::now() - t1).count();
                const std::size_t n = done += e - b;
                if (opt_.progress) {
                    std::lock_guard lock(progress_mutex);
                    opt_.progress("content", n, items.size());
                }
            }
        std::lock_guard lock(sum_mutex);
        vision_s += vs, decode_s += ds, tokens += tk;
    }, 1);
    std::vector<std::uint8_t> looped(layout.regions.size(), 0);
    for (std::size_t i = 0; i < items.size(); ++i) looped[items[i].region] |= item_looped[i];
    const auto t2 = clock::now();
    Document doc;
    auto ctx = model_->context();
    for (std::size_t r = 0; r < layout.regions.size(); ++r) {
        const LayoutRegion& region = layout.regions[r];
        Block b = region.block;
        if (b.type != "image")
            b.content = grid_tables && b.type == "table" ? grid_table_html(region.lines, texts[r], table_rules[r]) : region_content(region, texts[r]);
        if (b.type == "table" && opt_.tables)
            if (std::string html = read_table(gray, region, table_rules[r], texts[r], ctx, vision_s, decode_s, tokens); !html.empty()) b.content = std::move(html);
        // a displayed block that reads like mathematics, or whose text reading ran into a loop
        if (opt_.formulas && region.displayed && (looks_like_math(b.content) || looped[r])) {
            // the formula's ink: every chunk but a trailing equation number "(12)"
            TextChunk box{int(b.x1), int(b.y1), int(b.x0), int(b.y0)};
            std::string number;
            for (std::size_t l = 0; l < region.lines.size(); ++l)
                for (std::size_t c = 0; c < region.lines[l].chunks.size(); ++c) {
                    const auto& ch = region.lines[l].chunks[c];
                    const std::string& t = texts[r][l][c];
                    if (region.lines.size() == 1 && c + 1 == region.lines[l].chunks.size() && c > 0 && ch.cell > 0 && t.size() >= 3 &&
                        t.front() == '(' && t.back() == ')') {
                        number = t;
                        continue;
                    }
                    box = {std::min(box.x0, ch.x0), std::min(box.y0, ch.y0), std::max(box.x1, ch.x1), std::max(box.y1, ch.y1)};
                }
            const double h = model_->dims().height_of("formula");
            const double w = double(box.x1 - box.x0 + 2 * opt_.layout.margin) * h / double(box.y1 - box.y0 + 2 * opt_.layout.margin);
            if (box.x1 > box.x0 && w <= double(model_->dims().max_width())) {
                double vs = 0, ds = 0;
                std::size_t tk = 0;
                bool ended = false;
                const std::string latex = read_one(gray, box, "formula", ctx, {}, vs, ds, tk, &ended);
                if (!latex.empty() && ended) {  // else the text reading stays
                    b.type = "equation";
                    b.content = wrap_equation(number.empty() ? latex : latex + " \\tag{" + number.substr(1, number.size() - 2) + "}");
                }
            }
        }
        doc.blocks.push_back(std::move(b));
    }
    const auto t3 = clock::now();
    std::lock_guard lock(mutex_);
    times_.layout += std::chrono::duration<double>(t1 - t0).count();
    times_.vision += vision_s;
    times_.decode += decode_s;
    times_.postprocess += std::chrono::duration<double>(t3 - t2).count();
    times_.pages += 1;
    times_.blocks += items.size();
    times_.generated_tokens += tokens;
    return doc;
}

template <class M>
std::string EmbeddedPageParser<M>::recognise(const io::Image& crop, std::string_view task,
                                             const std::function<void(std::string_view piece)>& on_piece) const {
    const io::Image gray = crop.channels == 1 ? crop : io::to_gray(crop);
    // without a table task, the crop's text is read line by line and its grid found from the
    // positions of the text (grid_table_html)
    const bool grid_table = task == "table" && !model_->dims().table.present;
    model_->dims().task_token(grid_table ? "text" : task);  // a clear error for tasks the model does not know
    auto ctx = model_->context();
    double vs = 0, ds = 0;
    std::size_t tk = 0;
    std::string pending;  // bytes of a UTF-8 sequence not yet complete
    std::function<void(std::int32_t)> on_token;
    if (on_piece)
        on_token = [&](std::int32_t t) {
            if (t < 0 || t >= 256) return;
            pending += char(std::uint8_t(t));
            const auto lead = std::uint8_t(pending[0]);
            const std::size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            if (pending.size() >= need) {
                on_piece(io::utf8_replace_invalid(pending));
                pending.clear();
            }
        };
    if (task == "table") {  // the crop's lines read as text, its structure from the table task
        std::vector<Rule> rules;
        LayoutRegion all;
        if (grid_table) {  // every cell a crop of its own, rules between rows erased first
            all = grid_table_region(gray, {0, 0, gray.width, gray.height}, opt_.layout, rules);
        } else {
            const PageLayout lay = segment_page(gray, opt_.layout);
            all.block.type = "table";
            for (const auto& r : lay.regions) {
                if (r.block.type == "image") continue;
                if (all.lines.empty()) all.block = r.block, all.block.type = "table";
                all.block.x0 = std::min(all.block.x0, r.block.x0), all.block.y0 = std::min(all.block.y0, r.block.y0);
                all.block.x1 = std::max(all.block.x1, r.block.x1), all.block.y1 = std::max(all.block.y1, r.block.y1);
                all.lines.insert(all.lines.end(), r.lines.begin(), r.lines.end());
            }
        }
        std::vector<std::vector<std::string>> texts(all.lines.size());
        for (std::size_t l = 0; l < all.lines.size(); ++l)
            for (const auto& c : all.lines[l].chunks) texts[l].push_back(read_one(gray, c, "text", ctx, on_token, vs, ds, tk));
        // the table splitter's or the table task's structure where the model has one
        if (std::string html = read_table(gray, all, rules, texts, ctx, vs, ds, tk); !html.empty()) return html;
        if (grid_table) return grid_table_html(all.lines, texts, rules);
        task = "text";  // not read as a table: the segmenter's reading below
    }
    if (task != "text") {  // one pass over the whole crop (its ink, with the margin)
        const PageLayout lay = segment_page(gray, opt_.layout);
        TextChunk all{0, 0, gray.width, gray.height};
        if (!lay.regions.empty()) {
            all = {int(lay.regions[0].block.x0), int(lay.regions[0].block.y0), int(lay.regions[0].block.x1), int(lay.regions[0].block.y1)};
            for (const auto& r : lay.regions)
                all = {std::min(all.x0, int(r.block.x0)), std::min(all.y0, int(r.block.y0)), std::max(all.x1, int(r.block.x1)),
                       std::max(all.y1, int(r.block.y1))};
        }
        return read_one(gray, all, task, ctx, on_token, vs, ds, tk);
    }
    const PageLayout lay = segment_page(gray, opt_.layout);
    std::string out;
    for (const auto& r : lay.regions) {
        if (r.block.type == "image") continue;
        std::vector<std::vector<std::string>> texts(r.lines.size());
        for (std::size_t l = 0; l < r.lines.size(); ++l) {
            for (const auto& c : r.lines[l].chunks) {
                texts[l].push_back(read_one(gray, c, task, ctx, on_token, vs, ds, tk));
                if (on_piece) on_piece(" ");
            }
            if (on_piece) on_piece("\n");
        }
        if (!out.empty()) out += "\n\n";
        out += region_content(r, texts);
    }
    return out;
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
