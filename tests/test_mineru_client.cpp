// The MinerU2.5 client's behaviour, pinned by the client's own outputs: tests/data/mineru-client
// (written by tools/reference/mineru_client/make_cases.py running opendatalab/mineru-vl-utils's
// functions; see the README there). docvlm must give byte-identical results on every case.
#include "test_util.hpp"

#include <docvlm/io/base64.hpp>
#include <docvlm/pipeline/latex_fixes.hpp>
#include <docvlm/pipeline/mineru_charts.hpp>
#include <docvlm/pipeline/mineru_mermaid.hpp>
#include <docvlm/pipeline/mineru.hpp>
#include <docvlm/pipeline/mineru_post_process.hpp>
#include <docvlm/pipeline/mineru_table_images.hpp>
#include <docvlm/pipeline/page_parser.hpp>

#include <nlohmann/json.hpp>

#include <fstream>
#include <functional>
#include <map>

using namespace docvlm;
using namespace docvlm::pipeline;

namespace {

const nlohmann::json& client_cases() {
    static const nlohmann::json cases = [] {
        std::ifstream f(std::string(DOCVLM_TEST_DATA) + "/mineru-client/cases.json");
        REQUIRE(f.good());
        return nlohmann::json::parse(f);
    }();
    return cases;
}

std::string text_or_empty(const nlohmann::json& v) { return v.is_null() ? std::string() : v.get<std::string>(); }

Block block_from(const nlohmann::json& j) {
    Block b;
    b.type = j.at("type").get<std::string>();
    const auto& box = j.at("bbox");
    b.x0 = box[0].get<double>(), b.y0 = box[1].get<double>(), b.x1 = box[2].get<double>(), b.y1 = box[3].get<double>();
    if (!j.at("angle").is_null()) b.angle = j.at("angle").get<int>();
    b.content = j.contains("content") ? text_or_empty(j.at("content")) : std::string();
    b.merge_prev = j.value("merge_prev", false);
    if (j.contains("sub_type")) b.sub_type = j.at("sub_type").get<std::string>();
    if (j.contains("tokens"))  // the client's table image tokens (table_post_process inputs)
        for (const auto& t : j.at("tokens")) b.table_images.push_back({t[0].get<std::string>(), t[1].get<std::string>()});
    b.absorbed_by_table = j.value("absorbed", false);
    return b;
}

// A mismatch report: which case, the input, what the client wrote, what docvlm wrote.
void check_equal(const std::string& what, const std::string& input, const std::string& expected, const std::string& got) {
    INFO(what, "\n  input:    ", nlohmann::json(input).dump(), "\n  client:   ", nlohmann::json(expected).dump(),
         "\n  docvlm:   ", nlohmann::json(got).dump());
    CHECK(got == expected);
}

void check_blocks(const std::string& what, const nlohmann::json& expected, const std::vector<Block>& got) {
    INFO(what);
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        const Block want = block_from(expected[i]);
        INFO("block ", i, ": ", expected[i].dump());
        CHECK(got[i].type == want.type);
        CHECK(got[i].x0 == want.x0);
        CHECK(got[i].y0 == want.y0);
        CHECK(got[i].x1 == want.x1);
        CHECK(got[i].y1 == want.y1);
        CHECK(got[i].angle == want.angle);
        CHECK(got[i].merge_prev == want.merge_prev);
        CHECK(got[i].content == want.content);
        CHECK(got[i].sub_type == want.sub_type);
    }
}

// The client's post_process on a page (its switches simple_post_process and
// enable_table_formula_eq_wrap from the case) and json2md of the result, compared; ours returned.
std::vector<Block> check_post_process(const nlohmann::json& c) {
    std::vector<Block> in;
    for (const auto& b : c.at("in")) in.push_back(block_from(b));
    MinerUPostProcessOptions opt;
    opt.simple_post_process = c.at("flags").at("simple_post_process").get<bool>();
    opt.table_formula_eq_wrap = c.at("flags").at("enable_table_formula_eq_wrap").get<bool>();
    std::vector<Block> out = mineru_post_process(in, opt);
    check_blocks("blocks " + c.at("in").dump() + " flags " + c.at("flags").dump(), c.at("out"), out);
    check_equal("markdown", c.at("in").dump(), c.at("markdown").get<std::string>(), mineru_markdown(out));
    return out;
}

