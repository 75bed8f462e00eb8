// docvlm/pipeline/word_correction.hpp — a line reader's misread words corrected by a word list
// (io::Lexicon), with the reader's own doubts as the only evidence:
//   - a word is a run of 3 to 32 ASCII letters in the reading (byte tokens);
//   - a word the list has stays; so does one with no listed word within reach;
//   - a listed word is within reach when it can be spelt by keeping some of the word's letters
//     and taking, at the other steps, an ASCII letter among that step's alternatives
//     (GenerationOptions::alternatives), each swap costing the chosen token's log-probability minus
//     the alternative's; the total may not pass `margin`;
//   - the cheapest word within reach replaces it (the first found on a tie: kept letters before
//     alternatives, alternatives most likely first), when its capitals are a word's: all lower
//     case, all capitals, or a capital and then lower case.
// The length never changes, and nothing but letters is touched: digits, signs and spaces stay as
// read. The margin is chosen on held-out crops (tools/train/lexicon_eval.py).
//
// respell_words goes one step further for the words still unknown (a letter of a blurred word
// dropped or doubled, which no same-length swap mends), with the model's score of whole readings
// as the evidence:
//   - the candidates of a word (3 to 32 letters, a word's capitals) are the listed words one edit
//     away: a letter dropped, added or changed, or two neighbours swapped; when there are none (or
//     too many) and the word has at least two_edit_min_length letters, the listed words two such
//     edits away (edit_distance, no letter edited twice); spelt with the word's capitals; at most
//     max_candidates of them (a longer list leaves the word as read);
//   - each is scored as the reading with it in the word's place (`score`: the model's
//     log-probability of a reading and its end from the word on, model/sequence_score.hpp; what
//     comes before the word is the same in every spelling); the best replaces the word when it
//     scores at most `margin` below the reading as read (the first on a tie);
//   - every word is scored against the reading as read; the replacements are made together;
//   - a spelling whose word and next 4 tokens already score below the bar (or the best so far) is
//     not scored further: what follows can only lower it.
// The margin is chosen on held-out crops (tools/train/respell.py).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/io/lexicon.hpp>
#include <docvlm/model/generation.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {

/// Corrects the words of the reading `ids` in place (see above). `chosen[i]`: the log-probability
/// of ids[i]; `alternatives`: `k` per step, step i's at [i · k, (i + 1) · k). Both cover at least
/// ids.size() steps. Returns the number of words changed.
std::size_t correct_words(std::span<std::int32_t> ids, std::span<const float> chosen, std::span<const TokenAlternative> alternatives,
                          std::size_t k, const io::Lexicon& lexicon, double margin);

/// The listed words one edit from `word` (see above), lower case, sorted; empty when more than
/// `limit` of them exist.
std::vector<std::string> lexicon_neighbours(std::string_view word, const io::Lexicon& lexicon, std::size_t limit);

/// The optimal-string-alignment distance of a and b: letters dropped, added or changed, or two
/// neighbours swapped, no letter edited twice; limit + 1 when it is larger than `limit`.
std::size_t edit_distance(std::string_view a, std::string_view b, std::size_t limit);

/// The listed words exactly two edits from `word` (edit_distance), lower case, sorted; empty when
/// more than `limit` of them exist.
std::vector<std::string> lexicon_two_edit_neighbours(std::string_view word, const io::Lexicon& lexicon, std::size_t limit);

/// Respells the unknown words of the reading `ids` (see above); `score(reading, from, to)` returns
/// the log-probability of the reading's tokens [from, to) given those before (a span of token ids
/// and two indices; index reading.size() is the end token). Returns the number of words changed.
template <class Score>
std::size_t respell_words(std::vector<std::int32_t>& ids, const io::Lexicon& lexicon, double margin, Score&& score);


// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {

inline bool ascii_letter(std::int32_t t) { return (t >= 'A' && t <= 'Z') || (t >= 'a' && t <= 'z'); }
inline char lower_letter(std::int32_t t) { return char(t >= 'A' && t <= 'Z' ? t + ('a' - 'A') : t); }

inline bool word_capitals(std::span<const std::int32_t> w) {
    std::size_t upper = 0, upper_after_first = 0;
    for (std::size_t i = 0; i < w.size(); ++i)
        if (w[i] >= 'A' && w[i] <= 'Z') ++upper, upper_after_first += i > 0;
    return upper == 0 || upper == w.size() || (upper == 1 && upper_after_first == 0);
}

// The search for one word: options per step (token, cost), the cheapest listed spelling.
struct WordSearch {
    struct Option {
        std::int32_t token;
        double cost;
    };
    const io::Lexicon& lexicon;
    std::vector<std::vector<Option>> options;  // [step] the read letter first (cost 0)
    std::vector<std::int32_t> spelling, best;
    std::string prefix;                        // lower case, as deep as the search is
    double best_cost = 0;
    std::size_t visits = 0;
    static constexpr std::size_t max_visits = 20000;  // a bound for hostile inputs; real words need far fewer

