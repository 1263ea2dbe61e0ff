// The score-level (binormal) matcher of MODEL.md §5, for one modality against one database.
//
// Scores are on the scale of the reference pair's impostor distribution, N(0, 1). The
// operating point (FMR and FNMR of the scenario) fixes the operating threshold
// tau0 = Q⁻¹(FMR of the reference pair); each probe cell c and gallery cell g then get an
// impostor mean delta(c, g) = tau0 − Q⁻¹(FMR(c, g)) and each probe cell a genuine
// distribution N(mu_c, sigma) with mu_c = tau0 + sigma·Q⁻¹(FNMR(c)). The threshold in use,
// tau, is tau0 unless the scenario fixes a score or a target FPIR at a reference gallery
// size; moving tau moves every group's FMR and FNMR along its own curve, which is how a
// threshold choice changes disparity.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "stopscan/cells.hpp"
#include "stopscan/impostor_max.hpp"
#include "stopscan/random.hpp"
#include "stopscan/scenario.hpp"

namespace stopscan {

/// A candidate returned by a search, or considered by a reviewer.
struct Candidate {
    double score;
    std::size_t gallery_cell;  ///< owner cell of an impostor record
    bool mate;                 ///< the probe's own record
};

/// What a 1:N search returned (before any record is looked at).
struct SearchOutcome {
    enum Kind : std::uint8_t { none, mate, impostor } kind = none;
    std::size_t gallery_cell = 0;  ///< owner cell of an impostor record
};

/// The law of one search's result, for the closed form: P(the mate is returned),
/// P(a wrong record is returned) and the owner cell of that wrong record.
struct OutcomeLaw {
    double mate = 0;
    double wrong = 0;
    std::vector<double> owner;  ///< P(owner = g | wrong record returned)
};

/// Binormal score model of one modality against one database.
class MatchModel {
public:
    /// Derives the model. Throws InputError if a same-group factor pushes an FMR above 1
    /// (naming the cells). `threshold` overrides the scenario's threshold (for `det`).
    MatchModel(const Scenario& scenario, const CellTable& cells, std::size_t modality,
               std::size_t database, std::optional<double> threshold = std::nullopt);

    /// Threshold in use (tau).
    double threshold() const noexcept { return tau_; }
    /// Threshold at which the scenario's FMR and FNMR hold (tau0).
    double operating_threshold() const noexcept { return tau0_; }
    /// 1:1 false non-match rate of probe cell c at tau.
    double fnmr(std::size_t c) const noexcept { return fnmr_[c]; }
    /// 1:1 false match rate of probe cell c against one record of gallery cell g at tau.
    double fmr(std::size_t c, std::size_t g) const noexcept;
    /// False-positive identification rate of probe cell c against the whole gallery at tau.
    double fpir(std::size_t c) const noexcept { return galleries_[c].fpir(); }
    /// Records of each gallery cell (whole records).
    const std::vector<double>& records() const noexcept { return records_; }
    /// The impostor gallery seen by probes of cell c.
    const ImpostorGallery& gallery(std::size_t c) const noexcept { return galleries_[c]; }
    /// The genuine score of a mated comparison of cell c, by inversion of uniform u: the
    /// comparison passes tau exactly when u >= fnmr(c).
    double genuine_score(std::size_t c, double u) const noexcept;
    /// P(a mated search of cell c returns the mate at rank 1) = P(G >= tau, G > best impostor).
    double p_mate_returned(std::size_t c) const;
    /// P(a mated search of cell c returns a wrong record at rank 1) = P(best impostor > max(tau,
    /// G)).
    double p_wrong_given_mated(std::size_t c) const;
    /// Owner cell of the wrong record a search of cell c returns at rank 1 (no review):
    /// P(owner = g | wrong record returned), for a mated or a non-mated probe.
    std::vector<double> owner_distribution(std::size_t c, bool mated) const;
    /// The law of a search of cell c by a mated or non-mated probe, with or without review.
    /// Exact without review. With review it treats the numbers of impostors above and below
    /// the mate's score as independent (their dependence is of order candidates / records)
    /// and, when same-group factors make impostor laws differ, draws the confirmed wrong
    /// candidate's owner in proportion to the expected impostors above the threshold.
    OutcomeLaw outcome_law(std::size_t c, bool mated) const;
    /// The scenario's matcher settings.
    const Matcher& matcher() const noexcept { return *matcher_; }

    /// One search of a probe of cell c (MODEL.md §5): the best candidate above tau, or, with
    /// human review, the first candidate of the list the reviewer confirms. Lazy: `u0`
    /// decides whether the mate passes tau (u0 >= fnmr) and `u1` whether any impostor does
    /// (u1 < fpir); `scores` is read only in the second case, `review` only with review.
    SearchOutcome search(std::size_t c, bool mated, double u0, double u1, UniformStream& scores,
                         UniformStream& review) const {
        return search_given(c, mated, u0, u1 < galleries_[c].fpir(), scores, review);
    }
    /// The same search with the event "some impostor passes tau" already decided by the
    /// caller: importance sampling draws it with a tilted probability (docs/model.md, "Rare
    /// events"); everything after it has the law of search() given the event.
    SearchOutcome search_given(std::size_t c, bool mated, double u0, bool impostor_above,
                               UniformStream& scores, UniformStream& review) const;
    /// The same search drawn eagerly: the genuine score and the best impostor are always
    /// drawn. Same law as search(); slower; for tests.
    SearchOutcome search_eager(std::size_t c, bool mated, UniformStream& scores,
                               UniformStream& review) const;

    /// Impostors above tau of a search of cell c, given that at least one exists, best first,
    /// at most `limit` of them: exact counts per gallery cell (binomial) and the top order
    /// statistics of their scores (for candidate lists reviewed by a person).
    std::vector<Candidate> impostors_above_tau(std::size_t c, std::size_t limit,
                                               UniformStream& u) const;

private:
    // The reviewer's verdict on a candidate list, best first.
    SearchOutcome review(const std::vector<Candidate>& list, UniformStream& u) const;
    // ∫_tau^∞ f_G(x) P(best impostor > x) dx for probe cell c.
    double overtaken_integral(std::size_t c) const;

    const Matcher* matcher_;
    std::size_t cells_;
    double tau0_ = 0;
    double tau_ = 0;
    double sigma_ = 1;
    std::vector<double> records_;
    std::vector<double> delta_;  // [c * cells + g]
    std::vector<double> mu_;
    std::vector<double> fnmr_;
    std::vector<ImpostorGallery> galleries_;
    // Per probe cell, the gallery with cells of equal impostor mean merged: the same law of
    // the best impostor in far fewer terms, for the integrals.
    std::vector<std::vector<std::pair<double, double>>> merged_;  // (delta, records)
    std::vector<std::size_t> merged_index_;                       // [c * cells + g]
    double merged_tail(std::size_t c, double x) const noexcept;
    // P(K = k) for k < limit and P(K >= limit) last, where K counts impostors of cell c with
    // a score in (lo, hi]; an exact convolution of the merged groups' binomials.
    std::vector<double> count_law(std::size_t c, double lo, double hi, std::size_t limit) const;
    // Scores above which the best impostor of cell c lies with probability < 1e-20.
    double upper_score(std::size_t c) const noexcept;
    // ∫ f(x) dx over [tau, upper_score(c)] by composite 8-point Gauss–Legendre.
    template <typename F>
    double integrate(std::size_t c, F&& f, double hi = 0) const;
};

}  // namespace stopscan
