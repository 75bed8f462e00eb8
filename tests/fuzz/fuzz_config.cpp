// libFuzzer target: the JSON configuration readers of every model family. The first byte picks
// the reader: 0 → Qwen2-VL / MinerU2.5 config.json, 1 → docvlm-small (gated cross-attention)
// config.json, 2 → Qwen2-VL preprocessor_config.json. Each raises docvlm::Error or returns sizes
// that satisfy its own consistency rules (any other exception, a crash or a hang is a bug).
#include "fuzz_util.hpp"

#include <docvlm/io/image_processor.hpp>
#include <docvlm/model/gated_vlm.hpp>
#include <docvlm/model/qwen2vl.hpp>

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string path = fuzz::write_file(fuzz::text(data + 1, size - 1), "config.json");
    try {
        switch (data[0] % 3) {
            case 0: {
                const auto d = docvlm::Qwen2VLDims::from_config_json(path);
                if (d.heads == 0 || d.hidden % d.heads || d.kv_heads == 0 || d.heads % d.kv_heads || d.v_heads == 0) std::abort();
                break;
            }
            case 1: (void)docvlm::GatedVlmDims::from_config_json(path); break;
            default: {
                const auto c = docvlm::io::Qwen2VLImageConfig::from_json(path);
                if (c.min_pixels > c.max_pixels) std::abort();
                // the resize the reader's values lead to stays within them
                const auto [h, w] = docvlm::io::smart_resize(1000, 700, int(c.patch_size * c.merge_size), c.min_pixels, c.max_pixels);
                if (h <= 0 || w <= 0) std::abort();
            }
        }
    } catch (const docvlm::Error&) {
    }
    return 0;
}
