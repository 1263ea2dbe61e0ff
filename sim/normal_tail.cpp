// Standard normal upper tail, its logarithm and its inverse (see normal_tail.hpp).
//
// Q(x) (upper_tail): 0.5 * erfc(x / sqrt 2). The only loss in that formula is the rounding
// of x / sqrt 2: erfc has condition number ~2y^2 at y = x / sqrt 2, so a relative rounding
// of 2^-53 in y becomes ~x^2 * 2^-53 in Q (1.5e-13 at x = 37). The rounding error
// e = x / sqrt 2 - fl(x / sqrt 2) is recovered exactly with an fma on a two-part 1/sqrt 2,
// and removed to first order: Q(x) = 0.5 erfc(y) - e * exp(-x^2 / 2) / sqrt(pi) (the second
// order term is ~x^2 e^2, far below an ulp). What is left is glibc's erfc error, a few ulp.
//
// log Q(x) (log_upper_tail): log(Q(x)) for 0 <= x < 8; log1p(-Q(-x)) for x < 0; for x >= 8
//   log Q(x) = -x^2/2 - log x - log sqrt(2 pi) + log(x R(x)),
// with x^2 split exactly into hi + lo by an fma and the Mills ratio R(x) = Q(x) / phi(x) from
// its continued fraction R(x) = 1/(x + 1/(x + 2/(x + 3/(x + ...)))) (Abramowitz & Stegun
// 26.2.14), evaluated backwards from 24 terms: the truncation error is below 1e-22 for
// x >= 8 (checked against mpmath at 50 digits: 2e-21 with 20 terms, 1e-27 with 30, at x = 8;
// it falls fast with x). The same fraction gives the hazard phi(x) / Q(x) = 1 / R(x) that
// the quantile refinement needs.
//
// Q^-1 (upper_tail_quantile, upper_tail_quantile_log): the starting value is Wichura's
// PPND16, "Algorithm AS 241: The percentage points of the normal distribution", Applied
// Statistics 37(3):477-484, 1988 (coefficients verbatim from the paper; accurate to about
// 1 part in 1e16). Its tail branches are written on r = sqrt(-log q), so they take log q
// directly and never form 1 - q. Beyond r = 27 (q < ~1e-317, reachable only through the log
// entry point) the start is the asymptotic solution of log Q(z) = log q,
//   z^2 = -2 log q - log(2 pi z^2) - 2 / z^2 (two fixed-point passes, relative error < 1e-5).
// Then refinement:
//  - central region (q >= 0.075, |z| <= 1.44): one Newton step on Q(z) - q, written as
//    (0.5 - q) - 0.5 erf(z / sqrt 2) for q >= 1/4 so that z keeps its relative accuracy as
//    z -> 0, and as upper_tail(z) - q below;
//  - tail (q < 0.075): Halley steps on f(z) = log Q(z) - log q, f' = -h, f'' = -h (h - z),
//    with h the hazard, until a step is below 1e-12 z (Halley's error is then ~step^3): one
//    evaluation from the AS 241 start, two from the asymptotic one. Working on log Q keeps
//    the problem well conditioned however small q is: an absolute error d in log Q moves z
//    by d / h ~ d / z, and log Q is itself ~ -z^2/2, so the relative error of z stays at the
//    rounding level of log Q.
//
// Measured accuracy (glibc 2.36 libm, x86-64, -O2; against mpmath 1.3.0 at 60 digits;
// eps = 2^-52 = 2.2e-16):
//  - upper_tail: max relative error 3.8e-16 (1.7 eps) over 20001 points of [-10, 37.5];
//    without the first-order correction it is 1.9e-13, at x = 37.3;
//  - log_upper_tail: max relative error 4.2e-16 (1.9 eps) over 20001 points of [-37, 37],
//    1.1e-16 over 801 log-spaced points of [8, 1e6]; the two sides of the switch at x = 8
//    are each within 1 ulp of the truth;
//  - upper_tail_quantile: max relative error 2.8e-16 (1.3 eps) over 6001 log-spaced q in
//    [1e-320, 0.5], 6001 points of [0.5, 1 - 1e-16] and 2001 points approaching q = 1/2
//    (absolute error there <= 1.6e-19). Unrefined, AS 241 reaches 6.8e-16 (r <= 27) and the
//    asymptotic start 6.7e-10 (at r = 27);
//  - upper_tail_quantile_log: max relative error 3.4e-16 (1.5 eps) over 2001 log-spaced -log q
//    in [1e-300, 1e6] and 1001 points around log q = -ln 2.
// Cost: ~120 ns per quantile for log q in [-50, 0], ~300 ns down to log q = -5000.
#include "stopscan/normal_tail.hpp"

