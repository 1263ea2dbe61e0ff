// bench/numpy_reference: is the C++ engine at least 5× faster per core than a vectorised
// NumPy implementation of the same model (issue 7)? And does that NumPy implementation give
// the expected values of `stopscan explain`?
//
// bench/reference/stopscan_numpy.py simulates the default scenario as whole-array
// operations: persistent persons drawn per cell, repeat stops from the zero-truncated
// negative binomial, persistent records per database, lazy 1:N searches (false matches and
// record errors), all four policies under common random numbers, per-cell tallies. It reads
// the scenario's resolved per-cell parameters from a JSON file this bench writes (--export),
// so both implementations simulate the same numbers; the closed form's expected counts go
// into the same file for the script's `check` mode.
//
// Both run on one core: this process pins itself to one CPU (sched_setaffinity) before the
// engine runs with --threads 1 and before it starts the script, which inherits the pinning.
// Each round times the engine and then the script (which times its own replications, after
// its start-up and table building, as the engine's timing excludes its construction); the
// ratio is per round. If python3-numpy is missing, the bench prints "skipped: python3-numpy
// not installed" and exits 0.
#include <sched.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "stopscan/distributions.hpp"
#include "stopscan/engine.hpp"
#include "stopscan/error.hpp"
#include "stopscan/expectation.hpp"
#include "stopscan/match_model.hpp"
#include "stopscan/normal_tail.hpp"

using namespace stopscan;

#ifndef STOPSCAN_BENCH_DIR
#define STOPSCAN_BENCH_DIR "bench"
#endif

