// Tests of docvlm/io/safetensors.hpp: the real golden checkpoint, round trips through the writer,
// sharded checkpoints, and every kind of hostile file the reader must refuse with a clear error.
#include "test_util.hpp"

#include <docvlm/io/safetensors.hpp>

#include <xtensor/xnpy.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

using namespace docvlm;
using docvlm::io::Checkpoint;
using docvlm::io::SafeTensors;
using docvlm::io::SafeTensorsWriter;

namespace {

// A safetensors byte string with the given header text and `data_bytes` bytes of data.
std::vector<std::byte> raw_file(const std::string& header, std::size_t data_bytes, std::uint64_t len_field = ~0ull) {
    std::vector<std::byte> out(8 + header.size() + data_bytes, std::byte{0});
    const std::uint64_t len = len_field == ~0ull ? header.size() : len_field;
    for (int i = 0; i < 8; ++i) out[i] = std::byte((len >> (8 * i)) & 0xff);
    std::memcpy(out.data() + 8, header.data(), header.size());
    return out;
}

SafeTensors parse(const std::vector<std::byte>& b) { return SafeTensors::parse(b, "hostile.safetensors"); }

void write_bytes(const std::string& path, const std::vector<std::byte>& b) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

}  // namespace

TEST_SUITE("safetensors") {

TEST_CASE("reads the golden Qwen2-VL tiny checkpoint written by Hugging Face's generator") {
    const std::string dir = test::data("golden/qwen2vl-tiny-a");
    Checkpoint ck = Checkpoint::open(dir);
    const auto names = ck.names();
    CHECK(names.size() == 57);  // patch embed + 2 vision blocks x 12 + merger 6 + 2 decoder layers x 12 + embed + norm
    CHECK(ck.contains("model.embed_tokens.weight"));
    CHECK_FALSE(ck.contains("lm_head.weight"));  // tie_word_embeddings = true
    const auto& pe = ck.info("visual.patch_embed.proj.weight");
    CHECK(pe.dtype == DType::f32);
    CHECK(pe.shape == std::vector<std::size_t>{64, 3, 2, 14, 14});
    CHECK(ck.info("model.embed_tokens.weight").shape == std::vector<std::size_t>{1000, 64});
    CHECK(ck.info("visual.merger.mlp.0.weight").shape == std::vector<std::size_t>{256, 256});

    // Outside check that the bytes are read right: Conv3d patch embedding == pixel_values @ W^T,
    // compared with the output Hugging Face computed (vision_patch_embed.npy).
    auto w = ck.view<float, 5>("visual.patch_embed.proj.weight");
    auto pixels = xt::load_npy<float>(dir + "/pixel_values.npy");
    auto expected = xt::load_npy<float>(dir + "/vision_patch_embed.npy");
    REQUIRE(pixels.shape()[1] == 1176);
    double worst = 0, scale = 0;
    for (std::size_t p = 0; p < pixels.shape()[0]; ++p)
        for (std::size_t o = 0; o < 64; ++o) {
            double acc = 0;
            for (std::size_t k = 0; k < 1176; ++k) acc += double(pixels(p, k)) * w.data()[o * 1176 + k];
            worst = test::worse(worst, std::fabs(acc - expected(p, o)));
            scale = std::max(scale, double(std::fabs(expected(p, o))));
        }
    CHECK(worst <= 1e-4 * scale);

    Array<float> norm = ck.to_f32("model.norm.weight");
    CHECK(norm.shape()[0] == 64);
    CHECK(norm(0) == ck.view<float, 1>("model.norm.weight")(0));
}

TEST_CASE("writer and reader round-trip every dtype, metadata and alignment") {
    SafeTensorsWriter wr;
    const float f[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    const std::int8_t i8[5] = {-128, -1, 0, 1, 127};
    const bf16 b[2] = {f32_to_bf16(0.5f), f32_to_bf16(-3.0f)};
    const f16 h[3] = {f32_to_f16(1.0f), f32_to_f16(65504.0f), f32_to_f16(-0.25f)};
    const std::int64_t i64[2] = {-5, 1ll << 40};
    const std::uint8_t flags[3] = {1, 0, 1};
    wr.add("a.f32", {2, 3}, f);
    wr.add("b.i8", {5}, i8);
    wr.add("c.bf16", {1, 2}, b);
    wr.add("d.f16", {3}, h);
    wr.add("e.i64", {2}, i64);
    wr.add("f.bool", DType::boolean, {3}, std::as_bytes(std::span(flags)));
    wr.add("g.empty", DType::f32, {0, 4}, {});
    wr.set_metadata("format", "pt");
    CHECK_ERROR_HAS(wr.add("a.f32", {6}, f), "added twice");
    CHECK_ERROR_HAS(wr.add("x", DType::f32, {7}, std::as_bytes(std::span(f))), "'x'", "24 bytes");

    test::TempDir tmp;
    wr.write(tmp / "t.safetensors");
    SafeTensors st = SafeTensors::open(tmp / "t.safetensors");
    CHECK(st.tensors().size() == 7);
    CHECK(st.metadata().at("format") == "pt");
    auto a = st.view<float, 2>("a.f32");
    CHECK(a(1, 0) == 0.0f);
    CHECK(a(0, 2) == 3.5f);
    CHECK(st.view<std::int8_t, 1>("b.i8")(0) == -128);
    CHECK(st.to_f32("c.bf16")(0, 1) == -3.0f);
    CHECK(st.to_f32("d.f16")(1) == 65504.0f);
    CHECK(st.view<std::int64_t, 1>("e.i64")(1) == (1ll << 40));
    CHECK(st.to_f32("f.bool")(2) == 1.0f);
    CHECK(st.info("g.empty").numel() == 0);
    for (const auto& t : st.tensors())  // the writer keeps every tensor aligned to its element size
        CHECK(reinterpret_cast<std::uintptr_t>(st.bytes(t.name).data()) % dtype_size(t.dtype) == 0);
    CHECK_ERROR_HAS((st.view<float, 1>("a.f32")), "t.safetensors", "'a.f32'", "2 dimensions");
    CHECK_ERROR_HAS((st.view<bf16, 2>("a.f32")), "'a.f32'", "is F32, not BF16");
    CHECK_ERROR_HAS(st.info("nope"), "t.safetensors", "no tensor named 'nope'");
}

TEST_CASE("unaligned data is refused by view() and still readable by to_f32()") {
    // Header of odd length: the data section starts at an odd address inside the buffer.
    std::string hdr = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    if (hdr.size() % 2 == 0) hdr += ' ';
    auto bytes = raw_file(hdr, 8);
    const float vals[2] = {1.25f, -4.0f};
    std::memcpy(bytes.data() + 8 + hdr.size(), vals, 8);
    SafeTensors st = parse(bytes);
    CHECK_ERROR_HAS((st.view<float, 1>("w")), "'w'", "not aligned");
    CHECK(st.to_f32("w")(1) == -4.0f);
}

TEST_CASE("sharded checkpoints through model.safetensors.index.json") {
    test::TempDir tmp;
    const float x[2] = {1, 2}, y[3] = {3, 4, 5};
    SafeTensorsWriter s1, s2;
    s1.add("layer.0.w", {2}, x);
    s2.add("layer.1.w", {3}, y);
    s2.add("unlisted", {2}, x);
    s1.write(tmp / "model-00001-of-00002.safetensors");
    s2.write(tmp / "model-00002-of-00002.safetensors");
    std::ofstream(tmp / "model.safetensors.index.json")
        << R"({"metadata":{"total_size":20},"weight_map":{"layer.0.w":"model-00001-of-00002.safetensors",)"
        << R"("layer.1.w":"model-00002-of-00002.safetensors"}})";
    Checkpoint ck = Checkpoint::open(tmp.path.string());
    CHECK(ck.shards().size() == 2);
    CHECK(ck.names() == std::vector<std::string>{"layer.0.w", "layer.1.w"});
    CHECK(ck.to_f32("layer.1.w")(2) == 5.0f);
    CHECK(ck.view<float, 1>("layer.0.w")(1) == 2.0f);
    CHECK_ERROR_HAS(ck.info("unlisted"), "no tensor named 'unlisted'");

    auto bad_index = [&](const std::string& text) {
        std::ofstream(tmp / "bad.index.json") << text;
        return Checkpoint::open(tmp / "bad.index.json");
    };
    CHECK_ERROR_HAS(bad_index(R"({"weight_map":{"a":"../etc/passwd"}})"), "bad.index.json", "not a file in the same directory");
    CHECK_ERROR_HAS(bad_index(R"({"weight_map":{"zzz":"model-00001-of-00002.safetensors"}})"), "'zzz'", "no such tensor");
    CHECK_ERROR_HAS(bad_index(R"({"weight_map":{"a":"missing.safetensors"}})"), "missing.safetensors", "cannot open");
    CHECK_ERROR_HAS(bad_index(R"({"weight_map": 3})"), "weight_map");
    CHECK_ERROR_HAS(bad_index("{nope"), "bad.index.json", "not valid JSON");
    CHECK_ERROR_HAS(Checkpoint::open(tmp / "no-such-dir"), "no-such-dir", "cannot open");
    test::TempDir empty;
    CHECK_ERROR_HAS(Checkpoint::open(empty.path.string()), "neither model.safetensors.index.json nor model.safetensors");
}

TEST_CASE("hostile headers are refused with an error naming the file, the tensor and the problem") {
    const std::string ok = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    CHECK_NOTHROW(parse(raw_file(ok, 8)));

    CHECK_ERROR_HAS(parse(std::vector<std::byte>(5)), "hostile.safetensors", "too short");
    CHECK_ERROR_HAS(parse(raw_file(ok, 8, 1000)), "hostile.safetensors", "header length 1000", "past the end");
    CHECK_ERROR_HAS(parse(raw_file(ok, 8, 200ull << 20)), "above the", "limit");
    CHECK_ERROR_HAS(parse(raw_file(ok, 8, ~0ull - 1)), "header length");
    {
        std::ifstream png(test::data("pil/rgb37x23.png"), std::ios::binary);
        std::vector<char> c((std::istreambuf_iterator<char>(png)), std::istreambuf_iterator<char>());
        std::vector<std::byte> b(c.size());
        std::memcpy(b.data(), c.data(), c.size());
        CHECK_ERROR_HAS(parse(b), "hostile.safetensors", "not a safetensors file");
    }
    CHECK_ERROR_HAS(parse(raw_file("{\"w\": [1,", 0)), "hostile.safetensors", "not valid JSON");
    CHECK_ERROR_HAS(parse(raw_file("[1,2]", 0)), "must be a JSON object");
    CHECK_ERROR_HAS(parse(raw_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                   R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)),
                    "'w'", "appears twice");
    CHECK_ERROR_HAS(parse(raw_file(R"({"w":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}})", 2)), "'w'", "unknown dtype 'F8'");
    CHECK_ERROR_HAS(parse(raw_file(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", 8)), "'w'", "dtype");
    CHECK_ERROR_HAS(parse(raw_file(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", 8)), "'w'", "shape");
    CHECK_ERROR_HAS(parse(raw_file(R"({"w":{"dtype":"F32","shape":[2]}})", 8)), "'w'", "data_offsets");
    CHECK_ERROR_HAS(parse(raw_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8)), "'w'", "non-negative");
    CHECK_ERROR_HAS(parse(raw_file(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8)), "'w'", "non-negative");
    CHECK_ERROR_HAS(parse(raw_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8)),
                    "'w'", "overflows");
    CHECK_ERROR_HAS(parse(raw_file(R"({"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}})", 8)),
                    "'w'", "overflows");
    CHECK_ERROR_HAS(parse(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4)), "'w'",
                    "run past the data section", "truncated");
    CHECK_ERROR_HAS(parse(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8)), "'w'", "end before");
    CHECK_ERROR_HAS(parse(raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8)), "'w'", "needs 12");
    CHECK_ERROR_HAS(parse(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8)), "'w'", "data_offsets");
    CHECK_ERROR_HAS(parse(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                   R"("v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12)),
                    "overlaps");
    CHECK_ERROR_HAS(parse(raw_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)), "'w'", "belong to no tensor");
    CHECK_ERROR_HAS(parse(raw_file(ok, 12)), "4 bytes after the last tensor");
    CHECK_ERROR_HAS(parse(raw_file(R"({"w":3})", 0)), "'w'", "must be an object");
    CHECK_ERROR_HAS(parse(raw_file(R"({"":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})", 4)), "empty name");
    CHECK_ERROR_HAS(parse(raw_file(R"({"__metadata__":{"a":1}})", 0)), "__metadata__");
    CHECK_ERROR_HAS(parse(raw_file(R"({"__metadata__":{"a":{"b":{"c":{"d":[1]}}}}})", 0)), "nested deeper");
    std::string deep(100000, '[');
    CHECK_ERROR_HAS(parse(raw_file(deep, 0)), "hostile.safetensors");
}

