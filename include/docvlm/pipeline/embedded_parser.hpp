// docvlm/pipeline/embedded_parser.hpp — page parsing with a line-reading model such as docvlm's
// embedded model (GatedVlmModel): the classical segmenter of layout.hpp finds blocks, lines and
// crops; every crop is read by the model (text task); tables come out as HTML: their structure
// (rows, columns, spans) from the model's table splitter (separator maps) or table task where it
// has one, else from the segmenter's grid reader.
//
// Crops are recognised in parallel on the process's thread pool, in batches: crops of similar
// width go through the decoder together (Model::generate_batch: each weight matrix is read once
// per step for the batch), and the batches are dealt out to the workers (the kernels inside run
// single-threaded there), which suits a small model far better than splitting each small matrix
// product across threads.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/model/gated_vlm.hpp>
#include <docvlm/model/generation.hpp>
#include <docvlm/model/sequence_score.hpp>
#include <docvlm/pipeline/layout.hpp>
#include <docvlm/pipeline/page_normalise.hpp>
#include <docvlm/pipeline/page_parser.hpp>
#include <docvlm/pipeline/languages.hpp>
#include <docvlm/pipeline/scripts.hpp>
#include <docvlm/pipeline/table_structure.hpp>
#include <docvlm/pipeline/word_correction.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

struct EmbeddedParserOptions {
    /// Scans made to look rendered before segmentation (pipeline/page_normalise.hpp: background,
    /// levels, quarter turns, skew); a clean rendered page passes unchanged.
    NormaliseOptions normalise;
    LayoutOptions layout;
    std::size_t max_new_tokens = 160;  ///< per crop
    /// A text crop whose reading has a mean token log-probability below this (the end token
    /// included) is not guessed: its text is left out of the block and its box listed in
    /// Block::unreadable. -infinity (the default until a threshold is chosen on held-out crops
    /// with tools/train/confidence.py) keeps every reading.
    double min_confidence = -std::numeric_limits<double>::infinity();
    /// A text crop read with a confidence below this (or whose reading overran its bound) is read
    /// a second time, its model input narrowed to `reread_width` of its width (the same text in
    /// narrower letters); the reading with the higher confidence is kept (parse; recognise streams
    /// its one reading). -infinity: one reading.
    /// Chosen on data held out of training, never on evaluation pages: 1,000 scanned validation
    /// crops (tools/train/reread.py: CER 0.0915 -> 0.0874, a quarter of them read twice; 1,000
    /// clean ones 0.0479 -> 0.0491) and the held-out pages of tools/eval/make_heldout_pages.py,
    /// where -0.05 did better than -0.1 and -0.2 on every kind, clean and scanned.
    double reread_below = -0.05;
    double reread_width = 0.9;  ///< in (0, 1]
    /// Such a crop is also read by beam search of this width (GatedVlmModel::generate_beams: the
    /// most probable reading the width finds, not only the most probable token at each step), and
    /// that reading kept when it is the most confident and holds no loop (has_loop). 0: no beam
    /// search. Off by default: on the held-out pages it read better but took a sixth to a third
    /// more time per page (docs/cli.md).
    std::size_t reread_beam = 0;
    /// Where the model has a word list (io::Lexicon, its folder's lexicon.txt), a text crop's
    /// words it lacks are corrected by it (pipeline/word_correction.hpp), swapping letters for the
    /// model's own alternatives at a total cost of at most this many nats of log-probability
    /// (parse; recognise streams its reading as read). 0: no correction.
    /// Chosen on 1,000 clean and 1,000 scanned validation crops (tools/train/lexicon_eval.py,
    /// documents held out of training and of the word list).
    double lexicon_margin = 4.0;
    /// With the word list: a word still unknown after that correction becomes the listed word one
    /// edit away (a letter dropped, added, changed, or two swapped) whose whole reading the model
    /// scores best, when that score is at most this many nats below the reading as read
    /// (pipeline::respell_words; parse only). 0: no respelling.
    /// Chosen on 1,000 clean and 1,000 scanned validation crops (tools/train/respell.py: the lowest
    /// mean CER of margins 0.5-8), then checked on the held-out pages of make_heldout_pages.py.
    double respell_margin = 6.0;
    std::size_t batch = 8;             ///< crops decoded together (1: one at a time)
    /// Display formulas as LaTeX: a `displayed` block whose text reads like mathematics (see
    /// looks_like_math) is read again with the formula task, its equation number kept apart.
    bool formulas = true;
    /// Table structure from the model's table task (when it has one): each table block is read
    /// once more, as a whole, into a grid (column and row extents, OTSL cells); the text of its
    /// crops fills the cells.
    /// A model without the table task cuts the block as a grid (grid_table_region: every cell a
    /// crop) and takes its structure from its table splitter (read_split_grid, then
    /// split_aligned_rows) where it has one,
    /// else (or when the splitter finds no table) from grid_table_html: rows, columns and spanning
    /// cells from the positions of its text and rules.
    /// Off, or when the model's structure is malformed, the segmenter's rows and columns stay.
    bool tables = true;
    /// Take a table's structure from the model's table splitter where it has one; off, from
    /// grid_table_html as for a model without one (the text's positions and rules).
    bool table_splitter = true;
    /// Called as crops are read: ("content", done, total).
    std::function<void(std::string_view phase, std::size_t done, std::size_t total)> progress;
};

/// Decodes the model's byte tokens (ids < 256) as UTF-8, invalid sequences replaced by U+FFFD.
std::string bytes_to_text(std::span<const std::int32_t> ids);

