// docvlm demo: parse a page image into Markdown with docvlm's embedded model.
//
//   build/bin/docvlm_demo [PAGE_IMAGE]
//
// The embedded model (models/docvlm-small, int8) reads text lines; a classical segmenter finds
// the blocks, columns and lines of the page first (pipeline/layout.hpp). Progress goes to stderr,
// the Markdown to stdout.
#include <docvlm/docvlm.hpp>

#include <chrono>
#include <cstdio>

int main(int argc, char** argv) try {
    const std::string page_path = argc > 1 ? argv[1] : DOCVLM_SAMPLE_PAGE;
    std::fprintf(stderr, "docvlm demo (CPU: %s, %zu threads)\n", docvlm::cpu().describe().c_str(), docvlm::thread_pool().size());

    const auto t0 = std::chrono::steady_clock::now();
    const auto model = docvlm::load_default_model();  // int8, from models/docvlm-small
    const auto t1 = std::chrono::steady_clock::now();
    const docvlm::io::Image page = docvlm::io::load_image(page_path, docvlm::io::ColorMode::gray);

    docvlm::pipeline::EmbeddedParserOptions opt;
    opt.progress = [](std::string_view, std::size_t done, std::size_t total) {
        if (done % 16 == 0 || done == total) std::fprintf(stderr, "\r  reading lines: %zu/%zu", done, total);
    };
    const docvlm::pipeline::EmbeddedPageParser parser(model, opt);
    const docvlm::pipeline::Document doc = parser.parse(page);
    const auto t2 = std::chrono::steady_clock::now();

    const auto times = parser.phase_times();
    std::fprintf(stderr, "\n  page %s (%d x %d): %zu blocks, %zu line crops, %zu bytes generated\n", page_path.c_str(), page.width,
                 page.height, doc.blocks.size(), times.blocks, times.generated_tokens);
    std::fprintf(stderr, "  model loaded in %.2f s, page parsed in %.2f s (layout %.2f s; vision %.2f s, decoding %.2f s summed over threads)\n\n",
                 std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t2 - t1).count(), times.layout,
                 times.vision, times.decode);
    std::printf("%s", doc.markdown().c_str());
    return 0;
} catch (const docvlm::Error& e) {
    std::fprintf(stderr, "docvlm_demo: %s\n", e.what());
    return 1;
}
