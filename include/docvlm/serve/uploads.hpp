// docvlm/serve/uploads.hpp — what the server accepts as a file: the type sniffed from the
// bytes (never from a name or a declared type), limits checked before decoding, and every
// refusal an ApiError with its status:
//   415  not PNG, JPEG, BMP, TIFF or PDF (GIF, WebP, SVG, text, ... named when recognised)
//   413  more pixels than max_pixels (read from the header: a decompression bomb is refused
//        before a byte is inflated), more pages than max_pages, decoding past max_decode_seconds
//   400  truncated or corrupt data, a polyglot (a PDF header hidden in another file's first KiB,
//        where PDF readers would find it), a password-protected PDF, a bad page list
// Needs poppler-cpp and libtiff (io/pdf.hpp, io/tiff.hpp).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/io/pdf.hpp>
#include <docvlm/io/tiff.hpp>
#include <docvlm/serve/openai_api.hpp>

#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace serve {

struct UploadLimits {
    std::size_t max_pixels = std::size_t(1) << 26;  ///< per image or rendered page (64 Mpx)
    std::size_t max_pages = 200;                    ///< per document
    double pdf_dpi = 150;                           ///< PDF pages are rendered at this resolution
    double max_decode_seconds = 120;                ///< for all of a document's pages
};

enum class FileKind { png, jpeg, bmp, tiff, pdf, gif, webp, svg, zip, unknown };

/// The file's type from its first bytes.
FileKind sniff_file(std::string_view bytes);
std::string_view kind_name(FileKind kind);

/// One image of a chat request (PNG, JPEG, BMP, or a TIFF's first page) as RGB.
io::Image decode_chat_image(std::string_view bytes, const UploadLimits& limits = {});

