// Tutorial 04 — a model is a type: define your own Config.
//
//   build/bin/04_custom_config [CHECKPOINT_DIR]
//
// Here every size of the bundled tiny Qwen2-VL test checkpoint is fixed at compile time (as
// presets::MinerU25 does for MinerU2.5) and the weights are bf16. A size may also be
// docvlm::dynamic (read from config.json). Nonsense fails to compile: try heads = 3 below.
#include <docvlm/docvlm.hpp>
#include <docvlm/model/model.hpp>
#include <docvlm/presets/qwen2vl.hpp>

#include <algorithm>
#include <cstdio>

struct TinyVision {
    static constexpr int depth = 2, dim = 64, heads = 4, mlp = 256, patch = 14;
    using attention = docvlm::FullAttention;
    using position = docvlm::Rope2D;
};
struct TinyText {
    static constexpr int layers = 2, hidden = 64, heads = 4, kv_heads = 2, mlp = 176, vocab = 1000;
    using attention = docvlm::CausalAttention;
    using position = docvlm::MRope<2, 3, 3>;  // sections must sum to head_dim / 2 = 8
};
struct TinyModel {
    using vision = TinyVision;
    using text = TinyText;
    using fusion = docvlm::TokenConcat;
    using weights = docvlm::BF16;
};

int main(int argc, char** argv) try {
    const std::string dir = argc > 1 ? argv[1] : DOCVLM_GOLDEN_DIR;
    // load() checks config.json against every static size and reports the first mismatch.
    const auto model = docvlm::load<TinyModel>(dir);
    const auto px = docvlm::io::preprocess_qwen2vl(docvlm::io::load_image(dir + "/input.png"), model.image_config());
    const auto vision = model.encode_image(px);
    const docvlm::ImageGrid grid{px.grid_t, px.grid_h, px.grid_w};

    // A prompt of 14 text tokens, the image's 60 tokens between vision start/end, then 3 more.
    std::vector<std::int32_t> ids = {981, 128, 198, 650, 525, 264, 170, 207, 13, 982, 198, 981, 872, 198, 989};
    ids.insert(ids.end(), vision.shape()[0], model.dims().image_token_id);
    ids.insert(ids.end(), {990, 198, 651});
    auto ctx = model.context(128);
    const auto logits = ctx.prefill(ids, {&vision, 1}, {&grid, 1});
    const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
    std::printf("%zu vision tokens, prompt of %zu tokens, next token %td (logit %.3f)\n", vision.shape()[0], ids.size(), best,
                double(logits[std::size_t(best)]));
    return 0;
} catch (const docvlm::Error& e) {
    std::fprintf(stderr, "04_custom_config: %s\n", e.what());
    return 1;
}
