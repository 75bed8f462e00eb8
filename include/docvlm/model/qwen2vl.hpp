// docvlm/model/qwen2vl.hpp — the Qwen2-VL family (MinerU2.5, Qwen2-VL-2B, test checkpoints):
// NaViT vision tower with 2D rope and a 2x2 patch merger, token-concatenation fusion, Qwen2
// decoder with M-RoPE, computed exactly as Hugging Face transformers' Qwen2VLForConditionalGeneration.
//
//   auto model = Qwen2VLModel<presets::Qwen2VL<Int8PerChannel>>::load("MinerU2.5-2509-1.2B");
//   io::PixelValues px = io::preprocess_qwen2vl(image, model.image_config());
//   Tensor<float, 2> vision = model.encode_image(px);            // [tokens, hidden]
//   auto ctx = model.context(4096);                               // KV cache for 4096 tokens
//   std::span<const float> logits = ctx.prefill(ids, {&vision, 1}, {&grid, 1});
//
// Loading reads config.json (sizes declared `dynamic` in the Config come from it; static ones
// must agree), preprocessor_config.json, and the weights under either naming scheme
// (`visual.*` / `model.*` / `lm_head.weight`, or `model.visual.*` / `model.language_model.*`).
// A Trace callback, when set, sees every intermediate tensor under the names of Hugging Face's
// goldens (vision_blk0_qkv, dec_l0_q_proj, logits, ...). The vision blocks are layers/vit_block.hpp's
// (fused q | k | v, 2D rope), the decoder model/decoder.hpp's, the decoding loops model/generator.hpp's.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/dtype.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/core/trace.hpp>
#include <docvlm/io/image_processor.hpp>
#include <docvlm/io/json.hpp>
#include <docvlm/io/safetensors.hpp>
#include <docvlm/kernels/activations.hpp>
#include <docvlm/kernels/attention.hpp>
#include <docvlm/kernels/ops.hpp>
#include <docvlm/layers/linear.hpp>
#include <docvlm/layers/norm.hpp>
#include <docvlm/layers/patch_embed.hpp>
#include <docvlm/layers/projector.hpp>
#include <docvlm/layers/rope.hpp>
#include <docvlm/layers/vit_block.hpp>
#include <docvlm/model/config.hpp>
#include <docvlm/model/decoder.hpp>
#include <docvlm/model/rope_index.hpp>
#include <docvlm/model/token_concat.hpp>
#include <docvlm/model/weights.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// Every size of a Qwen2-VL-family checkpoint, as read from config.json.
struct Qwen2VLDims {
    // vision tower
    std::size_t v_depth = 0, v_dim = 0, v_heads = 0, v_mlp = 0, patch = 14, temporal_patch = 2, merge = 2, in_channels = 3;
    // decoder
    std::size_t layers = 0, hidden = 0, heads = 0, kv_heads = 0, head_dim = 0, mlp = 0, vocab = 0, max_positions = 32768;
    float rms_eps = 1e-6f, rope_theta = 1e6f;
    std::array<int, 3> mrope_section{16, 24, 24};
    bool tie_embeddings = true;
    bool text_config = false;  ///< the decoder's fields were nested in "text_config" (newer files)
    std::int32_t image_token_id = 151655, vision_start_token_id = 151652, vision_end_token_id = 151653, eos_token_id = 151645;

    static Qwen2VLDims from_config_json(const std::string& path);
    std::size_t v_head_dim() const { return v_dim / v_heads; }
    std::size_t merged_dim() const { return v_dim * merge * merge; }
};

template <class Config>
class Qwen2VLModel {
    static_assert(check_model_config<Config>());
    static_assert(std::is_same_v<typename Config::fusion, TokenConcat>, "Qwen2VLModel: the Qwen2-VL family fuses by TokenConcat");
    static_assert(std::is_same_v<typename Config::vision::position, Rope2D>, "Qwen2VLModel: the vision tower uses Rope2D");
    static_assert(std::is_same_v<typename Config::vision::attention, FullAttention>,
                  "Qwen2VLModel: the Qwen2-VL vision tower attends with FullAttention (its weights know no window)");
    static_assert(std::is_same_v<typename Config::text::attention, CausalAttention>, "Qwen2VLModel: the decoder is CausalAttention");
    static_assert(detail::is_mrope<typename Config::text::position>::value, "Qwen2VLModel: the decoder uses MRope<t, h, w>");
    using W = typename Config::weights;

public:
    using Weights = W;
    using Context = TokenConcatContext<Qwen2VLModel>;

