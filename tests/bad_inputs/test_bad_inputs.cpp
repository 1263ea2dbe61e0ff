// Bad-input corpus: every case in tests/bad_inputs/ is run in-process through
// stopscan::run_cli and must be refused with its exact one-line message and exit code, nothing
// on stdout and no output directory. Every file in tests/bad_inputs/good/ must validate.
//
// A case is NNN-name.ini (a scenario with one defect, run as `stopscan run FILE --out DIR`) or
// NNN-name.args (command-line arguments after `stopscan`, one per line), with NNN-name.expected:
// line 1 the stderr line, line 2 the exit code. In .args and .expected, @FILE@ is the scenario
// path (for .args: scenarios/default.ini), @DIR@ its directory and @OUT@ a fresh, non-existent
// output directory.
// Inputs too large to keep in the repository (10^6 categories, a 1 MiB value) are generated.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "stopscan/cli.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

const fs::path CORPUS = fs::path(STOPSCAN_SOURCE_DIR) / "tests" / "bad_inputs";

using stopscan::test::TempDir;

struct CliResult {
    int code = -1;
    std::string out;
    std::string err;
};

CliResult cli(std::vector<std::string> args) {
    args.insert(args.begin(), "stopscan");
    std::ostringstream out;
    std::ostringstream err;
    CliResult r;
    r.code = stopscan::run_cli(args, out, err);
    r.out = out.str();
    r.err = err.str();
    return r;
}

std::string read_file(const fs::path& p) {
    std::ifstream file(p, std::ios::binary);
    if (!file) throw std::runtime_error("cannot read " + p.string());
    return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& p, const std::string& text) {
    std::ofstream file(p, std::ios::binary | std::ios::trunc);
    file << text;
    file.close();
    if (!file) throw std::runtime_error("cannot write " + p.string());
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// `text` with every @FILE@ replaced by `file` and every @OUT@ by `out`.
std::string substituted(std::string text, const std::string& file, const std::string& out) {
    const std::pair<std::string, std::string> tokens[] = {
        {"@FILE@", file}, {"@OUT@", out}, {"@DIR@", fs::path(file).parent_path().string()}};
    for (const auto& [token, value] : tokens) {
        for (auto pos = text.find(token); pos != std::string::npos;
             pos = text.find(token, pos + value.size()))
            text.replace(pos, token.size(), value);
    }
    return text;
}

// The cases' input files (NNN-name.ini or NNN-name.args), sorted.
std::vector<fs::path> case_inputs() {
    std::vector<fs::path> inputs;
    for (const auto& entry : fs::directory_iterator(CORPUS)) {
        const auto ext = entry.path().extension();
        if (entry.is_regular_file() && (ext == ".ini" || ext == ".args"))
            inputs.push_back(entry.path());
    }
    std::sort(inputs.begin(), inputs.end());
    return inputs;
}

// The minimal valid scenario the corpus is built from (good/utf8-bom.ini without its BOM).
const std::string& base_text() {
    static const std::string text = read_file(CORPUS / "good" / "utf8-bom.ini").substr(3);
    return text;
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
    const auto pos = text.find(from);
    if (pos == std::string::npos) throw std::runtime_error("fixture text not found: " + from);
    return text.replace(pos, from.size(), to);
}

}  // namespace

TEST_CASE("every case in the bad-input corpus is refused with its exact message",
          "[bad-input][corpus]") {
    TempDir tmp;
    const auto default_ini = (fs::path(STOPSCAN_SOURCE_DIR) / "scenarios" / "default.ini").string();
    int cases = 0;
    for (const auto& input : case_inputs()) {
        const auto stem = input.stem().string();
        const auto expected_path = CORPUS / (stem + ".expected");
        INFO("case " << input.filename().string());
        REQUIRE(fs::exists(expected_path));
        const auto expected = lines_of(read_file(expected_path));
        REQUIRE(expected.size() == 2);

        const fs::path out_dir = tmp.fresh("out");
        std::string file;
        std::vector<std::string> args;
        if (input.extension() == ".ini") {
            file = input.string();
            args = {"run", file, "--out", out_dir.string()};
        } else {
            file = default_ini;
            for (const auto& line : lines_of(read_file(input)))
                args.push_back(substituted(line, file, out_dir.string()));
        }
        INFO("args: " << [&] {
            std::string s;
            for (const auto& a : args) s += " " + a;
            return s;
        }());
        const auto r = cli(args);
        ++cases;
        CHECK(r.err == substituted(expected[0], file, out_dir.string()) + "\n");
        CHECK(std::to_string(r.code) == expected[1]);
        CHECK(r.code == 2);
        CHECK(r.out.empty());
        CHECK_FALSE(fs::exists(out_dir));
    }
    REQUIRE(cases >= 50);
}

