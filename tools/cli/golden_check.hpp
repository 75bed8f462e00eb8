// tools/cli/golden_check.hpp — `docvlm golden-check`: checks a checkpoint against reference tensors computed by
// Hugging Face transformers (the layout of tests/data/golden/*: config.json, weights, input.png,
// input_ids.npy and the *.npy tensors its README lists). The family comes from config.json's
// model_type: "llava" → LLaVA-1.5, "qwen" → Qwen-VL, anything else → the Qwen2-VL family.
//
// Runs docvlm's preprocessing, positions, vision tower, decoder and greedy generation with the
// dynamic F32 preset and compares every reference file present. Tolerances: pixel values 1e-5
// absolute; tensors 1e-4 of the tensor's largest magnitude; ids and positions exact.
//
// With a device (backend::make_backend), the vision tower's blocks and the decoder run there (the
// model's to_device): their inner tensors are then not seen, and the tower's output (after the
// connector), the logits, the step logits and the greedy ids prove them.
#pragma once

#include <docvlm/backend/backend.hpp>
#include <docvlm/io/clip_processor.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/io/image_processor.hpp>
#include <docvlm/io/json.hpp>
#include <docvlm/model/model.hpp>
#include <docvlm/presets/llava15.hpp>
#include <docvlm/presets/qwen2vl.hpp>
#include <docvlm/presets/qwen_vl.hpp>

#include <xtensor/xnpy.hpp>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// One comparison of golden_check().
struct GoldenResult {
    std::string name;
    double max_abs_error = 0, scale = 0;  ///< scale: the reference's largest magnitude
    bool passed = false;
    std::string note;
};

