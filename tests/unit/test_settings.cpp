// Raw INI reading: sections, overrides, editor quirks, line numbers in errors.
#include <catch2/catch.hpp>

#include "stopscan/error.hpp"
#include "stopscan/settings.hpp"

using namespace stopscan;

TEST_CASE("sections become dotted keys and values are trimmed", "[settings]") {
    const auto s = Settings::parse_ini("[a]\nx = 1   # comment\n[b.c]\ny=  two words \n", "f.ini");
    REQUIRE(s.find("a.x"));
    CHECK(s.find("a.x")->value == "1");
    CHECK(s.find("a.x")->origin == "f.ini:2");
    CHECK(s.find("b.c.y")->value == "two words");
    CHECK(s.find("missing") == nullptr);
}

TEST_CASE("files saved by common editors are accepted", "[settings]") {
    const auto s = Settings::parse_ini("\xEF\xBB\xBF[a]\r\nx\t=\t3  \r\ny = 4\r\n", "f.ini");
    CHECK(s.find("a.x")->value == "3");
    CHECK(s.find("a.y")->value == "4");
}

TEST_CASE("syntax errors name the line", "[settings]") {
    try {
        Settings::parse_ini("[a]\nx = 1\nthis is not ini\n", "f.ini");
        FAIL("no error");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()) ==
              "f.ini:3: 'this is not ini' is not a 'key = value' line or a [section] header");
    }
    CHECK_THROWS_AS(Settings::parse_ini("[a\nx = 1\n", "f.ini"), InputError);
    CHECK_THROWS_AS(Settings::parse_ini(std::string_view("a\0b = 1\n", 8), "f.ini"), InputError);
}

TEST_CASE("a key given twice is an error naming both lines", "[settings]") {
    try {
        Settings::parse_ini("[a]\nx = 1\nx = 2\n", "f.ini");
        FAIL("no error");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()) ==
              "f.ini:3: a.x = 2: key given twice (first at f.ini:2): give it once");
    }
}

TEST_CASE("overrides replace file values and record their origin", "[settings]") {
    auto s = Settings::parse_ini("[a]\nx = 1\n", "f.ini");
    s.apply_override("a.x=5");
    s.apply_override(" a.new = 6 ");
    CHECK(s.find("a.x")->value == "5");
    CHECK(s.find("a.x")->origin == "--set");
    CHECK(s.find("a.new")->value == "6");
    CHECK_THROWS_AS(s.apply_override("novalue"), InputError);
    CHECK_THROWS_AS(s.apply_override("=3"), InputError);
}

TEST_CASE("lists and suggestions", "[settings]") {
    CHECK(split_list(" a, b ,c ") == std::vector<std::string>{"a", "b", "c"});
    CHECK(split_list("  ").empty());
    CHECK(split_list("a,,b") == std::vector<std::string>{"a", "", "b"});
    CHECK(edit_distance("kitten", "sitting") == 3);
    CHECK(nearest("stops.totl", {"stops.total", "stops.dispersion"}) ==
          std::optional<std::string>("stops.total"));
    CHECK_FALSE(nearest("zzzzzzzz", {"stops.total"}).has_value());
}
