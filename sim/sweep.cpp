#include "stopscan/sweep.hpp"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <mutex>
#include <numeric>
#include <set>
#include <sstream>

#include "stopscan/error.hpp"
#include "stopscan/expectation.hpp"
#include "stopscan/random.hpp"
#include "stopscan/summary.hpp"
#include "stopscan/writers.hpp"

namespace fs = std::filesystem;

namespace stopscan {

namespace {

const std::vector<std::string> SWEEP_KEYS{
    "sweep.scenario", "sweep.design",       "sweep.points", "sweep.trajectories",
    "sweep.levels",   "sweep.replications", "sweep.seed",   "sweep.policies",
    "sweep.baseline", "sweep.metrics",      "sweep.heatmap"};

constexpr std::int64_t MAX_REPLICATIONS = 1'000'000;
constexpr std::int64_t DEFAULT_TRAJECTORIES = 10;
constexpr std::int64_t DEFAULT_LEVELS = 4;

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
}

// The line number at the end of an origin "file:12" (0 when there is none).
int origin_line(const std::string& origin) {
    const auto colon = origin.find_last_of(':');
    if (colon == std::string::npos) return 0;
    int line = 0;
    const auto r = std::from_chars(origin.data() + colon + 1, origin.data() + origin.size(), line);
    return r.ec == std::errc() ? line : 0;
}

bool parse_double(const std::string& text, double& v) {
    const auto* end = text.data() + text.size();
    const auto r = std::from_chars(text.data(), end, v);
    return !text.empty() && r.ec == std::errc() && r.ptr == end && std::isfinite(v);
}

std::int64_t parse_count(const Setting& s, const std::string& key, std::int64_t lo,
                         std::int64_t hi) {
    std::int64_t v = 0;
    const auto* end = s.value.data() + s.value.size();
    const auto r = std::from_chars(s.value.data(), end, v);
    const std::string allowed =
        "must be a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    const bool too_big = r.ec == std::errc::result_out_of_range && r.ptr == end;
    if (!too_big && (s.value.empty() || r.ec != std::errc() || r.ptr != end))
        throw InputError(s.origin, key, s.value, "not a whole number: " + allowed);
    if (too_big || v < lo || v > hi)
        throw InputError(s.origin, key, s.value, "out of range: " + allowed);
    return v;
}

SweepAxis parse_axis(const std::string& key, const Setting& s) {
    SweepAxis axis;
    axis.key = key;
    axis.spec = s.value;
    axis.origin = s.origin;
    const std::string full = "axes." + key;
    const std::string forms =
        "write 'list A, B, C', 'linear LO HI [N] [integer]', 'log LO HI [N] [integer]' or a "
        "distribution such as uniform(0.1, 0.5)";
    std::istringstream words(s.value);
    std::string kind;
    words >> kind;
    if (kind == "list") {
        axis.kind = SweepAxis::list;
        axis.items = split_list(std::string_view(s.value).substr(4));
        if (axis.items.empty())
            throw InputError(s.origin, full, s.value, "empty list: give at least one value");
        std::set<std::string> seen;
        for (const auto& item : axis.items) {
            if (item.empty())
                throw InputError(s.origin, full, s.value,
                                 "empty list item: write values separated by single commas");
            if (!seen.insert(item).second)
                throw InputError(s.origin, full, s.value,
                                 "'" + item + "' is listed twice: list each value once");
        }
        return axis;
    }
    if (kind == "linear" || kind == "log") {
        axis.kind = kind == "linear" ? SweepAxis::linear : SweepAxis::log;
        std::vector<std::string> rest;
        for (std::string w; words >> w;) rest.push_back(w);
        if (!rest.empty() && rest.back() == "integer") {
            axis.integer = true;
            rest.pop_back();
        }
        const std::string shape = kind + " LO HI [N] [integer]";
        if (rest.size() < 2 || rest.size() > 3)
            throw InputError(s.origin, full, s.value, "write " + shape);
        if (!parse_double(rest[0], axis.lo) || !parse_double(rest[1], axis.hi))
            throw InputError(s.origin, full, s.value,
                             "LO and HI must be finite numbers: write " + shape);
        if (!(axis.lo < axis.hi)) throw InputError(s.origin, full, s.value, "LO must be below HI");
        if (axis.kind == SweepAxis::log && !(axis.lo > 0))
            throw InputError(s.origin, full, s.value, "a log range needs LO > 0");
        if (rest.size() == 3) {
            const Setting n{rest[2], s.origin};
            axis.count = parse_count(n, full + " N", 2, 100'000);
        }
        if (axis.integer && std::ceil(axis.lo) > std::floor(axis.hi))
            throw InputError(s.origin, full, s.value,
                             "no whole number between LO and HI: widen the range or drop "
                             "'integer'");
        return axis;
    }
    std::optional<ParameterDistribution> law;
    try {
        law = ParameterDistribution::parse(s.value);
    } catch (const std::invalid_argument& e) {
        throw InputError(s.origin, full, s.value, e.what());
    }
    if (!law) throw InputError(s.origin, full, s.value, "not an axis: " + forms);
    axis.kind = SweepAxis::distribution;
    axis.law = *law;
    return axis;
}

// An InputError from loading a point's scenario, retold from the sweep file's side: about
// an axis or a [set] key, it names that line of the sweep file; otherwise it names the
// point and keeps the scenario's message.
[[noreturn]] void retell(const InputError& e, const SweepSpec& spec, const SweepPoint* point) {
    auto problem_of = [&](const std::string& key, const std::string& value) {
        const std::string what = e.what();
        std::string prefix = e.source() + ": " + key + (value.empty() ? "" : " = " + value) + ": ";
        return what.rfind(prefix, 0) == 0 ? what.substr(prefix.size()) : what;
    };
    const std::string at = point ? "point " + std::to_string(point->id) + ": " : "";
    if (e.source() == "--set") {
        if (point)
            for (std::size_t a = 0; a < spec.axes.size(); ++a)
                if (spec.axes[a].key == e.key())
                    throw InputError(spec.axes[a].origin, "axes." + e.key(), point->values[a],
                                     at + problem_of(e.key(), point->values[a]));
        for (std::size_t f = 0; f < spec.fixed.size(); ++f)
            if (spec.fixed[f].first == e.key())
                throw InputError(spec.fixed_origins[f], "set." + e.key(), spec.fixed[f].second,
                                 at + problem_of(e.key(), spec.fixed[f].second));
    }
    if (!point) throw e;
    std::string values;
    for (std::size_t a = 0; a < spec.axes.size(); ++a)
        values += (a ? ", " : "") + spec.axes[a].key + " = " + point->values[a];
    throw InputError(spec.path,
                     "point " + std::to_string(point->id) + " (" + values + "): " + e.what());
}

// An axis value as an override's text: whole numbers in plain digits (a count such as
// stops.total must not read "1e+05"), others as the shortest decimal that reads back as the
// same double.
std::string axis_number(double v) {
    if (v == std::floor(v) && std::abs(v) < 1e15) {
        char buffer[32];
        const auto r = std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::fixed);
        return v == 0 ? "0" : std::string(buffer, r.ptr);
    }
    return format_value(v);
}

// A grid value rounded to 12 significant digits, so that "linear 0.01 0.03 3" gives 0.02,
// not 0.019999999999999997: the decimal the user would have typed.
double tidy(double v) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.12g", v);
    return std::strtod(buffer, nullptr);
}

}  // namespace

