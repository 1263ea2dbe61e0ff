// Parameter uncertainty (MODEL.md §8): a scenario number written as a distribution,
// `uniform(a,b)`, `loguniform(a,b)`, `beta(a,b)`, `triangular(a,c,b)` or `normal(m,s)`, is
// drawn once per replication from the key (seed, replication, parameter), truncated to the
// parameter's allowed range; policies share the draw.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "stopscan/random.hpp"

namespace stopscan {

/// A distribution over a parameter's value.
struct ParameterDistribution {
    enum Kind { uniform, loguniform, beta, triangular, normal } kind;
    std::vector<double> args;

    /// Parses "name(arg, ...)"; nullopt if `text` is not of that shape (a plain number).
    /// Throws std::invalid_argument with a message naming what is wrong and what is allowed
    /// for an unknown name, a wrong argument count or invalid arguments.
    static std::optional<ParameterDistribution> parse(const std::string& text);

    /// Lowest and highest value the distribution can take (normal: ±infinity).
    double support_lo() const noexcept;
    double support_hi() const noexcept;
    /// The value at cumulative probability u of the distribution truncated to [lo, hi]
    /// (inversion), for u in [0, 1).
    double quantile(double u, double lo, double hi) const;
    /// The median of the truncated distribution: the nominal value shown for the scenario.
    double median(double lo, double hi) const { return quantile(0.5, lo, hi); }
    /// "uniform(0.005, 0.02)"
    std::string text() const;
};

/// One uncertain parameter of a scenario: where it is written, its law and its range.
struct UncertainParameter {
    std::string key;  ///< scenario key
    int item = -1;    ///< position in a list value ("Black:uniform(3,18)"), or -1
    ParameterDistribution law;
    double lo;  ///< the parameter's allowed range: the law is truncated to it
    double hi;

    /// The draw of replication `replication` (one uniform keyed by the parameter's name).
    double draw(std::uint64_t seed, std::uint64_t replication) const;
};

}  // namespace stopscan
