// docvlm/pipeline/mineru_cross_page.hpp — tables broken by a page break, as MinerU handles them:
//   1. the official client's check (mineru-vl-utils post_process/cross_page_table.py, on with
//      enable_cross_page_table_merge): pages of post-processed blocks → pairs (the last table of
//      a page, the first of the next; only captions, footnotes, headers, footers and page numbers
//      may stand after / before them) → pairs MinerU's structure check accepts
//      (mineru_table_merge.hpp) whose boundary rows have as many rendered segments → a text-only
//      prompt per pair showing both rows → the model's answer, a JSON list of 0/1 per segment
//      (1: that cell of the first data row continues the cell above) → `Block::cell_merge` on the
//      next page's table, 0/1 per column;
//   2. an answer to that prompt by rule (cross_page_merge_answer), for models that cannot follow it;
//   3. MinerU's join of the pairs (merge_table): merge_cross_page_tables.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/pipeline/document.hpp>
#include <docvlm/pipeline/mineru_table_merge.hpp>
#include <docvlm/pipeline/py_text.hpp>

#include <utf8proc.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
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
/// Told about a pair whose tables cannot be read (a span that is not a number: the client raises).
using UnreadablePair = std::function<void(const CrossPagePair&, const std::string& why)>;

/// _prepare_merge_tasks: the pairs that pass the structure checks, with their prompts. A pair whose
/// tables cannot be read is left out (and `unreadable` told).
std::vector<CrossPageMergeTask> cross_page_merge_tasks(const std::vector<std::vector<Block>>& pages,
                                                       const UnreadablePair& unreadable = {});
/// parse_cell_merge_response: the first "[...]" of whitespace, digits and commas, read as a JSON
/// list of 0 and 1; nullopt when absent, not JSON, empty or holding other values.
std::optional<std::vector<int>> parse_cell_merge_response(std::string_view answer);
/// _apply_merge_results: each answer of the right length becomes cell_merge (0/1 per column of the
/// previous table's last row) on the next page's table. Nothing is applied when the counts differ.
void apply_cross_page_merge(std::vector<std::vector<Block>>& pages, const std::vector<CrossPageMergeTask>& tasks,
                            const std::vector<std::string>& answers);

/// The answer to MinerU's cross-page table merge prompt, or nullopt if `prompt` is not one. The
/// rule: the first row on the new page continues the last row of the previous page when it is
/// incomplete (some cell is empty where the row above has text) while it has text somewhere; then
/// each of its cells with text below a cell with text continues that cell (1), every other cell
/// starts afresh (0). A complete row is a new row: all 0. Rows of different lengths: all 0.
std::optional<std::string> cross_page_merge_answer(std::string_view prompt);

/// Python's repr() of a list of str lists, read back (the rows in the merge prompt): nullopt
/// when `text` is not one.
std::optional<std::vector<std::vector<std::string>>> parse_python_rows(std::string_view text);

/// is_table_continuation_text: a caption that says the table continues ("(continued)", "续表",
/// "(cont.)", ... at its end, fullwidth folded, any case).
bool is_table_continuation_text(std::string_view text);

/// MinerU's merge_table on a document's parsed pages, in order, last page first: where the last
/// table of a page and the first of the next form a pair (find_cross_page_table_pairs), the next
/// page's table has no caption before it unless one says it continues, the previous table has no
/// footnote (one at most with such a caption), and the structures match (can_merge_by_structure),
/// the next table's rows join the previous one (merge_table_into, its cell_merge applied), its
/// continuation captions go, its footnotes move under the joined table (replacing the previous
/// table's). Block lists are the client's flat ones: captions and footnotes are the caption and
/// footnote blocks standing before and after the table (MinerU groups them with the table first;
/// on that grouping its merge_table leaves the same tables, tests/data/mineru-client). A pair
/// whose tables cannot be read stays apart, with a warning on the second page (MinerU raises).
void merge_cross_page_tables(std::vector<Document>& pages);

/// detect_cross_page_cell_merge: tasks, then `predict` (prompts → answers, text only, the client's
/// "[cross_page_table_merge]" sampling = sampling_for(Task::text)), then the answers applied.
template <class Predict>
void detect_cross_page_cell_merge(std::vector<std::vector<Block>>& pages, Predict&& predict, const UnreadablePair& unreadable = {}) {
    const std::vector<CrossPageMergeTask> tasks = cross_page_merge_tasks(pages, unreadable);
    if (tasks.empty()) return;
    std::vector<std::string> prompts;
    for (const CrossPageMergeTask& t : tasks) prompts.push_back(t.prompt);
    apply_cross_page_merge(pages, tasks, predict(prompts));
}

