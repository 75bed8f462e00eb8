// Tests of pipeline/scripts.hpp (the scripts of a page's readings, foreign letters dropped) and of
// the parser's use of it (drop_foreign_letters). The readings are the kind docvlm-small wrote on
// held-out English pages (tools/eval/make_heldout_pages.py): a CJK character inside an equation,
// a line of Arabic under a formula.
#include "test_util.hpp"

#include <docvlm/pipeline/embedded_parser.hpp>
#include <docvlm/pipeline/scripts.hpp>

using namespace docvlm;
using pipeline::Script;

TEST_SUITE("pipeline") {

TEST_CASE("scripts: letters by writing system; digits, symbols and mathematical letters have none") {
    CHECK(pipeline::script_of(U'a') == Script::latin);
    CHECK(pipeline::script_of(U'é') == Script::latin);
    CHECK(pipeline::script_of(U'ﬁ') == Script::latin);
    CHECK(pipeline::script_of(U'α') == Script::greek);
    CHECK(pipeline::script_of(U'Ж') == Script::cyrillic);
    CHECK(pipeline::script_of(U'ש') == Script::hebrew);
    CHECK(pipeline::script_of(U'ب') == Script::arabic);
    CHECK(pipeline::script_of(U'学') == Script::cjk);
    CHECK(pipeline::script_of(U'の') == Script::cjk);
    CHECK(pipeline::script_of(U'한') == Script::hangul);
    for (char32_t c : {U'1', U' ', U'=', U'∑', U'→', U'𝑥', U'ℓ', U'ℝ', U'٣'}) {
        CAPTURE(std::uint32_t(c));
        CHECK(pipeline::script_of(c) == Script::none);
    }
    CHECK(pipeline::script_of(char32_t(-1)) == Script::none);  // a stray byte
}

TEST_CASE("scripts: a page's own scripts, and what happens to a reading with foreign letters") {
    pipeline::ScriptCounts english;
    english.add("Euler's theorem states that the most general displacement of a rigid body with one");
    english.add("point fixed is equivalent to a single rotation about some axis through that point.");
    english.add("E = [1+ and 2 + {1 - cool) 学 (2.2)");
    const pipeline::PageScripts page(english);
    CHECK(page.foreign(U'学'));
    CHECK(page.foreign(U'ب'));
    CHECK_FALSE(page.foreign(U'θ'));  // Greek: mathematics on any page
    CHECK_FALSE(page.foreign(U'x'));
    CHECK_FALSE(page.foreign(U'2'));

    CHECK(pipeline::judge_foreign_letters("point fixed is equivalent", page) == pipeline::ForeignVerdict::keep);
    CHECK(pipeline::judge_foreign_letters("E = [1+ and 2 + {1 - cool) 学 (2.2)", page) == pipeline::ForeignVerdict::strip);
    CHECK(pipeline::strip_foreign_letters("E = [1+ and 2 + {1 - cool) 学 (2.2)", page) == "E = [1+ and 2 + {1 - cool) (2.2)");
    CHECK(pipeline::strip_foreign_letters("�q = 1+ sin 0 学 + (1 − cos 0 学 号", page) == "�q = 1+ sin 0 + (1 − cos 0");
    CHECK(pipeline::judge_foreign_letters("تن هتنان هاب هاب رارا (2.7)", page) == pipeline::ForeignVerdict::unreadable);
    CHECK(pipeline::judge_foreign_letters("ن • ·طن ط", page) == pipeline::ForeignVerdict::unreadable);
    CHECK(pipeline::judge_foreign_letters("−− (2.7) ∑", page) == pipeline::ForeignVerdict::keep);  // no letters

    // a page written in Chinese keeps its characters, and Latin stays the page's own
    pipeline::ScriptCounts chinese;
    chinese.add("清华大学学位论文模板 使用说明");
    chinese.add("本模板 thuthesis 适用于清华大学的本科和研究生学位论文");
    const pipeline::PageScripts zh(chinese);
    CHECK_FALSE(zh.foreign(U'学'));
    CHECK_FALSE(zh.foreign(U't'));
    CHECK(zh.foreign(U'ب'));
    CHECK(pipeline::judge_foreign_letters("本模板 thuthesis 适用于", zh) == pipeline::ForeignVerdict::keep);
}

TEST_CASE("scripts: the parser leaves out readings in a foreign script and strips stray foreign letters") {
    // a page of readings: the Arabic line holds under a tenth of its letters
    std::vector<std::string> texts = {"With reference to figure 2, consider a vector with initial position x.",
                                      "rotated about an axis defined by the unit vector a, through an angle.",
                                      "E = [1+ and 2 + {1 - cool) 学 (2.2)", "تن هتنان هاب هاب رارا ناراب ناب ناداد",
                                      "Rewrite equation (2.1) in terms of the cross product tensor defined in equation (1.8)",
                                      "with I the 3x3 unit matrix. By comparing equations (2.2) and (1.21), the general",
                                      "format of the rotation matrix for a rotation through an angle about an axis",
                                      "Equation (2.3) is also known as the Rodriguez formula. Note that four scalar param-",
                                      "eters and the constraint describe three degrees of rotational freedom."};
    std::vector<std::string*> readings;
    for (auto& t : texts) readings.push_back(&t);
    std::vector<std::uint8_t> unreadable(texts.size(), 0);
    pipeline::drop_foreign_letters(readings, unreadable);
    CHECK(texts[0] == "With reference to figure 2, consider a vector with initial position x.");
    CHECK(texts[2] == "E = [1+ and 2 + {1 - cool) (2.2)");
    CHECK(texts[3].empty());
    CHECK(unreadable == std::vector<std::uint8_t>{0, 0, 0, 1, 0, 0, 0, 0, 0});
}

}  // TEST_SUITE
