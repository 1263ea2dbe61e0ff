// Unit tests of the normal upper tail, its logarithm and its inverse (normal_tail.hpp).
//
// Reference values are copied from ../shared/data/normal-upper-tail.csv (z with
// P(Z > z) = q, 50-digit arithmetic, 25 significant digits), so that the tests read no file
// at run time. A few values the file does not hold were computed the same way, with mpmath
// 1.3.0 at 50 digits, and are marked "mpmath" where they appear.
//
// These checks are deterministic, so their tolerances are floating-point error bounds, not
// statistical ones. Writing eps = 2^-52 and h(z) = phi(z) / Q(z) for the hazard
// (z < h(z) < z + 1/z for z > 0, Mills' ratio bounds; h(z) < 1 for z <= 0):
//  - the implementation's own budget is 4 eps relative for Q, log Q and Q^-1 (measured worst
//    cases 1.7, 1.9 and 1.5 eps on dense grids, see sim/normal_tail.cpp);
//  - a relative error dz / z in the argument moves Q by a relative h(z) z dz / z, at most
//    (z^2 + 1) dz / z: this is why round trips through Q are allowed (z^2 + 2) 4 eps, which
//    is 1.2e-12 at z = 37 and is the conditioning of Q, not slack.
// Where the brief of this module fixed a tolerance (quantiles against the file to relative
// 1e-13, the -1e4 round trip to 1e-12) that looser figure is used, as the stated contract.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cfloat>
#include <cmath>
#include <limits>
#include <vector>

#include "stopscan/normal_tail.hpp"

namespace {

using stopscan::log_upper_tail;
using stopscan::normal_quantile;
using stopscan::upper_tail;
using stopscan::upper_tail_quantile;
using stopscan::upper_tail_quantile_log;

constexpr double EPS = std::numeric_limits<double>::epsilon();
constexpr double INF = std::numeric_limits<double>::infinity();
constexpr double NAN_VALUE = std::numeric_limits<double>::quiet_NaN();

struct Row {
    double q;
    double z;
};

// ../shared/data/normal-upper-tail.csv, every row (q, z with P(Z > z) = q).
constexpr std::array<Row, 23> NORMAL_UPPER_TAIL = {{
    {0.5, 0.0},
    {0.25, 0.674489750196081743202227},
    {0.1, 1.281551565544600466965103},
    {0.05, 1.644853626951472714863849},
    {0.01, 2.326347874040841100885606},
    {1e-3, 3.0902323061678135415404},
    {1e-4, 3.719016485455680564393661},
    {1e-5, 4.264890793922824628498525},
    {1e-6, 4.753424308822898948193988},
    {1e-8, 5.612001244174788731549725},
    {1e-10, 6.361340902404056204695376},
    {1e-12, 7.034483825301131929809515},
    {1e-15, 7.941345326170996780966744},
    {1e-20, 9.262340089798407573717357},
    {1e-30, 11.46402468844361572698226},
    {1e-50, 14.93333753478848898116597},
    {1e-75, 18.3772083196079261000267},
    {1e-100, 21.27345356096532429511721},
    {1e-150, 26.12296119059398350949044},
    {1e-200, 30.20559417957964306253206},
    {1e-250, 33.79958617269483747118822},
    {1e-300, 37.04709629936119923722296},
    {2.2250738585072014e-308, 37.51937934714449982047998},
}};

/// |actual - expected| <= rel * |expected|, reported with both values on failure.
bool close_rel(double actual, double expected, double rel) {
    return std::fabs(actual - expected) <= rel * std::fabs(expected);
}

/// The implementation's error budget (see the header comment).
constexpr double BUDGET = 4.0 * EPS;

}  // namespace

TEST_CASE("upper_tail_quantile matches the 50-digit reference quantiles", "[normal_tail]") {
    for (const Row& row : NORMAL_UPPER_TAIL) {
        CAPTURE(row.q, row.z);
        const double z = upper_tail_quantile(row.q);
        if (row.z == 0.0) {
            CHECK(std::fabs(z) <= 1e-15);
        } else {
            CHECK(close_rel(z, row.z, 1e-13));
        }
        // Lower tail by symmetry: Phi^-1(q) = -z, and Q^-1(1 - q) = -z where 1 - q is exact.
        CHECK(normal_quantile(row.q) == -z);
        if (row.q >= 0.25) CHECK(upper_tail_quantile(1.0 - row.q) == -z);
    }
}

