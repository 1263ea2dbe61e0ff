// Sweep files and designs (sim/sweep.cpp): the parser's refusals, and the properties that
// define each design: the Sobol' sequence's first points and its stratification, one Latin
// hypercube point per stratum, Morris steps that move one axis by delta, Saltelli's AB_i
// blocks, the grid's order, and determinism in the seed.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "stopscan/error.hpp"
#include "stopscan/sweep.hpp"

using namespace stopscan;

namespace {

// Parses sweep text as if it were the file "sweep.ini"; the base scenario is the embedded one.
SweepSpec spec_of(const std::string& text) {
    return parse_sweep(text, "sweep.ini");
}

// The message parse_sweep refuses `text` with.
std::string refusal(const std::string& text) {
    try {
        (void)spec_of(text);
    } catch (const InputError& e) {
        return e.what();
    }
    return "(accepted)";
}

double as_number(const std::string& text) {
    return std::stod(text);
}

}  // namespace

TEST_CASE("the Sobol sequence starts with the points of Joe and Kuo's generator",
          "[sweep][design]") {
    // Joe and Kuo's sobol.cc (and SciPy's unscrambled Sobol) in 3 dimensions.
    const double expected[8][3] = {{0, 0, 0},
                                   {0.5, 0.5, 0.5},
                                   {0.75, 0.25, 0.25},
                                   {0.25, 0.75, 0.75},
                                   {0.375, 0.375, 0.625},
                                   {0.875, 0.875, 0.125},
                                   {0.625, 0.125, 0.875},
                                   {0.125, 0.625, 0.375}};
    for (std::uint64_t i = 0; i < 8; ++i) {
        const auto x = sobol_point(i, 3);
        for (std::size_t d = 0; d < 3; ++d)
            CHECK(static_cast<double>(x[d]) * 0x1.0p-32 == expected[i][d]);
    }
}

TEST_CASE("every dimension of the Sobol sequence puts one point in each dyadic interval",
          "[sweep][design]") {
    // The defining (0, 1)-sequence property of each one-dimensional projection: the first 2^m
    // points fall one in each interval [j / 2^m, (j + 1) / 2^m). A wrong direction number
    // breaks it.
    for (unsigned m = 1; m <= 10; ++m) {
        const std::uint64_t n = 1ULL << m;
        std::vector<std::set<std::uint32_t>> seen(SOBOL_MAX_DIMENSIONS);
        for (std::uint64_t i = 0; i < n; ++i) {
            const auto x = sobol_point(i, SOBOL_MAX_DIMENSIONS);
            for (std::size_t d = 0; d < SOBOL_MAX_DIMENSIONS; ++d) seen[d].insert(x[d] >> (32 - m));
        }
        for (std::size_t d = 0; d < SOBOL_MAX_DIMENSIONS; ++d) {
            INFO("dimension " << d << ", m = " << m);
            CHECK(seen[d].size() == n);
        }
    }
}

TEST_CASE("a grid runs every combination with the first axis slowest", "[sweep][design]") {
    const auto spec = spec_of(
        "[axes]\nstops.total = list 1000, 2000\ndatabase.IABS.false_flag = linear 0.01 0.03 3\n");
    const auto design = make_sweep_points(spec);
    REQUIRE(design.points.size() == 6);
    CHECK(design.points[0].values == std::vector<std::string>{"1000", "0.01"});
    CHECK(design.points[1].values == std::vector<std::string>{"1000", "0.02"});
    CHECK(design.points[2].values == std::vector<std::string>{"1000", "0.03"});
    CHECK(design.points[3].values == std::vector<std::string>{"2000", "0.01"});
    CHECK(design.points[5].values == std::vector<std::string>{"2000", "0.03"});
    CHECK(design.design_json.find("\"levels\": [2, 3]") != std::string::npos);
}

