// Tests of word correction: the sampler's alternatives against a scalar log-softmax, the word list
// (io/lexicon.hpp) and its errors, correct_words (pipeline/word_correction.hpp) on readings with
// hand-made alternatives, and the shipped model's word list at work in the parser.
#include "test_util.hpp"

#include <docvlm/docvlm.hpp>
#include <docvlm/io/lexicon.hpp>
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
    auto parse = [&](double margin) {
        pipeline::EmbeddedParserOptions opt;
        opt.lexicon_margin = margin;
        std::string text;
        for (const auto& b : pipeline::EmbeddedPageParser(model, opt).parse(top).blocks) text += b.content + "\n";
        return text;
    };
    const std::string plain = parse(0), corrected = parse(4.0);
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
    MESSAGE("unlisted words: ", unlisted(plain), " read, ", unlisted(corrected), " corrected");
    CHECK(unlisted(corrected) < unlisted(plain));
}

}  // TEST_SUITE
