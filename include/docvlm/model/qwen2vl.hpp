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
// goldens (vision_blk0_qkv, dec_l0_q_proj, logits, ...).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/dtype.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/io/image_processor.hpp>
#include <docvlm/io/json.hpp>
#include <docvlm/io/safetensors.hpp>
#include <docvlm/kernels/activations.hpp>
#include <docvlm/kernels/attention.hpp>
#include <docvlm/kernels/ops.hpp>
#include <docvlm/layers/linear.hpp>
#include <docvlm/layers/norm.hpp>
#include <docvlm/layers/rope.hpp>
#include <docvlm/model/config.hpp>
#include <docvlm/model/generation.hpp>
#include <docvlm/model/rope_index.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// Sees intermediate tensors: name, data, rows, columns (row-major, contiguous).
using Trace = std::function<void(std::string_view name, const float* data, std::size_t rows, std::size_t cols)>;

/// Every size of a Qwen2-VL-family checkpoint, as read from config.json.
struct Qwen2VLDims {
    // vision tower
    std::size_t v_depth = 0, v_dim = 0, v_heads = 0, v_mlp = 0, patch = 14, temporal_patch = 2, merge = 2, in_channels = 3;
    // decoder
    std::size_t layers = 0, hidden = 0, heads = 0, kv_heads = 0, head_dim = 0, mlp = 0, vocab = 0, max_positions = 32768;
    float rms_eps = 1e-6f, rope_theta = 1e6f;
    std::array<int, 3> mrope_section{16, 24, 24};
    bool tie_embeddings = true;
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
    static_assert(detail::is_mrope<typename Config::text::position>::value, "Qwen2VLModel: the decoder uses MRope<t, h, w>");
    using W = typename Config::weights;

public:
    class Context;

    /// Loads a checkpoint directory (config.json, preprocessor_config.json, safetensors).
    static Qwen2VLModel load(const std::string& dir);

    const Qwen2VLDims& dims() const { return d_; }
    const io::Qwen2VLImageConfig& image_config() const { return image_cfg_; }

    /// Vision embeddings [grid_t · grid_h · grid_w / merge², hidden] of one preprocessed image.
    Tensor<float, 2> encode_image(const io::PixelValues& px, const Trace& trace = {}) const;

    /// A generation context with a KV cache for `max_tokens` tokens (prompt + output). Many
    /// contexts may share one model, one per thread.
    Context context(std::size_t max_tokens) const { return Context(*this, max_tokens); }

    /// One request of generate_batch: a prompt with its images, and its own sampling options.
    struct BatchRequest {
        std::span<const std::int32_t> ids;
        std::span<const Tensor<float, 2>> images;
        std::span<const ImageGrid> grids;
        GenerationOptions options;
    };
    /// Runs several requests at once: each prompt is prefilled on its own, then the decoder steps
    /// all unfinished sequences together, so each weight matrix (the 151,936-row LM head above
    /// all) is read once per step for the whole batch. Each result is what Context::generate gives
    /// for that request in a context of ids.size() + options.max_new_tokens tokens (rows are
    /// computed independently); `stats`, if given, gets the prefill and decode time of all.
    std::vector<std::vector<std::int32_t>> generate_batch(std::span<const BatchRequest> requests, GenerationStats* stats = nullptr) const;

    class Context {
    public:
        /// Runs the prompt (image tokens replaced by `images` in order) and returns the logits of
        /// its last token. With all_logits, returns logits for every prompt token [n, vocab].
        std::span<const float> prefill(std::span<const std::int32_t> ids, std::span<const Tensor<float, 2>> images,
                                       std::span<const ImageGrid> grids, const Trace& trace = {}, bool all_logits = false);
        /// prefill with explicit M-RoPE positions instead of rope_index's (e.g. Hugging Face's
        /// plain forward(), which without position_ids numbers the tokens 0, 1, 2, ... on all axes).
        std::span<const float> prefill(std::span<const std::int32_t> ids, std::span<const Tensor<float, 2>> images,
                                       std::span<const ImageGrid> grids, RopePositions positions, const Trace& trace = {},
                                       bool all_logits = false);
        /// Appends one token and returns the logits for the next one.
        std::span<const float> decode_step(std::int32_t token);
        /// prefill + decode loop with the sampler; calls on_token for each generated token and,
        /// if `stats` is given, records where the time went.
        std::vector<std::int32_t> generate(std::span<const std::int32_t> ids, std::span<const Tensor<float, 2>> images,
                                           std::span<const ImageGrid> grids, const GenerationOptions& opt,
                                           const std::function<void(std::int32_t)>& on_token = {}, GenerationStats* stats = nullptr);
        std::size_t length() const { return len_; }
        /// Positions of the last prefill (t, h, w per prompt token).
        const RopePositions& positions() const { return pos_; }

