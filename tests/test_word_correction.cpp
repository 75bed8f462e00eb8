// Tests of word correction: the sampler's alternatives against a scalar log-softmax, the word list
// (io/lexicon.hpp) and its errors, correct_words (pipeline/word_correction.hpp) on readings with
// hand-made alternatives, respell_words with a hand-made score, sequence_logprob against PyTorch's
// logits, and the shipped model's word list at work in the parser.
#include "embedded_util.hpp"
#include "test_util.hpp"

#include <docvlm/docvlm.hpp>
#include <docvlm/io/lexicon.hpp>
#include <docvlm/model/sequence_score.hpp>
#include <docvlm/pipeline/embedded_parser.hpp>
#include <docvlm/pipeline/word_correction.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <sstream>

using namespace docvlm;

namespace {

// A reading of `text` (byte tokens), every token chosen at log-probability -0.1, and k = 3
// alternatives per step: `alts[i]` (letter, log-probability) where given, else none.
struct Reading {
    std::vector<std::int32_t> ids;
    std::vector<float> chosen;
    std::vector<TokenAlternative> alternatives;
    static constexpr std::size_t k = 3;
    Reading(std::string_view text, const std::map<std::size_t, std::vector<std::pair<char, float>>>& alts) {
        for (char c : text) ids.push_back(std::int32_t(static_cast<unsigned char>(c))), chosen.push_back(-0.1f);
        alternatives.resize(ids.size() * k);
        for (const auto& [i, list] : alts)
            for (std::size_t a = 0; a < list.size(); ++a) alternatives[i * k + a] = {std::int32_t(list[a].first), list[a].second};
    }
    std::string correct(const io::Lexicon& lex, double margin, std::size_t* changed = nullptr) {
        const std::size_t n = pipeline::correct_words(ids, chosen, alternatives, k, lex, margin);
        if (changed) *changed = n;
        return std::string(ids.begin(), ids.end());
    }
};

}  // namespace

