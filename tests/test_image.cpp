// Tests of docvlm/io/image.hpp against Pillow: every resize/rotate/crop/gray case in
// tests/data/pil (made by tools/reference/pil_image_vectors.py) must match bit for bit.
#include "test_util.hpp"

#include <docvlm/io/base64.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/pipeline/page_parser.hpp>

#include <nlohmann/json.hpp>
#include <xtensor/xnpy.hpp>

#include <cmath>
#include <fstream>
#include <map>

using namespace docvlm;
using docvlm::io::Image;

namespace {

Image from_npy(const std::string& name) {
    auto a = xt::load_npy<std::uint8_t>(test::data("pil/" + name + ".npy"));
    REQUIRE(a.dimension() == 3);
    Image img(int(a.shape()[1]), int(a.shape()[0]), int(a.shape()[2]));
    std::copy(a.begin(), a.end(), img.pixels.begin());
    return img;
}

void check_same(const Image& got, const Image& want) {
    REQUIRE(got.width == want.width);
    REQUIRE(got.height == want.height);
    REQUIRE(got.channels == want.channels);
    std::size_t diff = 0;
    for (std::size_t i = 0; i < got.pixels.size(); ++i) diff += got.pixels[i] != want.pixels[i];
    CHECK_MESSAGE(diff == 0, diff, " of ", got.pixels.size(), " samples differ from Pillow");
}

std::vector<std::byte> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> b(c.size());
    std::memcpy(b.data(), c.data(), c.size());
    return b;
}

}  // namespace

