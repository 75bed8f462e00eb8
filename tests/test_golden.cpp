// Golden tests: docvlm's Qwen2-VL against tensors computed by Hugging Face transformers
// (tests/data/golden/qwen2vl-tiny-a, see its README): pixel values, positions, every traced
// intermediate tensor, logits and 16 greedy tokens with the KV cache, in f32, with both the
// static preset for that tiny config and the dynamic one; int8 against f32.
#include "test_util.hpp"

#include <docvlm/io/image_processor.hpp>
#include <docvlm/model/model.hpp>
#include <docvlm/presets/qwen2vl.hpp>

#include <xtensor/xnpy.hpp>

#include <cmath>
#include <filesystem>
#include <map>

using namespace docvlm;

namespace {

const std::string golden = test::data("golden/qwen2vl-tiny-a");

// The tiny checkpoint's sizes, fixed at compile time.
template <WeightPolicy W>
using TinyStatic = presets::Qwen2VLFamily<2, 64, 4, 256, 2, 64, 4, 2, 176, 1000, 2, 3, 3, W>;

std::vector<std::int32_t> golden_ids() {
    auto a = xt::load_npy<std::int64_t>(golden + "/input_ids.npy");
    return {a.begin(), a.end()};
}

struct Recorder {
    std::map<std::string, std::vector<float>> seen;
    Trace trace() {
        return [this](std::string_view name, const float* p, std::size_t r, std::size_t c) { seen[std::string(name)].assign(p, p + r * c); };
    }
};

// max |got - want| / max |want| over a golden .npy (optionally transposed from [heads, seq, d]).
double rel_error(const std::vector<float>& got, const std::string& file, std::size_t heads_seq_transpose = 0) {
    auto want = xt::load_npy<float>(golden + "/" + file + ".npy");
    REQUIRE(got.size() == want.size());
    std::vector<float> w(want.begin(), want.end());
    if (heads_seq_transpose) {  // golden [1, heads, seq, d] -> ours [seq, heads * d]
        const std::size_t heads = heads_seq_transpose, d = want.shape()[3], seq = want.shape()[2];
        for (std::size_t h = 0; h < heads; ++h)
            for (std::size_t s = 0; s < seq; ++s)
                for (std::size_t t = 0; t < d; ++t) w[s * heads * d + h * d + t] = want(0, h, s, t);
    }
    double err = 0, scale = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
        err = std::max(err, std::fabs(double(got[i]) - w[i]));
        scale = std::max(scale, std::fabs(double(w[i])));
    }
    return err / std::max(scale, 1e-30);
}

