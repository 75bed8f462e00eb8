// libFuzzer target: image decoding of arbitrary bytes raises docvlm::Error or returns an image
// of the size its header promised; a small pixel limit keeps each run fast.
#include <docvlm/io/image.hpp>

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        auto img = docvlm::io::decode_image({reinterpret_cast<const std::byte*>(data), size}, docvlm::io::ColorMode::rgb,
                                            {.max_pixels = 1u << 20}, "fuzz");
        if (img.pixels.size() != std::size_t(img.width) * img.height * 3) std::abort();
        if (img.width > 1 && img.height > 1) (void)docvlm::io::resize(img, img.width / 2 + 1, img.height / 2 + 1);
    } catch (const docvlm::Error&) {
    }
    return 0;
}
