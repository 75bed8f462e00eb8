// Golden tests: docvlm's Qwen2-VL against tensors computed by Hugging Face transformers
// (tests/data/golden/qwen2vl-tiny-a, see its README): pixel values, positions, every traced
// intermediate tensor, logits and 16 greedy tokens with the KV cache, in f32, with both the
// static preset for that tiny config and the dynamic one; int8 against f32.
#include "golden_util.hpp"
#include "test_util.hpp"

#include <docvlm/io/image_processor.hpp>
#include <docvlm/model/model.hpp>
#include <docvlm/model/quantize.hpp>
#include <docvlm/presets/mineru25.hpp>

#include <xtensor/xnpy.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

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

double rel_error(const std::vector<float>& got, const std::string& file, std::size_t heads = 0) {
    return test::golden_rel_error(got, golden + "/" + file + ".npy", heads);
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
            err = test::worse(err, std::fabs(double(got[i]) - vb.data()[b * got.size() + i]));
            scale = std::max(scale, std::fabs(double(vb.data()[b * got.size() + i])));
        }
        CHECK(err <= 1e-4 * scale);
    }
    {
        const auto& got = rec.seen["dec_layer_out_0"];
        double err = 0, scale = 0;
        for (std::size_t i = 0; i < got.size(); ++i) {
            err = test::worse(err, std::fabs(double(got[i]) - hs.data()[got.size() + i]));
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
            worst = test::worse(worst, std::fabs(double(l[v]) - step_logits(step, v)));
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
    const auto gen = ctx3.generate(ids, {&vision, 1}, {&grid, 1}, [] { GenerationOptions o; o.max_new_tokens = 16; return o; }());
    CHECK(gen == got_ids);
}

}  // namespace