TEST_SUITE("pipeline") {

TEST_CASE("sampler alternatives: the k most likely tokens not chosen, by a scalar log-softmax") {
    std::mt19937_64 rng(7);
    std::normal_distribution<float> z(0.0f, 3.0f);
    for (const std::size_t vocab : {2u, 5u, 40u, 264u}) {
        GenerationOptions opt;
        opt.logprobs = true;
        opt.alternatives = 4;
        opt.max_new_tokens = 3;
        const std::int32_t prompt[1] = {0};
        Sampler s(opt, prompt, vocab);
        std::vector<std::vector<float>> steps;
        for (int step = 0; step < 3; ++step) {
            std::vector<float> logits(vocab);
            for (float& l : logits) l = z(rng);
            steps.push_back(logits);
            s.accept(s.next(logits));
        }
        REQUIRE(s.alternatives().size() == 3 * opt.alternatives);
        for (std::size_t step = 0; step < 3; ++step) {
            const auto& l = steps[step];
            double mx = -1e30, sum = 0;
            for (float v : l) mx = std::max(mx, double(v));
            for (float v : l) sum += std::exp(double(v) - mx);
            const std::int32_t chosen = s.generated()[step];
            std::vector<std::int32_t> rest(vocab);
            std::iota(rest.begin(), rest.end(), 0);
            rest.erase(rest.begin() + chosen);
            std::stable_sort(rest.begin(), rest.end(), [&](std::int32_t a, std::int32_t b) { return l[std::size_t(a)] > l[std::size_t(b)]; });
            for (std::size_t a = 0; a < opt.alternatives; ++a) {
                const TokenAlternative& got = s.alternatives()[step * opt.alternatives + a];
                if (a >= rest.size()) {
                    CHECK(got.token == -1);
                    CHECK(std::isinf(got.logprob));
                    continue;
                }
                CHECK(got.token == rest[a]);
                CHECK(std::abs(double(got.logprob) - (double(l[std::size_t(rest[a])]) - mx - std::log(sum))) < 1e-5);
            }
        }
    }
}

TEST_CASE("sampler alternatives: an absurd count is refused") {
    GenerationOptions opt;
    opt.logprobs = true;
    opt.alternatives = std::size_t(1) << 40;
    const std::int32_t prompt[1] = {0};
    CHECK_ERROR_HAS(Sampler(opt, prompt, 8), "alternatives", "absurdly large");
}

TEST_CASE("lexicon: words by length, prefixes, comments; malformed lists named by line") {
    const auto lex = io::Lexicon::parse("# a comment\ncolor\n\nstandard\r\ncolour\ncolor\nwhale\n");
    CHECK(lex.size() == 4);  // the duplicate once
    CHECK(lex.contains("color"));
    CHECK(lex.contains("standard"));
    CHECK_FALSE(lex.contains("colo"));
    CHECK_FALSE(lex.contains("Color"));
    CHECK(lex.has_prefix(5, "col"));
    CHECK(lex.has_prefix(6, "colou"));
    CHECK_FALSE(lex.has_prefix(5, "colou"));
    CHECK(lex.has_prefix(5, ""));
    CHECK_FALSE(lex.has_prefix(7, ""));
    CHECK_FALSE(lex.has_prefix(40, "c"));
    CHECK_ERROR_HAS(io::Lexicon::parse("color\nWhale\n", "words.txt"), "words.txt line 2", "'Whale'", "lower-case ASCII");
    CHECK_ERROR_HAS(io::Lexicon::parse("ab\n"), "line 1", "3 to 32");
    CHECK_ERROR_HAS(io::Lexicon::parse(std::string(33, 'a')), "line 1");
    CHECK_ERROR_HAS(io::Lexicon::parse("caf\xc3\xa9\n"), "line 1");
    CHECK_ERROR_HAS(io::Lexicon::parse("two words\n"), "line 1");
    CHECK_ERROR_HAS(io::Lexicon::load("/nonexistent/lexicon.txt"), "cannot open the word list", "/nonexistent/lexicon.txt");
}

TEST_CASE("correct_words: an unknown word becomes the cheapest listed spelling within the margin") {
    const auto lex = io::Lexicon::parse("complete\nstandard\ncat\nhat\ncolor\nwhale\n");
    // 'complefg': t at step 6 (cost 0.9), e at step 7 (cost 1.9): 2.8 in all
    Reading r("the complefg list", {{10, {{'t', -1.0f}}}, {11, {{'x', -0.2f}, {'e', -2.0f}}}});
    std::size_t changed = 0;
    CHECK(Reading(r).correct(lex, 4.0, &changed) == "the complete list");
    CHECK(changed == 1);
    CHECK(Reading(r).correct(lex, 2.5, &changed) == "the complefg list");  // over the margin
    CHECK(changed == 0);
    // the cheapest of two listed spellings; a listed word stays whatever its alternatives spell
    CHECK(Reading("xat", {{0, {{'h', -0.5f}, {'c', -0.3f}}}}).correct(lex, 4.0) == "cat");
    CHECK(Reading("hat", {{0, {{'c', -0.11f}}}}).correct(lex, 4.0) == "hat");
    // capitals: kept as the word has them; a capital inside a word is no spelling
    CHECK(Reading("Standarl", {{7, {{'d', -1.0f}}}}).correct(lex, 4.0) == "Standard");
    CHECK(Reading("STANDARL", {{7, {{'D', -1.0f}}}}).correct(lex, 4.0) == "STANDARD");
    CHECK(Reading("standarl", {{7, {{'D', -1.0f}}}}).correct(lex, 4.0) == "standarl");
    // only letters: digits and signs stay, and split words; words under 3 letters stay
    CHECK(Reading("c0lor", {{1, {{'o', -0.2f}}}}).correct(lex, 4.0) == "c0lor");
    CHECK(Reading("colxr-whalf", {{3, {{'o', -0.5f}}}, {10, {{'e', -0.5f}}}}).correct(lex, 4.0) == "color-whale");
    CHECK(Reading("ct", {{0, {{'a', -0.2f}}}}).correct(lex, 4.0) == "ct");
    // non-letter alternatives are no spelling
    CHECK(Reading("cxt", {{1, {{'1', -0.2f}, {'a', -5.0f}}}}).correct(lex, 4.0) == "cxt");
    // sizes must cover the reading
    Reading bad("color", {});
    bad.alternatives.pop_back();
    CHECK_ERROR_HAS(pipeline::correct_words(bad.ids, bad.chosen, bad.alternatives, Reading::k, lex, 4.0), "correct_words", "5 tokens");
}

TEST_CASE("correct_words: a long unknown word with many alternatives ends quickly") {
    // every listed 32-letter word spelt from two letters: many prefixes match, few words end
    std::string words;
    for (int i = 0; i < 2000; ++i) {
        std::string w(32, 'a');
        for (int b = 0; b < 11; ++b) w[std::size_t(b * 3)] = (i >> b) & 1 ? 'b' : 'a';
        w[31] = 'z';
        words += w + "\n";
    }
    const auto lex = io::Lexicon::parse(words);
    std::map<std::size_t, std::vector<std::pair<char, float>>> alts;
    for (std::size_t i = 0; i < 32; ++i) alts[i] = {{'a', -0.11f}, {'b', -0.11f}, {'c', -0.11f}};
    const auto t0 = std::chrono::steady_clock::now();
    const std::string out = Reading(std::string(32, 'c'), alts).correct(lex, 100.0);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));  // a hang guard, not a speed claim
    CHECK(out.size() == 32);
}

