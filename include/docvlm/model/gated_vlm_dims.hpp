// docvlm/model/gated_vlm_dims.hpp — GatedVlmDims: the sizes and token ids of a gated
// cross-attention model (GatedVlmModel, model/gated_vlm.hpp), read and checked from its config.json.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/io/json.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

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

DOCVLM_NAMESPACE_END
