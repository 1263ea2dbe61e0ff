// bench/engine_throughput: how many stops per second does the engine simulate on the default
// scenario with all four policies under common random numbers, what does each extra policy
// cost, how does it scale from 1 thread to all cores (with identical results), and does the
// time grow in proportion to the stops?
//
// Variants, one run of each per round (interleaved, so machine load hits all alike):
//   all        4 policies, all threads          → stops/s, ns/stop/core (target ≥ 60 M/s)
//   1 thread   4 policies, 1 thread             → thread scaling all / 1 (target ≥ 1.85×)
//   1..3 pol.  the first 1, 2, 3 policies, 1 thread → marginal ns/stop of each extra policy
//   ×10 stops  stops.total × 10, 1 thread       → time ratio (target 10 ± 10%)
// The tallies of the 1-thread and all-thread runs are compared bit for bit.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "stopscan/engine.hpp"

using namespace stopscan;

namespace {

std::unique_ptr<Engine> make_engine(const std::shared_ptr<const Scenario>& scenario,
                                    std::int64_t replications, int threads,
                                    std::vector<std::string> policies) {
    RunOptions options;
    options.replications = replications;
    options.threads = threads;
    options.policies = std::move(policies);
    return std::make_unique<Engine>(make_run_plan(scenario, options));
}

}  // namespace

