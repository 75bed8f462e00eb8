// docvlm/pipeline/page_normalise.hpp — a scanned page made to look like a rendered one before
// segmentation: paper tone and uneven light divided out, ink and paper levels stretched to black
// and white, quarter turns undone and the skew levelled. On a clean rendered page (white paper,
// black ink, level lines) every step is the identity, pixel for pixel.
//
//   1. background (flatten_background): per 16-pixel cell, the 90th percentile of its pixels (the
//      paper where the cell holds any); the largest over 5 × 5 cells (a cell inside a paragraph
//      sees the paper around it), smoothed over 5 × 5 cells and interpolated; floored at 3/4 of
//      the page's paper level (a photograph larger than the window stays dark). Each pixel is
//      divided by it: paper becomes 255 wherever the light fell.
//   2. levels (stretch_levels): black point = the 5th percentile of the ink (pixels below Otsu's
//      threshold), white point = the paper's median − 2.5 σ (σ from its median absolute
//      deviation): sensor noise on the paper becomes white, grey ink black.
//   3. sideways (is_sideways): text lines make the projection of the ink onto the page's
//      vertical axis far sharper than onto the horizontal one, measured in bins of 4 samples (8 px
//      at 150 dpi: monospaced glyphs stand in columns too, a pitch those bins smooth away); a page
//      whose columns project 1.3 times sharper is turned by 90°.
//   4. skew (estimate_skew): the angle whose projection of the ink has the steepest edges (sum of
//      squared differences of neighbouring row counts), searched from −max to +max in 0.2°
//      steps, then ±0.2° around the best in 0.02° steps; the page is rotated back with bilinear
//      interpolation when the skew is at least `min_skew` (paper white fills the corners).
//   5. upside down (is_upside_down): on level lines, a line's ascenders (b d f h k l t, capitals)
//      lie above its x-height band; upside down they lie below it. Text lines (bands of rows of
//      about the typical height) vote, and a clear majority for "below" turns the page by 180°.
// Angles are degrees counter-clockwise as the page is viewed.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/pipeline/document.hpp>
#include <docvlm/pipeline/layout.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

struct NormaliseOptions {
    bool flatten = true;     ///< divide out paper tone and uneven light, stretch ink/paper levels
    bool orient = true;      ///< undo quarter turns (90, 180, 270 degrees)
    bool deskew = true;      ///< level skewed lines
    double max_skew = 5.0;   ///< degrees searched either way
    double min_skew = 0.1;   ///< smaller skews are left alone (no resampling)
};

/// The normalised gray page (steps 1–5 above); `geometry` receives what was done.
io::Image normalise_page(const io::Image& gray, const NormaliseOptions& opt = {}, PageGeometry* geometry = nullptr);