TEST_CASE("every file in the good corpus validates", "[bad-input][good]") {
    int files = 0;
    for (const auto& entry : fs::directory_iterator(CORPUS / "good")) {
        if (!entry.is_regular_file() || entry.path().extension() != ".ini") continue;
        const auto file = entry.path().string();
        INFO("good file " << file);
        const auto r = cli({"validate", file});
        ++files;
        CHECK(r.code == 0);
        CHECK(r.err.empty());
        CHECK(r.out.rfind(file + ": valid\n", 0) == 0);
    }
    REQUIRE(files >= 5);
}

TEST_CASE("a dimension of one million categories is refused as too many cells",
          "[bad-input][generated]") {
    TempDir tmp;
    constexpr int n = 1000000;
    std::string categories = "White, Black";
    std::string shares = "0.9, 0.1";
    categories.reserve(std::size_t{n} * 10);
    shares.reserve(std::size_t{n} * 3);
    for (int i = 0; i < n - 2; ++i) {
        categories += ", c" + std::to_string(i);
        shares += ", 0";
    }
    // One dimension only: drop [dimension.status], which would refer to the categories.
    auto text = replaced(base_text(), "names = ethnicity, status", "names = ethnicity");
    const auto from = text.find("[dimension.status]");
    const auto to = text.find("[stops]");
    REQUIRE(from != std::string::npos);
    REQUIRE(to != std::string::npos);
    text.erase(from, to - from);
    text = replaced(text, "categories = White, Black", "categories = " + categories);
    text = replaced(text, "shares = 0.9, 0.1", "shares = " + shares);
    const auto file = (tmp.path() / "million-categories.ini").string();
    write_file(file, text);
    const auto out_dir = tmp.fresh("out");
    const auto r = cli({"run", file, "--out", out_dir.string()});
    CHECK(r.err == "stopscan: error: " + file +
                       ":8: dimensions.names = ethnicity: the dimensions make more than 100000 "
                       "cells: use fewer dimensions or categories\n");
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK_FALSE(fs::exists(out_dir));
}

TEST_CASE("a one-megabyte scenario name is accepted", "[bad-input][generated]") {
    TempDir tmp;
    const auto file = (tmp.path() / "long-line.ini").string();
    write_file(file, replaced(base_text(), "name = Bad-input base",
                              "name = " + std::string(std::size_t{1} << 20, 'x')));
    const auto r = cli({"validate", file});
    CHECK(r.code == 0);
    CHECK(r.err.empty());
    CHECK(r.out.rfind(file + ": valid\n", 0) == 0);
}

TEST_CASE("a run too big for this machine's memory is refused before any work",
          "[bad-input][generated]") {
    TempDir tmp;
    const fs::path out_dir = tmp.fresh("out");
    // A million replications of the default scenario need about 280 GB.
    const auto r = cli({"run", "--replications", "1000000", "--out", out_dir.string()});
    INFO(r.err);
    CHECK(r.code == 2);
    CHECK(r.err.rfind("stopscan: error: command line: --replications = 1000000: the run would "
                      "need about ",
                      0) == 0);
    CHECK(r.err.find("use at most ") != std::string::npos);
    CHECK(r.err.find("or add --force to try anyway\n") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.out.empty());
    CHECK_FALSE(fs::exists(out_dir));
}