    void search(std::size_t step, double cost) {
        if (++visits > max_visits) return;
        if (step == options.size()) {
            if (cost > 0 && cost < best_cost && word_capitals(spelling)) best = spelling, best_cost = cost;
            return;
        }
        for (const Option& o : options[step]) {
            if (cost + o.cost >= best_cost) continue;
            prefix.push_back(lower_letter(o.token));
            if (lexicon.has_prefix(options.size(), prefix)) {
                spelling.push_back(o.token);
                search(step + 1, cost + o.cost);
                spelling.pop_back();
            }
            prefix.pop_back();
        }
    }
};

// Calls fn(begin, end, lower-case word) for each run of ASCII letters of `ids` of a length the
// list can hold that the list lacks; fn may change ids[begin, end).
template <class Fn>
void for_each_unknown_word(std::span<const std::int32_t> ids, const io::Lexicon& lexicon, Fn&& fn) {
    std::string word;
    for (std::size_t i = 0; i < ids.size();) {
        if (!ascii_letter(ids[i])) {
            ++i;
            continue;
        }
        std::size_t j = i;
        word.clear();
        while (j < ids.size() && ascii_letter(ids[j])) word.push_back(lower_letter(ids[j++]));
        if (word.size() >= io::Lexicon::min_length && word.size() <= io::Lexicon::max_length && !lexicon.contains(word)) fn(i, j, word);
        i = j;
    }
}

}  // namespace detail

inline std::size_t correct_words(std::span<std::int32_t> ids, std::span<const float> chosen, std::span<const TokenAlternative> alternatives,
                                 std::size_t k, const io::Lexicon& lexicon, double margin) {
    if (chosen.size() < ids.size() || alternatives.size() < ids.size() * k)
        docvlm::detail::fail("correct_words: ", chosen.size(), " log-probabilities and ", alternatives.size(), " alternatives for ",
                             ids.size(), " tokens (", k, " per token)");
    std::size_t changed = 0;
    detail::for_each_unknown_word(ids, lexicon, [&](std::size_t i, std::size_t j, const std::string&) {
        detail::WordSearch s{lexicon, {}, {}, {}, {}, margin + 1e-9};
        for (std::size_t p = i; p < j; ++p) {
            auto& opts = s.options.emplace_back();
            opts.push_back({ids[p], 0.0});
            for (std::size_t a = 0; a < k; ++a) {
                const TokenAlternative& alt = alternatives[p * k + a];
                const double cost = double(chosen[p]) - double(alt.logprob);
                if (detail::ascii_letter(alt.token) && cost <= margin) opts.push_back({alt.token, cost});
            }
        }
        s.search(0, 0.0);
        if (!s.best.empty()) {
            std::copy(s.best.begin(), s.best.end(), ids.begin() + std::ptrdiff_t(i));
            ++changed;
        }
    });
    return changed;
}

inline std::vector<std::string> lexicon_neighbours(std::string_view word, const io::Lexicon& lexicon, std::size_t limit) {
    std::vector<std::string> out;
    const std::string w(word);
    const auto consider = [&](std::string cand) {
        if (cand.size() >= io::Lexicon::min_length && cand.size() <= io::Lexicon::max_length && lexicon.contains(cand)) out.push_back(std::move(cand));
    };
    for (std::size_t i = 0; i <= w.size(); ++i) {
        if (i < w.size()) consider(w.substr(0, i) + w.substr(i + 1));                                    // dropped
        for (char l = 'a'; l <= 'z'; ++l) consider(w.substr(0, i) + l + w.substr(i));                      // added
        if (i < w.size())
            for (char l = 'a'; l <= 'z'; ++l)
                if (l != w[i]) consider(w.substr(0, i) + l + w.substr(i + 1));                             // changed
        if (i + 1 < w.size() && w[i] != w[i + 1]) consider(w.substr(0, i) + w[i + 1] + w[i] + w.substr(i + 2));  // swapped
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    if (out.size() > limit) out.clear();
    return out;
}

inline std::size_t edit_distance(std::string_view a, std::string_view b, std::size_t limit) {
    const std::size_t n = a.size(), m = b.size();
    if ((n > m ? n - m : m - n) > limit) return limit + 1;
    // rows i - 2, i - 1 and i of the table d[i][j] = distance of a[0, i) and b[0, j); on the stack
    // for words of the list's lengths (this runs once per listed word of a similar length)
    constexpr std::size_t on_stack = io::Lexicon::max_length + 3;
    std::array<std::size_t, 3 * on_stack> fixed;
    std::vector<std::size_t> heap(m + 1 <= on_stack ? 0 : 3 * (m + 1));
    std::size_t* rows = heap.empty() ? fixed.data() : heap.data();
    std::size_t *before = rows, *prev = rows + (m + 1), *cur = rows + 2 * (m + 1);
    for (std::size_t j = 0; j <= m; ++j) prev[j] = j;
    for (std::size_t i = 1; i <= n; ++i) {
        cur[0] = i;
        std::size_t least = cur[0];
        for (std::size_t j = 1; j <= m; ++j) {
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) cur[j] = std::min(cur[j], before[j - 2] + 1);
            least = std::min(least, cur[j]);
        }
        if (least > limit) return limit + 1;  // every later row is at least as far
        std::swap(before, prev), std::swap(prev, cur);
    }
    return std::min(prev[m], limit + 1);
}