TEST_CASE("upper_tail and log_upper_tail match the reference at the reference quantiles",
          "[normal_tail]") {
    for (const Row& row : NORMAL_UPPER_TAIL) {
        CAPTURE(row.q, row.z);
        // The 25-digit z is rounded to a double, a relative error of at most eps/2, which
        // moves Q by a relative (z^2 + 1) eps/2 at most; the q column is exact decimal
        // (rounded to a double: eps/2 more).
        const double cond = (row.z * row.z + 1.0) * EPS / 2.0;
        CHECK(close_rel(upper_tail(row.z), row.q, cond + EPS / 2.0 + BUDGET));
        // The same perturbation is an absolute cond in log Q; log(q) itself adds eps/2
        // absolute (the rounding of q) and a relative eps/2.
        const double log_q = std::log(row.q);
        CHECK(std::fabs(log_upper_tail(row.z) - log_q) <=
              cond + EPS / 2.0 + (BUDGET + EPS / 2.0) * std::fabs(log_q));
    }
}

TEST_CASE("log_upper_tail in the far tails and on both sides of its switch points",
          "[normal_tail]") {
    struct LogRow {
        double x;
        double log_q;
    };
    // mpmath, 50 digits: log Q(x), as log1p(-Q(-x)) for x < 0.
    constexpr std::array<LogRow, 12> ROWS = {{
        {-40.0, -0.0},  // -3.655893540915029703749e-350: below the smallest subnormal
        {-5.0, -2.866516129637635933846e-7},
        {-0.5, -0.3689464152886563930656},
        {0.5, -1.17591176159361860888},
        {3.0, -6.607726221510349543276},
        {7.99, -34.93227276199890956681},  // erfc branch, just below the switch at 8
        {8.01, -35.09470012534092481265},  // continued-fraction branch
        {20.0, -203.9171553710972639368},
        {37.5, -707.6689893175071910661},
        {50.0, -1254.831361139419901254},
        {1000.0, -500007.8266948121843098},
        {1e6, -500000000014.7344490912},
    }};
    for (const LogRow& row : ROWS) {
        CAPTURE(row.x, row.log_q);
        if (row.log_q == 0.0) {
            // log Q(-40) = -Q(40) underflows like Q(40) itself: only the sign survives.
            CHECK(log_upper_tail(row.x) <= 0.0);
            CHECK(log_upper_tail(row.x) > -DBL_MIN);
        } else {
            CHECK(close_rel(log_upper_tail(row.x), row.log_q, BUDGET));
        }
    }

    // The asymptotic (Laplace) series at x = 1e3, where it converges to far below an ulp:
    // log Q(x) = -x^2/2 - log x - log sqrt(2 pi) + log(1 - 1/x^2 + 3/x^4 - 15/x^6 + ...),
    // next term 105/x^8 = 1e-22. Summing five terms in double costs at most 5 roundings
    // of the largest partial sum: 5 eps/2 relative.
    const double x = 1000.0;
    const double x2 = x * x;
    const double series = -0.5 * x2 - std::log(x) - 0.9189385332046727417803297 +
                          std::log1p(-1.0 / x2 + 3.0 / (x2 * x2) - 15.0 / (x2 * x2 * x2));
    CHECK(close_rel(log_upper_tail(x), series, BUDGET + 2.5 * EPS));

    CHECK(log_upper_tail(0.0) == std::log(0.5));
    CHECK(log_upper_tail(INF) == -INF);
    CHECK(log_upper_tail(-INF) == 0.0);
    CHECK(std::isnan(log_upper_tail(NAN_VALUE)));
}

TEST_CASE("upper_tail: exact values, symmetry and underflow", "[normal_tail]") {
    CHECK(upper_tail(0.0) == 0.5);
    CHECK(upper_tail(INF) == 0.0);
    CHECK(upper_tail(-INF) == 1.0);
    CHECK(upper_tail(-40.0) == 1.0);
    CHECK(std::isnan(upper_tail(NAN_VALUE)));
    // Q(40) = 3.7e-350 is below the smallest subnormal.
    CHECK(upper_tail(40.0) == 0.0);
    // mpmath: Q(37.5) = 4.6053530095819548438e-308, among the last normal values (37.5 is
    // exact, so only the rounding of the reference adds eps/2).
    CHECK(close_rel(upper_tail(37.5), 4.605353009581954843828e-308, BUDGET + EPS / 2.0));
    // Q(x) + Q(-x) = 1: Q(-x) = 1 - Q(x) to an ulp of 1 plus the budget on Q(x) <= 1/2.
    for (double x = 0.0; x <= 10.0; x += 0.125) {
        CAPTURE(x);
        CHECK(std::fabs(upper_tail(x) + upper_tail(-x) - 1.0) <= 2.0 * EPS);
    }
}