    private:
        friend class Qwen2VLModel;
        Context(const Qwen2VLModel& m, std::size_t max_tokens);
        void forward(const float* x_in, std::size_t n, const std::int64_t* const* pos, const Trace& trace, bool all_logits);

        const Qwen2VLModel* m_;
        std::size_t cap_ = 0, len_ = 0;
        std::vector<AlignedBuffer<float>> k_, v_;  // per layer [cap][kv_heads · head_dim]
        std::vector<float> logits_;
        RopePositions pos_;
        std::vector<float> x_, h_, q_, ctx_, g_, u_, emb_;
        RopeTable rope_;
    };

private:
    struct BatchScratch {
        std::vector<float> x, h, q, k, v, ctx, g, logits;
        std::vector<std::int64_t> pos;  // M-RoPE position (cache length + rope delta)
        std::vector<std::size_t> len;   // cache length
        std::vector<float*> kc, vc;
        RopeTable rope;
    };
    // One decoding step for n prefilled contexts (one new token each at its own position);
    // logits [n, vocab] land in s.logits.
    void step_rows(Context* const* ctxs, const std::int32_t* ids, std::size_t n, BatchScratch& s) const;

    struct VisionBlock {
        LayerNorm norm1, norm2;
        Linear<W> qkv, proj, fc1, fc2;
    };
    struct DecoderLayer {
        RMSNorm input_norm, post_norm;
        Linear<W> q, k, v, o, gate, up, down;
    };

    Qwen2VLDims d_;
    io::Qwen2VLImageConfig image_cfg_;
    Linear<W> patch_embed_;
    std::vector<VisionBlock> vblocks_;
    LayerNorm merger_ln_;
    Linear<W> merger_fc1_, merger_fc2_;
    std::vector<DecoderLayer> layers_;
    RMSNorm final_norm_;
    Linear<W> lm_head_;
    std::vector<float> embed_f32_;  // [vocab, hidden] for the F32 policy
    std::vector<bf16> embed_bf16_;  // [vocab, hidden] otherwise
    std::vector<float> rope_inv_freq_;

    void embed(std::int32_t token, float* out) const;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline Qwen2VLDims Qwen2VLDims::from_config_json(const std::string& path) {
    const nlohmann::json j = io::read_json_file(path);
    if (!j.is_object()) detail::fail(path, ": expected a JSON object");
    // Newer files nest the decoder sizes in text_config.
    const nlohmann::json& t = j.contains("text_config") && j["text_config"].is_object() ? j["text_config"] : j;
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

namespace detail {
// A static size in a Config must equal the checkpoint's; `dynamic` accepts anything.
inline void check_size(int want, std::size_t got, const char* what, const std::string& path) {
    if (want != dynamic && std::size_t(want) != got)
        fail(path, ": ", what, " is ", got, " but the model type fixes it at ", want, " (use a preset with docvlm::dynamic sizes)");
}
}  // namespace detail

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
        m.patch_embed_ = Linear<W>::load(ck, vp + "patch_embed.proj.weight", "", vd, pin);
    } else {
        const Array<float> pe = load_tensor(ck, vp + "patch_embed.proj.weight", {vd, d.in_channels, d.temporal_patch, d.patch, d.patch});
        m.patch_embed_ = Linear<W>(pe.data(), vd, pin);  // Conv3d with stride = kernel == matmul
    }
    for (std::size_t i = 0; i < d.v_depth; ++i) {
        const std::string b = vp + "blocks." + std::to_string(i) + ".";
        m.vblocks_.push_back({LayerNorm::load(ck, b + "norm1", vd, 1e-6f), LayerNorm::load(ck, b + "norm2", vd, 1e-6f),
                              Linear<W>::load(ck, b + "attn.qkv.weight", b + "attn.qkv.bias", 3 * vd, vd),
                              Linear<W>::load(ck, b + "attn.proj.weight", b + "attn.proj.bias", vd, vd),
                              Linear<W>::load(ck, b + "mlp.fc1.weight", b + "mlp.fc1.bias", d.v_mlp, vd),
                              Linear<W>::load(ck, b + "mlp.fc2.weight", b + "mlp.fc2.bias", vd, d.v_mlp)});
    }
    const std::size_t md = d.merged_dim();
    m.merger_ln_ = LayerNorm::load(ck, vp + "merger.ln_q", vd, 1e-6f);
    m.merger_fc1_ = Linear<W>::load(ck, vp + "merger.mlp.0.weight", vp + "merger.mlp.0.bias", md, md);
    m.merger_fc2_ = Linear<W>::load(ck, vp + "merger.mlp.2.weight", vp + "merger.mlp.2.bias", d.hidden, md);