inline std::vector<std::string> lexicon_two_edit_neighbours(std::string_view word, const io::Lexicon& lexicon, std::size_t limit) {
    std::vector<std::string> out;
    for (std::size_t len = word.size() > 2 ? word.size() - 2 : 0; len <= word.size() + 2; ++len)
        for (const std::string& w : lexicon.words_of_length(len))
            if (edit_distance(word, w, 2) == 2) {
                if (out.size() == limit) return {};
                out.push_back(w);
            }
    std::sort(out.begin(), out.end());
    return out;
}

namespace detail {

// `lower` spelt with the capitals of `like` (a word's: all lower, all capitals, or a first capital).
inline std::vector<std::int32_t> spelt_like(const std::string& lower, std::span<const std::int32_t> like) {
    const bool all_caps = std::all_of(like.begin(), like.end(), [](std::int32_t t) { return t >= 'A' && t <= 'Z'; });
    std::vector<std::int32_t> out(lower.begin(), lower.end());
    for (std::size_t i = 0; i < out.size(); ++i)
        if (all_caps || (i == 0 && like[0] >= 'A' && like[0] <= 'Z')) out[i] -= 'a' - 'A';
    return out;
}

}  // namespace detail

namespace detail {

// The best spelling of the word ids[i, j) among `near` (lower case) that scores at least `margin`
// below the reading as read; empty when none does.
template <class Score>
std::vector<std::int32_t> best_respelling(std::span<const std::int32_t> ids, std::size_t i, std::size_t j,
                                          const std::vector<std::string>& near, double margin, Score& score) {
    constexpr std::size_t head_after = 4;
    // a spelling must score at least `bar`, and more than the best before it; a tail scores at
    // most 0, so one whose head (the word and head_after tokens) scores less is dropped unfinished
    const double bar = score(ids, i, ids.size() + 1) - margin;
    double best = -std::numeric_limits<double>::infinity();
    std::vector<std::int32_t> trial, best_spelling;
    for (const std::string& cand : near) {
        std::vector<std::int32_t> spelling = spelt_like(cand, ids.subspan(i, j - i));
        trial.assign(ids.begin(), ids.begin() + std::ptrdiff_t(i));
        trial.insert(trial.end(), spelling.begin(), spelling.end());
        trial.insert(trial.end(), ids.begin() + std::ptrdiff_t(j), ids.end());
        const std::span<const std::int32_t> t(trial);
        const std::size_t head = std::min(i + spelling.size() + head_after, trial.size() + 1);
        double s = score(t, i, head);
        if (s < bar || s <= best) continue;
        if (head <= trial.size()) s += score(t, head, trial.size() + 1);
        if (s >= bar && s > best) best = s, best_spelling = std::move(spelling);
    }
    return best_spelling;
}

}  // namespace detail

template <class Score>
std::size_t respell_words(std::vector<std::int32_t>& ids, const io::Lexicon& lexicon, double margin, Score&& score) {
    constexpr std::size_t max_candidates = 16, two_edit_min_length = 5;
    struct Change {
        std::size_t begin, end;
        std::vector<std::int32_t> spelling;
    };
    std::vector<Change> changes;
    detail::for_each_unknown_word(ids, lexicon, [&](std::size_t i, std::size_t j, const std::string& word) {
        if (!detail::word_capitals(std::span<const std::int32_t>(ids).subspan(i, j - i))) return;
        std::vector<std::string> near = lexicon_neighbours(word, lexicon, max_candidates);
        if (near.empty() && word.size() >= two_edit_min_length) near = lexicon_two_edit_neighbours(word, lexicon, max_candidates);
        if (near.empty()) return;
        std::vector<std::int32_t> spelling = detail::best_respelling(ids, i, j, near, margin, score);
        if (!spelling.empty()) changes.push_back({i, j, std::move(spelling)});
    });
    for (auto c = changes.rbegin(); c != changes.rend(); ++c) {  // right to left: earlier positions stay valid
        ids.erase(ids.begin() + std::ptrdiff_t(c->begin), ids.begin() + std::ptrdiff_t(c->end));
        ids.insert(ids.begin() + std::ptrdiff_t(c->begin), c->spelling.begin(), c->spelling.end());
    }
    return changes.size();
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END
