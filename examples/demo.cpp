// docvlm demo: what the library can do today, on the bundled data.
//
//   build/bin/docvlm_demo [PAGE_IMAGE] [CHECKPOINT]
//
// 1. Decodes a page image and prepares it the way MinerU2.5's layout stage does (Pillow-exact
//    bicubic resize to 1036x1036), then finds the text lines from the ink profile.
// 2. Opens a safetensors checkpoint (zero-copy mmap, validated) and lists what it holds.
#include <docvlm/docvlm.hpp>

#include <chrono>
#include <cstdio>
#include <map>

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Number of text lines: runs of rows that contain dark pixels, separated by blank rows.
int count_text_lines(const docvlm::io::Image& gray) {
    int lines = 0;
    bool inside = false;
    for (int y = 0; y < gray.height; ++y) {
        int ink = 0;
        for (int x = 0; x < gray.width; ++x) ink += gray.at(x, y) < 128;
        const bool text = ink > 0;
        lines += text && !inside;
        inside = text;
    }
    return lines;
}

}  // namespace

int main(int argc, char** argv) try {
    const std::string page_path = argc > 1 ? argv[1] : DOCVLM_SAMPLE_PAGE;
    const std::string ckpt_path = argc > 2 ? argv[2] : DOCVLM_SAMPLE_CHECKPOINT;
    std::printf("docvlm demo (CPU: %s, %zu threads)\n\n", docvlm::cpu().describe().c_str(), docvlm::thread_pool().size());

    auto t0 = std::chrono::steady_clock::now();
    docvlm::io::Image page = docvlm::io::load_image(page_path);
    std::printf("page      %s\n          %d x %d pixels, decoded in %.1f ms\n", page_path.c_str(), page.width, page.height,
                ms_since(t0));
    t0 = std::chrono::steady_clock::now();
    docvlm::io::Image layout_input = docvlm::io::resize(page, 1036, 1036, docvlm::io::Resample::bicubic);
    std::printf("          resized to %d x %d for layout detection (Pillow-exact bicubic) in %.1f ms\n",
                layout_input.width, layout_input.height, ms_since(t0));
    std::printf("          %d text lines found from the ink profile\n\n", count_text_lines(docvlm::io::to_gray(page)));

    t0 = std::chrono::steady_clock::now();
    docvlm::io::Checkpoint ckpt = docvlm::io::Checkpoint::open(ckpt_path);
    std::size_t params = 0, bytes = 0;
    std::map<std::string, std::size_t> per_prefix;
    for (const std::string& name : ckpt.names()) {
        const auto& info = ckpt.info(name);
        params += info.numel();
        bytes += info.nbytes;
        per_prefix[name.substr(0, name.find('.'))] += info.numel();
    }
    std::printf("checkpoint %s\n          tensors: %zu, parameters: %zu (%.1f MB), opened in %.1f ms\n", ckpt_path.c_str(),
                ckpt.names().size(), params, bytes / 1e6, ms_since(t0));
    for (const auto& [prefix, n] : per_prefix) std::printf("          %-10s %zu parameters\n", prefix.c_str(), n);
    if (ckpt.contains("model.embed_tokens.weight")) {
        auto embed = ckpt.to_f32("model.embed_tokens.weight");  // any dtype, converted to float
        std::printf("          model.embed_tokens.weight: [%zu, %zu], first value %.6f\n", embed.shape()[0],
                    embed.shape()[1], double(embed(0, 0)));
    }
    return 0;
} catch (const docvlm::Error& e) {
    std::fprintf(stderr, "docvlm_demo: %s\n", e.what());
    return 1;
}
