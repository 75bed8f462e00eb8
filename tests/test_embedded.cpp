// Tests of GatedVlmModel (Model<Config> with GatedCrossAttention fusion) against PyTorch.
//
// tests/data/gated-tiny: a tiny random model of tools/train/model.py (int8 weights with scales, as
// the QAT export writes them) and the PyTorch outputs for four crops, made by
// `tools/train/reference.py --random tests/data/gated-tiny`. The shipped model (models/docvlm-small)
// is checked the same way against tests/data/docvlm-small/reference.safetensors.
#include "embedded_util.hpp"
#include "test_util.hpp"

#include <docvlm/io/safetensors.hpp>
#include <docvlm/model/model.hpp>
#include <docvlm/pipeline/embedded_parser.hpp>
#include <docvlm/pipeline/layout.hpp>
#include <docvlm/presets/docvlm_small.hpp>

#include <array>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

using namespace docvlm;

namespace {

using namespace embedded_test;

// The tiny config of reference.py --random, every size fixed at compile time.
template <WeightPolicy W>
using Tiny = presets::GatedVlmFamily<2, 64, 2, 128, 5, 2, 3, 64, 4, 2, 96, 400, 2, W>;
template <WeightPolicy W>
using TinyDynamic = presets::GatedVlmFamily<dynamic, dynamic, dynamic, dynamic, 5, 2, dynamic, dynamic, dynamic, dynamic, dynamic, dynamic,
                                            2, W>;

// A flat I64 reference tensor as ints.
std::vector<int> ints_of(const io::Checkpoint& ref, const std::string& name) {
    const Array<float> a = ref.to_f32(name);
    return std::vector<int>(a.begin(), a.end());
}

// A splitter grid as reference.py stores it (R, K, then R x K cell ids) and as read_split_grid
// gives it (cell ids numbered in the order of their first position, row by row).
std::vector<std::vector<int>> grid_of(const std::vector<int>& flat) {
    std::vector<std::vector<int>> g(std::size_t(flat.at(0)), std::vector<int>(std::size_t(flat.at(1))));
    for (std::size_t r = 0; r < g.size(); ++r)
        for (std::size_t c = 0; c < g[r].size(); ++c) g[r][c] = flat.at(2 + r * g[r].size() + c);
    return g;
}
std::vector<std::vector<int>> grid_of(const std::vector<std::vector<pipeline::OtslCell>>& rows) {
    std::vector<std::vector<int>> g(rows.size(), std::vector<int>(rows.empty() ? 0 : rows[0].size(), -1));
    int next = 0;
    for (std::size_t r = 0; r < rows.size(); ++r)
        for (std::size_t c = 0; c < rows[r].size(); ++c) {
            const auto k = rows[r][c].kind;
            g[r][c] = k == pipeline::OtslCell::fcel ? next++ : (k == pipeline::OtslCell::ucel ? g.at(r - 1)[c] : g[r].at(c - 1));
        }
    return g;
}

// The splitter's maps (f32: within 1e-5 of PyTorch) and the grid read from them (identical to
// table_split.read_grid's, extents included) for reference crop i, when the reference has them.
template <class M>
void check_split_against_pytorch(const M& model, const io::Checkpoint& ref, int i) {
    const std::string s = std::to_string(i);
    if (!ref.contains("split_cells" + s)) return;
    const io::Image crop = crop_of(ref, i);
    const SplitMaps maps = model.table_split_maps(crop);
    const std::pair<const std::vector<float>*, const char*> parts[] = {
        {&maps.local_row, "split_local_row"}, {&maps.local_col, "split_local_col"}, {&maps.row, "split_row"}, {&maps.col, "split_col"}};
    for (auto [got, name] : parts) {
        CAPTURE(name);
        const Array<float> want = ref.to_f32(name + s);
        REQUIRE(got->size() == want.size());
        CHECK(rel_err(got->data(), want) <= 1e-5);
    }
    const auto rows = pipeline::read_split_grid(crop, maps, model.dims().ink_threshold);
    CHECK(grid_of(rows) == grid_of(ints_of(ref, "split_cells" + s)));
    // the extents: a cell's box spans its first and last row's and column's
    const std::vector<int> want_rows = ints_of(ref, "split_rows" + s), want_cols = ints_of(ref, "split_cols" + s);
    REQUIRE(std::size_t(want_rows[0]) == rows.size());
    for (std::size_t r = 0; r < rows.size(); ++r) {
        REQUIRE(std::size_t(want_cols[0]) == rows[r].size());
        for (std::size_t c = 0; c < rows[r].size(); ++c) {
            if (rows[r][c].kind != pipeline::OtslCell::fcel) continue;
            CHECK(rows[r][c].x0 == want_cols[1 + 2 * c]);
            CHECK(rows[r][c].y0 == want_rows[1 + 2 * r]);
        }
    }
}

// F32: vision tokens and teacher-forced logits within 1e-5 of PyTorch (relative to the tensor's
// largest magnitude), greedy tokens identical.
template <class Config>
void check_against_pytorch(const std::string& dir, const std::string& reference) {
    const auto model = load<Config>(dir);
    const io::Checkpoint ref = io::Checkpoint::open(reference);
    const std::vector<int> crops = crops_to_check(ref);
    REQUIRE(!crops.empty());
    for (const int i : crops) {
        CAPTURE(i);
        check_split_against_pytorch(model, ref, i);
        if (!ref.contains("tokens" + std::to_string(i))) continue;  // a table crop for the splitter only
        const io::Image crop = crop_of(ref, i);
        const std::string task = task_of(ref, model.dims(), i);
        const Tensor<float, 2> vis = model.encode_image(crop);
        const auto toks = tokens_of(ref, "tokens" + std::to_string(i));
        auto ctx2 = model.context();
        CHECK(ctx2.generate(vis, task, gen_for(ref, model.dims(), task)) == toks);
        if (ref.contains("constrained" + std::to_string(i))) {  // the table grammar, as common.otsl_allowed
            GenerationOptions gen = gen_for(ref, model.dims(), task);
            gen.constrain = pipeline::otsl_constraint(model.dims().table, model.dims().eos_token_id);
            auto ctx3 = model.context();
            CHECK(ctx3.generate(vis, task, gen) == tokens_of(ref, "constrained" + std::to_string(i)));
        }
        if (!ref.contains("vision" + std::to_string(i))) continue;  // tensors stored for the first crops only

        const Array<float> want_vis = ref.to_f32("vision" + std::to_string(i));
        REQUIRE(vis.size() == want_vis.size());
        CHECK(rel_err(vis.data(), want_vis) <= 1e-5);

        CHECK(teacher_forced_error(model, ref, i, vis, task, toks) <= 1e-5);
    }
}

}  // namespace

