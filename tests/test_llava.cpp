// LLaVA-1.5 against Hugging Face transformers (tests/data/golden/llava-tiny-a, see its README):
// CLIP preprocessing (Pillow-exact bicubic, centre crop, pixel values), every traced vision,
// projector and decoder tensor, logits, and 16 greedy tokens with the KV cache (golden_check);
// generate() and generate_batch() against the same ids; int8 against f32; the SentencePiece
// tokenizer and the prompt; malformed configs and model files refused.
#include "golden_util.hpp"
#include "test_util.hpp"

#include <docvlm/io/clip_processor.hpp>
#include <docvlm/io/sentencepiece.hpp>
#include <docvlm/model/model.hpp>
#include <docvlm/presets/llava15.hpp>

#include <nlohmann/json.hpp>
#include <xtensor/xnpy.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

using namespace docvlm;

namespace {

const std::string llava_dir = test::data("golden/llava-tiny-a");

std::vector<std::int32_t> llava_ids() {
    auto a = xt::load_npy<std::int64_t>(llava_dir + "/input_ids.npy");
    return {a.begin(), a.end()};
}

template <WeightPolicy W>
using Llava = Model<presets::Llava15<W>>;

}  // namespace

TEST_SUITE("golden") {

TEST_CASE("LLaVA-1.5 CLIP preprocessing: Pillow's resize and crop exactly, pixel values within 1e-6") {
    const io::Image img = io::load_image(llava_dir + "/input.png");
    REQUIRE(img.width == 150);
    REQUIRE(img.height == 104);
    const io::Image resized = io::resize(img, 80, 56, io::Resample::bicubic);  // shortest edge 56, long int(56 · 150 / 104)
    auto want_r = xt::load_npy<std::uint8_t>(llava_dir + "/pp_resized.npy");
    REQUIRE(want_r.size() == resized.pixels.size());
    CHECK(std::equal(resized.pixels.begin(), resized.pixels.end(), want_r.begin()));
    const io::Image cropped = io::crop(resized, 12, 0, 68, 56);
    auto want_c = xt::load_npy<std::uint8_t>(llava_dir + "/pp_cropped.npy");
    CHECK(std::equal(cropped.pixels.begin(), cropped.pixels.end(), want_c.begin()));

    const auto cfg = io::ClipImageConfig::from_json(llava_dir + "/preprocessor_config.json");
    const Tensor<float, 3> px = io::preprocess_clip(img, cfg);
    CHECK(test::golden_abs_error(px.data(), px.size(), llava_dir + "/pixel_values.npy") <= 1e-6);
}

TEST_CASE("LLaVA-1.5 tiny golden, f32: every traced tensor, logits and 16 greedy tokens") {
    // every reference tensor, the decoder layers, the KV-cache steps' logits and ids (golden_check)
    const std::vector<GoldenResult> results = test::check_golden_set(llava_dir);
    CHECK(results.size() >= 40);
    for (const char* name : {"vision_blk0_out_proj", "projector_act", "dec_l0_q_rot", "decoder_layer_1", "generated_ids"})
        CHECK(std::any_of(results.begin(), results.end(), [&](const GoldenResult& r) { return r.name == name; }));
    const auto model = Llava<F32>::load(llava_dir);
    CHECK(model.dims().image_tokens() == 16);
    CHECK(model.dims().layers_run() == 1);
    const Tensor<float, 2> vision = model.encode_image(io::preprocess_clip(io::load_image(llava_dir + "/input.png"), model.image_config()));
    test::check_generate_matches_golden(model, llava_ids(), vision, llava_dir, 9);
}

TEST_CASE("LLaVA-1.5 int8 per channel: logits close to f32, the same greedy start") {
    const auto f32 = Llava<F32>::load(llava_dir);
    const auto q8 = Llava<Int8PerChannel>::load(llava_dir);
    const Tensor<float, 3> px = io::preprocess_clip(io::load_image(llava_dir + "/input.png"), f32.image_config());
    const Tensor<float, 2> vf = f32.encode_image(px), vq = q8.encode_image(px);
    const auto ids = llava_ids();
    auto cf = f32.context(64);
    auto cq = q8.context(64);
    const auto lf = cf.prefill(ids, {&vf, 1});
    const auto lq = cq.prefill(ids, {&vq, 1});
    double dot = 0, nf = 0, nq = 0;
    for (std::size_t v = 0; v < lf.size(); ++v) dot += double(lf[v]) * lq[v], nf += double(lf[v]) * lf[v], nq += double(lq[v]) * lq[v];
    const double cosine = dot / std::sqrt(nf * nq);
    MESSAGE("LLaVA tiny random model, int8 per channel: last-token logit cosine vs f32 " << cosine);
    CHECK(cosine >= 0.99);
    CHECK(std::max_element(lf.begin(), lf.end()) - lf.begin() == std::max_element(lq.begin(), lq.end()) - lq.begin());
}

TEST_CASE("LLaVA-1.5 config.json: wrong family, feature layer and types refused naming the field") {
    test::TempDir dir;
    for (const char* f : {"model.safetensors", "preprocessor_config.json"})
        std::filesystem::copy_file(llava_dir + "/" + f, dir / f);
    nlohmann::json good;
    std::ifstream(llava_dir + "/config.json") >> good;
    auto refused = [&](const std::function<void(nlohmann::json&)>& edit, const char* needle) {
        nlohmann::json j = good;
        edit(j);
        std::ofstream(dir / "config.json") << j.dump();
        CAPTURE(needle);
        CHECK_ERROR_HAS(Llava<F32>::load(dir.path.string()), "config.json", needle);
    };
    refused([](auto& j) { j["model_type"] = "qwen2_vl"; }, "expected 'llava'");
    refused([](auto& j) { j["vision_feature_layer"] = -5; }, "vision_feature_layer");
    refused([](auto& j) { j["vision_feature_select_strategy"] = "cls"; }, "vision_feature_select_strategy");
    refused([](auto& j) { j["text_config"]["hidden_size"] = "64"; }, "hidden_size");
    refused([](auto& j) { j["text_config"]["num_key_value_heads"] = 3; }, "num_key_value_heads");
    refused([](auto& j) { j["vision_config"]["hidden_act"] = "relu"; }, "hidden_act");
    refused([](auto& j) { j["image_token_index"] = 1500; }, "image_token_index");
    refused([](auto& j) { j["vision_config"]["image_size"] = 60; }, "image_size");  // not a multiple of the patch
    refused([](auto& j) { j["vision_config"]["image_size"] = 70; }, "crop_size 56x56");  // the processor crops 56
}

}  // TEST_SUITE

