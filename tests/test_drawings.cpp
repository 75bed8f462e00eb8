// Tests of drawings on a page (pipeline/drawings.hpp) as the segmenter sees them: a plot whose
// curves cross a ruled grid, a diagram without rules, a dashed curve, a long slanted arrow, and
// the shapes of text that must stay text (a matrix's brackets, a long flat arrow, a ruled table,
// a frame). Pages are drawn here.
#include "test_util.hpp"

#include <docvlm/pipeline/layout.hpp>

#include <cmath>
#include <numbers>
#include <string>

using namespace docvlm;

namespace {

// "words" are dark boxes 14 px tall (the page's line height), as in test_segmenter.cpp
struct Sheet {
    io::Image img{1000, 1200, 1, 255};
    void box(int x0, int y0, int x1, int y1, std::uint8_t v = 20) {
        for (int y = y0; y < y1; ++y)
            for (int x = x0; x < x1; ++x) img.at(x, y) = v;
    }
    void line(int x0, int x1, int y) {  // words of 40 px, gaps of 8 px
        for (int x = x0; x + 40 <= x1; x += 48) box(x, y, x + 40, y + 14);
    }
    void dot(double x, double y, int r = 1) { box(int(x) - r, int(y) - r, int(x) + r + 1, int(y) + r + 1); }
    void paragraph(int y, int lines) {  // full lines 24 px apart from y down
        for (int i = 0; i < lines; ++i) line(100, 900, y + 24 * i);
    }
};

int lines_of(const pipeline::PageLayout& lay) {
    int n = 0;
    for (const auto& r : lay.regions) n += int(r.lines.size());
    return n;
}

int count(const pipeline::PageLayout& lay, const std::string& type) {
    int n = 0;
    for (const auto& r : lay.regions) n += r.block.type == type;
    return n;
}

// the page holds exactly one image and `lines` lines of text
void check_one_image(const Sheet& p, int lines) {
    const auto lay = pipeline::segment_page(p.img);
    REQUIRE(count(lay, "image") == 1);
    CHECK(lines_of(lay) == lines);
}

}  // namespace

TEST_SUITE("embedded") {

TEST_CASE("drawings: a plot whose curves cross its ruled grid is one image; the text beside it stays text") {
    Sheet p;
    p.paragraph(60, 3);
    // the plot: a 6 × 8 grid of 1 px rules over [100, 460) × [200, 680), a curve across it
    const int x0 = 100, x1 = 460, y0 = 200, y1 = 680;
    for (int k = 0; k <= 6; ++k) p.box(x0 + 60 * k, y0, x0 + 60 * k + 1, y1, 120);
    for (int k = 0; k <= 8; ++k) p.box(x0, y0 + 60 * k, x1 + 1, y0 + 60 * k + 1, 120);
    for (double t = 0; t <= 1; t += 0.0005) p.dot(x0 + 10 + 340 * t, y1 - 20 - 440 * t * t);
    for (double t = 0; t <= 1; t += 0.0005) p.dot(x0 + 10 + 340 * t, y0 + 240 + 200 * std::sin(6 * t));
    for (int k = 0; k <= 6; ++k) p.box(x0 + 60 * k - 6, y1 + 6, x0 + 60 * k + 6, y1 + 14);  // tick labels
    // a code listing beside it: short, ragged lines
    for (int i = 0; i < 18; ++i) p.line(520, 620 + 15 * (i % 7) * 10 % 330, 200 + 26 * i);
    p.paragraph(720, 12);
    const auto lay = pipeline::segment_page(p.img);
    REQUIRE(count(lay, "image") == 1);
    for (const auto& r : lay.regions) {
        if (r.block.type == "image") {  // the grid with its curves, whole
            CHECK(r.block.x0 <= x0 + 1);
            CHECK(r.block.x1 >= x1);
            CHECK(r.block.y0 <= y0 + 1);
            CHECK(r.block.y1 >= y1);
            CHECK(r.block.x1 < 520);  // the listing is not in it
            CHECK(r.block.y1 < 720);  // nor the paragraph below
            continue;
        }
        CHECK(r.block.type != "table");
        for (const auto& l : r.lines) CHECK((l.x0 >= 500 || l.y1 <= y0 || l.y0 >= y1));  // no line inside the plot
    }
    int listing = 0;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines) listing += l.x0 >= 500 && l.y0 >= 190 && l.y1 <= 200 + 26 * 18;
    CHECK(listing == 18);
}

