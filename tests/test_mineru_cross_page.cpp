// The client's cross-page table check, pinned by its own outputs: tests/data/mineru-client/
// cross_page.json (written by tools/reference/mineru_client/make_cross_page_cases.py running
// mineru-vl-utils' cross_page_table.py on MinerU's table_merge.py and BeautifulSoup; see the
// README there). docvlm must give identical results on every case.
#include "test_util.hpp"

#include <docvlm/pipeline/html_parse.hpp>
#include <docvlm/pipeline/mineru_cross_page.hpp>
#include <docvlm/pipeline/mineru_table_merge.hpp>

#include <nlohmann/json.hpp>

#include <fstream>

using namespace docvlm;
using namespace docvlm::pipeline;

namespace {

const nlohmann::json& cross_page_cases() {
    static const nlohmann::json cases = [] {
        std::ifstream f(std::string(DOCVLM_TEST_DATA) + "/mineru-client/cross_page.json");
        REQUIRE(f.good());
        return nlohmann::json::parse(f);
    }();
    return cases;
}

nlohmann::json optional_text(const std::optional<std::string>& s) { return s ? nlohmann::json(*s) : nlohmann::json(); }

// Cells as the generator lists them: [get_text(), colspan, rowspan] (null: absent) of each cell
// under `node`.
nlohmann::json soup_cells(const html::Tree& t, int node) {
    nlohmann::json cells = nlohmann::json::array();
    for (int c : t.find_all(node, {"td", "th"}))
        cells.push_back({t.get_text(c), optional_text(t.attribute(c, "colspan")), optional_text(t.attribute(c, "rowspan"))});
    return cells;
}

nlohmann::json metrics_json(const RowMetrics& m) {
    return {{"row_idx", m.row}, {"effective_cols", m.effective_cols}, {"actual_cols", m.actual_cols}, {"visual_cols", m.visual_cols}};
}

// The generator's view of a TableState.
nlohmann::json state_json(const TableState& s) {
    nlohmann::json j;
    j["total_cols"] = s.total_cols;
    j["row_effective_cols"] = s.row_effective_cols;
    j["last_data_row"] = s.last_data_row ? metrics_json(*s.last_data_row) : nlohmann::json();
    j["tail_occupied"] = nlohmann::json::array();
    for (const auto& [row, cols] : s.tail_occupied) j["tail_occupied"].push_back({row, std::vector<long long>(cols.begin(), cols.end())});
    j["front_header_info"] = nlohmann::json::array();
    for (const RowSignature& r : s.front_header_info)
        j["front_header_info"].push_back({{"effective_cols", r.effective_cols}, {"colspans", r.colspans}, {"rowspans", r.rowspans},
                                          {"normalized_texts", r.normalized_texts}, {"display_texts", r.display_texts}});
    j["front_row_metrics"] = nlohmann::json::array();
    for (const RowMetrics& m : s.front_row_metrics) j["front_row_metrics"].push_back(metrics_json(m));
    j["segments"] = j["segment_counts"] = nlohmann::json::array();
    for (long long r = 0; r < (long long)s.rows.size(); ++r) {
        nlohmann::json segs = nlohmann::json::array();
        for (const RenderedSegment& g : row_rendered_segments(s, r)) segs.push_back({g.text, g.start_col, g.end_col});
        j["segments"].push_back(segs);
        j["segment_counts"].push_back(row_rendered_segment_count(s, r));
    }
    return j;
}

Block table_block(std::string html, double x0, double x1) {
    Block b;
    b.type = "table", b.content = std::move(html), b.x0 = x0, b.y0 = 0.1, b.x1 = x1, b.y1 = 0.5;
    return b;
}

std::vector<std::vector<Block>> pages_from(const nlohmann::json& in) {
    std::vector<std::vector<Block>> pages;
    for (const auto& p : in) {
        pages.emplace_back();
        for (const auto& b : p) {
            Block x;
            x.type = b.at("type").get<std::string>(), x.content = b.at("content").get<std::string>();
            x.x0 = b.at("bbox")[0].get<double>(), x.y0 = b.at("bbox")[1].get<double>();
            x.x1 = b.at("bbox")[2].get<double>(), x.y1 = b.at("bbox")[3].get<double>();
            if (b.contains("cell_merge")) x.cell_merge = b.at("cell_merge").get<std::vector<int>>();
            pages.back().push_back(x);
        }
    }
    return pages;
}

}  // namespace

