// Tests of GatedVlmModel (Model<Config> with GatedCrossAttention fusion) against PyTorch.
//
// tests/data/gated-tiny: a tiny random model of tools/train/model.py (int8 weights with scales, as
// the QAT export writes them) and the PyTorch outputs for four crops, made by
// `tools/train/reference.py --random tests/data/gated-tiny`. The shipped model (models/docvlm-small)
// is checked the same way against tests/data/docvlm-small/reference.safetensors.
#include "test_util.hpp"

#include <docvlm/io/safetensors.hpp>
#include <docvlm/model/model.hpp>
#include <docvlm/pipeline/embedded_parser.hpp>
#include <docvlm/pipeline/layout.hpp>
#include <docvlm/presets/docvlm_small.hpp>

#include <array>
#include <cmath>
#include <fstream>

using namespace docvlm;

namespace {

// The tiny config of reference.py --random, every size fixed at compile time.
template <WeightPolicy W>
using Tiny = presets::GatedVlmFamily<2, 64, 2, 128, 5, 2, 3, 64, 4, 2, 96, 400, 2, W>;
template <WeightPolicy W>
using TinyDynamic = presets::GatedVlmFamily<dynamic, dynamic, dynamic, dynamic, 5, 2, dynamic, dynamic, dynamic, dynamic, dynamic, dynamic,
                                            2, W>;

io::Image crop_of(const io::Checkpoint& ref, int i) {
    const std::string name = "crop" + std::to_string(i);
    const auto& info = ref.info(name);
    io::Image img(int(info.shape[1]), int(info.shape[0]), 1);
    const auto bytes = ref.bytes(name);
    std::copy(bytes.begin(), bytes.end(), reinterpret_cast<std::byte*>(img.pixels.data()));
    return img;
}

std::vector<std::int32_t> tokens_of(const io::Checkpoint& ref, const std::string& name) {
    const auto a = ref.to_f32(name);
    return std::vector<std::int32_t>(a.begin(), a.end());
}

double rel_err(const float* got, const Array<float>& want) {
    double e = 0, s = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        e = test::worse(e, std::fabs(double(got[i]) - want.data()[i]));
        s = std::max(s, std::fabs(double(want.data()[i])));
    }
    return e / s;
}

// The task of reference crop i (reference.py stores its task token; references made before the
// table task hold only text crops, 24 pixels high, and formula crops, 48 high). A table crop of a
// model with a table splitter but no table task: "table".
std::string task_of(const io::Checkpoint& ref, const GatedVlmDims& d, int i) {
    if (!ref.contains("task" + std::to_string(i))) return crop_of(ref, i).height == 48 ? "formula" : "text";
    const auto id = std::int32_t(ref.to_f32("task" + std::to_string(i))(0));
    for (const auto& [name, token] : d.task_tokens)
        if (token == id) return name;
    if (d.split.present && ref.contains("split_cells" + std::to_string(i))) return "table";
    FAIL("reference crop ", i, " has an unknown task token ", id);
    return "";
}

// The greedy length bound reference.py used: --max-new, or the whole context for tables.
GenerationOptions gen_for(const io::Checkpoint& ref, const GatedVlmDims& d, std::string_view task) {
    GenerationOptions gen;
    gen.max_new_tokens = task == "table" ? d.max_tokens - 2 : std::size_t(ref.to_f32("max_new")(0));
    return gen;
}

// F32: vision tokens and teacher-forced logits within 1e-5 of PyTorch (relative to the tensor's
// largest magnitude), greedy tokens identical.
// Sanitizer builds are unoptimised and slow: they check a few crops, release builds all of them.
#if defined(__SANITIZE_ADDRESS__)
constexpr int max_crops = 6;
#else
constexpr int max_crops = 1 << 20;
#endif

int count_crops(const io::Checkpoint& ref) {
    int n = 0;
    while (n < max_crops && ref.contains("crop" + std::to_string(n))) ++n;
    return n;
}

// The crops a model test checks: count_crops's, and in sanitizer builds also the first table crop
// for the splitter (those come after the text and formula crops).
std::vector<int> crops_to_check(const io::Checkpoint& ref) {
    std::vector<int> at;
    for (int i = 0; ref.contains("crop" + std::to_string(i)); ++i)
        if (i < max_crops || (at.size() == std::size_t(max_crops) && ref.contains("split_cells" + std::to_string(i)))) at.push_back(i);
    return at;
}

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

        std::vector<std::int32_t> seq{model.dims().task_token(task)};
        seq.insert(seq.end(), toks.begin(), toks.end());
        auto ctx = model.context();
        const auto logits = ctx.prefill(vis, seq, {}, true);
        const Array<float> want_logits = ref.to_f32("logits" + std::to_string(i));
        REQUIRE(logits.size() == want_logits.size());
        CHECK(rel_err(logits.data(), want_logits) <= 1e-5);
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

