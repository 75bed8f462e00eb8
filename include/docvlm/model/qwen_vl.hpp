// docvlm/model/qwen_vl.hpp — the Qwen-VL family (Qwen-VL, Qwen-VL-Chat): an OpenCLIP-style ViT
// pooled by a cross-attention resampler into a fixed number of image tokens, which replace the
// image span (between <img> and </img>) of a Qwen-7B-style prompt; computed as the reference code
// published with the checkpoint (modeling_qwen.py, visual.py).
//
//   auto model = QwenVLModel<presets::QwenVL<F32>>::load("Qwen-VL-Chat");
//   Tensor<float, 3> px = io::preprocess_square(image, model.image_size());  // [3, 448, 448]
//   Tensor<float, 2> vision = model.encode_image(px);                      // [256, hidden]
//   auto ctx = model.context(1024);
//   ctx.generate(model.pad_image_spans(ids), {&vision, 1}, {}, opt);
//
// Parts: conv1 patch embedding (no bias); a learned 16 × 16 position table resized (bicubic) to the
// patch grid; ln_pre; ViT blocks (fused per-head q/k/v, full attention, exact GELU); the resampler
// (layers/resampler.hpp) with ln_post and a [dim, dim] projection; then the shared Decoder: fused
// c_attn (q | k | v, with bias), rotate-half rope, SwiGLU as c_proj(w1(x) · silu(w2(x))), RMSNorm,
// untied head. Weights under the reference code's names (transformer.*, lm_head.weight).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/core/trace.hpp>
#include <docvlm/io/json.hpp>
#include <docvlm/io/safetensors.hpp>
#include <docvlm/io/tokenizer.hpp>
#include <docvlm/layers/grid_resize.hpp>
#include <docvlm/layers/linear.hpp>
#include <docvlm/layers/norm.hpp>
#include <docvlm/layers/patch_embed.hpp>
#include <docvlm/layers/resampler.hpp>
#include <docvlm/layers/rope.hpp>
#include <docvlm/layers/vit_block.hpp>
#include <docvlm/model/config.hpp>
#include <docvlm/model/decoder.hpp>
#include <docvlm/model/token_concat.hpp>
#include <docvlm/model/weights.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// Every size of a Qwen-VL checkpoint, from config.json.
struct QwenVLDims {
    // vision ("visual" in config.json)
    std::size_t v_layers = 48, v_dim = 1664, v_heads = 16, v_mlp = 8192, image_size = 448, patch = 14, queries = 256, out_dim = 4096;
    std::int32_t image_start_id = 151857;  ///< <img>; </img> is +1, the image pad +2
    // decoder
    HfDecoderDims text{.layers = 32, .hidden = 4096, .heads = 32, .kv_heads = 32, .head_dim = 128, .mlp = 11008, .vocab = 151936,
                       .rms_eps = 1e-6f, .qkv_bias = true};
    float rope_theta = 10000.0f;
    std::size_t max_positions = 8192;

    static QwenVLDims from_config_json(const std::string& path);
    std::size_t grid() const { return image_size / patch; }
    std::int32_t image_end_id() const { return image_start_id + 1; }
    std::int32_t image_pad_id() const { return image_start_id + 2; }
};

template <class Config>
class QwenVLModel {
    static_assert(check_model_config<Config>());
    static_assert(detail::is_resampler<typename Config::fusion>::value, "QwenVLModel: Qwen-VL fuses by Resampler<queries>");
    static_assert(std::is_same_v<typename Config::vision::attention, FullAttention>, "QwenVLModel: the ViT attends with FullAttention");
    static_assert(std::is_same_v<typename Config::vision::position, NoPosition>,
                  "QwenVLModel: the ViT's positions are a learned table (position = NoPosition)");
    static_assert(std::is_same_v<typename Config::text::position, Rope1D>, "QwenVLModel: the decoder uses Rope1D");
    static_assert(std::is_same_v<typename Config::text::attention, CausalAttention>, "QwenVLModel: the decoder is CausalAttention");
    using W = typename Config::weights;

public:
    using Weights = W;
    using Context = TokenConcatContext<QwenVLModel>;