/// Step 1: each pixel divided by its background estimate (paper = 255).
io::Image flatten_background(const io::Image& gray);
/// Step 2: ink to black, paper (with its noise) to white.
io::Image stretch_levels(const io::Image& gray);
/// A crop of a scanned page with its own levels: its 2nd and 98th percentiles to black and
/// white (unchanged when they lie less than 20 apart: a blank crop). A scanned line keeps grey,
/// blurred strokes after the page's levels; on simulated scans of held-out training text this
/// lowered the recogniser's CER from 0.142 to 0.133 (800 crops, tools/train/crop_levels.py),
/// while on clean renderings it raised it (0.082 to 0.090, 192 crops), so the parser applies it
/// only to pages it had to flatten.
io::Image stretch_crop_levels(const io::Image& crop);
/// The angle (degrees counter-clockwise, |angle| ≤ max_degrees) of the page's text lines.
double estimate_skew(const io::Image& gray, double max_degrees = 5.0);
/// True when the page's text lines run vertically (the page lies on its side).
bool is_sideways(const io::Image& gray);
/// True when the level text lines of the page have more ink below their x-height band than above.
bool is_upside_down(const io::Image& gray);
/// Quarter turns counter-clockwise (0–3) that make a page with level lines upright.
int estimate_quarter_turns(const io::Image& gray);
/// The page turned by `degrees` counter-clockwise about its centre, same size, bilinear; `fill`
/// where the source falls outside.
io::Image rotate_about_centre(const io::Image& gray, double degrees, std::uint8_t fill = 255);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {

/// std::floor(v) as an integer, without the library call (v within the integer's range).
inline std::ptrdiff_t floor_int(double v) {
    const auto i = std::ptrdiff_t(v);
    return double(i) > v ? i - 1 : i;
}

/// std::clamp(std::lround(v), 0, 255) for finite v, without the library call: the fraction
/// v − trunc(v) is exact, and from one half up rounds away from zero.
inline std::uint8_t round_to_byte(double v) {
    if (!(v > 0)) return 0;
    if (v >= 255) return 255;
    const auto i = int(v);
    return std::uint8_t(v - i >= 0.5 ? i + 1 : i);
}

/// The q-quantile (0–1) of a 256-bin histogram.
template <class Count>
int histogram_quantile(const std::array<Count, 256>& h, double q) {
    std::uint64_t total = 0;
    for (auto c : h) total += c;
    if (total == 0) return 255;
    const auto want = std::uint64_t(q * double(total - 1));
    std::uint64_t acc = 0;
    for (int v = 0; v < 256; ++v) {
        acc += h[std::size_t(v)];
        if (acc > want) return v;
    }
    return 255;
}

/// A w × h grid of doubles.
struct Grid {
    int w = 0, h = 0;
    std::vector<double> v;
    double& at(int x, int y) { return v[std::size_t(y) * std::size_t(w) + std::size_t(x)]; }
    double at(int x, int y) const { return v[std::size_t(y) * std::size_t(w) + std::size_t(x)]; }
};

/// Each cell replaced by the largest (mean = false) or the mean (mean = true) of the cells within
/// `r` of it, clipped at the edges.
inline Grid filter_grid(const Grid& g, int r, bool mean) {
    Grid out{g.w, g.h, std::vector<double>(g.v.size())};
    for (int y = 0; y < g.h; ++y)
        for (int x = 0; x < g.w; ++x) {
            double acc = 0;
            int n = 0;
            for (int yy = std::max(0, y - r); yy <= std::min(g.h - 1, y + r); ++yy)
                for (int xx = std::max(0, x - r); xx <= std::min(g.w - 1, x + r); ++xx)
                    acc = mean ? acc + g.at(xx, yy) : std::max(acc, g.at(xx, yy)), ++n;
            out.at(x, y) = mean ? acc / n : acc;
        }
    return out;
}

/// The dark pixels of every `step`-th row and column as (x, y, darkness): pixels darker than half
/// way from the ink threshold to white, weighted by (255 − pixel) / 255 (the edges of thresholded
/// strokes would make a staircase of a slanted line).
inline std::vector<std::array<float, 3>> ink_points(const io::Image& g, int threshold, int step) {
    std::vector<std::array<float, 3>> pts;
    const int light = (threshold + 255) / 2;
    for (int y = 0; y < g.height; y += step)
        for (int x = 0; x < g.width; x += step)
            if (const int p = g.at(x, y); p < light) pts.push_back({float(x), float(y), float(255 - p) / 255.0f});
    return pts;
}

/// Ink samples ready to be projected at any angle: ink_points' (x, y, darkness), each with a fixed
/// dither (golden-ratio sequence over x) and the total darkness.
struct InkSamples {
    std::vector<std::array<float, 3>> pts;
    std::vector<double> dither;
    double mass = 0;
};

inline InkSamples ink_samples(std::vector<std::array<float, 3>> pts) {
    InkSamples s;
    s.dither.reserve(pts.size());
    for (const auto& p : pts) s.dither.push_back(std::fmod(double(p[0]) * 0.6180339887498949, 1.0)), s.mass += p[2];
    s.pts = std::move(pts);
    return s;
}

/// Sharpness of the projection of the samples along lines at `degrees`: their darkness summed in
/// `bin`-pixel bins of y + x·tan(angle) (constant along a line rising at that angle),
/// Σ (bin − previous bin)² / (total darkness)² — the edges of text lines are steepest at their
/// own angle.
inline double projection_sharpness(const InkSamples& s, double degrees, int extent, int bin) {
    if (s.pts.empty()) return 0;
    const double t = std::tan(degrees * std::numbers::pi / 180.0);
    extent = extent / bin + 1;
    const int pad = int(std::ceil(std::abs(t) * extent)) + 2;
    std::vector<float> bins(std::size_t(extent + 2 * pad), 0.0f);
    // lines rising to the right (counter-clockwise) have y falling as x grows: y + x·t is constant;
    // each point shared between its two nearest bins (no staircase from rounding), plus its
    // column's dither: every angle, 0 included, then spreads points over the two bins alike
    // (without it, level rows on whole pixels would fall on bin edges at 0° only and make 0° look
    // sharper than it is)
    for (std::size_t i = 0; i < s.pts.size(); ++i) {
        const auto& p = s.pts[i];
        const double v = (double(p[1]) + double(p[0]) * t) / bin + s.dither[i] + pad;
        const std::ptrdiff_t b = floor_int(v);
        const float w = float(v - double(b));
        if (b >= 0 && std::size_t(b + 1) < bins.size()) bins[std::size_t(b)] += (1 - w) * p[2], bins[std::size_t(b + 1)] += w * p[2];
    }
    double sum = 0;
    for (std::size_t i = 1; i < bins.size(); ++i) sum += (double(bins[i]) - double(bins[i - 1])) * (double(bins[i]) - double(bins[i - 1]));
    return sum / (s.mass * s.mass);
}

/// projection_sharpness at each of `degrees`, the angles shared among the pool's threads.
inline std::vector<double> projection_sharpness(const InkSamples& s, const std::vector<double>& degrees, int extent, int bin) {
    std::vector<double> out(degrees.size());
    parallel_for(degrees.size(), [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) out[i] = projection_sharpness(s, degrees[i], extent, bin);
    });
    return out;
}

