// Tests of beam search (model/beam_search.hpp) and of Decoder::copy_tokens, with which its
// sequences fork: on a toy model whose next-token distribution depends
// on the whole history, against an exhaustive search of every reading (a width that keeps them all)
// and against greedy decoding (width 1); on the shipped model, each reading's score against the
// teacher-forced log-probability of its tokens (so every forked KV cache held its parent's tokens)
// and width 1 against generate_batch.
#include "embedded_util.hpp"
#include "test_util.hpp"

#include <docvlm/backend/cpu_backend.hpp>
#include <docvlm/model/beam_search.hpp>
#include <docvlm/model/sequence_score.hpp>
#include <docvlm/pipeline/embedded_parser.hpp>
#include <docvlm/presets/docvlm_small.hpp>
#include <docvlm/presets/qwen2vl.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

using namespace docvlm;

namespace {

// Logits for the next token after `history` (its first token is the sequence's start): a hash of
// the history, so that a slot holding the wrong tokens gives the wrong logits.
std::vector<float> toy_logits(const std::vector<std::int32_t>& history, std::size_t vocab, std::uint64_t seed) {
    std::uint64_t h = seed;
    for (std::int32_t t : history) h = (h ^ std::uint64_t(t + 1)) * 0x100000001b3ULL;
    std::mt19937_64 rng(h);
    std::normal_distribution<float> n(0.0f, 1.5f);
    std::vector<float> l(vocab);
    for (float& v : l) v = n(rng);
    l.back() -= 2.5f;  // the end token (the last, in every test here): rarer, so that readings run long
    return l;
}

double toy_logprob(const std::vector<std::int32_t>& history, std::int32_t t, std::size_t vocab, std::uint64_t seed) {
    return log_softmax_at(toy_logits(history, vocab, seed), std::size_t(t));
}

// Beam search of the toy model: slots hold their histories; the step checks each slot's length.
std::vector<BeamReading> toy_beams(std::size_t sequences, std::size_t width, std::size_t vocab, std::int32_t end,
                                   const std::vector<std::size_t>& bound, std::size_t alternatives, std::uint64_t seed) {
    std::vector<std::vector<std::int32_t>> slot(sequences * width);
    std::vector<float> logits;
    return beam_search_rows(
        sequences, width, 100, end, vocab, bound, alternatives,
        [&](std::span<const std::size_t> slots, std::span<const std::int32_t> ids) {
            logits.clear();
            for (std::size_t r = 0; r < slots.size(); ++r) {
                auto& h = slot[slots[r]];
                h.push_back(ids[r]);
                const auto l = toy_logits(h, vocab, seed + slots[r] / width);
                logits.insert(logits.end(), l.begin(), l.end());
            }
            return std::span<const float>(logits);
        },
        [&](std::size_t from, std::size_t to) { slot[to] = slot[from]; });
}

// Every reading that ends within `bound` generated tokens (the end token one of them, as greedy
// decoding counts it): the most probable one (score, tokens).
void exhaustive(std::vector<std::int32_t>& history, double score, std::size_t vocab, std::int32_t end, std::size_t bound,
                std::uint64_t seed, double& best, std::vector<std::int32_t>& best_ids) {
    const auto l = toy_logits(history, vocab, seed);
    const double e = score + log_softmax_at(l, std::size_t(end));
    if (e > best) best = e, best_ids.assign(history.begin() + 1, history.end());
    if (history.size() == bound) return;  // the start token and bound - 1 read: only the end may follow
    for (std::int32_t t = 0; t < std::int32_t(vocab); ++t) {
        if (t == end) continue;
        history.push_back(t);
        exhaustive(history, score + log_softmax_at(l, std::size_t(t)), vocab, end, bound, seed, best, best_ids);
        history.pop_back();
    }
}

// Greedy decoding of the toy model (ties: the lower token, as beam_row orders them).
std::vector<std::int32_t> toy_greedy(std::size_t vocab, std::int32_t end, std::size_t bound, std::uint64_t seed, bool& ended) {
    std::vector<std::int32_t> h{100};
    ended = false;
    while (h.size() - 1 < bound) {
        const auto l = toy_logits(h, vocab, seed);
        const auto t = std::int32_t(std::max_element(l.begin(), l.end()) - l.begin());
        if (t == end) return ended = true, std::vector<std::int32_t>(h.begin() + 1, h.end());
        h.push_back(t);
    }
    return {h.begin() + 1, h.end()};
}

// Decoder::copy_tokens: a state given another's tokens (over tokens of its own, or fresh) continues
// exactly as that one does.
template <class Dec>
void check_copy_tokens(const Dec& dec) {
    auto run = [&](typename Dec::State& s, const std::vector<std::int32_t>& ids, std::int64_t from) {
        std::vector<float> x(ids.size() * dec.hidden());
        std::vector<std::int64_t> pos;
        for (std::size_t i = 0; i < ids.size(); ++i) dec.embed.row(ids[i], x.data() + i * dec.hidden()), pos.push_back(from + std::int64_t(i));
        const auto logits = dec.forward(s, x.data(), ids.size(), rope1d_table(pos, dec.head_dim(), 10000.0f));
        return std::vector<float>(logits.begin(), logits.end());
    };
    typename Dec::State a(dec, 16), b(dec, 16), fresh(dec, 16), small(dec, 3);
    run(a, {1, 2, 3, 4, 5}, 0);
    run(b, {9, 8, 7}, 0);
    dec.copy_tokens(b, a);
    dec.copy_tokens(fresh, a);
    CHECK(b.length() == 5);
    const auto want = run(a, {6}, 5);
    CHECK(run(b, {6}, 5) == want);
    CHECK(run(fresh, {6}, 5) == want);
    CHECK_ERROR_HAS(dec.copy_tokens(small, a), "6 tokens do not fit a context of 3");
}

// Width 1 against generate_batch; width 4's scores against the teacher-forced log-probability of
// its readings within `tolerance` (relative, 0: not checked).
template <class Config>
void check_beams_of(double tolerance) {
    using namespace embedded_test;
    const auto model = load<Config>(default_model_dir());
    const io::Checkpoint ref = io::Checkpoint::open(test::data("docvlm-small/reference.safetensors"));
    std::vector<Tensor<float, 2>> vision;
    std::vector<std::size_t> bound;
    for (int i = 0; i < std::min(count_crops(ref), 8); ++i) {
        if (task_of(ref, model.dims(), i) != "text") continue;
        vision.push_back(model.encode_image(crop_of(ref, i)));
        bound.push_back(std::size_t(12 + 11 * i % 80));
    }
    REQUIRE(vision.size() >= 3);
    // crops of noise: the model is unsure of every token, so the best readings pass through forks
    std::mt19937 rng(5);
    for (int k = 0; k < 3; ++k) {
        io::Image noise(160 + 40 * k, 24, 1);
        for (auto& p : noise.pixels) p = std::uint8_t(rng() % 256);
        vision.push_back(model.encode_image(model.prepare(noise, "text")));
        bound.push_back(40);
    }
    GenerationOptions gen;
    const auto greedy = model.generate_batch(vision, "text", gen, bound);
    const auto one = model.generate_beams(vision, "text", 1, bound);
    const auto four = model.generate_beams(vision, "text", 4, bound, 3);
    for (std::size_t i = 0; i < vision.size(); ++i) {
        CAPTURE(i);
        CHECK(one[i].ids == greedy[i]);
        REQUIRE(four[i].logprobs.size() == four[i].ids.size() + (four[i].ended ? 1 : 0));
        CHECK(four[i].alternatives.size() == 3 * four[i].logprobs.size());
        const double teacher = teacher_score(model, vision[i], four[i]);
        if (tolerance > 0) CHECK(std::fabs(four[i].score - teacher) <= tolerance * std::max(1.0, std::fabs(teacher)));
    }
    // each sequence's reading is the one it has alone, to the bit, whatever else is in the batch
    for (std::size_t i = 0; i < vision.size(); ++i) {
        CAPTURE(i);
        const auto alone = model.generate_beams(std::span(vision).subspan(i, 1), "text", 4, std::span(bound).subspan(i, 1), 3);
        CHECK(alone[0].ids == four[i].ids);
        CHECK(alone[0].logprobs == four[i].logprobs);
    }
    CHECK_ERROR_HAS(model.generate_beams(vision, "text", 4, std::span(bound).first(1)), "output bounds");
    CHECK_ERROR_HAS(model.generate_beams(vision, "text", 0, bound), "beam width of 0");
    CHECK(model.generate_beams({}, "text", 4, {}).empty());
}

}  // namespace