/// An uploaded document: an image (one page), a TIFF (one page per directory) or a PDF (pages
/// rendered one at a time, on demand), restricted to `pages` ("1-3,7"; empty: all).
class UploadedDocument {
public:
    UploadedDocument(std::string bytes, const std::string& pages, const UploadLimits& limits = {});
    FileKind kind() const { return kind_; }
    /// Pages to parse (after the page list), at most max_pages.
    std::size_t page_count() const { return pages_.size(); }
    /// The 1-based page number of the i-th page to parse.
    int page_number(std::size_t i) const { return pages_.at(i) + 1; }
    /// The i-th page as RGB; 413 once the document's decoding time is spent.
    io::Image page(std::size_t i);

private:
    std::string bytes_;
    FileKind kind_;
    UploadLimits limits_;
    std::vector<int> pages_;
    std::optional<io::PdfPages> pdf_;
    double spent_ = 0;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline FileKind sniff_file(std::string_view b) {
    auto starts = [&](std::string_view m) { return b.substr(0, m.size()) == m; };
    const auto bytes = std::as_bytes(std::span(b.data(), b.size()));
    switch (io::detail::sniff(bytes)) {  // what decode_image reads
        case io::detail::ImageFormat::png: return FileKind::png;
        case io::detail::ImageFormat::jpeg: return FileKind::jpeg;
        case io::detail::ImageFormat::bmp: return FileKind::bmp;
        case io::detail::ImageFormat::unknown: break;
    }
    if (io::is_tiff(bytes)) return FileKind::tiff;
    if (io::is_pdf(bytes)) return FileKind::pdf;
    if (starts("GIF87a") || starts("GIF89a")) return FileKind::gif;
    if (starts("RIFF") && b.size() >= 12 && b.substr(8, 4) == "WEBP") return FileKind::webp;
    if (starts("PK\x03\x04")) return FileKind::zip;
    const std::string_view head = b.substr(0, 256);
    if (head.find("<svg") != std::string_view::npos) return FileKind::svg;
    return FileKind::unknown;
}

inline std::string_view kind_name(FileKind k) {
    switch (k) {
        case FileKind::png: return "PNG";
        case FileKind::jpeg: return "JPEG";
        case FileKind::bmp: return "BMP";
        case FileKind::tiff: return "TIFF";
        case FileKind::pdf: return "PDF";
        case FileKind::gif: return "GIF";
        case FileKind::webp: return "WebP";
        case FileKind::svg: return "SVG";
        case FileKind::zip: return "ZIP (or an Office document)";
        case FileKind::unknown: break;
    }
    return "an unrecognised type";
}

namespace detail {

// The type, or an ApiError: 415 for types docvlm does not read, 400 for polyglots.
inline FileKind accepted_kind(std::string_view bytes, bool pdf_allowed) {
    const FileKind k = sniff_file(bytes);
    if (k != FileKind::pdf && bytes.substr(0, 1024).find("%PDF-") != std::string_view::npos)
        reject(400, "polyglot_file", "the file starts as ", kind_name(k), " but holds a PDF header in its first KiB (a polyglot); refused");
    const bool ok = k == FileKind::png || k == FileKind::jpeg || k == FileKind::bmp || k == FileKind::tiff || (pdf_allowed && k == FileKind::pdf);
    if (!ok)
        reject(415, "unsupported_file_type", "the file is ", kind_name(k), "; accepted: PNG, JPEG, BMP, TIFF", pdf_allowed ? ", PDF" : "",
               " (the type is read from the file's bytes)");
    return k;
}

inline std::uint64_t header_pixels(std::string_view bytes) {
    const auto b = std::as_bytes(std::span(bytes.data(), bytes.size()));
    const auto [w, h] = io::detail::header_size(b, io::detail::sniff(b));
    return w * h;
}

// Decodes an image of an accepted kind; corrupt data → 400, too many pixels → 413.
inline io::Image decode_image_of(std::string_view bytes, FileKind k, std::size_t tiff_page, const UploadLimits& limits) {
    const auto b = std::as_bytes(std::span(bytes.data(), bytes.size()));
    if (const std::uint64_t px = header_pixels(bytes); px > limits.max_pixels)
        reject(413, "image_too_large", "the image has ", px, " pixels, above the limit of ", limits.max_pixels);
    io::ImageLimits il;
    il.max_pixels = limits.max_pixels;
    try {
        return k == FileKind::tiff ? io::decode_tiff(b, tiff_page, io::ColorMode::rgb, il, "upload") : io::decode_image(b, io::ColorMode::rgb, il, "upload");
    } catch (const Error& e) {
        const bool too_big = std::string_view(e.what()).find("above the limit") != std::string_view::npos;
        reject(too_big ? 413 : 400, too_big ? "image_too_large" : "corrupt_image", e.what());
    }
}

}  // namespace detail

inline io::Image decode_chat_image(std::string_view bytes, const UploadLimits& limits) {
    const FileKind k = detail::accepted_kind(bytes, false);
    return detail::decode_image_of(bytes, k, 0, limits);
}

inline UploadedDocument::UploadedDocument(std::string bytes, const std::string& pages, const UploadLimits& limits)
    : bytes_(std::move(bytes)), kind_(detail::accepted_kind(bytes_, true)), limits_(limits) {
    int count = 1;
    try {
        if (kind_ == FileKind::pdf) {
            pdf_.emplace(bytes_, "upload");
            count = pdf_->count();
        } else if (kind_ == FileKind::tiff) {
            count = int(std::min<std::size_t>(io::tiff_page_count(std::as_bytes(std::span(bytes_.data(), bytes_.size())), "upload"), 1u << 20));
        }
        pages_ = io::page_list(pages, count);
    } catch (const ApiError&) {
        throw;
    } catch (const Error& e) {
        reject(400, "corrupt_document", e.what());
    }
    if (pages_.empty()) reject(400, "empty_document", "the document has no pages");
    if (pages_.size() > limits_.max_pages)
        reject(413, "too_many_pages", "the document has ", pages_.size(), " pages to parse, above the limit of ", limits_.max_pages,
               " (choose some with 'pages')");
}

inline io::Image UploadedDocument::page(std::size_t i) {
    if (spent_ > limits_.max_decode_seconds)
        reject(413, "decoding_too_slow", "decoding the document took more than ", limits_.max_decode_seconds, " s; refused");
    const auto t0 = std::chrono::steady_clock::now();
    io::Image img;
    if (kind_ == FileKind::pdf) {
        try {
            img = pdf_->render(pages_.at(i), limits_.pdf_dpi, limits_.max_pixels);
        } catch (const Error& e) {
            const bool too_big = std::string_view(e.what()).find("above the limit") != std::string_view::npos;
            reject(too_big ? 413 : 400, too_big ? "page_too_large" : "corrupt_document", e.what());
        }
    } else {
        img = detail::decode_image_of(bytes_, kind_, std::size_t(pages_.at(i)), limits_);
    }
    spent_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return img;
}

}  // namespace serve
DOCVLM_NAMESPACE_END
