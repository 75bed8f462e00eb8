// Tutorial 02 — recognise one crop (a text line or a formula).
//
//   build/bin/02_recognise_crop [IMAGE [text|formula]]            docvlm's embedded model
//   build/bin/02_recognise_crop IMAGE text|table|formula MODEL_DIR  MinerU2.5 (Hugging Face folder)
//
// Without arguments it reads examples/data/line.png (a line tightened to its ink, as the page
// segmenter cuts them). Text is printed as it is generated.
#include <docvlm/docvlm.hpp>

#include <cstdio>
#include <string>

namespace {

// The embedded model: a gray crop -> fixed-height input -> vision tokens -> bytes, streamed.
void with_embedded_model(const docvlm::io::Image& crop, const std::string& task) {
    using namespace docvlm;
    const auto model = load_default_model();                     // Model<presets::DocvlmSmall<Int8PerChannel>>
    const io::Image input = model.prepare(crop, task);           // gray, 24 (text) or 48 (formula) pixels high
    const Tensor<float, 2> vision = model.encode_image(input);   // [anchors + patches, 256]
    auto ctx = model.context();                                  // KV cache; one context per thread
    std::string pending;                                         // bytes of a UTF-8 character not yet complete
    ctx.generate(vision, task, GenerationOptions{}, [&](std::int32_t byte) {
        pending += char(byte);
        const auto lead = static_cast<unsigned char>(pending[0]);
        const std::size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        if (pending.size() >= need) std::fputs(pending.c_str(), stdout), pending.clear();
    });
    std::printf("\n");
    // Crops longer than 512 pixels at that height are better read with
    // pipeline::EmbeddedPageParser(model).recognise(crop, task), which cuts them into pieces first.
}

// MinerU2.5: Qwen2-VL preprocessing, the official client's chat prompt and sampling settings.
void with_mineru(const docvlm::io::Image& crop, const std::string& kind, const std::string& dir) {
    using namespace docvlm;
    const auto task = kind == "table" ? pipeline::Task::table : kind == "formula" ? pipeline::Task::formula : pipeline::Task::text;
    const auto model = Model<presets::Qwen2VL<Int8PerChannel>>::load(dir);  // sizes from config.json
    const auto tok = io::Tokenizer::from_json(dir + "/tokenizer.json");
    const io::PixelValues px = io::preprocess_qwen2vl(crop, model.image_config());
    const Tensor<float, 2> vision = model.encode_image(px);
    const ImageGrid grid{px.grid_t, px.grid_h, px.grid_w};
    const auto ids = tok.encode(pipeline::chat_prompt(pipeline::mineru_prompt(task), vision.shape()[0]));
    GenerationOptions opt = pipeline::sampling_for(task, 1024);
    opt.stop_tokens = {model.dims().eos_token_id};
    auto ctx = model.context(ids.size() + opt.max_new_tokens);
    io::Tokenizer::StreamDecoder stream(tok, /*skip_special=*/true);
    ctx.generate(ids, {&vision, 1}, {&grid, 1}, opt, [&](std::int32_t t) { std::fputs(stream.push(t).c_str(), stdout); });
    std::printf("%s\n", stream.finish().c_str());
}

}  // namespace

int main(int argc, char** argv) try {
    const std::string image = argc > 1 ? argv[1] : DOCVLM_EXAMPLE_LINE;
    const std::string task = argc > 2 ? argv[2] : "text";
    const docvlm::io::Image crop = docvlm::io::load_image(image);
    if (argc > 3) with_mineru(crop, task, argv[3]);
    else with_embedded_model(crop, task);
    return 0;
} catch (const docvlm::Error& e) {
    std::fprintf(stderr, "02_recognise_crop: %s\n", e.what());
    return 1;
}
