#include "stopscan/calibrate.hpp"

#include <algorithm>
#include <boost/math/special_functions/gamma.hpp>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <tuple>

#include "stopscan/cells.hpp"
#include "stopscan/error.hpp"
#include "stopscan/settings.hpp"
#include "stopscan/writers.hpp"

namespace stopscan {

namespace {

constexpr double NaN = std::numeric_limits<double>::quiet_NaN();
constexpr double INF = std::numeric_limits<double>::infinity();

void check_level(double level) {
    if (!(level > 0 && level < 1))
        throw std::invalid_argument("confidence level must be in (0, 1)");
}

// Two-sided standard normal quantile z_{1 − α/2}, from the inverse complementary error
// function: Φ⁻¹(1 − α/2) = √2 · erfc⁻¹(α).
double two_sided_z(double level) {
    return std::sqrt(2.0) * boost::math::erfc_inv(1.0 - level);
}

std::string number(double v, int digits = 6) {
    if (std::isnan(v)) return "";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    return buf;
}

// Rates and ratios read best with a fixed number of significant digits, without exponents
// in the usual range (per 1,000 rates of stop-and-scan are 0.001–10).
std::string sig(double v, int digits = 3) {
    if (std::isnan(v)) return "-";
    if (std::isinf(v)) return "inf";
    if (v == 0) return "0";
    const int magnitude = static_cast<int>(std::floor(std::log10(std::fabs(v))));
    if (magnitude < -4 || magnitude >= 9) return number(v, digits);
    const int decimals = std::max(0, digits - 1 - magnitude);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

std::string count_text(CountInterval c) {
    return c.suppressed() ? with_thousands(c.lo) + "-" + with_thousands(c.hi) + "*"
                          : with_thousands(c.lo);
}

std::string key_text(const std::string& area, const std::string& dimension,
                     const std::string& category) {
    return (area.empty() ? "" : "area=" + area + ", ") + dimension + "=" + category;
}

}  // namespace

Interval garwood_interval(CountInterval count, double level) {
    check_level(level);
    if (count.lo < 0 || count.hi < count.lo)
        throw std::invalid_argument("a count interval needs 0 <= lo <= hi");
    const double alpha = 1 - level;
    const double lo =
        count.lo == 0 ? 0.0 : boost::math::gamma_p_inv(static_cast<double>(count.lo), alpha / 2);
    // The upper tail through gamma_q_inv keeps full relative precision at small α.
    const double hi = boost::math::gamma_q_inv(static_cast<double>(count.hi) + 1, alpha / 2);
    return {lo, hi};
}

Interval katz_interval(CountInterval a, double pop_a, CountInterval b, double pop_b, double level) {
    check_level(level);
    if (!(pop_a > 0) || !(pop_b > 0))
        throw std::invalid_argument("a rate ratio needs populations > 0");
    if (a.lo < 0 || a.hi < a.lo || b.lo < 0 || b.hi < b.lo)
        throw std::invalid_argument("a count interval needs 0 <= lo <= hi");
    if (b.hi == 0) return {NaN, NaN};
    const double z = two_sided_z(level);
    const auto limit = [&](double x, double y, double sign) {
        return (x / pop_a) / (y / pop_b) * std::exp(sign * z * std::sqrt(1 / x + 1 / y));
    };
    // d/dx [log x ± z√(1/x + 1/y)] = (1/x)(1 ∓ z/(2x√(1/x + 1/y))) and z/(2x√(1/x+·)) ≤
    // z/(2√x) < 1 for x ≥ 1 (z < 2), so both limits increase in a and decrease in b: the
    // union over the ranges is reached at their ends.
    const double b_min = static_cast<double>(std::max<std::int64_t>(b.lo, 1));
    const double b_max = static_cast<double>(b.hi);
    Interval out;
    out.lo = a.lo == 0 ? 0.0 : limit(static_cast<double>(a.lo), b_max, -1);
    if (a.hi == 0)
        out.hi = NaN;
    else
        out.hi = b.lo == 0 ? INF : limit(static_cast<double>(a.hi), b_min, +1);
    return out;
}

std::vector<RateRow> observed_rates(const CountTable& counts, const PopulationTable& population,
                                    const std::map<std::string, std::string>& references) {
    if (counts.has_area != population.has_area)
        throw InputError(
            population.source,
            std::string("the population table ") + (population.has_area ? "has" : "has no") +
                " area column but the counts table (" + counts.source + ") " +
                (counts.has_area ? "has one" : "has none") + ": give both tables the same columns");
    struct Cell {
        std::string area, dimension, category;
        CountInterval count;
        double population;
    };
    // Indexed lookups throughout: a table at the row limit must not take quadratic time.
    using Key = std::tuple<std::string, std::string, std::string>;
    std::map<Key, const PopulationRow*> population_of;
    for (const auto& p : population.rows)
        population_of.emplace(Key{p.area, p.dimension, p.category}, &p);
    std::vector<Cell> cells;
    for (const auto& r : counts.rows) {
        const auto found = population_of.find(Key{r.area, r.dimension, r.category});
        const PopulationRow* p = found == population_of.end() ? nullptr : found->second;
        if (!p)
            throw InputError(counts.source + ":" + std::to_string(r.line),
                             "no population for " + key_text(r.area, r.dimension, r.category) +
                                 " in " + population.source +
                                 ": give one population row per row of the counts table");
        cells.push_back({r.area, r.dimension, r.category, r.count, p->population});
    }
    auto areas = counts.areas();
    if (areas.size() > 1) {
        // Pooled rows: sums over the areas that have the key, in first-appearance order.
        std::vector<Cell> pooled;
        std::map<std::pair<std::string, std::string>, std::size_t> index;
        for (const auto& c : cells) {
            const auto [it, added] =
                index.emplace(std::make_pair(c.dimension, c.category), pooled.size());
            if (added) pooled.push_back({POOLED_AREA, c.dimension, c.category, {0, 0}, 0.0});
            Cell& q = pooled[it->second];
            q.count.lo += c.count.lo;
            q.count.hi += c.count.hi;
            q.population += c.population;
        }
        cells.insert(cells.end(), pooled.begin(), pooled.end());
        areas.push_back(POOLED_AREA);
    }

    // Reference of each dimension: given, or the category with the largest pooled population.
    std::map<std::string, std::string> reference = references;
    {
        std::map<std::string, std::map<std::string, double>> totals;
        for (const auto& c : cells)
            if (c.area == POOLED_AREA || areas.size() == 1)
                totals[c.dimension][c.category] += c.population;
        for (const auto& [dim, cats] : totals) {
            if (reference.count(dim)) continue;
            reference[dim] =
                std::max_element(cats.begin(), cats.end(), [](const auto& x, const auto& y) {
                    return x.second < y.second;
                })->first;
        }
    }

    std::map<Key, std::size_t> cell_index;
    for (std::size_t i = 0; i < cells.size(); ++i)
        cell_index.emplace(Key{cells[i].area, cells[i].dimension, cells[i].category}, i);
    std::vector<RateRow> rows;
    for (const auto& c : cells) {
        RateRow row;
        row.area = c.area;
        row.pooled = areas.size() > 1 && c.area == POOLED_AREA;
        row.dimension = c.dimension;
        row.category = c.category;
        row.count = c.count;
        row.population = c.population;
        row.rate = 1000.0 * c.count.mid() / c.population;
        const Interval ci = garwood_interval(c.count);
        row.rate_ci = {1000.0 * ci.lo / c.population, 1000.0 * ci.hi / c.population};
        if (c.count.suppressed())
            row.note = "suppressed count: rate at the midpoint, interval over the whole range";
        row.reference = reference.at(c.dimension);
        const auto ref_at = cell_index.find(Key{c.area, c.dimension, row.reference});
        if (ref_at == cell_index.end())
            throw InputError(counts.source,
                             "reference category '" + row.reference + "' of " + c.dimension +
                                 " has no row" +
                                 (c.area.empty() ? std::string() : " for area " + c.area) +
                                 ": give its count, or choose another reference");
        const Cell* ref = &cells[ref_at->second];
        row.is_reference = c.category == row.reference;
        const double ref_rate = ref->count.mid() / ref->population;
        if (row.is_reference) {
            row.ratio = 1;
            row.ratio_ci = {1, 1};
        } else {
            row.ratio = ref_rate > 0 ? (c.count.mid() / c.population) / ref_rate : NaN;
            row.ratio_ci = katz_interval(c.count, c.population, ref->count, ref->population);
            std::string why;
            if (ref->count.hi == 0)
                why = "reference count is 0: no ratio";
            else if (c.count.hi == 0)
                why = "zero count: Katz interval has no upper limit";
            else if (ref->count.lo == 0)
                why = "reference count may be 0: no upper limit";
            if (!why.empty()) row.note = row.note.empty() ? why : row.note + "; " + why;
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

std::string format_rates_table(const std::vector<RateRow>& rows) {
    const bool any_area =
        std::any_of(rows.begin(), rows.end(), [](const RateRow& r) { return !r.area.empty(); });
    std::vector<std::vector<std::string>> cells;
    std::vector<std::string> header;
    if (any_area) header.push_back("area");
    for (const char* h : {"dimension", "category", "count", "population", "per 1,000",
                          "95% interval", "ratio", "95% interval"})
        header.push_back(h);
    cells.push_back(header);
    bool suppressed = false;
    for (const auto& r : rows) {
        std::vector<std::string> line;
        if (any_area) line.push_back(r.area);
        line.push_back(r.dimension);
        line.push_back(r.category);
        line.push_back(count_text(r.count));
        suppressed = suppressed || r.count.suppressed();
        line.push_back(with_thousands(std::llround(r.population)));
        line.push_back(sig(r.rate));
        line.push_back("[" + sig(r.rate_ci.lo) + ", " + sig(r.rate_ci.hi) + "]");
        if (r.is_reference) {
            line.push_back("1 (ref.)");
            line.push_back("");
        } else {
            line.push_back(sig(r.ratio));
            line.push_back("[" + sig(r.ratio_ci.lo) + ", " + sig(r.ratio_ci.hi) + "]");
        }
        cells.push_back(std::move(line));
    }
    std::vector<std::size_t> width(header.size(), 0);
    for (const auto& line : cells)
        for (std::size_t i = 0; i < line.size(); ++i) width[i] = std::max(width[i], line[i].size());
    // Text columns align left, numbers right.
    const std::size_t first_number = any_area ? 3 : 2;
    std::string out;
    for (const auto& line : cells) {
        std::string text;
        for (std::size_t i = 0; i < line.size(); ++i) {
            const std::string pad(width[i] - line[i].size(), ' ');
            if (i > 0) text += "  ";
            text += i < first_number ? line[i] + pad : pad + line[i];
        }
        while (!text.empty() && text.back() == ' ') text.pop_back();
        out += text + "\n";
    }
    out +=
        "Rates are stops per 1,000 residents with exact Poisson (Garwood) 95% intervals; "
        "ratios are against the reference category (ref.) with Katz log 95% intervals.\n";
    if (suppressed)
        out +=
            "* suppressed cell: the count lies in the range shown; its rate and ratio are at "
            "the midpoint and its intervals cover the whole range.\n";
    return out;
}

std::string rates_csv(const std::vector<RateRow>& rows) {
    std::string out =
        "area,pooled,dimension,category,count_lo,count_hi,suppressed,population,rate_per_1000,"
        "rate_lo95,rate_hi95,reference,ratio,ratio_lo95,ratio_hi95,note\n";
    for (const auto& r : rows) {
        out += csv_field(r.area) + "," + (r.pooled ? "true" : "false") + "," +
               csv_field(r.dimension) + "," + csv_field(r.category) + "," +
               std::to_string(r.count.lo) + "," + std::to_string(r.count.hi) + "," +
               (r.count.suppressed() ? "true" : "false") + "," + number(r.population, 10) + "," +
               number(r.rate, 10) + "," + number(r.rate_ci.lo, 10) + "," +
               number(r.rate_ci.hi, 10) + "," + csv_field(r.reference) + "," + number(r.ratio, 10) +
               "," + number(r.ratio_ci.lo, 10) + "," + number(r.ratio_ci.hi, 10) + "," +
               csv_field(r.note) + "\n";
    }
    return out;
}

std::vector<std::vector<double>> marginal_rates(const std::vector<Dimension>& dims,
                                                const CellTable& cells,
                                                const CellParameter& propensity) {
    std::vector<std::vector<double>> weighted(dims.size()), share(dims.size());
    for (std::size_t d = 0; d < dims.size(); ++d) {
        weighted[d].assign(dims[d].categories.size(), 0.0);
        share[d].assign(dims[d].categories.size(), 0.0);
    }
    for (std::size_t c = 0; c < cells.size(); ++c) {
        const double s = cells.share(c);
        const double v = s * cells.value(propensity, c);
        for (std::size_t d = 0; d < dims.size(); ++d) {
            weighted[d][cells.category(c, d)] += v;
            share[d][cells.category(c, d)] += s;
        }
    }
    for (std::size_t d = 0; d < dims.size(); ++d)
        for (std::size_t k = 0; k < weighted[d].size(); ++k)
            weighted[d][k] = share[d][k] > 0 ? weighted[d][k] / share[d][k] : NaN;
    return weighted;
}

FitResult fit_propensity(const std::vector<Dimension>& dims, const CellTable& cells,
                         const CellParameter& propensity,
                         const std::vector<MarginalTarget>& targets, const FitOptions& options) {
    if (!(options.tolerance > 0) || options.max_iterations < 1)
        throw std::invalid_argument("fit_propensity: tolerance must be > 0, iterations >= 1");
    // target[d][k]: the wanted ratio, NaN when free; source[d]: where it came from.
    std::vector<std::vector<double>> target(dims.size());
    std::vector<std::string> source(dims.size());
    for (std::size_t d = 0; d < dims.size(); ++d) target[d].assign(dims[d].categories.size(), NaN);
    const auto shares = [&] {
        std::vector<std::vector<double>> s(dims.size());
        for (std::size_t d = 0; d < dims.size(); ++d) s[d].assign(dims[d].categories.size(), 0.0);
        for (std::size_t c = 0; c < cells.size(); ++c)
            for (std::size_t d = 0; d < dims.size(); ++d)
                s[d][cells.category(c, d)] += cells.share(c);
        return s;
    }();
    std::vector<std::size_t> fitted;
    for (const auto& t : targets) {
        std::vector<std::string> names;
        for (const auto& dim : dims) names.push_back(dim.name);
        const auto it = std::find(names.begin(), names.end(), t.dimension);
        if (it == names.end()) {
            const auto near = nearest(t.dimension, names);
            throw InputError(
                t.source, "target for unknown dimension '" + t.dimension + "'" +
                              (near ? "; did you mean '" + *near + "'?" : "") +
                              ": the scenario's dimensions are " + [&] {
                                  std::string all;
                                  for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
                                  return all;
                              }());
        }
        const auto d = static_cast<std::size_t>(it - names.begin());
        const auto& dim = dims[d];
        if (!source[d].empty())
            throw InputError(t.source, "two targets for dimension " + dim.name +
                                           " (the other from " + source[d] + "): give one");
        source[d] = t.source;
        bool any = false;
        for (const auto& [category, ratio] : t.ratios) {
            const auto ck = std::find(dim.categories.begin(), dim.categories.end(), category);
            if (ck == dim.categories.end()) {
                const auto near = nearest(category, dim.categories);
                throw InputError(t.source, "target for unknown category " + dim.name + "=" +
                                               category +
                                               (near ? "; did you mean '" + *near + "'?" : "") +
                                               ": give a category of the scenario");
            }
            const auto k = static_cast<std::size_t>(ck - dim.categories.begin());
            const std::string what = dim.name + "=" + category + " target ratio " + number(ratio);
            if (std::isnan(ratio)) continue;  // free
            if (!std::isfinite(ratio) || ratio <= 0)
                throw InputError(t.source, what + ": a target ratio must be a finite number > 0");
            if (k == dim.reference) {
                if (ratio != 1)
                    throw InputError(t.source, what + ": " + category +
                                                   " is the reference category, whose ratio is 1 "
                                                   "by definition: leave it out or give 1");
                continue;
            }
            if (!(shares[d][k] > 0))
                throw InputError(t.source, what +
                                               ": the category has no population share in the "
                                               "scenario, so it has no stop rate to fit");
            target[d][k] = ratio;
            any = true;
        }
        if (any) fitted.push_back(d);
    }
    std::sort(fitted.begin(), fitted.end());

    FitResult result;
    result.propensity = propensity;
    result.fitted_dimensions = fitted;
    result.tolerance = options.tolerance;
    auto& factors = result.propensity.factors;
    factors.resize(dims.size());
    for (std::size_t d = 0; d < dims.size(); ++d) factors[d].resize(dims[d].categories.size(), 1.0);

    // Largest relative residual over all targets, and where it is.
    const auto residual = [&](const std::vector<std::vector<double>>& rates, std::string* where) {
        double worst = 0;
        for (const auto d : fitted) {
            for (std::size_t k = 0; k < target[d].size(); ++k) {
                if (std::isnan(target[d][k])) continue;
                const double ratio = rates[d][k] / rates[d][dims[d].reference];
                const double r = std::isfinite(ratio) ? std::fabs(ratio / target[d][k] - 1) : INF;
                if (!(r <= worst)) {
                    worst = r;
                    if (where) *where = dims[d].name + "=" + dims[d].categories[k];
                }
            }
        }
        return worst;
    };

    std::string worst_at;
    auto rates = marginal_rates(dims, cells, result.propensity);
    double worst = residual(rates, &worst_at);
    int iteration = 0;
    while (worst >= options.tolerance) {
        if (iteration == options.max_iterations)
            throw InputError(
                source[fitted.front()],
                "the propensity fit did not converge: after " + std::to_string(iteration) +
                    " iterations the largest relative residual is " + number(worst, 3) + " (" +
                    worst_at +
                    "): the target margins are probably inconsistent, e.g. a category that "
                    "occurs only together with another whose target disagrees");
        ++iteration;
        for (const auto d : fitted) {
            rates = marginal_rates(dims, cells, result.propensity);
            const std::size_t ref = dims[d].reference;
            const double ref_rate = rates[d][ref];
            if (!(ref_rate > 0))
                throw InputError(source[d],
                                 "every cell of " + dims[d].name + "=" + dims[d].categories[ref] +
                                     " (the reference) has stop propensity 0: no ratio to it "
                                     "can be fitted; give it a factor > 0");
            for (std::size_t k = 0; k < target[d].size(); ++k) {
                if (std::isnan(target[d][k])) continue;
                if (!(rates[d][k] > 0))
                    throw InputError(source[d], "every cell of " + dims[d].name + "=" +
                                                    dims[d].categories[k] +
                                                    " has stop propensity 0 (its factor or "
                                                    "another dimension's is 0): no factor can "
                                                    "give it a ratio");
                // Scaling category k's factor scales its marginal rate by the same amount and
                // leaves the reference's: this step meets dimension d's targets exactly.
                factors[d][k] *= target[d][k] * ref_rate / rates[d][k];
                if (!std::isfinite(factors[d][k]) || factors[d][k] <= 0)
                    throw InputError(source[d],
                                     "the propensity fit diverged at " + dims[d].name + "=" +
                                         dims[d].categories[k] + " after " +
                                         std::to_string(iteration) +
                                         " iterations: the target margins are inconsistent");
            }
        }
        rates = marginal_rates(dims, cells, result.propensity);
        worst = residual(rates, &worst_at);
    }
    result.iterations = iteration;
    result.max_residual = worst;
    for (const auto d : fitted) {
        for (std::size_t k = 0; k < target[d].size(); ++k) {
            if (std::isnan(target[d][k])) continue;
            const double fitted_ratio = rates[d][k] / rates[d][dims[d].reference];
            result.residuals.push_back({dims[d].name, dims[d].categories[k], target[d][k],
                                        fitted_ratio, std::fabs(fitted_ratio / target[d][k] - 1)});
        }
    }
    return result;
}

std::vector<MarginalTarget> targets_from_rates(const std::vector<RateRow>& rates,
                                               const std::vector<Dimension>& dims,
                                               const std::string& area, const std::string& source) {
    std::string chosen = area;
    if (chosen.empty()) {
        const bool pooled =
            std::any_of(rates.begin(), rates.end(), [](const RateRow& r) { return r.pooled; });
        if (pooled)
            chosen = POOLED_AREA;
        else if (!rates.empty())
            chosen = rates.front().area;
    }
    if (std::none_of(rates.begin(), rates.end(),
                     [&](const RateRow& r) { return r.area == chosen; })) {
        std::vector<std::string> areas;
        for (const auto& r : rates)
            if (std::find(areas.begin(), areas.end(), r.area) == areas.end())
                areas.push_back(r.area);
        const auto near = nearest(chosen, areas);
        throw InputError(source, "no rows for area '" + chosen + "'" +
                                     (near ? "; did you mean '" + *near + "'?" : "") +
                                     ": give an area of the counts table");
    }
    std::vector<std::string> names;
    for (const auto& d : dims) names.push_back(d.name);
    std::vector<MarginalTarget> out;
    for (const auto& r : rates) {
        if (r.area != chosen) continue;
        const auto it = std::find(names.begin(), names.end(), r.dimension);
        if (it == names.end()) {
            const auto near = nearest(r.dimension, names);
            throw InputError(source, "dimension '" + r.dimension +
                                         "' of the counts table is not "
                                         "a dimension of the scenario" +
                                         (near ? "; did you mean '" + *near + "'?" : "") +
                                         ": rename it, or add the dimension to the scenario");
        }
        const auto& dim = dims[static_cast<std::size_t>(it - names.begin())];
        if (std::find(dim.categories.begin(), dim.categories.end(), r.category) ==
            dim.categories.end()) {
            const auto near = nearest(r.category, dim.categories);
            throw InputError(source, "category " + r.dimension + "=" + r.category +
                                         " of the counts table is not a category of the "
                                         "scenario" +
                                         (near ? "; did you mean '" + *near + "'?" : "") +
                                         ": rename it, or merge it into a scenario category");
        }
        auto target = std::find_if(out.begin(), out.end(), [&](const MarginalTarget& t) {
            return t.dimension == r.dimension;
        });
        if (target == out.end()) {
            // The ratio is taken against the scenario's reference, whatever reference the
            // table was summarised with.
            const std::string& ref_name = dim.categories[dim.reference];
            const auto ref = std::find_if(rates.begin(), rates.end(), [&](const RateRow& q) {
                return q.area == chosen && q.dimension == r.dimension && q.category == ref_name;
            });
            if (ref == rates.end())
                throw InputError(source, "the counts table has no row for " + r.dimension + "=" +
                                             ref_name +
                                             ", the scenario's reference category: add it");
            if (!(ref->rate > 0))
                throw InputError(source, r.dimension + "=" + ref_name +
                                             " (the scenario's reference category) has a zero "
                                             "count: ratios to it are not defined");
            MarginalTarget t;
            t.dimension = r.dimension;
            t.source = source;
            for (const auto& q : rates) {
                if (q.area != chosen || q.dimension != r.dimension) continue;
                if (!(q.rate > 0))
                    throw InputError(source, key_text(q.area, q.dimension, q.category) +
                                                 " has a zero count: a ratio of 0 cannot be "
                                                 "fitted by a factor; merge the category into "
                                                 "another or set its factor by hand");
                t.ratios[q.category] = q.rate / ref->rate;
            }
            out.push_back(std::move(t));
        }
    }
    return out;
}

std::vector<double> stop_means_by_cell(const CellTable& cells, const CellParameter& propensity,
                                       std::int64_t stops_total) {
    double weight = 0;
    for (std::size_t c = 0; c < cells.size(); ++c)
        weight += static_cast<double>(cells.population(c)) * cells.value(propensity, c);
    if (!(weight > 0) || !std::isfinite(weight))
        throw InputError(propensity.key, "no cell with people has a stop propensity > 0");
    std::vector<double> mu(cells.size());
    for (std::size_t c = 0; c < cells.size(); ++c)
        mu[c] = static_cast<double>(stops_total) * cells.value(propensity, c) / weight;
    return mu;
}

namespace {

// P(Y >= 1) for Y ~ NB(mean mu, shape k): 1 − (k/(k+mu))^k = −expm1(−k·log1p(mu/k)), which
// keeps full precision for tiny mu (where 1 − (…)^k cancels) and large k; k = +inf: Poisson.
double p_stopped(double mu, double k) {
    if (mu <= 0) return 0;
    if (std::isinf(k)) return -std::expm1(-mu);
    return -std::expm1(-k * std::log1p(mu / k));
}

}  // namespace

double uses_per_person(const std::vector<double>& mean_by_cell,
                       const std::vector<double>& population_by_cell, double k) {
    double uses = 0, seen = 0;
    for (std::size_t c = 0; c < mean_by_cell.size() && c < population_by_cell.size(); ++c) {
        uses += population_by_cell[c] * mean_by_cell[c];
        seen += population_by_cell[c] * p_stopped(mean_by_cell[c], k);
    }
    return seen > 0 ? uses / seen : NaN;
}

double fit_dispersion(const std::vector<double>& mean_by_cell,
                      const std::vector<double>& population_by_cell, double ratio,
                      const std::string& source) {
    if (mean_by_cell.size() != population_by_cell.size())
        throw std::invalid_argument("fit_dispersion: one mean and one population per cell");
    const std::string what = "uses per person seen = " + number(ratio);
    if (!std::isfinite(ratio) || ratio < 1)
        throw InputError(source, what +
                                     ": every person seen was stopped at least once, so "
                                     "uses per person must be >= 1");
    const double poisson = uses_per_person(mean_by_cell, population_by_cell, INF);
    if (!std::isfinite(poisson))
        throw InputError(source, what + ": the scenario's cells have no stops to spread");
    constexpr double K_MIN = 1e-12, K_MAX = 1e12;  // the range stops.dispersion accepts
    if (ratio < poisson * (1 - 1e-9))
        throw InputError(source, what + ": below the Poisson value " + number(poisson) +
                                     " for this scenario; repeat stops cannot be more regular "
                                     "than Poisson, so give at least that");
    if (ratio <= poisson * (1 + 1e-9) ||
        ratio <= uses_per_person(mean_by_cell, population_by_cell, K_MAX))
        return INF;
    if (ratio > uses_per_person(mean_by_cell, population_by_cell, K_MIN))
        throw InputError(source, what +
                                     ": needs a dispersion below 1e-12, the smallest a "
                                     "scenario accepts; check the uses and people counts");
    // R(k) decreases in k (more clustering, fewer people seen per use): bisect on log k.
    double lo = std::log(K_MIN), hi = std::log(K_MAX);
    for (int i = 0; i < 200 && hi - lo > 1e-13 * std::max(1.0, std::fabs(lo)); ++i) {
        const double mid = 0.5 * (lo + hi);
        if (uses_per_person(mean_by_cell, population_by_cell, std::exp(mid)) > ratio)
            lo = mid;
        else
            hi = mid;
    }
    return std::exp(0.5 * (lo + hi));
}

std::string propensity_fragment(const std::vector<Dimension>& dims, const FitResult& fit,
                                const std::string& provenance) {
    std::string out =
        "# Stop propensity factors fitted by `stopscan calibrate` (iterative "
        "proportional fitting).\n";
    std::string line;
    for (const char c : provenance + "\n") {
        if (c == '\n') {
            if (!line.empty()) out += "# " + line + "\n";
            line.clear();
        } else if (c != '\r') {
            line += c;
        }
    }
    std::string fitted_names;
    for (const auto d : fit.fitted_dimensions)
        fitted_names += (fitted_names.empty() ? "" : ", ") + dims[d].name;
    out += "# Fitted: " + (fitted_names.empty() ? std::string("nothing") : fitted_names) +
           " (marginal stop-rate ratios equal to the targets).\n";
    out += "# Largest relative residual " + number(fit.max_residual, 3) + " after " +
           std::to_string(fit.iterations) + (fit.iterations == 1 ? " iteration" : " iterations") +
           " (tolerance " + number(fit.tolerance, 3) + ").\n";
    out +=
        "# The factors hold only for the scenario's population shares and its other\n"
        "# propensity factors: refit after changing those.\n";
    out += "[stops]\n";
    for (const auto d : fit.fitted_dimensions) {
        const auto& dim = dims[d];
        std::string items;
        for (std::size_t k = 0; k < dim.categories.size(); ++k) {
            const double f = fit.propensity.factors[d][k];
            if (k == dim.reference && f == 1) continue;
            items += (items.empty() ? "" : ", ") + dim.categories[k] + ":" + number(f, 6);
        }
        out += "propensity." + dim.name + " = " + items + "\n";
    }
    return out;
}

}  // namespace stopscan
