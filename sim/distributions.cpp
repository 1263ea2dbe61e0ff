// Exact binomial and zero-truncated negative binomial samplers (see distributions.hpp).
//
// The binomial sampler follows numpy's `random_binomial` (numpy/random/src/distributions/
// distributions.c, BSD-3-Clause): sequential-search inversion when n*min(p, 1-p) <= 30,
// otherwise BTPE of V. Kachitvichyanukul and B. W. Schmeiser, "Binomial random variate
// generation", Communications of the ACM 31(2):216-222, 1988 (doi:10.1145/42372.42381).
// Deliberate departures from that numpy source, each argued where it occurs:
//  - the inversion's fixed cap of np + 10*sqrt(np*q + 1) is replaced by a rigorous tail
//    bound, so the draw is not truncated (numpy's cap drops ~2e-14 of the mass at np ~ 1);
//  - BTPE step 5.3 uses the corrected Stirling terms (numpy PR #31238, 2026): the paper
//    adds all four corrections where two must be subtracted, and numpy's leading
//    coefficient 13680 is a digit swap of 13860 = 166320/12;
//  - BTPE forms candidates as offsets from the mode and step 5.3 uses log1p, so that
//    rounding does not grow with n (it would reach O(1) at n ~ 2^53).
#include "stopscan/distributions.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace stopscan {
namespace {

/// Every integer up to 2^53 is an exact double, so n - x + 1, n*p, ... stay exact.
constexpr std::int64_t MAX_EXACT_N = std::int64_t{1} << 53;

/// numpy's switch point: inversion costs ~n*p steps per draw, BTPE a constant; both are
/// exact, so the threshold only trades speed (BTPE also needs n*p*q >= ~15 for its
/// hat function, which n*r > 30 with r <= 1/2 guarantees).
constexpr double INVERSION_MAX_MEAN = 30.0;

/// Guard against a degenerate uniform source. Each inversion attempt fails only on a
/// rounding residue (probability ~1e-14) and each BTPE trial is accepted with probability
/// >= 0.58 (measured: 0.59 at n*p*q ~ 15, 0.87 for n*p*q ~ 1e4..1.5e7), so 10^4
/// consecutive failures have probability < 0.42^10000 ~ 1e-3768.
constexpr int MAX_TRIALS = 10000;

[[noreturn]] void throw_degenerate(const char* method) {
    throw std::logic_error(std::string("stopscan::binomial: ") + method + ": no draw after " +
                           std::to_string(MAX_TRIALS) +
                           " trials; the uniform source is not uniform");
}

/// Binomial(n, r) by sequential search from 0 (inversion), for r <= 1/2 and n*r <= 30.
std::int64_t binomial_inversion(std::int64_t n, double r, UniformStream& u) {
    const double nd = static_cast<double>(n);
    const double q = 1.0 - r;
    const double s = r / q;
    // p0 = (1 - r)^n through log1p: log(1 - r) would inherit the rounding of 1 - r, a
    // relative error of ~1e-16/r in the logarithm (3e-5 in p0 for r = 1e-10, n = 3e11).
    // n*r <= 30 and r <= 1/2 give n*log1p(-r) >= -60*ln 2 = -41.6: p0 >= 8e-19, no underflow.
    const double p0 = std::exp(nd * std::log1p(-r));
    for (int attempt = 0; attempt < MAX_TRIALS; ++attempt) {
        double v = u.next();
        double px = p0;
        for (std::int64_t x = 0;; ++x) {
            if (v < px) {
                return x;  // smallest x with u < F(x)
            }
            v -= px;
            if (x == n) {
                break;  // the whole support is used up: v is a rounding residue
            }
            const double xd = static_cast<double>(x);
            const double ratio = (nd - xd) / (xd + 1.0) * s;  // pmf(x+1) / pmf(x)
            // The ratios decrease in x, so once ratio < 1 the mass beyond x is at most
            // px * ratio / (1 - ratio). If v already exceeds it, v is a rounding residue
            // of the subtractions and no later x can take it: draw a fresh uniform. This
            // replaces numpy's fixed cap, which also discards genuine tail mass, and keeps
            // every attempt finite (x <= n, and the bound falls super-geometrically).
            if (ratio < 1.0 && v >= px * ratio / (1.0 - ratio)) {
                break;
            }
            px *= ratio;
        }
    }
    throw_degenerate("inversion");
}

/// Stirling's series of ln Gamma(a) beyond (a - 1/2) ln a - a + ln(2 pi)/2, to 1/a^9:
/// 1/(12a) - 1/(360a^3) + 1/(1260a^5) - 1/(1680a^7) + 1/(1188a^9), written over
/// 166320 = lcm of the denominators (KS88 step 5.3, coefficient 13860 = 166320/12).
double stirling_tail(double a) {
    const double a2 = a * a;
    return (13860.0 - (462.0 - (132.0 - (99.0 - 140.0 / a2) / a2) / a2) / a2) / a / 166320.0;
}

/// Binomial(n, r) by BTPE (KS88), for r <= 1/2 and n*r > 30. Variable names follow the
/// paper (and numpy): M mode, p1..p4 areas of the triangle, parallelograms and
/// exponential tails of the hat, laml/lamr the tail rates.
std::int64_t binomial_btpe(std::int64_t n, double r, UniformStream& u) {
    const double nd = static_cast<double>(n);
    const double q = 1.0 - r;
    const double nrq = nd * r * q;
    // Step 0: set-up.
    const double fm = nd * r + r;
    const auto m = static_cast<std::int64_t>(std::floor(fm));
    const double md = static_cast<double>(m);
    const double p1 = std::floor(2.195 * std::sqrt(nrq) - 4.6 * q) + 0.5;
    const double xm = md + 0.5;
    const double xl = xm - p1;
    const double xr = xm + p1;
    const double c = 0.134 + 20.5 / (15.3 + md);
    const double al = (fm - xl) / (fm - xl * r);
    const double laml = al * (1.0 + al / 2.0);
    const double ar = (xr - fm) / (xr * q);
    const double lamr = ar * (1.0 + ar / 2.0);
    const double p2 = p1 * (1.0 + 2.0 * c);
    const double p3 = p2 + c / laml;
    const double p4 = p3 + c / lamr;
    const double s = r / q;
    const double as = s * (nd + 1.0);

    // Steps 1-4 place a candidate y = floor(x) with x near xm = M + 1/2. The paper (and
    // numpy) form x in absolute terms, whose rounding (ulp(M) ~ M * 1.1e-16) moves
    // floor(x) with probability ~M * 1e-16 per draw; here x - M is formed instead and
    // y = M + floor(x - M), which is the same in exact arithmetic and rounds only at the
    // scale of p1 ~ 2.2 sqrt(npq).
    for (int trial = 0; trial < MAX_TRIALS; ++trial) {
        // Step 1: the triangular region is accepted outright.
        const double uu = u.next() * p4;
        double v = u.next();
        if (uu <= p1) {
            return m + static_cast<std::int64_t>(std::floor(0.5 - p1 * v + uu));
        }
        double dy = 0.0;  // y - M
        if (uu <= p2) {
            // Step 2: parallelograms; dx = x - M with x = xl + (uu - p1)/c.
            const double dx = 0.5 - p1 + (uu - p1) / c;
            v = v * c + 1.0 - std::fabs(0.5 - dx) / p1;
            if (v > 1.0) {
                continue;
            }
            dy = std::floor(dx);
        } else if (uu <= p3) {
            // Step 3: left exponential tail, x = xl + ln(v)/laml. v = 0 is rejected before
            // any cast (numpy casts -inf first, which is undefined behaviour in C++).
            if (v == 0.0) {
                continue;
            }
            dy = std::floor(0.5 - p1 + std::log(v) / laml);
            if (dy < -md) {  // y < 0
                continue;
            }
            v = v * (uu - p2) * laml;
        } else {
            // Step 4: right exponential tail, x = xr - ln(v)/lamr.
            if (v == 0.0) {
                continue;
            }
            dy = std::floor(0.5 + p1 - std::log(v) / lamr);
            if (dy > nd - md) {  // y > n
                continue;
            }
            v = v * (uu - p3) * lamr;
        }
        const std::int64_t y = m + static_cast<std::int64_t>(dy);

        // Step 5: accept y if v <= f(y)/f(M).
        const std::int64_t k = y > m ? y - m : m - y;
        const double kd = static_cast<double>(k);
        if (k <= 20 || kd >= nrq / 2.0 - 1.0) {
            // Step 5.1: evaluate f(y)/f(M) by the recurrence f(i)/f(i-1) = (n+1)s/i - s.
            double f = 1.0;
            if (m < y) {
                for (std::int64_t i = m + 1; i <= y; ++i) {
                    f *= as / static_cast<double>(i) - s;
                }
            } else if (m > y) {
                for (std::int64_t i = y + 1; i <= m; ++i) {
                    f /= as / static_cast<double>(i) - s;
                }
            }
            if (v <= f) {
                return y;
            }
            continue;
        }

        // Step 5.2: squeeze ln f(y)/f(M) between normal-approximation bounds.
        const double rho = (kd / nrq) * ((kd * (kd / 3.0 + 0.625) + 1.0 / 6.0) / nrq + 0.5);
        const double t = -kd * kd / (2.0 * nrq);
        const double alv = std::log(v);  // log(0) = -inf is accepted below, as intended
        if (alv < t - rho) {
            return y;
        }
        if (alv > t + rho) {
            continue;
        }

        // Step 5.3: the exact test, ln f(y)/f(M) by Stirling's formula. With
        // ln x! = (x + 1/2) ln(x + 1) - (x + 1) + ln(2 pi)/2 + S(x + 1), the ratio
        // M!(n - M)! / (y!(n - y)!) (p/q)^(y - M) gives the terms below plus
        // S(f1) + S(z) - S(x1) - S(w): KS88 print all four with '+' (numpy PR #31238).
        // ln(f1/x1) and ln(z/w) are taken as log1p((M - y)/x1) and log1p((y - M)/w): the
        // paper's ln of a ratio near 1, multiplied by xm ~ n*p, loses ~n*p*1e-16 in the
        // bound (3e-9 at n = 6e7, 0.5 at n = 2^53); log1p keeps the error ~|y - M|*1e-16.
        const double yd = static_cast<double>(y);
        const double x1 = yd + 1.0;
        const double f1 = md + 1.0;
        const double z = nd - md + 1.0;
        const double w = nd - yd + 1.0;
        const double bound = xm * std::log1p((md - yd) / x1) +
                             (nd - md + 0.5) * std::log1p((yd - md) / w) +
                             (yd - md) * std::log(w * r / (x1 * q)) + stirling_tail(f1) +
                             stirling_tail(z) - stirling_tail(x1) - stirling_tail(w);
        if (alv <= bound) {
            return y;
        }
    }
    throw_degenerate("BTPE");
}

}  // namespace