    /// Loads a checkpoint directory (config.json, preprocessor_config.json, safetensors).
    static Qwen2VLModel load(const std::string& dir);

    const Qwen2VLDims& dims() const { return d_; }
    const io::Qwen2VLImageConfig& image_config() const { return image_cfg_; }

    /// Vision embeddings [grid_t · grid_h · grid_w / merge², hidden] of one preprocessed image.
    Tensor<float, 2> encode_image(const io::PixelValues& px, const Trace& trace = {}) const;

    /// A generation context with a KV cache for `max_tokens` tokens (prompt + output). Many
    /// contexts may share one model, one per thread.
    Context context(std::size_t max_tokens) const { return Context(*this, max_tokens); }

    /// Several requests at once (token_concat_generate_batch).
    std::vector<std::vector<std::int32_t>> generate_batch(std::span<const BatchRequest> requests, GenerationStats* stats = nullptr) const {
        return token_concat_generate_batch(*this, requests, stats);
    }

    // The family's side of TokenConcatContext.
    const Decoder<W>& decoder() const { return dec_; }
    /// Runs the vision tower's blocks and the text decoder on a Backend from now on (e.g.
    /// backend::make_backend("cuda")): contexts made afterwards keep their KV caches there. The
    /// patch embedding and the connector stay on the CPU.
    void to_device(std::shared_ptr<backend::Backend> be) { vision_.to_device(be); dec_.to_device(std::move(be)); }
    std::int32_t image_token() const { return d_.image_token_id; }
    std::size_t max_positions() const { return d_.max_positions; }
    /// M-RoPE positions of a prompt (rope_index).
    RopePositions positions(std::span<const std::int32_t> ids, std::span<const ImageGrid> grids) const {
        return rope_index(ids, d_.image_token_id, grids, int(d_.merge));
    }
    /// M-RoPE rows of n tokens at pos[axis][i]; traced as dec_rope_cos_mrope / dec_rope_sin_mrope.
    void rope(RopeTable& t, const std::int64_t* const* pos, std::size_t n, const Trace& trace) const {
        mrope_fill(t, {pos[0], pos[1], pos[2]}, n, rope_inv_freq_, d_.mrope_section);
        detail::emit(trace, "dec_rope_cos_mrope", t.cos.data(), n, d_.head_dim);
        detail::emit(trace, "dec_rope_sin_mrope", t.sin.data(), n, d_.head_dim);
    }

private:
    using VisionStack = ViTStack<W, typename Config::vision::attention, typename Config::vision::position>;
    // The tower's attention: bf16 inputs (float sums) unless the model runs in f32, as Hugging Face
    // runs the released bf16 checkpoint; int8 dot products when the weights are int8.
    static constexpr AttentionInputs vision_attention =
        std::is_same_v<W, F32> ? AttentionInputs::f32 : int8_weights<W> ? AttentionInputs::int8 : AttentionInputs::bf16;

    Qwen2VLDims d_;
    io::Qwen2VLImageConfig image_cfg_;
    PatchEmbed<W> patch_embed_;  // Conv3d with stride = kernel: a matmul over the processor's flattened patches
    VisionStack vision_;
    Projector<W> merger_;  // ln_q, then an MLP over the merge² patches of each window
    Decoder<W> dec_;
    std::vector<float> rope_inv_freq_;
};

