// `stopscan analyze DIR`: sensitivity analysis of a finished sweep (docs/sensitivity.md).
// Reads the sweep's manifest.json, sweep.csv and effects.csv, checks that the design is one
// the tool generated and that every point is there, then computes, for each chosen output,
// the Monte Carlo noise against the spread across points, Morris's μ*, μ and σ (design
// morris), Sobol' indices with bootstrap intervals (sobol), a tornado table (oat) and, with
// --prim-threshold, a PRIM box (any design). Writes analysis.csv and analysis.json.
#include "detail/cli_analyze.hpp"

#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <boost/program_options.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "cli_support.hpp"
#include "detail/json.hpp"
#include "stopscan/error.hpp"
#include "stopscan/sensitivity.hpp"
#include "stopscan/settings.hpp"
#include "stopscan/sweep_output.hpp"
#include "stopscan/writers.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace stopscan::detail {

namespace {

constexpr double NaN = std::numeric_limits<double>::quiet_NaN();
constexpr double NOISE_WARNING = 0.10;     // MC variance / variance across points
constexpr std::int64_t MORRIS_MIN_R = 10;  // Campolongo et al. (2007) use r = 10 to 20
constexpr std::int64_t SOBOL_MIN_N = 500;

double number(const std::string& text) {
    if (text == "inf") return std::numeric_limits<double>::infinity();
    if (text == "-inf") return -std::numeric_limits<double>::infinity();
    double v = 0;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    return !text.empty() && r.ec == std::errc() && r.ptr == text.data() + text.size() ? v : NaN;
}

// A number in analysis.csv / analysis.json: shortest round trip, NA (null) when undefined.
std::string csv_number(double v) {
    return std::isnan(v) ? "NA" : format_value(v);
}
std::string json_number(double v) {
    return std::isfinite(v) ? format_value(v) : "null";
}
std::string show(double v) {
    return display_number(std::isnan(v) ? std::nullopt : std::optional(v));
}
std::string percent(double v) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.0f %%", 100 * v);
    return buffer;
}

std::string read_text(const fs::path& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) throw InputError(path.string(), "cannot read the file");
    std::ostringstream text;
    text << file.rdbuf();
    return text.str();
}

const JsonValue& member(const JsonValue& v, const std::string& name, const std::string& where) {
    const auto* m = v.find(name);
    if (!m)
        throw InputError(where, "has no \"" + name +
                                    "\": not a manifest written by this version of stopscan sweep");
    return *m;
}

std::int64_t integer(const JsonValue& v, const std::string& where) {
    std::int64_t n = 0;
    const auto r = std::from_chars(v.text.data(), v.text.data() + v.text.size(), n);
    if (v.kind != JsonValue::number || r.ec != std::errc() ||
        r.ptr != v.text.data() + v.text.size())
        throw InputError(where, "holds a malformed number '" + v.text + "'");
    return n;
}

struct Axis {
    std::string key;
    std::string kind;
    std::vector<std::string> items;  // list axes
    bool numeric = true;             // every point's value is a number
};

// One output: a summary row or an effect row, chosen by --output.
struct Output {
    std::string expression;
    bool delta = false;
    std::string policy, metric, dimension, category;
    std::string description;
    std::vector<double> y, se;
};

std::string row_key(bool delta, const std::string& policy, const std::string& metric,
                    const std::string& dimension, const std::string& category) {
    return std::string(delta ? "delta:" : "") + policy + "." + metric + "." + dimension + "." +
           category;
}

Output parse_output(const std::string& text, const std::vector<std::string>& policies,
                    const std::string& baseline) {
    Output o;
    o.expression = text;
    std::string rest = text;
    if (rest.rfind("delta:", 0) == 0) {
        o.delta = true;
        rest = rest.substr(6);
    }
    const std::string allowed =
        "write POLICY.METRIC.DIMENSION.CATEGORY (a summary.csv row, e.g. "
        "firewall.wrongful_ho_referrals.ethnicity.Black) or delta:POLICY.METRIC.DIMENSION."
        "CATEGORY (its change against the baseline, from effects.csv)";
    const auto first = rest.find('.');
    const auto last = rest.rfind('.');
    const auto second_last =
        last == std::string::npos || last == 0 ? std::string::npos : rest.rfind('.', last - 1);
    if (first == std::string::npos || second_last == std::string::npos || second_last <= first)
        throw InputError("command line", "--output", text, "malformed: " + allowed);
    o.policy = rest.substr(0, first);
    o.metric = rest.substr(first + 1, second_last - first - 1);
    o.dimension = rest.substr(second_last + 1, last - second_last - 1);
    o.category = rest.substr(last + 1);
    if (o.metric.empty() || o.dimension.empty() || o.category.empty())
        throw InputError("command line", "--output", text, "malformed: " + allowed);
    if (std::find(policies.begin(), policies.end(), o.policy) == policies.end()) {
        std::string list;
        for (const auto& p : policies) list += (list.empty() ? "" : ", ") + p;
        throw InputError("command line", "--output", text,
                         "policy '" + o.policy + "' is not in the sweep: its policies are " + list);
    }
    if (o.delta && o.policy == baseline)
        throw InputError(
            "command line", "--output", text,
            "'" + baseline + "' is the baseline: it has no effect rows; name another policy");
    o.description =
        o.delta
            ? o.policy + " − " + baseline + ", " + o.metric + ", " + o.dimension + " " + o.category
            : o.metric + " under " + o.policy + ", " + o.dimension + " " + o.category;
    return o;
}

