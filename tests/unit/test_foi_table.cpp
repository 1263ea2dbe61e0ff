// FOI counts and population tables: accepted CSV shapes, suppressed cells as intervals,
// and one test per bad-input rule with its exact message.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "stopscan/calibrate.hpp"
#include "stopscan/error.hpp"
#include "stopscan/foi_table.hpp"
#include "support/temp_dir.hpp"

using namespace stopscan;

namespace {

std::string error_of(const std::string& text, const SuppressionOptions& sup = {}) {
    try {
        parse_count_table(text, "c.csv", sup);
    } catch (const InputError& e) {
        return e.what();
    }
    return "no error";
}

std::string population_error_of(const std::string& text) {
    try {
        parse_population_table(text, "p.csv");
    } catch (const InputError& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("the long shape with areas is read in file order", "[foi]") {
    const auto t = parse_count_table(
        "area,dimension,category,count\n"
        "West Yorkshire,ethnicity,White,900\n"
        "West Yorkshire,ethnicity,Black,72\n",
        "c.csv");
    CHECK(t.has_area);
    REQUIRE(t.rows.size() == 2);
    CHECK(t.rows[0].area == "West Yorkshire");
    CHECK(t.rows[0].dimension == "ethnicity");
    CHECK(t.rows[0].category == "White");
    CHECK(t.rows[0].count.lo == 900);
    CHECK(t.rows[0].count.hi == 900);
    CHECK_FALSE(t.rows[0].count.suppressed());
    CHECK(t.rows[1].line == 3);
    CHECK(t.find("West Yorkshire", "ethnicity", "Black")->count.lo == 72);
    CHECK(t.find("West Yorkshire", "ethnicity", "Asian") == nullptr);
    CHECK(t.areas() == std::vector<std::string>{"West Yorkshire"});
}

TEST_CASE("a table without an area column is one area named empty", "[foi]") {
    const auto t =
        parse_count_table("dimension,category,count\nsex,Male,12\nsex,Female,1\n", "c.csv");
    CHECK_FALSE(t.has_area);
    CHECK(t.areas() == std::vector<std::string>{""});
    CHECK(t.find("", "sex", "Male")->count.lo == 12);
}

TEST_CASE("editor and spreadsheet quirks are accepted", "[foi]") {
    // BOM, CRLF, column names in any case and order with spaces, comments, blank lines,
    // quoted fields with commas and doubled quotes, thousands separators.
    const auto t = parse_count_table(
        "\xEF\xBB\xBF# FOI 2021/0042, answered 3 March 2021\r\n"
        " Count , CATEGORY,Dimension ,Area\r\n"
        "\r\n"
        "\"1,472\",White,ethnicity,\"West Yorkshire\"\r\n"
        "  # a note between rows\r\n"
        "  3 , \"Black \"\"Caribbean\"\", African\" , ethnicity , West Yorkshire\r\n"
        "\"12,345,678\",Male,sex,Met\n",
        "c.csv");
    REQUIRE(t.rows.size() == 3);
    CHECK(t.rows[0].count.lo == 1472);
    CHECK(t.rows[0].raw == "1,472");
    CHECK(t.rows[0].area == "West Yorkshire");
    CHECK(t.rows[0].line == 4);
    CHECK(t.rows[1].category == "Black \"Caribbean\", African");
    CHECK(t.rows[1].count.lo == 3);
    CHECK(t.rows[1].line == 6);
    CHECK(t.rows[2].count.lo == 12345678);
}

TEST_CASE("a quoted field may span lines and the next row keeps its line number", "[foi]") {
    const auto t = parse_count_table(
        "dimension,category,count\nethnicity,\"Other\nethnic group\",4\nethnicity,White,9\n",
        "c.csv");
    CHECK(t.rows[0].category == "Other\nethnic group");
    CHECK(t.rows[0].line == 2);
    CHECK(t.rows[1].line == 4);
}

TEST_CASE("suppressed cells are intervals, never zeros", "[foi]") {
    const auto t = parse_count_table(
        "dimension,category,count\n"
        "e,a,<5\ne,b,*\ne,c,-\ne,d,[c]\ne,e,x\ne,f,[X]\ne,g,< 10\ne,h,<=3\ne,i,1-4\ne,j,0\n",
        "c.csv");
    const auto count = [&](const char* category) { return t.find("", "e", category)->count; };
    for (const char* c : {"a", "b", "c", "d", "e", "f"}) {
        CAPTURE(c);
        CHECK(count(c).lo == 0);
        CHECK(count(c).hi == 4);
        CHECK(count(c).suppressed());
        CHECK(count(c).mid() == 2.0);
    }
    CHECK(count("g").hi == 9);
    CHECK(count("h").hi == 3);
    CHECK(count("i").lo == 1);
    CHECK(count("i").hi == 4);
    CHECK(count("j").hi == 0);
    CHECK_FALSE(count("j").suppressed());
}

TEST_CASE("the suppression threshold and smallest suppressed count can be changed", "[foi]") {
    const auto t = parse_count_table("dimension,category,count\ne,a,<5\ne,b,*\n", "c.csv",
                                     SuppressionOptions{10, 1});
    CHECK(t.rows[0].count.lo == 1);
    CHECK(t.rows[0].count.hi == 4);
    CHECK(t.rows[1].count.lo == 1);
    CHECK(t.rows[1].count.hi == 9);
    CHECK(error_of("dimension,category,count\ne,a,<1\n", {5, 1}) ==
          "c.csv:2: count = <1: this suppressed cell cannot hold the smallest suppressed count "
          "(1): lower it");
    CHECK(error_of("dimension,category,count\ne,a,1\n", {0, 0}) ==
          "c.csv: suppression threshold 0 and smallest suppressed count 0: need threshold >= 1 "
          "and 0 <= smallest < threshold");
}

TEST_CASE("bad counts name the file, line, column and what is allowed", "[foi]") {
    const std::string allowed =
        "give a whole number >= 0 (thousands separators allowed when quoted: \"1,472\"), a "
        "range such as 1-4, or a suppressed cell: '<N', '*', '-', '[c]', 'c', '[x]' or 'x'";
    const std::string head = "dimension,category,count\ne,a,1\n";
    CHECK(error_of(head + "e,b,-3\n") == "c.csv:3: count = -3: negative count: " + allowed);
    CHECK(error_of(head + "e,b,many\n") == "c.csv:3: count = many: not a number: " + allowed);
    CHECK(error_of(head + "e,b,2.5\n") == "c.csv:3: count = 2.5: not a whole number: " + allowed);
    CHECK(error_of(head + "e,b,1e3\n") == "c.csv:3: count = 1e3: not a whole number: " + allowed);
    CHECK(error_of(head + "e,b,\n") == "c.csv:3: count: empty count: " + allowed);
    CHECK(error_of(head + "e,b,\"1,47\"\n") == "c.csv:3: count = 1,47: not a number: " + allowed);
    CHECK(error_of(head + "e,b,5-2\n") ==
          "c.csv:3: count = 5-2: not a range of whole numbers lo-hi with lo <= hi: " + allowed);
    CHECK(error_of(head + "e,b,<0\n") ==
          "c.csv:3: count = <0: a suppressed cell '<N' needs a whole number N >= 1: " + allowed);
    CHECK(error_of(head + "e,b,99999999999999999999\n") ==
          "c.csv:3: count = 99999999999999999999: count too large: at most 1,000,000,000,000");
}

TEST_CASE("an unquoted thousands separator is a wrong field count", "[foi]") {
    CHECK(error_of("dimension,category,count\ne,a,1,472\n") ==
          "c.csv:2: row has 4 fields but the header has 3: give one value per column (quote "
          "values that contain commas, e.g. \"1,472\")");
    CHECK(error_of("dimension,category,count\ne,a\n") ==
          "c.csv:2: row has 2 fields but the header has 3: give one value per column (quote "
          "values that contain commas, e.g. \"1,472\")");
}

TEST_CASE("header errors: missing, unknown, repeated and unnamed columns", "[foi]") {
    const std::string allowed =
        "the columns are area (optional), dimension, category, count, in any order";
    CHECK(error_of("dimension,count\ne,1\n") ==
          "c.csv:1: missing column 'category' in the header: " + allowed);
    CHECK(error_of("dimension,category,cuont\ne,a,1\n") ==
          "c.csv:1: unknown column 'cuont'; did you mean 'count'?: " + allowed);
    CHECK(error_of("dimension,category,count,notes\ne,a,1,x\n") ==
          "c.csv:1: unknown column 'notes': " + allowed);
    CHECK(error_of("dimension,category,count,Count\ne,a,1,1\n") ==
          "c.csv:1: column 'count' given twice: give it once");
    CHECK(error_of("dimension,category,,count\ne,a,1,1\n") ==
          "c.csv:1: column 3 of the header has no name: " + allowed);
}

TEST_CASE("empty keys, duplicates, empty and binary files are errors", "[foi]") {
    CHECK(error_of("area,dimension,category,count\n,e,a,1\n") ==
          "c.csv:2: area: empty area: give the area (force) name");
    CHECK(error_of("dimension,category,count\n,a,1\n") ==
          "c.csv:2: dimension: empty dimension: give a name such as ethnicity");
    CHECK(error_of("dimension,category,count\ne,\"\",1\n") ==
          "c.csv:2: category: empty category: give a name such as Black");
    CHECK(error_of("area,dimension,category,count\nMet,e,a,1\nMet,e,b,1\n\nMet,e,a,<5\n") ==
          "c.csv:5: duplicate row for area=Met, e=a (first at c.csv:2): give each (area, "
          "dimension, category) once");
    CHECK(error_of("") ==
          "c.csv: empty file: give a header line such as 'area,dimension,category,count' and "
          "one row per category");
    CHECK(error_of("\n# only a comment\n\r\n") == error_of(""));
    CHECK(error_of("dimension,category,count\n") ==
          "c.csv: no data rows after the header: give one row per category");
    CHECK(error_of(std::string("dimension,category,count\ne,a,1\0\n", 32)) ==
          "c.csv:2: binary data (byte 0x00): give a CSV text file (UTF-8)");
    CHECK(error_of("\xFF\xFE"
                   "d\0") == "c.csv: the file is UTF-16 text: save it as UTF-8 CSV");
    CHECK(error_of("dimension,category,count\ne,\"a,1\n") ==
          "c.csv:2: a quoted field is never closed: end it with '\"' (write a quote inside "
          "quotes as '\"\"')");
    CHECK(error_of("dimension,category,count\ne,\"a\"b,1\n") ==
          "c.csv:2: text after a closing quote: a quoted field must be followed by ',' or the "
          "end of the line");
}

TEST_CASE("resource limits: bytes and rows", "[foi]") {
    const std::string big(MAX_TABLE_BYTES + 1, ' ');
    CHECK(error_of(big) ==
          "c.csv: input is 67108865 bytes: a table may be at most 64 MiB (a resource limit "
          "against reading a wrong file; split the table)");
    std::string rows = "dimension,category,count\n";
    rows.reserve(MAX_TABLE_ROWS * 8 + 100);
    for (std::size_t i = 0; i <= MAX_TABLE_ROWS; ++i) rows += "e,c,1\n";
    CHECK(error_of(rows) ==
          "c.csv: more than 1,000,000 rows: a table may have at most that many (a resource "
          "limit; split the table)");
}

TEST_CASE("files are read and refused by path", "[foi]") {
    stopscan::test::TempDir dir;
    const auto path = dir.path() / "c.csv";
    std::ofstream(path) << "dimension,category,count\nsex,Male,3\n";
    CHECK(read_count_table(path.string()).rows.size() == 1);
    try {
        read_count_table((dir.path() / "missing.csv").string());
        FAIL("no error");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()).find("cannot read the counts table: no such file") !=
              std::string::npos);
    }
    CHECK_THROWS_AS(read_population_table(dir.path().string()), InputError);
}

TEST_CASE("population tables accept decimals and separators and refuse suppression", "[foi]") {
    const auto p = parse_population_table(
        "Area,Dimension,Category,Population\nMet,ethnicity,Black,\"1,188,309\"\n"
        "Met,ethnicity,White,4731247.5\n",
        "p.csv");
    CHECK(p.has_area);
    CHECK(p.find("Met", "ethnicity", "Black")->population == 1188309.0);
    CHECK(p.find("Met", "ethnicity", "White")->population == 4731247.5);
    const std::string head = "dimension,category,population\ne,a,10\n";
    const std::string allowed =
        "give a number of residents > 0 (decimals and quoted thousands separators allowed)";
    CHECK(population_error_of(head + "e,b,<5\n") ==
          "p.csv:3: population = <5: a population cannot be suppressed: " + allowed);
    CHECK(population_error_of(head + "e,b,0\n") ==
          "p.csv:3: population = 0: a population must be > 0 (a category with no residents has "
          "no rate: leave its rows out): " +
              allowed);
    CHECK(population_error_of(head + "e,b,-4\n") ==
          "p.csv:3: population = -4: a population must be > 0 (a category with no residents has "
          "no rate: leave its rows out): " +
              allowed);
    CHECK(population_error_of(head + "e,b,lots\n") ==
          "p.csv:3: population = lots: not a number: " + allowed);
    CHECK(population_error_of(head + "e,b,inf\n") ==
          "p.csv:3: population = inf: not a finite number up to 1e12: " + allowed);
    CHECK(population_error_of(head + "e,a,3\n") ==
          "p.csv:3: duplicate row for e=a (first at p.csv:2): give each (area, dimension, "
          "category) once");
    CHECK(population_error_of("dimension,category,count\ne,a,1\n") ==
          "p.csv:1: unknown column 'count': the columns are area (optional), dimension, "
          "category, population, in any order");
}

TEST_CASE("margins must be able to agree within suppression intervals", "[foi][margins]") {
    // 1,472 vs 1,380: no suppressed cell can close a gap of 92.
    const auto bad = parse_count_table(
        "area,dimension,category,count\n"
        "West Yorkshire,ethnicity,White,\"1,400\"\n"
        "West Yorkshire,ethnicity,Black,72\n"
        "West Yorkshire,sex,Male,\"1,300\"\n"
        "West Yorkshire,sex,Female,80\n",
        "c.csv");
    try {
        check_margins(bad);
        FAIL("no error");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()) ==
              "c.csv: margins are inconsistent: area West Yorkshire: ethnicity sums to 1,472 but "
              "sex to 1,380: every dimension must count the same stops (add the unrecorded ones "
              "as a category such as 'Not stated')");
    }
    // 100 + <5 = 100-104 overlaps 103: consistent. 100 + <5 vs 105 is not.
    CHECK_NOTHROW(check_margins(
        parse_count_table("dimension,category,count\ne,a,100\ne,b,<5\ns,m,103\ns,f,0\n", "c.csv")));
    try {
        check_margins(parse_count_table(
            "dimension,category,count\ne,a,100\ne,b,<5\ns,m,105\ns,f,0\n", "c.csv"));
        FAIL("no error");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()) ==
              "c.csv: margins are inconsistent: e sums to 100-104 but s to 105: every dimension "
              "must count the same stops (add the unrecorded ones as a category such as 'Not "
              "stated')");
    }
    // Three dimensions that overlap pairwise with the first but not with each other.
    CHECK_THROWS_AS(check_margins(parse_count_table(
                        "dimension,category,count\na,x,0-100\nb,x,0-10\nc,x,50-60\n", "c.csv")),
                    InputError);
}