/// The segmenter's ink threshold (segment_page): Otsu's, clamped to [96, 208].
inline int ink_threshold_of(const io::Image& g) { return std::clamp(otsu_threshold(g), 96, 208); }

}  // namespace detail

inline io::Image flatten_background(const io::Image& gray) {
    if (gray.channels != 1) docvlm::detail::fail("flatten_background: expects a gray image");
    constexpr int cell = 16;
    const int gw = (gray.width + cell - 1) / cell, gh = (gray.height + cell - 1) / cell;
    detail::Grid bg{gw, gh, std::vector<double>(std::size_t(gw) * std::size_t(gh))};
    parallel_for(std::size_t(gh), [&](std::size_t cb, std::size_t ce) {
        for (int cy = int(cb); cy < int(ce); ++cy)
            for (int cx = 0; cx < gw; ++cx) {
                std::array<std::uint16_t, 256> h{};  // a cell's 256 pixels at most
                for (int y = cy * cell; y < std::min(gray.height, (cy + 1) * cell); ++y)
                    for (int x = cx * cell; x < std::min(gray.width, (cx + 1) * cell); ++x) ++h[gray.at(x, y)];
                bg.at(cx, cy) = detail::histogram_quantile(h, 0.9);
            }
    });
    const int paper = detail::histogram_quantile(detail::histogram(gray), 0.9);
    bg = detail::filter_grid(detail::filter_grid(bg, 2, false), 2, true);
    if (paper == 255 && std::all_of(bg.v.begin(), bg.v.end(), [](double v) { return v >= 255; })) return gray;  // white paper
    io::Image out(gray.width, gray.height, 1);
    // bilinear between cell centres: each column's left cell and weight
    std::vector<int> cx0(std::size_t(gray.width));
    std::vector<double> cwx(std::size_t(gray.width));
    for (int x = 0; x < gray.width; ++x) {
        const double fx = std::clamp((x + 0.5) / cell - 0.5, 0.0, double(gw - 1));
        cx0[std::size_t(x)] = int(fx), cwx[std::size_t(x)] = fx - int(fx);
    }
    parallel_for(std::size_t(gray.height), [&](std::size_t yb, std::size_t ye) {
        for (int y = int(yb); y < int(ye); ++y) {
            const double fy = std::clamp((y + 0.5) / cell - 0.5, 0.0, double(gh - 1));
            const int y0 = int(fy), y1 = std::min(gh - 1, y0 + 1);
            const double wy = fy - y0;
            for (int x = 0; x < gray.width; ++x) {
                const int x0 = cx0[std::size_t(x)], x1 = std::min(gw - 1, x0 + 1);
                const double wx = cwx[std::size_t(x)];
                double b = (bg.at(x0, y0) * (1 - wx) + bg.at(x1, y0) * wx) * (1 - wy) + (bg.at(x0, y1) * (1 - wx) + bg.at(x1, y1) * wx) * wy;
                b = std::max({b, 0.75 * paper, 1.0});
                out.at(x, y) = detail::round_to_byte(255.0 * gray.at(x, y) / b);
            }
        }
    });
    return out;
}