TEST_CASE("lexicon_neighbours: listed words one letter dropped, added, changed or two swapped away") {
    const auto lex = io::Lexicon::parse("evanescent\nenergy\nform\nfrom\nfarm\nforms\nfor\nfoam\nfirm\n");
    using V = std::vector<std::string>;
    CHECK(pipeline::lexicon_neighbours("evancescent", lex, 16) == V{"evanescent"});  // a letter doubled: dropped
    CHECK(pipeline::lexicon_neighbours("enegy", lex, 16) == V{"energy"});            // a letter lost: added
    CHECK(pipeline::lexicon_neighbours("fomr", lex, 16) == V{"for", "form"});        // dropped; swapped
    CHECK(pipeline::lexicon_neighbours("frm", lex, 16) == V{"farm", "firm", "form", "from"});  // added
    CHECK(pipeline::lexicon_neighbours("fosm", lex, 16) == V{"foam", "form"});               // changed
    CHECK(pipeline::lexicon_neighbours("frm", lex, 3).empty());                      // more than the limit: none
    CHECK(pipeline::lexicon_neighbours("xyzzy", lex, 16).empty());
    CHECK(pipeline::lexicon_neighbours("fo", lex, 16) == V{"for"});                  // no word under 3 letters
}

TEST_CASE("edit_distance and lexicon_two_edit_neighbours: letters dropped, added, changed or swapped, none edited twice") {
    CHECK(pipeline::edit_distance("kitten", "sitting", 5) == 3);
    CHECK(pipeline::edit_distance("form", "from", 5) == 1);              // two neighbours swapped
    CHECK(pipeline::edit_distance("evancescent", "evanescent", 5) == 1);  // a letter dropped
    CHECK(pipeline::edit_distance("cnntrmls", "controls", 5) == 2);       // two changed
    CHECK(pipeline::edit_distance("ca", "abc", 5) == 3);                  // swapped then split: a letter edited twice
    CHECK(pipeline::edit_distance("same", "same", 0) == 0);
    CHECK(pipeline::edit_distance("abcdef", "", 2) == 3);                 // past the limit: limit + 1
    CHECK(pipeline::edit_distance("cnntrmls", "controls", 1) == 2);
    // the early stop changes no distance within the limit: random words of a small alphabet
    std::mt19937 rng(5);
    std::uniform_int_distribution<int> len(0, 7), letter(0, 2);
    for (int t = 0; t < 3000; ++t) {
        std::string a(std::size_t(len(rng)), 'a'), b(std::size_t(len(rng)), 'a');
        for (char& c : a) c = char('a' + letter(rng));
        for (char& c : b) c = char('a' + letter(rng));
        const std::size_t full = pipeline::edit_distance(a, b, 100);
        CAPTURE(a);
        CAPTURE(b);
        CHECK(full == pipeline::edit_distance(b, a, 100));
        for (std::size_t limit = 0; limit < 4; ++limit) CHECK(pipeline::edit_distance(a, b, limit) == std::min(full, limit + 1));
    }
    const auto lex = io::Lexicon::parse("controls\ncontrol\nlabelsep\nlabels\nform\nfrom\nfoam\n");
    using V = std::vector<std::string>;
    CHECK(pipeline::lexicon_two_edit_neighbours("cnntrmls", lex, 16) == V{"controls"});
    CHECK(pipeline::lexicon_two_edit_neighbours("libesep", lex, 16) == V{"labelsep"});   // a letter changed, one added
    CHECK(pipeline::lexicon_two_edit_neighbours("contrls", lex, 16) == V{"control"});     // "controls" is one edit away
    CHECK(pipeline::lexicon_two_edit_neighbours("fxrm", lex, 16) == V{"foam", "from"});   // "form" is one edit away
    CHECK(pipeline::lexicon_two_edit_neighbours("fxrm", lex, 1).empty());                 // more than the limit: none
}

