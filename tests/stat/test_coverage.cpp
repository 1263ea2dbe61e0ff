// Interval quality: the nominal 95 % confidence interval of an estimate (summary.csv's
// mean_lo95, mean_hi95) covers the true value about 95 % of the time. The true value is the
// closed form of `stopscan explain`, itself held to the simulation by
// test_explain_agreement.cpp.
#include <catch2/catch.hpp>
#include <cmath>

#include "stopscan/engine.hpp"
#include "stopscan/expectation.hpp"
#include "stopscan/summary.hpp"

using namespace stopscan;

namespace {

// A small world with a rare-ish event (false matches) and a ratio between two groups.
const char* const SMALL = R"(
[scenario]
population = 20000
[dimensions]
names = group
[dimension.group]
categories = A, B
shares = 0.6, 0.4
reference = A
[stops]
total = 600
propensity.group = B:3
dispersion = 0.5
[databases]
names = G
[database.G]
role = criminal
size = 200000
enrolment = 0.3
truth = 0.05
false_flag = 0.05
gallery_flag_rate = 0.2
arrest = 0.9
[matcher.fingerprint.G]
fmr = 1e-7
fnmr = 0.01
[run]
policies = dual-search
)";

}  // namespace

TEST_CASE("nominal 95% intervals cover the true value between 93% and 97% of the time",
          "[stat][coverage]") {
    const auto scenario =
        std::make_shared<const Scenario>(load_scenario(Settings::parse_ini(SMALL, "coverage.ini")));
    RunOptions options;
    options.replications = 30;
    const Summary truth = summarize_expected(expected_counts(make_run_plan(scenario, options)));
    const std::vector<std::pair<std::string, std::string>> targets = {{"all", "false_matches.G"},
                                                                      {"all", "arrests"},
                                                                      {"B", "stop_rate_ratio"},
                                                                      {"B", "exposure_ratio"}};
    std::vector<double> true_value;
    for (const auto& [category, metric] : targets) {
        const auto* row =
            truth.find("dual-search", category == "all" ? "all" : "group", category, metric);
        REQUIRE(row);
        REQUIRE(row->value.estimate);
        true_value.push_back(*row->value.estimate);
    }

    // K independent runs (seeds 1..K). If the intervals are exact, the number covering the
    // truth is Binomial(K, 0.95) for each target. The acceptance region 93%–97% must hold
    // with probability 1 − 1e-6 over the 4 targets (Bonferroni, 1.25e-7 per tail each):
    // z = 5.16, and 0.02·K ≥ z·sqrt(K·0.95·0.05) needs K ≥ 2,850. K = 3,000: the region is
    // ±60 around 2,850 against a binomial sd of 11.9 (±5.0 sd), and an interval with true
    // coverage 92% or 98% would be caught (its count falls outside with probability > 0.99).
    constexpr int K = 3000;
    std::vector<int> covered(targets.size(), 0);
    for (int k = 1; k <= K; ++k) {
        RunOptions run = options;
        run.seed = static_cast<std::uint64_t>(k);
        run.threads = 1;
        const Summary s = summarize(Engine(make_run_plan(scenario, run)).run());
        for (std::size_t t = 0; t < targets.size(); ++t) {
            const auto& [category, metric] = targets[t];
            const auto* row =
                s.find("dual-search", category == "all" ? "all" : "group", category, metric);
            REQUIRE(row);
            if (row->value.mean_lo95 && row->value.mean_hi95 &&
                *row->value.mean_lo95 <= true_value[t] && true_value[t] <= *row->value.mean_hi95)
                ++covered[t];
        }
    }
    for (std::size_t t = 0; t < targets.size(); ++t) {
        INFO(targets[t].first << " " << targets[t].second << ": covered " << covered[t] << " of "
                              << K);
        CHECK(covered[t] >= static_cast<int>(0.93 * K));
        CHECK(covered[t] <= static_cast<int>(0.97 * K));
    }
}
