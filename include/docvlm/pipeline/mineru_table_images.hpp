// docvlm/pipeline/mineru_table_images.hpp — images inside tables, as the MinerU2.5 client
// (opendatalab/mineru-vl-utils 1.2.1, post_process/table_image_processor.py) treats them:
//   1. an image block lying ≥ 90 % inside a table is absorbed by it (table_image_map);
//   2. in the table's crop the image is painted over with the colour around it and labelled with
//      a token such as "[K7TX]", which the model copies into the cell where the image stood
//      (mask_table_images); the image itself becomes a JPEG data: URI kept with the token;
//   3. after recognition each token in the table's HTML becomes <img src="URI"/>
//      (replace_table_image_tokens) and the absorbed image block is dropped (mineru_post_process).
// Optionally (the client's enable_table_formula_eq_wrap) a table's \( \) and \[ \] formulas become
// <eq> </eq> (wrap_table_formulas).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/io/base64.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/io/truetype.hpp>
#include <docvlm/pipeline/document.hpp>
#include <docvlm/pipeline/mineru.hpp>
#include <docvlm/pipeline/py_text.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

/// For each of `tables` (block indices), the image blocks it absorbs: an image lying at least
/// `threshold` inside one or more of them goes to the one covering the most of it (on a tie, the
/// smaller table; then the first); each list sorted top to bottom, then left to right.
std::vector<std::vector<std::size_t>> table_image_map(const std::vector<Block>& blocks, std::span<const std::size_t> tables,
                                                      double threshold = 0.9);

/// The client's image tokens: "[" + 4 characters of "ACDGHKTWXYZ2345678" + "]", drawn at random
/// (a fixed seed: the same page gives the same tokens), never twice in one table; or given tokens
/// in order (to draw what a run of the client drew).
class TableImageTokens {
public:
    static constexpr std::string_view alphabet = "ACDGHKTWXYZ2345678";
    explicit TableImageTokens(std::uint32_t seed = 2509) : rng_(seed) {}
    explicit TableImageTokens(std::vector<std::string> given) : given_(std::move(given)) {}
    /// A token not drawn since the last new_table(); docvlm::Error when all 18^4 are used (or the
    /// given tokens run out).
    std::string next();
    void new_table() { used_.clear(); }

private:
    std::mt19937 rng_;
    std::set<std::string> used_;
    std::optional<std::vector<std::string>> given_;
    std::size_t next_given_ = 0;
};

/// The TrueType font the client draws its tokens in (DejaVu Sans, or Arial on macOS), loaded on
/// first use; nullptr when none of its font files exists (tokens are then not drawn).
const io::TrueTypeFont* table_token_font();

/// The client's mask_and_encode_table_image: `crop` (the table cut from the RGB `page`) turned by
/// the table's angle; in it each image's box (relative to the table's truncated corner, clipped)
/// painted with the average colour of 8 points 2 px around it and labelled with a new token in the
/// largest font that fills at most 70 % of the box, centred, black or white for contrast; per token,
/// the image cut from the page (truncated box) and turned alike, as a JPEG data: URI.
io::Image mask_table_images(const io::Image& page, const Block& table, std::span<const Block* const> images, io::Image crop,
                            TableImageTokens& tokens, const io::TrueTypeFont* font, std::vector<TableImage>& out);

/// The client's replace_table_image_tokens: every "[TOKEN]" (whitespace allowed inside the
/// brackets) becomes <img src="URI"/>, token by token in order.
std::string replace_table_image_tokens(std::string content, std::span<const TableImage> images);

/// The client's replace_table_formula_delimiters: \( … \) and then \[ … \] (shortest, at least one
/// character) become <eq>…</eq> with the formula stripped; text already inside <eq>…</eq> is kept.
std::string wrap_table_formulas(std::string_view html);

/// A JPEG (Pillow's default quality, 75) of an image as a data: URI.
std::string jpeg_data_uri(const io::Image& image);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline std::vector<std::vector<std::size_t>> table_image_map(const std::vector<Block>& blocks, std::span<const std::size_t> tables,
                                                             double threshold) {
    std::vector<std::vector<std::size_t>> out(tables.size());
    auto area = [](const Block& b) { return std::max(0.0, b.x1 - b.x0) * std::max(0.0, b.y1 - b.y0); };
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        if (blocks[i].type != "image") continue;
        std::ptrdiff_t best = -1;
        double best_ratio = threshold, best_area = 0;
        for (std::size_t t = 0; t < tables.size(); ++t) {
            const Block& table = blocks[tables[t]];
            const double ratio = detail::cover_ratio(table, blocks[i]);
            if (ratio < threshold) continue;
            if (best < 0 || ratio > best_ratio || (ratio == best_ratio && area(table) < best_area))
                best = std::ptrdiff_t(t), best_ratio = ratio, best_area = area(table);
        }
        if (best >= 0) out[std::size_t(best)].push_back(i);
    }
    for (auto& images : out)
        std::stable_sort(images.begin(), images.end(), [&](std::size_t a, std::size_t b) {
            return std::pair(blocks[a].y0, blocks[a].x0) < std::pair(blocks[b].y0, blocks[b].x0);
        });
    return out;
}