TEST_CASE("respell_words: the best-scored neighbour within the margin, capitals kept, all words against the reading as read") {
    const auto lex = io::Lexicon::parse("evanescent\nenergy\nwave\nthe\nform\nfor\n");
    // a score that prefers readings closer to `truth`, additive over tokens as a model's is: the
    // reading's first k tokens score minus their edit distance to the closest prefix of the truth
    // (k = size + 1, the end: to the whole truth), and tokens [from, to) the difference
    auto closeness = [](std::span<const std::int32_t> r, std::size_t k, const std::string& truth) {
        std::vector<std::size_t> d(truth.size() + 1);
        std::iota(d.begin(), d.end(), std::size_t(0));
        for (std::size_t i = 1; i <= std::min(k, r.size()); ++i) {
            std::size_t diag = d[0];
            d[0] = i;
            for (std::size_t j = 1; j <= truth.size(); ++j) {
                const std::size_t above = d[j];  // row i - 1
                d[j] = std::min({above + 1, d[j - 1] + 1, diag + (r[i - 1] != truth[j - 1])});
                diag = above;
            }
        }
        return -double(k > r.size() ? d.back() : *std::min_element(d.begin(), d.end()));
    };
    auto respell = [&](std::string text, const std::string& truth, double margin, std::size_t* calls = nullptr) {
        std::vector<std::int32_t> ids(text.begin(), text.end());
        std::size_t n = 0;
        pipeline::respell_words(ids, lex, margin, [&](std::span<const std::int32_t> r, std::size_t from, std::size_t to) {
            return ++n, closeness(r, to, truth) - closeness(r, from, truth);
        });
        if (calls) *calls = n;
        return std::string(ids.begin(), ids.end());
    };
    CHECK(respell("the evancescent wave", "the evanescent wave", 1.0) == "the evanescent wave");
    CHECK(respell("Evancescent, ENEGY", "Evanescent, ENERGY", 1.0) == "Evanescent, ENERGY");
    // both words scored against the reading as read, replaced together
    CHECK(respell("enegy evancescent", "energy evanescent", 20.0) == "energy evanescent");
    // over the margin: as read (the truth here is another spelling, so the neighbour scores worse);
    // its word and next 4 tokens already score below the bar, so its tail is not scored
    std::size_t calls = 0;
    CHECK(respell("the evancescent wave", "the evancescent wave", 0.5, &calls) == "the evancescent wave");
    CHECK(calls == 2);  // the reading as read from the word on, the neighbour's head
    // the best of two neighbours ("fomr": for and form)
    CHECK(respell("fomr", "form", 10.0) == "form");
    CHECK(respell("fomr", "for", 10.0) == "for");
    // no listed word one edit away: those two edits away, for words of 5 letters or more
    CHECK(respell("the enrgey wave", "the energy wave", 10.0) == "the energy wave");
    CHECK(respell("the wzvz", "the wave", 10.0) == "the wzvz");
    // listed words, letters split by a digit, odd capitals and words with no neighbour are left, unscored
    calls = 1;
    CHECK(respell("the wave evanes3ent eVanescent qqqqq ab", "", 100.0, &calls) == "the wave evanes3ent eVanescent qqqqq ab");
    CHECK(calls == 0);
}

