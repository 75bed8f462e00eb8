// Tutorial 02 — recognise one crop (a text line, a table or a formula) with MinerU2.5.
//
//   build/bin/02_recognise_crop MODEL_DIR IMAGE [text|table|formula]
//
// MODEL_DIR is the MinerU2.5-2509-1.2B folder from Hugging Face (or its `docvlm quantize` copy).
// Tokens are printed as they are generated.
#include <docvlm/docvlm.hpp>
#include <docvlm/model/model.hpp>
#include <docvlm/pipeline/mineru.hpp>
#include <docvlm/presets/qwen2vl.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) try {
    using namespace docvlm;
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s MODEL_DIR IMAGE [text|table|formula]\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1], kind = argc > 3 ? argv[3] : "text";
    const auto task = kind == "table" ? pipeline::Task::table : kind == "formula" ? pipeline::Task::formula : pipeline::Task::text;

    // 1. The model type fixes the policies (int8 weights here); sizes come from config.json.
    const auto model = Model<presets::Qwen2VL<Int8PerChannel>>::load(dir);
    const auto tok = io::Tokenizer::from_json(dir + "/tokenizer.json");

    // 2. Image -> patches exactly as Hugging Face's Qwen2VLImageProcessor -> vision tokens.
    const io::PixelValues px = io::preprocess_qwen2vl(io::load_image(argv[2]), model.image_config());
    const Tensor<float, 2> vision = model.encode_image(px);
    const ImageGrid grid{px.grid_t, px.grid_h, px.grid_w};

    // 3. The client's prompt and sampling settings for the task; stop at <|im_end|>.
    const auto ids = tok.encode(pipeline::chat_prompt(pipeline::mineru_prompt(task), vision.shape()[0]));
    GenerationOptions opt = pipeline::sampling_for(task, 1024);
    opt.stop_tokens = {model.dims().eos_token_id};

    // 4. Generate, streaming complete UTF-8 pieces as they come.
    auto ctx = model.context(ids.size() + opt.max_new_tokens);
    io::Tokenizer::StreamDecoder stream(tok, /*skip_special=*/true);
    ctx.generate(ids, {&vision, 1}, {&grid, 1}, opt, [&](std::int32_t t) { std::fputs(stream.push(t).c_str(), stdout); });
    std::printf("%s\n", stream.finish().c_str());
    return 0;
} catch (const docvlm::Error& e) {
    std::fprintf(stderr, "02_recognise_crop: %s\n", e.what());
    return 1;
}
