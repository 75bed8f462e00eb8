// Tests of the classical page segmenter (pipeline/layout.hpp: columns, blocks, lines, chunks,
// rules, tables), the grid reader (pipeline/table_grid.hpp) and the embedded parser's text rules
// (looks_like_math, ends_in_loop), on synthetic pages drawn here (one case parses a ruled table with
// the shipped model).
#include "test_util.hpp"

#include <docvlm/pipeline/embedded_parser.hpp>
#include <docvlm/pipeline/layout.hpp>
#include <docvlm/presets/docvlm_small.hpp>

#include <algorithm>
#include <array>
#include <random>
#include <cmath>
#include <string>
#include <vector>

using namespace docvlm;

namespace {

// A synthetic page: "words" are dark boxes 14 px tall on lines 24 px apart.
struct PageDraw {
    io::Image img{1000, 1200, 1, 255};
    void box(int x0, int y0, int x1, int y1) {
        for (int y = y0; y < y1; ++y)
            for (int x = x0; x < x1; ++x) img.at(x, y) = 20;
    }
    // a line of words from x0 to x1 at y (word 40 px, gap 8 px)
    void line(int x0, int x1, int y) {
        for (int x = x0; x + 40 <= x1; x += 48) box(x, y, x + 40, y + 14);
    }
    // marks w px wide every `step` px from x0 (starting before x1), in rows [y0, y1)
    void marks(int x0, int x1, int step, int w, int y0, int y1) {
        for (int x = x0; x < x1; x += step) box(x, y0, x + w, y1);
    }
};

// Horizontal rules the segmenter reports at least min_len long, starting above row y_below.
std::size_t horizontal_rules(const pipeline::PageLayout& lay, int min_len, int y_below = 1 << 30) {
    return std::size_t(std::count_if(lay.rules.begin(), lay.rules.end(), [&](const pipeline::Rule& r) {
        return !r.vertical() && r.x1 - r.x0 >= min_len && r.y0 < y_below;
    }));
}

// Lines of a layout that lie within rows [y0, y1].
int lines_within(const pipeline::PageLayout& lay, int y0, int y1) {
    int n = 0;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines) n += l.y0 >= y0 && l.y1 <= y1;
    return n;
}

}  // namespace

TEST_SUITE("embedded") {

TEST_CASE("segmenter: runs of a row found across blank stretches skipped 8 pixels at a time") {
    // rows of widths around multiples of 8, with runs at every offset, against a pixel-by-pixel scan
    std::mt19937 rng(11);
    for (int w : {1, 7, 8, 9, 15, 16, 17, 40, 63, 64, 65}) {
        for (int t = 0; t < 200; ++t) {
            std::vector<std::uint8_t> row(std::size_t(w), 0);
            const int runs = int(rng() % 4);
            for (int r = 0; r < runs; ++r) {
                const int x = int(rng() % unsigned(w)), e = std::min(w, x + 1 + int(rng() % 5));
                for (int k = x; k < e; ++k) row[std::size_t(k)] = std::uint8_t(1 + rng() % 2);
            }
            for (int value : {1, 2}) {  // runs of one value (blank is off either way)
                std::vector<std::array<int, 2>> got, want;
                pipeline::detail::for_each_run(row.data(), w, [&](std::uint8_t v) { return v == value; },
                                               [&](int x, int e) { got.push_back({x, e}); });
                for (int x = 0; x < w;) {
                    if (row[std::size_t(x)] != value) { ++x; continue; }
                    int e = x;
                    while (e < w && row[std::size_t(e)] == value) ++e;
                    want.push_back({x, e});
                    x = e;
                }
                CHECK(got == want);
            }
            std::vector<std::array<int, 2>> blanks;  // blank pixels on: nothing is skipped
            pipeline::detail::for_each_run(row.data(), w, [](std::uint8_t v) { return v == 0; }, [&](int x, int e) { blanks.push_back({x, e}); });
            int blank = 0;
            for (const auto& b : blanks) blank += b[1] - b[0];
            CHECK(blank == int(std::count(row.begin(), row.end(), std::uint8_t(0))));
        }
    }
}

TEST_CASE("segmenter: two columns come out left column first, lines in order") {
    PageDraw p;
    for (int i = 0; i < 3; ++i) p.line(100, 900, 60 + 24 * i);  // full-width heading block
    for (int i = 0; i < 20; ++i) {
        p.line(100, 480, 200 + 24 * i);  // left column
        p.line(540, 900, 200 + 24 * i);  // right column, lines at the same heights
    }
    const auto lay = pipeline::segment_page(p.img);
    CHECK(lay.line_height == 14);
    REQUIRE(lay.regions.size() == 3);
    CHECK(lay.regions[0].lines.size() == 3);
    CHECK(lay.regions[0].block.x1 > 800);
    CHECK(lay.regions[1].block.x1 < 500);   // left column
    CHECK(lay.regions[2].block.x0 > 500);   // then right column
    CHECK(lay.regions[1].lines.size() == 20);
    CHECK(lay.regions[2].lines.size() == 20);
    for (const auto& r : lay.regions)
        for (std::size_t i = 1; i < r.lines.size(); ++i) CHECK(r.lines[i].y0 > r.lines[i - 1].y0);
}

TEST_CASE("segmenter: a rule between a table's rows crossing its column gap keeps it one table; a rule over two columns does not") {
    // A table under a paragraph: ragged labels on the left, full lines on the right, a 1-pixel rule
    // under the header row across both; the rule is under 1/50 of the rows' height, so the gap's
    // columns count as white and the right side's full lines look like a page column's.
    PageDraw p;
    for (int i = 0; i < 8; ++i) p.line(100, 900, 100 + 24 * i);
    const int label_end[4] = {250, 330, 290, 400};
    for (int i = 0; i < 4; ++i) {
        const int y = 400 + 24 * i + (i > 0 ? 6 : 0);
        p.line(100, label_end[i], y);
        p.line(480, 900, y);
    }
    p.box(100, 420, 900, 421);
    const auto lay = pipeline::segment_page(p.img);
    int table_rows = 0, side_lines = 0;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines)
            if (l.y0 >= 398 && l.y1 <= 500) (l.x0 <= 110 && l.x1 >= 850 ? table_rows : side_lines)++;
    CHECK(table_rows == 4);
    CHECK(side_lines == 0);

    // two columns under a rule 6 px above their first lines (one strip): nothing above the rule
    PageDraw q;
    q.box(100, 194, 900, 195);
    for (int i = 0; i < 20; ++i) {
        q.line(100, 480, 200 + 24 * i);
        q.line(540, 900, 200 + 24 * i);
    }
    const auto cols = pipeline::segment_page(q.img);
    int left = 0, right = 0;
    for (const auto& r : cols.regions) left += r.block.x1 < 500 ? int(r.lines.size()) : 0, right += r.block.x0 > 500 ? int(r.lines.size()) : 0;
    CHECK(left == 20);
    CHECK(right == 20);

    // two columns with a lone rule across both between their lines, halfway down: still columns
    PageDraw c;
    for (int i = 0; i < 20; ++i) {
        c.line(100, 480, 200 + 24 * i);
        c.line(540, 900, 200 + 24 * i);
    }
    c.box(100, 436, 900, 437);
    const auto cols2 = pipeline::segment_page(c.img);
    left = right = 0;
    for (const auto& r : cols2.regions) left += r.block.x1 < 500 ? int(r.lines.size()) : 0, right += r.block.x0 > 500 ? int(r.lines.size()) : 0;
    CHECK(left == 20);
    CHECK(right == 20);
}

