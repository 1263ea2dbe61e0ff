// Unit tests of the exact impostor-maximum sampler of a 1:N search (impostor_max.hpp).
//
// Reference values of P(max of M iid N(0,1) > x) are copied from
// ../shared/data/max-of-m-tail.csv (20 significant digits, 50-digit arithmetic), so that the
// tests read no file at run time; two more, marked "mpmath", were computed the same way
// (mpmath 1.3.0, 50 digits).
//
// Statistical checks use fixed seeds and tolerances derived from theory (STYLE.md,
// "Testing stochastic code"). Each TEST_CASE is one family with total false-alarm
// probability alpha = 1e-6, split evenly over its tests (Bonferroni):
//  - a one-sample Kolmogorov-Smirnov check against an exact continuous CDF F uses the
//    Dvoretzky-Kiefer-Wolfowitz inequality with Massart's constant (Ann. Probab.
//    18:1269-1283, 1990): P(sup_x |F_n(x) - F(x)| > eps) <= 2 exp(-2 n eps^2), so
//    eps = sqrt(ln(2 / alpha_i) / (2 n)) has false-alarm probability <= alpha_i, for every n
//    (no asymptotic Kolmogorov distribution involved);
//  - a two-sample check of samples of sizes n1, n2 from the same continuous F uses the
//    triangle inequality sup|F1 - F2| <= sup|F1 - F| + sup|F2 - F| and DKW on each side with
//    alpha_i / 2: eps = sqrt(ln(4 / alpha_i) / (2 n1)) + sqrt(ln(4 / alpha_i) / (2 n2)). When
//    n2 is itself random (the eager draws that landed above tau), DKW holds given n2, hence
//    unconditionally;
//  - a count k of n independent trials with probability p is checked two-sided by
//    |k - n p| <= z sqrt(n p (1 - p)), z = Q^-1(alpha_i / 2) (central limit theorem; every
//    n p and n (1 - p) here is >= 900, where the binomial's skewness is <= 0.03).
// The quantiles z are computed below by bisection on std::erfc (independent of the code
// under test), not typed in.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <utility>
#include <vector>

#include "stopscan/impostor_max.hpp"
#include "stopscan/random.hpp"

namespace {

using stopscan::ImpostorGallery;
using stopscan::Purpose;
using stopscan::ReplicationKey;
using stopscan::UniformStream;

constexpr std::uint64_t SEED = 20240611;  // fixed: every statistical check is reproducible
constexpr double FAMILY_ALPHA = 1e-6;
constexpr double INF = std::numeric_limits<double>::infinity();
constexpr double NAN_VALUE = std::numeric_limits<double>::quiet_NaN();

/// z with Q(z) = alpha, Q(z) = erfc(z / sqrt 2) / 2, by bisection (Q is monotone).
double normal_upper_quantile(double alpha) {
    double lo = 0.0;
    double hi = 40.0;
    for (int i = 0; i < 200; ++i) {
        const double mid = 0.5 * (lo + hi);
        (0.5 * std::erfc(mid / std::sqrt(2.0)) > alpha ? lo : hi) = mid;
    }
    return 0.5 * (lo + hi);
}

/// DKW radius for n draws at false-alarm probability alpha.
double dkw_epsilon(double n, double alpha) {
    return std::sqrt(std::log(2.0 / alpha) / (2.0 * n));
}

/// sup_x |F_n(x) - F(x)| for the sample `xs` and a continuous CDF `cdf`.
template <class Cdf>
double ks_distance(std::vector<double> xs, Cdf cdf) {
    std::sort(xs.begin(), xs.end());
    const double n = static_cast<double>(xs.size());
    double d = 0.0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const double f = cdf(xs[i]);
        d = std::max({d, f - static_cast<double>(i) / n, static_cast<double>(i + 1) / n - f});
    }
    return d;
}

