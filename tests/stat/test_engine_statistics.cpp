// Statistical tests of the engine against the model (MODEL.md §3–§6), driven in-process:
// INI text → Settings → Scenario → RunPlan → Engine → integer tallies.
//
// How the tolerances are set (STYLE.md, "Testing stochastic code"):
//  - Each TEST_CASE is one family with false-alarm probability FAMILY_ALPHA = 1e-6, split
//    evenly over its stochastic assertions (Bonferroni). An assertion is two-sided,
//    |observed − expected| ≤ z·sd with z = Q⁻¹(alpha / (2·assertions)), Q the standard
//    normal upper tail; sd is derived from the model in each test's comment. z is computed
//    below from alpha, not typed in: 1 assertion → 4.89, 2 → 5.03, 3 → 5.10, 4 → 5.16,
//    5 → 5.20 (the values the code gives).
//  - The normal approximation: every tested count is a sum of ≥ 1e4 independent terms with
//    expected count ≥ 2.9e4 (quoted per test), where the skewness correction of the
//    z-quantile, (z² − 1)·γ/6 with γ = (1 − 2p)/√(np(1 − p)), 1/√λ or κ₃/κ₂^{3/2} for the
//    compound sums, is at most 0.025 of one sd (γ ≤ 0.006 in every test): negligible
//    against z ≈ 5.
//  - Power: every assertion also checks, from the design and before looking at the data,
//    that a RELATIVE_ERROR = 10 % error in the tested rate would be caught with
//    probability ≥ 1 − POWER_BETA = 0.999: 0.1·E − z·sd₀ ≥ Q⁻¹(β)·sd₁ with sd₁ the sd under
//    the shifted rate (require_power below). Each test's comment quotes the half-width of
//    its bound as a share of the expected count.
//  - Seeds are fixed, so a run is reproducible; the bounds are not tuned to them.
//
// Sizes are chosen so that the whole binary runs in a few seconds on 2 cores
// (RelWithDebInfo); the comments give the resulting counts.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "stopscan/cells.hpp"
#include "stopscan/engine.hpp"
#include "stopscan/metrics.hpp"
#include "stopscan/run_plan.hpp"
#include "stopscan/scenario.hpp"
#include "stopscan/settings.hpp"

namespace {

using stopscan::MetricLayout;

constexpr double FAMILY_ALPHA = 1e-6;
constexpr double POWER_BETA = 1e-3;
constexpr double RELATIVE_ERROR = 0.10;
constexpr double NOT_DEFINED = std::numeric_limits<double>::quiet_NaN();

/// z with Q(z) = alpha, Q(z) = erfc(z / √2) / 2, by bisection (Q is monotone).
double normal_upper_quantile(double alpha) {
    double lo = 0.0;
    double hi = 40.0;
    for (int i = 0; i < 200; ++i) {
        const double mid = 0.5 * (lo + hi);
        (0.5 * std::erfc(mid / std::sqrt(2.0)) > alpha ? lo : hi) = mid;
    }
    return 0.5 * (lo + hi);
}

/// Two-sided z for one of `assertions` Bonferroni-split assertions of a family.
double bonferroni_z(int assertions) {
    return normal_upper_quantile(FAMILY_ALPHA / (2.0 * assertions));
}

/// A finished run and the category of every cell in every dimension.
struct Run {
    stopscan::Results results;
    std::vector<std::vector<std::size_t>> category;  // [cell][dimension]

    std::size_t replications() const { return static_cast<std::size_t>(results.plan.replications); }

