// libFuzzer target: the CLI's PDF input (include/docvlm/io/pdf.hpp, poppler-cpp). Any bytes either
// raise docvlm::Error or open as a document whose first pages render, each refused above a small
// pixel limit or returned at the size its page box promised.
#include "fuzz_util.hpp"

#include <docvlm/io/pdf.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        docvlm::io::PdfPages pdf(fuzz::write_file(fuzz::text(data, size), "input.pdf"));
        for (int i = 0; i < std::min(pdf.count(), 2); ++i) {
            try {
                const auto img = pdf.render(i, 18.0, std::size_t(1) << 18);
                if (img.width <= 0 || img.height <= 0 || std::size_t(img.width) * std::size_t(img.height) > (std::size_t(1) << 18) + 4096)
                    std::abort();
            } catch (const docvlm::Error&) {
            }
        }
    } catch (const docvlm::Error&) {
    }
    return 0;
}
