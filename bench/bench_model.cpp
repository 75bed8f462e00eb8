// End-to-end speed of a MinerU2.5-sized model (int8 weights, random values): the stage-1 vision
// pass on a 1036x1036 page (5476 patches), a 1000x200 text-line crop, prefill of the page's 1369
// image tokens, and decoding at about 1k tokens of context; peak RSS as a counter.
//
// The checkpoint (config.json + bf16 model.safetensors, 2.4 GB) is generated once under
// $DOCVLM_BENCH_DIR (default /tmp/docvlm-bench-mineru25) with MinerU2.5-2509's published sizes.
#include <docvlm/io/image_processor.hpp>
#include <docvlm/model/model.hpp>
#include <docvlm/pipeline/page_parser.hpp>
#include <docvlm/presets/mineru25.hpp>
#include <docvlm/serve/qwen_engine.hpp>

#include <benchmark/benchmark.h>

#include <sys/resource.h>

#include <cstdlib>
#include <filesystem>
#include <limits>
#include <fstream>
#include <random>

namespace {

using namespace docvlm;
using Model = docvlm::Model<presets::MinerU25<Int8PerChannel>>;

std::string bench_dir() {
    const char* env = std::getenv("DOCVLM_BENCH_DIR");
    return env ? env : "/tmp/docvlm-bench-mineru25";
}

void write_random_checkpoint(const std::string& dir) {
    namespace fs = std::filesystem;
    fs::create_directories(dir);
    std::ofstream(dir + "/config.json") << R"({"architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl",
      "hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
      "intermediate_size": 4864, "vocab_size": 151936, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
      "max_position_embeddings": 32768, "tie_word_embeddings": true, "image_token_id": 151655,
      "rope_scaling": {"type": "mrope", "mrope_section": [8, 12, 12]},
      "vision_config": {"depth": 32, "embed_dim": 1280, "num_heads": 16, "mlp_ratio": 4, "patch_size": 14,
                        "temporal_patch_size": 2, "spatial_merge_size": 2, "in_channels": 3, "hidden_size": 896}})";
    std::ofstream(dir + "/preprocessor_config.json") << R"({"min_pixels": 3136, "max_pixels": 1605632, "patch_size": 14,
      "temporal_patch_size": 2, "merge_size": 2})";
    io::SafeTensorsWriter w;
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    auto add = [&](const std::string& name, std::vector<std::size_t> shape, float scale, float mean = 0.0f) {
        std::size_t n = 1;
        for (auto d : shape) n *= d;
        std::vector<bf16> v(n);
        for (auto& x : v) x = f32_to_bf16(mean + scale * nd(rng));
        w.add(name, std::move(shape), v.data());
    };
    const std::size_t vd = 1280, md = 5120, h = 896;
    add("visual.patch_embed.proj.weight", {vd, 3, 2, 14, 14}, 1.0f / 34.0f);
    for (int i = 0; i < 32; ++i) {
        const std::string b = "visual.blocks." + std::to_string(i) + ".";
        add(b + "norm1.weight", {vd}, 0.0f, 1.0f), add(b + "norm1.bias", {vd}, 0.0f);
        add(b + "norm2.weight", {vd}, 0.0f, 1.0f), add(b + "norm2.bias", {vd}, 0.0f);
        add(b + "attn.qkv.weight", {3 * vd, vd}, 0.028f), add(b + "attn.qkv.bias", {3 * vd}, 0.0f);
        add(b + "attn.proj.weight", {vd, vd}, 0.028f), add(b + "attn.proj.bias", {vd}, 0.0f);
        add(b + "mlp.fc1.weight", {md, vd}, 0.028f), add(b + "mlp.fc1.bias", {md}, 0.0f);
        add(b + "mlp.fc2.weight", {vd, md}, 0.014f), add(b + "mlp.fc2.bias", {vd}, 0.0f);
    }
    add("visual.merger.ln_q.weight", {vd}, 0.0f, 1.0f), add("visual.merger.ln_q.bias", {vd}, 0.0f);
    add("visual.merger.mlp.0.weight", {md, md}, 0.014f), add("visual.merger.mlp.0.bias", {md}, 0.0f);
    add("visual.merger.mlp.2.weight", {h, md}, 0.014f), add("visual.merger.mlp.2.bias", {h}, 0.0f);
    add("model.embed_tokens.weight", {151936, h}, 0.02f);
    add("model.norm.weight", {h}, 0.0f, 1.0f);
    for (int i = 0; i < 24; ++i) {
        const std::string l = "model.layers." + std::to_string(i) + ".";
        add(l + "input_layernorm.weight", {h}, 0.0f, 1.0f), add(l + "post_attention_layernorm.weight", {h}, 0.0f, 1.0f);
        add(l + "self_attn.q_proj.weight", {h, h}, 0.033f), add(l + "self_attn.q_proj.bias", {h}, 0.0f);
        add(l + "self_attn.k_proj.weight", {128, h}, 0.033f), add(l + "self_attn.k_proj.bias", {128}, 0.0f);
        add(l + "self_attn.v_proj.weight", {128, h}, 0.033f), add(l + "self_attn.v_proj.bias", {128}, 0.0f);
        add(l + "self_attn.o_proj.weight", {h, h}, 0.033f);
        add(l + "mlp.gate_proj.weight", {4864, h}, 0.033f), add(l + "mlp.up_proj.weight", {4864, h}, 0.033f);
        add(l + "mlp.down_proj.weight", {h, 4864}, 0.014f);
    }
    w.write(dir + "/model.safetensors");
}

