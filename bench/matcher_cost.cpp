// bench/matcher_cost: what does one score-level 1:N search cost, on the lazy path the
// engine uses and on the eager path that draws every score, and does the cost depend on
// the gallery size? (MODEL.md §5: the best impostor is drawn in O(groups), never by
// drawing M scores.) Per search, and for the whole engine (default scenario, 4 policies,
// 1 thread) with both galleries ×1000 at the same FPIR (FMR ÷ 1000): target, time unchanged.
// Prints medians of interleaved repeats with spread and ratios from the same rounds, and
// writes bench-matcher_cost.json. `--quick` is the CI size. No pass/fail.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "stopscan/engine.hpp"
#include "stopscan/match_model.hpp"

using namespace stopscan;

namespace {

// Runs `calls` searches; returns a checksum so the compiler cannot drop them.
template <typename F>
std::uint64_t run_calls(F&& body, std::uint64_t calls, std::uint64_t round) {
    std::uint64_t sink = 0;
    for (std::uint64_t i = 0; i < calls; ++i) sink += body(i, round);
    return sink;
}

}  // namespace

int main(int argc, char** argv) {
    const bench::Args args =
        bench::parse_args(argc, argv, "matcher_cost",
                          "cost of one 1:N search (lazy, eager) and its growth with the gallery");
    const std::uint64_t calls = args.quick ? 1'000'000 : 10'000'000;
    const int rounds = args.quick ? 3 : 7;
    const std::int64_t replications = args.quick ? 5 : 20;
    auto settings = Settings::parse_ini(default_scenario_text(), "");
    const auto base = std::make_shared<const Scenario>(load_scenario(settings));
    // ×1000 records at the same FPIR (FMR ÷ 1000): the cost must not grow with M.
    settings.apply_override("database.IABS.size=5000000000");
    settings.apply_override("matcher.fingerprint.IABS.fmr=1.15e-13");
    settings.apply_override("database.IDENT1.size=8700000000");
    settings.apply_override("matcher.fingerprint.IDENT1.fmr=1.15e-13");
    const auto big = std::make_shared<const Scenario>(load_scenario(settings));
    const CellTable cells(base->dimensions, base->population);
    const std::size_t iabs = *base->find_database("IABS");
    const MatchModel model(*base, cells, 0, iabs);
    const MatchModel model_big(*big, cells, 0, iabs);
    const ReplicationKey key(1, 0);
    const std::size_t cell = 77;

    auto lazy = [&](const MatchModel& m) {
        return [&](std::uint64_t i, std::uint64_t r) -> std::uint64_t {
            const auto u = key.uniforms(i, Purpose::Search, 0, r);
            UniformStream s(key, i, Purpose::SearchScores, 0, r), v(key, i, Purpose::Review, 0, r);
            return m.search(cell, (i & 1) != 0, u[0], u[1], s, v).kind;
        };
    };
    auto eager = [&](std::uint64_t i, std::uint64_t r) -> std::uint64_t {
        UniformStream s(key, i, Purpose::SearchScores, 0, r), v(key, i, Purpose::Review, 0, r);
        return model.search_eager(cell, (i & 1) != 0, s, v).kind;
    };
    RunOptions options;
    options.replications = replications;
    options.threads = 1;
    const Engine engine(make_run_plan(base, options));
    const Engine engine_big(make_run_plan(big, options));
    std::uint64_t sink = 0, stops = 0, stops_big = 0;
    std::uint64_t round = 0;
    const auto seconds =
        bench::time_rounds(rounds, {
                                       [&] { sink += run_calls(lazy(model), calls, round); },
                                       [&] { sink += run_calls(lazy(model_big), calls, round); },
                                       [&] { sink += run_calls(eager, calls / 200, round++); },
                                       [&] { stops = engine.run().total_stops(); },
                                       [&] { stops_big = engine_big.run().total_stops(); },
                                   });
    auto per_call = [&](const std::vector<double>& s, double n) {
        std::vector<double> ns;
        for (double x : s) ns.push_back(x * 1e9 / n);
        return bench::stat_of(ns);
    };
    const auto n = static_cast<double>(calls);

    bench::Report report("matcher_cost", args.quick);
    report.note("probe", "fingerprint vs IABS, probe cell " + std::to_string(cell));
    report.note("checksum", std::to_string(sink % 1000));
    report.add("lazy_search_ns", per_call(seconds[0], n), "ns");
    report.add("lazy_search_ns_gallery_x1000", per_call(seconds[1], n), "ns");
    report.add("lazy_search_gallery_x1000_time_ratio",
               bench::stat_of(bench::ratios(seconds[1], seconds[0])), "ratio", "1 (unchanged)");
    report.add("eager_search_ns", per_call(seconds[2], n / 20), "ns");
    report.add("eager_over_lazy",
               per_call(seconds[2], n / 20).median / per_call(seconds[0], n).median, "ratio");
    report.add("engine_ns_per_stop_1_thread", per_call(seconds[3], static_cast<double>(stops)),
               "ns");
    report.add("engine_ns_per_stop_gallery_x1000_1_thread",
               per_call(seconds[4], static_cast<double>(stops_big)), "ns");
    report.add("engine_gallery_x1000_time_ratio",
               bench::stat_of(bench::ratios(seconds[4], seconds[3])), "ratio", "1 (unchanged)");
    report.add("fpir_iabs", model.fpir(cell), "probability");
    report.add("fpir_iabs_gallery_x1000", model_big.fpir(cell), "probability");

    report.print_header("score-level 1:N search cost vs gallery size");
    std::printf(
        "%llu lazy searches per repeat (eager: 1/200 of that); engine: default scenario, %lld "
        "replications, 4 policies, 1 thread; galleries 5M/8.7M vs 5G/8.7G records, same FPIR\n",
        static_cast<unsigned long long>(calls), static_cast<long long>(replications));
    report.print_figures();
    return report.write_json(args.json_path) ? 0 : 1;
}
