// docvlm/pipeline/mineru.hpp — MinerU2.5's prompts, sampling settings and output formats, as the
// official client (opendatalab/mineru-vl-utils) defines them:
//   - prompts per task and the Qwen2-VL chat template around them;
//   - the layout grammar  <|box_start|>x1 y1 x2 y2<|box_end|><|ref_start|>type<|ref_end|><|rotate_*|>...
//     (coordinates 0..1000, rotation, continuation marks) parsed into Blocks;
//   - OTSL table markup (<fcel> <ecel> <lcel> <ucel> <xcel> <nl>) converted to HTML with spans;
//   - display equations wrapped in \[ ... \].
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/model/generation.hpp>
#include <docvlm/pipeline/document.hpp>
#include <docvlm/pipeline/py_text.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

/// What a prompt asks MinerU2.5 to do.
enum class Task { layout, text, table, formula, image };


/// The client's prompt for a task ("\nLayout Detection:", "\nText Recognition:", ...).
std::string_view mineru_prompt(Task task);
/// The task used to recognise a block of this type (table, equation → formula, image and chart →
/// image analysis, anything else → text).
Task task_for(std::string_view block_type);
/// Block types whose content the client does not recognise: containers (list, equation_block,
/// image_block), and image and chart unless its image analysis is on (it is off by default).
bool skips_content(std::string_view block_type, bool image_analysis = false);
/// The Qwen2-VL chat text for one image followed by `user_text`, with the image's pad token
/// repeated `image_tokens` times:  <|im_start|>system\n...<|im_end|>\n<|im_start|>user\n
/// <|vision_start|><|image_pad|>×n<|vision_end|>TEXT<|im_end|>\n<|im_start|>assistant\n
std::string chat_prompt(std::string_view user_text, std::size_t image_tokens,
                        std::string_view system = "You are a helpful assistant.");
/// The chat text for a prompt without an image (the client's cross-page table question):
/// <|im_start|>system\n...<|im_end|>\n<|im_start|>user\nTEXT<|im_end|>\n<|im_start|>assistant\n
std::string chat_prompt_text(std::string_view user_text, std::string_view system = "You are a helpful assistant.");
/// The client's sampling settings for a task: greedy, no_repeat_ngram 100 over the output,
/// presence 1.0 / frequency 0.05 (text, formula, image analysis) or 0.005 (table); none for layout.
GenerationOptions sampling_for(Task task, std::size_t max_new_tokens = 4096);

/// The block types the client accepts (mineru-vl-utils 1.2.1's BLOCK_TYPES): MinerU2.5-2509's
/// and MinerU2.5-Pro's (doc_title, paragraph_title, list_item, chart, image_block, ...).
inline constexpr std::array<std::string_view, 31> block_types = {
    "text",          "title",         "doc_title",      "paragraph_title", "table",         "equation",
    "formula_number", "code",         "algorithm",      "aside_text",      "ref_text",      "index",
    "phonetic",      "list_item",     "caption",        "table_caption",   "image_caption", "code_caption",
    "footnote",      "table_footnote", "image_footnote", "header",         "footer",        "page_number",
    "page_footnote", "image",         "chart",          "list",            "image_block",   "equation_block",
    "unknown"};

/// Parses layout output into blocks, in output order. Malformed segments, unknown types and
/// boxes outside 0..1000 or of zero area are skipped, each with a line in `warnings` (if given);
/// `unknown` becomes `image`; text, equations and equation blocks lying ≥ 90 % inside a table are
/// dropped.
std::vector<Block> parse_layout(std::string_view output, std::vector<std::string>* warnings = nullptr);

/// Before stage 2 the client drops image captions lying ≥ 90 % inside an image, chart or
/// image_block (they are part of the picture).
std::vector<Block> drop_captions_inside_images(const std::vector<Block>& blocks);

/// OTSL table markup → <table> HTML with rowspan/colspan; text that already is a <table>…</table>
/// is returned unchanged, an empty table gives "".
std::string otsl_to_html(std::string_view otsl);

/// Wraps a display equation in "\[\n … \n\]" unless it already carries those delimiters.
std::string wrap_equation(std::string_view latex);


// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline std::string_view mineru_prompt(Task task) {
    switch (task) {
        case Task::layout: return "\nLayout Detection:";
        case Task::table: return "\nTable Recognition:";
        case Task::formula: return "\nFormula Recognition:";
        case Task::image: return "\nImage Analysis:";
        case Task::text: break;
    }
    return "\nText Recognition:";
}

inline Task task_for(std::string_view type) {
    if (type == "table") return Task::table;
    if (type == "equation") return Task::formula;
    if (type == "image" || type == "chart") return Task::image;
    return Task::text;
}