namespace {

std::string num(double v) {
    if (std::isinf(v)) return v > 0 ? "\"inf\"" : "\"-inf\"";
    if (std::isnan(v)) return "null";
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

template <typename F>
std::string array(std::size_t n, F&& f) {
    std::string s = "[";
    for (std::size_t i = 0; i < n; ++i) s += (i ? "," : "") + f(i);
    return s + "]";
}

// Per-cell parameters of the plan's scenario, resolved as the engine resolves them, plus the
// closed form's expected counts. Throws InputError for what the script does not model
// (face searches with human review, several modalities, uncertain parameters, a stop cap).
std::string export_parameters(const RunPlan& plan) {
    const Scenario& s = *plan.scenario;
    if (!s.uncertain.empty() || plan.max_stops_per_person > 0 || s.modality_share[0] != 1.0)
        throw InputError("numpy reference", "scenario", s.name,
                         "the NumPy reference models fingerprint-only scenarios without "
                         "uncertain parameters or a stop cap (the default scenario)");
    const CellTable cells(s.dimensions, s.population);
    const std::size_t C = cells.size();
    const Engine engine(plan);
    const MetricLayout& layout = engine.layout();
    std::ostringstream j;
    j << "{\n\"scenario\": " << json_string(s.name) << ",\n\"cells\": " << C;
    j << ",\n\"dimensions\": " << array(s.dimensions.size(), [&](std::size_t d) {
        return json_string(s.dimensions[d].name);
    });
    j << ",\n\"cell_categories\": " << array(C, [&](std::size_t c) {
        return array(s.dimensions.size(),
                     [&](std::size_t d) { return std::to_string(cells.category(c, d)); });
    });
    j << ",\n\"categories\": " << array(s.dimensions.size(), [&](std::size_t d) {
        return array(s.dimensions[d].categories.size(),
                     [&](std::size_t k) { return json_string(s.dimensions[d].categories[k]); });
    });
    j << ",\n\"population\": "
      << array(C, [&](std::size_t c) { return std::to_string(cells.population(c)); });
    // Mean stops per person (MODEL.md §3): total × propensity / Σ population × propensity.
    double mass = 0;
    for (std::size_t c = 0; c < C; ++c)
        mass += static_cast<double>(cells.population(c)) * cells.value(s.propensity, c);
    std::vector<double> mu(C), p_stopped(C, 0.0);
    for (std::size_t c = 0; c < C; ++c) {
        mu[c] = static_cast<double>(s.stops_total) * cells.value(s.propensity, c) / mass;
        if (mu[c] > 0 && cells.population(c) > 0)
            p_stopped[c] = TruncatedStopCount(mu[c], s.dispersion).p_stopped();
    }
    j << ",\n\"mean_stops\": " << array(C, [&](std::size_t c) { return num(mu[c]); });
    j << ",\n\"dispersion\": " << num(s.dispersion);
    j << ",\n\"p_stopped\": " << array(C, [&](std::size_t c) { return num(p_stopped[c]); });
    j << ",\n\"databases\": [";
    for (std::size_t d = 0; d < s.databases.size(); ++d) {
        const Database& db = s.databases[d];
        auto param = [&](const CellParameter& p) {
            return array(C, [&](std::size_t c) { return num(cells.value(p, c)); });
        };
        j << (d ? ",\n" : "\n") << "{\"name\": " << json_string(db.name)
          << ", \"immigration\": " << (db.role == DatabaseRole::immigration ? "true" : "false")
          << ",\n \"enrolment\": " << param(db.enrolment) << ",\n \"truth\": " << param(db.truth)
          << ",\n \"truth_unenrolled\": " << param(db.truth_unenrolled)
          << ",\n \"false_flag\": " << param(db.false_flag)
          << ",\n \"missing_flag\": " << param(db.missing_flag)
          << ",\n \"wrong_link\": " << param(db.wrong_link)
          << ",\n \"gallery_flag\": " << param(db.gallery_flag_rate)
          << ",\n \"arrest\": " << param(db.arrest) << ",\n \"referral\": " << param(db.ho_referral)
          << ",\n \"detention\": " << param(db.detention);
        if (db.matchers[0]) {
            const MatchModel m(s, cells, 0, d);
            if (m.matcher().human_review)
                throw InputError("numpy reference", "matcher", db.name,
                                 "human review is not modelled by the NumPy reference");
            // Impostor scores of probe cell c against gallery cell g are N(delta, 1) with
            // Q(tau − delta) = fmr(c, g); the genuine score is N(mu_c, sigma).
            j << ",\n \"tau\": " << num(m.threshold())
              << ", \"sigma\": " << num(m.matcher().genuine_sd)
              << ",\n \"records\": " << array(C, [&](std::size_t g) { return num(m.records()[g]); })
              << ",\n \"fnmr\": " << array(C, [&](std::size_t c) { return num(m.fnmr(c)); })
              << ",\n \"fpir\": " << array(C, [&](std::size_t c) { return num(m.fpir(c)); })
              << ",\n \"genuine_mean\": "
              << array(C, [&](std::size_t c) { return num(m.genuine_score(c, 0.5)); })
              << ",\n \"delta\": " << array(C, [&](std::size_t c) {
                     return array(C, [&](std::size_t g) {
                         const double f = m.fmr(c, g);
                         return num(f > 0 ? m.threshold() - upper_tail_quantile(f) : -HUGE_VAL);
                     });
                 });
        }
        j << "}";
    }
    j << "],\n\"policies\": [";
    for (std::size_t p = 0; p < plan.policies.size(); ++p) {
        const Policy& policy = s.policies[plan.policies[p]];
        auto rules = [&](std::size_t c) -> const std::vector<DatabaseRule>& {
            return policy.rules_for_category(policy.varies_by ? cells.category(c, *policy.varies_by)
                                                              : 0);
        };
        auto per_cell = [&](auto field) {
            return array(C, [&](std::size_t c) {
                return array(s.databases.size(), [&](std::size_t d) { return field(rules(c)[d]); });
            });
        };
        j << (p ? ",\n" : "\n") << "{\"name\": " << json_string(policy.name)
          << ",\n \"access\": " << per_cell([](const DatabaseRule& r) {
                 return json_string(r.access == Access::street    ? "street"
                                    : r.access == Access::custody ? "custody"
                                                                  : "none");
             })
          << ",\n \"display\": " << per_cell([](const DatabaseRule& r) {
                 return json_string(r.display == Display::full        ? "full"
                                    : r.display == Display::flag_only ? "flag-only"
                                                                      : "none");
             })
          << ",\n \"verify\": " << per_cell([](const DatabaseRule& r) { return num(r.verify); })
          << "}";
    }
    j << "],\n\"metrics\": "
      << array(layout.size(), [&](std::size_t k) { return json_string(layout.name(k)); });
    const Expectation e = expected_counts(plan);
    j << ",\n\"expected\": " << array(plan.policies.size(), [&](std::size_t p) {
        return array(C, [&](std::size_t c) {
            return array(layout.size(), [&](std::size_t k) { return num(e.row(p, c)[k]); });
        });
    });
    j << "\n}\n";
    return j.str();
}

// The Python interpreter that has NumPy: $STOPSCAN_PYTHON, Debian's /usr/bin/python3 (where
// apt-get puts python3-numpy), or the first python3 on PATH.
std::string find_python() {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("STOPSCAN_PYTHON")) candidates.push_back(env);
    candidates.push_back("/usr/bin/python3");
    candidates.push_back("python3");
    for (const auto& python : candidates) {
        const std::string probe = "'" + python + "' -c 'import numpy' >/dev/null 2>&1";
        if (std::system(probe.c_str()) == 0) return python;
    }
    return "";
}

// Runs a command; returns its standard output and whether it exited 0.
std::pair<std::string, bool> capture(const std::string& command) {
    std::string out;
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) return {out, false};
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    return {out, pclose(pipe) == 0};
}

// Pins this process (and the children it starts) to one CPU: the first it may run on.
int pin_to_one_cpu() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &set)) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            return sched_setaffinity(0, sizeof one, &one) == 0 ? cpu : -1;
        }
    return -1;
}

}  // namespace

