// Regression of the default scenario at a small replication count, compared byte for byte.
// Regenerate after an intended change with: tests/regression/update.sh
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "stopscan/engine.hpp"
#include "stopscan/summary.hpp"
#include "stopscan/writers.hpp"

using namespace stopscan;

namespace {

std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

TEST_CASE("default scenario, 20 replications, seed 1: summary.csv and effects.csv unchanged",
          "[regression]") {
    // Same settings as tests/regression/update.sh: stopscan run --replications 20 --seed 1.
    const auto scenario = std::make_shared<const Scenario>(
        load_scenario(Settings::parse_ini(default_scenario_text(), "")));
    RunOptions options;
    options.replications = 20;
    options.seed = 1;
    const Results results = Engine(make_run_plan(scenario, options)).run();
    const Summary summary = summarize(results);
    const std::string dir = std::string(STOPSCAN_SOURCE_DIR) + "/tests/regression/default/";
    CHECK(summary_csv(summary) == read(dir + "summary.csv"));
    CHECK(effects_csv(summary) == read(dir + "effects.csv"));
}
