// docvlm/pipeline/document.hpp — the result of parsing a page, shared by every parser: Blocks
// (type, box as fractions of the page, rotation, content) in reading order, and the Markdown,
// JSON and HTML writers.
#pragma once

#include <docvlm/core/config.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

/// An image the MinerU client drew into a table's crop as a token ("[K7TX]"), and the data: URI
/// of the image that replaces the token in the table's HTML.
struct TableImage {
    std::string token;
    std::string data_uri;
};

/// One region of a page: type, box (fractions of the page, x0 < x1, y0 < y1), rotation in
/// degrees counter-clockwise (0, 90, 180, 270; none when the layout answer named no rotation, as
/// the client keeps None: JSON null, read as upright), continuation of the previous text block,
/// content.
struct Block {
    std::string type;
    double x0 = 0, y0 = 0, x1 = 0, y1 = 0;  ///< double, as the client's Python floats (crops round exactly alike)
    std::optional<int> angle;
    bool merge_prev = false;
    std::string content;
    /// Boxes (fractions of the page, x0 y0 x1 y1) of text in the block the parser could not read
    /// with confidence: left out of `content` rather than guessed.
    std::vector<std::array<double, 4>> unreadable;
    /// With MinerU's image analysis: an image's class (flowchart, natural_image, ...) or a chart's
    /// kind (bar, line, ...), as the model named it.
    std::optional<std::string> sub_type;
    /// With MinerU's cross-page table check: on a page's first table, 0/1 per column of the previous
    /// page's last table — 1 where this table's first data row continues that row's cell.
    std::vector<int> cell_merge;
    /// The MinerU client's state between its stages, never written out: the images drawn into this
    /// table's crop (mineru_table_images.hpp), and whether this image block was drawn into a table
    /// (dropped by post-processing: the table shows it).
    std::vector<TableImage> table_images;
    bool absorbed_by_table = false;
};

/// How a page image was turned before it was read (the embedded parser's normalisation): by
/// `rotation` (0, 90, 180, 270) and then `skew` degrees, both counter-clockwise; block boxes are
/// fractions of the turned page. `flattened`: paper tone, light or ink levels were corrected.
struct PageGeometry {
    int rotation = 0;
    double skew = 0;
    bool flattened = false;
};

/// A parsed page: blocks in reading order (as the layout stage emitted them) with their content.
struct Document {
    std::vector<Block> blocks;
    std::vector<std::string> warnings;
    std::optional<PageGeometry> page;  ///< set by parsers that normalise the page

    /// Markdown: titles as '#', paragraphs (continuations joined), tables as HTML, equations as
    /// \[ \]; headers, footers, page numbers and side notes left out; images as a placeholder.
    std::string markdown() const;
    /// {"blocks": [{"type", "bbox": [x0, y0, x1, y1], "angle" (null: none given), "merge_prev", "content",
    ///              "unreadable": [[x0, y0, x1, y1], ...] (when any)}],
    ///  "page": {"rotation", "skew", "flattened"} (when set), "warnings": [...]}; blocks also carry
    ///  "sub_type" when image analysis gave one and "cell_merge" when the cross-page check set it.
    std::string json() const;
    /// A minimal HTML page of the same content.
    std::string html() const;
};

/// Escapes & < > " ' as Python's html.escape.
std::string html_escape(std::string_view s);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#x27;"; break;
            default: out += c;
        }
    }
    return out;
}

inline std::string Document::markdown() const {
    std::string md;
    auto para = [&](const std::string& s) {
        if (!md.empty()) md += "\n\n";
        md += s;
    };
    for (const Block& b : blocks) {
        if (b.type == "header" || b.type == "footer" || b.type == "page_number" || b.type == "aside_text" ||
            b.type == "page_footnote")
            continue;
        if (b.type == "image") {
            para("![image](#bbox=" + std::to_string(b.x0) + "," + std::to_string(b.y0) + "," + std::to_string(b.x1) + "," +
                 std::to_string(b.y1) + ")");
            if (!b.content.empty()) para(b.content);  // image analysis: a caption or a flowchart's Mermaid
            continue;
        }
        if (b.content.empty()) continue;
        if (b.type == "title") para("# " + b.content);
        else if (b.type == "text" && b.merge_prev && !md.empty()) md += " " + b.content;
        else if (b.type == "code" || b.type == "algorithm") para("```\n" + b.content + "\n```");
        else para(b.content);
    }
    return md + (md.empty() ? "" : "\n");
}

inline std::string Document::json() const {
    nlohmann::ordered_json j;
    j["blocks"] = nlohmann::ordered_json::array();
    for (const Block& b : blocks) {
        const nlohmann::ordered_json angle = b.angle ? nlohmann::ordered_json(*b.angle) : nlohmann::ordered_json();  // null: none given
        j["blocks"].push_back({{"type", b.type}, {"bbox", {b.x0, b.y0, b.x1, b.y1}}, {"angle", angle}, {"merge_prev", b.merge_prev},
                               {"content", b.content}});
        if (b.sub_type) j["blocks"].back()["sub_type"] = *b.sub_type;
        if (!b.cell_merge.empty()) j["blocks"].back()["cell_merge"] = b.cell_merge;
        if (!b.unreadable.empty()) j["blocks"].back()["unreadable"] = b.unreadable;
    }
    if (page) j["page"] = {{"rotation", page->rotation}, {"skew", page->skew}, {"flattened", page->flattened}};
    j["warnings"] = warnings;
    return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

inline std::string Document::html() const {
    std::string h = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n";
    for (const Block& b : blocks) {
        if (b.content.empty()) continue;
        if (b.type == "table") h += b.content + "\n";
        else if (b.type == "title") h += "<h1>" + html_escape(b.content) + "</h1>\n";
        else h += "<p>" + html_escape(b.content) + "</p>\n";
    }
    return h + "</body></html>\n";
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
