// Calibration: exact Poisson and Katz intervals against published values, observed rates
// from FOI tables, IPF recovery of known propensities, dispersion from uses per person and
// the INI fragment.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <string>

#include "stopscan/calibrate.hpp"
#include "stopscan/cells.hpp"
#include "stopscan/error.hpp"
#include "stopscan/scenario.hpp"
#include "stopscan/settings.hpp"

using namespace stopscan;

namespace {

std::string message(const std::function<void()>& f) {
    try {
        f();
    } catch (const InputError& e) {
        return e.what();
    }
    return "no error";
}

Dimension dimension(std::string name, std::vector<std::string> categories,
                    std::vector<std::vector<double>> shares, std::size_t reference,
                    std::optional<std::size_t> parent = std::nullopt) {
    Dimension d;
    d.name = std::move(name);
    d.categories = std::move(categories);
    d.shares = std::move(shares);
    d.reference = reference;
    d.parent = parent;
    return d;
}

CellParameter propensity_of(const std::vector<Dimension>& dims) {
    CellParameter p;
    p.key = "stops.propensity";
    p.base = 1;
    p.is_probability = false;
    for (const auto& d : dims) p.factors.emplace_back(d.categories.size(), 1.0);
    return p;
}

// ethnicity × sex × status, status conditional on ethnicity (with a structural zero), as in
// the default scenario: the conditional dimension couples the margins, so IPF must iterate.
std::vector<Dimension> three_dimensions() {
    return {dimension("ethnicity", {"White", "Black", "Asian"}, {{0.80, 0.08, 0.12}}, 0),
            dimension("sex", {"Male", "Female"}, {{0.49, 0.51}}, 1),
            dimension("status", {"settled", "limited", "none"},
                      {{0.95, 0.05, 0.0}, {0.70, 0.25, 0.05}, {0.75, 0.20, 0.05}}, 0, 0)};
}

// Exact marginal ratios of `truth`, as targets.
std::vector<MarginalTarget> exact_targets(const std::vector<Dimension>& dims,
                                          const CellTable& cells, const CellParameter& truth) {
    const auto rates = marginal_rates(dims, cells, truth);
    std::vector<MarginalTarget> targets;
    for (std::size_t d = 0; d < dims.size(); ++d) {
        MarginalTarget t;
        t.dimension = dims[d].name;
        t.source = "targets";
        for (std::size_t k = 0; k < dims[d].categories.size(); ++k)
            if (k != dims[d].reference)
                t.ratios[dims[d].categories[k]] = rates[d][k] / rates[d][dims[d].reference];
        targets.push_back(t);
    }
    return targets;
}

constexpr double NaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

TEST_CASE("Garwood intervals match published chi-square values", "[calibrate][intervals]") {
    // Exact Poisson limits for x = 0, 1, 10 (e.g. Ulm 1990, Table 1; χ²/2 quantiles).
    const auto i0 = garwood_interval({0, 0});
    CHECK(i0.lo == 0);
    CHECK(i0.hi == Approx(3.688879).epsilon(1e-6));  // −ln 0.025
    const auto i1 = garwood_interval({1, 1});
    CHECK(i1.lo == Approx(0.0253178).epsilon(1e-5));
    CHECK(i1.hi == Approx(5.571643).epsilon(1e-6));
    const auto i10 = garwood_interval({10, 10});
    CHECK(i10.lo == Approx(4.795389).epsilon(1e-6));
    CHECK(i10.hi == Approx(18.390356).epsilon(1e-6));
    // A suppressed [0, 4] spans from the lower limit of 0 to the upper limit of 4.
    const auto s = garwood_interval({0, 4});
    CHECK(s.lo == 0);
    CHECK(s.hi == Approx(garwood_interval({4, 4}).hi));
    CHECK(s.hi == Approx(10.241589).epsilon(1e-6));
    // Large counts: close to the normal approximation x ± 1.96√x.
    const auto big = garwood_interval({1000000, 1000000});
    CHECK(big.lo == Approx(1e6 - 1.959964 * 1000).epsilon(1e-6));
    CHECK_THROWS_AS(garwood_interval({-1, 0}), std::invalid_argument);
    CHECK_THROWS_AS(garwood_interval({1, 1}, 1.0), std::invalid_argument);
}

TEST_CASE("Katz intervals follow the log formula and widen over suppressed ranges",
          "[calibrate][intervals]") {
    const double z = 1.959963984540054;
    const auto ci = katz_interval({20, 20}, 1000, {10, 10}, 2000);
    const double se = std::sqrt(1.0 / 20 + 1.0 / 10);
    CHECK(ci.lo == Approx(4 * std::exp(-z * se)).epsilon(1e-12));
    CHECK(ci.hi == Approx(4 * std::exp(z * se)).epsilon(1e-12));
    CHECK(ci.lo == Approx(1.872367).epsilon(1e-6));
    CHECK(ci.hi == Approx(8.545332).epsilon(1e-6));
    // A suppressed numerator 1–4: lower end at 1, upper end at 4; may be 0: lower end 0.
    const auto s = katz_interval({1, 4}, 1000, {10, 10}, 2000);
    CHECK(s.lo == Approx(katz_interval({1, 1}, 1000, {10, 10}, 2000).lo));
    CHECK(s.hi == Approx(katz_interval({4, 4}, 1000, {10, 10}, 2000).hi));
    CHECK(katz_interval({0, 4}, 1000, {10, 10}, 2000).lo == 0);
    // Monotonicity that justifies taking the ends: every inner pair lies inside.
    for (int a = 1; a <= 4; ++a)
        for (int b = 10; b <= 14; ++b) {
            const auto inner = katz_interval({a, a}, 1000, {b, b}, 2000);
            const auto outer = katz_interval({1, 4}, 1000, {10, 14}, 2000);
            CHECK(inner.lo >= outer.lo * (1 - 1e-12));
            CHECK(inner.hi <= outer.hi * (1 + 1e-12));
        }
    // Zeros.
    const auto zero_a = katz_interval({0, 0}, 1000, {10, 10}, 2000);
    CHECK(zero_a.lo == 0);
    CHECK(std::isnan(zero_a.hi));
    CHECK(std::isinf(katz_interval({5, 5}, 1000, {0, 4}, 2000).hi));
    CHECK(std::isnan(katz_interval({5, 5}, 1000, {0, 0}, 2000).lo));
}

TEST_CASE("observed rates per 1,000 with references and pooled rows", "[calibrate][rates]") {
    const auto counts = parse_count_table(
        "area,dimension,category,count\n"
        "A,ethnicity,White,100\nA,ethnicity,Black,40\nA,ethnicity,Asian,<5\n"
        "B,ethnicity,White,50\nB,ethnicity,Black,10\nB,ethnicity,Asian,6\n",
        "c.csv");
    const auto population = parse_population_table(
        "area,dimension,category,population\n"
        "A,ethnicity,White,100000\nA,ethnicity,Black,10000\nA,ethnicity,Asian,20000\n"
        "B,ethnicity,White,50000\nB,ethnicity,Black,5000\nB,ethnicity,Asian,\"6,000\"\n",
        "p.csv");
    const auto rows = observed_rates(counts, population, {{"ethnicity", "White"}});
    REQUIRE(rows.size() == 9);
    const auto& black_a = rows[1];
    CHECK(black_a.area == "A");
    CHECK(black_a.rate == Approx(4.0));
    CHECK(black_a.ratio == Approx(4.0));
    CHECK(black_a.rate_ci.lo == Approx(1000 * garwood_interval({40, 40}).lo / 10000));
    CHECK(black_a.ratio_ci.lo == Approx(katz_interval({40, 40}, 10000, {100, 100}, 100000).lo));
    CHECK(black_a.note.empty());
    CHECK(rows[0].is_reference);
    CHECK(rows[0].ratio == 1);
    // The suppressed cell: midpoint 2 of [0, 4], flagged, lower ratio limit 0, never a zero.
    const auto& asian_a = rows[2];
    CHECK(asian_a.count.lo == 0);
    CHECK(asian_a.count.hi == 4);
    CHECK(asian_a.rate == Approx(0.1));
    CHECK(asian_a.rate_ci.lo == 0);
    CHECK(asian_a.rate_ci.hi == Approx(1000 * garwood_interval({4, 4}).hi / 20000));
    CHECK(asian_a.ratio_ci.lo == 0);
    CHECK(asian_a.note == "suppressed count: rate at the midpoint, interval over the whole range");
    // Pooled: sums of counts and populations.
    const auto& asian_all = rows[8];
    CHECK(asian_all.pooled);
    CHECK(asian_all.area == POOLED_AREA);
    CHECK(asian_all.count.lo == 6);
    CHECK(asian_all.count.hi == 10);
    CHECK(asian_all.population == 26000);
    CHECK(rows[7].rate == Approx(1000.0 * 50 / 15000));
    CHECK(rows[7].ratio == Approx((50.0 / 15000) / (150.0 / 150000)));

    // Without a given reference, the largest population is the reference.
    CHECK(observed_rates(counts, population, {})[1].reference == "White");
    // A reference that is not in the table.
    CHECK(message([&] {
              observed_rates(counts, population, {{"ethnicity", "Mixed"}});
          }) ==
          "c.csv: reference category 'Mixed' of ethnicity has no row for area A: give its "
          "count, or choose another reference");

    const auto text = format_rates_table(rows);
    CHECK(text.find("per 1,000") != std::string::npos);
    CHECK(text.find("0-4*") != std::string::npos);
    CHECK(text.find("* suppressed cell") != std::string::npos);
    const auto csv = rates_csv(rows);
    CHECK(csv.substr(0, csv.find('\n')) ==
          "area,pooled,dimension,category,count_lo,count_hi,suppressed,population,rate_per_1000,"
          "rate_lo95,rate_hi95,reference,ratio,ratio_lo95,ratio_hi95,note");
    CHECK(csv.find("A,false,ethnicity,Black,40,40,false,10000,4,") != std::string::npos);
}

TEST_CASE("observed rates need a population for every count", "[calibrate][rates]") {
    const auto counts =
        parse_count_table("dimension,category,count\nsex,Male,12\nsex,Female,1\n", "c.csv");
    CHECK(message([&] {
              observed_rates(
                  counts,
                  parse_population_table("dimension,category,population\nsex,Male,100\n", "p.csv"),
                  {});
          }) ==
          "c.csv:3: no population for sex=Female in p.csv: give one population row per "
          "row of the counts table");
    CHECK(message([&] {
              observed_rates(counts,
                             parse_population_table(
                                 "area,dimension,category,population\nX,sex,Male,100\n", "p.csv"),
                             {});
          }) ==
          "p.csv: the population table has area column but the counts table (c.csv) has "
          "none: give both tables the same columns");
}

TEST_CASE("IPF recovers known propensities including a conditional dimension", "[calibrate][ipf]") {
    const auto dims = three_dimensions();
    const CellTable cells(dims, 1000000);
    auto truth = propensity_of(dims);
    truth.factors[0] = {1.0, 4.2, 1.9};
    truth.factors[1] = {11.5, 1.0};
    truth.factors[2] = {1.0, 2.3, 0.6};
    const auto targets = exact_targets(dims, cells, truth);
    // The conditional status dimension makes the marginal ethnicity ratio differ from the
    // factor: the fit has real work to do.
    CHECK(targets[0].ratios.at("Black") != Approx(4.2).epsilon(1e-3));

    const auto fit = fit_propensity(dims, cells, propensity_of(dims), targets);
    CHECK(fit.iterations > 1);
    CHECK(fit.iterations < 100);
    CHECK(fit.max_residual < 1e-10);
    CHECK(fit.fitted_dimensions == std::vector<std::size_t>{0, 1, 2});
    for (std::size_t d = 0; d < dims.size(); ++d)
        for (std::size_t k = 0; k < dims[d].categories.size(); ++k) {
            CAPTURE(d, k);
            CHECK(fit.propensity.factors[d][k] ==
                  Approx(truth.factors[d][k]).epsilon(1e-8).margin(0));
        }
    REQUIRE(fit.residuals.size() == 5);
    CHECK(fit.residuals[0].dimension == "ethnicity");
    CHECK(fit.residuals[0].category == "Black");
    CHECK(fit.residuals[0].fitted == Approx(fit.residuals[0].target).epsilon(1e-10));
    CHECK(fit.propensity.base == 1);
    CHECK(fit.propensity.key == "stops.propensity");
}

TEST_CASE("IPF keeps untargeted dimensions and free categories", "[calibrate][ipf]") {
    const auto dims = three_dimensions();
    const CellTable cells(dims, 1000);
    auto start = propensity_of(dims);
    start.factors[2] = {1.0, 3.0, 5.0};  // status: not targeted
    start.factors[0] = {1.0, 1.0, 7.0};  // Asian: free
    MarginalTarget t{"ethnicity", {{"Black", 4.0}, {"Asian", NaN}, {"White", 1.0}}, "t"};
    const auto fit = fit_propensity(dims, cells, start, {t});
    CHECK(fit.fitted_dimensions == std::vector<std::size_t>{0});
    CHECK(fit.propensity.factors[2] == std::vector<double>{1.0, 3.0, 5.0});
    CHECK(fit.propensity.factors[0][2] == 7.0);
    const auto rates = marginal_rates(dims, cells, fit.propensity);
    CHECK(rates[0][1] / rates[0][0] == Approx(4.0).epsilon(1e-10));
    // No targets: nothing to do.
    const auto none = fit_propensity(dims, cells, start, {});
    CHECK(none.iterations == 0);
    CHECK(none.propensity.factors == start.factors);
}

TEST_CASE("impossible targets are refused with one-line messages", "[calibrate][ipf]") {
    const auto dims = three_dimensions();
    const CellTable cells(dims, 1000);
    const auto p = propensity_of(dims);
    const auto fit_with = [&](MarginalTarget t) {
        return message([&] { fit_propensity(dims, cells, p, {t}); });
    };
    CHECK(fit_with({"ethnicity", {{"Black", 0.0}}, "x.ini:3"}) ==
          "x.ini:3: ethnicity=Black target ratio 0: a target ratio must be a finite number > 0");
    CHECK(fit_with({"ethnicity", {{"Black", -2.0}}, "x.ini:3"}) ==
          "x.ini:3: ethnicity=Black target ratio -2: a target ratio must be a finite number > 0");
    CHECK(fit_with({"ethnicity", {{"Black", std::numeric_limits<double>::infinity()}}, "x"}) ==
          "x: ethnicity=Black target ratio inf: a target ratio must be a finite number > 0");
    CHECK(fit_with({"ethnicity", {{"White", 2.0}}, "x"}) ==
          "x: ethnicity=White target ratio 2: White is the reference category, whose ratio is 1 "
          "by definition: leave it out or give 1");
    CHECK(fit_with({"ethnicty", {{"Black", 2.0}}, "x"}) ==
          "x: target for unknown dimension 'ethnicty'; did you mean 'ethnicity'?: the "
          "scenario's dimensions are ethnicity, sex, status");
    CHECK(fit_with({"ethnicity", {{"Blak", 2.0}}, "x"}) ==
          "x: target for unknown category ethnicity=Blak; did you mean 'Black'?: give a "
          "category of the scenario");
    CHECK(message([&] {
              fit_propensity(dims, cells, p,
                             {{"sex", {{"Male", 2.0}}, "a"}, {"sex", {{"Male", 3.0}}, "b"}});
          }) == "b: two targets for dimension sex (the other from a): give one");

    // A category with no population share.
    auto zero = three_dimensions();
    zero[0].shares = {{0.9, 0.1, 0.0}};
    const CellTable zero_cells(zero, 1000);
    CHECK(message([&] {
              fit_propensity(zero, zero_cells, propensity_of(zero),
                             {{"ethnicity", {{"Asian", 2.0}}, "x"}});
          }) ==
          "x: ethnicity=Asian target ratio 2: the category has no population share in the "
          "scenario, so it has no stop rate to fit");

    // A category whose cells all have propensity 0 (another dimension's factor is 0).
    auto dead = propensity_of(dims);
    dead.factors[2] = {0.0, 0.0, 1.0};  // only status=none stopped: White has no such cells
    CHECK(message([&] {
              fit_propensity(dims, cells, dead, {{"ethnicity", {{"Black", 2.0}}, "x"}});
          }) ==
          "x: every cell of ethnicity=White (the reference) has stop propensity 0: no ratio "
          "to it can be fitted; give it a factor > 0");
}

TEST_CASE("inconsistent margins do not converge and say so", "[calibrate][ipf]") {
    // b2 occurs only with a2 and a2 only with b2: the two ratios are the same number, so
    // targets 2 and 3 cannot both hold.
    const std::vector<Dimension> dims{dimension("a", {"a1", "a2"}, {{0.5, 0.5}}, 0),
                                      dimension("b", {"b1", "b2"}, {{1.0, 0.0}, {0.0, 1.0}}, 0, 0)};
    const CellTable cells(dims, 1000);
    const auto m = message([&] {
        fit_propensity(dims, cells, propensity_of(dims),
                       {{"a", {{"a2", 2.0}}, "counts.csv"}, {"b", {{"b2", 3.0}}, "counts.csv"}},
                       FitOptions{1e-10, 50});
    });
    CHECK(m ==
          "counts.csv: the propensity fit did not converge: after 50 iterations the largest "
          "relative residual is 0.5 (a=a2): the target margins are probably inconsistent, e.g. a "
          "category that occurs only together with another whose target disagrees");
    // Consistent targets on the same structure converge.
    CHECK_NOTHROW(fit_propensity(dims, cells, propensity_of(dims),
                                 {{"a", {{"a2", 3.0}}, "c"}, {"b", {{"b2", 3.0}}, "c"}}));
}

TEST_CASE("targets from observed rates use the scenario's reference", "[calibrate][ipf]") {
    const auto dims = three_dimensions();
    const auto counts = parse_count_table(
        "dimension,category,count\nethnicity,White,80\nethnicity,Black,32\nethnicity,Asian,<5\n"
        "sex,Male,100\nsex,Female,14\n",
        "c.csv");
    const auto population = parse_population_table(
        "dimension,category,population\nethnicity,White,8000\nethnicity,Black,800\n"
        "ethnicity,Asian,1200\nsex,Male,4900\nsex,Female,5100\n",
        "p.csv");
    // The table is summarised against Male; the targets are against the scenario's Female.
    const auto rates = observed_rates(counts, population, {{"sex", "Male"}});
    const auto targets = targets_from_rates(rates, dims, "", "c.csv");
    REQUIRE(targets.size() == 2);
    CHECK(targets[0].dimension == "ethnicity");
    CHECK(targets[0].ratios.at("Black") == Approx(4.0));
    CHECK(targets[0].ratios.at("Asian") == Approx((2.0 / 1200) / (80.0 / 8000)));
    CHECK(targets[0].ratios.at("White") == 1.0);
    CHECK(targets[1].ratios.at("Male") == Approx((100.0 / 4900) / (14.0 / 5100)));
    const CellTable cells(dims, 10000);
    const auto fit = fit_propensity(dims, cells, propensity_of(dims), targets);
    CHECK(fit.max_residual < 1e-10);

    const auto bad = observed_rates(
        parse_count_table("dimension,category,count\nethnicity,White,8\nethnicity,Blak,3\n",
                          "c.csv"),
        parse_population_table(
            "dimension,category,population\nethnicity,White,80\nethnicity,Blak,30\n", "p.csv"),
        {});
    CHECK(message([&] { targets_from_rates(bad, dims, "", "c.csv"); }) ==
          "c.csv: category ethnicity=Blak of the counts table is not a category of the "
          "scenario; did you mean 'Black'?: rename it, or merge it into a scenario category");
    CHECK(message([&] { targets_from_rates(rates, dims, "Surrey", "c.csv"); }) ==
          "c.csv: no rows for area 'Surrey': give an area of the counts table");
    const auto zero = observed_rates(
        parse_count_table("dimension,category,count\nethnicity,White,8\nethnicity,Black,0\n",
                          "c.csv"),
        parse_population_table(
            "dimension,category,population\nethnicity,White,80\nethnicity,Black,30\n", "p.csv"),
        {});
    CHECK(message([&] { targets_from_rates(zero, dims, "", "c.csv"); }) ==
          "c.csv: ethnicity=Black has a zero count: a ratio of 0 cannot be fitted by a factor; "
          "merge the category into another or set its factor by hand");
}

TEST_CASE("dispersion round trip and 42 uses on 35 people", "[calibrate][dispersion]") {
    const auto dims = three_dimensions();
    const CellTable cells(dims, 2000000);
    auto p = propensity_of(dims);
    p.factors[0] = {1.0, 4.0, 2.0};
    p.factors[1] = {12.0, 1.0};
    const auto mu = stop_means_by_cell(cells, p, 72000);
    std::vector<double> pop;
    for (std::size_t c = 0; c < cells.size(); ++c)
        pop.push_back(static_cast<double>(cells.population(c)));
    double total = 0;
    for (std::size_t c = 0; c < cells.size(); ++c) total += mu[c] * pop[c];
    CHECK(total == Approx(72000).epsilon(1e-12));

    for (const double k : {0.003, 0.05, 1.0, 40.0}) {
        CAPTURE(k);
        const double r = uses_per_person(mu, pop, k);
        CHECK(fit_dispersion(mu, pop, r) == Approx(k).epsilon(1e-8));
    }
    const double k = fit_dispersion(mu, pop, 42.0 / 35.0);
    CHECK(uses_per_person(mu, pop, k) == Approx(1.2).epsilon(1e-10));
    CHECK(k > 0);
    CHECK(k < 1);  // a fifth more uses than people needs strong clustering at these means

    const double poisson = uses_per_person(mu, pop, std::numeric_limits<double>::infinity());
    CHECK(std::isinf(fit_dispersion(mu, pop, poisson)));
    CHECK(message([&] { fit_dispersion(mu, pop, 0.9); }) ==
          "--uses: uses per person seen = 0.9: every person seen was stopped at least once, so "
          "uses per person must be >= 1");
    const auto below = message([&] { fit_dispersion(mu, pop, 1.0); });
    CHECK(below.find("--uses: uses per person seen = 1: below the Poisson value 1.0") == 0);
    CHECK(below.find("repeat stops cannot be more regular than Poisson") != std::string::npos);
}

TEST_CASE("the fragment is a valid INI text that reproduces the fit", "[calibrate][fragment]") {
    const auto dims = three_dimensions();
    const CellTable cells(dims, 1000);
    const auto fit = fit_propensity(dims, cells, propensity_of(dims),
                                    {{"ethnicity", {{"Black", 4.0}, {"Asian", 2.0}}, "c.csv"},
                                     {"sex", {{"Male", 12.0}}, "c.csv"}});
    const auto text =
        propensity_fragment(dims, fit, "counts: c.csv\npopulation: p.csv\nscenario: s.ini");
    CHECK(text.rfind("# Stop propensity factors fitted by `stopscan calibrate`", 0) == 0);
    CHECK(text.find("# counts: c.csv\n# population: p.csv\n# scenario: s.ini\n") !=
          std::string::npos);
    CHECK(
        text.find("# Fitted: ethnicity, sex (marginal stop-rate ratios equal to the targets).\n") !=
        std::string::npos);
    CHECK(text.find(" after 1 iteration (tolerance 1e-10).\n") != std::string::npos);
    const auto s = Settings::parse_ini(text, "fragment.ini");
    REQUIRE(s.find("stops.propensity.ethnicity"));
    REQUIRE(s.find("stops.propensity.sex"));
    CHECK(s.find("stops.propensity.status") == nullptr);
    CHECK(s.find("stops.propensity.sex")->value.rfind("Male:", 0) == 0);
    // Read the factors back (6 significant digits) and check the ratios to 1e-5.
    auto back = propensity_of(dims);
    for (std::size_t d = 0; d < 2; ++d)
        for (const auto& item : split_list(s.find("stops.propensity." + dims[d].name)->value)) {
            const auto colon = item.find(':');
            const auto name = item.substr(0, colon);
            const auto k = static_cast<std::size_t>(
                std::find(dims[d].categories.begin(), dims[d].categories.end(), name) -
                dims[d].categories.begin());
            back.factors[d][k] = std::stod(item.substr(colon + 1));
        }
    const auto rates = marginal_rates(dims, cells, back);
    CHECK(rates[0][1] / rates[0][0] == Approx(4.0).epsilon(1e-5));
    CHECK(rates[0][2] / rates[0][0] == Approx(2.0).epsilon(1e-5));
    CHECK(rates[1][0] / rates[1][1] == Approx(12.0).epsilon(1e-5));
}

TEST_CASE("the shipped example tables calibrate the default scenario", "[calibrate][example]") {
    const std::string dir = std::string(STOPSCAN_SOURCE_DIR) + "/scenarios/data/";
    const auto counts = read_count_table(dir + "foi-example-counts.csv");
    const auto population = read_population_table(dir + "foi-example-population.csv");
    CHECK(counts.areas() == std::vector<std::string>{"West Yorkshire", "Metropolitan", "Surrey"});
    CHECK_NOTHROW(check_margins(counts));
    const auto* mixed = counts.find("Surrey", "ethnicity", "Mixed");
    REQUIRE(mixed);
    CHECK(mixed->count.lo == 0);
    CHECK(mixed->count.hi == 4);
    CHECK(counts.find("Metropolitan", "sex", "Male")->count.lo == 19899);

    const auto scenario = load_scenario(Settings::parse_ini(default_scenario_text(), "default"));
    std::map<std::string, std::string> references;
    for (const auto& d : scenario.dimensions) references[d.name] = d.categories[d.reference];
    const auto rates = observed_rates(counts, population, references);
    CHECK(rates.size() == 28);  // 3 areas × 7 rows + 7 pooled
    const auto targets = targets_from_rates(rates, scenario.dimensions, "", counts.source);
    const CellTable cells(scenario.dimensions, scenario.population);
    const auto fit =
        fit_propensity(scenario.dimensions, cells, scenario.propensity, targets, FitOptions{});
    CHECK(fit.max_residual < 1e-10);

    // The fragment, put over the scenario, reproduces the pooled ratios (to its 6 digits).
    auto settings = Settings::parse_ini(default_scenario_text(), "default");
    const auto fragment = Settings::parse_ini(
        propensity_fragment(scenario.dimensions, fit, "example"), "fragment.ini");
    for (const auto& [key, setting] : fragment.all())
        settings.apply_override(key + "=" + setting.value);
    const auto calibrated = load_scenario(settings);
    const auto fitted = marginal_rates(calibrated.dimensions, cells, calibrated.propensity);
    for (const auto& t : targets) {
        const auto d = static_cast<std::size_t>(
            std::find_if(calibrated.dimensions.begin(), calibrated.dimensions.end(),
                         [&](const Dimension& x) { return x.name == t.dimension; }) -
            calibrated.dimensions.begin());
        const auto& dim = calibrated.dimensions[d];
        for (const auto& [category, ratio] : t.ratios) {
            CAPTURE(t.dimension, category);
            const auto k = static_cast<std::size_t>(
                std::find(dim.categories.begin(), dim.categories.end(), category) -
                dim.categories.begin());
            CHECK(fitted[d][k] / fitted[d][dim.reference] == Approx(ratio).epsilon(1e-5));
        }
    }
}
