// libFuzzer target: parameter distribution expressions ("uniform(a, b)", "beta(a, b)", ...).
// The first byte picks one of the ranges the scenario truncates laws to; the rest is the
// expression. ParameterDistribution::parse refuses with std::invalid_argument (its documented
// rejection, turned into an InputError by the scenario reader). A law the scenario would accept
// (same rule as sim/scenario.cpp: a bounded law inside the range, a normal overlapping it) must
// give finite quantiles inside the range and the law's support, for every u in [0, 1).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>

#include "fuzz_support.hpp"
#include "stopscan/parameter_distribution.hpp"

namespace {

struct Range {
    double lo;
    double hi;
};

// The ranges of the scenario keys that accept a distribution (sim/scenario.cpp).
constexpr Range RANGES[] = {
    {0.0, 1.0},                                   // probabilities and shares
    {0.0, std::numeric_limits<double>::max()},    // factors
    {1e-12, std::numeric_limits<double>::max()},  // stops.dispersion
    {1e-3, 1e3},                                  // genuine_sd
    {1.0, 1e6},                                   // run.band, high end
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const Range range = RANGES[data[0] % std::size(RANGES)];
    const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::optional<stopscan::ParameterDistribution> law;
    try {
        law = stopscan::ParameterDistribution::parse(text);
    } catch (const std::invalid_argument&) {
        // Its message reaches the user inside an InputError, which escapes control characters.
        return 0;
    }
    if (!law) return 0;
    const bool bounded = law->kind != stopscan::ParameterDistribution::normal;
    if (bounded && (law->support_lo() < range.lo || law->support_hi() > range.hi)) return 0;
    if (law->support_hi() < range.lo || law->support_lo() > range.hi) return 0;
    const double lo = std::max(range.lo, law->support_lo());
    const double hi = std::min(range.hi, law->support_hi());
    for (const double u : {0.0, 1e-12, 0.25, 0.5, 0.75, 1 - 1e-12}) {
        const double x = law->quantile(u, range.lo, range.hi);
        if (!(x >= lo && x <= hi))
            stopscan::fuzz::finding(law->text() + " truncated to [" + std::to_string(range.lo) +
                                    ", " + std::to_string(range.hi) + "]: quantile(" +
                                    std::to_string(u) + ") = " + std::to_string(x));
    }
    return 0;
}
