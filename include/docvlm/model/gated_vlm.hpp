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
#include <docvlm/io/safetensors.hpp>
#include <docvlm/kernels/attention.hpp>
#include <docvlm/layers/attention.hpp>
#include <docvlm/layers/linear.hpp>
#include <docvlm/layers/norm.hpp>
#include <docvlm/layers/rope.hpp>
#include <docvlm/model/config.hpp>
#include <docvlm/model/generation.hpp>
#include <docvlm/model/qwen2vl.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// Sizes and token ids of a gated cross-attention model, from its config.json.
struct GatedVlmDims {
    std::size_t patch = 8, max_rows = 8, max_cols = 64;
    std::size_t v_dim = 256, v_layers = 4, v_heads = 4, v_mlp = 1024, window = 24, anchors = 4;
    std::size_t dim = 256, layers = 4, heads = 4, kv_heads = 2, mlp = 704, xattn_every = 1, xattn_mlp = 512, vocab = 264;
    std::size_t max_tokens = 192;
    float rope_theta = 10000.0f, eps = 1e-6f;
    std::int32_t pad_token_id = 256, eos_token_id = 258;
    int ink_threshold = 160;
    /// config.json "out_pos": the row and column embeddings are added again to the vision tokens
    /// after the encoder's final LayerNorm (tensors out_row_embed, out_col_embed), so that the
    /// decoder's cross-attention reads where each token is, not only what it holds.
    bool out_pos = false;
    std::map<std::string, std::int32_t, std::less<>> task_tokens;  ///< "text", "formula", "table"
    std::map<std::string, std::size_t, std::less<>> task_height;   ///< input height per task (table: the largest)

    /// The table task (config.json "table", optional): a table crop is scaled so that its text
    /// lines are `line_height` pixels high, then down to fit task_height["table"] × max_width; the
    /// model writes the table as a grid ("format": "grid"): the ink extent of every column as two
    /// coordinates (x0, x1 inclusive) and `nl`, then every row as its ink extent (y0, y1), one OTSL
    /// token per column (fcel, ecel, lcel, ucel, xcel) and `nl`. A coordinate v is token
    /// coord_token + v, in units of coord_unit pixels of the input (pipeline::parse_table_tokens).
    struct Table {
        bool present = false;
        double line_height = 8;
        std::size_t max_width = 384, coord_unit = 4, coords = 128;
        std::int32_t coord_token = -1, fcel = -1, ecel = -1, lcel = -1, ucel = -1, xcel = -1, nl = -1;
    } table;

    /// The learned table structure (config.json "table_split", optional): a second vision tower
    /// (tensors "table.<name>" for every vision tensor, `max_rows` rows of patches, its own
    /// "out_pos") and a head "table.head" [6 · patch, vision_dim] that gives every patch token, for
    /// each pixel row and column it covers, local row and column separator logits, its vote on a
    /// row (column) separator across the table and that vote's weight (GatedVlmModel::
    /// table_split_maps, pipeline::read_split_grid).
    /// Its input is a table crop scaled as prepare_table says: text lines `line_height` pixels high,
    /// at most max_height × max_width pixels (max_height: max_rows · patch when absent). It is read
    /// in tiles of max_rows · patch × tile_width pixels (tile_width: max_width when absent) that
    /// overlap by a quarter of a tile; each patch token's head logits come from the tile whose
    /// middle it is nearest, and the votes are pooled over the whole table (table_split_maps;
    /// tools/train/table_split.py tiled_maps). `axial` (0 when absent): pairs of vision blocks with
    /// full attention between the tower and the head, the first of a pair along each row of patch
    /// tokens, the second along each column ("table.axial.<i>.*"). `shift` (0 when absent, else
    /// fewer pixels than a patch): the input is read a second time moved `shift` pixels right and
    /// down, and the row and column separator logits are the means of the two readings.
    struct TableSplit {
        bool present = false, out_pos = false;
        std::size_t max_rows = 24, max_width = 384, max_height = 192, tile_width = 384, axial = 0, shift = 0;
        double line_height = 8;
    } split;

    static GatedVlmDims from_config_json(const std::string& path);
    std::size_t head_dim() const { return dim / heads; }
    std::size_t max_width() const { return max_cols * patch; }
    /// Token id and input height of a task; throws naming the tasks the model knows.
    std::int32_t task_token(std::string_view task) const;
    std::size_t height_of(std::string_view task) const;
};

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
    using W = typename Config::weights;
    using VisionAttention = SelfAttention<W, typename Config::vision::attention, NoPosition>;