std::int64_t binomial(std::int64_t n, double p, UniformStream& u) {
    if (n < 0 || n > MAX_EXACT_N) {
        throw std::invalid_argument("stopscan::binomial: n = " + std::to_string(n) +
                                    ": must be in [0, 2^53]");
    }
    if (!(p >= 0.0 && p <= 1.0)) {  // also rejects NaN
        throw std::invalid_argument("stopscan::binomial: p = " + std::to_string(p) +
                                    ": must be in [0, 1]");
    }
    if (n == 0 || p == 0.0) {
        return 0;
    }
    if (p == 1.0) {
        return n;
    }
    // Sample the smaller of p and 1 - p and reflect, as numpy does: both methods need
    // r <= 1/2, and 1 - p is exact for p >= 1/2 (Sterbenz), so p = 0.999 loses nothing.
    const bool reflect = p > 0.5;
    const double r = reflect ? 1.0 - p : p;
    const std::int64_t y = static_cast<double>(n) * r <= INVERSION_MAX_MEAN
                               ? binomial_inversion(n, r, u)
                               : binomial_btpe(n, r, u);
    return reflect ? n - y : y;
}

namespace {

/// Table length cap (two 8 MB vectors). Only reached for means far beyond anything a
/// stop count needs (mu >~ 1e6, or mu/k huge); draw() then continues by recurrence.
constexpr std::size_t MAX_TABLE = std::size_t{1} << 20;

/// The table stops once the mass beyond it is below this, under the 2^-53 spacing of the
/// uniforms near 1: draw() then (almost) never needs its continuation. Where the table
/// stops changes no draw, only where it is computed.
constexpr double TAIL_EPS = 1e-17;

/// Below exp(-700) ~ 1e-304 a pmf value is kept as a logarithm (see the constructor).
constexpr double LOG_UNDERFLOW = -700.0;

}  // namespace

