// docvlm/io/image.hpp — decode PNG/JPEG/BMP, PIL-exact resize, crop, rotate, normalise.
//
// Images are 8-bit, interleaved, row-major: RGB (3 channels) or gray (1). Decoding uses stb_image
// after checking the header against a pixel limit, so a hostile file cannot make docvlm allocate
// gigabytes; corrupt and truncated files raise docvlm::Error. resize() reproduces Pillow's
// Image.resize(..., BICUBIC / BILINEAR) on uint8 images bit for bit (Qwen2-VL preprocessing and
// MinerU2.5's client depend on it): separable filters, support scaled by the reduction factor,
// 22-bit fixed-point weights, horizontal pass first, clipping to uint8 after each pass.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/io/mapped_file.hpp>

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace io {

/// An 8-bit image: `channels` interleaved samples per pixel, rows top to bottom.
struct Image {
    int width = 0, height = 0, channels = 0;
    std::vector<std::uint8_t> pixels;  ///< height * width * channels bytes

    Image() = default;
    Image(int w, int h, int c, std::uint8_t fill = 0);

    std::uint8_t* row(int y) { return pixels.data() + std::size_t(y) * width * channels; }
    const std::uint8_t* row(int y) const { return pixels.data() + std::size_t(y) * width * channels; }
    std::uint8_t& at(int x, int y, int c = 0) { return row(y)[std::size_t(x) * channels + c]; }
    std::uint8_t at(int x, int y, int c = 0) const { return row(y)[std::size_t(x) * channels + c]; }
    bool empty() const { return pixels.empty(); }
    /// Zero-copy [height, width, channels] view.
    TensorView<const std::uint8_t, 3> tensor() const;
};

/// What decode_image() returns.
enum class ColorMode { rgb, gray };

/// Limits applied before decoding.
struct ImageLimits {
    /// Largest width * height accepted (default 64 Mpx = 2^26 pixels).
    std::size_t max_pixels = std::size_t(1) << 26;
};

/// Decodes PNG, JPEG or BMP bytes. `source` names the data in error messages. Gray output from a
/// color image uses Pillow's convert("L") weights; RGB output from RGBA drops alpha (as Pillow does).
Image decode_image(std::span<const std::byte> bytes, ColorMode mode = ColorMode::rgb, ImageLimits limits = {},
                   const std::string& source = "<memory>");
/// Reads and decodes a file.
Image load_image(const std::string& path, ColorMode mode = ColorMode::rgb, ImageLimits limits = {});
/// Writes a PNG (atomically: temporary file, then rename).
void save_png(const Image& image, const std::string& path);
/// The bytes of a baseline JPEG of an RGB or gray image (quality 1..100; chroma subsampled 2 × 2
/// below 90, as Pillow's default).
std::string encode_jpeg(const Image& image, int quality = 75);

/// Resampling filters of resize(), as in Pillow.
enum class Resample { bilinear, bicubic };
/// Resizes to width x height exactly as Pillow's Image.resize((width, height), filter) on 8-bit data.
Image resize(const Image& image, int width, int height, Resample filter = Resample::bicubic);
/// The pixels [x0, x1) x [y0, y1); parts outside the image are black (0), as Pillow's crop().
Image crop(const Image& image, int x0, int y0, int x1, int y1);
/// Rotates counter-clockwise by 0, 90, 180 or 270 degrees (Pillow's rotate(deg, expand=True)).
Image rotate(const Image& image, int degrees);
/// Pillow's convert("L"): (19595 R + 38470 G + 7471 B + 2^15) >> 16. Gray input is copied.
Image to_gray(const Image& image);

/// Float planes [channels, height, width] = (float(pixel * scale) - mean[c]) / std[c], computed as
/// Hugging Face image processors do (rescale in double, cast to float, normalise in float).
Tensor<float, 3> normalize(const Image& image, std::span<const double> mean, std::span<const double> std,
                           double scale = 1.0 / 255.0);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline Image::Image(int w, int h, int c, std::uint8_t fill)
    : width(w), height(h), channels(c), pixels(std::size_t(w) * std::size_t(h) * std::size_t(c), fill) {
    if (w < 0 || h < 0 || c < 1 || c > 4) docvlm::detail::fail("Image: invalid size ", w, "x", h, "x", c);
}

inline TensorView<const std::uint8_t, 3> Image::tensor() const {
    return make_view(pixels.data(), std::array<std::size_t, 3>{std::size_t(height), std::size_t(width), std::size_t(channels)});
}

namespace detail {

enum class ImageFormat { png, jpeg, bmp, unknown };

inline ImageFormat sniff(std::span<const std::byte> b) {
    auto at = [&](std::size_t i) { return std::uint8_t(b[i]); };
    if (b.size() >= 8 && at(0) == 0x89 && at(1) == 'P' && at(2) == 'N' && at(3) == 'G' && at(4) == 0x0d && at(5) == 0x0a &&
        at(6) == 0x1a && at(7) == 0x0a)
        return ImageFormat::png;
    if (b.size() >= 3 && at(0) == 0xff && at(1) == 0xd8 && at(2) == 0xff) return ImageFormat::jpeg;
    if (b.size() >= 2 && at(0) == 'B' && at(1) == 'M') return ImageFormat::bmp;
    return ImageFormat::unknown;
}

inline std::uint32_t le32(std::span<const std::byte> b, std::size_t at) {
    return std::uint32_t(b[at]) | std::uint32_t(b[at + 1]) << 8 | std::uint32_t(b[at + 2]) << 16 | std::uint32_t(b[at + 3]) << 24;
}

inline std::uint32_t be16(std::span<const std::byte> b, std::size_t at) {
    return std::uint32_t(b[at]) << 8 | std::uint32_t(b[at + 1]);
}

// Width and height from the container header, read without stb (which refuses very large images
// with a vague "unknown image type"); {0, 0} when the header cannot be read this way.
inline std::pair<std::uint64_t, std::uint64_t> header_size(std::span<const std::byte> b, ImageFormat f) {
    if (f == ImageFormat::png && b.size() >= 24) return {be16(b, 16) << 16 | be16(b, 18), be16(b, 20) << 16 | be16(b, 22)};
    if (f == ImageFormat::bmp && b.size() >= 26 && le32(b, 14) >= 40) {
        const std::int32_t h = std::int32_t(le32(b, 22));  // negative height = top-down rows
        return {le32(b, 18), h < 0 ? std::uint64_t(-std::int64_t(h)) : std::uint64_t(h)};
    }
    if (f == ImageFormat::jpeg) {  // walk the marker segments up to the first start-of-frame
        std::size_t i = 2;
        while (i + 9 < b.size()) {
            if (std::uint8_t(b[i]) != 0xff) break;
            const std::uint8_t m = std::uint8_t(b[i + 1]);
            if (m == 0xff) { ++i; continue; }
            const bool sof = m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
            if (sof) return {be16(b, i + 7), be16(b, i + 5)};
            i += 2 + be16(b, i + 2);
        }
    }
    return {0, 0};
}

// stb_image fills missing data of a truncated JPEG or BMP with zeros instead of failing; catch
// those cases from the container structure before decoding.
inline void check_complete(std::span<const std::byte> b, ImageFormat f, int w, int h, const std::string& src) {
    if (f == ImageFormat::jpeg) {
        // A complete JPEG ends with the EOI marker FF D9 (some writers append a few bytes after it).
        const std::size_t tail = std::min<std::size_t>(b.size(), 4096);
        bool eoi = false;
        for (std::size_t i = b.size() - tail; i + 1 < b.size() && !eoi; ++i)
            eoi = std::uint8_t(b[i]) == 0xff && std::uint8_t(b[i + 1]) == 0xd9;
        if (!eoi) docvlm::detail::fail(src, ": truncated JPEG (no end-of-image marker)");
    } else if (f == ImageFormat::bmp) {
        if (b.size() < 30) docvlm::detail::fail(src, ": truncated BMP header");
        const std::uint32_t data_offset = le32(b, 10);
        const std::uint32_t header_size = le32(b, 14);
        const unsigned bpp = std::uint8_t(b[28]) | unsigned(std::uint8_t(b[29])) << 8;
        const std::uint32_t compression = b.size() >= 34 && header_size >= 40 ? le32(b, 30) : 0;
        if (compression == 0 || compression == 3) {  // uncompressed rows (BI_RGB / BI_BITFIELDS)
            const std::uint64_t stride = (std::uint64_t(w) * bpp + 31) / 32 * 4;
            const std::uint64_t need = std::uint64_t(data_offset) + stride * std::uint64_t(h);
            if (bpp == 0 || need > b.size())
                docvlm::detail::fail(src, ": truncated BMP (", b.size(), " bytes, pixel data needs ", need, ")");
        }
    }
}

// Pillow's filters (libImaging/Resample.c).
inline double filter_bicubic(double x) {
    constexpr double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}
inline double filter_bilinear(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

// Fixed-point coefficients for one axis: for output i, taps [bounds[2i], bounds[2i] + bounds[2i+1]).
struct ResampleCoeffs {
    int ksize = 0;
    std::vector<int> bounds;
    std::vector<std::int32_t> k;
};

constexpr int pil_precision_bits = 32 - 8 - 2;

inline ResampleCoeffs precompute_coeffs(int in_size, int out_size, Resample filter) {
    const double support0 = filter == Resample::bicubic ? 2.0 : 1.0;
    const double scale = double(in_size) / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = support0 * filterscale;
    ResampleCoeffs c;
    c.ksize = int(std::ceil(support)) * 2 + 1;
    c.bounds.resize(std::size_t(out_size) * 2);
    c.k.assign(std::size_t(out_size) * c.ksize, 0);
    std::vector<double> w(c.ksize);
    for (int xx = 0; xx < out_size; ++xx) {
        const double center = (xx + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        int xmin = int(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = int(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            const double t = (x + xmin - center + 0.5) * ss;
            w[x] = filter == Resample::bicubic ? filter_bicubic(t) : filter_bilinear(t);
            ww += w[x];
        }
        for (int x = 0; x < xmax; ++x) {
            const double v = ww != 0.0 ? w[x] / ww : w[x];
            c.k[std::size_t(xx) * c.ksize + x] =
                v < 0 ? int(-0.5 + v * (1 << pil_precision_bits)) : int(0.5 + v * (1 << pil_precision_bits));
        }
        c.bounds[2 * xx] = xmin;
        c.bounds[2 * xx + 1] = xmax;
    }
    return c;
}

inline std::uint8_t clip8(std::int64_t v) {
    v >>= pil_precision_bits;
    return std::uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

inline Image resample_horizontal(const Image& in, int out_w, Resample f) {
    const ResampleCoeffs c = precompute_coeffs(in.width, out_w, f);
    Image out(out_w, in.height, in.channels);
    const int ch = in.channels;
    for (int y = 0; y < in.height; ++y) {
        const std::uint8_t* src = in.row(y);
        std::uint8_t* dst = out.row(y);
        for (int xx = 0; xx < out_w; ++xx) {
            const int xmin = c.bounds[2 * xx], xmax = c.bounds[2 * xx + 1];
            const std::int32_t* k = &c.k[std::size_t(xx) * c.ksize];
            for (int ci = 0; ci < ch; ++ci) {
                std::int64_t ss = std::int64_t(1) << (pil_precision_bits - 1);
                for (int x = 0; x < xmax; ++x) ss += std::int64_t(src[std::size_t(x + xmin) * ch + ci]) * k[x];
                dst[std::size_t(xx) * ch + ci] = clip8(ss);
            }
        }
    }
    return out;
}

inline Image resample_vertical(const Image& in, int out_h, Resample f) {
    const ResampleCoeffs c = precompute_coeffs(in.height, out_h, f);
    Image out(in.width, out_h, in.channels);
    const std::size_t row_len = std::size_t(in.width) * in.channels;
    std::vector<std::int64_t> acc(row_len);
    for (int yy = 0; yy < out_h; ++yy) {
        const int ymin = c.bounds[2 * yy], ymax = c.bounds[2 * yy + 1];
        const std::int32_t* k = &c.k[std::size_t(yy) * c.ksize];
        std::fill(acc.begin(), acc.end(), std::int64_t(1) << (pil_precision_bits - 1));
        for (int y = 0; y < ymax; ++y) {
            const std::uint8_t* src = in.row(y + ymin);
            const std::int64_t w = k[y];
            for (std::size_t i = 0; i < row_len; ++i) acc[i] += src[i] * w;
        }
        std::uint8_t* dst = out.row(yy);
        for (std::size_t i = 0; i < row_len; ++i) dst[i] = clip8(acc[i]);
    }
    return out;
}

}  // namespace detail

inline Image decode_image(std::span<const std::byte> bytes, ColorMode mode, ImageLimits limits, const std::string& source) {
    using docvlm::detail::fail;
    const detail::ImageFormat format = detail::sniff(bytes);
    if (format == detail::ImageFormat::unknown) fail(source, ": unsupported image format (expected PNG, JPEG or BMP)");
    if (bytes.size() > std::size_t(INT32_MAX)) fail(source, ": image file is larger than 2 GiB");
    if (auto [hw, hh] = detail::header_size(bytes, format); hw * hh > limits.max_pixels)
        fail(source, ": image is ", hw, "x", hh, " = ", hw * hh, " pixels, above the limit of ", limits.max_pixels);
    const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
    const int len = int(bytes.size());
    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_memory(data, len, &w, &h, &comp))
        fail(source, ": corrupt image header (", stbi_failure_reason(), ")");
    if (w <= 0 || h <= 0) fail(source, ": image has no pixels (", w, "x", h, ")");
    if (std::uint64_t(w) * std::uint64_t(h) > limits.max_pixels)
        fail(source, ": image is ", w, "x", h, " = ", std::uint64_t(w) * h, " pixels, above the limit of ", limits.max_pixels);
    detail::check_complete(bytes, format, w, h, source);
    const int want = comp <= 2 ? 1 : 3;  // gray sources stay gray, colour sources decode to RGB
    int dw = 0, dh = 0, dc = 0;
    stbi_uc* pixels = stbi_load_from_memory(data, len, &dw, &dh, &dc, want);
    if (!pixels) fail(source, ": cannot decode image (", stbi_failure_reason(), ")");
    Image img;
    img.width = dw;
    img.height = dh;
    img.channels = want;
    img.pixels.assign(pixels, pixels + std::size_t(dw) * dh * want);
    stbi_image_free(pixels);
    if (mode == ColorMode::gray && img.channels == 3) return to_gray(img);
    if (mode == ColorMode::rgb && img.channels == 1) {
        Image rgb(img.width, img.height, 3);
        for (std::size_t i = 0; i < img.pixels.size(); ++i)
            rgb.pixels[3 * i] = rgb.pixels[3 * i + 1] = rgb.pixels[3 * i + 2] = img.pixels[i];
        return rgb;
    }
    return img;
}

inline Image load_image(const std::string& path, ColorMode mode, ImageLimits limits) {
    MappedFile file(path);
    return decode_image(file.bytes(), mode, limits, path);
}

inline void save_png(const Image& image, const std::string& path) {
    if (image.empty()) docvlm::detail::fail(path, ": cannot write an empty image");
    const std::string tmp = path + ".tmp";
    if (!stbi_write_png(tmp.c_str(), image.width, image.height, image.channels, image.pixels.data(),
                        image.width * image.channels))
        docvlm::detail::fail(tmp, ": cannot write PNG");
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) docvlm::detail::fail(path, ": cannot rename ", tmp, ": ", ec.message());
}

inline std::string encode_jpeg(const Image& image, int quality) {
    if (image.empty()) docvlm::detail::fail("encode_jpeg: the image is empty");
    if (image.channels != 1 && image.channels != 3) docvlm::detail::fail("encode_jpeg: ", image.channels, " channels (expected 1 or 3)");
    std::string bytes;
    auto append = [](void* context, void* data, int size) { static_cast<std::string*>(context)->append(static_cast<const char*>(data), std::size_t(size)); };
    if (!stbi_write_jpg_to_func(append, &bytes, image.width, image.height, image.channels, image.pixels.data(), std::clamp(quality, 1, 100)))
        docvlm::detail::fail("encode_jpeg: cannot encode a ", image.width, "x", image.height, " image");
    return bytes;
}

inline Image resize(const Image& image, int width, int height, Resample filter) {
    if (width <= 0 || height <= 0) docvlm::detail::fail("resize: target size ", width, "x", height, " is empty");
    if (image.empty()) docvlm::detail::fail("resize: the source image is empty");
    // Pillow skips a pass whose axis keeps its size; both passes write uint8 (clipped) results.
    const bool horizontal = width != image.width, vertical = height != image.height;
    if (!horizontal && !vertical) return image;
    if (!horizontal) return detail::resample_vertical(image, height, filter);
    Image tmp = detail::resample_horizontal(image, width, filter);
    return vertical ? detail::resample_vertical(tmp, height, filter) : tmp;
}

inline Image crop(const Image& image, int x0, int y0, int x1, int y1) {
    if (x1 < x0 || y1 < y0) docvlm::detail::fail("crop: box (", x0, ", ", y0, ", ", x1, ", ", y1, ") is inverted");
    Image out(x1 - x0, y1 - y0, image.channels);
    const int cx0 = std::max(x0, 0), cx1 = std::min(x1, image.width);
    for (int y = std::max(y0, 0); y < std::min(y1, image.height); ++y)
        if (cx1 > cx0)
            std::memcpy(out.row(y - y0) + std::size_t(cx0 - x0) * image.channels, image.row(y) + std::size_t(cx0) * image.channels,
                        std::size_t(cx1 - cx0) * image.channels);
    return out;
}

inline Image rotate(const Image& image, int degrees) {
    const int d = ((degrees % 360) + 360) % 360;
    if (d % 90 != 0) docvlm::detail::fail("rotate: ", degrees, " degrees is not a multiple of 90");
    if (d == 0) return image;
    const int w = image.width, h = image.height, c = image.channels;
    Image out = d == 180 ? Image(w, h, c) : Image(h, w, c);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            int ox, oy;  // counter-clockwise rotation of (x, y)
            if (d == 90) ox = y, oy = w - 1 - x;
            else if (d == 180) ox = w - 1 - x, oy = h - 1 - y;
            else ox = h - 1 - y, oy = x;
            std::memcpy(&out.at(ox, oy), image.row(y) + std::size_t(x) * c, std::size_t(c));
        }
    return out;
}

inline Image to_gray(const Image& image) {
    if (image.channels == 1) return image;
    if (image.channels < 3) docvlm::detail::fail("to_gray: expected 1 or 3+ channels, got ", image.channels);
    Image out(image.width, image.height, 1);
    const std::size_t n = std::size_t(image.width) * image.height;
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t* p = &image.pixels[i * image.channels];
        out.pixels[i] = std::uint8_t((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
    }
    return out;
}

inline Tensor<float, 3> normalize(const Image& image, std::span<const double> mean, std::span<const double> std, double scale) {
    const std::size_t c = std::size_t(image.channels);
    if (mean.size() != c || std.size() != c)
        docvlm::detail::fail("normalize: ", c, " channels but ", mean.size(), " means and ", std.size(), " stds");
    Tensor<float, 3> out = Tensor<float, 3>::from_shape({c, std::size_t(image.height), std::size_t(image.width)});
    const std::size_t plane = std::size_t(image.height) * image.width;
    for (std::size_t ch = 0; ch < c; ++ch) {
        const float m = float(mean[ch]), s = float(std[ch]);
        float* dst = out.data() + ch * plane;
        for (std::size_t i = 0; i < plane; ++i) dst[i] = (float(double(image.pixels[i * c + ch]) * scale) - m) / s;
    }
    return out;
}

}  // namespace io
DOCVLM_NAMESPACE_END
