// docvlm/model/gated_vlm.hpp — GatedVlmModel<Config>: a ViT with windowed/anchor attention whose
// tokens a decoder reads through gated cross-attention (Flamingo style). docvlm's embedded model
// (presets/docvlm_small.hpp, tools/train/model.py) is one; Model<Config> picks this composition
// when Config::fusion is GatedCrossAttention<k>.
//
//   input    one gray crop, resized (Pillow bicubic) to the task's height, width a multiple of the
//            patch (white padding on the right), pixels p / 127.5 - 1, cut into patch x patch
//            patches in column-major order (x, then y), so a window of neighbouring tokens is a
//            neighbourhood along the line;
//   vision   Linear(patch²) + row/column embeddings; `anchors` learned tokens in front; ViT blocks
//            x += o(attn(ln1 x)) with Config::vision::attention (WindowAnchor<w, a>), x += mlp(ln2 x)
//            (GELU); final LayerNorm;
//   decoder  byte tokens + specials; per layer: a GatedCrossAttentionLayer every k layers, causal
//            self-attention with Rope1D (qkv bias), SwiGLU MLP; RMSNorm; LM head tied to the embedding.
//
// Weights: tensor names as tools/train/model.py's state_dict; a weight stored as I8 with a
// `<name>_scale` F32 [out] tensor is symmetric int8 per output channel (what the QAT export writes):
// int8 policies use it as is, F32/BF16 dequantise it.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/io/json.hpp>
#include <docvlm/io/lexicon.hpp>
#include <docvlm/io/safetensors.hpp>
#include <docvlm/kernels/attention.hpp>
#include <docvlm/layers/attention.hpp>
#include <docvlm/layers/linear.hpp>
#include <docvlm/layers/norm.hpp>
#include <docvlm/layers/rope.hpp>
#include <docvlm/layers/vit_block.hpp>
#include <docvlm/model/beam_search.hpp>
#include <docvlm/model/config.hpp>
#include <docvlm/model/decoder.hpp>
#include <docvlm/model/generation.hpp>
#include <docvlm/model/gated_vlm_dims.hpp>
#include <docvlm/model/generator.hpp>
#include <docvlm/model/qwen2vl.hpp>
#include <docvlm/model/weights.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// The table splitter's maps for one prepared table input of rows × cols patches, as logits (a
/// positive value: a separator). Pixel rows y = patch row · patch + k, pixel columns likewise.
struct SplitMaps {
    std::size_t rows = 0, cols = 0, patch = 0;
    std::vector<float> local_row;  ///< [cols][rows · patch]: a row separator between two different cells, in this patch column
    std::vector<float> local_col;  ///< [rows][cols · patch]: a column separator between two different cells, in this patch row
    std::vector<float> row;        ///< [rows · patch]: a row separator across the table
    std::vector<float> col;        ///< [cols · patch]: a column separator across the table
};

template <class Config>
class GatedVlmModel {
    static_assert(check_model_config<Config>());
    static_assert(detail::is_gated_xattn<typename Config::fusion>::value, "GatedVlmModel: fusion must be GatedCrossAttention<k>");
    static_assert(std::is_same_v<typename Config::vision::position, NoPosition>,
                  "GatedVlmModel: the vision tokens carry learned row/column embeddings (position = NoPosition)");
    static_assert(std::is_same_v<typename Config::text::position, Rope1D>, "GatedVlmModel: the decoder uses Rope1D");
    static_assert(std::is_same_v<typename Config::text::attention, CausalAttention>, "GatedVlmModel: the decoder is CausalAttention");
    using W = typename Config::weights;

public:
    class Context;

    /// Loads a model folder: config.json and model.safetensors, and lexicon.txt where the folder
    /// has one (io/lexicon.hpp: the words a page parser may correct a misread word to).
    static GatedVlmModel load(const std::string& dir);

    const GatedVlmDims& dims() const { return d_; }
    /// The folder's word list, or null when it has none.
    const io::Lexicon* lexicon() const { return lexicon_.get(); }

    /// The model's input for one crop (gray or RGB, any size): gray, resized to the task's height
    /// (Pillow bicubic) keeping the aspect ratio, width clamped to [patch, max_width] and padded
    /// with white to a multiple of the patch.
    io::Image prepare(const io::Image& crop, std::string_view task) const;

    /// The table input for a table crop whose text lines are `line_height` pixels high: gray,
    /// scaled (Pillow bicubic) by min(line height / line_height, max height / height, max width /
    /// width) — the table splitter's sizes (dims().split) where the model has one, else the table
    /// task's — padded with white on the right and bottom to multiples of the
    /// patch. `scale` receives the factor (model pixels per crop pixel).
    io::Image prepare_table(const io::Image& crop, double line_height, double& scale) const;

    /// Vision tokens [anchors + columns · rows, v_dim] of a prepared crop.
    Tensor<float, 2> encode_image(const io::Image& prepared, const Trace& trace = {}) const;

    /// The table splitter's separator maps of a table input (prepare_table), read in tiles
    /// (GatedVlmDims::TableSplit); throws when the model has no table splitter
    /// (dims().split.present) or the input is larger than its max_height × max_width. Trace names,
    /// per tile of the first reading, as encode_image's, then "split_axial_out_<i>" and
    /// "split_head" [columns · rows, 6 · patch]. A pixel row's separator logit is the patch
    /// columns' votes weighted by the softmax of their weights (tools/train/model.py TableSplit),
    /// averaged with a second, shifted reading's where dims().split.shift is set.
    SplitMaps table_split_maps(const io::Image& prepared, const Trace& trace = {}) const;