public:
    class Context;

    /// Loads a model folder: config.json and model.safetensors.
    static GatedVlmModel load(const std::string& dir);

    const GatedVlmDims& dims() const { return d_; }

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

    /// A decoding context for `max_tokens` tokens (task token + output). One per thread.
    Context context(std::size_t max_tokens = 0) const { return Context(*this, max_tokens ? max_tokens : d_.max_tokens); }

    /// Reads several images with one task at once: vision[i] holds image i's vision tokens and
    /// max_new[i] (when given) bounds its output, else opt.max_new_tokens does. The decoder steps
    /// all unfinished sequences together, so each weight matrix is read once per step for the
    /// whole batch instead of once per image. Each result is what Context::generate gives for that
    /// image alone (rows are computed independently); the end token is not included.
    std::vector<std::vector<std::int32_t>> generate_batch(std::span<const Tensor<float, 2>> vision, std::string_view task,
                                                          const GenerationOptions& opt, std::span<const std::size_t> max_new = {}) const;

    class Context {
    public:
        /// Reads the vision tokens of one image and runs `ids` (usually the task token); returns the
        /// logits of the last token, or of every token [n, vocab] with all_logits.
        std::span<const float> prefill(const Tensor<float, 2>& vision, std::span<const std::int32_t> ids, const Trace& trace = {},
                                       bool all_logits = false);
        /// Appends one token; returns the logits of the next.
        std::span<const float> decode_step(std::int32_t token);
        /// prefill({task token}) + decode loop; the output stops before the end token.
        std::vector<std::int32_t> generate(const Tensor<float, 2>& vision, std::string_view task, const GenerationOptions& opt,
                                           const std::function<void(std::int32_t)>& on_token = {}, GenerationStats* stats = nullptr);
        std::size_t length() const { return len_; }

    private:
        friend class GatedVlmModel;
        Context(const GatedVlmModel& m, std::size_t max_tokens);
        void attach(const Tensor<float, 2>& vision);  // empties the context and reads the image's vision tokens
        void forward(const std::int32_t* ids, std::size_t n, const Trace& trace, bool all_logits);

        const GatedVlmModel* m_;
        std::size_t cap_ = 0, len_ = 0;
        std::vector<VisionKV> vis_;                 // per cross-attention layer
        std::vector<AlignedBuffer<float>> k_, v_;   // per layer [cap][kv_heads · head_dim]
        std::vector<float> logits_, x_, h_, q_, ctx_;
        std::vector<std::int64_t> positions_;
        RopeTable rope_;
    };