const char* design_name(SweepDesign design) {
    switch (design) {
        case SweepDesign::grid:
            return "grid";
        case SweepDesign::lhs:
            return "lhs";
        case SweepDesign::morris:
            return "morris";
        case SweepDesign::sobol:
            return "sobol";
        case SweepDesign::oat:
            return "oat";
    }
    return "grid";
}

std::string SweepSpec::origin(const std::string& key) const {
    for (const auto& [k, o] : origins)
        if (k == key) return o;
    return path;
}

std::string SweepAxis::value_at(double u) const {
    u = std::min(std::max(u, 0.0), 1.0);
    switch (kind) {
        case list: {
            const auto n = items.size();
            const auto i = std::min(n - 1, static_cast<std::size_t>(u * static_cast<double>(n)));
            return items[i];
        }
        case linear:
        case log: {
            double v = kind == linear ? lo * (1 - u) + hi * u : lo * std::pow(hi / lo, u);
            if (u == 0) v = lo;  // the ends exactly, whatever the rounding of pow
            if (u == 1) v = hi;
            if (integer) v = std::min(std::max(std::round(v), std::ceil(lo)), std::floor(hi));
            return axis_number(v);
        }
        case distribution:
            // quantile() takes u in [0, 1): the top end is the largest double below 1.
            return axis_number(
                law->quantile(std::min(u, 1 - 0x1.0p-53), law->support_lo(), law->support_hi()));
    }
    return {};
}

std::vector<std::string> SweepAxis::grid_values() const {
    if (kind == list) return items;
    std::vector<std::string> out;
    const auto n = static_cast<double>(count - 1);
    for (std::int64_t i = 0; i < count; ++i) {
        const auto k = static_cast<double>(i);
        double x = kind == linear ? tidy((lo * (n - k) + hi * k) / n)
                                  : tidy(lo * std::pow(hi / lo, k / n));
        if (i == 0) x = lo;
        if (i == count - 1) x = hi;
        if (integer) x = std::min(std::max(std::round(x), std::ceil(lo)), std::floor(hi));
        const std::string v = axis_number(x);
        // 'integer' may round two neighbours to one number: keep each value once.
        if (out.empty() || out.back() != v) out.push_back(v);
    }
    return out;
}

SweepSpec read_sweep_file(const std::string& path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw InputError(path, "cannot read the sweep file: no such file");
    if (fs::is_directory(path, ec))
        throw InputError(path, "is a directory: give a sweep .ini file");
    const auto size = fs::file_size(path, ec);
    if (!ec && size > 16u * 1024 * 1024)
        throw InputError(
            path, "file is " + std::to_string(size) + " bytes: a sweep file may be at most 16 MiB");
    std::ifstream file(path, std::ios::binary);
    if (!file) throw InputError(path, "cannot read the sweep file: permission denied");
    std::ostringstream content;
    content << file.rdbuf();
    return parse_sweep(content.str(), path);
}

