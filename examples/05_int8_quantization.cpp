// Tutorial 05 — what int8 weights change: accuracy (logits vs float32) and speed.
//
//   build/bin/05_int8_quantization [CHECKPOINT_DIR]
//
// The same checkpoint is loaded three times with different weight policies; the prompt's logits
// are compared with the float32 ones (cosine similarity, top-1 agreement) and each prefill is timed.
#include <docvlm/docvlm.hpp>
#include <docvlm/model/model.hpp>
#include <docvlm/presets/qwen2vl.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

namespace {

template <class W>
std::vector<float> logits_of(const std::string& dir, double& ms) {
    const auto model = docvlm::Model<docvlm::presets::Qwen2VL<W>>::load(dir);
    const auto px = docvlm::io::preprocess_qwen2vl(docvlm::io::load_image(dir + "/input.png"), model.image_config());
    const docvlm::ImageGrid grid{px.grid_t, px.grid_h, px.grid_w};
    std::vector<std::int32_t> ids = {981, 872, 198, 989};
    ids.insert(ids.end(), std::size_t(px.count() / 4), model.dims().image_token_id);
    ids.insert(ids.end(), {990, 198, 651});
    std::vector<float> out;
    for (int run = 0; run < 2; ++run) {  // the first run warms caches and scratch buffers; the second is timed
        const auto t0 = std::chrono::steady_clock::now();
        const auto vision = model.encode_image(px);
        auto ctx = model.context(ids.size() + 1);
        const auto l = ctx.prefill(ids, {&vision, 1}, {&grid, 1});
        ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        out.assign(l.begin(), l.end());
    }
    return out;
}

void compare(const char* name, const std::vector<float>& ref, const std::vector<float>& got, double ms) {
    double dot = 0, a = 0, b = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) dot += double(ref[i]) * got[i], a += double(ref[i]) * ref[i], b += double(got[i]) * got[i];
    const bool same_top1 = std::max_element(ref.begin(), ref.end()) - ref.begin() == std::max_element(got.begin(), got.end()) - got.begin();
    std::printf("%-18s cosine vs f32 %.6f, top-1 %s, encode + prefill %.2f ms\n", name, dot / std::sqrt(a * b),
                same_top1 ? "same" : "differs", ms);
}

}  // namespace

int main(int argc, char** argv) try {
    const std::string dir = argc > 1 ? argv[1] : DOCVLM_GOLDEN_DIR;
    double t32 = 0, t16 = 0, t8 = 0, tg = 0;
    const auto f32 = logits_of<docvlm::F32>(dir, t32);
    const auto b16 = logits_of<docvlm::BF16>(dir, t16);
    const auto i8 = logits_of<docvlm::Int8PerChannel>(dir, t8);
    const auto g32 = logits_of<docvlm::Int8PerGroup<32>>(dir, tg);
    compare("f32", f32, f32, t32);
    compare("bf16", f32, b16, t16);
    compare("int8 per channel", f32, i8, t8);
    compare("int8 group 32", f32, g32, tg);
    return 0;
} catch (const docvlm::Error& e) {
    std::fprintf(stderr, "05_int8_quantization: %s\n", e.what());
    return 1;
}