/// Which MinerU2.5 release a Qwen2-VL-family config is shaped like: "MinerU2.5-2509" (decoder
/// fields at the top level), "MinerU2.5-Pro" (2604/2605: the same network, fields in text_config),
/// or "" when the sizes are not MinerU2.5's (32 x 1280 vision blocks, 24 x 896 Qwen2-0.5B decoder).
inline std::string_view mineru_release(const Qwen2VLDims& d) {
    if (d.v_depth != 32 || d.v_dim != 1280 || d.layers != 24 || d.hidden != 896 || d.heads != 14 || d.kv_heads != 2) return "";
    return d.text_config ? "MinerU2.5-Pro" : "MinerU2.5-2509";
}

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline Qwen2VLDims Qwen2VLDims::from_config_json(const std::string& path) {
    const nlohmann::json j = io::read_json_file(path);
    if (!j.is_object()) detail::fail(path, ": expected a JSON object");
    // Newer files nest the decoder sizes in text_config.
    const bool nested = j.contains("text_config") && j["text_config"].is_object();
    const nlohmann::json& t = nested ? j["text_config"] : j;
    auto get = [&](const nlohmann::json& obj, const char* key, auto fallback, bool required) {
        using T = decltype(fallback);
        if (!obj.contains(key)) {
            if (required && !j.contains(key)) detail::fail(path, ": missing '", key, "'");
            if (!j.contains(key)) return fallback;
        }
        const nlohmann::json& v = obj.contains(key) ? obj[key] : j[key];
        if (!v.is_number()) detail::fail(path, ": '", key, "' is not a number");
        const double x = v.get<double>();
        if (!(x >= 0) || x > 1e9) detail::fail(path, ": '", key, "' = ", x, " is out of range");
        return T(x);
    };
    if (!j.contains("vision_config") || !j["vision_config"].is_object()) detail::fail(path, ": missing object 'vision_config'");
    const nlohmann::json& v = j["vision_config"];
    Qwen2VLDims d;
    d.text_config = nested;
    d.v_depth = get(v, "depth", std::size_t(32), true);
    d.v_dim = get(v, "embed_dim", std::size_t(1280), true);
    d.v_heads = get(v, "num_heads", std::size_t(16), true);
    d.v_mlp = std::size_t(double(d.v_dim) * get(v, "mlp_ratio", 4.0, false));
    d.patch = get(v, "patch_size", std::size_t(14), false);
    d.temporal_patch = get(v, "temporal_patch_size", std::size_t(2), false);
    d.merge = get(v, "spatial_merge_size", std::size_t(2), false);
    d.in_channels = get(v, "in_channels", std::size_t(3), false);
    const std::size_t v_out = get(v, "hidden_size", std::size_t(0), false);
    if (v.contains("hidden_act") && v["hidden_act"] != "quick_gelu")
        detail::fail(path, ": vision hidden_act '", v["hidden_act"].dump(), "' is not quick_gelu");
    d.layers = get(t, "num_hidden_layers", std::size_t(24), true);
    d.hidden = get(t, "hidden_size", std::size_t(896), true);
    d.heads = get(t, "num_attention_heads", std::size_t(14), true);
    d.kv_heads = get(t, "num_key_value_heads", d.heads, false);
    d.mlp = get(t, "intermediate_size", std::size_t(4864), true);
    d.vocab = get(t, "vocab_size", std::size_t(151936), true);
    d.max_positions = get(t, "max_position_embeddings", std::size_t(32768), false);
    d.rms_eps = get(t, "rms_norm_eps", 1e-6f, false);
    d.rope_theta = get(t, "rope_theta", 1e6f, false);
    d.image_token_id = get(j, "image_token_id", std::int32_t(151655), false);
    d.vision_start_token_id = get(j, "vision_start_token_id", std::int32_t(151652), false);
    d.vision_end_token_id = get(j, "vision_end_token_id", std::int32_t(151653), false);
    if (j.contains("eos_token_id") && j["eos_token_id"].is_number_integer()) d.eos_token_id = j["eos_token_id"].get<std::int32_t>();
    d.tie_embeddings = io::json_flag(j, "tie_word_embeddings", io::json_flag(t, "tie_word_embeddings", true, path), path);
    const nlohmann::json& rs = t.contains("rope_scaling") ? t["rope_scaling"] : j.contains("rope_scaling") ? j["rope_scaling"] : t;
    if (!rs.is_object() || !rs.contains("mrope_section") || !rs["mrope_section"].is_array() || rs["mrope_section"].size() != 3)
        detail::fail(path, ": rope_scaling.mrope_section must list three sections");
    for (int i = 0; i < 3; ++i) {
        const nlohmann::json& sec = rs["mrope_section"][std::size_t(i)];
        if (!sec.is_number_integer() || sec.get<long long>() < 0 || sec.get<long long>() > 4096)
            detail::fail(path, ": rope_scaling.mrope_section holds ", sec.dump(), ", not an integer in [0, 4096]");
        d.mrope_section[i] = sec.get<int>();
    }
    // Consistency
    if (d.v_heads == 0 || d.v_dim % d.v_heads) detail::fail(path, ": vision num_heads ", d.v_heads, " does not divide embed_dim ", d.v_dim);
    if (d.heads == 0 || d.hidden % d.heads) detail::fail(path, ": num_attention_heads ", d.heads, " does not divide hidden_size ", d.hidden);
    if (d.kv_heads == 0 || d.heads % d.kv_heads) detail::fail(path, ": num_key_value_heads ", d.kv_heads, " does not divide num_attention_heads");
    d.head_dim = d.hidden / d.heads;
    if (std::size_t(d.mrope_section[0] + d.mrope_section[1] + d.mrope_section[2]) * 2 != d.head_dim)
        detail::fail(path, ": mrope_section sums to ", d.mrope_section[0] + d.mrope_section[1] + d.mrope_section[2], ", head_dim / 2 is ",
                     d.head_dim / 2);
    if (v_out && v_out != d.hidden) detail::fail(path, ": vision hidden_size ", v_out, " differs from the decoder's ", d.hidden);
    if (d.image_token_id < 0 || std::size_t(d.image_token_id) >= d.vocab) detail::fail(path, ": image_token_id outside the vocabulary");
    if (d.v_head_dim() % 4) detail::fail(path, ": vision head_dim ", d.v_head_dim(), " is not a multiple of 4 (2D rope)");
    return d;
}