    const std::size_t h = d.hidden, hd = d.head_dim;
    for (std::size_t i = 0; i < d.layers; ++i) {
        const std::string l = tp + "layers." + std::to_string(i) + ".";
        m.layers_.push_back({RMSNorm::load(ck, l + "input_layernorm.weight", h, d.rms_eps),
                             RMSNorm::load(ck, l + "post_attention_layernorm.weight", h, d.rms_eps),
                             Linear<W>::load(ck, l + "self_attn.q_proj.weight", l + "self_attn.q_proj.bias", d.heads * hd, h),
                             Linear<W>::load(ck, l + "self_attn.k_proj.weight", l + "self_attn.k_proj.bias", d.kv_heads * hd, h),
                             Linear<W>::load(ck, l + "self_attn.v_proj.weight", l + "self_attn.v_proj.bias", d.kv_heads * hd, h),
                             Linear<W>::load(ck, l + "self_attn.o_proj.weight", "", h, d.heads * hd),
                             Linear<W>::load(ck, l + "mlp.gate_proj.weight", "", d.mlp, h),
                             Linear<W>::load(ck, l + "mlp.up_proj.weight", "", d.mlp, h),
                             Linear<W>::load(ck, l + "mlp.down_proj.weight", "", h, d.mlp)});
    }
    m.final_norm_ = RMSNorm::load(ck, tp + "norm.weight", h, d.rms_eps);
    const Array<float> emb = load_tensor(ck, tp + "embed_tokens.weight", {d.vocab, h});
    if constexpr (std::is_same_v<W, F32>) m.embed_f32_.assign(emb.begin(), emb.end());
    else {
        m.embed_bf16_.resize(emb.size());
        convert(emb.data(), m.embed_bf16_.data(), emb.size());
    }
    if (ck.contains("lm_head.weight") || ck.contains(PackedNames("lm_head.weight").data))
        m.lm_head_ = Linear<W>::load(ck, "lm_head.weight", "", d.vocab, h);
    else if (d.tie_embeddings) m.lm_head_ = Linear<W>(emb.data(), d.vocab, h);
    else detail::fail(ck.source(), ": config.json says tie_word_embeddings = false but there is no lm_head.weight");

    m.rope_inv_freq_ = rope_inv_freq(hd, d.rope_theta);
    return m;
}

template <class Config>
void Qwen2VLModel<Config>::embed(std::int32_t token, float* out) const {
    if (token < 0 || std::size_t(token) >= d_.vocab) detail::fail("token id ", token, " is outside the vocabulary of ", d_.vocab);
    const std::size_t h = d_.hidden;
    if constexpr (std::is_same_v<W, F32>) std::copy_n(embed_f32_.data() + std::size_t(token) * h, h, out);
    else convert(embed_bf16_.data() + std::size_t(token) * h, out, h);
}