    /// The text decoder (its gated cross-attention layers included).
    const Decoder<W>& decoder() const { return dec_; }
    /// A decoding context for `max_tokens` tokens (task token + output). One per thread.
    Context context(std::size_t max_tokens = 0) const { return Context(*this, max_tokens ? max_tokens : d_.max_tokens); }
    /// Runs the vision tower's blocks and the text decoder on a Backend from now on (e.g.
    /// backend::make_backend("cuda")): contexts made afterwards keep their KV caches there. The
    /// patch embedding and the connector stay on the CPU.
    void to_device(std::shared_ptr<backend::Backend> be) {
        vision_.blocks.to_device(be);
        if (!table_vision_.blocks.blocks.empty()) table_vision_.blocks.to_device(be);
        dec_.to_device(std::move(be));
    }

    /// Reads several images with one task at once: vision[i] holds image i's vision tokens and
    /// max_new[i] (when given) bounds its output, else opt.max_new_tokens does. The decoder steps
    /// all unfinished sequences together, so each weight matrix is read once per step for the
    /// whole batch instead of once per image. Each result is what Context::generate gives for that
    /// image alone (rows are computed independently); the end token is not included.
    /// `logprobs`, when given, receives each image's token log-probabilities (GenerationOptions::
    /// logprobs), the end token's last when the output ended with it; `alternatives`, when given,
    /// each image's GenerationOptions::alternatives (opt.alternatives per step, in the same order).
    std::vector<std::vector<std::int32_t>> generate_batch(std::span<const Tensor<float, 2>> vision, std::string_view task,
                                                          const GenerationOptions& opt, std::span<const std::size_t> max_new = {},
                                                          std::vector<std::vector<float>>* logprobs = nullptr,
                                                          std::vector<std::vector<TokenAlternative>>* alternatives = nullptr) const;
    /// Reads several images with one task by beam search (beam_search_rows): each image's most
    /// probable reading of `width` kept at each step, bounded by max_new[i] tokens (and the
    /// context), with `alternatives` unchosen tokens per step. All images' readings step together.
    std::vector<BeamReading> generate_beams(std::span<const Tensor<float, 2>> vision, std::string_view task, std::size_t width,
                                            std::span<const std::size_t> max_new, std::size_t alternatives = 0) const;

    class Context {
    public:
        /// Reads the vision tokens of one image and runs `ids` (usually the task token); returns the
        /// logits of the last token, or of every token [n, vocab] with all_logits.
        std::span<const float> prefill(const Tensor<float, 2>& vision, std::span<const std::int32_t> ids, const Trace& trace = {},
                                       bool all_logits = false);
        /// Appends one token; returns the logits of the next.
        std::span<const float> decode_step(std::int32_t token);
        /// Appends tokens after the ones held (after truncate(0): the first, read with prefill's
        /// image); returns the logits of the last, or of each [n, vocab] with all_logits.
        std::span<const float> append(std::span<const std::int32_t> ids, bool all_logits = false) {
            if (!attached_) detail::fail("append: call prefill first");
            if (ids.empty()) detail::fail("append: no tokens");
            return forward(ids.data(), ids.size(), {}, all_logits);
        }
        /// Empties this context and gives it the image `other` read (prefill), its keys and values
        /// shared rather than projected again: contexts that read one image side by side (beam
        /// search). Then append() runs the prompt as prefill would have.
        void share_image(const Context& other) {
            if (other.m_ != m_) detail::fail("share_image: the other context belongs to another model");
            if (!other.attached_) detail::fail("share_image: the other context has read no image (prefill first)");
            m_->dec_.share_vision(state_, other.state_);
            attached_ = true;
        }
        /// Keeps the first n tokens (prefill's included) and forgets the rest (Decoder::State::truncate).
        void truncate(std::size_t n) { state_.truncate(n); }
        /// prefill({task token}) + decode loop; the output stops before the end token.
        std::vector<std::int32_t> generate(const Tensor<float, 2>& vision, std::string_view task, const GenerationOptions& opt,
                                           const TokenCallback& on_token = {}, GenerationStats* stats = nullptr);
        std::size_t length() const { return state_.length(); }

    private:
        friend class GatedVlmModel;
        Context(const GatedVlmModel& m, std::size_t max_tokens) : m_(&m), state_(m.dec_, max_tokens) {}
        void attach(const Tensor<float, 2>& vision);  // empties the context and reads the image's vision tokens
        std::span<const float> forward(const std::int32_t* ids, std::size_t n, const Trace& trace, bool all_logits);

        const GatedVlmModel* m_;
        typename Decoder<W>::State state_;
        std::vector<float> x_;                 // [n, dim] token embeddings
        std::vector<std::int64_t> positions_;  // [n]
        RopeTable rope_;
        bool attached_ = false;                // an image's vision tokens are read (prefill)
    };

private:
    struct BatchScratch {
        typename Decoder<W>::Batch b;
        std::vector<typename Decoder<W>::State*> states;
        std::vector<std::int64_t> pos;
        RopeTable rope;
    };
    // One decoding step for n contexts (one new token each, at each context's own position);
    // returns logits [n, vocab].
    std::span<float> step_rows(Context* const* ctxs, const std::int32_t* ids, std::size_t n, BatchScratch& s) const;

