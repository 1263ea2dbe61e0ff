#include "stopscan/summary.hpp"

#include "stopscan/expectation.hpp"

#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <limits>
#include <numeric>

namespace stopscan {

namespace {

constexpr double UNDEFINED = std::numeric_limits<double>::quiet_NaN();

// A marginal group of cells: one category of one dimension, or everybody.
struct Group {
    std::string dimension;
    std::string category;
    std::vector<std::size_t> cells;
    std::optional<std::size_t> reference;  // index of the reference category's group
    std::optional<std::size_t> dimension_index;
};

std::vector<Group> make_groups(const Scenario& s, const CellTable& cells) {
    std::vector<Group> groups;
    Group all{"all", "all", {}, std::nullopt, std::nullopt};
    for (std::size_t c = 0; c < cells.size(); ++c) all.cells.push_back(c);
    groups.push_back(std::move(all));
    for (std::size_t d = 0; d < s.dimensions.size(); ++d) {
        const auto& dim = s.dimensions[d];
        const std::size_t first = groups.size();
        for (const auto& category : dim.categories)
            groups.push_back({dim.name, category, {}, first + dim.reference, d});
        for (std::size_t c = 0; c < cells.size(); ++c)
            groups[first + cells.category(c, d)].cells.push_back(c);
    }
    return groups;
}

// Rate ratio of a against b; +inf when only b's rate is zero, undefined when both are.
double ratio(double a, double pop_a, double b, double pop_b) {
    if (pop_a <= 0 || pop_b <= 0) return UNDEFINED;
    const double num = a / pop_a;
    const double den = b / pop_b;
    if (den == 0) return num == 0 ? UNDEFINED : std::numeric_limits<double>::infinity();
    return num / den;
}

double per(double count, double population, double unit) {
    return population > 0 ? unit * count / population : UNDEFINED;
}

// The metrics of summary.csv, in output order, computed from one replication's counts of a
// group (and of its reference group, for ratios).
class MetricTable {
public:
    explicit MetricTable(const MetricLayout& layout) : layout_(layout) {
        const std::size_t n_db = layout.databases().size();
        auto per_db = [&](MetricLayout::PerDatabase m) {
            for (std::size_t d = 0; d < n_db; ++d)
                add_count(layout.name(layout.at(d, m)), layout.at(d, m));
        };
        add({"population", Kind::population});
        add_count("stops", MetricLayout::STOPS);
        add({"stops_per_1000", Kind::per_population, MetricLayout::STOPS, 0, 1e3});
        add({"stop_rate_ratio", Kind::ratio, MetricLayout::STOPS});
        add_count("persons_stopped", MetricLayout::PERSONS_STOPPED);
        // Uses per person scanned: the repeat-stop calibration target (42 uses on 35 people).
        add({"stops_per_person", Kind::fraction, MetricLayout::STOPS, MetricLayout::PERSONS_STOPPED,
             1});
        for (const auto m : {MetricLayout::SEARCHES, MetricLayout::TRUE_MATCHES,
                             MetricLayout::FALSE_MATCHES, MetricLayout::RECORD_ERROR_HITS,
                             MetricLayout::MATED_SEARCHES, MetricLayout::NONMATED_SEARCHES})
            per_db(m);
        for (std::size_t d = 0; d < n_db; ++d) {
            const auto& db = layout.databases()[d];
            // Observed identification error rates (MODEL.md §5): FPIR over non-mated
            // searches, FNIR over mated ones.
            add({"fpir." + db, Kind::fraction, layout.at(d, MetricLayout::NONMATED_FALSE_MATCHES),
                 layout.at(d, MetricLayout::NONMATED_SEARCHES), 1});
            add({"fnir." + db, Kind::fraction, layout.at(d, MetricLayout::MATES_MISSED),
                 layout.at(d, MetricLayout::MATED_SEARCHES), 1});
        }
        // Share of searches that returned a record: the "identifications" of the Met's first
        // months and the share of people scanned found on IABS (calibration targets).
        for (std::size_t d = 0; d < n_db; ++d)
            add({"hit_share." + layout.databases()[d], Kind::fraction,
                 layout.at(d, MetricLayout::HITS), layout.at(d, MetricLayout::SEARCHES), 1});
        for (std::size_t d = 0; d < n_db; ++d)
            add({"false_match_share_same_group." + layout.databases()[d], Kind::same_group,
                 layout.at(d, MetricLayout::FALSE_MATCHES), d});
        for (const auto m :
             {MetricLayout::STATUS_DISCLOSURES, MetricLayout::LAWFUL_STATUS_DISCLOSURES,
              MetricLayout::ARRESTS, MetricLayout::WRONGFUL_ARRESTS, MetricLayout::HO_REFERRALS,
              MetricLayout::WRONGFUL_HO_REFERRALS, MetricLayout::DETENTIONS,
              MetricLayout::WRONGFUL_DETENTIONS, MetricLayout::WRONGFUL_OUTCOMES})
            add_count(layout.name(m), m);
        per_db(MetricLayout::WRONGFUL_BY_FALSE_MATCH);
        per_db(MetricLayout::WRONGFUL_BY_RECORD_ERROR);
        add_count("persons_wrongfully_affected", MetricLayout::PERSONS_WRONGFULLY_AFFECTED);
        add({"exposure_per_100k", Kind::per_population, MetricLayout::WRONGFUL_OUTCOMES, 0, 1e5});
        add({"exposure_ratio", Kind::ratio, MetricLayout::WRONGFUL_OUTCOMES});
        add({"persons_affected_per_100k", Kind::per_population,
             MetricLayout::PERSONS_WRONGFULLY_AFFECTED, 0, 1e5});
        add({"wrongful_per_1000_stops", Kind::fraction, MetricLayout::WRONGFUL_OUTCOMES,
             MetricLayout::STOPS, 1e3});
    }