TEST_CASE("log ranges include both ends and integer ranges give whole numbers", "[sweep][design]") {
    const auto spec = spec_of("[axes]\nstops.total = log 100 100000 4 integer\n");
    const auto design = make_sweep_points(spec);
    REQUIRE(design.points.size() == 4);
    CHECK(design.points[0].values[0] == "100");
    CHECK(design.points[1].values[0] == "1000");
    CHECK(design.points[2].values[0] == "10000");
    CHECK(design.points[3].values[0] == "100000");
}

TEST_CASE("a Latin hypercube has one point in each stratum of every axis", "[sweep][design]") {
    const auto spec = spec_of(
        "[sweep]\ndesign = lhs\npoints = 50\nseed = 11\n[axes]\n"
        "database.IABS.false_flag = linear 0 0.1\ndatabase.IDENT1.false_flag = log 0.0001 "
        "0.01\n");
    const auto design = make_sweep_points(spec);
    REQUIRE(design.points.size() == 50);
    std::set<long> a, b;
    for (const auto& p : design.points) {
        a.insert(static_cast<long>(std::floor(as_number(p.values[0]) / 0.1 * 50)));
        b.insert(static_cast<long>(
            std::floor(std::log(as_number(p.values[1]) / 0.0001) / std::log(100.0) * 50)));
    }
    CHECK(a.size() == 50);
    CHECK(b.size() == 50);
}

TEST_CASE("a design is a function of the seed", "[sweep][design]") {
    const std::string text =
        "[sweep]\ndesign = lhs\npoints = 8\nseed = SEED\n[axes]\n"
        "database.IABS.false_flag = uniform(0, 0.1)\n";
    auto with_seed = [&](const std::string& seed) {
        std::string t = text;
        t.replace(t.find("SEED"), 4, seed);
        std::vector<std::string> values;
        for (const auto& p : make_sweep_points(spec_of(t)).points) values.push_back(p.values[0]);
        return values;
    };
    CHECK(with_seed("5") == with_seed("5"));
    CHECK(with_seed("5") != with_seed("6"));
}

TEST_CASE("each Morris step moves one axis by delta", "[sweep][design]") {
    const auto spec = spec_of(
        "[sweep]\ndesign = morris\ntrajectories = 6\nlevels = 4\n[axes]\n"
        "database.IABS.false_flag = linear 0 0.3\ndatabase.IDENT1.false_flag = linear 0 0.03\n"
        "database.IABS.arrest = uniform(0.2, 0.8)\n");
    const auto design = make_sweep_points(spec);
    const std::size_t k = 3;
    REQUIRE(design.points.size() == 6 * (k + 1));
    const double ranges[3] = {0.3, 0.03, 0.6};
    const double delta = 4.0 / (2 * 3);  // p / (2 (p - 1))
    for (std::size_t t = 0; t < 6; ++t) {
        std::set<std::size_t> moved;
        for (std::size_t s = 1; s <= k; ++s) {
            const auto& before = design.points[t * (k + 1) + s - 1].values;
            const auto& after = design.points[t * (k + 1) + s].values;
            std::size_t changed = 0;
            for (std::size_t a = 0; a < k; ++a)
                if (before[a] != after[a]) {
                    ++changed;
                    moved.insert(a);
                    CHECK(std::abs(as_number(after[a]) - as_number(before[a])) ==
                          Approx(delta * ranges[a]));
                }
            CHECK(changed == 1);
        }
        CHECK(moved.size() == k);  // every axis moves once per trajectory
    }
    CHECK(design.design_json.find("\"trajectories\": 6") != std::string::npos);
    CHECK(design.design_json.find("\"levels\": 4") != std::string::npos);
}