    /// Loads a checkpoint directory (config.json, safetensors).
    static QwenVLModel load(const std::string& dir);

    const QwenVLDims& dims() const { return d_; }
    int image_size() const { return int(d_.image_size); }

    /// Image tokens [queries, hidden] of preprocessed pixel values [3, S, S] (io::preprocess_square).
    /// Traced: vision_patch_embeds, vision_pos_embed, vision_ln_pre, vision_blk0_*, vision_block_out_<i>,
    /// resampler_*, vision_ln_post, image_features.
    Tensor<float, 2> encode_image(const Tensor<float, 3>& pixels, const Trace& trace = {}) const;

    Context context(std::size_t max_tokens) const { return Context(*this, max_tokens); }
    std::vector<std::vector<std::int32_t>> generate_batch(std::span<const BatchRequest> requests, GenerationStats* stats = nullptr) const {
        return token_concat_generate_batch(*this, requests, stats);
    }
    /// Qwen-VL-Chat's conversation for one image and a question, as the reference code builds it
    /// (qwen_generation_utils.make_context, chatml; the query "Picture 1: <img>…</img>\n" +
    /// question, the image span as `queries` pads):
    /// <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{query}<|im_end|>\n<|im_start|>assistant\n
    std::vector<std::int32_t> prompt(const io::Tokenizer& tok, std::string_view question,
                                     std::string_view system = "You are a helpful assistant.") const;
    /// The ids with every token between an <img> and its </img> (where the reference code keeps the
    /// image's path) replaced by the image pad id: those positions take the image tokens.
    std::vector<std::int32_t> pad_image_spans(std::span<const std::int32_t> ids) const;

