// docvlm/pipeline/mineru_post_process.hpp — what the MinerU2.5 client (opendatalab/mineru-vl-utils
// 1.2.1, post_process/__init__.py and json2markdown.py) does with a page's recognised blocks
// before a user sees them, reproduced exactly: tables to HTML (images drawn into a table's crop
// back in as <img>, their own blocks dropped; optionally formulas as <eq>), list items to text, "[Non-Text]"
// placeholders removed, equation and text repairs (latex_fixes.hpp), the equations of an
// equation_block joined into one array, equations wrapped in \[ \], containers and (on request)
// lists and page furniture dropped, image analysis answers read (mineru_image_analysis.hpp); and
// the client's Markdown.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/pipeline/document.hpp>
#include <docvlm/pipeline/latex_fixes.hpp>
#include <docvlm/pipeline/mineru.hpp>
#include <docvlm/pipeline/mineru_image_analysis.hpp>
#include <docvlm/pipeline/mineru_table_images.hpp>
#include <docvlm/pipeline/py_text.hpp>

#include <algorithm>
#include <array>
#include <string>
#include <string_view>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

/// The client's post-processing switches (MinerUClient's defaults).
struct MinerUPostProcessOptions {
    bool handle_equation_block = true;  ///< join the equations inside an equation_block into one
    bool abandon_list = false;          ///< drop list containers
    bool abandon_paratext = false;      ///< drop headers, footers, page numbers, side text, page footnotes
    bool simple_post_process = false;   ///< only tables to HTML, list items to text, "[Non-Text]" removed
    bool table_formula_eq_wrap = false; ///< a table's \( \) and \[ \] formulas as <eq> </eq>
};

/// The client's post_process on one page's blocks (layout order, content as recognised).
std::vector<Block> mineru_post_process(std::vector<Block> blocks, const MinerUPostProcessOptions& opt = {});
/// The client's json2md: contents in order, separated by blank lines; a text block marked
/// merge_prev continues the last text paragraph (after a space unless it holds CJK ideographs).
std::string mineru_markdown(const std::vector<Block>& blocks);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail::mineru_post {

inline bool in(std::string_view type, std::initializer_list<std::string_view> types) {
    return std::find(types.begin(), types.end(), type) != types.end();
}

// "\tag{x}" (optional spaces before the brace) → "(x)", counting the tags when `out` is null.
inline std::size_t rewrite_tags(std::string_view s, std::string* out) {
    std::size_t n = 0, copied = 0;
    for (std::size_t i = s.find("\\tag"); i != std::string_view::npos; i = s.find("\\tag", i + 1)) {
        std::size_t k = i + 4;
        while (const std::size_t sp = py::space_at(s, k)) k += sp;
        if (k >= s.size() || s[k] != '{') continue;
        const std::size_t close = s.find('}', k + 1);
        if (close == std::string_view::npos) continue;
        ++n;
        if (out) out->append(s.substr(copied, i - copied)).append("(").append(s.substr(k + 1, close - k - 1)).append(")");
        copied = close + 1;
        i = close;
    }
    if (out) out->append(s.substr(copied));
    return n;
}

// The equations of one equation_block as one array; "\tag{x}" becomes "(x)" when there are several.
inline std::string join_equations(const std::vector<const Block*>& parts) {
    std::size_t tags = 0;
    for (const Block* b : parts) tags += rewrite_tags(b->content, nullptr);
    std::string s = "\\begin{array}{l} ";
    for (const Block* b : parts) {
        if (tags > 1) rewrite_tags(b->content, &s);
        else s += b->content;
        s += " \\\\ ";
    }
    return s + "\\end{array}";
}

// Each equation_block covering more than one equation (> 90 % of the equation's area) becomes one
// equation in its place, and those equations go; other equation_blocks go.
inline std::vector<Block> merge_equation_blocks(const std::vector<Block>& blocks) {
    std::vector<std::vector<std::size_t>> covered(blocks.size());
    std::vector<bool> absorbed(blocks.size(), false);
    for (std::size_t s = 0; s < blocks.size(); ++s) {
        if (blocks[s].type != "equation_block") continue;
        for (std::size_t e = 0; e < blocks.size(); ++e)
            if (blocks[e].type == "equation" && pipeline::detail::cover_ratio(blocks[s], blocks[e]) > 0.9) covered[s].push_back(e);
        if (covered[s].size() < 2) covered[s].clear();
        for (std::size_t e : covered[s]) absorbed[e] = true;
    }
    std::vector<Block> out;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        if (absorbed[i]) continue;
        if (!covered[i].empty()) {
            std::vector<const Block*> parts;
            for (std::size_t e : covered[i]) parts.push_back(&blocks[e]);
            Block b;
            b.type = "equation";
            b.x0 = blocks[i].x0, b.y0 = blocks[i].y0, b.x1 = blocks[i].x1, b.y1 = blocks[i].y1;
            b.angle = blocks[i].angle;
            b.content = join_equations(parts);
            out.push_back(std::move(b));
        } else if (blocks[i].type != "equation_block") {
            out.push_back(blocks[i]);
        }
    }
    return out;
}

