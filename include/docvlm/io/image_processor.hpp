// docvlm/io/image_processor.hpp — Qwen2-VL image preprocessing, identical to Hugging Face's
// Qwen2VLImageProcessor (the "slow", Pillow-based one): smart_resize to a multiple of
// patch_size × merge_size within [min_pixels, max_pixels], Pillow-exact bicubic resize, rescale
// (double, then float), normalise (float), the single image repeated to temporal_patch_size
// frames, then patches flattened in the processor's order:
//   rows    (t, h / merge, w / merge, merge row, merge col)  — one 2x2 merge window after another
//   columns (channel, frame, row in patch, column in patch)   — C · T · P · P values
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/io/json.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <utility>

DOCVLM_NAMESPACE_BEGIN
namespace io {

/// preprocessor_config.json of a Qwen2-VL-family checkpoint.
struct Qwen2VLImageConfig {
    std::size_t min_pixels = 56 * 56, max_pixels = 28 * 28 * 1280;
    int patch_size = 14, temporal_patch_size = 2, merge_size = 2;
    std::array<double, 3> image_mean{0.48145466, 0.4578275, 0.40821073};
    std::array<double, 3> image_std{0.26862954, 0.26130258, 0.27577711};
    double rescale_factor = 1.0 / 255.0;
    bool do_resize = true, do_rescale = true, do_normalize = true;