template <class Config>
Qwen2VLModel<Config> Qwen2VLModel<Config>::load(const std::string& dir) {
    namespace fs = std::filesystem;
    const std::string cfg_path = (fs::path(dir) / "config.json").string();
    Qwen2VLModel m;
    m.d_ = Qwen2VLDims::from_config_json(cfg_path);
    const Qwen2VLDims& d = m.d_;
    using V = typename Config::vision;
    using T = typename Config::text;
    detail::check_size(V::depth, d.v_depth, "vision depth", cfg_path);
    detail::check_size(V::dim, d.v_dim, "vision embed_dim", cfg_path);
    detail::check_size(V::heads, d.v_heads, "vision num_heads", cfg_path);
    detail::check_size(V::mlp, d.v_mlp, "vision mlp width", cfg_path);
    detail::check_size(V::patch, d.patch, "patch_size", cfg_path);
    detail::check_size(T::layers, d.layers, "num_hidden_layers", cfg_path);
    detail::check_size(T::hidden, d.hidden, "hidden_size", cfg_path);
    detail::check_size(T::heads, d.heads, "num_attention_heads", cfg_path);
    detail::check_size(T::kv_heads, d.kv_heads, "num_key_value_heads", cfg_path);
    detail::check_size(T::mlp, d.mlp, "intermediate_size", cfg_path);
    detail::check_size(T::vocab, d.vocab, "vocab_size", cfg_path);
    for (int i = 0; i < 3; ++i) detail::check_size(T::position::sections[i], std::size_t(d.mrope_section[i]), "mrope_section", cfg_path);

    const std::string pre = (fs::path(dir) / "preprocessor_config.json").string();
    if (fs::exists(pre)) m.image_cfg_ = io::Qwen2VLImageConfig::from_json(pre);
    if (std::size_t(m.image_cfg_.patch_size) != d.patch || std::size_t(m.image_cfg_.merge_size) != d.merge ||
        std::size_t(m.image_cfg_.temporal_patch_size) != d.temporal_patch)
        detail::fail(pre, ": patch/merge/temporal sizes disagree with config.json");

    const io::Checkpoint ck = io::Checkpoint::open(dir);
    const bool nested = ck.contains("model.visual.patch_embed.proj.weight");
    const std::string vp = nested ? "model.visual." : "visual.", tp = nested ? "model.language_model." : "model.";
    const std::size_t vd = d.v_dim, pin = d.in_channels * d.temporal_patch * d.patch * d.patch;
    if (ck.contains(PackedNames(vp + "patch_embed.proj.weight").data)) {
        m.patch_embed_ = PatchEmbed<W>(load_linear<W>(ck, vp + "patch_embed.proj.weight", "", vd, pin), d.in_channels, d.patch);
    } else {
        const Array<float> pe = load_tensor(ck, vp + "patch_embed.proj.weight", {vd, d.in_channels, d.temporal_patch, d.patch, d.patch});
        m.patch_embed_ = PatchEmbed<W>(Linear<W>(pe.data(), vd, pin), d.in_channels, d.patch);
    }
    for (std::size_t i = 0; i < d.v_depth; ++i) {
        const std::string b = vp + "blocks." + std::to_string(i) + ".";
        typename VisionStack::Block blk;
        blk.norm1 = load_layer_norm(ck, b + "norm1", vd, 1e-6f);
        blk.norm2 = load_layer_norm(ck, b + "norm2", vd, 1e-6f);
        blk.attn = decltype(blk.attn)::fused(load_linear<W>(ck, b + "attn.qkv.weight", b + "attn.qkv.bias", 3 * vd, vd),
                                             load_linear<W>(ck, b + "attn.proj.weight", b + "attn.proj.bias", vd, vd), d.v_heads,
                                             d.v_heads, vision_attention);
        blk.mlp = Mlp<W>::plain(load_linear<W>(ck, b + "mlp.fc1.weight", b + "mlp.fc1.bias", d.v_mlp, vd),
                                load_linear<W>(ck, b + "mlp.fc2.weight", b + "mlp.fc2.bias", vd, d.v_mlp), Activation::quick_gelu);
        m.vision_.blocks.push_back(std::move(blk));
    }
    const std::size_t md = d.merged_dim();
    m.merger_.norm = load_layer_norm(ck, vp + "merger.ln_q", vd, 1e-6f);
    m.merger_.fc1 = load_linear<W>(ck, vp + "merger.mlp.0.weight", vp + "merger.mlp.0.bias", md, md);
    m.merger_.fc2 = load_linear<W>(ck, vp + "merger.mlp.2.weight", vp + "merger.mlp.2.bias", d.hidden, md);
    m.merger_.act = Activation::gelu_erf;
    m.merger_.group = d.merge * d.merge;
    m.merger_.names.norm = "vision_merger_ln_q", m.merger_.names.out = "vision_output";

    const HfDecoderDims dd{.layers = d.layers, .hidden = d.hidden, .heads = d.heads, .kv_heads = d.kv_heads, .head_dim = d.head_dim,
                           .mlp = d.mlp, .vocab = d.vocab, .rms_eps = d.rms_eps, .qkv_bias = true, .tie_embeddings = d.tie_embeddings};
    // prefill with int8 weights attends with int8 dot products too (AttentionParams::int8)
    m.dec_ = load_hf_decoder<W>(ck, tp, "lm_head.weight", dd, int8_weights<W>);
    m.rope_inv_freq_ = rope_inv_freq(d.head_dim, d.rope_theta);
    return m;
}