namespace {

// A synthetic page: "words" are dark boxes 14 px tall on lines 24 px apart.
struct PageDraw {
    io::Image img{1000, 1200, 1, 255};
    void box(int x0, int y0, int x1, int y1) {
        for (int y = y0; y < y1; ++y)
            for (int x = x0; x < x1; ++x) img.at(x, y) = 20;
    }
    // a line of words from x0 to x1 at y (word 40 px, gap 8 px)
    void line(int x0, int x1, int y) {
        for (int x = x0; x + 40 <= x1; x += 48) box(x, y, x + 40, y + 14);
    }
};

}  // namespace

TEST_SUITE("embedded") {

TEST_CASE("segmenter: two columns come out left column first, lines in order") {
    PageDraw p;
    for (int i = 0; i < 3; ++i) p.line(100, 900, 60 + 24 * i);  // full-width heading block
    for (int i = 0; i < 20; ++i) {
        p.line(100, 480, 200 + 24 * i);  // left column
        p.line(540, 900, 200 + 24 * i);  // right column, lines at the same heights
    }
    const auto lay = pipeline::segment_page(p.img);
    CHECK(lay.line_height == 14);
    REQUIRE(lay.regions.size() == 3);
    CHECK(lay.regions[0].lines.size() == 3);
    CHECK(lay.regions[0].block.x1 > 800);
    CHECK(lay.regions[1].block.x1 < 500);   // left column
    CHECK(lay.regions[2].block.x0 > 500);   // then right column
    CHECK(lay.regions[1].lines.size() == 20);
    CHECK(lay.regions[2].lines.size() == 20);
    for (const auto& r : lay.regions)
        for (std::size_t i = 1; i < r.lines.size(); ++i) CHECK(r.lines[i].y0 > r.lines[i - 1].y0);
}

TEST_CASE("segmenter: a centred page number under two columns does not merge them") {
    PageDraw p;
    for (int i = 0; i < 30; ++i) {
        p.line(100, 480, 100 + 24 * i);
        p.line(540, 900, 100 + 24 * i);
    }
    p.box(500, 100 + 24 * 30, 516, 100 + 24 * 30 + 14);  // page number in the gutter, one line below
    const auto lay = pipeline::segment_page(p.img);
    REQUIRE(lay.regions.size() >= 2);
    CHECK(lay.regions[0].block.x1 < 520);  // the left column first, on its own
    CHECK(lay.regions[0].lines.size() >= 30);
    bool right_column = false;
    for (const auto& r : lay.regions) right_column = right_column || (r.block.x0 >= 516 && r.lines.size() >= 30);
    CHECK(right_column);
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines) CHECK((l.x1 < 520 || l.x0 > 490));  // no line reads across the gutter
}

TEST_CASE("segmenter: crops fit the recogniser, cut at word gaps; rules are dropped; a grid is a table") {
    PageDraw p;
    p.line(50, 950, 100);                       // a long line: 900 px at 14 px height → several crops
    p.box(50, 140, 950, 142);                   // a rule
    for (int r = 0; r < 5; ++r)                 // a table: 3 columns far apart
        for (int c = 0; c < 3; ++c) p.box(100 + 300 * c, 180 + 24 * r, 180 + 300 * c, 194 + 24 * r);
    pipeline::LayoutOptions opt;
    const auto lay = pipeline::segment_page(p.img, opt);
    REQUIRE(lay.regions.size() >= 2);
    const auto& first = lay.regions[0];
    REQUIRE(first.lines.size() == 1);
    const auto& chunks = first.lines[0].chunks;
    CHECK(chunks.size() >= 2);
    for (const auto& c : chunks) {
        const double scaled = double(c.x1 - c.x0 + 2) * opt.chunk_height / double(c.y1 - c.y0 + 2);
        CHECK(scaled <= opt.max_chunk_width);
        CHECK((c.x0 - 50) % 48 == 0);  // every crop starts at a word
    }
    const auto& table = lay.regions.back();
    CHECK(table.block.type == "table");
    CHECK(table.lines.size() == 5);
    CHECK(table.columns.size() == 3);
    std::vector<std::vector<std::string>> texts(5, std::vector<std::string>{"a", "b&", "c"});
    const std::string html = pipeline::region_content(table, texts);
    CHECK(html.rfind("<table><tr><td>a</td><td>b&amp;</td><td>c</td></tr>", 0) == 0);
    CHECK(pipeline::segment_page(io::Image(50, 50, 1, 255)).regions.empty());
}