    // Vision blocks attend with the Config's pattern, the splitter's axial blocks to the whole row or column.
    using VisionBlock = ViTBlock<W, typename Config::vision::attention>;
    using AxialBlock = ViTBlock<W>;
    template <class Block>
    static Block load_block(const io::Checkpoint& ck, const std::string& prefix, const GatedVlmDims& d);
    // A vision encoder: the model's own, and the table splitter's (tensor names with a prefix).
    struct VisionTower {
        std::size_t max_rows = 0, max_cols = 0;
        bool out_pos = false;
        PatchEmbed<W> patch_embed;  // gray patches, column by column
        std::vector<float> row_embed, col_embed, anchor;
        std::vector<float> out_row_embed, out_col_embed;  // empty unless out_pos
        ViTStack<W, typename Config::vision::attention> blocks;
        LayerNorm norm;
        static VisionTower load(const io::Checkpoint& ck, const std::string& prefix, const GatedVlmDims& d, std::size_t max_rows, bool out_pos);
        Tensor<float, 2> encode(const io::Image& img, const GatedVlmDims& d, const Trace& trace) const;
    };

    GatedVlmDims d_;
    VisionTower vision_;
    VisionTower table_vision_;  // empty unless dims().split.present
    std::vector<AxialBlock> split_axial_;  // row block, column block, row block, ...
    // the splitter's head logits [columns · rows, 6 · patch] of one tile (column-major tokens)
    std::vector<float> split_head_logits(const io::Image& tile, const Trace& trace) const;
    // the maps of one reading of a prepared input (any multiple of the patch), in tiles
    SplitMaps split_reading(const io::Image& img, const Trace& trace) const;
    Linear<W> split_head_;
    Decoder<W> dec_;
    std::vector<float> rope_inv_freq_;
    std::shared_ptr<const io::Lexicon> lexicon_;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

template <class Config>
GatedVlmModel<Config> GatedVlmModel<Config>::load(const std::string& dir) {
    namespace fs = std::filesystem;
    const std::string cfg_path = (fs::path(dir) / "config.json").string();
    GatedVlmModel m;
    m.d_ = GatedVlmDims::from_config_json(cfg_path);
    const GatedVlmDims& d = m.d_;
    using V = typename Config::vision;
    using T = typename Config::text;
    detail::check_size(V::depth, d.v_layers, "vision_layers", cfg_path);
    detail::check_size(V::dim, d.v_dim, "vision_dim", cfg_path);
    detail::check_size(V::heads, d.v_heads, "vision_heads", cfg_path);
    detail::check_size(V::mlp, d.v_mlp, "vision_mlp", cfg_path);
    detail::check_size(V::patch, d.patch, "patch", cfg_path);
    detail::check_size(T::layers, d.layers, "text_layers", cfg_path);
    detail::check_size(T::hidden, d.dim, "text_dim", cfg_path);
    detail::check_size(T::heads, d.heads, "text_heads", cfg_path);
    detail::check_size(T::kv_heads, d.kv_heads, "text_kv_heads", cfg_path);
    detail::check_size(T::mlp, d.mlp, "text_mlp", cfg_path);
    detail::check_size(T::vocab, d.vocab, "vocab", cfg_path);
    // the attention pattern is compile-time only: the weights were trained with it
    auto pattern = [&](int want, std::size_t got, const char* what, const char* in_type) {
        if (std::size_t(want) != got)
            detail::fail(cfg_path, ": ", what, " is ", got, " but the Config's ", in_type, " has ", want,
                         " (the weights were trained with ", got, ")");
    };
    pattern(Config::fusion::every, d.xattn_every, "xattn_every", "GatedCrossAttention<every>");
    using A = typename V::attention;
    if constexpr (detail::is_window_anchor<A>::value) {
        pattern(A::window, d.window, "window", "WindowAnchor<window, anchors>");
        pattern(A::anchors, d.anchors, "anchors", "WindowAnchor<window, anchors>");
    }

    const io::Checkpoint ck = io::Checkpoint::open(dir);
    const std::size_t vd = d.v_dim, td = d.dim, hd = d.head_dim(), kvd = d.kv_heads * hd;
    auto lin = [&](const std::string& name, std::size_t out, std::size_t in, bool bias) {
        return load_linear<W>(ck, name + ".weight", bias ? name + ".bias" : std::string(), out, in);
    };
    auto vec = [&](const std::string& name, std::vector<std::size_t> shape) {
        const Array<float> a = load_tensor(ck, name, shape);
        return std::vector<float>(a.begin(), a.end());
    };
    m.vision_ = VisionTower::load(ck, "", d, d.max_rows, d.out_pos);
    if (d.split.present) {
        m.table_vision_ = VisionTower::load(ck, "table.", d, d.split.max_rows, d.split.out_pos);
        for (std::size_t b = 0; b < 2 * d.split.axial; ++b) m.split_axial_.push_back(load_block<AxialBlock>(ck, "table.axial." + std::to_string(b) + ".", d));
        m.split_head_ = lin("table.head", 6 * d.patch, vd, true);
    }
    const Array<float> embed = load_tensor(ck, "embed.weight", {d.vocab, td});
    m.dec_.embed = Embedding(embed.data(), d.vocab, td, false);
    for (std::size_t l = 0; l < d.layers; ++l) {
        const std::string p = "text." + std::to_string(l) + ".";
        if (l % d.xattn_every == 0) {
            const std::string c = p + "cross.";
            auto gate = [&](const std::string& name) {
                if (!ck.contains(name)) detail::fail(ck.source(), ": missing tensor '", name, "'");
                const std::size_t n = ck.info(name).numel();
                return vec(name, {n == 1 ? std::size_t(1) : td});
            };
            m.dec_.cross_before.push_back(int(m.dec_.cross.size()));
            m.dec_.cross.emplace_back(load_rms_norm(ck, c + "norm1.weight", td, d.eps), lin(c + "q", td, td, false), lin(c + "k", kvd, vd, false),
                                      lin(c + "v", kvd, vd, false), lin(c + "o", td, td, false), gate(c + "attn_gate"),
                                      load_rms_norm(ck, c + "norm2.weight", td, d.eps),
                                      Mlp<W>::gated(lin(c + "mlp.gate", d.xattn_mlp, td, false), lin(c + "mlp.up", d.xattn_mlp, td, false),
                                                    lin(c + "mlp.down", td, d.xattn_mlp, false)),
                                      gate(c + "mlp_gate"), d.heads, d.kv_heads);
        } else {
            m.dec_.cross_before.push_back(-1);
        }
        DecoderBlock<W> L;
        L.norm1 = load_rms_norm(ck, p + "norm1.weight", td, d.eps);
        L.norm2 = load_rms_norm(ck, p + "norm2.weight", td, d.eps);
        L.q = lin(p + "q", td, td, true);
        L.k = lin(p + "k", kvd, td, true);
        L.v = lin(p + "v", kvd, td, true);
        L.o = lin(p + "o", td, td, false);
        L.mlp = Mlp<W>::gated(lin(p + "mlp.gate", d.mlp, td, false), lin(p + "mlp.up", d.mlp, td, false), lin(p + "mlp.down", td, d.mlp, false));
        L.heads = d.heads, L.kv_heads = d.kv_heads, L.head_dim = hd;
        m.dec_.blocks.push_back(std::move(L));
    }
    m.dec_.norm = load_rms_norm(ck, "norm.weight", td, d.eps);
    m.dec_.head = Linear<W>(embed.data(), d.vocab, td);  // tied
    m.dec_.validate();
    m.rope_inv_freq_ = rope_inv_freq(hd, d.rope_theta);
    if (const fs::path words = fs::path(dir) / "lexicon.txt"; fs::exists(words))
        m.lexicon_ = std::make_shared<const io::Lexicon>(io::Lexicon::load(words.string()));
    return m;
}

template <class Config>
io::Image GatedVlmModel<Config>::prepare(const io::Image& crop, std::string_view task) const {
    const std::size_t height = d_.height_of(task);
    if (crop.width <= 0 || crop.height <= 0) detail::fail("prepare: empty crop");
    const io::Image gray = crop.channels == 1 ? crop : io::to_gray(crop);
    const double w = std::round(double(gray.width) * double(height) / double(gray.height));
    const int new_w = int(std::clamp(w, double(d_.patch), double(d_.max_width())));
    const io::Image scaled = io::resize(gray, new_w, int(height), io::Resample::bicubic);
    const int padded = int((std::size_t(new_w) + d_.patch - 1) / d_.patch * d_.patch);
    io::Image out(padded, int(height), 1, 255);
    for (int y = 0; y < int(height); ++y) std::copy_n(scaled.row(y), new_w, out.row(y));
    return out;
}

template <class Config>
io::Image GatedVlmModel<Config>::prepare_table(const io::Image& crop, double line_height, double& scale) const {
    if (!d_.table.present && !d_.split.present) detail::fail("prepare_table: this model has no table task and no table splitter");
    if (crop.width <= 0 || crop.height <= 0) detail::fail("prepare_table: empty crop");
    const io::Image gray = crop.channels == 1 ? crop : io::to_gray(crop);
    // the table splitter's sizes where it has one, else the table task's
    const bool split = d_.split.present;
    const double max_h = split ? double(d_.split.max_height) : double(d_.height_of("table"));
    const double max_w = double(split ? d_.split.max_width : d_.table.max_width);
    const double line = split ? d_.split.line_height : d_.table.line_height;
    scale = std::min({line / std::max(1.0, line_height), max_h / gray.height, max_w / gray.width});
    // Python's round(): halves to even, as std::nearbyint in the default rounding mode
    const int w = int(std::clamp(std::nearbyint(gray.width * scale), 1.0, max_w));
    const int h = int(std::clamp(std::nearbyint(gray.height * scale), 1.0, max_h));
    const io::Image scaled = io::resize(gray, w, h, io::Resample::bicubic);
    const int P = int(d_.patch);
    io::Image out((w + P - 1) / P * P, (h + P - 1) / P * P, 1, 255);
    for (int y = 0; y < h; ++y) std::copy_n(scaled.row(y), w, out.row(y));
    return out;
}

template <class Config>
typename GatedVlmModel<Config>::VisionTower GatedVlmModel<Config>::VisionTower::load(const io::Checkpoint& ck, const std::string& prefix,
                                                                                    const GatedVlmDims& d, std::size_t max_rows, bool out_pos) {
    const std::size_t vd = d.v_dim;
    auto lin = [&](const std::string& name, std::size_t out, std::size_t in) {
        return load_linear<W>(ck, prefix + name + ".weight", prefix + name + ".bias", out, in);
    };
    auto vec = [&](const std::string& name, std::vector<std::size_t> shape) {
        const Array<float> a = load_tensor(ck, prefix + name, shape);
        return std::vector<float>(a.begin(), a.end());
    };
    VisionTower t;
    t.max_rows = max_rows, t.max_cols = d.max_cols, t.out_pos = out_pos;
    t.patch_embed = PatchEmbed<W>(lin("patch_embed", vd, d.patch * d.patch), 1, d.patch);
    t.row_embed = vec("row_embed", {max_rows, vd});
    t.col_embed = vec("col_embed", {d.max_cols, vd});
    t.anchor = vec("anchor", {d.anchors, vd});
    if (out_pos) {
        t.out_row_embed = vec("out_row_embed", {max_rows, vd});
        t.out_col_embed = vec("out_col_embed", {d.max_cols, vd});
    }
    for (std::size_t b = 0; b < d.v_layers; ++b) t.blocks.blocks.push_back(load_block<VisionBlock>(ck, prefix + "vision." + std::to_string(b) + ".", d));
    t.norm = load_layer_norm(ck, prefix + "vision_norm", vd, d.eps);
    return t;
}

template <class Config>
template <class Block>
Block GatedVlmModel<Config>::load_block(const io::Checkpoint& ck, const std::string& prefix, const GatedVlmDims& d) {
    const std::size_t vd = d.v_dim;
    auto lin = [&](const std::string& name, std::size_t out, std::size_t in) {
        return load_linear<W>(ck, prefix + name + ".weight", prefix + name + ".bias", out, in);
    };
    Block blk;
    blk.norm1 = load_layer_norm(ck, prefix + "norm1", vd, d.eps);
    blk.norm2 = load_layer_norm(ck, prefix + "norm2", vd, d.eps);
    blk.attn = decltype(blk.attn)(lin("q", vd, vd), lin("k", vd, vd), lin("v", vd, vd), lin("o", vd, vd), d.v_heads, d.v_heads);
    blk.mlp = Mlp<W>::plain(lin("fc1", d.v_mlp, vd), lin("fc2", vd, d.v_mlp), Activation::gelu_erf);
    return blk;
}

template <class Config>
Tensor<float, 2> GatedVlmModel<Config>::VisionTower::encode(const io::Image& img, const GatedVlmDims& d, const Trace& trace) const {
    const std::size_t P = d.patch;
    if (img.channels != 1) detail::fail("encode_image: expected a prepared gray crop (see prepare), got ", img.channels, " channels");
    if (img.width <= 0 || img.height <= 0 || img.width % int(P) || img.height % int(P))
        detail::fail("encode_image: a prepared crop is a multiple of ", P, " pixels in both directions, got ", img.width, "x", img.height);
    const std::size_t rows = std::size_t(img.height) / P, cols = std::size_t(img.width) / P;
    if (rows > max_rows || cols > max_cols)
        detail::fail("encode_image: ", img.width, "x", img.height, " exceeds the encoder's ", max_cols * P, "x", max_rows * P, " pixels");
    const std::size_t n_patch = rows * cols, n = d.anchors + n_patch, vd = d.v_dim;
    std::vector<float> pixels(img.pixels.size());  // [1][height][width] in [-1, 1]
    for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = float(img.pixels[i]) / 127.5f - 1.0f;
    Tensor<float, 2> out = Tensor<float, 2>::from_shape({n, vd});
    float* x = out.data();
    std::copy(anchor.begin(), anchor.end(), x);
    float* xp = x + d.anchors * vd;
    patch_embed.forward(pixels.data(), std::size_t(img.height), std::size_t(img.width), PatchOrder::columns, xp, vd);
    // every patch token gets the embeddings of its column and row (in column-major order)
    auto add_position = [&](float* tokens, const std::vector<float>& col_e, const std::vector<float>& row_e) {
        for (std::size_t c = 0; c < cols; ++c)
            for (std::size_t r = 0; r < rows; ++r) {
                float* t = tokens + (c * rows + r) * vd;
                const float* ce = col_e.data() + c * vd;
                const float* re = row_e.data() + r * vd;
                for (std::size_t i = 0; i < vd; ++i) t[i] += ce[i] + re[i];
            }
    };
    add_position(xp, col_embed, row_embed);
    if (trace) trace("vision_embed", x, n, vd);
    Workspace ws = blocks.workspace(n);
    blocks.forward(x, n, ws, nullptr, trace);
    norm.forward(x, n, vd, ws.h.data(), vd);
    std::copy_n(ws.h.data(), n * vd, x);
    if (out_pos) add_position(xp, out_col_embed, out_row_embed);
    if (trace) trace("vision_output", x, n, vd);
    return out;
}

template <class Config>
Tensor<float, 2> GatedVlmModel<Config>::encode_image(const io::Image& img, const Trace& trace) const {
    return vision_.encode(img, d_, trace);
}

template <class Config>
std::vector<float> GatedVlmModel<Config>::split_head_logits(const io::Image& img, const Trace& trace) const {
    Tensor<float, 2> vis = table_vision_.encode(img, d_, trace);
    const std::size_t P = d_.patch, rows = std::size_t(img.height) / P, cols = std::size_t(img.width) / P, n = rows * cols;
    const std::size_t vd = d_.v_dim;
    float* tokens = vis.data() + d_.anchors * vd;  // patch token (c, r) at c * rows + r
    if (!split_axial_.empty()) {
        std::vector<float> line(std::max(rows, cols) * vd);
        Workspace ws;
        for (std::size_t b = 0; b < split_axial_.size(); b += 2) {
            for (std::size_t r = 0; r < rows; ++r) {  // along each row: gathered, run, put back
                for (std::size_t c = 0; c < cols; ++c) std::copy_n(tokens + (c * rows + r) * vd, vd, line.data() + c * vd);
                split_axial_[b].forward(line.data(), cols, ws);
                for (std::size_t c = 0; c < cols; ++c) std::copy_n(line.data() + c * vd, vd, tokens + (c * rows + r) * vd);
            }
            for (std::size_t c = 0; c < cols; ++c) split_axial_[b + 1].forward(tokens + c * rows * vd, rows, ws);  // a column is contiguous
            if (trace) trace("split_axial_out_" + std::to_string(b / 2), tokens, n, vd);
        }
    }
    const std::size_t G = 6 * P;
    std::vector<float> y(n * G);
    split_head_.forward(tokens, n, vd, y.data(), G);
    if (trace) trace("split_head", y.data(), n, G);
    return y;
}

namespace detail {
// First patch of each tile along an axis of n patches: tiles of `tile` patches (all n when fewer)
// overlapping by at least `overlap`, the last one ending at n (table_split.tile_starts).
inline std::vector<std::size_t> tile_starts(std::size_t n, std::size_t tile, std::size_t overlap) {
    if (n <= tile) return {0};
    const std::size_t step = std::max<std::size_t>(1, tile - overlap);
    std::vector<std::size_t> s;
    for (std::size_t p = 0; p < n - tile; p += step) s.push_back(p);
    s.push_back(n - tile);
    return s;
}
// For each patch along the axis: the tile whose middle it is nearest (the first on a tie).
inline std::vector<std::size_t> tile_owner(std::size_t n, const std::vector<std::size_t>& starts, std::size_t tile) {
    const std::size_t size = std::min(n, tile);
    std::vector<std::size_t> owner(n, 0);
    for (std::size_t p = 0; p < n; ++p) {
        double best = std::numeric_limits<double>::infinity();
        for (std::size_t i = 0; i < starts.size(); ++i) {
            if (p < starts[i] || p >= starts[i] + size) continue;
            const double dist = std::abs(double(starts[i]) + double(size) / 2 - double(p) - 0.5);
            if (dist < best) best = dist, owner[p] = i;
        }
    }
    return owner;
}
}  // namespace detail

template <class Config>
SplitMaps GatedVlmModel<Config>::table_split_maps(const io::Image& img, const Trace& trace) const {
    if (!d_.split.present) detail::fail("table_split_maps: this model has no table splitter (config.json 'table_split')");
    const std::size_t P = d_.patch;
    if (img.channels != 1) detail::fail("table_split_maps: expected a prepared gray table input (see prepare_table), got ", img.channels, " channels");
    if (img.width <= 0 || img.height <= 0 || img.width % int(P) || img.height % int(P))
        detail::fail("table_split_maps: a prepared table input is a multiple of ", P, " pixels in both directions, got ", img.width, "x", img.height);
    if (std::size_t(img.width) > d_.split.max_width || std::size_t(img.height) > d_.split.max_height)
        detail::fail("table_split_maps: ", img.width, "x", img.height, " exceeds the table splitter's ", d_.split.max_width, "x",
                     d_.split.max_height, " pixels");
    SplitMaps m = split_reading(img, trace);
    if (const std::size_t s = d_.split.shift) {  // the second reading, moved s pixels right and down
        io::Image moved(int((img.width + s + P - 1) / P * P), int((img.height + s + P - 1) / P * P), 1, 255);
        for (int y = 0; y < img.height; ++y) std::copy_n(img.row(y), img.width, moved.row(y + int(s)) + s);
        const SplitMaps again = split_reading(moved, {});
        for (std::size_t y = 0; y < m.row.size(); ++y) m.row[y] = (m.row[y] + again.row[y + s]) / 2.0f;
        for (std::size_t x = 0; x < m.col.size(); ++x) m.col[x] = (m.col[x] + again.col[x + s]) / 2.0f;
    }
    return m;
}

template <class Config>
SplitMaps GatedVlmModel<Config>::split_reading(const io::Image& img, const Trace& trace) const {
    const std::size_t P = d_.patch;
    const std::size_t rows = std::size_t(img.height) / P, cols = std::size_t(img.width) / P, n = rows * cols;
    const std::size_t G = 6 * P;  // per token: local row, local column, row vote, column vote, their weights
    // every token's head logits from the tile whose middle it is nearest
    const std::size_t tile_r = d_.split.max_rows, tile_c = d_.split.tile_width / P;
    const auto rs = detail::tile_starts(rows, tile_r, tile_r / 4), cs = detail::tile_starts(cols, tile_c, tile_c / 4);
    const auto ro = detail::tile_owner(rows, rs, tile_r), co = detail::tile_owner(cols, cs, tile_c);
    const std::size_t tr = std::min(rows, tile_r), tc = std::min(cols, tile_c);
    std::vector<float> y(n * G);
    for (std::size_t i = 0; i < rs.size(); ++i)
        for (std::size_t j = 0; j < cs.size(); ++j) {
            const bool whole = rs.size() == 1 && cs.size() == 1;
            const std::vector<float> yt = split_head_logits(
                whole ? img : io::crop(img, int(cs[j] * P), int(rs[i] * P), int((cs[j] + tc) * P), int((rs[i] + tr) * P)), trace);
            for (std::size_t c = 0; c < tc; ++c)
                for (std::size_t r = 0; r < tr; ++r)
                    if (co[cs[j] + c] == j && ro[rs[i] + r] == i)
                        std::copy_n(yt.data() + (c * tr + r) * G, G, y.data() + ((cs[j] + c) * rows + rs[i] + r) * G);
        }
    SplitMaps m;
    m.rows = rows, m.cols = cols, m.patch = P;
    const std::size_t H = rows * P, Wd = cols * P;
    m.local_row.assign(cols * H, 0.0f), m.local_col.assign(rows * Wd, 0.0f), m.row.assign(H, 0.0f), m.col.assign(Wd, 0.0f);
    auto at = [&](std::size_t c, std::size_t r, std::size_t group, std::size_t k) { return y[(c * rows + r) * G + group * P + k]; };
    for (std::size_t c = 0; c < cols; ++c)  // token (c, r) in column-major order
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t k = 0; k < P; ++k) {
                m.local_row[c * H + r * P + k] = at(c, r, 0, k);
                m.local_col[r * Wd + c * P + k] = at(c, r, 1, k);
            }
    // softmax-weighted votes: over the patch columns for a pixel row, over the patch rows for a pixel column
    auto pool = [&](std::size_t count, auto vote, auto weight) {
        float mx = -std::numeric_limits<float>::infinity();
        for (std::size_t i = 0; i < count; ++i) mx = std::max(mx, weight(i));
        double sum = 0, acc = 0;
        for (std::size_t i = 0; i < count; ++i) {
            const double e = std::exp(double(weight(i) - mx));
            sum += e, acc += e * double(vote(i));
        }
        return float(acc / sum);
    };
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t k = 0; k < P; ++k)
            m.row[r * P + k] = pool(cols, [&](std::size_t c) { return at(c, r, 2, k); }, [&](std::size_t c) { return at(c, r, 4, k); });
    for (std::size_t c = 0; c < cols; ++c)
        for (std::size_t k = 0; k < P; ++k)
            m.col[c * P + k] = pool(rows, [&](std::size_t r) { return at(c, r, 3, k); }, [&](std::size_t r) { return at(c, r, 5, k); });
    return m;
}

