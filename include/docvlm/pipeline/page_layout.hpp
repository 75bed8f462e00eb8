// docvlm/pipeline/page_layout.hpp — what the classical segmenter (pipeline/layout.hpp) finds on
// a page: regions (a Block with its text lines and, for tables, column edges), lines cut into
// chunks a line recogniser reads, the rules (thin straight lines) of the page; and its options.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/pipeline/document.hpp>

#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

struct LayoutOptions {
    int ink_threshold = 0;          ///< 0: Otsu's threshold of the page
    double block_gap = 1.0;         ///< white rows (in line heights) that separate blocks
    double column_gap = 1.2;        ///< gutter width (in line heights) that separates columns
    double cell_gap = 1.6;          ///< gap (in line heights) that separates cells within a line
    int chunk_height = 24;          ///< crops are scaled to this height by the recogniser...
    int max_chunk_width = 512;      ///< ...and must then be at most this wide
    int margin = 1;                 ///< pixels of white around each crop's ink
    /// Long thin horizontal rules (at least a sixth of the ink's width) are erased before lines
    /// are cut, as they would join the rows of a ruled table into one band. By default only rules
    /// with a twin of the same extent go (a table's; a lone rule may be a fraction bar); true
    /// erases every one (for a crop known to be a table).
    bool erase_horizontal_rules = false;
};

/// One crop to recognise: the ink box of part of a line, and the cell (0-based) it belongs to.
struct TextChunk {
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    int cell = 0;
    bool inverse = false;  ///< light text on a dark fill: its crop is read with light and dark swapped
};

struct TextLine {
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    std::vector<TextChunk> chunks;
    int cells = 1;
};

/// A block with its lines; for tables, `columns` holds the x of each column's left edge.
/// `displayed`: at most 3 lines, set off from both edges of its column (a display-formula
/// candidate; the parser decides from what the model reads).
struct LayoutRegion {
    Block block;
    std::vector<TextLine> lines;
    std::vector<int> columns;
    bool displayed = false;
};

/// A thin straight rule (table border, booktabs line, frame edge), [x0, x1) × [y0, y1) pixels.
struct Rule {
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    bool vertical() const { return y1 - y0 > x1 - x0; }
};

struct PageLayout {
    int width = 0, height = 0;
    int threshold = 0;    ///< the ink threshold used
    int line_height = 0;  ///< the unit L
    std::vector<LayoutRegion> regions;  ///< in reading order
    /// Rules found: vertical ones (erased before lines are cut), horizontal ones (dropped from
    /// blocks, or erased first with LayoutOptions::erase_horizontal_rules).
    std::vector<Rule> rules;
};

/// Segments a page image (gray or RGB).

}  // namespace pipeline
DOCVLM_NAMESPACE_END
