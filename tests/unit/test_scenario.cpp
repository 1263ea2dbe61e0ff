// Scenario resolution: cells, conditional shares, base × factors, presets, validation.
#include <catch2/catch.hpp>
#include <cmath>

#include "stopscan/cells.hpp"
#include "stopscan/error.hpp"
#include "stopscan/scenario.hpp"

using namespace stopscan;

namespace {

// A small valid scenario; tests append or override keys.
const char* const SMALL = R"(
[scenario]
population = 1000
[dimensions]
names = eth, sex, status
[dimension.eth]
categories = A, B
shares = 0.75, 0.25
reference = A
[dimension.sex]
categories = M, F
shares = 0.5, 0.5
reference = F
[dimension.status]
categories = citizen, other
parent = eth
shares.A = 0.9, 0.1
shares.B = 0.6, 0.4
reference = citizen
[stops]
total = 100
propensity.eth = B:4
[databases]
names = CRIM, IMM
[database.CRIM]
role = criminal
size = 1000
enrolment = 0.2
enrolment.sex = M:2
[database.IMM]
role = immigration
size = 500
enrolment = 0.5
[matcher.fingerprint.CRIM]
fmr = 1e-6
fnmr = 0.01
[matcher.fingerprint.IMM]
fmr = 1e-6
fnmr = 0.01
)";

Scenario load(const std::vector<std::string>& overrides = {}) {
    auto settings = Settings::parse_ini(SMALL, "small.ini");
    for (const auto& o : overrides) settings.apply_override(o);
    return load_scenario(settings);
}

