// bench/rare_events: how many stops does it take to estimate rare wrongful outcomes to 5 %,
// with plain sampling and with importance sampling (`run --rare-events is`, docs/model.md
// "Rare events")? Target (issue 7): at least 10× fewer stops with importance sampling.
//
// On scenarios/rare-fpir.ini (FPIR about 1e-7 per search, accurate records, so every wrongful
// outcome is biometric), for the baseline policy's wrongful outcomes over everyone:
//  - μ, the expected wrongful outcomes per replication, exactly from `explain`;
//  - importance sampling: the variance s² of one replication's estimate, measured over R
//    replications;
//  - plain sampling: no run could measure it (about 1e11 stops), so its variance is bounded
//    below, exactly: a replication's count W is a whole number, so W² >= W and
//    Var(W) >= μ(1 − μ). The plain figures are therefore lower bounds, and so is the ratio.
// Stops for 5 % relative precision (95 % normal interval within 5 % of the mean):
// (1.96 / 0.05)² × variance per replication / μ² × stops per replication. Both methods
// simulate the same stops from the same draws, so the ratio of stops is the ratio of
// variances; CPU time per stop of both is measured in interleaved rounds, and the work ratio
// is stops ratio / cost ratio. No pass/fail.
#include <boost/math/distributions/chi_squared.hpp>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "stopscan/engine.hpp"
#include "stopscan/expectation.hpp"

using namespace stopscan;

#ifndef STOPSCAN_SCENARIO_DIR
#define STOPSCAN_SCENARIO_DIR "scenarios"
#endif

namespace {

RunPlan plan_of(std::shared_ptr<const Scenario> scenario, std::int64_t replications,
                std::uint64_t seed, double factor) {
    RunOptions options;
    options.replications = replications;
    options.seed = seed;
    if (factor > 0) {
        options.rare_events.method = RareEvents::Method::importance;
        options.rare_events.factor = factor;
    }
    return make_run_plan(std::move(scenario), options);
}

// The baseline policy's wrongful outcomes over everyone, per replication.
std::vector<double> wrongful_per_replication(const Results& r) {
    std::vector<double> w(static_cast<std::size_t>(r.plan.replications), 0.0);
    for (std::size_t rep = 0; rep < w.size(); ++rep)
        for (std::size_t c = 0; c < r.cells(); ++c)
            w[rep] += r.value(rep, r.plan.baseline, c, MetricLayout::WRONGFUL_OUTCOMES);
    return w;
}

}  // namespace

int main(int argc, char** argv) {
    const bench::Args args = bench::parse_args(
        argc, argv, "rare_events",
        "stops for 5 % precision on rare wrongful outcomes: plain vs importance sampling",
        {{"--factor", true, "importance sampling factor (default: run --rare-events is, 1000)"},
         {"--scenario", true, "scenario file (default: the source tree's rare-fpir.ini)"}});
    const double factor =
        args.get("--factor") ? std::stod(*args.get("--factor")) : RareEvents{}.factor;
    const std::string file =
        args.get("--scenario").value_or(std::string(STOPSCAN_SCENARIO_DIR) + "/rare-fpir.ini");
    const std::int64_t replications = args.quick ? 200 : 2000;
    const int rounds = args.quick ? 3 : 5;
    const std::int64_t timed_replications = args.quick ? 10 : 40;

    const auto scenario =
        std::make_shared<const Scenario>(load_scenario(Settings::read_ini_file(file)));
    bench::Report report("rare_events", args.quick);
    report.note("scenario", file);
    report.note("factor", std::to_string(factor));
    report.note("metric", "wrongful_outcomes, all, baseline policy");
    report.print_header("stops for 5 % precision on rare wrongful outcomes");

    // Exact expectation and stops per replication.
    const RunPlan is_plan = plan_of(scenario, replications, 20261124, factor);
    const Expectation expected = expected_counts(is_plan);
    double mu = 0, stops_per_rep = 0;
    for (std::size_t c = 0; c < expected.cells(); ++c) {
        mu += expected.row(is_plan.baseline, c)[MetricLayout::WRONGFUL_OUTCOMES];
        stops_per_rep += expected.row(is_plan.baseline, c)[MetricLayout::STOPS];
    }

    // Importance sampling: the variance of one replication's estimate.
    const Results results = Engine(is_plan).run();
    const auto w = wrongful_per_replication(results);
    const auto R = static_cast<double>(w.size());
    double mean = 0, s2 = 0;
    for (const double x : w) mean += x / R;
    for (const double x : w) s2 += (x - mean) * (x - mean) / (R - 1);
    const double se = std::sqrt(s2 / R);

    constexpr double Z = 1.959963984540054;  // two-sided 95 %
    constexpr double TARGET = 0.05;
    const double k = (Z / TARGET) * (Z / TARGET);
    const double plain_var = mu * (1 - mu);  // lower bound
    const double stops_plain = k * plain_var / (mu * mu) * stops_per_rep;
    const double stops_is = k * s2 / (mu * mu) * stops_per_rep;
    const double ratio = plain_var / s2;
    // 95 % interval of the ratio from the chi-square law of s² (normal replications).
    const boost::math::chi_squared_distribution<double> chi2(R - 1);
    const double ratio_lo = ratio * boost::math::quantile(chi2, 0.025) / (R - 1);
    const double ratio_hi = ratio * boost::math::quantile(chi2, 0.975) / (R - 1);

    // CPU time per stop of both methods, interleaved rounds on the same replications.
    const Engine plain_engine(plan_of(scenario, timed_replications, 20261125, 0));
    const Engine is_engine(plan_of(scenario, timed_replications, 20261125, factor));
    double stops_timed = 0;
    std::vector<std::vector<double>> cpu;
    bench::time_rounds(
        rounds,
        {[&] { stops_timed = static_cast<double>(plain_engine.run().total_stops()); },
         [&] { is_engine.run(); }},
        &cpu);
    std::vector<double> plain_ns, is_ns;
    for (const double s : cpu[0]) plain_ns.push_back(s / stops_timed * 1e9);
    for (const double s : cpu[1]) is_ns.push_back(s / stops_timed * 1e9);
    const bench::Stat cost = bench::stat_of(bench::ratios(cpu[1], cpu[0]));

    std::printf("  expected wrongful outcomes per replication (explain): %.4g, %.0f stops each\n",
                mu, stops_per_rep);
    std::printf(
        "  importance sampling, %lld replications: mean %.4g (%+.2f standard errors from "
        "explain), variance %.4g per replication\n",
        static_cast<long long>(replications), mean, (mean - mu) / se, s2);
    std::printf("  plain sampling: variance >= %.4g per replication (exact lower bound)\n",
                plain_var);
    report.add("expected_wrongful_per_replication", mu, "outcomes");
    report.add("is_mean_minus_explain", (mean - mu) / se, "standard errors");
    report.add("stops_for_5pct_plain", stops_plain, "stops", "lower bound");
    report.add("stops_for_5pct_is", stops_is, "stops");
    report.add("stops_ratio_plain_over_is", ratio, "x", ">= 10");
    report.add("stops_ratio_lo95", ratio_lo, "x");
    report.add("stops_ratio_hi95", ratio_hi, "x");
    report.add("cpu_per_stop_plain", bench::stat_of(plain_ns), "ns");
    report.add("cpu_per_stop_is", bench::stat_of(is_ns), "ns");
    report.add("cost_ratio_is_over_plain", cost, "x");
    report.add("work_ratio_plain_over_is", ratio / cost.median, "x", ">= 10");
    report.print_figures();
    return report.write_json(args.json_path) ? 0 : 1;
}
