// docvlm/model/llava.hpp — the LLaVA-1.5 family: a CLIP ViT whose penultimate layer's patch
// tokens, through a 2-layer GELU projector, replace the <image> tokens of a LLaMA prompt; computed
// as transformers' LlavaForConditionalGeneration.
//
//   auto model = LlavaModel<presets::Llava15<F32>>::load("llava-1.5-7b-hf");
//   Tensor<float, 3> px = io::preprocess_clip(image, model.image_config());   // [3, 336, 336]
//   Tensor<float, 2> vision = model.encode_image(px);                        // [576, hidden]
//   auto ctx = model.context(2048);
//   auto ids = ctx.generate(prompt_ids, {&vision, 1}, {}, {.max_new_tokens = 64});
//
// Parts: CLIP embeddings (conv patch embedding without bias, class token, learned positions) →
// pre_layrnorm → ViTBlocks (full attention, quick_gelu) up to vision_feature_layer → CLS dropped
// ("default" strategy) → projector → Decoder (no biases, Rope1D, SwiGLU, GQA, untied head).
// Weights under transformers 4.46's names (vision_tower.*, multi_modal_projector.*,
// language_model.model.*, language_model.lm_head.weight) or ≥ 4.52's (model.vision_tower.*,
// model.multi_modal_projector.*, model.language_model.*, lm_head.weight).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/core/trace.hpp>
#include <docvlm/io/clip_processor.hpp>
#include <docvlm/io/json.hpp>
#include <docvlm/io/safetensors.hpp>
#include <docvlm/io/sentencepiece.hpp>
#include <docvlm/layers/linear.hpp>
#include <docvlm/layers/norm.hpp>
#include <docvlm/layers/rope.hpp>
#include <docvlm/layers/patch_embed.hpp>
#include <docvlm/layers/projector.hpp>
#include <docvlm/layers/vit_block.hpp>
#include <docvlm/model/config.hpp>
#include <docvlm/model/decoder.hpp>
#include <docvlm/model/token_concat.hpp>
#include <docvlm/model/weights.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// Every size of a LLaVA-1.5 checkpoint, from config.json (transformers' defaults where a key is absent).
struct LlavaDims {
    // CLIP vision tower (CLIPVisionConfig defaults)
    std::size_t v_layers = 12, v_dim = 768, v_heads = 12, v_mlp = 3072, image_size = 224, patch = 32;
    float v_eps = 1e-5f;
    Activation v_act = Activation::quick_gelu;
    int feature_layer = -2;     ///< an index into the encoder's hidden states (0: the embeddings)
    bool keep_cls = false;      ///< vision_feature_select_strategy "full" (else "default": CLS dropped)
    Activation projector_act = Activation::gelu_erf;
    // LLaMA decoder (LlamaConfig defaults)
    HfDecoderDims text{.layers = 32, .hidden = 4096, .heads = 32, .kv_heads = 32, .head_dim = 128, .mlp = 11008, .vocab = 32000};
    float rope_theta = 10000.0f;
    std::size_t max_positions = 2048;
    std::int32_t image_token_id = 32000, eos_token_id = 2;

    static LlavaDims from_config_json(const std::string& path);
    std::size_t grid() const { return image_size / patch; }
    /// Vision layers run: hidden state `feature_layer` is the output of that many layers.
    std::size_t layers_run() const { return std::size_t(feature_layer < 0 ? int(v_layers) + 1 + feature_layer : feature_layer); }
    /// Image tokens per image.
    std::size_t image_tokens() const { return grid() * grid() + (keep_cls ? 1 : 0); }
};

template <class Config>
class LlavaModel {
    static_assert(check_model_config<Config>());
    static_assert(std::is_same_v<typename Config::fusion, MlpProjector>, "LlavaModel: LLaVA fuses by MlpProjector");
    static_assert(std::is_same_v<typename Config::vision::attention, FullAttention>, "LlavaModel: CLIP attends with FullAttention");
    static_assert(std::is_same_v<typename Config::vision::position, NoPosition>,
                  "LlavaModel: CLIP's positions are learned embeddings (position = NoPosition)");
    static_assert(std::is_same_v<typename Config::text::position, Rope1D>, "LlavaModel: the LLaMA decoder uses Rope1D");
    static_assert(std::is_same_v<typename Config::text::attention, CausalAttention>, "LlavaModel: the decoder is CausalAttention");
    using W = typename Config::weights;

public:
    using Weights = W;
    using Context = TokenConcatContext<LlavaModel>;