TEST_SUITE("pipeline") {

TEST_CASE("HTML read as BeautifulSoup's html.parser reads it: rows, cells, their text and spans (BeautifulSoup's own outputs)") {
    std::size_t checked = 0;
    for (const auto& c : cross_page_cases().at("html")) {
        const std::string in = c.at("in").get<std::string>();
        INFO("html: ", nlohmann::json(in).dump());
        if (c.contains("error")) {
            CHECK_THROWS_AS(html::parse(in), Error);
            continue;
        }
        const html::Tree tree = html::parse(in);
        nlohmann::json rows = nlohmann::json::array();
        for (int tr : tree.find_all(0, {"tr"})) rows.push_back(soup_cells(tree, tr));
        const nlohmann::json cells = soup_cells(tree, 0);
        INFO("bs4:    ", c.at("cells").dump(), "\ndocvlm: ", cells.dump());
        CHECK(rows == c.at("rows"));
        CHECK(cells == c.at("cells"));
        ++checked;
    }
    CHECK(checked > 150);
}

TEST_CASE("MinerU's reading of a table for merging: columns, header signatures, rendered segments (MinerU's own outputs)") {
    for (const auto& c : cross_page_cases().at("tables")) {
        const std::string in = c.at("in").get<std::string>();
        INFO("table: ", nlohmann::json(in).dump());
        const nlohmann::json& want = c.at("state");
        if (want.is_object() && want.contains("error")) {
            CHECK_THROWS_AS(table_state_from_html(in), Error);
            continue;
        }
        const std::optional<TableState> s = table_state_from_html(in);
        REQUIRE(s.has_value() == !want.is_null());
        if (!s) continue;
        const nlohmann::json got = state_json(*s);
        for (const auto& [key, value] : want.items()) {
            INFO(key, "\n  MinerU: ", value.dump(), "\n  docvlm: ", got.at(key).dump());
            CHECK(got.at(key) == value);
        }
    }
}

TEST_CASE("table pairs: headers, the structure check, the merge prompt and its segments (the client's own outputs)") {
    std::size_t with_task = 0;
    for (const auto& c : cross_page_cases().at("pairs")) {
        const std::string a = c.at("previous").get<std::string>(), b = c.at("current").get<std::string>();
        INFO("previous: ", nlohmann::json(a).dump(), "\ncurrent:  ", nlohmann::json(b).dump());
        const std::vector<std::vector<Block>> pages = {{table_block(a, 0.1, 0.9)},
                                                       {table_block(b, 0.1, 0.1 + c.at("width").get<double>())}};
        std::vector<std::string> warnings;
        const std::vector<CrossPageMergeTask> tasks =
            cross_page_merge_tasks(pages, [&](const CrossPagePair&, const std::string& why) { warnings.push_back(why); });
        if (c.contains("error")) {  // the client raises (int() of a span); docvlm leaves the pair out
            CHECK(tasks.empty());
            CHECK(warnings.size() == 1);
            continue;
        }
        CHECK(warnings.empty());
        const auto s1 = table_state_from_html(a), s2 = table_state_from_html(b);
        if (!c.at("headers").is_null()) {
            REQUIRE((s1 && s2));
            CHECK(detect_table_headers(*s1, *s2) == c.at("headers").get<std::size_t>());
            CHECK(can_merge_by_structure(*s2, *s1, {0.1, 0.1, 0.1 + c.at("width").get<double>(), 0.5}, {0.1, 0.1, 0.9, 0.5}) ==
                  c.at("can_merge").get<bool>());
        }
        REQUIRE(tasks.size() == c.at("tasks").size());
        for (std::size_t i = 0; i < tasks.size(); ++i) {
            const auto& t = c.at("tasks")[i];
            CHECK(tasks[i].prompt == t.at("prompt").get<std::string>());
            CHECK(tasks[i].segment_count == t.at("segments").get<std::size_t>());
            CHECK(tasks[i].expanded_col_count == t.at("columns").get<long long>());
            CHECK(nlohmann::json(tasks[i].previous_col_ranges) == t.at("ranges"));
            ++with_task;
        }
    }
    CHECK(with_task > 50);
}

TEST_CASE("the model's merge answer read as the client reads it (the client's own outputs)") {
    for (const auto& c : cross_page_cases().at("responses")) {
        const std::string in = c.at("in").get<std::string>();
        INFO("answer: ", nlohmann::json(in).dump());
        const auto got = parse_cell_merge_response(in);
        CHECK((got ? nlohmann::json(*got) : nlohmann::json()) == c.at("out"));
    }
}

TEST_CASE("pages: boundary tables paired, asked about, and cell_merge set from the answers (the client's own outputs)") {
    std::size_t merged = 0;
    for (const auto& c : cross_page_cases().at("pages")) {
        INFO("pages: ", c.at("in").dump());
        std::vector<std::vector<Block>> pages = pages_from(c.at("in"));
        nlohmann::json pairs = nlohmann::json::array();
        for (const CrossPagePair& p : find_cross_page_table_pairs(pages)) pairs.push_back({p.prev_page, p.prev_block, p.prev_page + 1, p.curr_block});
        CHECK(pairs == c.at("pairs"));
        std::vector<std::string> warnings;
        const std::vector<CrossPageMergeTask> tasks =
            cross_page_merge_tasks(pages, [&](const CrossPagePair&, const std::string& why) { warnings.push_back(why); });
        if (c.contains("error")) {  // the client raises for the whole document; docvlm skips that pair
            CHECK(!warnings.empty());
            continue;
        }
        std::vector<std::string> prompts;
        for (const auto& t : tasks) prompts.push_back(t.prompt);
        CHECK(nlohmann::json(prompts) == c.at("prompts"));
        detect_cross_page_cell_merge(pages, [&](const std::vector<std::string>& asked) {
            CHECK(asked == prompts);
            return c.at("answers").get<std::vector<std::string>>();
        });
        for (std::size_t p = 0; p < pages.size(); ++p)
            for (std::size_t b = 0; b < pages[p].size(); ++b) {
                const nlohmann::json& want = c.at("cell_merge")[p][b];
                CHECK((pages[p][b].cell_merge.empty() ? nlohmann::json() : nlohmann::json(pages[p][b].cell_merge)) == want);
                merged += !want.is_null();
            }
    }
    CHECK(merged > 20);
}

TEST_CASE("MinerU's merge of a table continued on the next pages: the merged markup (MinerU's and BeautifulSoup's own outputs)") {
    std::size_t merged = 0;
    for (const auto& c : cross_page_cases().at("merges")) {
        INFO("tables: ", c.at("in").dump(), "\ncell_merge: ", c.at("cell_merge").dump());
        std::vector<TableState> states;
        bool readable = true;
        auto run = [&] {
            for (const auto& h : c.at("in")) {
                auto s = table_state_from_html(h.get<std::string>());
                if (!s) return void(readable = false);
                states.push_back(std::move(*s));
            }
            for (std::size_t i = states.size() - 1; i > 0; --i) {
                const auto& cm = c.at("cell_merge")[i];
                merge_table_into(states[i - 1], states[i], cm.is_null() ? std::vector<int>{} : cm.get<std::vector<int>>());
            }
        };
        if (c.contains("error")) {
            CHECK_THROWS_AS(run(), Error);
            continue;
        }
        run();
        REQUIRE(readable == !c.at("out").is_null());
        if (!readable) continue;
        const std::string got = states[0].tree->to_html(), want = c.at("out").get<std::string>();
        INFO("MinerU: ", nlohmann::json(want).dump(), "\ndocvlm: ", nlohmann::json(got).dump());
        CHECK(got == want);
        ++merged;
    }
    CHECK(merged > 150);
}

// The tables a page keeps, as the generator lists MinerU's: markup, the captions before each,
// the footnotes after it (the blocks the client's flat list has around a table).
nlohmann::json tables_left(const std::vector<Block>& blocks) {
    auto skipped = [](const std::string& t) {
        for (const char* s : {"table_caption", "table_footnote", "image_caption", "image_footnote", "header", "footer", "page_number",
                              "page_footnote"})
            if (t == s) return true;
        return false;
    };
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        if (blocks[i].type != "table") continue;
        nlohmann::json captions = nlohmann::json::array(), notes = nlohmann::json::array();
        for (std::size_t j = i; j-- > 0 && skipped(blocks[j].type);)
            if (blocks[j].type == "table_caption") captions.insert(captions.begin(), blocks[j].content);
        for (std::size_t j = i + 1; j < blocks.size() && skipped(blocks[j].type); ++j)
            if (blocks[j].type == "table_footnote") notes.push_back(blocks[j].content);
        out.push_back({{"html", blocks[i].content}, {"captions", captions}, {"footnotes", notes}});
    }
    return out;
}