    /// Sum of metric `k` over all replications and over the cells accepted by `keep`.
    std::uint64_t total(std::size_t policy, std::size_t k,
                        const std::function<bool(std::size_t)>& keep = {}) const {
        std::uint64_t sum = 0;
        for (std::size_t rep = 0; rep < replications(); ++rep)
            for (std::size_t c = 0; c < results.cells(); ++c)
                if (!keep || keep(c)) sum += results.row(rep, policy, c)[k];
        return sum;
    }
};

Run simulate(const std::string& ini, std::int64_t replications,
             const std::vector<std::string>& policies, std::uint64_t seed) {
    const auto settings = stopscan::Settings::parse_ini(ini, "test.ini");
    auto scenario = std::make_shared<const stopscan::Scenario>(stopscan::load_scenario(settings));
    stopscan::RunOptions options;
    options.seed = seed;
    options.replications = replications;
    options.policies = policies;
    const stopscan::Engine engine(stopscan::make_run_plan(scenario, options));
    Run run{engine.run(), {}};
    const auto& cells = engine.cells();
    for (std::size_t c = 0; c < cells.size(); ++c) {
        run.category.emplace_back();
        for (std::size_t d = 0; d < cells.dimension_count(); ++d)
            run.category.back().push_back(cells.category(c, d));
    }
    return run;
}

/// Design check (deterministic): if the mean were off by ±RELATIVE_ERROR, the assertion
/// |X − expected| ≤ z·sd_at(1) would fail with probability ≥ 1 − POWER_BETA. sd_at(s) is the
/// sd of X when the tested rate is s times the model's; NaN where s is impossible (p > 1).
void require_power(const std::string& what, double expected, double z,
                   const std::function<double(double)>& sd_at) {
    const double z_beta = normal_upper_quantile(POWER_BETA);
    for (const double s : {1.0 - RELATIVE_ERROR, 1.0 + RELATIVE_ERROR}) {
        const double sd_alt = sd_at(s);
        if (std::isnan(sd_alt)) continue;
        INFO("design: " << what << ": a " << (s - 1.0) * 100 << " % error moves the mean by "
                        << RELATIVE_ERROR * expected << ", bound half-width " << z * sd_at(1.0)
                        << ", sd under the error " << sd_alt);
        REQUIRE(RELATIVE_ERROR * expected - z * sd_at(1.0) >= z_beta * sd_alt);
    }
}

/// One stochastic assertion |observed − expected| ≤ z·sd_at(1), after its power check.
void check_count(const std::string& what, double observed, double expected, double z,
                 const std::function<double(double)>& sd_at) {
    require_power(what, expected, z, sd_at);
    const double sd = sd_at(1.0);
    INFO(what << ": observed " << observed << ", expected " << expected << ", sd " << sd << ", z "
              << z << ", |observed - expected| / sd = " << std::abs(observed - expected) / sd);
    CHECK(std::abs(observed - expected) <= z * sd);
}

/// Binomial(n, p) count: sd √(n p (1 − p)); under a rate error s, p → s·p.
void check_binomial(const std::string& what, std::uint64_t k, std::uint64_t n, double p, double z) {
    const double nd = static_cast<double>(n);
    check_count(what, static_cast<double>(k), nd * p, z, [=](double s) {
        const double q = s * p;
        return q > 1.0 ? NOT_DEFINED : std::sqrt(nd * q * (1.0 - q));
    });
}

// ---------------------------------------------------------------------------------------
// A small world for the stop tests: ethnicity A/B/C with stop propensity factors 1, 4, 2 and
// sex F/M with factors 1, 12 (the RJN 2022 ratios of MODEL.md §3), 6 cells. One database
// that every stop searches, at no error (fmr = fnmr = 0), so searches are cheap and inert.
// ---------------------------------------------------------------------------------------

constexpr double ETHNICITY_SHARE[3] = {0.6, 0.25, 0.15};
constexpr double ETHNICITY_PROPENSITY[3] = {1.0, 4.0, 2.0};
constexpr double SEX_SHARE[2] = {0.5, 0.5};
constexpr double SEX_PROPENSITY[2] = {1.0, 12.0};

std::string stop_world(std::int64_t population, std::int64_t stops, const std::string& dispersion) {
    return R"(
[scenario]
name = stop shares
population = )" +
           std::to_string(population) + R"(
[dimensions]
names = ethnicity, sex
[dimension.ethnicity]
categories = A, B, C
shares = 0.6, 0.25, 0.15
reference = A
[dimension.sex]
categories = F, M
shares = 0.5, 0.5
reference = F
[stops]
total = )" +
           std::to_string(stops) + R"(
propensity = 1
propensity.ethnicity = B:4, C:2
propensity.sex = M:12
dispersion = )" +
           dispersion + R"(
[databases]
names = DB
[database.DB]
role = criminal
size = 1000
enrolment = 1
[matcher.fingerprint.DB]
fmr = 0
fnmr = 0
)";
}

/// Per-cell model quantities of the stop world, from the constants above (not from the
/// library): N_c the cell population the engine reports, and μ_c = S·prop_c / Σ N·prop.
struct StopExpectation {
    std::vector<double> population, mu;
    std::vector<std::size_t> ethnicity, sex;
};

StopExpectation expect_stops(const Run& run, double stops) {
    StopExpectation e;
    double mass = 0;
    for (std::size_t c = 0; c < run.results.cells(); ++c) {
        e.ethnicity.push_back(run.category[c][0]);
        e.sex.push_back(run.category[c][1]);
        e.population.push_back(static_cast<double>(run.results.cell_population[c]));
        mass += e.population.back() * ETHNICITY_PROPENSITY[e.ethnicity.back()] *
                SEX_PROPENSITY[e.sex.back()];
    }
    for (std::size_t c = 0; c < run.results.cells(); ++c)
        e.mu.push_back(stops * ETHNICITY_PROPENSITY[e.ethnicity[c]] * SEX_PROPENSITY[e.sex[c]] /
                       mass);
    return e;
}