inline bool skips_content(std::string_view type, bool image_analysis) {
    return (!image_analysis && (type == "image" || type == "chart")) || type == "list" || type == "equation_block" || type == "image_block";
}

inline std::string chat_prompt(std::string_view user_text, std::size_t image_tokens, std::string_view system) {
    std::string s;
    s.reserve(200 + image_tokens * 13 + user_text.size());
    s += "<|im_start|>system\n";
    s += system;
    s += "<|im_end|>\n<|im_start|>user\n<|vision_start|>";
    for (std::size_t i = 0; i < image_tokens; ++i) s += "<|image_pad|>";
    s += "<|vision_end|>";
    s += user_text;
    s += "<|im_end|>\n<|im_start|>assistant\n";
    return s;
}

inline std::string chat_prompt_text(std::string_view user_text, std::string_view system) {
    return "<|im_start|>system\n" + std::string(system) + "<|im_end|>\n<|im_start|>user\n" + std::string(user_text) +
           "<|im_end|>\n<|im_start|>assistant\n";
}

inline GenerationOptions sampling_for(Task task, std::size_t max_new_tokens) {
    GenerationOptions o;
    o.max_new_tokens = max_new_tokens;
    o.temperature = 0.0f;
    o.no_repeat_ngram = 100;
    o.ngram_over_prompt = false;
    if (task != Task::layout) {
        o.presence_penalty = 1.0f;
        o.frequency_penalty = task == Task::table ? 0.005f : 0.05f;
    }
    return o;
}


namespace detail {

inline bool starts_at(std::string_view s, std::size_t i, std::string_view w) { return s.substr(i, w.size()) == w; }

// The share of inner's area that lies inside outer, computed as the client does (0 for no area).
inline double cover_ratio(const Block& outer, const Block& inner) {
    const double area = std::max(0.0, inner.x1 - inner.x0) * std::max(0.0, inner.y1 - inner.y0);
    if (area == 0) return 0.0;
    const double x0 = std::max(outer.x0, inner.x0), y0 = std::max(outer.y0, inner.y0);
    const double x1 = std::min(outer.x1, inner.x1), y1 = std::min(outer.y1, inner.y1);
    return x1 <= x0 || y1 <= y0 ? 0.0 : (x1 - x0) * (y1 - y0) / area;
}

inline bool is_one_of(const Block& b, std::initializer_list<std::string_view> types) {
    return std::find(types.begin(), types.end(), b.type) != types.end();
}

// The client's _find_covered_block_indices test: `b` lies ≥ 90 % inside another of `blocks` whose
// type is one of `container_types`.
inline bool inside_another(const std::vector<Block>& blocks, const Block& b, std::initializer_list<std::string_view> container_types) {
    return std::any_of(blocks.begin(), blocks.end(),
                       [&](const Block& c) { return &c != &b && is_one_of(c, container_types) && cover_ratio(c, b) >= 0.9; });
}

// The client's filter of blocks that belong to another: a block of one of `types` lying ≥ 90 %
// inside a (different) block of one of `container_types` is dropped.
inline std::vector<Block> drop_covered(const std::vector<Block>& blocks, std::initializer_list<std::string_view> types,
                                       std::initializer_list<std::string_view> container_types) {
    std::vector<Block> kept;
    for (const Block& b : blocks)
        if (!is_one_of(b, types) || !inside_another(blocks, b, container_types)) kept.push_back(b);
    return kept;
}

}  // namespace detail

