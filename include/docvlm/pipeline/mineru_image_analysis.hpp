// docvlm/pipeline/mineru_image_analysis.hpp — the MinerU2.5 client's image analysis (off by
// default; opendatalab/mineru-vl-utils 1.2.1, image_analysis_postprocess.py and post_process's
// simple_process), reproduced exactly. With it on, image and chart blocks that stand alone (not
// ≥ 90 % inside an image_block) and are large enough (both sides over a tenth of the page, or over
// a hundredth of its area) are asked "\nImage Analysis:"; the model answers with tagged fields
//   <|class_start|>chart<|class_end|><|sub_class_start|>bar<|sub_class_end|>
//   <|caption_start|>…<|caption_end|><|content_start|>…<|content_end|>
// and the block becomes, by class: a table (pure_table: Markdown, OTSL or HTML → HTML), an
// equation (pure_formula), a chart with its Markdown table (repaired: mineru_charts.hpp), or an
// image with its class as sub_type — a flowchart's Mermaid repaired (mineru_mermaid.hpp), a
// chemical's content dropped, a natural image (or one without content) described by its caption.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/pipeline/document.hpp>
#include <docvlm/pipeline/mineru.hpp>
#include <docvlm/pipeline/mineru_charts.hpp>
#include <docvlm/pipeline/mineru_mermaid.hpp>
#include <docvlm/pipeline/mineru_table_images.hpp>
#include <docvlm/pipeline/py_text.hpp>

#include <string>
#include <string_view>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

/// The fields of an image analysis answer, as process_image_or_chart returns them: class and
/// sub-class stripped and lower-cased, caption stripped, content normalised by class.
struct ImageAnalysis {
    std::string cls, sub_class, caption, content;
};

/// process_image_or_chart.
ImageAnalysis read_image_analysis(std::string_view answer);
/// _convert_pure_table_content_to_html: an HTML table as it is, a Markdown table or OTSL as HTML;
/// "" for anything else.
std::string pure_table_html(std::string_view content);
/// simple_process on an image or chart block holding an image analysis answer: its new type,
/// sub_type and content (formulas in a table as <eq> when `table_formula_eq_wrap`).
void apply_image_analysis(Block& block, bool table_formula_eq_wrap);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail::image_analysis {

// _extract_tagged_field: the stripped text between the first start tag and the end tag after it.
inline std::string tagged(std::string_view text, std::string_view start, std::string_view end) {
    const std::size_t s = text.find(start);
    if (s == std::string_view::npos) return "";
    const std::size_t e = text.find(end, s + start.size());
    if (e == std::string_view::npos) return "";
    return std::string(py::strip(text.substr(s + start.size(), e - s - start.size())));
}

inline std::size_t occurrences(std::string_view s, std::string_view what) {
    std::size_t n = 0;
    for (std::size_t i = s.find(what); i != std::string_view::npos; i = s.find(what, i + what.size())) ++n;
    return n;
}

}  // namespace detail::image_analysis

inline ImageAnalysis read_image_analysis(std::string_view answer) {
    using namespace detail::image_analysis;
    constexpr std::string_view content_start = "<|content_start|>", content_end = "<|content_end|>";
    ImageAnalysis r;
    r.cls = py::lower(py::strip(tagged(answer, "<|class_start|>", "<|class_end|>")));
    r.sub_class = py::lower(py::strip(tagged(answer, "<|sub_class_start|>", "<|sub_class_end|>")));
    r.caption = tagged(answer, "<|caption_start|>", "<|caption_end|>");
    std::string content = tagged(answer, content_start, content_end);
    if (content.empty() && occurrences(answer, content_start) == 1 && occurrences(answer, content_end) == 0)
        content = std::string(answer.substr(answer.find(content_start) + content_start.size()));  // cut off: kept as is
    if (r.cls == "chemical") {
        content.clear();
    } else if (r.cls == "flowchart") {
        if (!mermaid_repetition_issues(content).empty()) content.clear();
        else content = fix_mermaid_subgraph_ids(drop_mermaid_single_pipe_edges(fix_mermaid_node_ids(content)));
        content = mermaid_strict(content);
    } else if (r.cls == "chart") {
        content = repair_chart_repetition(content);
        if (!content.empty() && has_malformed_markdown_table(content)) content.clear();
    }
    r.content = std::move(content);
    return r;
}

inline std::string pure_table_html(std::string_view content) {
    const std::string_view s = py::strip(content);
    if (s.empty()) return "";
    const std::string lower = py::lower(s);
    if (lower.starts_with("<table") && lower.ends_with("</table>")) return std::string(s);
    if (auto html = markdown_table_to_html(content)) return *html;
    for (std::string_view tag : {"<nl>", "<fcel>", "<ecel>", "<lcel>", "<ucel>", "<xcel>"})
        if (content.find(tag) != std::string_view::npos) return otsl_to_html(content);
    return "";
}

inline void apply_image_analysis(Block& b, bool table_formula_eq_wrap) {
    const ImageAnalysis r = read_image_analysis(b.content);
    if (r.cls == "pure_table") {
        b.type = "table";
        const std::string html = pure_table_html(r.content);
        b.content = html.empty() ? std::string() : table_formula_eq_wrap ? wrap_table_formulas(html) : html;
    } else if (r.cls == "pure_formula") {
        b.type = "equation";
        b.content = r.content;
    } else if (r.cls == "chart") {
        b.type = "chart";
        b.sub_type = r.sub_class;
        b.content = r.content;
    } else {
        b.type = "image";
        b.sub_type = r.cls;
        b.content = r.cls == "natural_image" || r.content.empty() ? r.caption : r.content;
    }
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
