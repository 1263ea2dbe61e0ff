// `stopscan calibrate` end to end: the fragment it writes for the shipped example FOI tables,
// included in a scenario, reproduces the tables' ratios and the uses per person; and its
// command-line errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "stopscan/cli.hpp"
#include "stopscan/scenario.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

using stopscan::test::TempDir;

struct Outcome {
    int code;
    std::string out, err;
};

Outcome cli(std::vector<std::string> args) {
    args.insert(args.begin(), "stopscan");
    std::ostringstream out, err;
    const int code = stopscan::run_cli(args, out, err);
    return {code, out.str(), err.str()};
}

std::string read(const fs::path& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Expected value of policy,dimension,category,metric in explain.csv.
double explained(const fs::path& csv, const std::string& key) {
    std::ifstream in(csv);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key + ",", 0) == 0) return std::stod(line.substr(key.size() + 1));
    FAIL("no row " << key);
    return NAN;
}

// The default scenario without the keys the fragment sets: the base a user would include
// the fragment into.
std::string base_scenario() {
    std::istringstream in{std::string(stopscan::default_scenario_text())};
    std::string out;
    for (std::string line; std::getline(in, line);)
        if (line.rfind("propensity.ethnicity", 0) != 0 && line.rfind("propensity.sex", 0) != 0 &&
            line.rfind("dispersion", 0) != 0 && line.rfind("target_stops_per_person", 0) != 0)
            out += line + "\n";
    return out;
}

const std::string COUNTS =
    std::string(STOPSCAN_SOURCE_DIR) + "/scenarios/data/foi-example-counts.csv";
const std::string POPULATION =
    std::string(STOPSCAN_SOURCE_DIR) + "/scenarios/data/foi-example-population.csv";

}  // namespace

TEST_CASE("the calibrated fragment, included in a scenario, reproduces the FOI ratios",
          "[cli][calibrate]") {
    TempDir dir;
    const auto base = dir.write("base.ini", base_scenario());
    const auto fragment = (dir.path() / "fragment.ini").string();
    const auto r = cli({"calibrate", base, "--counts", COUNTS, "--population", POPULATION, "--uses",
                        "42", "--people", "35", "--out", fragment});
    INFO(r.err);
    REQUIRE(r.code == 0);
    // The pooled ratios the command printed: "All areas  ethnicity  Black  count ... ratio".
    std::map<std::string, double> observed;
    const std::regex row(
        R"(All areas\s+(ethnicity|sex)\s+(\w+)\s+\S+\s+\S+\s+\S+\s+\[[^\]]*\]\s+([0-9.]+)\s+\[)");
    for (std::sregex_iterator it(r.out.begin(), r.out.end(), row), end; it != end; ++it)
        observed[(*it)[1].str() + "," + (*it)[2].str()] = std::stod((*it)[3].str());
    REQUIRE(observed.size() == 5);  // Black, Asian, Mixed, Other, Male
    CHECK(read(fragment).find("[stops]") != std::string::npos);

    const auto scenario =
        dir.write("calibrated.ini", "# stopscan test\ninclude = base.ini, fragment.ini\n");
    const auto out = dir.fresh("explain");
    const auto e = cli({"explain", scenario, "-q", "--out", out.string()});
    INFO(e.err);
    REQUIRE(e.code == 0);
    for (const auto& [key, ratio] : observed) {
        INFO(key << " observed ratio " << ratio);
        // The printed ratios have 3 significant digits.
        CHECK(explained(out / "explain.csv", "dual-search," + key + ",stop_rate_ratio") ==
              Approx(ratio).epsilon(0.006));
    }
    CHECK(explained(out / "explain.csv", "dual-search,all,all,stops_per_person") ==
          Approx(42.0 / 35.0).epsilon(1e-6));
}

TEST_CASE("a fragment included where the scenario already sets its keys is refused",
          "[cli][calibrate]") {
    TempDir dir;
    const auto fragment = (dir.path() / "fragment.ini").string();
    REQUIRE(cli({"calibrate", "--counts", COUNTS, "--population", POPULATION, "--out", fragment})
                .code == 0);
    std::string text = "include = fragment.ini\n" + std::string(stopscan::default_scenario_text());
    const auto scenario = dir.write("twice.ini", text);
    const auto r = cli({"validate", scenario});
    CHECK(r.code == 2);
    CHECK(r.err.find("key also given in the included file") != std::string::npos);
}

TEST_CASE("calibrate refuses incomplete or contradictory flags", "[cli][calibrate]") {
    CHECK(cli({"calibrate"}).err ==
          "stopscan: error: command line: nothing to calibrate: give --counts FILE --population "
          "FILE, and/or --uses N --people M (see --help)\n");
    CHECK(cli({"calibrate", "--counts", COUNTS}).err ==
          "stopscan: error: command line: --population: missing: --counts and --population are "
          "given together\n");
    CHECK(cli({"calibrate", "--uses", "42"}).err ==
          "stopscan: error: command line: --people: missing: --uses and --people are given "
          "together\n");
    CHECK(cli({"calibrate", "--uses", "35", "--people", "42"}).err ==
          "stopscan: error: command line: --people = 42: more people than uses (35): each person "
          "scanned is at least one use\n");
    CHECK(cli({"calibrate", "--uses", "-3", "--people", "1"}).code == 2);
    TempDir dir;
    const auto existing = dir.write("exists.ini", "x");
    const auto r = cli({"calibrate", "--uses", "42", "--people", "35", "--out", existing});
    CHECK(r.code == 2);
    CHECK(r.err.find("file exists: add --force") != std::string::npos);
    CHECK(read(existing) == "x");
}

TEST_CASE("calibrate fits the dispersion alone from uses per person", "[cli][calibrate]") {
    const auto r = cli({"calibrate", "--uses", "42", "--people", "35"});
    REQUIRE(r.code == 0);
    // The default scenario's own dispersion, 0.01, is this fit rounded (scenarios/default.ini).
    CHECK(r.out.find("gives stops.dispersion = 0.00974905") != std::string::npos);
    CHECK(r.out.find("\ndispersion = 0.00974905\n") != std::string::npos);
    // Poisson is the most regular repeat-stop law: fewer uses per person cannot be fitted.
    const auto low = cli({"calibrate", "--uses", "35", "--people", "35"});
    CHECK(low.code == 2);
}