TEST_CASE("drawings: a diagram without rules (a ring and a diagonal arrow) is an image") {
    Sheet p;
    p.paragraph(60, 3);
    const double cx = 500, cy = 400, R = 150;
    for (double a = 0; a < 2 * std::numbers::pi; a += 0.002) p.dot(cx + R * std::cos(a), cy + R * std::sin(a));
    for (double t = 0; t <= 1; t += 0.002) p.dot(300 + 150 * t, 250 + 120 * t);
    p.paragraph(620, 3);
    check_one_image(p, 6);
}

TEST_CASE("drawings: a curve broken into dashes (faint ink a threshold broke) is one image") {
    Sheet p;
    p.paragraph(20, 8);
    // dashes of 50 px along a rising curve, 10 px apart: each under 3 L across, none touching
    for (double t = 0; t <= 1; t += 0.0005) {
        const double x = 250 + 420 * t, y = 580 - 340 * t + 60 * std::sin(5 * t);
        if (std::fmod(std::hypot(420.0, 340.0) * t, 60.0) < 50.0) p.dot(x, y);
    }
    p.paragraph(640, 8);
    check_one_image(p, 16);
}

TEST_CASE("drawings: a long slanted arrow, under 4 L tall, is an image") {
    Sheet p;
    p.paragraph(20, 8);
    for (double t = 0; t <= 1; t += 0.0005) p.dot(150 + 650 * t, 300 - 45 * t, 0);  // 1 px thin, 650 × 45 px
    for (int k = 0; k < 8; ++k) p.box(800 - k, 255 - k, 801 - k, 256 + k);          // its head
    p.paragraph(360, 8);
    check_one_image(p, 16);
}

TEST_CASE("drawings: brackets, a long arrow, a ruled table and a frame are not drawings") {
    Sheet p;
    // a 3 × 3 matrix between brackets 5 lines tall (thin strokes with short serifs)
    for (const int x : {200, 420}) {
        p.box(x, 100, x + 2, 100 + 5 * 14 + 10);
        const int serif = x == 200 ? x : x - 8;
        p.box(serif, 100, serif + 10, 102);
        p.box(serif, 100 + 5 * 14 + 8, serif + 10, 100 + 5 * 14 + 10);
    }
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) p.box(230 + 64 * c, 108 + 24 * r, 270 + 64 * c, 122 + 24 * r);
    // a long arrow (2 px) with a head, then a word
    p.box(500, 140, 700, 142);
    for (int k = 0; k < 8; ++k) p.box(700 - k, 141 - k, 701 - k, 142 + k);
    p.box(720, 134, 760, 148);
    // a ruled table: 4 columns, 6 rows, 1 px rules, text touching nothing
    for (int k = 0; k <= 4; ++k) p.box(100 + 200 * k, 260, 101 + 200 * k, 260 + 6 * 30 + 1);
    for (int k = 0; k <= 6; ++k) p.box(100, 260 + 30 * k, 901, 261 + 30 * k);
    for (int r = 0; r < 6; ++r)
        for (int c = 0; c < 4; ++c) p.box(120 + 200 * c, 268 + 30 * r, 200 + 200 * c, 282 + 30 * r);
    // a ruled table whose short rules (under one cell, too short to be erased) join its borders
    for (const int x : {100, 104, 400, 600, 604}) p.box(x, 760, x + 1, 760 + 5 * 30 + 1);
    for (const int y : {760, 760 + 5 * 30}) p.box(100, y, 605, y + 1);
    for (int r = 1; r < 5; ++r) p.box(r % 2 ? 400 : 104, 760 + 30 * r, r % 2 ? 520 : 220, 761 + 30 * r);
    for (int r = 0; r < 5; ++r) p.box(120, 768 + 30 * r, 200, 782 + 30 * r), p.box(420, 768 + 30 * r, 500, 782 + 30 * r);
    // a frame 3 px thick around a paragraph
    p.box(100, 520, 900, 523), p.box(100, 703, 900, 706), p.box(100, 520, 103, 706), p.box(897, 520, 900, 706);
    for (int i = 0; i < 6; ++i) p.line(130, 870, 540 + 26 * i);
    const auto lay = pipeline::segment_page(p.img);
    CHECK(count(lay, "image") == 0);
    CHECK(count(lay, "table") >= 2);
    int in_frame = 0;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines) in_frame += l.y0 > 526 && l.y1 < 700 && l.x1 - l.x0 > 600;
    CHECK(in_frame == 6);
}

}  // TEST_SUITE