TEST_CASE("segmenter: two columns whose lines interleave, a narrow gutter apart, are two columns, not a figure") {
    // Names on the left, each beside its line of code on the right half a line lower: no white
    // row crosses both, so the section is one band over 6 L tall, and its gutter (0.86 L) is
    // narrower than a column gap (a scan's blur makes L taller, the gutter no wider).
    PageDraw p;
    for (int i = 0; i < 10; ++i) p.line(100, 900, 100 + 24 * i);  // body text: sets the unit (14)
    for (int i = 0; i < 8; ++i) {
        p.line(116, 300, 500 + 24 * i);  // names, ending at x = 300
        p.line(312, 800, 512 + 24 * i);  // code, from x = 312
    }
    const auto lay = pipeline::segment_page(p.img);
    int left = 0, right = 0;
    for (const auto& r : lay.regions) {
        CHECK(r.block.type != "image");
        for (const auto& l : r.lines)
            if (l.y0 >= 490) {
                CHECK((l.x1 <= 300 || l.x0 >= 312));
                left += l.x1 <= 300, right += l.x0 >= 312;
            }
    }
    CHECK(left == 8);
    CHECK(right == 8);
}

TEST_CASE("segmenter: cells far apart whose rows only meet are lines of their own; cells of one row stay one line") {
    // A line of code and, to its right, a display formula whose top row follows the code's last
    // (a scan's blur closes the white row between): one band, two cells that share no row. Full
    // lines above and below keep the section one column.
    PageDraw p;
    for (int i = 0; i < 10; ++i) p.line(100, 900, 100 + 24 * i);  // body text: sets the unit (14)
    p.line(100, 900, 476), p.line(100, 900, 566);
    p.line(100, 300, 500);                                     // code: rows 500-513
    for (const int y : {514, 528, 542}) p.line(600, 700, y);  // formula: rows 514-555
    p.line(100, 900, 676), p.line(100, 900, 728);
    p.line(100, 300, 700), p.line(600, 700, 704);              // a row of two cells of one line
    const auto lay = pipeline::segment_page(p.img);
    std::vector<std::array<int, 4>> lines;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines)
            if (l.y0 >= 490 && l.y0 < 560) lines.push_back({l.x0, l.y0, l.x1, l.y1});
    std::sort(lines.begin(), lines.end(), [](const auto& a, const auto& b) { return a[1] < b[1]; });
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == std::array<int, 4>{100, 500, 284, 514});
    CHECK(lines[1] == std::array<int, 4>{600, 514, 688, 556});
    int row = 0;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines)
            if (l.y0 >= 695 && l.y0 < 710) {
                ++row;
                CHECK(l.cells == 2);
            }
    CHECK(row == 1);
    // three cells stepping down, each row meeting the next: three lines
    PageDraw q;
    for (int i = 0; i < 10; ++i) q.line(100, 900, 100 + 24 * i);
    q.line(100, 900, 476), q.line(100, 900, 566);
    q.line(100, 300, 500), q.line(400, 500, 514), q.line(650, 850, 528);
    std::vector<int> tops;
    for (const auto& r : pipeline::segment_page(q.img).regions)
        for (const auto& l : r.lines)
            if (l.y0 >= 490 && l.y0 < 560) tops.push_back(l.y0);
    std::sort(tops.begin(), tops.end());
    CHECK(tops == std::vector<int>{500, 514, 528});
}

TEST_CASE("segmenter: a centred page number under two columns does not merge them") {
    PageDraw p;
    for (int i = 0; i < 30; ++i) {
        p.line(100, 480, 100 + 24 * i);
        p.line(540, 900, 100 + 24 * i);
    }
    p.box(500, 100 + 24 * 30, 516, 100 + 24 * 30 + 14);  // page number in the gutter, one line below
    const auto lay = pipeline::segment_page(p.img);
    REQUIRE(lay.regions.size() >= 2);
    CHECK(lay.regions[0].block.x1 < 520);  // the left column first, on its own
    CHECK(lay.regions[0].lines.size() >= 30);
    bool right_column = false;
    for (const auto& r : lay.regions) right_column = right_column || (r.block.x0 >= 516 && r.lines.size() >= 30);
    CHECK(right_column);
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines) CHECK((l.x1 < 520 || l.x0 > 490));  // no line reads across the gutter
}

TEST_CASE("segmenter: crops fit the recogniser, cut at word gaps; rules are dropped; a grid is a table") {
    PageDraw p;
    p.line(50, 950, 100);                       // a long line: 900 px at 14 px height → several crops
    p.box(50, 140, 950, 142);                   // a rule
    for (int r = 0; r < 5; ++r)                 // a table: 3 columns far apart
        for (int c = 0; c < 3; ++c) p.box(100 + 300 * c, 180 + 24 * r, 180 + 300 * c, 194 + 24 * r);
    pipeline::LayoutOptions opt;
    const auto lay = pipeline::segment_page(p.img, opt);
    REQUIRE(lay.regions.size() >= 2);
    const auto& first = lay.regions[0];
    REQUIRE(first.lines.size() == 1);
    const auto& chunks = first.lines[0].chunks;
    CHECK(chunks.size() >= 2);
    for (const auto& c : chunks) {
        const double scaled = double(c.x1 - c.x0 + 2) * opt.chunk_height / double(c.y1 - c.y0 + 2);
        CHECK(scaled <= opt.max_chunk_width);
        CHECK((c.x0 - 50) % 48 == 0);  // every crop starts at a word
    }
    const auto& table = lay.regions.back();
    CHECK(table.block.type == "table");
    CHECK(table.lines.size() == 5);
    CHECK(table.columns.size() == 3);
    std::vector<std::vector<std::string>> texts(5, std::vector<std::string>{"a", "b&", "c"});
    const std::string html = pipeline::region_content(table, texts);
    CHECK(html.rfind("<table><tr><td>a</td><td>b&amp;</td><td>c</td></tr>", 0) == 0);
    CHECK(pipeline::segment_page(io::Image(50, 50, 1, 255)).regions.empty());
}

