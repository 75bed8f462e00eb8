// libFuzzer target: the JSON configuration readers of every model family. The first byte picks
// the reader: 0 → Qwen2-VL / MinerU2.5 config.json, 1 → docvlm-small (gated cross-attention)
// config.json, 2 → Qwen2-VL preprocessor_config.json, 3 → a model folder's lexicon.txt (word list),
// then word correction of the input's own bytes as a reading. Each raises docvlm::Error or returns
// sizes that satisfy its own consistency rules (a listed word is found; correction keeps the
// reading's length and every byte that is not an ASCII letter); any other exception, a crash or a
// hang is a bug.
#include "fuzz_util.hpp"

#include <docvlm/io/image_processor.hpp>
#include <docvlm/model/gated_vlm.hpp>
#include <docvlm/model/qwen2vl.hpp>
#include <docvlm/pipeline/word_correction.hpp>

#include <cstdint>
#include <cstdlib>
#include <vector>

namespace {
bool ascii_letter(std::int32_t t) { return (t >= 'A' && t <= 'Z') || (t >= 'a' && t <= 'z'); }

// The word list of `text`; then `text` read as a reading whose alternatives at each step are the
// next 3 bytes, each 0.5 nats less likely than the one before.
void check_lexicon(std::string_view text, const std::string& path) {
    const auto lex = docvlm::io::Lexicon::load(path);
    std::size_t words = 0;
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t end = std::min(text.find('\n', i), text.size());
        std::string_view line = text.substr(i, end - i);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (!line.empty() && line[0] != '#') {
            if (!lex.contains(line) || !lex.has_prefix(line.size(), line.substr(0, line.size() / 2))) std::abort();
            ++words;
        }
        i = end + 1;
    }
    if (lex.size() > words) std::abort();
    std::vector<std::int32_t> ids(text.begin(), text.end());
    for (auto& t : ids) t = std::int32_t(static_cast<unsigned char>(t));
    const std::vector<std::int32_t> read = ids;
    const std::vector<float> chosen(ids.size(), -0.1f);
    constexpr std::size_t k = 3;
    std::vector<docvlm::TokenAlternative> alts(ids.size() * k);
    for (std::size_t i = 0; i < ids.size(); ++i)
        for (std::size_t a = 0; a < k; ++a)
            if (i + a + 1 < ids.size()) alts[i * k + a] = {ids[i + a + 1], -0.6f - 0.5f * float(a)};
    docvlm::pipeline::correct_words(ids, chosen, alts, k, lex, 2.0);
    for (std::size_t i = 0; i < ids.size(); ++i)
        if (ids[i] != read[i] && !(ascii_letter(ids[i]) && ascii_letter(read[i]))) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string path = fuzz::write_file(fuzz::text(data + 1, size - 1), "config.json");
    try {
        switch (data[0] % 4) {
            case 0: {
                const auto d = docvlm::Qwen2VLDims::from_config_json(path);
                if (d.heads == 0 || d.hidden % d.heads || d.kv_heads == 0 || d.heads % d.kv_heads || d.v_heads == 0) std::abort();
                break;
            }
            case 1: (void)docvlm::GatedVlmDims::from_config_json(path); break;
            case 3: check_lexicon(fuzz::text(data + 1, size - 1), path); break;
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
