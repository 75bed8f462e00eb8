// Qwen-VL (-Chat) against the reference code published with the checkpoint (modeling_qwen.py,
// visual.py), run on a tiny random checkpoint (tests/data/golden/qwenvl-tiny-a, see its README):
// square bicubic preprocessing, the ViT, the resampler, every traced decoder tensor, logits and 16
// greedy tokens with the KV cache; generate() and generate_batch(); int8 against f32; malformed
// configs refused.
#include "golden_util.hpp"
#include "test_util.hpp"

#include <docvlm/io/clip_processor.hpp>
#include <docvlm/model/model.hpp>
#include <docvlm/presets/qwen_vl.hpp>

#include <nlohmann/json.hpp>
#include <xtensor/xnpy.hpp>

#include <cmath>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <functional>

using namespace docvlm;

namespace {

const std::string qwenvl_dir = test::data("golden/qwenvl-tiny-a");

template <WeightPolicy W>
using QwenVL = Model<presets::QwenVL<W>>;

std::vector<std::int32_t> qwenvl_ids() {
    auto a = xt::load_npy<std::int64_t>(qwenvl_dir + "/input_ids.npy");
    return {a.begin(), a.end()};
}

GenerationOptions greedy(std::size_t n) {
    GenerationOptions o;
    o.max_new_tokens = n;
    return o;
}

}  // namespace

TEST_SUITE("golden") {

TEST_CASE("Qwen-VL square preprocessing: Pillow's resize exactly, pixel values within 1e-6") {
    const io::Image img = io::load_image(qwenvl_dir + "/input.png");
    const auto model = QwenVL<F32>::load(qwenvl_dir);
    const io::Image resized = io::resize(img, model.image_size(), model.image_size(), io::Resample::bicubic);
    auto want_r = xt::load_npy<std::uint8_t>(qwenvl_dir + "/pp_resized.npy");
    REQUIRE(want_r.size() == resized.pixels.size());
    CHECK(std::equal(resized.pixels.begin(), resized.pixels.end(), want_r.begin()));
    const Tensor<float, 3> px = io::preprocess_square(img, model.image_size());
    CHECK(test::golden_abs_error(px.data(), px.size(), qwenvl_dir + "/pixel_values.npy") <= 1e-6);
}

TEST_CASE("Qwen-VL tiny golden, f32: the ViT, the resampler, every traced decoder tensor, logits and 16 greedy tokens") {
    // every reference tensor, by the name map of golden_check (tools/cli/golden_check.hpp)
    const std::vector<GoldenResult> results = test::check_golden_set(qwenvl_dir);
    CHECK(results.size() >= 45);
    const auto model = QwenVL<F32>::load(qwenvl_dir);
    const Tensor<float, 2> vision = model.encode_image(io::preprocess_square(io::load_image(qwenvl_dir + "/input.png"), model.image_size()));
    const auto ids = model.pad_image_spans(qwenvl_ids());  // the image path's bytes inside <img></img> become pads
    test::check_generate_matches_golden(model, ids, vision, qwenvl_dir);  // the KV-cache steps themselves: golden_check above
}

TEST_CASE("Qwen-VL-Chat's prompt on the tiny checkpoint: the image span where the model puts the image tokens") {
    const auto model = QwenVL<F32>::load(qwenvl_dir);
    const io::Tokenizer tok = qwen_vl_tokenizer(qwenvl_dir);  // its qwen.tiktoken puts <img> at the config's 990
    const auto ids = model.prompt(tok, "What is written here?");
    const auto img = std::find(ids.begin(), ids.end(), 990);
    REQUIRE(img != ids.end());
    CHECK(std::count(ids.begin(), ids.end(), 992) == 16);  // n_queries pads
    CHECK(*(img + 17) == 991);
    CHECK(ids.front() == *tok.token_id("<|im_start|>"));
    const Tensor<float, 2> vision = model.encode_image(io::preprocess_square(io::load_image(qwenvl_dir + "/input.png"), model.image_size()));
    auto ctx = model.context(ids.size() + 4);
    CHECK(ctx.generate(ids, {&vision, 1}, {}, greedy(4)).size() == 4);
}

TEST_CASE("Qwen-VL int8 per channel: logits close to f32, the same greedy start") {
    const auto f32 = QwenVL<F32>::load(qwenvl_dir);
    const auto q8 = QwenVL<Int8PerChannel>::load(qwenvl_dir);
    const Tensor<float, 3> px = io::preprocess_square(io::load_image(qwenvl_dir + "/input.png"), f32.image_size());
    const Tensor<float, 2> vf = f32.encode_image(px), vq = q8.encode_image(px);
    const auto ids = f32.pad_image_spans(qwenvl_ids());
    auto cf = f32.context(64);
    auto cq = q8.context(64);
    const auto lf = cf.prefill(ids, {&vf, 1});
    const auto lq = cq.prefill(ids, {&vq, 1});
    double dot = 0, nf = 0, nq = 0;
    for (std::size_t v = 0; v < lf.size(); ++v) dot += double(lf[v]) * lq[v], nf += double(lf[v]) * lf[v], nq += double(lq[v]) * lq[v];
    const double cosine = dot / std::sqrt(nf * nq);
    MESSAGE("Qwen-VL tiny random model, int8 per channel: last-token logit cosine vs f32 " << cosine);
    CHECK(cosine >= 0.99);
    CHECK(std::max_element(lf.begin(), lf.end()) - lf.begin() == std::max_element(lq.begin(), lq.end()) - lq.begin());
}

TEST_CASE("Qwen-VL config.json: wrong family and impossible sizes refused naming the field") {
    test::TempDir dir;
    std::filesystem::copy_file(qwenvl_dir + "/model.safetensors", dir / "model.safetensors");
    nlohmann::json good;
    std::ifstream(qwenvl_dir + "/config.json") >> good;
    auto refused = [&](const std::function<void(nlohmann::json&)>& edit, const char* needle) {
        nlohmann::json j = good;
        edit(j);
        std::ofstream(dir / "config.json") << j.dump();
        CAPTURE(needle);
        CHECK_ERROR_HAS(QwenVL<F32>::load(dir.path.string()), "config.json", needle);
    };
    refused([](auto& j) { j["model_type"] = "llava"; }, "expected 'qwen'");
    refused([](auto& j) { j.erase("visual"); }, "visual");
    refused([](auto& j) { j["visual"]["n_queries"] = 15; }, "n_queries");
    refused([](auto& j) { j["visual"]["output_dim"] = 64; }, "output_dim");
    refused([](auto& j) { j["rotary_pct"] = 0.5; }, "rotary_pct");
    refused([](auto& j) { j["kv_channels"] = 16; }, "kv_channels");
    refused([](auto& j) { j["visual"]["image_start_id"] = 999; }, "image_start_id");
}

}  // TEST_SUITE
