// bench/memory: how much memory does one replication take as the stops grow? Target (issue
// 7): a 10-million-stop replication of the default scenario in <= 256 MB peak RSS. The
// stops are scaled with bench::scaled_default_scenario (same population, same dispersion).
//
// MODEL.md §3: memory must not grow with the population, and the engine materialises no
// person (a replication holds per-cell offsets and per-task tallies). Each measurement runs
// in a fresh child process (this executable with --child), so that earlier allocations and
// the allocator's retained pages cannot pollute the figure; the child reports its own peak
// resident set (getrusage ru_maxrss and /proc/self/status VmHWM). A baseline child loads the
// scenario and builds the engine without running it, which shows what the libraries and
// the model cost before any stop.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "stopscan/engine.hpp"

using namespace stopscan;

namespace {

long vm_hwm_kb() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

// The child: one replication of the default scenario with `stops` stops (0: engine only).
int child(std::int64_t stops, int threads) {
    const auto scenario = std::make_shared<const Scenario>(
        stops > 0 ? bench::scaled_default_scenario(stops)
                  : load_scenario(Settings::parse_ini(default_scenario_text(), "")));
    RunOptions options;
    options.replications = 1;
    options.threads = threads;
    const Engine engine(make_run_plan(scenario, options));
    std::uint64_t simulated = 0;
    double seconds = 0;
    if (stops > 0) seconds = bench::seconds_of([&] { simulated = engine.run().total_stops(); });
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::printf("stops %llu seconds %.6f maxrss_kb %ld vmhwm_kb %ld\n",
                static_cast<unsigned long long>(simulated), seconds, usage.ru_maxrss, vm_hwm_kb());
    return 0;
}

struct ChildResult {
    bool ok = false;
    unsigned long long stops = 0;
    double seconds = 0;
    long maxrss_kb = 0;
    long vmhwm_kb = 0;
};

ChildResult spawn(std::int64_t stops, int threads) {
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ChildResult r;
    if (n <= 0) return r;
    self[n] = 0;
    const std::string command = "exec '" + std::string(self) + "' --child " +
                                std::to_string(stops) + " --threads " + std::to_string(threads);
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) return r;
    r.ok = std::fscanf(pipe, "stops %llu seconds %lf maxrss_kb %ld vmhwm_kb %ld", &r.stops,
                       &r.seconds, &r.maxrss_kb, &r.vmhwm_kb) == 4;
    r.ok = pclose(pipe) == 0 && r.ok;
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    const bench::Args args = bench::parse_args(
        argc, argv, "memory", "peak RSS of one replication of the default scenario vs its stops",
        {{"--child", true, "internal: run one replication with this many stops and report"},
         {"--threads", true, "threads of each replication (default: all cores)"}});
    const int threads = args.get("--threads") ? std::stoi(*args.get("--threads")) : bench::cores();
    if (const auto stops = args.get("--child")) return child(std::stoll(*stops), threads);

    // Stops per replication: the default scenario's 72,000, then 1M, 10M (the target) and,
    // in the full run, 100M, to show that the peak does not grow with the stops.
    std::vector<std::int64_t> sizes = {0, 72'000, 1'000'000, 10'000'000};
    if (!args.quick) sizes.push_back(100'000'000);
    const int repeats = args.quick ? 1 : 3;

    bench::Report report("memory", args.quick);
    report.note("scenario", "default (compiled in), stops.total overridden, 1 replication, " +
                                std::to_string(threads) + " threads, 4 policies");
    report.note("measure", "peak RSS (ru_maxrss) of a fresh child process per measurement");
    report.print_header("peak RSS of one replication vs stops (fresh process each)");
    std::printf("  %12s %12s %10s %12s %12s\n", "stops.total", "stops run", "seconds",
                "peak RSS MB", "VmHWM MB");
    bool all_ok = true;
    for (const auto stops : sizes) {
        std::vector<double> rss, hwm, secs;
        ChildResult last;
        for (int i = 0; i < repeats; ++i) {
            last = spawn(stops, threads);
            if (!last.ok) {
                std::fprintf(stderr, "bench_memory: child for %lld stops failed\n",
                             static_cast<long long>(stops));
                all_ok = false;
                break;
            }
            rss.push_back(static_cast<double>(last.maxrss_kb) / 1024.0);
            hwm.push_back(static_cast<double>(last.vmhwm_kb) / 1024.0);
            secs.push_back(last.seconds);
        }
        if (rss.empty()) continue;
        const bench::Stat s = bench::stat_of(rss);
        std::printf("  %12lld %12llu %10.3f %12.1f %12.1f\n", static_cast<long long>(stops),
                    last.stops, bench::stat_of(secs).median, s.median, bench::stat_of(hwm).median);
        const std::string name =
            stops == 0 ? std::string("engine_only") : std::to_string(stops) + "_stops";
        report.add("peak_rss_mb_" + name, s, "MB",
                   stops == 10'000'000 ? "<= 256 MB" : std::string());
    }
    report.print_figures();
    return report.write_json(args.json_path) && all_ok ? 0 : 1;
}
