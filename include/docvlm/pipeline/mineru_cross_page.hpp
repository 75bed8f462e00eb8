// docvlm/pipeline/mineru_cross_page.hpp — the official client's cross-page table check
// (mineru-vl-utils post_process/cross_page_table.py, on with enable_cross_page_table_merge):
//   pages of post-processed blocks → pairs (the last table of a page, the first table of the next;
//   only captions, footnotes, headers, footers and page numbers may stand after / before them)
//   → pairs MinerU's structure check accepts (mineru_table_merge.hpp) whose boundary rows have as
//   many rendered segments → a text-only prompt per pair showing both rows → the model's answer, a
//   JSON list of 0/1 per segment (1: that cell of the first data row continues the cell above)
//   → `Block::cell_merge` on the next page's table: 0/1 per column.
// MinerU itself (not the client) then joins the tables using cell_merge.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/pipeline/document.hpp>
#include <docvlm/pipeline/mineru_table_merge.hpp>
#include <docvlm/pipeline/py_text.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

/// Two tables that may be one table broken across pages: the last table of `prev_page` and the
/// first table of `prev_page + 1` (indices into each page's blocks).
struct CrossPagePair {
    std::size_t prev_page = 0, prev_block = 0, curr_block = 0;
};

/// A question for the model about one pair (the client's _MergeTask).
struct CrossPageMergeTask {
    CrossPagePair pair;
    std::string prompt;
    std::size_t segment_count = 0;                                     ///< the answer's expected length
    long long expanded_col_count = 0;                                  ///< columns of cell_merge
    std::vector<std::pair<long long, long long>> previous_col_ranges;  ///< per segment: [start, end)
};

/// find_cross_page_table_pairs: adjacent pages whose boundary tables both have content.
std::vector<CrossPagePair> find_cross_page_table_pairs(const std::vector<std::vector<Block>>& pages);
/// _prepare_merge_tasks: the pairs that pass the structure checks, with their prompts. A pair whose
/// tables cannot be read (a span that is not a number: the client raises) is left out, with a line
/// in `warnings` when given.
std::vector<CrossPageMergeTask> cross_page_merge_tasks(const std::vector<std::vector<Block>>& pages,
                                                       std::vector<std::string>* warnings = nullptr);
/// parse_cell_merge_response: the first "[...]" of whitespace, digits and commas, read as a JSON
/// list of 0 and 1; nullopt when absent, not JSON, empty or holding other values.
std::optional<std::vector<int>> parse_cell_merge_response(std::string_view answer);
/// _apply_merge_results: each answer of the right length becomes cell_merge (0/1 per column of the
/// previous table's last row) on the next page's table. Nothing is applied when the counts differ.
void apply_cross_page_merge(std::vector<std::vector<Block>>& pages, const std::vector<CrossPageMergeTask>& tasks,
                            const std::vector<std::string>& answers);

/// detect_cross_page_cell_merge: tasks, then `predict` (prompts → answers, text only, the client's
/// "[cross_page_table_merge]" sampling = sampling_for(Task::text)), then the answers applied.
template <class Predict>
void detect_cross_page_cell_merge(std::vector<std::vector<Block>>& pages, Predict&& predict,
                                  std::vector<std::string>* warnings = nullptr) {
    const std::vector<CrossPageMergeTask> tasks = cross_page_merge_tasks(pages, warnings);
    if (tasks.empty()) return;
    std::vector<std::string> prompts;
    for (const CrossPageMergeTask& t : tasks) prompts.push_back(t.prompt);
    apply_cross_page_merge(pages, tasks, predict(prompts));
}


// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {

// SKIP_BETWEEN_TABLE_TYPES: blocks that may stand between a table and the page break.
inline bool skipped_between_tables(std::string_view type) {
    for (std::string_view t : {"table_caption", "table_footnote", "image_caption", "image_footnote", "header", "footer",
                               "page_number", "page_footnote"})
        if (type == t) return true;
    return false;
}

inline std::optional<std::size_t> boundary_table(const std::vector<Block>& blocks, bool last) {
    for (std::size_t k = 0; k < blocks.size(); ++k) {
        const std::size_t i = last ? blocks.size() - 1 - k : k;
        if (blocks[i].type == "table") return i;
        if (!skipped_between_tables(blocks[i].type)) return std::nullopt;
    }
    return std::nullopt;
}

inline std::array<double, 4> box_of(const Block& b) { return {b.x0, b.y0, b.x1, b.y1}; }

inline std::string python_list(const std::vector<RenderedSegment>& segments) {
    std::string out = "[";
    for (std::size_t i = 0; i < segments.size(); ++i) out += (i ? ", " : "") + py::repr(segments[i].text);
    return out + "]";
}

// build_cell_merge_prompt.
inline std::string cell_merge_prompt(const std::vector<RenderedSegment>& last_row, const std::vector<RenderedSegment>& first_row) {
    return "Please merge the next two tables.\n\n## Table 1 (Previous Page - Last Table)\n\n**Caption:** (No caption)\n"
           "**Last Row(s) Data:**\n[" + python_list(last_row) + "]\n\n---\n\n## Table 2 (Current Page - First Table)\n\n"
           "**Caption:** (No caption)\n**First Data Row(s):**\n[" + python_list(first_row) + "]";
}

