// docvlm/io/clip_processor.hpp — CLIP image preprocessing: Hugging Face's CLIPImageProcessor
// (the "slow", Pillow-based one) as LLaVA-1.5 uses it, and Qwen-VL's square resize
// (preprocess_square). CLIPImageProcessor:
//   resize     Pillow-exact bicubic so that the shortest edge is size.shortest_edge and the long
//              edge int(shortest · long / short) (truncated, as Python's int())
//   crop       centre crop_size, top = (H − h) // 2, left = (W − w) // 2 (zero padding where the
//              image is smaller, as transformers pads)
//   rescale    uint8 · rescale_factor in double, then float
//   normalise  (x − mean) / std in float, channels first → [3, h, w]
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/io/json.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <string>

DOCVLM_NAMESPACE_BEGIN
namespace io {

/// preprocessor_config.json of a CLIPImageProcessor.
struct ClipImageConfig {
    int shortest_edge = 336, crop_height = 336, crop_width = 336;
    std::array<double, 3> image_mean{0.48145466, 0.4578275, 0.40821073};
    std::array<double, 3> image_std{0.26862954, 0.26130258, 0.27577711};
    double rescale_factor = 1.0 / 255.0;
    bool do_resize = true, do_center_crop = true, do_rescale = true, do_normalize = true;

    /// Reads preprocessor_config.json; throws docvlm::Error naming the field.
    static ClipImageConfig from_json(const std::string& path);
};

/// CLIPImageProcessor on one RGB image: pixel values [3, crop_height, crop_width].
Tensor<float, 3> preprocess_clip(const Image& rgb, const ClipImageConfig& cfg);

/// torchvision's Resize((size, size), BICUBIC) on a PIL image, ToTensor, Normalize(mean, std), as
/// Qwen-VL's visual.py preprocesses: Pillow-exact bicubic to size × size (no aspect kept), then
/// (p / 255 − mean) / std in float → [3, size, size]. Defaults: CLIP's mean and std.
Tensor<float, 3> preprocess_square(const Image& rgb, int size, std::array<float, 3> mean = {0.48145466f, 0.4578275f, 0.40821073f},
                                   std::array<float, 3> std = {0.26862954f, 0.26130258f, 0.27577711f});

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline ClipImageConfig ClipImageConfig::from_json(const std::string& path) {
    const nlohmann::json j = read_json_file(path);
    if (!j.is_object()) docvlm::detail::fail(path, ": expected a JSON object");
    ClipImageConfig c;
    auto side = [&](const nlohmann::json& obj, const char* key, int fallback) {
        return int(json_number(obj, key, fallback, 1, 16384, true, path));
    };
    if (j.contains("size")) {
        if (j["size"].is_object()) c.shortest_edge = side(j["size"], "shortest_edge", c.shortest_edge);
        else c.shortest_edge = side(j, "size", c.shortest_edge);
    }
    if (j.contains("crop_size")) {
        if (j["crop_size"].is_object()) {
            c.crop_height = side(j["crop_size"], "height", c.crop_height);
            c.crop_width = side(j["crop_size"], "width", c.crop_width);
        } else {
            c.crop_height = c.crop_width = side(j, "crop_size", c.crop_height);
        }
    }
    if (j.contains("resample") && (!j["resample"].is_number_integer() || j["resample"].get<int>() != 3))
        docvlm::detail::fail(path, ": resample ", j["resample"].dump(), " is not 3 (bicubic), the only filter docvlm's CLIP preprocessing has");
    c.rescale_factor = json_number(j, "rescale_factor", c.rescale_factor, 1e-9, 1e9, false, path);
    for (const char* key : {"image_mean", "image_std"}) {
        if (!j.contains(key)) continue;
        const auto& a = j[key];
        if (!a.is_array() || a.size() != 3) docvlm::detail::fail(path, ": '", key, "' must be 3 numbers");
        auto& dst = std::string(key) == "image_mean" ? c.image_mean : c.image_std;
        for (std::size_t i = 0; i < 3; ++i) {
            if (!a[i].is_number()) docvlm::detail::fail(path, ": '", key, "' must be 3 numbers");
            dst[i] = a[i].get<double>();
        }
    }
    for (double s : c.image_std)
        if (!(s > 0)) docvlm::detail::fail(path, ": image_std must be positive");
    c.do_resize = json_flag(j, "do_resize", true, path);
    c.do_center_crop = json_flag(j, "do_center_crop", true, path);
    c.do_rescale = json_flag(j, "do_rescale", true, path);
    c.do_normalize = json_flag(j, "do_normalize", true, path);
    return c;
}

inline Tensor<float, 3> preprocess_clip(const Image& input, const ClipImageConfig& cfg) {
    if (input.channels != 3) docvlm::detail::fail("preprocess_clip: expected an RGB image, got ", input.channels, " channels");
    if (input.width <= 0 || input.height <= 0) docvlm::detail::fail("preprocess_clip: empty image");
    Image img = input;
    if (cfg.do_resize) {
        const bool portrait = input.width <= input.height;
        const long long s = cfg.shortest_edge, shorter = portrait ? input.width : input.height, longer = portrait ? input.height : input.width;
        const int other = int(double(s * longer) / double(shorter));  // Python: int(size * long / short)
        if (other < 1 || other > 65536) docvlm::detail::fail("preprocess_clip: a ", input.width, "x", input.height, " image resizes to an absurd side");
        img = portrait ? resize(input, int(s), other, Resample::bicubic) : resize(input, other, int(s), Resample::bicubic);
    }
    if (cfg.do_center_crop) {  // transformers pads a smaller image around its centre first
        auto start = [](int have, int want) { return have >= want ? (have - want) / 2 : -((want - have) / 2); };
        const int top = start(img.height, cfg.crop_height), left = start(img.width, cfg.crop_width);
        img = crop(img, left, top, left + cfg.crop_width, top + cfg.crop_height);
    }
    const double zero[3] = {0, 0, 0}, unit[3] = {1, 1, 1};
    return normalize(img, cfg.do_normalize ? std::span<const double>(cfg.image_mean) : std::span<const double>(zero),
                     cfg.do_normalize ? std::span<const double>(cfg.image_std) : std::span<const double>(unit),
                     cfg.do_rescale ? cfg.rescale_factor : 1.0);
}

inline Tensor<float, 3> preprocess_square(const Image& input, int size, std::array<float, 3> mean, std::array<float, 3> std) {
    if (input.channels != 3) docvlm::detail::fail("preprocess_square: expected an RGB image, got ", input.channels, " channels");
    if (input.width <= 0 || input.height <= 0) docvlm::detail::fail("preprocess_square: empty image");
    if (size <= 0 || size > 16384) docvlm::detail::fail("preprocess_square: size ", size, " is out of range");
    const Image img = resize(input, size, size, Resample::bicubic);
    Tensor<float, 3> out = Tensor<float, 3>::from_shape({3, std::size_t(size), std::size_t(size)});
    for (int c = 0; c < 3; ++c)
        for (int y = 0; y < size; ++y)
            for (int x = 0; x < size; ++x) out(std::size_t(c), std::size_t(y), std::size_t(x)) = (float(img.at(x, y, c)) / 255.0f - mean[std::size_t(c)]) / std[std::size_t(c)];
    return out;
}

}  // namespace io
DOCVLM_NAMESPACE_END