/// The cell populations are population × share rounded (MODEL.md §2); check them first, so
/// a wrong split cannot hide in the expectations.
void require_cell_populations(const Run& run, const StopExpectation& e, double population) {
    for (std::size_t c = 0; c < run.results.cells(); ++c)
        REQUIRE(e.population[c] ==
                std::round(population * ETHNICITY_SHARE[e.ethnicity[c]] * SEX_SHARE[e.sex[c]]));
}

}  // namespace

// MODEL.md §3, Poisson stops (stops.dispersion = inf).
//
// Each of the N_c persons of cell c is stopped Y ~ Poisson(μ_c) times, μ_c = S·prop_c / Σ_c'
// N_c'·prop_c'. The engine draws the stopped persons as Binomial(N_c, 1 − e^{−μ_c}) and each
// one's count from the zero-truncated Poisson, which is the same law as N_c independent
// Poisson(μ_c) counts; so the cell's total is Poisson(N_c μ_c), cells and replications are
// independent, and a group's total over R replications is Poisson(E_g) with
// E_g = R Σ_{c∈g} N_c μ_c: sd = √E_g. 5 assertions (3 ethnicities + 2 sexes), z = 5.20.
//
// Sizes: N = 2e5, S = 1e5, R = 4, so 4e5 stops in all. Shares of stops:
// Σ N prop = N·(0.6 + 1.0 + 0.3)·(0.5 + 6) = 12.35 N; ethnicity A 0.6/1.9 = 31.6 %,
// B 52.6 %, C 15.8 %; sex F 1/13 = 7.7 %, M 92.3 %. The smallest group, F, has E = 30 769,
// sd 175, half-width 912 = 3.0 % of E; a 10 % error (3 077) is caught with power > 0.999.
TEST_CASE("stop totals by group follow population x propensity (Poisson stops)", "[stat][stops]") {
    constexpr std::int64_t N = 200000;
    constexpr std::int64_t S = 100000;
    const Run run = simulate(stop_world(N, S, "inf"), 4, {"dual-search"}, 101);
    const StopExpectation e = expect_stops(run, S);
    require_cell_populations(run, e, N);
    const double z = bonferroni_z(5);
    const double R = static_cast<double>(run.replications());
    for (std::size_t dim = 0; dim < 2; ++dim) {
        for (std::size_t k = 0; k < (dim == 0 ? 3u : 2u); ++k) {
            const auto in_group = [&](std::size_t c) {
                return (dim == 0 ? e.ethnicity[c] : e.sex[c]) == k;
            };
            double expected = 0;
            for (std::size_t c = 0; c < run.results.cells(); ++c)
                if (in_group(c)) expected += R * e.population[c] * e.mu[c];
            const auto observed = run.total(0, MetricLayout::STOPS, in_group);
            check_count((dim == 0 ? "stops of ethnicity " : "stops of sex ") + std::to_string(k),
                        static_cast<double>(observed), expected, z,
                        [=](double s) { return std::sqrt(s * expected); });
        }
    }
}

// MODEL.md §3, negative binomial stops (stops.dispersion = k = 0.5).
//
// Now Y ~ NB(mean μ_c, dispersion k): Var Y = μ_c + μ_c²/k (a gamma–Poisson mixture). The
// engine's binomial-then-zero-truncated draw is again the law of N_c independent Y's, so
// the cell total T_c = Σ_{i≤N_c} Y_i has E = N_c μ_c and, the persons being independent,
// Var T_c = N_c (μ_c + μ_c²/k) — not the Poisson N_c μ_c: with μ ≈ 3.9 in cell (B, M) the
// variance is 8.8 times the Poisson one, so a Poisson bound would be far too narrow.
// A group's total over R replications: E_g = R Σ_{c∈g} N_c μ_c,
// Var_g = R Σ_{c∈g} N_c (μ_c + μ_c²/k). Under a 10 % mean error (μ → sμ, the same k)
// Var = R Σ N_c (sμ_c + s²μ_c²/k). 5 assertions, z = 5.20.
//
// Sizes: N = 2e5, S = 2e5 (mean μ 1 per person, from 0.081 in (A, F) to 3.89 in (B, M)),
// R = 6. The tightest group, F: E = 92 308, sd 365, half-width 1 898 = 2.1 % of E.
// The skewness of the group totals (third cumulant of NB: μ(1 + μ/k)(1 + 2μ/k) per person)
// is 0.0054 (F) and 0.0052 (M): normal is fine.
TEST_CASE("stop totals by group follow population x propensity (negative binomial stops)",
          "[stat][stops]") {
    constexpr std::int64_t N = 200000;
    constexpr std::int64_t S = 200000;
    constexpr double K = 0.5;
    const Run run = simulate(stop_world(N, S, "0.5"), 6, {"dual-search"}, 202);
    const StopExpectation e = expect_stops(run, S);
    require_cell_populations(run, e, N);
    const double z = bonferroni_z(5);
    const double R = static_cast<double>(run.replications());
    for (std::size_t dim = 0; dim < 2; ++dim) {
        for (std::size_t k = 0; k < (dim == 0 ? 3u : 2u); ++k) {
            std::vector<std::size_t> group;
            for (std::size_t c = 0; c < run.results.cells(); ++c)
                if ((dim == 0 ? e.ethnicity[c] : e.sex[c]) == k) group.push_back(c);
            double expected = 0;
            for (const auto c : group) expected += R * e.population[c] * e.mu[c];
            const auto variance = [&e, group, R, K](double s) {
                double v = 0;
                for (const auto c : group)
                    v += R * e.population[c] * (s * e.mu[c] + s * s * e.mu[c] * e.mu[c] / K);
                return v;
            };
            const auto observed = run.total(0, MetricLayout::STOPS, [&](std::size_t c) {
                return (dim == 0 ? e.ethnicity[c] : e.sex[c]) == k;
            });
            check_count((dim == 0 ? "stops of ethnicity " : "stops of sex ") + std::to_string(k),
                        static_cast<double>(observed), expected, z,
                        [variance](double s) { return std::sqrt(variance(s)); });
        }
    }
}

