// Tests of GatedVlmModel (Model<Config> with GatedCrossAttention fusion) against PyTorch.
//
// tests/data/gated-tiny: a tiny random model of tools/train/model.py (int8 weights with scales, as
// the QAT export writes them) and the PyTorch outputs for four crops, made by
// `tools/train/reference.py --random tests/data/gated-tiny`. The shipped model (models/docvlm-small)
// is checked the same way against tests/data/docvlm-small/reference.safetensors.
#include "test_util.hpp"

#include <docvlm/model/model.hpp>
#include <docvlm/presets/docvlm_small.hpp>

#include <cmath>
#include <fstream>

using namespace docvlm;

namespace {

// The tiny config of reference.py --random, every size fixed at compile time.
template <WeightPolicy W>
using Tiny = presets::GatedVlmFamily<2, 64, 2, 128, 5, 2, 3, 64, 4, 2, 96, 264, 2, W>;
template <WeightPolicy W>
using TinyDynamic = presets::GatedVlmFamily<dynamic, dynamic, dynamic, dynamic, 5, 2, dynamic, dynamic, dynamic, dynamic, dynamic, dynamic,
                                            2, W>;

io::Image crop_of(const io::Checkpoint& ref, int i) {
    const std::string name = "crop" + std::to_string(i);
    const auto& info = ref.info(name);
    io::Image img(int(info.shape[1]), int(info.shape[0]), 1);
    const auto bytes = ref.bytes(name);
    std::copy(bytes.begin(), bytes.end(), reinterpret_cast<std::byte*>(img.pixels.data()));
    return img;
}

std::vector<std::int32_t> tokens_of(const io::Checkpoint& ref, const std::string& name) {
    const auto a = ref.to_f32(name);
    return std::vector<std::int32_t>(a.begin(), a.end());
}

double rel_err(const float* got, const Array<float>& want) {
    double e = 0, s = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        e = std::max(e, std::fabs(double(got[i]) - want.data()[i]));
        s = std::max(s, std::fabs(double(want.data()[i])));
    }
    return e / s;
}

std::string task_of(const io::Image& crop) { return crop.height == 48 ? "formula" : "text"; }

// F32: vision tokens and teacher-forced logits within 1e-4 of PyTorch, greedy tokens identical.
template <class Config>
void check_against_pytorch(const std::string& dir, int crops) {
    const auto model = load<Config>(dir);
    const io::Checkpoint ref = io::Checkpoint::open(dir + "/reference.safetensors");
    for (int i = 0; i < crops; ++i) {
        CAPTURE(i);
        const io::Image crop = crop_of(ref, i);
        const Tensor<float, 2> vis = model.encode_image(crop);
        const Array<float> want_vis = ref.to_f32("vision" + std::to_string(i));
        REQUIRE(vis.size() == want_vis.size());
        CHECK(rel_err(vis.data(), want_vis) <= 1e-4);

        const auto toks = tokens_of(ref, "tokens" + std::to_string(i));
        std::vector<std::int32_t> seq{model.dims().task_token(task_of(crop))};
        seq.insert(seq.end(), toks.begin(), toks.end());
        auto ctx = model.context();
        const auto logits = ctx.prefill(vis, seq, {}, true);
        const Array<float> want_logits = ref.to_f32("logits" + std::to_string(i));
        REQUIRE(logits.size() == want_logits.size());
        CHECK(rel_err(logits.data(), want_logits) <= 1e-4);

        auto ctx2 = model.context();
        const auto out = ctx2.generate(vis, task_of(crop), {.max_new_tokens = 48});  // reference.py --max-new
        CHECK(out == toks);
    }
}

}  // namespace

