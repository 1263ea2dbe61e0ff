#include "stopscan/resources.hpp"

#include <sys/resource.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace stopscan {

RunFootprint estimate_footprint(const Engine& engine, const RunPlan& plan,
                                std::int64_t replications) {
    const Scenario& s = *plan.scenario;
    const std::uint64_t policies = plan.policies.size();
    const std::uint64_t cells = engine.cells().size();
    const std::uint64_t metrics = engine.layout().size();
    std::uint64_t groups = 1;
    for (const auto& d : s.dimensions) groups += d.categories.size();
    // Per replication: the engine's tally row per (policy, cell), and summarize()'s per-group
    // counts (one small vector each: payload plus allocator overhead) and per-group values of
    // every output metric (about two per count: the count and its rate).
    // Importance sampling keeps a weighted correction (a double) beside each count.
    const std::uint64_t tallies =
        policies * cells * metrics * 8 * (plan.rare_events.active() ? 2 : 1);
    const std::uint64_t group_counts = policies * groups * (metrics * 8 + 48);
    const std::uint64_t group_values = policies * groups * metrics * 2 * 8;
    RunFootprint f;
    f.bytes_per_replication = tallies + group_counts + group_values;
    const auto reps = static_cast<std::uint64_t>(replications);
    // Fixed part: the model, the output texts (a few MB for the default scenario) and the
    // process itself (libraries, TBB's threads), measured at about 60 MB.
    constexpr std::uint64_t FIXED = 64'000'000;
    f.bytes = FIXED + reps * f.bytes_per_replication;
    f.expected_stops = static_cast<double>(s.stops_total) * static_cast<double>(replications);
    return f;
}

std::optional<std::uint64_t> available_memory_bytes() {
    std::optional<std::uint64_t> available;
    std::ifstream meminfo("/proc/meminfo");
    std::string line;
    while (std::getline(meminfo, line)) {
        if (line.rfind("MemAvailable:", 0) != 0) continue;
        std::istringstream fields(line.substr(13));
        std::uint64_t kib = 0;
        if (fields >> kib) available = kib * 1024;
    }
    rlimit limit{};
    if (::getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
        const auto cap = static_cast<std::uint64_t>(limit.rlim_cur);
        if (!available || cap < *available) available = cap;
    }
    return available;
}

std::string format_bytes(std::uint64_t bytes) {
    const char* units[] = {"bytes", "kB", "MB", "GB", "TB", "PB"};
    double value = static_cast<double>(bytes);
    int unit = 0;
    while (value >= 1000 && unit < 5) {
        value /= 1000;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.3g %s", value, units[unit]);
    return text;
}

}  // namespace stopscan