TEST_CASE("grid_table_html: rows from overlapping lines, columns at gaps, header spans, wrapped cells joined") {
    // columns at x 100-180, 300-380, 500-600; lines 14 px high, rows 16 px apart; the third
    // column of the third row wraps onto a second line 3 px below (nothing in the first column)
    auto line = [](int y, std::vector<std::array<int, 2>> xs) {
        pipeline::TextLine l{xs.front()[0], y, xs.back()[1], y + 14, {}, int(xs.size())};
        for (std::size_t i = 0; i < xs.size(); ++i) l.chunks.push_back({xs[i][0], y, xs[i][1], y + 14, int(i)});
        return l;
    };
    const std::vector<pipeline::TextLine> lines = {
        line(100, {{100, 380}, {500, 560}}),  // "Item" over the first two columns
        line(130, {{100, 160}, {300, 350}, {500, 590}}),
        line(160, {{100, 170}, {300, 370}, {500, 600}}),
        line(177, {{500, 580}}),
        line(207, {{110, 150}, {300, 330}, {540, 600}}),
    };
    const std::vector<std::vector<std::string>> texts = {
        {"Item", "Price"}, {"a0", "b0", "c0"}, {"a1", "b1", "first half"}, {"second <half>"}, {"a2", "b2", "c2"}};
    CHECK(pipeline::grid_table_html(lines, texts) ==
          "<table><tr><td colspan=\"2\">Item</td><td>Price</td></tr><tr><td>a0</td><td>b0</td><td>c0</td></tr>"
          "<tr><td>a1</td><td>b1</td><td>first half second &lt;half&gt;</td></tr><tr><td>a2</td><td>b2</td><td>c2</td></tr></table>");
    // evenly spaced lines are rows of their own, even with the first column empty
    std::vector<pipeline::TextLine> even = lines;
    even[3] = line(190, {{500, 580}});
    even[4] = line(220, {{110, 150}, {300, 330}, {540, 600}});
    CHECK(pipeline::grid_table_html(even, texts).find("<tr><td></td><td></td><td>second &lt;half&gt;</td></tr>") != std::string::npos);
    CHECK(pipeline::grid_table_html({}, {}).empty());
    CHECK_THROWS_AS(pipeline::grid_table_html(lines, {{"x"}}), Error);
    // a cell centred on its row: its three lines 3 px apart, the row's other cells beside the middle one
    const std::vector<pipeline::TextLine> centred = {
        line(100, {{100, 160}, {300, 350}, {500, 590}}),
        line(130, {{300, 370}}),
        line(147, {{100, 170}, {300, 370}, {500, 600}}),
        line(164, {{300, 360}}),
        line(194, {{110, 150}, {300, 330}, {540, 600}}),
    };
    const std::vector<std::vector<std::string>> ct = {{"a0", "b0", "c0"}, {"top"}, {"a1", "middle", "c1"}, {"bottom"}, {"a2", "b2", "c2"}};
    CHECK(pipeline::grid_table_html(centred, ct) ==
          "<table><tr><td>a0</td><td>b0</td><td>c0</td></tr><tr><td>a1</td><td>top middle bottom</td><td>c1</td></tr>"
          "<tr><td>a2</td><td>b2</td><td>c2</td></tr></table>");

    // rules: a vertical rule cuts where the white gap alone (3 px) is too narrow; horizontal rules
    // under most lines make the lines between two rules one row, whatever the first column holds
    const std::vector<pipeline::TextLine> ruled = {
        line(100, {{100, 200}, {203, 280}}), line(117, {{100, 180}}),  // row A: two lines
        line(140, {{100, 200}, {203, 280}}), line(163, {{100, 200}, {203, 280}}), line(186, {{100, 200}, {203, 280}}),
    };
    const std::vector<std::vector<std::string>> rt = {{"a", "b"}, {"a2"}, {"c", "d"}, {"e", "f"}, {"g", "h"}};
    const std::vector<pipeline::Rule> rules = {{201, 95, 202, 205}, {95, 135, 285, 136}, {95, 158, 285, 159}, {95, 181, 285, 182}};
    CHECK(pipeline::grid_table_html(ruled, rt, rules) ==
          "<table><tr><td>a a2</td><td>b</td></tr><tr><td>c</td><td>d</td></tr><tr><td>e</td><td>f</td></tr>"
          "<tr><td>g</td><td>h</td></tr></table>");
    CHECK(pipeline::grid_table_html(ruled, rt).find("<td>a2</td>") != std::string::npos);  // without rules: one column

    // a long first cell cut in two pieces (same cell index, 12 px apart) to fit the recogniser: one
    // item, so the column cut goes through the white beside it (392-400), not between the pieces
    std::vector<pipeline::TextLine> pieces;
    std::vector<std::vector<std::string>> pt;
    for (int r = 0; r < 5; ++r) {
        pieces.push_back(line(100 + 20 * r, {{100, 200}, {400, 460}, {600, 660}}));
        pt.push_back({"a" + std::to_string(r), "b" + std::to_string(r), "c" + std::to_string(r)});
    }
    pieces[2].chunks = {{100, 140, 250, 154, 0}, {262, 140, 392, 154, 0}, {400, 140, 460, 154, 1}, {600, 140, 660, 154, 2}};
    pt[2] = {"a long cell", "cut in two", "b2", "c2"};
    const std::string want = "<tr><td>a long cell cut in two</td><td>b2</td><td>c2</td></tr>";
    std::string html = pipeline::grid_table_html(pieces, pt);
    CHECK(html.find(want) != std::string::npos);
    CHECK(html.find("colspan") == std::string::npos);
    // two cells 3 px apart over that white run: the cut goes through its widest uncovered part
    // (380-400), not the first (250-253)
    pieces[2].chunks = {{100, 140, 250, 154, 0}, {253, 140, 380, 154, 1}, {400, 140, 460, 154, 2}, {600, 140, 660, 154, 3}};
    html = pipeline::grid_table_html(pieces, pt);
    CHECK(html.find(want) != std::string::npos);
    CHECK(html.find("colspan") == std::string::npos);

    // ruled columns (rules at x 150 and 200): a white gap inside one ruled cell of one row
    // ("t" and "/ms") is no column; a gap that parts two rows' text between the same rules is
    std::vector<pipeline::TextLine> grid = {line(100, {{100, 140}, {210, 260}}), line(130, {{100, 140}, {155, 161}, {173, 197}, {210, 260}})};
    const std::vector<pipeline::Rule> vr = {{149, 95, 151, 150}, {199, 95, 201, 150}};
    CHECK(pipeline::grid_table_html(grid, {{"a", "c"}, {"b", "t", "/ms", "d"}}, vr) ==
          "<table><tr><td>a</td><td></td><td>c</td></tr><tr><td>b</td><td>t /ms</td><td>d</td></tr></table>");
    // a row label centred beside two rows (a row group) spans them; a row of its own a pitch from
    // each neighbour does not
    const std::vector<std::vector<std::string>> gt = {{"h0", "h1", "h2"}, {"a1", "a2"}, {"g"}, {"b1", "b2"}, {"c0", "c1", "c2"}};
    auto rows_at = [&](int label_y, int after) {
        return std::vector<pipeline::TextLine>{line(100, {{100, 140}, {300, 340}, {500, 540}}), line(130, {{300, 340}, {500, 540}}),
                                               line(label_y, {{100, 140}}), line(after, {{300, 340}, {500, 540}}),
                                               line(after + 30, {{100, 140}, {300, 340}, {500, 540}})};
    };
    CHECK(pipeline::grid_table_html(rows_at(145, 160), gt) ==
          "<table><tr><td>h0</td><td>h1</td><td>h2</td></tr><tr><td rowspan=\"2\">g</td><td>a1</td><td>a2</td></tr>"
          "<tr><td>b1</td><td>b2</td></tr><tr><td>c0</td><td>c1</td><td>c2</td></tr></table>");
    CHECK(pipeline::grid_table_html(rows_at(160, 190), gt) ==
          "<table><tr><td>h0</td><td>h1</td><td>h2</td></tr><tr><td></td><td>a1</td><td>a2</td></tr><tr><td>g</td><td></td><td></td></tr>"
          "<tr><td></td><td>b1</td><td>b2</td></tr><tr><td>c0</td><td>c1</td><td>c2</td></tr></table>");

    // two labels in a row, each centred between its neighbours: the second would span a row the
    // first already spans, so it stays a row of its own (one rowspan, no overlapping cells)
    std::vector<pipeline::TextLine> two = {line(100, {{100, 140}, {300, 340}, {500, 540}}), line(130, {{300, 340}, {500, 540}}),
                                           line(145, {{100, 140}}), line(160, {{300, 340}, {500, 540}}), line(175, {{100, 140}}),
                                           line(190, {{300, 340}, {500, 540}})};
    std::vector<std::vector<std::string>> tt = {{"h0", "h1", "h2"}, {"a1", "a2"}, {"L1"}, {"b1", "b2"}, {"L2"}, {"c1", "c2"}};
    for (int r = 0; r < 5; ++r) {
        two.push_back(line(220 + 30 * r, {{100, 140}, {300, 340}, {500, 540}}));
        tt.push_back({"x", "y", "z"});
    }
    const std::string th = pipeline::grid_table_html(two, tt);
    CHECK(th.find("<td rowspan=\"2\">L1</td>") != std::string::npos);
    CHECK(th.find("<td>L2</td>") != std::string::npos);
    CHECK(th.find("rowspan") == th.rfind("rowspan"));

    grid[0] = line(100, {{100, 140}, {155, 161}, {173, 197}, {210, 260}});
    CHECK(pipeline::grid_table_html(grid, {{"a", "x", "y", "c"}, {"b", "t", "/ms", "d"}}, vr) ==
          "<table><tr><td>a</td><td>x</td><td>y</td><td>c</td></tr><tr><td>b</td><td>t</td><td>/ms</td><td>d</td></tr></table>");
}