TEST_CASE("sequence_logprob and ReadingScorer: the log-probability of PyTorch's logits for the reference readings (f32)") {
    const auto model = load<presets::DocvlmSmall<F32>>(default_model_dir());
    const io::Checkpoint ref = io::Checkpoint::open(test::data("docvlm-small/reference.safetensors"));
    std::size_t checked = 0;
    for (const int i : embedded_test::crops_to_check(ref)) {
        const std::string s = std::to_string(i);
        if (!ref.contains("logits" + s)) continue;
        CAPTURE(i);
        const std::string task = embedded_test::task_of(ref, model.dims(), i);
        const auto toks = embedded_test::tokens_of(ref, "tokens" + s);
        const Array<float> logits = ref.to_f32("logits" + s);  // [task token + toks, vocab]
        const std::size_t vocab = model.dims().vocab;
        REQUIRE(logits.size() == (toks.size() + 1) * vocab);
        std::vector<double> want(toks.size() + 1);  // a scalar log-softmax of PyTorch's rows at each next token, the end last
        for (std::size_t r = 0; r <= toks.size(); ++r) {
            const float* row = logits.data() + r * vocab;
            double mx = row[0], sum = 0;
            for (std::size_t v = 0; v < vocab; ++v) mx = std::max(mx, double(row[v]));
            for (std::size_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - mx);
            want[r] = double(row[r < toks.size() ? toks[r] : model.dims().eos_token_id]) - mx - std::log(sum);
        }
        auto want_from = [&](std::size_t from) { return std::accumulate(want.begin() + std::ptrdiff_t(from), want.end(), 0.0); };
        const auto vis = model.encode_image(embedded_test::crop_of(ref, i));
        const double got = sequence_logprob(model, vis, task, toks);
        CHECK(std::abs(got - want_from(0)) <= 1e-4 * (1 + std::abs(want_from(0))));
        // one scorer, readings in turn: its context keeps what they share (truncate) and is right
        // for each; a changed token in between
        ReadingScorer<std::remove_cvref_t<decltype(model)>> scorer(model, vis, task);
        std::vector<std::int32_t> changed = toks;
        if (!changed.empty()) changed[changed.size() / 2] = 'Q';
        const double changed_whole = sequence_logprob(model, vis, task, changed);
        for (const std::size_t from : {toks.size() / 2, toks.size(), std::size_t(0), toks.size() / 3, std::size_t(1) % (toks.size() + 1)}) {
            CAPTURE(from);
            CHECK(std::abs(scorer.logprob(toks, from) - want_from(from)) <= 1e-4 * (1 + std::abs(want_from(from))));
            const std::size_t to = std::min(from + 3, toks.size() + 1);  // a few tokens only
            CHECK(std::abs(scorer.logprob(toks, from, to) - (want_from(from) - want_from(to))) <= 1e-4 * (1 + std::abs(want_from(from))));
            const std::size_t k = toks.size() / 2;  // where `changed` differs: what comes before is toks'
            const double changed_tail = changed_whole - (want_from(0) - want_from(k));
            CHECK(std::abs(scorer.logprob(changed, k) - changed_tail) <= 1e-4 * (1 + std::abs(changed_whole)));
        }
        ++checked;
    }
    CHECK(checked > 0);
    const auto vis = model.encode_image(embedded_test::crop_of(ref, 0));
    const std::vector<std::int32_t> bad{65, 9999}, long_ids(model.dims().max_tokens, 65);
    CHECK_ERROR_HAS(sequence_logprob(model, vis, "text", bad), "token 9999", "vocabulary");
    CHECK_ERROR_HAS(sequence_logprob(model, vis, "text", long_ids), "more than the model's");
    CHECK_ERROR_HAS(sequence_logprob(model, vis, "speech", bad), "'speech' is not one of them");
}