/// sup_x |F1(x) - F2(x)| for two samples' empirical CDFs.
double ks_two_sample(std::vector<double> a, std::vector<double> b) {
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    const double na = static_cast<double>(a.size());
    const double nb = static_cast<double>(b.size());
    std::size_t i = 0;
    std::size_t j = 0;
    double d = 0.0;
    while (i < a.size() && j < b.size()) {
        const double x = std::min(a[i], b[j]);
        while (i < a.size() && a[i] <= x) ++i;
        while (j < b.size() && b[j] <= x) ++j;
        d = std::max(d, std::fabs(static_cast<double>(i) / na - static_cast<double>(j) / nb));
    }
    return d;
}

/// Two-sided binomial bound: |k - n p| <= z sqrt(n p (1 - p)).
bool binomial_ok(double k, double n, double p, double z) {
    return std::fabs(k - n * p) <= z * std::sqrt(n * p * (1.0 - p));
}

/// One gallery group, for the test's independent formulas.
struct Group {
    double m;
    double delta;
};

// The multi-group gallery of the brief: one empty group, deltas on both sides of 0.
const std::vector<double> MULTI_M = {1e6, 2e6, 5e5, 0.0, 3e6};
const std::vector<double> MULTI_DELTA = {0.0, 0.3, -0.2, 0.0, 0.5};
constexpr double MULTI_TAU = 5.8;  // FPIR = 0.19385543484695852112 (mpmath)

/// log P(max <= x) of the gallery, from std::erfc (independent of normal_tail.cpp).
double log_cdf_max(const std::vector<double>& m, const std::vector<double>& delta, double x) {
    double s = 0.0;
    for (std::size_t g = 0; g < m.size(); ++g) {
        if (m[g] > 0.0) s += m[g] * std::log1p(-0.5 * std::erfc((x - delta[g]) / std::sqrt(2.0)));
    }
    return s;
}

/// P(group g holds the maximum and the maximum lies in [lo, hi]) =
///   int_lo^hi m_g phi(x - d_g) Phi(x - d_g)^(m_g - 1) prod_{i != g} Phi(x - d_i)^(m_i) dx
///   = int_lo^hi m_g phi(x - d_g) / Phi(x - d_g) * F(x) dx,  F = P(max <= x),
/// by composite Simpson with `intervals` (even) steps.
double group_holds_max(const std::vector<double>& m, const std::vector<double>& delta,
                       std::size_t g, double lo, double hi, int intervals) {
    const double h = (hi - lo) / intervals;
    auto f = [&](double x) {
        const double y = x - delta[g];
        const double phi = std::exp(-0.5 * y * y) / std::sqrt(2.0 * std::numbers::pi);
        const double cdf = 1.0 - 0.5 * std::erfc(y / std::sqrt(2.0));
        return m[g] * phi / cdf * std::exp(log_cdf_max(m, delta, x));
    };
    double s = f(lo) + f(hi);
    for (int k = 1; k < intervals; ++k) s += (k % 2 == 1 ? 4.0 : 2.0) * f(lo + k * h);
    return s * h / 3.0;
}

}  // namespace