const Model& model() {
    static const Model m = [] {
        const std::string dir = bench_dir();
        if (!std::filesystem::exists(dir + "/model.safetensors")) write_random_checkpoint(dir);
        return Model::load(dir);
    }();
    return m;
}

double peak_rss_mb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_maxrss) / 1024.0;
}

io::Image gray_page(int w, int h) {
    io::Image img(w, h, 3, 255);
    std::mt19937 rng(3);
    for (auto& p : img.pixels) p = std::uint8_t(200 + rng() % 56);
    return img;
}

void vision_pass(benchmark::State& state, int w, int h) {
    const Model& m = model();
    const io::PixelValues px = io::preprocess_qwen2vl(gray_page(w, h), m.image_config());
    for (auto _ : state) benchmark::DoNotOptimize(m.encode_image(px).data());
    state.counters["patches"] = double(px.count());
    state.counters["peak_RSS_MB"] = peak_rss_mb();
}
BENCHMARK_CAPTURE(vision_pass, page_1036x1036, 1036, 1036)->Name("mineru/vision_page_1036")->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();
BENCHMARK_CAPTURE(vision_pass, text_line_1000x200, 1000, 200)->Name("mineru/vision_line_1000x200")->Unit(benchmark::kMillisecond)->Iterations(2)->UseRealTime();

// Qwen2's tokenizer (tests/data) with Qwen2-VL's special tokens.
const io::Tokenizer& qwen2_tokenizer() {
    static const io::Tokenizer tok = [] {
        std::vector<io::AddedToken> added;
        const char* names[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
                               "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
                               "<|image_pad|>", "<|video_pad|>"};
        for (int i = 0; i < 14; ++i) added.push_back({names[i], 151643 + i, true});
        const std::string dir = std::string(DOCVLM_SOURCE_DIR) + "/tests/data/tokenizers/qwen2/";
        return io::Tokenizer::from_vocab_merges(dir + "vocab.json", dir + "merges.txt", added);
    }();
    return tok;
}

