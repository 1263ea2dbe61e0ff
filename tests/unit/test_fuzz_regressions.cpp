// Regressions for the findings of the libFuzzer targets in tests/fuzz/ whose inputs are not
// scenario files (those are cases in tests/bad_inputs/). Each test names the target and the
// crasher it keeps.

#include <catch2/catch.hpp>

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "stopscan/cli.hpp"
#include "stopscan/error.hpp"
#include "stopscan/parameter_distribution.hpp"
#include "stopscan/settings.hpp"

namespace {

struct CliResult {
    int code = -1;
    std::string out;
    std::string err;
};

CliResult cli(std::vector<std::string> args) {
    args.insert(args.begin(), "stopscan");
    std::ostringstream out;
    std::ostringstream err;
    CliResult r;
    r.code = stopscan::run_cli(args, out, err);
    r.out = out.str();
    r.err = err.str();
    return r;
}

}  // namespace

// fuzz_distribution: "\n\0\0\x11A,(1,...)" gave "unknown distribution '\n...'": a message of two
// lines. Only --set can carry a line break into a value, so --set refuses it, unquoted.
TEST_CASE("a --set override holding a line break is refused with a one-line message",
          "[fuzz-regression][settings]") {
    const std::string expected =
        "stopscan: error: --set: an override must be one line: remove the line break from "
        "section.key=value\n";
    for (const std::string assignment :
         {"stops.dispersion=\nuniform(1, 2)", "scenario.name=a\rb", "stops.total\n=5"}) {
        INFO("--set " << assignment);
        const auto r = cli({"validate", "--set", assignment});
        CHECK(r.code == 2);
        CHECK(r.err == expected);
        CHECK(r.out.empty());
    }
    stopscan::Settings settings = stopscan::Settings::parse_ini("[a]\nb = 1\n", "x.ini");
    CHECK_THROWS_AS(settings.apply_override("a.b=\n2"), stopscan::InputError);
    CHECK(settings.find("a.b")->value == "1");
}

// fuzz_distribution: beta(2.6e45, 50) made Boost's ibeta_inv throw evaluation_error (an
// internal error, exit 1); shapes near 1e20 also loop for seconds. Shapes above 1e6 are refused
// (tests/bad_inputs/098-fuzz-beta-huge-shape). Found while reducing it: a valid beta(0.5, 2)
// threw the same error at p = 1e-12, which a run's draw can reach; now the best estimate.
TEST_CASE("beta laws with huge shapes are refused and extreme quantiles do not throw",
          "[fuzz-regression][parameter-distribution]") {
    using stopscan::ParameterDistribution;
    CHECK_THROWS_AS(ParameterDistribution::parse("beta(25999999999999999999999999999999, 50)"),
                    std::invalid_argument);
    CHECK_THROWS_AS(ParameterDistribution::parse("beta(2, 1e20)"), std::invalid_argument);
    CHECK(ParameterDistribution::parse("beta(1e6, 1e6)"));
    for (const auto* text : {"beta(0.5, 2)", "beta(2, 0.5)", "beta(1e6, 1)", "beta(1, 1e6)"}) {
        INFO(text);
        const auto law = ParameterDistribution::parse(text);
        REQUIRE(law);
        for (const double u : {0.0, 1e-12, 0.5, 1 - 1e-12}) {
            double x = -1;
            CHECK_NOTHROW(x = law->quantile(u, 0.0, 1.0));
            CHECK(x >= 0.0);
            CHECK(x <= 1.0);
        }
    }
}
