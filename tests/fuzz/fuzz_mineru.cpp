// libFuzzer target: what docvlm parses out of model output and writes for the user. The first
// byte picks the part:
//   0  the MinerU layout grammar (parse_layout): every block has a known type, a box inside the
//      page with x0 < x1 and y0 < y1, and an angle of 0, 90, 180 or 270;
//   1  OTSL → HTML: tags balanced, one <table> (or nothing), input that is already a table kept;
//   2  block post-processing and the Markdown / HTML / JSON writers on hostile block text: the
//      JSON parses back to the same blocks (contents byte for byte when they are valid UTF-8),
//      the HTML's text carries no raw '<' from the content;
//   3  the client's LaTeX and text repairs (latex_fixes.hpp) and its post-processing of a page's
//      blocks: no crash or hang, and what drop_unbalanced_braces returns has balanced braces;
//   4  image analysis answers (mineru_image_analysis.hpp: tagged fields, chart and Mermaid repairs):
//      a chart repair returns the input or a table of pipe-bounded rows, a Markdown table's HTML
//      has balanced tags, Mermaid comes back fenced, an image or chart block gets a known type;
//   5  tables across a page break (html_parse.hpp, mineru_table_merge.hpp, mineru_cross_page.hpp):
//      the input split in two tables; parsing, the client's check and MinerU's join either work
//      or throw docvlm::Error; the first page keeps its table, the second keeps it or loses it.
#include "fuzz_util.hpp"

#include <docvlm/pipeline/html_parse.hpp>
#include <docvlm/pipeline/latex_fixes.hpp>
#include <docvlm/pipeline/mineru_cross_page.hpp>
#include <docvlm/pipeline/mineru_image_analysis.hpp>
#include <docvlm/pipeline/mineru_post_process.hpp>
#include <docvlm/pipeline/page_parser.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

std::size_t count(std::string_view s, std::string_view w) {
    std::size_t n = 0;
    for (std::size_t i = s.find(w); i != s.npos; i = s.find(w, i + w.size())) ++n;
    return n;
}

void check_layout(std::string_view in) {
    std::vector<std::string> warnings;
    for (const auto& b : docvlm::pipeline::parse_layout(in, &warnings)) {
        const auto& types = docvlm::pipeline::block_types;
        if (std::find(types.begin(), types.end(), b.type) == types.end()) std::abort();
        if (!(0 <= b.x0 && b.x0 < b.x1 && b.x1 <= 1 && 0 <= b.y0 && b.y0 < b.y1 && b.y1 <= 1)) std::abort();
        if (b.angle && *b.angle != 0 && *b.angle != 90 && *b.angle != 180 && *b.angle != 270) std::abort();
    }
}

void check_otsl(std::string_view in) {
    const std::string html = docvlm::pipeline::otsl_to_html(in);
    if (in.size() >= 14 && in.substr(0, 6) == "<table" && in.substr(in.size() - 8) == "</table>") {
        if (html != in) std::abort();
        return;
    }
    if (html.empty()) return;
    if (count(html, "<table>") != 1 || count(html, "</table>") != 1 || html.rfind("<table>", 0) != 0) std::abort();
    if (count(html, "<tr>") != count(html, "</tr>") || count(html, "<td") != count(html, "</td>")) std::abort();
    // cell text is escaped: every '<' in the output opens one of the table's own tags
    for (std::size_t i = html.find('<'); i != html.npos; i = html.find('<', i + 1)) {
        const std::string_view t = std::string_view(html).substr(i, 7);
        if (t.rfind("<table>", 0) && t.rfind("</table", 0) && t.rfind("<tr>", 0) && t.rfind("</tr>", 0) && t.rfind("<td", 0) &&
            t.rfind("</td>", 0))
            std::abort();
    }
}

void check_writers(std::string_view in) {
    // Blocks of every type, their contents cut from the input.
    docvlm::pipeline::Document doc;
    const auto& types = docvlm::pipeline::block_types;
    std::size_t pos = 0;
    for (std::size_t k = 0; k < types.size() && pos <= in.size(); ++k) {
        const std::size_t len = std::min<std::size_t>(in.size() - pos, 1 + k * 7 % 23);
        docvlm::pipeline::Block b;
        b.type = std::string(types[k]);
        b.x0 = 0.1, b.y0 = 0.1, b.x1 = 0.9, b.y1 = 0.2;
        b.merge_prev = k % 3 == 1;
        b.content = docvlm::pipeline::postprocess_content(b.type, in.substr(pos, len));
        pos += len;
        doc.blocks.push_back(std::move(b));
    }
    doc.warnings.push_back(std::string(in.substr(0, 64)));
    (void)doc.markdown();
    const std::string html = doc.html();
    if (count(html, "<p>") != count(html, "</p>")) std::abort();
    const auto j = nlohmann::json::parse(doc.json());  // throws (→ crash report) if the writer's JSON is invalid
    if (j.at("blocks").size() != doc.blocks.size()) std::abort();
    for (std::size_t k = 0; k < doc.blocks.size(); ++k) {
        const auto& b = j["blocks"][k];
        if (b.at("type") != doc.blocks[k].type) std::abort();
        if (fuzz::valid_utf8(doc.blocks[k].content) && b.at("content") != doc.blocks[k].content) std::abort();
    }
}

