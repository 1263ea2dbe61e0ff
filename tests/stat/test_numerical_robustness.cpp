// Numerical robustness (issue 8): extreme but legal parameter values either run with results
// that agree with the closed form, or are refused with a one-line error; no NaN reaches an
// output file.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "stat/agreement.hpp"
#include "stopscan/cli.hpp"
#include "stopscan/error.hpp"
#include "stopscan/run_plan.hpp"
#include "stopscan/scenario.hpp"
#include "support/temp_dir.hpp"

using namespace stopscan;
namespace fs = std::filesystem;

namespace {

struct Extreme {
    std::string name;
    std::vector<std::string> overrides;
};

// Every case is expected to run: each is a value a user may legitimately sweep to.
const std::vector<Extreme> EXTREMES = {
    {"FMR 0 (no false match possible)",
     {"matcher.fingerprint.IDENT1.fmr=0", "matcher.fingerprint.IABS.fmr=0"}},
    {"FNMR 1 (mates never found)", {"matcher.fingerprint.IABS.fnmr=1"}},
    {"gallery of one record", {"database.IABS.size=1"}},
    {"gallery of 10^12 records", {"database.IABS.size=1000000000000"}},
    {"categories with shares of 1e-12",
     {"dimension.ethnicity.shares=0.999999999996, 1e-12, 1e-12, 1e-12, 1e-12"}},
    {"zero stops", {"stops.total=0"}},
};

Scenario with_overrides(const std::vector<std::string>& overrides) {
    Settings settings = Settings::parse_ini(default_scenario_text(), "");
    for (const auto& o : overrides) settings.apply_override(o);
    return load_scenario(settings);
}

std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

TEST_CASE("extreme parameter values agree with explain", "[stat][explain][robustness]") {
    for (const auto& x : EXTREMES) {
        DYNAMIC_SECTION(x.name) {
            const auto scenario = std::make_shared<const Scenario>(with_overrides(x.overrides));
            RunOptions options;
            options.replications = 100;
            options.seed = 99;
            const auto a = test::compare(make_run_plan(scenario, options));
            CHECK(a.failed == 0);
        }
    }
}

TEST_CASE("extreme parameter values write no NaN into any output", "[robustness]") {
    auto runs = EXTREMES;
    runs.push_back({"one replication", {"run.replications=1"}});
    for (const auto& x : runs) {
        DYNAMIC_SECTION(x.name) {
            test::TempDir dir;
            std::vector<std::string> args{"stopscan",
                                          "run",
                                          "-q",
                                          "--replications",
                                          "20",
                                          "--out",
                                          (dir.path() / "o").string()};
            if (x.name == "one replication") args[4] = "1";
            for (const auto& o : x.overrides) {
                args.push_back("--set");
                args.push_back(o);
            }
            std::ostringstream out, err;
            REQUIRE(run_cli(args, out, err) == 0);
            const std::regex nan(R"((^|[^A-Za-z])nan([^A-Za-z]|$))", std::regex::icase);
            std::size_t files = 0;
            for (const auto& f : fs::directory_iterator(dir.path() / "o")) {
                if (f.path().extension() == ".png") continue;
                ++files;
                INFO(f.path());
                CHECK_FALSE(std::regex_search(read(f.path()), nan));
            }
            CHECK(files >= 5);
        }
    }
}

TEST_CASE("FMR 1 is refused with a one-line error", "[robustness]") {
    try {
        with_overrides({"matcher.fingerprint.IABS.fmr=1"});
        FAIL("FMR 1 was accepted");
    } catch (const InputError& e) {
        const std::string message = e.what();
        CHECK(message.find("every comparison would match") != std::string::npos);
        CHECK(message.find('\n') == std::string::npos);
    }
}

TEST_CASE("FMR 0 gives no false match at all, FNMR 1 no true match", "[robustness]") {
    const auto zero = std::make_shared<const Scenario>(
        with_overrides({"matcher.fingerprint.IDENT1.fmr=0", "matcher.fingerprint.IABS.fmr=0"}));
    RunOptions options;
    options.replications = 5;
    const Results r = Engine(make_run_plan(zero, options)).run();
    const auto false_matches = r.layout.at(0, MetricLayout::FALSE_MATCHES);
    const auto true_matches = r.layout.at(1, MetricLayout::TRUE_MATCHES);
    std::uint64_t fm = 0;
    for (std::size_t rep = 0; rep < 5; ++rep)
        for (std::size_t c = 0; c < r.cells(); ++c) fm += r.row(rep, 0, c)[false_matches];
    CHECK(fm == 0);

    const auto blind =
        std::make_shared<const Scenario>(with_overrides({"matcher.fingerprint.IABS.fnmr=1"}));
    const Results b = Engine(make_run_plan(blind, options)).run();
    std::uint64_t tm = 0;
    for (std::size_t rep = 0; rep < 5; ++rep)
        for (std::size_t c = 0; c < b.cells(); ++c) tm += b.row(rep, 0, c)[true_matches];
    CHECK(tm == 0);
}