TEST_CASE("thousands separators for messages", "[foi]") {
    CHECK(with_thousands(0) == "0");
    CHECK(with_thousands(999) == "999");
    CHECK(with_thousands(1472) == "1,472");
    CHECK(with_thousands(-8799882) == "-8,799,882");
}

TEST_CASE("a table near the row limit is read without quadratic work", "[foi][calibrate]") {
    // 100,000 rows in 1,000 areas: a quadratic lookup would take minutes, so finishing at all
    // is the check (no timed assertion, as STYLE.md asks).
    std::string counts = "area,dimension,category,count\n";
    std::string population = "area,dimension,category,population\n";
    for (int a = 0; a < 1000; ++a)
        for (int k = 0; k < 100; ++k) {
            const std::string key = "A" + std::to_string(a) + ",d,c" + std::to_string(k) + ",";
            counts += key + std::to_string(k + 1) + "\n";
            population += key + "1000\n";
        }
    const auto c = parse_count_table(counts, "c.csv");
    CHECK(c.rows.size() == 100000);
    CHECK_NOTHROW(check_margins(c));
    const auto rates = observed_rates(c, parse_population_table(population, "p.csv"), {});
    CHECK(rates.size() == 100100);
    CHECK(rates.back().count.lo == 1000 * 100);
}