/// True for text that reads like a display formula: a relation or operator sign (= < > ≤ ≥ ≠ ≈
/// ∑ ∏ ∫ √ ∞ ∂ ∇ ±) and few words of three or more letters.
bool looks_like_math(std::string_view text);

/// True when a decoded sequence ends in a loop: its last 1–32 tokens repeated at least `times`
/// times in a row, over at least 16 tokens (a model that lost its place in the image).
bool ends_in_loop(std::span<const std::int32_t> ids, std::size_t times = 4);
/// The period of such a loop, or 0.
std::size_t loop_period(std::span<const std::int32_t> ids, std::size_t times = 4);
/// True when a loop (ends_in_loop) ends anywhere in `ids`, not only at its end.
bool has_loop(std::span<const std::int32_t> ids, std::size_t times = 4);
/// The length of `ids` with a trailing loop (ends_in_loop) cut to its first turn.
std::size_t without_loop(std::span<const std::int32_t> ids);

/// The confidence of a reading: the mean of the log-probabilities of its first `kept` tokens, and
/// of the end token after them unless the reading was cut (`cut`: a loop removed, or none came);
/// -infinity for no tokens at all.
double mean_logprob(std::span<const float> logprobs, std::size_t kept, bool cut);

/// The most tokens (UTF-8 bytes) a text crop `input_width` pixels wide at the recogniser's 24-pixel
/// line height can hold: one per 3.5 pixels and 8 more — about twice the densest print (a narrow
/// character is some 6 pixels wide there). A reading that reaches it without ending is not a
/// reading of the crop: the parser leaves it out as unreadable (never invented text).
std::size_t text_token_bound(int input_width);

/// What the parser keeps of a text crop's reading `ids`, decoded under at most `bound` tokens
/// where the user allowed `cap`: `keep` tokens (a trailing loop cut to its first turn: `looped`);
/// `overran` when, without a loop, it ran to the crop's own bound (text_token_bound, below `cap`)
/// — then it is not kept at all.
struct TextVerdict {
    std::size_t keep = 0;
    bool looped = false, overran = false;
};
TextVerdict judge_text_reading(std::span<const std::int32_t> ids, std::size_t bound, std::size_t cap);

/// Letters in a script the page does not use (pipeline/scripts.hpp) are invented: the page's text
/// `readings` (in place) lose them, or, where they make up half a reading's letters, the reading
/// is cleared and its `unreadable` flag set.
void drop_foreign_letters(std::span<std::string* const> readings, std::span<std::uint8_t> unreadable);
/// Lines written in a language the page does not use (pipeline/languages.hpp): every reading of
/// such a line (`line_of`: the line each reading belongs to) becomes empty, its `unreadable` flag 1.
void drop_foreign_language(std::span<std::string* const> readings, std::span<const std::size_t> line_of,
                           std::span<std::uint8_t> unreadable);

/// A model input (a text line `height` pixels high, white padded to a multiple of `patch` wide)
/// resized to `factor` of its width (bicubic, at least one patch), padded again.
io::Image narrowed_input(const io::Image& input, double factor, int patch);

/// A crop of `page` around `box` grown by `margin` pixels, white outside the page.
io::Image crop_with_margin(const io::Image& page, int x0, int y0, int x1, int y1, int margin);

/// A crop known to hold one table, cut for the grid reader (grid_table_html): the lines of every
/// region the segmenter finds in box [x0, x1) × [y0, y1) of `gray`, with cells at gaps of 0.8
/// line heights (each cell a chunk of its own) and horizontal rules erased before lines are cut;
/// `rules` receives the crop's rules. Coordinates are `gray`'s. No lines when the box is blank.
LayoutRegion grid_table_region(const io::Image& gray, const TextChunk& box, LayoutOptions layout, std::vector<Rule>& rules);

template <class M>
class EmbeddedPageParser {
public:
    explicit EmbeddedPageParser(const M& model, EmbeddedParserOptions opt = {}) : model_(&model), opt_(std::move(opt)) {
        opt_.layout.chunk_height = int(model.dims().height_of("text"));
        opt_.layout.max_chunk_width = int(model.dims().max_width());
        if (!(opt_.reread_width > 0 && opt_.reread_width <= 1))  // wider would pass the model's widest input
            docvlm::detail::fail("EmbeddedParserOptions::reread_width must lie in (0, 1], not ", opt_.reread_width);
        if (opt_.reread_beam > 64) docvlm::detail::fail("EmbeddedParserOptions::reread_beam ", opt_.reread_beam, " is more than 64");
    }