TEST_SUITE("embedded") {

TEST_CASE("gated cross-attention model (static and dynamic sizes, f32) matches PyTorch") {
    const std::string dir = test::data("gated-tiny");
    check_against_pytorch<Tiny<F32>>(dir, dir + "/reference.safetensors");
    check_against_pytorch<TinyDynamic<F32>>(dir, dir + "/reference.safetensors");
}

TEST_CASE("the shipped model (models/docvlm-small) matches PyTorch: f32 logits and greedy text; int8 vs QAT agreement") {
    const std::string dir = default_model_dir();
    const std::string reference = test::data("docvlm-small/reference.safetensors");
    check_against_pytorch<presets::DocvlmSmall<F32>>(dir, reference);
    // int8: the C++ int8 path against PyTorch's QAT simulation, whole greedy outputs of held-out crops
    const auto model = load_default_model();
    const io::Checkpoint ref = io::Checkpoint::open(reference);
    const std::vector<int> crops = crops_to_check(ref);
    int same = 0, lines = 0, split_same = 0, split_tables = 0;
    std::size_t table_prefix = 0, table_tokens = 0;
    for (const int i : crops) {
        const io::Image crop = crop_of(ref, i);
        if (ref.contains("split_qat_cells" + std::to_string(i))) {  // the splitter's grid: int8 vs QAT
            const auto rows = pipeline::read_split_grid(crop, model.table_split_maps(crop), model.dims().ink_threshold);
            split_same += grid_of(rows) == grid_of(ints_of(ref, "split_qat_cells" + std::to_string(i)));
            ++split_tables;
        }
        if (!ref.contains("tokens" + std::to_string(i))) continue;
        const std::string task = task_of(ref, model.dims(), i);
        auto ctx = model.context();
        const auto out = ctx.generate(model.encode_image(crop), task, gen_for(ref, model.dims(), task));
        const auto want = tokens_of(ref, "qat_tokens" + std::to_string(i));
        if (task == "table") {  // long outputs: the tokens before the first divergence
            std::size_t k = 0;
            while (k < out.size() && k < want.size() && out[k] == want[k]) ++k;
            table_prefix += k, table_tokens += want.size();
        } else {
            same += out == want, ++lines;
        }
    }
    MESSAGE("int8 (C++) vs QAT simulation (PyTorch): ", same, " of ", lines, " held-out text and formula crops give the same greedy output; "
            "tables: ", table_prefix, " of ", table_tokens, " tokens before the first divergence");
    CHECK(same * 10 >= lines * 8);
    CHECK(table_prefix * 2 >= table_tokens);
    if (model.dims().split.present) {
        MESSAGE("table splitter, int8 (C++) vs QAT simulation (PyTorch): the same grid on ", split_same, " of ", split_tables, " held-out tables");
        CHECK(split_tables > 0);
        CHECK(split_same * 10 >= split_tables * 8);
    }
    // int8 vs f32 in C++ on the same weights: teacher-forced logits (cosine) and greedy outputs
    const auto f32 = load<presets::DocvlmSmall<F32>>(dir);
    double worst_cos = 1.0;
    int same_greedy = 0, compared = 0;
    for (const int i : crops) {
        if (!ref.contains("tokens" + std::to_string(i))) continue;
        ++compared;
        const io::Image crop = crop_of(ref, i);
        const std::string task = task_of(ref, model.dims(), i);
        const GenerationOptions gen = gen_for(ref, model.dims(), task);
        auto toks = tokens_of(ref, "tokens" + std::to_string(i));
        toks.insert(toks.begin(), model.dims().task_token(task));
        auto c8 = model.context();
        auto c32 = f32.context();
        const auto l8 = c8.prefill(model.encode_image(crop), toks, {}, true);
        const std::vector<float> a(l8.begin(), l8.end());
        const auto b = c32.prefill(f32.encode_image(crop), toks, {}, true);
        double dot = 0, na = 0, nb = 0;
        for (std::size_t k = 0; k < a.size(); ++k) dot += double(a[k]) * b[k], na += double(a[k]) * a[k], nb += double(b[k]) * b[k];
        worst_cos = std::min(worst_cos, dot / std::sqrt(na * nb));
        auto g8 = model.context();
        auto g32 = f32.context();
        same_greedy += g8.generate(model.encode_image(crop), task, gen) == g32.generate(f32.encode_image(crop), task, gen);
    }
    MESSAGE("int8 vs f32 (C++): worst logits cosine ", worst_cos, "; identical greedy output on ", same_greedy, " of ", compared, " crops");
    CHECK(worst_cos >= 0.999);
    CHECK(same_greedy >= 1);
}

TEST_CASE("the length bound of a text reading lies above every held-out reading (PyTorch's greedy text of the reference crops)") {
    // pipeline::text_token_bound leaves out a reading that reaches it without a loop as invented:
    // PyTorch's own readings of text crops from held-out documents (tools/train/reference.py), a
    // trailing loop cut to its first turn as the parser cuts it, must all end before it
    const io::Checkpoint ref = io::Checkpoint::open(test::data("docvlm-small/reference.safetensors"));
    const auto model = load_default_model();
    int text = 0;
    double densest = 0;  // tokens per bound
    for (int i = 0; ref.contains("crop" + std::to_string(i)); ++i) {  // no model runs: every crop, sanitizers too
        if (!ref.contains("tokens" + std::to_string(i)) || task_of(ref, model.dims(), i) != "text") continue;
        const io::Image crop = crop_of(ref, i);
        const std::size_t n = pipeline::without_loop(tokens_of(ref, "tokens" + std::to_string(i)));
        const std::size_t bound = pipeline::text_token_bound(crop.width);
        CHECK_MESSAGE(n < bound, "crop ", i, ": ", n, " tokens at width ", crop.width);
        densest = std::max(densest, double(n) / double(bound));
        ++text;
    }
    MESSAGE(text, " held-out text readings; the longest uses ", densest, " of its bound");
    CHECK(text >= 16);
}

TEST_CASE("int8 gated model follows PyTorch's quantisation-aware simulation") {
    const std::string dir = test::data("gated-tiny");
    const auto model = load<Tiny<Int8PerChannel>>(dir);
    const io::Checkpoint ref = io::Checkpoint::open(dir + "/reference.safetensors");
    std::size_t same = 0, total = 0;
    for (int i = 0; i < count_crops(ref); ++i) {
        if (!ref.contains("qat_tokens" + std::to_string(i))) continue;
        const io::Image crop = crop_of(ref, i);
        auto ctx = model.context();
        const auto want = tokens_of(ref, "qat_tokens" + std::to_string(i));
        GenerationOptions gen;
        gen.max_new_tokens = want.size();
        const auto out = ctx.generate(model.encode_image(crop), task_of(ref, model.dims(), i), gen);
        // Greedy decoding of a random model sits on near-ties; compare the prefix up to the first
        // divergence and require most of it to agree.
        std::size_t k = 0;
        while (k < out.size() && k < want.size() && out[k] == want[k]) ++k;
        same += k;
        total += want.size();
    }
    MESSAGE("int8 vs PyTorch QAT: ", same, " of ", total, " greedy tokens before the first divergence");
    CHECK(double(same) >= 0.5 * double(total));
}

// generate_batch must give each crop exactly what generate() gives it alone: batching shares the
// weight reads, never the arithmetic of a row.
template <class Config>
void check_batch_equals_single(const std::string& dir, const std::string& reference, int n) {
    const auto model = load<Config>(dir);
    const io::Checkpoint ref = io::Checkpoint::open(reference);
    n = std::min(n, count_crops(ref));
    std::vector<Tensor<float, 2>> vision;
    std::vector<std::size_t> bound;
    std::vector<std::vector<std::int32_t>> single;
    GenerationOptions gen;
    gen.max_new_tokens = 96;
    for (int i = 0; i < n; ++i) {
        if (task_of(ref, model.dims(), i) != "text") continue;
        const io::Image crop = crop_of(ref, i);
        vision.push_back(model.encode_image(crop));
        bound.push_back(std::size_t(8 + 7 * i % 90));  // different bounds: sequences leave the batch at different steps
        GenerationOptions g = gen;
        g.max_new_tokens = bound.back();
        auto ctx = model.context();
        single.push_back(ctx.generate(vision.back(), "text", g));
    }
    REQUIRE(vision.size() >= 3);
    const auto batched = model.generate_batch(vision, "text", gen, bound);
    REQUIRE(batched.size() == single.size());
    for (std::size_t i = 0; i < single.size(); ++i) CHECK(batched[i] == single[i]);
    // no bounds: every sequence runs to its end token or gen.max_new_tokens
    const auto unbounded = model.generate_batch(std::span(vision).first(2), "text", gen);
    auto ctx = model.context();
    CHECK(unbounded[1] == ctx.generate(vision[1], "text", gen));
    CHECK_ERROR_HAS(model.generate_batch(vision, "text", gen, std::span(bound).first(1)), "output bounds");
    CHECK(model.generate_batch({}, "text", gen).empty());
}

TEST_CASE("generate_batch reads a batch of crops exactly as one at a time (int8 and f32)") {
    const std::string reference = test::data("docvlm-small/reference.safetensors");
    check_batch_equals_single<presets::DocvlmSmall<Int8PerChannel>>(default_model_dir(), reference, max_crops < 100 ? 6 : 24);
    check_batch_equals_single<presets::DocvlmSmall<F32>>(default_model_dir(), reference, 6);
}

// Batches of 40 rows take every GEMM tile the CPU has (AMX from 32 rows, 12-row AVX-512 tiles
// finished in registers, edge tiles); each row must compute what it computes alone, to the bit.
template <class Config>
void check_rows_independent_of_batch(const std::string& dir) {
    const auto model = load<Config>(dir);
    const io::Checkpoint ref = io::Checkpoint::open(test::data("docvlm-small/reference.safetensors"));
    std::vector<Tensor<float, 2>> crops;
    for (int i = 0; i < count_crops(ref) && crops.size() < 5; ++i)
        if (task_of(ref, model.dims(), i) == "text") crops.push_back(model.encode_image(crop_of(ref, i)));
    REQUIRE(crops.size() >= 3);
    std::vector<Tensor<float, 2>> vision;
    std::vector<std::size_t> bound;  // rows leave the batch at different steps: every tile size in turn
    for (std::size_t i = 0; i < 40; ++i) vision.push_back(crops[i % crops.size()]), bound.push_back(4 + i % 13);
    std::vector<std::vector<float>> together;
    const auto out = model.generate_batch(vision, "text", GenerationOptions{}, bound, &together);
    for (std::size_t i = 0; i < vision.size(); ++i) {
        std::vector<std::vector<float>> alone;
        const auto single = model.generate_batch(std::span(vision).subspan(i, 1), "text", GenerationOptions{}, std::span(bound).subspan(i, 1), &alone);
        CHECK_MESSAGE(single[0] == out[i], "row ", i);
        CHECK_MESSAGE(alone[0] == together[i], "row ", i);
    }
}

TEST_CASE("generate_batch: a row's log-probabilities are bit for bit the same at any batch size (int8 and f32)") {
    check_rows_independent_of_batch<presets::DocvlmSmall<Int8PerChannel>>(default_model_dir());
    check_rows_independent_of_batch<presets::DocvlmSmall<F32>>(default_model_dir());
}

TEST_CASE("gated model: bad configs, checkpoints and inputs give clear errors") {
    const std::string dir = test::data("gated-tiny");
    test::TempDir tmp;
    std::filesystem::copy(dir + "/model.safetensors", tmp / "model.safetensors");
    auto write_config = [&](const std::string& from, const std::string& to) {
        std::ifstream in(dir + "/config.json");
        std::string s((std::istreambuf_iterator<char>(in)), {});
        const auto p = s.find(from);
        REQUIRE(p != std::string::npos);
        s.replace(p, from.size(), to);
        std::ofstream(tmp / "config.json") << s;
    };
    write_config("\"vision_dim\": 64", "\"vision_dim\": 96");
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "vision_dim", "96");
    CHECK_ERROR_HAS(load<TinyDynamic<F32>>(tmp.path.string()), "patch_embed.weight", "has shape [64, 64], the model expects [96, 64]");
    write_config("\"window\": 5", "\"window\": 7");
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "window");
    write_config("\"model_type\": \"docvlm_small\"", "\"model_type\": \"qwen2_vl\"");
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "docvlm_small");
    write_config("\"text_heads\": 4", "\"text_heads\": 3");
    CHECK_ERROR_HAS(load<TinyDynamic<F32>>(tmp.path.string()), "text_heads");

    write_config("\"fcel\": 262", "\"fcel\": 7");
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "table.tokens.fcel");
    write_config("\"coord_token\": 268", "\"coord_token\": 390");
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "table.coord_token");
    write_config("\"format\": \"grid\"", "\"format\": \"otsl-boxes\"");  // an answer format this version does not read
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "table.format", "grid");
    write_config("\"out_pos\": true", "\"out_pos\": 1");
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "out_pos", "true or false");
    write_config("\"table_split\": {", "\"table_split\": 3, \"unused\": {");
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "table_split", "object");
    write_config("\"max_rows\": 3,\n  \"line_height\"", "\"max_rows\": 0,\n  \"line_height\"");
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "table_split.max_rows");
    write_config("\"max_rows\": 3,\n  \"line_height\"", "\"max_rows\": 4,\n  \"line_height\"");  // the weights have 3 rows
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "table.row_embed");
    write_config("\"tile_width\": 64", "\"tile_width\": 60");
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "table_split.tile_width", "multiple");
    write_config("\"tile_width\": 64", "\"tile_width\": 136");  // wider than the tower's 16 columns
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "table_split.tile_width", "[8, 128]");
    write_config("\"axial\": 1", "\"axial\": 1.5");
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "table_split.axial", "integer");
    write_config("\"axial\": 1", "\"axial\": 2");  // the weights have one pair of axial blocks
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "table.axial.2.");
    write_config("\"shift\": 3", "\"shift\": 8");  // a whole patch
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "table_split.shift", "[0, 7]");
    write_config("\"shift\": 3", "\"shift\": -1");
    CHECK_ERROR_HAS(load<Tiny<F32>>(tmp.path.string()), "table_split.shift", "less than a patch");
    {  // a config that names a splitter for weights without one (the text model's tensors only)
        test::TempDir no_split;
        const auto ck = io::Checkpoint::open(default_model_dir());
        io::SafeTensorsWriter text_only;
        for (const auto& name : ck.names())
            if (!name.starts_with("table.")) text_only.add(name, ck.info(name).dtype, ck.info(name).shape, ck.bytes(name));
        text_only.write(no_split / "model.safetensors");
        std::filesystem::copy(default_model_dir() + "/config.json", no_split / "config.json");
        REQUIRE(ck.contains("table.patch_embed.weight"));  // the shipped model has a splitter; without its tensors:
        CHECK_ERROR_HAS(load<presets::DocvlmSmall<F32>>(no_split.path.string()), "table.");
    }
    {  // an out_pos model needs its output position embeddings (the shipped weights have none)
        test::TempDir no_out;
        std::filesystem::copy(default_model_dir() + "/model.safetensors", no_out / "model.safetensors");
        std::ifstream in(default_model_dir() + "/config.json");
        std::string s((std::istreambuf_iterator<char>(in)), {});
        const auto p = s.find("\"ctc_head\"");
        REQUIRE(p != std::string::npos);
        s.insert(p, "\"out_pos\": true, ");
        std::ofstream(no_out / "config.json") << s;
        CHECK_ERROR_HAS(load<presets::DocvlmSmall<F32>>(no_out.path.string()), "out_row_embed");
    }

    const auto model = load<Tiny<Int8PerChannel>>(dir);
    CHECK_ERROR_HAS(model.dims().task_token("table-of-contents"), "knows the tasks", "formula", "table", "text");
    CHECK_ERROR_HAS(model.encode_image(io::Image(20, 24, 1, 255)), "multiple of 8");
    CHECK_ERROR_HAS(model.encode_image(io::Image(16 * 8 + 8, 24, 1, 255)), "exceeds");
    CHECK_ERROR_HAS(model.encode_image(io::Image(16, 24, 3, 255)), "gray");
    CHECK_ERROR_HAS(model.table_split_maps(io::Image(16 * 8 + 8, 24, 1, 255)), "exceeds");
    {  // maps of another input
        const SplitMaps maps = model.table_split_maps(io::Image(16, 24, 1, 255));
        CHECK_ERROR_HAS(pipeline::read_split_grid(io::Image(24, 24, 1, 255), maps), "read_split_grid", "16x24");
        CHECK(pipeline::read_split_grid(io::Image(16, 24, 1, 255), maps).empty());  // no ink: no table
    }
    auto ctx = model.context(4);
    const auto vis = model.encode_image(io::Image(16, 24, 1, 255));
    const std::int32_t too_many[5] = {259, 1, 2, 3, 4};
    CHECK_ERROR_HAS(ctx.prefill(vis, too_many), "capacity");
    const std::int32_t bad[1] = {9999};
    CHECK_ERROR_HAS(ctx.prefill(vis, bad), "outside the vocabulary");
}