// "[Non-Text]" (the model's answer for a crop without text): headers and footers keep their box
// with no content, visual and container blocks keep it, every other block goes.
inline std::vector<Block> drop_non_text(std::vector<Block> blocks) {
    std::vector<Block> out;
    for (Block& b : blocks) {
        if (py::strip(b.content) != "[Non-Text]") {
            out.push_back(std::move(b));
        } else if (in(b.type, {"header", "footer"})) {
            b.content.clear();
            out.push_back(std::move(b));
        } else if (in(b.type, {"image", "chart", "table", "equation", "list", "image_block", "equation_block"})) {
            out.push_back(std::move(b));
        }
    }
    return out;
}

// Image blocks drawn into a table go (the table shows them); the client's stage state is cleared.
inline std::vector<Block> drop_absorbed_images(std::vector<Block> blocks) {
    std::erase_if(blocks, [](const Block& b) { return b.type == "image" && b.absorbed_by_table; });
    for (Block& b : blocks) b.table_images.clear(), b.absorbed_by_table = false;
    return blocks;
}

inline bool has_cjk_ideograph(std::string_view s) {
    for (std::size_t i = 0; i < s.size(); i += py::cp_len(s, i)) {
        const char32_t c = py::cp_at(s, i);
        if ((c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf)) return true;
    }
    return false;
}

}  // namespace detail::mineru_post

inline std::vector<Block> mineru_post_process(std::vector<Block> blocks, const MinerUPostProcessOptions& opt) {
    using namespace detail::mineru_post;
    for (Block& b : blocks) {
        if (b.type == "table" && !b.content.empty()) {
            b.content = replace_table_image_tokens(otsl_to_html(b.content), b.table_images);
            if (opt.table_formula_eq_wrap) b.content = wrap_table_formulas(b.content);
        }
        if ((b.type == "image" || b.type == "chart") && !b.content.empty()) apply_image_analysis(b, opt.table_formula_eq_wrap);
        if (b.type == "list_item") b.type = "text", b.merge_prev = false;
    }
    blocks = drop_non_text(std::move(blocks));
    if (opt.simple_post_process) return drop_absorbed_images(std::move(blocks));
    for (Block& b : blocks) {
        if (b.content.empty()) continue;
        if (b.type == "equation") b.content = fix_equation(b.content);
        else if (b.type == "text") b.content = fix_text(b.content);
    }
    if (opt.handle_equation_block) blocks = merge_equation_blocks(blocks);
    std::vector<Block> out;
    for (Block& b : blocks) {
        if (b.type == "equation" && !b.content.empty()) b.content = wrap_equation(b.content);
        if (b.type == "equation_block") continue;
        if (opt.abandon_list && b.type == "list") continue;
        if (opt.abandon_paratext && in(b.type, {"header", "footer", "page_number", "aside_text", "page_footnote", "unknown"}))
            continue;
        out.push_back(std::move(b));
    }
    return drop_absorbed_images(std::move(out));
}

inline std::string mineru_markdown(const std::vector<Block>& blocks) {
    std::vector<std::string> paragraphs;
    std::ptrdiff_t last_text = -1;
    for (const Block& b : blocks) {
        if (b.content.empty()) continue;
        if (b.type == "text" && b.merge_prev && last_text >= 0) {
            if (!detail::mineru_post::has_cjk_ideograph(b.content)) paragraphs[std::size_t(last_text)] += ' ';
            paragraphs[std::size_t(last_text)] += b.content;
            continue;
        }
        paragraphs.push_back(b.content);
        if (b.type == "text") last_text = std::ptrdiff_t(paragraphs.size()) - 1;
    }
    std::string md;
    for (std::size_t i = 0; i < paragraphs.size(); ++i) md += (i ? "\n\n" : "") + paragraphs[i];
    return md;
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