    /// Blocks, lines and their text for one page image (gray or RGB), normalised first
    /// (opt.normalise); Document::page says how the page was turned.
    Document parse(const io::Image& page) const;
    /// The text of one crop for a task the model knows ("text", "formula", "table"): a text crop
    /// with several lines, or a line too long for one pass, is segmented first; a table crop is
    /// read line by line and its structure comes from the table task (HTML), or from the
    /// segmenter when the model has no table task or its output is not a table.
    std::string recognise(const io::Image& crop, std::string_view task,
                          const std::function<void(std::string_view piece)>& on_piece = {}) const;
    /// MinerU's cross-page table check over a document's pages in order (mineru_cross_page.hpp),
    /// its questions answered by rule (cross_page_merge_answer): Block::cell_merge set on tables
    /// whose first row continues the previous page's last row.
    void check_cross_page_tables(std::vector<Document>& pages) const {
        pipeline::check_cross_page_tables(pages, [](const std::vector<std::string>& prompts) {
            std::vector<std::string> answers;
            for (const std::string& p : prompts) answers.push_back(cross_page_merge_answer(p).value_or(""));
            return answers;
        });
    }
    /// Adds time spent decoding page images (by the caller) to the profile.
    void add_decode_image_time(double seconds) const {
        std::lock_guard lock(mutex_);
        times_.decode_image += seconds;
    }
    /// Seconds spent per phase over all calls so far.
    PhaseTimes phase_times() const {
        std::lock_guard lock(mutex_);
        return times_;
    }

private:
    // The model's input for a chunk and a bound on its output length; `scanned`: a text crop of
    // a page that was flattened gets its own levels (stretch_crop_levels).
    io::Image input_of(const io::Image& gray, const TextChunk& c, std::string_view task, std::size_t& max_new, bool scanned = false) const;
    // Readings of model inputs for the text task, decoded together under the given bounds: what
    // is kept of each (judge_text_reading) and its confidence (mean_logprob; -infinity when it
    // overran). Adds the decoder's seconds and the tokens decoded (encode_texts: the encoder's).
    // The words are as read: correct_reading mends them, once a line's reading is chosen.
    struct TextReading {
        std::vector<std::int32_t> ids;
        TextVerdict verdict;
        double confidence = 0;
        std::vector<float> logprobs;                 // of each token read (correct_words)
        std::vector<TokenAlternative> alternatives;  // per step, with a word list (correct_words)
        const Tensor<float, 2>* vision = nullptr;    // the input's vision tokens (respell_words); null once they are gone
    };
    // `vision`: the inputs' vision tokens (encode_texts), which the readings point to; `beam` > 0:
    // by beam search of that width instead of greedy decoding.
    std::vector<TextReading> read_texts(std::span<const Tensor<float, 2>> vision, std::span<const std::size_t> bounds, double& decode_s,
                                        std::size_t& tokens, std::size_t beam = 0) const;
    // Misread words of a chosen reading mended by the model's second choices and by its score of
    // listed spellings (correct_words, respell_words; nothing without a word list).
    void correct_reading(TextReading& r, double& decode_s) const;
    std::vector<Tensor<float, 2>> encode_texts(std::span<const io::Image> inputs, double& vision_s) const;
    // read_texts, and a second reading of each input whose confidence is below opt.reread_below,
    // narrowed (narrowed_input), and with opt.reread_beam a third, of the input as it is, by beam
    // search; the most confident reading is kept, and then corrected (correct_reading).
    std::vector<TextReading> read_texts_twice(std::span<const io::Image> inputs, std::span<const std::size_t> bounds, double& vision_s,
                                              double& decode_s, std::size_t& tokens) const;
    // `ended`, if given, is set to false when decoding ran into its length bound or into a loop.
    std::string read_one(const io::Image& gray, const TextChunk& c, std::string_view task, typename M::Context& ctx,
                         const std::function<void(std::int32_t)>& on_token, double& vision_s, double& decode_s,
                         std::size_t& tokens, bool* ended = nullptr) const;

    // The HTML of a table region from the table splitter or the table task (structure) and the
    // text of its crops; empty when the model has neither or its output is not a table. `rules`:
    // the region's rules (grid_table_region), inside the splitter's crop with a quarter line
    // height of white around it.
    std::string read_table(const io::Image& gray, const LayoutRegion& region, const std::vector<Rule>& rules,
                           const std::vector<std::vector<std::string>>& texts, typename M::Context& ctx, double& vision_s,
                           double& decode_s, std::size_t& tokens) const;