    // The family's side of TokenConcatContext.
    const Decoder<W>& decoder() const { return dec_; }
    /// Runs the vision tower's blocks and the text decoder on a Backend from now on (e.g.
    /// backend::make_backend("cuda")): contexts made afterwards keep their KV caches there. The
    /// patch embedding and the connector stay on the CPU.
    void to_device(std::shared_ptr<backend::Backend> be) { blocks_.to_device(be); dec_.to_device(std::move(be)); }
    std::int32_t image_token() const { return d_.image_pad_id(); }
    std::size_t max_positions() const { return d_.max_positions; }
    /// Plain positions 0, 1, 2, ...
    RopePositions positions(std::span<const std::int32_t> ids, std::span<const ImageGrid>) const { return plain_positions(ids.size()); }
    void rope(RopeTable& t, const std::int64_t* const* pos, std::size_t n, const Trace& trace) const {
        rope1d_rows(t, pos, n, rope_inv_freq_, trace);
    }

private:
    QwenVLDims d_;
    PatchEmbed<W> patch_embed_;  // conv1 as a matmul over [3 · patch · patch] patch vectors
    std::vector<float> pos_;   // [grid², v_dim]: the position table at the patch grid
    LayerNorm ln_pre_, ln_post_;
    ViTStack<W> blocks_;
    CrossAttentionResampler<W> resampler_;
    Linear<W> proj_;           // x @ proj, as a Linear of proj's transpose
    Decoder<W> dec_;
    std::vector<float> rope_inv_freq_;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline QwenVLDims QwenVLDims::from_config_json(const std::string& path) {
    const nlohmann::json j = io::read_json_file(path);
    if (!j.is_object()) detail::fail(path, ": expected a JSON object");
    if (io::json_string(j, "model_type", "", path) != "qwen")
        detail::fail(path, ": model_type is '", io::json_string(j, "model_type", "(none)", path), "', expected 'qwen'");
    if (!j.contains("visual") || !j["visual"].is_object()) detail::fail(path, ": missing object 'visual' (a Qwen-VL checkpoint has one)");
    const nlohmann::json& v = j["visual"];
    auto size = [&](const nlohmann::json& o, const char* key, std::size_t fallback) {
        return std::size_t(io::json_number(o, key, double(fallback), 1, 1 << 20, true, path));
    };
    QwenVLDims d;
    d.v_layers = size(v, "layers", d.v_layers), d.v_dim = size(v, "width", d.v_dim), d.v_heads = size(v, "heads", d.v_heads);
    d.v_mlp = std::size_t(double(d.v_dim) * io::json_number(v, "mlp_ratio", 4.9231, 0.01, 100, false, path));
    d.image_size = size(v, "image_size", d.image_size), d.patch = size(v, "patch_size", d.patch);
    d.queries = size(v, "n_queries", d.queries), d.out_dim = size(v, "output_dim", d.out_dim);
    HfDecoderDims& t = d.text;
    t.layers = size(j, "num_hidden_layers", t.layers), t.hidden = size(j, "hidden_size", t.hidden);
    t.heads = t.kv_heads = size(j, "num_attention_heads", t.heads);
    t.head_dim = size(j, "kv_channels", t.hidden / t.heads);
    // QWenMLP: w1 and w2 are intermediate_size / 2 wide
    t.mlp = size(j, "intermediate_size", 2 * t.mlp) / 2;
    t.vocab = size(j, "vocab_size", t.vocab);
    t.rms_eps = float(io::json_number(j, "layer_norm_epsilon", 1e-6, 0, 1, false, path));
    t.tie_embeddings = io::json_flag(j, "tie_word_embeddings", false, path);
    d.image_start_id = std::int32_t(io::json_number(v, "image_start_id", d.image_start_id, 0, double(t.vocab) - 3, true, path));
    d.rope_theta = float(io::json_number(j, "rotary_emb_base", 10000.0, 1, 1e9, false, path));
    if (io::json_number(j, "rotary_pct", 1.0, 0, 1, false, path) != 1.0) detail::fail(path, ": rotary_pct below 1 is not supported");
    d.max_positions = size(j, "seq_length", d.max_positions);
    if (t.head_dim * t.heads != t.hidden) detail::fail(path, ": kv_channels · num_attention_heads differs from hidden_size");
    if (t.head_dim % 2) detail::fail(path, ": kv_channels ", t.head_dim, " is odd (rope)");
    if (d.v_dim % d.v_heads) detail::fail(path, ": visual heads ", d.v_heads, " do not divide width ", d.v_dim);
    if (d.image_size % d.patch) detail::fail(path, ": visual image_size ", d.image_size, " is not a multiple of patch_size ", d.patch);
    if (d.out_dim != t.hidden) detail::fail(path, ": visual output_dim ", d.out_dim, " differs from hidden_size ", t.hidden);
    if (d.out_dim < 128 || d.out_dim % 128) detail::fail(path, ": visual output_dim ", d.out_dim, " is not a multiple of 128 (the resampler's heads are 128 wide)");
    const auto g = std::size_t(std::llround(std::sqrt(double(d.queries))));
    if (g * g != d.queries) detail::fail(path, ": visual n_queries ", d.queries, " is not a square");
    return d;
}

/// Qwen-VL's special tokens from `first` on (151643, just past qwen.tiktoken's ranks):
/// <|endoftext|>, <|im_start|>, <|im_end|>, <|extra_0|> … <|extra_204|>, <ref>, </ref>, <box>, </box>,
/// <quad>, </quad>, <img>, </img>, <imgpad> (tokenization_qwen.py's order).
inline std::vector<io::AddedToken> qwen_vl_special_tokens(std::int32_t first = 151643) {
    std::vector<std::string> names = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    for (int i = 0; i < 205; ++i) names.push_back("<|extra_" + std::to_string(i) + "|>");
    for (const char* t : {"<ref>", "</ref>", "<box>", "</box>", "<quad>", "</quad>", "<img>", "</img>", "<imgpad>"}) names.push_back(t);
    std::vector<io::AddedToken> out;
    for (std::size_t i = 0; i < names.size(); ++i) out.push_back({names[i], first + std::int32_t(i), true});
    return out;
}

/// A Qwen-VL folder's tokenizer: qwen.tiktoken and the special tokens after it.
inline io::Tokenizer qwen_vl_tokenizer(const std::string& dir) {
    const std::string path = (std::filesystem::path(dir) / "qwen.tiktoken").string();
    std::ifstream in(path, std::ios::binary);
    if (!in) detail::fail(path, ": cannot open (a Qwen-VL folder holds its tokenizer as qwen.tiktoken)");
    std::size_t lines = 0;
    for (std::string line; std::getline(in, line);) lines += !line.empty();
    return io::Tokenizer::from_tiktoken(path, qwen_vl_special_tokens(std::int32_t(lines)));
}

/// QwenVLModel::prompt for the sizes `d` (image ids and number of queries).
inline std::vector<std::int32_t> qwen_vl_prompt(const io::Tokenizer& tok, const QwenVLDims& d, std::string_view question,
                                                std::string_view system = "You are a helpful assistant.") {
    auto id = [&](const char* name) {
        const auto t = tok.token_id(name);
        if (!t) detail::fail("prompt: the tokenizer has no ", name, " token");
        return *t;
    };
    if (id("<img>") != d.image_start_id)
        detail::fail("prompt: the tokenizer's <img> is ", id("<img>"), ", the model's image_start_id ", d.image_start_id);
    std::vector<std::int32_t> out;
    auto text = [&](std::string_view s) {
        const auto ids = tok.encode(s);
        out.insert(out.end(), ids.begin(), ids.end());
    };
    const std::int32_t start = id("<|im_start|>"), end = id("<|im_end|>");
    out.push_back(start), text("system"), text("\n"), text(system), out.push_back(end);
    text("\n"), out.push_back(start), text("user"), text("\n");
    text("Picture 1: "), out.push_back(d.image_start_id);
    out.insert(out.end(), d.queries, d.image_pad_id());
    out.push_back(d.image_end_id()), text("\n" + std::string(question)), out.push_back(end);  // one segment, as the query's text
    text("\n"), out.push_back(start), text("assistant"), text("\n");
    return out;
}

template <class Config>
std::vector<std::int32_t> QwenVLModel<Config>::prompt(const io::Tokenizer& tok, std::string_view question, std::string_view system) const {
    return qwen_vl_prompt(tok, d_, question, system);
}

template <class Config>
std::vector<std::int32_t> QwenVLModel<Config>::pad_image_spans(std::span<const std::int32_t> ids) const {
    std::vector<std::int32_t> out(ids.begin(), ids.end());
    bool inside = false;
    for (std::int32_t& id : out) {
        if (id == d_.image_start_id) inside = true;
        else if (id == d_.image_end_id()) inside = false;
        else if (inside) id = d_.image_pad_id();
    }
    return out;
}

namespace detail {
// The square side of a [side², ...] table; throws when it is not square.
inline std::size_t square_side(std::size_t rows, const std::string& what) {
    const auto s = std::size_t(std::llround(std::sqrt(double(rows))));
    if (s * s != rows) fail(what, ": ", rows, " rows do not make a square grid");
    return s;
}
// A table [side², ch] at another side (bicubic, as get_abs_pos), or as it is when the sides agree.
inline std::vector<float> grid_at(const std::vector<float>& table, std::size_t ch, std::size_t side, const std::string& what) {
    const std::size_t src = square_side(table.size() / ch, what);
    if (src == side) return table;
    return resize_grid_bicubic(table.data(), src, src, ch, side, side);
}

// The decoder under the reference code's names: transformer.wte, transformer.h.<i>.{ln_1,
// attn.c_attn (q | k | v rows, with bias), attn.c_proj, ln_2, mlp.w1, mlp.w2, mlp.c_proj},
// transformer.ln_f, lm_head. QWenMLP computes c_proj(w1(x) · silu(w2(x))): w2 is the gate.
template <WeightPolicy W>
Decoder<W> load_qwen_decoder(const io::Checkpoint& ck, const QwenVLDims& d) {
    const HfDecoderDims& t = d.text;
    const std::size_t h = t.hidden;
    Decoder<W> dec;
    for (std::size_t i = 0; i < t.layers; ++i) {
        const std::string l = "transformer.h." + std::to_string(i) + ".";
        const Array<float> qkv = load_tensor(ck, l + "attn.c_attn.weight", {3 * h, h});
        const Array<float> qkv_b = load_tensor(ck, l + "attn.c_attn.bias", {3 * h});
        auto part = [&](std::size_t k) { return Linear<W>(qkv.data() + k * h * h, h, h, qkv_b.data() + k * h); };
        auto lin = [&](const std::string& name, std::size_t out, std::size_t in) { return load_linear<W>(ck, l + name + ".weight", "", out, in); };
        DecoderBlock<W> b;
        b.norm1 = load_rms_norm(ck, l + "ln_1.weight", h, t.rms_eps);
        b.norm2 = load_rms_norm(ck, l + "ln_2.weight", h, t.rms_eps);
        b.q = part(0), b.k = part(1), b.v = part(2);
        b.o = lin("attn.c_proj", h, h);
        b.mlp = Mlp<W>::gated(lin("mlp.w2", t.mlp, h), lin("mlp.w1", t.mlp, h), lin("mlp.c_proj", h, t.mlp));
        b.heads = t.heads, b.kv_heads = t.kv_heads, b.head_dim = t.head_dim, b.int8_attention = int8_weights<W>;
        dec.blocks.push_back(std::move(b));
    }
    dec.norm = load_rms_norm(ck, "transformer.ln_f.weight", h, t.rms_eps);
    const Array<float> emb = load_tensor(ck, "transformer.wte.weight", {t.vocab, h});
    dec.embed = Embedding(emb.data(), t.vocab, h, !std::is_same_v<W, F32>);
    if (ck.contains("lm_head.weight") || ck.contains(PackedNames("lm_head.weight").data)) dec.head = load_linear<W>(ck, "lm_head.weight", "", t.vocab, h);
    else if (t.tie_embeddings) dec.head = Linear<W>(emb.data(), t.vocab, h);
    else detail::fail(ck.source(), ": no lm_head.weight (and tie_word_embeddings is not set)");
    dec.validate();
    return dec;
}
}  // namespace detail

template <class Config>
QwenVLModel<Config> QwenVLModel<Config>::load(const std::string& dir) {
    namespace fs = std::filesystem;
    const std::string cfg_path = (fs::path(dir) / "config.json").string();
    QwenVLModel m;
    m.d_ = QwenVLDims::from_config_json(cfg_path);
    const QwenVLDims& d = m.d_;
    using V = typename Config::vision;
    using T = typename Config::text;
    detail::check_size(V::depth, d.v_layers, "visual layers", cfg_path);
    detail::check_size(V::dim, d.v_dim, "visual width", cfg_path);
    detail::check_size(V::heads, d.v_heads, "visual heads", cfg_path);
    detail::check_size(V::mlp, d.v_mlp, "visual mlp width", cfg_path);
    detail::check_size(V::patch, d.patch, "visual patch_size", cfg_path);
    detail::check_size(Config::fusion::queries, d.queries, "visual n_queries", cfg_path);
    detail::check_size(T::layers, d.text.layers, "num_hidden_layers", cfg_path);
    detail::check_size(T::hidden, d.text.hidden, "hidden_size", cfg_path);
    detail::check_size(T::heads, d.text.heads, "num_attention_heads", cfg_path);
    detail::check_size(T::kv_heads, d.text.kv_heads, "num_attention_heads", cfg_path);
    detail::check_size(T::mlp, d.text.mlp, "intermediate_size / 2", cfg_path);
    detail::check_size(T::vocab, d.text.vocab, "vocab_size", cfg_path);

    const io::Checkpoint ck = io::Checkpoint::open(dir);
    const std::string vp = "transformer.visual.";
    const std::size_t vd = d.v_dim, E = d.out_dim, P = d.patch, g = d.grid();
    auto vec = [&](const std::string& name, std::vector<std::size_t> shape) {
        const Array<float> a = load_tensor(ck, name, shape);
        return std::vector<float>(a.begin(), a.end());
    };
    auto lin = [&](const std::string& name, std::size_t out, std::size_t in, bool bias) {
        return load_linear<W>(ck, name + ".weight", bias ? name + ".bias" : std::string(), out, in);
    };
    m.patch_embed_ = PatchEmbed<W>(Linear<W>(load_tensor(ck, vp + "conv1.weight", {vd, 3, P, P}).data(), vd, 3 * P * P), 3, P);
    const std::string pe = vp + "positional_embedding";
    if (!ck.contains(pe)) detail::fail(ck.source(), ": missing tensor '", pe, "'");
    m.pos_ = detail::grid_at(vec(pe, {ck.info(pe).shape.empty() ? 0 : ck.info(pe).shape[0], vd}), vd, g, pe);
    m.ln_pre_ = load_layer_norm(ck, vp + "ln_pre", vd, 1e-6f);
    for (std::size_t i = 0; i < d.v_layers; ++i) {
        const std::string b = vp + "transformer.resblocks." + std::to_string(i) + ".";
        // in_proj rows are per head: [q_h | k_h | v_h] for h = 0, 1, ... (the reference splits each head's 3 · hd)
        const Array<float> w = load_tensor(ck, b + "attn.in_proj.weight", {3 * vd, vd});
        const Array<float> bias = load_tensor(ck, b + "attn.in_proj.bias", {3 * vd});
        const std::size_t hd = vd / d.v_heads;
        std::vector<float> pw[3], pb[3];
        for (int part = 0; part < 3; ++part) {
            pw[part].resize(vd * vd), pb[part].resize(vd);
            for (std::size_t h = 0; h < d.v_heads; ++h)
                for (std::size_t r = 0; r < hd; ++r) {
                    const std::size_t src = (h * 3 + std::size_t(part)) * hd + r, dst = h * hd + r;
                    std::copy_n(w.data() + src * vd, vd, pw[part].data() + dst * vd);
                    pb[part][dst] = bias.data()[src];
                }
        }
        ViTBlock<W> blk;
        blk.norm1 = load_layer_norm(ck, b + "ln_1", vd, 1e-6f);
        blk.norm2 = load_layer_norm(ck, b + "ln_2", vd, 1e-6f);
        blk.attn = SelfAttention<W, FullAttention, NoPosition>(Linear<W>(pw[0].data(), vd, vd, pb[0].data()), Linear<W>(pw[1].data(), vd, vd, pb[1].data()),
                                                               Linear<W>(pw[2].data(), vd, vd, pb[2].data()), lin(b + "attn.out_proj", vd, vd, true),
                                                               d.v_heads, d.v_heads);
        blk.mlp = Mlp<W>::plain(lin(b + "mlp.c_fc", d.v_mlp, vd, true), lin(b + "mlp.c_proj", vd, d.v_mlp, true), Activation::gelu_erf);
        m.blocks_.blocks.push_back(std::move(blk));
    }
    // the resampler: queries through ln_q plus their sin-cos positions; keys' positions at the patch grid
    const std::string ap = vp + "attn_pool.";
    const std::vector<float> pos_q = vec(ap + "pos_embed", {d.queries, E});
    std::vector<float> q_in = vec(ap + "query", {d.queries, E});
    load_layer_norm(ck, ap + "ln_q", E, 1e-6f).forward(q_in.data(), d.queries, E, q_in.data(), E);
    for (std::size_t i = 0; i < q_in.size(); ++i) q_in[i] += pos_q[i];
    const Array<float> in_w = load_tensor(ck, ap + "attn.in_proj_weight", {3 * E, E});  // nn.MultiheadAttention: q, k, v blocks
    const Array<float> in_b = load_tensor(ck, ap + "attn.in_proj_bias", {3 * E});
    auto part = [&](std::size_t k) { return Linear<W>(in_w.data() + k * E * E, E, E, in_b.data() + k * E); };
    Linear<W> kv_proj;
    if (vd != E) kv_proj = lin(ap + "kv_proj", E, vd, false);
    m.resampler_ = CrossAttentionResampler<W>(q_in, detail::grid_at(pos_q, E, g, ap + "pos_embed"), std::move(kv_proj),
                                              load_layer_norm(ck, ap + "ln_kv", E, 1e-6f), part(0), part(1), part(2),
                                              lin(ap + "attn.out_proj", E, E, true), E / 128);
    m.ln_post_ = load_layer_norm(ck, vp + "ln_post", E, 1e-6f);
    {
        const Array<float> proj = load_tensor(ck, vp + "proj", {E, E});  // used as x @ proj
        std::vector<float> t(E * E);
        for (std::size_t r = 0; r < E; ++r)
            for (std::size_t c = 0; c < E; ++c) t[c * E + r] = proj.data()[r * E + c];
        m.proj_ = Linear<W>(t.data(), E, E);
    }
    m.dec_ = detail::load_qwen_decoder<W>(ck, d);
    m.rope_inv_freq_ = rope_inv_freq(d.text.head_dim, d.rope_theta);
    return m;
}

template <class Config>
Tensor<float, 2> QwenVLModel<Config>::encode_image(const Tensor<float, 3>& px, const Trace& trace) const {
    const QwenVLDims& d = d_;
    const std::size_t g = d.grid(), n = g * g, vd = d.v_dim, E = d.out_dim;
    if (px.shape()[0] != 3 || px.shape()[1] != d.image_size || px.shape()[2] != d.image_size)
        detail::fail("encode_image: pixel values are ", px.shape()[0], "x", px.shape()[1], "x", px.shape()[2], ", the model takes 3x",
                     d.image_size, "x", d.image_size, " (io::preprocess_square)");
    std::vector<float> x(n * vd);
    patch_embed_.forward(px.data(), d.image_size, d.image_size, PatchOrder::rows, x.data(), vd);
    detail::emit(trace, "vision_patch_embeds", x.data(), n, vd);
    detail::emit(trace, "vision_pos_embed", pos_.data(), n, vd);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += pos_[i];
    ln_pre_.forward(x.data(), n, vd, x.data(), vd);
    detail::emit(trace, "vision_ln_pre", x.data(), n, vd);
    Workspace ws = blocks_.workspace(n);
    blocks_.forward(x.data(), n, ws, nullptr, trace);
    std::vector<float> pooled(d.queries * E);
    resampler_.forward(x.data(), n, pooled.data(), trace);
    ln_post_.forward(pooled.data(), d.queries, E, pooled.data(), E);
    detail::emit(trace, "vision_ln_post", pooled.data(), d.queries, E);
    Tensor<float, 2> out = Tensor<float, 2>::from_shape({d.queries, E});
    proj_.forward(pooled.data(), d.queries, E, out.data(), E);
    detail::emit(trace, "image_features", out.data(), d.queries, E);
    return out;
}

DOCVLM_NAMESPACE_END