// An image from base64 PNG or JPEG bytes (a data: URI's payload or the client's PNG).
io::Image decode_base64_image(std::string_view text) {
    if (const std::size_t comma = text.find(','); text.starts_with("data:")) text.remove_prefix(comma + 1);
    const auto bytes = io::base64_decode(text);
    REQUIRE(bytes.has_value());
    return io::decode_image(std::as_bytes(std::span(bytes->data(), bytes->size())));
}

// The client's test page: rectangles (edges included, as Pillow draws them) on white.
io::Image draw_page(const nlohmann::json& c) {
    io::Image page(c.at("page")[0].get<int>(), c.at("page")[1].get<int>(), 3, 255);
    for (const auto& r : c.at("rects"))
        for (int y = r[1].get<int>(); y <= std::min(r[3].get<int>(), page.height - 1); ++y)
            for (int x = r[0].get<int>(); x <= std::min(r[2].get<int>(), page.width - 1); ++x)
                for (int k = 0; k < 3; ++k) page.at(x, y, k) = std::uint8_t(r[4 + k].get<int>());
    return page;
}

// Pixels of `a` that differ from `b`, as a mask.
std::vector<bool> differs(const io::Image& a, const io::Image& b) {
    std::vector<bool> d(std::size_t(a.width) * a.height);
    for (int y = 0; y < a.height; ++y)
        for (int x = 0; x < a.width; ++x)
            for (int k = 0; k < 3; ++k) d[std::size_t(y) * a.width + x] = d[std::size_t(y) * a.width + x] || a.at(x, y, k) != b.at(x, y, k);
    return d;
}

bool near(const std::vector<bool>& mask, int width, int height, int x, int y, int r) {
    for (int dy = -r; dy <= r; ++dy)
        for (int dx = -r; dx <= r; ++dx) {
            const int u = x + dx, v = y + dy;
            if (u >= 0 && v >= 0 && u < width && v < height && mask[std::size_t(v) * width + u]) return true;
        }
    return false;
}

}  // namespace