    static constexpr std::size_t word_alternatives = 8;  // per step, for correct_words (more changed nothing on the validation crops)
    const M* model_;
    EmbeddedParserOptions opt_;
    mutable std::mutex mutex_;
    mutable PhaseTimes times_;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline std::string bytes_to_text(std::span<const std::int32_t> ids) {
    std::string raw;
    for (std::int32_t t : ids)
        if (t >= 0 && t < 256) raw += char(std::uint8_t(t));
    return io::utf8_replace_invalid(raw);
}

inline bool looks_like_math(std::string_view t) {
    static constexpr std::string_view signs[] = {"=", "<", ">", "\u2264", "\u2265", "\u2260", "\u2248", "\u2211", "\u220f",
                                                 "\u222b", "\u221a", "\u221e", "\u2202", "\u2207", "\u00b1"};
    bool sign = false;
    for (std::string_view s : signs) sign = sign || t.find(s) != std::string_view::npos;
    if (!sign) return false;
    int words = 0, run = 0;
    for (char c : t) {
        const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (letter) ++run;
        else words += run >= 3, run = 0;
    }
    words += run >= 3;
    return words <= 3;
}

inline std::size_t loop_period(std::span<const std::int32_t> ids, std::size_t times) {
    for (std::size_t period = 1; period <= 32; ++period) {  // byte tokens: "α 2 − " is 9 of them
        // at least `times` repeats covering at least 16 tokens ("}}}}" or "...." can be real)
        const std::size_t reps = std::max(times, (16 + period - 1) / period);
        if (ids.size() < period * reps) continue;
        const std::size_t start = ids.size() - period * reps;
        bool loop = true;
        for (std::size_t i = start + period; i < ids.size() && loop; ++i) loop = ids[i] == ids[i - period];
        if (loop) return period;
    }
    return 0;
}

inline bool ends_in_loop(std::span<const std::int32_t> ids, std::size_t times) { return loop_period(ids, times) != 0; }

inline bool has_loop(std::span<const std::int32_t> ids, std::size_t times) {
    for (std::size_t end = 16; end <= ids.size(); ++end)
        if (ends_in_loop(ids.first(end), times)) return true;
    return false;
}

inline std::size_t without_loop(std::span<const std::int32_t> ids) {
    const std::size_t period = loop_period(ids, 4);
    if (period == 0) return ids.size();
    std::size_t s = ids.size() - period;  // the loop's first turn starts at s
    while (s > 0 && ids[s - 1] == ids[s - 1 + period]) --s;
    return s + period;
}

inline void drop_foreign_letters(std::span<std::string* const> readings, std::span<std::uint8_t> unreadable) {
    ScriptCounts page;
    for (const std::string* r : readings) page.add(*r);
    const PageScripts scripts(page);
    for (std::size_t i = 0; i < readings.size(); ++i) {
        switch (judge_foreign_letters(*readings[i], scripts)) {
            case ForeignVerdict::keep: break;
            case ForeignVerdict::strip: *readings[i] = strip_foreign_letters(*readings[i], scripts); break;
            case ForeignVerdict::unreadable: readings[i]->clear(), unreadable[i] = 1; break;
        }
    }
}

inline void drop_foreign_language(std::span<std::string* const> readings, std::span<const std::size_t> line_of,
                                  std::span<std::uint8_t> unreadable) {
    LanguageCounts page;
    std::vector<std::string> lines;  // a line's readings joined
    for (std::size_t i = 0; i < readings.size(); ++i) {
        page.add(*readings[i]);
        if (line_of[i] >= lines.size()) lines.resize(line_of[i] + 1);
        lines[line_of[i]] += *readings[i] + " ";
    }
    std::vector<std::uint8_t> foreign(lines.size());
    for (std::size_t l = 0; l < lines.size(); ++l) foreign[l] = foreign_language(lines[l], page);
    for (std::size_t i = 0; i < readings.size(); ++i)
        if (foreign[line_of[i]]) readings[i]->clear(), unreadable[i] = 1;
}

inline std::size_t text_token_bound(int input_width) { return std::size_t(std::max(0, input_width)) * 2 / 7 + 8; }

inline TextVerdict judge_text_reading(std::span<const std::int32_t> ids, std::size_t bound, std::size_t cap) {
    TextVerdict v;
    v.keep = without_loop(ids);
    v.looped = v.keep < ids.size();
    v.overran = !v.looped && ids.size() >= bound && bound < cap;
    if (v.overran) v.keep = 0;
    return v;
}

inline double mean_logprob(std::span<const float> logprobs, std::size_t kept, bool cut) {
    const std::size_t n = std::min(logprobs.size(), kept + (cut ? 0 : 1));
    if (n == 0) return -std::numeric_limits<double>::infinity();
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += logprobs[i];
    return sum / double(n);
}

inline io::Image crop_with_margin(const io::Image& page, int x0, int y0, int x1, int y1, int margin) {
    x0 -= margin, y0 -= margin, x1 += margin, y1 += margin;
    if (x1 <= x0 || y1 <= y0) docvlm::detail::fail("crop_with_margin: empty box");
    io::Image out(x1 - x0, y1 - y0, page.channels, 255);
    const int sx0 = std::max(0, x0), sy0 = std::max(0, y0), sx1 = std::min(page.width, x1), sy1 = std::min(page.height, y1);
    for (int y = sy0; y < sy1; ++y)
        std::copy_n(page.row(y) + std::size_t(sx0) * page.channels, std::size_t(sx1 - sx0) * page.channels,
                    out.row(y - y0) + std::size_t(sx0 - x0) * page.channels);
    return out;
}

inline LayoutRegion grid_table_region(const io::Image& gray, const TextChunk& box, LayoutOptions lo, std::vector<Rule>& rules) {
    lo.cell_gap = std::min(lo.cell_gap, 0.8), lo.erase_horizontal_rules = true;
    const int x0 = std::max(0, box.x0), y0 = std::max(0, box.y0), x1 = std::min(gray.width, box.x1), y1 = std::min(gray.height, box.y1);
    const bool whole = x0 == 0 && y0 == 0 && x1 == gray.width && y1 == gray.height;
    const PageLayout lay = segment_page(whole ? gray : crop_with_margin(gray, x0, y0, x1, y1, 0), lo);
    LayoutRegion all;
    all.block.type = "table";
    all.block.x0 = x1, all.block.y0 = y1, all.block.x1 = x0, all.block.y1 = y0;
    for (const auto& r : lay.regions) {
        if (r.block.type == "image") continue;
        for (TextLine l : r.lines) {
            l.x0 += x0, l.x1 += x0, l.y0 += y0, l.y1 += y0;
            for (auto& c : l.chunks) c.x0 += x0, c.x1 += x0, c.y0 += y0, c.y1 += y0;
            all.block.x0 = std::min<double>(all.block.x0, l.x0), all.block.y0 = std::min<double>(all.block.y0, l.y0);
            all.block.x1 = std::max<double>(all.block.x1, l.x1), all.block.y1 = std::max<double>(all.block.y1, l.y1);
            all.lines.push_back(std::move(l));
        }
    }
    rules.clear();
    for (Rule r : lay.rules) rules.push_back({r.x0 + x0, r.y0 + y0, r.x1 + x0, r.y1 + y0});
    if (all.lines.empty()) all.block.x0 = x0, all.block.y0 = y0, all.block.x1 = x1, all.block.y1 = y1;
    return all;
}

template <class M>
io::Image EmbeddedPageParser<M>::input_of(const io::Image& gray, const TextChunk& c, std::string_view task, std::size_t& max_new,
                                          bool scanned) const {
    io::Image crop = crop_with_margin(gray, c.x0, c.y0, c.x1, c.y1, opt_.layout.margin);
    if (c.inverse) {  // light text on a dark fill: dark text on light, the fill's grey stretched to paper
        for (auto& v : crop.pixels) v = std::uint8_t(255 - v);
        crop = stretch_crop_levels(crop);
    }
    if (scanned && task == "text" && crop.channels == 1 && !c.inverse) crop = stretch_crop_levels(crop);
    io::Image input = model_->prepare(crop, task);
    max_new = task == "text" ? std::min(opt_.max_new_tokens, text_token_bound(input.width)) : opt_.max_new_tokens;
    return input;
}

inline io::Image narrowed_input(const io::Image& input, double factor, int patch) {
    const int w = std::max(patch, int(std::lround(input.width * factor)));
    const io::Image scaled = io::resize(input, w, input.height, io::Resample::bicubic);
    io::Image out((w + patch - 1) / patch * patch, input.height, input.channels, 255);
    for (int y = 0; y < input.height; ++y) std::copy_n(scaled.row(y), std::size_t(w) * input.channels, out.row(y));
    return out;
}

template <class M>
std::vector<Tensor<float, 2>> EmbeddedPageParser<M>::encode_texts(std::span<const io::Image> inputs, double& vision_s) const {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<Tensor<float, 2>> vision;
    for (const io::Image& input : inputs) vision.push_back(model_->encode_image(input));
    vision_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return vision;
}

template <class M>
auto EmbeddedPageParser<M>::read_texts(std::span<const Tensor<float, 2>> vision, std::span<const std::size_t> bounds, double& decode_s,
                                       std::size_t& tokens, std::size_t beam) const -> std::vector<TextReading> {
    const auto t1 = std::chrono::steady_clock::now();
    std::vector<std::vector<float>> logprobs;
    std::vector<std::vector<TokenAlternative>> alternatives;
    const bool words = opt_.lexicon_margin > 0 && model_->lexicon();
    GenerationOptions gen;
    gen.alternatives = words ? word_alternatives : 0;
    std::vector<std::vector<std::int32_t>> outs;
    if (beam) {
        for (BeamReading& b : model_->generate_beams(vision, "text", beam, bounds, gen.alternatives)) {
            outs.push_back(std::move(b.ids));
            logprobs.push_back(std::move(b.logprobs));
            alternatives.push_back(std::move(b.alternatives));
        }
    } else {
        outs = model_->generate_batch(vision, "text", gen, bounds, &logprobs, words ? &alternatives : nullptr);
    }
    std::vector<TextReading> readings(vision.size());
    for (std::size_t i = 0; i < vision.size(); ++i) {
        TextReading& r = readings[i];
        r.verdict = judge_text_reading(outs[i], bounds[i], opt_.max_new_tokens);
        r.ids.assign(outs[i].begin(), outs[i].begin() + std::ptrdiff_t(r.verdict.keep));
        r.confidence = r.verdict.overran ? -std::numeric_limits<double>::infinity() : mean_logprob(logprobs[i], r.ids.size(), r.verdict.looped);
        r.logprobs = std::move(logprobs[i]);
        if (words) r.alternatives = std::move(alternatives[i]);
        r.vision = &vision[i];
        tokens += outs[i].size();
    }
    decode_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    return readings;
}

template <class M>
void EmbeddedPageParser<M>::correct_reading(TextReading& r, double& decode_s) const {
    const io::Lexicon* words = opt_.lexicon_margin > 0 ? model_->lexicon() : nullptr;
    if (!words) return;
    const auto t0 = std::chrono::steady_clock::now();
    correct_words(r.ids, r.logprobs, r.alternatives, word_alternatives, *words, opt_.lexicon_margin);
    if (opt_.respell_margin > 0 && r.ids.size() + 1 < model_->dims().max_tokens) {
        std::optional<ReadingScorer<M>> scorer;  // made when a word has listed neighbours
        respell_words(r.ids, *words, opt_.respell_margin, [&](std::span<const std::int32_t> ids, std::size_t from, std::size_t to) {
            if (!scorer) scorer.emplace(*model_, *r.vision, "text");
            return scorer->logprob(ids, from, to);
        });
    }
    decode_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class M>
auto EmbeddedPageParser<M>::read_texts_twice(std::span<const io::Image> inputs, std::span<const std::size_t> bounds, double& vision_s,
                                             double& decode_s, std::size_t& tokens) const -> std::vector<TextReading> {
    const std::vector<Tensor<float, 2>> vision = encode_texts(inputs, vision_s);
    std::vector<TextReading> readings = read_texts(vision, bounds, decode_s, tokens);
    std::vector<std::size_t> again, again_bounds;
    std::vector<io::Image> narrow;
    for (std::size_t i = 0; i < readings.size(); ++i)
        if (readings[i].confidence < opt_.reread_below) {
            again.push_back(i);
            again_bounds.push_back(bounds[i]);  // the same text: the same bound
            narrow.push_back(narrowed_input(inputs[i], opt_.reread_width, int(model_->dims().patch)));
        }
    std::vector<Tensor<float, 2>> narrow_vision, same;  // alive until the chosen readings are corrected
    if (!again.empty()) {
        narrow_vision = encode_texts(narrow, vision_s);
        std::vector<TextReading> second = read_texts(narrow_vision, again_bounds, decode_s, tokens);
        std::vector<TextReading> third;
        if (opt_.reread_beam) {  // the inputs as they are: their vision tokens are read already
            for (std::size_t i : again) same.push_back(vision[i]);
            third = read_texts(same, again_bounds, decode_s, tokens, opt_.reread_beam);
        }
        for (std::size_t j = 0; j < again.size(); ++j) {
            if (second[j].confidence > readings[again[j]].confidence) readings[again[j]] = std::move(second[j]);
            // beam search favours loops (each turn more probable than the last): a reading with one is
            // not taken, whether it ended in it (cut to its first turn by judge_text_reading) or went on
            if (!third.empty() && !third[j].verdict.looped && !has_loop(third[j].ids) && third[j].confidence > readings[again[j]].confidence)
                readings[again[j]] = std::move(third[j]);
        }
    }
    for (TextReading& r : readings) {
        correct_reading(r, decode_s);
        r.vision = nullptr;  // the vision tokens end with this call
    }
    return readings;
}

template <class M>
std::string EmbeddedPageParser<M>::read_one(const io::Image& gray, const TextChunk& c, std::string_view task, typename M::Context& ctx,
                                            const std::function<void(std::int32_t)>& on_token, double& vision_s, double& decode_s,
                                            std::size_t& tokens, bool* ended) const {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    GenerationOptions gen;
    const auto vis = model_->encode_image(input_of(gray, c, task, gen.max_new_tokens));
    const auto t1 = clock::now();
    const auto ids = ctx.generate(vis, task, gen, on_token);
    if (ended) *ended = ids.size() < gen.max_new_tokens && !ends_in_loop(ids);
    vision_s += std::chrono::duration<double>(t1 - t0).count();
    decode_s += std::chrono::duration<double>(clock::now() - t1).count();
    tokens += ids.size();
    return bytes_to_text(ids);
}

template <class M>
std::string EmbeddedPageParser<M>::read_table(const io::Image& gray, const LayoutRegion& region, const std::vector<Rule>& rules,
                                              const std::vector<std::vector<std::string>>& texts, typename M::Context& ctx,
                                              double& vision_s, double& decode_s, std::size_t& tokens) const {
    const bool split = model_->dims().split.present && opt_.table_splitter;
    if ((!model_->dims().table.present && !split) || region.lines.empty()) return "";
    using clock = std::chrono::steady_clock;
    // the crop's scale comes from its median line height (the ink of a text line)
    std::vector<int> heights;
    for (const auto& line : region.lines) heights.push_back(line.y1 - line.y0);
    std::nth_element(heights.begin(), heights.begin() + std::ptrdiff_t(heights.size() / 2), heights.end());
    const double line_height = heights[heights.size() / 2];
    Block b = region.block;
    int m = opt_.layout.margin;
    if (split) {  // the splitter learnt tables whole, with their rules and some white around them
        for (const Rule& r : rules)
            b.x0 = std::min<double>(b.x0, r.x0), b.y0 = std::min<double>(b.y0, r.y0), b.x1 = std::max<double>(b.x1, r.x1),
            b.y1 = std::max<double>(b.y1, r.y1);
        m = std::max(m, int(std::lround(0.25 * line_height)));
    }
    const int x0 = int(b.x0) - m, y0 = int(b.y0) - m;
    double scale = 1;
    const auto t0 = clock::now();
    const io::Image input = model_->prepare_table(crop_with_margin(gray, int(b.x0), int(b.y0), int(b.x1), int(b.y1), m), line_height, scale);
    if (split) {  // the table splitter: its grid from separator maps, no decoding
        const auto rows = split_aligned_rows(read_split_grid(input, model_->table_split_maps(input), model_->dims().ink_threshold),
                                             region, texts, scale, x0, y0);
        vision_s += std::chrono::duration<double>(clock::now() - t0).count();
        return table_html(rows, region, texts, scale, x0, y0);
    }
    const auto vis = model_->encode_image(input);
    const auto t1 = clock::now();
    GenerationOptions gen;
    gen.max_new_tokens = model_->dims().max_tokens - 2;
    gen.constrain = otsl_constraint(model_->dims().table, model_->dims().eos_token_id);
    const auto ids = ctx.generate(vis, "table", gen);
    vision_s += std::chrono::duration<double>(t1 - t0).count();
    decode_s += std::chrono::duration<double>(clock::now() - t1).count();
    tokens += ids.size();
    return table_html(parse_table_tokens(ids, model_->dims().table), region, texts, scale, x0, y0);
}

template <class M>
Document EmbeddedPageParser<M>::parse(const io::Image& page) const {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    PageGeometry geometry;
    const io::Image gray = normalise_page(page, opt_.normalise, &geometry);
    PageLayout layout = segment_page(gray, opt_.layout);
    // without a table task, a table region is cut again as a table crop (every cell a crop of its
    // own, rules between rows erased) and its grid found from the positions of its text
    const bool grid_tables = opt_.tables && !model_->dims().table.present;
    std::vector<std::vector<Rule>> table_rules(layout.regions.size());
    if (grid_tables)
        for (std::size_t r = 0; r < layout.regions.size(); ++r) {
            LayoutRegion& region = layout.regions[r];
            if (region.block.type != "table") continue;
            const Block& b = region.block;
            LayoutRegion grid = grid_table_region(gray, {int(b.x0), int(b.y0), int(b.x1), int(b.y1)}, opt_.layout, table_rules[r]);
            if (!grid.lines.empty()) region.lines = std::move(grid.lines);
        }
    const auto t1 = clock::now();
    // every chunk of every line, flattened
    struct Item {
        std::size_t region, line, chunk;
    };
    std::vector<Item> items;
    std::vector<std::vector<std::vector<std::string>>> texts(layout.regions.size());
    for (std::size_t r = 0; r < layout.regions.size(); ++r) {
        texts[r].resize(layout.regions[r].lines.size());
        for (std::size_t l = 0; l < layout.regions[r].lines.size(); ++l) {
            texts[r][l].resize(layout.regions[r].lines[l].chunks.size());
            for (std::size_t c = 0; c < layout.regions[r].lines[l].chunks.size(); ++c) items.push_back({r, l, c});
        }
    }
    std::atomic<std::size_t> done{0};
    std::mutex progress_mutex;
    double vision_s = 0, decode_s = 0;
    std::size_t tokens = 0;
    std::mutex sum_mutex;
    // batches of crops of similar width (their outputs end at similar steps), dealt out in turn
    // to the workers
    std::vector<std::uint8_t> item_looped(items.size(), 0);  // the crop's reading ran into a loop (one writer each)
    std::vector<std::uint8_t> item_unreadable(items.size(), 0);  // its reading overran its bound, fell below min_confidence or is in a foreign script
    auto chunk_of = [&](const Item& it) -> const TextChunk& { return layout.regions[it.region].lines[it.line].chunks[it.chunk]; };
    std::vector<std::size_t> order(items.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    auto aspect = [&](std::size_t i) {
        const TextChunk& c = chunk_of(items[i]);
        return double(c.x1 - c.x0 + 2) / double(c.y1 - c.y0 + 2);
    };
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return aspect(a) < aspect(b); });
    const std::size_t batch = std::max<std::size_t>(1, opt_.batch);
    const std::size_t batches = (items.size() + batch - 1) / batch, workers = thread_pool().size();
    parallel_for(workers, [&](std::size_t wb, std::size_t we) {
        double vs = 0, ds = 0;
        std::size_t tk = 0;
        std::vector<io::Image> inputs;
        std::vector<std::size_t> bound;
        for (std::size_t w = wb; w < we; ++w)
            for (std::size_t k = w; k < batches; k += workers) {
                const std::size_t b = k * batch, e = std::min(items.size(), b + batch);
                inputs.clear(), bound.clear();
                for (std::size_t i = b; i < e; ++i) {
                    bound.emplace_back();
                    inputs.push_back(input_of(gray, chunk_of(items[order[i]]), "text", bound.back(), geometry.flattened));
                }
                const auto readings = read_texts_twice(inputs, bound, vs, ds, tk);
                for (std::size_t i = b; i < e; ++i) {
                    const Item& it = items[order[i]];
                    const TextReading& r = readings[i - b];
                    item_looped[order[i]] = r.verdict.looped;
                    const bool unreadable = r.verdict.overran || r.confidence < opt_.min_confidence;
                    item_unreadable[order[i]] = unreadable;
                    texts[it.region][it.line][it.chunk] = unreadable ? std::string() : bytes_to_text(r.ids);
                }
                const std::size_t n = done += e - b;
                if (opt_.progress) {
                    std::lock_guard lock(progress_mutex);
                    opt_.progress("content", n, items.size());
                }
            }
        std::lock_guard lock(sum_mutex);
        vision_s += vs, decode_s += ds, tokens += tk;
    }, 1);
    {
        std::vector<std::string*> readings;
        std::vector<std::size_t> line_of;  // a number per (region, line); items come line by line
        for (std::size_t i = 0; i < items.size(); ++i) {
            const Item& it = items[i];
            readings.push_back(&texts[it.region][it.line][it.chunk]);
            const bool same = i > 0 && it.region == items[i - 1].region && it.line == items[i - 1].line;
            line_of.push_back(i == 0 ? 0 : line_of.back() + (same ? 0 : 1));
        }
        drop_foreign_letters(readings, item_unreadable);
        drop_foreign_language(readings, line_of, item_unreadable);
    }
    // a region with a reading that looped or was left out: text reading failed there (a displayed
    // block is then read again as a formula)
    std::vector<std::uint8_t> misread(layout.regions.size(), 0);
    for (std::size_t i = 0; i < items.size(); ++i) misread[items[i].region] |= item_looped[i] | item_unreadable[i];
    std::vector<std::vector<std::array<double, 4>>> unreadable(layout.regions.size());
    for (std::size_t i = 0; i < items.size(); ++i)
        if (item_unreadable[i]) {
            const TextChunk& c = chunk_of(items[i]);
            unreadable[items[i].region].push_back({double(c.x0) / gray.width, double(c.y0) / gray.height, double(c.x1) / gray.width,
                                                   double(c.y1) / gray.height});
        }
    const auto t2 = clock::now();
    Document doc;
    doc.page = geometry;
    auto ctx = model_->context();
    for (std::size_t r = 0; r < layout.regions.size(); ++r) {
        const LayoutRegion& region = layout.regions[r];
        Block b = region.block;
        b.angle = 0;  // the segmenter's blocks lie upright on the normalised page
        b.unreadable = std::move(unreadable[r]);
        if (b.type != "image")
            b.content = grid_tables && b.type == "table" ? grid_table_html(region.lines, texts[r], table_rules[r]) : region_content(region, texts[r]);
        if (b.type == "table" && opt_.tables)
            if (std::string html = read_table(gray, region, table_rules[r], texts[r], ctx, vision_s, decode_s, tokens); !html.empty()) b.content = std::move(html);
        // a displayed block that reads like mathematics, or whose text reading failed
        if (opt_.formulas && region.displayed && (looks_like_math(b.content) || misread[r])) {
            // the formula's ink: every chunk but a trailing equation number "(12)"
            TextChunk box{int(b.x1), int(b.y1), int(b.x0), int(b.y0)};
            std::string number;
            for (std::size_t l = 0; l < region.lines.size(); ++l)
                for (std::size_t c = 0; c < region.lines[l].chunks.size(); ++c) {
                    const auto& ch = region.lines[l].chunks[c];
                    const std::string& t = texts[r][l][c];
                    if (region.lines.size() == 1 && c + 1 == region.lines[l].chunks.size() && c > 0 && ch.cell > 0 && t.size() >= 3 &&
                        t.front() == '(' && t.back() == ')') {
                        number = t;
                        continue;
                    }
                    box = {std::min(box.x0, ch.x0), std::min(box.y0, ch.y0), std::max(box.x1, ch.x1), std::max(box.y1, ch.y1)};
                }
            const double h = model_->dims().height_of("formula");
            const double w = double(box.x1 - box.x0 + 2 * opt_.layout.margin) * h / double(box.y1 - box.y0 + 2 * opt_.layout.margin);
            if (box.x1 > box.x0 && w <= double(model_->dims().max_width())) {
                double vs = 0, ds = 0;
                std::size_t tk = 0;
                bool ended = false;
                const std::string latex = read_one(gray, box, "formula", ctx, {}, vs, ds, tk, &ended);
                if (!latex.empty() && ended) {  // else the text reading stays
                    b.type = "equation";
                    b.content = wrap_equation(number.empty() ? latex : latex + " \\tag{" + number.substr(1, number.size() - 2) + "}");
                }
            }
        }
        doc.blocks.push_back(std::move(b));
    }
    const auto t3 = clock::now();
    std::lock_guard lock(mutex_);
    times_.layout += std::chrono::duration<double>(t1 - t0).count();
    times_.vision += vision_s;
    times_.decode += decode_s;
    times_.postprocess += std::chrono::duration<double>(t3 - t2).count();
    times_.pages += 1;
    times_.blocks += items.size();
    times_.generated_tokens += tokens;
    return doc;
}

template <class M>
std::string EmbeddedPageParser<M>::recognise(const io::Image& crop, std::string_view task,
                                             const std::function<void(std::string_view piece)>& on_piece) const {
    const io::Image gray = crop.channels == 1 ? crop : io::to_gray(crop);
    // without a table task, the crop's text is read line by line and its grid found from the
    // positions of the text (grid_table_html)
    const bool grid_table = task == "table" && !model_->dims().table.present;
    model_->dims().task_token(grid_table ? "text" : task);  // a clear error for tasks the model does not know
    auto ctx = model_->context();
    double vs = 0, ds = 0;
    std::size_t tk = 0;
    std::string pending;  // bytes of a UTF-8 sequence not yet complete
    std::function<void(std::int32_t)> on_token;
    if (on_piece)
        on_token = [&](std::int32_t t) {
            if (t < 0 || t >= 256) return;
            pending += char(std::uint8_t(t));
            const auto lead = std::uint8_t(pending[0]);
            const std::size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            if (pending.size() >= need) {
                on_piece(io::utf8_replace_invalid(pending));
                pending.clear();
            }
        };
    if (task == "table") {  // the crop's lines read as text, its structure from the table task
        std::vector<Rule> rules;
        LayoutRegion all;
        if (grid_table) {  // every cell a crop of its own, rules between rows erased first
            all = grid_table_region(gray, {0, 0, gray.width, gray.height}, opt_.layout, rules);
        } else {
            const PageLayout lay = segment_page(gray, opt_.layout);
            all.block.type = "table";
            for (const auto& r : lay.regions) {
                if (r.block.type == "image") continue;
                if (all.lines.empty()) all.block = r.block, all.block.type = "table";
                all.block.x0 = std::min(all.block.x0, r.block.x0), all.block.y0 = std::min(all.block.y0, r.block.y0);
                all.block.x1 = std::max(all.block.x1, r.block.x1), all.block.y1 = std::max(all.block.y1, r.block.y1);
                all.lines.insert(all.lines.end(), r.lines.begin(), r.lines.end());
            }
        }
        std::vector<std::vector<std::string>> texts(all.lines.size());
        for (std::size_t l = 0; l < all.lines.size(); ++l)
            for (const auto& c : all.lines[l].chunks) texts[l].push_back(read_one(gray, c, "text", ctx, on_token, vs, ds, tk));
        // the table splitter's or the table task's structure where the model has one
        if (std::string html = read_table(gray, all, rules, texts, ctx, vs, ds, tk); !html.empty()) return html;
        if (grid_table) return grid_table_html(all.lines, texts, rules);
        task = "text";  // not read as a table: the segmenter's reading below
    }
    if (task != "text") {  // one pass over the whole crop (its ink, with the margin)
        const PageLayout lay = segment_page(gray, opt_.layout);
        TextChunk all{0, 0, gray.width, gray.height};
        if (!lay.regions.empty()) {
            all = {int(lay.regions[0].block.x0), int(lay.regions[0].block.y0), int(lay.regions[0].block.x1), int(lay.regions[0].block.y1)};
            for (const auto& r : lay.regions)
                all = {std::min(all.x0, int(r.block.x0)), std::min(all.y0, int(r.block.y0)), std::max(all.x1, int(r.block.x1)),
                       std::max(all.y1, int(r.block.y1))};
        }
        return read_one(gray, all, task, ctx, on_token, vs, ds, tk);
    }
    const PageLayout lay = segment_page(gray, opt_.layout);
    std::string out;
    for (const auto& r : lay.regions) {
        if (r.block.type == "image") continue;
        std::vector<std::vector<std::string>> texts(r.lines.size());
        for (std::size_t l = 0; l < r.lines.size(); ++l) {
            for (const auto& c : r.lines[l].chunks) {
                texts[l].push_back(read_one(gray, c, task, ctx, on_token, vs, ds, tk));
                if (on_piece) on_piece(" ");
            }
            if (on_piece) on_piece("\n");
        }
        if (!out.empty()) out += "\n\n";
        out += region_content(r, texts);
    }
    return out;
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
