// Tutorial 04 — a model is a type: define your own Config.
//
//   build/bin/04_custom_config [IMAGE]
//
// A Config names each layer's sizes and policies; Model<Config> composes the layers at compile
// time. Here the embedded model's architecture is spelled out by hand (every size fixed, float32
// weights), run on a crop, then built again with its layer sizes docvlm::dynamic (read from
// config.json at load). load() checks config.json against each static size, so a Config that does
// not fit the weights is refused with the reason, never run. Nonsense fails to compile: try
// heads = 3 in MyVision below (256 is not divisible by 3).
#include <docvlm/docvlm.hpp>

#include <cstdio>
#include <string>

namespace {

// The vision tower: 4 ViT blocks of width 256, 8×8 gray patches; attention within ±24 tokens of
// each patch plus 4 global anchor tokens that every token sees.
struct MyVision {
    static constexpr int depth = 4, dim = 256, heads = 4, mlp = 1024, patch = 8;
    using attention = docvlm::WindowAnchor<24, 4>;
    using position = docvlm::NoPosition;  // learned row/column embeddings instead of RoPE
};
// The decoder: 4 layers of width 256, grouped-query attention (4 query, 2 key/value heads), RoPE,
// a byte vocabulary.
struct MyText {
    static constexpr int layers = 4, hidden = 256, heads = 4, kv_heads = 2, mlp = 704, vocab = 264;
    using attention = docvlm::CausalAttention;
    using position = docvlm::Rope1D;
};
// How the two meet: the decoder reads the vision tokens through a gated cross-attention layer in
// every layer (GatedCrossAttention<2> would put one in every second layer).
struct MyModel {
    using vision = MyVision;
    using text = MyText;
    using fusion = docvlm::GatedCrossAttention<1>;
    using weights = docvlm::F32;  // the int8 file is dequantised at load
};

// The same composition with every layer size read from config.json (the attention pattern, a
// compile-time choice, stays fixed: window 24, 4 anchors, cross-attention in every layer).
constexpr int D = docvlm::dynamic;
using AnySize = docvlm::presets::GatedVlmFamily<D, D, D, D, 24, 4, D, D, D, D, D, D, 1, docvlm::Int8PerChannel>;

// A variant with a narrower attention window than the weights were trained with.
struct NarrowWindow : MyModel {
    struct vision : MyVision {
        using attention = docvlm::WindowAnchor<8, 4>;
    };
};

template <class Config>
std::string read(const std::string& dir, const docvlm::io::Image& crop) {
    const auto model = docvlm::load<Config>(dir);
    const auto vision = model.encode_image(model.prepare(crop, "text"));
    auto ctx = model.context();
    return docvlm::pipeline::bytes_to_text(ctx.generate(vision, "text", docvlm::GenerationOptions{}));
}

}  // namespace

int main(int argc, char** argv) try {
    const std::string dir = docvlm::default_model_dir();
    const auto crop = docvlm::io::load_image(argc > 1 ? argv[1] : DOCVLM_EXAMPLE_LINE);
    std::printf("MyModel (static sizes, f32):   %s\n", read<MyModel>(dir, crop).c_str());
    std::printf("AnySize (dynamic sizes, int8): %s\n", read<AnySize>(dir, crop).c_str());
    try {
        read<NarrowWindow>(dir, crop);
        std::printf("NarrowWindow: loaded (unexpected)\n");
        return 1;
    } catch (const docvlm::Error& e) {
        std::printf("NarrowWindow refused: %s\n", e.what());
    }
    return 0;
} catch (const docvlm::Error& e) {
    std::fprintf(stderr, "04_custom_config: %s\n", e.what());
    return 1;
}
