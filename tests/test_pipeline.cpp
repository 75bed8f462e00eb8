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
    CHECK(blocks[0].x0 == doctest::Approx(0.1));
    CHECK(blocks[0].y1 == doctest::Approx(0.12));
    CHECK(blocks[1].type == "text");
    CHECK_FALSE(blocks[1].merge_prev);
    CHECK(blocks[2].type == "text");  // lower-cased
    CHECK(blocks[2].merge_prev);
    CHECK(blocks[3].type == "table");
    CHECK(blocks[3].angle == 270);
    CHECK(blocks[3].x0 == doctest::Approx(0.1));  // corners swapped into order
    CHECK(blocks[3].y0 == doctest::Approx(0.65));
    CHECK(blocks[4].type == "image");  // unknown -> image
    CHECK(blocks[4].angle == 180);
    CHECK(blocks[0].angle == 0);
    const auto bare = parse_layout("<|box_start|>100 100 200 200<|box_end|><|ref_start|>text<|ref_end|>");
    REQUIRE(bare.size() == 1);
    CHECK_FALSE(bare[0].angle.has_value());  // no rotation token: none (the client's None), JSON null
    Document named;
    named.blocks = {bare[0], blocks[3]};
    const auto nj = nlohmann::json::parse(named.json());
    CHECK(nj["blocks"][0]["angle"].is_null());
    CHECK(nj["blocks"][1]["angle"] == 270);
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

#include <docvlm/model/model.hpp>
#include <docvlm/pipeline/page_parser.hpp>
#include <docvlm/presets/qwen2vl.hpp>

#include <fstream>

#include "tiny_tokenizer.hpp"

