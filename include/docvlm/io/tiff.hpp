// docvlm/io/tiff.hpp — TIFF pages (scanners' format: one page per directory, any compression
// libtiff reads) decoded from memory. Optional: it needs libtiff (Debian libtiff-dev; link
// docvlm::tiff, or -ltiff).
//
// Limits hold before any pixel is decoded: width × height of the page against
// ImageLimits::max_pixels, and every single allocation libtiff makes is capped, so a hostile
// file cannot make it reserve more than the page itself needs.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/io/image.hpp>

#include <tiffio.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace io {

/// True if `bytes` start like a TIFF file ("II*\0" or "MM\0*"; BigTIFF's 43 as well).
bool is_tiff(std::span<const std::byte> bytes);
/// Number of pages (directories) of a TIFF file.
std::size_t tiff_page_count(std::span<const std::byte> bytes, const std::string& source = "<memory>");
/// Page `page` (0-based) of a TIFF file, as decode_image() returns images (alpha dropped).
Image decode_tiff(std::span<const std::byte> bytes, std::size_t page = 0, ColorMode mode = ColorMode::rgb, ImageLimits limits = {},
                  const std::string& source = "<memory>");

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {

// libtiff reads the bytes through these callbacks; `error` keeps its first message.
struct TiffMemory {
    std::span<const std::byte> bytes;
    toff_t pos = 0;
    std::string error;
};

inline tmsize_t tiff_read(thandle_t h, void* buf, tmsize_t n) {
    auto* m = static_cast<TiffMemory*>(h);
    if (n <= 0 || m->pos >= m->bytes.size()) return 0;
    const std::size_t k = std::min<std::size_t>(std::size_t(n), m->bytes.size() - std::size_t(m->pos));
    std::memcpy(buf, m->bytes.data() + m->pos, k);
    m->pos += k;
    return tmsize_t(k);
}
inline tmsize_t tiff_write(thandle_t, void*, tmsize_t) { return 0; }
inline toff_t tiff_seek(thandle_t h, toff_t off, int whence) {
    auto* m = static_cast<TiffMemory*>(h);
    const toff_t base = whence == SEEK_CUR ? m->pos : whence == SEEK_END ? toff_t(m->bytes.size()) : 0;
    m->pos = base + off;  // reading past the end yields 0 bytes
    return m->pos;
}
inline int tiff_close(thandle_t) { return 0; }
inline toff_t tiff_size(thandle_t h) { return toff_t(static_cast<TiffMemory*>(h)->bytes.size()); }
inline int tiff_map(thandle_t, void**, toff_t*) { return 0; }
inline void tiff_unmap(thandle_t, void*, toff_t) {}
inline int tiff_error(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
    auto* m = static_cast<TiffMemory*>(user);
    if (m->error.empty()) {
        char buf[512];
        std::vsnprintf(buf, sizeof buf, fmt, ap);
        m->error = std::string(module ? module : "libtiff") + ": " + buf;
    }
    return 1;
}
inline int tiff_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

struct TiffCloser {
    void operator()(TIFF* t) const { TIFFClose(t); }
};

// Opens the bytes with errors captured in `m` and allocations capped at `max_alloc` bytes.
inline std::unique_ptr<TIFF, TiffCloser> tiff_open(TiffMemory& m, std::size_t max_alloc, const std::string& source) {
    TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
    TIFFOpenOptionsSetMaxSingleMemAlloc(opts, tmsize_t(max_alloc));
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_error, &m);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_warning, &m);
    TIFF* t = TIFFClientOpenExt(source.c_str(), "rm", &m, tiff_read, tiff_write, tiff_seek, tiff_close, tiff_size, tiff_map, tiff_unmap, opts);
    TIFFOpenOptionsFree(opts);
    if (!t) docvlm::detail::fail(source, ": not a readable TIFF file (", m.error.empty() ? "bad header" : m.error, ")");
    return std::unique_ptr<TIFF, TiffCloser>(t);
}

}  // namespace detail

inline bool is_tiff(std::span<const std::byte> b) {
    if (b.size() < 4) return false;
    const auto c = [&](std::size_t i) { return std::uint8_t(b[i]); };
    return (c(0) == 'I' && c(1) == 'I' && (c(2) == 42 || c(2) == 43) && c(3) == 0) ||
           (c(0) == 'M' && c(1) == 'M' && c(2) == 0 && (c(3) == 42 || c(3) == 43));
}

inline std::size_t tiff_page_count(std::span<const std::byte> bytes, const std::string& source) {
    detail::TiffMemory m{bytes, 0, {}};
    auto t = detail::tiff_open(m, std::size_t(64) << 20, source);
    return TIFFNumberOfDirectories(t.get());
}

inline Image decode_tiff(std::span<const std::byte> bytes, std::size_t page, ColorMode mode, ImageLimits limits, const std::string& source) {
    using docvlm::detail::fail;
    if (!is_tiff(bytes)) fail(source, ": not a TIFF file");
    detail::TiffMemory m{bytes, 0, {}};
    auto t = detail::tiff_open(m, limits.max_pixels * 4 + (std::size_t(1) << 20), source);
    if (page > 0xFFFF || !TIFFSetDirectory(t.get(), tdir_t(page))) fail(source, ": the TIFF file has no page ", page + 1);
    std::uint32_t w = 0, h = 0;
    if (!TIFFGetField(t.get(), TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(t.get(), TIFFTAG_IMAGELENGTH, &h) || w == 0 || h == 0)
        fail(source, ": TIFF page ", page + 1, " has no size");
    if (std::uint64_t(w) * h > limits.max_pixels)
        fail(source, ": image is ", w, "x", h, " = ", std::uint64_t(w) * h, " pixels, above the limit of ", limits.max_pixels);
    if (w > 0x7FFFFFF || h > 0x7FFFFFF) fail(source, ": TIFF page ", page + 1, " is too wide or tall");
    std::vector<std::uint32_t> raster(std::size_t(w) * h);
    if (!TIFFReadRGBAImageOriented(t.get(), w, h, raster.data(), ORIENTATION_TOPLEFT, 1))  // stop at the first error
        fail(source, ": cannot decode TIFF page ", page + 1, " (", m.error.empty() ? "unsupported layout" : m.error, ")");
    Image rgb(int(w), int(h), 3);
    for (std::size_t i = 0; i < raster.size(); ++i) {
        const std::uint32_t p = raster[i];
        rgb.pixels[3 * i] = std::uint8_t(TIFFGetR(p)), rgb.pixels[3 * i + 1] = std::uint8_t(TIFFGetG(p));
        rgb.pixels[3 * i + 2] = std::uint8_t(TIFFGetB(p));
    }
    return mode == ColorMode::gray ? to_gray(rgb) : rgb;
}

}  // namespace io
DOCVLM_NAMESPACE_END