std::string error_of(const std::vector<std::string>& overrides) {
    try {
        load(overrides);
    } catch (const InputError& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("cells are the product of categories with conditional shares", "[scenario][cells]") {
    const Scenario s = load();
    const CellTable cells(s.dimensions, s.population);
    REQUIRE(cells.size() == 8);
    double total = 0;
    for (std::size_t c = 0; c < cells.size(); ++c) total += cells.share(c);
    CHECK(total == Approx(1.0).epsilon(1e-15));
    // Mixed-radix order, last dimension fastest: cell 0 = (A, M, citizen), cell 7 = (B, F, other).
    CHECK(cells.label(0) == "eth=A, sex=M, status=citizen");
    CHECK(cells.label(7) == "eth=B, sex=F, status=other");
    CHECK(cells.share(0) == Approx(0.75 * 0.5 * 0.9));
    CHECK(cells.share(7) == Approx(0.25 * 0.5 * 0.4));  // status given eth = B
    CHECK(cells.population(0) == 338);  // 1000 × 0.3375 = 337.5 rounds half away from zero
    CHECK(cells.population(7) == 50);
}

TEST_CASE("per-cell parameters are base × factors", "[scenario][cells]") {
    const Scenario s = load();
    const CellTable cells(s.dimensions, s.population);
    const auto& enrolment = s.databases[0].enrolment;
    CHECK(cells.value(enrolment, 0) == Approx(0.4));   // sex M: 0.2 × 2
    CHECK(cells.value(enrolment, 2) == Approx(0.2));   // sex F
    CHECK(cells.value(s.propensity, 4) == Approx(4));  // eth B
    CHECK(cells.value(s.propensity, 0) == Approx(1));  // default base 1
}

TEST_CASE("presets follow MODEL.md §6 by database role", "[scenario][policy]") {
    const Scenario s = load();
    REQUIRE(s.policies.size() == 4);
    const auto* dual = s.find_policy("dual-search");
    const auto* only = s.find_policy("ident1-only");
    const auto* wall = s.find_policy("firewall");
    const auto* custody = s.find_policy("custody-verify");
    REQUIRE((dual && only && wall && custody));
    for (const auto* p : {dual, only, wall, custody}) {
        CHECK(p->rules[0].access == Access::street);  // criminal records: street, full
        CHECK(p->rules[0].display == Display::full);
        CHECK(p->rules[0].verify == 0);
    }
    CHECK(dual->rules[1].access == Access::street);
    CHECK(only->rules[1].access == Access::custody);
    CHECK(only->rules[1].verify == 0);
    CHECK(wall->rules[1].access == Access::none);
    CHECK(custody->rules[1].access == Access::custody);
    CHECK(custody->rules[1].verify == 0.9);
}

TEST_CASE("custom policies start from a preset and override per database", "[scenario][policy]") {
    const Scenario s = load({"policy.flag.based_on=dual-search",
                             "policy.flag.IMM.display=flag-only", "run.policies=dual-search,flag"});
    const auto* p = s.find_policy("flag");
    REQUIRE(p);
    CHECK(p->rules[1].display == Display::flag_only);
    CHECK(p->rules[1].access == Access::street);
    CHECK(s.run.policies == std::vector<std::string>{"dual-search", "flag"});
}

TEST_CASE("validation names the key, the value and what is allowed", "[scenario][validation]") {
    CHECK(error_of({"stops.totl=5"}) ==
          "--set: stops.totl = 5: unknown key; did you mean 'stops.total'?");
    CHECK(error_of({"stops.total=-5"}) ==
          "--set: stops.total = -5: out of range: must be a whole number in [0, 10000000000]");
    CHECK(error_of({"dimension.eth.shares=0.7, 0.2"}) ==
          "--set: dimension.eth.shares = 0.7, 0.2: shares sum to 0.9: they must sum to 1 (within "
          "1e-6)");
    CHECK(error_of({"dimension.eth.reference=C"}) ==
          "--set: dimension.eth.reference = C: not a category of eth: allowed: A, B");
    CHECK(error_of({"database.CRIM.enrolment.sex=M:6"}) ==
          "--set: database.CRIM.enrolment: base x factors = 1.2 for cell eth=A, sex=M, "
          "status=citizen: "
          "a probability must stay in [0, 1] after factors");
    CHECK(error_of({"database.IMM.enrolment=nan"}) ==
          "--set: database.IMM.enrolment = nan: not a finite number: must be a probability in [0, "
          "1]");
    CHECK(
        error_of({"stops.dispersion=0"}) ==
        "--set: stops.dispersion = 0: out of range: must be a number >= 1e-12, or 'inf' (Poisson)");
    CHECK(error_of({"run.policies=dual-search,nope"}) ==
          "--set: run.policies = dual-search,nope: unknown policy 'nope': allowed: dual-search, "
          "ident1-only, "
          "firewall, custody-verify");
}

TEST_CASE("a conditional dimension needs shares for every parent category",
          "[scenario][validation]") {
    auto settings = Settings::parse_ini(SMALL, "small.ini");
    auto text = std::string(SMALL);
    text.erase(text.find("shares.B = 0.6, 0.4\n"), std::string("shares.B = 0.6, 0.4\n").size());
    try {
        load_scenario(Settings::parse_ini(text, "small.ini"));
        FAIL("no error");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()) ==
              "small.ini: dimension.status.shares.B: missing: this key is required");
    }
}

TEST_CASE("the embedded default scenario is valid", "[scenario]") {
    const Scenario s = load_scenario(Settings::parse_ini(default_scenario_text(), ""));
    CHECK(s.dimensions.size() == 4);
    CHECK(s.databases.size() == 2);
    CHECK(s.run.replications == 200);
    CHECK(s.run.baseline == "dual-search");
    CHECK(s.find_database("IABS").has_value());
}

TEST_CASE("factors without a base are refused rather than silently multiplied by 0",
          "[scenario][validation]") {
    CHECK(error_of({"database.CRIM.truth.sex=M:2"}) ==
          "--set: database.CRIM.truth.sex = M:2: factors given without a base: add "
          "'database.CRIM.truth = BASE' "
          "(the value for the reference categories)");
}

TEST_CASE("a scenario without dimensions.names says so", "[scenario][validation]") {
    auto text = std::string(SMALL);
    text.erase(text.find("names = eth, sex, status\n"),
               std::string("names = eth, sex, status\n").size());
    try {
        load_scenario(Settings::parse_ini(text, "small.ini"));
        FAIL("no error");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()) ==
              "small.ini: dimensions.names: missing: this key is required");
    }
}

TEST_CASE("propensities so large that population x propensity overflows are refused",
          "[scenario][validation]") {
    CHECK(error_of({"stops.propensity=1e308"}) ==
          "--set: stops.propensity = 1e308: population x propensity overflows: propensities are "
          "relative "
          "weights, keep base x factors below about 1e290");
}
