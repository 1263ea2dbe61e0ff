// The command line, driven in-process through stopscan::run_cli with argv arrays and scenario
// files written to a fresh mkdtemp directory (STYLE.md, "Testing": each bad-input rule has a
// test of its message and exit code).
//
// Every refused input is checked for: the EXACT one-line message on stderr, exit code 2,
// nothing on stdout, and no output directory created (every `run` gets `--out` pointing at a
// fresh, non-existent path). Expected line numbers and paths are computed from the fixture
// text, so editing scenarios/default.ini does not silently break the expectations.
//
// Tests marked "Regression" guard bugs this suite found and that were fixed; their comments
// say what used to go wrong.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "stopscan/cli.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

constexpr const char* PREFIX = "stopscan: error: ";

using stopscan::test::TempDir;

struct CliResult {
    int code = -1;
    std::string out;
    std::string err;
};

std::string joined(const std::vector<std::string>& args) {
    std::string s;
    for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
    return s;
}

// Runs `stopscan ARGS...` in-process.
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

const std::string& default_text() {
    static const std::string text =
        read_file(fs::path(STOPSCAN_SOURCE_DIR) / "scenarios" / "default.ini");
    return text;
}

// `text` with the first occurrence of `from` replaced by `to`; fails if `from` is absent so
// that a change to the default scenario shows up here rather than as a confusing mismatch.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
    const auto pos = text.find(from);
    INFO("fixture text not found: " << from);
    REQUIRE(pos != std::string::npos);
    text.replace(pos, from.size(), to);
    return text;
}

// 1-based line number of the first occurrence of `needle` (a leading '\n' in the needle
// anchors it at a line start and is not counted as part of the match's line).
int line_of(const std::string& text, const std::string& needle) {
    auto pos = text.find(needle);
    INFO("fixture text not found: " << needle);
    REQUIRE(pos != std::string::npos);
    if (needle.front() == '\n') ++pos;
    return 1 + static_cast<int>(
                   std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(pos), '\n'));
}

// Runs a command that must be refused with exactly `message` (without the prefix). A `run`
// gets `--out` at a fresh path, which must still not exist afterwards.
void require_refused(TempDir& tmp, std::vector<std::string> args, const std::string& message) {
    const fs::path out_dir = tmp.fresh("out");
    if (!args.empty() && args.front() == "run") {
        args.emplace_back("--out");
        args.push_back(out_dir.string());
    }
    INFO("stopscan " << joined(args));
    const auto r = cli(args);
    CHECK(r.err == PREFIX + message + "\n");
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK_FALSE(fs::exists(out_dir));
}

// For a refused command whose exact message is covered by a  test: exit code 2,
// no stdout, no output, and a single stderr line with the prefix.
CliResult require_refused_one_line(TempDir& tmp, std::vector<std::string> args) {
    const fs::path out_dir = tmp.fresh("out");
    if (!args.empty() && args.front() == "run") {
        args.emplace_back("--out");
        args.push_back(out_dir.string());
    }
    INFO("stopscan " << joined(args));
    const auto r = cli(args);
    INFO("stderr: " << r.err);
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.rfind(PREFIX, 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK((!r.err.empty() && r.err.back() == '\n'));
    CHECK_FALSE(fs::exists(out_dir));
    return r;
}

std::set<std::string> listing(const fs::path& dir) {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir))
        names.insert(entry.path().filename().string());
    return names;
}

std::string to_crlf(const std::string& text) {
    std::string crlf;
    for (const char c : text) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    return crlf;
}