TEST_SUITE("golden") {

TEST_CASE("Qwen2-VL tiny golden: dynamic preset, f32") { check_against_golden<presets::Qwen2VL<F32>>(); }

TEST_CASE("Qwen2-VL tiny golden: static preset, f32") { check_against_golden<TinyStatic<F32>>(); }

TEST_CASE("golden_check passes on the golden set and fails on a perturbed copy") {
    std::vector<GoldenResult> results;
    CHECK(golden_check(golden, [&](const GoldenResult& r) { results.push_back(r); }));
    CHECK(results.size() >= 40);
    test::TempDir tmp;
    for (const auto& e : std::filesystem::directory_iterator(golden)) std::filesystem::copy(e.path(), tmp.path / e.path().filename());
    auto logits = xt::load_npy<float>(golden + "/logits.npy");
    logits(0, 40, 7) += 0.01f;  // one value, well above the tolerance
    xt::dump_npy((tmp.path / "logits.npy").string(), logits);
    bool logits_failed = false;
    CHECK_FALSE(golden_check(tmp.path.string(), [&](const GoldenResult& r) { logits_failed |= r.name == "logits" && !r.passed; }));
    CHECK(logits_failed);
    // A NaN on either side fails too (its error is NaN, which a plain running max would skip).
    logits(0, 40, 7) = std::numeric_limits<float>::quiet_NaN();
    xt::dump_npy((tmp.path / "logits.npy").string(), logits);
    logits_failed = false;
    CHECK_FALSE(golden_check(tmp.path.string(), [&](const GoldenResult& r) { logits_failed |= r.name == "logits" && !r.passed; }));
    CHECK(logits_failed);
}

TEST_CASE("golden_check finds the reference forward()'s positions without its rope table") {
    test::TempDir tmp;
    for (const auto& e : std::filesystem::directory_iterator(golden))
        if (e.path().filename().string().rfind("dec_rope_", 0) != 0) std::filesystem::copy(e.path(), tmp.path / e.path().filename());
    std::string positions;
    CHECK(golden_check(tmp.path.string(), [&](const GoldenResult& r) {
        if (r.name == "forward_positions") positions = r.note;
    }));
    CHECK(positions.find("0..n-1") != std::string::npos);  // transformers 4.46's plain forward()
}

// A checkpoint with the golden set's architecture and names but well-conditioned random weights
// (gain 1 / sqrt(fan_in), norms near 1, small biases), as a trained model's would be.
std::string conditioned_checkpoint(const test::TempDir& dir) {
    const io::Checkpoint src = io::Checkpoint::open(golden);
    io::SafeTensorsWriter w;
    std::mt19937 rng(2026);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (const auto& name : src.names()) {
        const auto& info = src.info(name);
        std::vector<float> v(info.numel());
        std::size_t fan_in = 1;
        for (std::size_t i = 1; i < info.shape.size(); ++i) fan_in *= info.shape[i];
        const bool is_norm = name.find("norm") != std::string::npos || name.find("ln_q") != std::string::npos;
        for (float& x : v) {
            if (name.find("embed_tokens") != std::string::npos) x = nd(rng);
            else if (info.shape.size() >= 2) x = nd(rng) / std::sqrt(float(fan_in));
            else if (is_norm && name.ends_with(".weight")) x = 1.0f + 0.05f * nd(rng);
            else x = 0.02f * nd(rng);
        }
        w.add(name, info.shape, v.data());
    }
    for (const char* f : {"config.json", "preprocessor_config.json", "input.png"})
        std::filesystem::copy(std::filesystem::path(golden) / f, dir.path / f);
    w.write(dir / "model.safetensors");
    return dir.path.string();
}

// The golden checkpoint with value 3 of `tensor` replaced, written to `dir`.
std::string checkpoint_with_value(const test::TempDir& dir, const std::string& tensor, float value) {
    const io::Checkpoint src = io::Checkpoint::open(golden);
    io::SafeTensorsWriter w;
    for (const auto& name : src.names()) {
        Array<float> v = src.to_f32(name);
        if (name == tensor) v.data()[3] = value;
        w.add(name, src.info(name).shape, v.data());
    }
    for (const char* f : {"config.json", "preprocessor_config.json"}) std::filesystem::copy(std::filesystem::path(golden) / f, dir.path / f);
    w.write(dir / "model.safetensors");
    return dir.path.string();
}

TEST_CASE("non-finite numbers: a NaN weight fails at load, logits that overflow stop generation") {
    {
        test::TempDir dir;
        const std::string path = checkpoint_with_value(dir, "model.norm.weight", std::numeric_limits<float>::quiet_NaN());
        CHECK_ERROR_HAS(Model<presets::Qwen2VL<F32>>::load(path), "'model.norm.weight' holds 1 values that are not finite", "index 3");
        CHECK_ERROR_HAS(Model<presets::Qwen2VL<Int8PerChannel>>::load(path), "model.norm.weight", "not finite");
    }
    {
        test::TempDir dir, out;
        const std::string path = checkpoint_with_value(dir, "model.layers.0.mlp.up_proj.weight", std::numeric_limits<float>::infinity());
        CHECK_ERROR_HAS(quantize_checkpoint(path, out.path.string()), "'model.layers.0.mlp.up_proj.weight'", "not finite");
    }
    test::TempDir dir;
    // the final norm's weight: finite, but large enough for the logits to overflow
    const auto model = Model<presets::Qwen2VL<F32>>::load(checkpoint_with_value(dir, "model.norm.weight", 3e38f));
    const io::PixelValues px = io::preprocess_qwen2vl(io::load_image(golden + "/input.png"), model.image_config());
    const auto vision = model.encode_image(px);
    const ImageGrid grid{px.grid_t, px.grid_h, px.grid_w};
    const auto ids = golden_ids();
    auto ctx = model.context(ids.size() + 4);
    GenerationOptions opt;
    opt.max_new_tokens = 4;
    CHECK_ERROR_HAS(ctx.generate(ids, {&vision, 1}, {&grid, 1}, opt), "logits at generated token 1", "not finite");
}

// int8 / bf16 weights against f32 on the same checkpoint: logit cosine at every step and the
// agreement of greedy tokens (both continue with the f32 model's token to stay aligned).
template <class Cfg>
std::pair<double, std::size_t> compare_with_f32(const std::string& dir, std::size_t steps) {
    const auto ref = Model<presets::Qwen2VL<F32>>::load(dir);
    const auto q = Model<Cfg>::load(dir);
    const io::PixelValues px = io::preprocess_qwen2vl(io::load_image(dir + "/input.png"), ref.image_config());
    const ImageGrid grid{px.grid_t, px.grid_h, px.grid_w};
    const auto vr = ref.encode_image(px), vq = q.encode_image(px);
    const auto ids = golden_ids();
    auto cr = ref.context(256);
    auto cq = q.context(256);
    std::span<const float> lr = cr.prefill(ids, {&vr, 1}, {&grid, 1}), lq = cq.prefill(ids, {&vq, 1}, {&grid, 1});
    double worst_cos = 1;
    std::size_t agree = 0;
    for (std::size_t s = 0; s < steps; ++s) {
        double dot = 0, a = 0, b = 0;
        for (std::size_t i = 0; i < lr.size(); ++i) dot += double(lr[i]) * lq[i], a += double(lr[i]) * lr[i], b += double(lq[i]) * lq[i];
        worst_cos = std::min(worst_cos, dot / std::sqrt(a * b));
        const auto tr = std::int32_t(std::max_element(lr.begin(), lr.end()) - lr.begin());
        agree += tr == std::int32_t(std::max_element(lq.begin(), lq.end()) - lq.begin());
        lr = cr.decode_step(tr);
        lq = cq.decode_step(tr);
    }
    return {worst_cos, agree};
}

// generate_batch must give each request exactly what Context::generate gives it alone.
template <class Config>
void check_generate_batch(const std::string& dir) {
    const auto model = load<Config>(dir);
    const io::PixelValues px = io::preprocess_qwen2vl(io::load_image(golden + "/input.png"), model.image_config());
    const Tensor<float, 2> vision = model.encode_image(px);
    const ImageGrid grid{px.grid_t, px.grid_h, px.grid_w};
    const std::vector<std::int32_t> ids = golden_ids();
    const std::vector<std::int32_t> shorter(ids.begin(), ids.end() - 2);  // another prompt length
    using Request = BatchRequest;
    GenerationOptions greedy;
    greedy.max_new_tokens = 16;
    GenerationOptions penalised = greedy;  // MinerU's kind of settings, a different length
    penalised.max_new_tokens = 24, penalised.no_repeat_ngram = 3, penalised.presence_penalty = 1.0f, penalised.frequency_penalty = 0.05f;
    GenerationOptions stop = greedy;
    stop.max_new_tokens = 8;
    const std::vector<Request> reqs = {{ids, {&vision, 1}, {&grid, 1}, greedy},
                                       {shorter, {&vision, 1}, {&grid, 1}, penalised},
                                       {ids, {&vision, 1}, {&grid, 1}, stop},
                                       {shorter, {&vision, 1}, {&grid, 1}, greedy}};
    GenerationStats stats;
    const auto batched = model.generate_batch(reqs, &stats);
    REQUIRE(batched.size() == reqs.size());
    for (std::size_t i = 0; i < reqs.size(); ++i) {
        auto ctx = model.context(reqs[i].ids.size() + reqs[i].options.max_new_tokens);
        CHECK(batched[i] == ctx.generate(reqs[i].ids, reqs[i].images, reqs[i].grids, reqs[i].options));
    }
    CHECK(batched[0] != batched[1]);  // the requests really differ
    CHECK(stats.generated_tokens == batched[0].size() + batched[1].size() + batched[2].size() + batched[3].size());
    CHECK(model.generate_batch({}).empty());
}

TEST_CASE("Qwen2-VL generate_batch: each request as generate() gives it alone (f32, int8)") {
    check_generate_batch<presets::Qwen2VL<F32>>(golden);
    check_generate_batch<presets::Qwen2VL<Int8PerChannel>>(golden);
}

TEST_CASE("int8 per-channel weights: logits cosine >= 0.999 vs f32 and the same 32 greedy tokens") {
    test::TempDir dir;
    const std::string ck = conditioned_checkpoint(dir);
    const auto [cos8, agree8] = compare_with_f32<presets::Qwen2VL<Int8PerChannel>>(ck, 32);
    MESSAGE("conditioned model, int8 per channel: worst logit cosine ", cos8, ", greedy agreement ", agree8, "/32");
    CHECK(cos8 >= 0.999);
    CHECK(agree8 == 32);
    const auto [cosg, agreeg] = compare_with_f32<presets::Qwen2VL<Int8PerGroup<32>>>(ck, 32);
    MESSAGE("conditioned model, int8 per group of 32: worst logit cosine ", cosg, ", greedy agreement ", agreeg, "/32");
    CHECK(cosg >= 0.999);
    const auto [cosb, agreeb] = compare_with_f32<presets::Qwen2VL<BF16>>(ck, 32);
    MESSAGE("conditioned model, bf16: worst logit cosine ", cosb, ", greedy agreement ", agreeb, "/32");
    CHECK(cosb >= 0.9999);
    CHECK(agreeb == 32);
}

TEST_CASE("int8 on the golden set's random weights (large activations): reported, loosely bounded") {
    // 1 − cosine ≤ 0.01 with weights within ±127; the weights' rounding noise dominates here, and
    // its power grows as 1/qmax², so the bound grows so where the default range is narrower (±63
    // on AVX2 without VNNI: about 4x).
    const double qmax = kernels::default_weight_qmax(), noise = (127.0 * 127.0) / (qmax * qmax);
    const auto [cos8, agree8] = compare_with_f32<presets::Qwen2VL<Int8PerChannel>>(golden, 32);
    MESSAGE("golden random model, int8 per channel (weights within ±", qmax, "): worst logit cosine ", cos8, ", greedy agreement ",
            agree8, "/32");
    CHECK(1.0 - cos8 <= 0.01 * noise);
    if (qmax != 127) {  // the full range on the same CPU keeps the ±127 bound
        test::ScopedEnv full("DOCVLM_INT8_WEIGHTS", "full");
        const auto [cosf, agreef] = compare_with_f32<presets::Qwen2VL<Int8PerChannel>>(golden, 32);
        MESSAGE("the same with DOCVLM_INT8_WEIGHTS=full: worst logit cosine ", cosf, ", greedy agreement ", agreef, "/32");
        CHECK(cosf >= 0.99);
    }
}

TEST_CASE("docvlm quantize: the packed int8 checkpoint loads without requantising and computes the same") {
    test::TempDir out;
    const QuantizeReport r = quantize_checkpoint(golden, out.path.string());
    CHECK(r.quantized == 2 * 4 + 1 + 2 + 2 * 7 + 1);  // 4 per vision block, patch embed, merger 2, 7 per layer, lm_head
    CHECK(std::filesystem::exists(out / "config.json"));
    CHECK(std::filesystem::exists(out / "preprocessor_config.json"));
    using M8 = Model<presets::Qwen2VL<Int8PerChannel>>;
    // Packed files hold weights within ±127 on every CPU: the same as quantising at load with the
    // full range (the default where AVX2 has no VNNI is ±63, see kernels::weight_qmax).
    const test::ScopedEnv full("DOCVLM_INT8_WEIGHTS", "full");
    const M8 direct = M8::load(golden), packed = M8::load(out.path.string());
    const io::PixelValues px = io::preprocess_qwen2vl(io::load_image(golden + "/input.png"), direct.image_config());
    const ImageGrid grid{px.grid_t, px.grid_h, px.grid_w};
    const auto va = direct.encode_image(px), vb = packed.encode_image(px);
    CHECK(std::equal(va.begin(), va.end(), vb.begin()));
    const auto ids = golden_ids();
    auto ca = direct.context(128);
    auto cb = packed.context(128);
    const auto la = ca.prefill(ids, {&va, 1}, {&grid, 1});
    const auto lb = cb.prefill(ids, {&vb, 1}, {&grid, 1});
    CHECK(std::equal(la.begin(), la.end(), lb.begin()));
    CHECK_ERROR_HAS(Model<presets::Qwen2VL<F32>>::load(out.path.string()), "packed int8", "int8 weight policy");
    CHECK_ERROR_HAS(Model<presets::Qwen2VL<Int8PerGroup<32>>>::load(out.path.string()), "quantised with group 0");
    CHECK_ERROR_HAS(quantize_checkpoint(out.path.string(), (out / "again")), "already quantised");
}

TEST_CASE("a preset whose static sizes disagree with config.json is refused") {
    CHECK_ERROR_HAS(Model<presets::MinerU25<F32>>::load(golden), "config.json", "vision depth is 2", "fixes it at 32");
}


TEST_CASE("config.json and preprocessor_config.json: values of the wrong type are refused naming the field") {
    // Found by tests/fuzz/fuzz_config.cpp: these escaped as nlohmann::json type errors (a crash in a
    // program that catches docvlm::Error only); the inputs are in tests/fuzz/corpus/config/.
    test::TempDir dir;
    const nlohmann::json base = nlohmann::json::parse(std::ifstream(golden + "/config.json"));
    auto write = [&](const nlohmann::json& j) {
        std::ofstream(dir / "config.json") << j.dump();
        return dir / "config.json";
    };
    CHECK_NOTHROW(Qwen2VLDims::from_config_json(write(base)));
    nlohmann::json j = base;
    j["tie_word_embeddings"] = 3;
    CHECK_ERROR_HAS(Qwen2VLDims::from_config_json(write(j)), "config.json", "'tie_word_embeddings' must be true or false");
    j = base;
    (j.contains("text_config") ? j["text_config"] : j)["rope_scaling"]["mrope_section"] = {"a", 1, 2};
    CHECK_ERROR_HAS(Qwen2VLDims::from_config_json(write(j)), "mrope_section holds \"a\"");
    std::ofstream(dir / "preprocessor_config.json") << R"({"do_resize": "x"})";
    CHECK_ERROR_HAS(io::Qwen2VLImageConfig::from_json(dir / "preprocessor_config.json"), "preprocessor_config.json",
                    "'do_resize' must be true or false");
    // an integer field beyond int (float -> int overflow was undefined behaviour; UBSan in fuzz_config)
    std::ofstream(dir / "preprocessor_config.json") << R"({"merge_size": 1.48627e10})";
    CHECK_ERROR_HAS(io::Qwen2VLImageConfig::from_json(dir / "preprocessor_config.json"), "'merge_size'", "out of range");
}

TEST_CASE("docvlm info tells MinerU2.5-2509 from MinerU2.5-Pro by where config.json keeps the decoder's fields") {
    // The two releases share the network (shared/MINERU25.md §9): 2509 writes the decoder's sizes at
    // the top level, Pro-2604/2605 inside text_config (without a top-level tie flag).
    test::TempDir dir;
    auto dims = [&](const nlohmann::json& j) {
        std::ofstream(dir / "config.json") << j.dump();
        return Qwen2VLDims::from_config_json(dir / "config.json");
    };
    const nlohmann::json decoder = {{"num_hidden_layers", 24}, {"hidden_size", 896}, {"num_attention_heads", 14},
                                    {"num_key_value_heads", 2}, {"intermediate_size", 4864}, {"vocab_size", 151936},
                                    {"rope_scaling", {{"type", "mrope"}, {"mrope_section", {8, 12, 12}}}}};
    const nlohmann::json vision = {{"depth", 32}, {"embed_dim", 1280}, {"num_heads", 16}, {"hidden_size", 896}};
    nlohmann::json v2509 = decoder;
    v2509["vision_config"] = vision;
    v2509["tie_word_embeddings"] = true;
    nlohmann::json pro = {{"vision_config", vision}, {"text_config", decoder}};
    pro["text_config"]["tie_word_embeddings"] = true;
    CHECK(mineru_release(dims(v2509)) == "MinerU2.5-2509");
    CHECK(mineru_release(dims(pro)) == "MinerU2.5-Pro");
    CHECK(dims(pro).tie_embeddings);
    CHECK(mineru_release(Qwen2VLDims::from_config_json(golden + "/config.json")).empty());  // the tiny random model
    v2509["num_hidden_layers"] = 28;  // Qwen2-VL-2B-sized decoder: not MinerU2.5
    v2509["hidden_size"] = 1536;
    v2509["num_attention_heads"] = 12;
    v2509["vision_config"]["hidden_size"] = 1536;
    v2509["rope_scaling"]["mrope_section"] = {16, 24, 24};
    CHECK(mineru_release(dims(v2509)).empty());
}

}  // TEST_SUITE
