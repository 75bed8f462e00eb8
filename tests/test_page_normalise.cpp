// Tests of page normalisation (pipeline/page_normalise.hpp): skew found on pages drawn with known
// slopes, rotation checked against its formula, quarter turns of a real page, background and
// levels on synthetic paper, and the identity on a clean rendered page.
#include "test_util.hpp"

#include <docvlm/io/truetype.hpp>
#include <docvlm/pipeline/embedded_parser.hpp>
#include <docvlm/pipeline/page_normalise.hpp>

#include <cmath>
#include <numbers>
#include <random>

using namespace docvlm;

namespace {

// A page of "words" (dark boxes 12 px tall, 30–70 px long, anti-aliased) on lines 26 px apart,
// drawn along a slope of `degrees` counter-clockwise about the page centre (analytically, not with the rotation
// under test).
io::Image slanted_page(double degrees, std::uint64_t seed) {
    io::Image img(900, 1100, 1, 255);
    const double t = std::tan(degrees * std::numbers::pi / 180.0);
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> len(30, 70);
    for (int line = 0; line < 34; ++line) {
        const double base = 120 + 26 * line;
        for (int x = 100; x < 800;) {
            const int w = len(rng);
            for (int xx = x; xx < std::min(800, x + w); ++xx) {
                // lines rising to the right: the top edge falls by t per pixel right of the centre;
                // edge pixels get their coverage (anti-aliased, as a renderer or scanner draws them)
                const double top = base - (xx - 450) * t, bottom = top + 12;
                for (int y = int(std::floor(top)); y <= int(std::floor(bottom)); ++y) {
                    const double cover = std::min(bottom, y + 1.0) - std::max(top, double(y));
                    img.at(xx, y) = std::uint8_t(std::lround(255 - (255 - 25) * std::clamp(cover, 0.0, 1.0)));
                }
            }
            x += w + 9;
        }
    }
    return img;
}

// A scanned code listing: 60 numbered lines of DejaVu Sans Mono at 17 px on a 25 px pitch (10 pt
// type on 12 pt leading at 150 dpi), blurred by two 3 × 3 box filters. Monospaced glyphs stand in
// columns, so the columns' projection has edges too; nullopt without the font (fonts-dejavu-core).
std::optional<io::Image> scanned_listing() {
    constexpr std::string_view fonts[] = {"/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
                                          "/usr/share/fonts/dejavu/DejaVuSansMono.ttf"};
    const auto font = io::TrueTypeFont::first_of(fonts);
    if (!font) return std::nullopt;
    constexpr std::string_view code[] = {
        "\\def\\atfi@SETRGBCOLORFILL{rg }", "\\ProvidesFile{atfi-luatex.def}%", "  [2019/11/26 v2.11 driver]%",
        "\\protected\\def\\atfi@literal {\\pdfextension literal}", "\\def\\atfi@GSAVE{q }", "  \\fi",
        "\\def\\atfi@RECTSTROKEFILL#1#2#3{#1#2#3re B }", "\\let\\atfi@next\\relax", "%    \\end{macrocode}"};
    io::Image img(1241, 1754, 1, 255);
    for (int line = 0; line < 60; ++line) {
        const double y = 150 + 25 * line;
        font->draw(img, 120, y, std::to_string(900 + line), 17, {0, 0, 0});
        font->draw(img, 180, y, code[std::size_t(line * 7 % 9)], 17, {0, 0, 0});
    }
    for (int pass = 0; pass < 2; ++pass) {
        const io::Image src = img;
        for (int y = 1; y + 1 < img.height; ++y)
            for (int x = 1; x + 1 < img.width; ++x) {
                int sum = 0;
                for (int dy = -1; dy <= 1; ++dy)
                    for (int dx = -1; dx <= 1; ++dx) sum += src.at(x + dx, y + dy);
                img.at(x, y) = std::uint8_t((sum + 4) / 9);
            }
    }
    return img;
}

io::Image sample_page() { return io::load_image(std::string(DOCVLM_TEST_DATA) + "/../../examples/data/sample_page.png", io::ColorMode::gray); }

}  // namespace