TEST_SUITE("tokenizer") {

TEST_CASE("LLaMA SentencePiece tokenizer: transformers' slow LlamaTokenizer ids and pieces, SentencePiece's decoding") {
    const auto tok = io::SentencePieceTokenizer::from_folder(llava_dir);
    nlohmann::json cases;
    std::ifstream(llava_dir + "/tokenizer_cases.json") >> cases;
    REQUIRE(cases["cases"].size() >= 36);
    for (const auto& c : cases["cases"]) {
        const std::string text = c["text"];
        CAPTURE(text);
        const std::vector<std::int32_t> want = c["ids"], ids = tok.encode(text);
        CHECK(ids == want);
        std::vector<std::string> pieces;
        for (std::int32_t id : ids) pieces.push_back(tok.token_string(id));
        CHECK(pieces == c["tokens"].get<std::vector<std::string>>());
        std::vector<std::int32_t> model_ids;  // sp_decoded: SentencePiece's decoding of the ids below the added tokens
        for (std::int32_t id : want)
            if (id < 990) model_ids.push_back(id);
        CHECK(tok.decode(model_ids) == c["sp_decoded"].get<std::string>());
    }
    CHECK(tok.token_id("<image>") == 990);
    // LLaVA-1.5's prompt, as LlavaProcessor builds it for the golden run
    const auto model = Llava<F32>::load(llava_dir);
    CHECK(model.prompt(tok, "What is written in this document?") == llava_ids());
    CHECK(tok.token_id("<pad>") == 991);
    CHECK_ERROR_HAS(tok.decode(std::vector<std::int32_t>{5, 995}), "token id 995");  // the model's rows beyond the tokenizer
    CHECK(tok.bos_id() == 1);
    CHECK(tok.eos_id() == 2);
}

TEST_CASE("LLaMA SentencePiece tokenizer: a malformed model file is refused, never read past its end") {
    std::ifstream in(llava_dir + "/tokenizer.model", std::ios::binary);
    const std::vector<std::uint8_t> good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK_NOTHROW(io::SentencePieceTokenizer::from_model(good, "t.model"));
    for (std::size_t cut : {std::size_t(1), std::size_t(7), good.size() / 2, good.size() - 1}) {
        const std::vector<std::uint8_t> part(good.begin(), good.begin() + std::ptrdiff_t(cut));
        CHECK_THROWS_AS(io::SentencePieceTokenizer::from_model(part, "t.model"), Error);
    }
    CHECK_ERROR_HAS(io::SentencePieceTokenizer::from_model({}, "t.model"), "t.model");
    std::vector<std::uint8_t> junk(64, 0xff);
    CHECK_ERROR_HAS(io::SentencePieceTokenizer::from_model(junk, "t.model"), "t.model");
}

}  // TEST_SUITE