    std::size_t size() const { return metrics_.size(); }
    const std::string& name(std::size_t i) const { return metrics_[i].name; }
    bool is_ratio(std::size_t i) const { return metrics_[i].kind == Kind::ratio; }

    // values[i] for metric i. `ref` is null for the "all" group (ratios undefined);
    // `dimension` is the group's dimension (none for "all").
    void compute(const std::vector<double>& counts, double pop, const std::vector<double>* ref,
                 double ref_pop, std::optional<std::size_t> dimension, double* values) const {
        for (std::size_t i = 0; i < metrics_.size(); ++i) {
            const Metric& m = metrics_[i];
            switch (m.kind) {
                case Kind::count:
                    values[i] = counts[m.a];
                    break;
                case Kind::population:
                    values[i] = pop;
                    break;
                case Kind::per_population:
                    values[i] = per(counts[m.a], pop, m.scale);
                    break;
                case Kind::fraction:
                    values[i] = counts[m.b] > 0 ? m.scale * counts[m.a] / counts[m.b] : UNDEFINED;
                    break;
                case Kind::ratio:
                    values[i] = ref ? ratio(counts[m.a], pop, (*ref)[m.a], ref_pop) : UNDEFINED;
                    break;
                case Kind::same_group: {
                    // Among false matches of probes in this group: the share whose record's
                    // owner is in the same category of the group's dimension (for everyone:
                    // the same cell).
                    const std::size_t same =
                        dimension ? layout_.same_category(m.b, *dimension)
                                  : layout_.at(m.b, MetricLayout::FALSE_MATCHES_SAME_CELL);
                    values[i] = counts[m.a] > 0 ? counts[same] / counts[m.a] : UNDEFINED;
                    break;
                }
            }
        }
    }

    // The count whose total over replications decides how reliable metric i is.
    std::optional<std::size_t> events(std::size_t i) const {
        const Metric& m = metrics_[i];
        switch (m.kind) {
            case Kind::population:
                return std::nullopt;
            case Kind::same_group:
                return layout_.at(m.b, MetricLayout::FALSE_MATCHES);
            default:
                return m.a;
        }
    }
    // The values metric i can take: an interval of its mean is kept inside them (a t interval
    // of a share near 0 would otherwise reach below 0).
    std::pair<double, double> range(std::size_t i) const {
        const Metric& m = metrics_[i];
        if (m.kind == Kind::fraction) return {0.0, m.b == MetricLayout::STOPS ? HUGE_VAL : m.scale};
        if (m.kind == Kind::same_group) return {0.0, 1.0};
        return {0.0, HUGE_VAL};
    }
    // A zero-event upper bound applies to counts and to rates per population: `unit`
    // converts an expected count into the metric's unit.
    std::optional<double> unit(std::size_t i, double pop) const {
        const Metric& m = metrics_[i];
        if (m.kind == Kind::count) return 1.0;
        if (m.kind == Kind::per_population && pop > 0) return m.scale / pop;
        return std::nullopt;
    }