// Drops the first line (`PATH: valid`) of a validate report.
std::string after_first_line(const std::string& text) {
    const auto nl = text.find('\n');
    return nl == std::string::npos ? std::string() : text.substr(nl + 1);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Scenario files
// ---------------------------------------------------------------------------------------------

TEST_CASE("a missing scenario file is refused with its path", "[cli][bad-input][file]") {
    TempDir tmp;
    const auto missing = (tmp.path() / "no-such-scenario.ini").string();
    require_refused(tmp, {"run", missing},
                    missing + ": cannot read the scenario file: no such file");
    require_refused(tmp, {"validate", missing},
                    missing + ": cannot read the scenario file: no such file");
}

TEST_CASE("a directory given as the scenario is refused", "[cli][bad-input][file]") {
    TempDir tmp;
    const auto dir = tmp.path().string();
    require_refused(tmp, {"run", dir}, dir + ": is a directory: give a scenario .ini file");
}

TEST_CASE("an unknown key in a file names file, line, value and the nearest key",
          "[cli][bad-input][file]") {
    TempDir tmp;
    const auto text = replaced(default_text(), "\ntotal = 72000", "\ntotl = 72000");
    const auto file = tmp.write("typo.ini", text);
    require_refused(tmp, {"run", file},
                    file + ":" + std::to_string(line_of(text, "\ntotl = 72000")) +
                        ": stops.totl = 72000: unknown key; did you mean 'stops.total'?");
}

TEST_CASE("an unknown key via --set suggests the nearest key", "[cli][bad-input][set]") {
    TempDir tmp;
    require_refused(tmp, {"run", "--set", "stops.totl=5"},
                    "--set: stops.totl = 5: unknown key; did you mean 'stops.total'?");
}

TEST_CASE("a typo in a section name is an unknown key, not a missing one",
          "[cli][bad-input][file]") {
    TempDir tmp;
    const auto text = replaced(default_text(), "[database.IDENT1]", "[database.IDENT]");
    const auto file = tmp.write("section.ini", text);
    // The section's keys in alphabetical order: arrest comes first.
    require_refused(
        tmp, {"run", file},
        file + ":" + std::to_string(line_of(text, "\narrest = 0.9")) +
            ": database.IDENT.arrest = 0.9: unknown key; did you mean 'database.IDENT1.arrest'?");
}

TEST_CASE("a syntax error names the line number", "[cli][bad-input][file]") {
    TempDir tmp;
    const auto text = replaced(default_text(), "[stops]\n", "[stops]\nthis is not ini\n");
    const auto file = tmp.write("syntax.ini", text);
    require_refused(tmp, {"run", file},
                    file + ":" + std::to_string(line_of(text, "\nthis is not ini")) +
                        ": 'this is not ini' is not a 'key = value' line or a [section] header");
}

TEST_CASE("a malformed section header names the line number", "[cli][bad-input][file]") {
    TempDir tmp;
    const auto text = replaced(default_text(), "\n[stops]", "\n[stops");
    const auto file = tmp.write("header.ini", text);
    require_refused(tmp, {"validate", file},
                    file + ":" + std::to_string(line_of(text, "\n[stops\n")) +
                        ": malformed section header '[stops': write [section]");
}

TEST_CASE("binary data in a scenario is refused", "[cli][bad-input][file]") {
    TempDir tmp;
    const auto text = replaced(default_text(), "\n[stops]", std::string("\n[stops]\nx\0y = 1", 16));
    const auto file = tmp.write("binary.ini", text);
    require_refused(tmp, {"run", file},
                    file + ":" + std::to_string(line_of(text, std::string("\nx\0y", 4))) +
                        ": binary data: a scenario must be a text file");
}

TEST_CASE("a key given twice is refused, naming both places", "[cli][bad-input][file]") {
    TempDir tmp;
    const auto text = replaced(default_text(), "\ntotal = 72000", "\ntotal = 72000\ntotal = 5");
    const auto file = tmp.write("twice.ini", text);
    const auto first = line_of(text, "\ntotal = 72000");
    const auto r = require_refused_one_line(tmp, {"run", file});
    const std::string tail = ": stops.total = 5: key given twice (first at " + file + ":" +
                             std::to_string(first) + "): give it once\n";
    CHECK(r.err.rfind(PREFIX + file + ":", 0) == 0);
    CHECK((r.err.size() >= tail.size() &&
           r.err.compare(r.err.size() - tail.size(), tail.size(), tail) == 0));
}

// Regression (fixed; was in sim/settings.cpp, key_lines + Settings::parse_ini): key_lines() keeps
// only the FIRST line of each key (map::emplace), so the duplicate is reported at the first line
// too: "x.ini:46: stops.total = 5: key given twice (first at x.ini:46)".
TEST_CASE("a key given twice is reported at the second occurrence", "[cli][bad-input][file]") {
    TempDir tmp;
    const auto text = replaced(default_text(), "\ntotal = 72000", "\ntotal = 72000\ntotal = 5");
    const auto file = tmp.write("twice.ini", text);
    const auto first = line_of(text, "\ntotal = 72000");
    const auto second = line_of(text, "\ntotal = 5");
    require_refused(tmp, {"run", file},
                    file + ":" + std::to_string(second) +
                        ": stops.total = 5: key given twice (first at " + file + ":" +
                        std::to_string(first) + "): give it once");
}

// ---------------------------------------------------------------------------------------------
// Scenario values
// ---------------------------------------------------------------------------------------------

TEST_CASE("a negative count is refused, not wrapped", "[cli][bad-input][value]") {
    TempDir tmp;
    const auto text = replaced(default_text(), "\ntotal = 72000", "\ntotal = -5");
    const auto file = tmp.write("negative.ini", text);
    require_refused(
        tmp, {"run", file},
        file + ":" + std::to_string(line_of(text, "\ntotal = -5")) +
            ": stops.total = -5: out of range: must be a whole number in [0, 10000000000]");
    require_refused(
        tmp, {"run", "--set", "stops.total=-5"},
        "--set: stops.total = -5: out of range: must be a whole number in [0, 10000000000]");
}

TEST_CASE("a count in scientific notation is not a whole number", "[cli][bad-input][value]") {
    TempDir tmp;
    require_refused(
        tmp, {"run", "--set", "stops.total=1e5"},
        "--set: stops.total = 1e5: not a whole number: must be a whole number in [0, 10000000000]");
    require_refused(tmp, {"run", "--set", "stops.total=72000 stops"},
                    "--set: stops.total = 72000 stops: not a whole number: must be a whole number "
                    "in [0, 10000000000]");
}

// Regression (fixed; was in sim/scenario.cpp Reader::parse_count, and sim/cli.cpp parse_integer):
// from_chars' errc::result_out_of_range is reported as "not a whole number" although the value IS a
// whole number, only too large. Should be "out of range: ...".
TEST_CASE("a count too large for 64 bits is out of range, not 'not a whole number'",
          "[cli][bad-input][value]") {
    TempDir tmp;
    require_refused(
        tmp, {"run", "--set", "stops.total=99999999999999999999"},
        "--set: stops.total = 99999999999999999999: out of range: must be a whole number in [0, "
        "10000000000]");
    require_refused(tmp, {"run", "--replications", "99999999999999999999"},
                    "command line: --replications = 99999999999999999999: out of range: must be a "
                    "whole number in "
                    "[1, 1000000]");
}

TEST_CASE("NaN is not a probability", "[cli][bad-input][value]") {
    TempDir tmp;
    const auto text = replaced(default_text(), "\narrest = 0.9 ", "\narrest = nan ");
    const auto file = tmp.write("nan.ini", text);
    require_refused(
        tmp, {"run", file},
        file + ":" + std::to_string(line_of(text, "\narrest = nan")) +
            ": database.IDENT1.arrest = nan: not a finite number: must be a probability in [0, 1]");
}

TEST_CASE("inf is refused where only a finite number is allowed", "[cli][bad-input][value]") {
    TempDir tmp;
    require_refused(tmp, {"run", "--set", "stops.propensity=inf"},
                    "--set: stops.propensity = inf: not a finite number: must be a number >= 0");
    require_refused(tmp, {"run", "--set", "database.IDENT1.arrest=inf"},
                    "--set: database.IDENT1.arrest = inf: not a finite number: must be a "
                    "probability in [0, 1]");
}

TEST_CASE("a non-positive dispersion is refused", "[cli][bad-input][value]") {
    TempDir tmp;
    require_refused(tmp, {"run", "--set", "stops.dispersion=-2"},
                    "--set: stops.dispersion = -2: out of range: must be a number >= 1e-12, or "
                    "'inf' (Poisson)");
    require_refused(
        tmp, {"run", "--set", "stops.dispersion=0"},
        "--set: stops.dispersion = 0: out of range: must be a number >= 1e-12, or 'inf' (Poisson)");
}

TEST_CASE("shares that do not sum to 1 are refused", "[cli][bad-input][value]") {
    TempDir tmp;
    require_refused(tmp, {"run", "--set", "dimension.sex.shares=0.5,0.6"},
                    "--set: dimension.sex.shares = 0.5,0.6: shares sum to 1.1: they must sum to 1 "
                    "(within 1e-6)");
}

TEST_CASE("the wrong number of shares is refused", "[cli][bad-input][value]") {
    TempDir tmp;
    require_refused(
        tmp, {"run", "--set", "dimension.sex.shares=0.5,0.3,0.2"},
        "--set: dimension.sex.shares = 0.5,0.3,0.2: 3 shares for 2 categories: give one share per "
        "category, in order");
}

TEST_CASE("a reference category must be one of the categories", "[cli][bad-input][value]") {
    TempDir tmp;
    require_refused(
        tmp, {"run", "--set", "dimension.sex.reference=Nonbinary"},
        "--set: dimension.sex.reference = Nonbinary: not a category of sex: allowed: Male, Female");
}

TEST_CASE("a conditional dimension needs shares for every parent category",
          "[cli][bad-input][value]") {
    TempDir tmp;
    const auto text = replaced(default_text(), "shares.Other = 0.60, 0.35, 0.05\n", "");
    const auto file = tmp.write("conditional.ini", text);
    require_refused(tmp, {"run", file},
                    file + ": dimension.status.shares.Other: missing: this key is required");
}

// Regression (fixed; was in sim/scenario.cpp, load_scenario/declared_keys): with a misspelt parent,
// declared_keys() declares no shares.<category> keys, so the unknown-key pass blames the innocent
// "dimension.status.shares.Asian" line before read_dimension() can report the parent.
TEST_CASE("a misspelt parent dimension is reported as such", "[cli][bad-input][value]") {
    TempDir tmp;
    require_refused(
        tmp, {"validate", "--set", "dimension.status.parent=ethnicty"},
        "--set: dimension.status.parent = ethnicty: not a dimension listed before status in "
        "dimensions.names: allowed: ethnicity, sex, age");
}

TEST_CASE("an unknown category in a factor list names the allowed categories",
          "[cli][bad-input][value]") {
    TempDir tmp;
    require_refused(tmp, {"run", "--set", "stops.propensity.ethnicity=Black:4,Purple:2"},
                    "--set: stops.propensity.ethnicity = Black:4,Purple:2: unknown category "
                    "'Purple' of dimension "
                    "ethnicity: allowed: White, Black, Asian, Mixed, Other");
    require_refused(tmp, {"run", "--set", "stops.propensity.ethnicity=Black"},
                    "--set: stops.propensity.ethnicity = Black: 'Black' is not Category:factor");
    require_refused(
        tmp, {"run", "--set", "stops.propensity.ethnicity=Black:4,Black:2"},
        "--set: stops.propensity.ethnicity = Black:4,Black:2: category 'Black' given twice");
}

TEST_CASE("a probability above 1 after factors names the cell", "[cli][bad-input][value]") {
    TempDir tmp;
    // IDENT1 enrolment 0.418 x Male 3 x 18-24 0.8 = 1.0032 in the first such cell.
    const auto text =
        replaced(default_text(), "enrolment.sex = Female:0.35", "enrolment.sex = Male:3");
    const auto file = tmp.write("factors.ini", text);
    require_refused(
        tmp, {"run", file},
        file + ":" + std::to_string(line_of(text, "\nenrolment = 0.418")) +
            ": database.IDENT1.enrolment: base x factors = 1.0032 for cell ethnicity=White, "
            "sex=Male, "
            "age=18-24, status=settled: a probability must stay in [0, 1] after factors");
}

TEST_CASE("a baseline outside run.policies is refused", "[cli][bad-input][value]") {
    TempDir tmp;
    const auto text = replaced(default_text(), "\nbaseline = dual-search", "\nbaseline = magic");
    const auto file = tmp.write("baseline.ini", text);
    require_refused(
        tmp, {"validate", file},
        file + ":" + std::to_string(line_of(text, "\nbaseline = magic")) +
            ": run.baseline = magic: the baseline must be one of run.policies: dual-search, "
            "ident1-only, firewall, custody-verify");
}

TEST_CASE("an unknown role names the allowed roles", "[cli][bad-input][value]") {
    TempDir tmp;
    require_refused(tmp, {"validate", "--set", "database.IDENT1.role=crim"},
                    "--set: database.IDENT1.role = crim: not one of: criminal, immigration");
}

// Regression (fixed; was in sim/error.cpp, InputError; or run_cli in sim/cli.cpp): values, keys and
// paths are echoed verbatim, so a control character in a --set value, a path or a command name
// turns the error into several lines. Escape them (e.g. "\n" -> "\\n", other bytes < 0x20 as
// "\\xNN").
TEST_CASE("an error is one line even when the input contains a newline", "[cli][bad-input][set]") {
    TempDir tmp;
    const auto r = require_refused_one_line(tmp, {"run", "--set", "stops.total=5\n6"});
    CHECK(r.err.find("stops.total") != std::string::npos);
    require_refused_one_line(tmp, {"run\nx"});
}

TEST_CASE("a newline in a --set value is still refused with exit code 2", "[cli][bad-input][set]") {
    TempDir tmp;
    const fs::path out_dir = tmp.fresh("out");
    const auto r = cli({"run", "--set", "stops.total=5\n6", "--out", out_dir.string()});
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.rfind(std::string(PREFIX) + "--set: stops.total = ", 0) == 0);
    CHECK_FALSE(fs::exists(out_dir));
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

TEST_CASE("a --set without '=' is refused", "[cli][bad-input][set]") {
    TempDir tmp;
    require_refused(tmp, {"run", "--set", "stops.total"},
                    "--set: 'stops.total' is not of the form section.key=value");
    require_refused(tmp, {"run", "--set", "=5"},
                    "--set: '=5' is not of the form section.key=value");
}

TEST_CASE("an unknown policy names the allowed policies", "[cli][bad-input][flags]") {
    TempDir tmp;
    require_refused(tmp, {"run", "--policies", "dual-search,magic"},
                    "command line: --policies = magic: unknown policy: allowed: dual-search, "
                    "ident1-only, firewall, "
                    "custody-verify");
    require_refused(tmp, {"run", "--policies", "dual-search,dual-search"},
                    "command line: --policies = dual-search: policy listed twice: list each once");
    require_refused(tmp, {"run", "--policies", ""},
                    "command line: --policies: empty list: name at least one policy");
}

TEST_CASE("the baseline must be among the chosen policies", "[cli][bad-input][flags]") {
    TempDir tmp;
    require_refused(
        tmp, {"run", "--baseline", "firewall", "--policies", "dual-search,ident1-only"},
        "command line: --baseline = firewall: the baseline must be one of the run's policies "
        "(dual-search, ident1-only)");
}

TEST_CASE("the number of --replications must be a whole number >= 1", "[cli][bad-input][flags]") {
    TempDir tmp;
    require_refused(
        tmp, {"run", "--replications", "-5"},
        "command line: --replications = -5: out of range: must be a whole number in [1, 1000000]");
    require_refused(
        tmp, {"run", "--replications", "0"},
        "command line: --replications = 0: out of range: must be a whole number in [1, 1000000]");
    require_refused(tmp, {"run", "--replications", "10x"},
                    "command line: --replications = 10x: not a whole number: must be a whole "
                    "number in [1, 1000000]");
    require_refused(tmp, {"run", "-r", "2.5"},
                    "command line: --replications = 2.5: not a whole number: must be a whole "
                    "number in [1, 1000000]");
}

TEST_CASE("the --threads and --seed values are range-checked", "[cli][bad-input][flags]") {
    TempDir tmp;
    require_refused(
        tmp, {"run", "--threads", "0"},
        "command line: --threads = 0: out of range: must be a whole number in [1, 1024]");
    require_refused(
        tmp, {"run", "--threads", "1025"},
        "command line: --threads = 1025: out of range: must be a whole number in [1, 1024]");
    require_refused(tmp, {"run", "--seed", "-1"},
                    "command line: --seed = -1: out of range: must be a whole number in [0, "
                    "9223372036854775807]");
}

// Every "unknown command" message ends with the list of commands.
const std::string COMMANDS =
    "commands are run, validate, explain, det, template, calibrate, audit, sweep, merge, "
    "analyze (see stopscan --help)";

TEST_CASE("an unknown command suggests the nearest command", "[cli][bad-input][flags]") {
    TempDir tmp;
    require_refused(tmp, {"rnn"},
                    "command line: unknown command 'rnn'; did you mean 'run'?: " + COMMANDS);
    require_refused(
        tmp, {"valdate"},
        "command line: unknown command 'valdate'; did you mean 'validate'?: " + COMMANDS);
    require_refused(tmp, {"explode"}, "command line: unknown command 'explode': " + COMMANDS);
}

// Regression (fixed; was in sim/settings.cpp, nearest/edit_distance): plain Levenshtein counts a
// transposition as 2 edits, and 2 * 3 > max(3, 3) rejects the suggestion, so the commonest typo of
// "run" gets none. Use the optimal-string-alignment (Damerau) distance, or allow distance 2 for
// short words.
TEST_CASE("a transposed command ('rnu') suggests 'run'", "[cli][bad-input][flags]") {
    TempDir tmp;
    require_refused(tmp, {"rnu"},
                    "command line: unknown command 'rnu'; did you mean 'run'?: " + COMMANDS);
}

TEST_CASE("an unknown flag is refused", "[cli][bad-input][flags]") {
    TempDir tmp;
    require_refused(tmp, {"run", "--bogus"},
                    "command line: unrecognised option '--bogus' (see --help)");
    require_refused(tmp, {"validate", "--bogus"},
                    "command line: unrecognised option '--bogus' (see --help)");
}

TEST_CASE("a flag prefix is not guessed", "[cli][bad-input][flags]") {
    TempDir tmp;
    require_refused(tmp, {"run", "--rep", "5"},
                    "command line: unrecognised option '--rep' (see --help)");
    require_refused(tmp, {"validate", "--print"},
                    "command line: unrecognised option '--print' (see --help)");
}

TEST_CASE("a flag given twice is refused", "[cli][bad-input][flags]") {
    TempDir tmp;
    require_refused(
        tmp, {"run", "-r", "5", "--replications", "6"},
        "command line: option '--replications' cannot be specified more than once (see --help)");
}

TEST_CASE("a stray positional argument is refused", "[cli][bad-input][flags]") {
    TempDir tmp;
    const auto file = tmp.write("ok.ini", default_text());
    require_refused_one_line(tmp, {"run", file, "extra.ini"});
    require_refused_one_line(tmp, {"validate", file, "extra.ini"});
}

// Regression (fixed; was in sim/cli.cpp, parse): Boost's "too many positional options have been
// specified on the command line" does not say which argument was extra. Catch
// po::too_many_positional_options_error and report e.g. "command line: unexpected argument
// 'extra.ini': give at most one SCENARIO.ini (see --help)".
TEST_CASE("a stray positional argument is named in the message", "[cli][bad-input][flags]") {
    TempDir tmp;
    const auto file = tmp.write("ok.ini", default_text());
    const auto r = require_refused_one_line(tmp, {"run", file, "extra.ini"});
    CHECK(r.err.find("'extra.ini'") != std::string::npos);
}

TEST_CASE("an --out that is a file or empty is refused", "[cli][bad-input][out]") {
    TempDir tmp;
    const auto file = tmp.write("not-a-dir", "keep me\n");
    const auto r = cli({"run", "--replications", "2", "--set", "stops.total=200", "--out", file});
    CHECK(r.err == std::string(PREFIX) + "command line: --out = " + file +
                       ": exists and is not a directory: choose a directory path\n");
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK(read_file(file) == "keep me\n");

    const auto empty = cli({"run", "--out", ""});
    CHECK(empty.err ==
          std::string(PREFIX) + "command line: --out: empty path: name an output directory\n");
    CHECK(empty.code == 2);
    CHECK(empty.out.empty());
}

TEST_CASE("a non-empty --out needs --force, which then writes every output", "[cli][out]") {
    TempDir tmp;
    const fs::path dir = tmp.path() / "results";
    fs::create_directory(dir);
    const auto keep = tmp.write("results/keep.txt", "not an output\n");
    const std::vector<std::string> args = {
        "run", "--replications", "2", "--set", "stops.total=200", "--out", dir.string()};

    const auto refused = cli(args);
    CHECK(refused.err == std::string(PREFIX) + "command line: --out = " + dir.string() +
                             ": directory is not empty: add --force to overwrite its outputs, or "
                             "choose another --out\n");
    CHECK(refused.code == 2);
    CHECK(refused.out.empty());
    CHECK(listing(dir) == std::set<std::string>{"keep.txt"});
    CHECK(read_file(keep) == "not an output\n");

    auto forced_args = args;
    forced_args.emplace_back("--force");
    const auto forced = cli(forced_args);
    INFO("stderr: " << forced.err);
    REQUIRE(forced.code == 0);
    CHECK(forced.err.empty());
    CHECK(forced.out.find("Outputs in " + dir.string() + "/") != std::string::npos);
    CHECK(listing(dir) == std::set<std::string>{"effects.csv", "keep.txt", "manifest.json",
                                                "report.html", "results.json", "summary.csv"});
    for (const char* name :
         {"summary.csv", "effects.csv", "results.json", "manifest.json", "report.html"})
        CHECK(fs::file_size(dir / name) > 0);
    for (const auto& name : listing(dir)) CHECK(name.find(".tmp") == std::string::npos);
    CHECK(read_file(keep) == "not an output\n");

    // --quiet prints nothing; --force overwrites the previous outputs again.
    forced_args.emplace_back("--quiet");
    const auto quiet = cli(forced_args);
    CHECK(quiet.code == 0);
    CHECK(quiet.out.empty());
    CHECK(quiet.err.empty());
}

// ---------------------------------------------------------------------------------------------
// Good inputs
// ---------------------------------------------------------------------------------------------

TEST_CASE("editor variants of the default scenario are accepted unchanged", "[cli][good-input]") {
    TempDir tmp;
    const auto& plain = default_text();
    const auto reference_file = tmp.write("plain.ini", plain);
    const auto reference = cli({"validate", reference_file, "--print-cells"});
    REQUIRE(reference.code == 0);

    // "key = value" -> "key\t=\tvalue" and three trailing spaces on every line.
    std::string tabs;
    std::istringstream lines(plain);
    for (std::string line; std::getline(lines, line);) {
        const auto eq = line.find(" = ");
        if (eq != std::string::npos && line.front() != '#') line.replace(eq, 3, "\t=\t");
        tabs += line + "   \n";
    }
    REQUIRE(tabs.find("\t=\t") != std::string::npos);

    const std::string bom = "\xEF\xBB\xBF";
    const std::vector<std::pair<std::string, std::string>> variants = {
        {"bom.ini", bom + plain},
        {"crlf.ini", to_crlf(plain)},
        {"tabs.ini", tabs},
        {"all.ini", bom + to_crlf(tabs)},
    };
    for (const auto& [name, text] : variants) {
        const auto file = tmp.write(name, text);
        const auto r = cli({"validate", file, "--print-cells"});
        INFO(name << " stderr: " << r.err);
        CHECK(r.code == 0);
        CHECK(r.err.empty());
        CHECK(r.out.rfind(file + ": valid\n", 0) == 0);
        // The same resolved scenario and cell table as the plain file.
        CHECK(after_first_line(r.out) == after_first_line(reference.out));
    }
}

TEST_CASE("a CRLF file's error names the line without a carriage return",
          "[cli][bad-input][file]") {
    TempDir tmp;
    const auto text = replaced(default_text(), "\ntotal = 72000", "\ntotl = 72000");
    const auto file = tmp.write("crlf-typo.ini", to_crlf(text));
    require_refused(tmp, {"run", file},
                    file + ":" + std::to_string(line_of(text, "\ntotl = 72000")) +
                        ": stops.totl = 72000: unknown key; did you mean 'stops.total'?");
}

TEST_CASE("'inf' is accepted where it is allowed", "[cli][good-input]") {
    // scenarios/face-review.ini gives its dispersion (the default solves it from a target).
    const auto r = cli({"validate", std::string(STOPSCAN_SOURCE_DIR) + "/scenarios/face-review.ini",
                        "--set", "stops.dispersion=inf"});
    CHECK(r.code == 0);
    CHECK(r.err.empty());
}

TEST_CASE("validate accepts the default scenario, embedded or from its file", "[cli][good-input]") {
    const auto embedded = cli({"validate"});
    CHECK(embedded.code == 0);
    CHECK(embedded.err.empty());
    CHECK(embedded.out.rfind("default scenario: valid\n", 0) == 0);

    const std::string path = std::string(STOPSCAN_SOURCE_DIR) + "/scenarios/default.ini";
    const auto from_file = cli({"validate", path});
    CHECK(from_file.code == 0);
    CHECK(from_file.err.empty());
    CHECK(from_file.out.rfind(path + ": valid\n", 0) == 0);
    CHECK(after_first_line(from_file.out) == after_first_line(embedded.out));
}

TEST_CASE("validate --print-cells prints the cell table", "[cli][good-input]") {
    const auto r = cli({"validate", "--print-cells"});
    REQUIRE(r.code == 0);
    CHECK(r.err.empty());
    std::istringstream lines(r.out);
    std::string line;
    bool found_header = false;
    int rows = 0;
    while (std::getline(lines, line)) {
        if (found_header && !line.empty()) ++rows;
        if (line.rfind("cell,population", 0) == 0) found_header = true;
    }
    CHECK(found_header);
    CHECK(rows == 5 * 2 * 5 * 3);  // ethnicity x sex x age x status in the default scenario
}

// ---------------------------------------------------------------------------------------------
// Help, version, no arguments
// ---------------------------------------------------------------------------------------------

TEST_CASE("the top-level --help describes the commands", "[cli][help]") {
    const auto r = cli({"--help"});
    CHECK(r.code == 0);
    CHECK(r.err.empty());
    CHECK(r.out.find("stopscan run") != std::string::npos);
    CHECK(r.out.find("stopscan validate") != std::string::npos);
    CHECK(cli({"-h"}).code == 0);
}

TEST_CASE("each command has --help", "[cli][help]") {
    const auto run = cli({"run", "--help"});
    CHECK(run.code == 0);
    CHECK(run.err.empty());
    CHECK(run.out.find("--replications") != std::string::npos);
    const auto validate = cli({"validate", "--help"});
    CHECK(validate.code == 0);
    CHECK(validate.err.empty());
    CHECK(validate.out.find("--print-cells") != std::string::npos);
}

TEST_CASE("the --version output is one line starting with 'stopscan '", "[cli][help]") {
    const auto r = cli({"--version"});
    CHECK(r.code == 0);
    CHECK(r.err.empty());
    CHECK(r.out.rfind("stopscan ", 0) == 0);
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
}

TEST_CASE("no arguments is a usage error", "[cli][help]") {
    std::ostringstream out;
    std::ostringstream err;
    const int code = stopscan::run_cli({"stopscan"}, out, err);
    CHECK(code == 2);
    CHECK((out.str() + err.str()).find("Usage:") != std::string::npos);
}