TruncatedStopCount::TruncatedStopCount(double mu, double k)
    : mu_(mu), k_(k), poisson_(std::isinf(k) && k > 0.0), pr_(0.0), p_stopped_(0.0) {
    if (!(mu > 0.0) || !std::isfinite(mu)) {
        throw std::invalid_argument("stopscan::TruncatedStopCount: mu = " + std::to_string(mu) +
                                    ": must be finite and > 0");
    }
    if (!(k > 0.0)) {  // also rejects NaN
        throw std::invalid_argument("stopscan::TruncatedStopCount: k = " + std::to_string(k) +
                                    ": must be > 0 or +inf");
    }
    // ln P(Y = 0): -mu (Poisson) or -k ln(1 + mu/k) (NB). P(Y >= 1) = -expm1(ln P(Y = 0)):
    // 1 - P(Y = 0) would cancel to nothing for mu ~ 1e-12, log1p and expm1 keep ~1 ulp.
    double log_p0 = -mu;
    double first = mu;  // P(Y = 1) / P(Y = 0): mu (Poisson) or k * pr (NB)
    if (!poisson_) {
        pr_ = mu / (k + mu);
        log_p0 = -k * std::log1p(mu / k);
        first = k * pr_;
    }
    p_stopped_ = -std::expm1(log_p0);

    // Truncated pmf at y = 1. For huge means it underflows; it is then carried as a
    // logarithm through the recurrence until it is representable (the skipped counts
    // have probability < 1e-304 and are tabulated as 0, which draw() never returns).
    const bool started_in_log = log_p0 <= LOG_UNDERFLOW;
    bool in_log = started_in_log;
    double f = 0.0;
    double log_f = 0.0;
    if (in_log) {
        log_f = std::log(first) + log_p0 - std::log(p_stopped_);
    } else {
        f = first * std::exp(log_p0) / p_stopped_;
    }
    bool complete = false;  // the mass beyond the table is < TAIL_EPS
    for (std::size_t i = 0; i < MAX_TABLE; ++i) {
        const double y = static_cast<double>(i + 1);
        if (in_log && log_f > LOG_UNDERFLOW) {
            in_log = false;
            f = std::exp(log_f);
        }
        pmf_.push_back(f);
        if (!in_log && tail_bound(y, f) < TAIL_EPS) {
            complete = true;
            break;
        }
        if (in_log) {
            log_f += std::log(ratio(y));
        } else {
            f *= ratio(y);
        }
    }
    if (in_log) {
        // The whole table lies before the bulk of the law (mu >~ 1e6 with large k):
        // refuse rather than return counts from an all-zero table.
        throw std::invalid_argument("stopscan::TruncatedStopCount: mu = " + std::to_string(mu) +
                                    ", k = " + std::to_string(k) +
                                    ": mean too large to tabulate (mu must be <~ 1e6)");
    }

    // CDF by Neumaier's compensated sum, so that it stays within a few ulp of the exact
    // partial sums however long the table. A log-domain start has summed up to ~1e5 log
    // ratios, each rounded to ~1e-13 absolute at |log f| ~ 700, so its scale is off by up
    // to ~1e-8: if the table is complete, it is renormalised by its own sum (the mass
    // outside it is < 1e-17 + 1e-300). Otherwise the analytic normalisation by p_stopped
    // is kept, as it is exact to a few ulp even where 1 - f(1) ~ 1e-12.
    const auto neumaier = [this](double scale) {
        double sum = 0.0;
        double comp = 0.0;
        cdf_.clear();
        for (double& g : pmf_) {
            g *= scale;
            const double t = sum + g;
            comp += std::fabs(sum) >= g ? (sum - t) + g : (g - t) + sum;
            sum = t;
            cdf_.push_back(sum + comp);
        }
    };
    neumaier(1.0);
    if (started_in_log && complete) {
        neumaier(1.0 / cdf_.back());
    }
}