private:
    struct BatchScratch {
        std::vector<float> x, h, q, k, v, ctx, logits;
        std::vector<const VisionKV*> vis;
        std::vector<float*> kc, vc;
        std::vector<std::size_t> pos;
        RopeTable rope;
    };
    // One decoding step for n contexts (one new token each, at each context's own position);
    // logits [n, vocab] land in s.logits.
    void step_rows(Context* const* ctxs, const std::int32_t* ids, std::size_t n, BatchScratch& s) const;

    // A pre-norm ViT block: x += attn(norm1 x); x += mlp(norm2 x). Vision blocks attend with the
    // Config's pattern, the splitter's axial blocks to the whole row or column.
    template <class Attention>
    struct Block {
        LayerNorm norm1, norm2;
        Attention attn;
        Mlp<W> mlp;
        static Block load(const io::Checkpoint& ck, const std::string& prefix, const GatedVlmDims& d);
        // x [n, v_dim] in place; h: scratch of the same size
        void forward(float* x, std::size_t n, std::size_t vd, float* h) const;
    };
    using VisionBlock = Block<VisionAttention>;
    using AxialBlock = Block<SelfAttention<W, FullAttention, NoPosition>>;
    // A vision encoder: the model's own, and the table splitter's (tensor names with a prefix).
    struct VisionTower {
        std::size_t max_rows = 0, max_cols = 0;
        bool out_pos = false;
        Linear<W> patch_embed;
        std::vector<float> row_embed, col_embed, anchor;
        std::vector<float> out_row_embed, out_col_embed;  // empty unless out_pos
        std::vector<VisionBlock> blocks;
        LayerNorm norm;
        static VisionTower load(const io::Checkpoint& ck, const std::string& prefix, const GatedVlmDims& d, std::size_t max_rows, bool out_pos);
        Tensor<float, 2> encode(const io::Image& img, const GatedVlmDims& d, const Trace& trace) const;
    };
    struct TextLayer {
        int cross = -1;  // index into cross_, or -1
        RMSNorm norm1, norm2;
        Linear<W> q, k, v, o;
        Mlp<W> mlp;
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
    std::vector<float> embed_;  // [vocab, dim]
    std::vector<GatedCrossAttentionLayer<W>> cross_;
    std::vector<TextLayer> layers_;
    RMSNorm norm_;
    Linear<W> lm_head_;
    std::vector<float> rope_inv_freq_;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline GatedVlmDims GatedVlmDims::from_config_json(const std::string& path) {
    const nlohmann::json j = io::read_json_file(path);
    if (!j.is_object()) detail::fail(path, ": expected a JSON object");
    if (io::json_string(j, "model_type", "", path) != "docvlm_small")
        detail::fail(path, ": model_type is '", io::json_string(j, "model_type", "(none)", path), "', expected 'docvlm_small'");
    GatedVlmDims d;
    auto size = [&](const char* key, std::size_t& v, std::size_t lo = 1, std::size_t hi = 1 << 20) {
        if (!j.contains(key)) detail::fail(path, ": missing '", key, "'");
        if (!j[key].is_number_integer() || j[key].get<long long>() < (long long)lo || j[key].get<long long>() > (long long)hi)
            detail::fail(path, ": '", key, "' must be an integer in [", lo, ", ", hi, "]");
        v = std::size_t(j[key].get<long long>());
    };
    size("patch", d.patch, 1, 64), size("max_rows", d.max_rows, 1, 64), size("max_cols", d.max_cols, 1, 4096);
    size("vision_dim", d.v_dim), size("vision_layers", d.v_layers, 1, 256), size("vision_heads", d.v_heads, 1, 256);
    size("vision_mlp", d.v_mlp), size("window", d.window, 1, 1 << 20), size("anchors", d.anchors, 0, 4096);
    size("text_dim", d.dim), size("text_layers", d.layers, 1, 256), size("text_heads", d.heads, 1, 256);
    size("text_kv_heads", d.kv_heads, 1, 256), size("text_mlp", d.mlp), size("xattn_every", d.xattn_every, 1, 256);
    size("xattn_mlp", d.xattn_mlp), size("vocab", d.vocab, 259, 1 << 20), size("max_tokens", d.max_tokens, 2, 1 << 16);
    d.rope_theta = float(io::json_number(j, "rope_theta", 10000.0, 1.0, 1e9, false, path));
    d.eps = float(io::json_number(j, "norm_eps", 1e-6, 0.0, 1.0, false, path));
    d.pad_token_id = int(io::json_number(j, "pad_token_id", 256, 0, double(d.vocab) - 1, true, path));
    d.eos_token_id = int(io::json_number(j, "eos_token_id", 258, 0, double(d.vocab) - 1, true, path));
    d.ink_threshold = int(io::json_number(j, "ink_threshold", 160, 0, 255, true, path));
    d.out_pos = io::json_flag(j, "out_pos", false, path);
    if (!j.contains("task_tokens") || !j["task_tokens"].is_object() || !j.contains("task_height") || !j["task_height"].is_object())
        detail::fail(path, ": missing objects 'task_tokens' and 'task_height'");
    for (auto& [k, v] : j["task_tokens"].items()) {
        if (!v.is_number_integer() || v.get<long long>() < 256 || v.get<long long>() >= (long long)d.vocab)
            detail::fail(path, ": task token '", k, "' is not a special token id");
        d.task_tokens[k] = v.get<std::int32_t>();
        const auto& h = j["task_height"];
        if (!h.contains(k) || !h[k].is_number_integer() || h[k].get<long long>() <= 0 || h[k].get<long long>() % (long long)d.patch ||
            std::size_t(h[k].get<long long>()) > d.max_rows * d.patch)
            detail::fail(path, ": task_height['", k, "'] must be a multiple of the patch, at most max_rows · patch");
        d.task_height[k] = std::size_t(h[k].get<long long>());
    }
    if (j.contains("table")) {
        const auto& t = j["table"];
        if (!t.is_object() || !d.task_tokens.count("table")) detail::fail(path, ": 'table' must be an object, with a 'table' task token");
        auto num = [&](const char* key, double lo, double hi) {
            if (!t.contains(key) || !t[key].is_number() || t[key].get<double>() < lo || t[key].get<double>() > hi)
                detail::fail(path, ": table.", key, " must be a number in [", lo, ", ", hi, "]");
            return t[key].get<double>();
        };
        if (!t.contains("format") || t["format"] != "grid")
            detail::fail(path, ": table.format must be \"grid\" (column extents, then rows of extents and OTSL tokens)");
        Table& tb = d.table;
        tb.line_height = num("line_height", 1, 1000);
        tb.max_width = std::size_t(num("max_width", double(d.patch), double(d.max_width())));
        tb.coord_unit = std::size_t(num("coord_unit", 1, 1 << 16));
        tb.coords = std::size_t(num("coords", 1, double(d.vocab)));
        tb.coord_token = std::int32_t(num("coord_token", 256, double(d.vocab - tb.coords)));
        if (!t.contains("tokens") || !t["tokens"].is_object()) detail::fail(path, ": table.tokens must name the OTSL tokens");
        const std::pair<const char*, std::int32_t*> names[] = {{"fcel", &tb.fcel}, {"ecel", &tb.ecel}, {"lcel", &tb.lcel},
                                                               {"ucel", &tb.ucel}, {"xcel", &tb.xcel}, {"nl", &tb.nl}};
        for (auto [name, dst] : names) {
            const auto& v = t["tokens"];
            if (!v.contains(name) || !v[name].is_number_integer() || v[name].get<long long>() < 256 || v[name].get<long long>() >= (long long)d.vocab)
                detail::fail(path, ": table.tokens.", name, " must be a special token id");
            *dst = v[name].get<std::int32_t>();
        }
        tb.present = true;
    }
    if (j.contains("table_split")) {
        const auto& t = j["table_split"];
        if (!t.is_object()) detail::fail(path, ": 'table_split' must be an object");
        auto num = [&](const char* key, double lo, double hi) {
            if (!t.contains(key) || !t[key].is_number() || t[key].get<double>() < lo || t[key].get<double>() > hi)
                detail::fail(path, ": table_split.", key, " must be a number in [", lo, ", ", hi, "]");
            return t[key].get<double>();
        };
        TableSplit& sp = d.split;
        sp.max_rows = std::size_t(num("max_rows", 1, 256));
        sp.line_height = num("line_height", 1, 1000);
        // an input larger than the tower is read in tiles; without tile_width it is one tile wide
        const bool tiled = t.contains("tile_width");
        sp.max_width = std::size_t(num("max_width", double(d.patch), tiled ? 65536.0 : double(d.max_width())));
        sp.tile_width = tiled ? std::size_t(num("tile_width", double(d.patch), double(d.max_width()))) : sp.max_width;
        sp.max_height = t.contains("max_height") ? std::size_t(num("max_height", double(d.patch), 65536.0)) : sp.max_rows * d.patch;
        if (sp.tile_width % d.patch)
            detail::fail(path, ": table_split.", tiled ? "tile_width" : "max_width", " must be a multiple of the patch (", d.patch, ")");
        sp.out_pos = io::json_flag(t, "out_pos", false, path + ": table_split");
        if (t.contains("axial") && (!t["axial"].is_number_integer() || t["axial"].get<long long>() < 0 || t["axial"].get<long long>() > 16))
            detail::fail(path, ": table_split.axial must be an integer in [0, 16]");
        sp.axial = std::size_t(t.value("axial", 0));
        if (t.contains("shift") && (!t["shift"].is_number_integer() || t["shift"].get<long long>() < 0 || t["shift"].get<long long>() >= (long long)d.patch))
            detail::fail(path, ": table_split.shift must be an integer in [0, ", d.patch - 1, "] (pixels, less than a patch)");
        sp.shift = std::size_t(t.value("shift", 0));
        sp.present = true;
    }
    if (d.v_dim % d.v_heads) detail::fail(path, ": vision_heads ", d.v_heads, " do not divide vision_dim ", d.v_dim);
    if (d.dim % d.heads || d.heads % d.kv_heads) detail::fail(path, ": text_heads / text_kv_heads do not divide text_dim");
    if (d.head_dim() % 2) detail::fail(path, ": the text head dimension must be even (rope)");
    if (d.eos_token_id < 0 || std::size_t(d.eos_token_id) >= d.vocab) detail::fail(path, ": eos_token_id outside the vocabulary");
    return d;
}

inline std::int32_t GatedVlmDims::task_token(std::string_view task) const {
    auto it = task_tokens.find(task);
    if (it == task_tokens.end()) {
        std::string known;
        for (auto& [k, v] : task_tokens) known += (known.empty() ? "" : ", ") + k;
        detail::fail("this model knows the tasks ", known, "; '", task, "' is not one of them");
    }
    return it->second;
}

inline std::size_t GatedVlmDims::height_of(std::string_view task) const {
    task_token(task);
    return task_height.find(task)->second;
}

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
        return Linear<W>::load(ck, name + ".weight", bias ? name + ".bias" : std::string(), out, in);
    };
    auto vec = [&](const std::string& name, std::vector<std::size_t> shape) {
        const Array<float> a = load_tensor(ck, name, shape);
        return std::vector<float>(a.begin(), a.end());
    };
    m.vision_ = VisionTower::load(ck, "", d, d.max_rows, d.out_pos);
    if (d.split.present) {
        m.table_vision_ = VisionTower::load(ck, "table.", d, d.split.max_rows, d.split.out_pos);
        for (std::size_t b = 0; b < 2 * d.split.axial; ++b) m.split_axial_.push_back(AxialBlock::load(ck, "table.axial." + std::to_string(b) + ".", d));
        m.split_head_ = lin("table.head", 6 * d.patch, vd, true);
    }
    m.embed_ = vec("embed.weight", {d.vocab, td});
    for (std::size_t l = 0; l < d.layers; ++l) {
        const std::string p = "text." + std::to_string(l) + ".";
        TextLayer L;
        if (l % d.xattn_every == 0) {
            const std::string c = p + "cross.";
            auto gate = [&](const std::string& name) {
                if (!ck.contains(name)) detail::fail(ck.source(), ": missing tensor '", name, "'");
                const std::size_t n = ck.info(name).numel();
                return vec(name, {n == 1 ? std::size_t(1) : td});
            };
            L.cross = int(m.cross_.size());
            m.cross_.emplace_back(RMSNorm::load(ck, c + "norm1.weight", td, d.eps), lin(c + "q", td, td, false), lin(c + "k", kvd, vd, false),
                                  lin(c + "v", kvd, vd, false), lin(c + "o", td, td, false), gate(c + "attn_gate"),
                                  RMSNorm::load(ck, c + "norm2.weight", td, d.eps),
                                  Mlp<W>::gated(lin(c + "mlp.gate", d.xattn_mlp, td, false), lin(c + "mlp.up", d.xattn_mlp, td, false),
                                                lin(c + "mlp.down", td, d.xattn_mlp, false)),
                                  gate(c + "mlp_gate"), d.heads, d.kv_heads);
        }
        L.norm1 = RMSNorm::load(ck, p + "norm1.weight", td, d.eps);
        L.norm2 = RMSNorm::load(ck, p + "norm2.weight", td, d.eps);
        L.q = lin(p + "q", td, td, true);
        L.k = lin(p + "k", kvd, td, true);
        L.v = lin(p + "v", kvd, td, true);
        L.o = lin(p + "o", td, td, false);
        L.mlp = Mlp<W>::gated(lin(p + "mlp.gate", d.mlp, td, false), lin(p + "mlp.up", d.mlp, td, false), lin(p + "mlp.down", td, d.mlp, false));
        m.layers_.push_back(std::move(L));
    }
    m.norm_ = RMSNorm::load(ck, "norm.weight", td, d.eps);
    m.lm_head_ = Linear<W>(m.embed_.data(), d.vocab, td);
    m.rope_inv_freq_ = rope_inv_freq(hd, d.rope_theta);
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
        return Linear<W>::load(ck, prefix + name + ".weight", prefix + name + ".bias", out, in);
    };
    auto vec = [&](const std::string& name, std::vector<std::size_t> shape) {
        const Array<float> a = load_tensor(ck, prefix + name, shape);
        return std::vector<float>(a.begin(), a.end());
    };
    VisionTower t;
    t.max_rows = max_rows, t.max_cols = d.max_cols, t.out_pos = out_pos;
    t.patch_embed = lin("patch_embed", vd, d.patch * d.patch);
    t.row_embed = vec("row_embed", {max_rows, vd});
    t.col_embed = vec("col_embed", {d.max_cols, vd});
    t.anchor = vec("anchor", {d.anchors, vd});
    if (out_pos) {
        t.out_row_embed = vec("out_row_embed", {max_rows, vd});
        t.out_col_embed = vec("out_col_embed", {d.max_cols, vd});
    }
    for (std::size_t b = 0; b < d.v_layers; ++b) t.blocks.push_back(VisionBlock::load(ck, prefix + "vision." + std::to_string(b) + ".", d));
    t.norm = LayerNorm::load(ck, prefix + "vision_norm", vd, d.eps);
    return t;
}

