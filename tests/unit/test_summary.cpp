// Summaries: quantiles, ratios with zero references, number formatting.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "stopscan/summary.hpp"
#include "stopscan/writers.hpp"

using namespace stopscan;

TEST_CASE("quantiles follow R's type 7", "[summary]") {
    std::vector<double> v{4, 1, 3, 2, 5};
    CHECK(quantile(v, 0.0) == 1);
    CHECK(quantile(v, 0.5) == 3);
    CHECK(quantile(v, 1.0) == 5);
    CHECK(quantile(v, 0.025) == Approx(1.1));  // h = 4 × 0.025 = 0.1
    CHECK(quantile(v, 0.975) == Approx(4.9));
    std::vector<double> with_inf{1, 2, std::numeric_limits<double>::infinity(),
                                 std::numeric_limits<double>::infinity()};
    CHECK(std::isinf(quantile(with_inf, 0.975)));
    // Regression: with (n − 1) × q a whole number and an infinite neighbour, 0 × inf gave NaN.
    std::vector<double> exact(41, 1.0);
    exact[40] = std::numeric_limits<double>::infinity();
    CHECK(quantile(exact, 0.025) == 1.0);
    CHECK(std::isinf(quantile(exact, 0.999)));
    std::vector<double> one{7};
    CHECK(quantile(one, 0.025) == 7);
}

TEST_CASE("numbers are written round-trip, infinities spelt out, NaN refused",
          "[summary][writers]") {
    CHECK(format_value(0.1) == "0.1");
    CHECK(format_value(1.0 / 3.0) == "0.3333333333333333");
    CHECK(format_value(-0.0) == "0");
    CHECK(format_value(72000) == "72000");
    CHECK(format_value(std::numeric_limits<double>::infinity()) == "inf");
    CHECK_THROWS(format_value(std::numeric_limits<double>::quiet_NaN()));
}

TEST_CASE("SHA-256 of a known string", "[writers]") {
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