TEST_CASE("grid_table_html: rows from overlapping lines, columns at gaps, header spans, wrapped cells joined") {
    // columns at x 100-180, 300-380, 500-600; lines 14 px high, rows 16 px apart; the third
    // column of the third row wraps onto a second line 3 px below (nothing in the first column)
    auto line = [](int y, std::vector<std::array<int, 2>> xs) {
        pipeline::TextLine l{xs.front()[0], y, xs.back()[1], y + 14, {}, int(xs.size())};
        for (std::size_t i = 0; i < xs.size(); ++i) l.chunks.push_back({xs[i][0], y, xs[i][1], y + 14, int(i)});
        return l;
    };
    const std::vector<pipeline::TextLine> lines = {
        line(100, {{100, 380}, {500, 560}}),  // "Item" over the first two columns
        line(130, {{100, 160}, {300, 350}, {500, 590}}),
        line(160, {{100, 170}, {300, 370}, {500, 600}}),
        line(177, {{500, 580}}),
        line(207, {{110, 150}, {300, 330}, {540, 600}}),
    };
    const std::vector<std::vector<std::string>> texts = {
        {"Item", "Price"}, {"a0", "b0", "c0"}, {"a1", "b1", "first half"}, {"second <half>"}, {"a2", "b2", "c2"}};
    CHECK(pipeline::grid_table_html(lines, texts) ==
          "<table><tr><td colspan=\"2\">Item</td><td>Price</td></tr><tr><td>a0</td><td>b0</td><td>c0</td></tr>"
          "<tr><td>a1</td><td>b1</td><td>first half second &lt;half&gt;</td></tr><tr><td>a2</td><td>b2</td><td>c2</td></tr></table>");
    // evenly spaced lines are rows of their own, even with the first column empty
    std::vector<pipeline::TextLine> even = lines;
    even[3] = line(190, {{500, 580}});
    even[4] = line(220, {{110, 150}, {300, 330}, {540, 600}});
    CHECK(pipeline::grid_table_html(even, texts).find("<tr><td></td><td></td><td>second &lt;half&gt;</td></tr>") != std::string::npos);
    CHECK(pipeline::grid_table_html({}, {}).empty());
    CHECK_THROWS_AS(pipeline::grid_table_html(lines, {{"x"}}), Error);
    // a cell centred on its row: its three lines 3 px apart, the row's other cells beside the middle one
    const std::vector<pipeline::TextLine> centred = {
        line(100, {{100, 160}, {300, 350}, {500, 590}}),
        line(130, {{300, 370}}),
        line(147, {{100, 170}, {300, 370}, {500, 600}}),
        line(164, {{300, 360}}),
        line(194, {{110, 150}, {300, 330}, {540, 600}}),
    };
    const std::vector<std::vector<std::string>> ct = {{"a0", "b0", "c0"}, {"top"}, {"a1", "middle", "c1"}, {"bottom"}, {"a2", "b2", "c2"}};
    CHECK(pipeline::grid_table_html(centred, ct) ==
          "<table><tr><td>a0</td><td>b0</td><td>c0</td></tr><tr><td>a1</td><td>top middle bottom</td><td>c1</td></tr>"
          "<tr><td>a2</td><td>b2</td><td>c2</td></tr></table>");

    // rules: a vertical rule cuts where the white gap alone (3 px) is too narrow; horizontal rules
    // under most lines make the lines between two rules one row, whatever the first column holds
    const std::vector<pipeline::TextLine> ruled = {
        line(100, {{100, 200}, {203, 280}}), line(117, {{100, 180}}),  // row A: two lines
        line(140, {{100, 200}, {203, 280}}), line(163, {{100, 200}, {203, 280}}), line(186, {{100, 200}, {203, 280}}),
    };
    const std::vector<std::vector<std::string>> rt = {{"a", "b"}, {"a2"}, {"c", "d"}, {"e", "f"}, {"g", "h"}};
    const std::vector<pipeline::Rule> rules = {{201, 95, 202, 205}, {95, 135, 285, 136}, {95, 158, 285, 159}, {95, 181, 285, 182}};
    CHECK(pipeline::grid_table_html(ruled, rt, rules) ==
          "<table><tr><td>a a2</td><td>b</td></tr><tr><td>c</td><td>d</td></tr><tr><td>e</td><td>f</td></tr>"
          "<tr><td>g</td><td>h</td></tr></table>");
    CHECK(pipeline::grid_table_html(ruled, rt).find("<td>a2</td>") != std::string::npos);  // without rules: one column

    // a long first cell cut in two pieces (same cell index, 12 px apart) to fit the recogniser: one
    // item, so the column cut goes through the white beside it (392-400), not between the pieces
    std::vector<pipeline::TextLine> pieces;
    std::vector<std::vector<std::string>> pt;
    for (int r = 0; r < 5; ++r) {
        pieces.push_back(line(100 + 20 * r, {{100, 200}, {400, 460}, {600, 660}}));
        pt.push_back({"a" + std::to_string(r), "b" + std::to_string(r), "c" + std::to_string(r)});
    }
    pieces[2].chunks = {{100, 140, 250, 154, 0}, {262, 140, 392, 154, 0}, {400, 140, 460, 154, 1}, {600, 140, 660, 154, 2}};
    pt[2] = {"a long cell", "cut in two", "b2", "c2"};
    const std::string want = "<tr><td>a long cell cut in two</td><td>b2</td><td>c2</td></tr>";
    std::string html = pipeline::grid_table_html(pieces, pt);
    CHECK(html.find(want) != std::string::npos);
    CHECK(html.find("colspan") == std::string::npos);
    // two cells 3 px apart over that white run: the cut goes through its widest uncovered part
    // (380-400), not the first (250-253)
    pieces[2].chunks = {{100, 140, 250, 154, 0}, {253, 140, 380, 154, 1}, {400, 140, 460, 154, 2}, {600, 140, 660, 154, 3}};
    html = pipeline::grid_table_html(pieces, pt);
    CHECK(html.find(want) != std::string::npos);
    CHECK(html.find("colspan") == std::string::npos);

    // ruled columns (rules at x 150 and 200): a white gap inside one ruled cell of one row
    // ("t" and "/ms") is no column; a gap that parts two rows' text between the same rules is
    std::vector<pipeline::TextLine> grid = {line(100, {{100, 140}, {210, 260}}), line(130, {{100, 140}, {155, 161}, {173, 197}, {210, 260}})};
    const std::vector<pipeline::Rule> vr = {{149, 95, 151, 150}, {199, 95, 201, 150}};
    CHECK(pipeline::grid_table_html(grid, {{"a", "c"}, {"b", "t", "/ms", "d"}}, vr) ==
          "<table><tr><td>a</td><td></td><td>c</td></tr><tr><td>b</td><td>t /ms</td><td>d</td></tr></table>");
    // a row label centred beside two rows (a row group) spans them; a row of its own a pitch from
    // each neighbour does not
    const std::vector<std::vector<std::string>> gt = {{"h0", "h1", "h2"}, {"a1", "a2"}, {"g"}, {"b1", "b2"}, {"c0", "c1", "c2"}};
    auto rows_at = [&](int label_y, int after) {
        return std::vector<pipeline::TextLine>{line(100, {{100, 140}, {300, 340}, {500, 540}}), line(130, {{300, 340}, {500, 540}}),
                                               line(label_y, {{100, 140}}), line(after, {{300, 340}, {500, 540}}),
                                               line(after + 30, {{100, 140}, {300, 340}, {500, 540}})};
    };
    CHECK(pipeline::grid_table_html(rows_at(145, 160), gt) ==
          "<table><tr><td>h0</td><td>h1</td><td>h2</td></tr><tr><td rowspan=\"2\">g</td><td>a1</td><td>a2</td></tr>"
          "<tr><td>b1</td><td>b2</td></tr><tr><td>c0</td><td>c1</td><td>c2</td></tr></table>");
    CHECK(pipeline::grid_table_html(rows_at(160, 190), gt) ==
          "<table><tr><td>h0</td><td>h1</td><td>h2</td></tr><tr><td></td><td>a1</td><td>a2</td></tr><tr><td>g</td><td></td><td></td></tr>"
          "<tr><td></td><td>b1</td><td>b2</td></tr><tr><td>c0</td><td>c1</td><td>c2</td></tr></table>");

    // two labels in a row, each centred between its neighbours: the second would span a row the
    // first already spans, so it stays a row of its own (one rowspan, no overlapping cells)
    std::vector<pipeline::TextLine> two = {line(100, {{100, 140}, {300, 340}, {500, 540}}), line(130, {{300, 340}, {500, 540}}),
                                           line(145, {{100, 140}}), line(160, {{300, 340}, {500, 540}}), line(175, {{100, 140}}),
                                           line(190, {{300, 340}, {500, 540}})};
    std::vector<std::vector<std::string>> tt = {{"h0", "h1", "h2"}, {"a1", "a2"}, {"L1"}, {"b1", "b2"}, {"L2"}, {"c1", "c2"}};
    for (int r = 0; r < 5; ++r) {
        two.push_back(line(220 + 30 * r, {{100, 140}, {300, 340}, {500, 540}}));
        tt.push_back({"x", "y", "z"});
    }
    const std::string th = pipeline::grid_table_html(two, tt);
    CHECK(th.find("<td rowspan=\"2\">L1</td>") != std::string::npos);
    CHECK(th.find("<td>L2</td>") != std::string::npos);
    CHECK(th.find("rowspan") == th.rfind("rowspan"));

    grid[0] = line(100, {{100, 140}, {155, 161}, {173, 197}, {210, 260}});
    CHECK(pipeline::grid_table_html(grid, {{"a", "x", "y", "c"}, {"b", "t", "/ms", "d"}}, vr) ==
          "<table><tr><td>a</td><td>x</td><td>y</td><td>c</td></tr><tr><td>b</td><td>t</td><td>/ms</td><td>d</td></tr></table>");
}

