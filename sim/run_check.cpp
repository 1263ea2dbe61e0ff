#include "stopscan/run_check.hpp"

#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "stopscan/error.hpp"

namespace stopscan {

namespace {

constexpr std::size_t FIELDS = 11;

// Splits CSV text into records of fields (RFC 4180: a quoted field may hold commas, doubled
// quotes and line breaks), remembering the line each record starts on.
struct Record {
    int line = 0;
    std::vector<std::string> fields;
};

std::vector<Record> csv_records(std::string_view text, const std::string& source) {
    std::vector<Record> records;
    Record record;
    std::string field;
    bool quoted = false;      // inside a quoted field
    bool was_quoted = false;  // the current field was quoted (only a separator may follow)
    bool any = false;         // the current record has content
    int line = 1;
    int quote_line = 0;
    record.line = 1;
    auto end_field = [&] {
        record.fields.push_back(std::move(field));
        field.clear();
        was_quoted = false;
    };
    auto end_record = [&] {
        if (any || !record.fields.empty()) {
            end_field();
            records.push_back(std::move(record));
        }
        record = Record{};
        field.clear();
        was_quoted = false;
        any = false;
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quoted) {
            if (c == '"') {
                if (i + 1 < text.size() && text[i + 1] == '"') {
                    field += '"';
                    ++i;
                } else {
                    quoted = false;
                    was_quoted = true;
                }
            } else {
                if (c == '\n') ++line;
                field += c;
            }
            continue;
        }
        if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
        if (c == '\n') {
            end_record();
            ++line;
            record.line = line;
            continue;
        }
        if (was_quoted && c != ',')
            throw InputError(source + ":" + std::to_string(line),
                             "text after a closing quote: a quoted field must end at a comma");
        any = true;
        if (c == ',') {
            end_field();
        } else if (c == '"' && field.empty()) {
            quoted = true;
            quote_line = line;
        } else {
            field += c;
        }
    }
    if (quoted)
        throw InputError(source + ":" + std::to_string(quote_line),
                         "unterminated quoted field: a quote opened here is never closed");
    end_record();
    return records;
}

std::optional<double> read_value(const std::string& field, const std::string& origin,
                                 const char* column) {
    if (field == "NA") return std::nullopt;
    double v = 0;
    const auto r = std::from_chars(field.data(), field.data() + field.size(), v);
    if (field.empty() || r.ec != std::errc() || r.ptr != field.data() + field.size() ||
        std::isnan(v))
        throw InputError(origin, std::string(column) + " '" + field +
                                     "' is not a number: summary.csv holds a number, inf, -inf "
                                     "or NA");
    return v;
}

// Two-sided Student t quantile for a tail probability `p` on each side.
double t_upper(double p, double df) {
    return boost::math::quantile(boost::math::complement(
        boost::math::students_t_distribution<double>(std::max(df, 1.0)), p));
}

bool is_ratio_metric(const std::string& metric) {
    constexpr std::string_view SUFFIX = "_ratio";
    return metric.size() >= SUFFIX.size() &&
           metric.compare(metric.size() - SUFFIX.size(), SUFFIX.size(), SUFFIX) == 0;
}

std::string format(const std::optional<double>& v) {
    if (!v) return "NA";
    if (std::isinf(*v)) return *v > 0 ? "inf" : "-inf";
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.4g", *v);
    return buffer;
}

std::string describe(const Estimate& e) {
    return format(e.estimate) + " [" + format(e.mean_lo95) + ", " + format(e.mean_hi95) + "]";
}

// The row as an expectation reference (docs/expectations.md), which can be pasted into
// --expect.
std::string reference(const SummaryRow& row) {
    return row.policy + "." + row.metric + "." +
           (row.dimension == "all" ? std::string("all") : row.dimension + "." + row.category);
}

std::string row_key(const SummaryRow& row) {
    return row.policy + '\x1f' + row.dimension + '\x1f' + row.category + '\x1f' + row.metric;
}

// A row's standard error, recovered from its 95 % confidence interval: the interval is
// estimate ± t_{0.975, R-1} × se (sim/summary.cpp), one end possibly clamped at the metric's
// range, so the unclamped side gives the half-width; for ratio metrics the interval is
// estimate × exp(± t × se_log) (delta method on the log), so the test is on the log scale.
struct Spread {
    double value = 0;  // estimate, or its logarithm
    double se = 0;
    double df = 1;
};

Spread spread(const SummaryRow& row, bool log_scale) {
    const Estimate& e = row.value;
    Spread s;
    s.df = static_cast<double>(std::max<std::int64_t>(e.replications - 1, 1));
    const double t = t_upper(0.025, s.df);
    if (log_scale) {
        s.value = std::log(*e.estimate);
        s.se = std::log(*e.mean_hi95 / *e.mean_lo95) / (2 * t);
    } else {
        s.value = *e.estimate;
        s.se = std::max(*e.mean_hi95 - *e.estimate, *e.estimate - *e.mean_lo95) / t;
    }
    s.se = std::max(s.se, 0.0);
    return s;
}

bool finite(const std::optional<double>& v) {
    return v && std::isfinite(*v);
}

}  // namespace

