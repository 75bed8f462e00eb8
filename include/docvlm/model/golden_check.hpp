// docvlm/model/golden_check.hpp — checks a Qwen2-VL-family checkpoint against reference tensors
// computed by Hugging Face transformers (the layout of tests/data/golden/qwen2vl-tiny-a: config,
// weights, input.png, input_ids.npy and the *.npy tensors its README lists).
//
// Runs docvlm's preprocessing, rope positions, vision tower, decoder and greedy generation with
// the dynamic F32 preset and compares every reference file present. Tolerances: pixel values
// 1e-5 absolute; tensors 1e-4 of the tensor's largest magnitude; ids and positions exact.
#pragma once

#include <docvlm/io/image.hpp>
#include <docvlm/io/image_processor.hpp>
#include <docvlm/model/model.hpp>
#include <docvlm/presets/qwen2vl.hpp>

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
bool golden_check(const std::string& dir, const std::function<void(const GoldenResult&)>& report);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {

struct GoldenDir {
    std::string dir;
    bool has(const std::string& f) const { return std::filesystem::exists(std::filesystem::path(dir) / f); }
    template <class T>
    xt::xarray<T> load(const std::string& f) const {
        if (!has(f)) fail(dir, ": missing ", f);
        try {
            return xt::load_npy<T>((std::filesystem::path(dir) / f).string());
        } catch (const std::exception& e) {
            fail(dir, "/", f, ": cannot read as .npy of the expected type: ", e.what());
        }
    }
};

}  // namespace detail