TEST_SUITE("pipeline") {

TEST_CASE("two-stage parser runs end to end on the tiny model (plumbing, progress, limits)") {
    test::TempDir dir;
    const io::Tokenizer tok = test::tiny_tokenizer(dir);
    const auto model = Model<presets::Qwen2VL<F32>>::load(test::data("golden/qwen2vl-tiny-a"));
    std::vector<std::string> phases;
    PageParserOptions opt;
    opt.max_new_tokens = 12;  // a random model never stops by itself
    opt.progress = [&](std::string_view phase, std::size_t, std::size_t) { phases.emplace_back(phase); };
    const MinerUPageParser parser(model, tok, opt);
    const io::Image page = io::load_image(test::data("golden/qwen2vl-tiny-a/input.png"));
    const Document doc = parser.parse(page);
    CHECK(phases.front() == "layout");
    CHECK(phases.back() == "content");
    const PhaseTimes t = parser.phase_times();  // the per-phase profile of `docvlm parse --profile`
    CHECK(t.pages == 1);
    CHECK(t.layout > 0.0);
    CHECK(t.vision > 0.0);
    CHECK(t.prefill > 0.0);
    CHECK(t.generated_tokens >= 1);
    const auto j = nlohmann::json::parse(doc.json());
    CHECK(j.contains("blocks"));
    // One crop, one prompt: the same output twice (greedy), at most max_new_tokens tokens.
    const std::size_t hits = parser.vision_cache().hits();
    const std::string a = parser.recognise(page, mineru_prompt(Task::table), sampling_for(Task::table, 8));
    std::size_t streamed = 0;
    const std::string b = parser.recognise(page, mineru_prompt(Task::table), sampling_for(Task::table, 8), [&](std::int32_t) { ++streamed; });
    CHECK(a == b);
    CHECK(streamed >= 1);
    CHECK(parser.vision_cache().hits() == hits + 1);  // the second question reused the vision features
    io::Image other = page;
    other.pixels[0] ^= 1;  // one changed byte is another image
    parser.recognise(other, mineru_prompt(Task::table), sampling_for(Task::table, 2));
    CHECK(parser.vision_cache().hits() == hits + 1);
    CHECK(a.size() <= 8 * 20);  // at most 8 tokens of at most 20 bytes each
    // Several crops decoded together: each as recognise() reads it alone.
    const std::vector<io::Image> images = {page, io::crop(page, 0, 0, page.width / 2, page.height / 2), other};
    const std::vector<std::string> prompts = {std::string(mineru_prompt(Task::text)), std::string(mineru_prompt(Task::formula)),
                                              std::string(mineru_prompt(Task::table))};
    const std::vector<GenerationOptions> options = {sampling_for(Task::text, 12), sampling_for(Task::formula, 5),
                                                    sampling_for(Task::table, 9)};
    const auto batched = parser.recognise_batch(images, prompts, options);
    REQUIRE(batched.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) CHECK(batched[i] == parser.recognise(images[i], prompts[i], options[i]));
    CHECK_THROWS_AS(parser.recognise_batch(images, prompts, std::span(options).first(2)), Error);
    // a whole page parsed with batches of 8 or one crop at a time: the same document
    PageParserOptions one = opt;
    one.batch = 1;
    one.progress = {};
    CHECK(MinerUPageParser(model, tok, one).parse(page).json() == doc.json());
}

TEST_CASE("text-only questions (the client's cross-page table check) on the tiny model: batched as alone, as the chat template asks") {
    test::TempDir dir;
    const io::Tokenizer tok = test::tiny_tokenizer(dir);
    const auto model = Model<presets::Qwen2VL<F32>>::load(test::data("golden/qwen2vl-tiny-a"));
    PageParserOptions opt;
    opt.max_new_tokens = 6;  // a random model never stops by itself
    const MinerUPageParser parser(model, tok, opt);
    const std::vector<std::string> prompts = {"Please merge the next two tables.", "abc"};
    const GenerationOptions o = sampling_for(Task::text, 6);
    const auto both = parser.answer_text_batch(prompts, o);
    REQUIRE(both.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
        CHECK(both[i] == parser.answer_text_batch(std::span(prompts).subspan(i, 1), o)[0]);
        // the same as a context fed the chat text without an image
        const auto ids = tok.encode(chat_prompt_text(prompts[i]));
        GenerationOptions g = o;
        g.stop_tokens = {model.dims().eos_token_id};
        auto ctx = model.context(ids.size() + 6);
        auto out = ctx.generate(ids, {}, {}, g);
        while (!out.empty() && out.back() == model.dims().eos_token_id) out.pop_back();
        CHECK(both[i] == tok.decode(out));
    }
    CHECK(chat_prompt_text("Q") == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n"
                                  "<|im_start|>assistant\n");
    // the check over pages: two boundary tables, one question, the model's answer applied if it is a list
    std::vector<Document> pages(2);
    Block t;
    t.type = "table", t.x0 = 0.1, t.x1 = 0.9, t.y1 = 0.5;
    t.content = "<table><tr><td>a</td><td>b</td></tr></table>";
    pages[0].blocks = {t};
    t.content = "<table><tr><td></td><td>c</td></tr></table>";
    pages[1].blocks = {t};
    parser.check_cross_page_tables(pages);
    const std::vector<std::string> asked = {cross_page_merge_tasks({pages[0].blocks, pages[1].blocks})[0].prompt};
    const std::string answer = parser.answer_text_batch(asked, o)[0];
    const auto flags = parse_cell_merge_response(answer);
    CHECK(pages[1].blocks[0].cell_merge == (flags && flags->size() == 2 ? *flags : std::vector<int>{}));
}

TEST_CASE("documents render to Markdown, JSON and HTML") {
    Document doc;
    auto block = [](std::string type, double x0, double y0, double x1, double y1, bool merge_prev, std::string content) {
        Block b;
        b.type = std::move(type), b.x0 = x0, b.y0 = y0, b.x1 = x1, b.y1 = y1, b.angle = 0, b.merge_prev = merge_prev;
        b.content = std::move(content);
        return b;
    };
    doc.blocks = {block("header", 0, 0, 1, 0.05, false, "Running head"),
                  block("title", 0.1, 0.1, 0.9, 0.15, false, "Results"),
                  block("text", 0.1, 0.2, 0.5, 0.5, false, "First half of a"),
                  block("text", 0.5, 0.2, 0.9, 0.5, true, "paragraph."),
                  block("equation", 0.1, 0.55, 0.9, 0.6, false, wrap_equation("a^2 + b^2 = c^2")),
                  block("table", 0.1, 0.6, 0.9, 0.8, false, otsl_to_html("<fcel>x<fcel>y<nl>")),
                  block("image", 0.1, 0.8, 0.3, 0.9, false, ""),
                  block("page_number", 0.45, 0.95, 0.55, 0.99, false, "7")};
    const std::string md = doc.markdown();
    CHECK(md.find("Running head") == std::string::npos);
    CHECK(md.find("\n7") == std::string::npos);
    CHECK(md.find("# Results\n\nFirst half of a paragraph.\n\n\\[\na^2 + b^2 = c^2\n\\]\n\n<table><tr><td>x</td><td>y</td></tr></table>") !=
          std::string::npos);
    CHECK(md.find("![image]") != std::string::npos);
    const auto j = nlohmann::json::parse(doc.json());
    CHECK(j["blocks"].size() == 8);
    CHECK(j["blocks"][1]["type"] == "title");
    CHECK(j["blocks"][3]["merge_prev"] == true);
    CHECK(j["blocks"][1]["bbox"][2].get<double>() == doctest::Approx(0.9));
    CHECK(doc.html().find("<h1>Results</h1>") != std::string::npos);
    CHECK(postprocess_content("table", "<fcel>1<nl>") == "<table><tr><td>1</td></tr></table>");
    CHECK(postprocess_content("equation", "x") == "\\[\nx\n\\]");
    // text as the client leaves it (no strip), with its repairs; a "[Non-Text]" answer drops the block
    CHECK(postprocess_content("text", "  hello \n") == "  hello \n");
    CHECK(postprocess_content("text", "a \\[x\\] b") == "a \\(x\\) b");
    CHECK(postprocess_content("text", " [Non-Text]") == "");
    CHECK(postprocess_content("equation", "\\[ x_{1}_{2} \\coloneqq y \\]") == "\\[\nx := y\n\\]");
}

}  // TEST_SUITE