int main(int argc, char** argv) {
    const bench::Args args = bench::parse_args(
        argc, argv, "numpy_reference",
        "C++ engine vs a vectorised NumPy implementation of the same model, per core",
        {{"--export", true, "only write the parameter file for the script to this path"},
         {"--script", true, "path of stopscan_numpy.py (default: the source tree's)"},
         {"--no-check", false, "skip the script's check against the closed form"}});
    const auto scenario = std::make_shared<const Scenario>(
        load_scenario(Settings::parse_ini(default_scenario_text(), "")));
    const std::int64_t replications = args.quick ? 10 : 50;
    const int rounds = args.quick ? 3 : 5;
    const std::int64_t check_replications = args.quick ? 60 : 400;
    RunOptions options;
    options.replications = replications;
    options.threads = 1;
    const RunPlan plan = make_run_plan(scenario, options);
    if (const auto path = args.get("--export")) {
        write_file_atomically(*path, export_parameters(plan));
        std::printf("written: %s\n", path->c_str());
        return 0;
    }

    bench::Report report("numpy_reference", args.quick);
    report.print_header("C++ engine vs vectorised NumPy, default scenario, one core");
    const std::string python = find_python();
    if (python.empty()) {
        std::printf("skipped: python3-numpy not installed\n");
        report.note("skipped", "python3-numpy not installed");
        return report.write_json(args.json_path) ? 0 : 1;
    }
    const std::string script =
        args.get("--script")
            .value_or(std::string(STOPSCAN_BENCH_DIR) + "/reference/stopscan_numpy.py");
    char tmpl[] = "/tmp/stopscan-numpy-XXXXXX";
    if (!mkdtemp(tmpl)) {
        std::perror("bench_numpy_reference: mkdtemp");
        return 1;
    }
    const std::string params = std::string(tmpl) + "/params.json";
    write_file_atomically(params, export_parameters(plan));
    const int cpu = pin_to_one_cpu();
    const std::string version =
        capture("'" + python + "' -c 'import numpy; print(numpy.__version__)'").first;
    report.note("numpy", version.substr(0, version.find('\n')));
    report.note("python", python);
    report.note("pinned_cpu", std::to_string(cpu));
    report.note("replications_per_round", std::to_string(replications));
    std::printf("python %s, NumPy %s; pinned to CPU %d; %lld replications per round, %d rounds\n",
                python.c_str(), version.substr(0, version.find('\n')).c_str(), cpu,
                static_cast<long long>(replications), rounds);

    // Single-threaded BLAS and no NumPy threads: one core for both.
    const std::string env = "OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 ";
    const Engine engine(plan);
    engine.run();  // warm-up
    std::vector<double> cpp_ns, numpy_ns, ratio;
    bool ok = true;
    for (int round = 0; round < rounds && ok; ++round) {
        std::uint64_t stops = 0;
        const double s = bench::seconds_of([&] { stops = engine.run().total_stops(); });
        cpp_ns.push_back(s * 1e9 / static_cast<double>(stops));
        const auto [out, exited] =
            capture(env + "'" + python + "' '" + script + "' time --params '" + params +
                    "' --replications " + std::to_string(replications) + " --seed " +
                    std::to_string(1000 + round));
        double numpy_seconds = 0, numpy_stops = 0;
        ok = exited &&
             std::sscanf(out.c_str(), "seconds %lf stops %lf", &numpy_seconds, &numpy_stops) == 2;
        if (!ok) {
            std::fprintf(stderr, "bench_numpy_reference: the script failed:\n%s\n", out.c_str());
            break;
        }
        numpy_ns.push_back(numpy_seconds * 1e9 / numpy_stops);
        ratio.push_back(numpy_ns.back() / cpp_ns.back());
    }
    if (ok) {
        report.add("cpp_ns_per_stop_1_core", bench::stat_of(cpp_ns), "ns");
        report.add("numpy_ns_per_stop_1_core", bench::stat_of(numpy_ns), "ns");
        report.add("cpp_over_numpy_per_core", bench::stat_of(ratio), "ratio", ">= 5");
    }
    if (ok && !args.get("--no-check")) {
        // The script's check: its means over many replications against the closed form.
        std::printf("check: NumPy means of %lld replications vs explain ...\n",
                    static_cast<long long>(check_replications));
        const auto [out, passed] =
            capture(env + "'" + python + "' '" + script + "' check --params '" + params +
                    "' --replications " + std::to_string(check_replications) + " 2>&1");
        std::printf("%s", out.c_str());
        report.add("numpy_means_agree_with_explain", passed ? 1 : 0, "bool", "1");
        ok = passed;
    }
    std::remove(params.c_str());
    rmdir(tmpl);
    report.print_figures();
    return report.write_json(args.json_path) && ok ? 0 : 1;
}
