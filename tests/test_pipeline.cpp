// Tests of docvlm/pipeline/mineru.hpp: MinerU2.5 output strings as the model writes them, and the
// results the official client (mineru-vl-utils) documents for them.
#include "test_util.hpp"

#include <docvlm/io/tokenizer.hpp>
#include <docvlm/pipeline/mineru.hpp>

using namespace docvlm;
using namespace docvlm::pipeline;

TEST_SUITE("pipeline") {

TEST_CASE("prompts, chat template and sampling settings of the client") {
    CHECK(mineru_prompt(Task::layout) == "\nLayout Detection:");
    CHECK(mineru_prompt(Task::text) == "\nText Recognition:");
    CHECK(mineru_prompt(Task::table) == "\nTable Recognition:");
    CHECK(mineru_prompt(Task::formula) == "\nFormula Recognition:");
    CHECK(task_for("table") == Task::table);
    CHECK(task_for("equation") == Task::formula);
    CHECK(task_for("title") == Task::text);
    CHECK(skips_content("image"));
    CHECK(skips_content("equation_block"));
    CHECK_FALSE(skips_content("text"));
    // The exact chat text of the golden set's prompt (1 image pad before expansion).
    CHECK(chat_prompt(mineru_prompt(Task::text), 1) ==
          "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|>"
          "<|vision_end|>\nText Recognition:<|im_end|>\n<|im_start|>assistant\n");
    const auto layout = sampling_for(Task::layout), table = sampling_for(Task::table), text = sampling_for(Task::text);
    CHECK(layout.temperature == 0.0f);
    CHECK(layout.no_repeat_ngram == 100);
    CHECK(layout.presence_penalty == 0.0f);
    CHECK(table.presence_penalty == 1.0f);
    CHECK(table.frequency_penalty == 0.005f);
    CHECK(text.frequency_penalty == 0.05f);
}

TEST_CASE("the chat prompt tokenizes as Hugging Face's processor does (golden input ids)") {
    std::vector<io::AddedToken> added;
    const char* names[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
                           "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
                           "<|image_pad|>", "<|video_pad|>"};
    for (int i = 0; i < 14; ++i) added.push_back({names[i], 151643 + i, true});
    const auto tok = io::Tokenizer::from_vocab_merges(test::data("tokenizers/qwen2/vocab.json"), test::data("tokenizers/qwen2/merges.txt"), added);
    std::ifstream in(test::data("golden/qwen2vl-tiny-a/manifest.json"));
    const auto manifest = nlohmann::json::parse(in);
    const auto want = manifest["real_qwen2_input_ids"].get<std::vector<std::int32_t>>();
    CHECK(tok.encode(chat_prompt(mineru_prompt(Task::text), 60)) == want);
}

TEST_CASE("layout output: blocks, rotation, continuation, and what the client drops") {
    const std::string out =
        "<|box_start|>100 050 900 120<|box_end|><|ref_start|>title<|ref_end|><|rotate_up|>\n"
        "<|box_start|>100 130 480 600<|box_end|><|ref_start|>text<|ref_end|><|rotate_up|>\n"
        "<|box_start|>520 130 900 600<|box_end|><|ref_start|>Text<|ref_end|><|rotate_up|><|txt_contd_tgt|>\n"
        "<|box_start|>900 700 100 650<|box_end|><|ref_start|>table<|ref_end|><|rotate_left|>\n"
        "<|box_start|>150 660 300 690<|box_end|><|ref_start|>text<|ref_end|><|rotate_up|>\n"   // inside the table: dropped
        "<|box_start|>10 10 20<|box_end|><|ref_start|>text<|ref_end|>\n"                      // 3 numbers: malformed
        "<|box_start|>0 0 1001 5<|box_end|><|ref_start|>text<|ref_end|>\n"                    // out of range
        "<|box_start|>5 5 5 9<|box_end|><|ref_start|>text<|ref_end|>\n"                       // zero area
        "<|box_start|>1 1 9 9<|box_end|><|ref_start|>sticker<|ref_end|>\n"                    // unknown type
        "<|box_start|>1 900 99 990<|box_end|><|ref_start|>inline_formula<|ref_end|>\n"        // dropped silently
        "<|box_start|>400 950 600 990<|box_end|><|ref_start|>unknown<|ref_end|><|rotate_down|>";
    std::vector<std::string> warnings;
    const auto blocks = parse_layout(out, &warnings);
    REQUIRE(blocks.size() == 5);
    CHECK(blocks[0].type == "title");
    CHECK(blocks[0].x0 == doctest::Approx(0.1f));
    CHECK(blocks[0].y1 == doctest::Approx(0.12f));
    CHECK(blocks[1].type == "text");
    CHECK_FALSE(blocks[1].merge_prev);
    CHECK(blocks[2].type == "text");  // lower-cased
    CHECK(blocks[2].merge_prev);
    CHECK(blocks[3].type == "table");
    CHECK(blocks[3].angle == 270);
    CHECK(blocks[3].x0 == doctest::Approx(0.1f));  // corners swapped into order
    CHECK(blocks[3].y0 == doctest::Approx(0.65f));
    CHECK(blocks[4].type == "image");  // unknown -> image
    CHECK(blocks[4].angle == 180);
    CHECK(warnings.size() == 4);
    CHECK(parse_layout("").empty());
    std::vector<std::string> w2;
    CHECK(parse_layout("I cannot see a page", &w2).empty());
    CHECK(w2.size() == 1);
    // Blocks also parse without newlines between them (the client's regex scans the whole output).
    CHECK(parse_layout("<|box_start|>1 2 3 4<|box_end|><|ref_start|>text<|ref_end|><|box_start|>5 6 7 8<|box_end|><|ref_start|>title<|ref_end|>")
              .size() == 2);
}

TEST_CASE("OTSL tables to HTML with spans, padding and escaping") {
    CHECK(otsl_to_html("<fcel>A<fcel>B<nl><fcel>C<fcel>D<nl>") ==
          "<table><tr><td>A</td><td>B</td></tr><tr><td>C</td><td>D</td></tr></table>");
    // horizontal, vertical and 2-D spans
    CHECK(otsl_to_html("<fcel>Head<lcel><lcel><nl><fcel>a<fcel>b<fcel>c<nl>") ==
          "<table><tr><td colspan=\"3\">Head</td></tr><tr><td>a</td><td>b</td><td>c</td></tr></table>");
    CHECK(otsl_to_html("<fcel>Tall<fcel>x<nl><ucel><fcel>y<nl>") ==
          "<table><tr><td rowspan=\"2\">Tall</td><td>x</td></tr><tr><td>y</td></tr></table>");
    CHECK(otsl_to_html("<fcel>Big<lcel><fcel>r<nl><ucel><xcel><fcel>s<nl><fcel>t<fcel>u<fcel>v<nl>") ==
          "<table><tr><td rowspan=\"2\" colspan=\"2\">Big</td><td>r</td></tr><tr><td>s</td></tr>"
          "<tr><td>t</td><td>u</td><td>v</td></tr></table>");
    // empty cells, ragged rows padded with empty cells, whitespace and escaping
    CHECK(otsl_to_html("<fcel> a & b <ecel><fcel>x<nl><fcel><i>\"q\"</i><nl>") ==
          "<table><tr><td>a &amp; b</td><td></td><td>x</td></tr><tr><td>&lt;i&gt;&quot;q&quot;&lt;/i&gt;</td><td></td><td></td></tr></table>");
    CHECK(otsl_to_html("<table><tr><td>1</td></tr></table>") == "<table><tr><td>1</td></tr></table>");
    CHECK(otsl_to_html("") == "");
    CHECK(otsl_to_html("no table here") == "");
    CHECK(otsl_to_html("<nl><nl>") == "");
}

TEST_CASE("display equations are wrapped in \\[ \\]") {
    CHECK(wrap_equation("E = mc^2") == "\\[\nE = mc^2\n\\]");
    CHECK(wrap_equation("  \\[x\\]  ") == "\\[x\\]");
    CHECK(wrap_equation("\\[\na+b") == "\\[\na+b\n\\]");
}

}  // TEST_SUITE