template <class Config>
std::span<const float> GatedVlmModel<Config>::Context::forward(const std::int32_t* ids, std::size_t n, const Trace& trace, bool all_logits) {
    const std::size_t h = m_->d_.dim;
    if (x_.size() < n * h) x_.resize(n * h);
    m_->dec_.embed.rows(ids, n, x_.data());
    positions_.resize(n);
    for (std::size_t i = 0; i < n; ++i) positions_[i] = std::int64_t(state_.length() + i);
    rope1d_fill(rope_, positions_.data(), n, m_->rope_inv_freq_);
    return m_->dec_.forward(state_, x_.data(), n, rope_, trace, all_logits);
}

template <class Config>
std::span<const float> GatedVlmModel<Config>::Context::prefill(const Tensor<float, 2>& vision, std::span<const std::int32_t> ids,
                                                               const Trace& trace, bool all_logits) {
    if (ids.empty()) detail::fail("prefill: empty prompt");
    attach(vision);
    return forward(ids.data(), ids.size(), trace, all_logits);
}

template <class Config>
void GatedVlmModel<Config>::Context::attach(const Tensor<float, 2>& vision) {
    const GatedVlmModel& m = *m_;
    if (vision.shape()[1] != m.d_.v_dim) detail::fail("prefill: vision tokens have ", vision.shape()[1], " channels, expected ", m.d_.v_dim);
    m.dec_.attach(state_, vision.data(), vision.shape()[0]);
    attached_ = true;
}

