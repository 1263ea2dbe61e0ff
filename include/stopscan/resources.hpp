// How big a run will be, before it starts: the memory its tallies and summary need, the stops
// it will simulate, and the memory this machine can give it. `run` refuses a run that would
// not fit (issue: "a resource error, not an out-of-memory kill"), unless --force.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "stopscan/engine.hpp"

namespace stopscan {

/// The estimated size of a run of `replications` replications of an engine's plan.
struct RunFootprint {
    std::uint64_t bytes = 0;  ///< peak memory of tallies, summary and outputs
    std::uint64_t bytes_per_replication = 0;
    double expected_stops = 0;  ///< stops simulated over all replications
};

/// Estimates the footprint from the plan's shape (policies × cells × metrics × groups); the
/// constants are measured (docs/performance.md), within ±25 % of the peak RSS of the
/// default scenario from 200 to 8,000 replications.
RunFootprint estimate_footprint(const Engine& engine, const RunPlan& plan,
                                std::int64_t replications);

/// Memory this process may still allocate: MemAvailable from /proc/meminfo, lowered to the
/// address-space limit (ulimit -v) if one is set. nullopt when neither can be read.
std::optional<std::uint64_t> available_memory_bytes();

/// "1.2 GB", "340 MB", "12 kB" (powers of 1000, as `df -H` and the figures).
std::string format_bytes(std::uint64_t bytes);

}  // namespace stopscan