TEST_CASE("segmenter: horizontal rules touching a grid's rows are erased and reported; a lone rule stays") {
    PageDraw p;
    for (int r = 0; r < 8; ++r) {
        p.line(110, 400, 100 + 15 * r);  // rows of text 14 px high, each between two rules it touches
        p.box(100, 99 + 15 * r, 420, 100 + 15 * r);
    }
    p.box(100, 99 + 15 * 8, 420, 100 + 15 * 8);
    pipeline::LayoutOptions opt;
    opt.erase_horizontal_rules = true;
    const auto lay = pipeline::segment_page(p.img, opt);
    std::size_t lines = 0;
    for (const auto& r : lay.regions) lines += r.lines.size();
    CHECK(lines == 8);
    CHECK(horizontal_rules(lay, 300) == 9);
    std::size_t by_default = 0;  // by default too: each rule has a twin of the same extent
    for (const auto& r : pipeline::segment_page(p.img).regions) by_default += r.lines.size();
    CHECK(by_default == 8);
    // one long rule touching the lines above and below (a fraction bar) joins them by default,
    // and goes on request
    PageDraw f;
    f.line(110, 400, 100);
    f.box(100, 114, 420, 116);
    f.line(110, 400, 116);
    std::size_t joined = 0, cut = 0;
    for (const auto& r : pipeline::segment_page(f.img).regions) joined += r.lines.size();
    for (const auto& r : pipeline::segment_page(f.img, opt).regions) cut += r.lines.size();
    CHECK(joined == 1);
    CHECK(cut == 2);
}

TEST_CASE("segmenter: a scanned rule's broken fringe rows go with the rule, text touching it stays") {
    // Two full-width rules (a title page's, twins) one pixel thick, each with a fringe row above
    // and below inked in runs of 3 pixels out of 5 — what blur and a threshold leave of a scanned
    // rule: too broken to be rule candidates themselves, it stayed behind as a thin band that the
    // recogniser read as invented text.
    PageDraw p;
    for (const int y : {300, 600}) {
        p.box(100, y, 900, y + 1);
        for (int x = 100; x + 3 <= 900; x += 5) p.box(x, y - 1, x + 3, y), p.box(x + 1, y + 1, x + 4, y + 2);
    }
    for (int i = 0; i < 10; ++i) p.line(100, 900, 340 + 24 * i);  // text between the rules
    p.box(500, 586, 504, 599);  // a stroke that ends on the lower rule's fringe (a descender)
    const auto lay = pipeline::segment_page(p.img);
    std::size_t lines = 0, near_rules = 0;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines) {
            ++lines;
            near_rules += l.y1 >= 296 && l.y0 <= 304;
            CHECK(l.y1 - l.y0 >= 7);  // no band thinner than half a line survives
        }
    CHECK(lines == 11);  // ten text lines and the stroke
    CHECK(near_rules == 0);
    CHECK(horizontal_rules(lay, 790) == 2);
}

TEST_CASE("segmenter: one-pixel remnants of a rule along a line's top are neither cells nor pieces to read") {
    // Two cells of words far apart; along the line's top row, hairline pieces in the gaps between
    // them and after them (what erasing a scanned rule the row touches leaves): each used to come
    // out as a crop one pixel high, which the recogniser filled with invented text.
    PageDraw p;
    for (int i = 0; i < 6; ++i) p.line(100, 900, 100 + 24 * i);  // text above: sets the unit
    p.line(100, 300, 400);
    p.line(500, 700, 400);
    for (const int x : {320, 400, 720, 800}) p.box(x, 400, x + 30, 401);
    const auto lay = pipeline::segment_page(p.img);
    const pipeline::TextLine* row = nullptr;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines)
            if (l.y0 <= 400 && l.y1 > 400) row = &l;
    REQUIRE(row != nullptr);
    CHECK(row->cells == 2);
    for (const auto& c : row->chunks) CHECK(c.y1 - c.y0 >= 14);
    REQUIRE(!row->chunks.empty());
    CHECK(row->chunks.front().x0 == 100);
    CHECK(row->chunks.back().x1 <= 700);
}

TEST_CASE("segmenter: a blurred rule's remains between a footer's words (3 px tall) are no piece to read; a dash is") {
    PageDraw p;
    for (int i = 0; i < 6; ++i) p.line(100, 900, 100 + 24 * i);  // text above: sets the unit
    p.line(100, 200, 400);                                       // footer: words at both ends
    p.line(760, 900, 400);
    p.box(240, 400, 700, 403);                                   // a rule's remains along its top
    p.line(100, 200, 440);                                       // a line with a dash between words
    p.box(260, 446, 280, 449);
    p.line(330, 430, 440);
    const auto lay = pipeline::segment_page(p.img);
    int footer = 0, dash = 0;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines)
            for (const auto& c : l.chunks) {
                if (l.y0 <= 400 && l.y1 > 400) {
                    ++footer;
                    CHECK((c.x1 <= 200 || c.x0 >= 760));
                }
                dash += l.y0 <= 446 && l.y1 > 446 && c.x0 <= 260 && c.x1 >= 280;
            }
    CHECK(footer >= 2);
    CHECK(dash == 1);
}

TEST_CASE("segmenter: what a tilted header rule leaves once erased joins no line; the header keeps its two cells") {
    // A header (title left, page number right) above a rule that steps down across the page, as
    // a scan's last fraction of a degree of skew leaves it; a footer rule of the same extent makes
    // them twins, so both are erased. Pieces of the rule's rows too short to be rule candidates
    // stay behind inside its box; merged into the header above, one between its cells was a
    // piece of its own that the recogniser read as invented text, and the header's crop took in
    // the rule.
    PageDraw p;
    for (int i = 0; i < 12; ++i) p.line(100, 900, 200 + 24 * i);  // body text: sets the unit
    p.line(100, 300, 112);                                        // header title
    p.box(860, 112, 880, 126);                                    // page number
    p.box(100, 130, 400, 131), p.box(100, 131, 900, 132), p.box(600, 132, 900, 133);  // the rule, stepping down
    p.box(420, 130, 440, 131), p.box(425, 132, 445, 133);       // pieces of its top and bottom rows
    p.box(100, 1100, 900, 1102);                                  // the footer rule
    const auto lay = pipeline::segment_page(p.img);
    const pipeline::TextLine* header = nullptr;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines) {
            CHECK((l.y1 <= 127 || l.y0 >= 133));  // no line reaches into the rule's rows
            if (l.y0 <= 112 && l.y1 > 112) header = &l;
        }
    REQUIRE(header != nullptr);
    CHECK(header->cells == 2);
    for (const auto& c : header->chunks) CHECK((c.x1 <= 300 || c.x0 >= 860));
    CHECK(horizontal_rules(lay, 790) == 2);
}

TEST_CASE("segmenter: a rule cut by a column left standing is one rule, twin of its like, and erased") {
    // A box's top rule with one pixel column missing (a scan's broken row; a stroke crossing it
    // keeps a column too): its two pieces had no twin of their extent, so the rule stayed and
    // joined the text line it touches.
    PageDraw p;
    for (int i = 0; i < 12; ++i) p.line(100, 900, 300 + 24 * i);  // body text: sets the unit
    p.box(100, 130, 500, 131), p.box(501, 130, 900, 131);         // top rule, cut at x = 500
    p.line(110, 600, 131);                                        // the box's first line, touching it
    p.box(100, 160, 900, 161);                                    // bottom rule: the twin
    const auto lay = pipeline::segment_page(p.img);
    int first = 0;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines)
            if (l.y0 <= 140 && l.y1 > 140) {
                ++first;
                CHECK(l.y0 == 131);  // the text alone, not the rule
            }
    CHECK(first == 1);
    CHECK(horizontal_rules(lay, 790, 170) == 2);
}