TEST_SUITE("embedded") {

TEST_CASE("gated cross-attention model (static and dynamic sizes, f32) matches PyTorch") {
    const std::string dir = test::data("gated-tiny");
    check_against_pytorch<Tiny<F32>>(dir, 4);
    check_against_pytorch<TinyDynamic<F32>>(dir, 4);
}

TEST_CASE("int8 gated model follows PyTorch's quantisation-aware simulation") {
    const std::string dir = test::data("gated-tiny");
    const auto model = load<Tiny<Int8PerChannel>>(dir);
    const io::Checkpoint ref = io::Checkpoint::open(dir + "/reference.safetensors");
    std::size_t same = 0, total = 0;
    for (int i = 0; i < 4; ++i) {
        const io::Image crop = crop_of(ref, i);
        auto ctx = model.context();
        const auto want = tokens_of(ref, "qat_tokens" + std::to_string(i));
        const auto out = ctx.generate(model.encode_image(crop), task_of(crop), {.max_new_tokens = want.size()});
        // Greedy decoding of a random model sits on near-ties; compare the prefix up to the first
        // divergence and require most of it to agree.
        std::size_t k = 0;
        while (k < out.size() && k < want.size() && out[k] == want[k]) ++k;
        same += k;
        total += want.size();
    }
    MESSAGE("int8 vs PyTorch QAT: ", same, " of ", total, " greedy tokens before the first divergence");
    CHECK(double(same) >= 0.5 * double(total));
}

TEST_CASE("gated model: bad configs, checkpoints and inputs give clear errors") {
    const std::string dir = test::data("gated-tiny");
    test::TempDir tmp;
    std::filesystem::copy(dir + "/model.safetensors", tmp / "model.safetensors");
    auto write_config = [&](const std::string& from, const std::string& to) {
        std::ifstream in(dir + "/config.json");
        std::string s((std::istreambuf_iterator<char>(in)), {});
        const auto p = s.find(from);
        REQUIRE(p != std::string::npos);
        s.replace(p, from.size(), to);
        std::ofstream(tmp / "config.json") << s;
    };
    write_config("\"vision_dim\": 64", "\"vision_dim\": 96");
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "vision_dim", "96");
    CHECK_ERROR_HAS(load<TinyDynamic<F32>>(tmp.path.string()), "patch_embed.weight", "has shape [64, 64], the model expects [96, 64]");
    write_config("\"window\": 5", "\"window\": 7");
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "window");
    write_config("\"model_type\": \"docvlm_small\"", "\"model_type\": \"qwen2_vl\"");
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "docvlm_small");
    write_config("\"text_heads\": 4", "\"text_heads\": 3");
    CHECK_ERROR_HAS(load<TinyDynamic<F32>>(tmp.path.string()), "text_heads");

    const auto model = load<Tiny<Int8PerChannel>>(dir);
    CHECK_ERROR_HAS(model.dims().task_token("table-of-contents"), "knows the tasks", "formula", "text");
    CHECK_ERROR_HAS(model.encode_image(io::Image(20, 24, 1, 255)), "multiple of 8");
    CHECK_ERROR_HAS(model.encode_image(io::Image(16 * 8 + 8, 24, 1, 255)), "exceeds");
    CHECK_ERROR_HAS(model.encode_image(io::Image(16, 24, 3, 255)), "gray");
    auto ctx = model.context(4);
    const auto vis = model.encode_image(io::Image(16, 24, 1, 255));
    const std::int32_t too_many[5] = {259, 1, 2, 3, 4};
    CHECK_ERROR_HAS(ctx.prefill(vis, too_many), "capacity");
    const std::int32_t bad[1] = {9999};
    CHECK_ERROR_HAS(ctx.prefill(vis, bad), "outside the vocabulary");
}

TEST_CASE("prepare: gray, task height, aspect kept, white padding to the patch") {
    const auto model = load<Tiny<F32>>(test::data("gated-tiny"));
    io::Image crop(50, 10, 3, 0);
    const io::Image p = model.prepare(crop, "text");
    CHECK(p.channels == 1);
    CHECK(p.height == 24);
    CHECK(p.width == 120);  // round(50 · 24 / 10) = 120, already a multiple of 8
    const io::Image f = model.prepare(io::Image(30, 40, 1, 0), "formula");
    CHECK(f.height == 48);
    CHECK(f.width == 40);  // round(30 · 48 / 40) = 36 → padded to 40 with white
    CHECK(f.at(39, 10) == 255);
    CHECK(f.at(20, 10) == 0);
    CHECK(model.prepare(io::Image(4000, 10, 1, 0), "text").width == 128);  // clamped to max_cols · patch
}

}  // TEST_SUITE