// MODEL.md §3, repeat stops: persons stopped at least once.
//
// With Y ~ NB(μ, k), P(Y ≥ 1) = 1 − (1 + μ/k)^{−k}; Poisson (k = inf): 1 − e^{−μ}. Persons
// are independent, so persons_stopped of a cell summed over R replications is
// Binomial(R N_c, P(Y ≥ 1)). One dimension, sex F/M with shares 1/2 and propensity M:3,
// N = 1e5, S = 2e5: Σ N prop = 2e5, so μ_F = 1 and μ_M = 3 exactly (μ = 1 is not tiny, so
// repeats matter: P(Y ≥ 1) = 0.423 vs 0.632 for k = 0.5 vs Poisson). Two runs (k = 0.5,
// k = inf) × 2 cells = 4 assertions, z = 5.16.
//
// Expected shares: k = 0.5: F 1 − 3^{−1/2} = 0.4226, M 1 − 7^{−1/2} = 0.6220;
// Poisson: F 0.6321, M 0.9502. R = 4, so n = 2e5 persons per cell and run. Tightest:
// k = 0.5, F: E = 84 530, sd 221, half-width 1 139 = 1.3 % of E. For M under Poisson a
// +10 % error is impossible (p > 1) and only −10 % is checked.
TEST_CASE("persons stopped at least once follow P(Y >= 1) of the stop-count law", "[stat][stops]") {
    constexpr std::int64_t N = 100000;
    const std::string ini_head = R"(
[scenario]
name = repeat stops
population = 100000
[dimensions]
names = sex
[dimension.sex]
categories = F, M
shares = 0.5, 0.5
reference = F
[stops]
total = 200000
propensity = 1
propensity.sex = M:3
)";
    const std::string ini_tail = R"(
[databases]
names = DB
[database.DB]
role = criminal
size = 1000
enrolment = 1
[matcher.fingerprint.DB]
fmr = 0
fnmr = 0
)";
    const double z = bonferroni_z(4);
    struct Case {
        const char* dispersion;
        double k;
        std::uint64_t seed;
    };
    for (const Case& kase :
         {Case{"0.5", 0.5, 303}, Case{"inf", std::numeric_limits<double>::infinity(), 304}}) {
        const Run run = simulate(ini_head + "dispersion = " + kase.dispersion + "\n" + ini_tail, 4,
                                 {"dual-search"}, kase.seed);
        for (std::size_t c = 0; c < run.results.cells(); ++c) {
            REQUIRE(run.results.cell_population[c] == N / 2);
            const double mu = run.category[c][0] == 0 ? 1.0 : 3.0;
            const double p = std::isinf(kase.k) ? -std::expm1(-mu)
                                                : -std::expm1(-kase.k * std::log1p(mu / kase.k));
            const auto persons =
                run.total(0, MetricLayout::PERSONS_STOPPED, [c](std::size_t x) { return x == c; });
            const auto n =
                static_cast<std::uint64_t>(run.results.cell_population[c]) * run.replications();
            check_binomial(std::string("persons stopped, k = ") + kase.dispersion +
                               ", mu = " + std::to_string(mu),
                           persons, n, p, z);
        }
    }
}

