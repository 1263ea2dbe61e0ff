// The simulation held against the closed form (MODEL.md §10): for every shipped scenario and
// every count metric, the mean over replications agrees with `stopscan explain`'s
// expectation within the replication standard error.
#include <boost/math/distributions/students_t.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "stat/agreement.hpp"
#include "stopscan/engine.hpp"
#include "stopscan/expectation.hpp"

using namespace stopscan;
namespace fs = std::filesystem;

using stopscan::test::Agreement;
using stopscan::test::compare;

TEST_CASE("every shipped scenario's simulated means agree with explain", "[stat][explain]") {
    std::vector<fs::path> files;
    for (const auto& entry :
         fs::directory_iterator(std::string(STOPSCAN_SOURCE_DIR) + "/scenarios"))
        if (entry.path().extension() == ".ini") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    REQUIRE(!files.empty());
    for (const auto& file : files) {
        INFO("scenario " << file.filename().string());
        const auto scenario =
            std::make_shared<const Scenario>(load_scenario(Settings::read_ini_file(file.string())));
        RunOptions options;
        options.replications = 200;
        options.seed = 4242;
        const Agreement a = compare(make_run_plan(scenario, options));
        // Not vacuous: the smallest scenario (42 stops a run, south-wales-oifr) has ~80
        // metrics frequent enough to test; the others several hundred.
        CHECK(a.tested > 50);
        CHECK(a.failed == 0);
    }
}

TEST_CASE("with uncertain parameters the simulated means agree with explain's mean over the draws",
          "[stat][explain][psa]") {
    auto settings = Settings::parse_ini(default_scenario_text(), "");
    settings.apply_override("matcher.fingerprint.IABS.fmr=loguniform(5e-11, 5e-10)");
    settings.apply_override("database.IABS.false_flag=beta(2, 198)");
    const auto scenario = std::make_shared<const Scenario>(load_scenario(settings));
    RunOptions options;
    options.replications = 100;
    options.seed = 77;
    const Agreement a = compare(make_run_plan(scenario, options));
    CHECK(a.tested > 100);
    CHECK(a.failed == 0);
}

TEST_CASE("with a cap on stops per person the simulated means agree with explain",
          "[stat][explain][cap]") {
    // 2.5 stops per stopped person, so that a cap of 2 cuts a large share of the stops and
    // the capped closed form is tested where it matters.
    auto settings = Settings::parse_ini(default_scenario_text(), "");
    settings.apply_override("stops.total=30000");
    settings.apply_override("stops.target_stops_per_person=2.5");
    const auto scenario = std::make_shared<const Scenario>(load_scenario(settings));
    RunOptions options;
    options.replications = 200;
    options.seed = 4243;
    options.max_stops_per_person = 2;
    const RunPlan capped = make_run_plan(scenario, options);
    const Agreement a = compare(capped);
    CHECK(a.tested > 100);
    CHECK(a.failed == 0);
    // Not vacuous: the cap removes a visible share of the expected stops.
    options.max_stops_per_person = 0;
    auto total_stops = [](const Expectation& e) {
        double sum = 0;
        for (std::size_t c = 0; c < e.cell_population.size(); ++c)
            sum += e.row(0, c)[MetricLayout::STOPS];
        return sum;
    };
    const double all = total_stops(expected_counts(make_run_plan(scenario, options)));
    const double kept = total_stops(expected_counts(capped));
    CHECK(kept < 0.9 * all);
}