    /// Reads preprocessor_config.json (min/max_pixels at the top level or in "size", either as
    /// min_pixels/max_pixels or shortest_edge/longest_edge); throws docvlm::Error naming the field.
    static Qwen2VLImageConfig from_json(const std::string& path);
};

/// Hugging Face's smart_resize: (height, width) rounded to multiples of `factor` keeping the
/// pixel count within [min_pixels, max_pixels]. Throws for sides below `factor` or aspect > 200.
std::pair<int, int> smart_resize(int height, int width, int factor, std::size_t min_pixels, std::size_t max_pixels);

/// Patches of one image and its grid in patches (t, h, w).
struct PixelValues {
    Tensor<float, 2> patches;  ///< [t · h · w, 3 · temporal · patch · patch]
    int grid_t = 0, grid_h = 0, grid_w = 0;
    std::size_t count() const { return std::size_t(grid_t) * grid_h * grid_w; }
};

/// Qwen2VLImageProcessor on one RGB image.
PixelValues preprocess_qwen2vl(const Image& rgb, const Qwen2VLImageConfig& cfg);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline Qwen2VLImageConfig Qwen2VLImageConfig::from_json(const std::string& path) {
    const nlohmann::json j = read_json_file(path);
    if (!j.is_object()) docvlm::detail::fail(path, ": expected a JSON object");
    Qwen2VLImageConfig c;
    auto num = [&](const nlohmann::json& obj, const char* key, auto& out) {
        if (!obj.contains(key)) return false;
        if (!obj[key].is_number()) docvlm::detail::fail(path, ": '", key, "' is not a number");
        using T = std::remove_reference_t<decltype(out)>;
        const double v = obj[key].get<double>(), hi = std::min(1e12, double(std::numeric_limits<T>::max()));
        if (!(v > 0) || v > hi) docvlm::detail::fail(path, ": '", key, "' = ", v, " is out of range");
        out = static_cast<T>(v);
        return true;
    };
    num(j, "min_pixels", c.min_pixels);
    num(j, "max_pixels", c.max_pixels);
    if (j.contains("size") && j["size"].is_object()) {
        const auto& s = j["size"];
        if (!num(s, "min_pixels", c.min_pixels)) num(s, "shortest_edge", c.min_pixels);
        if (!num(s, "max_pixels", c.max_pixels)) num(s, "longest_edge", c.max_pixels);
    }
    num(j, "patch_size", c.patch_size);
    num(j, "temporal_patch_size", c.temporal_patch_size);
    num(j, "merge_size", c.merge_size);
    num(j, "rescale_factor", c.rescale_factor);
    for (const char* key : {"image_mean", "image_std"}) {
        if (!j.contains(key)) continue;
        const auto& a = j[key];
        if (!a.is_array() || a.size() != 3) docvlm::detail::fail(path, ": '", key, "' must be 3 numbers");
        auto& dst = std::string(key) == "image_mean" ? c.image_mean : c.image_std;
        for (int i = 0; i < 3; ++i) {
            if (!a[i].is_number()) docvlm::detail::fail(path, ": '", key, "' must be 3 numbers");
            dst[i] = a[i].get<double>();
        }
    }
    for (double s : c.image_std)
        if (!(s > 0)) docvlm::detail::fail(path, ": image_std must be positive");
    c.do_resize = json_flag(j, "do_resize", true, path);
    c.do_rescale = json_flag(j, "do_rescale", true, path);
    c.do_normalize = json_flag(j, "do_normalize", true, path);
    if (c.min_pixels > c.max_pixels) docvlm::detail::fail(path, ": min_pixels ", c.min_pixels, " > max_pixels ", c.max_pixels);
    if (c.patch_size > 64 || c.merge_size > 8 || c.temporal_patch_size > 8)
        docvlm::detail::fail(path, ": patch_size / merge_size / temporal_patch_size out of range");
    return c;
}

inline std::pair<int, int> smart_resize(int height, int width, int factor, std::size_t min_pixels, std::size_t max_pixels) {
    if (height < factor || width < factor)
        docvlm::detail::fail("image of ", width, "x", height, " is smaller than the ", factor, "-pixel minimum side");
    if (double(std::max(height, width)) / std::min(height, width) > 200)
        docvlm::detail::fail("image of ", width, "x", height, " has an aspect ratio above 200");
    // Python's round() rounds half to even, as nearbyint does in the default rounding mode.
    double h_bar = std::nearbyint(double(height) / factor) * factor, w_bar = std::nearbyint(double(width) / factor) * factor;
    if (h_bar * w_bar > double(max_pixels)) {
        const double beta = std::sqrt(double(height) * width / double(max_pixels));
        h_bar = std::floor(height / beta / factor) * factor;
        w_bar = std::floor(width / beta / factor) * factor;
    } else if (h_bar * w_bar < double(min_pixels)) {
        const double beta = std::sqrt(double(min_pixels) / (double(height) * width));
        h_bar = std::ceil(height * beta / factor) * factor;
        w_bar = std::ceil(width * beta / factor) * factor;
    }
    return {int(h_bar), int(w_bar)};
}

inline PixelValues preprocess_qwen2vl(const Image& input, const Qwen2VLImageConfig& cfg) {
    if (input.channels != 3) docvlm::detail::fail("preprocess_qwen2vl: expected an RGB image, got ", input.channels, " channels");
    const int p = cfg.patch_size, m = cfg.merge_size, tp = cfg.temporal_patch_size;
    Image img = input;
    if (cfg.do_resize) {
        const auto [h, w] = smart_resize(input.height, input.width, p * m, cfg.min_pixels, cfg.max_pixels);
        img = resize(input, w, h, Resample::bicubic);
    }
    if (img.height % (p * m) != 0 || img.width % (p * m) != 0)
        docvlm::detail::fail("preprocess_qwen2vl: image ", img.width, "x", img.height, " is not a multiple of ", p * m);
    const double one[3] = {0, 0, 0}, unit[3] = {1, 1, 1};
    const Tensor<float, 3> planes = normalize(img, cfg.do_normalize ? std::span<const double>(cfg.image_mean) : std::span<const double>(one),
                                              cfg.do_normalize ? std::span<const double>(cfg.image_std) : std::span<const double>(unit),
                                              cfg.do_rescale ? cfg.rescale_factor : 1.0);
    PixelValues out;
    out.grid_t = 1;  // one image, repeated to temporal_patch_size frames
    out.grid_h = img.height / p;
    out.grid_w = img.width / p;
    const std::size_t cols = std::size_t(3) * tp * p * p;
    out.patches = Tensor<float, 2>::from_shape({out.count(), cols});
    std::size_t row = 0;
    for (int bh = 0; bh < out.grid_h / m; ++bh)
        for (int bw = 0; bw < out.grid_w / m; ++bw)
            for (int mh = 0; mh < m; ++mh)
                for (int mw = 0; mw < m; ++mw, ++row) {
                    const int y0 = (bh * m + mh) * p, x0 = (bw * m + mw) * p;
                    float* dst = out.patches.data() + row * cols;
                    for (int c = 0; c < 3; ++c)
                        for (int t = 0; t < tp; ++t)
                            for (int py = 0; py < p; ++py)
                                for (int px = 0; px < p; ++px) *dst++ = planes(c, y0 + py, x0 + px);
                }
    return out;
}

}  // namespace io
DOCVLM_NAMESPACE_END