TEST_CASE("Q(Q^-1(q)) = q from q = 1 - 2^-53 down to the smallest subnormal", "[normal_tail]") {
    // q over 10^-0.1 ... 10^-307 and its mirror 1 - q, plus subnormals and the edges.
    std::vector<double> qs;
    for (int k = 1; k <= 3070; ++k) qs.push_back(std::pow(10.0, -0.1 * k));
    for (int k = 1; k <= 160; ++k) qs.push_back(1.0 - std::pow(10.0, -0.1 * k));
    qs.push_back(1.0 - EPS / 2.0);
    double previous_z = -INF;
    std::sort(qs.begin(), qs.end(), [](double a, double b) { return a > b; });
    qs.erase(std::unique(qs.begin(), qs.end()), qs.end());  // 1 - 10^-15.x repeat
    for (const double q : qs) {
        CAPTURE(q);
        const double z = upper_tail_quantile(q);
        REQUIRE(std::isfinite(z));
        CHECK(z > previous_z);  // strictly decreasing in q on this grid
        previous_z = z;
        // Q(z) must return q within the conditioning of Q at z: (z^2 + 2) * BUDGET
        // (the budget of the quantile moved through Q, plus that of Q itself).
        CHECK(close_rel(upper_tail(z), q, (z * z + 2.0) * BUDGET));
        // The log entry point agrees: both carry the budget, and log(q) is rounded (eps/2
        // relative), which moves z by eps/2 |log q| / h(z) < eps max(|z|, 1) (|log q| ~
        // z^2/2 and h(z) > z in the tail; ~0.4 eps absolute near z = 0).
        const double z_log = upper_tail_quantile_log(std::log(q));
        CHECK(std::fabs(z_log - z) <= (2.0 * BUDGET + EPS) * std::max(std::fabs(z), 1.0));
    }
    // Subnormal q: z still solves log Q(z) = log q (the input is exact, so the log form is
    // the honest comparison; Q(z) itself is subnormal and carries fewer digits).
    for (const double q : {1e-310, 1e-315, 1e-320, 4.9406564584124654e-324}) {
        CAPTURE(q);
        const double z = upper_tail_quantile(q);
        CHECK(close_rel(log_upper_tail(z), std::log(q), 2.0 * BUDGET));
    }
}

TEST_CASE("upper_tail_quantile_log below log(DBL_MIN)", "[normal_tail]") {
    // log q = log(1e-300): the file's z for q = 1e-300.
    CHECK(close_rel(upper_tail_quantile_log(std::log(1e-300)), 37.04709629936119923722296, 1e-13));
    // log q = -1e4 (q = 1e-4343): mpmath z = 141.3798398731271637028.
    const double z = upper_tail_quantile_log(-1e4);
    CHECK(close_rel(z, 141.3798398731271637028, 1e-13));
    // Round trip through log Q. The bound of the brief is 1e-12; the conditioning bound is
    // h(z) z * BUDGET / |log q| ~ 2 BUDGET here (log Q ~ -z^2/2).
    CHECK(close_rel(log_upper_tail(z), -1e4, 1e-12));
    CHECK(close_rel(log_upper_tail(z), -1e4, 2.0 * BUDGET + BUDGET));
    // Far beyond: log q = -1e8, -1e12 (z ~ 1.4e4, 1.4e6) still round-trip.
    for (const double log_q : {-1e6, -1e8, -1e12}) {
        CAPTURE(log_q);
        CHECK(close_rel(log_upper_tail(upper_tail_quantile_log(log_q)), log_q, 3.0 * BUDGET));
    }
    // q close to 1: log q = -1e-20 means 1 - q = 1e-20, z = -Q^-1(1e-20).
    CHECK(close_rel(upper_tail_quantile_log(-1e-20), -9.262340089798407573717357, 1e-13));
    // Subnormal log q: 1 - q = -log q exactly.
    CHECK(close_rel(upper_tail_quantile_log(-1e-310), -upper_tail_quantile(1e-310), BUDGET));
}

TEST_CASE("quantile domain edges", "[normal_tail]") {
    CHECK(upper_tail_quantile(0.0) == INF);
    CHECK(upper_tail_quantile(1.0) == -INF);
    CHECK(std::isnan(upper_tail_quantile(-0.1)));
    CHECK(std::isnan(upper_tail_quantile(1.1)));
    CHECK(std::isnan(upper_tail_quantile(NAN_VALUE)));
    CHECK(upper_tail_quantile_log(0.0) == -INF);
    CHECK(upper_tail_quantile_log(-INF) == INF);
    CHECK(std::isnan(upper_tail_quantile_log(0.5)));
    CHECK(std::isnan(upper_tail_quantile_log(NAN_VALUE)));
    CHECK(normal_quantile(0.0) == -INF);
    CHECK(normal_quantile(1.0) == INF);
    // The familiar 97.5% point, 1.959963984540054235524594 (mpmath).
    CHECK(close_rel(normal_quantile(0.975), 1.959963984540054235524594, BUDGET));
    CHECK(close_rel(normal_quantile(0.025), -1.959963984540054235524594, BUDGET));
}