TEST_CASE("segmenter: specks of a faint frame edge beside lines are no cells; a lone period or a stem is") {
    // A listing's frame edge printed grey: thresholded, each line's rows keep a pixel of it here
    // and there, one pixel wide. Read as a cell, each was a "1", "l" or "!" after the line.
    PageDraw p;
    for (int i = 0; i < 10; ++i) {
        const int y = 100 + 24 * i;
        p.line(100, 700, y);
        if (i < 8)
            for (const int dy : {1, 5, 9}) p.box(900, y + dy, 901, y + dy + 1);  // 3 of 9 rows inked
    }
    p.box(900, 100 + 24 * 8 + 11, 902, 100 + 24 * 8 + 14);  // a period alone, far right
    p.box(900, 100 + 24 * 9, 902, 100 + 24 * 9 + 14);       // a stem ("l", "|") alone
    const auto lay = pipeline::segment_page(p.img);
    int lines = 0;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines) {
            const int i = (l.y0 - 100 + 12) / 24;
            ++lines;
            CHECK(l.cells == (i < 8 ? 1 : 2));
            if (i < 8)
                for (const auto& c : l.chunks) CHECK(c.x1 <= 700);
        }
    CHECK(lines == 10);
}

TEST_CASE("segmenter: a scanned rule broken into dashes, away from any line, is no line; a row of dots by a line joins it") {
    // 3 px tall dashes over 400 px (under 9 columns in 10 inked: no rule) a line height below the
    // text: a sliver that the recogniser would scale up eightfold and fill with invented text
    PageDraw p;
    for (int i = 0; i < 6; ++i) p.line(100, 900, 100 + 24 * i);
    for (int x = 300; x < 700; x += 40) p.box(x, 262, x + 30, 265);
    // 3 px dots 2 px under a line (the leader of a table of contents): merged into the line
    p.line(100, 300, 320);
    for (int x = 310; x < 700; x += 8) p.box(x, 336, x + 3, 339);
    const auto lay = pipeline::segment_page(p.img);
    int lines = 0;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines) {
            ++lines;
            CHECK(l.y1 - l.y0 >= 14);
            if (l.y0 == 320) CHECK(l.x1 >= 690);  // the dots went with their line
        }
    CHECK(lines == 7);
}

TEST_CASE("segmenter: two lines joined by a pixel or a superscript are cut apart; bracketed rows stay one band") {
    PageDraw p;
    for (int i = 0; i < 8; ++i) p.line(100, 900, 100 + 24 * i);  // unit: lines 14 px high, 24 apart
    // two lines 2 px apart, joined by a stroke one pixel wide (a scan's descender on an ascender)
    p.line(100, 900, 400);
    p.line(100, 900, 416);
    p.box(300, 414, 301, 416);
    // two long lines 4 px apart, joined by a superscript 8 px wide in a word gap: 8 px of ink
    // cross the gap, against ~660 px in a row of text
    p.line(100, 900, 460);
    p.line(100, 900, 478);
    p.box(140, 470, 148, 482);
    // three rows of three entries 10 px wide between two tall brackets 3 px thick (a matrix):
    // every row between the entries still carries 6 px of bracket ink, a fifth of an entry row's
    for (int r = 0; r < 3; ++r)
        for (int x : {220, 380, 540}) p.box(x, 600 + 16 * r, x + 10, 614 + 16 * r);
    p.box(190, 598, 193, 648);
    p.box(607, 598, 610, 648);
    const auto lay = pipeline::segment_page(p.img);
    int joined_rows = 0, matrix_bands = 0, cut_lines = 0, superscript_lines = 0;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines) {
            if (l.y0 >= 398 && l.y1 <= 432) ++cut_lines, joined_rows += l.y1 - l.y0 > 20;
            if (l.y0 >= 458 && l.y1 <= 494) ++superscript_lines, joined_rows += l.y1 - l.y0 > 20;
            if (l.y0 >= 590 && l.y1 <= 660) ++matrix_bands;
        }
    CHECK(cut_lines == 2);
    CHECK(superscript_lines == 2);
    CHECK(joined_rows == 0);
    CHECK(matrix_bands == 1);
}

TEST_CASE("segmenter: a last line of lower-case letters only is a line of its own; accents, close thin rows and dashes join a line") {
    PageDraw p;
    for (int i = 0; i < 8; ++i) p.line(100, 900, 100 + 24 * i);  // unit: lines 14 px high, 24 apart
    // a paragraph's last line "massa." in a face with a small x-height: 6 px tall (under L/2),
    // three words long, 7 px under the line above (normal leading)
    p.line(100, 900, 400);
    p.marks(100, 244, 48, 40, 421, 427);
    // accents: a row 3 px tall, 2 px above a line
    p.line(100, 900, 480);
    p.marks(110, 240, 48, 6, 475, 478);
    // a row as tall as lower-case letters but 3 px under its line (a subscript row): joins it
    p.line(100, 900, 540);
    p.marks(100, 244, 48, 40, 557, 563);
    // a dashed rule of two rows of dashes 6 px apart (a drawing's edge), 7 px under a line: the
    // two rows join into one band first, whose middle row crosses no stems, so it is no line
    p.line(100, 900, 600);
    p.marks(100, 244, 12, 4, 621, 622), p.marks(106, 250, 12, 4, 626, 627);
    const auto lay = pipeline::segment_page(p.img);
    CHECK(lines_within(lay, 398, 430) == 2);  // the last line on its own
    CHECK(lines_within(lay, 470, 497) == 1);  // accents joined
    CHECK(lines_within(lay, 538, 566) == 1);  // subscript row joined
    CHECK(lines_within(lay, 598, 630) == 1);  // dashes joined
}

TEST_CASE("segmenter: a bar of shades under a short heading is no part of its line; a dotted underline is") {
    PageDraw p;
    for (int i = 0; i < 8; ++i) p.line(100, 900, 100 + 24 * i);  // unit: lines 14 px high, 24 apart
    // a running head at the right over a bar 4 px tall across the page, broken where a shade is
    // lighter than the ink (too thick and too broken for a rule)
    p.line(700, 860, 380);
    p.marks(100, 900, 100, 65, 397, 401);
    // a dotted underline (too broken for a rule) no wider than its line
    p.line(100, 240, 440);
    p.marks(100, 228, 4, 2, 457, 459);
    const auto lay = pipeline::segment_page(p.img);
    std::vector<std::array<int, 4>> head, underlined;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines) {
            if (l.y0 >= 370 && l.y1 <= 410) head.push_back({l.x0, l.y0, l.x1, l.y1});
            if (l.y0 >= 430 && l.y1 <= 470) underlined.push_back({l.x0, l.y0, l.x1, l.y1});
        }
    CHECK(head == std::vector<std::array<int, 4>>{{700, 380, 836, 394}});
    CHECK(underlined == std::vector<std::array<int, 4>>{{100, 440, 236, 459}});
}