TEST_SUITE("pipeline") {

TEST_CASE("page normalisation: skew of drawn pages within 0.05 degrees") {
    for (double a : {-4.0, -1.5, -0.7, -0.25, 0.0, 0.3, 1.0, 1.23, 3.5}) {
        const double est = pipeline::estimate_skew(slanted_page(a, std::uint64_t(100 * a + 1000)));
        CAPTURE(a);
        CHECK(std::abs(est - a) <= 0.05);
    }
}

TEST_CASE("page normalisation: a skew search range outside [0, 45] degrees is refused") {
    const io::Image page = slanted_page(1.0, 3);
    CHECK_THROWS_WITH(pipeline::estimate_skew(page, -1.0), doctest::Contains("max_degrees"));
    CHECK_THROWS_WITH(pipeline::estimate_skew(page, 90.0), doctest::Contains("max_degrees"));
    CHECK(pipeline::estimate_skew(page, 0.0) == 0.0);
}

TEST_CASE("page normalisation: rotation about the centre moves a point as the formula says") {
    io::Image img(201, 151, 1, 255);
    const int px = 160, py = 40;  // a 3×3 dark dot
    for (int y = py - 1; y <= py + 1; ++y)
        for (int x = px - 1; x <= px + 1; ++x) img.at(x, y) = 0;
    for (double deg : {10.0, -25.0, 90.0}) {
        const io::Image r = pipeline::rotate_about_centre(img, deg);
        // counter-clockwise as viewed, y pointing down: (dx, dy) -> (dx cos + dy sin, -dx sin + dy cos)
        const double rad = deg * std::numbers::pi / 180.0, dx = px + 0.5 - 100.5, dy = py + 0.5 - 75.5;
        const double ex = dx * std::cos(rad) + dy * std::sin(rad) + 100.5 - 0.5, ey = -dx * std::sin(rad) + dy * std::cos(rad) + 75.5 - 0.5;
        double sx = 0, sy = 0, sw = 0;  // centroid of the darkness
        for (int y = 0; y < r.height; ++y)
            for (int x = 0; x < r.width; ++x) {
                const double w = 255 - r.at(x, y);
                sx += w * x, sy += w * y, sw += w;
            }
        CAPTURE(deg);
        REQUIRE(sw > 0);
        CHECK(std::abs(sx / sw - ex) < 0.3);
        CHECK(std::abs(sy / sw - ey) < 0.3);
    }
}

TEST_CASE("page normalisation: a rotated real page is levelled back") {
    const io::Image page = sample_page();
    for (double a : {-1.4, 0.8}) {
        const io::Image tilted = pipeline::rotate_about_centre(page, a);
        CAPTURE(a);
        CHECK(std::abs(pipeline::estimate_skew(tilted) - a) <= 0.05);
        pipeline::PageGeometry geo;
        pipeline::normalise_page(tilted, {}, &geo);
        CHECK(std::abs(geo.skew + a) <= 0.05);
        CHECK(geo.rotation == 0);
    }
}

TEST_CASE("page normalisation: quarter turns of a real page are found") {
    const io::Image page = sample_page();
    for (int q = 0; q < 4; ++q) {
        // the page turned clockwise by q quarters needs q quarters counter-clockwise
        const io::Image turned = io::rotate(page, (360 - 90 * q) % 360);
        CAPTURE(q);
        CHECK(pipeline::estimate_quarter_turns(turned) == q);
        pipeline::PageGeometry geo;
        const io::Image back = pipeline::normalise_page(turned, {}, &geo);
        CHECK(geo.rotation == 90 * q);
        CHECK(back.pixels == page.pixels);
    }
}

TEST_CASE("page normalisation: a blurred code listing is upright, and its side turns are found") {
    // with the columns' sharpness measured pixel by pixel the listing's glyph columns won and the
    // upright page was turned
    const auto page = scanned_listing();
    if (!page) {
        MESSAGE("skipped: DejaVu Sans Mono not found (fonts-dejavu-core)");
        return;
    }
    CHECK_FALSE(pipeline::is_sideways(*page));
    CHECK(pipeline::is_sideways(io::rotate(*page, 90)));
    CHECK(pipeline::is_sideways(io::rotate(*page, 270)));
    pipeline::PageGeometry geo;
    pipeline::normalise_page(*page, {}, &geo);
    CHECK(geo.rotation == 0);
}

TEST_CASE("page normalisation: a clean rendered page is left exactly as it is") {
    const io::Image page = sample_page();
    pipeline::PageGeometry geo;
    const io::Image out = pipeline::normalise_page(page, {}, &geo);
    CHECK(out.pixels == page.pixels);
    CHECK(geo.rotation == 0);
    CHECK(geo.skew == 0);
    CHECK_FALSE(geo.flattened);
}

TEST_CASE("page normalisation: grey paper, uneven light and grey ink become white and black") {
    const io::Image page = sample_page();
    io::Image scan = page;
    std::mt19937_64 rng(7);
    std::normal_distribution<double> noise(0, 8);
    for (int y = 0; y < scan.height; ++y)
        for (int x = 0; x < scan.width; ++x) {
            // paper 235 darkening by 30 towards the right, ink 55 (on the clean page: 0 ink, 255 paper)
            const double paper = 235 - 30.0 * x / scan.width, ink = 55;
            const double v = ink + (paper - ink) * page.at(x, y) / 255.0 + noise(rng);
            scan.at(x, y) = std::uint8_t(std::clamp(std::lround(v), 0L, 255L));
        }
    pipeline::PageGeometry geo;
    const io::Image out = pipeline::normalise_page(scan, {.orient = true, .deskew = false}, &geo);
    CHECK(geo.flattened);
    // paper pixels (white on the clean page, away from ink) are white again, ink pixels black
    std::size_t paper = 0, paper_white = 0, ink = 0, ink_dark = 0;
    for (int y = 2; y < page.height - 2; ++y)
        for (int x = 2; x < page.width - 2; ++x) {
            bool near_ink = false;
            for (int k = -2; k <= 2 && !near_ink; ++k) near_ink = page.at(x + k, y) < 255 || page.at(x, y + k) < 255;
            if (!near_ink) ++paper, paper_white += out.at(x, y) >= 230;
            if (page.at(x, y) == 0) ++ink, ink_dark += out.at(x, y) <= 60;
        }
    CHECK(double(paper_white) / double(paper) > 0.98);
    CHECK(double(ink_dark) / double(ink) > 0.95);
    // the unprocessed scan: the right edge's paper falls below what the segmenter calls white
    std::size_t scan_white = 0;
    for (int y = 0; y < page.height; ++y) scan_white += scan.at(page.width - 5, y) >= 230;
    CHECK(scan_white < std::size_t(page.height) / 2);
}

}  // TEST_SUITE