inline std::vector<Block> parse_layout(std::string_view out, std::vector<std::string>* warnings) {
    constexpr std::string_view box_start = "<|box_start|>", box_end = "<|box_end|>", ref_start = "<|ref_start|>", ref_end = "<|ref_end|>";
    auto warn = [&](std::string msg) {
        if (warnings) warnings->push_back(std::move(msg));
    };
    std::vector<Block> blocks;
    std::size_t pos = out.find(box_start);
    if (pos == std::string_view::npos && !py::strip(out).empty()) warn("layout output has no <|box_start|>: nothing parsed");
    while (pos != std::string_view::npos) {
        const std::size_t next = out.find(box_start, pos + box_start.size());
        const std::string_view seg = out.substr(pos, (next == std::string_view::npos ? out.size() : next) - pos);
        pos = next;
        // x1 y1 x2 y2: re's \d+ (decimal digits of any script, as many as written) separated by \s+
        std::size_t i = box_start.size();
        long long v[4];
        bool ok = true;
        for (int k = 0; k < 4 && ok; ++k) {
            if (k > 0) {
                const std::size_t ws = i;
                while (const std::size_t n = py::space_at(seg, i)) i += n;  // re's \s: Unicode whitespace
                ok = i > ws;
            }
            const std::size_t d0 = i;
            v[k] = 0;
            for (char32_t c; ok && i < seg.size() && py::is_decimal(c = py::cp_at(seg, i)); i += py::cp_len(seg, i))
                v[k] = std::min<long long>(v[k] * 10 + py::decimal_value(c), 1'000'000);  // past 1000 it is refused anyway
            ok = ok && i > d0;
        }
        ok = ok && detail::starts_at(seg, i, box_end) && detail::starts_at(seg, i + box_end.size(), ref_start);
        std::string type;
        if (ok) {
            i += box_end.size() + ref_start.size();
            const std::size_t t0 = i;
            while (i < seg.size() && (std::isalnum(static_cast<unsigned char>(seg[i])) || seg[i] == '_')) ++i;
            ok = i > t0 && detail::starts_at(seg, i, ref_end);
            type.assign(seg.substr(t0, i - t0));
            i += ref_end.size();
        }
        if (!ok) {
            warn("skipped a malformed layout line: " + std::string(seg.substr(0, 120)));
            continue;
        }
        Block b;
        static constexpr std::pair<std::string_view, int> rot[] = {
            {"<|rotate_up|>", 0}, {"<|rotate_right|>", 90}, {"<|rotate_down|>", 180}, {"<|rotate_left|>", 270}};
        for (const auto& [tok, deg] : rot)
            if (detail::starts_at(seg, i, tok)) {
                b.angle = deg;
                i += tok.size();
                break;
            }
        const std::string_view tail = seg.substr(i);
        std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return char(std::tolower(c)); });
        if (type == "inline_formula") continue;  // the client drops these
        if (std::find(block_types.begin(), block_types.end(), type) == block_types.end()) {
            warn("skipped a block of unknown type '" + type + "'");
            continue;
        }
        if (type == "unknown") type = "image";
        if (std::any_of(v, v + 4, [](long long x) { return x < 0 || x > 1000; })) {
            warn("skipped a " + type + " block with a coordinate outside 0..1000");
            continue;
        }
        long long x1 = v[0], y1 = v[1], x2 = v[2], y2 = v[3];
        if (x1 > x2) std::swap(x1, x2);
        if (y1 > y2) std::swap(y1, y2);
        if (x1 == x2 || y1 == y2) {
            warn("skipped a " + type + " block of zero area");
            continue;
        }
        b.type = type;
        b.x0 = double(x1) / 1000.0, b.y0 = double(y1) / 1000.0, b.x1 = double(x2) / 1000.0, b.y1 = double(y2) / 1000.0;
        b.merge_prev = type == "text" && tail.find("txt_contd_tgt") != std::string_view::npos;
        blocks.push_back(std::move(b));
    }
    // Text and equations (almost) inside a table are part of the table.
    return detail::drop_covered(blocks, {"text", "equation", "equation_block"}, {"table"});
}

inline std::vector<Block> drop_captions_inside_images(const std::vector<Block>& blocks) {
    return detail::drop_covered(blocks, {"image_caption"}, {"image", "chart", "image_block"});
}