// Two-sided 95 % Student t quantile with `df` degrees of freedom.
double t95(double df) {
    return boost::math::quantile(boost::math::complement(
        boost::math::students_t_distribution<double>(std::max(df, 1.0)), 0.025));
}

// The rows of sweep.csv or effects.csv that `wanted` accepts, by key, per point: estimate and
// the standard error implied by the confidence interval of the mean (half-width / t).
struct Rows {
    std::vector<std::map<std::string, std::pair<double, double>>> by_point;
    std::vector<std::string> dimensions;  ///< in the order of the file, "all" excluded
};

void read_rows(const fs::path& file, bool effects, std::size_t axes, std::int64_t points,
               const std::function<bool(const std::string& metric)>& wanted, Rows& rows) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw InputError(file.string(), "cannot read the file: is the sweep finished?");
    std::string line;
    std::getline(in, line);
    const auto header = split_csv_line(line);
    auto column = [&](const std::string& name) {
        for (std::size_t i = axes + 1; i < header.size(); ++i)
            if (header[i] == name) return i;
        throw InputError(file.string(), "has no column '" + name + "': not a sweep's table");
    };
    const auto c_policy = column("policy"), c_dimension = column("dimension"),
               c_category = column("category"), c_metric = column("metric"),
               c_value = column(effects ? "delta" : "estimate"),
               c_replications = column("replications"), c_lo = column("mean_lo95"),
               c_hi = column("mean_hi95");
    rows.by_point.resize(static_cast<std::size_t>(points));
    std::int64_t line_number = 1;
    while (std::getline(in, line)) {
        ++line_number;
        const auto f = split_csv_line(line);
        if (f.size() != header.size())
            throw InputError(file.string() + ":" + std::to_string(line_number),
                             "wrong number of fields: the table is damaged");
        if (f[c_dimension] != "all" && std::find(rows.dimensions.begin(), rows.dimensions.end(),
                                                 f[c_dimension]) == rows.dimensions.end())
            rows.dimensions.push_back(f[c_dimension]);
        if (!wanted(f[c_metric])) continue;
        const double id = number(f[0]);
        if (!(id >= 0 && id < static_cast<double>(points)))
            throw InputError(file.string() + ":" + std::to_string(line_number),
                             "point_id " + f[0] + " is not a point of this sweep");
        const double r = number(f[c_replications]);
        const double half = (number(f[c_hi]) - number(f[c_lo])) / 2;
        const double se = r >= 2 ? half / t95(r - 1) : NaN;
        rows.by_point[static_cast<std::size_t>(id)]
                     [row_key(effects, f[c_policy], f[c_metric], f[c_dimension], f[c_category])] = {
            number(f[c_value]), se};
    }
}

std::string json_array(const std::vector<std::string>& items) {
    std::string out = "[";
    for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
    return out + "]";
}

}  // namespace