// MODEL.md §5, direct 1:N form: false-positive identification rate of non-mated searches.
//
// Every stopped person is unenrolled in DB (enrolment factor 0 for groups A, B, C), so
// every search is non-mated. The gallery (M = 2e5 records) belongs to group G, which is
// never stopped (propensity 0): a scenario whose gallery has no owners is refused by
// validation ("the gallery would be empty"), so G holds it. A probe of cell c returns a
// false match with FPIR_c = 1 − Π_g (1 − FMR_c)^{m_g} = 1 − (1 − FMR_c)^M, FMR_c =
// 1e-6 × factor: A ×1 → FPIR 0.18127, B ×5 → 0.63212, C ×0.5 → 0.09516. The engine draws
// each search's outcome from uniforms keyed by (person, stop, database), so given the
// number of searches n_c the false matches are Binomial(n_c, FPIR_c) — also for repeat
// stops of one person, since nothing about a non-mated search is persistent.
// 3 assertions, z = 5.10.
//
// Sizes: N = 1e6 (0.3 each for A, B, C), S = 3e5, R = 4, Poisson stops: ~4e5 searches per
// group. Tightest: C, E ≈ 38 000 false matches, sd 186, half-width ≈ 950 = 2.5 % of E.
TEST_CASE("false matches of non-mated searches occur at FPIR = 1 - (1 - FMR)^M per group",
          "[stat][matching]") {
    const std::string ini = R"(
[scenario]
name = fpir
population = 1000000
[dimensions]
names = group
[dimension.group]
categories = A, B, C, G
shares = 0.3, 0.3, 0.3, 0.1
reference = A
[stops]
total = 300000
propensity = 1
propensity.group = G:0
[databases]
names = DB
[database.DB]
role = criminal
size = 200000
enrolment = 1
enrolment.group = A:0, B:0, C:0
[matcher.fingerprint.DB]
fmr = 1e-6
fmr.group = B:5, C:0.5
fnmr = 0
)";
    constexpr double M = 200000;
    constexpr double FMR[3] = {1e-6, 5e-6, 0.5e-6};
    const Run run = simulate(ini, 4, {"dual-search"}, 405);
    const MetricLayout& layout = run.results.layout;
    const double z = bonferroni_z(3);
    for (std::size_t g = 0; g < 3; ++g) {
        const auto in_group = [&](std::size_t c) { return run.category[c][0] == g; };
        const auto searches = run.total(0, layout.at(0, MetricLayout::SEARCHES), in_group);
        const auto false_matches =
            run.total(0, layout.at(0, MetricLayout::FALSE_MATCHES), in_group);
        REQUIRE(run.total(0, layout.at(0, MetricLayout::TRUE_MATCHES), in_group) ==
                0);  // no one is enrolled
        const double fpir = -std::expm1(M * std::log1p(-FMR[g]));
        check_binomial("false matches of group " + std::string(1, "ABC"[g]), false_matches,
                       searches, fpir, z);
    }
    // G is never stopped, so it is never searched.
    REQUIRE(run.total(0, MetricLayout::STOPS,
                      [&](std::size_t c) { return run.category[c][0] == 3; }) == 0);
}

// MODEL.md §5: false non-matches of mated searches.
//
// Everybody is enrolled (no wrong links), FMR = 0, so a search returns the person's own
// record unless a false non-match, which has probability FNMR_c = 0.05 × factor: A 0.05,
// B 0.10 (factor 2), and a non-mated retry cannot false-match (FPIR = 0). The draw is keyed
// per (person, stop, database) and nothing about it is persistent, so given n_c searches
// the misses n_c − true_matches_c are Binomial(n_c, FNMR_c). The tested rate is FNMR
// (power is stated against a 10 % error in FNMR, not in 1 − FNMR). 2 assertions, z = 5.03.
//
// Sizes: N = 1e6 (A, B halves), S = 3e5, R = 4: 6e5 searches per group. Tightest: A,
// E = 30 000 misses, sd 169, half-width 848 = 2.8 % of E.
TEST_CASE("true matches of mated searches occur at 1 - FNMR per group", "[stat][matching]") {
    const std::string ini = R"(
[scenario]
name = fnmr
population = 1000000
[dimensions]
names = group
[dimension.group]
categories = A, B
shares = 0.5, 0.5
reference = A
[stops]
total = 300000
propensity = 1
[databases]
names = DB
[database.DB]
role = criminal
size = 1000000
enrolment = 1
[matcher.fingerprint.DB]
fmr = 0
fnmr = 0.05
fnmr.group = B:2
)";
    constexpr double FNMR[2] = {0.05, 0.10};
    const Run run = simulate(ini, 4, {"dual-search"}, 506);
    const MetricLayout& layout = run.results.layout;
    const double z = bonferroni_z(2);
    for (std::size_t g = 0; g < 2; ++g) {
        const auto in_group = [&](std::size_t c) { return run.category[c][0] == g; };
        const auto searches = run.total(0, layout.at(0, MetricLayout::SEARCHES), in_group);
        const auto true_matches = run.total(0, layout.at(0, MetricLayout::TRUE_MATCHES), in_group);
        REQUIRE(run.total(0, layout.at(0, MetricLayout::FALSE_MATCHES), in_group) == 0);  // FMR = 0
        REQUIRE(true_matches <= searches);
        check_binomial("false non-matches of group " + std::string(1, "AB"[g]),
                       searches - true_matches, searches, FNMR[g], z);
    }
}

