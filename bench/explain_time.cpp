// bench/explain_time: how long does the closed form (`stopscan explain`, MODEL.md §10) take
// on every shipped scenario? Target (issue 7): <= 50 ms each.
//
// Times the library calls behind the command, expected_counts() then summarize_expected(),
// on each scenarios/*.ini with its own [run] policies (the figure `stopscan explain` prints
// as "expected values computed in ... ms"); loading and validating the file is timed apart.
// Median of repeats with spread, all threads (and 1 thread in the full run). No pass/fail.
#include <oneapi/tbb/global_control.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "stopscan/expectation.hpp"
#include "stopscan/summary.hpp"

using namespace stopscan;
namespace fs = std::filesystem;

#ifndef STOPSCAN_SCENARIO_DIR
#define STOPSCAN_SCENARIO_DIR "scenarios"
#endif

int main(int argc, char** argv) {
    const bench::Args args = bench::parse_args(
        argc, argv, "explain_time", "time of the closed form (explain) on every shipped scenario",
        {{"--scenarios", true, "directory of *.ini scenarios (default: the source tree's)"}});
    const std::string dir = args.get("--scenarios").value_or(STOPSCAN_SCENARIO_DIR);
    const int repeats = args.quick ? 3 : 15;

    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec))
        if (entry.path().extension() == ".ini") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    if (files.empty()) {
        std::fprintf(stderr, "bench_explain_time: no *.ini in %s\n", dir.c_str());
        return 2;
    }

    bench::Report report("explain_time", args.quick);
    report.note("scenarios", dir);
    report.print_header("closed form (explain) on every shipped scenario");
    std::printf("  %-24s %10s %12s %12s %12s   %s\n", "scenario", "load ms", "explain ms",
                "[min, max]", "1 thread ms", "target <= 50 ms");
    double worst = 0;
    for (const auto& file : files) {
        std::vector<double> load, all, one;
        std::shared_ptr<const Scenario> scenario;
        for (int i = 0; i < repeats; ++i)
            load.push_back(bench::seconds_of([&] {
                scenario = std::make_shared<const Scenario>(
                    load_scenario(Settings::read_ini_file(file.string())));
            }));
        const RunPlan plan = make_run_plan(scenario, RunOptions{});
        double sink = 0;
        auto explain = [&] {
            const Summary summary = summarize_expected(expected_counts(plan));
            sink += static_cast<double>(summary.rows.size());
        };
        for (int i = 0; i < repeats; ++i) all.push_back(bench::seconds_of(explain));
        if (!args.quick) {
            const tbb::global_control one_thread(tbb::global_control::max_allowed_parallelism, 1);
            for (int i = 0; i < repeats; ++i) one.push_back(bench::seconds_of(explain));
        }
        const std::string name = file.stem().string();
        const bench::Stat a = bench::stat_of(all);
        worst = std::max(worst, a.median);
        char one_ms[32] = "-";
        if (!one.empty())
            std::snprintf(one_ms, sizeof one_ms, "%.2f", bench::stat_of(one).median * 1e3);
        std::printf("  %-24s %10.2f %12.2f [%5.2f, %5.2f] %12s   %s\n", name.c_str(),
                    bench::stat_of(load).median * 1e3, a.median * 1e3, a.min * 1e3, a.max * 1e3,
                    one_ms, a.median <= 0.050 ? "met" : "MISSED");
        report.add("explain_ms_" + name, a, "ms", "<= 50 ms", 1e3);
        if (!one.empty())
            report.add("explain_ms_1_thread_" + name, bench::stat_of(one), "ms", "", 1e3);
        report.add("load_ms_" + name, bench::stat_of(load), "ms", "", 1e3);
        if (sink < 0) std::printf("?\n");
    }
    report.add("explain_ms_worst", worst * 1e3, "ms", "<= 50 ms");
    report.print_figures();
    return report.write_json(args.json_path) ? 0 : 1;
}
