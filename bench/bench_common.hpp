// What every bench shares: its command line (--quick, --json FILE, --out DIR), the machine
// and build it ran on, medians of repeats with their spread, interleaved timing rounds, and
// the JSON file of figures (name, value, unit per figure; machine, build type, commit).
//
// A bench answers one question (STYLE.md, "Benchmarks"): it prints a human table and writes
// bench-NAME.json (in the working directory, or in --out DIR, or at --json FILE). Ratios
// are measured within one run, from rounds that run every variant once each, so that a
// change in machine load (other jobs on the 2 cores) hits all variants alike. No bench
// passes or fails on a time: targets are printed next to the figures, never asserted.
#pragma once

#include <oneapi/tbb/info.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "stopscan/build_info.hpp"
#include "stopscan/scenario.hpp"
#include "stopscan/writers.hpp"

namespace stopscan::bench {

/// The command line every bench accepts.
struct Args {
    bool quick = false;     ///< the CI size: all benches together well under 90 s on 2 cores
    std::string json_path;  ///< where the figures go
    /// Bench-specific options given: flag → value ("" for a switch).
    std::vector<std::pair<std::string, std::string>> extra;

    /// The value of a bench-specific option, if given.
    std::optional<std::string> get(const std::string& flag) const {
        for (const auto& [f, v] : extra)
            if (f == flag) return v;
        return std::nullopt;
    }
};

/// A bench-specific option: `--flag` (a switch) or `--flag VALUE`.
struct ExtraOption {
    std::string flag;
    bool takes_value;
    std::string help;
};

/// Parses `--quick`, `--json FILE`, `--out DIR`, `--help` and the bench's own options; any
/// other argument is an error (exit 2).
inline Args parse_args(int argc, char** argv, const char* bench, const char* question,
                       const std::vector<ExtraOption>& extra = {}) {
    Args args;
    std::string out_dir;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "bench_%s: error: %s needs a value\n", bench, a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        const auto own = std::find_if(extra.begin(), extra.end(),
                                      [&](const ExtraOption& e) { return e.flag == a; });
        if (a == "--quick") {
            args.quick = true;
        } else if (a == "--json") {
            args.json_path = value();
        } else if (a == "--out") {
            out_dir = value();
        } else if (a == "--help" || a == "-h") {
            std::printf(
                "bench_%s: %s\n\nusage: bench_%s [--quick] [--json FILE | --out DIR]\n"
                "  --quick      CI size (fewer repeats, smaller runs)\n"
                "  --json FILE  write the figures to FILE (default: bench-%s.json)\n"
                "  --out DIR    write bench-%s.json into DIR\n",
                bench, question, bench, bench, bench);
            for (const auto& e : extra)
                std::printf("  %s%s  %s\n", e.flag.c_str(), e.takes_value ? " VALUE" : "",
                            e.help.c_str());
            std::exit(0);
        } else if (own != extra.end()) {
            args.extra.emplace_back(a, own->takes_value ? value() : std::string());
        } else {
            std::fprintf(stderr, "bench_%s: error: unknown argument '%s' (see --help)\n", bench,
                         a.c_str());
            std::exit(2);
        }
    }
    if (args.json_path.empty())
        args.json_path =
            (out_dir.empty() ? std::string() : out_dir + "/") + "bench-" + bench + ".json";
    return args;
}

/// The CPU's model name from /proc/cpuinfo.
inline std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
    return "unknown CPU";
}

/// Threads oneTBB uses by default (the cores this process may run on).
inline int cores() {
    return tbb::info::default_concurrency();
}

/// 1-minute load average, to judge how noisy the figures are (other jobs on the cores).
inline double load_average() {
    std::ifstream in("/proc/loadavg");
    double load = -1;
    in >> load;
    return load;
}

/// The default scenario with `stops` stops in the period and the same law of repeat stops.
/// The default solves its dispersion from a target of stops per person seen, a target that
/// more stops in the same population make unreachable (below the Poisson value); so the
/// solved dispersion is fixed instead: more stops, same negative binomial shape per person.
inline Scenario scaled_default_scenario(std::int64_t stops) {
    const std::string text(default_scenario_text());
    const double dispersion = load_scenario(Settings::parse_ini(text, "")).dispersion;
    std::string scaled;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("target_stops_per_person", 0) != 0) scaled += line + "\n";
    auto settings = Settings::parse_ini(scaled, "");
    char value[64];
    std::snprintf(value, sizeof value, "%.17g", dispersion);
    settings.apply_override(std::string("stops.dispersion=") + value);
    settings.apply_override("stops.total=" + std::to_string(stops));
    return load_scenario(settings);
}

/// Median of repeats and their spread.
struct Stat {
    double median = 0;
    double min = 0;
    double max = 0;
    int repeats = 0;
};

inline Stat stat_of(std::vector<double> v) {
    if (v.empty()) return {};
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    const double median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    return {median, v.front(), v.back(), static_cast<int>(n)};
}

