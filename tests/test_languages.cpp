// Tests of the languages of a page's readings (pipeline/languages.hpp) and of the embedded
// parser's rule that leaves out a line written in a language the rest of the page does not use.
#include "test_util.hpp"

#include <docvlm/pipeline/embedded_parser.hpp>
#include <docvlm/pipeline/languages.hpp>

#include <string>
#include <vector>

using namespace docvlm;
using pipeline::Language;

namespace {

// readings as the parser holds them: one per line here, unless `split` cuts a line in two
struct Page {
    std::vector<std::string> text;
    std::vector<std::size_t> line;
    void add(const std::string& reading, bool split = false) {
        const std::size_t l = line.empty() ? 0 : line.back() + 1;
        if (!split) {
            text.push_back(reading), line.push_back(l);
            return;
        }
        const std::size_t half = reading.size() / 2;
        text.push_back(reading.substr(0, half)), line.push_back(l);
        text.push_back(reading.substr(half)), line.push_back(l);
    }
    std::vector<std::uint8_t> judge() {
        std::vector<std::string*> readings;
        for (auto& t : text) readings.push_back(&t);
        std::vector<std::uint8_t> unreadable(text.size(), 0);
        pipeline::drop_foreign_language(readings, line, unreadable);
        return unreadable;
    }
};

const char* english = "The segmenter cuts the page into lines, and the model reads each of them with care.";

}  // namespace

TEST_SUITE("pipeline") {

TEST_CASE("languages: function words of English, German and French; shared and accented words count for none") {
    CHECK(pipeline::language_of_word("the") == Language::english);
    CHECK(pipeline::language_of_word("wird") == Language::german);
    CHECK(pipeline::language_of_word("les") == Language::french);
    for (const char* w : {"in", "an", "des", "so", "umgebung", "segmenter"}) CHECK(pipeline::language_of_word(w) == Language::none);
    pipeline::LanguageCounts c;
    c.add("Die Umgebung WIRD gesetzt, und für alle Fälle: the end.");  // für, Fälle: accented, not counted
    CHECK(c.words[std::size_t(Language::german)] == 4);  // die, wird, und, alle
    CHECK(c.words[std::size_t(Language::english)] == 1);
    CHECK(c.total() == 5);
}

TEST_CASE("languages: an invented German line on an English page is left out, whole, though cut into two readings") {
    Page p;
    for (int i = 0; i < 6; ++i) p.add(english);
    p.add("Ummatin instellung in all der LATEX preferent alle die Umgebung wird und", true);
    p.add(english);
    const auto bad = p.judge();
    REQUIRE(bad.size() == 9);
    for (std::size_t i = 0; i < bad.size(); ++i) CHECK(bad[i] == (i == 6 || i == 7));
    CHECK(p.text[6].empty());
    CHECK(p.text[7].empty());
    CHECK(p.text[8] == english);
}

TEST_CASE("languages: a German page keeps its lines, English ones too; an English page keeps a quoted French paragraph; two foreign words are not enough") {
    Page de;
    for (int i = 0; i < 6; ++i) de.add("Die Option wird mit dem Befehl gesetzt und gilt auch für alle Seiten.");
    de.add(english);
    for (const auto b : de.judge()) CHECK(b == 0);

    Page fr;
    for (int i = 0; i < 8; ++i) fr.add(english);
    for (int i = 0; i < 3; ++i) fr.add("Le paquet est chargé par la commande et les options sont dans une liste.");
    for (const auto b : fr.judge()) CHECK(b == 0);

    Page few;
    for (int i = 0; i < 6; ++i) few.add(english);
    few.add("See Die Umgebung und its options.");  // two German words: a name, a quotation
    for (const auto b : few.judge()) CHECK(b == 0);
}

}  // TEST_SUITE