/// The check over a document's parsed pages, in order: Block::cell_merge set on the tables that
/// continue the previous page's; a pair that cannot be read leaves a warning on its second page.
template <class Predict>
void check_cross_page_tables(std::vector<Document>& pages, Predict&& predict) {
    std::vector<std::vector<Block>> blocks;
    for (Document& d : pages) blocks.push_back(std::move(d.blocks));
    detect_cross_page_cell_merge(blocks, predict, [&](const CrossPagePair& p, const std::string& why) {
        pages[p.prev_page + 1].warnings.push_back("not checked as a continuation of the previous page's table: " + why);
    });
    for (std::size_t i = 0; i < pages.size(); ++i) pages[i].blocks = std::move(blocks[i]);
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
                                                              const UnreadablePair& unreadable) {
    std::vector<CrossPageMergeTask> tasks;
    for (const CrossPagePair& pair : find_cross_page_table_pairs(pages)) {
        try {
            auto t = detail::merge_task(pages[pair.prev_page][pair.prev_block], pages[pair.prev_page + 1][pair.curr_block], pair);
            if (t) tasks.push_back(std::move(*t));
        } catch (const Error& e) {
            if (unreadable) unreadable(pair, e.what());
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

inline std::optional<std::vector<std::vector<std::string>>> parse_python_rows(std::string_view t) {
    std::vector<std::vector<std::string>> rows;
    std::size_t i = 0;
    auto skip = [&] {
        while (i < t.size() && (t[i] == ' ' || t[i] == '\n')) ++i;
    };
    auto eat = [&](char c) {
        skip();
        if (i < t.size() && t[i] == c) return ++i, true;
        return false;
    };
    auto str = [&](std::string& out) {  // a Python str literal, quotes ' or "
        skip();
        if (i >= t.size() || (t[i] != '\'' && t[i] != '"')) return false;
        const char q = t[i++];
        for (; i < t.size() && t[i] != q; ++i) {
            if (t[i] != '\\') {
                out += t[i];
                continue;
            }
            if (++i >= t.size()) return false;
            switch (t[i]) {
                case 'n': out += '\n'; break;
                case 't': out += '\t'; break;
                case 'r': out += '\r'; break;
                default: out += t[i];  // \\, \', \" (other escapes keep their letter: the rule only needs emptiness)
            }
        }
        return i < t.size() && t[i++] == q;
    };
    if (!eat('[')) return std::nullopt;
    while (eat('[')) {
        std::vector<std::string> row;
        if (!eat(']')) {
            do {
                row.emplace_back();
                if (!str(row.back())) return std::nullopt;
            } while (eat(','));
            if (!eat(']')) return std::nullopt;
        }
        rows.push_back(std::move(row));
        if (!eat(',')) break;
    }
    if (!eat(']')) return std::nullopt;
    return rows;
}

inline std::optional<std::string> cross_page_merge_answer(std::string_view prompt) {
    if (!prompt.starts_with("Please merge the next two tables.")) return std::nullopt;
    auto rows_after = [&](std::string_view label) -> std::optional<std::vector<std::string>> {
        const std::size_t at = prompt.find(label);
        if (at == std::string_view::npos) return std::nullopt;
        const std::size_t open = prompt.find('[', at);
        if (open == std::string_view::npos) return std::nullopt;
        auto rows = parse_python_rows(prompt.substr(open, prompt.find("\n\n", open) - open));
        if (!rows || rows->empty()) return std::nullopt;
        return label.starts_with("**Last") ? rows->back() : rows->front();
    };
    const auto above = rows_after("**Last Row(s) Data:**"), below = rows_after("**First Data Row(s):**");
    if (!above || !below || below->empty()) return std::nullopt;
    auto blank = [](const std::string& s) { return s.find_first_not_of(" \t\n") == std::string::npos; };
    bool incomplete = false, any_text = false;
    if (above->size() == below->size())
        for (std::size_t c = 0; c < below->size(); ++c) {
            incomplete |= blank((*below)[c]) && !blank((*above)[c]);
            any_text |= !blank((*below)[c]);
        }
    std::string out = "[";
    for (std::size_t c = 0; c < below->size(); ++c) {
        const bool merge = incomplete && any_text && !blank((*below)[c]) && !blank((*above)[c]);
        out += (c ? ", " : "") + std::string(merge ? "1" : "0");
    }
    return out + "]";
}

inline bool is_table_continuation_text(std::string_view text) {
    const std::string t = py::lower(detail::full_to_half(py::strip(text)));
    if (t.empty()) return false;
    if (t.find("(continued)") != std::string::npos) return true;
    for (std::string_view m : {"(续)", "(续表)", "(续上表)", "(continued)", "(cont.)", "(cont’d)", "(…continued)", "续表"})
        if (t.ends_with(m)) return true;
    if (!t.ends_with("continued")) return false;  // a word of its own: not "discontinued"
    const std::size_t at = t.size() - 9;
    if (at == 0) return true;
    std::size_t b = at - 1;
    while (b > 0 && (static_cast<unsigned char>(t[b]) & 0xc0) == 0x80) --b;
    const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(py::cp_at(t, b)));
    return !(category >= UTF8PROC_CATEGORY_LU && category <= UTF8PROC_CATEGORY_LO);
}

namespace detail {

// The caption and footnote blocks that go with a boundary table: captions standing before the
// first table of a page, footnotes standing after a table (up to the next other block).
inline std::vector<std::size_t> blocks_around(const std::vector<Block>& blocks, std::size_t table, std::string_view type, bool before) {
    std::vector<std::size_t> out;
    if (before) {
        for (std::size_t i = table; i-- > 0 && skipped_between_tables(blocks[i].type);)
            if (blocks[i].type == type) out.push_back(i);
    } else {
        for (std::size_t i = table + 1; i < blocks.size() && skipped_between_tables(blocks[i].type); ++i)
            if (blocks[i].type == type) out.push_back(i);
    }
    return out;
}

// can_merge_tables' caption and footnote rule.
inline bool captions_allow_merge(const std::vector<Block>& prev_page, std::size_t prev, const std::vector<Block>& page, std::size_t curr) {
    const std::size_t footnotes = blocks_around(prev_page, prev, "table_footnote", false).size();
    const std::vector<std::size_t> captions = blocks_around(page, curr, "table_caption", true);
    if (captions.empty()) return footnotes == 0;
    bool continued = false;
    for (std::size_t c : captions) continued |= is_table_continuation_text(page[c].content);
    return continued && footnotes <= 1;
}

}  // namespace detail

inline void merge_cross_page_tables(std::vector<Document>& pages) {
    std::vector<std::vector<Block>> blocks;
    for (const Document& d : pages) blocks.push_back(d.blocks);
    std::map<std::pair<std::size_t, std::size_t>, TableState> states;  // (page, block) → its table, as merged so far
    auto state = [&](std::size_t page, std::size_t block) -> TableState* {
        auto it = states.find({page, block});
        if (it == states.end()) {
            std::optional<TableState> s = table_state_from_html(blocks[page][block].content);
            if (!s) return nullptr;
            it = states.emplace(std::pair{page, block}, std::move(*s)).first;
        }
        return &it->second;
    };
    std::vector<std::vector<bool>> dropped(blocks.size());
    for (std::size_t p = 0; p < blocks.size(); ++p) dropped[p].assign(blocks[p].size(), false);
    std::vector<std::vector<std::pair<std::size_t, Block>>> moved_footnotes(blocks.size());  // (after block, footnote)
    std::set<std::pair<std::size_t, std::size_t>> joined_into;  // tables rewritten (the others keep their markup)
    std::vector<CrossPagePair> pairs = find_cross_page_table_pairs(blocks);
    for (auto it = pairs.rbegin(); it != pairs.rend(); ++it) {
        const std::size_t pp = it->prev_page, cp = pp + 1;
        try {  // both tables read first, as MinerU reads them (and raises on a span int() refuses)
            TableState *current = state(cp, it->curr_block), *previous = state(pp, it->prev_block);
            if (!previous || !current) continue;
            if (!detail::captions_allow_merge(blocks[pp], it->prev_block, blocks[cp], it->curr_block)) continue;
            if (!can_merge_by_structure(*current, *previous, detail::box_of(blocks[cp][it->curr_block]),
                                        detail::box_of(blocks[pp][it->prev_block])))
                continue;
            merge_table_into(*previous, *current, blocks[cp][it->curr_block].cell_merge);
            joined_into.insert({pp, it->prev_block});
        } catch (const Error& e) {
            pages[cp].warnings.push_back("table not joined to the previous page's: " + std::string(e.what()));
            continue;
        }
        dropped[cp][it->curr_block] = true;
        for (std::size_t c : detail::blocks_around(blocks[cp], it->curr_block, "table_caption", true)) dropped[cp][c] = true;
        for (std::size_t f : detail::blocks_around(blocks[pp], it->prev_block, "table_footnote", false)) dropped[pp][f] = true;
        for (std::size_t f : detail::blocks_around(blocks[cp], it->curr_block, "table_footnote", false)) {
            if (dropped[cp][f]) continue;  // replaced already by those of the table joined to this one
            dropped[cp][f] = true;
            moved_footnotes[pp].emplace_back(it->prev_block, blocks[cp][f]);
        }
        for (auto& [at, footnote] : moved_footnotes[cp])  // footnotes this table had gathered move on with it
            if (at == it->curr_block) moved_footnotes[pp].emplace_back(it->prev_block, std::move(footnote)), at = SIZE_MAX;
    }
    for (const auto& key : joined_into)
        if (!dropped[key.first][key.second]) blocks[key.first][key.second].content = states.at(key).tree->to_html();
    for (std::size_t p = 0; p < pages.size(); ++p) {
        std::vector<Block> kept;
        for (std::size_t b = 0; b < blocks[p].size(); ++b) {
            if (!dropped[p][b]) kept.push_back(std::move(blocks[p][b]));
            for (auto& [at, footnote] : moved_footnotes[p])
                if (at == b) kept.push_back(std::move(footnote));
        }
        pages[p].blocks = std::move(kept);
    }
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
