// Expected counts in closed form, without sampling (MODEL.md §10): `stopscan explain`.
//
// The same tally layout as the engine's Results, but each entry is an expectation computed
// from the model's probabilities: expected stops and persons per cell; per person state
// (enrolment, truth and record in every database) the law of one stop's searches and the
// policy's actions, followed database by database as a small Markov chain over (arrested,
// referred, wrongful so far); persons affected from the probability generating function of
// the zero-truncated negative binomial number of stops. It is an independent calculation:
// the tests hold the simulation's means to it.
#pragma once

#include <cstdint>
#include <vector>

#include "stopscan/metrics.hpp"
#include "stopscan/run_plan.hpp"

namespace stopscan {

/// Expected counts per (policy, cell, metric): counts[(p * cells + c) * metrics + k].
struct Expectation {
    RunPlan plan;
    MetricLayout layout;
    std::vector<std::int64_t> cell_population;
    std::vector<double> counts;

    std::size_t cells() const noexcept { return cell_population.size(); }
    const double* row(std::size_t policy, std::size_t cell) const noexcept {
        return counts.data() + (policy * cells() + cell) * layout.size();
    }
};

/// Computes the expectations of a plan. Its seed and replications matter only with
/// uncertain parameters: then the result is the mean over the replications' parameter draws.
Expectation expected_counts(const RunPlan& plan);

}  // namespace stopscan