// A second question about the same image (`docvlm ask` twice, or a table crop read again): the
// parser's vision-feature cache returns the encoder's output for an image it has seen; the
// baseline is the same call with a cold cache (a fresh parser), which runs the encoder again.
// A 1000x200 text-line crop, MinerU2.5's text prompt, 8 new tokens. The difference is the saving.
void second_question(benchmark::State& state) {
    const bool cached = state.range(0) != 0;
    const io::Tokenizer& tok = qwen2_tokenizer();
    const io::Image crop = gray_page(1000, 200);
    const std::string prompt(pipeline::mineru_prompt(pipeline::Task::text));
    GenerationOptions opt;
    opt.max_new_tokens = 8;
    const pipeline::MinerUPageParser warm(model(), tok);
    warm.recognise(crop, prompt, opt);  // the first question fills the cache
    for (auto _ : state) {
        if (cached) {
            benchmark::DoNotOptimize(warm.recognise(crop, prompt, opt));
        } else {
            const pipeline::MinerUPageParser cold(model(), tok);
            benchmark::DoNotOptimize(cold.recognise(crop, prompt, opt));
        }
    }
    state.counters["cache_hits"] = double(warm.vision_cache().hits());
}
BENCHMARK(second_question)->Name("mineru/second_question_1000x200/cached")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// Stage 1 of a page as MinerUPageParser runs it: an A4 page at 150 dpi resized to 1036 x 1036, the
// vision pass, the layout prompt's prefill and a layout answer of N tokens (a dense page writes
// 1-2 k; random weights never write the end token, so the answer runs to the limit). Counters:
// seconds per phase (PhaseTimes) and decoding speed.
void layout_stage(benchmark::State& state) {
    pipeline::PageParserOptions opt;
    opt.max_new_tokens = std::size_t(state.range(0));
    const pipeline::MinerUPageParser parser(model(), qwen2_tokenizer(), opt);
    const io::Image page = gray_page(1240, 1754);
    for (auto _ : state) benchmark::DoNotOptimize(parser.detect_layout(page));
    const pipeline::PhaseTimes t = parser.phase_times();
    const double runs = double(state.iterations());
    state.counters["vision_s"] = t.vision / runs;
    state.counters["prefill_s"] = t.prefill / runs;
    state.counters["decode_s"] = t.decode / runs;
    state.counters["prompt_tokens"] = double(t.prompt_tokens) / runs;
    state.counters["decode_tokens/s"] = t.decode > 0 ? double(t.generated_tokens) / t.decode : 0.0;
}
BENCHMARK(layout_stage)->Name("mineru/layout_stage/tokens")->Arg(1500)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

// Stage 2 of a dense two-column page (A4 at 150 dpi): the crops of a fixed block list — title,
// authors, abstract, eight paragraphs, two display equations, a table, a figure (not read) with its
// caption, a page number — read with MinerU's per-type prompts and sampling, 8 crops decoded
// together as MinerUPageParser does. Random weights never end an answer, so each is cut at about
// the tokens its text would take (~3.5 characters a token): 2,103 in all. Counters: seconds per
// phase and decoding speed.
void content_stage(benchmark::State& state) {
    struct Planned {
        pipeline::Block block;
        std::size_t tokens;
    };
    auto block = [](const char* type, double x0, double y0, double x1, double y1) {
        pipeline::Block b;
        b.type = type, b.x0 = x0, b.y0 = y0, b.x1 = x1, b.y1 = y1;
        return b;
    };
    const std::vector<Planned> plan = {
        {block("title", 0.12, 0.06, 0.88, 0.09), 24},           {block("text", 0.25, 0.10, 0.75, 0.12), 20},
        {block("text", 0.15, 0.14, 0.85, 0.26), 220},           {block("text", 0.08, 0.28, 0.48, 0.40), 200},
        {block("equation", 0.10, 0.41, 0.46, 0.45), 40},        {block("text", 0.08, 0.46, 0.48, 0.60), 230},
        {block("table", 0.08, 0.61, 0.48, 0.78), 350},          {block("text", 0.08, 0.79, 0.48, 0.92), 210},
        {block("text", 0.52, 0.28, 0.92, 0.38), 170},           {block("equation", 0.54, 0.39, 0.90, 0.42), 40},
        {block("text", 0.52, 0.43, 0.92, 0.55), 200},           {block("image", 0.52, 0.56, 0.92, 0.70), 0},
        {block("image_caption", 0.52, 0.71, 0.92, 0.73), 30},  {block("text", 0.52, 0.74, 0.92, 0.92), 300},
        {block("text", 0.56, 0.93, 0.92, 0.945), 66},          {block("page_number", 0.48, 0.955, 0.52, 0.97), 3}};
    std::vector<pipeline::Block> blocks;
    for (const Planned& p : plan) blocks.push_back(p.block);
    const pipeline::PageParserOptions opt;
    const pipeline::MinerUPageParser parser(model(), qwen2_tokenizer(), opt);
    const io::Image page = gray_page(1240, 1754);
    const std::vector<pipeline::Crop> crops = pipeline::crops_for(page, blocks, opt);
    std::vector<io::Image> images;
    std::vector<std::string> prompts;
    std::vector<GenerationOptions> options;
    for (const pipeline::Crop& c : crops) {
        images.push_back(c.image);
        prompts.emplace_back(pipeline::mineru_prompt(c.task));
        options.push_back(pipeline::sampling_for(c.task, plan[c.block].tokens));
        // random weights also pick ids past the 151,657 this tokenizer knows: keep to its vocabulary
        options.back().constrain = [](std::span<const std::int32_t>, std::span<float> logits) {
            std::fill(logits.begin() + 151657, logits.end(), -std::numeric_limits<float>::infinity());
        };
    }
    for (auto _ : state) {
        for (std::size_t i = 0; i < images.size(); i += opt.batch) {
            const std::size_t n = std::min(opt.batch, images.size() - i);
            benchmark::DoNotOptimize(parser.recognise_batch({images.data() + i, n}, {prompts.data() + i, n}, {options.data() + i, n}));
        }
    }
    const pipeline::PhaseTimes t = parser.phase_times();
    const double runs = double(state.iterations());
    state.counters["crops"] = double(crops.size());
    state.counters["vision_s"] = t.vision / runs;
    state.counters["prefill_s"] = t.prefill / runs;
    state.counters["decode_s"] = t.decode / runs;
    state.counters["generated_tokens"] = double(t.generated_tokens) / runs;
    state.counters["decode_tokens/s"] = t.decode > 0 ? double(t.generated_tokens) / t.decode : 0.0;
}
BENCHMARK(content_stage)->Name("mineru/content_stage_dense_page")->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