TEST_SUITE("pipeline") {

TEST_CASE("the client's equation and text repairs, case by case (mineru-vl-utils' own outputs)") {
    const std::map<std::string, std::function<std::string(std::string_view)>> ours = {
        {"delimiters", strip_display_delimiters},     {"left_right", balance_left_right},
        {"double_subscript", drop_double_subscripts}, {"eqqcolon", replace_colon_equals},
        {"big", fix_big_delimiters},                  {"leq", space_after_less_than},
        {"unbalanced_braces", drop_unbalanced_braces}, {"equation", fix_equation},
        {"equation_brackets", wrap_equation},         {"display_to_inline", display_to_inline},
        {"macro_spacing", space_after_macros},        {"underscores", move_underscores_outside},
    };
    std::map<std::string, int> checked, changed;
    for (const auto& c : client_cases().at("fixers")) {
        const std::string in = c.at("in").get<std::string>();
        for (const auto& [name, out] : c.at("out").items()) {
            REQUIRE(ours.count(name) == 1);
            const std::string expected = out.get<std::string>();
            check_equal(name, in, expected, ours.at(name)(in));
            ++checked[name];
            changed[name] += expected != in;
        }
    }
    // Every repair is exercised: each changed some inputs and left others alone.
    for (const auto& [name, f] : ours) {
        INFO(name);
        CHECK(changed[name] >= 10);
        CHECK(checked[name] - changed[name] >= 3);
    }
}

TEST_CASE("the client's layout parsing (mineru-vl-utils' own outputs)") {
    std::size_t blocks = 0;
    for (const auto& c : client_cases().at("layout")) {
        const std::string in = c.at("in").get<std::string>();
        check_blocks("layout output " + nlohmann::json(in).dump(), c.at("out"), parse_layout(in));
        blocks += c.at("out").size();
    }
    CHECK(blocks >= 300);
}

TEST_CASE("the client's choice of blocks to recognise and their prompts (mineru-vl-utils' own outputs)") {
    std::size_t crops = 0, dropped = 0;
    for (const auto& c : client_cases().at("extract")) {
        std::vector<Block> in;
        for (const auto& b : c.at("in")) in.push_back(block_from(b));
        std::vector<Block> kept = drop_captions_inside_images(in);
        check_blocks("blocks " + c.at("in").dump(), c.at("blocks"), kept);
        dropped += in.size() - kept.size();
        const io::Image page(c.at("page")[0].get<int>(), c.at("page")[1].get<int>(), 3, 255);
        const std::vector<Crop> got = crops_for(page, kept, PageParserOptions{});
        INFO("blocks " << c.at("in").dump());
        REQUIRE(got.size() == c.at("indices").size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            CHECK(got[i].block == c.at("indices")[i].get<std::size_t>());
            CHECK(mineru_prompt(got[i].task) == c.at("prompts")[i].get<std::string>());
        }
        crops += got.size();
    }
    CHECK(crops >= 300);
    CHECK(dropped >= 10);
}

TEST_CASE("the client's post-processing of a page's blocks and its Markdown (mineru-vl-utils' own outputs)") {
    for (const auto& c : client_cases().at("post_process")) {
        std::vector<Block> in;
        for (const auto& b : c.at("in")) in.push_back(block_from(b));
        MinerUPostProcessOptions opt;
        opt.handle_equation_block = c.at("flags").at("handle_equation_block").get<bool>();
        opt.abandon_list = c.at("flags").at("abandon_list").get<bool>();
        opt.abandon_paratext = c.at("flags").at("abandon_paratext").get<bool>();
        const std::vector<Block> out = mineru_post_process(in, opt);
        check_blocks("blocks " + c.at("in").dump() + " flags " + c.at("flags").dump(), c.at("out"), out);
        check_equal("markdown", c.at("in").dump(), c.at("markdown").get<std::string>(), mineru_markdown(out));
    }
}

TEST_CASE("images inside tables: absorbed, painted over with a token, kept as JPEG (mineru-vl-utils' own outputs)") {
    REQUIRE(table_token_font() != nullptr);  // the client's font (fonts-dejavu-core)
    std::size_t tokens = 0, text_pixels = 0;
    for (const auto& c : client_cases().at("table_images")) {
        INFO("blocks " << c.at("in").dump());
        const io::Image page = draw_page(c);
        std::vector<Block> blocks;
        for (const auto& b : c.at("in")) blocks.push_back(block_from(b));
        std::vector<Block> bare = blocks;  // the same crops with no token drawn: the masks alone
        const std::vector<Crop> got = crops_for(page, blocks, PageParserOptions{});
        REQUIRE(got.size() == c.at("indices").size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            CHECK(got[i].block == c.at("indices")[i].get<std::size_t>());
            CHECK(mineru_prompt(got[i].task) == c.at("prompts")[i].get<std::string>());
        }
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            const auto& absorbed = c.at("absorbed");
            CHECK(blocks[i].absorbed_by_table == (std::find(absorbed.begin(), absorbed.end(), i) != absorbed.end()));
        }
        for (const auto& t : c.at("tables")) {
            const std::size_t k = t.at("block").get<std::size_t>();
            INFO("table block " << k);
            const auto crop = std::find_if(got.begin(), got.end(), [&](const Crop& x) { return x.block == k; });
            REQUIRE(crop != got.end());
            // The client's tokens are random: its images are compared with ours in order.
            REQUIRE(blocks[k].table_images.size() == t.at("tokens").size());
            for (std::size_t j = 0; j < blocks[k].table_images.size(); ++j) {
                const io::Image theirs = decode_base64_image(t.at("tokens")[j][1].get<std::string>());
                const io::Image ours = decode_base64_image(blocks[k].table_images[j].data_uri);
                REQUIRE(ours.width == theirs.width);
                REQUIRE(ours.height == theirs.height);
                double diff = 0;  // two JPEG encoders of the same pixels
                for (std::size_t p = 0; p < ours.pixels.size(); ++p) diff += std::abs(int(ours.pixels[p]) - int(theirs.pixels[p]));
                CHECK(diff / double(ours.pixels.size()) < 6.0);
                ++tokens;
            }
            const io::Image theirs = decode_base64_image(t.at("image_png").get<std::string>());
            REQUIRE(crop->image.width == theirs.width);
            REQUIRE(crop->image.height == theirs.height);
            // The same crop with the client's tokens, and the masks alone (no font, so no token
            // drawn). Every pixel where ours and the client's differ must lie near token ink in
            // both (glyph rasterisers differ; the boxes, their colours and the token's size and place
            // must not).
            std::vector<std::size_t> tables;
            for (std::size_t i = 0; i < bare.size(); ++i)
                if (bare[i].type == "table") tables.push_back(i);
            const auto map = table_image_map(bare, tables);
            std::vector<const Block*> images;
            for (std::size_t i : map[std::size_t(std::find(tables.begin(), tables.end(), k) - tables.begin())]) images.push_back(&bare[i]);
            const Block& tb = bare[k];
            std::vector<std::string> given;
            for (const auto& token : t.at("tokens")) given.push_back(token[0].get<std::string>());
            TableImageTokens client_tokens(given), no_tokens(given);
            std::vector<TableImage> unused;
            const io::Image table = crop_box(page, tb.x0 * page.width, tb.y0 * page.height, tb.x1 * page.width, tb.y1 * page.height);
            const io::Image ours = resize_by_need(mask_table_images(page, tb, images, table, client_tokens, table_token_font(), unused));
            const io::Image masks = resize_by_need(mask_table_images(page, tb, images, table, no_tokens, nullptr, unused));
            if (!given.empty()) CHECK(unused.front().token == given.front());
            const auto their_ink = differs(theirs, masks), our_ink = differs(ours, masks), mismatch = differs(ours, theirs);
            const auto count = [](const std::vector<bool>& m) { return std::size_t(std::count(m.begin(), m.end(), true)); };
            const std::size_t theirs_n = count(their_ink), ours_n = count(our_ink);
            CHECK(double(ours_n) >= 0.6 * double(theirs_n));
            CHECK(double(ours_n) <= 1.5 * double(theirs_n) + 4);
            std::size_t stray = 0;
            for (int y = 0; y < theirs.height; ++y)
                for (int x = 0; x < theirs.width; ++x)
                    if (mismatch[std::size_t(y) * theirs.width + x])
                        stray += !near(their_ink, theirs.width, theirs.height, x, y, 3) || !near(our_ink, theirs.width, theirs.height, x, y, 3);
            CHECK(stray == 0);
            text_pixels += theirs_n;
        }
    }
    CHECK(tokens >= 60);
    CHECK(text_pixels >= 2000);
}