TEST_CASE("segmenter: horizontal rules touching a grid's rows are erased and reported; a lone rule stays") {
    PageDraw p;
    for (int r = 0; r < 8; ++r) {
        p.line(110, 400, 100 + 15 * r);  // rows of text 14 px high, each between two rules it touches
        p.box(100, 99 + 15 * r, 420, 100 + 15 * r);
    }
    p.box(100, 99 + 15 * 8, 420, 100 + 15 * 8);
    pipeline::LayoutOptions opt;
    opt.erase_horizontal_rules = true;
    const auto lay = pipeline::segment_page(p.img, opt);
    std::size_t lines = 0;
    for (const auto& r : lay.regions) lines += r.lines.size();
    CHECK(lines == 8);
    std::size_t horizontal = 0;
    for (const auto& r : lay.rules) horizontal += !r.vertical() && r.x1 - r.x0 >= 300;
    CHECK(horizontal == 9);
    std::size_t by_default = 0;  // by default too: each rule has a twin of the same extent
    for (const auto& r : pipeline::segment_page(p.img).regions) by_default += r.lines.size();
    CHECK(by_default == 8);
    // one long rule touching the lines above and below (a fraction bar) joins them by default,
    // and goes on request
    PageDraw f;
    f.line(110, 400, 100);
    f.box(100, 114, 420, 116);
    f.line(110, 400, 116);
    std::size_t joined = 0, cut = 0;
    for (const auto& r : pipeline::segment_page(f.img).regions) joined += r.lines.size();
    for (const auto& r : pipeline::segment_page(f.img, opt).regions) cut += r.lines.size();
    CHECK(joined == 1);
    CHECK(cut == 2);
}