TEST_CASE("segmenter: light words on a dark bar are chunks read inverted; a block with no light text and bold words are not") {
    PageDraw p;
    for (int i = 0; i < 8; ++i) p.line(100, 900, 100 + 24 * i);  // unit: lines 14 px high, 24 apart
    // a box's title bar: grey fill 24 px tall with two light words, 5 px of fill above and below
    p.box(100, 400, 900, 424);
    for (int x : {120, 168}) {
        for (int y = 405; y < 419; ++y)
            for (int xx = x; xx < x + 40; ++xx) p.img.at(xx, y) = 250;
    }
    // a solid block (dark text on a grey fill is ink on ink) and a dense bold word with no solid
    // rows above and below: read as they are
    p.box(100, 460, 400, 484);
    for (int x = 100; x < 300; x += 3) p.box(x, 520, x + 2, 534);
    const auto lay = pipeline::segment_page(p.img);
    std::vector<std::array<int, 4>> inverse;
    int solid = 0, bold = 0;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines)
            for (const auto& c : l.chunks) {
                if (c.inverse) inverse.push_back({c.x0, c.y0, c.x1, c.y1});
                solid += c.y0 >= 455 && c.y1 <= 490 && !c.inverse;
                bold += c.y0 >= 515 && c.y1 <= 540 && !c.inverse;
            }
    CHECK(inverse == std::vector<std::array<int, 4>>{{120, 405, 208, 419}});
    CHECK(solid > 0);
    CHECK(bold > 0);

    // a table's dark header row crossed by its vertical rules (erased: rows of a ruled table),
    // light words in two cells; and a dark bar whose only light pixels are a scan's 2 px holes
    PageDraw q;
    for (int i = 0; i < 8; ++i) q.line(100, 900, 100 + 24 * i);
    q.box(100, 400, 700, 424);
    for (int x : {130, 430})
        for (int y = 405; y < 419; ++y)
            for (int xx = x; xx < x + 40; ++xx) q.img.at(xx, y) = 250;
    for (int x : {100, 400, 698}) q.box(x, 400, x + 2, 520);  // vertical rules down the table
    for (int r = 0; r < 4; ++r) q.line(130, 300, 430 + 24 * r), q.line(430, 600, 430 + 24 * r);
    q.box(100, 600, 700, 624);
    for (int x = 150; x < 650; x += 60) q.img.at(x, 610) = q.img.at(x + 1, 610) = q.img.at(x, 611) = q.img.at(x + 1, 611) = 250;
    std::vector<std::array<int, 2>> light;
    for (const auto& r : pipeline::segment_page(q.img).regions)
        for (const auto& l : r.lines)
            for (const auto& c : l.chunks)
                if (c.inverse) light.push_back({c.x0, c.x1});
    CHECK(light == std::vector<std::array<int, 2>>{{130, 170}, {430, 470}});  // no rule read as a light stroke
}

TEST_CASE("segmenter: a table ruled with vertical lines comes out row by row, its rules as column edges") {
    PageDraw p;
    // 12 rows of two cells 10 px apart (narrower than a cell gap) with a double rule between them,
    // framed by single rules; the vertical rules join every row into one ink band unless erased
    for (int r = 0; r < 12; ++r) {
        p.line(232, 472, 200 + 24 * r);  // words end at 464
        p.line(474, 700, 200 + 24 * r);
    }
    p.box(200, 190, 202, 200 + 24 * 12);  // left border
    p.box(466, 190, 467, 200 + 24 * 12);  // double rule
    p.box(469, 190, 470, 200 + 24 * 12);
    p.box(720, 190, 722, 200 + 24 * 12);  // right border
    p.box(200, 190, 722, 191);            // top and bottom rules
    p.box(200, 200 + 24 * 12 - 1, 722, 200 + 24 * 12);
    p.box(600, 560, 640, 660);            // a filled bar (a figure) is not a rule
    const auto lay = pipeline::segment_page(p.img);
    CHECK(lay.line_height == 14);
    REQUIRE(!lay.regions.empty());
    const auto& table = lay.regions[0];
    CHECK(table.block.type == "table");
    CHECK(table.lines.size() == 12);
    REQUIRE(table.columns.size() == 2);
    CHECK(table.columns[1] > 464);
    CHECK(table.columns[1] <= 474);
    for (const auto& l : table.lines) {
        CHECK(l.cells == 2);
        for (const auto& c : l.chunks) CHECK((c.x1 <= 466 || c.x0 >= 470));  // no crop holds the rule
    }
    bool bar = false;
    for (const auto& r : lay.regions) bar = bar || (r.block.x0 <= 600 && r.block.x1 >= 640 && r.block.y0 >= 550);
    CHECK(bar);
}

TEST_CASE("grid table crop: two ruled rows of seven columns, the rules found although they outnumber the plain text") {
    // A crop as `docvlm table` reads it: 700 x 90, a full grid (rules every 100 px, rows 42 px
    // tall) with one 40 px word per cell. The unit L is measured in 10 slices of 70 px, 8 of them
    // crossed by a rule: rule-joined bands (the whole row) must not outvote the text's height,
    // else vertical rules (88 px) fall short of 4 L and every row is read as one line.
    PageDraw p;
    p.img = io::Image{700, 90, 1, 255};
    for (int x = 2; x < 700; x += 100) p.box(x, 2, x + 2, 88);
    p.box(2, 2, 700, 4), p.box(2, 44, 700, 46), p.box(2, 86, 700, 88);
    for (int c = 0; c < 7; ++c)
        for (int r = 0; r < 2; ++r) p.box(30 + 100 * c, 16 + 42 * r, 70 + 100 * c, 30 + 42 * r);
    auto check = [&] {
        std::vector<pipeline::Rule> rules;
        const auto region = pipeline::grid_table_region(p.img, {0, 0, 700, 90}, {}, rules);
        CHECK(std::count_if(rules.begin(), rules.end(), [](const pipeline::Rule& r) { return r.vertical(); }) == 7);
        REQUIRE(region.lines.size() == 2);
        for (const auto& l : region.lines) {
            CHECK(l.cells == 7);
            REQUIRE(l.chunks.size() == 7);
            for (std::size_t c = 0; c < 7; ++c) CHECK((l.chunks[c].x0 >= 30 + 100 * int(c) && l.chunks[c].x1 <= 70 + 100 * int(c)));
        }
    };
    check();
    // anti-aliased rules: a dark fringe column on each side in runs of 3 px (too short to be a
    // rule itself) must not become cells of their own nor widen the text's crops
    for (int x = 2; x < 700; x += 100)
        for (int y = 4; y < 86; ++y)
            if (y / 3 % 2 == 0) {
                if (x > 0) p.img.at(x - 1, y) = 90;
                if (x + 2 < 700) p.img.at(x + 2, y) = 90;
            }
    check();
}

TEST_CASE("segmenter: table rows far apart are one table; numbered equations and paragraphs are not") {
    PageDraw p;
    for (int i = 0; i < 3; ++i) p.line(100, 900, 60 + 24 * i);  // a paragraph
    // five rows of three cells, 24 px of white between rows (more than a line: blocks of their own)
    for (int r = 0; r < 5; ++r) {
        p.line(100, 250, 180 + 38 * r);
        p.line(400, 550, 180 + 38 * r);
        p.line(700, 850, 180 + 38 * r);
    }
    for (int i = 0; i < 3; ++i) p.line(100, 900, 420 + 24 * i);  // a paragraph
    // three display equations, each numbered at the column's right edge, as far apart
    for (int r = 0; r < 3; ++r) {
        p.line(350, 650, 540 + 38 * r);
        p.box(860, 540 + 38 * r, 900, 554 + 38 * r);
    }
    const auto lay = pipeline::segment_page(p.img);
    std::vector<std::string> kinds;
    std::vector<std::size_t> lines;
    for (const auto& r : lay.regions) kinds.push_back(r.block.type), lines.push_back(r.lines.size());
    REQUIRE(kinds.size() == 6);
    CHECK(kinds[0] == "text");
    CHECK(kinds[1] == "table");
    CHECK(lines[1] == 5);
    CHECK(lay.regions[1].columns.size() == 3);
    CHECK(kinds[2] == "text");
    for (std::size_t i = 3; i < 6; ++i) {  // each equation a block of its own
        CHECK(kinds[i] != "table");
        CHECK(lines[i] == 1);
    }
    // rows of a label at the text's left edge and a short number at the column's right edge look
    // like numbered equations cell by cell, but start at one left edge: a table
    PageDraw n;
    for (int i = 0; i < 3; ++i) n.line(100, 900, 60 + 24 * i);  // a paragraph
    for (int r = 0; r < 4; ++r) {
        n.line(100, 260 + 20 * r, 180 + 38 * r);
        n.box(850, 180 + 38 * r, 900, 194 + 38 * r);
    }
    const auto nl = pipeline::segment_page(n.img);
    REQUIRE(nl.regions.size() == 2);
    CHECK(nl.regions[1].block.type == "table");
    CHECK(nl.regions[1].lines.size() == 4);
    CHECK(nl.regions[1].columns.size() == 2);
    // rows whose middle cell wraps over three lines (a block of one line of cells and two of one
    // cell each) join the rows around them
    PageDraw w;
    int y = 100;
    for (int r = 0; r < 4; ++r) {
        w.line(100, 250, y);
        w.line(400, 550, y);
        w.line(700, 850, y);
        if (r == 1)
            for (int k = 1; k <= 2; ++k) w.line(400, 550, y + 24 * k);
        y += r == 1 ? 24 * 2 + 38 : 38;
    }
    const auto wl = pipeline::segment_page(w.img);
    REQUIRE(wl.regions.size() == 1);
    CHECK(wl.regions[0].block.type == "table");
    CHECK(wl.regions[0].lines.size() == 6);
}