Summary read_summary_csv(std::string_view text, const std::string& source) {
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    const auto records = csv_records(text, source);
    if (records.empty())
        throw InputError(source, "empty: not a summary.csv (expected the header " +
                                     std::string(SUMMARY_CSV_HEADER) + ")");
    std::string header;
    for (const auto& f : records.front().fields) header += (header.empty() ? "" : ",") + f;
    if (header != SUMMARY_CSV_HEADER)
        throw InputError(source + ":1",
                         "not a summary.csv header: expected " + std::string(SUMMARY_CSV_HEADER));
    Summary summary;
    std::map<std::string, int> seen;
    for (std::size_t i = 1; i < records.size(); ++i) {
        const Record& r = records[i];
        const std::string origin = source + ":" + std::to_string(r.line);
        if (r.fields.size() != FIELDS)
            throw InputError(
                origin, std::to_string(r.fields.size()) + " fields: a summary.csv row has " +
                            std::to_string(FIELDS) + " (" + std::string(SUMMARY_CSV_HEADER) + ")");
        SummaryRow row;
        row.policy = r.fields[0];
        row.dimension = r.fields[1];
        row.category = r.fields[2];
        row.metric = r.fields[3];
        for (const auto* name : {&row.policy, &row.dimension, &row.category, &row.metric})
            if (name->empty())
                throw InputError(origin, "empty policy, dimension, category or metric");
        row.value.estimate = read_value(r.fields[4], origin, "estimate");
        row.value.lo95 = read_value(r.fields[5], origin, "lo95");
        row.value.hi95 = read_value(r.fields[6], origin, "hi95");
        const std::string& reps = r.fields[7];
        std::int64_t n = -1;
        const auto parsed = std::from_chars(reps.data(), reps.data() + reps.size(), n);
        if (reps.empty() || parsed.ec != std::errc() || parsed.ptr != reps.data() + reps.size() ||
            n < 0)
            throw InputError(origin, "replications '" + reps + "' is not a count >= 0");
        row.value.replications = n;
        row.value.mean_lo95 = read_value(r.fields[8], origin, "mean_lo95");
        row.value.mean_hi95 = read_value(r.fields[9], origin, "mean_hi95");
        row.value.flag = r.fields[10];
        const auto [it, inserted] = seen.emplace(row_key(row), r.line);
        if (!inserted)
            throw InputError(origin, "row " + reference(row) + " given twice (first at line " +
                                         std::to_string(it->second) + ")");
        summary.rows.push_back(std::move(row));
    }
    return summary;
}

Summary read_summary_file(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const std::string file =
        fs::is_directory(path, ec) ? (fs::path(path) / "summary.csv").string() : path;
    std::ifstream in(file, std::ios::binary);
    if (!in)
        throw InputError(file, fs::exists(file, ec)
                                   ? "cannot be read"
                                   : "does not exist: give the output directory of a previous "
                                     "run (its --out) or its summary.csv");
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) throw InputError(file, "cannot be read");
    return read_summary_csv(text, file);
}