template <class Config>
Tensor<float, 2> Qwen2VLModel<Config>::encode_image(const io::PixelValues& px, const Trace& trace) const {
    const Qwen2VLDims& d = d_;
    const std::size_t n = px.count(), vd = d.v_dim, hd = d.v_head_dim();
    const std::size_t pin = d.in_channels * d.temporal_patch * d.patch * d.patch;
    if (px.patches.shape()[1] != pin) detail::fail("encode_image: patches have ", px.patches.shape()[1], " values, the model expects ", pin);
    if (px.grid_h % int(d.merge) || px.grid_w % int(d.merge)) detail::fail("encode_image: grid is not a multiple of the merge size");
    auto emit = [&](std::string_view name, const float* p, std::size_t r, std::size_t c) {
        if (trace) trace(name, p, r, c);
    };
    std::vector<float> x(n * vd);
    patch_embed_.forward(px.patches.data(), n, x.data(), vd);
    emit("vision_patch_embed", x.data(), n, vd);

    // 2D rope: patch (row, col) in the processor's merge-window order.
    std::vector<std::int64_t> rows(n), cols(n);
    {
        std::size_t i = 0;
        const int m = int(d.merge);
        for (int t = 0; t < px.grid_t; ++t)
            for (int bh = 0; bh < px.grid_h / m; ++bh)
                for (int bw = 0; bw < px.grid_w / m; ++bw)
                    for (int mh = 0; mh < m; ++mh)
                        for (int mw = 0; mw < m; ++mw, ++i) rows[i] = bh * m + mh, cols[i] = bw * m + mw;
    }
    const RopeTable rope = rope2d_table(rows, cols, hd, 10000.0f);
    if (trace) {  // the angles themselves, as Hugging Face's rot_pos_emb returns them
        const std::size_t quarter = hd / 4;
        const auto inv = rope_inv_freq(hd / 2, 10000.0f);
        std::vector<float> freqs(n * hd / 2);
        for (std::size_t r = 0; r < n; ++r)
            for (std::size_t k = 0; k < hd / 2; ++k) freqs[r * hd / 2 + k] = float(k < quarter ? rows[r] : cols[r]) * inv[k % quarter];
        emit("vision_rotary_freqs", freqs.data(), n, hd / 2);
    }
    // The goldens name three of a block's pieces after Qwen2-VL's modules (norm1, attn.proj, norm2).
    const Trace named = !trace ? Trace{} : Trace([&](std::string_view name, const float* p, std::size_t r, std::size_t c) {
        for (const auto& [ours, theirs] : {std::pair{"layer_norm1", "norm1"}, {"out_proj", "attn_out"}, {"layer_norm2", "norm2"}})
            if (name.ends_with(ours)) return trace(std::string(name.substr(0, name.size() - std::strlen(ours))) + theirs, p, r, c);
        trace(name, p, r, c);
    });
    Workspace ws = vision_.workspace(n);
    vision_.forward(x.data(), n, ws, &rope, named);
    return merger_.forward(x.data(), n, trace);
}

DOCVLM_NAMESPACE_END
