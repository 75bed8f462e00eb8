// Tokenizer speed: MB/s of English text encoded by the Qwen2 BPE, with a cold and a warm word cache.
#include <docvlm/io/tokenizer.hpp>

#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

namespace {

std::string english_text() {
    // Plain English prose present on every Debian system (base-files); the README otherwise.
    for (const char* path : {"/usr/share/common-licenses/GPL-3", DOCVLM_SOURCE_DIR "/README.md"}) {
        std::ifstream in(path);
        if (!in) continue;
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    return "The quick brown fox jumps over the lazy dog. ";
}

const docvlm::io::Tokenizer& qwen2() {
    static const docvlm::io::Tokenizer t = docvlm::io::Tokenizer::from_vocab_merges(
        DOCVLM_SOURCE_DIR "/tests/data/tokenizers/qwen2/vocab.json", DOCVLM_SOURCE_DIR "/tests/data/tokenizers/qwen2/merges.txt", {});
    return t;
}

void tokenizer_encode(benchmark::State& state) {
    const bool warm = state.range(0) != 0;
    const std::string text = english_text();
    const auto& tok = qwen2();
    std::size_t tokens = 0;
    for (auto _ : state) {
        if (!warm) tok.clear_cache();
        tokens = tok.encode(text).size();
        benchmark::DoNotOptimize(tokens);
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(text.size()));
    state.counters["tokens"] = double(tokens);
}
BENCHMARK(tokenizer_encode)->Name("tokenizer/encode_english")->ArgName("warm_cache")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
