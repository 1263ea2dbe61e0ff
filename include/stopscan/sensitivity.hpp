// Sensitivity analysis of a sweep's outputs (docs/sensitivity.md): Morris elementary effects,
// Sobol' first-order and total indices with bootstrap intervals, a one-at-a-time tornado
// table, the Monte Carlo noise of the outputs against their spread across points, and PRIM
// scenario discovery. Pure numerics on vectors: `stopscan analyze` (sim/cli_analyze.cpp)
// reads a sweep directory and feeds them; the tests feed analytic functions.
//
// Glossary: k axes; N Sobol' base points; r Morris trajectories; y an output at a point;
// Δ the Morris step in unit coordinates (the axis's share of its range, see docs/sweeps.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace stopscan {

/// One step of a Morris trajectory: `axis` moved by `step` in unit coordinates (±Δ), the
/// output going from `y_before` to `y_after`.
struct MorrisStep {
    std::size_t axis = 0;
    double step = 0;
    double y_before = 0;
    double y_after = 0;
};

/// Morris's statistics of one axis over its elementary effects EE = (y_after − y_before) /
/// step: the effect of moving the axis across its whole unit range, in output units.
struct MorrisIndex {
    std::size_t axis = 0;
    double mu = 0;       ///< mean of EE (signed: effects of opposite sign cancel)
    double mu_star = 0;  ///< mean of |EE| (Campolongo, Cariboni and Saltelli 2007)
    double sigma = 0;    ///< standard deviation of EE (n − 1): interactions or non-linearity
    std::int64_t effects = 0;
};

/// μ, μ* and σ per axis, indexed by axis (0 .. axes-1). Steps with a non-finite output are
/// skipped and not counted. Throws std::invalid_argument for an axis ≥ `axes` or a zero step.
std::vector<MorrisIndex> morris_indices(const std::vector<MorrisStep>& steps, std::size_t axes);

/// Sobol' indices of one axis, with bootstrap percentile 95 % intervals.
struct SobolIndex {
    std::size_t axis = 0;
    double first = 0;  ///< S_i, Saltelli et al. (2010) estimator
    double first_lo = 0;
    double first_hi = 0;
    double total = 0;  ///< S_Ti, Jansen (1999) estimator
    double total_lo = 0;
    double total_hi = 0;
};

/// The indices of every axis and the output variance they are shares of.
struct SobolResult {
    std::vector<SobolIndex> indices;
    double variance = 0;  ///< V(Y) over the 2N outputs of blocks A and B
    std::int64_t base_points = 0;
    std::int64_t bootstrap = 0;
};

/// Saltelli's estimators from the outputs of blocks A, B and AB_i (A with axis i from B), N
/// each: S_i = mean(f_B (f_ABi − f_A)) / V, S_Ti = mean((f_A − f_ABi)²) / (2V). Intervals:
/// `bootstrap` resamples of the N base rows (with replacement, the same rows for every
/// block), percentiles 2.5 and 97.5; the resampling is keyed by `seed` (counter-based draws),
/// so the result is deterministic. `bootstrap` 0 gives intervals equal to the estimate.
/// Throws std::invalid_argument when the blocks differ in size, N < 2, or V = 0 or is not
/// finite.
SobolResult sobol_indices(const std::vector<double>& y_a, const std::vector<double>& y_b,
                          const std::vector<std::vector<double>>& y_ab, std::int64_t bootstrap,
                          std::uint64_t seed);

/// Monte Carlo noise of an output across points: the mean of the points' squared standard
/// errors against the variance of the point estimates.
struct NoiseSummary {
    double mean_mc_variance = 0;  ///< mean over points of SE²
    double output_variance = 0;   ///< variance of y across points (n − 1)
    double ratio = 0;             ///< mean_mc_variance / output_variance (inf when it is 0)
    std::int64_t points = 0;      ///< points with a finite y and SE
};

/// Throws std::invalid_argument when `y` and `se` differ in size.
NoiseSummary mc_noise(const std::vector<double>& y, const std::vector<double>& se);

/// One row of a tornado table: the output with one axis at its low and high end, the others
/// at the base point.
struct TornadoRow {
    std::size_t axis = 0;
    double low = 0;
    double high = 0;
    double swing = 0;  ///< |high − low|
};

/// The rows sorted by swing, largest first (ties by axis). Throws std::invalid_argument when
/// `low` and `high` differ in size.
std::vector<TornadoRow> tornado_table(const std::vector<double>& low,
                                      const std::vector<double>& high);

/// PRIM's settings (Friedman and Fisher 1999).
struct PrimOptions {
    double alpha = 0.05;        ///< share of the box's points peeled (or pasted) per step
    double min_support = 0.05;  ///< peeling stops when a box would hold fewer points
    double min_coverage = 0.5;  ///< the chosen box: the densest with at least this coverage
    double max_qp = 0.05;       ///< restrictions with a larger quasi-p-value are dropped
};

/// A box: lower and upper bound per axis (inclusive), and what it holds.
struct PrimBox {
    std::vector<double> lo;
    std::vector<double> hi;
    std::int64_t points = 0;  ///< points inside
    std::int64_t cases = 0;   ///< cases inside
    double coverage = 0;      ///< cases inside / all cases
    double density = 0;       ///< cases inside / points inside
    double support = 0;       ///< points inside / all points
    /// Per axis, the quasi-p-value of its restriction (Bryant and Lempert 2010): NaN when
    /// the axis is not restricted; filled for the chosen box only.
    std::vector<double> qp;
};

/// The peeling trajectory and the chosen box after pasting.
struct PrimResult {
    std::vector<PrimBox> trajectory;  ///< box 0 holds every point
    std::size_t chosen_step = 0;      ///< the trajectory box that was pasted
    PrimBox box;                      ///< the chosen box, after pasting
    std::vector<double> data_lo;      ///< the smallest value of each axis in the data
    std::vector<double> data_hi;
    std::int64_t cases = 0;
};

/// Patient rule induction (Friedman and Fisher 1999, "Bump hunting in high-dimensional
/// data"): peel, from the current box, the α-share of its points with the lowest or highest
/// values of one axis (all points at the cut value when values tie), choosing the peel with
/// the largest gain in density per point removed (the EMA Workbench's "lenient 1"; the
/// densest remaining box when every peel is α); stop below `min_support`. The chosen box is the
/// densest box of the trajectory with coverage ≥ `min_coverage` (the largest such box on ties; box
/// 0 when none is denser); then pasting widens it an α-share at a time while that raises its
/// density. `x` holds one row of axis values per point. Throws std::invalid_argument for ragged
/// rows, sizes that differ, no points, or options out of range.
PrimResult prim(const std::vector<std::vector<double>>& x, const std::vector<bool>& cases,
                const PrimOptions& options = {});

}  // namespace stopscan