TEST_CASE("tables with image tokens and formulas after recognition (mineru-vl-utils' own outputs)") {
    std::size_t replaced = 0;
    for (const auto& c : client_cases().at("table_post_process"))
        for (const Block& b : check_post_process(c)) replaced += b.content.find("<img src=") != std::string::npos;
    CHECK(replaced >= 20);
}

TEST_CASE("the client's chart repairs and Markdown tables, case by case (mineru-vl-utils' own outputs)") {
    std::size_t repaired = 0, malformed = 0, tables = 0;
    for (const auto& c : client_cases().at("charts")) {
        const std::string in = c.at("in").get<std::string>();
        const auto& out = c.at("out");
        const std::string fixed = repair_chart_repetition(in);
        check_equal("chart_repetition", in, out.at("chart_repetition").get<std::string>(), fixed);
        INFO("input: " << nlohmann::json(in).dump());
        CHECK(has_malformed_markdown_table(in) == out.at("malformed_table").get<bool>());
        const auto html = markdown_table_to_html(in);
        CHECK(html.has_value() == !out.at("table_html").is_null());
        if (html && !out.at("table_html").is_null()) check_equal("table_html", in, out.at("table_html").get<std::string>(), *html);
        repaired += fixed != in, malformed += out.at("malformed_table").get<bool>(), tables += html.has_value();
    }
    CHECK(repaired >= 40);
    CHECK(malformed >= 40);
    CHECK(tables >= 20);
}