template <class Config>
Tensor<float, 2> Qwen2VLModel<Config>::encode_image(const io::PixelValues& px, const Trace& trace) const {
    const Qwen2VLDims& d = d_;
    const std::size_t n = px.count(), vd = d.v_dim, hd = d.v_head_dim(), heads = d.v_heads;
    const std::size_t pin = d.in_channels * d.temporal_patch * d.patch * d.patch;
    if (px.patches.shape()[1] != pin) detail::fail("encode_image: patches have ", px.patches.shape()[1], " values, the model expects ", pin);
    if (px.grid_h % int(d.merge) || px.grid_w % int(d.merge)) detail::fail("encode_image: grid is not a multiple of the merge size");
    auto emit = [&](std::string_view name, const float* p, std::size_t r, std::size_t c) {
        if (trace) trace(name, p, r, c);
    };
    std::vector<float> x(n * vd), h(n * vd), qkv(n * 3 * vd), ctx(n * vd), f(n * d.v_mlp);
    patch_embed_.forward(px.patches.data(), n, pin, x.data(), vd);
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
    // The ViT's attention dominates its time on pages: bf16 inputs (float accumulation) unless
    // the model runs in f32, as Hugging Face runs the released bf16 checkpoint; int8 dot products
    // (AttentionParams::int8) when the weights are int8.
    kernels::AttentionParams ap{.heads = heads, .kv_heads = heads, .head_dim = hd, .scale = 1.0f / std::sqrt(float(hd)),
                                .bf16 = !std::is_same_v<W, F32>, .int8 = int8_weights<W>};
    for (std::size_t b = 0; b < vblocks_.size(); ++b) {
        const VisionBlock& blk = vblocks_[b];
        const std::string pfx = "vision_blk" + std::to_string(b) + "_";
        const bool tr = bool(trace) && b == 0;
        blk.norm1.forward(x.data(), n, vd, h.data(), vd);
        if (tr) emit(pfx + "norm1", h.data(), n, vd);
        blk.qkv.forward(h.data(), n, vd, qkv.data(), 3 * vd);
        if (tr) emit(pfx + "qkv", qkv.data(), n, 3 * vd);
        parallel_for(n, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t r = r0; r < r1; ++r) {
                kernels::rope(qkv.data() + r * 3 * vd, heads, hd, rope.cos_row(r), rope.sin_row(r));
                kernels::rope(qkv.data() + r * 3 * vd + vd, heads, hd, rope.cos_row(r), rope.sin_row(r));
            }
        }, 64);
        if (tr) {
            std::vector<float> qr(n * vd), kr(n * vd);
            for (std::size_t r = 0; r < n; ++r) {
                std::copy_n(qkv.data() + r * 3 * vd, vd, qr.data() + r * vd);
                std::copy_n(qkv.data() + r * 3 * vd + vd, vd, kr.data() + r * vd);
            }
            emit(pfx + "q_rot", qr.data(), n, vd);
            emit(pfx + "k_rot", kr.data(), n, vd);
        }
        kernels::attention(qkv.data(), 3 * vd, qkv.data() + vd, 3 * vd, qkv.data() + 2 * vd, 3 * vd, ctx.data(), vd, n, n, ap);
        if (tr) emit(pfx + "attn_context", ctx.data(), n, vd);
        if (tr) {
            blk.proj.forward(ctx.data(), n, vd, h.data(), vd);
            emit(pfx + "attn_out", h.data(), n, vd);
            for (std::size_t i = 0; i < n * vd; ++i) x[i] += h[i];
        } else {
            blk.proj.forward(ctx.data(), n, vd, x.data(), vd, {.residual = x.data(), .ld_residual = vd});
        }
        blk.norm2.forward(x.data(), n, vd, h.data(), vd);
        if (tr) {
            emit(pfx + "norm2", h.data(), n, vd);
            blk.fc1.forward(h.data(), n, vd, f.data(), d.v_mlp);
            emit(pfx + "fc1", f.data(), n, d.v_mlp);
            kernels::activate(Activation::quick_gelu, f.data(), f.size());
            emit(pfx + "act", f.data(), n, d.v_mlp);
            std::vector<float> o(n * vd);
            blk.fc2.forward(f.data(), n, d.v_mlp, o.data(), vd);
            emit(pfx + "fc2", o.data(), n, vd);
            for (std::size_t i = 0; i < n * vd; ++i) x[i] += o[i];
            emit(pfx + "out", x.data(), n, vd);
        } else {
            blk.fc1.forward(h.data(), n, vd, f.data(), d.v_mlp, {.act = Activation::quick_gelu});
            blk.fc2.forward(f.data(), n, d.v_mlp, x.data(), vd, {.residual = x.data(), .ld_residual = vd});
        }
        if (trace) emit("vision_block_out_" + std::to_string(b), x.data(), n, vd);
    }
    merger_ln_.forward(x.data(), n, vd, h.data(), vd);
    emit("vision_merger_ln_q", h.data(), n, vd);
    const std::size_t tokens = n / (d.merge * d.merge), md = d.merged_dim();
    std::vector<float> mid(tokens * md);
    merger_fc1_.forward(h.data(), tokens, md, mid.data(), md, {.act = Activation::gelu_erf});  // rows of 4 patches
    Tensor<float, 2> out = Tensor<float, 2>::from_shape({tokens, d.hidden});
    merger_fc2_.forward(mid.data(), tokens, md, out.data(), d.hidden);
    emit("vision_output", out.data(), tokens, d.hidden);
    return out;
}