template <class Config>
template <class Attention>
typename GatedVlmModel<Config>::template Block<Attention> GatedVlmModel<Config>::Block<Attention>::load(const io::Checkpoint& ck,
                                                                                                    const std::string& prefix,
                                                                                                    const GatedVlmDims& d) {
    const std::size_t vd = d.v_dim;
    auto lin = [&](const std::string& name, std::size_t out, std::size_t in) {
        return Linear<W>::load(ck, prefix + name + ".weight", prefix + name + ".bias", out, in);
    };
    Block blk;
    blk.norm1 = LayerNorm::load(ck, prefix + "norm1", vd, d.eps);
    blk.norm2 = LayerNorm::load(ck, prefix + "norm2", vd, d.eps);
    blk.attn = Attention(lin("q", vd, vd), lin("k", vd, vd), lin("v", vd, vd), lin("o", vd, vd), d.v_heads, d.v_heads);
    blk.mlp = Mlp<W>::plain(lin("fc1", d.v_mlp, vd), lin("fc2", vd, d.v_mlp), Activation::gelu_erf);
    return blk;
}

template <class Config>
template <class Attention>
void GatedVlmModel<Config>::Block<Attention>::forward(float* x, std::size_t n, std::size_t vd, float* h) const {
    norm1.forward(x, n, vd, h, vd);
    attn.forward(h, n, nullptr, x, vd, x, vd);
    norm2.forward(x, n, vd, h, vd);
    mlp.forward(h, n, x, vd, x, vd);
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
    const std::size_t n_patch = rows * cols, n = d.anchors + n_patch, vd = d.v_dim, pp = P * P;
    std::vector<float> patches(n_patch * pp);
    for (std::size_t c = 0; c < cols; ++c)
        for (std::size_t r = 0; r < rows; ++r) {
            float* dst = patches.data() + (c * rows + r) * pp;
            for (std::size_t y = 0; y < P; ++y)
                for (std::size_t x = 0; x < P; ++x) dst[y * P + x] = float(img.at(int(c * P + x), int(r * P + y))) / 127.5f - 1.0f;
        }
    Tensor<float, 2> out = Tensor<float, 2>::from_shape({n, vd});
    float* x = out.data();
    std::copy(anchor.begin(), anchor.end(), x);
    float* xp = x + d.anchors * vd;
    patch_embed.forward(patches.data(), n_patch, pp, xp, vd);
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
    std::vector<float> h(n * vd);
    for (std::size_t b = 0; b < blocks.size(); ++b) {
        blocks[b].forward(x, n, vd, h.data());
        if (trace) trace("vision_block_out_" + std::to_string(b), x, n, vd);
    }
    norm.forward(x, n, vd, h.data(), vd);
    std::copy_n(h.data(), n * vd, x);
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
        std::vector<float> line(std::max(rows, cols) * vd), h(line.size());
        for (std::size_t b = 0; b < split_axial_.size(); b += 2) {
            for (std::size_t r = 0; r < rows; ++r) {  // along each row: gathered, run, put back
                for (std::size_t c = 0; c < cols; ++c) std::copy_n(tokens + (c * rows + r) * vd, vd, line.data() + c * vd);
                split_axial_[b].forward(line.data(), cols, vd, h.data());
                for (std::size_t c = 0; c < cols; ++c) std::copy_n(line.data() + c * vd, vd, tokens + (c * rows + r) * vd);
            }
            for (std::size_t c = 0; c < cols; ++c) split_axial_[b + 1].forward(tokens + c * rows * vd, rows, vd, h.data());  // a column is contiguous
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
GatedVlmModel<Config>::Context::Context(const GatedVlmModel& m, std::size_t max_tokens) : m_(&m), cap_(max_tokens) {
    const GatedVlmDims& d = m.d_;
    if (max_tokens == 0) detail::fail("context: max_tokens must be positive");
    const std::size_t kvd = d.kv_heads * d.head_dim();
    for (std::size_t l = 0; l < d.layers; ++l) {
        k_.emplace_back(cap_ * kvd);
        v_.emplace_back(cap_ * kvd);
    }
    logits_.resize(d.vocab);
    positions_.reserve(cap_);
}

template <class Config>
void GatedVlmModel<Config>::Context::forward(const std::int32_t* ids, std::size_t n, const Trace& trace, bool all_logits) {
    const GatedVlmModel& m = *m_;
    const GatedVlmDims& d = m.d_;
    if (len_ + n > cap_) detail::fail("context: ", len_ + n, " tokens exceed this context's capacity of ", cap_);
    const std::size_t h = d.dim, hd = d.head_dim(), qd = d.heads * hd, kvd = d.kv_heads * hd;
    auto grow = [](std::vector<float>& v, std::size_t size) {
        if (v.size() < size) v.resize(size);
    };
    grow(x_, n * h), grow(h_, n * h), grow(q_, n * qd), grow(ctx_, n * qd);
    for (std::size_t i = 0; i < n; ++i) {
        if (ids[i] < 0 || std::size_t(ids[i]) >= d.vocab) detail::fail("token id ", ids[i], " is outside the vocabulary of ", d.vocab);
        std::copy_n(m.embed_.data() + std::size_t(ids[i]) * h, h, x_.data() + i * h);
    }
    positions_.clear();
    for (std::size_t i = 0; i < n; ++i) positions_.push_back(std::int64_t(len_ + i));
    rope_.reshape(n, hd);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t k = 0; k < hd / 2; ++k) {
            const float a = float(positions_[i]) * m.rope_inv_freq_[k];
            rope_.cos[i * hd + k] = rope_.cos[i * hd + k + hd / 2] = std::cos(a);
            rope_.sin[i * hd + k] = rope_.sin[i * hd + k + hd / 2] = std::sin(a);
        }
    const kernels::AttentionParams ap{.heads = d.heads, .kv_heads = d.kv_heads, .head_dim = hd,
                                      .scale = 1.0f / std::sqrt(float(hd)), .causal = true, .q_offset = len_};
    for (std::size_t l = 0; l < d.layers; ++l) {
        const TextLayer& L = m.layers_[l];
        if (L.cross >= 0) m.cross_[std::size_t(L.cross)].forward(x_.data(), n, vis_[std::size_t(L.cross)]);
        float* kc = k_[l].data() + len_ * kvd;
        float* vc = v_[l].data() + len_ * kvd;
        L.norm1.forward(x_.data(), n, h, h_.data(), h);
        forward_same_input<W>(h_.data(), n, h, {{L.q, q_.data(), qd}, {L.k, kc, kvd}, {L.v, vc, kvd}});
        for (std::size_t r = 0; r < n; ++r) {
            kernels::rope(q_.data() + r * qd, d.heads, hd, rope_.cos_row(r), rope_.sin_row(r));
            kernels::rope(kc + r * kvd, d.kv_heads, hd, rope_.cos_row(r), rope_.sin_row(r));
        }
        kernels::attention(q_.data(), qd, k_[l].data(), kvd, v_[l].data(), kvd, ctx_.data(), qd, n, len_ + n, ap);
        L.o.forward(ctx_.data(), n, qd, x_.data(), h, {.residual = x_.data(), .ld_residual = h});
        L.norm2.forward(x_.data(), n, h, h_.data(), h);
        L.mlp.forward(h_.data(), n, x_.data(), h, x_.data(), h);
        if (trace) trace("dec_layer_out_" + std::to_string(l), x_.data(), n, h);
    }
    len_ += n;
    m.norm_.forward(x_.data(), n, h, h_.data(), h);
    if (all_logits) {
        logits_.resize(n * d.vocab);
        m.lm_head_.forward(h_.data(), n, h, logits_.data(), d.vocab);
        if (trace) trace("logits", logits_.data(), n, d.vocab);
    } else {
        logits_.resize(d.vocab);
        m.lm_head_.forward(h_.data() + (n - 1) * h, 1, h, logits_.data(), d.vocab);
    }
}

template <class Config>
std::span<const float> GatedVlmModel<Config>::Context::prefill(const Tensor<float, 2>& vision, std::span<const std::int32_t> ids,
                                                               const Trace& trace, bool all_logits) {
    if (ids.empty()) detail::fail("prefill: empty prompt");
    attach(vision);
    forward(ids.data(), ids.size(), trace, all_logits);
    return logits_;
}

template <class Config>
void GatedVlmModel<Config>::Context::attach(const Tensor<float, 2>& vision) {
    const GatedVlmModel& m = *m_;
    if (vision.shape()[1] != m.d_.v_dim) detail::fail("prefill: vision tokens have ", vision.shape()[1], " channels, expected ", m.d_.v_dim);
    if (vision.shape()[0] == 0) detail::fail("prefill: no vision tokens");
    len_ = 0;
    vis_.clear();
    for (const auto& c : m.cross_) vis_.push_back(c.project(vision.data(), vision.shape()[0]));
}

template <class Config>
void GatedVlmModel<Config>::step_rows(Context* const* ctxs, const std::int32_t* ids, std::size_t n, BatchScratch& s) const {
    const GatedVlmDims& d = d_;
    const std::size_t h = d.dim, hd = d.head_dim(), qd = d.heads * hd, kvd = d.kv_heads * hd;
    s.x.resize(n * h), s.h.resize(n * h), s.q.resize(n * qd), s.ctx.resize(n * qd), s.k.resize(n * kvd), s.v.resize(n * kvd);
    s.rope.reshape(n, hd), s.vis.resize(n), s.kc.resize(n), s.vc.resize(n), s.pos.resize(n);
    for (std::size_t r = 0; r < n; ++r) {
        const Context& c = *ctxs[r];
        if (c.len_ + 1 > c.cap_) detail::fail("context: ", c.len_ + 1, " tokens exceed this context's capacity of ", c.cap_);
        if (ids[r] < 0 || std::size_t(ids[r]) >= d.vocab) detail::fail("token id ", ids[r], " is outside the vocabulary of ", d.vocab);
        std::copy_n(embed_.data() + std::size_t(ids[r]) * h, h, s.x.data() + r * h);
        s.pos[r] = c.len_;
        for (std::size_t k = 0; k < hd / 2; ++k) {  // as Context::forward computes them
            const float a = float(std::int64_t(c.len_)) * rope_inv_freq_[k];
            s.rope.cos[r * hd + k] = s.rope.cos[r * hd + k + hd / 2] = std::cos(a);
            s.rope.sin[r * hd + k] = s.rope.sin[r * hd + k + hd / 2] = std::sin(a);
        }
    }
    for (std::size_t l = 0; l < d.layers; ++l) {
        const TextLayer& L = layers_[l];
        if (L.cross >= 0) {
            for (std::size_t r = 0; r < n; ++r) s.vis[r] = &ctxs[r]->vis_[std::size_t(L.cross)];
            cross_[std::size_t(L.cross)].forward_rows(s.x.data(), n, s.vis.data());
        }
        L.norm1.forward(s.x.data(), n, h, s.h.data(), h);
        forward_same_input<W>(s.h.data(), n, h, {{L.q, s.q.data(), qd}, {L.k, s.k.data(), kvd}, {L.v, s.v.data(), kvd}});
        for (std::size_t r = 0; r < n; ++r) s.kc[r] = ctxs[r]->k_[l].data(), s.vc[r] = ctxs[r]->v_[l].data();
        attend_new_rows(n, s.q.data(), s.k.data(), s.v.data(), s.kc.data(), s.vc.data(), s.pos.data(), s.rope, d.heads, d.kv_heads, hd,
                        s.ctx.data());
        L.o.forward(s.ctx.data(), n, qd, s.x.data(), h, {.residual = s.x.data(), .ld_residual = h});
        L.norm2.forward(s.x.data(), n, h, s.h.data(), h);
        L.mlp.forward(s.h.data(), n, s.x.data(), h, s.x.data(), h);
    }
    for (std::size_t r = 0; r < n; ++r) ctxs[r]->len_ += 1;
    norm_.forward(s.x.data(), n, h, s.h.data(), h);
    s.logits.resize(n * d.vocab);
    lm_head_.forward(s.h.data(), n, h, s.logits.data(), d.vocab);
}

template <class Config>
std::vector<std::vector<std::int32_t>> GatedVlmModel<Config>::generate_batch(std::span<const Tensor<float, 2>> vision, std::string_view task,
                                                                             const GenerationOptions& options,
                                                                             std::span<const std::size_t> max_new) const {
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
        o.max_new_tokens = std::min(max_new.empty() ? options.max_new_tokens : max_new[i], ctxs.back().cap_ - 1);
        samplers.emplace_back(o, prompt, d_.vocab);
    }
    std::vector<std::vector<std::int32_t>> out(n);
    std::vector<std::size_t> active(n), still;
    std::vector<Context*> rows;
    std::vector<std::int32_t> tokens(n, prompt[0]), next;
    for (std::size_t i = 0; i < n; ++i) active[i] = i;
    BatchScratch s;
    while (!active.empty()) {
        rows.clear();
        for (std::size_t i : active) rows.push_back(&ctxs[i]);
        step_rows(rows.data(), tokens.data(), active.size(), s);
        still.clear(), next.clear();
        for (std::size_t r = 0; r < active.size(); ++r) {  // as generate() does for each sequence
            const std::size_t i = active[r];
            const std::int32_t t = samplers[i].next({s.logits.data() + r * d_.vocab, d_.vocab});
            samplers[i].accept(t);
            if (t == d_.eos_token_id) continue;
            out[i].push_back(t);
            if (samplers[i].done(t) || ctxs[i].len_ >= ctxs[i].cap_) continue;
            still.push_back(i), next.push_back(t);
        }
        active.swap(still), tokens.swap(next);
    }
    return out;
}

