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
/// extract_and_validate_mermaid_strict: "" for blank content, else "```mermaid\n<code>\n```": the
/// code out of its fence, header typos, arrows and node labels normalised.
std::string mermaid_strict(std::string_view content);
/// _convert_pure_table_content_to_html: an HTML table as it is, a Markdown table or OTSL as HTML;
/// "" for anything else.
std::string pure_table_html(std::string_view content);
/// simple_process on an image or chart block holding an image analysis answer: its new type,
/// sub_type and content (formulas in a table as <eq> when `table_formula_eq_wrap`).
void apply_image_analysis(Block& block, bool table_formula_eq_wrap);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail::mermaid {

// The code inside the first ```mermaid … ``` fence, else the first ``` … ``` fence, else all of it.
inline std::string unfence(std::string_view s) {
    for (std::string_view open : {std::string_view("```mermaid"), std::string_view("```")}) {
        const std::size_t o = s.find(open);
        if (o == std::string_view::npos) continue;
        const std::size_t start = skip_spaces(s, o + open.size());
        const std::size_t close = s.find("```", start);
        if (close == std::string_view::npos) continue;
        std::size_t e = close;
        while (e > start)
            if (const std::size_t n = py::space_before(s, e)) e -= n;
            else break;
        return std::string(py::strip(s.substr(start, e - start)));
    }
    return std::string(py::strip(s));
}

// Python's \w: a letter, a number or '_'.
inline bool word_char(char32_t c) {
    if (c < 0x80) return id_char(c);
    if (c == static_cast<char32_t>(-1)) return false;
    const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) || (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

// ^(a|b|c)\b (any case) → to, for the first alternative that matches.
inline std::string fix_header(std::string code, std::initializer_list<std::string_view> typos, std::string_view to) {
    for (std::string_view t : typos) {
        if (code.size() < t.size() || py::lower(code.substr(0, t.size())) != t) continue;
        if (t.size() < code.size() && word_char(py::cp_at(code, t.size()))) continue;
        return std::string(to) + code.substr(t.size());
    }
    return code;
}

// The arrow repairs, in the client's order.
inline std::string fix_arrows(std::string_view code) {
    constexpr std::string_view bidi = "__MERMAID_BIDIR_ARROW__";
    std::string s;
    for (std::size_t i = 0; i < code.size();)
        if (const std::size_t n = bidirectional_at(code, i)) s += bidi, i += n;
        else s += code[i++];
    // each pattern: literal pieces with one or more whitespace between them
    auto replace_spaced = [](const std::string& in, std::initializer_list<std::string_view> pieces) {
        std::string out;
        for (std::size_t i = 0; i < in.size();) {
            std::size_t j = i;
            bool ok = true;
            for (std::size_t p = 0; p < pieces.size() && ok; ++p) {
                const std::string_view piece = *(pieces.begin() + p);
                if (p > 0) {
                    const std::size_t k = skip_spaces(in, j);
                    ok = k > j, j = k;
                }
                ok = ok && std::string_view(in).substr(j, piece.size()) == piece;
                j += piece.size();
            }
            if (ok) out += "-->", i = j;
            else out += in[i++];
        }
        return out;
    };
    s = replace_spaced(s, {"-", "->"});
    s = replace_spaced(s, {"--", ">"});
    s = replace_spaced(s, {"-", "-", ">"});
    // (?<![-=])\s+->\s+ → " --> "
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        const bool behind_ok = i == 0 || (s[i - 1] != '-' && s[i - 1] != '=');
        const std::size_t a = skip_spaces(s, i);
        if (behind_ok && a > i && s.compare(a, 2, "->") == 0 && skip_spaces(s, a + 2) > a + 2) {
            out += " --> ", i = skip_spaces(s, a + 2);
            continue;
        }
        out += s[i++];
    }
    for (std::size_t i = out.find(bidi); i != std::string::npos; i = out.find(bidi, i + 4)) out.replace(i, bidi.size(), "<-->");
    return out;
}

// ID[text] (ID: node-id words separated by spaces or tabs) → ID_with_underscores["text"] with its
// quotes as &quot; and newlines as <br>; subgraph lines, ["[…]"] arrays and [] kept.
inline std::string fix_node_labels(std::string_view code) {
    std::string out;
    std::size_t copied = 0;
    for (std::size_t p = 0; p < code.size();) {
        if (!node_char(py::cp_at(code, p))) {
            p += py::cp_len(code, p);
            continue;
        }
        std::size_t e = run_end(code, p, node_char);
        for (;;) {  // (?:[ \t]+N+)*
            std::size_t k = e;
            while (k < code.size() && (code[k] == ' ' || code[k] == '\t')) ++k;
            const std::size_t w = run_end(code, k, node_char);
            if (k == e || w == k) break;
            e = w;
        }
        std::size_t j = e;
        while (j < code.size() && (code[j] == ' ' || code[j] == '\t')) ++j;
        const std::size_t close = j < code.size() && code[j] == '[' ? code.find(']', j + 1) : std::string_view::npos;
        if (close == std::string_view::npos) {
            p = e;
            continue;
        }
        const std::string_view id = code.substr(p, e - p), text = code.substr(j + 1, close - j - 1);
        out.append(code.substr(copied, p - copied));
        if (py::lower(id).starts_with("subgraph ") || text.starts_with("\"[")) {
            out.append(code.substr(p, close + 1 - p));
        } else {
            std::string node;
            for (std::size_t i = 0; i < id.size();) {
                if (id[i] == ' ' || id[i] == '\t') {
                    while (i < id.size() && (id[i] == ' ' || id[i] == '\t')) ++i;
                    node += '_';
                } else {
                    node += id[i++];
                }
            }
            std::string_view t = text;
            if (t.empty()) {
                out += node + "[]";
            } else {
                if (t.starts_with('"') && t.ends_with('"')) t = t.size() >= 2 ? t.substr(1, t.size() - 2) : std::string_view();
                std::string safe;
                for (char c : t) safe += c == '"' ? std::string("&quot;") : c == '\n' ? std::string("<br>") : std::string(1, c);
                out += node + "[\"" + safe + "\"]";
            }
        }
        copied = p = close + 1;
    }
    out.append(code.substr(copied));
    return out;
}

}  // namespace detail::mermaid

inline std::string mermaid_strict(std::string_view content) {
    using namespace detail::mermaid;
    if (py::strip(content).empty()) return "";
    std::string code = unfence(py::strip(content));
    if (py::lower(code).starts_with("mermaid")) {
        std::size_t i = 0;
        for (int n = 0; n < 7; ++n) i += py::cp_len(code, i);
        code = std::string(py::strip(std::string_view(code).substr(i)));
    }
    code = fix_header(code, {"grap", "grapg", "graphh"}, "graph");
    code = fix_header(code, {"flowchar", "flowchartt"}, "flowchart");
    return "```mermaid\n" + fix_node_labels(fix_arrows(code)) + "\n```";
}

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
    r.cls = py::lower(tagged(answer, "<|class_start|>", "<|class_end|>"));  // tagged() strips
    r.sub_class = py::lower(tagged(answer, "<|sub_class_start|>", "<|sub_class_end|>"));
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
