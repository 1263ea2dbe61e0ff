// Importance sampling of false matches (`run --rare-events is`, docs/model.md "Rare events"):
// unbiased against the closed form (`explain`), a large variance reduction on the rare
// scenario (scenarios/rare-fpir.ini, FPIR about 1e-7 per search), the integer tallies of
// plain sampling untouched, and bit-identical weighted results for any thread count.
//
// Tolerances (STYLE.md, "Testing stochastic code"): each TEST_CASE is one family with
// false-alarm probability ALPHA = 1e-6, Bonferroni-split over its assertions. The
// replication is the independent unit: a replication's estimate (integer tally plus weighted
// correction) is a sum over independent persons, and the bounds use the standard error
// estimated from R replications (Student t with R − 1 degrees of freedom).
#include <boost/math/distributions/chi_squared.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "stat/agreement.hpp"
#include "stopscan/engine.hpp"
#include "stopscan/expectation.hpp"
#include "stopscan/summary.hpp"
#include "stopscan/writers.hpp"

using namespace stopscan;

namespace {

constexpr double ALPHA = 1e-6;

std::shared_ptr<const Scenario> rare_scenario(const std::vector<std::string>& overrides = {}) {
    auto settings =
        Settings::read_ini_file(std::string(STOPSCAN_SOURCE_DIR) + "/scenarios/rare-fpir.ini");
    for (const auto& o : overrides) settings.apply_override(o);
    return std::make_shared<const Scenario>(load_scenario(settings));
}

std::shared_ptr<const Scenario> default_scenario(const std::vector<std::string>& overrides = {}) {
    auto settings = Settings::parse_ini(default_scenario_text(), "");
    for (const auto& o : overrides) settings.apply_override(o);
    return std::make_shared<const Scenario>(load_scenario(settings));
}

RunPlan plan_of(std::shared_ptr<const Scenario> scenario, std::int64_t replications,
                std::uint64_t seed, double factor, int threads = 0, std::size_t grain = 0) {
    RunOptions options;
    options.replications = replications;
    options.seed = seed;
    options.threads = threads;
    if (factor > 0) {
        options.rare_events.method = RareEvents::Method::importance;
        options.rare_events.factor = factor;
    }
    RunPlan plan = make_run_plan(std::move(scenario), options);
    plan.grain = grain;
    return plan;
}

// Everyone, then each category of each dimension: (name, cells).
std::vector<std::pair<std::string, std::vector<std::size_t>>> groups_of(const Scenario& s) {
    const CellTable cells(s.dimensions, s.population);
    std::vector<std::pair<std::string, std::vector<std::size_t>>> groups{{"all", {}}};
    for (std::size_t c = 0; c < cells.size(); ++c) groups[0].second.push_back(c);
    for (std::size_t d = 0; d < s.dimensions.size(); ++d)
        for (std::size_t k = 0; k < s.dimensions[d].categories.size(); ++k) {
            std::vector<std::size_t> members;
            for (std::size_t c = 0; c < cells.size(); ++c)
                if (cells.category(c, d) == k) members.push_back(c);
            groups.emplace_back(s.dimensions[d].name + "=" + s.dimensions[d].categories[k],
                                members);
        }
    return groups;
}

std::size_t metric_index(const MetricLayout& layout, const std::string& name) {
    for (std::size_t k = 0; k < layout.size(); ++k)
        if (layout.name(k) == name) return k;
    FAIL("no metric " << name);
    return 0;
}

// Per-replication estimate of count k of a group under policy position p.
std::vector<double> series(const Results& r, std::size_t p, const std::vector<std::size_t>& cells,
                           std::size_t k) {
    std::vector<double> out(static_cast<std::size_t>(r.plan.replications), 0.0);
    for (std::size_t rep = 0; rep < out.size(); ++rep)
        for (const auto c : cells) out[rep] += r.value(rep, p, c, k);
    return out;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() &&
           (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

}  // namespace

TEST_CASE("importance sampling estimates of rare wrongful outcomes agree with explain per group",
          "[stat][rare]") {
    // Factor 1e5 tilts each search's FPIR p ≈ 1.0e-7 to q = 0.01 (the cap): about 1,440
    // sampled false matches per replication of 72,000 stops, where plain sampling expects
    // 0.014. R = 100.
    constexpr double FACTOR = 1e5;
    const RunPlan plan = plan_of(rare_scenario(), 100, 7101, FACTOR);
    const Results results = Engine(plan).run();
    const Expectation expected = expected_counts(plan);
    const std::size_t R = static_cast<std::size_t>(plan.replications);
    // Sampled events per expected event: q / p >= 0.01 / 1.01e-7 (the largest FPIR of the
    // scenario, IDENT1's 1 − (1 − 1.15e-14)^8.7e6 rounded up).
    const double tilt = 0.01 / 1.01e-7;
    struct Case {
        std::string name;
        double mean, se, expected;
    };
    std::vector<Case> cases;
    std::size_t zero = 0, skipped = 0;
    const auto groups = groups_of(*plan.scenario);
    for (std::size_t p = 0; p < plan.policies.size(); ++p)
        for (const auto& [group, members] : groups)
            for (const std::string metric :
                 {"wrongful_outcomes", "wrongful_arrests", "wrongful_ho_referrals",
                  "wrongful_detentions", "persons_wrongfully_affected", "false_matches.IDENT1",
                  "false_matches.IABS", "wrongful_by_false_match.IDENT1",
                  "wrongful_by_false_match.IABS"}) {
                const std::size_t k = metric_index(results.layout, metric);
                double e = 0;
                for (const auto c : members) e += expected.row(p, c)[k];
                const auto v = series(results, p, members, k);
                const std::string name =
                    plan.scenario->policies[plan.policies[p]].name + " " + group + " " + metric;
                if (e == 0) {
                    // Impossible events (a database the policy never searches, a wrongful
                    // action against a person whose truth is adverse) get no weight at all.
                    INFO(name);
                    for (const double x : v) CHECK(x == 0);
                    ++zero;
                    continue;
                }
                // The normal approximation needs enough *sampled* events (agreement.hpp's
                // MIN_EVENTS): R · e expected events, each sampled about q/p times as often.
                if (static_cast<double>(R) * e * tilt < test::MIN_EVENTS) {
                    ++skipped;
                    continue;
                }
                double sum = 0, sum2 = 0;
                for (const double x : v) sum += x;
                const double mean = sum / static_cast<double>(R);
                for (const double x : v) sum2 += (x - mean) * (x - mean);
                const double se =
                    std::sqrt(sum2 / static_cast<double>(R - 1) / static_cast<double>(R));
                cases.push_back({name, mean, se, e});
            }
    // Two-sided, Bonferroni over the tested estimates; Student t with R − 1 degrees of freedom.
    const double t = boost::math::quantile(boost::math::complement(
        boost::math::students_t_distribution<double>(static_cast<double>(R - 1)),
        ALPHA / (2.0 * static_cast<double>(cases.size()))));
    std::size_t failed = 0;
    double worst = 0;
    for (const auto& c : cases) {
        const double score = std::abs(c.mean - c.expected) / c.se;
        worst = std::max(worst, score);
        if (!(score <= t)) {
            ++failed;
            UNSCOPED_INFO("disagrees: " << c.name << ": " << c.mean << " ± " << c.se << ", explain "
                                        << c.expected);
        }
    }
    INFO(cases.size() << " estimates tested against t = " << t << ", worst |t| = " << worst << "; "
                      << zero << " impossible (exactly 0), " << skipped << " too rare to test");
    // Not vacuous: every policy's "all" row and most groups are tested.
    CHECK(cases.size() > 200);
    CHECK(failed == 0);
}

TEST_CASE("with importance sampling every count of the default scenario agrees with explain",
          "[stat][rare]") {
    // The default scenario mixes record errors, custody searches and FPIR 5.75e-4, tilted to
    // 0.01 by the default factor: the weighted corrections must leave every estimate
    // unbiased, not only the rare ones. The same check as for plain sampling (agreement.hpp).
    const RunPlan plan = plan_of(default_scenario(), 100, 7102, RareEvents{}.factor);
    const test::Agreement a = test::compare(plan);
    CHECK(a.tested > 100);
    CHECK(a.failed == 0);
}

TEST_CASE("importance sampling cuts the variance of rare wrongful outcomes more than tenfold",
          "[stat][rare]") {
    // At the same stops (the same draws of persons and stops), compare the variance of one
    // replication's wrongful outcomes (all groups, baseline policy):
    //  - plain sampling: W is a whole number >= 0, so W² >= W and Var(W) >= μ(1 − μ), with μ
    //    the exact expectation from explain. A lower bound, so the ratio below is too.
    //  - importance sampling with the default factor (q = 1000 p ≈ 1e-4): the sample variance
    //    s² over R replications, bounded above by (R − 1) s² / χ²_{R−1}(ALPHA) (one-sided).
    // Theory gives a ratio of about q / p = 1000; the assertion asks for 10, the issue's
    // target (relative standard error √10 smaller, or 10× fewer stops).
    const RunPlan plan = plan_of(rare_scenario(), 200, 7103, RareEvents{}.factor);
    const Results results = Engine(plan).run();
    const Expectation expected = expected_counts(plan);
    const std::size_t b = plan.baseline;
    const std::size_t k = MetricLayout::WRONGFUL_OUTCOMES;
    std::vector<std::size_t> all(results.cells());
    for (std::size_t c = 0; c < all.size(); ++c) all[c] = c;
    double mu = 0;
    for (const auto c : all) mu += expected.row(b, c)[k];
    const auto w = series(results, b, all, k);
    const auto R = static_cast<double>(w.size());
    double mean = 0;
    for (const double x : w) mean += x / R;
    double s2 = 0;
    std::size_t with_events = 0;
    for (const double x : w) {
        s2 += (x - mean) * (x - mean) / (R - 1);
        with_events += x != 0;
    }
    const double chi2 =
        boost::math::quantile(boost::math::chi_squared_distribution<double>(R - 1), ALPHA);
    const double var_is_upper = (R - 1) * s2 / chi2;
    const double var_plain_lower = mu * (1 - mu);
    INFO("mu " << mu << " per replication, IS mean " << mean << ", s² " << s2 << " (upper bound "
               << var_is_upper << "), plain variance >= " << var_plain_lower
               << ", ratio >= " << var_plain_lower / var_is_upper << " (point estimate "
               << var_plain_lower / s2 << ")");
    // Not vacuous: sampled events in a good share of the replications.
    CHECK(with_events > w.size() / 10);
    CHECK(var_plain_lower / var_is_upper >= 10);
}

TEST_CASE(
    "without importance sampling the tallies are whole counts, and with it the counts "
    "no false match can change are the same",
    "[stat][rare]") {
    const auto scenario = default_scenario({"stops.total=30000"});
    const Results plain = Engine(plan_of(scenario, 3, 11, 0)).run();
    const Results weighted = Engine(plan_of(scenario, 3, 11, RareEvents{}.factor)).run();
    CHECK(plain.weighted.empty());
    REQUIRE(weighted.weighted.size() == weighted.counts.size());
    const std::size_t K = plain.layout.size();
    const std::size_t false_matches = plain.layout.at(1, MetricLayout::FALSE_MATCHES);
    bool corrected = false;
    for (std::size_t rep = 0; rep < 3; ++rep)
        for (std::size_t p = 0; p < plain.policies(); ++p)
            for (std::size_t c = 0; c < plain.cells(); ++c) {
                // Common random numbers: the same persons and stops, exactly.
                for (const std::size_t k : {std::size_t{MetricLayout::STOPS},
                                            std::size_t{MetricLayout::PERSONS_STOPPED}}) {
                    CHECK(weighted.row(rep, p, c)[k] == plain.row(rep, p, c)[k]);
                    CHECK(weighted.weighted_row(rep, p, c)[k] == 0);
                }
                // The integer part is the world without false matches.
                CHECK(weighted.row(rep, p, c)[false_matches] == 0);
                for (std::size_t k = 0; k < K; ++k)
                    corrected = corrected || weighted.weighted_row(rep, p, c)[k] != 0;
            }
    CHECK(corrected);
    // With no false match possible (FMR 0), importance sampling has nothing to tilt: the
    // tallies equal plain sampling's and every correction is zero.
    const auto exact = default_scenario({"stops.total=30000", "matcher.fingerprint.IDENT1.fmr=0",
                                         "matcher.fingerprint.IABS.fmr=0"});
    const Results a = Engine(plan_of(exact, 2, 12, 0)).run();
    const Results z = Engine(plan_of(exact, 2, 12, 1e6)).run();
    CHECK(a.counts == z.counts);
    for (const double x : z.weighted) CHECK(x == 0);
}

TEST_CASE("importance sampling results are bit-identical for any thread count and split",
          "[stat][rare][determinism]") {
    const auto scenario = rare_scenario({"stops.total=20000"});
    constexpr double FACTOR = 1e5;  // many tilted events, so many corrections to add up
    const Results reference = Engine(plan_of(scenario, 4, 5, FACTOR, 1, 1)).run();
    REQUIRE(reference.threads_used == 1);
    std::size_t nonzero = 0;
    for (const double x : reference.weighted) nonzero += x != 0;
    CHECK(nonzero > 100);
    const std::string expected = summary_csv(summarize(reference));
    for (const int threads : {1, 2, 4})
        for (const std::size_t grain : {std::size_t{1}, std::size_t{64}, std::size_t{100000}}) {
            const Results r = Engine(plan_of(scenario, 4, 5, FACTOR, threads, grain)).run();
            INFO("threads " << threads << ", grain " << grain);
            CHECK(r.threads_used == threads);
            CHECK(r.counts == reference.counts);
            CHECK(same_bits(r.weighted, reference.weighted));
            CHECK(summary_csv(summarize(r)) == expected);
        }
    // The serial path, and a run extended in batches, give the same bits.
    const Engine engine(plan_of(scenario, 4, 5, FACTOR, 2, 16));
    for (std::int64_t rep = 0; rep < 2; ++rep) {
        std::vector<double> serial, parallel;
        CHECK(engine.run_replication(rep, false, serial) ==
              engine.run_replication(rep, true, parallel));
        CHECK(same_bits(serial, parallel));
    }
    const Engine short_run(plan_of(scenario, 2, 5, FACTOR, 2));
    Results extended = short_run.run();
    short_run.extend(extended, 2);
    CHECK(extended.counts == reference.counts);
    CHECK(same_bits(extended.weighted, reference.weighted));
}
