#include "stopscan/match_model.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "stopscan/distributions.hpp"
#include "stopscan/error.hpp"
#include "stopscan/normal_tail.hpp"

namespace stopscan {

namespace {

// Beyond 50 standard deviations Q is 1 or 0 in double precision: an FMR of 1 maps here.
constexpr double CERTAIN_SHIFT = 50;

// Zero-truncated Binomial(n, q): the number of a group's impostors above the threshold,
// given that there is at least one.
std::int64_t truncated_binomial(std::int64_t n, double q, UniformStream& u) {
    const double log_none = static_cast<double>(n) * std::log1p(-q);
    const double p_any = -std::expm1(log_none);
    if (p_any > 0.25) {  // rejection is cheap when at least one is likely
        while (true)
            if (const auto k = binomial(n, q, u); k > 0) return k;
    }
    // Inversion of the truncated pmf from k = 1, with pmf(k+1) = pmf(k)·(n−k)/(k+1)·q/(1−q).
    double target = u.next() * p_any;
    double pmf = static_cast<double>(n) * q * std::exp(static_cast<double>(n - 1) * std::log1p(-q));
    for (std::int64_t k = 1; k < n; ++k) {
        if (target < pmf) return k;
        target -= pmf;
        pmf *= static_cast<double>(n - k) / static_cast<double>(k + 1) * q / (1 - q);
    }
    return n;
}

}  // namespace

MatchModel::MatchModel(const Scenario& s, const CellTable& cells, std::size_t modality,
                       std::size_t database, std::optional<double> threshold)
    : matcher_(&*s.databases.at(database).matchers.at(modality)), cells_(cells.size()) {
    const Database& db = s.databases[database];
    const Matcher& m = *matcher_;
    const std::size_t C = cells_;
    sigma_ = m.genuine_sd;

    // Records of each gallery cell: the enrolled population reweighted by composition,
    // scaled to the database size, in whole records.
    records_.resize(C);
    for (std::size_t g = 0; g < C; ++g)
        records_[g] = static_cast<double>(cells.population(g)) * cells.value(db.enrolment, g) *
                      cells.value(db.composition, g);
    const double total = std::accumulate(records_.begin(), records_.end(), 0.0);
    for (auto& r : records_) r = std::round(r * static_cast<double>(db.size) / total);

    // The reference pair: a probe of the reference cell against a record of another group.
    std::size_t reference = 0;
    for (std::size_t c = 0; c < C; ++c) {
        bool all_reference = true;
        for (std::size_t d = 0; d < s.dimensions.size(); ++d)
            all_reference = all_reference && cells.category(c, d) == s.dimensions[d].reference;
        if (all_reference) reference = c;
    }
    const double fmr_reference = cells.value(m.fmr, reference);
    tau0_ = fmr_reference > 0 && fmr_reference < 1 ? upper_tail_quantile(fmr_reference) : 0.0;

    const std::string key = std::string("matcher.") + MODALITY_NAMES[modality] + "." + db.name;
    delta_.resize(C * C);
    mu_.resize(C);
    for (std::size_t c = 0; c < C; ++c) {
        const double fmr_c = cells.value(m.fmr, c);
        for (std::size_t g = 0; g < C; ++g) {
            double fmr = fmr_c;
            for (std::size_t d = 0; d < s.dimensions.size(); ++d)
                if (cells.category(c, d) == cells.category(g, d)) fmr *= m.same_group_factor[d];
            if (fmr > 1)
                throw InputError(
                    s.settings.source().empty() ? "default scenario" : s.settings.source(),
                    key + ".same_group_factor.*", "",
                    "makes the FMR of probe cell " + cells.label(c) + " against gallery cell " +
                        cells.label(g) + " exceed 1: lower the factors or the FMR");
            // FMR 0: the group never matches (its records are left out of this probe's
            // gallery below); FMR 1: every record matches.
            delta_[c * C + g] = fmr >= 1  ? tau0_ + CERTAIN_SHIFT
                                : fmr > 0 ? tau0_ - upper_tail_quantile(fmr)
                                          : -HUGE_VAL;
        }
        const double fnmr = cells.value(m.fnmr, c);
        mu_[c] = fnmr <= 0   ? HUGE_VAL
                 : fnmr >= 1 ? -HUGE_VAL
                             : tau0_ + sigma_ * upper_tail_quantile(fnmr);
    }

    if (threshold) {
        tau_ = *threshold;
    } else if (m.threshold) {
        tau_ = *m.threshold;
    } else if (m.target_fpir) {
        // Operators set the threshold on a reference set: a probe of the reference cell
        // against a gallery of `reference_gallery` reference-pair impostors (other groups,
        // no same-group clustering) has the target FPIR: 1 − (1 − Q(tau))^N = target. The
        // FPIR of other groups against the real gallery then follows from their own laws.
        const double per_record =
            -std::expm1(std::log1p(-*m.target_fpir) / static_cast<double>(m.reference_gallery));
        tau_ = upper_tail_quantile(per_record);
    } else {
        tau_ = tau0_;
    }

    fnmr_.resize(C);
    galleries_.reserve(C);
    for (std::size_t c = 0; c < C; ++c) {
        fnmr_[c] =
            std::isinf(mu_[c]) ? (mu_[c] > 0 ? 0.0 : 1.0) : upper_tail((mu_[c] - tau_) / sigma_);
        std::vector<double> m_g(C), delta(C);
        for (std::size_t g = 0; g < C; ++g) {
            const double d = delta_[c * C + g];
            m_g[g] = std::isinf(d) ? 0.0 : records_[g];
            delta[g] = std::isinf(d) ? 0.0 : d;
        }
        std::vector<std::pair<double, double>> merged;
        merged_index_.resize(C * C, 0);
        for (std::size_t g = 0; g < C; ++g) {
            if (m_g[g] <= 0) continue;
            auto it = std::find_if(merged.begin(), merged.end(),
                                   [&](const auto& e) { return e.first == delta[g]; });
            if (it == merged.end()) {
                merged_index_[c * C + g] = merged.size();
                merged.emplace_back(delta[g], m_g[g]);
            } else {
                merged_index_[c * C + g] = static_cast<std::size_t>(it - merged.begin());
                it->second += m_g[g];
            }
        }
        merged_.push_back(std::move(merged));
        galleries_.emplace_back(std::move(m_g), std::move(delta), tau_);
    }
}

double MatchModel::merged_tail(std::size_t c, double x) const noexcept {
    double log_none = 0;
    for (const auto& [delta, records] : merged_[c])
        log_none += records * std::log1p(-upper_tail(x - delta));
    return -std::expm1(log_none);
}

double MatchModel::fmr(std::size_t c, std::size_t g) const noexcept {
    const double d = delta_[c * cells_ + g];
    return std::isinf(d) ? 0.0 : upper_tail(tau_ - d);
}

double MatchModel::genuine_score(std::size_t c, double u) const noexcept {
    if (std::isinf(mu_[c])) return mu_[c];
    return mu_[c] + sigma_ * normal_quantile(u);
}

double MatchModel::upper_score(std::size_t c) const noexcept {
    double hi = tau_;
    for (const auto& [delta, records] : merged_[c])
        hi = std::max(hi, delta + upper_tail_quantile(1e-20 / std::max(records, 1.0)));
    return hi;
}

template <typename F>
double MatchModel::integrate(std::size_t c, F&& f, double upper) const {
    // Composite 8-point Gauss–Legendre on panels of at most 0.25 score units: each panel's
    // integrand is smooth, and the best impostor's law is negligible past upper_score().
    static constexpr double NODES[8] = {
        -0.9602898564975363, -0.7966664774136267, -0.5255324099163290, -0.1834346424956498,
        0.1834346424956498,  0.5255324099163290,  0.7966664774136267,  0.9602898564975363};
    static constexpr double WEIGHTS[8] = {
        0.1012285362903763, 0.2223810344533745, 0.3137066458778873, 0.3626837833783620,
        0.3626837833783620, 0.3137066458778873, 0.2223810344533745, 0.1012285362903763};
    const double lo = tau_;
    const double hi = std::max(upper_score(c), upper);
    if (!(hi > lo)) return 0.0;
    const int panels = std::clamp(static_cast<int>(std::ceil((hi - lo) / 0.25)), 1, 4000);
    const double width = (hi - lo) / panels;
    double sum = 0;
    for (int p = 0; p < panels; ++p) {
        const double mid = lo + (p + 0.5) * width;
        for (int i = 0; i < 8; ++i)
            sum += WEIGHTS[i] * 0.5 * width * f(mid + 0.5 * width * NODES[i]);
    }
    return sum;
}

double MatchModel::overtaken_integral(std::size_t c) const {
    if (std::isinf(mu_[c]) || galleries_[c].fpir() == 0) return 0.0;
    const double norm = 1.0 / (sigma_ * std::sqrt(2 * M_PI));
    return integrate(c, [&](double x) {
        const double z = (x - mu_[c]) / sigma_;
        return norm * std::exp(-0.5 * z * z) * merged_tail(c, x);
    });
}

std::vector<double> MatchModel::owner_distribution(std::size_t c, bool mated) const {
    // The best impostor is x and belongs to merged group j with density h_j(x)·S(x), where
    // S is the CDF of the best impostor and h_j = m_j φ(x − δ_j) / (1 − Q(x − δ_j)) the hazard
    // of group j's own maximum. A mated search returns it only if the mate scored lower.
    const auto& merged = merged_[c];
    std::vector<double> weight(merged.size(), 0.0);
    if (galleries_[c].fpir() > 0) {
        for (std::size_t j = 0; j < merged.size(); ++j) {
            const auto [delta, records] = merged[j];
            weight[j] = integrate(c, [&, delta = delta, records = records](double x) {
                const double q = upper_tail(x - delta);
                const double density =
                    records * std::exp(-0.5 * (x - delta) * (x - delta)) / std::sqrt(2 * M_PI);
                const double below_mate = !mated               ? 1.0
                                          : std::isinf(mu_[c]) ? (mu_[c] > 0 ? 0.0 : 1.0)
                                                               : upper_tail((mu_[c] - x) / sigma_);
                return density / (1 - q) * (1 - merged_tail(c, x)) * below_mate;
            });
        }
    }
    // merged_tail gives P(max > x); S(x) = 1 − that. Split each merged group by records.
    std::vector<double> owner(cells_, 0.0);
    double total = 0;
    for (std::size_t g = 0; g < cells_; ++g) {
        if (galleries_[c].group_exceed()[g] <= 0) continue;
        const std::size_t j = merged_index_[c * cells_ + g];
        owner[g] = weight[j] * records_[g] / merged[j].second;
        total += owner[g];
    }
    if (total > 0)
        for (auto& o : owner) o /= total;
    return owner;
}

double MatchModel::p_mate_returned(std::size_t c) const {
    return (1 - fnmr_[c]) - overtaken_integral(c);
}

double MatchModel::p_wrong_given_mated(std::size_t c) const {
    return fnmr_[c] * galleries_[c].fpir() + overtaken_integral(c);
}

std::vector<double> MatchModel::count_law(std::size_t c, double lo, double hi,
                                          std::size_t limit) const {
    std::vector<double> law(limit + 1, 0.0);
    law[0] = 1;  // no group yet: K = 0
    for (const auto& [delta, records] : merged_[c]) {
        const double q =
            std::max(0.0, upper_tail(lo - delta) - (std::isinf(hi) ? 0.0 : upper_tail(hi - delta)));
        // Binomial(records, q) for k < limit, by the pmf recurrence from P(0).
        std::vector<double> group(limit + 1, 0.0);
        double pmf = q >= 1 ? 0.0 : std::exp(records * std::log1p(-q));
        double below = 0;
        for (std::size_t k = 0; k < limit; ++k) {
            group[k] = pmf;
            below += pmf;
            if (q >= 1) break;
            pmf *= (records - static_cast<double>(k)) / static_cast<double>(k + 1) * q / (1 - q);
        }
        if (q >= 1 && records >= static_cast<double>(limit)) group[0] = 0, below = 0;
        group[limit] = std::max(0.0, 1 - below);
        std::vector<double> next(limit + 1, 0.0);
        for (std::size_t i = 0; i <= limit; ++i)
            for (std::size_t j = 0; j <= limit; ++j)
                next[std::min(i + j, limit)] += law[i] * group[j];
        law = std::move(next);
    }
    return law;
}

OutcomeLaw MatchModel::outcome_law(std::size_t c, bool mated) const {
    OutcomeLaw law;
    if (!matcher_->human_review) {
        // One integral serves both: P(mate) = (1 − FNMR) − I, P(wrong | mated) = FNMR·FPIR + I.
        const double overtaken = mated ? overtaken_integral(c) : 0.0;
        law.mate = mated ? (1 - fnmr_[c]) - overtaken : 0.0;
        law.wrong = mated ? fnmr_[c] * galleries_[c].fpir() + overtaken : galleries_[c].fpir();
        law.owner = owner_distribution(c, mated);
        law.mate = std::max(law.mate, 0.0);  // rounding can leave −1e-17
        law.wrong = std::max(law.wrong, 0.0);
        return law;
    }
    const auto limit = static_cast<std::size_t>(matcher_->candidates);
    const double fa = matcher_->review_false_accept;
    const double fr = matcher_->review_false_reject;
    // A list of n impostors alone: the reviewer confirms one with probability 1 − (1 − fa)^n.
    auto wrong_from = [&](const std::vector<double>& counts, std::size_t room) {
        double keep = 0;
        for (std::size_t k = 0; k <= limit; ++k)
            keep += counts[k] * std::pow(1 - fa, static_cast<double>(std::min(k, room)));
        return 1 - keep;
    };
    const double wrong_alone = wrong_from(count_law(c, tau_, HUGE_VAL, limit), limit);
    if (!mated || (std::isinf(mu_[c]) && mu_[c] < 0)) {
        law.wrong = wrong_alone;  // no mate in the list
    } else if (std::isinf(mu_[c])) {
        // FNMR 0: the mate always heads the list.
        law.mate = 1 - fr;
        law.wrong = fr * wrong_from(count_law(c, tau_, HUGE_VAL, limit), limit - 1);
    }
    if (mated && !std::isinf(mu_[c])) {
        // The mate scores x >= tau with density f_G(x); J impostors score above it and B
        // between tau and it. The list is J impostors, the mate (if J < L), then B impostors.
        const double norm = 1.0 / (sigma_ * std::sqrt(2 * M_PI));
        double mate = 0, wrong = 0;
        const double hi = mu_[c] + 12 * sigma_;
        mate = integrate(
            c,
            [&](double x) {
                const double z = (x - mu_[c]) / sigma_;
                const auto above = count_law(c, x, HUGE_VAL, limit);
                double v = 0;
                for (std::size_t j = 0; j < limit; ++j)
                    v += above[j] * std::pow(1 - fa, static_cast<double>(j));
                return norm * std::exp(-0.5 * z * z) * v * (1 - fr);
            },
            hi);
        wrong = integrate(
            c,
            [&](double x) {
                const double z = (x - mu_[c]) / sigma_;
                const auto above = count_law(c, x, HUGE_VAL, limit);
                const auto between = count_law(c, tau_, x, limit);
                double v = wrong_from(above, limit);
                for (std::size_t j = 0; j < limit; ++j)
                    v += above[j] * std::pow(1 - fa, static_cast<double>(j)) * fr *
                         wrong_from(between, limit - j - 1);
                return norm * std::exp(-0.5 * z * z) * v;
            },
            hi);
        law.mate = mate;
        law.wrong = fnmr_[c] * wrong_alone + wrong;
    }
    law.mate = std::max(law.mate, 0.0);  // rounding can leave −1e-17
    law.wrong = std::max(law.wrong, 0.0);
    // Owner of the confirmed stranger: in proportion to the expected impostors above tau.
    law.owner.assign(cells_, 0.0);
    double total = 0;
    for (std::size_t g = 0; g < cells_; ++g) {
        const double d = delta_[c * cells_ + g];
        if (std::isinf(d)) continue;
        law.owner[g] = records_[g] * upper_tail(tau_ - d);
        total += law.owner[g];
    }
    if (total > 0)
        for (auto& o : law.owner) o /= total;
    return law;
}

std::vector<Candidate> MatchModel::impostors_above_tau(std::size_t c, std::size_t limit,
                                                       UniformStream& u) const {
    const ImpostorGallery& gallery = galleries_[c];
    const auto& exceed = gallery.group_exceed();
    const double fpir = gallery.fpir();
    std::vector<Candidate> out;
    if (fpir <= 0) return out;
    // The first gallery cell (in index order) holding an impostor above tau, with
    // probability p_j Π_{i<j} (1 − p_i) / FPIR; the cells after it are unconstrained.
    double target = u.next() * fpir;
    double none_before = 1;
    std::size_t first = exceed.size() - 1;
    for (std::size_t g = 0; g < exceed.size(); ++g) {
        const double p_first = exceed[g] * none_before;
        if (target < p_first) {
            first = g;
            break;
        }
        target -= p_first;
        none_before *= 1 - exceed[g];
    }
    for (std::size_t g = first; g < exceed.size(); ++g) {
        if (exceed[g] <= 0) continue;
        const auto n = static_cast<std::int64_t>(records_[g]);
        const double q = upper_tail(tau_ - delta_[c * cells_ + g]);
        const std::int64_t k = g == first ? truncated_binomial(n, q, u) : binomial(n, q, u);
        // The top order statistics of k scores above tau: the smallest of k uniforms on the
        // tail, then the smallest of the remaining k − 1 above it, and so on (Rényi).
        double w = 0;
        for (std::int64_t j = 0; j < std::min<std::int64_t>(k, static_cast<std::int64_t>(limit));
             ++j) {
            w += (1 - w) * -std::expm1(std::log1p(-u.next()) / static_cast<double>(k - j));
            out.push_back(
                {delta_[c * cells_ + g] + upper_tail_quantile(std::max(w * q, 1e-320)), g, false});
        }
    }
    std::sort(out.begin(), out.end(),
              [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
    if (out.size() > limit) out.resize(limit);
    return out;
}

}  // namespace stopscan

namespace stopscan {

namespace {

// Puts the mate into a candidate list sorted best first, keeping at most `limit` candidates.
void insert_mate(std::vector<Candidate>& list, const Candidate& mate, std::size_t limit) {
    list.insert(
        std::upper_bound(list.begin(), list.end(), mate,
                         [](const Candidate& a, const Candidate& b) { return a.score > b.score; }),
        mate);
    if (list.size() > limit) list.resize(limit);
}

}  // namespace

SearchOutcome MatchModel::review(const std::vector<Candidate>& list, UniformStream& u) const {
    // The reviewer goes down the list and confirms the first candidate they accept: the mate
    // unless falsely rejected, a stranger only if falsely accepted.
    for (const auto& candidate : list) {
        const double v = u.next();
        if (candidate.mate && v >= matcher_->review_false_reject) return {SearchOutcome::mate, 0};
        if (!candidate.mate && v < matcher_->review_false_accept)
            return {SearchOutcome::impostor, candidate.gallery_cell};
    }
    return {};
}

SearchOutcome MatchModel::search_given(std::size_t c, bool mated, double u0, bool impostor_above,
                                       UniformStream& scores, UniformStream& reviewer) const {
    const bool genuine_above = mated && u0 >= fnmr_[c];
    if (!matcher_->human_review) {
        if (!impostor_above)
            return genuine_above ? SearchOutcome{SearchOutcome::mate, 0} : SearchOutcome{};
        // Only now are scores needed: the best impostor given that it passes tau, and the
        // genuine score by inversion of the same u0 that passed it.
        const auto best = galleries_[c].sample_max_above_tau(scores);
        if (genuine_above && genuine_score(c, u0) >= best.score) return {SearchOutcome::mate, 0};
        return {SearchOutcome::impostor, best.group};
    }
    if (!impostor_above && !genuine_above) return {};
    const auto limit = static_cast<std::size_t>(matcher_->candidates);
    std::vector<Candidate> list;
    if (impostor_above) list = impostors_above_tau(c, limit, scores);
    if (genuine_above)
        insert_mate(list, {impostor_above ? genuine_score(c, u0) : HUGE_VAL, c, true}, limit);
    return review(list, reviewer);
}

SearchOutcome MatchModel::search_eager(std::size_t c, bool mated, UniformStream& scores,
                                       UniformStream& reviewer) const {
    const double genuine = mated ? genuine_score(c, scores.next()) : -HUGE_VAL;
    const auto best = galleries_[c].sample_max(scores);
    if (!matcher_->human_review) {
        if (genuine >= tau_ && genuine >= best.score) return {SearchOutcome::mate, 0};
        if (best.score > tau_) return {SearchOutcome::impostor, best.group};
        return {};
    }
    // With review: every impostor above tau, drawn from the counts given that the best
    // passes (the best's group and score are then discarded: only the law matters here).
    std::vector<Candidate> list;
    const auto limit = static_cast<std::size_t>(matcher_->candidates);
    if (best.score > tau_) list = impostors_above_tau(c, limit, scores);
    if (genuine >= tau_) insert_mate(list, {genuine, c, true}, limit);
    return review(list, reviewer);
}

}  // namespace stopscan
