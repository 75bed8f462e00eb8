// libFuzzer target: tokenizer files. The first byte picks the format: even → the input is a
// tokenizer.json; odd → vocab.json and merges.txt, separated by the first NUL byte. Loading
// either raises docvlm::Error or gives a tokenizer whose ids stay below its size and for which
// decode(encode(t)) is t up to NFC normalisation (byte-level BPE loses nothing; segments between
// added tokens are NFC-normalised first) on valid UTF-8 t: fixed texts and the input itself.
#include "fuzz_util.hpp"

#include <docvlm/io/tokenizer.hpp>

#include <utf8proc.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace {
std::string nfc(std::string_view s) {
    utf8proc_uint8_t* p = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), utf8proc_ssize_t(s.size()), &p,
                                utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    std::string out = n >= 0 ? std::string(reinterpret_cast<const char*>(p), std::size_t(n)) : std::string(s);
    std::free(p);
    return out;
}

void check_round_trip(const docvlm::io::Tokenizer& tok, std::string_view text) {
    const auto ids = tok.encode(text);
    for (std::int32_t id : ids)
        if (id < 0 || std::size_t(id) >= tok.size()) std::abort();
    if (fuzz::valid_utf8(text) && nfc(tok.decode(ids)) != nfc(text)) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view in = fuzz::text(data + 1, size - 1);
    try {
        docvlm::io::Tokenizer tok;
        if (data[0] % 2 == 0) {
            tok = docvlm::io::Tokenizer::from_json(fuzz::write_file(in, "tokenizer.json"));
        } else {
            const std::size_t nul = in.find('\0');
            const std::string_view vocab = in.substr(0, nul), merges = nul == in.npos ? std::string_view() : in.substr(nul + 1);
            tok = docvlm::io::Tokenizer::from_vocab_merges(fuzz::write_file(vocab, "vocab.json"),
                                                           fuzz::write_file(merges, "merges.txt"), {});
        }
        for (std::string_view t : {"Hello, world! It's 2026.", "  x\n\n\ty", "日本語のテキスト", "<|endoftext|>a"})
            check_round_trip(tok, t);
        check_round_trip(tok, in.substr(0, 256));
        tok.clear_cache();
    } catch (const docvlm::Error&) {
    }
    return 0;
}
