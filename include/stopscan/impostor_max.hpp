// The best non-mated (impostor) score of a 1:N search, drawn exactly in O(number of gallery
// groups) without drawing the M impostor scores (MODEL.md §5).
//
// Glossary (MODEL.md symbols): a gallery group g holds m_g records whose impostor scores
// against the probe are N(delta_g, 1); tau is the decision threshold; Q is the standard
// normal upper tail (normal_tail.hpp). Group g's maximum X_g has
//   P(X_g <= x) = Phi(x - delta_g)^{m_g},
// continuous in m_g, so m_g may be an expected (fractional) count of records.
#pragma once

#include <cstddef>
#include <limits>
#include <vector>

#include "stopscan/random.hpp"

namespace stopscan {

/// A gallery seen by probes of one cell: groups g with m_g records (real, >= 0) whose
/// impostor scores are N(delta_g, 1), and a threshold tau.
class ImpostorGallery {
public:
    /// `Draw::group` when the gallery holds no record at all (every m_g = 0).
    static constexpr std::size_t NO_GROUP = std::numeric_limits<std::size_t>::max();

    /// Throws std::invalid_argument on negative or non-finite m_g, non-finite delta or tau,
    /// or mismatched lengths. An empty gallery (no group, or every m_g = 0) is valid.
    ImpostorGallery(std::vector<double> m, std::vector<double> delta, double tau);

    /// P(max impostor > tau) = 1 - prod_g (1 - Q(tau - delta_g))^{m_g}, computed with
    /// log1p/expm1 (the false-positive identification rate, FPIR, of this probe cell).
    /// Never throws.
    double fpir() const noexcept { return fpir_; }

    /// P(max impostor > x) for any x (same formula; accurate to a few ulp also when tiny,
    /// and in log space where Q(x - delta_g) underflows but m_g Q does not). Never throws.
    double tail(double x) const noexcept;

    /// The maximum impostor score and the index of the group holding it.
    struct Draw {
        double score;
        std::size_t group;
    };

    /// Eager path: the maximum impostor score and the group holding it, unconditionally.
    /// Uses one uniform per group with m_g > 0. An empty gallery gives {-inf, NO_GROUP}.
    /// Never throws.
    Draw sample_max(UniformStream& u) const;

    /// Lazy path: the maximum and its group, conditional on max > tau (callers first decide
    /// "any impostor above tau" with one uniform against fpir(), then call this). Exact and
    /// equal in distribution to sample_max conditioned on score > tau, however small fpir()
    /// is; the score returned is always > tau. Uses 2 uniforms, plus 1 per non-empty group
    /// after the first one above tau, plus 1 per such group that also exceeds tau. Throws
    /// std::logic_error if the gallery holds no record (nothing can exceed tau).
    Draw sample_max_above_tau(UniformStream& u) const;

    /// Per-group P(group's max > tau) = 1 - (1 - Q(tau - delta_g))^{m_g}. Never throws.
    const std::vector<double>& group_exceed() const noexcept { return p_; }

    /// The threshold tau. Never throws.
    double tau() const noexcept { return tau_; }

    /// Number of groups (including empty ones). Never throws.
    std::size_t size() const noexcept { return m_.size(); }

private:
    /// Group j's maximum given P(X_j > x) = g, with g = v * p_j (v uniform in (0, 1),
    /// w = 1 - v) so that X_j > tau; p_j = 1 covers the unconditional draw.
    double group_max(std::size_t j, double v, double w, bool conditional) const noexcept;

    std::vector<double> m_;
    std::vector<double> delta_;
    double tau_;
    std::vector<double> log_m_;        ///< log m_g (-inf for an empty group)
    std::vector<double> log_cdf_tau_;  ///< log P(X_g <= tau) = m_g log Phi(tau - delta_g)
    std::vector<double> p_;            ///< P(X_g > tau)
    std::vector<double> log_p_;        ///< log P(X_g > tau), accurate where p_ underflows
    std::vector<double> first_cdf_;    ///< P(first group above tau is <= j | any above tau)
    double fpir_;
};

}  // namespace stopscan