template <class Config>
Qwen2VLModel<Config>::Context::Context(const Qwen2VLModel& m, std::size_t max_tokens) : m_(&m), cap_(max_tokens) {
    const Qwen2VLDims& d = m.d_;
    if (max_tokens == 0) detail::fail("context: max_tokens must be positive");
    if (max_tokens > d.max_positions)
        detail::fail("context: ", max_tokens, " tokens exceed the model's max_position_embeddings of ", d.max_positions);
    const std::size_t kv = d.kv_heads * d.head_dim;
    for (std::size_t l = 0; l < d.layers; ++l) {
        k_.emplace_back(cap_ * kv);
        v_.emplace_back(cap_ * kv);
    }
    logits_.resize(d.vocab);
}

template <class Config>
void Qwen2VLModel<Config>::Context::forward(const float* x_in, std::size_t n, const std::int64_t* const* pos, const Trace& trace,
                                            bool all_logits) {
    const Qwen2VLModel& m = *m_;
    const Qwen2VLDims& d = m.d_;
    if (len_ + n > cap_) detail::fail("context: ", len_ + n, " tokens exceed this context's capacity of ", cap_);
    const std::size_t h = d.hidden, hd = d.head_dim, qd = d.heads * hd, kvd = d.kv_heads * hd;
    auto grow = [](std::vector<float>& v, std::size_t size) {
        if (v.size() < size) v.resize(size);
    };
    grow(x_, n * h), grow(h_, n * h), grow(q_, n * qd), grow(ctx_, n * qd), grow(g_, n * d.mlp);
    std::copy_n(x_in, n * h, x_.data());
    auto emit = [&](std::string_view name, const float* p, std::size_t r, std::size_t c) {
        if (trace) trace(name, p, r, c);
    };
    mrope_fill(rope_, {pos[0], pos[1], pos[2]}, n, m.rope_inv_freq_, d.mrope_section);
    emit("dec_rope_cos_mrope", rope_.cos.data(), n, hd);
    emit("dec_rope_sin_mrope", rope_.sin.data(), n, hd);
    // Prefill with int8 weights: int8 attention too (AttentionParams::int8; one token at a time
    // always runs in f32).
    const kernels::AttentionParams ap{.heads = d.heads, .kv_heads = d.kv_heads, .head_dim = hd,
                                      .scale = 1.0f / std::sqrt(float(hd)), .causal = true, .q_offset = len_,
                                      .int8 = int8_weights<W>};
    for (std::size_t l = 0; l < d.layers; ++l) {
        const DecoderLayer& L = m.layers_[l];
        const bool tr = bool(trace) && l == 0;
        const std::string pfx = tr ? "dec_l" + std::to_string(l) + "_" : std::string();
        float* kc = k_[l].data() + len_ * kvd;
        float* vc = v_[l].data() + len_ * kvd;
        L.input_norm.forward(x_.data(), n, h, h_.data(), h);
        if (tr) emit(pfx + "input_layernorm", h_.data(), n, h);
        forward_same_input<W>(h_.data(), n, h, {{L.q, q_.data(), qd}, {L.k, kc, kvd}, {L.v, vc, kvd}});
        if (tr) emit(pfx + "q_proj", q_.data(), n, qd), emit(pfx + "k_proj", kc, n, kvd), emit(pfx + "v_proj", vc, n, kvd);
        parallel_for(n, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t r = r0; r < r1; ++r) {
                kernels::rope(q_.data() + r * qd, d.heads, hd, rope_.cos_row(r), rope_.sin_row(r));
                kernels::rope(kc + r * kvd, d.kv_heads, hd, rope_.cos_row(r), rope_.sin_row(r));
            }
        }, 64);
        if (tr) emit(pfx + "q_rot", q_.data(), n, qd), emit(pfx + "k_rot", kc, n, kvd);
        kernels::attention(q_.data(), qd, k_[l].data(), kvd, v_[l].data(), kvd, ctx_.data(), qd, n, len_ + n, ap);
        if (tr) emit(pfx + "attn_context", ctx_.data(), n, qd);
        if (tr) {
            L.o.forward(ctx_.data(), n, qd, h_.data(), h);
            emit(pfx + "attn_out", h_.data(), n, h);
            for (std::size_t i = 0; i < n * h; ++i) x_[i] += h_[i];
        } else {
            L.o.forward(ctx_.data(), n, qd, x_.data(), h, {.residual = x_.data(), .ld_residual = h});
        }
        L.post_norm.forward(x_.data(), n, h, h_.data(), h);
        if (tr) emit(pfx + "post_attention_layernorm", h_.data(), n, h);
        if (tr) {  // each step on its own, for the trace
            L.gate.forward(h_.data(), n, h, g_.data(), d.mlp);
            emit(pfx + "gate_proj", g_.data(), n, d.mlp);
            kernels::activate(Activation::silu, g_.data(), n * d.mlp);
            emit(pfx + "act", g_.data(), n, d.mlp);
            grow(u_, n * d.mlp);
            L.up.forward(h_.data(), n, h, u_.data(), d.mlp);
            emit(pfx + "up_proj", u_.data(), n, d.mlp);
            for (std::size_t i = 0; i < n * d.mlp; ++i) g_[i] *= u_[i];
        } else {  // silu(gate) · up, the multiplication in up's epilogue
            forward_same_input<W>(h_.data(), n, h, {{L.gate, g_.data(), d.mlp, {.act = Activation::silu}},
                                                    {L.up, g_.data(), d.mlp, {.multiplier = g_.data(), .ld_multiplier = d.mlp}}});
        }
        if (tr) {
            L.down.forward(g_.data(), n, d.mlp, h_.data(), h);
            emit(pfx + "down_proj", h_.data(), n, h);
            for (std::size_t i = 0; i < n * h; ++i) x_[i] += h_[i];
            emit(pfx + "out", x_.data(), n, h);
        } else {
            L.down.forward(g_.data(), n, d.mlp, x_.data(), h, {.residual = x_.data(), .ld_residual = h});
        }
        if (trace) emit("dec_layer_out_" + std::to_string(l), x_.data(), n, h);
    }
    len_ += n;
    m.final_norm_.forward(x_.data(), n, h, h_.data(), h);
    emit("final_hidden", h_.data(), n, h);
    if (all_logits) {
        logits_.resize(n * d.vocab);
        m.lm_head_.forward(h_.data(), n, h, logits_.data(), d.vocab);
        emit("logits", logits_.data(), n, d.vocab);
    } else {
        logits_.resize(d.vocab);
        m.lm_head_.forward(h_.data() + (n - 1) * h, 1, h, logits_.data(), d.vocab);
    }
}