SweepSpec parse_sweep(std::string_view text, const std::string& path) {
    SweepSpec spec;
    spec.path = path;
    spec.text = std::string(text);
    const Settings file = Settings::parse_ini(text, path);
    const std::string source = path.empty() ? "sweep" : path;

    // Sections and keys first: a typo must not surface as a missing value.
    for (const auto& [key, s] : file.all()) {
        if (s.origin.rfind(source, 0) != 0 ||
            (s.origin.size() > source.size() && s.origin[source.size()] != ':'))
            throw InputError(s.origin, key, s.value,
                             "a sweep file cannot include other files: write its keys in it");
        const auto dot = key.find('.');
        const std::string section = dot == std::string::npos ? "" : key.substr(0, dot);
        if (section == "axes" || section == "set") {
            if (key.size() == section.size() + 1)
                throw InputError(s.origin, key, s.value, "empty key: write section.key = value");
            continue;
        }
        if (section == "sweep") {
            if (std::find(SWEEP_KEYS.begin(), SWEEP_KEYS.end(), key) != SWEEP_KEYS.end()) continue;
            const auto suggestion = nearest(key, SWEEP_KEYS);
            throw InputError(
                s.origin, key, s.value,
                "unknown key" + (suggestion ? "; did you mean '" + *suggestion + "'?"
                                            : std::string("; allowed in [sweep]: ") + [] {
                                                  std::string all;
                                                  for (const auto& k : SWEEP_KEYS)
                                                      all +=
                                                          (all.empty() ? "" : ", ") + k.substr(6);
                                                  return all;
                                              }()));
        }
        const auto suggestion = nearest(section, {"sweep", "set", "axes"});
        throw InputError(s.origin, key, s.value,
                         "unknown section [" + section + "]" +
                             (suggestion ? "; did you mean [" + *suggestion + "]?" : "") +
                             ": a sweep file has [sweep], [set] and [axes] (docs/sweeps.md)");
    }
    for (const auto& [key, s] : file.all())
        if (key.rfind("sweep.", 0) == 0) spec.origins.emplace_back(key, s.origin);

    // The base scenario, relative to the sweep file.
    if (const auto* s = file.find("sweep.scenario")) {
        if (s->value.empty())
            throw InputError(s->origin, "sweep.scenario", "",
                             "empty: name the base scenario file, or remove the key for the "
                             "embedded default scenario");
        const fs::path p(s->value);
        spec.scenario_path = p.is_absolute() || path.empty()
                                 ? s->value
                                 : (fs::path(path).parent_path() / p).lexically_normal().string();
        spec.scenario_origin = s->origin;
        std::error_code ec;
        if (!fs::exists(spec.scenario_path, ec))
            throw InputError(s->origin, "sweep.scenario", s->value,
                             "no such file (looked for " + spec.scenario_path +
                                 "): the path is relative to the sweep file");
        spec.base = Settings::read_ini_file(spec.scenario_path);
    } else {
        spec.base = Settings::parse_ini(default_scenario_text(), "");
    }

    // Fixed overrides, then the axes in the order of the file.
    for (const auto& [key, s] : file.all()) {
        if (key.rfind("set.", 0) != 0) continue;
        const std::string target = key.substr(4);
        if (target.rfind("run.", 0) == 0)
            throw InputError(s.origin, key, s.value,
                             "run.* keys are set by [sweep] (seed, replications, policies, "
                             "baseline): write them there");
        spec.fixed.emplace_back(target, s.value);
        spec.fixed_origins.push_back(s.origin);
        spec.base.apply_override(target + "=" + s.value);
    }
    std::vector<std::pair<int, SweepAxis>> axes;
    for (const auto& [key, s] : file.all()) {
        if (key.rfind("axes.", 0) != 0) continue;
        const std::string target = key.substr(5);
        if (target.rfind("run.", 0) == 0)
            throw InputError(s.origin, key, s.value,
                             "run.* keys cannot be swept: the seed, replications and policies "
                             "are the same at every point (common random numbers; "
                             "docs/sweeps.md)");
        if (file.find("set." + target))
            throw InputError(s.origin, key, s.value,
                             "also given in [set] (" + file.find("set." + target)->origin +
                                 "): a key is either fixed or swept");
        axes.emplace_back(origin_line(s.origin), parse_axis(target, s));
    }
    std::stable_sort(axes.begin(), axes.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [line, axis] : axes) spec.axes.push_back(std::move(axis));
    if (spec.axes.empty())
        throw InputError(source,
                         "no [axes]: give at least one axis, e.g. "
                         "database.IABS.false_flag = linear 0.001 0.05 5");
    const auto k = static_cast<std::int64_t>(spec.axes.size());
    if (k > 64) throw InputError(source, "more than 64 axes: at most 64 are supported");

    // The base scenario with the fixed overrides, validated once: its [run] section gives the
    // defaults of seed, replications and policies.
    std::shared_ptr<const Scenario> base;
    try {
        base = std::make_shared<const Scenario>(load_scenario(spec.base));
    } catch (const InputError& e) {
        retell(e, spec, nullptr);
    }

    const std::string design =
        file.find("sweep.design") ? file.find("sweep.design")->value : "grid";
    const std::string design_origin = spec.origin("sweep.design");
    if (design == "grid")
        spec.design = SweepDesign::grid;
    else if (design == "lhs")
        spec.design = SweepDesign::lhs;
    else if (design == "morris")
        spec.design = SweepDesign::morris;
    else if (design == "sobol")
        spec.design = SweepDesign::sobol;
    else if (design == "oat")
        spec.design = SweepDesign::oat;
    else
        throw InputError(design_origin, "sweep.design", design,
                         "not one of: grid, lhs, morris, sobol, oat");

    const Setting* points = file.find("sweep.points");
    const Setting* trajectories = file.find("sweep.trajectories");
    const Setting* levels = file.find("sweep.levels");
    if (spec.design != SweepDesign::morris)
        for (const auto& [s, key] : std::initializer_list<std::pair<const Setting*, const char*>>{
                 {trajectories, "sweep.trajectories"}, {levels, "sweep.levels"}})
            if (s)
                throw InputError(
                    s->origin, key, s->value,
                    std::string("only used with design = morris (design is ") + design + ")");
    switch (spec.design) {
        case SweepDesign::grid: {
            if (points)
                throw InputError(points->origin, "sweep.points", points->value,
                                 "not used by design = grid: its points are every combination "
                                 "of the axes' values; remove the key");
            std::int64_t total = 1;
            for (const auto& axis : spec.axes) {
                if (axis.kind == SweepAxis::distribution)
                    throw InputError(axis.origin, "axes." + axis.key, axis.spec,
                                     "a distribution needs a sampling design (lhs, morris, "
                                     "sobol): for a grid write 'list ...', 'linear LO HI N' or "
                                     "'log LO HI N'");
                if (axis.kind != SweepAxis::list && axis.count == 0)
                    throw InputError(
                        axis.origin, "axes." + axis.key, axis.spec,
                        "a grid needs the number of values: write " +
                            std::string(axis.kind == SweepAxis::linear ? "linear" : "log") +
                            " LO HI N");
                total *= static_cast<std::int64_t>(axis.grid_values().size());
                if (total > MAX_SWEEP_POINTS)
                    throw InputError(source, "the grid has more than " +
                                                 std::to_string(MAX_SWEEP_POINTS) +
                                                 " points: use fewer values per axis");
            }
            break;
        }
        case SweepDesign::lhs:
        case SweepDesign::sobol: {
            if (!points)
                throw InputError(source, "sweep.points", "",
                                 spec.design == SweepDesign::lhs
                                     ? "missing: design = lhs needs the number of points"
                                     : "missing: design = sobol needs the number of base points "
                                       "N (the sweep runs N x (axes + 2) points)");
            spec.samples = parse_count(*points, "sweep.points", 2, MAX_SWEEP_POINTS);
            if (spec.design == SweepDesign::sobol) {
                if (2 * spec.axes.size() > SOBOL_MAX_DIMENSIONS)
                    throw InputError(source, "design = sobol supports at most " +
                                                 std::to_string(SOBOL_MAX_DIMENSIONS / 2) +
                                                 " axes (direction numbers for " +
                                                 std::to_string(SOBOL_MAX_DIMENSIONS) +
                                                 " dimensions): use fewer axes, or lhs");
                if (spec.samples * (k + 2) > MAX_SWEEP_POINTS)
                    throw InputError(
                        points->origin, "sweep.points", points->value,
                        "N x (axes + 2) exceeds " + std::to_string(MAX_SWEEP_POINTS) + " points");
            }
            break;
        }
        case SweepDesign::morris: {
            if (points)
                throw InputError(points->origin, "sweep.points", points->value,
                                 "not used by design = morris: it runs trajectories x (axes + "
                                 "1) points; set trajectories instead");
            spec.trajectories = trajectories
                                    ? parse_count(*trajectories, "sweep.trajectories", 2, 100'000)
                                    : DEFAULT_TRAJECTORIES;
            spec.levels = levels ? parse_count(*levels, "sweep.levels", 2, 1000) : DEFAULT_LEVELS;
            if (spec.levels % 2 != 0)
                throw InputError(levels->origin, "sweep.levels", levels->value,
                                 "must be even (Morris's step of p / (2 (p - 1)) then moves "
                                 "every level to another level with equal probability)");
            if (spec.trajectories * (k + 1) > MAX_SWEEP_POINTS)
                throw InputError(source, "trajectories x (axes + 1) exceeds " +
                                             std::to_string(MAX_SWEEP_POINTS) + " points");
            for (const auto& axis : spec.axes)
                if (axis.kind == SweepAxis::distribution &&
                    !(std::isfinite(axis.law->support_lo()) &&
                      std::isfinite(axis.law->support_hi())))
                    throw InputError(axis.origin, "axes." + axis.key, axis.spec,
                                     "Morris levels include both ends of the range, and this "
                                     "law has none: use a bounded law or a linear range");
            break;
        }
        case SweepDesign::oat: {
            if (points)
                throw InputError(points->origin, "sweep.points", points->value,
                                 "not used by design = oat: it runs 2 x axes + 1 points");
            for (const auto& axis : spec.axes)
                if (axis.kind == SweepAxis::distribution &&
                    !(std::isfinite(axis.law->support_lo()) &&
                      std::isfinite(axis.law->support_hi())))
                    throw InputError(axis.origin, "axes." + axis.key, axis.spec,
                                     "design = oat sets each axis to both ends of its range, "
                                     "and this law has none: use a bounded law or a linear "
                                     "range");
            break;
        }
    }

    // Run settings, the same at every point.
    const Setting* replications = file.find("sweep.replications");
    spec.replications = replications
                            ? parse_count(*replications, "sweep.replications", 1, MAX_REPLICATIONS)
                            : base->run.replications;
    const Setting* seed = file.find("sweep.seed");
    spec.seed = seed ? static_cast<std::uint64_t>(parse_count(
                           *seed, "sweep.seed", 0, std::numeric_limits<std::int64_t>::max()))
                     : base->run.seed;
    std::vector<std::string> known;
    for (const auto& p : base->policies) known.push_back(p.name);
    if (const auto* s = file.find("sweep.policies")) {
        spec.policies = split_list(s->value);
        if (spec.policies.empty())
            throw InputError(s->origin, "sweep.policies", s->value,
                             "empty list: name at least one policy");
        std::set<std::string> seen;
        for (const auto& p : spec.policies) {
            if (std::find(known.begin(), known.end(), p) == known.end())
                throw InputError(s->origin, "sweep.policies", s->value,
                                 "unknown policy '" + p + "': allowed: " + join(known));
            if (!seen.insert(p).second)
                throw InputError(s->origin, "sweep.policies", s->value,
                                 "'" + p + "' is listed twice: list each policy once");
        }
    } else {
        spec.policies = base->run.policies;
    }
    if (const auto* s = file.find("sweep.baseline")) {
        spec.baseline = s->value;
        if (std::find(spec.policies.begin(), spec.policies.end(), spec.baseline) ==
            spec.policies.end())
            throw InputError(
                s->origin, "sweep.baseline", s->value,
                "the baseline must be one of the sweep's policies: " + join(spec.policies));
    } else {
        spec.baseline = std::find(spec.policies.begin(), spec.policies.end(), base->run.baseline) !=
                                spec.policies.end()
                            ? base->run.baseline
                            : spec.policies.front();
    }
    if (const auto* s = file.find("sweep.metrics")) {
        spec.metrics = split_list(s->value);
        if (spec.metrics.empty())
            throw InputError(s->origin, "sweep.metrics", s->value,
                             "empty list: name the summary.csv metrics to keep, or remove the "
                             "key to keep them all");
    }
    if (const auto* s = file.find("sweep.heatmap")) {
        spec.heatmap_metric = s->value;
        if (!spec.metrics.empty() &&
            std::find(spec.metrics.begin(), spec.metrics.end(), s->value) == spec.metrics.end())
            throw InputError(s->origin, "sweep.heatmap", s->value,
                             "not among the kept metrics: allowed: " + join(spec.metrics));
    } else {
        spec.heatmap_metric =
            spec.metrics.empty() || std::find(spec.metrics.begin(), spec.metrics.end(),
                                              "exposure_per_100k") != spec.metrics.end()
                ? "exposure_per_100k"
                : spec.metrics.front();
    }
    return spec;
}

// ---------------------------------------------------------------------------------------
// Designs

namespace {

// Joe and Kuo's direction numbers, file new-joe-kuo-6.21201 (S. Joe, F. Y. Kuo,
// "Constructing Sobol sequences with better two-dimensional projections", SIAM J. Sci.
// Comput. 30 (2008) 2635-2654; https://web.maths.unsw.edu.au/~fkuo/sobol/), dimensions 2 to
// 40: the degree s of the primitive polynomial, its coefficients a, and m_1 .. m_s.
struct JoeKuo {
    unsigned s;
    unsigned a;
    unsigned m[8];
};
constexpr JoeKuo JOE_KUO[SOBOL_MAX_DIMENSIONS - 1] = {
    {1, 0, {1}},
    {2, 1, {1, 3}},
    {3, 1, {1, 3, 1}},
    {3, 2, {1, 1, 1}},
    {4, 1, {1, 1, 3, 3}},
    {4, 4, {1, 3, 5, 13}},
    {5, 2, {1, 1, 5, 5, 17}},
    {5, 4, {1, 1, 5, 5, 5}},
    {5, 7, {1, 1, 7, 11, 19}},
    {5, 11, {1, 1, 5, 1, 1}},
    {5, 13, {1, 1, 1, 3, 11}},
    {5, 14, {1, 3, 5, 5, 31}},
    {6, 1, {1, 3, 3, 9, 7, 49}},
    {6, 13, {1, 1, 1, 15, 21, 21}},
    {6, 16, {1, 3, 1, 13, 27, 49}},
    {6, 19, {1, 1, 1, 15, 7, 5}},
    {6, 22, {1, 3, 1, 15, 13, 25}},
    {6, 25, {1, 1, 5, 5, 19, 61}},
    {7, 1, {1, 3, 7, 11, 23, 15, 103}},
    {7, 4, {1, 3, 7, 13, 13, 15, 69}},
    {7, 7, {1, 1, 3, 13, 7, 35, 63}},
    {7, 8, {1, 3, 5, 9, 1, 25, 53}},
    {7, 14, {1, 3, 1, 13, 9, 35, 107}},
    {7, 19, {1, 3, 1, 5, 27, 61, 31}},
    {7, 21, {1, 1, 5, 11, 19, 41, 61}},
    {7, 28, {1, 3, 5, 3, 3, 13, 69}},
    {7, 31, {1, 1, 7, 13, 1, 19, 1}},
    {7, 32, {1, 3, 7, 5, 13, 19, 59}},
    {7, 37, {1, 1, 3, 9, 25, 29, 41}},
    {7, 41, {1, 3, 5, 13, 23, 1, 55}},
    {7, 42, {1, 3, 7, 3, 13, 59, 17}},
    {7, 50, {1, 3, 1, 3, 5, 53, 69}},
    {7, 55, {1, 1, 5, 5, 23, 33, 13}},
    {7, 56, {1, 1, 7, 7, 1, 61, 123}},
    {7, 59, {1, 1, 7, 9, 13, 61, 49}},
    {7, 62, {1, 3, 3, 5, 3, 55, 33}},
    {8, 14, {1, 3, 1, 15, 31, 13, 49, 245}},
    {8, 21, {1, 3, 5, 15, 31, 59, 63, 97}},
    {8, 22, {1, 3, 1, 11, 11, 11, 77, 249}},
};

constexpr unsigned BITS = 32;

// Direction numbers v[d][j] (j = 0 .. 31), scaled to 32 bits, by Joe and Kuo's recurrence.
std::vector<std::array<std::uint32_t, BITS>> direction_numbers(std::size_t dims) {
    std::vector<std::array<std::uint32_t, BITS>> v(dims);
    for (unsigned j = 0; j < BITS; ++j) v[0][j] = 1u << (BITS - 1 - j);  // van der Corput
    for (std::size_t d = 1; d < dims; ++d) {
        const JoeKuo& p = JOE_KUO[d - 1];
        for (unsigned j = 0; j < BITS; ++j) {
            if (j < p.s) {
                v[d][j] = p.m[j] << (BITS - 1 - j);
            } else {
                std::uint32_t x = v[d][j - p.s] ^ (v[d][j - p.s] >> p.s);
                for (unsigned k = 1; k < p.s; ++k)
                    if ((p.a >> (p.s - 1 - k)) & 1u) x ^= v[d][j - k];
                v[d][j] = x;
            }
        }
    }
    return v;
}

// Uniform draws of the design: keyed by (seed, what, index), like every draw of the engine.
struct DesignRandom {
    ReplicationKey key;
    explicit DesignRandom(std::uint64_t seed) : key(seed, 0xD1E5'16ULL) {}
    double u(std::uint64_t entity, std::uint32_t sub, std::uint64_t index) const {
        return key.uniforms(entity, Purpose::Design, sub, index)[0];
    }
    std::uint64_t bits(std::uint64_t entity, std::uint32_t sub, std::uint64_t index) const {
        return key.bits(entity, Purpose::Design, sub, index)[0];
    }
    // A uniformly random permutation of 0 .. n-1 (Fisher-Yates), keyed by (entity, sub).
    std::vector<std::size_t> permutation(std::size_t n, std::uint64_t entity,
                                         std::uint32_t sub) const {
        std::vector<std::size_t> p(n);
        std::iota(p.begin(), p.end(), std::size_t{0});
        for (std::size_t i = n; i > 1; --i) {
            const auto j = static_cast<std::size_t>(bits(entity, sub, i) % i);
            std::swap(p[i - 1], p[j]);
        }
        return p;
    }
};

// Entities of the design's draws.
enum : std::uint64_t {
    LHS_STRATA = 1,
    LHS_JITTER = 2,
    SOBOL_SHIFT = 3,
    MORRIS_ORDER = 4,
    MORRIS_START = 5
};

std::string json_numbers(const std::vector<std::int64_t>& v) {
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
    return out + "]";
}

}  // namespace

std::vector<std::uint32_t> sobol_point(std::uint64_t index, std::size_t dims) {
    if (dims > SOBOL_MAX_DIMENSIONS) throw InternalError("Sobol' sequence: too many dimensions");
    static const auto v = direction_numbers(SOBOL_MAX_DIMENSIONS);
    const std::uint64_t gray = index ^ (index >> 1);
    std::vector<std::uint32_t> x(dims, 0);
    for (unsigned j = 0; j < BITS; ++j)
        if ((gray >> j) & 1u)
            for (std::size_t d = 0; d < dims; ++d) x[d] ^= v[d][j];
    return x;
}

SweepPoints make_sweep_points(const SweepSpec& spec) {
    SweepPoints out;
    const std::size_t k = spec.axes.size();
    const DesignRandom random(spec.seed);
    auto add = [&](std::vector<std::string> values, std::string block) {
        out.points.push_back(
            {static_cast<std::int64_t>(out.points.size()), std::move(values), std::move(block)});
    };
    std::ostringstream json;
    switch (spec.design) {
        case SweepDesign::grid: {
            // Row-major: the first axis varies slowest, the last fastest.
            std::vector<std::vector<std::string>> values;
            std::vector<std::int64_t> counts;
            for (const auto& axis : spec.axes) {
                values.push_back(axis.grid_values());
                counts.push_back(static_cast<std::int64_t>(values.back().size()));
            }
            std::vector<std::size_t> at(k, 0);
            for (bool done = false; !done;) {
                std::vector<std::string> point;
                for (std::size_t a = 0; a < k; ++a) point.push_back(values[a][at[a]]);
                add(std::move(point), "");
                done = true;
                for (std::size_t a = k; a-- > 0;) {
                    if (++at[a] < values[a].size()) {
                        done = false;
                        break;
                    }
                    at[a] = 0;
                }
            }
            json << "{\"name\": \"grid\", \"levels\": " << json_numbers(counts)
                 << ", \"order\": \"row-major: the first axis varies slowest\"}";
            break;
        }
        case SweepDesign::lhs: {
            // McKay, Beckman and Conover (1979): each axis's range cut into n strata of equal
            // probability, one point per stratum, strata paired at random across axes.
            const auto n = static_cast<std::size_t>(spec.samples);
            std::vector<std::vector<std::size_t>> strata;
            for (std::size_t a = 0; a < k; ++a)
                strata.push_back(random.permutation(n, LHS_STRATA, static_cast<std::uint32_t>(a)));
            for (std::size_t i = 0; i < n; ++i) {
                std::vector<std::string> point;
                for (std::size_t a = 0; a < k; ++a) {
                    const double u = (static_cast<double>(strata[a][i]) +
                                      random.u(LHS_JITTER, static_cast<std::uint32_t>(a), i)) /
                                     static_cast<double>(n);
                    point.push_back(spec.axes[a].value_at(u));
                }
                add(std::move(point), "");
            }
            json << "{\"name\": \"lhs\", \"points\": " << n << "}";
            break;
        }
        case SweepDesign::morris: {
            // Morris (1991), "Factorial sampling plans for preliminary computational
            // experiments", Technometrics 33(2): r trajectories of k + 1 points on a grid of p
            // levels {0, 1/(p-1), ..., 1}; each step moves one factor, in a random order, by
            // delta = p / (2 (p - 1)) up or down.
            const auto r = spec.trajectories;
            const auto p = spec.levels;
            const std::int64_t step = p / 2;  // delta in level units
            json << "{\"name\": \"morris\", \"trajectories\": " << r << ", \"levels\": " << p
                 << ", \"delta\": " << format_value(static_cast<double>(p) / (2.0 * (p - 1)))
                 << ", \"points_per_trajectory\": " << k + 1
                 << ", \"order\": \"trajectory t holds points t*(axes+1) .. t*(axes+1)+axes; "
                    "step s changes axis changed[t][s-1]\", \"changed\": [";
            for (std::int64_t t = 0; t < r; ++t) {
                const auto tt = static_cast<std::uint64_t>(t);
                const auto order =
                    random.permutation(k, MORRIS_ORDER, static_cast<std::uint32_t>(tt));
                std::vector<std::int64_t> level(k);
                std::vector<std::int64_t> direction(k);
                for (std::size_t a = 0; a < k; ++a) {
                    const auto b = random.bits(MORRIS_START, static_cast<std::uint32_t>(tt), a);
                    direction[a] = (b & 1u) ? 1 : -1;
                    // Start so that the move stays on the grid: 0 .. p-1-step going up,
                    // step .. p-1 going down (p - step choices either way).
                    const auto start =
                        static_cast<std::int64_t>((b >> 1) % static_cast<std::uint64_t>(p - step));
                    level[a] = direction[a] > 0 ? start : start + step;
                }
                auto values = [&] {
                    std::vector<std::string> point;
                    for (std::size_t a = 0; a < k; ++a)
                        point.push_back(spec.axes[a].value_at(static_cast<double>(level[a]) /
                                                              static_cast<double>(p - 1)));
                    return point;
                };
                add(values(), std::to_string(t) + ".0");
                std::vector<std::int64_t> changed;
                for (std::size_t s = 0; s < k; ++s) {
                    const auto a = order[s];
                    level[a] += direction[a] * step;
                    changed.push_back(static_cast<std::int64_t>(a));
                    add(values(), std::to_string(t) + "." + std::to_string(s + 1));
                }
                json << (t ? ", " : "") << json_numbers(changed);
            }
            json << "]}";
            break;
        }
        case SweepDesign::sobol: {
            // Saltelli (2002), "Making best use of model evaluations to compute sensitivity
            // indices", and Saltelli et al. (2010): a 2k-dimensional Sobol' sequence gives
            // matrices A (first k coordinates) and B (last k); AB_i is A with column i from B.
            // The sequence is randomised by a digital shift (XOR with random bits per
            // dimension, keyed by the seed), which keeps its net structure and moves point 0
            // off the corner.
            const auto n = static_cast<std::uint64_t>(spec.samples);
            const std::size_t dims = 2 * k;
            std::vector<std::uint32_t> shift(dims);
            for (std::size_t d = 0; d < dims; ++d)
                shift[d] = static_cast<std::uint32_t>(
                    random.bits(SOBOL_SHIFT, static_cast<std::uint32_t>(d), 0) >> 32);
            std::vector<std::vector<double>> u(n, std::vector<double>(dims));
            for (std::uint64_t i = 0; i < n; ++i) {
                const auto x = sobol_point(i, dims);
                for (std::size_t d = 0; d < dims; ++d)
                    u[i][d] = (static_cast<double>(x[d] ^ shift[d]) + 0.5) * 0x1.0p-32;
            }
            auto block = [&](const std::string& name, auto column) {
                for (std::uint64_t i = 0; i < n; ++i) {
                    std::vector<std::string> point;
                    for (std::size_t a = 0; a < k; ++a)
                        point.push_back(spec.axes[a].value_at(u[i][column(a)]));
                    add(std::move(point), name);
                }
            };
            block("A", [](std::size_t a) { return a; });
            block("B", [k](std::size_t a) { return k + a; });
            json << "{\"name\": \"sobol\", \"scheme\": \"saltelli\", \"base_points\": " << n
                 << ", \"blocks\": [\"A\", \"B\"";
            for (std::size_t i = 0; i < k; ++i) {
                block("AB_" + std::to_string(i + 1),
                      [i, k](std::size_t a) { return a == i ? k + a : a; });
                json << ", \"AB_" << i + 1 << "\"";
            }
            json << "], \"order\": \"block-major: block b holds points b*N .. b*N+N-1; AB_i is "
                    "A with axis i (1-based) from B\", \"sequence\": \"Sobol' (Joe-Kuo "
                    "new-joe-kuo-6.21201), digital shift from the seed\"}";
            break;
        }
        case SweepDesign::oat: {
            // One at a time, for a tornado table: the base point at the middle of every
            // axis's unit range (the median of a law, the geometric mean of a log range),
            // then per axis its low end and its high end, the others at the base.
            std::vector<std::string> base;
            for (const auto& axis : spec.axes) base.push_back(axis.value_at(0.5));
            add(base, "base");
            for (std::size_t a = 0; a < k; ++a) {
                for (const double u : {0.0, 1.0}) {
                    auto point = base;
                    point[a] = spec.axes[a].value_at(u);
                    add(std::move(point), (u == 0 ? "lo_" : "hi_") + std::to_string(a + 1));
                }
            }
            json << "{\"name\": \"oat\", \"base\": 0, \"order\": \"point 0 is the base (every "
                    "axis at u = 0.5); points 2i-1 and 2i set axis i (1-based) to u = 0 and u = "
                    "1\"}";
            break;
        }
    }
    out.design_json = json.str();
    return out;
}

std::shared_ptr<const Scenario> point_scenario(const SweepSpec& spec, const SweepPoint& point) {
    Settings settings = spec.base;
    for (std::size_t a = 0; a < spec.axes.size(); ++a)
        settings.apply_override(spec.axes[a].key + "=" + point.values[a]);
    try {
        return std::make_shared<const Scenario>(load_scenario(settings));
    } catch (const InputError& e) {
        retell(e, spec, &point);
    }
}

RunPlan point_plan(const SweepSpec& spec, const SweepPoint& point) {
    RunOptions options;
    options.seed = spec.seed;
    options.replications = spec.replications;
    options.policies = spec.policies;
    options.baseline = spec.baseline;
    auto scenario = point_scenario(spec, point);
    try {
        return make_run_plan(std::move(scenario), options);
    } catch (const InputError& e) {
        throw InputError(spec.origin("sweep.policies"), "sweep.policies", join(spec.policies),
                         "point " + std::to_string(point.id) + ": " + e.what());
    }
}

void validate_sweep_points(const SweepSpec& spec, const SweepPoints& points) {
    // Every point, in parallel; the error reported is the lowest-numbered point's, so the
    // message does not depend on the thread count.
    std::mutex mutex;
    std::optional<std::pair<std::int64_t, InputError>> first;
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, points.points.size()),
                      [&](const tbb::blocked_range<std::size_t>& r) {
                          for (std::size_t i = r.begin(); i < r.end(); ++i) {
                              try {
                                  (void)point_plan(spec, points.points[i]);
                              } catch (const InputError& e) {
                                  const std::lock_guard lock(mutex);
                                  if (!first || first->first > points.points[i].id)
                                      first.emplace(points.points[i].id, e);
                              }
                          }
                      });
    if (first) throw first->second;

    // The kept metrics must be metrics of summary.csv: the closed form of one replication
    // lists them. The names do not depend on the parameter draws, and with uncertain
    // parameters the closed form of the whole plan is the mean over every replication's
    // draws: replications x its cost (an hour for 10^5 replications).
    RunPlan plan = point_plan(spec, points.points.front());
    plan.replications = 1;
    const Summary expected = summarize_expected(expected_counts(plan));
    std::vector<std::string> names;
    for (const auto& row : expected.rows)
        if (std::find(names.begin(), names.end(), row.metric) == names.end())
            names.push_back(row.metric);
    auto check = [&](const std::string& key, const std::string& value, const std::string& metric) {
        if (std::find(names.begin(), names.end(), metric) != names.end()) return;
        const auto suggestion = nearest(metric, names);
        throw InputError(spec.origin(key), key, value,
                         "'" + metric + "' is not a metric of summary.csv" +
                             (suggestion ? "; did you mean '" + *suggestion + "'?"
                                         : std::string(" (docs/output.md)")));
    };
    std::string metrics_text;
    for (const auto& m : spec.metrics) metrics_text += (metrics_text.empty() ? "" : ", ") + m;
    for (const auto& m : spec.metrics) check("sweep.metrics", metrics_text, m);
    check("sweep.heatmap", spec.heatmap_metric, spec.heatmap_metric);
}

}  // namespace stopscan
