#include "stopscan/sensitivity.hpp"

#include <algorithm>
#include <boost/math/distributions/binomial.hpp>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "stopscan/random.hpp"
#include "stopscan/summary.hpp"

namespace stopscan {

std::vector<MorrisIndex> morris_indices(const std::vector<MorrisStep>& steps, std::size_t axes) {
    std::vector<std::vector<double>> effects(axes);
    for (const auto& s : steps) {
        if (s.axis >= axes) throw std::invalid_argument("Morris step on an axis out of range");
        if (!(s.step != 0) || !std::isfinite(s.step))
            throw std::invalid_argument("Morris step of zero or non-finite size");
        const double ee = (s.y_after - s.y_before) / s.step;
        if (std::isfinite(ee)) effects[s.axis].push_back(ee);
    }
    std::vector<MorrisIndex> out(axes);
    for (std::size_t a = 0; a < axes; ++a) {
        const auto& e = effects[a];
        MorrisIndex& m = out[a];
        m.axis = a;
        m.effects = static_cast<std::int64_t>(e.size());
        if (e.empty()) {
            m.mu = m.mu_star = m.sigma = std::numeric_limits<double>::quiet_NaN();
            continue;
        }
        const auto n = static_cast<double>(e.size());
        for (const double v : e) {
            m.mu += v / n;
            m.mu_star += std::abs(v) / n;
        }
        double ss = 0;
        for (const double v : e) ss += (v - m.mu) * (v - m.mu);
        m.sigma = e.size() > 1 ? std::sqrt(ss / (n - 1)) : 0.0;
    }
    return out;
}

namespace {

// The Sobol' estimates from the rows `rows` (indices into the blocks, repeats allowed).
void sobol_estimate(const std::vector<double>& y_a, const std::vector<double>& y_b,
                    const std::vector<std::vector<double>>& y_ab,
                    const std::vector<std::size_t>& rows, std::vector<double>& first,
                    std::vector<double>& total, double& variance) {
    const auto n = static_cast<double>(rows.size());
    // V(Y) over A and B together: 2N outputs of the same distribution.
    double mean = 0;
    for (const auto j : rows) mean += (y_a[j] + y_b[j]) / (2 * n);
    double ss = 0;
    for (const auto j : rows)
        ss += (y_a[j] - mean) * (y_a[j] - mean) + (y_b[j] - mean) * (y_b[j] - mean);
    variance = ss / (2 * n - 1);
    first.assign(y_ab.size(), 0);
    total.assign(y_ab.size(), 0);
    for (std::size_t i = 0; i < y_ab.size(); ++i) {
        double s = 0, t = 0;
        for (const auto j : rows) {
            // Saltelli et al. (2010), Table 2 (b): f(B)(f(A_B^i) - f(A)); Jansen (1999),
            // Table 2 (f): (f(A) - f(A_B^i))^2 / 2.
            s += y_b[j] * (y_ab[i][j] - y_a[j]);
            t += (y_a[j] - y_ab[i][j]) * (y_a[j] - y_ab[i][j]);
        }
        first[i] = variance > 0 ? s / n / variance : std::numeric_limits<double>::quiet_NaN();
        total[i] = variance > 0 ? t / (2 * n) / variance : std::numeric_limits<double>::quiet_NaN();
    }
}

}  // namespace

SobolResult sobol_indices(const std::vector<double>& y_a, const std::vector<double>& y_b,
                          const std::vector<std::vector<double>>& y_ab, std::int64_t bootstrap,
                          std::uint64_t seed) {
    const std::size_t n = y_a.size();
    if (y_b.size() != n) throw std::invalid_argument("Sobol' blocks A and B differ in size");
    for (const auto& ab : y_ab)
        if (ab.size() != n) throw std::invalid_argument("Sobol' block AB_i differs in size");
    if (n < 2) throw std::invalid_argument("Sobol' indices need at least 2 base points");
    if (bootstrap < 0) throw std::invalid_argument("negative number of bootstrap resamples");
    std::vector<std::size_t> rows(n);
    std::iota(rows.begin(), rows.end(), std::size_t{0});
    SobolResult out;
    std::vector<double> first, total;
    sobol_estimate(y_a, y_b, y_ab, rows, first, total, out.variance);
    if (!(out.variance > 0) || !std::isfinite(out.variance))
        throw std::invalid_argument(
            "the output has no finite, positive variance over blocks A "
            "and B: Sobol' indices are not defined");
    out.base_points = static_cast<std::int64_t>(n);
    out.bootstrap = bootstrap;
    const std::size_t k = y_ab.size();
    std::vector<std::vector<double>> first_b(k), total_b(k);
    // Counter-based draws: resample b, row j is a pure function of (seed, b, j).
    const ReplicationKey key(seed, 0xB0075'7A9ULL);
    std::vector<double> f, t;
    double v = 0;
    for (std::int64_t b = 0; b < bootstrap; ++b) {
        for (std::size_t j = 0; j < n; ++j)
            rows[j] = static_cast<std::size_t>(
                key.bits(static_cast<std::uint64_t>(b), Purpose::Design, 0, j)[0] % n);
        sobol_estimate(y_a, y_b, y_ab, rows, f, t, v);
        for (std::size_t i = 0; i < k; ++i) {
            if (std::isfinite(f[i])) first_b[i].push_back(f[i]);
            if (std::isfinite(t[i])) total_b[i].push_back(t[i]);
        }
    }
    for (std::size_t i = 0; i < k; ++i) {
        SobolIndex s;
        s.axis = i;
        s.first = s.first_lo = s.first_hi = first[i];
        s.total = s.total_lo = s.total_hi = total[i];
        if (!first_b[i].empty()) {
            s.first_lo = quantile(first_b[i], 0.025);
            s.first_hi = quantile(first_b[i], 0.975);
        }
        if (!total_b[i].empty()) {
            s.total_lo = quantile(total_b[i], 0.025);
            s.total_hi = quantile(total_b[i], 0.975);
        }
        out.indices.push_back(s);
    }
    return out;
}

NoiseSummary mc_noise(const std::vector<double>& y, const std::vector<double>& se) {
    if (y.size() != se.size()) throw std::invalid_argument("outputs and standard errors differ");
    NoiseSummary out;
    double mean = 0, mc = 0;
    std::int64_t n = 0;
    for (std::size_t i = 0; i < y.size(); ++i)
        if (std::isfinite(y[i]) && std::isfinite(se[i])) {
            ++n;
            mean += y[i];
            mc += se[i] * se[i];
        }
    out.points = n;
    if (n == 0) {
        out.mean_mc_variance = out.output_variance = out.ratio =
            std::numeric_limits<double>::quiet_NaN();
        return out;
    }
    mean /= static_cast<double>(n);
    out.mean_mc_variance = mc / static_cast<double>(n);
    double ss = 0;
    for (std::size_t i = 0; i < y.size(); ++i)
        if (std::isfinite(y[i]) && std::isfinite(se[i])) ss += (y[i] - mean) * (y[i] - mean);
    out.output_variance = n > 1 ? ss / static_cast<double>(n - 1) : 0.0;
    out.ratio = out.output_variance > 0 ? out.mean_mc_variance / out.output_variance
                                        : std::numeric_limits<double>::infinity();
    return out;
}

std::vector<TornadoRow> tornado_table(const std::vector<double>& low,
                                      const std::vector<double>& high) {
    if (low.size() != high.size()) throw std::invalid_argument("tornado: low and high differ");
    std::vector<TornadoRow> rows;
    for (std::size_t a = 0; a < low.size(); ++a)
        rows.push_back({a, low[a], high[a], std::abs(high[a] - low[a])});
    std::stable_sort(rows.begin(), rows.end(), [](const TornadoRow& x, const TornadoRow& y) {
        // NaN swings last.
        if (std::isnan(x.swing) != std::isnan(y.swing)) return std::isnan(y.swing);
        return x.swing > y.swing;
    });
    return rows;
}

namespace {

struct PrimData {
    const std::vector<std::vector<double>>& x;
    const std::vector<bool>& cases;
    std::int64_t total_cases = 0;

    bool inside(std::size_t p, const std::vector<double>& lo, const std::vector<double>& hi) const {
        for (std::size_t a = 0; a < lo.size(); ++a)
            if (x[p][a] < lo[a] || x[p][a] > hi[a]) return false;
        return true;
    }
    PrimBox box(std::vector<double> lo, std::vector<double> hi) const {
        PrimBox b;
        b.lo = std::move(lo);
        b.hi = std::move(hi);
        for (std::size_t p = 0; p < x.size(); ++p)
            if (inside(p, b.lo, b.hi)) {
                ++b.points;
                if (cases[p]) ++b.cases;
            }
        b.support = static_cast<double>(b.points) / static_cast<double>(x.size());
        b.density = b.points ? static_cast<double>(b.cases) / static_cast<double>(b.points) : 0;
        b.coverage =
            total_cases ? static_cast<double>(b.cases) / static_cast<double>(total_cases) : 0;
        return b;
    }
};

// Better box for a peel or a paste: denser; on a tie, the one holding more points.
bool better(const PrimBox& a, const PrimBox& b) {
    if (a.density != b.density) return a.density > b.density;
    return a.points > b.points;
}

// A peel's gain in density per point removed ("lenient 1" of the EMA Workbench, Kwakkel and
// Jaxa-Rozen 2016): Friedman and Fisher's "densest remaining box" rule, made fair between a
// peel of α of the points and a peel that must take a whole level of a list or Morris axis.
double peel_gain(const PrimBox& from, const PrimBox& to) {
    return (to.density - from.density) / static_cast<double>(from.points - to.points);
}

}  // namespace

PrimResult prim(const std::vector<std::vector<double>>& x, const std::vector<bool>& cases,
                const PrimOptions& options) {
    if (x.empty()) throw std::invalid_argument("PRIM needs at least one point");
    if (cases.size() != x.size()) throw std::invalid_argument("PRIM: points and cases differ");
    if (!(options.alpha > 0 && options.alpha < 0.5) ||
        !(options.min_support > 0 && options.min_support <= 1) ||
        !(options.min_coverage >= 0 && options.min_coverage <= 1) ||
        !(options.max_qp > 0 && options.max_qp <= 1))
        throw std::invalid_argument("PRIM options out of range");
    const std::size_t k = x.front().size();
    for (const auto& row : x)
        if (row.size() != k) throw std::invalid_argument("PRIM: ragged rows");
    PrimData data{x, cases, 0};
    for (const bool c : cases) data.total_cases += c ? 1 : 0;

    PrimResult out;
    out.cases = data.total_cases;
    out.data_lo.assign(k, std::numeric_limits<double>::infinity());
    out.data_hi.assign(k, -std::numeric_limits<double>::infinity());
    for (const auto& row : x)
        for (std::size_t a = 0; a < k; ++a) {
            out.data_lo[a] = std::min(out.data_lo[a], row[a]);
            out.data_hi[a] = std::max(out.data_hi[a], row[a]);
        }
    out.trajectory.push_back(data.box(out.data_lo, out.data_hi));

    // Peeling. With tied values (a grid's or Morris's levels) a peel removes every point at
    // the cut value, so it may take more than the α-share; a peel that would empty the box
    // is not a candidate.
    const auto min_points =
        static_cast<std::int64_t>(std::ceil(options.min_support * static_cast<double>(x.size())));
    for (;;) {
        const PrimBox& current = out.trajectory.back();
        const auto m = std::max<std::int64_t>(
            1, static_cast<std::int64_t>(
                   std::floor(options.alpha * static_cast<double>(current.points))));
        bool found = false;
        PrimBox best;
        double best_gain = 0;
        auto consider = [&](PrimBox b) {
            if (b.points < min_points) return;
            const double gain = peel_gain(current, b);
            if (!found || gain > best_gain || (gain == best_gain && b.points > best.points)) {
                best_gain = gain;
                best = std::move(b);
                found = true;
            }
        };
        for (std::size_t a = 0; a < k; ++a) {
            std::vector<double> v;
            for (std::size_t p = 0; p < x.size(); ++p)
                if (data.inside(p, current.lo, current.hi)) v.push_back(x[p][a]);
            std::sort(v.begin(), v.end());
            const auto mm = static_cast<std::size_t>(m);
            // Low side: drop every point with a value <= the m-th smallest.
            const double cut_lo = v[mm - 1];
            const auto above = std::upper_bound(v.begin(), v.end(), cut_lo);
            if (above != v.end()) {
                auto lo = current.lo;
                lo[a] = *above;
                consider(data.box(lo, current.hi));
            }
            // High side: drop every point with a value >= the m-th largest.
            const double cut_hi = v[v.size() - mm];
            const auto below = std::lower_bound(v.begin(), v.end(), cut_hi);
            if (below != v.begin()) {
                auto hi = current.hi;
                hi[a] = *(below - 1);
                consider(data.box(current.lo, hi));
            }
        }
        if (!found) break;
        out.trajectory.push_back(std::move(best));
    }

    // The densest box with enough coverage (the largest on ties; box 0 always qualifies
    // when there are cases, since its coverage is 1).
    std::size_t chosen = 0;
    for (std::size_t s = 1; s < out.trajectory.size(); ++s) {
        const PrimBox& b = out.trajectory[s];
        if (b.coverage + 1e-12 >= options.min_coverage &&
            b.density > out.trajectory[chosen].density)
            chosen = s;
    }
    out.chosen_step = chosen;

    // Pasting: widen one side of one axis by the next α-share of the box's points (the
    // points just outside that side, within the other bounds) while the density rises.
    PrimBox box = out.trajectory[chosen];
    for (;;) {
        const auto m = std::max<std::int64_t>(
            1,
            static_cast<std::int64_t>(std::floor(options.alpha * static_cast<double>(box.points))));
        bool found = false;
        PrimBox best;
        for (std::size_t a = 0; a < k; ++a) {
            std::vector<double> below, above;
            for (std::size_t p = 0; p < x.size(); ++p) {
                auto lo = box.lo;
                auto hi = box.hi;
                lo[a] = -std::numeric_limits<double>::infinity();
                hi[a] = std::numeric_limits<double>::infinity();
                if (!data.inside(p, lo, hi)) continue;
                if (x[p][a] < box.lo[a]) below.push_back(x[p][a]);
                if (x[p][a] > box.hi[a]) above.push_back(x[p][a]);
            }
            const auto mm = static_cast<std::size_t>(m);
            if (!below.empty()) {
                std::sort(below.begin(), below.end(), std::greater<>());
                auto lo = box.lo;
                lo[a] = below[std::min(mm, below.size()) - 1];
                PrimBox b = data.box(lo, box.hi);
                if (b.density > box.density && (!found || better(b, best))) {
                    best = std::move(b);
                    found = true;
                }
            }
            if (!above.empty()) {
                std::sort(above.begin(), above.end());
                auto hi = box.hi;
                hi[a] = above[std::min(mm, above.size()) - 1];
                PrimBox b = data.box(box.lo, hi);
                if (b.density > box.density && (!found || better(b, best))) {
                    best = std::move(b);
                    found = true;
                }
            }
        }
        if (!found) break;
        box = std::move(best);
    }
    // Pruning (Bryant and Lempert 2010, "Thinking inside the box"): a restriction is kept
    // only if the box is significantly denser than the same box without it. Its
    // quasi-p-value is the one-sided binomial probability of at least the box's cases among
    // its points at the density of the box without the restriction; the least significant
    // restriction above `max_qp` is dropped, and the test repeated.
    auto restricted = [&](const PrimBox& b, std::size_t a) {
        return b.lo[a] > out.data_lo[a] || b.hi[a] < out.data_hi[a];
    };
    auto quasi_p = [&](const PrimBox& b, std::size_t a) {
        auto lo = b.lo;
        auto hi = b.hi;
        lo[a] = out.data_lo[a];
        hi[a] = out.data_hi[a];
        const PrimBox wider = data.box(lo, hi);
        if (b.cases == 0) return 1.0;
        if (wider.density >= 1) return 1.0;
        const boost::math::binomial_distribution<double> law(static_cast<double>(b.points),
                                                             wider.density);
        return boost::math::cdf(boost::math::complement(law, static_cast<double>(b.cases - 1)));
    };
    for (;;) {
        std::size_t worst = k;
        double worst_qp = options.max_qp;
        for (std::size_t a = 0; a < k; ++a)
            if (restricted(box, a)) {
                const double qp = quasi_p(box, a);
                if (qp > worst_qp) {
                    worst_qp = qp;
                    worst = a;
                }
            }
        if (worst == k) break;
        box.lo[worst] = out.data_lo[worst];
        box.hi[worst] = out.data_hi[worst];
        box = data.box(box.lo, box.hi);
    }
    box.qp.assign(k, std::numeric_limits<double>::quiet_NaN());
    for (std::size_t a = 0; a < k; ++a)
        if (restricted(box, a)) box.qp[a] = quasi_p(box, a);
    out.box = std::move(box);
    return out;
}

}  // namespace stopscan
