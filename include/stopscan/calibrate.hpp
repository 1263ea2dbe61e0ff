// Calibration from FOI tables (issue 5, `stopscan calibrate`; docs/calibrate.md):
//
//   CountTable + PopulationTable → observed_rates()   rates per 1,000 and rate ratios with
//                                                     exact Poisson / Katz intervals
//   observed rates → targets_from_rates() → fit_propensity()   stop propensity factors by
//                                                     iterative proportional fitting (IPF)
//   uses per person → fit_dispersion()                negative binomial k of repeat stops
//   FitResult → propensity_fragment()                 an INI fragment for a scenario
//
// Glossary (MODEL.md §3): mu = mean stops per person of a cell; k = negative binomial
// shape (stops.dispersion); R = uses per person seen (stops / persons stopped at least once).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "stopscan/foi_table.hpp"
#include "stopscan/scenario.hpp"

namespace stopscan {

class CellTable;

/// A two-sided interval; either end may be NaN (not defined) or +inf.
struct Interval {
    double lo = 0;
    double hi = 0;
};

/// Exact (Garwood 1936) Poisson interval for the mean of a count x at confidence `level`:
/// [Gamma(x, 1) quantile at α/2, Gamma(x + 1, 1) quantile at 1 − α/2], lower end 0 when
/// x = 0 (equivalently χ²(2x)/2 and χ²(2x + 2)/2). For a suppressed count [lo, hi] the
/// union of the intervals over the range: lower end of lo, upper end of hi. Throws
/// std::invalid_argument for a negative count or a level outside (0, 1).
Interval garwood_interval(CountInterval count, double level = 0.95);

/// Katz log interval for the ratio of rates (a / pop_a) / (b / pop_b):
/// exp(log RR ± z·√(1/a + 1/b)). Both limits are monotone in a and b (for a, b ≥ 1), so for
/// suppressed counts the union over the ranges is taken at the ends: lower limit at
/// (max(a.lo, 1), b.hi), upper limit at (a.hi, max(b.lo, 1)). Zeros: when a may be 0 the
/// lower limit is 0; when a is exactly 0 the upper limit is NaN (Katz has none); when b may
/// be 0 the upper limit is +inf; when b is exactly 0 both are NaN. Throws
/// std::invalid_argument for a population <= 0 or a level outside (0, 1).
Interval katz_interval(CountInterval a, double pop_a, CountInterval b, double pop_b,
                       double level = 0.95);

/// Area name of the pooled rows (sums over the areas of a table with several areas).
inline constexpr const char* POOLED_AREA = "All areas";

/// One row of the observed-rates table.
struct RateRow {
    std::string area;  ///< "" for a table without areas; POOLED_AREA for pooled rows
    bool pooled = false;
    std::string dimension;
    std::string category;
    CountInterval count;
    double population = 0;
    double rate = 0;  ///< per 1,000 residents; the midpoint of a suppressed count
    Interval rate_ci;
    std::string reference;  ///< reference category of the dimension
    bool is_reference = false;
    double ratio = 0;  ///< rate / reference rate (midpoints); NaN when the reference rate is 0
    Interval ratio_ci;
    std::string note;  ///< why a value is flagged or missing, "" when nothing is
};

/// Rates per 1,000 residents with Garwood 95 % intervals and rate ratios against the
/// reference category of the same dimension and area, with Katz 95 % intervals, for every
/// row of `counts`, then pooled rows (area POOLED_AREA: counts and populations summed over
/// the areas that have the key) when the table has several areas. `references` maps a
/// dimension to its reference category; a dimension not in it takes the category with the
/// largest population summed over areas. Throws InputError naming the file and line for a
/// count row without a population row, a reference category missing from an area, or
/// tables of which one has an area column and the other not.
std::vector<RateRow> observed_rates(const CountTable& counts, const PopulationTable& population,
                                    const std::map<std::string, std::string>& references);

/// The rates as an aligned plain-text table (units: per 1,000 residents; suppressed counts
/// marked '*', with a footnote). Never throws except std::bad_alloc.
std::string format_rates_table(const std::vector<RateRow>& rows);

/// The rates as CSV (header: area,pooled,dimension,category,count_lo,count_hi,suppressed,
/// population,rate_per_1000,rate_lo95,rate_hi95,reference,ratio,ratio_lo95,ratio_hi95,
/// note); an undefined value is an empty field, an infinite one "inf".
std::string rates_csv(const std::vector<RateRow>& rows);

/// A target for one dimension: desired ratio of each category's marginal stop rate to the
/// reference category's. A category absent from `ratios`, or NaN, is free (its factor is
/// kept); the reference category may only be given as 1.
struct MarginalTarget {
    std::string dimension;
    std::map<std::string, double> ratios;
    std::string source;  ///< names the origin in errors: "counts.csv" or "x.ini:12"
};

/// Stopping rule of fit_propensity().
struct FitOptions {
    /// Largest relative residual |fitted ratio / target − 1| accepted. 1e-10 is far below
    /// any sampling error of a simulated ratio and far above double rounding after a few
    /// thousand multiplications (~1e-13), so a converged fit always reaches it.
    double tolerance = 1e-10;
    /// Raking cycles before giving up. Consistent margins converge geometrically, in tens
    /// of cycles at most; a thousand without convergence means they are inconsistent.
    int max_iterations = 1000;
};

/// One fitted category.
struct FitResidual {
    std::string dimension;
    std::string category;
    double target = 0;
    double fitted = 0;    ///< marginal rate ratio given by the fitted factors
    double relative = 0;  ///< |fitted / target − 1|
};

/// Result of fit_propensity().
struct FitResult {
    CellParameter propensity;                    ///< the input with fitted factors (same base)
    std::vector<std::size_t> fitted_dimensions;  ///< indices of the targeted dimensions
    int iterations = 0;                          ///< raking cycles run
    double max_residual = 0;                     ///< largest relative residual
    double tolerance = 0;                        ///< the tolerance it met
    std::vector<FitResidual> residuals;          ///< one row per targeted non-reference category
};

/// Marginal stop rate of every category of every dimension:
/// rates[d][k] = Σ_{cells in k} share · propensity / Σ_{cells in k} share (NaN when the
/// category has no share). Never throws except std::bad_alloc.
std::vector<std::vector<double>> marginal_rates(const std::vector<Dimension>& dims,
                                                const CellTable& cells,
                                                const CellParameter& propensity);

/// Fits the factors of the targeted dimensions by raking: cycle over them, scaling each
/// targeted category's factor by target / current ratio (one scaling fixes that dimension's
/// margins exactly; the others drift and are fixed in turn), the reference factor staying
/// as given, until the largest relative residual is below options.tolerance. Untargeted
/// dimensions and free categories keep their factors. Throws InputError (source: the
/// target's source) for an unknown dimension or category, two targets for one dimension, a
/// target <= 0 or infinite, a target for a category with zero population share, a
/// reference target other than 1, a targeted category whose cells all have propensity 0,
/// and when the fit does not converge (the margins are inconsistent).
FitResult fit_propensity(const std::vector<Dimension>& dims, const CellTable& cells,
                         const CellParameter& propensity,
                         const std::vector<MarginalTarget>& targets,
                         const FitOptions& options = {});

/// Targets from observed rates: for each dimension of the rows of `area` ("" = the pooled
/// rows when there are any, else the only area), the ratio of each category's rate to the
/// rate of the scenario dimension's reference category. Scenario categories absent from
/// the table are free. Throws InputError (source: `source`) for a dimension or category
/// that is not in the scenario (suggesting the nearest), an area not in the rows, a
/// reference category missing from the table or with a zero count, and a category with a
/// zero count (a ratio of 0 cannot be fitted by a factor).
std::vector<MarginalTarget> targets_from_rates(const std::vector<RateRow>& rates,
                                               const std::vector<Dimension>& dims,
                                               const std::string& area, const std::string& source);

/// Mean stops per person of each cell: stops_total · propensity(c) / Σ population ·
/// propensity (MODEL.md §3). Throws InputError if no cell with people has propensity > 0.
std::vector<double> stop_means_by_cell(const CellTable& cells, const CellParameter& propensity,
                                       std::int64_t stops_total);

/// Uses per person seen, R(k) = Σ pop·mu / Σ pop·P(Y >= 1), for negative binomial
/// Y ~ NB(mu, k) (k = +inf: Poisson). Never throws.
double uses_per_person(const std::vector<double>& mean_by_cell,
                       const std::vector<double>& population_by_cell, double k);

/// The dispersion k at which uses_per_person() equals `uses_per_person` (e.g. 42 uses on 35
/// people: 1.2), by bisection on log k in [1e-12, 1e12]; +inf when the ratio is the Poisson
/// value within a relative 1e-9 (or closer to it than k = 1e12 gets). Throws InputError
/// (source: `source`) when the ratio is below 1 or below the Poisson value (repeat stops
/// cannot be more regular than Poisson; the message gives the minimum), when it needs
/// k < 1e-12, or when the cells have no stops.
double fit_dispersion(const std::vector<double>& mean_by_cell,
                      const std::vector<double>& population_by_cell, double uses_per_person,
                      const std::string& source = "--uses");

/// INI text of a scenario fragment with the fitted factors: a header comment (the
/// `provenance` lines, what was fitted, residual and iterations) and a `[stops]` section with
/// one `propensity.DIM = Cat:factor, ...` line per fitted dimension (non-reference
/// categories, 6 significant digits). Never throws except std::bad_alloc.
std::string propensity_fragment(const std::vector<Dimension>& dims, const FitResult& fit,
                                const std::string& provenance);

}  // namespace stopscan