inline std::string TableImageTokens::next() {
    if (given_) {
        if (next_given_ >= given_->size()) docvlm::detail::fail("table image tokens: only ", given_->size(), " tokens were given");
        return (*given_)[next_given_++];
    }
    constexpr std::size_t length = 4, all = 18 * 18 * 18 * 18;
    if (used_.size() >= all) docvlm::detail::fail("table image tokens: all ", all, " tokens of this table are used");
    for (;;) {
        std::string code;
        for (std::size_t i = 0; i < length; ++i) code += alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(rng_)];
        if (used_.insert(code).second) return "[" + code + "]";
    }
}

inline const io::TrueTypeFont* table_token_font() {
    static const std::optional<io::TrueTypeFont> font = [] {
        constexpr std::array<std::string_view, 4> paths = {
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/System/Library/Fonts/Supplemental/Arial.ttf", "/Library/Fonts/Arial.ttf"};
        return io::TrueTypeFont::first_of(paths);
    }();
    return font ? &*font : nullptr;
}

inline std::string jpeg_data_uri(const io::Image& image) { return "data:image/jpeg;base64," + io::base64_encode(io::encode_jpeg(image, 75)); }

namespace detail::table_images {

using Box = std::array<int, 4>;  // x0, y0, x1, y1 (the last row and column included when painted)

// A box of an image of `size` (width, height) after the image is turned by `angle` (counter-clockwise).
inline Box rotate_box(const Box& b, int width, int height, int angle) {
    if (angle == 90) return {b[1], width - b[2], b[3], width - b[0]};
    if (angle == 180) return {width - b[2], height - b[3], width - b[0], height - b[1]};
    if (angle == 270) return {height - b[3], b[0], height - b[1], b[2]};
    return b;
}

// The mean (floored) of 8 points 2 px outside the box's corners and edge middles, clamped to the image.
inline std::array<std::uint8_t, 3> average_colour(const io::Image& img, const Box& b) {
    const int pad = 2, mx = (b[0] + b[2]) / 2, my = (b[1] + b[3]) / 2;
    const std::array<std::array<int, 2>, 8> points = {{{b[0] - pad, b[1] - pad}, {mx, b[1] - pad}, {b[2] + pad, b[1] - pad},
                                                       {b[2] + pad, my}, {b[2] + pad, b[3] + pad}, {mx, b[3] + pad},
                                                       {b[0] - pad, b[3] + pad}, {b[0] - pad, my}}};
    std::array<int, 3> sum{};
    for (const auto& p : points) {
        const int x = std::clamp(p[0], 0, img.width - 1), y = std::clamp(p[1], 0, img.height - 1);
        for (int c = 0; c < 3; ++c) sum[std::size_t(c)] += img.at(x, y, c);
    }
    return {std::uint8_t(sum[0] / 8), std::uint8_t(sum[1] / 8), std::uint8_t(sum[2] / 8)};
}

inline void fill(io::Image& img, const Box& b, std::array<std::uint8_t, 3> colour) {
    for (int y = std::max(b[1], 0); y <= std::min(b[3], img.height - 1); ++y)
        for (int x = std::max(b[0], 0); x <= std::min(b[2], img.width - 1); ++x)
            for (int c = 0; c < 3; ++c) img.at(x, y, c) = colour[std::size_t(c)];
}

struct FontFit {
    int size, width, height;
};

// The client's _get_optimal_pil_font: the largest size in [4, max_size] (binary search, at most 30
// steps) whose text box fits in `fill` of the box; size 4 with a 0 × 0 box when none does.
inline FontFit optimal_font(const io::TrueTypeFont& font, std::string_view text, int box_w, int box_h, int max_size) {
    constexpr double fill = 0.7;
    int left = 4, right = max_size;
    FontFit best{left, 0, 0};
    for (int step = 0; step < 30 && left <= right; ++step) {
        const int mid = (left + right) / 2;
        const auto bb = font.bbox(text, mid);
        const int w = bb[2] - bb[0], h = bb[3] - bb[1];
        if (w <= box_w * fill && h <= box_h * fill) best = {mid, w, h}, left = mid + 1;
        else right = mid - 1;
    }
    return best;
}

}  // namespace detail::table_images

inline io::Image mask_table_images(const io::Image& page, const Block& table, std::span<const Block* const> images, io::Image crop,
                                   TableImageTokens& tokens, const io::TrueTypeFont* font, std::vector<TableImage>& out) {
    using namespace detail::table_images;
    if (page.channels != 3 || crop.channels != 3) docvlm::detail::fail("mask_table_images: expected RGB images");
    const int angle = table.angle && (*table.angle == 90 || *table.angle == 180 || *table.angle == 270) ? *table.angle : 0;
    const double W = page.width, H = page.height;
    const int tx = int(table.x0 * W), ty = int(table.y0 * H);  // the client truncates the table's corner here
    const int cw = crop.width, ch = crop.height;
    io::Image masked = angle ? io::rotate(crop, angle) : std::move(crop);
    std::map<int, FontFit> fonts;  // by box height / 16 (the tokens are all one length)
    tokens.new_table();
    for (const Block* image : images) {
        const double ax0 = image->x0 * W, ay0 = image->y0 * H, ax1 = image->x1 * W, ay1 = image->y1 * H;
        const Box rel = {int(std::max(0.0, ax0 - tx)), int(std::max(0.0, ay0 - ty)), int(std::min(double(cw), ax1 - tx)),
                         int(std::min(double(ch), ay1 - ty))};
        if (rel[2] <= rel[0] || rel[3] <= rel[1]) continue;
        const io::Image picture = io::crop(page, int(ax0), int(ay0), int(ax1), int(ay1));
        if (picture.width < 1 || picture.height < 1) continue;
        const std::string token = tokens.next();
        out.push_back({token, jpeg_data_uri(angle ? io::rotate(picture, angle) : picture)});

        const Box box = rotate_box(rel, cw, ch, angle);
        const auto colour = average_colour(masked, box);
        fill(masked, box, colour);
        if (!font) continue;
        const int bw = box[2] - box[0], bh = box[3] - box[1];
        auto cached = fonts.find(bh / 16);
        if (cached == fonts.end() || cached->second.width > bw || cached->second.height > bh)
            cached = fonts.insert_or_assign(bh / 16, optimal_font(*font, token, bw, bh, std::max(100, int(bh * 0.7)))).first;
        const FontFit fit = cached->second;
        if (fit.width > bw || fit.height > bh) continue;
        const double luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2];
        const std::uint8_t ink = luminance < 128 ? 255 : 0;
        font->draw(masked, box[0] + bw / 2.0 - fit.width / 2.0, box[1] + bh / 2.0 - fit.height / 2.0, token, fit.size, {ink, ink, ink});
    }
    return masked;
}