inline io::Image stretch_levels(const io::Image& gray) {
    if (gray.channels != 1) docvlm::detail::fail("stretch_levels: expects a gray image");
    const auto h = detail::histogram(gray);
    const int t = otsu_threshold(gray);
    std::array<std::uint64_t, 256> ink{}, paper{};
    for (int v = 0; v < 256; ++v) (v < t ? ink : paper)[std::size_t(v)] = h[std::size_t(v)];
    const int black = detail::histogram_quantile(ink, 0.05), median = detail::histogram_quantile(paper, 0.5);
    std::array<std::uint64_t, 256> dev{};
    for (int v = 0; v < 256; ++v) dev[std::size_t(std::abs(v - median))] += paper[std::size_t(v)];
    const double sigma = 1.4826 * detail::histogram_quantile(dev, 0.5);
    const double white = std::max(median - 2.5 * sigma, double(t) + 1);
    if (black <= 0 && white >= 255) return gray;  // already black on white
    if (white <= black + 16) return gray;           // no contrast to stretch (a blank or flat page)
    std::array<std::uint8_t, 256> lut{};
    for (int v = 0; v < 256; ++v) lut[std::size_t(v)] = std::uint8_t(std::clamp(std::lround(255.0 * (v - black) / (white - black)), 0L, 255L));
    io::Image out = gray;
    for (auto& p : out.pixels) p = lut[p];
    return out;
}

inline io::Image stretch_crop_levels(const io::Image& crop) {
    if (crop.channels != 1) docvlm::detail::fail("stretch_crop_levels: expects a gray image");
    const auto h = detail::histogram(crop);
    const int lo = detail::histogram_quantile(h, 0.02), hi = detail::histogram_quantile(h, 0.98);
    if (hi - lo < 20) return crop;
    io::Image out = crop;
    for (auto& p : out.pixels) p = detail::round_to_byte(255.0 * (p - lo) / (hi - lo));
    return out;
}