template <class Config>
std::span<float> GatedVlmModel<Config>::step_rows(Context* const* ctxs, const std::int32_t* ids, std::size_t n, BatchScratch& s) const {
    s.pos.resize(n), s.states.resize(n);
    for (std::size_t r = 0; r < n; ++r) {
        s.pos[r] = std::int64_t(ctxs[r]->length());
        s.states[r] = &ctxs[r]->state_;
    }
    rope1d_fill(s.rope, s.pos.data(), n, rope_inv_freq_);
    return dec_.step(s.states.data(), ids, n, s.rope, s.b);
}

template <class Config>
std::vector<std::vector<std::int32_t>> GatedVlmModel<Config>::generate_batch(std::span<const Tensor<float, 2>> vision, std::string_view task,
                                                                             const GenerationOptions& options,
                                                                             std::span<const std::size_t> max_new,
                                                                             std::vector<std::vector<float>>* logprobs,
                                                                             std::vector<std::vector<TokenAlternative>>* alternatives) const {
    if (!max_new.empty() && max_new.size() != vision.size())
        detail::fail("generate_batch: ", max_new.size(), " output bounds for ", vision.size(), " images");
    const std::int32_t prompt[1] = {d_.task_token(task)};
    const std::size_t n = vision.size();
    std::vector<Context> ctxs;
    std::vector<Sampler> samplers;
    ctxs.reserve(n), samplers.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        ctxs.push_back(context());
        ctxs.back().attach(vision[i]);
        GenerationOptions o = options;
        o.stop_tokens.push_back(d_.eos_token_id);
        o.max_new_tokens = std::min(max_new.empty() ? options.max_new_tokens : max_new[i], ctxs.back().state_.capacity() - 1);
        o.logprobs = o.logprobs || logprobs || alternatives;
        samplers.emplace_back(o, prompt, d_.vocab);
    }
    std::vector<std::vector<std::int32_t>> out(n);
    std::vector<std::size_t> active(n);
    for (std::size_t i = 0; i < n; ++i) active[i] = i;
    BatchScratch s;
    std::vector<Context*> rows;
    generate_rows(  // the first step feeds every sequence its task token, as prefill would
        std::span<Sampler>(samplers), out, std::move(active), std::vector<std::int32_t>(n, prompt[0]), d_.vocab,
        [&](std::span<const std::size_t> act, std::span<const std::int32_t> ids) {
            rows.clear();
            for (std::size_t i : act) rows.push_back(&ctxs[i]);
            return step_rows(rows.data(), ids.data(), act.size(), s);
        },
        [&](std::size_t i) { return ctxs[i].state_.room(); }, d_.eos_token_id);
    if (logprobs) {
        logprobs->assign(n, {});
        for (std::size_t i = 0; i < n; ++i) (*logprobs)[i].assign(samplers[i].logprobs().begin(), samplers[i].logprobs().end());
    }
    if (alternatives) {
        alternatives->assign(n, {});
        for (std::size_t i = 0; i < n; ++i)
            (*alternatives)[i].assign(samplers[i].alternatives().begin(), samplers[i].alternatives().end());
    }
    return out;
}