/// Seconds taken by f().
template <typename F>
double seconds_of(F&& f) {
    const auto start = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// CPU seconds used by this process so far (all its threads).
inline double process_cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

/// Runs every variant once per round, `rounds` times; returns each variant's wall seconds,
/// and, in `cpu` if given, its CPU seconds (all threads): on a machine shared with other
/// jobs, CPU time per unit of work is the steadier per-core figure.
inline std::vector<std::vector<double>> time_rounds(
    int rounds, const std::vector<std::function<void()>>& variants,
    std::vector<std::vector<double>>* cpu = nullptr) {
    std::vector<std::vector<double>> seconds(variants.size());
    if (cpu) cpu->assign(variants.size(), {});
    for (int round = 0; round < rounds; ++round)
        for (std::size_t v = 0; v < variants.size(); ++v) {
            const double cpu0 = process_cpu_seconds();
            seconds[v].push_back(seconds_of(variants[v]));
            if (cpu) (*cpu)[v].push_back(process_cpu_seconds() - cpu0);
        }
    return seconds;
}

/// Per-round ratios a[i] / b[i] (both from the same round), for a ratio's median and spread.
inline std::vector<double> ratios(const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> r;
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) r.push_back(a[i] / b[i]);
    return r;
}

/// One reported figure. `target` states the target in words ("" if none).
struct Figure {
    std::string name;
    double value = 0;
    std::string unit;
    std::optional<Stat> spread;  ///< min and max over repeats, when the figure is a median
    std::string target;
};

/// The figures of one bench run and where they are written.
class Report {
public:
    Report(std::string bench, bool quick) : bench_(std::move(bench)), quick_(quick) {}

    void add(std::string name, double value, std::string unit, std::string target = "") {
        figures_.push_back(
            {std::move(name), value, std::move(unit), std::nullopt, std::move(target)});
    }
    /// A median with its spread; `scale` converts the stat's unit (e.g. seconds to ns).
    void add(std::string name, const Stat& s, std::string unit, std::string target = "",
             double scale = 1) {
        Stat scaled{s.median * scale, s.min * scale, s.max * scale, s.repeats};
        if (scale < 0) std::swap(scaled.min, scaled.max);
        figures_.push_back(
            {std::move(name), scaled.median, std::move(unit), scaled, std::move(target)});
    }
    void note(std::string key, std::string value) {
        notes_.emplace_back(std::move(key), std::move(value));
    }

    /// The machine and build line every bench prints under its title.
    void print_header(const char* title) const {
        std::printf("bench/%s (%s): %s\n", bench_.c_str(), quick_ ? "quick" : "full", title);
        std::printf("machine: %s, %d cores, load %.2f; build %s; commit %s\n", cpu_model().c_str(),
                    cores(), load_average(), STOPSCAN_BUILD_TYPE, STOPSCAN_GIT_COMMIT);
    }

    /// Prints every figure as a table row: name, median [min, max] unit, target.
    void print_figures() const {
        std::printf("  %-40s %14s  %-24s %s\n", "figure", "value", "[min, max] unit", "target");
        for (const auto& f : figures_) {
            std::string range;
            if (f.spread && f.spread->repeats > 1)
                range =
                    "[" + short_number(f.spread->min) + ", " + short_number(f.spread->max) + "] ";
            std::printf("  %-40s %14s  %-24s %s\n", f.name.c_str(), short_number(f.value).c_str(),
                        (range + f.unit).c_str(), f.target.c_str());
        }
    }

    /// Writes the JSON file; prints where. Returns false (after a message) if it cannot.
    bool write_json(const std::string& path) const {
        std::ostringstream j;
        j.precision(10);
        j << "{\n  \"bench\": " << json_string(bench_)
          << ",\n  \"quick\": " << (quick_ ? "true" : "false")
          << ",\n  \"machine\": {\"cpu\": " << json_string(cpu_model())
          << ", \"cores\": " << cores()
          << ", \"hardware_threads\": " << std::thread::hardware_concurrency()
          << ", \"load_average_1min\": " << load_average()
          << "},\n  \"build_type\": " << json_string(STOPSCAN_BUILD_TYPE)
          << ",\n  \"commit\": " << json_string(STOPSCAN_GIT_COMMIT)
          << ",\n  \"version\": " << json_string(STOPSCAN_VERSION) << ",\n  \"notes\": {";
        for (std::size_t i = 0; i < notes_.size(); ++i)
            j << (i ? ", " : "") << json_string(notes_[i].first) << ": "
              << json_string(notes_[i].second);
        j << "},\n  \"figures\": [";
        for (std::size_t i = 0; i < figures_.size(); ++i) {
            const Figure& f = figures_[i];
            j << (i ? ",\n" : "\n") << "    {\"name\": " << json_string(f.name)
              << ", \"value\": " << number(f.value) << ", \"unit\": " << json_string(f.unit);
            if (f.spread)
                j << ", \"min\": " << number(f.spread->min)
                  << ", \"max\": " << number(f.spread->max)
                  << ", \"repeats\": " << f.spread->repeats;
            if (!f.target.empty()) j << ", \"target\": " << json_string(f.target);
            j << "}";
        }
        j << "\n  ]\n}\n";
        try {
            write_file_atomically(path, j.str());
        } catch (const std::exception& e) {
            std::fprintf(stderr, "bench_%s: cannot write %s: %s\n", bench_.c_str(), path.c_str(),
                         e.what());
            return false;
        }
        std::printf("written: %s\n", path.c_str());
        return true;
    }

private:
    static std::string number(double v) {
        if (!std::isfinite(v)) return "null";
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.10g", v);
        return buf;
    }
    static std::string short_number(double v) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.4g", v);
        return buf;
    }
    std::string bench_;
    bool quick_;
    std::vector<Figure> figures_;
    std::vector<std::pair<std::string, std::string>> notes_;
};

}  // namespace stopscan::bench