TEST_CASE("Saltelli blocks AB_i take axis i from B and the others from A", "[sweep][design]") {
    const auto spec = spec_of(
        "[sweep]\ndesign = sobol\npoints = 8\n[axes]\n"
        "database.IABS.false_flag = linear 0 0.3\ndatabase.IDENT1.false_flag = linear 0 0.03\n");
    const auto design = make_sweep_points(spec);
    const std::size_t n = 8, k = 2;
    REQUIRE(design.points.size() == n * (k + 2));
    for (std::size_t j = 0; j < n; ++j) {
        const auto& a = design.points[j];
        const auto& b = design.points[n + j];
        CHECK(a.block == "A");
        CHECK(b.block == "B");
        for (std::size_t i = 0; i < k; ++i) {
            const auto& ab = design.points[(2 + i) * n + j];
            CHECK(ab.block == "AB_" + std::to_string(i + 1));
            for (std::size_t c = 0; c < k; ++c)
                CHECK(ab.values[c] == (c == i ? b.values[c] : a.values[c]));
        }
    }
    CHECK(design.design_json.find("\"blocks\": [\"A\", \"B\", \"AB_1\", \"AB_2\"]") !=
          std::string::npos);
}

TEST_CASE("sweep files are refused with one line naming the line, key and what is allowed",
          "[sweep][bad-input]") {
    CHECK(refusal("[sweep]\ndesgn = grid\n[axes]\nstops.total = list 1, 2\n") ==
          "sweep.ini:2: sweep.desgn = grid: unknown key; did you mean 'sweep.design'?");
    CHECK(refusal("[axis]\nstops.total = list 1, 2\n") ==
          "sweep.ini:2: axis.stops.total = list 1, 2: unknown section [axis]; did you mean "
          "[axes]?: a sweep file has [sweep], [set] and [axes] (docs/sweeps.md)");
    CHECK(refusal("[sweep]\ndesign = factorial\n[axes]\nstops.total = list 1, 2\n") ==
          "sweep.ini:2: sweep.design = factorial: not one of: grid, lhs, morris, sobol, oat");
    CHECK(refusal("[axes]\nstops.total = 5\n") ==
          "sweep.ini:2: axes.stops.total = 5: not an axis: write 'list A, B, C', 'linear LO HI "
          "[N] [integer]', 'log LO HI [N] [integer]' or a distribution such as uniform(0.1, 0.5)");
    CHECK(refusal("[axes]\nstops.total = linear 10 1\n") ==
          "sweep.ini:2: axes.stops.total = linear 10 1: LO must be below HI");
    CHECK(refusal("[axes]\nstops.total = log 0 10 3\n") ==
          "sweep.ini:2: axes.stops.total = log 0 10 3: a log range needs LO > 0");
    CHECK(refusal("[axes]\nstops.total = linear 1 10\n") ==
          "sweep.ini:2: axes.stops.total = linear 1 10: a grid needs the number of values: write "
          "linear LO HI N");
    CHECK(refusal("[axes]\ndatabase.IABS.false_flag = uniform(0, 0.1)\n") ==
          "sweep.ini:2: axes.database.IABS.false_flag = uniform(0, 0.1): a distribution needs a "
          "sampling design (lhs, morris, sobol): for a grid write 'list ...', 'linear LO HI N' or "
          "'log LO HI N'");
    CHECK(refusal("[axes]\nrun.seed = list 1, 2\n") ==
          "sweep.ini:2: axes.run.seed = list 1, 2: run.* keys cannot be swept: the seed, "
          "replications and policies are the same at every point (common random numbers; "
          "docs/sweeps.md)");
    CHECK(refusal("[sweep]\ndesign = morris\nlevels = 3\n[axes]\nstops.total = linear 1 10\n") ==
          "sweep.ini:3: sweep.levels = 3: must be even (Morris's step of p / (2 (p - 1)) then "
          "moves every level to another level with equal probability)");
    CHECK(refusal("[sweep]\ndesign = lhs\n[axes]\nstops.total = linear 1 10\n") ==
          "sweep.ini: sweep.points: missing: design = lhs needs the number of points");
    CHECK(refusal("[sweep]\npolicies = dual-search, fire-wall\n[axes]\nstops.total = list 1, "
                  "2\n") ==
          "sweep.ini:2: sweep.policies = dual-search, fire-wall: unknown policy 'fire-wall': "
          "allowed: dual-search, ident1-only, firewall, custody-verify");
    CHECK(refusal("[sweep]\nreplications = -3\n[axes]\nstops.total = list 1, 2\n") ==
          "sweep.ini:2: sweep.replications = -3: out of range: must be a whole number in [1, "
          "1000000]");
    CHECK(refusal("[set]\nstops.total = -5\n[axes]\ndatabase.IABS.false_flag = list 0.1\n") ==
          "sweep.ini:2: set.stops.total = -5: out of range: must be a whole number in [0, "
          "10000000000]");
    CHECK(refusal("[sweep]\n") ==
          "sweep.ini: no [axes]: give at least one axis, e.g. database.IABS.false_flag = linear "
          "0.001 0.05 5");
}

