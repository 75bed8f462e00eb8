// Tutorial 06 — another family from the same templates: ask LLaVA-1.5 about an image.
//
//   build/bin/06_ask_llava MODEL_DIR [IMAGE ["QUESTION"]]
//
// MODEL_DIR is a Hugging Face LLaVA-1.5 folder (llava-hf/llava-1.5-7b-hf: config.json,
// preprocessor_config.json, tokenizer.model, tokenizer_config.json, *.safetensors). The tests run
// it on tests/data/golden/llava-tiny-a, a tiny random checkpoint of the same architecture, whose
// answer is noise: its 16 greedy token ids are the ones transformers generates for it.
//
// The steps are the family's: CLIP preprocessing (resize the short side, centre crop, normalise),
// the vision tower and projector (image tokens in the decoder's width), the conversation prompt
// with one <image> token per image token, then greedy decoding with a KV cache.
#include <docvlm/docvlm.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) try {
    using namespace docvlm;
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s MODEL_DIR [IMAGE [\"QUESTION\"]]\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    const std::string image = argc > 2 ? argv[2] : dir + "/input.png";
    const std::string question = argc > 3 ? argv[3] : "What is written in this document?";

    // f32 weights: the tiny checkpoint's answer then matches transformers' token for token.
    const auto model = Model<presets::Llava15<F32>>::load(dir);
    const auto tok = io::SentencePieceTokenizer::from_folder(dir);
    const Tensor<float, 3> pixels = io::preprocess_clip(io::load_image(image), model.image_config());  // [3, S, S]
    const Tensor<float, 2> vision = model.encode_image(pixels);                                       // [image tokens, hidden]
    const std::vector<std::int32_t> ids = model.prompt(tok, question);

    GenerationOptions opt;
    opt.max_new_tokens = 16;
    opt.stop_tokens = {tok.eos_id()};
    auto ctx = model.context(ids.size() + opt.max_new_tokens);  // one context per thread
    const std::vector<std::int32_t> answer = ctx.generate(ids, {&vision, 1}, {}, opt);

    std::printf("%zu image tokens, a prompt of %zu tokens\nanswer ids:", vision.shape()[0], ids.size());
    for (std::int32_t t : answer) std::printf(" %d", t);
    std::printf("\nanswer: %s\n", tok.decode(answer, true).c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "06_ask_llava: %s\n", e.what());
    return 1;
}