void check_repairs(std::string_view in) {
    using namespace docvlm::pipeline;
    const std::string braces = drop_unbalanced_braces(in);
    long depth = 0;
    for (std::size_t i = 0; i < braces.size(); ++i) {
        std::size_t slashes = 0;
        while (slashes < i && braces[i - 1 - slashes] == '\\') ++slashes;
        if (slashes % 2 == 1) continue;
        if (braces[i] == '{') ++depth;
        if (braces[i] == '}' && --depth < 0) std::abort();
    }
    if (depth != 0) std::abort();
    (void)fix_equation(in);
    (void)fix_text(in);
    // a page of blocks of every type, contents cut from the input, some boxes nested
    std::vector<Block> blocks;
    std::size_t pos = 0;
    for (std::size_t k = 0; pos < in.size() && k < 40; ++k) {
        const std::size_t len = std::min<std::size_t>(in.size() - pos, 1 + k * 13 % 41);
        Block b;
        b.type = std::string(block_types[(k * 7 + in.size()) % block_types.size()]);
        b.x0 = 0.1 + 0.01 * double(k % 5), b.y0 = 0.1, b.x1 = 0.9, b.y1 = 0.2 + 0.1 * double(k % 3);
        b.merge_prev = b.type == "text" && k % 2 == 1;
        b.content = in.substr(pos, len);
        pos += len;
        blocks.push_back(std::move(b));
    }
    const std::vector<Block> out = mineru_post_process(blocks);
    if (out.size() > blocks.size()) std::abort();
    (void)mineru_markdown(out);
}

void check_image_analysis(std::string_view in) {
    using namespace docvlm::pipeline;
    const std::string chart = repair_chart_repetition(in);
    if (chart != in)
        for (std::string_view line : py::splitlines(chart))
            if (!line.starts_with("| ") || !line.ends_with(" |")) std::abort();
    if (const auto html = markdown_table_to_html(in))
        if (count(*html, "<tr>") != count(*html, "</tr>") || count(*html, "<table>") != 1) std::abort();
    (void)has_malformed_markdown_table(in);
    (void)mermaid_repetition_issues(in);
    (void)fix_mermaid_subgraph_ids(drop_mermaid_single_pipe_edges(fix_mermaid_node_ids(in)));
    const std::string mermaid = mermaid_strict(in);
    if (!mermaid.empty() && (!mermaid.starts_with("```mermaid\n") || !mermaid.ends_with("\n```"))) std::abort();
    Block b;
    b.type = in.size() % 2 ? "image" : "chart";
    b.content = in;
    apply_image_analysis(b, in.size() % 3 == 0);
    if (b.type != "image" && b.type != "chart" && b.type != "table" && b.type != "equation") std::abort();
}

void check_cross_page(std::string_view in) {
    using namespace docvlm::pipeline;
    const std::size_t cut = in.find("\n\n");
    const std::string a(in.substr(0, cut)), b(cut == in.npos ? "" : in.substr(cut + 2));
    try {  // markup BeautifulSoup wrote need not read back alike (<br> holding text does not)
        (void)html::parse(html::parse(a).to_html());
    } catch (const docvlm::Error&) {
    }
    std::vector<std::vector<Block>> pages(2);
    for (auto [page, content] : {std::pair{0, &a}, std::pair{1, &b}}) {
        Block t;
        t.type = "table", t.content = *content, t.x0 = 0.1, t.x1 = 0.9, t.y0 = 0.1, t.y1 = 0.5;
        pages[std::size_t(page)].push_back(t);
    }
    const auto tasks = cross_page_merge_tasks(pages);
    std::vector<std::string> answers;
    for (const auto& task : tasks) answers.push_back(cross_page_merge_answer(task.prompt).value_or("[1]"));
    apply_cross_page_merge(pages, tasks, answers);
    std::vector<Document> docs(2);
    docs[0].blocks = pages[0], docs[1].blocks = pages[1];
    merge_cross_page_tables(docs);
    if (docs[0].blocks.size() != 1 || docs[1].blocks.size() > 1) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view in = fuzz::text(data + 1, size - 1);
    switch (data[0] % 6) {
        case 0: check_layout(in); break;
        case 1: check_otsl(in); break;
        case 3: check_repairs(in); break;
        case 4: check_image_analysis(in); break;
        case 5: check_cross_page(in); break;
        default: check_writers(in); break;
    }
    return 0;
}