namespace {

// One-cell world for the record-error tests (MODEL.md §4): everybody enrolled, perfect
// matching (fnmr = fmr = 0), nobody's truth adverse, and arrest = 1 after a flag, so every
// flagged hit is exactly one wrongful arrest. Poisson stops with μ = S/N = 0.5.
std::string record_world(const std::string& record_errors) {
    return R"(
[scenario]
name = record errors
population = 1000000
[dimensions]
names = group
[dimension.group]
categories = X
shares = 1
reference = X
[stops]
total = 500000
propensity = 1
dispersion = inf
[databases]
names = DB
[database.DB]
role = criminal
size = 1000000
enrolment = 1
truth = 0
arrest = 1
)" + record_errors +
           R"(
[matcher.fingerprint.DB]
fmr = 0
fnmr = 0
)";
}

constexpr double RECORD_MU = 0.5;

/// The two assertions of a record-error test, `rate` the per-person error probability.
///
/// (a) Person level, exact: the record (and its error) is drawn once per person, from the
/// person's key, independently of the number of stops; every stop returns the person's own
/// (or wrongly linked) record, which is flagged iff the error is present, and a flag is a
/// wrongful arrest. So persons_wrongfully_affected ~ Binomial(persons_stopped, rate),
/// conditionally on persons_stopped.
///
/// (b) Stop level, record_error_hits H over searches T. Records are persistent, so the hits
/// of one person's Y_i stops are all or nothing: H = Σ_i Y_i E_i, E_i ~ Bernoulli(rate)
/// independent of the Y's. Given the Y's, E[H] = rate·T and Var H = rate(1 − rate) Σ Y_i²,
/// not rate(1 − rate)·T. Σ Y_i² = T·D̂ with D̂ → D = E[Y²]/E[Y] (zero-stopped persons add
/// nothing to either sum, so the truncation cancels): for Poisson Y, D = (μ + μ²)/μ = 1 + μ
/// = 1.5 here — the design effect. The plug-in D for D̂ errs by little: over the 2e6
/// person-replications, Σ (Y² − D·Y) has sd √(2e6 · Var(Y² − D·Y)) = √(2e6 · 0.625) = 1 118
/// against T ≈ 1e6, so D̂ = D ± 0.07 %, which moves the effective z by < 0.005.
void check_record_errors(const Run& run, double rate, double z) {
    const MetricLayout& layout = run.results.layout;
    const auto persons = run.total(0, MetricLayout::PERSONS_STOPPED);
    const auto affected = run.total(0, MetricLayout::PERSONS_WRONGFULLY_AFFECTED);
    check_binomial("persons with a record error (person level)", affected, persons, rate, z);

    const auto searches = run.total(0, layout.at(0, MetricLayout::SEARCHES));
    const auto hits = run.total(0, layout.at(0, MetricLayout::RECORD_ERROR_HITS));
    REQUIRE(searches == run.total(0, MetricLayout::STOPS));
    // Every record-error hit is flagged and arrests; nothing else can be wrongful.
    REQUIRE(run.total(0, layout.at(0, MetricLayout::WRONGFUL_BY_RECORD_ERROR)) == hits);
    REQUIRE(run.total(0, MetricLayout::WRONGFUL_ARRESTS) == hits);
    REQUIRE(run.total(0, layout.at(0, MetricLayout::FALSE_MATCHES)) == 0);
    const double T = static_cast<double>(searches);
    const double D = 1.0 + RECORD_MU;
    check_count("record-error hits per search (stop level, design effect 1 + mu)",
                static_cast<double>(hits), rate * T, z,
                [=](double s) { return std::sqrt(T * D * s * rate * (1.0 - s * rate)); });
}

}  // namespace