TEST_CASE("documents: tables continued on the next pages joined as MinerU's merge_table joins them (MinerU's own outputs)") {
    std::size_t joined = 0;
    for (const auto& c : cross_page_cases().at("documents")) {
        INFO("pages: ", c.at("in").dump());
        std::vector<Document> docs;
        for (auto& blocks : pages_from(c.at("in"))) docs.emplace_back().blocks = std::move(blocks);
        std::size_t before = 0;
        for (const auto& d : docs) before += tables_left(d.blocks).size();
        merge_cross_page_tables(docs);
        if (c.contains("error")) {  // MinerU raises (a span int() refuses); docvlm leaves those tables apart, with a warning
            bool warned = false;
            for (const auto& d : docs) warned |= !d.warnings.empty();
            CHECK(warned);
            continue;
        }
        std::size_t after = 0;
        for (std::size_t p = 0; p < docs.size(); ++p) {
            const nlohmann::json got = tables_left(docs[p].blocks);
            INFO("page ", p + 1, "\n  MinerU: ", c.at("tables")[p].dump(), "\n  docvlm: ", got.dump());
            CHECK(got == c.at("tables")[p]);
            after += got.size();
        }
        joined += after < before;
    }
    CHECK(joined > 30);
}

TEST_CASE("captions that say a table continues (MinerU's own outputs)") {
    for (const auto& c : cross_page_cases().at("continuation")) {
        INFO("caption: ", c.at("in").dump());
        CHECK(is_table_continuation_text(c.at("in").get<std::string>()) == c.at("out").get<bool>());
    }
}

