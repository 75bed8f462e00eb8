// The MinerU2.5 client's behaviour, pinned by the client's own outputs: tests/data/mineru-client
// (written by tools/reference/mineru_client/make_cases.py running opendatalab/mineru-vl-utils's
// functions; see the README there). docvlm must give byte-identical results on every case.
#include "test_util.hpp"

#include <docvlm/pipeline/latex_fixes.hpp>
#include <docvlm/pipeline/mineru.hpp>
#include <docvlm/pipeline/mineru_post_process.hpp>
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
    }
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
        const std::vector<Block> kept = drop_captions_inside_images(in);
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

}  // TEST_SUITE