template <class Config>
std::span<const float> GatedVlmModel<Config>::Context::decode_step(std::int32_t token) {
    if (len_ == 0) detail::fail("decode_step: call prefill first");
    forward(&token, 1, {}, false);
    return logits_;
}

template <class Config>
std::vector<std::int32_t> GatedVlmModel<Config>::Context::generate(const Tensor<float, 2>& vision, std::string_view task,
                                                                   const GenerationOptions& options,
                                                                   const std::function<void(std::int32_t)>& on_token,
                                                                   GenerationStats* stats) {
    using clock = std::chrono::steady_clock;
    const GatedVlmDims& d = m_->d_;
    const std::int32_t prompt[1] = {d.task_token(task)};
    GenerationOptions opt = options;
    opt.stop_tokens.push_back(d.eos_token_id);
    opt.max_new_tokens = std::min(opt.max_new_tokens, cap_ - 1);
    Sampler sampler(opt, prompt, d.vocab);
    std::vector<float> logits(d.vocab);
    const auto t0 = clock::now();
    std::span<const float> l = prefill(vision, prompt);
    const auto t1 = clock::now();
    std::vector<std::int32_t> out;
    out.reserve(opt.max_new_tokens + 1);
    for (;;) {
        std::copy(l.begin(), l.end(), logits.begin());
        const std::int32_t t = sampler.next(logits);
        sampler.accept(t);
        if (t == d.eos_token_id) break;
        out.push_back(t);
        if (on_token) on_token(t);
        if (sampler.done(t) || len_ >= cap_) break;
        l = decode_step(t);
    }
    if (stats) {
        stats->prefill_seconds += std::chrono::duration<double>(t1 - t0).count();
        stats->decode_seconds += std::chrono::duration<double>(clock::now() - t1).count();
        stats->prompt_tokens += 1;
        stats->generated_tokens += out.size();
    }
    return out;
}

DOCVLM_NAMESPACE_END