TEST_CASE("cross-page check: hostile spans are refused, not expanded") {
    const std::string wide = "<table><tr><td colspan=\"100000000\">x</td></tr></table>";
    CHECK_THROWS_AS(table_state_from_html(wide), Error);
    std::vector<std::vector<Block>> pages = {{table_block(wide, 0.1, 0.9)}, {table_block(wide, 0.1, 0.9)}};
    std::vector<std::string> warnings;
    CHECK(cross_page_merge_tasks(pages, [&](const CrossPagePair&, const std::string& why) { warnings.push_back(why); }).empty());
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("too large") != std::string::npos);
    apply_cross_page_merge(pages, {}, {"[1]"});  // answers without tasks: the client skips them all
    CHECK(pages[1][0].cell_merge.empty());
    std::string many = "<table>";  // within max_span each, too many grid cells together
    for (int r = 0; r < 3; ++r) many += "<tr><td colspan=\"1000\" rowspan=\"1000\">x</td></tr>";
    CHECK_THROWS_WITH_AS(table_state_from_html(many + "</table>"), doctest::Contains("grid cells"), Error);
}

}  // TEST_SUITE

TEST_SUITE("pipeline") {

// A page of blocks: (type, content) in order, every box the same width.
std::vector<Block> page_of(std::initializer_list<std::pair<const char*, const char*>> blocks) {
    std::vector<Block> out;
    for (const auto& [type, content] : blocks) {
        Block b = table_block(content, 0.1, 0.9);
        b.type = type;
        out.push_back(b);
    }
    return out;
}

TEST_CASE("tables continued over three pages are joined into the first, as MinerU's merge_table does") {
    const char* head = "<tr><td>Year</td><td>Sales</td></tr>";
    const std::string t1 = std::string("<table>") + head + "<tr><td>2021</td><td>10</td></tr></table>";
    const std::string t2 = std::string("<table>") + head + "<tr><td>2022</td><td>12</td></tr></table>";
    const std::string t3 = "<table><tr><td>2023</td><td>15</td></tr></table>";
    std::vector<Document> doc(3);
    doc[0].blocks = page_of({{"text", "Intro"}, {"table", t1.c_str()}, {"table_footnote", "old note"}, {"page_number", "1"}});
    doc[1].blocks = page_of({{"header", "Report"}, {"table_caption", "Table 1 (continued)"}, {"table", t2.c_str()},
                             {"table_footnote", "p2 note"}});
    doc[2].blocks = page_of({{"table_caption", "续表"}, {"table", t3.c_str()}, {"table_footnote", "Source: us"}, {"text", "After"}});
    merge_cross_page_tables(doc);
    // The result MinerU's perform_table_merge gives (pinned above), page 3 into 2, then 2 into 1.
    auto s1 = table_state_from_html(t1), s2 = table_state_from_html(t2), s3 = table_state_from_html(t3);
    merge_table_into(*s2, *s3, {});
    merge_table_into(*s1, *s2, {});
    REQUIRE(doc[0].blocks.size() == 4);
    CHECK(doc[0].blocks[1].content == s1->tree->to_html());
    CHECK(doc[0].blocks[1].content.find("2023") != std::string::npos);
    CHECK(doc[0].blocks[2].content == "Source: us");  // the last table's footnotes replace the others (MinerU's rule)
    CHECK(doc[0].blocks[3].type == "page_number");
    REQUIRE(doc[1].blocks.size() == 1);  // the continuation caption, the table and its footnote went
    CHECK(doc[1].blocks[0].type == "header");
    REQUIRE(doc[2].blocks.size() == 1);
    CHECK(doc[2].blocks[0].content == "After");
}

TEST_CASE("a footnote under the previous table stops the join unless the next table's caption says it continues") {
    const std::string t = "<table><tr><td>a</td><td>b</td></tr></table>", u = "<table><tr><td>c</td><td>d</td></tr></table>";
    std::vector<Document> doc(2);
    doc[0].blocks = page_of({{"table", t.c_str()}, {"table_footnote", "n"}});
    doc[1].blocks = page_of({{"table", u.c_str()}});
    merge_cross_page_tables(doc);
    CHECK(doc[1].blocks.size() == 1);
    doc[1].blocks = page_of({{"table_caption", "Table 1 (continued)"}, {"table", u.c_str()}});
    merge_cross_page_tables(doc);
    CHECK(doc[1].blocks.empty());
    REQUIRE(doc[0].blocks.size() == 1);  // its footnote gave way to the (absent) footnotes of the second table
    CHECK(doc[0].blocks[0].content.find("<td>c</td>") != std::string::npos);
}

TEST_CASE("a table under a caption that does not say it continues stays apart; so does one of another width") {
    const std::string t = "<table><tr><td>a</td><td>b</td></tr></table>", u = "<table><tr><td>c</td><td>d</td></tr></table>";
    std::vector<Document> doc(2);
    doc[0].blocks = page_of({{"table", t.c_str()}});
    doc[1].blocks = page_of({{"table_caption", "Table 2. Costs"}, {"table", u.c_str()}});
    merge_cross_page_tables(doc);
    CHECK(doc[1].blocks.size() == 2);
    CHECK(doc[0].blocks[0].content == t);
    doc[1].blocks = page_of({{"table", u.c_str()}});
    doc[1].blocks[0].x1 = 0.5;  // half as wide
    merge_cross_page_tables(doc);
    CHECK(doc[1].blocks.size() == 1);
    doc[1].blocks[0].x1 = 0.9;
    merge_cross_page_tables(doc);
    CHECK(doc[1].blocks.empty());
    CHECK(doc[0].blocks[0].content == "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>");
    CHECK(is_table_continuation_text("表 3 续表"));
    CHECK_FALSE(is_table_continuation_text("续表 3"));  // a marker ends the caption
    CHECK(is_table_continuation_text("Table 3 (Cont.)"));
    CHECK_FALSE(is_table_continuation_text("Table 3 discontinued"));
    CHECK(is_table_continuation_text("Table 3 — Continued"));
    CHECK(is_table_continuation_text("表 3（续）"));
}

}  // TEST_SUITE