TEST_SUITE("image") {

TEST_CASE("resize, rotate, crop and gray conversion match Pillow exactly") {
    std::ifstream in(test::data("pil/cases.json"));
    const auto doc = nlohmann::json::parse(in);
    std::map<std::string, Image> sources;
    int n = 0;
    for (const auto& c : doc["cases"]) {
        const std::string src = c["source"], op = c["op"], expected = c["expected"];
        CAPTURE(expected);
        if (!sources.count(src)) sources[src] = from_npy(src);
        const Image& img = sources[src];
        Image got;
        if (op == "resize")
            got = io::resize(img, c["width"], c["height"], c["filter"] == "bicubic" ? io::Resample::bicubic : io::Resample::bilinear);
        else if (op == "rotate")
            got = io::rotate(img, c["degrees"]);
        else if (op == "crop")
            got = io::crop(img, c["box"][0], c["box"][1], c["box"][2], c["box"][3]);
        else if (op == "gray")
            got = io::to_gray(img);
        else if (op == "mineru_crop") {  // the MinerU2.5 client's block crop (see page_parser.hpp)
            pipeline::Block b;
            b.type = "text";
            b.x0 = c["box"][0], b.y0 = c["box"][1], b.x1 = c["box"][2], b.y1 = c["box"][3];
            b.angle = c["angle"].get<int>();
            std::vector<pipeline::Block> blocks = {b};
            const auto crops = pipeline::crops_for(img, blocks, {});
            REQUIRE(crops.size() == 1);
            got = crops[0].image;
        }
        else
            FAIL("unknown op ", op);
        check_same(got, from_npy(expected));
        ++n;
    }
    MESSAGE(n, " Pillow ", doc["pillow"].get<std::string>(), " cases");
    CHECK(n >= 40);
}

TEST_CASE("decodes PNG, BMP, gray, palette and RGBA files as Pillow does") {
    check_same(io::load_image(test::data("pil/rgb37x23.png")), from_npy("rgb37x23"));
    check_same(io::load_image(test::data("pil/rgb37x23.bmp")), from_npy("rgb37x23"));
    check_same(io::load_image(test::data("pil/gray29x41.png"), io::ColorMode::gray), from_npy("gray29x41"));
    check_same(io::load_image(test::data("pil/pal37x23.png")), from_npy("pal37x23_rgb"));
    check_same(io::load_image(test::data("pil/rgba37x23.png")), from_npy("rgb37x23"));  // alpha dropped
    Image gray_as_rgb = io::load_image(test::data("pil/gray29x41.png"));
    CHECK(gray_as_rgb.channels == 3);
    CHECK(gray_as_rgb.at(5, 7, 0) == from_npy("gray29x41").at(5, 7));
    CHECK(gray_as_rgb.at(5, 7, 2) == gray_as_rgb.at(5, 7, 0));
    check_same(io::load_image(test::data("pil/rgb37x23.png"), io::ColorMode::gray), io::to_gray(from_npy("rgb37x23")));
}

TEST_CASE("JPEG decodes close to Pillow (libjpeg); the decoders round differently") {
    Image got = io::load_image(test::data("pil/rgb50x31.jpg"));
    auto want = xt::load_npy<std::uint8_t>(test::data("pil/rgb50x31_jpg_pillow.npy"));
    REQUIRE(got.height == int(want.shape()[0]));
    REQUIRE(got.width == int(want.shape()[1]));
    double sum = 0;
    int worst = 0;
    for (std::size_t i = 0; i < got.pixels.size(); ++i) {
        const int d = std::abs(int(got.pixels[i]) - int(want.data()[i]));
        sum += d;
        worst = std::max(worst, d);
    }
    const double mean = sum / double(got.pixels.size());
    MESSAGE("stb vs Pillow JPEG: mean abs diff ", mean, ", max ", worst);
    CHECK(mean < 2.0);
    CHECK(worst <= 32);
}

TEST_CASE("corrupt, truncated, unsupported and oversized images raise docvlm::Error") {
    const auto png = read_file(test::data("pil/rgb37x23.png"));
    const auto jpg = read_file(test::data("pil/rgb50x31.jpg"));
    const auto bmp = read_file(test::data("pil/rgb37x23.bmp"));
    auto decode = [](const std::vector<std::byte>& b) { return io::decode_image(b, io::ColorMode::rgb, {}, "page.img"); };
    CHECK_ERROR_HAS(decode({}), "page.img", "unsupported image format");
    CHECK_ERROR_HAS(decode(std::vector<std::byte>{std::byte('G'), std::byte('I'), std::byte('F'), std::byte('8')}),
                    "unsupported image format");
    for (const auto* file : {&png, &jpg, &bmp}) {
        for (std::size_t keep : {std::size_t(10), file->size() / 2, file->size() - 5}) {
            CAPTURE(keep);
            CHECK_ERROR_HAS(decode(std::vector<std::byte>(file->begin(), file->begin() + std::ptrdiff_t(keep))), "page.img");
        }
    }
    auto garbage = png;  // valid signature and header, garbage compressed data
    for (std::size_t i = 40; i < garbage.size() - 20; ++i) garbage[i] = std::byte(i * 7);
    CHECK_ERROR_HAS(decode(garbage), "page.img");

    // Oversized: refused from the header, before any pixel is decoded.
    CHECK_ERROR_HAS(io::decode_image(png, io::ColorMode::rgb, {.max_pixels = 500}, "big.png"), "big.png", "37x23",
                    "above the limit of 500");
    auto huge = png;  // IHDR width/height patched to 60000 x 60000 (bytes 16..23, big-endian)
    for (int i : {16, 20}) {
        huge[i] = std::byte(0);
        huge[i + 1] = std::byte(0);
        huge[i + 2] = std::byte(0xea);
        huge[i + 3] = std::byte(0x60);
    }
    CHECK_ERROR_HAS(decode(huge), "60000x60000", "above the limit");
    CHECK_ERROR_HAS(io::load_image(test::data("pil/does-not-exist.png")), "does-not-exist.png", "cannot open");
}

TEST_CASE("save_png round-trips, and argument errors are named") {
    Image img = from_npy("rgb50x31");
    test::TempDir tmp;
    io::save_png(img, tmp / "out.png");
    check_same(io::load_image(tmp / "out.png"), img);
    CHECK_ERROR_HAS(io::resize(img, 0, 5), "0x5");
    CHECK_ERROR_HAS(io::rotate(img, 45), "45 degrees");
    CHECK_ERROR_HAS(io::crop(img, 10, 0, 5, 5), "inverted");
    CHECK_ERROR_HAS(io::save_png(Image{}, tmp / "empty.png"), "empty image");
}

TEST_CASE("base64 gives RFC 4648's test vectors and reads back what it writes") {
    const std::pair<const char*, const char*> vectors[] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
                                                          {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    for (const auto& [plain, coded] : vectors) {
        CHECK(io::base64_encode(plain) == coded);
        CHECK(io::base64_decode(coded) == std::optional<std::string>(plain));
    }
    std::string bytes;
    for (int i = 0; i < 256; ++i) bytes += char(i);
    CHECK(io::base64_decode(io::base64_encode(bytes)) == std::optional<std::string>(bytes));
    CHECK_FALSE(io::base64_decode("Zm9").has_value());    // not a multiple of 4
    CHECK_FALSE(io::base64_decode("Zm=v").has_value());   // padding inside
    CHECK_FALSE(io::base64_decode("Zm9v!A==").has_value());
}

TEST_CASE("encode_jpeg writes a JPEG that decodes close to its pixels") {
    io::Image img(40, 24, 3);
    for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x) img.at(x, y, 0) = std::uint8_t(6 * x), img.at(x, y, 1) = std::uint8_t(10 * y), img.at(x, y, 2) = 128;
    const std::string jpeg = io::encode_jpeg(img);
    REQUIRE(jpeg.size() > 100);
    CHECK(std::uint8_t(jpeg[0]) == 0xFF);
    CHECK(std::uint8_t(jpeg[1]) == 0xD8);
    const io::Image back = io::decode_image(std::as_bytes(std::span(jpeg.data(), jpeg.size())));
    REQUIRE(back.width == 40);
    REQUIRE(back.height == 24);
    double diff = 0;
    for (std::size_t i = 0; i < img.pixels.size(); ++i) diff += std::abs(int(img.pixels[i]) - int(back.pixels[i]));
    CHECK(diff / double(img.pixels.size()) < 3.0);
    CHECK_THROWS_AS(io::encode_jpeg(io::Image{}), Error);
}

TEST_CASE("normalize follows Hugging Face: rescale in double, normalise in float") {
    Image img(3, 2, 3);
    for (std::size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = std::uint8_t(i * 40);
    const double mean[3] = {0.48145466, 0.4578275, 0.40821073}, std[3] = {0.26862954, 0.26130258, 0.27577711};
    auto t = io::normalize(img, mean, std, 0.00392156862745098);
    REQUIRE(t.shape()[0] == 3);
    REQUIRE(t.shape()[1] == 2);
    REQUIRE(t.shape()[2] == 3);
    for (int c = 0; c < 3; ++c)
        for (int y = 0; y < 2; ++y)
            for (int x = 0; x < 3; ++x) {
                const float v = float(double(img.at(x, y, c)) * 0.00392156862745098);
                CHECK(t(c, y, x) == (v - float(mean[c])) / float(std[c]));
            }
    CHECK_ERROR_HAS(io::normalize(img, std::span<const double>(mean, 1), std), "3 channels but 1 means");
    CHECK(img.tensor()(1, 2, 0) == img.at(2, 1, 0));
}

}  // TEST_SUITE