TEST_CASE("prepare: gray, task height, aspect kept, white padding to the patch") {
    const auto model = load<Tiny<F32>>(test::data("gated-tiny"));
    io::Image crop(50, 10, 3, 0);
    const io::Image p = model.prepare(crop, "text");
    CHECK(p.channels == 1);
    CHECK(p.height == 24);
    CHECK(p.width == 120);  // round(50 · 24 / 10) = 120, already a multiple of 8
    const io::Image f = model.prepare(io::Image(30, 40, 1, 0), "formula");
    CHECK(f.height == 48);
    CHECK(f.width == 40);  // round(30 · 48 / 40) = 36 → padded to 40 with white
    CHECK(f.at(39, 10) == 255);
    CHECK(f.at(20, 10) == 0);
    CHECK(model.prepare(io::Image(4000, 10, 1, 0), "text").width == 128);  // clamped to max_cols · patch
    // tables: scaled so that lines are table.line_height (8) high, within 48 × 128 (the tiny's
    // task height and max_width), padded right and bottom
    double scale = 0;
    const io::Image t = model.prepare_table(io::Image(100, 30, 1, 0), 16, scale);
    CHECK(scale == doctest::Approx(0.5));
    CHECK(t.width == 56);  // 50 → 56
    CHECK(t.height == 16);  // 15 → 16
    CHECK(t.at(52, 3) == 255);
    CHECK(t.at(3, 15) == 255);
    CHECK(t.at(3, 3) == 0);
    const io::Image big = model.prepare_table(io::Image(1000, 100, 1, 0), 10, scale);
    CHECK(scale == doctest::Approx(0.128));  // 128 / 1000: the width limit
    CHECK(big.width == 128);
    CHECK(big.height == 16);  // round(12.8) = 13 → 16
}