TEST_CASE("segmenter: a table ruled with vertical lines comes out row by row, its rules as column edges") {
    PageDraw p;
    // 12 rows of two cells 10 px apart (narrower than a cell gap) with a double rule between them,
    // framed by single rules; the vertical rules join every row into one ink band unless erased
    for (int r = 0; r < 12; ++r) {
        p.line(232, 472, 200 + 24 * r);  // words end at 464
        p.line(474, 700, 200 + 24 * r);
    }
    p.box(200, 190, 202, 200 + 24 * 12);  // left border
    p.box(466, 190, 467, 200 + 24 * 12);  // double rule
    p.box(469, 190, 470, 200 + 24 * 12);
    p.box(720, 190, 722, 200 + 24 * 12);  // right border
    p.box(200, 190, 722, 191);            // top and bottom rules
    p.box(200, 200 + 24 * 12 - 1, 722, 200 + 24 * 12);
    p.box(600, 560, 640, 660);            // a filled bar (a figure) is not a rule
    const auto lay = pipeline::segment_page(p.img);
    CHECK(lay.line_height == 14);
    REQUIRE(!lay.regions.empty());
    const auto& table = lay.regions[0];
    CHECK(table.block.type == "table");
    CHECK(table.lines.size() == 12);
    REQUIRE(table.columns.size() == 2);
    CHECK(table.columns[1] > 464);
    CHECK(table.columns[1] <= 474);
    for (const auto& l : table.lines) {
        CHECK(l.cells == 2);
        for (const auto& c : l.chunks) CHECK((c.x1 <= 466 || c.x0 >= 470));  // no crop holds the rule
    }
    bool bar = false;
    for (const auto& r : lay.regions) bar = bar || (r.block.x0 <= 600 && r.block.x1 >= 640 && r.block.y0 >= 550);
    CHECK(bar);
}