inline std::string otsl_to_html(std::string_view s) {
    if (s.size() >= 14 && s.substr(0, 6) == "<table" && s.substr(s.size() - 8) == "</table>") return std::string(s);
    static constexpr std::string_view tags[] = {"<nl>", "<fcel>", "<ecel>", "<lcel>", "<ucel>", "<xcel>"};
    enum : int { NL, FCEL, ECEL, LCEL, UCEL, XCEL, TEXT };
    // 1. Split into tags and the non-blank text between them.
    struct Part {
        int kind;
        std::string_view text;
    };
    std::vector<Part> parts;
    std::vector<int> tokens;
    std::size_t i = 0, text_start = 0;
    auto flush_text = [&](std::size_t end) {
        const std::string_view t = s.substr(text_start, end - text_start);
        if (!py::strip(t).empty()) parts.push_back({TEXT, t});
    };
    while (i < s.size()) {
        int tag = -1;
        if (s[i] == '<')
            for (int k = 0; k < 6; ++k)
                if (detail::starts_at(s, i, tags[k])) tag = k;
        if (tag < 0) {
            ++i;
            continue;
        }
        flush_text(i);
        parts.push_back({tag, tags[tag]});
        tokens.push_back(tag);
        i += tags[tag].size();
        text_start = i;
    }
    flush_text(s.size());
    // 2. Rows of cell tokens (runs between <nl>), padded with <ecel> to the widest row.
    std::vector<std::vector<int>> rows;
    for (std::size_t k = 0; k < tokens.size();) {
        if (tokens[k] == NL) {
            ++k;
            continue;
        }
        std::vector<int> row;
        while (k < tokens.size() && tokens[k] != NL) row.push_back(tokens[k++]);
        rows.push_back(std::move(row));
    }
    if (rows.empty()) return "";
    std::size_t cols = 0;
    for (const auto& r : rows) cols = std::max(cols, r.size());
    for (auto& r : rows) r.resize(cols, ECEL);
    // 3. Re-align the parts with the padded rows: each row's tokens (with the text after a
    //    matching token), then <nl>.
    std::vector<Part> seq;
    std::size_t ti = 0;
    for (const auto& r : rows) {
        for (int tok : r) {
            seq.push_back({tok, tags[tok]});
            if (ti < parts.size() && parts[ti].kind == tok) {
                ++ti;
                if (ti < parts.size() && parts[ti].kind == TEXT) seq.push_back(parts[ti++]);
            }
        }
        seq.push_back({NL, tags[NL]});
        if (ti < parts.size() && parts[ti].kind == NL) ++ti;
    }
    // 4. Cells with spans: <lcel>/<xcel> to the right extend columns, <ucel>/<xcel> below extend rows.
    struct Cell {
        std::string text;
        std::size_t r0, c0, rs, cs;
    };
    std::vector<Cell> cells;
    std::size_t r = 0, c = 0;
    auto spans = [](int t) { return t == LCEL || t == XCEL; };
    auto spans_down = [](int t) { return t == UCEL || t == XCEL; };
    for (std::size_t k = 0; k < seq.size(); ++k) {
        const int kind = seq[k].kind;
        if (kind == FCEL || kind == ECEL) {
            std::size_t rs = 1, cs = 1, right = 1;
            std::string text;
            if (kind == FCEL && k + 1 < seq.size() && seq[k + 1].kind == TEXT) {
                text = std::string(py::strip(seq[k + 1].text));
                right = 2;
            }
            const int next_right = k + right < seq.size() ? seq[k + right].kind : -1;
            const int next_below = r + 1 < rows.size() && c < rows[r + 1].size() ? rows[r + 1][c] : -1;
            if (spans(next_right))
                for (std::size_t cc = c + 1; cc < rows[r].size() && spans(rows[r][cc]); ++cc) ++cs;
            if (spans_down(next_below))
                for (std::size_t rr = r + 1; rr < rows.size() && spans_down(rows[rr][c]); ++rr) ++rs;
            cells.push_back({std::move(text), r, c, rs, cs});
        }
        if (kind == FCEL || kind == ECEL || kind == LCEL || kind == UCEL || kind == XCEL) ++c;
        if (kind == NL) ++r, c = 0;
    }
    if (cells.empty()) return "";
    // 5. Grid (later cells overwrite earlier ones), then one <td> per cell at its top-left corner.
    const std::size_t nrows = rows.size();
    std::vector<long> owner(nrows * cols, -1);
    for (std::size_t k = 0; k < cells.size(); ++k)
        for (std::size_t rr = std::min(cells[k].r0, nrows); rr < std::min(cells[k].r0 + cells[k].rs, nrows); ++rr)
            for (std::size_t cc = std::min(cells[k].c0, cols); cc < std::min(cells[k].c0 + cells[k].cs, cols); ++cc)
                owner[rr * cols + cc] = long(k);
    std::string html = "<table>";
    for (std::size_t rr = 0; rr < nrows; ++rr) {
        html += "<tr>";
        for (std::size_t cc = 0; cc < cols; ++cc) {
            const long o = owner[rr * cols + cc];
            if (o < 0) {  // a position no cell covers: an empty cell of its own
                html += "<td></td>";
                continue;
            }
            const Cell& cell = cells[std::size_t(o)];
            if (cell.r0 != rr || cell.c0 != cc) continue;
            html += "<td";
            if (cell.rs > 1) html += " rowspan=\"" + std::to_string(cell.rs) + "\"";
            if (cell.cs > 1) html += " colspan=\"" + std::to_string(cell.cs) + "\"";
            html += ">" + html_escape(py::strip(cell.text)) + "</td>";
        }
        html += "</tr>";
    }
    return html + "</table>";
}

inline std::string wrap_equation(std::string_view latex) {
    std::string s(py::strip(latex));
    if (s.rfind("\\[", 0) != 0) s = "\\[\n" + s;
    if (s.size() < 2 || s.compare(s.size() - 2, 2, "\\]") != 0) s += "\n\\]";
    return s;
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