TEST_CASE("the shipped model's word list: loaded with the model, words corrected in parse, lengths kept") {
    const auto model = load_default_model();
    REQUIRE(model.lexicon() != nullptr);
    CHECK(model.lexicon()->size() > 20000);
    CHECK(model.lexicon()->contains("document"));
    // a copy of a model folder with a malformed lexicon.txt does not load
    test::TempDir tmp;
    const std::string dir = test::data("gated-tiny");
    for (const char* f : {"config.json", "model.safetensors"}) std::filesystem::copy(dir + "/" + f, tmp / f);
    std::ofstream(tmp / "lexicon.txt") << "color\nGrey\n";
    using Tiny = presets::GatedVlmFamily<2, 64, 2, 128, 5, 2, 3, 64, 4, 2, 96, 400, 2, F32>;  // tests/data/gated-tiny
    CHECK(load<Tiny>(dir).lexicon() == nullptr);
    CHECK_ERROR_HAS(load<Tiny>(tmp.path.string()), "lexicon.txt line 2", "'Grey'");
    // the sample page's top at 0.4 of its resolution (Pillow's bilinear down and up again, which
    // makes the model misread some letters): correction changes only letters, and leaves fewer
    // unlisted words than the plain reading has
    const io::Image page = io::load_image(std::string(DOCVLM_TEST_DATA) + "/../../examples/data/sample_page.png", io::ColorMode::gray);
    io::Image sharp(page.width, page.height * 2 / 5, 1, 255);
    for (int y = 0; y < sharp.height; ++y) std::copy_n(page.row(y), std::size_t(page.width), sharp.row(y));
    const io::Image low = io::resize(sharp, sharp.width * 2 / 5, sharp.height * 2 / 5, io::Resample::bilinear);
    const io::Image top = io::resize(low, sharp.width, sharp.height, io::Resample::bilinear);
    auto parse = [&](double margin, double respell) {
        pipeline::EmbeddedParserOptions opt;
        opt.lexicon_margin = margin, opt.respell_margin = respell;
        std::string text;
        for (const auto& b : pipeline::EmbeddedPageParser(model, opt).parse(top).blocks) text += b.content + "\n";
        return text;
    };
    const std::string plain = parse(0, 0), corrected = parse(4.0, 0), respelt = parse(4.0, 6.0);
    REQUIRE(plain.size() > 200);
    REQUIRE(corrected.size() == plain.size());
    auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    for (std::size_t i = 0; i < plain.size(); ++i)
        if (plain[i] != corrected[i]) CHECK((letter(plain[i]) && letter(corrected[i])));
    auto unlisted = [&](const std::string& s) {
        std::size_t n = 0;
        std::string w;
        for (std::size_t i = 0; i <= s.size(); ++i) {
            if (i < s.size() && letter(s[i])) {
                w.push_back(char(std::tolower(static_cast<unsigned char>(s[i]))));
                continue;
            }
            n += w.size() >= 3 && !model.lexicon()->contains(w);
            w.clear();
        }
        return n;
    };
    MESSAGE("unlisted words: ", unlisted(plain), " read, ", unlisted(corrected), " corrected, ", unlisted(respelt), " respelt");
    CHECK(unlisted(corrected) < unlisted(plain));
    // respelling: the same text but for words, each replaced by a listed word one edit away
    auto pieces = [&](const std::string& s) {  // alternating runs: letters, then everything else
        std::vector<std::string> out;
        for (std::size_t i = 0; i < s.size();) {
            std::size_t j = i;
            while (j < s.size() && letter(s[j]) == letter(s[i])) ++j;
            out.push_back(s.substr(i, j - i)), i = j;
        }
        return out;
    };
    const auto before = pieces(corrected), after = pieces(respelt);
    REQUIRE(before.size() == after.size());
    for (std::size_t i = 0; i < before.size(); ++i) {
        if (before[i] == after[i]) continue;
        CAPTURE(before[i]);
        CAPTURE(after[i]);
        REQUIRE(letter(before[i][0]));
        std::string lower = after[i], was = before[i];
        for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
        for (char& c : was) c = char(std::tolower(static_cast<unsigned char>(c)));
        const auto near = pipeline::lexicon_neighbours(was, *model.lexicon(), 16);
        CHECK(std::find(near.begin(), near.end(), lower) != near.end());
    }
    CHECK(unlisted(respelt) < unlisted(corrected));  // the sample has one such word
}

}  // TEST_SUITE