TEST_SUITE("pipeline") {

TEST_CASE("beam search: a width that keeps every reading finds the most probable one") {
    const std::size_t vocab = 5;
    const std::int32_t end = 4;
    std::vector<std::size_t> bound{1};  // 4^4 partial readings at most: the width keeps them all
    for (std::size_t i = 0; i < 24; ++i) bound.push_back(2 + i % 4);
    const auto beams = toy_beams(bound.size(), 1024, vocab, end, bound, 2, 7);
    std::size_t at_bound = 0;  // readings as long as the bound lets them be: the edge is tested
    for (std::size_t i = 0; i < bound.size(); ++i) {
        CAPTURE(i);
        std::vector<std::int32_t> h{100}, ids;
        double best = -1e300;
        exhaustive(h, 0, vocab, end, bound[i], 7 + i, best, ids);
        REQUIRE(beams[i].ended);
        CHECK(beams[i].ids == ids);
        at_bound += bound[i] > 1 && ids.size() + 1 == bound[i];
        CHECK(beams[i].score == doctest::Approx(best).epsilon(1e-6));  // float log-probabilities summed
        // the score is the sum of the per-token log-probabilities, the end's included
        REQUIRE(beams[i].logprobs.size() == ids.size() + 1);
        double sum = 0, want = 0;
        std::vector<std::int32_t> hist{100};
        for (std::size_t k = 0; k <= ids.size(); ++k) {
            const std::int32_t t = k < ids.size() ? ids[k] : end;
            CHECK(beams[i].logprobs[k] == doctest::Approx(toy_logprob(hist, t, vocab, 7 + i)).epsilon(1e-6));
            sum += beams[i].logprobs[k], want += toy_logprob(hist, t, vocab, 7 + i);
            hist.push_back(t);
        }
        CHECK(sum == doctest::Approx(beams[i].score).epsilon(1e-6));
        // two alternatives per step, neither the chosen token, most likely first
        REQUIRE(beams[i].alternatives.size() == 2 * (ids.size() + 1));
        for (std::size_t k = 0; k <= ids.size(); ++k) {
            const auto& a = beams[i].alternatives;
            CHECK(a[2 * k].token != (k < ids.size() ? ids[k] : end));
            CHECK(a[2 * k].logprob >= a[2 * k + 1].logprob);
        }
    }
    MESSAGE(at_bound, " of ", bound.size(), " readings as long as their bound lets them be");
    CHECK(at_bound > 0);
}

TEST_CASE("beam search: width 1 is greedy decoding; a wider beam scores each reading by its own tokens") {
    const std::size_t vocab = 7;
    const std::int32_t end = 6;
    std::vector<std::size_t> bound;
    for (std::size_t i = 0; i < 40; ++i) bound.push_back(1 + i % 9);
    const auto one = toy_beams(bound.size(), 1, vocab, end, bound, 0, 11);
    const auto four = toy_beams(bound.size(), 4, vocab, end, bound, 0, 11);
    for (std::size_t i = 0; i < bound.size(); ++i) {
        CAPTURE(i);
        bool ended = false;
        CHECK(one[i].ids == toy_greedy(vocab, end, bound[i], 11 + i, ended));
        CHECK(one[i].ended == ended);
        CHECK(one[i].alternatives.empty());
        if (four[i].ended) {
            double s = 0;
            std::vector<std::int32_t> h{100};
            for (std::size_t k = 0; k <= four[i].ids.size(); ++k) {
                const std::int32_t t = k < four[i].ids.size() ? four[i].ids[k] : end;
                s += toy_logprob(h, t, vocab, 11 + i);
                h.push_back(t);
            }
            CHECK(s == doctest::Approx(four[i].score).epsilon(1e-6));  // the slots held each reading's own tokens
        }
    }
    CHECK_ERROR_HAS(toy_beams(2, 0, vocab, end, {3, 3}, 0, 1), "width of 0");
    CHECK_ERROR_HAS(toy_beams(2, 2, vocab, end, {3}, 0, 1), "1 bounds for 2 sequences");
    CHECK_ERROR_HAS(toy_beams(1, 2, vocab, 9, {3}, 0, 1), "end token 9");
}

TEST_CASE("a decoder state given another's tokens continues as that one does (CPU and the backend interface)") {
    auto model = load<presets::Qwen2VL<F32>>(test::data("golden/qwen2vl-tiny-a"));
    check_copy_tokens(model.decoder());
    model.to_device(std::make_shared<backend::CpuBackend>());
    check_copy_tokens(model.decoder());
}

TEST_CASE("a context given another's image reads as one that read the image itself, to the bit") {
    using namespace embedded_test;
    const auto model = load_default_model();
    const io::Checkpoint ref = io::Checkpoint::open(test::data("docvlm-small/reference.safetensors"));
    const Tensor<float, 2> a = model.encode_image(crop_of(ref, 0)), b = model.encode_image(crop_of(ref, 1));
    const std::int32_t task[1] = {model.dims().task_token("text")}, more[3] = {'T', 'h', 'e'};
    auto own = model.context(), other = model.context(), shared = model.context(), unread = model.context();
    auto vec = [](std::span<const float> logits) { return std::vector<float>(logits.begin(), logits.end()); };
    const auto want = vec(own.prefill(a, task));
    const auto then = vec(own.append(more));
    other.prefill(b, task);
    shared.prefill(b, task);
    shared.share_image(own);  // over another image and its tokens
    CHECK(shared.length() == 0);
    CHECK(vec(shared.append(task)) == want);
    CHECK(vec(shared.append(more)) == then);
    CHECK(vec(other.append(more)) != then);
    CHECK_ERROR_HAS(shared.share_image(unread), "has read no image");
    const auto twin = load_default_model();  // the same weights, loaded again: another model
    auto foreign = twin.context();
    foreign.prefill(a, task);
    CHECK_ERROR_HAS(shared.share_image(foreign), "belongs to another model");
    // a fork copies tokens between sequences of one image only: attached once and shared
    const auto& dec = model.decoder();
    using State = std::remove_cvref_t<decltype(dec)>::State;
    State first(dec, 16), again(dec, 16), fork(dec, 16), none(dec, 16);
    dec.attach(first, a.data(), a.shape()[0]);
    dec.attach(again, a.data(), a.shape()[0]);  // the same pixels, projected anew: another image to the decoder
    dec.share_vision(fork, first);
    dec.copy_tokens(fork, first);
    CHECK_ERROR_HAS(dec.copy_tokens(again, first), "different images attached");
    CHECK_ERROR_HAS(dec.copy_tokens(none, first), "different images attached");
}

TEST_CASE("beam search on the shipped model: each reading's score is its teacher-forced log-probability; width 1 is generate_batch") {
    using namespace embedded_test;
    check_beams_of<presets::DocvlmSmall<Int8PerChannel>>(0);  // int8: a step and a prefill quantise different rows
    check_beams_of<presets::DocvlmSmall<F32>>(1e-4);
}

TEST_CASE("parse: doubtful lines read by beam search too; each reading stays with its line") {
    using namespace embedded_test;
    const io::Image top = sample_page_top();
    const auto model = load_default_model();
    auto parse = [&](double below, std::size_t beam) {
        pipeline::EmbeddedParserOptions opt;
        opt.reread_below = below, opt.reread_beam = beam;
        std::string text;
        for (const auto& b : pipeline::EmbeddedPageParser(model, opt).parse(top).blocks) text += b.content + "\n";
        return text;
    };
    const std::string once = parse(-std::numeric_limits<double>::infinity(), 0);
    REQUIRE(once.size() > 200);
    // every line read three times (greedy, narrowed, beam of 4): the words stay in their places
    const std::string thrice = parse(1.0, 4);
    const std::size_t same = words_in_order(once, thrice);
    MESSAGE(same, " of ", words_of(once).size(), " words the same and in the same order");
    CHECK(double(same) >= 0.85 * double(words_of(once).size()));
    pipeline::EmbeddedParserOptions bad;
    bad.reread_beam = 65;
    CHECK_THROWS_WITH(pipeline::EmbeddedPageParser(model, bad), doctest::Contains("reread_beam 65 is more than 64"));
}

}  // TEST_SUITE