    // Ratio of means, the estimate for a ratio metric: steadier than the mean of ratios.
    double ratio_of_means(std::size_t i, const std::vector<double>& mean, double pop,
                          const std::vector<double>& ref_mean, double ref_pop) const {
        const std::size_t k = metrics_[i].a;
        return ratio(mean[k], pop, ref_mean[k], ref_pop);
    }

private:
    enum class Kind { count, population, per_population, fraction, ratio, same_group };
    struct Metric {
        std::string name;
        Kind kind;
        std::size_t a = 0;  // count index (numerator)
        std::size_t b = 0;  // denominator index, or database for same_group
        double scale = 1;
    };
    void add(Metric m) { metrics_.push_back(std::move(m)); }
    void add_count(const std::string& name, std::size_t index) { add({name, Kind::count, index}); }

    const MetricLayout& layout_;
    std::vector<Metric> metrics_;
};

// Two-sided 95 % Student t quantile with n − 1 degrees of freedom.
double t95(std::size_t n) {
    return boost::math::quantile(boost::math::complement(
        boost::math::students_t_distribution<double>(static_cast<double>(n - 1)), 0.025));
}

Estimate summarise_values(const std::vector<double>& values) {
    std::vector<double> defined;
    for (const double v : values)
        if (!std::isnan(v)) defined.push_back(v);
    Estimate e;
    e.replications = static_cast<std::int64_t>(defined.size());
    if (defined.empty()) return e;
    // Summed in replication order: the same bits whatever thread produced each replication.
    double sum = 0;
    bool finite = true;
    for (const double v : defined) {
        sum += v;
        finite = finite && std::isfinite(v);
    }
    const auto n = defined.size();
    e.estimate = sum / static_cast<double>(n);
    if (finite && n >= 2) {
        double squares = 0;
        for (const double v : defined) squares += (v - *e.estimate) * (v - *e.estimate);
        const double se = std::sqrt(squares / static_cast<double>(n - 1) / static_cast<double>(n));
        e.mean_lo95 = *e.estimate - t95(n) * se;
        e.mean_hi95 = *e.estimate + t95(n) * se;
    }
    e.lo95 = quantile(defined, 0.025);
    e.hi95 = quantile(defined, 0.975);
    return e;
}

void add_flag(Estimate& e, const char* flag) {
    if (!e.flag.empty()) e.flag += '+';
    e.flag += flag;
}

// Confidence interval of a ratio of mean rates (a/pa)/(b/pb) by the delta method on its
// logarithm, with the covariance of the paired replication counts.
void ratio_interval(Estimate& e, const std::vector<double>& a, const std::vector<double>& b) {
    const auto n = a.size();
    if (n < 2 || !e.estimate || !std::isfinite(*e.estimate) || *e.estimate <= 0) return;
    double ma = 0, mb = 0;
    for (std::size_t r = 0; r < n; ++r) ma += a[r], mb += b[r];
    ma /= static_cast<double>(n);
    mb /= static_cast<double>(n);
    double vaa = 0, vbb = 0, vab = 0;
    for (std::size_t r = 0; r < n; ++r) {
        vaa += (a[r] - ma) * (a[r] - ma);
        vbb += (b[r] - mb) * (b[r] - mb);
        vab += (a[r] - ma) * (b[r] - mb);
    }
    const double scale = 1.0 / (static_cast<double>(n - 1) * static_cast<double>(n));
    const double var_log = scale * (vaa / (ma * ma) + vbb / (mb * mb) - 2 * vab / (ma * mb));
    const double half = t95(n) * std::sqrt(std::max(var_log, 0.0));
    e.mean_lo95 = *e.estimate * std::exp(-half);
    e.mean_hi95 = *e.estimate * std::exp(half);
}

}  // namespace

double quantile(std::vector<double>& values, double q) {
    std::sort(values.begin(), values.end());
    const double h = (static_cast<double>(values.size()) - 1) * q;
    const auto lo = static_cast<std::size_t>(std::floor(h));
    const std::size_t hi = std::min(lo + 1, values.size() - 1);
    const double fraction = h - static_cast<double>(lo);
    // Written so that infinite values (ratios against a zero reference) never meet 0 × inf
    // or inf − inf.
    if (fraction == 0 || values[lo] == values[hi]) return values[lo];
    if (std::isinf(values[hi])) return values[hi];
    return values[lo] + fraction * (values[hi] - values[lo]);
}

Summary summarize(const Results& results) {
    const Scenario& s = *results.plan.scenario;
    const CellTable cells(s.dimensions, s.population);
    const auto groups = make_groups(s, cells);
    const MetricTable table(results.layout);
    const std::size_t R = static_cast<std::size_t>(results.plan.replications);
    const std::size_t P = results.policies();
    const std::size_t K = results.layout.size();
    const std::size_t M = table.size();

    std::vector<double> population(groups.size(), 0);
    for (std::size_t g = 0; g < groups.size(); ++g)
        for (const auto c : groups[g].cells)
            population[g] += static_cast<double>(results.cell_population[c]);

    // counts[(p * G + g) * R + r] = summed tally row of group g.
    std::vector<std::vector<double>> counts(P * groups.size() * R, std::vector<double>(K, 0));
    for (std::size_t p = 0; p < P; ++p)
        for (std::size_t g = 0; g < groups.size(); ++g)
            for (std::size_t r = 0; r < R; ++r) {
                auto& sum = counts[(p * groups.size() + g) * R + r];
                for (const auto c : groups[g].cells) {
                    const std::uint64_t* row = results.row(r, p, c);
                    for (std::size_t k = 0; k < K; ++k) sum[k] += static_cast<double>(row[k]);
                    // Importance sampling: the replication's weighted correction is part of
                    // its estimate, so intervals across replications carry its variance.
                    if (const double* w = results.weighted_row(r, p, c))
                        for (std::size_t k = 0; k < K; ++k) sum[k] += w[k];
                }
            }

    // values[((p * G + g) * M + i) * R + r]
    std::vector<double> values(P * groups.size() * M * R);
    std::vector<double> scratch(M);
    for (std::size_t p = 0; p < P; ++p)
        for (std::size_t g = 0; g < groups.size(); ++g)
            for (std::size_t r = 0; r < R; ++r) {
                const auto& ref = groups[g].reference;
                table.compute(counts[(p * groups.size() + g) * R + r], population[g],
                              ref ? &counts[(p * groups.size() + *ref) * R + r] : nullptr,
                              ref ? population[*ref] : 0, groups[g].dimension_index,
                              scratch.data());
                for (std::size_t i = 0; i < M; ++i)
                    values[((p * groups.size() + g) * M + i) * R + r] = scratch[i];
            }

    auto series = [&](std::size_t p, std::size_t g, std::size_t i) {
        const auto begin =
            values.begin() + static_cast<std::ptrdiff_t>(((p * groups.size() + g) * M + i) * R);
        return std::vector<double>(begin, begin + static_cast<std::ptrdiff_t>(R));
    };
    auto mean_counts = [&](std::size_t p, std::size_t g) {
        std::vector<double> mean(K, 0);
        for (std::size_t r = 0; r < R; ++r)
            for (std::size_t k = 0; k < K; ++k)
                mean[k] += counts[(p * groups.size() + g) * R + r][k];
        for (auto& v : mean) v /= static_cast<double>(R);
        return mean;
    };

    auto event_series = [&](std::size_t p, std::size_t g, std::size_t k) {
        std::vector<double> out(R);
        for (std::size_t r = 0; r < R; ++r) out[r] = counts[(p * groups.size() + g) * R + r][k];
        return out;
    };
    auto total = [](const std::vector<double>& v) {
        return std::accumulate(v.begin(), v.end(), 0.0);
    };

    // The estimate of summary.csv with its intervals and reliability flags; for ratios, the
    // ratio of mean rates.
    auto estimate = [&](std::size_t p, std::size_t g, std::size_t i) {
        Estimate e = summarise_values(series(p, g, i));
        const auto k = table.events(i);
        if (!k) return e;
        const auto events = event_series(p, g, *k);
        double n_events = total(events);
        if (table.is_ratio(i)) {
            const auto ref = *groups[g].reference;
            const double rom = table.ratio_of_means(i, mean_counts(p, g), population[g],
                                                    mean_counts(p, ref), population[ref]);
            e.estimate = std::isnan(rom) ? std::nullopt : std::optional<double>(rom);
            e.mean_lo95 = e.mean_hi95 = std::nullopt;
            const auto ref_events = event_series(p, ref, *k);
            ratio_interval(e, events, ref_events);
            n_events = std::min(n_events, total(ref_events));
            if (e.mean_lo95 &&
                (*e.mean_lo95 > results.plan.band_hi || *e.mean_hi95 < results.plan.band_lo))
                add_flag(e, "outside_band");
        }
        const auto [lowest, highest] = table.range(i);
        if (e.mean_lo95) e.mean_lo95 = std::max(*e.mean_lo95, lowest);
        if (e.mean_hi95) e.mean_hi95 = std::min(*e.mean_hi95, highest);
        const auto unit = table.unit(i, population[g]);
        if (n_events == 0 && unit) {
            // No event in any replication: zero, with the one-sided 95 % Poisson upper bound
            // on the expected count per replication, −ln(0.05) / R.
            e.estimate = 0;
            e.mean_lo95 = 0;
            e.mean_hi95 = -std::log(0.05) / static_cast<double>(R) * *unit;
            add_flag(e, "zero_events");
        } else if (n_events < LOW_EVENTS) {
            add_flag(e, "low_events");
        }
        return e;
    };

    Summary summary;
    const auto& names = results.plan.policies;
    const std::size_t b = results.plan.baseline;
    for (std::size_t p = 0; p < P; ++p) {
        const std::string& policy = s.policies[names[p]].name;
        for (std::size_t g = 0; g < groups.size(); ++g) {
            const auto& group = groups[g];
            for (std::size_t i = 0; i < M; ++i) {
                if (table.is_ratio(i) && !group.reference) continue;  // no ratio for "all"
                summary.rows.push_back(
                    {policy, group.dimension, group.category, table.name(i), estimate(p, g, i)});
            }
        }
    }
    for (std::size_t p = 0; p < P; ++p) {
        if (p == b) continue;
        const std::string& policy = s.policies[names[p]].name;
        const std::string& baseline = s.policies[names[b]].name;
        for (std::size_t g = 0; g < groups.size(); ++g) {
            const auto& group = groups[g];
            for (std::size_t i = 0; i < M; ++i) {
                if (table.name(i) == "population" || (table.is_ratio(i) && !group.reference))
                    continue;
                const auto a = series(p, g, i);
                const auto z = series(b, g, i);
                std::vector<double> delta(R);
                for (std::size_t r = 0; r < R; ++r)
                    delta[r] = std::isfinite(a[r]) && std::isfinite(z[r]) ? a[r] - z[r] : UNDEFINED;
                EffectRow row{policy,         baseline,      group.dimension,
                              group.category, table.name(i), summarise_values(delta),
                              std::nullopt};
                const auto base = estimate(b, g, i).estimate;
                if (row.delta.estimate && base && *base != 0)
                    row.relative_change = *row.delta.estimate / *base;
                summary.effects.push_back(std::move(row));
            }
        }
    }
    return summary;
}

Summary summarize_expected(const Expectation& e) {
    const Scenario& s = *e.plan.scenario;
    const CellTable cells(s.dimensions, s.population);
    const auto groups = make_groups(s, cells);
    const MetricTable table(e.layout);
    const std::size_t P = e.plan.policies.size();
    const std::size_t K = e.layout.size();
    const std::size_t M = table.size();
    std::vector<double> population(groups.size(), 0);
    std::vector<std::vector<double>> counts(P * groups.size(), std::vector<double>(K, 0));
    for (std::size_t g = 0; g < groups.size(); ++g)
        for (const auto c : groups[g].cells) {
            population[g] += static_cast<double>(e.cell_population[c]);
            for (std::size_t p = 0; p < P; ++p)
                for (std::size_t k = 0; k < K; ++k)
                    counts[p * groups.size() + g][k] += e.row(p, c)[k];
        }
    std::vector<double> values(P * groups.size() * M);
    for (std::size_t p = 0; p < P; ++p)
        for (std::size_t g = 0; g < groups.size(); ++g) {
            const auto& ref = groups[g].reference;
            table.compute(counts[p * groups.size() + g], population[g],
                          ref ? &counts[p * groups.size() + *ref] : nullptr,
                          ref ? population[*ref] : 0, groups[g].dimension_index,
                          &values[(p * groups.size() + g) * M]);
        }
    auto value = [&](std::size_t p, std::size_t g, std::size_t i) -> std::optional<double> {
        const double v = values[(p * groups.size() + g) * M + i];
        return std::isnan(v) ? std::nullopt : std::optional<double>(v);
    };
    Summary summary;
    const std::size_t b = e.plan.baseline;
    for (std::size_t p = 0; p < P; ++p) {
        const std::string& policy = s.policies[e.plan.policies[p]].name;
        for (std::size_t g = 0; g < groups.size(); ++g)
            for (std::size_t i = 0; i < M; ++i) {
                if (table.is_ratio(i) && !groups[g].reference) continue;
                summary.rows.push_back({policy, groups[g].dimension, groups[g].category,
                                        table.name(i),
                                        Estimate{value(p, g, i), std::nullopt, std::nullopt, 0,
                                                 std::nullopt, std::nullopt, ""}});
            }
    }
    for (std::size_t p = 0; p < P; ++p) {
        if (p == b) continue;
        for (std::size_t g = 0; g < groups.size(); ++g)
            for (std::size_t i = 0; i < M; ++i) {
                if (table.name(i) == "population" || (table.is_ratio(i) && !groups[g].reference))
                    continue;
                const auto a = value(p, g, i);
                const auto z = value(b, g, i);
                EffectRow row{s.policies[e.plan.policies[p]].name,
                              s.policies[e.plan.policies[b]].name,
                              groups[g].dimension,
                              groups[g].category,
                              table.name(i),
                              Estimate{},
                              std::nullopt};
                if (a && z && std::isfinite(*a) && std::isfinite(*z)) {
                    row.delta.estimate = *a - *z;
                    if (*z != 0) row.relative_change = (*a - *z) / *z;
                }
                summary.effects.push_back(std::move(row));
            }
    }
    return summary;
}

PrecisionCheck check_precision(const Summary& summary, const std::string& metric, double target) {
    PrecisionCheck check;
    for (const auto& row : summary.rows) {
        if (row.metric != metric) continue;
        const Estimate& e = row.value;
        if (!e.estimate || *e.estimate == 0) {
            ++check.excluded;
            continue;
        }
        ++check.checked;
        const double relative = e.mean_lo95 && e.mean_hi95
                                    ? (*e.mean_hi95 - *e.mean_lo95) / 2 / std::abs(*e.estimate)
                                    : HUGE_VAL;
        if (relative > check.worst || check.worst_row.empty()) {
            check.worst = std::max(check.worst, relative);
            if (relative >= check.worst)
                check.worst_row = row.policy + " " + row.dimension + "=" + row.category;
        }
        if (!(relative <= target)) check.met = false;
    }
    if (check.checked == 0) check.met = false;
    return check;
}

const SummaryRow* Summary::find(const std::string& policy, const std::string& dimension,
                                const std::string& category, const std::string& metric) const {
    for (const auto& r : rows)
        if (r.policy == policy && r.dimension == dimension && r.category == category &&
            r.metric == metric)
            return &r;
    return nullptr;
}

const EffectRow* Summary::find_effect(const std::string& policy, const std::string& dimension,
                                      const std::string& category,
                                      const std::string& metric) const {
    for (const auto& r : effects)
        if (r.policy == policy && r.dimension == dimension && r.category == category &&
            r.metric == metric)
            return &r;
    return nullptr;
}

}  // namespace stopscan