// Prefill of a layout prompt: 1369 image tokens (a 1036x1036 page) plus the chat text.
void prefill(benchmark::State& state) {
    const Model& m = model();
    const std::size_t image_tokens = 1369;
    Tensor<float, 2> vision = Tensor<float, 2>::from_shape({image_tokens, 896});
    std::mt19937 rng(5);
    std::normal_distribution<float> nd;
    for (auto& v : vision) v = nd(rng);
    std::vector<std::int32_t> ids = {151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198, 151652};
    ids.insert(ids.end(), image_tokens, 151655);
    for (std::int32_t t : {151653, 198, 2201, 47598, 25, 151645, 198, 151644, 77091, 198}) ids.push_back(t);
    const ImageGrid grid{1, 74, 74};
    for (auto _ : state) {
        auto ctx = m.context(ids.size() + 8);
        benchmark::DoNotOptimize(ctx.prefill(ids, {&vision, 1}, {&grid, 1}).data());
    }
    state.counters["tokens/s"] = benchmark::Counter(double(ids.size()), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["peak_RSS_MB"] = peak_rss_mb();
}
BENCHMARK(prefill)->Name("mineru/prefill_1369_image_tokens")->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

// Prefill of 512 text tokens (llama-bench's pp512 shape).
void prefill_text(benchmark::State& state) {
    const Model& m = model();
    std::vector<std::int32_t> ids(512);
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = std::int32_t(100 + (i * 7919) % 100000);
    for (auto _ : state) {
        auto ctx = m.context(ids.size() + 1);
        benchmark::DoNotOptimize(ctx.prefill(ids, {}, {}).data());
    }
    state.counters["tokens/s"] = benchmark::Counter(double(ids.size()), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(prefill_text)->Name("mineru/prefill_512_text")->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// Decoding with state.range(0) tokens (1000 or 4000) in the KV cache.
void decode(benchmark::State& state) {
    const Model& m = model();
    std::vector<std::int32_t> ids(std::size_t(state.range(0)));
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = std::int32_t(100 + i % 5000);
    auto ctx = m.context(ids.size() + 4096);
    ctx.prefill(ids, {}, {});
    std::int32_t t = 42;
    for (auto _ : state) {
        auto l = ctx.decode_step(t);
        t = std::int32_t(std::max_element(l.begin(), l.end()) - l.begin());
    }
    state.counters["tokens/s"] = benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["peak_RSS_MB"] = peak_rss_mb();
}
BENCHMARK(decode)->Name("mineru/decode_at_1k")->Arg(1000)->Unit(benchmark::kMillisecond)->Iterations(64)->UseRealTime();
BENCHMARK(decode)->Name("mineru/decode_at_4k")->Arg(4000)->Unit(benchmark::kMillisecond)->Iterations(64)->UseRealTime();

// Stage-2 style decoding of 8 crops' prompts (300 tokens each, different), 32 new tokens each:
// state.range(0) = 1 runs them one after another (Context::generate), 8 decodes them together
// (generate_batch). Counters: tokens per second of the decoding phase (prefill excluded, as
// GenerationStats splits it) and of the whole.
void decode_crops(benchmark::State& state) {
    const Model& m = model();
    const bool batched = state.range(0) > 1;
    std::vector<std::vector<std::int32_t>> prompts(8);
    for (std::size_t c = 0; c < 8; ++c)
        for (std::size_t i = 0; i < 300; ++i) prompts[c].push_back(std::int32_t(100 + (i * 7919 + c * 104729) % 100000));
    GenerationOptions opt;
    opt.max_new_tokens = 32;
    opt.stop_tokens = {-1};  // random weights: run every sequence to its bound
    GenerationStats stats;
    for (auto _ : state) {
        if (batched) {
            std::vector<BatchRequest> reqs;
            for (const auto& p : prompts) reqs.push_back({p, {}, {}, opt});
            m.generate_batch(reqs, &stats);
        } else {
            for (const auto& p : prompts) {
                auto ctx = m.context(p.size() + opt.max_new_tokens);
                ctx.generate(p, {}, {}, opt, {}, &stats);
            }
        }
    }
    // the first token of each comes from its prefill
    state.counters["decode_tokens/s"] = double(stats.generated_tokens - 8 * state.iterations()) / stats.decode_seconds;
    state.counters["tokens/s"] = benchmark::Counter(double(stats.generated_tokens), benchmark::Counter::kIsRate);
}
BENCHMARK(decode_crops)->Name("mineru/decode_8_crops/batch")->Arg(1)->Arg(8)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

// The server's engine (serve::QwenChatEngine) given 16 chat requests at once, as MinerU's client
// sends them: different ~320-token text prompts, 32 new tokens each (max_tokens). max_batch =
// state.range(0): 1 answers them one after another, 16 decodes them together, each prefilled as
// it is admitted (continuous batching). Qwen2's real tokenizer (tests/data/tokenizers/qwen2).
void serve_requests(benchmark::State& state) {
    const Model& m = model();
    const io::Tokenizer& tok = qwen2_tokenizer();
    serve::QwenEngineOptions opt;
    opt.max_batch = std::size_t(state.range(0));
    serve::QwenChatEngine engine(m, tok, "bench", opt);
    std::vector<serve::ChatRequest> reqs(16);
    for (std::size_t r = 0; r < reqs.size(); ++r) {
        std::string text;
        for (std::size_t w = 0; w < 50; ++w) text += " word" + std::to_string((w * 7919 + r * 104729) % 100000);  // 6 tokens a word
        reqs[r].messages = {{"user", {{false, text}}}};
        reqs[r].temperature = 0.0f;
        reqs[r].max_tokens = 32;
    }
    std::size_t tokens = 0;
    for (auto _ : state) {
        std::vector<std::shared_ptr<serve::ChatJob>> jobs;
        for (const auto& r : reqs) jobs.push_back(engine.submit(r, {}));
        for (auto& j : jobs) tokens += j->wait().completion_tokens;
    }
    state.counters["requests/s"] = benchmark::Counter(double(reqs.size()), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["tokens/s"] = benchmark::Counter(double(tokens), benchmark::Counter::kIsRate);
}
BENCHMARK(serve_requests)->Name("mineru/serve_16_requests/max_batch")->Arg(1)->Arg(16)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

}  // namespace