inline std::string replace_table_image_tokens(std::string content, std::span<const TableImage> images) {
    for (const TableImage& image : images) {
        const std::string_view inner = std::string_view(image.token).substr(1, image.token.size() - 2);
        const std::string img = "<img src=\"" + image.data_uri + "\"/>";
        std::string out;
        std::size_t i = 0;
        while (i < content.size()) {
            // "[" whitespace* inner whitespace* "]"
            std::size_t j = i + 1, n;
            if (content[i] == '[') {
                while ((n = py::space_at(content, j))) j += n;
                if (std::string_view(content).substr(j, inner.size()) == inner) {
                    j += inner.size();
                    while ((n = py::space_at(content, j))) j += n;
                    if (j < content.size() && content[j] == ']') {
                        out += img;
                        i = j + 1;
                        continue;
                    }
                }
            }
            out += content[i++];
        }
        content = std::move(out);
    }
    return content;
}

inline std::string wrap_table_formulas(std::string_view html) {
    // one delimiter pair over a stretch of text outside <eq>…</eq>
    auto wrap = [](std::string_view s, std::string_view open, std::string_view close) {
        std::string out;
        std::size_t i = 0;
        while (i < s.size()) {
            if (s.substr(i, open.size()) != open) {
                out += s[i++];
                continue;
            }
            const std::size_t end = s.find(close, i + open.size() + 1);  // at least one character between
            if (end == std::string_view::npos) {  // no later opening can close either
                out += s.substr(i);
                break;
            }
            out += "<eq>" + std::string(py::strip(s.substr(i + open.size(), end - i - open.size()))) + "</eq>";
            i = end + close.size();
        }
        return out;
    };
    std::string out;
    std::size_t i = 0;
    while (i <= html.size()) {
        const std::size_t eq = html.find("<eq>", i);
        const std::size_t eq_end = eq == std::string_view::npos ? eq : html.find("</eq>", eq + 4);
        const std::size_t stop = eq_end == std::string_view::npos ? html.size() : eq;
        out += wrap(wrap(html.substr(i, stop - i), "\\(", "\\)"), "\\[", "\\]");
        if (stop == html.size()) break;
        out += html.substr(eq, eq_end + 5 - eq);
        i = eq_end + 5;
    }
    return out;
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