TEST_CASE("tail matches max-of-m-tail.csv for one standard-normal group", "[impostor_max]") {
    struct Row {
        double m;
        double x;
        double p;
    };
    // ../shared/data/max-of-m-tail.csv, every row: M, x, P(max of M iid N(0,1) > x).
    constexpr std::array<Row, 48> ROWS = {{
        {1, 0, 0.5},
        {1, 2, 0.0227501319481792072},
        {1, 4, 0.000031671241833119921254},
        {1, 5, 2.8665157187919391167e-7},
        {1, 6, 9.865876450376981407e-10},
        {1, 6.5, 4.0160005838591178083e-11},
        {1, 7, 1.2798125438858350044e-12},
        {1, 8, 6.2209605742717841235e-16},
        {10, 0, 0.9990234375},
        {10, 2, 0.20556895983294147771},
        {10, 4, 0.00031666728410302902106},
        {10, 5, 2.8665120211842008478e-6},
        {10, 6, 9.8658764065759983619e-9},
        {10, 6.5, 4.0160005831333460774e-10},
        {10, 7, 1.2798125438784643637e-11},
        {10, 8, 6.2209605742717667084e-15},
        {10000, 0, 1.0},
        {10000, 2, 1.0},
        {10000, 4, 0.27146341412315315873},
        {10000, 5, 0.0028624115951183721477},
        {10000, 6, 9.8658277876446918885e-6},
        {10000, 6.5, 4.0159997775268325534e-7},
        {10000, 7, 1.2798125356970532619e-8},
        {10000, 8, 6.2209605742524358833e-12},
        {10000000, 0, 1.0},
        {10000000, 2, 1.0},
        {10000000, 4, 1.0},
        {10000000, 5, 0.94310319722289523987},
        {10000000, 6, 0.009817368352180804124},
        {10000000, 6.5, 0.00040151942788462519746},
        {10000000, 7, 0.000012798043543208535837},
        {10000000, 8, 6.2209605549216108653e-9},
        {1000000000, 0, 1.0},
        {1000000000, 2, 1.0},
        {1000000000, 4, 1.0},
        {1000000000, 5, 1.0},
        {1000000000, 6, 0.6271531917807103587},
        {1000000000, 6.5, 0.039364280470026136757},
        {1000000000, 7, 0.0012789939330729469295},
        {1000000000, 8, 6.2209586392546639819e-7},
        {8700000, 0, 1.0},
        {8700000, 2, 1.0},
        {8700000, 4, 1.0},
        {8700000, 5, 0.91741019504639758497},
        {8700000, 6, 0.0085465810568462071237},
        {8700000, 6.5, 0.00034933102050821716776},
        {8700000, 7, 0.000011134307144955969478},
        {8700000, 8, 5.4122356849703062632e-9},
    }};
    for (const Row& row : ROWS) {
        CAPTURE(row.m, row.x, row.p);
        const ImpostorGallery gallery({row.m}, {0.0}, row.x);
        // 1e-12 is the contract; the formula's own error is ~6 eps (Q to 4 eps, one log1p,
        // one product, and -expm1, whose relative condition number is <= 1).
        CHECK(std::fabs(gallery.tail(row.x) - row.p) <= 1e-12 * row.p);
        CHECK(gallery.fpir() == gallery.tail(row.x));
        CHECK(gallery.group_exceed().at(0) == gallery.fpir());
    }

    // mpmath: a fractional expected count, m = 0.5 at x = 1: 1 - Phi(1)^0.5.
    CHECK(std::fabs(ImpostorGallery({0.5}, {0.0}, 1.0).fpir() - 0.08275153525964244948733) <=
          1e-12 * 0.08275153525964244948733);
    // mpmath: m = 1e45 at x = 40, where Q(40) = 3.7e-350 underflows but m Q = 3.7e-305 does
    // not: only the log-space path gets this right.
    const ImpostorGallery huge({1e45}, {0.0}, 40.0);
    CHECK(std::fabs(huge.fpir() - 3.655893540915029703749e-305) <=
          1e-12 * 3.655893540915029703749e-305);
}

TEST_CASE("multi-group tail, fpir and group_exceed are consistent", "[impostor_max]") {
    const ImpostorGallery gallery(MULTI_M, MULTI_DELTA, MULTI_TAU);
    REQUIRE(gallery.size() == 5);
    CHECK(gallery.tau() == MULTI_TAU);
    // mpmath: FPIR at tau = 5.8 (to the 1e-12 of the single-group contract).
    CHECK(std::fabs(gallery.fpir() - 0.1938554348469585211221) <= 1e-12 * 0.19385543484695852);
    // mpmath: the tiny-FPIR gallery of the conditional KS test below, tau = 9.
    CHECK(std::fabs(ImpostorGallery(MULTI_M, MULTI_DELTA, 9.0).fpir() -
                    3.187925379068681339981e-11) <= 1e-12 * 3.187925379068681339981e-11);
    CHECK(gallery.group_exceed()[3] == 0.0);  // the empty group
    for (const double x : {-3.0, 0.0, 4.0, 5.8, 7.0, 9.0, 12.0, 30.0, 45.0}) {
        CAPTURE(x);
        // 1 - tail = prod over groups of the single-group 1 - tail, and equals the test's own
        // erfc formula. Both sides are ~6 eps accurate; 1e-13 relative in the complement
        // (which is what tail() returns) is a loose bound for the five-factor product.
        double complement = 1.0;
        for (std::size_t g = 0; g < MULTI_M.size(); ++g) {
            const ImpostorGallery one({MULTI_M[g]}, {MULTI_DELTA[g]}, x);
            complement *= 1.0 - one.tail(x);
            if (x == MULTI_TAU)
                CHECK(one.fpir() == Approx(gallery.group_exceed()[g]).epsilon(1e-14));
        }
        const double tail = gallery.tail(x);
        CHECK(std::fabs((1.0 - tail) - complement) <= 1e-13);
        if (x < 8.0) {  // the test's log1p(-erfc) formula is accurate while Q(x - d) >> 1e-16
            CHECK(std::fabs(tail - (-std::expm1(log_cdf_max(MULTI_M, MULTI_DELTA, x)))) <=
                  1e-12 * tail);
        }
    }
    CHECK(gallery.fpir() == gallery.tail(MULTI_TAU));
    CHECK(gallery.tail(-INF) == 1.0);
    CHECK(gallery.tail(INF) == 0.0);
}