double TruncatedStopCount::tail_bound(double y, double f) const noexcept {
    // sum_{j > y} f(j) <= f(y) * R / (1 - R) with R = sup_{j >= y} f(j+1)/f(j). The ratio
    // (j + k)/(j + 1) * pr decreases in j towards pr when k < 1 and increases towards pr
    // when k >= 1; the Poisson ratio mu/(j + 1) decreases. So R = max(ratio(y), pr).
    const double big_r = poisson_ ? ratio(y) : std::max(ratio(y), pr_);
    if (big_r >= 1.0) {
        return std::numeric_limits<double>::infinity();
    }
    return f * big_r / (1.0 - big_r);
}

std::int64_t TruncatedStopCount::draw(double u) const noexcept {
    // Most stopped persons are stopped once: test the first entry before the search.
    if (!(u >= cdf_.front())) {  // also u < 0 and NaN
        return 1;
    }
    const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);  // first F(y) > u
    if (it != cdf_.end()) {
        return static_cast<std::int64_t>(it - cdf_.begin()) + 1;
    }
    // Beyond the table (u >= F(table end)): continue the pmf recurrence on the residual
    // u - F, exact when F >= 1/2 (Sterbenz), and precise as it shrinks. Stop
    // when the whole remaining tail is below the residual: then the residual is rounding
    // of the table (its true tail is < TAIL_EPS), and the current count takes it.
    double v = u - cdf_.back();
    double y = static_cast<double>(cdf_.size());
    double f = pmf_.back();
    for (;;) {
        f *= ratio(y);
        y += 1.0;
        if (!(v >= f) || !(v < tail_bound(y, f) + f)) {
            return static_cast<std::int64_t>(y);
        }
        v -= f;
    }
}

