// From integer tallies to the numbers people read: marginals by dimension, rates, ratios
// against the reference category, paired policy effects, each with a 95 % interval taken
// across replications (MODEL.md §7–§8).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "stopscan/engine.hpp"

namespace stopscan {

/// A point estimate with its 95 % replication-percentile interval. Empty optionals mean
/// "not defined" (e.g. a ratio whose reference rate is zero in every replication); the
/// CSV writes them as NA.
struct Estimate {
    std::optional<double> estimate;
    std::optional<double> lo95;     ///< 2.5 % replication percentile: the spread of one period
    std::optional<double> hi95;     ///< 97.5 % replication percentile
    std::int64_t replications = 0;  ///< replications in which the value was defined
    /// 95 % confidence interval of the estimate itself (Student t over replications; delta
    /// method on the log for ratios; a one-sided Poisson upper bound when no event occurred).
    std::optional<double> mean_lo95;
    std::optional<double> mean_hi95;
    /// Reliability flags, '+'-separated: zero_events, low_events, outside_band (docs/output.md).
    std::string flag;
};

/// Fewer events than this, summed over all replications, flag a row `low_events`.
inline constexpr double LOW_EVENTS = 20;

/// One row of summary.csv.
struct SummaryRow {
    std::string policy;
    std::string dimension;  ///< "all" or a dimension name
    std::string category;   ///< "all" or a category name
    std::string metric;
    Estimate value;
};

/// One row of effects.csv: policy minus baseline, per replication, then summarised.
struct EffectRow {
    std::string policy;
    std::string baseline;
    std::string dimension;
    std::string category;
    std::string metric;
    Estimate delta;
    std::optional<double> relative_change;  ///< mean delta / mean baseline value
};

/// All rows of a run, in output order.
struct Summary {
    std::vector<SummaryRow> rows;
    std::vector<EffectRow> effects;
    /// Finds a row; nullptr if absent.
    const SummaryRow* find(const std::string& policy, const std::string& dimension,
                           const std::string& category, const std::string& metric) const;
    /// Finds an effect row; nullptr if absent.
    const EffectRow* find_effect(const std::string& policy, const std::string& dimension,
                                 const std::string& category, const std::string& metric) const;
};

/// Summarises a run's tallies.
Summary summarize(const Results& results);

struct Expectation;
/// The expected value of every metric of summary.csv, from closed-form expected counts:
/// rates and ratios are those of the expected counts. Rows carry no interval
/// (replications = 0); effects are the differences of the expectations.
Summary summarize_expected(const Expectation& expectation);

/// Whether every group's estimate of a metric is precise enough (after OpenMC's tally
/// triggers): half the width of its 95 % confidence interval, relative to the estimate.
struct PrecisionCheck {
    bool met = true;
    double worst = 0;          ///< largest relative half-width among the rows checked
    std::string worst_row;     ///< "policy dimension=category" of that row
    std::size_t checked = 0;   ///< rows with a non-zero estimate
    std::size_t excluded = 0;  ///< rows with a zero estimate, which no precision can be relative to
};

/// Checks `metric` in every policy and group against `target` (e.g. 0.05).
PrecisionCheck check_precision(const Summary& summary, const std::string& metric, double target);

/// The q-quantile (R's type 7, linear interpolation) of `values`, which it sorts.
double quantile(std::vector<double>& values, double q);

}  // namespace stopscan
