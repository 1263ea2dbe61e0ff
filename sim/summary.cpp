#include "stopscan/summary.hpp"

#include <algorithm>
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
};

std::vector<Group> make_groups(const Scenario& s, const CellTable& cells) {
    std::vector<Group> groups;
    Group all{"all", "all", {}, std::nullopt};
    for (std::size_t c = 0; c < cells.size(); ++c) all.cells.push_back(c);
    groups.push_back(std::move(all));
    for (std::size_t d = 0; d < s.dimensions.size(); ++d) {
        const auto& dim = s.dimensions[d];
        const std::size_t first = groups.size();
        for (const auto& category : dim.categories)
            groups.push_back({dim.name, category, {}, first + dim.reference});
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
    explicit MetricTable(const MetricLayout& layout) {
        add("population");
        add("stops", MetricLayout::STOPS);
        add("stops_per_1000");
        add("stop_rate_ratio");
        add("persons_stopped", MetricLayout::PERSONS_STOPPED);
        for (const auto m : {MetricLayout::SEARCHES, MetricLayout::TRUE_MATCHES,
                             MetricLayout::FALSE_MATCHES, MetricLayout::RECORD_ERROR_HITS})
            for (std::size_t d = 0; d < layout.databases().size(); ++d)
                add(layout.name(layout.at(d, m)), layout.at(d, m));
        for (const auto m :
             {MetricLayout::STATUS_DISCLOSURES, MetricLayout::LAWFUL_STATUS_DISCLOSURES,
              MetricLayout::ARRESTS, MetricLayout::WRONGFUL_ARRESTS, MetricLayout::HO_REFERRALS,
              MetricLayout::WRONGFUL_HO_REFERRALS, MetricLayout::DETENTIONS,
              MetricLayout::WRONGFUL_DETENTIONS, MetricLayout::WRONGFUL_OUTCOMES})
            add(layout.name(m), m);
        for (const auto m :
             {MetricLayout::WRONGFUL_BY_FALSE_MATCH, MetricLayout::WRONGFUL_BY_RECORD_ERROR})
            for (std::size_t d = 0; d < layout.databases().size(); ++d)
                add(layout.name(layout.at(d, m)), layout.at(d, m));
        add("persons_wrongfully_affected", MetricLayout::PERSONS_WRONGFULLY_AFFECTED);
        add("exposure_per_100k");
        add("exposure_ratio");
        add("persons_affected_per_100k");
        add("wrongful_per_1000_stops");
    }

    std::size_t size() const { return names_.size(); }
    const std::string& name(std::size_t i) const { return names_[i]; }
    bool is_ratio(std::size_t i) const {
        return names_[i] == "stop_rate_ratio" || names_[i] == "exposure_ratio";
    }

    // values[i] for metric i; `ref` is null for the "all" group (ratios undefined).
    void compute(const std::vector<double>& counts, double pop, const std::vector<double>* ref,
                 double ref_pop, double* values) const {
        for (std::size_t i = 0; i < names_.size(); ++i) {
            const auto& n = names_[i];
            if (counts_of_[i])
                values[i] = counts[*counts_of_[i]];
            else if (n == "population")
                values[i] = pop;
            else if (n == "stops_per_1000")
                values[i] = per(counts[MetricLayout::STOPS], pop, 1e3);
            else if (n == "exposure_per_100k")
                values[i] = per(counts[MetricLayout::WRONGFUL_OUTCOMES], pop, 1e5);
            else if (n == "wrongful_per_1000_stops")
                values[i] = counts[MetricLayout::STOPS] > 0
                                ? 1e3 * counts[MetricLayout::WRONGFUL_OUTCOMES] /
                                      counts[MetricLayout::STOPS]
                                : UNDEFINED;
            else if (n == "persons_affected_per_100k")
                values[i] = per(counts[MetricLayout::PERSONS_WRONGFULLY_AFFECTED], pop, 1e5);
            else if (n == "stop_rate_ratio")
                values[i] = ref ? ratio(counts[MetricLayout::STOPS], pop,
                                        (*ref)[MetricLayout::STOPS], ref_pop)
                                : UNDEFINED;
            else if (n == "exposure_ratio")
                values[i] = ref ? ratio(counts[MetricLayout::WRONGFUL_OUTCOMES], pop,
                                        (*ref)[MetricLayout::WRONGFUL_OUTCOMES], ref_pop)
                                : UNDEFINED;
        }
    }

    // Ratio of means, the estimate for a ratio metric: steadier than the mean of ratios.
    double ratio_of_means(std::size_t i, const std::vector<double>& mean, double pop,
                          const std::vector<double>& ref_mean, double ref_pop) const {
        const auto k =
            names_[i] == "stop_rate_ratio" ? MetricLayout::STOPS : MetricLayout::WRONGFUL_OUTCOMES;
        return ratio(mean[k], pop, ref_mean[k], ref_pop);
    }

private:
    void add(const std::string& name, std::optional<std::size_t> count = std::nullopt) {
        names_.push_back(name);
        counts_of_.push_back(count);
    }
    std::vector<std::string> names_;
    std::vector<std::optional<std::size_t>> counts_of_;
};

Estimate summarise_values(const std::vector<double>& values) {
    std::vector<double> defined;
    for (const double v : values)
        if (!std::isnan(v)) defined.push_back(v);
    Estimate e;
    e.replications = static_cast<std::int64_t>(defined.size());
    if (defined.empty()) return e;
    // Summed in replication order: the same bits whatever thread produced each replication.
    double sum = 0;
    for (const double v : defined) sum += v;
    e.estimate = sum / static_cast<double>(defined.size());
    e.lo95 = quantile(defined, 0.025);
    e.hi95 = quantile(defined, 0.975);
    return e;
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
                              ref ? population[*ref] : 0, scratch.data());
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

    // The estimate of summary.csv; for ratios, the ratio of mean rates.
    auto estimate = [&](std::size_t p, std::size_t g, std::size_t i) {
        Estimate e = summarise_values(series(p, g, i));
        if (table.is_ratio(i)) {
            const auto ref = *groups[g].reference;
            const double rom = table.ratio_of_means(i, mean_counts(p, g), population[g],
                                                    mean_counts(p, ref), population[ref]);
            e.estimate = std::isnan(rom) ? std::nullopt : std::optional<double>(rom);
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