template <class Config>
std::span<const float> Qwen2VLModel<Config>::Context::prefill(std::span<const std::int32_t> ids, std::span<const Tensor<float, 2>> images,
                                                              std::span<const ImageGrid> grids, const Trace& trace, bool all_logits) {
    return prefill(ids, images, grids, rope_index(ids, m_->d_.image_token_id, grids, int(m_->d_.merge)), trace, all_logits);
}

template <class Config>
std::span<const float> Qwen2VLModel<Config>::Context::prefill(std::span<const std::int32_t> ids, std::span<const Tensor<float, 2>> images,
                                                              std::span<const ImageGrid> grids, RopePositions positions,
                                                              const Trace& trace, bool all_logits) {
    const Qwen2VLModel& m = *m_;
    const Qwen2VLDims& d = m.d_;
    if (ids.empty()) detail::fail("prefill: empty prompt");
    if (len_ != 0) detail::fail("prefill: the context already holds ", len_, " tokens");
    if (ids.size() > cap_) detail::fail("prefill: the prompt has ", ids.size(), " tokens, the context holds ", cap_);
    for (const auto& a : positions.pos)
        if (a.size() != ids.size()) detail::fail("prefill: ", a.size(), " positions for ", ids.size(), " tokens");
    if (images.size() != grids.size()) detail::fail("prefill: ", images.size(), " images but ", grids.size(), " grids");
    pos_ = std::move(positions);
    std::vector<float> x(ids.size() * d.hidden);
    std::size_t image = 0, row = 0;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] == d.image_token_id) {
            if (image >= images.size() || images[image].shape()[1] != d.hidden)
                detail::fail("prefill: image token ", i, " has no matching image embedding");
            std::copy_n(images[image].data() + row * d.hidden, d.hidden, x.data() + i * d.hidden);
            if (++row == images[image].shape()[0]) ++image, row = 0;
        } else {
            m.embed(ids[i], x.data() + i * d.hidden);
        }
    }
    if (image != images.size() || row != 0) detail::fail("prefill: image tokens and image embeddings do not match in number");
    if (trace) trace("inputs_embeds", x.data(), ids.size(), d.hidden);
    const std::int64_t* pos[3] = {pos_.pos[0].data(), pos_.pos[1].data(), pos_.pos[2].data()};
    forward(x.data(), ids.size(), pos, trace, all_logits);
    return logits_;
}