TEST_CASE("prepare_table matches the training code (Pillow bicubic) on synthetic tables") {
    const auto model = load<Tiny<F32>>(test::data("gated-tiny"));
    const io::Checkpoint ref = io::Checkpoint::open(test::data("gated-tiny/reference.safetensors"));
    int tables = 0;
    for (int i = 0; ref.contains("crop" + std::to_string(i)); ++i) {  // all of them: cheap even under sanitizers
        const std::string raw = "table_raw" + std::to_string(i);
        if (!ref.contains(raw)) continue;
        CAPTURE(i);
        const auto& info = ref.info(raw);
        io::Image crop(int(info.shape[1]), int(info.shape[0]), 1);
        const auto bytes = ref.bytes(raw);
        std::copy(bytes.begin(), bytes.end(), reinterpret_cast<std::byte*>(crop.pixels.data()));
        double scale = 0;
        const io::Image got = model.prepare_table(crop, ref.to_f32("table_line_h" + std::to_string(i))(0), scale);
        const io::Image want = crop_of(ref, i);
        REQUIRE(got.width == want.width);
        REQUIRE(got.height == want.height);
        int worst = 0;
        for (std::size_t k = 0; k < got.pixels.size(); ++k) worst = std::max(worst, std::abs(int(got.pixels[k]) - int(want.pixels[k])));
        CHECK(worst <= 1);
        ++tables;
    }
    CHECK(tables >= 2);
}

}  // TEST_SUITE