inline double estimate_skew(const io::Image& gray, double max_degrees) {
    if (gray.channels != 1) docvlm::detail::fail("estimate_skew: expects a gray image");
    if (!(max_degrees >= 0 && max_degrees <= 45)) docvlm::detail::fail("estimate_skew: max_degrees must lie in [0, 45], got ", max_degrees);
    const int step = std::max(1, std::min(gray.width, gray.height) / 600);  // ~600 samples across
    const auto samples = detail::ink_samples(detail::ink_points(gray, detail::ink_threshold_of(gray), step));
    if (samples.pts.size() < 100) return 0;
    const int extent = gray.width + gray.height;
    // the middle of the angles within 0.1 % of the sharpest (a page drawn in whole pixels is
    // equally sharp over a small range of angles)
    auto search = [&](double from, double to, double by) {
        std::vector<double> angles;
        for (int i = 0; from + i * by <= to + 1e-9; ++i) angles.push_back(from + i * by);
        const std::vector<double> scores = detail::projection_sharpness(samples, angles, extent, step);
        double best = -1;
        for (double sc : scores) best = std::max(best, sc);
        double lo = to, hi = from;
        for (std::size_t i = 0; i < angles.size(); ++i)
            if (scores[i] >= best * (1 - 1e-3)) lo = std::min(lo, angles[i]), hi = std::max(hi, angles[i]);
        return 0.5 * (lo + hi);
    };
    const double coarse = search(-max_degrees, max_degrees, 0.2);
    const double fine = search(coarse - 0.2, coarse + 0.2, 0.02);
    return std::clamp(fine, -max_degrees, max_degrees);
}

inline bool is_sideways(const io::Image& gray) {
    if (gray.channels != 1) docvlm::detail::fail("is_sideways: expects a gray image");
    const int step = std::max(1, std::min(gray.width, gray.height) / 600);
    auto pts = detail::ink_points(gray, detail::ink_threshold_of(gray), step);
    if (pts.size() < 100) return false;
    // the sharpest projection within ±3° of the rows' direction, and of the columns', in bins of
    // 4 samples (8 px on a 150 dpi page): coarse enough that the character pitch of monospaced
    // text (its glyphs stand in columns) leaves no edges, fine enough for the line pitch
    const int extent = gray.width + gray.height, bin = 4 * step;
    std::vector<double> angles;
    for (double a = -3; a <= 3; a += 0.25) angles.push_back(a);
    auto sharpest = [&](std::vector<std::array<float, 3>> p) {
        const std::vector<double> s = detail::projection_sharpness(detail::ink_samples(std::move(p)), angles, extent, bin);
        return std::max(0.0, *std::max_element(s.begin(), s.end()));
    };
    const double rows = sharpest(pts);
    for (auto& p : pts) std::swap(p[0], p[1]);
    return sharpest(std::move(pts)) > 1.3 * rows;
}

inline bool is_upside_down(const io::Image& gray) {
    if (gray.channels != 1) docvlm::detail::fail("is_upside_down: expects a gray image");
    const int threshold = detail::ink_threshold_of(gray);
    std::vector<int> row(std::size_t(gray.height), 0);
    for (int y = 0; y < gray.height; ++y)
        for (int x = 0; x < gray.width; ++x) row[std::size_t(y)] += gray.at(x, y) < threshold;
    // bands of inked rows with a dense core: [top, core top, core bottom, end)
    std::vector<std::array<int, 4>> bands;
    for (int y = 0; y < gray.height;) {
        int e = y, peak = 0;
        while (e < gray.height && row[std::size_t(e)] > 0) peak = std::max(peak, row[std::size_t(e)]), ++e;
        if (e - y >= 6 && peak >= 20) {
            int a = y, b = e - 1;
            while (row[std::size_t(a)] * 10 < peak * 4) ++a;
            while (row[std::size_t(b)] * 10 < peak * 4) --b;
            bands.push_back({y, a, b + 1, e});
        }
        y = std::max(e, y + 1);
    }
    if (bands.size() < 5) return false;
    std::vector<int> heights;
    for (const auto& b : bands) heights.push_back(b[3] - b[0]);
    std::nth_element(heights.begin(), heights.begin() + std::ptrdiff_t(heights.size() / 2), heights.end());
    const int typical = heights[heights.size() / 2];
    // text lines (bands of about the typical height) vote by (above − below) / (above + below)
    double vote = 0;
    int lines = 0;
    for (const auto& b : bands) {
        if (2 * (b[3] - b[0]) < typical || b[3] - b[0] > 2 * typical) continue;
        double above = 0, below = 0;
        for (int k = b[0]; k < b[1]; ++k) above += row[std::size_t(k)];
        for (int k = b[2]; k < b[3]; ++k) below += row[std::size_t(k)];
        if (above + below > 0) vote += (above - below) / (above + below), ++lines;
    }
    return lines >= 5 && vote < -0.15 * lines;
}