TEST_SUITE("pipeline") {

TEST_CASE("page normalisation: its rounding, floor and pixel counts are the library's") {
    // round_to_byte and floor_int replace std::lround and std::floor calls on every pixel
    std::vector<double> values = {-300.0, -1.5, -0.5, -0.49, 0.0, 0.49999999999999994, 0.5, 1.5, 2.5, 127.49999999999999,
                                  127.5, 254.5, 254.50000000000003, 255.0, 255.49, 255.5, 1e6};
    for (int k = 0; k < 256; ++k) values.push_back(std::nextafter(k + 0.5, 0.0)), values.push_back(k + 0.5);
    std::mt19937_64 rng(3);
    std::uniform_real_distribution<double> any(-20.0, 280.0);
    for (int i = 0; i < 20000; ++i) values.push_back(any(rng));
    for (double v : values) {
        CAPTURE(v);
        CHECK(int(pipeline::detail::round_to_byte(v)) == int(std::clamp(std::lround(v), 0L, 255L)));
        CHECK(double(pipeline::detail::floor_int(v)) == std::floor(v));
    }
    // counted in pieces on the pool's threads: an image of more than one piece, with a tail
    io::Image img(1001, 523, 1);
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& p : img.pixels) p = std::uint8_t(byte(rng) < 200 ? 250 : byte(rng));
    std::array<std::uint64_t, 256> want{};
    for (std::uint8_t p : img.pixels) ++want[p];
    CHECK(pipeline::detail::histogram(img) == want);
}

TEST_CASE("page normalisation: a scanned crop's own levels take its 2nd and 98th percentiles to black and white") {
    // a line crop 100 x 20: grey paper 210, a 10-pixel band of grey strokes 90 (a tenth of the
    // pixels), one dark speck and one bright one outside the percentiles
    io::Image crop(100, 20, 1, 210);
    for (int y = 5; y < 7; ++y)
        for (int x = 0; x < 100; ++x) crop.at(x, y) = 90;
    crop.at(0, 0) = 0, crop.at(1, 0) = 255;
    const io::Image out = pipeline::stretch_crop_levels(crop);
    CHECK(out.at(10, 5) == 0);     // the strokes (2nd percentile) black
    CHECK(out.at(10, 10) == 255);  // the paper (98th percentile) white
    CHECK(out.at(0, 0) == 0);      // clamped
    CHECK(out.at(1, 0) == 255);
    io::Image blank(50, 20, 1, 200);  // no contrast: left as it is
    blank.at(3, 3) = 190;
    CHECK(pipeline::stretch_crop_levels(blank).pixels == blank.pixels);
    CHECK_THROWS(pipeline::stretch_crop_levels(io::Image(4, 4, 3, 0)));
}

TEST_CASE("reading confidence: the sampler's log-probabilities and their mean") {
    GenerationOptions opt;
    opt.logprobs = true;
    opt.max_new_tokens = 4;
    const std::int32_t prompt[1] = {0};
    Sampler s(opt, prompt, 3);
    std::vector<float> logits = {1.0f, 3.0f, 2.0f};
    const std::int32_t t = s.next(logits);
    CHECK(t == 1);
    const double want = 3.0 - std::log(std::exp(1.0) + std::exp(3.0) + std::exp(2.0));
    REQUIRE(s.logprobs().size() == 1);
    CHECK(std::abs(s.logprobs()[0] - want) < 1e-6);
    const float lp[3] = {-0.5f, -1.5f, -0.25f};
    CHECK(pipeline::mean_logprob(lp, 2, false) == doctest::Approx((-0.5 - 1.5 - 0.25) / 3));  // end token counted
    CHECK(pipeline::mean_logprob(lp, 2, true) == doctest::Approx(-1.0));                     // cut: no end token
    CHECK(std::isinf(pipeline::mean_logprob({}, 0, true)));
}

}  // TEST_SUITE