template <class Config>
std::span<const float> Qwen2VLModel<Config>::Context::decode_step(std::int32_t token) {
    if (len_ == 0) detail::fail("decode_step: call prefill first");
    const Qwen2VLDims& d = m_->d_;
    if (emb_.size() < d.hidden) emb_.resize(d.hidden);  // first step only
    m_->embed(token, emb_.data());
    const std::int64_t p = std::int64_t(len_) + pos_.delta;
    const std::int64_t* pos[3] = {&p, &p, &p};
    forward(emb_.data(), 1, pos, {}, false);
    return logits_;
}

template <class Config>
std::vector<std::int32_t> Qwen2VLModel<Config>::Context::generate(std::span<const std::int32_t> ids,
                                                                  std::span<const Tensor<float, 2>> images,
                                                                  std::span<const ImageGrid> grids, const GenerationOptions& opt,
                                                                  const std::function<void(std::int32_t)>& on_token,
                                                                  GenerationStats* stats) {
    using clock = std::chrono::steady_clock;
    Sampler sampler(opt, ids, m_->d_.vocab);
    std::vector<float> logits(m_->d_.vocab);
    const auto t0 = clock::now();
    std::span<const float> l = prefill(ids, images, grids);
    const auto t1 = clock::now();
    std::vector<std::int32_t> out;
    out.reserve(std::min(opt.max_new_tokens, cap_ - len_) + 1);  // no growth while decoding
    for (;;) {
        std::copy(l.begin(), l.end(), logits.begin());
        const std::int32_t t = sampler.next(logits);
        sampler.accept(t);
        out.push_back(t);
        if (on_token) on_token(t);
        if (sampler.done(t) || len_ >= cap_) break;
        l = decode_step(t);
    }
    if (stats) {
        stats->prefill_seconds += std::chrono::duration<double>(t1 - t0).count();
        stats->decode_seconds += std::chrono::duration<double>(clock::now() - t1).count();
        stats->prompt_tokens += ids.size();
        stats->generated_tokens += out.size();
    }
    return out;
}

