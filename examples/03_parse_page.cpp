// Tutorial 03 — parse a whole page to Markdown with MinerU2.5's two stages
// (layout detection, then recognition of every block).
//
//   build/bin/03_parse_page MODEL_DIR PAGE_IMAGE
#include <docvlm/docvlm.hpp>
#include <docvlm/model/model.hpp>
#include <docvlm/pipeline/page_parser.hpp>
#include <docvlm/presets/qwen2vl.hpp>

#include <cstdio>

int main(int argc, char** argv) try {
    using namespace docvlm;
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s MODEL_DIR PAGE_IMAGE\n", argv[0]);
        return 2;
    }
    const auto model = Model<presets::Qwen2VL<Int8PerChannel>>::load(argv[1]);
    const auto tok = io::Tokenizer::from_json(std::string(argv[1]) + "/tokenizer.json");

    pipeline::PageParserOptions opt;  // the official client's defaults (1036x1036 layout pass, ...)
    opt.progress = [](std::string_view phase, std::size_t done, std::size_t total) {
        std::fprintf(stderr, "%.*s %zu/%zu\n", int(phase.size()), phase.data(), done, total);
    };
    const pipeline::MinerUPageParser parser(model, tok, opt);
    const pipeline::Document doc = parser.parse(io::load_image(argv[2]));
    std::fputs(doc.markdown().c_str(), stdout);  // or doc.json(), doc.html()
    for (const auto& w : doc.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    return 0;
} catch (const docvlm::Error& e) {
    std::fprintf(stderr, "03_parse_page: %s\n", e.what());
    return 1;
}