TEST_CASE("ImpostorGallery rejects bad input and handles empty galleries", "[impostor_max]") {
    CHECK_THROWS_AS(ImpostorGallery({1.0, 2.0}, {0.0}, 3.0), std::invalid_argument);
    CHECK_THROWS_AS(ImpostorGallery({-1.0}, {0.0}, 3.0), std::invalid_argument);
    CHECK_THROWS_AS(ImpostorGallery({NAN_VALUE}, {0.0}, 3.0), std::invalid_argument);
    CHECK_THROWS_AS(ImpostorGallery({INF}, {0.0}, 3.0), std::invalid_argument);
    CHECK_THROWS_AS(ImpostorGallery({1.0}, {NAN_VALUE}, 3.0), std::invalid_argument);
    CHECK_THROWS_AS(ImpostorGallery({1.0}, {-INF}, 3.0), std::invalid_argument);
    CHECK_THROWS_AS(ImpostorGallery({1.0}, {0.0}, NAN_VALUE), std::invalid_argument);
    CHECK_THROWS_AS(ImpostorGallery({1.0}, {0.0}, INF), std::invalid_argument);
    CHECK_THROWS_WITH(ImpostorGallery({1.0, -2.0}, {0.0, 0.0}, 3.0),
                      Catch::Contains("m[1]") && Catch::Contains(">= 0"));

    const ReplicationKey key(SEED, 0);
    const std::vector<std::pair<std::vector<double>, std::vector<double>>> empties = {
        {{}, {}}, {{0.0, 0.0}, {1.0, -1.0}}};
    for (const auto& [m, delta] : empties) {
        const ImpostorGallery empty(m, delta, 3.0);
        CHECK(empty.fpir() == 0.0);
        CHECK(empty.tail(-100.0) == 0.0);
        UniformStream u(key, 0, Purpose::Search, 0);
        const ImpostorGallery::Draw d = empty.sample_max(u);
        CHECK(d.score == -INF);
        CHECK(d.group == ImpostorGallery::NO_GROUP);
        CHECK_THROWS_AS(empty.sample_max_above_tau(u), std::logic_error);
    }
}

TEST_CASE("draws are pure functions of the key", "[impostor_max]") {
    const ImpostorGallery gallery(MULTI_M, MULTI_DELTA, MULTI_TAU);
    const ReplicationKey key(SEED, 1);
    for (std::uint64_t entity = 0; entity < 100; ++entity) {
        UniformStream a(key, entity, Purpose::Search, 7);
        UniformStream b(key, entity, Purpose::Search, 7);
        const auto da = gallery.sample_max(a);
        const auto db = gallery.sample_max(b);
        CHECK(da.score == db.score);
        CHECK(da.group == db.group);
        const auto la = gallery.sample_max_above_tau(a);
        const auto lb = gallery.sample_max_above_tau(b);
        CHECK(la.score == lb.score);
        CHECK(la.group == lb.group);
        UniformStream c(key, entity + 1000, Purpose::Search, 7);
        CHECK(gallery.sample_max(c).score != da.score);
    }
}