// MODEL.md §4: a false flag (record says adverse, truth is not) is met at rate false_flag.
//
// false_flag = 0.1 (see record_world and check_record_errors for the derivation). Every hit
// is the person's own record, so true_matches = searches. 2 assertions, z = 5.03.
// Sizes: N = 1e6, S = 5e5, R = 2: ~7.9e5 stopped persons, ~1e6 searches.
// (a) E ≈ 78 700 persons, sd 266, half-width 1 337 = 1.7 % of E.
// (b) E ≈ 1e5 hits, sd √(1e6 · 1.5 · 0.09) = 367, half-width 1 846 = 1.8 % of E; the
//     binomial sd √(1e6 · 0.09) = 300 that ignores the persistence would be 18 % too
//     narrow: a false-alarm probability of 4e-5 per assertion instead of 5e-7.
//     Skewness of H given the Y's: third cumulant f(1 − f)(1 − 2f) Σ Y_i³, with
//     Σ Y³ / T → E[Y³]/E[Y] = 1 + 3μ + μ² = 2.75, gives γ ≈ 0.004.
TEST_CASE("false flags are met at the false_flag rate, per person and per search",
          "[stat][records]") {
    const Run run = simulate(record_world("false_flag = 0.1\n"), 2, {"dual-search"}, 607);
    const MetricLayout& layout = run.results.layout;
    REQUIRE(run.total(0, layout.at(0, MetricLayout::TRUE_MATCHES)) ==
            run.total(0, layout.at(0, MetricLayout::SEARCHES)));
    check_record_errors(run, 0.1, bonferroni_z(2));
}

// MODEL.md §4: a wrong link (the person's biometrics point to another identity's record)
// is met at rate wrong_link. With gallery_flag_rate = 1 the linked record is always
// flagged, so a wrong-linked person is wrongfully arrested at every stop and nobody else
// is. A wrong-link hit is a record error, not a true match: true_matches = searches − hits.
// wrong_link = 0.05. 2 assertions, z = 5.03. Sizes as above:
// (a) E ≈ 39 300 persons, sd 194, half-width 972 = 2.5 % of E.
// (b) E ≈ 50 000 hits, sd √(1e6 · 1.5 · 0.0475) = 267, half-width 1 342 = 2.7 % of E.
TEST_CASE("wrong links are met at the wrong_link rate, per person and per search",
          "[stat][records]") {
    const Run run = simulate(record_world("wrong_link = 0.05\ngallery_flag_rate = 1\n"), 2,
                             {"dual-search"}, 708);
    const MetricLayout& layout = run.results.layout;
    REQUIRE(run.total(0, layout.at(0, MetricLayout::TRUE_MATCHES)) +
                run.total(0, layout.at(0, MetricLayout::RECORD_ERROR_HITS)) ==
            run.total(0, layout.at(0, MetricLayout::SEARCHES)));
    check_record_errors(run, 0.05, bonferroni_z(2));
}

// MODEL.md §6 and §9: common random numbers across policies. Exact, no tolerance.
//
// (a) Adding a policy leaves the shared draws unchanged: the default scenario run with
// {dual-search, firewall} and with {firewall} alone gives bit-identical firewall tallies in
// every replication, cell and metric — although only the first run searches IABS at all.
// (b) Within one run, every IDENT1 search outcome (searches, true and false matches,
// record-error hits) and the stops and persons are identical under dual-search and firewall:
// the policies differ only in IABS access.
TEST_CASE("policies share their random numbers: adding one changes nobody's draws", "[stat][crn]") {
    const std::string text(stopscan::default_scenario_text());
    const Run both = simulate(text, 3, {"dual-search", "firewall"}, 809);
    const Run alone = simulate(text, 3, {"firewall"}, 809);
    const auto& layout = both.results.layout;
    const std::size_t iabs = *both.results.plan.scenario->find_database("IABS");
    const std::size_t ident1 = *both.results.plan.scenario->find_database("IDENT1");
    REQUIRE(alone.results.cells() == both.results.cells());
    REQUIRE(alone.results.layout.size() == layout.size());

    std::uint64_t compared = 0;
    std::uint64_t differing = 0;
    for (std::size_t rep = 0; rep < both.replications(); ++rep)
        for (std::size_t c = 0; c < both.results.cells(); ++c) {
            const auto* a = both.results.row(rep, 1, c);
            const auto* b = alone.results.row(rep, 0, c);
            for (std::size_t k = 0; k < layout.size(); ++k, ++compared) differing += a[k] != b[k];
        }
    INFO(differing << " of " << compared << " firewall tallies change when dual-search is added");
    CHECK(differing == 0);

    // Not vacuous: the runs did stop people, and dual-search searched IABS at every stop.
    const auto stops = both.total(0, MetricLayout::STOPS);
    CHECK(stops > 0);
    CHECK(both.total(0, layout.at(iabs, MetricLayout::SEARCHES)) == stops);

    for (const std::size_t k :
         {std::size_t{MetricLayout::STOPS}, std::size_t{MetricLayout::PERSONS_STOPPED},
          layout.at(ident1, MetricLayout::SEARCHES), layout.at(ident1, MetricLayout::TRUE_MATCHES),
          layout.at(ident1, MetricLayout::FALSE_MATCHES),
          layout.at(ident1, MetricLayout::RECORD_ERROR_HITS)}) {
        std::uint64_t mismatches = 0;
        for (std::size_t rep = 0; rep < both.replications(); ++rep)
            for (std::size_t c = 0; c < both.results.cells(); ++c)
                mismatches += both.results.row(rep, 0, c)[k] != both.results.row(rep, 1, c)[k];
        INFO(layout.name(k) << ": " << mismatches
                            << " (replication, cell) rows differ between dual-search and firewall");
        CHECK(mismatches == 0);
    }
}

