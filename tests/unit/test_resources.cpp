#include "stopscan/resources.hpp"

#include <catch2/catch.hpp>
#include <memory>

#include "stopscan/run_plan.hpp"
#include "stopscan/scenario.hpp"
#include "stopscan/settings.hpp"

using namespace stopscan;

TEST_CASE("the footprint grows by a fixed amount per replication", "[resources]") {
    const auto scenario = std::make_shared<const Scenario>(
        load_scenario(Settings::parse_ini(default_scenario_text(), "")));
    RunOptions options;
    options.replications = 10;
    const RunPlan plan = make_run_plan(scenario, options);
    const Engine engine(plan);
    const RunFootprint one = estimate_footprint(engine, plan, 1);
    const RunFootprint many = estimate_footprint(engine, plan, 1001);
    CHECK(many.bytes - one.bytes == 1000 * one.bytes_per_replication);
    // At least the engine's own tallies: 8 bytes per (policy, cell, metric).
    CHECK(one.bytes_per_replication >=
          8 * plan.policies.size() * engine.cells().size() * engine.layout().size());
    CHECK(many.expected_stops == Approx(1001.0 * static_cast<double>(scenario->stops_total)));
    // Fewer policies, less memory.
    options.policies = std::vector<std::string>{"dual-search"};
    const RunPlan single = make_run_plan(scenario, options);
    CHECK(estimate_footprint(Engine(single), single, 1).bytes_per_replication <
          one.bytes_per_replication);
}

TEST_CASE("byte counts are printed in powers of 1000", "[resources]") {
    CHECK(format_bytes(0) == "0 bytes");
    CHECK(format_bytes(999) == "999 bytes");
    CHECK(format_bytes(1000) == "1 kB");
    CHECK(format_bytes(281'856) == "282 kB");
    CHECK(format_bytes(24'300'000'000ULL) == "24.3 GB");
}

TEST_CASE("available memory is known on Linux", "[resources]") {
    const auto available = available_memory_bytes();
    REQUIRE(available.has_value());
    CHECK(*available > 0);
}
