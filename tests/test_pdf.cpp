// Tests of the docvlm tool's PDF input (include/docvlm/io/pdf.hpp): rendering pages one at a time
// with poppler-cpp, page ranges, and bad files.
#include "test_util.hpp"

#include <docvlm/io/pdf.hpp>

#include <fstream>

TEST_SUITE("pdf") {

TEST_CASE("a two-page PDF renders page by page at the requested resolution") {
    const docvlm::io::PdfPages pdf(test::data("pdf/two_pages.pdf"));
    REQUIRE(pdf.count() == 2);
    for (int p = 0; p < 2; ++p) {
        const auto img = pdf.render(p, 72.0);  // US Letter at 72 dpi: 612 x 792
        CHECK(img.width == 612);
        CHECK(img.height == 792);
        CHECK(img.channels == 3);
        // Text sits on the baseline y = 792 - 700 = 92 (PDF origin is bottom-left), descenders to ~100;
        // the rest of the page is white.
        std::size_t dark = 0, dark_elsewhere = 0;
        for (int y = 0; y < img.height; ++y)
            for (int x = 0; x < img.width; ++x) {
                const bool d = img.at(x, y, 0) < 128;
                (y > 60 && y < 110 ? dark : dark_elsewhere) += d;
            }
        CHECK(dark > 200);
        CHECK(dark_elsewhere == 0);  // (the red box of page two is bright in the red channel)
    }
    const auto red = pdf.render(1, 72.0);  // the box spans x 72..172, y 792-650..792-600 = 142..192
    CHECK(red.at(120, 167, 0) > 200);
    CHECK(red.at(120, 167, 1) < 60);
    CHECK(red.at(120, 167, 2) < 60);
    const auto big = pdf.render(0, 150.0);
    CHECK(big.width == 1275);
    CHECK(big.height == 1650);
    CHECK_ERROR_HAS(pdf.render(0, 150.0, 1000), "page 1", "above the limit");
}

TEST_CASE("page ranges and bad PDFs") {
    CHECK(docvlm::io::page_list("", 3) == std::vector<int>{0, 1, 2});
    CHECK(docvlm::io::page_list("1-3,7", 9) == std::vector<int>{0, 1, 2, 6});
    CHECK(docvlm::io::page_list("2,2,1", 3) == std::vector<int>{1, 0});
    CHECK_ERROR_HAS(docvlm::io::page_list("4", 3), "page 4 is outside 1-3");
    CHECK_ERROR_HAS(docvlm::io::page_list("3-1", 5), "'3-1'");
    CHECK_ERROR_HAS(docvlm::io::page_list("a", 5), "'a'");
    CHECK_ERROR_HAS(docvlm::io::page_list("1-x", 5), "'1-x'");
    test::TempDir dir;
    std::ofstream(dir / "broken.pdf") << "%PDF-1.4\nthis is not really a PDF";
    CHECK_ERROR_HAS(docvlm::io::PdfPages(dir / "broken.pdf"), "broken.pdf", "cannot open as a PDF");
    CHECK_ERROR_HAS(docvlm::io::PdfPages(dir / "missing.pdf"), "missing.pdf");
}

}  // TEST_SUITE
