// bench/engine_throughput: how many stops per second does the engine simulate on the default
// scenario with all four policies, and how does it scale from 1 thread to all cores?
//
// Prints medians of repeats with their spread and the ratio measured in the same run, plus a
// JSON line (name, value, unit) for machines. `--quick` is the CI size. No pass/fail.
#include <oneapi/tbb/info.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "stopscan/build_info.hpp"
#include "stopscan/engine.hpp"

using namespace stopscan;

namespace {

struct Measurement {
    double median_stops_per_s;
    double min_stops_per_s;
    double max_stops_per_s;
};

Measurement measure(const std::shared_ptr<const Scenario>& scenario, std::int64_t replications,
                    int threads, int repeats) {
    RunOptions options;
    options.replications = replications;
    options.threads = threads;
    std::vector<double> rates;
    for (int i = 0; i < repeats; ++i) {
        const Engine engine(make_run_plan(scenario, options));
        const Results r = engine.run();
        rates.push_back(static_cast<double>(r.total_stops()) / r.wall_seconds);
    }
    std::sort(rates.begin(), rates.end());
    return {rates[rates.size() / 2], rates.front(), rates.back()};
}

}  // namespace

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    const std::int64_t replications = quick ? 20 : 200;
    const int repeats = quick ? 3 : 7;
    const int cores = tbb::info::default_concurrency();
    const auto scenario = std::make_shared<const Scenario>(
        load_scenario(Settings::parse_ini(default_scenario_text(), "")));

    const Measurement one = measure(scenario, replications, 1, repeats);
    const Measurement all = measure(scenario, replications, cores, repeats);
    const double speedup = all.median_stops_per_s / one.median_stops_per_s;

    std::printf(
        "bench/engine_throughput (%s): default scenario, 4 policies, %lld replications, median of "
        "%d\n",
        quick ? "quick" : "full", static_cast<long long>(replications), repeats);
    std::printf("machine: %d cores; build %s; commit %s\n", cores, STOPSCAN_BUILD_TYPE,
                STOPSCAN_GIT_COMMIT);
    std::printf("  1 thread : %6.2f M stops/s  [%.2f, %.2f]  %6.1f ns/stop/core\n",
                one.median_stops_per_s / 1e6, one.min_stops_per_s / 1e6, one.max_stops_per_s / 1e6,
                1e9 / one.median_stops_per_s);
    std::printf("  %d threads: %6.2f M stops/s  [%.2f, %.2f]  %6.1f ns/stop/core\n", cores,
                all.median_stops_per_s / 1e6, all.min_stops_per_s / 1e6, all.max_stops_per_s / 1e6,
                1e9 * cores / all.median_stops_per_s);
    std::printf("  scaling 1 -> %d threads: %.2fx\n", cores, speedup);
    std::printf(
        "{\"bench\": \"engine_throughput\", \"build\": \"%s\", \"commit\": \"%s\", \"cores\": %d, "
        "\"figures\": ["
        "{\"name\": \"stops_per_s_1_thread\", \"value\": %.0f, \"unit\": \"stops/s\"}, "
        "{\"name\": \"stops_per_s_all_threads\", \"value\": %.0f, \"unit\": \"stops/s\"}, "
        "{\"name\": \"thread_scaling\", \"value\": %.3f, \"unit\": \"ratio\"}]}\n",
        STOPSCAN_BUILD_TYPE, STOPSCAN_GIT_COMMIT, cores, one.median_stops_per_s,
        all.median_stops_per_s, speedup);
    return 0;
}