TEST_SUITE("embedded") {

TEST_CASE("table task: the OTSL constraint allows every generator table and nothing malformed") {
    const auto model = load<Tiny<F32>>(test::data("gated-tiny"));
    const GatedVlmDims::Table& t = model.dims().table;
    const std::int32_t eos = model.dims().eos_token_id;
    const auto constrain = pipeline::otsl_constraint(t, eos);
    // the tokens `constrain` allows after `generated`
    auto allowed = [&](const std::vector<std::int32_t>& generated) {
        std::vector<float> logits(model.dims().vocab, 0.0f);
        constrain(generated, logits);
        std::vector<std::int32_t> out;
        for (std::size_t i = 0; i < logits.size(); ++i)
            if (logits[i] == 0.0f) out.push_back(std::int32_t(i));
        return out;
    };
    auto allows = [&](const std::vector<std::int32_t>& generated, std::int32_t id) {
        const auto a = allowed(generated);
        return std::find(a.begin(), a.end(), id) != a.end();
    };
    // tables of the Python generator (tools/train/tables.py), answer and end token
    const io::Checkpoint ref = io::Checkpoint::open(test::data("gated-tiny/reference.safetensors"));
    int tables = 0;
    for (int i = 0; ref.contains("crop" + std::to_string(i)); ++i) {
        if (!ref.contains("table_truth" + std::to_string(i))) continue;
        auto truth = tokens_of(ref, "table_truth" + std::to_string(i));
        truth.push_back(eos);
        std::vector<std::int32_t> prefix;
        for (std::int32_t id : truth) {
            CAPTURE(prefix.size());
            CHECK(allows(prefix, id));
            prefix.push_back(id);
        }
        ++tables;
    }
    CHECK(tables >= 2);

    const std::int32_t c0 = t.coord_token;
    auto with = [](std::vector<std::int32_t> ids, std::initializer_list<std::int32_t> more) {
        ids.insert(ids.end(), more);
        return ids;
    };
    // the start: column extents, never an end of row or of the answer
    CHECK(allowed({}).size() == t.coords);
    CHECK(allowed({}).front() == c0);
    // x1 >= x0; the next column starts at most 2 units left of the previous one's x1
    CHECK(allowed({c0 + 10}).front() == c0 + 10);
    CHECK(allowed({c0 + 10}).size() == t.coords - 10);
    const std::vector<std::int32_t> one{c0 + 10, c0 + 20};
    // the smallest coordinate allowed (the structure tokens come before the coordinates)
    auto first_coord = [&](const std::vector<std::int32_t>& generated) {
        const auto a = allowed(generated);
        return *std::find_if(a.begin(), a.end(), [&](std::int32_t id) { return id >= c0; });
    };
    CHECK(first_coord(one) == c0 + 18);
    CHECK(allows(one, t.nl));
    CHECK(!allows(one, eos));
    CHECK(!allows(one, t.fcel));
    CHECK(!allows({c0 + 10}, t.nl));  // not between x0 and x1
    // two columns, then the first row: y0 from the top, y1 >= y0, then one OTSL token per column
    const auto cols = with(one, {c0 + 30, c0 + 40, t.nl});
    CHECK(allowed(cols).front() == c0);
    CHECK(!allows(cols, eos));  // at least one row
    CHECK(!allows(cols, t.fcel));
    const auto row0 = with(cols, {c0 + 3, c0 + 5});
    CHECK(allowed(with(cols, {c0 + 3})).front() == c0 + 3);
    CHECK(allowed(row0) == std::vector<std::int32_t>{t.fcel, t.ecel});  // nothing left, nothing above
    CHECK(allows(with(row0, {t.fcel}), t.lcel));
    CHECK(!allows(with(row0, {t.fcel}), t.ucel));
    CHECK(!allows(with(row0, {t.fcel}), t.nl));
    CHECK(allowed(with(row0, {t.fcel, t.lcel})) == std::vector<std::int32_t>{t.nl});
    // the next row starts at most 2 units above the previous row's y1; the answer may end there
    const auto two = with(row0, {t.fcel, t.lcel, t.nl});
    CHECK(first_coord(two) == c0 + 3);
    CHECK(allows(two, eos));
    CHECK(!allows(two, t.fcel));
    const auto row1 = with(two, {c0 + 7, c0 + 9});
    CHECK(allows(row1, t.ucel));
    CHECK(!allows(row1, t.lcel));
    CHECK(!allows(row1, t.xcel));
    CHECK(allows(with(row1, {t.ucel}), t.xcel));
    CHECK(!allows(with(row1, {t.ucel}), eos));
    // at most 24 columns
    std::vector<std::int32_t> wide;
    for (int c = 0; c < 24; ++c) wide.insert(wide.end(), {c0 + 4 * c, c0 + 4 * c + 2});
    CHECK(allowed(wide) == std::vector<std::int32_t>{t.nl});
}

TEST_CASE("table task: OTSL tokens with cell boxes, crops assigned to cells, HTML with spans") {
    const auto model = load<Tiny<F32>>(test::data("gated-tiny"));
    const GatedVlmDims::Table& t = model.dims().table;
    REQUIRE(t.present);
    REQUIRE(t.coord_unit == 4);
    // extents in model pixels (ends exclusive, multiples of 4): coordinate tokens are inclusive units
    auto extent = [&](std::vector<std::int32_t>& ids, int lo, int hi) {
        ids.insert(ids.end(), {t.coord_token + lo / 4, t.coord_token + (hi - 1) / 4});
    };
    std::vector<std::int32_t> ids;
    extent(ids, 0, 20), extent(ids, 40, 60), extent(ids, 80, 100), ids.push_back(t.nl);
    extent(ids, 0, 8), ids.insert(ids.end(), {t.fcel, t.lcel, t.fcel, t.nl});
    extent(ids, 12, 20), ids.insert(ids.end(), {t.fcel, t.fcel, t.ecel, t.nl});
    extent(ids, 24, 32), ids.insert(ids.end(), {t.fcel, t.fcel, t.fcel, 258, t.nl});  // 258: not a table token, skipped
    const auto rows = pipeline::parse_table_tokens(ids, t);
    REQUIRE(rows.size() == 3);
    CHECK(rows[0].size() == 3);
    CHECK(rows[0][1].kind == pipeline::OtslCell::lcel);
    CHECK(rows[1][2].kind == pipeline::OtslCell::ecel);
    CHECK_FALSE(rows[1][2].has_box);
    REQUIRE(rows[0][0].has_box);  // a span: the first column's left to the second column's right
    CHECK(rows[0][0].x0 == 0);
    CHECK(rows[0][0].x1 == 60);
    CHECK(rows[0][0].y1 == 8);
    CHECK(rows[2][2].has_box);
    CHECK(rows[2][2].x0 == 80);
    CHECK(rows[2][2].x1 == 100);
    CHECK(rows[2][2].y0 == 24);
    CHECK(rows[2][2].y1 == 32);
    {  // a row span: the first row's top to the last row's bottom
        std::vector<std::int32_t> v;
        extent(v, 0, 20), extent(v, 40, 60), v.push_back(t.nl);
        extent(v, 0, 8), v.insert(v.end(), {t.fcel, t.fcel, t.nl});
        extent(v, 12, 20), v.insert(v.end(), {t.ucel, t.fcel, t.nl});
        const auto r = pipeline::parse_table_tokens(v, t);
        REQUIRE(r.size() == 2);
        CHECK(r[0][0].y0 == 0);
        CHECK(r[0][0].y1 == 20);
        CHECK(r[0][1].y1 == 8);
    }

    // the page: model pixels = (page − (100, 200)) · 0.5; one crop per cell, one between c and d
    pipeline::LayoutRegion region;
    std::vector<std::vector<std::string>> texts;
    auto line = [&](std::vector<std::pair<std::array<int, 4>, std::string>> crops) {
        pipeline::TextLine l;
        texts.emplace_back();
        for (auto& [b, text] : crops) {
            l.chunks.push_back({100 + 2 * b[0], 200 + 2 * b[1], 100 + 2 * b[2], 200 + 2 * b[3]});
            texts.back().push_back(text);
        }
        region.lines.push_back(l);
    };
    line({{{2, 1, 50, 7}, "Group & co"}, {{82, 1, 98, 7}, "Total"}});
    line({{{2, 13, 18, 19}, "a"}, {{42, 13, 58, 19}, "b"}});
    line({{{2, 25, 18, 31}, "c"}, {{22, 25, 28, 31}, "extra"}, {{42, 25, 58, 31}, "d"}, {{82, 25, 98, 31}, "e"}});
    CHECK(pipeline::table_html(rows, region, texts, 0.5, 100, 200) ==
          "<table><tr><td colspan=\"2\">Group &amp; co</td><td>Total</td></tr><tr><td>a</td><td>b</td><td></td></tr>"
          "<tr><td>c extra</td><td>d</td><td>e</td></tr></table>");
    // not a table: ragged rows, a span with nothing to extend, no filled cell
    auto ragged = rows;
    ragged[1].pop_back();
    CHECK(pipeline::table_html(ragged, region, texts, 0.5, 100, 200).empty());
    auto bad_span = rows;
    bad_span[0][0].kind = pipeline::OtslCell::ucel;
    CHECK(pipeline::table_html(bad_span, region, texts, 0.5, 100, 200).empty());
    const std::vector<std::int32_t> empty_only{t.coord_token, t.coord_token + 1, t.nl, t.coord_token, t.coord_token, t.ecel, t.nl};
    CHECK(pipeline::table_html(pipeline::parse_table_tokens(empty_only, t), region, texts, 0.5, 100, 200).empty());
    CHECK(pipeline::parse_table_tokens({}, t).empty());
    // a filled cell in a column without an extent, or in a row without one, keeps no box
    const std::vector<std::int32_t> cut{t.coord_token + 1, t.coord_token + 2, t.nl, t.fcel, t.fcel, t.nl};
    const auto r2 = pipeline::parse_table_tokens(cut, t);
    REQUIRE(r2.size() == 1);
    REQUIRE(r2[0].size() == 2);
    CHECK_FALSE(r2[0][0].has_box);
    CHECK_FALSE(r2[0][1].has_box);
    // an answer cut inside the column extents has no rows
    CHECK(pipeline::parse_table_tokens(std::vector<std::int32_t>{t.coord_token + 1, t.coord_token + 2}, t).empty());
}

TEST_CASE("split_aligned_rows: a row cut at a level where most cells start a line; wrapped and centred cells and spans stay") {
    using K = pipeline::OtslCell::Kind;
    std::vector<std::vector<pipeline::OtslCell>> rows;
    auto cell = [](K k, double x0, double y0, double x1, double y1) { return pipeline::OtslCell{k, k == K::fcel, x0, y0, x1, y1}; };
    auto row = [&](double y0, double y1, std::array<K, 3> kinds, double y1_last = 0) {
        rows.push_back({cell(kinds[0], 0, y0, kinds[1] == K::lcel ? 70 : 30, y1), cell(kinds[1], 40, y0, 70, y1),
                        cell(kinds[2], 80, y0, 110, y1_last > 0 ? y1_last : y1)});
    };
    row(0, 10, {K::fcel, K::lcel, K::fcel});     // a header over two columns
    row(12, 34, {K::fcel, K::fcel, K::ecel});    // two rows the splitter joined: two level lines per cell
    row(36, 58, {K::fcel, K::fcel, K::fcel});    // a wrapped cell beside single lines
    row(60, 82, {K::fcel, K::fcel, K::ecel});    // two lines each, but not level
    row(84, 106, {K::fcel, K::fcel, K::fcel}, 130);  // level lines, but a cell spans into the next row
    row(108, 130, {K::fcel, K::fcel, K::ucel});
    pipeline::LayoutRegion region;  // page pixels = model pixels (scale 1, no offset)
    std::vector<std::vector<std::string>> texts;
    auto line = [&](std::vector<std::pair<std::array<int, 4>, std::string>> crops) {
        pipeline::TextLine l;
        texts.emplace_back();
        for (auto& [b, text] : crops) l.chunks.push_back({b[0], b[1], b[2], b[3]}), texts.back().push_back(text);
        region.lines.push_back(l);
    };
    line({{{2, 2, 60, 8}, "Head"}, {{82, 2, 100, 8}, "Total"}});
    line({{{2, 14, 20, 20}, "a1"}, {{42, 14, 60, 20}, "b1"}});
    line({{{2, 26, 20, 32}, "a2"}, {{42, 26, 60, 32}, "b2"}});
    line({{{2, 38, 28, 44}, "wrapped"}, {{42, 38, 60, 44}, "x"}, {{82, 38, 100, 44}, "y"}});
    line({{{2, 50, 20, 56}, "cell"}});
    line({{{2, 60, 20, 66}, "p1"}, {{42, 65, 60, 71}, "q1"}});
    line({{{2, 70, 20, 76}, "p2"}, {{42, 75, 60, 81}, "q2"}});
    line({{{2, 86, 20, 92}, "r1"}, {{42, 86, 60, 92}, "s1"}, {{82, 86, 100, 92}, "t1"}});
    line({{{2, 98, 20, 104}, "r2"}, {{42, 98, 60, 104}, "s2"}, {{82, 98, 100, 104}, "t2"}});
    line({{{2, 110, 20, 116}, "u"}, {{42, 110, 60, 116}, "v"}});
    const auto cut = pipeline::split_aligned_rows(rows, region, texts, 1, 0, 0);
    REQUIRE(cut.size() == rows.size() + 1);
    CHECK(cut[1][0].y0 == 12);
    CHECK(cut[1][0].y1 == 23);  // halfway between the lines (20 and 26)
    CHECK(cut[2][1].y0 == 23);
    CHECK(cut[2][1].y1 == 34);
    CHECK(cut[2][2].kind == K::ecel);
    CHECK(pipeline::table_html(cut, region, texts, 1, 0, 0) ==
          "<table><tr><td colspan=\"2\">Head</td><td>Total</td></tr><tr><td>a1</td><td>b1</td><td></td></tr>"
          "<tr><td>a2</td><td>b2</td><td></td></tr><tr><td>wrapped cell</td><td>x</td><td>y</td></tr>"
          "<tr><td>p1 p2</td><td>q1 q2</td><td></td></tr><tr><td>r1 r2</td><td>s1 s2</td><td rowspan=\"2\">t1 t2</td></tr>"
          "<tr><td>u</td><td>v</td></tr></table>");
    // one non-empty cell with two lines is a wrapped cell, not two rows
    auto lone = texts;
    lone[2][1].clear();
    lone[1][1].clear();
    CHECK(pipeline::split_aligned_rows(rows, region, lone, 1, 0, 0).size() == rows.size());
    // a grid table_html refuses comes back unchanged
    auto ragged = rows;
    ragged[1].pop_back();
    CHECK(pipeline::split_aligned_rows(ragged, region, texts, 1, 0, 0).size() == rows.size());

    // one row of three cells: a paragraph of three lines beside single lines (and a leader of
    // dots on the paragraph's last baseline, too low to start a line of its own), then the next
    // row's lines level in all three: one cut, below the dots
    const std::vector<std::vector<pipeline::OtslCell>> one{
        {cell(K::fcel, 0, 0, 30, 34), cell(K::fcel, 40, 0, 70, 34), cell(K::fcel, 80, 0, 110, 34)}};
    region.lines.clear(), texts.clear();
    line({{{2, 2, 20, 8}, "k1"}, {{42, 2, 60, 8}, "para1"}, {{82, 2, 100, 8}, "m1"}});
    line({{{42, 10, 60, 16}, "para2"}});
    line({{{42, 18, 60, 24}, "para3"}, {{82, 24, 100, 25}, ". . ."}});
    line({{{2, 26, 20, 32}, "k2"}, {{42, 26, 60, 32}, "n2"}, {{82, 26, 100, 32}, "m2"}});
    const auto two = pipeline::split_aligned_rows(one, region, texts, 1, 0, 0);
    REQUIRE(two.size() == 2);
    CHECK(two[0][1].y1 == 25.5);  // halfway between the ink above (the dots, 25) and the level (26)
    CHECK(pipeline::table_html(two, region, texts, 1, 0, 0) ==
          "<table><tr><td>k1</td><td>para1 para2 para3</td><td>m1 . . .</td></tr><tr><td>k2</td><td>n2</td><td>m2</td></tr></table>");
    // a paragraph of three lines between single lines centred on its middle one: no cut (above
    // that level only the paragraph has text)
    region.lines.clear(), texts.clear();
    line({{{42, 2, 60, 8}, "you will"}});
    line({{{2, 10, 20, 16}, "a"}, {{42, 10, 60, 16}, "get no"}, {{82, 10, 100, 16}, "b"}});
    line({{{42, 18, 60, 24}, "information"}});
    CHECK(pipeline::split_aligned_rows(one, region, texts, 1, 0, 0).size() == 1);
    // crops without height (nothing a segmenter makes): no cut, and no endless loop
    region.lines.clear(), texts.clear();
    line({{{2, 5, 20, 5}, "a"}, {{42, 5, 60, 5}, "b"}});
    line({{{2, 9, 20, 9}, "c"}, {{42, 9, 60, 9}, "d"}});
    CHECK(pipeline::split_aligned_rows(one, region, texts, 1, 0, 0).size() == 1);
}

TEST_CASE("read_split_grid: rows and columns between separators, a spanning header joined, rules not rows") {
    // 48 x 40 input (6 x 5 patches of 8): a header across both columns, a rule under it, two cells
    io::Image img(48, 40, 1, 255);
    auto ink = [&](int x0, int y0, int x1, int y1, int every) {  // every other pixel: text; all: a rule
        for (int y = y0; y < y1; ++y)
            for (int x = x0; x < x1; ++x)
                if ((x + y) % every == 0) img.at(x, y) = 0;
    };
    ink(2, 2, 45, 7, 2);     // header text, spanning
    ink(2, 12, 45, 13, 1);   // a rule across the table (more than 60 % of the ink's width)
    ink(2, 26, 15, 31, 2);   // left cell
    ink(30, 26, 45, 31, 2);  // right cell
    SplitMaps m;
    m.rows = 5, m.cols = 6, m.patch = 8;
    const int H = 40, W = 48;
    m.row.assign(H, -5.0f), m.col.assign(W, -5.0f);
    for (int y = 8; y < 20; ++y) m.row[std::size_t(y)] = 5;  // the gap between the header and the cells, rule included
    for (int x = 18; x < 28; ++x) m.col[std::size_t(x)] = 5;
    m.local_row.assign(m.cols * H, -5.0f), m.local_col.assign(m.rows * W, -5.0f);
    for (std::size_t c = 0; c < m.cols; ++c)
        for (int y = 8; y < 20; ++y) m.local_row[c * H + std::size_t(y)] = 5;
    for (int x = 18; x < 28; ++x) m.local_col[3 * W + std::size_t(x)] = 5;  // patch row 3 (pixels 24-31): the cells' row
    const auto rows = pipeline::read_split_grid(img, m);
    REQUIRE(rows.size() == 2);
    REQUIRE(rows[0].size() == 2);
    CHECK(rows[0][0].kind == pipeline::OtslCell::fcel);
    CHECK(rows[0][1].kind == pipeline::OtslCell::lcel);
    CHECK(rows[1][0].kind == pipeline::OtslCell::fcel);
    CHECK(rows[1][1].kind == pipeline::OtslCell::fcel);
    // boxes: the header spans both columns; the rule (row 12) is no row of its own
    CHECK(rows[0][0].x0 == 2);
    CHECK(rows[0][0].x1 == 45);
    CHECK(rows[0][0].y0 == 2);
    CHECK(rows[0][0].y1 == 8);
    CHECK(rows[1][1].x0 == 28);
    CHECK(rows[1][1].y0 == 20);
    CHECK(rows[1][1].y1 == 31);
    // the local column map says "separator" in the header's row too: two header cells
    for (int x = 18; x < 28; ++x) m.local_col[0 * W + std::size_t(x)] = 5;
    const auto split = pipeline::read_split_grid(img, m);
    CHECK(split[0][1].kind == pipeline::OtslCell::fcel);
}

TEST_CASE("narrowed_input: a text input resized to a fraction of its width, padded white to the patch") {
    io::Image in(64, 24, 1, 255);
    for (int y = 8; y < 16; ++y)
        for (int x = 8; x < 56; ++x) in.at(x, y) = std::uint8_t(4 * x);
    const io::Image out = pipeline::narrowed_input(in, 0.9, 8);
    REQUIRE(out.width == 64);  // round(57.6) = 58, padded to 64
    REQUIRE(out.height == 24);
    const io::Image want = io::resize(in, 58, 24, io::Resample::bicubic);
    for (int y = 0; y < 24; ++y)
        for (int x = 0; x < 64; ++x) CHECK(out.at(x, y) == (x < 58 ? want.at(x, y) : 255));
    CHECK(pipeline::narrowed_input(io::Image(8, 24, 1, 0), 0.5, 8).width == 8);  // at least one patch
}

TEST_CASE("parse: a title line in light letters on a dark bar reads as the same line in dark letters") {
    // the top of the sample page, and the same with its first line (title and authors, rows
    // 89-110, x 115-867) turned into light letters on a grey bar 9 px taller than it either side
    const io::Image top = sample_page_top();
    io::Image barred = top;
    for (int y = 80; y < 120; ++y)
        for (int x = 100; x < 900; ++x) barred.at(x, y) = std::uint8_t(60 + (255 - top.at(x, y)) * 190 / 255);
    const auto model = load_default_model();
    auto heading = [&](const io::Image& page) {
        std::string text;
        for (const auto& b : pipeline::EmbeddedPageParser(model).parse(page).blocks)
            if (b.y0 <= 100 && b.y1 >= 95) text += b.content;  // pixels of the page
        return text;
    };
    const std::string plain = heading(top);
    REQUIRE(words_of(plain).size() >= 5);
    CHECK(heading(barred) == plain);
}

TEST_CASE("parse: lines read with low confidence are read again, narrower, and each reading stays with its line") {
    // the top of the sample page (a title and paragraphs), every line read twice (reread_below 1)
    const io::Image top = sample_page_top();
    const auto model = load_default_model();
    auto parse = [&](double below, double width) {
        pipeline::EmbeddedParserOptions opt;
        opt.reread_below = below, opt.reread_width = width;
        std::string text;
        for (const auto& b : pipeline::EmbeddedPageParser(model, opt).parse(top).blocks) text += b.content + "\n";
        return text;
    };
    for (const double width : {0.0, 1.5, std::nan("")}) {
        pipeline::EmbeddedParserOptions bad;
        bad.reread_width = width;
        CHECK_THROWS_WITH(pipeline::EmbeddedPageParser(model, bad), doctest::Contains("reread_width must lie in (0, 1]"));
    }
    const std::string once = parse(-std::numeric_limits<double>::infinity(), 0.9);
    REQUIRE(once.size() > 200);
    // a second reading of the same input is no more confident than the first: nothing changes
    CHECK(parse(1.0, 1.0) == once);
    // narrower letters: on a clean page most words read the same, each in its own line's place
    const std::size_t same = words_in_order(once, parse(1.0, 0.9));
    MESSAGE(same, " of ", words_of(once).size(), " words the same and in the same order");
    CHECK(double(same) >= 0.85 * double(words_of(once).size()));
}

TEST_CASE("bytes_to_text: byte tokens to UTF-8, specials dropped, bad sequences replaced") {
    const std::vector<std::int32_t> ids{0x48, 0xC3, 0xA9, 258, 0x21, 0xFF};
    CHECK(pipeline::bytes_to_text(ids) == "H\xC3\xA9!\xEF\xBF\xBD");
}

}  // TEST_SUITE
