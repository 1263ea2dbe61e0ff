// The dp noise has exactly the discrete Laplace law: chi-square and Kolmogorov-Smirnov tests
// of 200,000 draws from OpenSSL's CSPRNG against the exact pmf, at a stated false-alarm
// rate.
//
// Tolerances (STYLE.md "Testing stochastic code"): the whole file may fail a correct sampler
// with probability at most α = 1e-6, split by Bonferroni over 3 scales × 3 tests, so each
// test uses α_i = 1e-6 / 9.
//  - chi-square: the statistic over bins with expected count ≥ 5 (tails pooled) is
//    compared with the (1 - α_i) quantile of χ² with bins - 1 degrees of freedom;
//  - KS: by the Dvoretzky-Kiefer-Wolfowitz inequality (Massart's constant, valid for any
//    law, conservative for a discrete one), P(sup |F_n - F| > ε) ≤ 2 exp(-2 n ε²), so
//    ε = √(ln(2/α_i) / (2n));
//  - mean: the noise is unbiased; |mean| ≤ z √(Var / n) with z the two-sided normal
//    quantile for α_i and Var = 2p / (1 - p)², p = exp(-1/scale).
#include <boost/math/distributions/chi_squared.hpp>
#include <boost/math/distributions/normal.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>

#include "stopscan/disclosure.hpp"

using namespace stopscan;

namespace {

constexpr std::size_t N = 200'000;
constexpr double ALPHA = 1e-6 / 9;

void check_law(std::uint64_t num, std::uint64_t den) {
    const double scale = static_cast<double>(num) / static_cast<double>(den);
    INFO("scale " << num << "/" << den);
    CryptoRandomBits bits;
    std::map<std::int64_t, std::size_t> observed;
    double sum = 0;
    for (std::size_t i = 0; i < N; ++i) {
        const auto y = sample_discrete_laplace(bits, num, den);
        ++observed[y];
        sum += static_cast<double>(y);
    }
    const double n = static_cast<double>(N);

    // Chi-square over y in [-B, B] with expected ≥ 5 each, and the two tails pooled.
    std::int64_t b = 0;
    while (n * discrete_laplace_pmf(b + 1, scale) >= 5 &&
           n * discrete_laplace_cdf(-b - 2, scale) >= 5)
        ++b;
    double chi2 = 0;
    std::size_t bins = 0;
    auto add_bin = [&](double expected, double count) {
        chi2 += (count - expected) * (count - expected) / expected;
        ++bins;
    };
    double low = 0, high = 0;
    for (const auto& [y, count] : observed) {
        if (y < -b) low += static_cast<double>(count);
        if (y > b) high += static_cast<double>(count);
    }
    add_bin(n * discrete_laplace_cdf(-b - 1, scale), low);
    add_bin(n * (1 - discrete_laplace_cdf(b, scale)), high);
    for (std::int64_t y = -b; y <= b; ++y) {
        const auto it = observed.find(y);
        add_bin(n * discrete_laplace_pmf(y, scale),
                it == observed.end() ? 0.0 : static_cast<double>(it->second));
    }
    const boost::math::chi_squared law(static_cast<double>(bins - 1));
    const double critical = boost::math::quantile(boost::math::complement(law, ALPHA));
    INFO("chi2 " << chi2 << " on " << bins - 1 << " df, critical " << critical);
    CHECK(bins >= 3);
    CHECK(chi2 < critical);

    // Kolmogorov-Smirnov distance at every support point (the ECDF jumps only there).
    double d = 0;
    double cumulative = 0;
    const std::int64_t lo = observed.begin()->first;
    const std::int64_t hi = observed.rbegin()->first;
    for (std::int64_t y = lo - 1; y <= hi; ++y) {
        const auto it = observed.find(y);
        if (it != observed.end()) cumulative += static_cast<double>(it->second);
        d = std::max(d, std::abs(cumulative / n - discrete_laplace_cdf(y, scale)));
    }
    const double epsilon = std::sqrt(std::log(2 / ALPHA) / (2 * n));
    INFO("KS distance " << d << ", DKW bound " << epsilon);
    CHECK(d < epsilon);

    // Unbiased.
    const double p = std::exp(-1 / scale);
    const double variance = 2 * p / ((1 - p) * (1 - p));
    const double z = boost::math::quantile(boost::math::normal(), 1 - ALPHA / 2);
    INFO("mean " << sum / n << ", bound " << z * std::sqrt(variance / n));
    CHECK(std::abs(sum / n) < z * std::sqrt(variance / n));
}

}  // namespace

TEST_CASE("discrete Laplace noise matches the exact law at scale 5/2", "[dp][stat]") {
    check_law(5, 2);
}

TEST_CASE("discrete Laplace noise matches the exact law at scale 7/10", "[dp][stat]") {
    check_law(7, 10);  // below 1: most draws are 0, the -0 rejection matters
}

TEST_CASE("discrete Laplace noise matches the exact law at scale 60", "[dp][stat]") {
    check_law(60, 1);  // e.g. sensitivity 30 at ε = 0.5
}