template <class Config>
std::vector<BeamReading> GatedVlmModel<Config>::generate_beams(std::span<const Tensor<float, 2>> vision, std::string_view task,
                                                               std::size_t width, std::span<const std::size_t> max_new,
                                                               std::size_t alternatives) const {
    if (max_new.size() != vision.size()) detail::fail("generate_beams: ", max_new.size(), " output bounds for ", vision.size(), " images");
    if (width == 0 || width > 64) detail::fail("generate_beams: a beam width of ", width, " (1 to 64)");
    const std::int32_t first = d_.task_token(task);
    std::vector<Context> ctxs;  // [image][width]
    ctxs.reserve(vision.size() * width);
    std::vector<std::size_t> bounds(vision.size());
    for (std::size_t i = 0; i < vision.size(); ++i) {
        const std::size_t first_slot = ctxs.size();  // the sequence's slots share its image's projected keys and values
        ctxs.push_back(context());
        ctxs.back().attach(vision[i]);
        for (std::size_t b = 1; b < width; ++b) {
            ctxs.push_back(context());
            ctxs.back().share_image(ctxs[first_slot]);
        }
        bounds[i] = std::min(max_new[i], ctxs.back().state_.capacity() - 1);
    }
    BatchScratch s;
    std::vector<Context*> rows;
    return beam_search_rows(
        vision.size(), width, first, d_.eos_token_id, d_.vocab, bounds, alternatives,
        [&](std::span<const std::size_t> slots, std::span<const std::int32_t> ids) {
            rows.clear();
            for (std::size_t k : slots) rows.push_back(&ctxs[k]);
            return step_rows(rows.data(), ids.data(), slots.size(), s);
        },
        [&](std::size_t from, std::size_t to) { dec_.copy_tokens(ctxs[to].state_, ctxs[from].state_); });
}

template <class Config>
std::span<const float> GatedVlmModel<Config>::Context::decode_step(std::int32_t token) {
    if (state_.length() == 0) detail::fail("decode_step: call prefill first");
    return forward(&token, 1, {}, false);
}

template <class Config>
std::vector<std::int32_t> GatedVlmModel<Config>::Context::generate(const Tensor<float, 2>& vision, std::string_view task,
                                                                   const GenerationOptions& options, const TokenCallback& on_token,
                                                                   GenerationStats* stats) {
    const GatedVlmDims& d = m_->d_;
    const std::int32_t prompt[1] = {d.task_token(task)};
    GenerationOptions opt = options;
    opt.stop_tokens.push_back(d.eos_token_id);
    opt.max_new_tokens = std::min(opt.max_new_tokens, state_.capacity() - 1);
    Sampler sampler(opt, prompt, d.vocab);
    return generate_sequence(
        sampler, d.vocab, 1, [&] { return prefill(vision, prompt); }, [&](std::int32_t t) { return decode_step(t); },
        [&] { return state_.room(); }, opt.max_new_tokens, on_token, stats, d.eos_token_id);
}

DOCVLM_NAMESPACE_END