    /// Loads a checkpoint directory (config.json, preprocessor_config.json, safetensors).
    static LlavaModel load(const std::string& dir);

    const LlavaDims& dims() const { return d_; }
    const io::ClipImageConfig& image_config() const { return image_cfg_; }

    /// Image embeddings [image_tokens, text hidden] of preprocessed pixel values [3, S, S].
    /// Traced: vision_patch_embeds, vision_embeddings, vision_pre_layrnorm, vision_blk0_*,
    /// vision_feature_layer_output, vision_selected_features, projector_linear_1, projector_act,
    /// image_features.
    Tensor<float, 2> encode_image(const Tensor<float, 3>& pixels, const Trace& trace = {}) const;

    Context context(std::size_t max_tokens) const { return Context(*this, max_tokens); }
    /// LLaVA-1.5's conversation prompt for one image and a question, as LlavaProcessor tokenizes
    /// it: "USER: <image>\n{question} ASSISTANT:" with <s> first and the <image> token repeated
    /// once per image token.
    std::vector<std::int32_t> prompt(const io::SentencePieceTokenizer& tok, std::string_view question) const;
    std::vector<std::vector<std::int32_t>> generate_batch(std::span<const BatchRequest> requests, GenerationStats* stats = nullptr) const {
        return token_concat_generate_batch(*this, requests, stats);
    }