// _build_boundary_row_context and the checks after it: the task for one pair, or nullopt.
inline std::optional<CrossPageMergeTask> merge_task(const Block& prev, const Block& curr, CrossPagePair pair) {
    const std::optional<TableState> s1 = table_state_from_html(prev.content), s2 = table_state_from_html(curr.content);
    if (!s1 || !s2 || !can_merge_by_structure(*s2, *s1, box_of(curr), box_of(prev))) return std::nullopt;
    const std::size_t headers = detect_table_headers(*s1, *s2);
    if (!s1->last_data_row || headers >= s2->front_row_metrics.size()) return std::nullopt;
    const RowMetrics &last = *s1->last_data_row, &first = s2->front_row_metrics[headers];
    const std::vector<RenderedSegment> above = row_rendered_segments(*s1, last.row), below = row_rendered_segments(*s2, first.row);
    if (above.empty() || below.empty()) return std::nullopt;
    if (row_rendered_segment_count(*s1, last.row) != row_rendered_segment_count(*s2, first.row)) return std::nullopt;
    if (above.size() != below.size()) return std::nullopt;
    CrossPageMergeTask t{pair, cell_merge_prompt(above, below), above.size(), 0, {}};
    for (const RenderedSegment& s : above) {
        t.expanded_col_count = std::max(t.expanded_col_count, s.end_col);
        t.previous_col_ranges.emplace_back(s.start_col, s.end_col);
    }
    return t;
}

}  // namespace detail

inline std::vector<CrossPagePair> find_cross_page_table_pairs(const std::vector<std::vector<Block>>& pages) {
    std::vector<CrossPagePair> pairs;
    for (std::size_t p = 1; p < pages.size(); ++p) {
        if (pages[p - 1].empty() || pages[p].empty()) continue;
        const auto prev = detail::boundary_table(pages[p - 1], true), curr = detail::boundary_table(pages[p], false);
        if (!prev || !curr || pages[p - 1][*prev].content.empty() || pages[p][*curr].content.empty()) continue;
        pairs.push_back({p - 1, *prev, *curr});
    }
    return pairs;
}

inline std::vector<CrossPageMergeTask> cross_page_merge_tasks(const std::vector<std::vector<Block>>& pages,
                                                              std::vector<std::string>* warnings) {
    std::vector<CrossPageMergeTask> tasks;
    for (const CrossPagePair& pair : find_cross_page_table_pairs(pages)) {
        try {
            auto t = detail::merge_task(pages[pair.prev_page][pair.prev_block], pages[pair.prev_page + 1][pair.curr_block], pair);
            if (t) tasks.push_back(std::move(*t));
        } catch (const Error& e) {
            if (warnings) warnings->push_back("pages " + std::to_string(pair.prev_page + 1) + "-" + std::to_string(pair.prev_page + 2) +
                                              ": tables not checked for a cross-page merge: " + e.what());
        }
    }
    return tasks;
}

inline std::optional<std::vector<int>> parse_cell_merge_response(std::string_view a) {
    // re.search(r"\[[\s\d,]+\]"): the first '[' followed by one or more of those and a ']'.
    std::string_view found;
    for (std::size_t open = a.find('['); open != std::string_view::npos && found.empty(); open = a.find('[', open + 1)) {
        std::size_t i = open + 1;
        while (i < a.size()) {
            const char32_t c = py::cp_at(a, i);
            if (c != ',' && !py::is_space(c) && !py::is_decimal(c)) break;
            i += py::cp_len(a, i);
        }
        if (i > open + 1 && i < a.size() && a[i] == ']') found = a.substr(open, i + 1 - open);
    }
    if (found.empty()) return std::nullopt;
    // json.loads of what it found: ASCII whitespace, integers without leading zeros, commas between.
    std::vector<int> values;
    std::size_t i = 1;
    auto skip_ws = [&] { while (i < found.size() && (found[i] == ' ' || found[i] == '\t' || found[i] == '\n' || found[i] == '\r')) ++i; };
    skip_ws();
    if (found[i] != ']') {
        for (;;) {
            skip_ws();
            const std::size_t d0 = i;
            while (found[i] >= '0' && found[i] <= '9') ++i;
            if (i == d0 || (found[d0] == '0' && i - d0 > 1)) return std::nullopt;
            const std::string_view number = found.substr(d0, i - d0);
            values.push_back(number == "0" ? 0 : number == "1" ? 1 : -1);
            skip_ws();
            if (found[i] == ',') {
                ++i;
                continue;
            }
            if (found[i] == ']') break;
            return std::nullopt;
        }
    }
    if (values.empty()) return std::nullopt;
    for (int v : values)
        if (v < 0) return std::nullopt;
    return values;
}

inline void apply_cross_page_merge(std::vector<std::vector<Block>>& pages, const std::vector<CrossPageMergeTask>& tasks,
                                   const std::vector<std::string>& answers) {
    if (tasks.size() != answers.size()) return;
    for (std::size_t k = 0; k < tasks.size(); ++k) {
        const CrossPageMergeTask& t = tasks[k];
        const std::optional<std::vector<int>> flags = parse_cell_merge_response(answers[k]);
        if (!flags || flags->size() != t.segment_count) continue;
        std::vector<int> merge(std::size_t(std::max(0LL, t.expanded_col_count)), 0);
        for (std::size_t s = 0; s < flags->size() && s < t.previous_col_ranges.size(); ++s)
            if ((*flags)[s] == 1)
                for (long long c = std::max(0LL, t.previous_col_ranges[s].first);
                     c < std::min(t.previous_col_ranges[s].second, t.expanded_col_count); ++c)
                    merge[std::size_t(c)] = 1;
        pages[t.pair.prev_page + 1][t.pair.curr_block].cell_merge = std::move(merge);
    }
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
