// The tokenizer of the golden set's tiny Qwen2-VL model (tests/data/golden/qwen2vl-tiny-a), for
// tests that run it end to end.
#pragma once

#include "test_util.hpp"

#include <docvlm/io/tokenizer.hpp>

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

namespace test {

// A tokenizer for the golden set's tiny model (vocab 1000, Qwen2-VL specials at 980..993): byte
// tokens 0..255, two-byte tokens up to 979, MinerU's output tags at 994..999.
inline docvlm::io::Tokenizer tiny_tokenizer(const TempDir& dir) {
    nlohmann::json vocab = nlohmann::json::object();
    std::vector<std::string> bytes;
    for (int b = 0; b < 256; ++b) {
        bytes.push_back(docvlm::io::detail::bytes_to_token_string(std::string(1, char(b))));
        vocab[bytes.back()] = b;
    }
    for (int id = 256, a = 'a', z = 'a'; id < 980; ++id) {
        vocab[bytes[std::size_t(a)] + bytes[std::size_t(z)] + std::to_string(id)] = id;  // unique multi-char tokens
        if (++z > 'z') z = 'a', a = a == 'z' ? 'a' : a + 1;
    }
    std::ofstream(dir / "vocab.json") << vocab.dump();
    std::ofstream(dir / "merges.txt") << "#version: 0.2\n";
    std::vector<docvlm::io::AddedToken> added;
    const char* specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                              "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                              "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<|ref_start|>",
                              "<|ref_end|>", "<|rotate_up|>", "<fcel>", "<nl>", "<ecel>"};
    for (int i = 0; i < 20; ++i) added.push_back({specials[i], 980 + i, i < 14});
    return docvlm::io::Tokenizer::from_vocab_merges(dir / "vocab.json", dir / "merges.txt", added);
}

}  // namespace test
