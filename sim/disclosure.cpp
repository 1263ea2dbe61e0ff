#include "stopscan/disclosure.hpp"

#include <openssl/rand.h>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <sstream>

#include "stopscan/cells.hpp"
#include "stopscan/engine.hpp"
#include "stopscan/error.hpp"
#include "stopscan/scenario.hpp"
#include "stopscan/writers.hpp"

namespace stopscan {

// ---------------------------------------------------------------------------------------
// Modes and the table model.

ReleaseMode parse_release_mode(const std::string& source, const std::string& flag,
                               const std::string& text) {
    if (text == "none") return ReleaseMode::none;
    if (text == "sdc") return ReleaseMode::sdc;
    if (text == "dp") return ReleaseMode::dp;
    throw InputError(source, flag, text, "unknown release mode: use none, sdc or dp");
}

const char* release_mode_name(ReleaseMode mode) noexcept {
    switch (mode) {
        case ReleaseMode::sdc:
            return "sdc";
        case ReleaseMode::dp:
            return "dp";
        default:
            return "none";
    }
}

const char* cell_status_name(CellStatus status) noexcept {
    switch (status) {
        case CellStatus::primary:
            return "primary";
        case CellStatus::secondary:
            return "secondary";
        default:
            return "released";
    }
}

std::size_t ReleaseTable::add_cell(std::string policy, std::string metric, std::string dimension,
                                   std::string category, std::int64_t count, double mc_se) {
    ReleaseCell cell;
    cell.policy = std::move(policy);
    cell.metric = std::move(metric);
    cell.dimension = std::move(dimension);
    cell.category = std::move(category);
    cell.count = count;
    cell.mc_se = mc_se;
    cells.push_back(std::move(cell));
    return cells.size() - 1;
}

std::optional<std::size_t> ReleaseTable::find(const std::string& policy, const std::string& metric,
                                              const std::string& dimension,
                                              const std::string& category) const {
    for (std::size_t i = 0; i < cells.size(); ++i) {
        const auto& c = cells[i];
        if (c.policy == policy && c.metric == metric && c.dimension == dimension &&
            c.category == category)
            return i;
    }
    return std::nullopt;
}

void ReleaseTable::add_dimension_margins() {
    // (policy, metric, dimension) → categories, in cell order; (policy, metric) → the all cell.
    std::map<std::pair<std::string, std::string>, std::size_t> totals;
    std::map<std::tuple<std::string, std::string, std::string>, std::vector<std::size_t>> groups;
    std::vector<std::tuple<std::string, std::string, std::string>> order;
    for (std::size_t i = 0; i < cells.size(); ++i) {
        const auto& c = cells[i];
        if (c.dimension == "all") {
            totals[{c.policy, c.metric}] = i;
            continue;
        }
        const auto key = std::make_tuple(c.policy, c.metric, c.dimension);
        if (!groups.count(key)) order.push_back(key);
        groups[key].push_back(i);
    }
    for (const auto& key : order) {
        const auto total = totals.find({std::get<0>(key), std::get<1>(key)});
        if (total == totals.end()) continue;
        relations.push_back({total->second, groups[key]});
    }
}

void ReleaseTable::add_metric_sum(const std::string& total_metric,
                                  const std::vector<std::string>& part_metrics) {
    for (std::size_t i = 0; i < cells.size(); ++i) {
        const auto& c = cells[i];
        if (c.metric != total_metric) continue;
        MarginRelation relation{i, {}};
        for (const auto& part : part_metrics) {
            const auto j = find(c.policy, part, c.dimension, c.category);
            if (!j) {
                relation.parts.clear();
                break;
            }
            relation.parts.push_back(*j);
        }
        if (!relation.parts.empty()) relations.push_back(std::move(relation));
    }
}

double ReleaseTable::value(std::size_t i) const noexcept {
    return static_cast<double>(cells[i].count) / static_cast<double>(divisor);
}

void apply_none(ReleaseTable& table) {
    for (std::size_t i = 0; i < table.cells.size(); ++i) {
        auto& c = table.cells[i];
        c.status = CellStatus::released;
        c.released = table.value(i);
        c.noise_lo95 = c.noise_hi95 = c.lo95 = c.hi95 = std::nullopt;
    }
    table.footer = "No disclosure control: exact values (--release none).";
}

ReleaseTable merge_tables(const std::vector<ReleaseTable>& tables, std::string name) {
    ReleaseTable merged;
    merged.name = std::move(name);
    merged.divisor = tables.empty() ? 1 : tables.front().divisor;
    for (const auto& t : tables) {
        if (t.divisor != merged.divisor)
            throw InternalError("merge_tables: tables with different divisors");
        const std::size_t offset = merged.cells.size();
        merged.cells.insert(merged.cells.end(), t.cells.begin(), t.cells.end());
        for (auto r : t.relations) {
            r.total += offset;
            for (auto& p : r.parts) p += offset;
            merged.relations.push_back(std::move(r));
        }
    }
    return merged;
}

// ---------------------------------------------------------------------------------------
// Statistical disclosure control.

namespace {

std::string number_text(double v) {
    return format_value(v);
}

// Cells linked by relations, so that the recoverability test works on small blocks.
std::vector<std::vector<std::size_t>> relation_components(const ReleaseTable& table) {
    std::vector<std::size_t> parent(table.cells.size());
    std::iota(parent.begin(), parent.end(), 0);
    auto root = [&](std::size_t x) {
        while (parent[x] != x) x = parent[x] = parent[parent[x]];
        return x;
    };
    for (const auto& r : table.relations)
        for (const auto p : r.parts) parent[root(p)] = root(r.total);
    std::map<std::size_t, std::vector<std::size_t>> by_root;
    for (std::size_t r = 0; r < table.relations.size(); ++r)
        by_root[root(table.relations[r].total)].push_back(r);
    std::vector<std::vector<std::size_t>> out;
    for (auto& [_, relations] : by_root) out.push_back(std::move(relations));
    return out;
}

}  // namespace

std::vector<std::size_t> recoverable_cells(const ReleaseTable& table) {
    std::vector<std::size_t> recoverable;
    auto suppressed = [&](std::size_t i) { return table.cells[i].status != CellStatus::released; };
    for (const auto& component : relation_components(table)) {
        // Unknowns: the suppressed cells of this block; one row per relation, +1 for the
        // total and -1 for each part (released cells move to the right-hand side).
        std::map<std::size_t, std::size_t> column;
        std::vector<std::size_t> cell_of;
        auto col = [&](std::size_t cell) {
            const auto [it, inserted] = column.emplace(cell, cell_of.size());
            if (inserted) cell_of.push_back(cell);
            return it->second;
        };
        std::vector<std::vector<std::pair<std::size_t, double>>> sparse;
        for (const auto r : component) {
            const auto& rel = table.relations[r];
            std::vector<std::pair<std::size_t, double>> row;
            if (suppressed(rel.total)) row.emplace_back(col(rel.total), 1.0);
            for (const auto p : rel.parts)
                if (suppressed(p)) row.emplace_back(col(p), -1.0);
            if (!row.empty()) sparse.push_back(std::move(row));
        }
        const std::size_t n = cell_of.size();
        if (n == 0) continue;
        std::vector<std::vector<double>> a(sparse.size(), std::vector<double>(n, 0.0));
        for (std::size_t i = 0; i < sparse.size(); ++i)
            for (const auto& [j, v] : sparse[i]) a[i][j] += v;
        // Reduced row echelon form (partial pivoting; the entries are small integers, so a
        // fixed tolerance separates zero from non-zero). A pivot variable is determined iff
        // its row has no entry in a free column.
        constexpr double TOLERANCE = 1e-9;
        std::vector<std::size_t> pivot_column;
        std::size_t row = 0;
        for (std::size_t j = 0; j < n && row < a.size(); ++j) {
            std::size_t best = row;
            for (std::size_t i = row + 1; i < a.size(); ++i)
                if (std::abs(a[i][j]) > std::abs(a[best][j])) best = i;
            if (std::abs(a[best][j]) < TOLERANCE) continue;
            std::swap(a[row], a[best]);
            const double pivot = a[row][j];
            for (auto& v : a[row]) v /= pivot;
            for (std::size_t i = 0; i < a.size(); ++i) {
                if (i == row || std::abs(a[i][j]) < TOLERANCE) continue;
                const double f = a[i][j];
                for (std::size_t k = 0; k < n; ++k) a[i][k] -= f * a[row][k];
            }
            pivot_column.push_back(j);
            ++row;
        }
        std::vector<bool> is_pivot(n, false);
        for (const auto j : pivot_column) is_pivot[j] = true;
        for (std::size_t r = 0; r < pivot_column.size(); ++r) {
            bool alone = true;
            for (std::size_t k = 0; k < n && alone; ++k)
                if (!is_pivot[k] && std::abs(a[r][k]) > TOLERANCE) alone = false;
            if (alone) recoverable.push_back(cell_of[pivot_column[r]]);
        }
    }
    std::sort(recoverable.begin(), recoverable.end());
    return recoverable;
}

void apply_sdc(ReleaseTable& table, const SdcOptions& options) {
    if (!(options.k > 0) || options.round_base < 0)
        throw InternalError("sdc: k must be > 0 and the rounding base >= 0");
    for (const auto& r : table.relations) {
        std::int64_t sum = 0;
        for (const auto p : r.parts) sum += table.cells[p].count;
        if (sum != table.cells[r.total].count)
            throw InternalError("sdc: table " + table.name + ": the parts of " +
                                table.cells[r.total].metric + " " + table.cells[r.total].dimension +
                                "=" + table.cells[r.total].category + " do not sum to it");
    }
    auto& cells = table.cells;
    auto suppressed = [&](std::size_t i) { return cells[i].status != CellStatus::released; };
    std::size_t primary = 0;
    for (std::size_t i = 0; i < cells.size(); ++i) {
        const double v = table.value(i);
        const bool small = v < options.k && (v > 0 || options.suppress_zeros);
        cells[i].status = small ? CellStatus::primary : CellStatus::released;
        primary += small;
    }
    // The released cell of a relation to suppress next: the smallest non-zero part (a zero
    // adds nothing to the protection of the others), else the smallest part, else the total.
    auto next_candidate = [&](const MarginRelation& r) -> std::optional<std::size_t> {
        std::optional<std::size_t> best, best_nonzero;
        for (const auto p : r.parts) {
            if (suppressed(p)) continue;
            if (!best || cells[p].count < cells[*best].count) best = p;
            if (cells[p].count > 0 &&
                (!best_nonzero || cells[p].count < cells[*best_nonzero].count))
                best_nonzero = p;
        }
        if (best_nonzero) return best_nonzero;
        if (best) return best;
        if (!suppressed(r.total)) return r.total;
        return std::nullopt;
    };
    std::size_t secondary = 0;
    auto suppress = [&](std::size_t i) {
        cells[i].status = CellStatus::secondary;
        ++secondary;
    };
    for (;;) {
        bool changed = false;
        for (const auto& r : table.relations) {
            std::size_t unknown = suppressed(r.total) ? 1 : 0;
            double residual = 0;  // Σ of the suppressed parts, known when the total is released
            for (const auto p : r.parts)
                if (suppressed(p)) {
                    ++unknown;
                    residual += table.value(p);
                }
            if (unknown == 0) continue;
            // One unknown in an equation: it is the total minus the released parts (or the
            // sum of the parts). Several unknown parts under a released total: their sum is
            // published, so it must be at least k, or each would be pinned below k.
            const bool exposed = unknown == 1 || (!suppressed(r.total) && residual < options.k);
            if (!exposed) continue;
            if (const auto c = next_candidate(r)) {
                suppress(*c);
                changed = true;
            }
        }
        if (changed) continue;
        // The per-equation rules cannot see combinations of equations (two dimensions that
        // share a total): solve the whole system and suppress more until nothing follows.
        const auto exposed = recoverable_cells(table);
        if (exposed.empty()) break;
        for (const auto& r : table.relations) {
            const bool involved =
                r.total == exposed.front() ||
                std::find(r.parts.begin(), r.parts.end(), exposed.front()) != r.parts.end();
            if (!involved) continue;
            if (const auto c = next_candidate(r)) {
                suppress(*c);
                changed = true;
                break;
            }
        }
        if (!changed) throw InternalError("sdc: a recoverable cell could not be protected");
    }
    for (std::size_t i = 0; i < cells.size(); ++i) {
        auto& c = cells[i];
        c.noise_lo95 = c.noise_hi95 = c.lo95 = c.hi95 = std::nullopt;
        if (suppressed(i)) {
            c.released = std::nullopt;
            continue;
        }
        double v = table.value(i);
        if (options.round_base > 0) {
            const double b = static_cast<double>(options.round_base);
            v = std::round(v / b) * b;
        }
        c.released = v;
    }
    std::ostringstream footer;
    footer << "Disclosure control (--release sdc): cells with a value "
           << (options.suppress_zeros ? "from 0" : "above 0")
           << " and below k = " << number_text(options.k) << " are suppressed (" << primary
           << " primary); a further " << secondary
           << " cells are suppressed so that no suppressed cell can be derived from the "
              "released totals and margins (each dimension's categories sum to 'all'), and the "
              "suppressed parts under a released total sum to at least k.";
    if (options.round_base > 0)
        footer << " Released values are rounded to the nearest multiple of " << options.round_base
               << ", so totals may differ from the sum of their parts.";
    if (table.divisor > 1) footer << " Values are means over " << table.divisor << " replications.";
    table.footer = footer.str();
}

// ---------------------------------------------------------------------------------------
// Differential privacy: integer samplers after Canonne, Kamath & Steinke, "The Discrete
// Gaussian for Differential Privacy" (NeurIPS 2020), Algorithms 1 and 2.

std::uint64_t CryptoRandomBits::next() {
    if (used_ + 8 > sizeof buffer_) {
        if (RAND_bytes(buffer_, static_cast<int>(sizeof buffer_)) != 1)
            throw InternalError("OpenSSL RAND_bytes failed: no secure random source for dp noise");
        used_ = 0;
    }
    std::uint64_t word = 0;
    std::memcpy(&word, buffer_ + used_, sizeof word);
    used_ += sizeof word;
    return word;
}

std::uint64_t uniform_below(RandomBits& bits, std::uint64_t n) {
    if (n == 0) throw InternalError("uniform_below(0)");
    if (n == 1) return 0;
    // Reject the top partial block of 2^64 so that every residue is equally likely.
    const std::uint64_t limit =
        std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % n;
    for (;;) {
        const std::uint64_t x = bits.next();
        if (x < limit) return x % n;
    }
}

namespace {

// Bernoulli(exp(-num/den)) for num ≤ den (CKS Algorithm 1, γ ∈ [0, 1]): draw A_k ~
// Bernoulli(γ/k) for k = 1, 2, ... until the first failure at K; return K odd. Then
// P(K odd) = Σ_k (-γ)^k / k! = exp(-γ).
bool bernoulli_exp_small(RandomBits& bits, std::uint64_t num, std::uint64_t den) {
    std::uint64_t k = 1;
    for (;;) {
        if (den > std::numeric_limits<std::uint64_t>::max() / k)
            throw InternalError("discrete Laplace sampler: integer overflow");
        if (uniform_below(bits, den * k) >= num) break;  // A_k = 0 with probability 1 - γ/k
        ++k;
    }
    return k % 2 == 1;
}

}  // namespace

bool bernoulli_exp(RandomBits& bits, std::uint64_t num, std::uint64_t den) {
    if (den == 0) throw InternalError("bernoulli_exp: zero denominator");
    // exp(-γ) = exp(-1)^floor(γ) × exp(-(γ - floor γ)).
    for (std::uint64_t i = 0; i < num / den; ++i)
        if (!bernoulli_exp_small(bits, 1, 1)) return false;
    return bernoulli_exp_small(bits, num % den, den);
}

std::int64_t sample_discrete_laplace(RandomBits& bits, std::uint64_t scale_num,
                                     std::uint64_t scale_den) {
    // CKS Algorithm 2 with t = scale_num and s = scale_den. X = U + t·V, with U uniform on
    // {0..t-1} kept with probability exp(-U/t) and V geometric with ratio exp(-1), has
    // P(X = x) ∝ exp(-x/t); Y = floor(X/s) then has P(Y = y) ∝ exp(-y s/t), i.e. scale t/s.
    // A random sign, rejecting "-0", makes it two-sided: P(Z = z) ∝ exp(-|z| s/t).
    if (scale_num == 0 || scale_den == 0) throw InternalError("discrete Laplace: zero scale");
    const std::uint64_t t = scale_num;
    const std::uint64_t s = scale_den;
    for (;;) {
        const std::uint64_t u = uniform_below(bits, t);
        if (!bernoulli_exp(bits, u, t)) continue;
        std::uint64_t v = 0;
        while (bernoulli_exp_small(bits, 1, 1)) ++v;
        if (v > (std::numeric_limits<std::uint64_t>::max() - u) / t)
            throw InternalError("discrete Laplace sampler: integer overflow");
        const std::uint64_t x = u + t * v;
        const std::uint64_t y = x / s;
        const bool negative = (bits.next() & 1) == 1;
        if (negative && y == 0) continue;
        if (y > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            throw InternalError("discrete Laplace sampler: integer overflow");
        return negative ? -static_cast<std::int64_t>(y) : static_cast<std::int64_t>(y);
    }
}

double discrete_laplace_pmf(std::int64_t y, double scale) {
    const double p = std::exp(-1.0 / scale);
    return (1 - p) / (1 + p) * std::pow(p, std::abs(static_cast<double>(y)));
}

double discrete_laplace_cdf(std::int64_t y, double scale) {
    // P(Y ≤ -m) = p^m / (1 + p) for m ≥ 1; P(Y ≤ y) = 1 - p^(y+1) / (1 + p) for y ≥ 0.
    const double p = std::exp(-1.0 / scale);
    if (y < 0) return std::pow(p, static_cast<double>(-y)) / (1 + p);
    return 1 - std::pow(p, static_cast<double>(y) + 1) / (1 + p);
}

std::int64_t discrete_laplace_half_width95(double scale) {
    // P(|Y| > m) = 2 p^(m+1) / (1 + p) ≤ 0.05  ⇔  m + 1 ≥ ln(0.025 (1 + p)) / ln p.
    const double p = std::exp(-1.0 / scale);
    if (p <= 0) return 0;
    auto tail = [&](std::int64_t m) {
        return 2 * std::pow(p, static_cast<double>(m) + 1) / (1 + p);
    };
    auto m = static_cast<std::int64_t>(
        std::max(0.0, std::ceil(std::log(0.025 * (1 + p)) / std::log(p) - 1) - 1));
    while (tail(m) > 0.05) ++m;
    while (m > 0 && tail(m - 1) <= 0.05) --m;
    return m;
}

Epsilon Epsilon::parse(const std::string& source, const std::string& flag,
                       const std::string& text) {
    // Digits, an optional point and at most 6 decimals: held exactly in millionths.
    std::int64_t whole = 0;
    std::int64_t fraction = 0;
    const auto point = text.find('.');
    const std::string a = text.substr(0, point);
    const std::string b = point == std::string::npos ? "" : text.substr(point + 1);
    auto digits = [](const std::string& s) {
        return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    const bool ok = !text.empty() && digits(a) && digits(b) && b.size() <= 6 &&
                    !(a.empty() && b.empty()) && a.size() <= 3 &&
                    (point == std::string::npos || !b.empty());
    if (ok) {
        if (!a.empty()) std::from_chars(a.data(), a.data() + a.size(), whole);
        std::string padded = b + std::string(6 - b.size(), '0');
        std::from_chars(padded.data(), padded.data() + padded.size(), fraction);
    }
    const std::int64_t micro = whole * 1'000'000 + fraction;
    if (!ok || micro <= 0 || micro > 100'000'000)
        throw InputError(source, flag, text,
                         "must be a decimal number in (0, 100] with at most 6 decimals, e.g. 0.5");
    return {micro};
}

std::string Epsilon::text() const {
    std::string out = std::to_string(micro / 1'000'000);
    std::int64_t rest = micro % 1'000'000;
    if (rest == 0) return out;
    std::string decimals = std::to_string(rest);
    decimals = std::string(6 - decimals.size(), '0') + decimals;
    while (decimals.back() == '0') decimals.pop_back();
    return out + "." + decimals;
}

void PrivacyLedger::charge(const std::string& table, Epsilon epsilon) {
    if (epsilon.micro <= 0) throw InternalError("privacy ledger: ε must be positive");
    if (spent_ + epsilon.micro > total_.micro)
        throw InputError("command line", "--epsilon-total", total_.text(),
                         "releasing table " + table + " with epsilon " + epsilon.text() +
                             " would spend " + Epsilon{spent_ + epsilon.micro}.text() +
                             " in total: raise --epsilon-total or lower the per-table epsilon");
    spent_ += epsilon.micro;
    entries_.emplace_back(table, epsilon);
}

std::string PrivacyLedger::json() const {
    std::ostringstream out;
    out << "{\"epsilon_total\": " << total_.text() << ", \"epsilon_spent\": " << spent().text()
        << ", \"composition\": \"sequential (basic): epsilons add\", \"tables\": [";
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        std::string name;
        for (const char c : entries_[i].first) name += (c == '"' || c == '\\') ? '_' : c;
        out << (i ? ", " : "") << "{\"table\": \"" << name
            << "\", \"epsilon\": " << entries_[i].second.text() << "}";
    }
    out << "]}";
    return out.str();
}

namespace {

double normal_cdf(double z) {
    return 0.5 * std::erfc(-z / std::sqrt(2.0));
}

}  // namespace

double combined_half_width95(double mc_se, double scale, std::int64_t divisor) {
    const double d = static_cast<double>(divisor);
    if (!(mc_se > 0)) return static_cast<double>(discrete_laplace_half_width95(scale)) / d;
    // F(x) = P(N + Y/d ≤ x) = Σ_y P(Y = y) Φ((x - y/d) / se). Outside the window |x - y/d|
    // ≤ 8 se, Φ is 0 or 1 to 1e-15, so those terms are closed-form tails of Y; inside, the
    // terms are summed in at most 4000 bins of whole y (each bin's mass exact, Φ at its
    // centre), which keeps the error far below the bisection's tolerance.
    auto cdf = [&](double x) {
        const auto lo = static_cast<std::int64_t>(std::floor(d * (x - 8 * mc_se)));
        const auto hi = static_cast<std::int64_t>(std::ceil(d * (x + 8 * mc_se)));
        double total = discrete_laplace_cdf(lo - 1, scale);
        const std::int64_t width = std::max<std::int64_t>(1, (hi - lo + 1) / 4000 + 1);
        for (std::int64_t y = lo; y <= hi; y += width) {
            const std::int64_t last = std::min(hi, y + width - 1);
            const double mass =
                discrete_laplace_cdf(last, scale) - discrete_laplace_cdf(y - 1, scale);
            const double centre = 0.5 * static_cast<double>(y + last) / d;
            total += mass * normal_cdf((x - centre) / mc_se);
        }
        return total;
    };
    double lo = 0;
    double hi = 8 * mc_se + (40 * scale + 1) / d;
    for (int i = 0; i < 200 && hi - lo > 1e-12 * std::max(1.0, hi); ++i) {
        const double mid = 0.5 * (lo + hi);
        (cdf(mid) < 0.975 ? lo : hi) = mid;
    }
    return hi;
}

void apply_dp(ReleaseTable& table, Epsilon epsilon, const Contribution& contribution,
              PrivacyLedger& ledger, RandomBits& bits) {
    const std::int64_t sensitivity = contribution.sensitivity();
    if (sensitivity <= 0 || contribution.per_cell <= 0)
        throw InternalError("dp: table " + table.name + " has no positive sensitivity");
    ledger.charge(table.name, epsilon);
    // scale = Δ / ε = Δ · 10^6 / micro, reduced so the sampler's integers stay small.
    std::uint64_t num = static_cast<std::uint64_t>(sensitivity) * 1'000'000;
    std::uint64_t den = static_cast<std::uint64_t>(epsilon.micro);
    const std::uint64_t g = std::gcd(num, den);
    num /= g;
    den /= g;
    const double scale = static_cast<double>(num) / static_cast<double>(den);
    const double d = static_cast<double>(table.divisor);
    const double noise_half = static_cast<double>(discrete_laplace_half_width95(scale)) / d;
    std::map<double, double> combined;  // mc_se → half-width (many cells share one)
    for (auto& c : table.cells) {
        const std::int64_t noisy = c.count + sample_discrete_laplace(bits, num, den);
        const double released = static_cast<double>(noisy) / d;
        c.status = CellStatus::released;
        c.released = released;
        c.noise_lo95 = released - noise_half;
        c.noise_hi95 = released + noise_half;
        auto it = combined.find(c.mc_se);
        if (it == combined.end())
            // Never narrower than the noise interval: that one uses the conservative
            // discrete quantile, the convolution's is exact, and with a tiny Monte Carlo
            // error they differ by O(se) in the wrong direction.
            it = combined
                     .emplace(c.mc_se, std::max(noise_half, combined_half_width95(c.mc_se, scale,
                                                                                  table.divisor)))
                     .first;
        c.lo95 = released - it->second;
        c.hi95 = released + it->second;
    }
    std::ostringstream footer;
    footer << "Differential privacy (--release dp): privacy unit = the person; epsilon = "
           << epsilon.text() << " for this table; L1 sensitivity " << sensitivity << " (at most "
           << contribution.per_cell << " per cell, " << contribution.cells
           << " cells per person); discrete Laplace noise of scale " << number_text(scale)
           << " added to every cell, zeros included, from OpenSSL's secure random source. "
              "Released values are unbiased and may be negative. noise_lo95-noise_hi95: 95% "
              "interval of the privacy noise alone; lo95-hi95: combined 95% interval of Monte "
              "Carlo error and privacy noise.";
    if (table.divisor > 1)
        footer << " Noise is added to the total over " << table.divisor
               << " replications, then divided.";
    table.footer = footer.str();
}

// ---------------------------------------------------------------------------------------
// Tables of a run.

bool person_level_metric(const std::string& metric) noexcept {
    return metric == "persons_stopped" || metric == "persons_wrongfully_affected";
}

std::int64_t per_stop_bound(const std::string& metric, std::int64_t immigration_databases) {
    const std::string base = metric.substr(0, metric.find('.'));
    if (person_level_metric(metric)) return 0;
    // apply_policy counts at most one arrest and one referral per stop, one detention per
    // referral; each wrongful action is attributed to one database and cause.
    if (base == "wrongful_outcomes" || base == "wrongful_by_false_match" ||
        base == "wrongful_by_record_error")
        return 3;
    if (base == "status_disclosures" || base == "lawful_status_disclosures")
        return immigration_databases;
    static const char* const ONE_PER_STOP[] = {"stops",
                                               "searches",
                                               "true_matches",
                                               "false_matches",
                                               "record_error_hits",
                                               "mated_searches",
                                               "nonmated_searches",
                                               "mates_missed",
                                               "nonmated_false_matches",
                                               "arrests",
                                               "wrongful_arrests",
                                               "ho_referrals",
                                               "wrongful_ho_referrals",
                                               "detentions",
                                               "wrongful_detentions"};
    for (const char* name : ONE_PER_STOP)
        if (base == name) return 1;
    throw InternalError("per_stop_bound: unknown metric " + metric);
}

namespace {

// The count metrics of summary.csv, in its order: the tables of a run's release.
std::vector<std::size_t> count_metrics(const MetricLayout& layout) {
    const std::size_t n_db = layout.databases().size();
    std::vector<std::size_t> metrics = {MetricLayout::STOPS, MetricLayout::PERSONS_STOPPED};
    for (const auto m : {MetricLayout::SEARCHES, MetricLayout::TRUE_MATCHES,
                         MetricLayout::FALSE_MATCHES, MetricLayout::RECORD_ERROR_HITS,
                         MetricLayout::MATED_SEARCHES, MetricLayout::NONMATED_SEARCHES})
        for (std::size_t d = 0; d < n_db; ++d) metrics.push_back(layout.at(d, m));
    for (const auto m :
         {MetricLayout::STATUS_DISCLOSURES, MetricLayout::LAWFUL_STATUS_DISCLOSURES,
          MetricLayout::ARRESTS, MetricLayout::WRONGFUL_ARRESTS, MetricLayout::HO_REFERRALS,
          MetricLayout::WRONGFUL_HO_REFERRALS, MetricLayout::DETENTIONS,
          MetricLayout::WRONGFUL_DETENTIONS, MetricLayout::WRONGFUL_OUTCOMES})
        metrics.push_back(m);
    for (const auto m :
         {MetricLayout::WRONGFUL_BY_FALSE_MATCH, MetricLayout::WRONGFUL_BY_RECORD_ERROR})
        for (std::size_t d = 0; d < n_db; ++d) metrics.push_back(layout.at(d, m));
    metrics.push_back(MetricLayout::PERSONS_WRONGFULLY_AFFECTED);
    return metrics;
}

}  // namespace

std::vector<ReleaseTable> run_count_tables(const Results& results) {
    const Scenario& s = *results.plan.scenario;
    const CellTable cells(s.dimensions, s.population);
    const MetricLayout& layout = results.layout;
    const std::size_t R = static_cast<std::size_t>(results.plan.replications);
    const std::vector<std::size_t> metrics = count_metrics(layout);

    // Groups: everyone, then each category of each dimension (the public key set, whatever
    // the counts are).
    struct Group {
        std::string dimension, category;
        std::vector<std::size_t> cells;
    };
    std::vector<Group> groups{{"all", "all", {}}};
    for (std::size_t c = 0; c < cells.size(); ++c) groups[0].cells.push_back(c);
    for (std::size_t d = 0; d < s.dimensions.size(); ++d) {
        const std::size_t first = groups.size();
        for (const auto& category : s.dimensions[d].categories)
            groups.push_back({s.dimensions[d].name, category, {}});
        for (std::size_t c = 0; c < cells.size(); ++c)
            groups[first + cells.category(c, d)].cells.push_back(c);
    }

    std::vector<ReleaseTable> tables;
    for (const auto k : metrics) {
        ReleaseTable table;
        table.name = layout.name(k);
        table.divisor = static_cast<std::int64_t>(std::max<std::size_t>(R, 1));
        for (std::size_t p = 0; p < results.policies(); ++p) {
            const std::string& policy = s.policies[results.plan.policies[p]].name;
            for (const auto& g : groups) {
                std::int64_t total = 0;
                double sum = 0, sum2 = 0;
                for (std::size_t r = 0; r < R; ++r) {
                    std::uint64_t v = 0;
                    for (const auto c : g.cells) v += results.row(r, p, c)[k];
                    total += static_cast<std::int64_t>(v);
                    const double x = static_cast<double>(v);
                    sum += x;
                    sum2 += x * x;
                }
                // Standard error of the mean over replications.
                double se = 0;
                if (R > 1) {
                    const double n = static_cast<double>(R);
                    const double var = std::max(0.0, (sum2 - sum * sum / n) / (n - 1));
                    se = std::sqrt(var / n);
                }
                table.add_cell(policy, table.name, g.dimension, g.category, total, se);
            }
        }
        table.add_dimension_margins();
        tables.push_back(std::move(table));
    }
    return tables;
}

std::vector<std::string> run_count_metric_names(const MetricLayout& layout) {
    std::vector<std::string> names;
    for (const auto k : count_metrics(layout)) names.push_back(layout.name(k));
    return names;
}

Epsilon dp_epsilon_per_table(const ReleaseOptions& options,
                             const std::vector<std::string>& tables) {
    const Epsilon each =
        options.epsilon
            ? *options.epsilon
            : Epsilon{options.epsilon_total.micro / static_cast<std::int64_t>(tables.size())};
    if (each.micro <= 0)
        throw InputError("command line", "--epsilon-total", options.epsilon_total.text(),
                         "too small to share among " + std::to_string(tables.size()) +
                             " tables: give at least 0.000001 per table");
    PrivacyLedger plan(options.epsilon_total);
    for (const auto& name : tables) plan.charge(name, each);
    return each;
}

Release release_run_tables(const Results& results, const ReleaseOptions& options,
                           RandomBits& bits) {
    const Scenario& s = *results.plan.scenario;
    Release release;
    release.mode = options.mode;
    auto tables = run_count_tables(results);
    std::ostringstream json;
    json << "{\"mode\": \"" << release_mode_name(options.mode) << "\"";
    switch (options.mode) {
        case ReleaseMode::none:
            for (auto& t : tables) apply_none(t);
            release.tables = std::move(tables);
            break;
        case ReleaseMode::sdc: {
            // One table, so that suppression also holds across metrics that add up.
            ReleaseTable merged = merge_tables(tables, "counts");
            merged.add_metric_sum("wrongful_outcomes", {"wrongful_arrests", "wrongful_ho_referrals",
                                                        "wrongful_detentions"});
            std::vector<std::string> by_cause;
            for (const auto& db : s.databases) {
                by_cause.push_back("wrongful_by_false_match." + db.name);
                by_cause.push_back("wrongful_by_record_error." + db.name);
                merged.add_metric_sum("searches." + db.name, {"mated_searches." + db.name,
                                                              "nonmated_searches." + db.name});
            }
            merged.add_metric_sum("wrongful_outcomes", by_cause);
            apply_sdc(merged, options.sdc);
            json << ", \"k\": " << format_value(options.sdc.k)
                 << ", \"round_base\": " << options.sdc.round_base
                 << ", \"suppress_zeros\": " << (options.sdc.suppress_zeros ? "true" : "false");
            release.tables.push_back(std::move(merged));
            break;
        }
        case ReleaseMode::dp: {
            if (options.max_stops_per_person <= 0)
                throw InputError("command line", "--release", "dp",
                                 "needs a cap on stops per person enforced by the engine "
                                 "(--max-stops-per-person); see docs/disclosure.md");
            // The sensitivity holds only for the cap the engine actually enforced.
            if (options.max_stops_per_person != results.plan.max_stops_per_person)
                throw InternalError("dp release with a stop cap of " +
                                    std::to_string(options.max_stops_per_person) +
                                    " of a run that capped stops at " +
                                    std::to_string(results.plan.max_stops_per_person));
            std::vector<std::string> names;
            for (const auto& t : tables) names.push_back(t.name);
            const Epsilon each = dp_epsilon_per_table(options, names);  // refuse before any noise
            std::int64_t immigration = 0;
            for (const auto& db : s.databases) immigration += db.role == DatabaseRole::immigration;
            const auto cells_per_person =
                static_cast<std::int64_t>(results.policies() * (1 + s.dimensions.size()));
            PrivacyLedger ledger(options.epsilon_total);
            for (auto& t : tables) {
                const std::int64_t per_cell =
                    person_level_metric(t.name)
                        ? 1
                        : options.max_stops_per_person * per_stop_bound(t.name, immigration);
                apply_dp(t, each, {per_cell, cells_per_person}, ledger, bits);
            }
            release.ledger_json = ledger.json();
            json << ", \"privacy_unit\": \"person\", \"max_stops_per_person\": "
                 << options.max_stops_per_person << ", \"mechanism\": \"discrete Laplace "
                 << "(Canonne, Kamath and Steinke 2020), OpenSSL RAND_bytes\", \"ledger\": "
                 << release.ledger_json;
            release.tables = std::move(tables);
            break;
        }
    }
    json << "}";
    release.manifest_json = json.str();
    return release;
}

// ---------------------------------------------------------------------------------------
// Output.

namespace {

std::string csv_optional(const std::optional<double>& v) {
    return v ? format_value(*v) : "NA";
}

}  // namespace

std::string release_csv(const std::vector<ReleaseTable>& tables, ReleaseMode mode) {
    std::ostringstream out;
    out << "table,policy,dimension,category,metric,status,value,noise_lo95,noise_hi95,lo95,hi95,"
           "interval\n";
    const std::string interval =
        mode == ReleaseMode::dp ? "monte_carlo+privacy_noise" : std::string();
    for (const auto& t : tables)
        for (const auto& c : t.cells)
            out << csv_field(t.name) << ',' << csv_field(c.policy) << ',' << csv_field(c.dimension)
                << ',' << csv_field(c.category) << ',' << csv_field(c.metric) << ','
                << cell_status_name(c.status) << ','
                << (c.released ? format_value(*c.released) : std::string("suppressed")) << ','
                << csv_optional(c.noise_lo95) << ',' << csv_optional(c.noise_hi95) << ','
                << csv_optional(c.lo95) << ',' << csv_optional(c.hi95) << ','
                << (c.lo95 ? interval : std::string()) << '\n';
    for (const auto& t : tables)
        if (!t.footer.empty()) out << "# " << t.name << ": " << t.footer << '\n';
    return out.str();
}

std::string display_released(const ReleaseCell& cell, ReleaseMode mode, std::int64_t divisor) {
    if (!cell.released) return "suppressed";
    if (mode != ReleaseMode::dp) return display_number(*cell.released);
    // For people: no negative counts, and totals in whole units; the file keeps the rest.
    const double d = static_cast<double>(divisor);
    return display_number(std::max(0.0, std::round(*cell.released * d)) / d);
}

}  // namespace stopscan