int main(int argc, char** argv) {
    const bench::Args args = bench::parse_args(
        argc, argv, "engine_throughput",
        "stops/s of the default scenario, 4 policies; cost per policy; thread scaling; "
        "time vs stops");
    const std::int64_t replications = args.quick ? 20 : 100;
    const int rounds = args.quick ? 3 : 7;
    const int cores = bench::cores();

    const auto scenario = std::make_shared<const Scenario>(
        load_scenario(Settings::parse_ini(default_scenario_text(), "")));
    // Both sides of the ×10 comparison at the default's solved dispersion (bench_common.hpp).
    const auto scenario1 =
        std::make_shared<const Scenario>(bench::scaled_default_scenario(scenario->stops_total));
    const auto scenario10 = std::make_shared<const Scenario>(
        bench::scaled_default_scenario(scenario->stops_total * 10));
    const std::vector<std::string> all_policies = scenario->run.policies;
    auto first = [&](std::size_t n) {
        return std::vector<std::string>(all_policies.begin(),
                                        all_policies.begin() + static_cast<std::ptrdiff_t>(n));
    };

    const auto engine_all = make_engine(scenario, replications, cores, all_policies);
    const auto engine_one = make_engine(scenario, replications, 1, all_policies);
    std::vector<std::unique_ptr<Engine>> engine_policies;  // 1, 2, 3 policies, 1 thread
    for (std::size_t n = 1; n < all_policies.size(); ++n)
        engine_policies.push_back(make_engine(scenario, replications, 1, first(n)));
    // ×10 stops with a tenth of the replications would hide per-replication costs; keep the
    // replications and let the run be 10× longer.
    const std::int64_t replications10 = replications / (args.quick ? 4 : 2);
    // At 1 thread, so that the comparison measures the work per stop and not how a few
    // replications share the cores.
    const auto engine_base = make_engine(scenario1, replications10, 1, all_policies);
    const auto engine_x10 = make_engine(scenario10, replications10, 1, all_policies);

    std::optional<Results> all_result, one_result, base_result, x10_result;
    std::vector<std::function<void()>> variants = {
        [&] { all_result.emplace(engine_all->run()); },
        [&] { one_result.emplace(engine_one->run()); },
        [&] { base_result.emplace(engine_base->run()); },
        [&] { x10_result.emplace(engine_x10->run()); },
    };
    for (std::size_t i = 0; i < engine_policies.size(); ++i)
        variants.push_back([&, i] { engine_policies[i]->run(); });
    engine_all->run();  // warm-up: thread pool, page faults
    std::vector<std::vector<double>> cpu;
    const auto seconds = bench::time_rounds(rounds, variants, &cpu);

    const auto stops = static_cast<double>(all_result->total_stops());
    auto per_second = [&](const std::vector<double>& s, double n) {
        std::vector<double> r;
        for (double x : s) r.push_back(n / x);
        return bench::stat_of(r);
    };
    auto ns_per_stop = [&](const std::vector<double>& s, double n, double threads) {
        std::vector<double> r;
        for (double x : s) r.push_back(x * 1e9 * threads / n);
        return bench::stat_of(r);
    };
    const bool identical = all_result->counts == one_result->counts &&
                           all_result->threads_used > 1 && one_result->threads_used == 1;
    const double stops_base = static_cast<double>(base_result->total_stops());
    const double stops_x10 = static_cast<double>(x10_result->total_stops());

    bench::Report report("engine_throughput", args.quick);
    report.note("scenario", "default (compiled in), " + std::to_string(all_policies.size()) +
                                " policies, common random numbers");
    report.note("replications", std::to_string(replications));
    report.add("stops_per_s", per_second(seconds[0], stops), "stops/s", ">= 6e7 on 2 cores");
    report.add("ns_per_stop_per_core", ns_per_stop(seconds[0], stops, cores), "ns");
    report.add("stops_per_s_1_thread", per_second(seconds[1], stops), "stops/s");
    report.add("ns_per_stop_1_thread", ns_per_stop(seconds[1], stops, 1), "ns");
    // CPU time (all threads) per stop: what a core spends on a stop, whatever else runs on
    // the machine; all threads vs 1 thread shows the parallel overhead.
    report.add("cpu_ns_per_stop_1_thread", ns_per_stop(cpu[1], stops, 1), "ns");
    report.add("cpu_ns_per_stop_all_threads", ns_per_stop(cpu[0], stops, 1), "ns");
    report.add("stops_per_s_from_cpu_time", per_second(cpu[0], stops * cores), "stops/s",
               "(cores x stops / CPU seconds: the rate on idle cores)");
    report.add("thread_scaling", bench::stat_of(bench::ratios(seconds[1], seconds[0])), "ratio",
               ">= 1.85 (1 -> 2 threads)");
    report.add("identical_results_1_vs_all_threads", identical ? 1 : 0, "bool",
               "1 (bit-identical tallies)");
    // Marginal cost of each extra policy: per-round differences of ns/stop at 1 thread.
    std::vector<const std::vector<double>*> by_policies;
    for (std::size_t i = 0; i < engine_policies.size(); ++i) by_policies.push_back(&seconds[4 + i]);
    by_policies.push_back(&seconds[1]);
    for (std::size_t n = 0; n < by_policies.size(); ++n)
        report.add("ns_per_stop_" + std::to_string(n + 1) + "_policies_1_thread",
                   ns_per_stop(*by_policies[n], stops, 1), "ns");
    for (std::size_t n = 1; n < by_policies.size(); ++n) {
        std::vector<double> d;
        for (int r = 0; r < rounds; ++r)
            d.push_back(((*by_policies[n])[r] - (*by_policies[n - 1])[r]) * 1e9 / stops);
        report.add("marginal_ns_per_stop_policy_" + std::to_string(n + 1), bench::stat_of(d), "ns");
    }
    std::vector<double> growth;
    for (int r = 0; r < rounds; ++r) growth.push_back(seconds[3][r] / seconds[2][r]);
    report.add("stops_x10_stops_ratio", stops_x10 / stops_base, "ratio");
    report.add("stops_x10_time_ratio", bench::stat_of(growth), "ratio", "10 +- 10%");

    report.print_header("default scenario, all policies, common random numbers");
    std::printf("%lld replications x %.0f stops (x10 runs: %lld replications), %d rounds\n",
                static_cast<long long>(replications), stops / static_cast<double>(replications),
                static_cast<long long>(replications10), rounds);
    report.print_figures();
    if (!identical) std::printf("WARNING: 1-thread and all-thread tallies differ\n");
    return report.write_json(args.json_path) ? 0 : 1;
}