TEST_CASE("sample_max follows the exact CDF of the maximum (one group, KS)", "[impostor_max]") {
    // Six one-sample KS tests: alpha_i = 1e-6 / 6. With n = 1e5 draws each,
    // eps = sqrt(ln(1.2e7) / 2e5) = 0.0091.
    const std::vector<double> ms = {1.0, 10.0, 1e4, 1e7, 1e9, 0.5};
    const double alpha_i = FAMILY_ALPHA / static_cast<double>(ms.size());
    constexpr int N = 100000;
    const double eps = dkw_epsilon(N, alpha_i);
    const ReplicationKey key(SEED, 2);
    for (std::size_t c = 0; c < ms.size(); ++c) {
        CAPTURE(ms[c], eps);
        const ImpostorGallery gallery({ms[c]}, {0.0}, 0.0);
        std::vector<double> xs(N);
        for (int i = 0; i < N; ++i) {
            UniformStream u(key, static_cast<std::uint64_t>(i), Purpose::Search,
                            static_cast<std::uint32_t>(c));
            const auto d = gallery.sample_max(u);
            REQUIRE(d.group == 0);
            xs[static_cast<std::size_t>(i)] = d.score;
        }
        const double d = ks_distance(xs, [&](double x) { return 1.0 - gallery.tail(x); });
        CAPTURE(d);
        CHECK(d <= eps);
    }
}

TEST_CASE("sample_max_above_tau follows the exact conditional CDF (KS)", "[impostor_max]") {
    struct Case {
        std::vector<double> m;
        std::vector<double> delta;
        double tau;
    };
    const std::vector<Case> cases = {
        {MULTI_M, MULTI_DELTA, MULTI_TAU},  // FPIR 0.19
        {MULTI_M, MULTI_DELTA, 9.0},        // FPIR 3.2e-11: eager rejection is hopeless here
        {MULTI_M, MULTI_DELTA, 3.0},        // FPIR = 1 in double: every p_g = 1
        {{1e45}, {0.0}, 40.0},              // FPIR 3.7e-305, only reachable in log space
        {{0.3, 2.5}, {1.0, 0.0}, 1.0},      // fractional expected counts, FPIR 0.47
    };
    // Five one-sample KS tests: alpha_i = 2e-7; n = 5e4: eps = sqrt(ln(1e7) / 1e5) = 0.0127.
    const double alpha_i = FAMILY_ALPHA / static_cast<double>(cases.size());
    constexpr int N = 50000;
    const double eps = dkw_epsilon(N, alpha_i);
    const ReplicationKey key(SEED, 3);
    for (std::size_t c = 0; c < cases.size(); ++c) {
        const ImpostorGallery gallery(cases[c].m, cases[c].delta, cases[c].tau);
        const double fpir = gallery.fpir();
        CAPTURE(c, fpir, eps);
        REQUIRE(fpir > 0.0);
        std::vector<double> xs(N);
        int above = 0;
        int nonempty = 0;
        for (int i = 0; i < N; ++i) {
            UniformStream u(key, static_cast<std::uint64_t>(i), Purpose::Search,
                            static_cast<std::uint32_t>(c));
            const auto d = gallery.sample_max_above_tau(u);
            above += d.score > cases[c].tau;
            nonempty += d.group < cases[c].m.size() && cases[c].m[d.group] > 0.0;
            xs[static_cast<std::size_t>(i)] = d.score;
        }
        CHECK(above == N);  // the conditioning holds draw by draw, not only in law
        CHECK(nonempty == N);
        // P(max <= x | max > tau) = 1 - tail(x) / FPIR for x > tau.
        const double d = ks_distance(xs, [&](double x) { return 1.0 - gallery.tail(x) / fpir; });
        CAPTURE(d);
        CHECK(d <= eps);
    }
}

