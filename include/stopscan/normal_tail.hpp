// The standard normal upper tail Q(x) = P(Z > x), its logarithm and its inverse, accurate
// far into the tail (MODEL.md §5).
//
// The 1:N search draws the best non-mated score of a gallery of M ~ 1e7 records by
// inverting the tail of a maximum, so it needs Q^-1(q) for q down to ~1e-300 and below,
// where a lower-tail Φ^-1(1 - q) has long rounded to Φ^-1(1) = +inf. Everything here is
// written on the upper tail and, where a probability can underflow, on its logarithm.
// The algorithms and their measured accuracy are described in sim/normal_tail.cpp.
#pragma once

namespace stopscan {

/// Q(x) = P(Z > x) for Z ~ N(0, 1), to a few units in the last place for every x whose
/// Q(x) is a normal double (x < 37.5); gradual underflow beyond, 0 past x ~ 38.5.
/// Q(-inf) = 1, Q(+inf) = 0, NaN for NaN. Never throws.
double upper_tail(double x) noexcept;

/// log Q(x), to a few ulp for every finite x: for x up to 1.3e154 (beyond, log Q < -DBL_MAX
/// and the result is -inf), and as log1p(-Q(-x)) for x < 0 (so ~ -Q(-x), underflowing with
/// it past x ~ -38.5). log_upper_tail(-inf) = 0, log_upper_tail(+inf) = -inf, NaN for NaN.
/// Never throws.
double log_upper_tail(double x) noexcept;

/// z with Q(z) = q, for q in (0, 1), down to the smallest subnormal: relative error a few
/// 1e-16 (measured 2.8e-16; absolute < 2e-19 near z = 0). q = 0 gives +inf, q = 1 gives
/// -inf, any other q outside [0, 1] or NaN gives NaN. Never throws.
double upper_tail_quantile(double q) noexcept;

/// z with log Q(z) = log_q, for log_q < 0, including log_q far below log(DBL_MIN) (e.g.
/// -1e4, where z ~ 141): same accuracy as upper_tail_quantile. log_q = 0 gives -inf,
/// -inf gives +inf, log_q > 0 or NaN gives NaN. Never throws.
double upper_tail_quantile_log(double log_q) noexcept;

/// The lower-tail quantile Φ^-1(p) = -Q^-1(p), same accuracy and conventions (p = 0 gives
/// -inf, p = 1 gives +inf). Never throws.
double normal_quantile(double p) noexcept;

}  // namespace stopscan