TEST_CASE("truncating a valid file at every byte never crashes and always names the file") {
    SafeTensorsWriter wr;
    const float f[4] = {1, 2, 3, 4};
    wr.add("w", {4}, f);
    wr.add("b", {2}, f);
    const auto good = wr.serialize();
    for (std::size_t cut = 0; cut < good.size(); ++cut) {
        std::vector<std::byte> part(good.begin(), good.begin() + std::ptrdiff_t(cut));
        CHECK_ERROR_HAS(parse(part), "hostile.safetensors");
    }
    test::TempDir tmp;
    write_bytes(tmp / "cut.safetensors", std::vector<std::byte>(good.begin(), good.end() - 3));
    CHECK_ERROR_HAS(SafeTensors::open(tmp / "cut.safetensors"), "cut.safetensors");
}

TEST_CASE("random corruption of a valid file gives docvlm::Error or a valid parse, nothing else") {
    SafeTensorsWriter wr;
    const float f[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    wr.add("weight", {2, 4}, f);
    wr.add("bias", {2}, f);
    wr.set_metadata("k", "v");
    const auto good = wr.serialize();
    std::mt19937 rng(99);
    int refused = 0, accepted = 0;
    for (int trial = 0; trial < 20000; ++trial) {
        auto b = good;
        const int flips = 1 + int(rng() % 4);
        for (int k = 0; k < flips; ++k) b[rng() % b.size()] = std::byte(rng() & 0xff);
        try {
            SafeTensors st = parse(b);
            for (const auto& t : st.tensors()) {  // whatever parses must be internally consistent
                REQUIRE(t.offset + t.nbytes <= b.size());
                REQUIRE(t.numel() * dtype_size(t.dtype) == t.nbytes);
                (void)st.to_f32(t.name);
            }
            ++accepted;
        } catch (const Error&) {
            ++refused;
        }
    }
    MESSAGE("corrupted files: ", refused, " refused, ", accepted, " still valid");
    CHECK(refused > 0);
}

}  // TEST_SUITE