#include <array>
#include <cmath>
#include <cstddef>
#include <limits>

namespace stopscan {
namespace {

constexpr double INF = std::numeric_limits<double>::infinity();
constexpr double NAN_VALUE = std::numeric_limits<double>::quiet_NaN();

/// 1/sqrt(2) = SQRT1_2_HI + SQRT1_2_LO, HI the double nearest, LO the rest (mpmath).
constexpr double SQRT1_2_HI = 0.70710678118654757;
constexpr double SQRT1_2_LO = -4.8336466567264565186e-17;
constexpr double INV_SQRT_PI = 0.5641895835477562869480795;   // 1/sqrt(pi)
constexpr double INV_SQRT_2PI = 0.3989422804014326779399461;  // 1/sqrt(2 pi)
constexpr double LOG_SQRT_2PI = 0.9189385332046727417803297;  // log sqrt(2 pi)
constexpr double LOG_2PI = 1.837877066409345483560659;        // log(2 pi)
constexpr double LN2 = 0.6931471805599453094172321;
constexpr double LN2_HI = 0.6931471805599453;  // ln 2 = LN2_HI + LN2_LO (mpmath)
constexpr double LN2_LO = 2.3190468138462996155e-17;

/// Below this x, log Q comes from erfc; from here on, from the continued fraction.
constexpr double CF_MIN_X = 8.0;
constexpr int CF_TERMS = 24;

/// AS 241 (PPND16) coefficients, ascending powers; the denominators' constant term is 1.
constexpr double SPLIT_CENTRAL = 0.425;  // central region |p - 1/2| <= 0.425
constexpr double CENTRAL_CONST = 0.180625;
constexpr double SPLIT_TAIL = 5.0;  // r = sqrt(-log p) <= 5: first tail branch
constexpr double TAIL_CONST = 1.6;
constexpr double R_MAX_AS241 = 27.0;  // beyond: asymptotic start (AS 241 covers p > ~1e-316)
// Three per line, as in the paper's tables.
// clang-format off
constexpr std::array<double, 8> A = {
    3.3871328727963666080e0,  1.3314166789178437745e+2, 1.9715909503065514427e+3,
    1.3731693765509461125e+4, 4.5921953931549871457e+4, 6.7265770927008700853e+4,
    3.3430575583588128105e+4, 2.5090809287301226727e+3};
constexpr std::array<double, 8> B = {
    1.0,                      4.2313330701600911252e+1, 6.8718700749205790830e+2,
    5.3941960214247511077e+3, 2.1213794301586595867e+4, 3.9307895800092710610e+4,
    2.8729085735721942674e+4, 5.2264952788528545610e+3};
constexpr std::array<double, 8> C = {
    1.42343711074968357734e0,  4.63033784615654529590e0,  5.76949722146069140550e0,
    3.64784832476320460504e0,  1.27045825245236838258e0,  2.41780725177450611770e-1,
    2.27238449892691845833e-2, 7.74545014278341407640e-4};
constexpr std::array<double, 8> D = {
    1.0,                       2.05319162663775882187e0,  1.67638483018380384940e0,
    6.89767334985100004550e-1, 1.48103976427480074590e-1, 1.51986665636164571966e-2,
    5.47593808499534494600e-4, 1.05075007164441684324e-9};
constexpr std::array<double, 8> E = {
    6.65790464350110377720e0,  5.46378491116411436990e0,  1.78482653991729133580e0,
    2.96560571828504891230e-1, 2.65321895265761230930e-2, 1.24266094738807843860e-3,
    2.71155556874348757815e-5, 2.01033439929228813265e-7};
constexpr std::array<double, 8> F = {
    1.0,                       5.99832206555887937690e-1, 1.36929880922735805310e-1,
    1.48753612908506148525e-2, 7.86869131145613259100e-4, 1.84631831751005468180e-5,
    1.42151175831644588870e-7, 2.04426310338993978564e-15};
// clang-format on

/// Refinement stops once a Halley step is below this fraction of z (the error left is then
/// of the order of the step cubed); MAX_REFINE only bounds the loop.
constexpr double REFINE_TOL = 1e-12;
constexpr int MAX_REFINE = 6;

double horner(const std::array<double, 8>& c, double x) noexcept {
    double s = c[7];
    for (std::size_t i = 7; i-- > 0;) s = s * x + c[i];
    return s;
}

/// T_1 of the continued fraction R(x) = 1 / (x + 1 / T_1), T_k = x + (k + 1) / T_{k+1},
/// truncated at T_CF_TERMS = x. For x >= CF_MIN_X.
double mills_cf_t1(double x) noexcept {
    double t = x;
    for (int k = CF_TERMS; k >= 2; --k) t = x + k / t;
    return t;
}

/// log Q(x) for x >= CF_MIN_X, given T_1: -x^2/2 - log x - log sqrt(2 pi) - log1p(1/(x T_1)),
/// since x R(x) = x / (x + 1/T_1) = 1 / (1 + 1/(x T_1)).
double log_q_cf(double x, double t1) noexcept {
    const double hi = x * x;
    const double lo = std::fma(x, x, -hi);  // x^2 = hi + lo exactly
    return -0.5 * hi - (0.5 * lo + std::log(x) + LOG_SQRT_2PI + std::log1p(1.0 / (x * t1)));
}

struct TailHazard {
    double log_q;   ///< log Q(x)
    double hazard;  ///< h(x) = phi(x) / Q(x)
};

/// log Q(x) and the hazard together, for x >= 0 (one erfc or one continued fraction).
TailHazard tail_hazard(double x) noexcept {
    if (x >= CF_MIN_X) {
        const double t1 = mills_cf_t1(x);
        return {log_q_cf(x, t1), x + 1.0 / t1};
    }
    const double q = upper_tail(x);
    return {std::log(q), INV_SQRT_2PI * std::exp(-0.5 * x * x) / q};
}

/// z >= 0 with Q(z) = q, for q <= 1/2 given as q, d = 1/2 - q and log q. The caller forms
/// d without cancellation (z ~ d sqrt(2 pi) near 0 inherits its relative error); q may have
/// underflowed to 0 when log_q < log(DBL_MIN): q and d are only read in the central region.
double quantile_upper_half(double q, double d, double log_q) noexcept {
    if (q >= 0.5 - SPLIT_CENTRAL) {
        const double r = CENTRAL_CONST - d * d;  // d = p - 1/2 of AS 241 with p = 1 - q
        double z = d * horner(A, r) / horner(B, r);
        // Newton on Q(z) - q: in its erf form near 0, so that z keeps its relative accuracy.
        const double residual = d <= 0.25
                                    ? d - 0.5 * std::erf(std::fma(z, SQRT1_2_HI, z * SQRT1_2_LO))
                                    : upper_tail(z) - q;
        z += residual / (INV_SQRT_2PI * std::exp(-0.5 * z * z));
        return z;
    }
    const double r = std::sqrt(-log_q);
    double z;
    if (r <= SPLIT_TAIL) {
        z = horner(C, r - TAIL_CONST) / horner(D, r - TAIL_CONST);
    } else if (r <= R_MAX_AS241) {
        z = horner(E, r - SPLIT_TAIL) / horner(F, r - SPLIT_TAIL);
    } else {
        // log Q(z) = -z^2/2 - log(sqrt(2 pi) z) - 1/z^2 + O(z^-4): solve for z^2 by fixed point.
        const double t = -2.0 * log_q;
        double z2 = t;
        for (int pass = 0; pass < 2; ++pass) z2 = t - (LOG_2PI + std::log(z2)) - 2.0 / z2;
        z = std::sqrt(z2);
    }
    for (int i = 0; i < MAX_REFINE; ++i) {
        const TailHazard th = tail_hazard(z);
        const double f = th.log_q - log_q;
        const double h = th.hazard;
        const double step = 2.0 * f / (2.0 * h + f * (h - z));  // Halley on log Q(z) = log q
        z += step;
        if (std::fabs(step) <= REFINE_TOL * z) break;
    }
    return z;
}

}  // namespace

double upper_tail(double x) noexcept {
    if (std::isnan(x)) return x;
    if (std::isinf(x)) return x > 0 ? 0.0 : 1.0;
    const double y = x * SQRT1_2_HI;
    const double e = std::fma(x, SQRT1_2_HI, -y) + x * SQRT1_2_LO;  // x / sqrt 2 - y
    // Q(x) = Q(sqrt2 y) - sqrt2 e phi(x) + O(e^2), and sqrt2 phi(x) = exp(-x^2/2) / sqrt(pi).
    return 0.5 * std::erfc(y) - e * INV_SQRT_PI * std::exp(-0.5 * x * x);
}

double log_upper_tail(double x) noexcept {
    if (std::isnan(x)) return x;
    if (x < 0.0) return std::log1p(-upper_tail(-x));  // Q(x) = 1 - Q(-x), Q(-x) < 1/2
    if (x < CF_MIN_X) return std::log(upper_tail(x));
    if (std::isinf(x)) return -INF;
    return log_q_cf(x, mills_cf_t1(x));
}

double upper_tail_quantile(double q) noexcept {
    if (std::isnan(q) || q < 0.0 || q > 1.0) return NAN_VALUE;
    if (q == 0.0) return INF;
    if (q == 1.0) return -INF;
    if (q > 0.5) {
        const double s = 1.0 - q;  // exact (Sterbenz), and Q^-1(q) = -Q^-1(1 - q)
        return -quantile_upper_half(s, q - 0.5, std::log(s));
    }
    return quantile_upper_half(q, 0.5 - q, std::log(q));  // 0.5 - q exact for q >= 1/4
}

double upper_tail_quantile_log(double log_q) noexcept {
    if (std::isnan(log_q) || log_q > 0.0) return NAN_VALUE;
    if (log_q == 0.0) return -INF;
    if (std::isinf(log_q)) return INF;
    // q - 1/2 = expm1(log q + ln 2) / 2 without the cancellation of exp(log q) - 1/2: the
    // sum log_q + LN2_HI is exact (Sterbenz) for q in [1/4, 1] where the cancellation bites.
    const double half_offset = 0.5 * std::expm1((log_q + LN2_HI) + LN2_LO);
    if (log_q > -LN2) {
        // q > 1/2: solve for 1 - q = -expm1(log q), accurate however close q is to 1 (for a
        // subnormal log_q, expm1 returns it exactly and -log_q is 1 - q to the last bit).
        const double s = -std::expm1(log_q);
        return -quantile_upper_half(s, half_offset, std::log(s));
    }
    const double q = std::exp(log_q);
    return quantile_upper_half(q, log_q >= -2.0 * LN2 ? -half_offset : 0.5 - q, log_q);
}

double normal_quantile(double p) noexcept {
    return -upper_tail_quantile(p);
}

}  // namespace stopscan