TEST_CASE("segmenter: a wide gap between a table's columns is not a page gutter; a two-column page's is") {
    PageDraw p;
    // eight rows: a ragged first cell, then two short cells far to the right (lines of several cells)
    for (int r = 0; r < 8; ++r) {
        const int y = 100 + 24 * r;
        p.line(100, r % 3 == 0 ? 140 : r % 3 == 1 ? 220 : 380, y);
        p.line(480, 520 + 48 * (r % 2), y);
        p.line(700, r % 4 == 0 ? 884 : 740, y);
    }
    const auto lay = pipeline::segment_page(p.img);
    REQUIRE(lay.regions.size() == 1);
    CHECK(lay.regions[0].block.type == "table");
    CHECK(lay.regions[0].lines.size() == 8);
    CHECK(lay.regions[0].columns.size() == 3);
    // the same gutter between two columns of full lines: two columns, left first
    PageDraw q;
    for (int r = 0; r < 8; ++r) {
        q.line(100, 380, 100 + 24 * r);
        q.line(560, 880, 100 + 24 * r);
    }
    const auto cols = pipeline::segment_page(q.img);
    REQUIRE(cols.regions.size() == 2);
    CHECK(cols.regions[0].block.x1 < 400);
    CHECK(cols.regions[1].block.x0 > 500);
    CHECK(cols.regions[0].block.type == "text");
}

TEST_CASE("segmenter: a listing whose few lines run on past a wide gap is one block; columns of full lines are two") {
    // eleven lines of ragged code; lines 2, 6 and 10 go on far to the right past a run of spaces
    PageDraw p;
    for (int r = 0; r < 11; ++r) {
        p.line(100, 300 + 48 * (r % 4), 100 + 24 * r);
        if (r % 4 == 2) p.line(560, 800, 100 + 24 * r);
    }
    const auto lay = pipeline::segment_page(p.img);
    REQUIRE(lay.regions.size() == 1);
    CHECK(lay.regions[0].lines.size() == 11);  // the long lines read across the gap, in their rows
    // the right side's lines follow each other (a column that ends early): two columns
    PageDraw q;
    for (int r = 0; r < 11; ++r) q.line(100, 440, 100 + 24 * r);
    for (int r = 0; r < 4; ++r) q.line(560, 900, 100 + 24 * r);
    const auto cols = pipeline::segment_page(q.img);
    REQUIRE(cols.regions.size() == 2);
    CHECK(cols.regions[0].block.x1 < 460);
    CHECK(cols.regions[0].lines.size() == 11);
    CHECK(cols.regions[1].block.x0 > 540);
}


TEST_CASE("segmenter: a two-column list filled across is read row by row; ragged columns of their own stay two") {
    // twelve rows of ragged entries on both sides; the right side has no entry in rows 4 and 9
    // (the left side's heading, an odd entry), as a list of symbols filled across is set
    const std::array<int, 3> wide{140, 220, 380};
    PageDraw p;
    for (int r = 0; r < 12; ++r) {
        p.line(100, wide[std::size_t(r % 3)], 100 + 24 * r);
        if (r != 4 && r != 9) p.line(560, 460 + wide[std::size_t((r + 1) % 3)], 100 + 24 * r);
    }
    const auto lay = pipeline::segment_page(p.img);
    REQUIRE(lay.regions.size() == 1);
    REQUIRE(lay.regions[0].lines.size() == 12);
    CHECK(lay.regions[0].lines[0].x1 > 600);  // a row holds both entries
    CHECK(lay.regions[0].lines[4].x1 < 400);  // the hole
    // the same entries with the holes on the left side (the right side's lines go on where the
    // left has none, as in an index): two columns, left first
    PageDraw q;
    for (int r = 0; r < 12; ++r) {
        if (r != 4 && r != 9) q.line(100, wide[std::size_t(r % 3)], 100 + 24 * r);
        q.line(560, 460 + wide[std::size_t((r + 1) % 3)], 100 + 24 * r);
    }
    const auto cols = pipeline::segment_page(q.img);
    REQUIRE(cols.regions.size() >= 2);
    CHECK(cols.regions[0].block.x1 < 400);
    CHECK(cols.regions.back().block.x0 > 540);
}
TEST_CASE("segmenter: a vertical rule crossing the white between blocks makes them one") {
    PageDraw p;
    // a two-column grid whose rows are 30 px apart; the middle rule runs through all of them
    for (int r = 0; r < 4; ++r) {
        p.line(100, 380, 100 + 44 * r);
        p.line(420, 700, 100 + 44 * r);
    }
    p.box(399, 90, 401, 90 + 44 * 4);
    const auto lay = pipeline::segment_page(p.img);
    REQUIRE(lay.regions.size() == 1);
    CHECK(lay.regions[0].lines.size() == 4);
    CHECK(lay.regions[0].block.type == "table");
}

TEST_CASE("segmenter: a grid of two rows (vertical rules inside) is a table; two plain lines are not") {
    PageDraw p;
    for (int i = 0; i < 3; ++i) p.line(100, 900, 60 + 24 * i);  // a paragraph
    // two rows of three cells in a full grid: rules at x 100, 300, 500, 700 and y 200, 240, 280
    for (int x : {100, 300, 500, 700}) p.box(x, 200, x + 2, 282);
    for (int y : {200, 240, 280}) p.box(100, y, 702, y + 2);
    for (int r = 0; r < 2; ++r)
        for (int c = 0; c < 3; ++c) p.line(120 + 200 * c, 250 + 200 * c, 213 + 40 * r);
    for (int i = 0; i < 2; ++i) p.line(100, 900, 340 + 24 * i);  // two lines of text
    const auto lay = pipeline::segment_page(p.img);
    int tables = 0;
    for (const auto& r : lay.regions) {
        if (r.block.type != "table") continue;
        ++tables;
        CHECK(r.lines.size() == 2);
        CHECK(r.block.y0 >= 200);
        CHECK(r.block.y1 <= 282);
    }
    CHECK(tables == 1);
}

