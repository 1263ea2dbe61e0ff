// Exact maximum of the impostor scores of a 1:N search (see impostor_max.hpp, MODEL.md §5).
//
// Group g's maximum X_g has P(X_g <= x) = Phi(x - delta_g)^{m_g}. Inversion: given a
// target G = P(X_g > x) (uniform, or uniform times p_g for a draw above tau),
//   log Phi(x - delta_g) = log(1 - G) / m_g =: -y,
// so x = delta_g + z with Phi(z) = exp(-y): Q(z) = -expm1(-y), the spec's
// q = -expm1(log1p(-V) / m_g). It is never written as Phi^-1(U^{1/M}), which rounds U^{1/M}
// to 1 for M ~ 1e7. Every step keeps relative accuracy:
//  - log(1 - G) is log1p(-G) for G < 1/2 and, above, log of 1 - G formed without
//    cancellation: 1 - V p_g = (1 - p_g) + p_g (1 - V), with 1 - p_g = exp(log P(X_g <= tau))
//    and 1 - V exact (open_uniform below);
//  - z is found from log q (upper_tail_quantile_log) or, for q > 1/2, from log Phi(z) = -y
//    directly, so neither tail of the group maximum loses digits;
//  - when p_g is tiny (< 1e-280, so possibly subnormal or underflowed), p_g, y and q are
//    carried as logarithms: log p_g = log m_g + log(-log Phi(tau - delta_g)) to relative
//    1e-280, where -log Phi(t) = Q(t) exactly in double past t = 30, so that log Q comes from
//    log_upper_tail and m_g Q stays accurate after Q itself has underflowed.
//
// The lazy path (sample_max_above_tau) conditions on "some group exceeds tau" exactly: the
// first group (in index order) above tau is j with probability p_j prod_{i<j} (1 - p_i) /
// FPIR; given that, groups i < j are below tau (so cannot hold the maximum), X_j is drawn
// conditional on X_j > tau, and each later group independently exceeds tau with probability
// p_i, and is then drawn conditional on exceeding it. The cumulative probabilities of the
// first group are 1 - prod_{i<=j} (1 - p_i) over FPIR, i.e. -expm1(partial sum of
// log P(X_i <= tau)) / FPIR: no accumulation of rounding (when FPIR < 1e-280 they are
// formed from log p_i instead, where prod (1 - p_i) = 1 to 1e-280).
//
// Both paths are exact in distribution up to the 2^-53 resolution of the uniforms (which,
// e.g., makes a later group with p_i < 2^-54 never join a lazy draw: an error < 2^-54).
#include "stopscan/impostor_max.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "stopscan/normal_tail.hpp"