TEST_CASE("grid table crop: two ruled rows of seven columns, the rules found although they outnumber the plain text") {
    // A crop as `docvlm table` reads it: 700 x 90, a full grid (rules every 100 px, rows 42 px
    // tall) with one 40 px word per cell. The unit L is measured in 10 slices of 70 px, 8 of them
    // crossed by a rule: rule-joined bands (the whole row) must not outvote the text's height,
    // else vertical rules (88 px) fall short of 4 L and every row is read as one line.
    PageDraw p;
    p.img = io::Image{700, 90, 1, 255};
    for (int x = 2; x < 700; x += 100) p.box(x, 2, x + 2, 88);
    p.box(2, 2, 700, 4), p.box(2, 44, 700, 46), p.box(2, 86, 700, 88);
    for (int c = 0; c < 7; ++c)
        for (int r = 0; r < 2; ++r) p.box(30 + 100 * c, 16 + 42 * r, 70 + 100 * c, 30 + 42 * r);
    auto check = [&] {
        std::vector<pipeline::Rule> rules;
        const auto region = pipeline::grid_table_region(p.img, {0, 0, 700, 90}, {}, rules);
        CHECK(std::count_if(rules.begin(), rules.end(), [](const pipeline::Rule& r) { return r.vertical(); }) == 7);
        REQUIRE(region.lines.size() == 2);
        for (const auto& l : region.lines) {
            CHECK(l.cells == 7);
            REQUIRE(l.chunks.size() == 7);
            for (std::size_t c = 0; c < 7; ++c) CHECK((l.chunks[c].x0 >= 30 + 100 * int(c) && l.chunks[c].x1 <= 70 + 100 * int(c)));
        }
    };
    check();
    // anti-aliased rules: a dark fringe column on each side in runs of 3 px (too short to be a
    // rule itself) must not become cells of their own nor widen the text's crops
    for (int x = 2; x < 700; x += 100)
        for (int y = 4; y < 86; ++y)
            if (y / 3 % 2 == 0) {
                if (x > 0) p.img.at(x - 1, y) = 90;
                if (x + 2 < 700) p.img.at(x + 2, y) = 90;
            }
    check();
}

TEST_CASE("segmenter: table rows far apart are one table; numbered equations and paragraphs are not") {
    PageDraw p;
    for (int i = 0; i < 3; ++i) p.line(100, 900, 60 + 24 * i);  // a paragraph
    // five rows of three cells, 24 px of white between rows (more than a line: blocks of their own)
    for (int r = 0; r < 5; ++r) {
        p.line(100, 250, 180 + 38 * r);
        p.line(400, 550, 180 + 38 * r);
        p.line(700, 850, 180 + 38 * r);
    }
    for (int i = 0; i < 3; ++i) p.line(100, 900, 420 + 24 * i);  // a paragraph
    // three display equations, each numbered at the column's right edge, as far apart
    for (int r = 0; r < 3; ++r) {
        p.line(350, 650, 540 + 38 * r);
        p.box(860, 540 + 38 * r, 900, 554 + 38 * r);
    }
    const auto lay = pipeline::segment_page(p.img);
    std::vector<std::string> kinds;
    std::vector<std::size_t> lines;
    for (const auto& r : lay.regions) kinds.push_back(r.block.type), lines.push_back(r.lines.size());
    REQUIRE(kinds.size() == 6);
    CHECK(kinds[0] == "text");
    CHECK(kinds[1] == "table");
    CHECK(lines[1] == 5);
    CHECK(lay.regions[1].columns.size() == 3);
    CHECK(kinds[2] == "text");
    for (std::size_t i = 3; i < 6; ++i) {  // each equation a block of its own
        CHECK(kinds[i] != "table");
        CHECK(lines[i] == 1);
    }
    // rows of a label at the text's left edge and a short number at the column's right edge look
    // like numbered equations cell by cell, but start at one left edge: a table
    PageDraw n;
    for (int i = 0; i < 3; ++i) n.line(100, 900, 60 + 24 * i);  // a paragraph
    for (int r = 0; r < 4; ++r) {
        n.line(100, 260 + 20 * r, 180 + 38 * r);
        n.box(850, 180 + 38 * r, 900, 194 + 38 * r);
    }
    const auto nl = pipeline::segment_page(n.img);
    REQUIRE(nl.regions.size() == 2);
    CHECK(nl.regions[1].block.type == "table");
    CHECK(nl.regions[1].lines.size() == 4);
    CHECK(nl.regions[1].columns.size() == 2);
    // rows whose middle cell wraps over three lines (a block of one line of cells and two of one
    // cell each) join the rows around them
    PageDraw w;
    int y = 100;
    for (int r = 0; r < 4; ++r) {
        w.line(100, 250, y);
        w.line(400, 550, y);
        w.line(700, 850, y);
        if (r == 1)
            for (int k = 1; k <= 2; ++k) w.line(400, 550, y + 24 * k);
        y += r == 1 ? 24 * 2 + 38 : 38;
    }
    const auto wl = pipeline::segment_page(w.img);
    REQUIRE(wl.regions.size() == 1);
    CHECK(wl.regions[0].block.type == "table");
    CHECK(wl.regions[0].lines.size() == 6);
}