/// Compares everything in `dir`; calls `report` for each check as it completes. Returns true when
/// every check passed. Throws docvlm::Error when the folder lacks what the check needs.
bool golden_check(const std::string& dir, const std::function<void(const GoldenResult&)>& report,
                  std::shared_ptr<backend::Backend> device = nullptr);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {

struct GoldenDir {
    std::string dir;
    std::function<void(const GoldenResult&)> report;
    std::shared_ptr<backend::Backend> device;  // null: the CPU kernels
    bool all = true;

    bool has(const std::string& f) const { return std::filesystem::exists(std::filesystem::path(dir) / f); }
    std::string path(const std::string& f) const { return (std::filesystem::path(dir) / f).string(); }
    template <class T>
    xt::xarray<T> load(const std::string& f) const {
        if (!has(f)) fail(dir, ": missing ", f);
        try {
            return xt::load_npy<T>(path(f));
        } catch (const std::exception& e) {
            fail(dir, "/", f, ": cannot read as .npy of the expected type: ", e.what());
        }
    }
    void put(const GoldenResult& r) {
        all = all && r.passed;
        if (report) report(r);
    }
    /// Float comparison with an optional [1, heads, seq, d] -> [seq, heads · d] reordering.
    void compare(const std::string& name, const float* got, std::size_t n, const std::string& file, double tol, bool relative,
                 std::size_t heads = 0, std::size_t offset = 0) {
        GoldenResult r{name, 0, 0, false, ""};
        auto want = load<float>(file);
        std::vector<float> w(want.begin(), want.end());
        if (heads && want.dimension() == 4) {
            const std::size_t d = want.shape()[3], seq = want.shape()[2];
            for (std::size_t h = 0; h < heads; ++h)
                for (std::size_t s = 0; s < seq; ++s)
                    for (std::size_t t = 0; t < d; ++t) w[s * heads * d + h * d + t] = want(0, h, s, t);
        }
        if (offset + n > w.size()) {
            r.note = "size mismatch: docvlm has " + std::to_string(n) + " values, the reference " + std::to_string(w.size());
            put(r);
            return;
        }
        for (std::size_t i = 0; i < n; ++i) {
            const double e = std::fabs(double(got[i]) - w[offset + i]);
            // a NaN error (NaN or infinity on either side) fails the tensor: std::max would skip it
            r.max_abs_error = std::isnan(e) || std::isnan(r.max_abs_error) ? std::numeric_limits<double>::quiet_NaN()
                                                                            : std::max(r.max_abs_error, e);
            r.scale = std::max(r.scale, std::fabs(double(w[offset + i])));
        }
        r.passed = r.max_abs_error <= (relative ? tol * r.scale : tol);
        put(r);
    }
    /// Every traced tensor that has a reference file of the same name.
    void compare_traced(const std::map<std::string, std::vector<float>>& seen) {
        for (const auto& [name, got] : seen)
            if (has(name + ".npy") && name.find("_rot") == std::string::npos) compare(name, got.data(), got.size(), name + ".npy", 1e-4, true);
    }
    /// max |a - reference| over a reference file (infinity when it is absent or differs in size).
    double distance(const std::vector<float>& a, const std::string& file) const {
        if (!has(file)) return std::numeric_limits<double>::infinity();
        auto want = load<float>(file);
        if (want.size() != a.size()) return std::numeric_limits<double>::infinity();
        double e = 0;
        for (std::size_t i = 0; i < a.size(); ++i) e = std::max(e, std::fabs(double(a[i]) - want.data()[i]));
        return e;
    }
    /// Greedy generation with the KV cache against generated_ids (and generated_step_logits).
    template <class Context>
    void check_generation(Context&& gen, std::span<const std::int32_t> ids, std::span<const Tensor<float, 2>> images,
                          std::span<const ImageGrid> grids) {
        if (!has("generated_ids.npy")) return;
        auto want = load<std::int64_t>("generated_ids.npy");
        const std::size_t steps = want.size();
        std::span<const float> l = gen.prefill(ids, images, grids);
        std::vector<float> all_logits;
        std::vector<std::int32_t> got;
        for (std::size_t s = 0; s < steps; ++s) {
            all_logits.insert(all_logits.end(), l.begin(), l.end());
            got.push_back(std::int32_t(std::max_element(l.begin(), l.end()) - l.begin()));
            if (s + 1 < steps) l = gen.decode_step(got.back());
        }
        if (has("generated_step_logits.npy"))
            compare("generated_step_logits", all_logits.data(), all_logits.size(), "generated_step_logits.npy", 1e-4, true);
        bool same = got.size() == want.size();
        for (std::size_t i = 0; same && i < got.size(); ++i) same = got[i] == want.data()[i];
        std::string note;
        for (std::int32_t t : got) note += std::to_string(t) + " ";
        put({"generated_ids", 0, 0, same, "docvlm: " + note});
    }
    /// decoder_layer_outputs.npy [layers, seq, hidden], or hidden_states.npy ([0] embeddings,
    /// [i] the output of layer i-1; its last entry is the final norm's, so the last layer is
    /// compared through decoder_layer_outputs only).
    void compare_layers(std::map<std::string, std::vector<float>>& seen, std::size_t layers) {
        if (device) return;  // a device decoder traces no layer
        for (std::size_t l = 0; l < layers; ++l) {
            const auto& got = seen["dec_layer_out_" + std::to_string(l)];
            if (has("decoder_layer_outputs.npy"))
                compare("decoder_layer_" + std::to_string(l), got.data(), got.size(), "decoder_layer_outputs.npy", 1e-4, true, 0, l * got.size());
            else if (has("hidden_states.npy") && l + 1 < layers)
                compare("decoder_layer_" + std::to_string(l), got.data(), got.size(), "hidden_states.npy", 1e-4, true, 0, (l + 1) * got.size());
        }
    }
};

using Recorded = std::map<std::string, std::vector<float>>;
inline Trace recorder(Recorded& seen) {
    return [&seen](std::string_view name, const float* p, std::size_t r, std::size_t c) { seen[std::string(name)].assign(p, p + r * c); };
}

inline std::size_t golden_steps(const GoldenDir& g) { return g.has("generated_ids.npy") ? g.load<std::int64_t>("generated_ids.npy").size() : 0; }

inline std::vector<std::int32_t> golden_ids(const GoldenDir& g) {
    auto ids64 = g.load<std::int64_t>("input_ids.npy");
    return {ids64.begin(), ids64.end()};
}

inline void golden_check_qwen2vl(GoldenDir& g) {
    using M = Model<presets::Qwen2VL<F32>>;
    M model = M::load(g.dir);
    if (g.device) model.to_device(g.device);
    const Qwen2VLDims& d = model.dims();
    const io::PixelValues px = io::preprocess_qwen2vl(io::load_image(g.path("input.png")), model.image_config());
    if (g.has("pixel_values.npy")) g.compare("pixel_values", px.patches.data(), px.patches.size(), "pixel_values.npy", 1e-5, false);
    if (g.has("image_grid_thw.npy")) {
        auto grid = g.load<std::int64_t>("image_grid_thw.npy");
        const bool ok = grid.size() == 3 && grid(0, 0) == px.grid_t && grid(0, 1) == px.grid_h && grid(0, 2) == px.grid_w;
        g.put({"image_grid_thw", 0, 0, ok, ok ? "" : "grid differs"});
    }
    Recorded seen;
    const Tensor<float, 2> vision = model.encode_image(px, recorder(seen));
    const ImageGrid grid{px.grid_t, px.grid_h, px.grid_w};
    const std::vector<std::int32_t> ids = golden_ids(g);
    const RopePositions rp = model.positions(ids, std::span(&grid, 1));
    if (g.has("position_ids.npy")) {
        auto pos = g.load<std::int64_t>("position_ids.npy");
        bool ok = pos.size() == 3 * ids.size();
        for (std::size_t a = 0; ok && a < 3; ++a)
            for (std::size_t i = 0; i < ids.size(); ++i) ok = ok && rp.pos[a][i] == pos.data()[a * ids.size() + i];
        if (g.has("rope_deltas.npy")) ok = ok && g.load<std::int64_t>("rope_deltas.npy").data()[0] == rp.delta;
        g.put({"position_ids", 0, 0, ok, ok ? "" : "positions differ"});
    }
    // Which positions did the reference forward() use? transformers 4.46's plain forward numbers
    // the tokens 0..n-1 on every axis; later versions use get_rope_index. Run both and keep the
    // one whose logits (else final hidden states) are nearer the reference's.
    const RopePositions plain = plain_positions(ids.size());
    auto run = [&](const RopePositions& p, Recorded& rec) {
        auto ctx = model.context(ids.size() + 8);
        ctx.prefill(ids, {&vision, 1}, {&grid, 1}, p, recorder(rec), true);
    };
    Recorded with_plain = seen, with_index = seen;
    run(plain, with_plain), run(rp, with_index);
    const char* probe = g.has("logits.npy") ? "logits" : "final_hidden";
    const bool use_plain = g.distance(with_plain[probe], std::string(probe) + ".npy") < g.distance(with_index[probe], std::string(probe) + ".npy");
    seen = use_plain ? with_plain : with_index;
    g.put({"forward_positions", 0, 0, true,
           use_plain ? "forward positions: 0..n-1 on all axes (transformers' forward() without position_ids)" : "forward positions: get_rope_index"});
    g.compare_traced(seen);
    if (g.has("dec_l0_q_rot.npy") && !g.device) g.compare("dec_l0_q_rot", seen["dec_l0_q_rot"].data(), seen["dec_l0_q_rot"].size(), "dec_l0_q_rot.npy", 1e-4, true, d.heads);
    if (g.has("dec_l0_k_rot.npy") && !g.device) g.compare("dec_l0_k_rot", seen["dec_l0_k_rot"].data(), seen["dec_l0_k_rot"].size(), "dec_l0_k_rot.npy", 1e-4, true, d.kv_heads);
    if (g.has("vision_block_outputs.npy") && !g.device)  // a device tower traces no block
        for (std::size_t b = 0; b < d.v_depth; ++b) {
            const auto& got = seen["vision_block_out_" + std::to_string(b)];
            g.compare("vision_block_" + std::to_string(b), got.data(), got.size(), "vision_block_outputs.npy", 1e-4, true, 0, b * got.size());
        }
    g.compare_layers(seen, d.layers);
    g.check_generation(model.context(ids.size() + golden_steps(g) + 1), ids, {&vision, 1}, {&grid, 1});
}

inline void golden_check_llava(GoldenDir& g) {
    using M = Model<presets::Llava15<F32>>;
    M model = M::load(g.dir);
    if (g.device) model.to_device(g.device);
    const io::Image img = io::load_image(g.path("input.png"));
    const Tensor<float, 3> px = io::preprocess_clip(img, model.image_config());
    if (g.has("pixel_values.npy")) g.compare("pixel_values", px.data(), px.size(), "pixel_values.npy", 1e-5, false);
    Recorded seen;
    const Tensor<float, 2> vision = model.encode_image(px, recorder(seen));
    const std::vector<std::int32_t> ids = golden_ids(g);
    auto ctx = model.context(ids.size() + 8);
    ctx.prefill(ids, {&vision, 1}, {}, recorder(seen), true);
    g.compare_traced(seen);
    const auto& t = model.dims().text;
    if (g.has("dec_l0_q_rot.npy") && !g.device) g.compare("dec_l0_q_rot", seen["dec_l0_q_rot"].data(), seen["dec_l0_q_rot"].size(), "dec_l0_q_rot.npy", 1e-4, true, t.heads);
    if (g.has("dec_l0_k_rot.npy") && !g.device) g.compare("dec_l0_k_rot", seen["dec_l0_k_rot"].data(), seen["dec_l0_k_rot"].size(), "dec_l0_k_rot.npy", 1e-4, true, t.kv_heads);
    g.compare_layers(seen, t.layers);
    g.check_generation(model.context(ids.size() + golden_steps(g) + 1), ids, {&vision, 1}, {});
}

// Qwen-VL's reference files are named after the reference code's modules: docvlm's trace name → file.
inline constexpr std::pair<const char*, const char*> qwenvl_names[] = {
    {"vision_patch_embeds", "vision_patch_embeds"}, {"vision_pos_embed", "vision_pos_embed"}, {"vision_ln_pre", "vision_ln_pre"},
    {"vision_blk0_layer_norm1", "vision_blk0_ln_1"}, {"vision_blk0_q_proj", "vision_blk0_q"}, {"vision_blk0_k_proj", "vision_blk0_k"},
    {"vision_blk0_v_proj", "vision_blk0_v"}, {"vision_blk0_attn_context", "vision_blk0_attn_context"},
    {"vision_blk0_out_proj", "vision_blk0_attn_out"}, {"vision_blk0_layer_norm2", "vision_blk0_ln_2"}, {"vision_blk0_fc1", "vision_blk0_c_fc"},
    {"vision_blk0_act", "vision_blk0_gelu"}, {"vision_blk0_fc2", "vision_blk0_c_proj"}, {"resampler_kv_proj", "resampler_kv_proj"},
    {"resampler_ln_kv", "resampler_ln_kv"}, {"resampler_k_pos", "resampler_k_pos"}, {"resampler_query_in", "resampler_attn_query_in"},
    {"resampler_key_in", "resampler_attn_key_in"}, {"resampler_out", "resampler_out"}, {"vision_ln_post", "vision_ln_post"},
    {"image_features", "image_features"}, {"inputs_embeds", "inputs_embeds"}, {"dec_l0_input_layernorm", "dec_l0_ln_1"},
    {"dec_l0_q_proj", "dec_l0_q"}, {"dec_l0_k_proj", "dec_l0_k"}, {"dec_l0_v_proj", "dec_l0_v"}, {"dec_l0_q_rot", "dec_l0_q_rot"},
    {"dec_l0_k_rot", "dec_l0_k_rot"}, {"dec_l0_attn_context", "dec_l0_attn_context"}, {"dec_l0_attn_out", "dec_l0_attn_out"},
    {"dec_l0_post_attention_layernorm", "dec_l0_ln_2"}, {"dec_l0_up_proj", "dec_l0_w1"}, {"dec_l0_gate_proj", "dec_l0_w2"},
    {"dec_l0_down_proj", "dec_l0_mlp_out"}, {"dec_l0_out", "dec_l0_out"}, {"final_hidden", "final_hidden"}, {"logits", "logits"}};

inline void golden_check_qwenvl(GoldenDir& g) {
    using M = Model<presets::QwenVL<F32>>;
    M model = M::load(g.dir);
    if (g.device) model.to_device(g.device);
    const io::Image img = io::load_image(g.path("input.png"));
    const Tensor<float, 3> px = io::preprocess_square(img, model.image_size());
    if (g.has("pixel_values.npy")) g.compare("pixel_values", px.data(), px.size(), "pixel_values.npy", 1e-5, false);
    Recorded seen;
    const Tensor<float, 2> vision = model.encode_image(px, recorder(seen));
    const std::vector<std::int32_t> ids = model.pad_image_spans(golden_ids(g));  // the path's bytes in <img></img> become pads
    auto ctx = model.context(ids.size() + 8);
    ctx.prefill(ids, {&vision, 1}, {}, recorder(seen), true);
    for (const auto& [ours, file] : qwenvl_names)
        if (g.has(std::string(file) + ".npy") && (!g.device || seen.count(ours))) g.compare(ours, seen[ours].data(), seen[ours].size(), std::string(file) + ".npy", 1e-4, true);
    if (g.has("dec_l0_act.npy") && !g.device) {  // QWenMLP's product w1(x) · silu(w2(x))
        std::vector<float> product = seen["dec_l0_act"];
        for (std::size_t i = 0; i < product.size(); ++i) product[i] *= seen["dec_l0_up_proj"][i];
        g.compare("dec_l0_w1_silu_w2", product.data(), product.size(), "dec_l0_act.npy", 1e-4, true);
    }
    if (g.has("dec_rope_cos.npy"))  // the reference's table also covers the decoding steps: the prompt's rows first
        g.compare("dec_rope_cos", seen["dec_rope_cos"].data(), seen["dec_rope_cos"].size(), "dec_rope_cos.npy", 1e-5, false);
    if (g.has("vision_block_outputs.npy") && !g.device)  // a device tower traces no block
        for (std::size_t b = 0; b < model.dims().v_layers; ++b) {
            const auto& got = seen["vision_block_out_" + std::to_string(b)];
            g.compare("vision_block_" + std::to_string(b), got.data(), got.size(), "vision_block_outputs.npy", 1e-4, true, 0, b * got.size());
        }
    g.compare_layers(seen, model.dims().text.layers);
    g.check_generation(model.context(ids.size() + golden_steps(g) + 1), ids, {&vision, 1}, {});
}

}  // namespace detail

inline bool golden_check(const std::string& dir, const std::function<void(const GoldenResult&)>& report,
                         std::shared_ptr<backend::Backend> device) {
    detail::GoldenDir g{dir, report, std::move(device)};
    const nlohmann::json cfg = io::read_json_file(g.path("config.json"));
    const std::string type = cfg.is_object() ? io::json_string(cfg, "model_type", "", g.path("config.json")) : "";
    if (type == "llava") detail::golden_check_llava(g);
    else if (type == "qwen") detail::golden_check_qwenvl(g);
    else detail::golden_check_qwen2vl(g);
    return g.all;
}

DOCVLM_NAMESPACE_END