// MODEL.md §6: the firewall removes police access to IABS, so no IABS search and no
// IABS-caused wrongful outcome can happen — exactly zero in every replication — while the
// status quo (dual-search) produces some.
//
// The positive total is a stochastic assertion (1 in this family, alpha = 1e-6), bounded
// exactly rather than by a normal approximation. A stopped person of cell c who is enrolled
// in IABS, has lawful leave (truth not adverse), no wrong link and a false flag (all drawn
// once per person, independently of the stop count) meets at the first stop a
// fingerprint search (share m_fp), no false non-match (1 − fnmr) and a Home Office
// referral (ho_referral), which under dual-search (verify = 0) is wrongful and caused by a
// record error. So, given the stopped persons, P(person i has none) ≤ 1 − q_c with
// q_c = enrol·(1 − truth)·(1 − wrong_link)·false_flag·m_fp·(1 − fnmr)·ho_referral, persons
// are independent, and P(total = 0) ≤ Π_c (1 − q_c)^{L_c} with L_c the cell's stopped
// persons (observed). For limited-leave cells of the default scenario q = 0.45 × 0.9997 ×
// 0.01 × 0.999 × 0.9 = 0.00404, and with ~60 000 stopped persons per replication, ~9 % with
// limited leave, R = 20 gives L ≈ 1e5 and a bound near e^{−400} (the seed's run: e^{−514},
// with 847 such outcomes observed); the test requires the bound, computed from the
// scenario's parameters and the observed L_c, to be below alpha before asserting.
TEST_CASE("the firewall has no IABS searches or IABS-caused harm, dual-search has some",
          "[stat][firewall]") {
    const std::string text(stopscan::default_scenario_text());
    const Run run = simulate(text, 20, {"dual-search", "firewall"}, 910);
    const auto& scenario = *run.results.plan.scenario;
    const auto& layout = run.results.layout;
    const std::size_t iabs = *scenario.find_database("IABS");
    constexpr std::size_t DUAL = 0;
    constexpr std::size_t FIREWALL = 1;

    for (std::size_t rep = 0; rep < run.replications(); ++rep) {
        std::uint64_t searches = 0, by_false_match = 0, by_record_error = 0;
        for (std::size_t c = 0; c < run.results.cells(); ++c) {
            const auto* row = run.results.row(rep, FIREWALL, c);
            searches += row[layout.at(iabs, MetricLayout::SEARCHES)];
            by_false_match += row[layout.at(iabs, MetricLayout::WRONGFUL_BY_FALSE_MATCH)];
            by_record_error += row[layout.at(iabs, MetricLayout::WRONGFUL_BY_RECORD_ERROR)];
        }
        INFO("replication " << rep);
        CHECK(searches == 0);
        CHECK(by_false_match == 0);
        CHECK(by_record_error == 0);
    }

    // The bound on P(dual-search total = 0), from the scenario's own parameters.
    const stopscan::Database& db = scenario.databases[iabs];
    const stopscan::CellTable cells(scenario.dimensions, scenario.population);
    REQUIRE(cells.size() == run.results.cells());
    REQUIRE(db.matchers[0].has_value());
    const double m_fp = scenario.modality_share[0];
    double log_p_zero = 0;
    for (std::size_t c = 0; c < cells.size(); ++c) {
        const double q = cells.value(db.enrolment, c) * (1.0 - cells.value(db.truth, c)) *
                         (1.0 - cells.value(db.wrong_link, c)) * cells.value(db.false_flag, c) *
                         m_fp * (1.0 - cells.value(db.matchers[0]->fnmr, c)) *
                         cells.value(db.ho_referral, c);
        const auto stopped =
            run.total(DUAL, MetricLayout::PERSONS_STOPPED, [c](std::size_t x) { return x == c; });
        log_p_zero += static_cast<double>(stopped) * std::log1p(-q);
    }
    INFO("P(no IABS-caused wrongful outcome under dual-search) <= exp(" << log_p_zero << ")");
    REQUIRE(log_p_zero < std::log(FAMILY_ALPHA));
    const auto harmed = run.total(DUAL, layout.at(iabs, MetricLayout::WRONGFUL_BY_FALSE_MATCH)) +
                        run.total(DUAL, layout.at(iabs, MetricLayout::WRONGFUL_BY_RECORD_ERROR));
    INFO("IABS-caused wrongful outcomes under dual-search over " << run.replications()
                                                                 << " replications: " << harmed);
    CHECK(harmed > 0);
}