namespace stopscan {
namespace {

constexpr double INF = std::numeric_limits<double>::infinity();
constexpr double LN2 = 0.6931471805599453094172321;

/// Above this standardised threshold, log Phi(x) = -Q(x) exactly in double (Q(30) = 4.9e-198,
/// so the next term Q^2/2 is 1e-198 of it) and -m log Phi(x) is formed as exp(log m + log Q),
/// which stays accurate where Q underflows.
constexpr double LOG_SPACE_X = 30.0;

/// Below this, a probability is carried by its logarithm (a margin above DBL_MIN = 2.2e-308:
/// products with uniforms >= 2^-54 and divisions by m_g stay normal).
constexpr double TINY = 1e-280;

/// m log Phi(x) = log P(max of m scores <= x), and log(-m log Phi(x)).
struct LogCdf {
    double log_cdf;
    double log_neg_log_cdf;
};

LogCdf group_log_cdf(double m, double log_m, double x) noexcept {
    if (x > LOG_SPACE_X) {
        const double lnl = log_m + log_upper_tail(x);
        return {-std::exp(lnl), lnl};
    }
    const double log_phi = log_upper_tail(-x);  // log Phi(x) = log Q(-x) < 0
    return {m * log_phi, log_m + std::log(-log_phi)};
}

/// An open uniform v = (k + 1/2) 2^-53 in (0, 1) from u = k 2^-53, and w = 1 - v. The
/// smaller of the two is exact: v for u < 1/2, w for u >= 1/2 (an odd multiple of 2^-54
/// below 1/2 has 53 significant bits). So log1p(-v) and log(w) are both accurate.
std::pair<double, double> open_uniform(double u) noexcept {
    constexpr double HALF_STEP = 0x1.0p-54;
    if (u < 0.5) {
        const double v = u + HALF_STEP;
        return {v, 1.0 - v};
    }
    const double w = (1.0 - u) - HALF_STEP;  // 1 - u is exact (Sterbenz)
    return {1.0 - w, w};
}

/// z with log Phi(z) = -y, given y > 0 and log y (log y carries y when it underflows).
double z_from_log_cdf(double y, double log_y) noexcept {
    if (y > LN2) return -upper_tail_quantile_log(-y);  // Phi(z) < 1/2: Q(-z) = exp(-y)
    // Q(z) = 1 - exp(-y) = -expm1(-y) <= 1/2; for tiny y it is y (1 - y/2 + ...).
    const double log_q = y >= TINY ? std::log(-std::expm1(-y)) : log_y;
    return upper_tail_quantile_log(log_q);
}

std::string describe(const char* name, std::size_t g, double value) {
    return "ImpostorGallery: " + std::string(name) + "[" + std::to_string(g) +
           "] = " + std::to_string(value);
}

}  // namespace

ImpostorGallery::ImpostorGallery(std::vector<double> m, std::vector<double> delta, double tau)
    : m_(std::move(m)), delta_(std::move(delta)), tau_(tau) {
    if (m_.size() != delta_.size()) {
        throw std::invalid_argument("ImpostorGallery: " + std::to_string(m_.size()) +
                                    " group sizes m but " + std::to_string(delta_.size()) +
                                    " impostor means delta: lengths must match");
    }
    if (!std::isfinite(tau_)) {
        throw std::invalid_argument("ImpostorGallery: tau = " + std::to_string(tau_) +
                                    ": must be finite");
    }
    const std::size_t n = m_.size();
    for (std::size_t g = 0; g < n; ++g) {
        if (!std::isfinite(m_[g]) || m_[g] < 0.0) {
            throw std::invalid_argument(describe("m", g, m_[g]) + ": must be finite and >= 0");
        }
        if (!std::isfinite(delta_[g])) {
            throw std::invalid_argument(describe("delta", g, delta_[g]) + ": must be finite");
        }
    }
    log_m_.resize(n);
    log_cdf_tau_.resize(n);
    p_.resize(n);
    log_p_.resize(n);
    first_cdf_.resize(n);
    double log_cdf_all = 0.0;
    std::size_t last_nonempty = NO_GROUP;
    for (std::size_t g = 0; g < n; ++g) {
        if (m_[g] == 0.0) {
            log_m_[g] = -INF;
            log_cdf_tau_[g] = 0.0;
            p_[g] = 0.0;
            log_p_[g] = -INF;
            continue;
        }
        last_nonempty = g;
        log_m_[g] = std::log(m_[g]);
        const LogCdf lc = group_log_cdf(m_[g], log_m_[g], tau_ - delta_[g]);
        log_cdf_tau_[g] = lc.log_cdf;
        p_[g] = -std::expm1(lc.log_cdf);
        // p = -log_cdf (1 + log_cdf/2 + ...) when tiny, and -log_cdf = exp(log_neg_log_cdf).
        log_p_[g] = p_[g] >= TINY ? std::log(p_[g]) : lc.log_neg_log_cdf;
        log_cdf_all += lc.log_cdf;
    }
    fpir_ = -std::expm1(log_cdf_all);

    if (last_nonempty == NO_GROUP) return;  // first_cdf_ is never read
    if (fpir_ >= TINY) {
        double cum = 0.0;
        for (std::size_t g = 0; g < n; ++g) {
            cum += log_cdf_tau_[g];
            first_cdf_[g] = -std::expm1(cum) / fpir_;
        }
    } else {
        // Every p_g < 1e-280, so prod (1 - p_i) = 1 to that accuracy: P(first = j) ∝ p_j.
        const double log_p_max = *std::max_element(log_p_.begin(), log_p_.end());
        double cum = 0.0;
        for (std::size_t g = 0; g < n; ++g) {
            cum += std::exp(log_p_[g] - log_p_max);
            first_cdf_[g] = cum;
        }
        for (double& c : first_cdf_) c /= cum;
    }
    // The last group that can be first must catch every uniform < 1, whatever the rounding.
    std::fill(first_cdf_.begin() + static_cast<std::ptrdiff_t>(last_nonempty), first_cdf_.end(),
              1.0);
}

double ImpostorGallery::tail(double x) const noexcept {
    double log_cdf = 0.0;
    for (std::size_t g = 0; g < m_.size(); ++g) {
        if (m_[g] > 0.0) log_cdf += group_log_cdf(m_[g], log_m_[g], x - delta_[g]).log_cdf;
    }
    return -std::expm1(log_cdf);
}

double ImpostorGallery::group_max(std::size_t j, double v, double w,
                                  bool conditional) const noexcept {
    // neg_log = -log(1 - G) for the target G = P(X_j > x): G = v, or G = v p_j (above tau).
    double neg_log;
    double log_neg_log;
    if (!conditional) {
        neg_log = v < 0.5 ? -std::log1p(-v) : -std::log(w);
        log_neg_log = std::log(neg_log);
    } else if (p_[j] >= TINY) {
        const double g = v * p_[j];
        neg_log = g < 0.5 ? -std::log1p(-g) : -std::log(std::exp(log_cdf_tau_[j]) + p_[j] * w);
        log_neg_log = std::log(neg_log);
    } else {
        log_neg_log = std::log(v) + log_p_[j];  // -log(1 - G) = G (1 + G/2 + ...), G < 1e-280
        neg_log = std::exp(log_neg_log);
    }
    const double x = delta_[j] + z_from_log_cdf(neg_log / m_[j], log_neg_log - log_m_[j]);
    // A conditional draw is above tau in exact arithmetic; keep it so after rounding (it can
    // land on tau only for v within ~1e-16 of 1), so that callers' "score > tau" holds.
    return conditional ? std::max(x, std::nextafter(tau_, INF)) : x;
}

ImpostorGallery::Draw ImpostorGallery::sample_max(UniformStream& u) const {
    Draw best{-INF, NO_GROUP};
    for (std::size_t g = 0; g < m_.size(); ++g) {
        if (m_[g] == 0.0) continue;
        const auto [v, w] = open_uniform(u.next());
        const double x = group_max(g, v, w, false);
        if (best.group == NO_GROUP || x > best.score) best = {x, g};
    }
    return best;
}

ImpostorGallery::Draw ImpostorGallery::sample_max_above_tau(UniformStream& u) const {
    const auto nonempty = std::find_if(m_.begin(), m_.end(), [](double mg) { return mg > 0.0; });
    if (nonempty == m_.end()) {
        throw std::logic_error(
            "ImpostorGallery::sample_max_above_tau: the gallery holds no record, so no "
            "impostor score can exceed tau");
    }
    // The first group above tau: the smallest j with u < P(first <= j | any above tau).
    const double u_first = u.next();
    const std::size_t j = static_cast<std::size_t>(
        std::upper_bound(first_cdf_.begin(), first_cdf_.end(), u_first) - first_cdf_.begin());
    const auto [v, w] = open_uniform(u.next());
    Draw best{group_max(j, v, w, true), j};
    // Later groups are unconditioned: each exceeds tau with its own p_i. The open uniform
    // makes "exceeds" impossible for p_i < 2^-54 rather than certain at u = 0.
    for (std::size_t i = j + 1; i < m_.size(); ++i) {
        if (m_[i] == 0.0) continue;
        if (open_uniform(u.next()).first >= p_[i]) continue;
        const auto [vi, wi] = open_uniform(u.next());
        const double x = group_max(i, vi, wi, true);
        if (x > best.score) best = {x, i};
    }
    return best;
}

}  // namespace stopscan
