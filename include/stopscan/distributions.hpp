// Exact discrete samplers used by the engine: how many persons of a population cell are
// stopped at least once (binomial), and how many times a stopped person is stopped
// (zero-truncated negative binomial, MODEL.md §3).
//
// Both are exact in distribution up to double rounding: no normal or Poisson
// approximation, because the engine draws binomials with n up to ~6e7 and n*p anywhere
// from 0 to ~1e6 (one per population cell and replication), and an approximation that is
// good in the bulk is worst in the small cells and for p near 0 or 1.
#pragma once

#include <cstdint>
#include <vector>

#include "stopscan/random.hpp"

namespace stopscan {

/// Exact Binomial(n, p) draw using uniforms from `u` (inversion for min(p, 1-p)*n <= 30,
/// BTPE of Kachitvichyanukul & Schmeiser 1988 otherwise). n = 0, p = 0 and p = 1 consume
/// no uniform. Throws std::invalid_argument if n < 0, n > 2^53 (beyond exact doubles) or
/// p is NaN or outside [0, 1]; std::logic_error only if `u` is degenerate (more than
/// 10^4 consecutive rejections, probability < 1e-1000 for a uniform stream).
std::int64_t binomial(std::int64_t n, double p, UniformStream& u);

/// Number of stops of one person, given that the person is stopped at least once:
/// zero-truncated negative binomial with (untruncated) mean `mu` > 0 and dispersion k > 0
/// (variance mu + mu^2/k); k = +infinity means Poisson. The constructor tabulates the
/// truncated CDF so that draw(), called once per stopped person, is a table look-up.
class TruncatedStopCount {
public:
    /// Throws std::invalid_argument on mu <= 0, non-finite mu, k <= 0 or NaN k, and on a
    /// mean too large to tabulate (table of 2^20 counts short of the bulk: mu >~ 1e6).
    TruncatedStopCount(double mu, double k);

    /// P(Y >= 1) of the untruncated law, to relative ~1e-15 even for mu = 1e-12. Never throws.
    double p_stopped() const noexcept { return p_stopped_; }

    /// E[Y | Y >= 1] = mu / p_stopped(). Never throws.
    double mean_given_stopped() const noexcept { return mu_ / p_stopped_; }

    /// P(at least one of the Y stops is marked | Y >= 1) when each stop is marked
    /// independently with probability w: (1 − G(1 − w)) / P(Y >= 1), with G the generating
    /// function of the untruncated law; thinning keeps it negative binomial (Poisson), so
    /// the numerator is the P(Y >= 1) of mean mu·w, accurate for tiny w.
    double p_at_least_one(double w) const noexcept;

    /// E[min(Y, cap) | Y >= 1]: the mean stops per stopped person when each person's stops
    /// are capped at `cap` (cap <= 0: no cap, mean_given_stopped()). Exact for the law
    /// draw() samples: the tabulated pmf summed up to the cap (beyond the table, where the
    /// mass left is < 1e-17, the uncapped mean). Never throws.
    double mean_given_stopped(std::int64_t cap) const noexcept;

    /// p_at_least_one(w) over the capped count min(Y, cap) (cap <= 0: no cap):
    /// Σ_{y<cap} pmf(y)·(1 − (1 − w)^y) + P(Y >= cap | Y >= 1)·(1 − (1 − w)^cap), each
    /// 1 − (1 − w)^y by expm1/log1p so that tiny w keeps its precision. Never throws.
    double p_at_least_one(double w, std::int64_t cap) const noexcept;

    /// Exact inversion of the truncated CDF with one uniform u in [0, 1): the smallest
    /// y >= 1 with u < F(y). Beyond the table the pmf recurrence continues, so any count
    /// stays reachable (at O(y - table_size()) cost, which only means far beyond any stop
    /// count, mu/k >~ 1e5, ever pay). Non-decreasing in u; u < 0 or NaN gives 1. Never
    /// throws.
    std::int64_t draw(double u) const noexcept;

    /// pmf of the truncated law at y (0 for y < 1). Never throws.
    double pmf(std::int64_t y) const noexcept;

    /// Number of tabulated counts (the table covers y = 1 .. table_size()). Never throws.
    std::int64_t table_size() const noexcept { return static_cast<std::int64_t>(cdf_.size()); }

private:
    /// pmf(y + 1) / pmf(y) of the untruncated law, for y >= 1.
    double ratio(double y) const noexcept {
        return poisson_ ? mu_ / (y + 1.0) : (y + k_) / (y + 1.0) * pr_;
    }

    /// An upper bound of sum_{j > y} pmf(j) given pmf(y) = f, or +inf when the ratios
    /// beyond y are not yet all below 1.
    double tail_bound(double y, double f) const noexcept;

    double mu_;
    double k_;
    bool poisson_;
    double pr_;                ///< mu / (k + mu): the NB "success" probability (unused for Poisson)
    double p_stopped_;         ///< P(Y >= 1)
    std::vector<double> pmf_;  ///< pmf_[i] = truncated pmf at y = i + 1
    std::vector<double> cdf_;  ///< cdf_[i] = truncated CDF at y = i + 1
};

}  // namespace stopscan