TEST_CASE("lazy and eager paths agree with each other and with the exact group law",
          "[impostor_max]") {
    // Ten tests, alpha_i = 1e-7 each (z = Q^-1(5e-8) = 5.33 for the two-sided counts):
    //  1. eager draws above tau: count ~ Binomial(n_eager, FPIR);
    //  2-5. group holding the eager maximum (4 non-empty groups) vs the exact integral;
    //  6-9. group holding the lazy maximum vs the exact conditional integral;
    //  10. two-sample KS: lazy scores vs eager scores above tau.
    // The empty group (index 3) must never be returned: checked exactly.
    const double alpha_i = FAMILY_ALPHA / 10.0;
    const double z = normal_upper_quantile(alpha_i / 2.0);
    const ImpostorGallery gallery(MULTI_M, MULTI_DELTA, MULTI_TAU);
    const double fpir = gallery.fpir();
    const std::size_t groups = MULTI_M.size();

    // Exact group laws by Simpson's rule with step 1e-3. The integrands are smooth on the
    // scale of the maximum's spread (~0.2), so the error is ~(1e-3 / 0.2)^4 ~ 1e-9 relative;
    // the sums below must reproduce FPIR and 1 to 1e-8, which a count tolerance of >= 30
    // draws on n <= 5e5 cannot notice (5e5 * 1e-8 = 0.005 draws).
    std::vector<double> p_cond(groups, 0.0);
    std::vector<double> p_uncond(groups, 0.0);
    double sum_cond = 0.0;
    double sum_uncond = 0.0;
    for (std::size_t g = 0; g < groups; ++g) {
        if (MULTI_M[g] == 0.0) continue;
        // Above tau + 8, m_g Q(x - d_g) < 3e6 * Q(13.3) < 1e-33: nothing left.
        const double above =
            group_holds_max(MULTI_M, MULTI_DELTA, g, MULTI_TAU, MULTI_TAU + 8.0, 8000);
        // Below 2, P(max <= 2) = F(2) < exp(-1e4): nothing there either.
        const double below = group_holds_max(MULTI_M, MULTI_DELTA, g, 2.0, MULTI_TAU, 3800);
        p_cond[g] = above / fpir;
        p_uncond[g] = above + below;
        sum_cond += above;
        sum_uncond += above + below;
    }
    CHECK(std::fabs(sum_cond - fpir) <= 1e-8);
    CHECK(std::fabs(sum_uncond - 1.0) <= 1e-8);

    const ReplicationKey key(SEED, 4);
    constexpr int N_EAGER = 500000;
    constexpr int N_LAZY = 500000;
    std::vector<double> eager_above;
    std::vector<double> eager_groups(groups, 0.0);
    for (int i = 0; i < N_EAGER; ++i) {
        UniformStream u(key, static_cast<std::uint64_t>(i), Purpose::Search, 0);
        const auto d = gallery.sample_max(u);
        REQUIRE(d.group < groups);
        eager_groups[d.group] += 1.0;
        if (d.score > MULTI_TAU) eager_above.push_back(d.score);
    }
    std::vector<double> lazy(N_LAZY);
    std::vector<double> lazy_groups(groups, 0.0);
    for (int i = 0; i < N_LAZY; ++i) {
        UniformStream u(key, static_cast<std::uint64_t>(i), Purpose::Search, 1);
        const auto d = gallery.sample_max_above_tau(u);
        REQUIRE(d.group < groups);
        lazy_groups[d.group] += 1.0;
        lazy[static_cast<std::size_t>(i)] = d.score;
    }

    const double n_above = static_cast<double>(eager_above.size());
    CAPTURE(fpir, n_above, z);
    CHECK(binomial_ok(n_above, N_EAGER, fpir, z));
    for (std::size_t g = 0; g < groups; ++g) {
        CAPTURE(g, p_uncond[g], eager_groups[g], p_cond[g], lazy_groups[g]);
        if (MULTI_M[g] == 0.0) {
            CHECK(eager_groups[g] == 0.0);
            CHECK(lazy_groups[g] == 0.0);
            continue;
        }
        CHECK(binomial_ok(eager_groups[g], N_EAGER, p_uncond[g], z));
        CHECK(binomial_ok(lazy_groups[g], N_LAZY, p_cond[g], z));
    }

    const double eps = std::sqrt(std::log(4.0 / alpha_i) / (2.0 * N_LAZY)) +
                       std::sqrt(std::log(4.0 / alpha_i) / (2.0 * n_above));
    const double d = ks_two_sample(lazy, eager_above);
    CAPTURE(d, eps);
    CHECK(d <= eps);
}