template <class Cfg>
void check_against_golden() {
    const auto model = Model<Cfg>::load(golden);
    const io::Image img = io::load_image(golden + "/input.png");
    const io::PixelValues px = io::preprocess_qwen2vl(img, model.image_config());
    CHECK(px.grid_t == 1);
    CHECK(px.grid_h == 12);
    CHECK(px.grid_w == 20);
    {
        auto want = xt::load_npy<float>(golden + "/pixel_values.npy");
        REQUIRE(want.size() == px.patches.size());
        double err = 0;
        for (std::size_t i = 0; i < want.size(); ++i) err = std::max(err, std::fabs(double(px.patches.data()[i]) - want.data()[i]));
        CHECK(err <= 1e-5);
    }
    Recorder rec;
    const Tensor<float, 2> vision = model.encode_image(px, rec.trace());
    const ImageGrid grid{px.grid_t, px.grid_h, px.grid_w};
    const auto ids = golden_ids();
    // positions: rope_index reproduces get_rope_index
    const RopePositions rp = rope_index(ids, model.dims().image_token_id, std::span(&grid, 1), int(model.dims().merge));
    auto pos = xt::load_npy<std::int64_t>(golden + "/position_ids.npy");
    for (int a = 0; a < 3; ++a)
        for (std::size_t i = 0; i < ids.size(); ++i) REQUIRE(rp.pos[std::size_t(a)][i] == pos(a, 0, i));
    CHECK(rp.delta == xt::load_npy<std::int64_t>(golden + "/rope_deltas.npy")(0, 0));

    // The golden hidden states and logits come from Hugging Face's plain forward(), which (4.46,
    // no position_ids given) numbers the tokens 0..n-1 on all three rope axes; generate() below uses
    // get_rope_index positions. Both are checked.
    RopePositions plain;
    for (auto& a : plain.pos)
        for (std::size_t i = 0; i < ids.size(); ++i) a.push_back(std::int64_t(i));
    auto ctx = model.context(128);
    ctx.prefill(ids, {&vision, 1}, {&grid, 1}, plain, rec.trace(), true);

    const char* same_layout[] = {"vision_patch_embed", "vision_rotary_freqs", "vision_blk0_norm1", "vision_blk0_qkv",
                                 "vision_blk0_q_rot", "vision_blk0_k_rot", "vision_blk0_attn_context", "vision_blk0_attn_out",
                                 "vision_blk0_norm2", "vision_blk0_fc1", "vision_blk0_act", "vision_blk0_fc2", "vision_blk0_out",
                                 "vision_merger_ln_q", "vision_output", "inputs_embeds", "dec_rope_cos_mrope", "dec_rope_sin_mrope",
                                 "dec_l0_input_layernorm", "dec_l0_q_proj", "dec_l0_k_proj", "dec_l0_v_proj",
                                 "dec_l0_attn_context", "dec_l0_attn_out", "dec_l0_post_attention_layernorm", "dec_l0_gate_proj",
                                 "dec_l0_up_proj", "dec_l0_act", "dec_l0_down_proj", "dec_l0_out", "final_hidden", "logits"};
    for (const char* cname : same_layout) {
        const std::string name = cname;
        CAPTURE(name);
        REQUIRE(rec.seen.count(name));
        const double e = rel_error(rec.seen[name], name);
        CHECK(e <= 1e-4);
    }
    CHECK(rel_error(rec.seen["dec_l0_q_rot"], "dec_l0_q_rot", 4) <= 1e-4);
    CHECK(rel_error(rec.seen["dec_l0_k_rot"], "dec_l0_k_rot", 2) <= 1e-4);
    // every vision block and decoder layer
    auto vb = xt::load_npy<float>(golden + "/vision_block_outputs.npy");
    auto hs = xt::load_npy<float>(golden + "/hidden_states.npy");
    for (std::size_t b = 0; b < 2; ++b) {
        const auto& got = rec.seen["vision_block_out_" + std::to_string(b)];
        double err = 0, scale = 0;
        for (std::size_t i = 0; i < got.size(); ++i) {
            err = std::max(err, std::fabs(double(got[i]) - vb.data()[b * got.size() + i]));
            scale = std::max(scale, std::fabs(double(vb.data()[b * got.size() + i])));
        }
        CHECK(err <= 1e-4 * scale);
    }
    {
        const auto& got = rec.seen["dec_layer_out_0"];
        double err = 0, scale = 0;
        for (std::size_t i = 0; i < got.size(); ++i) {
            err = std::max(err, std::fabs(double(got[i]) - hs.data()[got.size() + i]));
            scale = std::max(scale, std::fabs(double(hs.data()[got.size() + i])));
        }
        CHECK(err <= 1e-4 * scale);
    }

    // 16 greedy tokens with the KV cache, and the logits of every step
    auto want_ids = xt::load_npy<std::int64_t>(golden + "/generated_ids.npy");
    auto step_logits = xt::load_npy<float>(golden + "/generated_step_logits.npy");
    auto ctx2 = model.context(128);
    std::vector<std::int32_t> got_ids;
    std::span<const float> l = ctx2.prefill(ids, {&vision, 1}, {&grid, 1});
    double worst = 0, scale = 0;
    for (std::size_t step = 0; step < 16; ++step) {
        for (std::size_t v = 0; v < 1000; ++v) {
            worst = std::max(worst, std::fabs(double(l[v]) - step_logits(step, v)));
            scale = std::max(scale, std::fabs(double(step_logits(step, v))));
        }
        const auto t = std::int32_t(std::max_element(l.begin(), l.end()) - l.begin());
        got_ids.push_back(t);
        if (step + 1 < 16) l = ctx2.decode_step(t);
    }
    CHECK(worst <= 1e-4 * scale);
    CHECK(got_ids == std::vector<std::int32_t>(want_ids.begin(), want_ids.end()));
    // generate() gives the same with the sampler in greedy mode
    auto ctx3 = model.context(128);
    const auto gen = ctx3.generate(ids, {&vision, 1}, {&grid, 1}, GenerationOptions{.max_new_tokens = 16});
    CHECK(gen == got_ids);
}

}  // namespace

TEST_SUITE("golden") {

TEST_CASE("Qwen2-VL tiny golden: dynamic preset, f32") { check_against_golden<presets::Qwen2VL<F32>>(); }

TEST_CASE("Qwen2-VL tiny golden: static preset, f32") { check_against_golden<TinyStatic<F32>>(); }

TEST_CASE("a preset whose static sizes disagree with config.json is refused") {
    CHECK_ERROR_HAS(Model<presets::MinerU25<F32>>::load(golden), "config.json", "vision depth is 2", "fixes it at 32");
}

}  // TEST_SUITE