TEST_CASE("segmenter: a wide gap between a table's columns is not a page gutter; a two-column page's is") {
    PageDraw p;
    // eight rows: a ragged first cell, then two short cells far to the right (lines of several cells)
    for (int r = 0; r < 8; ++r) {
        const int y = 100 + 24 * r;
        p.line(100, r % 3 == 0 ? 140 : r % 3 == 1 ? 220 : 380, y);
        p.line(480, 520 + 48 * (r % 2), y);
        p.line(700, r % 4 == 0 ? 884 : 740, y);
    }
    const auto lay = pipeline::segment_page(p.img);
    REQUIRE(lay.regions.size() == 1);
    CHECK(lay.regions[0].block.type == "table");
    CHECK(lay.regions[0].lines.size() == 8);
    CHECK(lay.regions[0].columns.size() == 3);
    // the same gutter between two columns of full lines: two columns, left first
    PageDraw q;
    for (int r = 0; r < 8; ++r) {
        q.line(100, 380, 100 + 24 * r);
        q.line(560, 880, 100 + 24 * r);
    }
    const auto cols = pipeline::segment_page(q.img);
    REQUIRE(cols.regions.size() == 2);
    CHECK(cols.regions[0].block.x1 < 400);
    CHECK(cols.regions[1].block.x0 > 500);
    CHECK(cols.regions[0].block.type == "text");
}

TEST_CASE("segmenter: a vertical rule crossing the white between blocks makes them one") {
    PageDraw p;
    // a two-column grid whose rows are 30 px apart; the middle rule runs through all of them
    for (int r = 0; r < 4; ++r) {
        p.line(100, 380, 100 + 44 * r);
        p.line(420, 700, 100 + 44 * r);
    }
    p.box(399, 90, 401, 90 + 44 * 4);
    const auto lay = pipeline::segment_page(p.img);
    REQUIRE(lay.regions.size() == 1);
    CHECK(lay.regions[0].lines.size() == 4);
    CHECK(lay.regions[0].block.type == "table");
}

TEST_CASE("segmenter: a grid of two rows (vertical rules inside) is a table; two plain lines are not") {
    PageDraw p;
    for (int i = 0; i < 3; ++i) p.line(100, 900, 60 + 24 * i);  // a paragraph
    // two rows of three cells in a full grid: rules at x 100, 300, 500, 700 and y 200, 240, 280
    for (int x : {100, 300, 500, 700}) p.box(x, 200, x + 2, 282);
    for (int y : {200, 240, 280}) p.box(100, y, 702, y + 2);
    for (int r = 0; r < 2; ++r)
        for (int c = 0; c < 3; ++c) p.line(120 + 200 * c, 250 + 200 * c, 213 + 40 * r);
    for (int i = 0; i < 2; ++i) p.line(100, 900, 340 + 24 * i);  // two lines of text
    const auto lay = pipeline::segment_page(p.img);
    int tables = 0;
    for (const auto& r : lay.regions) {
        if (r.block.type != "table") continue;
        ++tables;
        CHECK(r.lines.size() == 2);
        CHECK(r.block.y0 >= 200);
        CHECK(r.block.y1 <= 282);
    }
    CHECK(tables == 1);
}

TEST_CASE("parse: a ruled table on a page comes out as one HTML grid with its spanning header") {
    PageDraw p;
    for (int i = 0; i < 3; ++i) p.line(100, 900, 60 + 24 * i);  // a paragraph
    // a header whose second cell spans two columns, then four rows of three cells; rules of the
    // same length above, between and below the rows (touching none), a vertical rule between
    // the first two columns
    const int top = 170, pitch = 40;
    p.line(100, 250, top + 12);
    p.line(400, 850, top + 12);
    for (int r = 1; r <= 4; ++r) {
        p.line(100, 250, top + 12 + pitch * r);
        p.line(400, 550, top + 12 + pitch * r);
        p.line(700, 850, top + 12 + pitch * r);
    }
    for (int r = 0; r <= 5; ++r) p.box(90, top + pitch * r, 870, top + pitch * r + 2);
    p.box(320, top, 322, top + pitch * 5);
    for (int i = 0; i < 3; ++i) p.line(100, 900, top + pitch * 5 + 40 + 24 * i);  // a paragraph
    const auto model = load_default_model();
    REQUIRE(model.dims().split.present);
    // the grid reader (text positions and rules): the whole structure; the shipped model's
    // splitter, which learnt real text, not these solid boxes: the five rows between the rules
    for (const bool splitter : {false, true}) {
        CAPTURE(splitter);
        pipeline::EmbeddedParserOptions opt;
        opt.table_splitter = splitter;
        const pipeline::Document doc = pipeline::EmbeddedPageParser(model, opt).parse(p.img);
        int tables = 0;
        for (const auto& b : doc.blocks) {
            if (b.type != "table") continue;
            ++tables;
            std::size_t rows = 0, spans = 0, cells = 0;
            for (std::size_t at = 0; (at = b.content.find("<tr>", at)) != std::string::npos; ++at) ++rows;
            for (std::size_t at = 0; (at = b.content.find("<td", at)) != std::string::npos; ++at) ++cells;
            for (std::size_t at = 0; (at = b.content.find("colspan=\"2\"", at)) != std::string::npos; ++at) ++spans;
            CHECK(rows == 5);
            if (splitter) continue;
            CHECK(cells == 14);
            CHECK(spans == 1);
        }
        CHECK(tables == 1);
        CHECK(doc.blocks.front().type == "text");
        CHECK(doc.blocks.back().type == "text");
    }
}

