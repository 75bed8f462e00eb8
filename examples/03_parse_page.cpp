// Tutorial 03 — parse a whole page to Markdown.
//
//   build/bin/03_parse_page [PAGE_IMAGE]              docvlm's embedded model (segmenter + line reader)
//   build/bin/03_parse_page PAGE_IMAGE MODEL_DIR      MinerU2.5's two stages (layout, then each block)
//
// Without arguments it parses examples/data/sample_page.png.
#include <docvlm/docvlm.hpp>

#include <cstdio>

int main(int argc, char** argv) try {
    using namespace docvlm;
    const io::Image page = io::load_image(argc > 1 ? argv[1] : DOCVLM_SAMPLE_PAGE);
    auto progress = [](std::string_view phase, std::size_t done, std::size_t total) {
        if (done == total) std::fprintf(stderr, "%.*s: %zu/%zu\n", int(phase.size()), phase.data(), done, total);
    };
    pipeline::Document doc;
    if (argc > 2) {
        const auto model = Model<presets::Qwen2VL<Int8PerChannel>>::load(argv[2]);
        const auto tok = io::Tokenizer::from_json(std::string(argv[2]) + "/tokenizer.json");
        pipeline::PageParserOptions opt;  // the official client's defaults (1036x1036 layout pass, ...)
        opt.progress = progress;
        doc = pipeline::MinerUPageParser(model, tok, opt).parse(page);
    } else {
        const auto model = load_default_model();
        pipeline::EmbeddedParserOptions opt;  // segmenter settings, tokens per crop
        opt.progress = progress;
        doc = pipeline::EmbeddedPageParser(model, opt).parse(page);
    }
    std::fputs(doc.markdown().c_str(), stdout);  // or doc.json(), doc.html()
    for (const auto& w : doc.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    return 0;
} catch (const docvlm::Error& e) {
    std::fprintf(stderr, "03_parse_page: %s\n", e.what());
    return 1;
}
