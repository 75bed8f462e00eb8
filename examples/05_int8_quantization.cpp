// Tutorial 05 — what int8 weights change: accuracy against float32, and speed.
//
//   build/bin/05_int8_quantization [PAGE_IMAGE [CROPS]]
//
// docvlm's embedded model was trained with int8 quantisation in the loop and ships as int8
// weights with one scale per output channel. The weight policy is part of the model's type: the
// same file loads as F32 or BF16 (dequantised), Int8PerChannel (used as stored) or
// Int8PerGroup<32> (requantised in groups of 32 along each row). On the text crops of a page (cut
// by the page segmenter), each policy is compared with F32: the cosine similarity of its logits
// along F32's greedy output (teacher forcing, worst crop), the share of crops it reads exactly as
// F32 does, and the time per crop (vision encoder + greedy decoding, one thread).
#include <docvlm/docvlm.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

namespace {

struct Reading {
    std::vector<std::vector<std::int32_t>> tokens;  // greedy output per crop
    std::vector<std::vector<float>> logits;         // teacher-forced logits along the reference output
    double ms_per_crop = 0;
};

// Reads every crop greedily, then scores the reference output (F32's, or its own when ref is null).
template <docvlm::WeightPolicy W>
Reading read_all(const std::vector<docvlm::io::Image>& crops, const Reading* ref) {
    const auto model = docvlm::load_default_model<W>();
    Reading r;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<docvlm::Tensor<float, 2>> vision;
    for (const auto& crop : crops) {
        vision.push_back(model.encode_image(model.prepare(crop, "text")));
        auto ctx = model.context();
        r.tokens.push_back(ctx.generate(vision.back(), "text", docvlm::GenerationOptions{}));
    }
    r.ms_per_crop = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / double(crops.size());
    for (std::size_t i = 0; i < crops.size(); ++i) {
        std::vector<std::int32_t> ids{model.dims().task_token("text")};
        const auto& out = ref ? ref->tokens[i] : r.tokens[i];
        ids.insert(ids.end(), out.begin(), out.end());
        auto ctx = model.context();
        const auto l = ctx.prefill(vision[i], ids, {}, /*all_logits=*/true);
        r.logits.emplace_back(l.begin(), l.end());
    }
    return r;
}

void report(const char* name, const Reading& f32, const Reading& got) {
    double worst = 1;
    std::size_t same = 0;
    for (std::size_t i = 0; i < f32.logits.size(); ++i) {
        const auto& a = f32.logits[i];
        const auto& b = got.logits[i];
        double dot = 0, aa = 0, bb = 0;
        for (std::size_t k = 0; k < a.size(); ++k) dot += double(a[k]) * b[k], aa += double(a[k]) * a[k], bb += double(b[k]) * b[k];
        worst = std::min(worst, dot / std::sqrt(aa * bb));
        same += got.tokens[i] == f32.tokens[i];
    }
    std::printf("%-18s cosine vs f32 %.5f (worst crop), same text on %zu/%zu crops, %.2f ms per crop\n", name, worst, same,
                f32.tokens.size(), got.ms_per_crop);
}

}  // namespace

int main(int argc, char** argv) try {
    using namespace docvlm;
    const io::Image page = io::load_image(argc > 1 ? argv[1] : DOCVLM_SAMPLE_PAGE);
    const std::size_t max_crops = argc > 2 ? std::stoul(argv[2]) : 32;
    // The page's first text crops, cut as the page parser cuts them.
    std::vector<io::Image> crops;
    for (const auto& region : pipeline::segment_page(page).regions)
        for (const auto& line : region.lines)
            for (const auto& c : line.chunks)
                if (crops.size() < max_crops) crops.push_back(pipeline::crop_with_margin(page, c.x0, c.y0, c.x1, c.y1, 1));
    if (crops.empty()) detail::fail("05_int8_quantization: no text found on the page");
    set_num_threads(1);

    const Reading f32 = read_all<F32>(crops, nullptr);
    report("f32", f32, f32);
    report("bf16", f32, read_all<BF16>(crops, &f32));
    report("int8 per channel", f32, read_all<Int8PerChannel>(crops, &f32));
    report("int8 group 32", f32, read_all<Int8PerGroup<32>>(crops, &f32));
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "05_int8_quantization: %s\n", e.what());
    return 1;
}