    // The family's side of TokenConcatContext.
    const Decoder<W>& decoder() const { return dec_; }
    /// Runs the vision tower's blocks and the text decoder on a Backend from now on (e.g.
    /// backend::make_backend("cuda")): contexts made afterwards keep their KV caches there. The
    /// patch embedding and the connector stay on the CPU.
    void to_device(std::shared_ptr<backend::Backend> be) { blocks_.to_device(be); dec_.to_device(std::move(be)); }
    std::int32_t image_token() const { return d_.image_token_id; }
    std::size_t max_positions() const { return d_.max_positions; }
    /// Plain positions 0, 1, 2, ...: image tokens count as ordinary positions.
    RopePositions positions(std::span<const std::int32_t> ids, std::span<const ImageGrid>) const { return plain_positions(ids.size()); }
    void rope(RopeTable& t, const std::int64_t* const* pos, std::size_t n, const Trace& trace) const {
        rope1d_rows(t, pos, n, rope_inv_freq_, trace);
    }

private:
    LlavaDims d_;
    io::ClipImageConfig image_cfg_;
    PatchEmbed<W> patch_embed_;  // the conv as a matmul over [3 · patch · patch] patch vectors
    std::vector<float> class_embed_, pos_embed_;
    LayerNorm pre_norm_;
    ViTStack<W> blocks_;  // the layers_run() that matter
    Projector<W> projector_;
    Decoder<W> dec_;
    std::vector<float> rope_inv_freq_;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline LlavaDims LlavaDims::from_config_json(const std::string& path) {
    const nlohmann::json j = io::read_json_file(path);
    if (!j.is_object()) detail::fail(path, ": expected a JSON object");
    if (io::json_string(j, "model_type", "", path) != "llava")
        detail::fail(path, ": model_type is '", io::json_string(j, "model_type", "(none)", path), "', expected 'llava'");
    auto object = [&](const char* key) -> const nlohmann::json& {
        if (!j.contains(key) || !j[key].is_object()) detail::fail(path, ": missing object '", key, "'");
        return j[key];
    };
    const nlohmann::json &v = object("vision_config"), &t = object("text_config");
    auto size = [&](const nlohmann::json& o, const char* key, std::size_t fallback) {
        return std::size_t(io::json_number(o, key, double(fallback), 1, 1 << 20, true, path));
    };
    auto act = [&](const nlohmann::json& o, const char* key, const char* fallback) {
        const std::string a = io::json_string(o, key, fallback, path);
        if (a == "quick_gelu") return Activation::quick_gelu;
        if (a == "gelu") return Activation::gelu_erf;
        if (a == "silu") return Activation::silu;
        detail::fail(path, ": activation '", a, "' (", key, ") is not quick_gelu, gelu or silu");
    };
    LlavaDims d;
    d.v_layers = size(v, "num_hidden_layers", d.v_layers), d.v_dim = size(v, "hidden_size", d.v_dim);
    d.v_heads = size(v, "num_attention_heads", d.v_heads), d.v_mlp = size(v, "intermediate_size", d.v_mlp);
    d.image_size = size(v, "image_size", d.image_size), d.patch = size(v, "patch_size", d.patch);
    d.v_eps = float(io::json_number(v, "layer_norm_eps", d.v_eps, 0, 1, false, path));
    d.v_act = act(v, "hidden_act", "quick_gelu");
    if (size(v, "num_channels", 3) != 3) detail::fail(path, ": vision num_channels must be 3");
    d.feature_layer = int(io::json_number(j, "vision_feature_layer", -2, -1024, 1024, true, path));
    const std::string strategy = io::json_string(j, "vision_feature_select_strategy", "default", path);
    if (strategy != "default" && strategy != "full") detail::fail(path, ": vision_feature_select_strategy '", strategy, "' is not default or full");
    d.keep_cls = strategy == "full";
    d.projector_act = act(j, "projector_hidden_act", "gelu");
    HfDecoderDims& x = d.text;
    x.layers = size(t, "num_hidden_layers", x.layers), x.hidden = size(t, "hidden_size", x.hidden);
    x.heads = size(t, "num_attention_heads", x.heads), x.kv_heads = size(t, "num_key_value_heads", x.heads);
    x.mlp = size(t, "intermediate_size", x.mlp), x.vocab = size(t, "vocab_size", x.vocab);
    if (x.hidden % x.heads) detail::fail(path, ": num_attention_heads ", x.heads, " does not divide hidden_size ", x.hidden);
    x.head_dim = t.contains("head_dim") && !t["head_dim"].is_null() ? size(t, "head_dim", 0) : x.hidden / x.heads;
    x.rms_eps = float(io::json_number(t, "rms_norm_eps", 1e-6, 0, 1, false, path));
    x.tie_embeddings = io::json_flag(t, "tie_word_embeddings", io::json_flag(j, "tie_word_embeddings", false, path), path);
    if (io::json_flag(t, "attention_bias", false, path) || io::json_flag(t, "mlp_bias", false, path))
        detail::fail(path, ": attention_bias / mlp_bias are not LLaVA-1.5's LLaMA (docvlm reads bias-free decoders for this family)");
    if (t.contains("rope_scaling") && !t["rope_scaling"].is_null()) detail::fail(path, ": rope_scaling is not supported for LLaVA-1.5");
    if (act(t, "hidden_act", "silu") != Activation::silu) detail::fail(path, ": the decoder's hidden_act must be silu");
    d.rope_theta = float(io::json_number(t, "rope_theta", 10000.0, 1, 1e9, false, path));
    d.max_positions = size(t, "max_position_embeddings", d.max_positions);
    d.image_token_id = std::int32_t(io::json_number(j, "image_token_index", 32000, 0, double(x.vocab) - 1, true, path));
    d.eos_token_id = std::int32_t(io::json_number(t, "eos_token_id", 2, 0, double(x.vocab) - 1, true, path));
    if (d.v_dim % d.v_heads) detail::fail(path, ": vision num_attention_heads ", d.v_heads, " does not divide hidden_size ", d.v_dim);
    if (x.heads % x.kv_heads) detail::fail(path, ": num_key_value_heads ", x.kv_heads, " does not divide num_attention_heads");
    if (x.head_dim % 2) detail::fail(path, ": head_dim ", x.head_dim, " is odd (rope)");
    if (d.image_size % d.patch) detail::fail(path, ": image_size ", d.image_size, " is not a multiple of patch_size ", d.patch);
    if (d.layers_run() < 1 || d.layers_run() > d.v_layers)
        detail::fail(path, ": vision_feature_layer ", d.feature_layer, " does not name an encoder layer's output (", d.v_layers, " layers)");
    return d;
}

template <class Config>
LlavaModel<Config> LlavaModel<Config>::load(const std::string& dir) {
    namespace fs = std::filesystem;
    const std::string cfg_path = (fs::path(dir) / "config.json").string();
    LlavaModel m;
    m.d_ = LlavaDims::from_config_json(cfg_path);
    const LlavaDims& d = m.d_;
    using V = typename Config::vision;
    using T = typename Config::text;
    detail::check_size(V::depth, d.v_layers, "vision num_hidden_layers", cfg_path);
    detail::check_size(V::dim, d.v_dim, "vision hidden_size", cfg_path);
    detail::check_size(V::heads, d.v_heads, "vision num_attention_heads", cfg_path);
    detail::check_size(V::mlp, d.v_mlp, "vision intermediate_size", cfg_path);
    detail::check_size(V::patch, d.patch, "patch_size", cfg_path);
    detail::check_size(T::layers, d.text.layers, "num_hidden_layers", cfg_path);
    detail::check_size(T::hidden, d.text.hidden, "hidden_size", cfg_path);
    detail::check_size(T::heads, d.text.heads, "num_attention_heads", cfg_path);
    detail::check_size(T::kv_heads, d.text.kv_heads, "num_key_value_heads", cfg_path);
    detail::check_size(T::mlp, d.text.mlp, "intermediate_size", cfg_path);
    detail::check_size(T::vocab, d.text.vocab, "vocab_size", cfg_path);

    const std::string pre = (fs::path(dir) / "preprocessor_config.json").string();
    if (fs::exists(pre)) m.image_cfg_ = io::ClipImageConfig::from_json(pre);
    else m.image_cfg_.shortest_edge = m.image_cfg_.crop_height = m.image_cfg_.crop_width = int(d.image_size);
    if (std::size_t(m.image_cfg_.crop_height) != d.image_size || std::size_t(m.image_cfg_.crop_width) != d.image_size)
        detail::fail(pre, ": crop_size ", m.image_cfg_.crop_width, "x", m.image_cfg_.crop_height, " is not the vision tower's ",
                     d.image_size, "x", d.image_size);

    const io::Checkpoint ck = io::Checkpoint::open(dir);
    const bool nested = ck.contains("model.language_model.embed_tokens.weight");
    const std::string vp = nested ? "model.vision_tower.vision_model." : "vision_tower.vision_model.",
                      pp = nested ? "model.multi_modal_projector." : "multi_modal_projector.",
                      tp = nested ? "model.language_model." : "language_model.model.",
                      head = nested ? "lm_head.weight" : "language_model.lm_head.weight";
    const std::size_t vd = d.v_dim, pin = 3 * d.patch * d.patch, npos = d.grid() * d.grid() + 1, th = d.text.hidden;
    auto vec = [&](const std::string& name, std::vector<std::size_t> shape) {
        const Array<float> a = load_tensor(ck, name, shape);
        return std::vector<float>(a.begin(), a.end());
    };
    const std::string pe = vp + "embeddings.patch_embedding.weight";
    if (ck.contains(PackedNames(pe).data)) m.patch_embed_ = PatchEmbed<W>(load_linear<W>(ck, pe, "", vd, pin), 3, d.patch);
    else m.patch_embed_ = PatchEmbed<W>(Linear<W>(load_tensor(ck, pe, {vd, 3, d.patch, d.patch}).data(), vd, pin), 3, d.patch);
    m.class_embed_ = vec(vp + "embeddings.class_embedding", {vd});
    m.pos_embed_ = vec(vp + "embeddings.position_embedding.weight", {npos, vd});
    m.pre_norm_ = load_layer_norm(ck, vp + "pre_layrnorm", vd, d.v_eps);
    for (std::size_t i = 0; i < d.layers_run(); ++i) {
        const std::string b = vp + "encoder.layers." + std::to_string(i) + ".";
        auto lin = [&](const std::string& name, std::size_t out, std::size_t in) {
            return load_linear<W>(ck, b + name + ".weight", b + name + ".bias", out, in);
        };
        ViTBlock<W> blk;
        blk.norm1 = load_layer_norm(ck, b + "layer_norm1", vd, d.v_eps);
        blk.norm2 = load_layer_norm(ck, b + "layer_norm2", vd, d.v_eps);
        blk.attn = SelfAttention<W, FullAttention, NoPosition>(lin("self_attn.q_proj", vd, vd), lin("self_attn.k_proj", vd, vd),
                                                               lin("self_attn.v_proj", vd, vd), lin("self_attn.out_proj", vd, vd), d.v_heads,
                                                               d.v_heads);
        blk.mlp = Mlp<W>::plain(lin("mlp.fc1", d.v_mlp, vd), lin("mlp.fc2", vd, d.v_mlp), d.v_act);
        m.blocks_.blocks.push_back(std::move(blk));
    }
    m.projector_.fc1 = load_linear<W>(ck, pp + "linear_1.weight", pp + "linear_1.bias", th, vd);
    m.projector_.fc2 = load_linear<W>(ck, pp + "linear_2.weight", pp + "linear_2.bias", th, th);
    m.projector_.act = d.projector_act;
    m.projector_.names.fc1 = "projector_linear_1", m.projector_.names.act = "projector_act", m.projector_.names.out = "image_features";
    m.dec_ = load_hf_decoder<W>(ck, tp, head, d.text, int8_weights<W>);
    m.rope_inv_freq_ = rope_inv_freq(d.text.head_dim, d.rope_theta);
    return m;
}

template <class Config>
std::vector<std::int32_t> LlavaModel<Config>::prompt(const io::SentencePieceTokenizer& tok, std::string_view question) const {
    const auto image = tok.token_id("<image>");
    if (!image || *image != d_.image_token_id)
        detail::fail("prompt: the tokenizer's <image> token is not the model's image_token_index ", d_.image_token_id);
    const std::vector<std::int32_t> ids = tok.encode("USER: <image>\n" + std::string(question) + " ASSISTANT:");
    std::vector<std::int32_t> out;
    for (std::int32_t id : ids) out.insert(out.end(), id == *image ? d_.image_tokens() : 1, id);
    return out;
}

template <class Config>
Tensor<float, 2> LlavaModel<Config>::encode_image(const Tensor<float, 3>& px, const Trace& trace) const {
    const LlavaDims& d = d_;
    const std::size_t g = d.grid(), n = g * g, vd = d.v_dim;
    if (px.shape()[0] != 3 || px.shape()[1] != d.image_size || px.shape()[2] != d.image_size)
        detail::fail("encode_image: pixel values are ", px.shape()[0], "x", px.shape()[1], "x", px.shape()[2], ", the model takes 3x",
                     d.image_size, "x", d.image_size, " (io::preprocess_clip)");
    std::vector<float> x((n + 1) * vd);  // token 0: the class token
    patch_embed_.forward(px.data(), d.image_size, d.image_size, PatchOrder::rows, x.data() + vd, vd);
    detail::emit(trace, "vision_patch_embeds", x.data() + vd, n, vd);
    std::copy(class_embed_.begin(), class_embed_.end(), x.begin());
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += pos_embed_[i];
    detail::emit(trace, "vision_embeddings", x.data(), n + 1, vd);
    pre_norm_.forward(x.data(), n + 1, vd, x.data(), vd);
    detail::emit(trace, "vision_pre_layrnorm", x.data(), n + 1, vd);
    Workspace ws = blocks_.workspace(n + 1);
    blocks_.forward(x.data(), n + 1, ws, nullptr, trace);
    detail::emit(trace, "vision_feature_layer_output", x.data(), n + 1, vd);
    const std::size_t skip = d.keep_cls ? 0 : 1, tokens = n + 1 - skip;
    const float* f = x.data() + skip * vd;
    detail::emit(trace, "vision_selected_features", f, tokens, vd);
    return projector_.forward(f, tokens, trace);
}

DOCVLM_NAMESPACE_END