RunComparison compare_summaries(const Summary& previous, const Summary& current, double alpha) {
    if (!(alpha > 0 && alpha < 1))
        throw InputError("command line", "check alpha", std::to_string(alpha),
                         "must be in (0, 1), e.g. 0.001");
    RunComparison out;
    out.alpha = alpha;
    std::map<std::string, const SummaryRow*> before;
    for (const auto& row : previous.rows) before.emplace(row_key(row), &row);
    std::set<std::string> matched;

    struct Pair {
        const SummaryRow* previous;
        const SummaryRow* current;
    };
    std::vector<Pair> tests;
    std::vector<MetricChange> schema;
    auto change = [](MetricChange::Kind kind, const SummaryRow& row) {
        MetricChange c;
        c.kind = kind;
        c.policy = row.policy;
        c.dimension = row.dimension;
        c.category = row.category;
        c.metric = row.metric;
        return c;
    };
    for (const auto& row : current.rows) {
        const auto it = before.find(row_key(row));
        if (it == before.end()) {
            auto c = change(MetricChange::Kind::only_current, row);
            c.current = row.value;
            c.message = reference(row) + " = " + describe(row.value) +
                        " is new: the previous run has no such row (schema change)";
            schema.push_back(std::move(c));
            continue;
        }
        matched.insert(it->first);
        const Estimate& a = it->second->value;
        const Estimate& b = row.value;
        const bool same = a.estimate == b.estimate;  // both NA, or equal (inf included)
        if (same) {
            if (finite(a.estimate)) {
                ++out.compared;
                ++out.unchanged;
            }
            continue;
        }
        const bool testable = finite(a.estimate) && finite(b.estimate) && finite(a.mean_lo95) &&
                              finite(a.mean_hi95) && finite(b.mean_lo95) && finite(b.mean_hi95);
        if (!testable) {
            auto c = change(MetricChange::Kind::not_tested, row);
            c.previous = a;
            c.current = b;
            c.message = reference(row) + ": " + describe(a) + " -> " + describe(b) +
                        ": not tested (NA, infinite or without an interval in one run)";
            out.notes.push_back(std::move(c));
            continue;
        }
        tests.push_back({it->second, &row});
    }
    for (const auto& row : previous.rows)
        if (!matched.count(row_key(row))) {
            auto c = change(MetricChange::Kind::only_previous, row);
            c.previous = row.value;
            c.message = reference(row) + " = " + describe(row.value) +
                        " is missing: the current run has no such row (schema change)";
            schema.push_back(std::move(c));
        }

    out.compared += tests.size();
    // Bonferroni: each of the m rows is tested at alpha / m, two-sided.
    const double tail = alpha / (2 * static_cast<double>(std::max<std::size_t>(out.compared, 1)));
    char family[96];
    std::snprintf(family, sizeof family, "family-wise alpha %g over %zu rows", alpha, out.compared);
    for (const auto& [p, c] : tests) {
        const bool log_scale = is_ratio_metric(c->metric) && *p->value.estimate > 0 &&
                               *c->value.estimate > 0 && *p->value.mean_lo95 > 0 &&
                               *c->value.mean_lo95 > 0;
        const Spread x = spread(*p, log_scale);
        const Spread y = spread(*c, log_scale);
        const double v = x.se * x.se + y.se * y.se;
        const double difference = y.value - x.value;
        double t = 0;
        double critical = 0;
        if (v > 0) {
            t = difference / std::sqrt(v);
            // Welch–Satterthwaite degrees of freedom.
            const double df = v * v / (std::pow(x.se, 4) / x.df + std::pow(y.se, 4) / y.df);
            critical = t_upper(tail, df);
        } else if (c->metric == "population") {
            // The one metric that is the same in every replication (docs/output.md): any
            // change is a change of the scenario.
            t = difference > 0 ? HUGE_VAL : -HUGE_VAL;
        } else {
            // Every replication gave the same value in both runs, e.g. a share defined in a
            // couple of replications only: no noise to judge the difference by.
            auto note = change(MetricChange::Kind::not_tested, *c);
            note.previous = p->value;
            note.current = c->value;
            note.message = reference(*c) + ": " + describe(p->value) + " -> " + describe(c->value) +
                           ": not tested (no variation between replications in either run)";
            out.notes.push_back(std::move(note));
            continue;
        }
        if (std::abs(t) <= critical) continue;
        auto m = change(MetricChange::Kind::moved, *c);
        m.previous = p->value;
        m.current = c->value;
        m.t = t;
        char stat[96];
        if (std::isfinite(t))
            std::snprintf(stat, sizeof stat, "|t| = %.3g > %.3g", std::abs(t), critical);
        else
            std::snprintf(stat, sizeof stat, "no replication noise in either run");
        m.message = reference(*c) + " moved: " + describe(p->value) + " -> " + describe(c->value) +
                    " (" + stat + ", " + family + (log_scale ? ", on the log scale" : "") + ")";
        out.failures.push_back(std::move(m));
    }
    for (auto& s : schema) out.failures.push_back(std::move(s));
    return out;
}

RunComparison compare_runs(const std::string& previous, const Summary& current, double alpha) {
    return compare_summaries(read_summary_file(previous), current, alpha);
}

}  // namespace stopscan