TEST_CASE("parse: a ruled table on a page comes out as one HTML grid with its spanning header") {
    PageDraw p;
    for (int i = 0; i < 3; ++i) p.line(100, 900, 60 + 24 * i);  // a paragraph
    // a header whose second cell spans two columns, then four rows of three cells; rules of the
    // same length above, between and below the rows (touching none), a vertical rule between
    // the first two columns
    const int top = 170, pitch = 40;
    p.line(100, 250, top + 12);
    p.line(400, 850, top + 12);
    for (int r = 1; r <= 4; ++r) {
        p.line(100, 250, top + 12 + pitch * r);
        p.line(400, 550, top + 12 + pitch * r);
        p.line(700, 850, top + 12 + pitch * r);
    }
    for (int r = 0; r <= 5; ++r) p.box(90, top + pitch * r, 870, top + pitch * r + 2);
    p.box(320, top, 322, top + pitch * 5);
    for (int i = 0; i < 3; ++i) p.line(100, 900, top + pitch * 5 + 40 + 24 * i);  // a paragraph
    const auto model = load_default_model();
    REQUIRE(model.dims().split.present);
    // the grid reader (text positions and rules): the whole structure; the shipped model's
    // splitter, which learnt real text, not these solid boxes: the five rows between the rules
    for (const bool splitter : {false, true}) {
        CAPTURE(splitter);
        pipeline::EmbeddedParserOptions opt;
        opt.table_splitter = splitter;
        const pipeline::Document doc = pipeline::EmbeddedPageParser(model, opt).parse(p.img);
        int tables = 0;
        for (const auto& b : doc.blocks) {
            if (b.type != "table") continue;
            ++tables;
            std::size_t rows = 0, spans = 0, cells = 0;
            for (std::size_t at = 0; (at = b.content.find("<tr>", at)) != std::string::npos; ++at) ++rows;
            for (std::size_t at = 0; (at = b.content.find("<td", at)) != std::string::npos; ++at) ++cells;
            for (std::size_t at = 0; (at = b.content.find("colspan=\"2\"", at)) != std::string::npos; ++at) ++spans;
            CHECK(rows == 5);
            if (splitter) continue;
            CHECK(cells == 14);
            CHECK(spans == 1);
        }
        CHECK(tables == 1);
        CHECK(doc.blocks.front().type == "text");
        CHECK(doc.blocks.back().type == "text");
    }
}

TEST_CASE("segmenter: a framed box is one column even with a wide gap inside; its round-cornered frame is no text") {
    PageDraw p;
    for (int i = 0; i < 4; ++i) p.line(100, 900, 60 + 24 * i);  // text above
    // the frame: rules at top and bottom whose ends bend down/up over 8 px (rounded corners)
    const int top = 200, bottom = 200 + 24 * 10 + 16;
    p.box(150, top, 850, top + 2);
    p.box(150, bottom - 2, 850, bottom);
    p.box(150, top, 152, bottom);   // left edge
    p.box(848, top, 850, bottom);   // right edge
    for (int i = 0; i < 10; ++i) {  // rows with a 200 px gap in the middle: not two columns
        p.line(200, 400, top + 16 + 24 * i);
        p.line(600, 800, top + 16 + 24 * i);
    }
    for (int i = 0; i < 4; ++i) p.line(100, 900, bottom + 40 + 24 * i);  // text below
    // cut the corners round: remove the frame's corner pixels, leave a short arc of stubs
    for (int y = top; y < top + 6; ++y)
        for (int x = 150; x < 156; ++x) p.img.at(x, y) = 255;
    p.box(153, top + 2, 155, top + 4);
    const auto lay = pipeline::segment_page(p.img);
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines) {
            CHECK(l.y1 - l.y0 <= 20);                              // no frame rule read as a line
            if (l.y0 > top && l.y1 < bottom) CHECK(l.x1 - l.x0 > 500);  // each row read across the gap
        }
    int rows = 0;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines) rows += l.y0 > top && l.y1 < bottom;
    CHECK(rows == 10);
}

TEST_CASE("looks_like_math: relations and operators with few words") {
    CHECK(pipeline::looks_like_math("E = mc2"));
    CHECK(pipeline::looks_like_math("\u2211 i=1 n x i \u2264 1"));
    CHECK(pipeline::looks_like_math("f(x) = sin x + cos y"));
    CHECK_FALSE(pipeline::looks_like_math("a + b"));  // no relation or big operator
    CHECK_FALSE(pipeline::looks_like_math("The value x = 3 was chosen because it is small"));
}

TEST_CASE("ends_in_loop, has_loop: a repeated run of 1-32 tokens, 4 times or more, over 16 or more tokens") {
    auto ids = [](std::string_view s) { return std::vector<std::int32_t>(s.begin(), s.end()); };
    CHECK(pipeline::ends_in_loop(ids("x = \\alpha 2 - \\alpha 2 - \\alpha 2 - \\alpha 2 - \\alpha 2 - ")));  // period 11, 5 times
    CHECK(pipeline::ends_in_loop(ids("a b a b a b a b a b a b a b ")));                                   // period 2
    CHECK(pipeline::ends_in_loop(ids("x^{2}}}}}}}}}}}}}}}}}")));                                            // 17 braces
    CHECK(pipeline::ends_in_loop(ids("A = α 2 − α 2 − α 2 − α 2 − ")));                                    // 9 bytes, 4 times
    CHECK_FALSE(pipeline::ends_in_loop(ids("\\frac{a}{b^{c^{d}}}}")));                                         // a few braces
    CHECK_FALSE(pipeline::ends_in_loop(ids("x_1 + x_2 + \\cdots + x_n")));
    CHECK_FALSE(pipeline::ends_in_loop(ids("")));
    CHECK_FALSE(pipeline::ends_in_loop(ids("1 . . . . 2")));
    const auto looped = ids("A = α 2 − α 2 − α 2 − α 2 − α 2");
    CHECK(pipeline::loop_period(looped) == 9);
    CHECK(pipeline::without_loop(looped) == ids("A = α 2 −").size());  // the loop's first turn kept
    CHECK(pipeline::without_loop(ids("x_1 + x_2")) == 9);
    // has_loop: a loop ending anywhere, the reading going on after it
    CHECK(pipeline::has_loop(ids("\\macro{⟨a⟩}{⟨a⟩}{⟨a⟩}{⟨a⟩}{⟨ b }")));  // 9 bytes, 4 times, then more
    CHECK(pipeline::has_loop(looped));
    CHECK_FALSE(pipeline::has_loop(ids("\\macro{⟨a⟩}{⟨a⟩}{⟨a⟩}{⟨ b }")));  // 3 times
    CHECK_FALSE(pipeline::has_loop(ids("x_1 + x_2 + \\cdots + x_n = y_1 + y_2 + \\cdots + y_m")));
    CHECK_FALSE(pipeline::has_loop(ids("")));
}

TEST_CASE("judge_text_reading: a loop is cut to its first turn; a reading that runs to the crop's own bound is left out") {
    auto ids = [](std::string_view s) { return std::vector<std::int32_t>(s.begin(), s.end()); };
    const std::size_t cap = 160;
    const std::size_t bound = pipeline::text_token_bound(64);  // a crop 64 pixels wide: 26 tokens
    CHECK(bound == 26);
    CHECK(pipeline::text_token_bound(512) < cap);  // the widest crop's bound stays below the default cap
    const auto fine = pipeline::judge_text_reading(ids("a short line"), bound, cap);
    CHECK(fine.keep == 12);
    CHECK_FALSE(fine.looped);
    CHECK_FALSE(fine.overran);
    const auto over = pipeline::judge_text_reading(ids("sete the letters mit einem bet"), bound, cap);  // 26 of 26, no end
    CHECK(over.overran);
    CHECK(over.keep == 0);
    const auto looped = pipeline::judge_text_reading(ids("ab ab ab ab ab ab ab ab ab"), bound, cap);  // at the bound, but a loop
    CHECK(looped.looped);
    CHECK_FALSE(looped.overran);
    CHECK(looped.keep == 3);
    // a bound the user lowered below the crop's own (--max-tokens) is a cut, not an overrun
    const auto capped = pipeline::judge_text_reading(ids("a line cut by the user"), 10, 10);
    CHECK_FALSE(capped.overran);
    CHECK(capped.keep == 22);
}


}  // TEST_SUITE