TEST_CASE("a point value the scenario refuses names the sweep file, the axis and the point",
          "[sweep][bad-input]") {
    const auto spec = spec_of("[axes]\ndatabase.IABS.false_flag = list 0.1, 1.5\n");
    const auto design = make_sweep_points(spec);
    try {
        validate_sweep_points(spec, design);
        FAIL("accepted");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()) ==
              "sweep.ini:2: axes.database.IABS.false_flag = 1.5: point 1: out of range: must be a "
              "probability in [0, 1]");
    }
    const auto typo = spec_of("[axes]\ndatabase.IABS.fals_flag = list 0.1\n");
    try {
        validate_sweep_points(typo, make_sweep_points(typo));
        FAIL("accepted");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()) ==
              "sweep.ini:2: axes.database.IABS.fals_flag = 0.1: point 0: unknown key; did you "
              "mean 'database.IABS.false_flag'?");
    }
}

// Found while writing fuzz_sweep_file: the check of the kept metrics computed the closed
// form over every replication's parameter draws, so a base scenario with an uncertain
// parameter cost replications x the closed form to validate (71 s for 2000 replications; an
// hour for 10^5). The metric names do not depend on the draws: one replication lists them.
TEST_CASE("the kept metrics of a sweep with uncertain parameters are checked at once",
          "[sweep][bad-input][fuzz-regression]") {
    const auto spec = spec_of(
        "[sweep]\ndesign = oat\nreplications = 1000000\nmetrics = wrongful_outcome\n[set]\n"
        "database.IABS.false_flag = beta(2, 50)\n[axes]\ndatabase.IABS.ho_referral = linear "
        "0.5 1\n");
    try {
        validate_sweep_points(spec, make_sweep_points(spec));
        FAIL("accepted");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()) ==
              "sweep.ini:4: sweep.metrics = wrongful_outcome: 'wrongful_outcome' is not a metric "
              "of summary.csv; did you mean 'wrongful_outcomes'?");
    }
    const auto good = spec_of(
        "[sweep]\ndesign = oat\nreplications = 1000000\nmetrics = wrongful_outcomes\n[set]\n"
        "database.IABS.false_flag = beta(2, 50)\n[axes]\ndatabase.IABS.ho_referral = linear "
        "0.5 1\n");
    CHECK_NOTHROW(validate_sweep_points(good, make_sweep_points(good)));
}

TEST_CASE("every shipped sweep file is valid at every point", "[sweep][scenarios]") {
    std::size_t count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(std::string(STOPSCAN_SOURCE_DIR) +
                                                                 "/scenarios/sweeps")) {
        if (entry.path().extension() != ".ini") continue;
        ++count;
        INFO(entry.path());
        const auto spec = read_sweep_file(entry.path().string());
        CHECK_NOTHROW(validate_sweep_points(spec, make_sweep_points(spec)));
    }
    CHECK(count >= 1);
}