inline int estimate_quarter_turns(const io::Image& gray) {
    const bool sideways = is_sideways(gray);
    // turning counter-clockwise by 90 makes the lines horizontal; upside down then, 270 does
    const bool upside_down = is_upside_down(sideways ? io::rotate(gray, 90) : gray);
    return (sideways ? 1 : 0) + (upside_down ? 2 : 0);
}

inline io::Image rotate_about_centre(const io::Image& gray, double degrees, std::uint8_t fill) {
    if (gray.channels != 1) docvlm::detail::fail("rotate_about_centre: expects a gray image");
    const double r = degrees * std::numbers::pi / 180.0, c = std::cos(r), s = std::sin(r);
    const double cx = 0.5 * gray.width, cy = 0.5 * gray.height;
    io::Image out(gray.width, gray.height, 1, fill);
    auto px = [&](int x, int y) -> double { return x < 0 || y < 0 || x >= gray.width || y >= gray.height ? fill : gray.at(x, y); };
    parallel_for(std::size_t(gray.height), [&](std::size_t yb, std::size_t ye) {
        for (int y = int(yb); y < int(ye); ++y)
            for (int x = 0; x < gray.width; ++x) {
                // counter-clockwise as viewed (y down): the source of (x', y') is turned clockwise
                const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
                const double sx = dx * c - dy * s + cx - 0.5, sy = dx * s + dy * c + cy - 0.5;
                const int x0 = int(detail::floor_int(sx)), y0 = int(detail::floor_int(sy));
                const double wx = sx - x0, wy = sy - y0;
                double p00, p10, p01, p11;  // the four source pixels (fill outside)
                if (x0 >= 0 && y0 >= 0 && x0 + 1 < gray.width && y0 + 1 < gray.height) {
                    const std::uint8_t* r = &gray.pixels[std::size_t(y0) * std::size_t(gray.width) + std::size_t(x0)];
                    p00 = r[0], p10 = r[1], p01 = r[gray.width], p11 = r[gray.width + 1];
                } else {
                    p00 = px(x0, y0), p10 = px(x0 + 1, y0), p01 = px(x0, y0 + 1), p11 = px(x0 + 1, y0 + 1);
                }
                out.at(x, y) = detail::round_to_byte((p00 * (1 - wx) + p10 * wx) * (1 - wy) + (p01 * (1 - wx) + p11 * wx) * wy);
            }
    });
    return out;
}

inline io::Image normalise_page(const io::Image& page, const NormaliseOptions& opt, PageGeometry* geometry) {
    if (page.width <= 0 || page.height <= 0) docvlm::detail::fail("normalise_page: empty page image");
    io::Image g = page.channels == 1 ? page : io::to_gray(page);
    PageGeometry geo;
    if (opt.flatten) {
        io::Image f = stretch_levels(flatten_background(g));
        geo.flattened = f.pixels != g.pixels;
        g = std::move(f);
    }
    // sideways first (robust to skew), then level the lines, then upside down (needs level lines)
    if (opt.orient && is_sideways(g)) g = io::rotate(g, 90), geo.rotation = 90;
    if (opt.deskew) {
        const double skew = estimate_skew(g, opt.max_skew);
        if (std::abs(skew) >= opt.min_skew) g = rotate_about_centre(g, -skew), geo.skew = -skew;
    }
    if (opt.orient && is_upside_down(g)) g = io::rotate(g, 180), geo.rotation += 180;
    if (geometry) *geometry = geo;
    return g;
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