TEST_CASE("the client's Mermaid checks and repairs, case by case (mineru-vl-utils' own outputs)") {
    const std::map<std::string, std::function<std::string(std::string_view)>> ours = {
        {"node_ids", fix_mermaid_node_ids},
        {"edge_lines", drop_mermaid_single_pipe_edges},
        {"subgraph_lines", fix_mermaid_subgraph_ids},
        {"strict", mermaid_strict},
    };
    std::map<std::string, int> changed;
    std::size_t flagged = 0;
    for (const auto& c : client_cases().at("mermaid")) {
        const std::string in = c.at("in").get<std::string>();
        for (const auto& [name, f] : ours) {
            const std::string expected = c.at("out").at(name).get<std::string>();
            check_equal(name, in, expected, f(in));
            changed[name] += expected != in;
        }
        const auto expected = c.at("out").at("repetition").get<std::vector<std::string>>();
        const auto got = mermaid_repetition_issues(in);
        INFO("repetition of " << nlohmann::json(in).dump() << "\n  client: " << nlohmann::json(expected).dump()
                              << "\n  docvlm: " << nlohmann::json(got).dump());
        CHECK(got == expected);
        flagged += !expected.empty();
    }
    for (const auto& [name, f] : ours) {
        INFO(name);
        CHECK(changed[name] >= 40);
    }
    CHECK(flagged >= 40);
}

TEST_CASE("image analysis: the blocks the client asks about and what it makes of the answers (mineru-vl-utils' own outputs)") {
    std::size_t asked = 0;
    for (const auto& c : client_cases().at("extract_image_analysis")) {
        std::vector<Block> in;
        for (const auto& b : c.at("in")) in.push_back(block_from(b));
        std::vector<Block> kept = drop_captions_inside_images(in);
        const io::Image page(c.at("page")[0].get<int>(), c.at("page")[1].get<int>(), 3, 255);
        PageParserOptions opt;
        opt.image_analysis = true;
        const std::vector<Crop> got = crops_for(page, kept, opt);
        INFO("blocks " << c.at("in").dump());
        REQUIRE(got.size() == c.at("indices").size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            CHECK(got[i].block == c.at("indices")[i].get<std::size_t>());
            CHECK(mineru_prompt(got[i].task) == c.at("prompts")[i].get<std::string>());
            asked += got[i].task == Task::image;
        }
    }
    CHECK(asked >= 30);
    std::map<std::string, int> types;
    for (const auto& c : client_cases().at("image_analysis")) {
        const std::string answer = c.at("in")[0].at("content").get<std::string>();
        const ImageAnalysis fields = read_image_analysis(answer);
        const auto& want = c.at("fields");
        check_equal("class", answer, want.at("class").get<std::string>(), fields.cls);
        check_equal("sub_class", answer, want.at("sub_class").get<std::string>(), fields.sub_class);
        check_equal("caption", answer, want.at("caption").get<std::string>(), fields.caption);
        check_equal("content", answer, want.at("content").get<std::string>(), fields.content);
        const std::vector<Block> out = check_post_process(c);
        if (!out.empty()) ++types[out[0].type];
    }
    for (const std::string t : {"image", "chart", "table", "equation"}) {
        INFO(t);
        CHECK(types[t] >= 8);
    }
}

}  // TEST_SUITE
