// docvlm/io/pdf.hpp — PDF input: pages rendered one at a time with poppler-cpp (so memory stays
// bounded on long documents), and page lists such as "1-3,7". Optional: it needs poppler-cpp
// (Debian libpoppler-cpp-dev; link docvlm::pdf). poppler is not thread-safe: every call here
// holds pdf_mutex().
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/io/image.hpp>

#include <poppler-document.h>
#include <poppler-image.h>
#include <poppler-page-renderer.h>
#include <poppler-page.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <mutex>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace io {

/// The lock every use of poppler takes.
inline std::mutex& pdf_mutex() {
    static std::mutex m;
    return m;
}

/// True if `bytes` start with a PDF header ("%PDF-").
inline bool is_pdf(std::span<const std::byte> bytes) {
    return bytes.size() >= 5 && std::memcmp(bytes.data(), "%PDF-", 5) == 0;
}

/// An open PDF whose pages are rendered on demand (memory stays bounded on long documents).
class PdfPages {
public:
    /// Opens `path`; throws docvlm::Error for a missing, corrupt or password-protected file.
    explicit PdfPages(const std::string& path) : path_(path) {
        std::lock_guard lock(pdf_mutex());
        doc_.reset(poppler::document::load_from_file(path));
        check();
    }
    /// Opens a PDF held in memory (the bytes are kept); `source` names it in errors.
    PdfPages(std::string bytes, std::string source) : path_(std::move(source)), bytes_(std::make_shared<std::string>(std::move(bytes))) {
        if (bytes_->size() > std::size_t(INT32_MAX)) docvlm::detail::fail(path_, ": the PDF is larger than 2 GiB");
        std::lock_guard lock(pdf_mutex());
        doc_.reset(poppler::document::load_from_raw_data(bytes_->data(), int(bytes_->size())));
        check();
    }
    PdfPages(PdfPages&&) noexcept = default;
    ~PdfPages() {
        std::lock_guard lock(pdf_mutex());
        doc_.reset();
    }
    int count() const { return doc_->pages(); }

    /// Page `index` (0-based) as an RGB image at `dpi`; refuses pages above `max_pixels`.
    Image render(int index, double dpi, std::size_t max_pixels = std::size_t(1) << 26) const {
        std::lock_guard lock(pdf_mutex());
        if (index < 0 || index >= doc_->pages()) docvlm::detail::fail(path_, ": no page ", index + 1, " (the PDF has ", doc_->pages(), ")");
        std::unique_ptr<poppler::page> page(doc_->create_page(index));
        if (!page) docvlm::detail::fail(path_, ": page ", index + 1, " cannot be read");
        const poppler::rectf box = page->page_rect();
        const double w = box.width() * dpi / 72.0, h = box.height() * dpi / 72.0;
        if (!(w >= 1 && h >= 1) || w * h > double(max_pixels))
            docvlm::detail::fail(path_, ": page ", index + 1, " would be ", int(w), "x", int(h), " pixels at ", dpi,
                                 " dpi, above the limit of ", max_pixels);
        poppler::page_renderer renderer;
        renderer.set_render_hint(poppler::page_renderer::antialiasing, true);
        renderer.set_render_hint(poppler::page_renderer::text_antialiasing, true);
        renderer.set_image_format(poppler::image::format_rgb24);
        const poppler::image img = renderer.render_page(page.get(), dpi, dpi);
        if (!img.is_valid()) docvlm::detail::fail(path_, ": page ", index + 1, " could not be rendered");
        Image out(img.width(), img.height(), 3);
        for (int y = 0; y < img.height(); ++y) {
            const auto* row = reinterpret_cast<const unsigned char*>(img.const_data()) + std::size_t(y) * std::size_t(img.bytes_per_row());
            std::uint8_t* dst = out.row(y);
            std::memcpy(dst, row, std::size_t(img.width()) * 3);  // rgb24: R, G, B bytes per pixel
        }
        return out;
    }

private:
    void check() const {
        if (!doc_) docvlm::detail::fail(path_, ": cannot open as a PDF (missing or corrupt file)");
        if (doc_->is_locked()) docvlm::detail::fail(path_, ": the PDF is password-protected");
    }
    std::string path_;
    std::shared_ptr<std::string> bytes_;  // the data of a PDF opened from memory (poppler reads it in place)
    std::unique_ptr<poppler::document> doc_;
};

/// "1-3,7" → {0, 1, 2, 6} (0-based, in order, no repeats) for a document of `count` pages; an
/// empty spec means every page. Throws docvlm::Error naming the bad part.
inline std::vector<int> page_list(const std::string& spec, int count) {
    std::vector<int> pages;
    std::vector<bool> seen(std::size_t(count > 0 ? count : 0), false);
    auto add = [&](int p) {
        if (p < 1 || p > count) docvlm::detail::fail("pages: page ", p, " is outside 1-", count);
        if (!seen[std::size_t(p - 1)]) seen[std::size_t(p - 1)] = true, pages.push_back(p - 1);
    };
    if (spec.empty()) {
        for (int p = 1; p <= count; ++p) add(p);
        return pages;
    }
    std::size_t i = 0;
    while (i < spec.size()) {
        const std::size_t comma = spec.find(',', i);
        const std::string part = spec.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
        i = comma == std::string::npos ? spec.size() : comma + 1;
        char* end = nullptr;
        const long a = std::strtol(part.c_str(), &end, 10);
        if (end == part.c_str()) docvlm::detail::fail("pages: '", part, "' is not a page or a range");
        long b = a;
        if (*end == '-') {
            const char* start = end + 1;
            b = std::strtol(start, &end, 10);
            if (end == start) docvlm::detail::fail("pages: '", part, "' is not a range");
        }
        if (*end != '\0' || a > b) docvlm::detail::fail("pages: '", part, "' is not a page or an increasing range");
        for (long p = a; p <= b; ++p) add(int(p));
    }
    return pages;
}

}  // namespace io
DOCVLM_NAMESPACE_END