TEST_CASE("segmenter: a framed box is one column even with a wide gap inside; its round-cornered frame is no text") {
    PageDraw p;
    for (int i = 0; i < 4; ++i) p.line(100, 900, 60 + 24 * i);  // text above
    // the frame: rules at top and bottom whose ends bend down/up over 8 px (rounded corners)
    const int top = 200, bottom = 200 + 24 * 10 + 16;
    p.box(150, top, 850, top + 2);
    p.box(150, bottom - 2, 850, bottom);
    p.box(150, top, 152, bottom);   // left edge
    p.box(848, top, 850, bottom);   // right edge
    for (int i = 0; i < 10; ++i) {  // rows with a 200 px gap in the middle: not two columns
        p.line(200, 400, top + 16 + 24 * i);
        p.line(600, 800, top + 16 + 24 * i);
    }
    for (int i = 0; i < 4; ++i) p.line(100, 900, bottom + 40 + 24 * i);  // text below
    // cut the corners round: remove the frame's corner pixels, leave a short arc of stubs
    for (int y = top; y < top + 6; ++y)
        for (int x = 150; x < 156; ++x) p.img.at(x, y) = 255;
    p.box(153, top + 2, 155, top + 4);
    const auto lay = pipeline::segment_page(p.img);
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines) {
            CHECK(l.y1 - l.y0 <= 20);                              // no frame rule read as a line
            if (l.y0 > top && l.y1 < bottom) CHECK(l.x1 - l.x0 > 500);  // each row read across the gap
        }
    int rows = 0;
    for (const auto& r : lay.regions)
        for (const auto& l : r.lines) rows += l.y0 > top && l.y1 < bottom;
    CHECK(rows == 10);
}

TEST_CASE("looks_like_math: relations and operators with few words") {
    CHECK(pipeline::looks_like_math("E = mc2"));
    CHECK(pipeline::looks_like_math("\u2211 i=1 n x i \u2264 1"));
    CHECK(pipeline::looks_like_math("f(x) = sin x + cos y"));
    CHECK_FALSE(pipeline::looks_like_math("a + b"));  // no relation or big operator
    CHECK_FALSE(pipeline::looks_like_math("The value x = 3 was chosen because it is small"));
}

TEST_CASE("ends_in_loop: a repeated tail of 1-32 tokens, 4 times or more, over 16 or more tokens") {
    auto ids = [](std::string_view s) { return std::vector<std::int32_t>(s.begin(), s.end()); };
    CHECK(pipeline::ends_in_loop(ids("x = \\alpha 2 - \\alpha 2 - \\alpha 2 - \\alpha 2 - \\alpha 2 - ")));  // period 11, 5 times
    CHECK(pipeline::ends_in_loop(ids("a b a b a b a b a b a b a b ")));                                   // period 2
    CHECK(pipeline::ends_in_loop(ids("x^{2}}}}}}}}}}}}}}}}}")));                                            // 17 braces
    CHECK(pipeline::ends_in_loop(ids("A = α 2 − α 2 − α 2 − α 2 − ")));                                    // 9 bytes, 4 times
    CHECK_FALSE(pipeline::ends_in_loop(ids("\\frac{a}{b^{c^{d}}}}")));                                         // a few braces
    CHECK_FALSE(pipeline::ends_in_loop(ids("x_1 + x_2 + \\cdots + x_n")));
    CHECK_FALSE(pipeline::ends_in_loop(ids("")));
    CHECK_FALSE(pipeline::ends_in_loop(ids("1 . . . . 2")));
    const auto looped = ids("A = α 2 − α 2 − α 2 − α 2 − α 2");
    CHECK(pipeline::loop_period(looped) == 9);
    CHECK(pipeline::without_loop(looped) == ids("A = α 2 −").size());  // the loop's first turn kept
    CHECK(pipeline::without_loop(ids("x_1 + x_2")) == 9);
}

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

TEST_CASE("bytes_to_text: byte tokens to UTF-8, specials dropped, bad sequences replaced") {
    const std::vector<std::int32_t> ids{0x48, 0xC3, 0xA9, 258, 0x21, 0xFF};
    CHECK(pipeline::bytes_to_text(ids) == "H\xC3\xA9!\xEF\xBF\xBD");
}

}  // TEST_SUITE