template <class Config>
void Qwen2VLModel<Config>::step_rows(Context* const* ctxs, const std::int32_t* ids, std::size_t n, BatchScratch& s) const {
    const Qwen2VLDims& d = d_;
    const std::size_t h = d.hidden, hd = d.head_dim, qd = d.heads * hd, kvd = d.kv_heads * hd;
    s.x.resize(n * h), s.h.resize(n * h), s.q.resize(n * qd), s.ctx.resize(n * qd), s.k.resize(n * kvd), s.v.resize(n * kvd);
    s.g.resize(n * d.mlp), s.pos.resize(n), s.len.resize(n), s.kc.resize(n), s.vc.resize(n);
    for (std::size_t r = 0; r < n; ++r) {
        const Context& c = *ctxs[r];
        if (c.len_ == 0) detail::fail("generate_batch: a context was not prefilled");
        if (c.len_ + 1 > c.cap_) detail::fail("context: ", c.len_ + 1, " tokens exceed this context's capacity of ", c.cap_);
        embed(ids[r], s.x.data() + r * h);
        s.pos[r] = std::int64_t(c.len_) + c.pos_.delta;  // a text token: the same position on all three axes
        s.len[r] = c.len_;
    }
    mrope_fill(s.rope, {s.pos.data(), s.pos.data(), s.pos.data()}, n, rope_inv_freq_, d.mrope_section);
    for (std::size_t l = 0; l < d.layers; ++l) {
        const DecoderLayer& L = layers_[l];
        L.input_norm.forward(s.x.data(), n, h, s.h.data(), h);
        forward_same_input<W>(s.h.data(), n, h, {{L.q, s.q.data(), qd}, {L.k, s.k.data(), kvd}, {L.v, s.v.data(), kvd}});
        for (std::size_t r = 0; r < n; ++r) s.kc[r] = ctxs[r]->k_[l].data(), s.vc[r] = ctxs[r]->v_[l].data();
        attend_new_rows(n, s.q.data(), s.k.data(), s.v.data(), s.kc.data(), s.vc.data(), s.len.data(), s.rope, d.heads, d.kv_heads, hd,
                        s.ctx.data());
        L.o.forward(s.ctx.data(), n, qd, s.x.data(), h, {.residual = s.x.data(), .ld_residual = h});
        L.post_norm.forward(s.x.data(), n, h, s.h.data(), h);
        forward_same_input<W>(s.h.data(), n, h, {{L.gate, s.g.data(), d.mlp, {.act = Activation::silu}},
                                                 {L.up, s.g.data(), d.mlp, {.multiplier = s.g.data(), .ld_multiplier = d.mlp}}});
        L.down.forward(s.g.data(), n, d.mlp, s.x.data(), h, {.residual = s.x.data(), .ld_residual = h});
    }
    for (std::size_t r = 0; r < n; ++r) ctxs[r]->len_ += 1;
    final_norm_.forward(s.x.data(), n, h, s.h.data(), h);
    s.logits.resize(n * d.vocab);
    lm_head_.forward(s.h.data(), n, h, s.logits.data(), d.vocab);
}

template <class Config>
std::vector<std::vector<std::int32_t>> Qwen2VLModel<Config>::generate_batch(std::span<const BatchRequest> requests,
                                                                            GenerationStats* stats) const {
    using clock = std::chrono::steady_clock;
    const std::size_t n = requests.size();
    std::vector<Context> ctxs;
    std::vector<Sampler> samplers;
    ctxs.reserve(n), samplers.reserve(n);
    std::vector<std::vector<std::int32_t>> out(n);
    std::vector<std::size_t> active, still;
    std::vector<std::int32_t> tokens, next;
    const auto t0 = clock::now();
    for (std::size_t i = 0; i < n; ++i) {  // as Context::generate: prefill, then the first token
        const BatchRequest& q = requests[i];
        ctxs.push_back(context(q.ids.size() + q.options.max_new_tokens));
        samplers.emplace_back(q.options, q.ids, d_.vocab);
        const auto l = ctxs[i].prefill(q.ids, q.images, q.grids);
        std::vector<float> logits(l.begin(), l.end());
        const std::int32_t t = samplers[i].next(logits);
        samplers[i].accept(t);
        out[i].push_back(t);
        if (!samplers[i].done(t) && ctxs[i].len_ < ctxs[i].cap_) active.push_back(i), tokens.push_back(t);
    }
    const auto t1 = clock::now();
    std::vector<Context*> rows;
    BatchScratch s;
    while (!active.empty()) {
        rows.clear();
        for (std::size_t i : active) rows.push_back(&ctxs[i]);
        step_rows(rows.data(), tokens.data(), active.size(), s);
        still.clear(), next.clear();
        for (std::size_t r = 0; r < active.size(); ++r) {
            const std::size_t i = active[r];
            const std::int32_t t = samplers[i].next({s.logits.data() + r * d_.vocab, d_.vocab});
            samplers[i].accept(t);
            out[i].push_back(t);
            if (!samplers[i].done(t) && ctxs[i].len_ < ctxs[i].cap_) still.push_back(i), next.push_back(t);
        }
        active.swap(still), tokens.swap(next);
    }
    if (stats) {
        stats->prefill_seconds += std::chrono::duration<double>(t1 - t0).count();
        stats->decode_seconds += std::chrono::duration<double>(clock::now() - t1).count();
        for (std::size_t i = 0; i < n; ++i) stats->prompt_tokens += requests[i].ids.size(), stats->generated_tokens += out[i].size();
    }
    return out;
}

DOCVLM_NAMESPACE_END