int command_analyze(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
    po::options_description options("stopscan analyze DIR [options]");
    options.add_options()("help,h", "show this help")(
        "output", po::value<std::vector<std::string>>(),
        "POLICY.METRIC.DIMENSION.CATEGORY or delta:POLICY.METRIC.DIMENSION.CATEGORY "
        "(repeatable; default: delta:firewall.wrongful_ho_referrals for the group with the "
        "largest baseline exposure_per_100k)")(
        "bootstrap", po::value<std::string>(),
        "Sobol': bootstrap resamples of the base points for the 95 % intervals (default 1000)")(
        "seed", po::value<std::string>(), "seed of the bootstrap (default: the sweep's seed)")(
        "prim-threshold", po::value<std::string>(),
        "PRIM: a case is a point whose output is at or below (or above) this value")(
        "prim-direction", po::value<std::string>(), "below (default) or above")(
        "prim-coverage", po::value<std::string>(),
        "PRIM: the chosen box is the densest with at least this coverage (default 0.5)")(
        "out,o", po::value<std::string>(),
        "directory for analysis.csv and analysis.json (default: DIR)")(
        "dir", po::value<std::vector<std::string>>(), "sweep directory (positional)");
    po::positional_options_description positional;
    positional.add("dir", -1);
    const auto vm = cli::parse(args, options, positional, "stopscan analyze --help");
    if (vm.count("help")) {
        out << "Sensitivity analysis of a finished sweep: Morris, Sobol', tornado, PRIM "
               "(docs/sensitivity.md).\n\n"
            << options << '\n';
        return 0;
    }
    if (!vm.count("dir"))
        throw InputError("command line", "give the sweep directory: stopscan analyze DIR");
    const auto& dirs = vm["dir"].as<std::vector<std::string>>();
    if (dirs.size() > 1)
        throw InputError("command line",
                         "unexpected argument '" + dirs[1] + "': give one sweep directory");
    const std::string dir = dirs.front();
    const std::int64_t bootstrap =
        vm.count("bootstrap")
            ? cli::parse_integer("--bootstrap", vm["bootstrap"].as<std::string>(), 0, 100'000)
            : 1000;
    std::optional<double> prim_threshold;
    if (vm.count("prim-threshold")) {
        const std::string t = vm["prim-threshold"].as<std::string>();
        const double v = number(t);
        if (!std::isfinite(v))
            throw InputError("command line", "--prim-threshold", t, "must be a finite number");
        prim_threshold = v;
    }
    bool below = true;
    if (vm.count("prim-direction")) {
        const std::string d = vm["prim-direction"].as<std::string>();
        if (d != "below" && d != "above")
            throw InputError("command line", "--prim-direction", d, "must be below or above");
        below = d == "below";
        if (!prim_threshold)
            throw InputError("command line", "--prim-direction", d,
                             "only used with --prim-threshold");
    }
    PrimOptions prim_options;
    if (vm.count("prim-coverage")) {
        const std::string c = vm["prim-coverage"].as<std::string>();
        const double v = number(c);
        if (!(v >= 0 && v <= 1))
            throw InputError("command line", "--prim-coverage", c, "must be a number in [0, 1]");
        if (!prim_threshold)
            throw InputError("command line", "--prim-coverage", c,
                             "only used with --prim-threshold");
        prim_options.min_coverage = v;
    }

    // The manifest: a whole sweep, made by this tool.
    const SweepDirectoryInfo info = read_sweep_directory(dir);
    const std::string where = (fs::path(dir) / "manifest.json").string();
    if (info.shard)
        throw InputError(dir, "is shard " + std::to_string(info.shard->index) + "/" +
                                  std::to_string(info.shard->count) +
                                  " of a sweep: merge the shards first (stopscan merge), then "
                                  "analyze the merged directory");
    const JsonValue manifest = parse_json(info.manifest);
    const JsonValue& design = member(manifest, "design", where);
    const std::string design_name = member(design, "name", where).text;
    std::vector<Axis> axes;
    for (const auto& a : member(manifest, "axes", where).items) {
        Axis axis{member(a, "key", where).text, member(a, "kind", where).text, {}, true};
        if (axis.kind == "list") {
            const std::string spec = member(a, "spec", where).text;
            axis.items =
                split_list(std::string_view(spec).substr(std::min<std::size_t>(4, spec.size())));
        }
        axes.push_back(std::move(axis));
    }
    const std::size_t k = axes.size();
    std::vector<std::string> policies;
    for (const auto& p : member(manifest, "policies", where).items) policies.push_back(p.text);
    const std::string baseline = member(manifest, "baseline", where).text;
    const auto seed = static_cast<std::uint64_t>(
        vm.count("seed") ? cli::parse_integer("--seed", vm["seed"].as<std::string>(), 0,
                                              std::numeric_limits<std::int64_t>::max())
                         : integer(member(manifest, "seed", where), where));
    const std::int64_t n_points = info.points;

    const bool morris = design_name == "morris", sobol = design_name == "sobol",
               oat = design_name == "oat";
    if (!morris && !sobol && !oat && !prim_threshold)
        throw InputError(dir, "design " + design_name +
                                  ": analyze computes Morris indices (design morris), Sobol' "
                                  "indices (sobol), a tornado table (oat), or with "
                                  "--prim-threshold a PRIM box (any design); run a sweep with "
                                  "one of these designs");

    // Every point present, with its axis values.
    std::vector<std::vector<std::string>> values(static_cast<std::size_t>(n_points));
    for (std::int64_t id = 0; id < n_points; ++id) {
        const fs::path point = fs::path(dir) / "points" / point_directory_name(id);
        std::error_code ec;
        if (!fs::is_directory(point, ec))
            throw InputError(dir, "point " + std::to_string(id) + " is missing (" + point.string() +
                                      "): analyze a finished sweep; finish it with stopscan "
                                      "sweep SWEEP.ini --out DIR --resume");
        std::istringstream text(read_text(point / "point.csv"));
        std::string header, row;
        std::getline(text, header);
        std::getline(text, row);
        auto f = split_csv_line(row);
        if (f.size() != k + 1 || number(f[0]) != static_cast<double>(id))
            throw InputError((point / "point.csv").string(),
                             "does not hold point " + std::to_string(id) + " with " +
                                 std::to_string(k) + " axis values: the directory is damaged");
        values[static_cast<std::size_t>(id)].assign(f.begin() + 1, f.end());
        for (std::size_t a = 0; a < k; ++a)
            if (std::isnan(number(f[a + 1]))) axes[a].numeric = false;
    }
    // An axis value as a number: the value itself, or its position in a list of words.
    auto coordinate = [&](std::size_t point, std::size_t a) {
        const std::string& v = values[point][a];
        if (axes[a].numeric) return number(v);
        const auto it = std::find(axes[a].items.begin(), axes[a].items.end(), v);
        return static_cast<double>(it - axes[a].items.begin());
    };
    auto label = [&](std::size_t a, double x) {
        if (axes[a].numeric) return show(x);
        const auto i = static_cast<std::size_t>(x);
        return i < axes[a].items.size() ? axes[a].items[i] : show(x);
    };
    auto differing = [&](std::size_t p, std::size_t q) {
        std::vector<std::size_t> d;
        for (std::size_t a = 0; a < k; ++a)
            if (values[p][a] != values[q][a]) d.push_back(a);
        return d;
    };
    const std::string not_ours =
        ": not a design this tool generated (or the points were "
        "edited); analyze the output of stopscan sweep";

    // The design's structure, checked against the points.
    std::vector<MorrisStep> morris_steps;  // y filled per output
    std::vector<std::pair<std::size_t, std::size_t>> morris_points;
    std::int64_t trajectories = 0, base_points = 0;
    double delta = 0;
    if (morris) {
        trajectories = integer(member(design, "trajectories", where), where);
        delta = number(member(design, "delta", where).text);
        const auto& changed = member(design, "changed", where).items;
        if (trajectories < 1 || static_cast<std::int64_t>(changed.size()) != trajectories ||
            trajectories * static_cast<std::int64_t>(k + 1) != n_points || !(delta > 0))
            throw InputError(where,
                             "the Morris design's trajectories, delta and points do not "
                             "agree" +
                                 not_ours);
        for (std::int64_t t = 0; t < trajectories; ++t) {
            const auto& steps = changed[static_cast<std::size_t>(t)].items;
            std::set<std::int64_t> seen;
            for (std::size_t s = 0; s < steps.size(); ++s) seen.insert(integer(steps[s], where));
            if (steps.size() != k || seen.size() != k || *seen.begin() != 0 ||
                *seen.rbegin() != static_cast<std::int64_t>(k) - 1)
                throw InputError(where, "trajectory " + std::to_string(t) +
                                            " does not move every axis once" + not_ours);
            for (std::size_t s = 0; s < k; ++s) {
                const auto a = static_cast<std::size_t>(integer(steps[s], where));
                const auto p0 = static_cast<std::size_t>(t) * (k + 1) + s;
                const auto d = differing(p0, p0 + 1);
                if (d.size() > 1 || (d.size() == 1 && d[0] != a))
                    throw InputError(
                        dir, "points " + std::to_string(p0) + " and " + std::to_string(p0 + 1) +
                                 " differ in more than axis " + axes[a].key + not_ours);
                const double sign = coordinate(p0 + 1, a) < coordinate(p0, a) ? -1.0 : 1.0;
                morris_steps.push_back({a, sign * delta, 0, 0});
                morris_points.emplace_back(p0, p0 + 1);
            }
        }
    }
    if (sobol) {
        base_points = integer(member(design, "base_points", where), where);
        if (base_points < 2 || base_points * static_cast<std::int64_t>(k + 2) != n_points)
            throw InputError(where,
                             "the Sobol' design's base points and points do not agree" + not_ours);
        const auto n = static_cast<std::size_t>(base_points);
        for (std::size_t i = 0; i < k; ++i)
            for (std::size_t j = 0; j < n; ++j) {
                const std::size_t ab = (2 + i) * n + j;
                for (std::size_t a = 0; a < k; ++a) {
                    const std::string& expect = a == i ? values[n + j][a] : values[j][a];
                    if (values[ab][a] != expect)
                        throw InputError(dir, "point " + std::to_string(ab) + " is not row " +
                                                  std::to_string(j) + " of A with axis " +
                                                  axes[i].key + " from B" + not_ours);
                }
            }
        if (base_points < SOBOL_MIN_N)
            err << "stopscan analyze: warning: " << dir << ": N = " << base_points
                << " base points: the estimators' standard errors shrink as 1/sqrt(N), and "
                   "below about 500 the bootstrap intervals of small indices are wide and can "
                   "cross 0 (Saltelli et al. 2010 use N in the thousands); run more points\n";
    }
    if (oat) {
        if (n_points != static_cast<std::int64_t>(2 * k + 1))
            throw InputError(where, "an oat design has 2 x axes + 1 points" + not_ours);
        for (std::size_t a = 0; a < k; ++a)
            for (const std::size_t p : {2 * a + 1, 2 * a + 2}) {
                const auto d = differing(0, p);
                if (d.size() > 1 || (d.size() == 1 && d[0] != a))
                    throw InputError(dir, "point " + std::to_string(p) +
                                              " differs from the base in more than axis " +
                                              axes[a].key + not_ours);
            }
    }
    if (morris && trajectories < MORRIS_MIN_R)
        err << "stopscan analyze: warning: " << dir << ": r = " << trajectories
            << " trajectories: each mu* and sigma rests on r elementary effects; below 10 the "
               "ranking of axes with similar mu* is not stable (Campolongo et al. 2007 use 10 "
               "to 20); set trajectories = 10 or more\n";

    // The outputs.
    std::vector<Output> outputs;
    std::set<std::string> metrics{"exposure_per_100k"};
    if (vm.count("output"))
        for (const auto& e : vm["output"].as<std::vector<std::string>>()) {
            outputs.push_back(parse_output(e, policies, baseline));
            metrics.insert(outputs.back().metric);
        }
    else
        metrics.insert("wrongful_ho_referrals");
    auto wanted = [&](const std::string& m) { return metrics.count(m) > 0; };
    Rows rows;
    read_rows(fs::path(dir) / "sweep.csv", false, k, n_points, wanted, rows);
    read_rows(fs::path(dir) / "effects.csv", true, k, n_points, wanted, rows);
    std::string default_note;
    if (outputs.empty()) {
        // The group most exposed under the baseline: the category of the first dimension in
        // sweep.csv with the largest mean exposure_per_100k across points.
        const bool has_firewall =
            std::find(policies.begin(), policies.end(), "firewall") != policies.end() &&
            baseline != "firewall";
        const std::string dimension = rows.dimensions.empty() ? "" : rows.dimensions.front();
        std::map<std::string, double> exposure;
        const std::string prefix = baseline + ".exposure_per_100k." + dimension + ".";
        for (const auto& point : rows.by_point)
            for (const auto& [key, v] : point)
                if (key.rfind(prefix, 0) == 0 && std::isfinite(v.first))
                    exposure[key.substr(prefix.size())] += v.first;
        if (!has_firewall || exposure.empty())
            throw InputError(dir,
                             "no default output: it needs the policy firewall beside the "
                             "baseline and the metrics wrongful_ho_referrals and "
                             "exposure_per_100k by group; give --output "
                             "POLICY.METRIC.DIMENSION.CATEGORY");
        std::string group;
        double most = -std::numeric_limits<double>::infinity();
        for (const auto& [category, sum] : exposure)
            if (sum > most) {
                most = sum;
                group = category;
            }
        outputs.push_back(parse_output(
            "delta:firewall.wrongful_ho_referrals." + dimension + "." + group, policies, baseline));
        default_note = "the default: the firewall's change in wrongful Home Office referrals of " +
                       dimension + " " + group + ", the group with the largest mean " + baseline +
                       " exposure_per_100k across the points (" +
                       show(most / static_cast<double>(n_points)) + " per 100,000)";
    }
    for (auto& o : outputs) {
        const std::string key = row_key(o.delta, o.policy, o.metric, o.dimension, o.category);
        for (std::int64_t id = 0; id < n_points; ++id) {
            const auto& point = rows.by_point[static_cast<std::size_t>(id)];
            const auto it = point.find(key);
            if (it == point.end())
                throw InputError("command line", "--output", o.expression,
                                 "no such row in " + std::string(o.delta ? "effects" : "sweep") +
                                     ".csv at point " + std::to_string(id) +
                                     " (policy, metric, dimension, category as in "
                                     "docs/output.md; the sweep keeps only its [sweep] metrics)");
            o.y.push_back(it->second.first);
            o.se.push_back(it->second.second);
        }
    }

    // The analyses, printed and tabulated.
    std::ostringstream csv, json;
    csv << "output,analysis,axis,statistic,value,lo95,hi95\n";
    auto csv_row = [&](const Output& o, const std::string& analysis, const std::string& axis,
                       const std::string& statistic, double value, double lo = NaN,
                       double hi = NaN) {
        csv << csv_field(o.expression) << ',' << analysis << ',' << csv_field(axis) << ','
            << statistic << ',' << csv_number(value) << ',' << csv_number(lo) << ','
            << csv_number(hi) << '\n';
    };
    std::vector<std::string> json_outputs;
    std::ostringstream report;  // printed, and the body of analysis.html
    report << "stopscan analyze " << dir << ": design " << design_name << ", " << n_points
           << " points, " << k << " axes, "
           << integer(member(manifest, "replications", where), where)
           << " replications per point\n";
    char line[512];
    for (const auto& o : outputs) {
        std::ostringstream j;
        j << "{\"output\": " << json_string(o.expression)
          << ", \"description\": " << json_string(o.description);
        report << "\nOutput " << o.expression << ": " << o.description << '\n';
        if (!default_note.empty() && outputs.size() == 1) report << "  (" << default_note << ")\n";

        const NoiseSummary noise = mc_noise(o.y, o.se);
        csv_row(o, "noise", "", "mean_mc_variance", noise.mean_mc_variance);
        csv_row(o, "noise", "", "output_variance", noise.output_variance);
        csv_row(o, "noise", "", "ratio", noise.ratio);
        j << ", \"noise\": {\"mean_mc_variance\": " << json_number(noise.mean_mc_variance)
          << ", \"output_variance\": " << json_number(noise.output_variance)
          << ", \"ratio\": " << json_number(noise.ratio) << ", \"points\": " << noise.points << "}";
        report << "Monte Carlo noise: mean squared standard error of a point "
               << show(noise.mean_mc_variance) << ", variance across points "
               << show(noise.output_variance) << ": noise is "
               << (std::isfinite(noise.ratio) ? percent(noise.ratio) : std::string("NA"))
               << " of the variance the parameters explain\n";
        if (!(noise.ratio <= NOISE_WARNING))
            err << "stopscan analyze: warning: " << o.expression << ": Monte Carlo noise is "
                << (std::isfinite(noise.ratio) ? percent(noise.ratio) : std::string("undefined"))
                << " of the variance across points (more than 10 %): indices are blurred by "
                   "noise; raise replications in the sweep file\n";

        if (morris) {
            auto steps = morris_steps;
            for (std::size_t s = 0; s < steps.size(); ++s) {
                steps[s].y_before = o.y[morris_points[s].first];
                steps[s].y_after = o.y[morris_points[s].second];
            }
            auto indices = morris_indices(steps, k);
            std::stable_sort(indices.begin(), indices.end(),
                             [](const MorrisIndex& a, const MorrisIndex& b) {
                                 if (std::isnan(a.mu_star) != std::isnan(b.mu_star))
                                     return std::isnan(b.mu_star);
                                 return a.mu_star > b.mu_star;
                             });
            report << "Morris elementary effects (" << trajectories
                   << " trajectories; an effect is the change across an axis's whole range, in "
                      "the output's units), ranked by mu*:\n";
            std::snprintf(line, sizeof line, "  %-4s %-40s %12s %12s %12s %9s\n", "rank", "axis",
                          "mu*", "mu", "sigma", "sigma/mu*");
            report << line;
            std::vector<std::string> items;
            for (std::size_t r = 0; r < indices.size(); ++r) {
                const auto& m = indices[r];
                std::snprintf(line, sizeof line, "  %-4zu %-40s %12s %12s %12s %9s\n", r + 1,
                              axes[m.axis].key.c_str(), show(m.mu_star).c_str(), show(m.mu).c_str(),
                              show(m.sigma).c_str(),
                              show(m.mu_star > 0 ? m.sigma / m.mu_star : NaN).c_str());
                report << line;
                csv_row(o, "morris", axes[m.axis].key, "mu_star", m.mu_star);
                csv_row(o, "morris", axes[m.axis].key, "mu", m.mu);
                csv_row(o, "morris", axes[m.axis].key, "sigma", m.sigma);
                csv_row(o, "morris", axes[m.axis].key, "effects", static_cast<double>(m.effects));
                items.push_back("{\"axis\": " + json_string(axes[m.axis].key) + ", \"rank\": " +
                                std::to_string(r + 1) + ", \"mu_star\": " + json_number(m.mu_star) +
                                ", \"mu\": " + json_number(m.mu) +
                                ", \"sigma\": " + json_number(m.sigma) +
                                ", \"effects\": " + std::to_string(m.effects) + "}");
            }
            j << ", \"morris\": {\"trajectories\": " << trajectories
              << ", \"delta\": " << json_number(delta) << ", \"indices\": " << json_array(items)
              << "}";
            if (!indices.empty() && std::isfinite(indices[0].mu_star)) {
                const auto& m = indices[0];
                report << "  " << axes[m.axis].key << " matters most: moving it across its range "
                       << "changes the output by " << show(m.mu_star) << " on average (mu*); "
                       << (m.mu_star > 0 && m.sigma / m.mu_star > 0.5
                               ? "sigma/mu* above 0.5: its effect depends on the other axes or "
                                 "is not linear"
                               : "sigma/mu* at most 0.5: its effect is close to linear and "
                                 "additive")
                       << ".\n";
            }
        }
        if (sobol) {
            const auto n = static_cast<std::size_t>(base_points);
            std::vector<double> ya(o.y.begin(), o.y.begin() + static_cast<std::ptrdiff_t>(n));
            std::vector<double> yb(o.y.begin() + static_cast<std::ptrdiff_t>(n),
                                   o.y.begin() + static_cast<std::ptrdiff_t>(2 * n));
            std::vector<std::vector<double>> yab;
            for (std::size_t i = 0; i < k; ++i)
                yab.emplace_back(o.y.begin() + static_cast<std::ptrdiff_t>((2 + i) * n),
                                 o.y.begin() + static_cast<std::ptrdiff_t>((3 + i) * n));
            for (std::size_t p = 0; p < o.y.size(); ++p)
                if (!std::isfinite(o.y[p]))
                    throw InputError("command line", "--output", o.expression,
                                     "not defined at point " + std::to_string(p) +
                                         ": Sobol' indices need a number at every point; "
                                         "choose another output");
            SobolResult s;
            try {
                s = sobol_indices(ya, yb, yab, bootstrap, seed);
            } catch (const std::invalid_argument& e) {
                throw InputError("command line", "--output", o.expression, e.what());
            }
            report << "Sobol' indices (N = " << base_points << ", " << bootstrap
                   << " bootstrap resamples; first order Saltelli 2010, total Jansen 1999; V(Y) = "
                   << show(s.variance) << "):\n";
            std::snprintf(line, sizeof line, "  %-40s %8s %19s %8s %19s\n", "axis", "S1",
                          "95 % interval", "ST", "95 % interval");
            report << line;
            std::vector<std::string> items;
            double sum_first = 0;
            for (const auto& x : s.indices) {
                sum_first += x.first;
                std::snprintf(line, sizeof line,
                              "  %-40s %8.3f [%7.3f, %7.3f] %8.3f [%7.3f, %7.3f]\n",
                              axes[x.axis].key.c_str(), x.first, x.first_lo, x.first_hi, x.total,
                              x.total_lo, x.total_hi);
                report << line;
                csv_row(o, "sobol", axes[x.axis].key, "first", x.first, x.first_lo, x.first_hi);
                csv_row(o, "sobol", axes[x.axis].key, "total", x.total, x.total_lo, x.total_hi);
                items.push_back("{\"axis\": " + json_string(axes[x.axis].key) +
                                ", \"first\": " + json_number(x.first) +
                                ", \"first_lo95\": " + json_number(x.first_lo) +
                                ", \"first_hi95\": " + json_number(x.first_hi) +
                                ", \"total\": " + json_number(x.total) +
                                ", \"total_lo95\": " + json_number(x.total_lo) +
                                ", \"total_hi95\": " + json_number(x.total_hi) + "}");
            }
            report << "  The first-order indices add up to " << show(sum_first)
                   << ": the rest of the variance comes from interactions";
            if (std::isfinite(noise.ratio))
                report << " and, about " << percent(noise.ratio) << " of it, Monte Carlo noise";
            report << ".\n";
            j << ", \"sobol\": {\"base_points\": " << base_points
              << ", \"bootstrap\": " << bootstrap << ", \"seed\": " << seed
              << ", \"variance\": " << json_number(s.variance)
              << ", \"indices\": " << json_array(items) << "}";
        }
        if (oat) {
            std::vector<double> low, high;
            for (std::size_t a = 0; a < k; ++a) {
                low.push_back(o.y[2 * a + 1]);
                high.push_back(o.y[2 * a + 2]);
            }
            const auto table = tornado_table(low, high);
            report << "Tornado (one at a time: base point " << show(o.y[0])
                   << ", each axis at its low and high end, the others at the middle of their "
                      "ranges), largest swing first:\n";
            std::snprintf(line, sizeof line, "  %-40s %14s %12s %14s %12s %12s\n", "axis",
                          "low value", "output", "high value", "output", "swing");
            report << line;
            csv_row(o, "tornado", "", "base", o.y[0]);
            std::vector<std::string> items;
            for (const auto& r : table) {
                std::snprintf(line, sizeof line, "  %-40s %14s %12s %14s %12s %12s\n",
                              axes[r.axis].key.c_str(), values[2 * r.axis + 1][r.axis].c_str(),
                              show(r.low).c_str(), values[2 * r.axis + 2][r.axis].c_str(),
                              show(r.high).c_str(), show(r.swing).c_str());
                report << line;
                csv_row(o, "tornado", axes[r.axis].key, "low", r.low);
                csv_row(o, "tornado", axes[r.axis].key, "high", r.high);
                csv_row(o, "tornado", axes[r.axis].key, "swing", r.swing);
                items.push_back("{\"axis\": " + json_string(axes[r.axis].key) +
                                ", \"low_value\": " + json_string(values[2 * r.axis + 1][r.axis]) +
                                ", \"low\": " + json_number(r.low) +
                                ", \"high_value\": " + json_string(values[2 * r.axis + 2][r.axis]) +
                                ", \"high\": " + json_number(r.high) +
                                ", \"swing\": " + json_number(r.swing) + "}");
            }
            j << ", \"tornado\": {\"base\": " << json_number(o.y[0])
              << ", \"rows\": " << json_array(items) << "}";
        }
        if (prim_threshold) {
            std::vector<std::vector<double>> x;
            std::vector<bool> cases;
            std::int64_t n_cases = 0;
            for (std::size_t p = 0; p < o.y.size(); ++p) {
                if (!std::isfinite(o.y[p])) continue;
                std::vector<double> row;
                for (std::size_t a = 0; a < k; ++a) row.push_back(coordinate(p, a));
                x.push_back(std::move(row));
                cases.push_back(below ? o.y[p] <= *prim_threshold : o.y[p] >= *prim_threshold);
                n_cases += cases.back() ? 1 : 0;
            }
            const std::string condition =
                std::string(below ? "at or below " : "at or above ") + show(*prim_threshold);
            j << ", \"prim\": {\"threshold\": " << json_number(*prim_threshold)
              << ", \"direction\": \"" << (below ? "below" : "above")
              << "\", \"alpha\": " << json_number(prim_options.alpha)
              << ", \"min_support\": " << json_number(prim_options.min_support)
              << ", \"min_coverage\": " << json_number(prim_options.min_coverage)
              << ", \"points\": " << x.size() << ", \"cases\": " << n_cases;
            report << "PRIM (Friedman and Fisher 1999; peel alpha " << show(prim_options.alpha)
                   << ", densest box with coverage >= " << show(prim_options.min_coverage)
                   << ", then pasting and pruning restrictions with quasi-p > "
                   << show(prim_options.max_qp) << "): " << n_cases << " of " << x.size()
                   << " points have the output " << condition << ".\n";
            if (x.empty() || n_cases == 0 || n_cases == static_cast<std::int64_t>(x.size())) {
                report << "  No box to find: " << (n_cases == 0 ? "no point" : "every point")
                       << " meets the condition.\n";
                j << ", \"box\": null}";
            } else {
                const PrimResult r = prim(x, cases, prim_options);
                const PrimBox& b = r.box;
                std::string box_text;
                std::vector<std::string> items;
                for (std::size_t a = 0; a < k; ++a) {
                    const bool lo = b.lo[a] > r.data_lo[a], hi = b.hi[a] < r.data_hi[a];
                    if (!lo && !hi) continue;
                    std::string part = axes[a].key;
                    if (lo && hi)
                        part += " is between " + label(a, b.lo[a]) + " and " + label(a, b.hi[a]);
                    else if (lo)
                        part += " is at least " + label(a, b.lo[a]);
                    else
                        part += " is at most " + label(a, b.hi[a]);
                    part += " (quasi-p " + show(b.qp[a]) + ")";
                    box_text += (box_text.empty() ? "" : " and ") + part;
                    csv_row(o, "prim", axes[a].key, "lower", b.lo[a]);
                    csv_row(o, "prim", axes[a].key, "upper", b.hi[a]);
                    csv_row(o, "prim", axes[a].key, "quasi_p", b.qp[a]);
                    items.push_back("{\"axis\": " + json_string(axes[a].key) + ", \"lower\": " +
                                    json_number(b.lo[a]) + ", \"upper\": " + json_number(b.hi[a]) +
                                    ", \"lower_label\": " + json_string(label(a, b.lo[a])) +
                                    ", \"upper_label\": " + json_string(label(a, b.hi[a])) +
                                    ", \"quasi_p\": " + json_number(b.qp[a]) + "}");
                }
                csv_row(o, "prim", "", "coverage", b.coverage);
                csv_row(o, "prim", "", "density", b.density);
                csv_row(o, "prim", "", "support", b.support);
                j << ", \"box\": {\"restrictions\": " << json_array(items)
                  << ", \"coverage\": " << json_number(b.coverage)
                  << ", \"density\": " << json_number(b.density)
                  << ", \"support\": " << json_number(b.support) << ", \"points\": " << b.points
                  << ", \"cases\": " << b.cases
                  << ", \"peeling_steps\": " << r.trajectory.size() - 1
                  << ", \"chosen_step\": " << r.chosen_step << "}}";
                if (box_text.empty())
                    report << "  No box is denser than the whole space: the condition holds at "
                           << percent(b.density) << " of the points, spread over every axis.\n";
                else
                    report << "  Where " << box_text << ", the output is " << condition << " at "
                           << percent(b.density) << " of the points (density; "
                           << percent(static_cast<double>(n_cases) / static_cast<double>(x.size()))
                           << " over all points), and the box holds " << percent(b.coverage)
                           << " of all the points where it is (coverage); the box holds "
                           << b.points << " of " << x.size() << " points (" << percent(b.support)
                           << "). Axes not named are not restricted.\n";
            }
        }
        j << "}";
        json_outputs.push_back(j.str());
    }

    // The files.
    const std::string target = vm.count("out") ? vm["out"].as<std::string>() : dir;
    if (target.empty())
        throw InputError("command line", "--out", "", "empty path: name an output directory");
    std::error_code ec;
    fs::create_directories(target, ec);
    if (ec || !fs::is_directory(target, ec))
        throw InputError("command line", "--out", target, "cannot create the directory");
    std::ostringstream doc;
    doc << "{\n  \"kind\": \"stopscan analyze\",\n  \"sweep_sha256\": "
        << json_string(info.sweep_sha256) << ",\n  \"design\": " << json_string(design_name)
        << ",\n  \"points\": " << n_points << ",\n  \"axes\": [";
    for (std::size_t a = 0; a < k; ++a) doc << (a ? ", " : "") << json_string(axes[a].key);
    doc << "],\n  \"outputs\": [\n    ";
    for (std::size_t i = 0; i < json_outputs.size(); ++i)
        doc << (i ? ",\n    " : "") << json_outputs[i];
    doc << "\n  ]\n}\n";
    write_file_atomically((fs::path(target) / "analysis.csv").string(), csv.str());
    write_file_atomically((fs::path(target) / "analysis.json").string(), doc.str());
    // A self-contained page: the printed text, escaped, no external resources.
    std::string escaped;
    for (const char c : report.str())
        escaped += c == '<'   ? std::string("&lt;")
                   : c == '>' ? std::string("&gt;")
                   : c == '&' ? std::string("&amp;")
                              : std::string(1, c);
    write_file_atomically((fs::path(target) / "analysis.html").string(),
                          "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                          "<title>stopscan analyze</title>\n<style>body{font-family:sans-serif;"
                          "margin:2em}pre{background:#f6f6f6;padding:1em;overflow:auto}</style>\n"
                          "</head>\n<body>\n<h1>stopscan analyze</h1>\n<p>Sensitivity analysis "
                          "of a sweep; methods in docs/sensitivity.md. The same numbers are in "
                          "analysis.csv and analysis.json.</p>\n<pre>" +
                              escaped + "</pre>\n</body>\n</html>\n");
    out << report.str() << "\nWritten: " << (fs::path(target) / "analysis.csv").string() << ", "
        << (fs::path(target) / "analysis.json").string() << ", "
        << (fs::path(target) / "analysis.html").string()
        << " (how to read them: docs/sensitivity.md)\n";
    return 0;
}

}  // namespace stopscan::detail