double TruncatedStopCount::pmf(std::int64_t y) const noexcept {
    if (y < 1) {
        return 0.0;
    }
    const auto n = static_cast<std::int64_t>(pmf_.size());
    if (y <= n) {
        return pmf_[static_cast<std::size_t>(y - 1)];
    }
    double f = pmf_.back();
    for (std::int64_t j = n; j < y && f > 0.0; ++j) {
        f *= ratio(static_cast<double>(j));
    }
    return f;
}

}  // namespace stopscan

namespace stopscan {

double TruncatedStopCount::p_at_least_one(double w) const noexcept {
    if (w <= 0) return 0.0;
    const double thinned = mu_ * std::min(w, 1.0);
    const double log_none = poisson_ ? -thinned : -k_ * std::log1p(thinned / k_);
    return -std::expm1(log_none) / p_stopped_;
}

// With a cap, min(Y, cap) takes y < cap with the tabulated pmf(y) and cap with the rest,
// 1 − F(cap − 1): the law of min(draw(u), cap), since draw() inverts the same table. A cap
// beyond the table changes nothing the table resolves (the mass beyond it is < TAIL_EPS).
double TruncatedStopCount::mean_given_stopped(std::int64_t cap) const noexcept {
    if (cap <= 0 || cap > table_size()) return mean_given_stopped();
    double sum = 0.0;
    for (std::int64_t y = 1; y < cap; ++y)
        sum += static_cast<double>(y) * pmf_[static_cast<std::size_t>(y - 1)];
    const double rest = cap > 1 ? 1.0 - cdf_[static_cast<std::size_t>(cap - 2)] : 1.0;
    return sum + static_cast<double>(cap) * rest;
}

double TruncatedStopCount::p_at_least_one(double w, std::int64_t cap) const noexcept {
    if (cap <= 0 || cap > table_size()) return p_at_least_one(w);
    if (w <= 0) return 0.0;
    if (w >= 1) return 1.0;
    const double log_keep = std::log1p(-w);  // ln(1 − w)
    auto hit = [&](std::int64_t y) { return -std::expm1(static_cast<double>(y) * log_keep); };
    double sum = 0.0;
    for (std::int64_t y = 1; y < cap; ++y) sum += pmf_[static_cast<std::size_t>(y - 1)] * hit(y);
    const double rest = cap > 1 ? 1.0 - cdf_[static_cast<std::size_t>(cap - 2)] : 1.0;
    return sum + rest * hit(cap);
}

}  // namespace stopscan