inline bool golden_check(const std::string& dir, const std::function<void(const GoldenResult&)>& report) {
    using M = Model<presets::Qwen2VL<F32>>;
    const detail::GoldenDir g{dir};
    bool all = true;
    auto put = [&](GoldenResult r) {
        all = all && r.passed;
        if (report) report(r);
    };
    // float comparison with an optional [1, heads, seq, d] -> [seq, heads * d] reordering
    auto compare = [&](const std::string& name, const float* got, std::size_t n, const std::string& file, double tol,
                       bool relative, std::size_t heads = 0, std::size_t offset = 0) {
        GoldenResult r{name, 0, 0, false, ""};
        auto want = g.load<float>(file);
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
    };

    const M model = M::load(dir);
    const Qwen2VLDims& d = model.dims();
    const io::Image img = io::load_image((std::filesystem::path(dir) / "input.png").string());
    const io::PixelValues px = io::preprocess_qwen2vl(img, model.image_config());
    if (g.has("pixel_values.npy")) compare("pixel_values", px.patches.data(), px.patches.size(), "pixel_values.npy", 1e-5, false);
    if (g.has("image_grid_thw.npy")) {
        auto grid = g.load<std::int64_t>("image_grid_thw.npy");
        const bool ok = grid.size() == 3 && grid(0, 0) == px.grid_t && grid(0, 1) == px.grid_h && grid(0, 2) == px.grid_w;
        put({"image_grid_thw", 0, 0, ok, ok ? "" : "grid differs"});
    }
    std::map<std::string, std::vector<float>> seen;
    const Trace rec = [&](std::string_view name, const float* p, std::size_t r, std::size_t c) { seen[std::string(name)].assign(p, p + r * c); };
    const Tensor<float, 2> vision = model.encode_image(px, rec);
    const ImageGrid grid{px.grid_t, px.grid_h, px.grid_w};
    auto ids64 = g.load<std::int64_t>("input_ids.npy");
    const std::vector<std::int32_t> ids(ids64.begin(), ids64.end());
    const RopePositions rp = rope_index(ids, d.image_token_id, std::span(&grid, 1), int(d.merge));
    if (g.has("position_ids.npy")) {
        auto pos = g.load<std::int64_t>("position_ids.npy");
        bool ok = pos.size() == 3 * ids.size();
        for (std::size_t a = 0; ok && a < 3; ++a)
            for (std::size_t i = 0; i < ids.size(); ++i) ok = ok && rp.pos[a][i] == pos.data()[a * ids.size() + i];
        if (g.has("rope_deltas.npy")) ok = ok && g.load<std::int64_t>("rope_deltas.npy").data()[0] == rp.delta;
        put({"position_ids", 0, 0, ok, ok ? "" : "positions differ"});
    }
    // Which positions did the reference forward() use? Hugging Face 4.46's plain forward numbers
    // the tokens 0..n-1 on every axis; later versions use get_rope_index. Pick the one whose
    // rope table matches the reference, if it has one.
    RopePositions plain;
    for (auto& a : plain.pos)
        for (std::size_t i = 0; i < ids.size(); ++i) a.push_back(std::int64_t(i));
    RopePositions fwd_pos = rp;
    std::string pos_note = "forward positions: get_rope_index";
    if (g.has("dec_rope_cos_mrope.npy")) {
        auto ref = g.load<float>("dec_rope_cos_mrope.npy");
        const auto inv = rope_inv_freq(d.head_dim, d.rope_theta);
        auto err_for = [&](const RopePositions& p) {
            RopeTable t;
            mrope_fill(t, {p.pos[0].data(), p.pos[1].data(), p.pos[2].data()}, ids.size(), inv, d.mrope_section);
            double e = 0;
            for (std::size_t i = 0; i < t.cos.size() && i < ref.size(); ++i) e = std::max(e, std::fabs(double(t.cos[i]) - ref.data()[i]));
            return e;
        };
        if (err_for(plain) < err_for(rp)) {
            fwd_pos = plain;
            pos_note = "forward positions: 0..n-1 on all axes (Hugging Face forward() without position_ids)";
        }
    }
    auto ctx = model.context(ids.size() + 8);
    ctx.prefill(ids, {&vision, 1}, {&grid, 1}, fwd_pos, rec, true);
    put({"forward_positions", 0, 0, true, pos_note});

    for (const char* cname : {"vision_patch_embed", "vision_rotary_freqs", "vision_blk0_norm1", "vision_blk0_qkv", "vision_blk0_q_rot",
                              "vision_blk0_k_rot", "vision_blk0_attn_context", "vision_blk0_attn_out", "vision_blk0_norm2",
                              "vision_blk0_fc1", "vision_blk0_act", "vision_blk0_fc2", "vision_blk0_out", "vision_merger_ln_q",
                              "vision_output", "inputs_embeds", "dec_rope_cos_mrope", "dec_rope_sin_mrope", "dec_l0_input_layernorm",
                              "dec_l0_q_proj", "dec_l0_k_proj", "dec_l0_v_proj", "dec_l0_attn_context", "dec_l0_attn_out",
                              "dec_l0_post_attention_layernorm", "dec_l0_gate_proj", "dec_l0_up_proj", "dec_l0_act",
                              "dec_l0_down_proj", "dec_l0_out", "final_hidden", "logits"}) {
        const std::string name = cname;
        if (!g.has(name + ".npy")) continue;
        const auto& got = seen[name];
        compare(name, got.data(), got.size(), name + ".npy", 1e-4, true);
    }
    if (g.has("dec_l0_q_rot.npy")) compare("dec_l0_q_rot", seen["dec_l0_q_rot"].data(), seen["dec_l0_q_rot"].size(), "dec_l0_q_rot.npy", 1e-4, true, d.heads);
    if (g.has("dec_l0_k_rot.npy")) compare("dec_l0_k_rot", seen["dec_l0_k_rot"].data(), seen["dec_l0_k_rot"].size(), "dec_l0_k_rot.npy", 1e-4, true, d.kv_heads);
    if (g.has("vision_block_outputs.npy"))
        for (std::size_t b = 0; b < d.v_depth; ++b) {
            const auto& got = seen["vision_block_out_" + std::to_string(b)];
            compare("vision_block_" + std::to_string(b), got.data(), got.size(), "vision_block_outputs.npy", 1e-4, true, 0, b * got.size());
        }
    if (g.has("hidden_states.npy"))  // [0] embeddings, [i] layer i-1 output, [layers] final norm output
        for (std::size_t l = 0; l + 1 < d.layers; ++l) {
            const auto& got = seen["dec_layer_out_" + std::to_string(l)];
            compare("decoder_layer_" + std::to_string(l), got.data(), got.size(), "hidden_states.npy", 1e-4, true, 0, (l + 1) * got.size());
        }

    // Greedy generation with the KV cache and get_rope_index positions.
    if (g.has("generated_ids.npy")) {
        auto want = g.load<std::int64_t>("generated_ids.npy");
        const std::size_t steps = want.size();
        auto gen = model.context(ids.size() + steps + 1);
        std::span<const float> l = gen.prefill(ids, {&vision, 1}, {&grid, 1});
        std::vector<float> all_logits;
        std::vector<std::int32_t> got;
        for (std::size_t s = 0; s < steps; ++s) {
            all_logits.insert(all_logits.end(), l.begin(), l.end());
            got.push_back(std::int32_t(std::max_element(l.begin(), l.end()) - l.begin()));
            if (s + 1 < steps) l = gen.decode_step(got.back());
        }
        if (g.has("generated_step_logits.npy"))
            compare("generated_step_logits", all_logits.data(), all_logits.size(), "generated_step_logits.npy", 1e-4, true);
        bool same = got.size() == want.size();
        for (std::size_t i = 0; same && i < got.size(); ++i) same = got[i] == want.data()[i];
        std::string note;
        for (std::int32_t t : got) note += std::to_string(t) + " ";
        put({"generated_ids", 0, 0, same, "docvlm: " + note});
    }
    return all;
}

DOCVLM_NAMESPACE_END
