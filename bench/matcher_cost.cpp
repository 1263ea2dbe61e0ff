// bench/matcher_cost: what does one score-level 1:N search cost, on the lazy path the
// engine uses and on the eager path that draws every score, and does the cost depend on
// the gallery size? (MODEL.md §5: the best impostor is drawn in O(groups), never by
// drawing M scores.) Prints medians of repeats with spread, ratios from the same run, and a
// JSON line. `--quick` is the CI size. No pass/fail.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "stopscan/build_info.hpp"
#include "stopscan/match_model.hpp"

using namespace stopscan;

namespace {

struct Figure {
    double median, lo, hi;
};

template <typename F>
Figure ns_per_call(F&& body, std::uint64_t calls, int repeats) {
    std::vector<double> ns;
    for (int r = 0; r < repeats; ++r) {
        const auto start = std::chrono::steady_clock::now();
        std::uint64_t sink = 0;
        for (std::uint64_t i = 0; i < calls; ++i) sink += body(i, static_cast<std::uint64_t>(r));
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        ns.push_back(seconds * 1e9 / static_cast<double>(calls) +
                     static_cast<double>(sink % 2) * 1e-12);
    }
    std::sort(ns.begin(), ns.end());
    return {ns[ns.size() / 2], ns.front(), ns.back()};
}

}  // namespace

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    const std::uint64_t calls = quick ? 1'000'000 : 10'000'000;
    const int repeats = quick ? 3 : 7;
    auto settings = Settings::parse_ini(default_scenario_text(), "");
    const Scenario base = load_scenario(settings);
    // ×1000 records at the same FPIR (FMR ÷ 1000): the cost must not grow with M.
    settings.apply_override("database.IABS.size=5000000000");
    settings.apply_override("matcher.fingerprint.IABS.fmr=1.15e-13");
    const Scenario big = load_scenario(settings);
    const CellTable cells(base.dimensions, base.population);
    const MatchModel model(base, cells, 0, 1);
    const MatchModel model_big(big, cells, 0, 1);
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
    const Figure l = ns_per_call(lazy(model), calls, repeats);
    const Figure lb = ns_per_call(lazy(model_big), calls, repeats);
    const Figure e = ns_per_call(eager, calls / 20, repeats);

    std::printf(
        "bench/matcher_cost (%s): default scenario, fingerprint vs IABS, probe cell %zu, median of "
        "%d\n",
        quick ? "quick" : "full", cell, repeats);
    std::printf("build %s; commit %s; FPIR %.3g (5M records), %.3g (5G records)\n",
                STOPSCAN_BUILD_TYPE, STOPSCAN_GIT_COMMIT, model.fpir(cell), model_big.fpir(cell));
    std::printf("  lazy search, 5M records : %7.1f ns  [%.1f, %.1f]\n", l.median, l.lo, l.hi);
    std::printf(
        "  lazy search, 5G records, FMR / 1000: %7.1f ns  [%.1f, %.1f]  (x1000 gallery: %.2fx "
        "time)\n",
        lb.median, lb.lo, lb.hi, lb.median / l.median);
    std::printf("  eager search (all scores): %7.1f ns  [%.1f, %.1f]  (%.0fx the lazy path)\n",
                e.median, e.lo, e.hi, e.median / l.median);
    std::printf(
        "{\"bench\": \"matcher_cost\", \"build\": \"%s\", \"commit\": \"%s\", \"figures\": ["
        "{\"name\": \"lazy_search_ns\", \"value\": %.2f, \"unit\": \"ns\"}, "
        "{\"name\": \"lazy_search_ns_gallery_x1000\", \"value\": %.2f, \"unit\": \"ns\"}, "
        "{\"name\": \"eager_search_ns\", \"value\": %.2f, \"unit\": \"ns\"}]}\n",
        STOPSCAN_BUILD_TYPE, STOPSCAN_GIT_COMMIT, l.median, lb.median, e.median);
    return 0;
}
