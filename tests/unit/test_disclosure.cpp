// Disclosure control: sdc leaves no suppressed cell recoverable from the margins (checked by
// an independent rank computation), dp noises every cell and keeps to its ledger.
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "stopscan/cli.hpp"
#include "stopscan/disclosure.hpp"
#include "stopscan/engine.hpp"
#include "stopscan/error.hpp"
#include "stopscan/scenario.hpp"
#include "support/temp_dir.hpp"

using namespace stopscan;

namespace {

// A random table: one policy, one or two metrics, 1-3 dimensions of 2-6 categories. Counts
// come from a random cross-classification so that every margin adds up; a third of the
// cross cells are small, so that primary suppressions are common.
ReleaseTable random_table(std::mt19937_64& rng, bool two_metrics) {
    std::uniform_int_distribution<int> n_dims(1, 3), n_cats(2, 6), small(0, 12), large(0, 60);
    std::bernoulli_distribution is_small(0.6);
    const int D = n_dims(rng);
    std::vector<int> cats(static_cast<std::size_t>(D));
    std::size_t cross = 1;
    for (auto& c : cats) {
        c = n_cats(rng);
        cross *= static_cast<std::size_t>(c);
    }
    ReleaseTable t;
    t.name = "random";
    const std::vector<std::string> metrics =
        two_metrics ? std::vector<std::string>{"a", "b", "sum"} : std::vector<std::string>{"a"};
    std::vector<std::vector<std::int64_t>> cross_counts(2, std::vector<std::int64_t>(cross));
    for (auto& m : cross_counts)
        for (auto& v : m) v = is_small(rng) ? small(rng) : large(rng);
    for (std::size_t m = 0; m < metrics.size(); ++m) {
        auto count_of = [&](std::size_t x) {
            return m < 2 ? cross_counts[m][x] : cross_counts[0][x] + cross_counts[1][x];
        };
        std::int64_t total = 0;
        for (std::size_t x = 0; x < cross; ++x) total += count_of(x);
        t.add_cell("p", metrics[m], "all", "all", total);
        std::size_t stride = cross;
        for (int d = 0; d < D; ++d) {
            stride /= static_cast<std::size_t>(cats[static_cast<std::size_t>(d)]);
            for (int c = 0; c < cats[static_cast<std::size_t>(d)]; ++c) {
                std::int64_t sum = 0;
                for (std::size_t x = 0; x < cross; ++x)
                    if (static_cast<int>((x / stride) % static_cast<std::size_t>(
                                                            cats[static_cast<std::size_t>(d)])) ==
                        c)
                        sum += count_of(x);
                t.add_cell("p", metrics[m], "d" + std::to_string(d), "c" + std::to_string(c), sum);
            }
        }
    }
    t.add_dimension_margins();
    if (two_metrics) t.add_metric_sum("sum", {"a", "b"});
    return t;
}

// Rank of a dense matrix by Gaussian elimination with full row scans (independent of the
// library's reduced-row-echelon test).
std::size_t rank(std::vector<std::vector<double>> a) {
    std::size_t r = 0;
    const std::size_t cols = a.empty() ? 0 : a[0].size();
    for (std::size_t c = 0; c < cols && r < a.size(); ++c) {
        std::size_t best = r;
        for (std::size_t i = r; i < a.size(); ++i)
            if (std::abs(a[i][c]) > std::abs(a[best][c])) best = i;
        if (std::abs(a[best][c]) < 1e-9) continue;
        std::swap(a[r], a[best]);
        for (std::size_t i = 0; i < a.size(); ++i) {
            if (i == r) continue;
            const double f = a[i][c] / a[r][c];
            for (std::size_t k = 0; k < cols; ++k) a[i][k] -= f * a[r][k];
        }
        ++r;
    }
    return r;
}

// Suppressed cells determined by the margins: with the released cells substituted, the
// relations are A x = b over the suppressed x. x_i is determined iff dropping column i
// lowers the rank (e_i is in the row space of A).
std::vector<std::size_t> determined_by_rank(const ReleaseTable& t) {
    std::vector<std::size_t> unknown;
    std::map<std::size_t, std::size_t> column;
    for (std::size_t i = 0; i < t.cells.size(); ++i)
        if (!t.cells[i].released) {
            column[i] = unknown.size();
            unknown.push_back(i);
        }
    std::vector<std::vector<double>> a;
    for (const auto& r : t.relations) {
        std::vector<double> row(unknown.size(), 0.0);
        if (column.count(r.total)) row[column[r.total]] += 1;
        for (const auto p : r.parts)
            if (column.count(p)) row[column[p]] -= 1;
        a.push_back(row);
    }
    const std::size_t full = rank(a);
    std::vector<std::size_t> out;
    for (std::size_t j = 0; j < unknown.size(); ++j) {
        auto without = a;
        for (auto& row : without) row.erase(row.begin() + static_cast<std::ptrdiff_t>(j));
        if (rank(without) < full) out.push_back(unknown[j]);
    }
    return out;
}

}  // namespace

TEST_CASE("sdc leaves no suppressed cell recoverable in 600 random tables", "[disclosure]") {
    std::mt19937_64 rng(20240611);
    std::size_t suppressed_total = 0, secondary_total = 0;
    for (int trial = 0; trial < 600; ++trial) {
        ReleaseTable t = random_table(rng, trial % 2 == 1);
        const SdcOptions options;  // k = 10
        apply_sdc(t, options);
        INFO("trial " << trial);
        for (std::size_t i = 0; i < t.cells.size(); ++i) {
            const double v = t.value(i);
            const auto& c = t.cells[i];
            // Every small non-zero cell is suppressed as primary; released cells are exact.
            if (v > 0 && v < options.k) CHECK(c.status == CellStatus::primary);
            if (c.released) CHECK(*c.released == v);
            if (!c.released) ++suppressed_total;
            if (c.status == CellStatus::secondary) ++secondary_total;
        }
        CHECK(determined_by_rank(t).empty());
        CHECK(recoverable_cells(t).empty());
        // Under a released total, the suppressed parts together are at least k.
        for (const auto& r : t.relations) {
            if (!t.cells[r.total].released) continue;
            double residual = 0;
            bool any = false;
            for (const auto p : r.parts)
                if (!t.cells[p].released) {
                    residual += t.value(p);
                    any = true;
                }
            if (any) CHECK(residual >= options.k);
        }
    }
    // The generator does exercise both kinds of suppression.
    CHECK(suppressed_total > 1000);
    CHECK(secondary_total > 100);
}

TEST_CASE("sdc suppresses a second cell next to a lone small cell", "[disclosure]") {
    ReleaseTable t;
    t.add_cell("p", "m", "all", "all", 100);
    t.add_cell("p", "m", "sex", "F", 3);
    t.add_cell("p", "m", "sex", "M", 97);
    t.add_cell("p", "m", "age", "young", 40);
    t.add_cell("p", "m", "age", "middle", 25);
    t.add_cell("p", "m", "age", "old", 35);
    t.add_dimension_margins();
    apply_sdc(t, {});
    CHECK(t.cells[1].status == CellStatus::primary);
    CHECK(t.cells[2].status == CellStatus::secondary);  // the only other part of its margin
    CHECK(t.cells[0].released == 100.0);                // the total stays
    CHECK(t.cells[4].released == 25.0);                 // the other dimension is untouched
    CHECK(determined_by_rank(t).empty());
    CHECK(t.footer.find("k = 10") != std::string::npos);
    CHECK(t.footer.find("1 primary") != std::string::npos);
}

TEST_CASE("sdc suppresses a whole margin group whose total is small", "[disclosure]") {
    ReleaseTable t;
    t.add_cell("p", "m", "all", "all", 7);
    t.add_cell("p", "m", "sex", "F", 3);
    t.add_cell("p", "m", "sex", "M", 4);
    t.add_cell("p", "m", "age", "young", 7);
    t.add_cell("p", "m", "age", "old", 0);
    t.add_dimension_margins();
    apply_sdc(t, {});
    for (std::size_t i : {0, 1, 2, 3}) CHECK_FALSE(t.cells[i].released);
    CHECK(t.cells[4].released == 0.0);  // a zero is released by default
    CHECK(determined_by_rank(t).empty());
}

TEST_CASE("recoverable_cells finds a total derived through another dimension", "[disclosure]") {
    ReleaseTable t;
    t.add_cell("p", "m", "all", "all", 30);
    t.add_cell("p", "m", "sex", "F", 12);
    t.add_cell("p", "m", "sex", "M", 18);
    t.add_cell("p", "m", "age", "young", 14);
    t.add_cell("p", "m", "age", "old", 16);
    t.add_dimension_margins();
    apply_none(t);
    // Suppress the total and F only: the total follows from age, then F from the total.
    t.cells[0].status = t.cells[1].status = CellStatus::secondary;
    t.cells[0].released = t.cells[1].released = std::nullopt;
    CHECK(recoverable_cells(t) == std::vector<std::size_t>{0, 1});
    CHECK(determined_by_rank(t) == std::vector<std::size_t>{0, 1});
}

TEST_CASE("sdc rounds released values to the base and says so", "[disclosure]") {
    ReleaseTable t;
    t.add_cell("p", "m", "all", "all", 123);
    t.add_cell("p", "m", "sex", "F", 61);
    t.add_cell("p", "m", "sex", "M", 62);
    t.add_dimension_margins();
    SdcOptions options;
    options.round_base = 5;
    apply_sdc(t, options);
    CHECK(*t.cells[0].released == 125);
    CHECK(*t.cells[1].released == 60);
    CHECK(*t.cells[2].released == 60);
    CHECK(t.footer.find("multiple of 5") != std::string::npos);
}

TEST_CASE("sdc protects cells linked by a metric sum", "[disclosure]") {
    ReleaseTable t;
    // wrongful = arrests + referrals; referrals is small.
    t.add_cell("p", "arrests", "all", "all", 50);
    t.add_cell("p", "referrals", "all", "all", 4);
    t.add_cell("p", "wrongful", "all", "all", 54);
    t.add_metric_sum("wrongful", {"arrests", "referrals"});
    apply_sdc(t, {});
    CHECK(t.cells[1].status == CellStatus::primary);
    CHECK_FALSE(t.cells[0].released);
    CHECK(determined_by_rank(t).empty());
}

TEST_CASE("sdc refuses a table whose margins do not add up", "[disclosure]") {
    ReleaseTable t;
    t.add_cell("p", "m", "all", "all", 10);
    t.add_cell("p", "m", "sex", "F", 3);
    t.add_cell("p", "m", "sex", "M", 4);
    t.add_dimension_margins();
    CHECK_THROWS_AS(apply_sdc(t, {}), InternalError);
}

TEST_CASE("epsilon is parsed exactly and bad values are refused", "[disclosure]") {
    CHECK(Epsilon::parse("cl", "--epsilon", "0.5").micro == 500000);
    CHECK(Epsilon::parse("cl", "--epsilon", "2").micro == 2000000);
    CHECK(Epsilon::parse("cl", "--epsilon", ".25").micro == 250000);
    CHECK(Epsilon::parse("cl", "--epsilon", "0.000001").micro == 1);
    CHECK(Epsilon{1'250'000}.text() == "1.25");
    for (const char* bad : {"", "0", "-1", "1e-3", "0.1234567", "abc", "1.", "101", "nan"}) {
        INFO(bad);
        CHECK_THROWS_AS(Epsilon::parse("cl", "--epsilon", bad), InputError);
    }
    try {
        Epsilon::parse("command line", "--epsilon", "-1");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()) ==
              "command line: --epsilon = -1: must be a decimal number in (0, 100] with at most 6 "
              "decimals, e.g. 0.5");
    }
}

TEST_CASE("the ledger refuses a release that would exceed the total", "[disclosure]") {
    PrivacyLedger ledger(Epsilon{1'000'000});
    ledger.charge("a", Epsilon{400'000});
    ledger.charge("b", Epsilon{600'000});  // exactly the budget: allowed
    CHECK(ledger.spent().micro == 1'000'000);
    CHECK_THROWS_AS(ledger.charge("c", Epsilon{1}), InputError);
    CHECK(ledger.spent().micro == 1'000'000);  // unchanged by the refusal
    try {
        ledger.charge("c", Epsilon{1});
    } catch (const InputError& e) {
        const std::string what = e.what();
        CHECK(what.find("--epsilon-total = 1") != std::string::npos);
        CHECK(what.find("table c") != std::string::npos);
    }
    CHECK(ledger.json().find("\"epsilon_spent\": 1,") != std::string::npos);

    // apply_dp charges before touching the table: an over-budget release leaves it as it was.
    ReleaseTable t;
    t.name = "t";
    t.add_cell("p", "m", "all", "all", 5);
    CryptoRandomBits bits;
    CHECK_THROWS_AS(apply_dp(t, Epsilon{1}, {1, 1}, ledger, bits), InputError);
    CHECK_FALSE(t.cells[0].released);
}

TEST_CASE("dp releases every cell of the key set, zeros included, with intervals", "[disclosure]") {
    ReleaseTable t;
    t.name = "zeros";
    t.divisor = 1;
    for (int i = 0; i < 300; ++i) t.add_cell("p", "m", "d", "c" + std::to_string(i), 0);
    PrivacyLedger ledger(Epsilon{1'000'000});
    CryptoRandomBits bits;
    // Sensitivity 4 at ε = 0.5: scale 8, so P(noise = 0) = (1-p)/(1+p) ≈ 0.06.
    apply_dp(t, Epsilon{500'000}, {2, 2}, ledger, bits);
    std::size_t nonzero = 0, negative = 0;
    const double half = static_cast<double>(discrete_laplace_half_width95(8.0));
    for (const auto& c : t.cells) {
        REQUIRE(c.released);
        CHECK(c.status == CellStatus::released);
        CHECK(*c.released == std::round(*c.released));  // an integer count, not clamped
        nonzero += *c.released != 0;
        negative += *c.released < 0;
        CHECK(*c.noise_hi95 - *c.released == half);
        CHECK(*c.released - *c.noise_lo95 == half);
        CHECK(*c.hi95 - *c.released == half);  // mc_se = 0: combined = noise
    }
    // P(all 300 noises are 0 | correct sampler) ≈ 0.06^300; negatives are kept in the data.
    CHECK(nonzero > 200);
    CHECK(negative > 50);
    CHECK(ledger.spent().micro == 500'000);
    CHECK(t.footer.find("epsilon = 0.5") != std::string::npos);
    CHECK(t.footer.find("L1 sensitivity 4") != std::string::npos);
    // People see no negative counts; the CSV keeps the unbiased value.
    ReleaseCell negative_cell;
    negative_cell.released = -3;
    CHECK(display_released(negative_cell, ReleaseMode::dp, 1) == "0");
    const std::string csv = release_csv({t}, ReleaseMode::dp);
    CHECK(csv.find(",-") != std::string::npos);
    CHECK(csv.find("monte_carlo+privacy_noise") != std::string::npos);
}

TEST_CASE("the discrete Laplace 95% half-width is the smallest that covers 95%", "[disclosure]") {
    for (const double scale : {0.3, 1.0, 2.5, 8.0, 40.0, 333.3}) {
        const auto m = discrete_laplace_half_width95(scale);
        auto coverage = [&](std::int64_t w) {
            return discrete_laplace_cdf(w, scale) - discrete_laplace_cdf(-w - 1, scale);
        };
        INFO("scale " << scale << " m " << m);
        CHECK(coverage(m) >= 0.95);
        if (m > 0) CHECK(coverage(m - 1) < 0.95);
        double sum = 0;
        for (std::int64_t y = -m; y <= m; ++y) sum += discrete_laplace_pmf(y, scale);
        CHECK(sum == Approx(coverage(m)).epsilon(1e-9));
    }
}

TEST_CASE("the combined interval joins Monte Carlo error and noise", "[disclosure]") {
    // No Monte Carlo error: the noise's own half-width (over the divisor).
    CHECK(combined_half_width95(0, 8.0, 4) ==
          static_cast<double>(discrete_laplace_half_width95(8.0)) / 4);
    // Negligible noise: the normal 97.5 % quantile 1.959964 × se.
    CHECK(combined_half_width95(2.0, 1e-3, 1) == Approx(1.959964 * 2.0).epsilon(1e-4));
    // Both: wider than either alone, narrower than their sum.
    const double noise = static_cast<double>(discrete_laplace_half_width95(5.0));
    const double both = combined_half_width95(3.0, 5.0, 1);
    CHECK(both > noise);
    CHECK(both > 1.959964 * 3.0);
    CHECK(both < noise + 1.959964 * 3.0);
}

TEST_CASE("the integer samplers behave on a scripted bit source", "[disclosure]") {
    struct Script final : RandomBits {
        std::vector<std::uint64_t> words;
        std::size_t at = 0;
        std::uint64_t next() override { return words.at(at++); }
    };
    Script s;
    s.words = {5, 7};
    CHECK(uniform_below(s, 10) == 5);
    CHECK(uniform_below(s, 1) == 0);  // draws nothing
    CHECK(uniform_below(s, 10) == 7);
    // Rejection: the top partial block of 2^64 is never used.
    s.words = {~std::uint64_t{0}, 3};
    s.at = 0;
    CHECK(uniform_below(s, 10) == 3);
    // exp(-0) = 1: the first Bernoulli(0/k) fails at K = 1, which is odd.
    s.words = {0};
    s.at = 0;
    CHECK(bernoulli_exp(s, 0, 7));
}

TEST_CASE("release modes parse and the run's count tables add up", "[disclosure]") {
    CHECK(parse_release_mode("cl", "--release", "dp") == ReleaseMode::dp);
    CHECK_THROWS_AS(parse_release_mode("cl", "--release", "DP"), InputError);

    auto settings = Settings::parse_ini(default_scenario_text(), "");
    settings.apply_override("stops.total=20000");
    RunOptions options;
    options.replications = 3;
    const Results results =
        Engine(make_run_plan(std::make_shared<const Scenario>(load_scenario(settings)), options))
            .run();
    auto tables = run_count_tables(results);
    REQUIRE(!tables.empty());
    CHECK(tables.front().name == "stops");
    CHECK(tables.back().name == "persons_wrongfully_affected");
    for (auto& t : tables) {
        CHECK(t.divisor == 3);
        // Every policy × (all + every category), zeros included.
        std::size_t groups = 1;
        for (const auto& d : results.plan.scenario->dimensions) groups += d.categories.size();
        CHECK(t.cells.size() == results.policies() * groups);
        CHECK_NOTHROW(apply_sdc(t, {}));  // throws if a margin does not add up
        CHECK(recoverable_cells(t).empty());
    }
    // The all-row of stops equals the total over replications.
    CHECK(static_cast<std::uint64_t>(tables.front().cells.front().count) == results.total_stops());
    // Every metric has a per-stop bound.
    for (const auto& t : tables)
        if (!person_level_metric(t.name)) CHECK(per_stop_bound(t.name, 1) >= 1);
    // Merged with the metric sums of summary.csv, suppression still holds.
    ReleaseTable merged = merge_tables(tables, "counts");
    merged.add_metric_sum("wrongful_outcomes",
                          {"wrongful_arrests", "wrongful_ho_referrals", "wrongful_detentions"});
    CHECK(merged.relations.size() > tables.front().relations.size());
    apply_sdc(merged, {});
    CHECK(recoverable_cells(merged).empty());
    // The independent rank test, on one policy's block (it is O(n^4)).
    ReleaseTable block;
    for (const auto& c : merged.cells)
        if (c.policy == merged.cells.front().policy) block.cells.push_back(c);
    block.add_dimension_margins();
    block.add_metric_sum("wrongful_outcomes",
                         {"wrongful_arrests", "wrongful_ho_referrals", "wrongful_detentions"});
    CHECK(determined_by_rank(block).empty());
}

TEST_CASE("a run's release: sdc as one protected table, dp per metric within the budget",
          "[disclosure]") {
    auto settings = Settings::parse_ini(default_scenario_text(), "");
    settings.apply_override("stops.total=20000");
    RunOptions run;
    run.replications = 4;
    run.max_stops_per_person = 5;
    const Results results =
        Engine(make_run_plan(std::make_shared<const Scenario>(load_scenario(settings)), run)).run();
    CryptoRandomBits bits;

    ReleaseOptions sdc;
    sdc.mode = ReleaseMode::sdc;
    const Release a = release_run_tables(results, sdc, bits);
    REQUIRE(a.tables.size() == 1);
    CHECK(a.tables[0].name == "counts");
    CHECK(recoverable_cells(a.tables[0]).empty());
    CHECK(a.manifest_json ==
          "{\"mode\": \"sdc\", \"k\": 10, \"round_base\": 0, "
          "\"suppress_zeros\": false}");
    CHECK(release_csv(a.tables, ReleaseMode::sdc).find("\n# counts: Disclosure control") !=
          std::string::npos);

    ReleaseOptions dp;
    dp.mode = ReleaseMode::dp;
    CHECK_THROWS_AS(release_run_tables(results, dp, bits), InputError);  // no stop cap
    dp.max_stops_per_person = 4;  // not the cap the engine enforced
    CHECK_THROWS_AS(release_run_tables(results, dp, bits), InternalError);
    dp.max_stops_per_person = 5;
    const Release b = release_run_tables(results, dp, bits);
    const auto tables = run_count_tables(results);
    REQUIRE(b.tables.size() == tables.size());
    // ε = 1 shared evenly, in whole millionths; every cell of every table is noised.
    const auto each = 1'000'000 / static_cast<std::int64_t>(tables.size());
    CHECK(b.ledger_json.find("\"epsilon_spent\": " +
                             Epsilon{each * static_cast<std::int64_t>(tables.size())}.text()) !=
          std::string::npos);
    for (const auto& t : b.tables)
        for (const auto& c : t.cells) {
            REQUIRE(c.released);
            CHECK(c.lo95 <= c.noise_lo95);  // Monte Carlo error only widens the interval
        }
    // wrongful_outcomes: Δ = cap 5 × 3 per stop × policies × (1 + dimensions).
    const auto& s = *results.plan.scenario;
    const auto delta = 5 * 3 * static_cast<std::int64_t>(results.policies()) *
                       static_cast<std::int64_t>(1 + s.dimensions.size());
    for (const auto& t : b.tables)
        if (t.name == "wrongful_outcomes")
            CHECK(t.footer.find("L1 sensitivity " + std::to_string(delta) + " ") !=
                  std::string::npos);
    // Over budget: refused before any table is touched.
    dp.epsilon = Epsilon{500'000};
    CHECK_THROWS_AS(release_run_tables(results, dp, bits), InputError);
}

TEST_CASE("stopscan run --release sdc writes release.csv and records it in the manifest",
          "[disclosure]") {
    stopscan::test::TempDir dir;
    const std::string out_dir = (dir.path() / "out").string();
    std::ostringstream out, err;
    REQUIRE(run_cli({"stopscan", "run", "-r", "2", "--set", "stops.total=20000", "--release", "sdc",
                     "--round", "5", "--quiet", "--out", out_dir},
                    out, err) == 0);
    auto read = [](const std::string& path) {
        std::ifstream f(path);
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    };
    const std::string csv = read(out_dir + "/release.csv");
    CHECK(csv.rfind("table,policy,dimension,category,metric,status,value", 0) == 0);
    CHECK(csv.find("multiple of 5") != std::string::npos);
    CHECK(read(out_dir + "/manifest.json")
              .find("\"release\": {\"mode\": \"sdc\", \"k\": 10, \"round_base\": 5") !=
          std::string::npos);

    // Without --release nothing changes; dp is refused before any work.
    err.str("");
    CHECK(run_cli({"stopscan", "run", "--release", "dp", "--out", out_dir}, out, err) == 2);
    CHECK(err.str().rfind("stopscan: error: command line: --release = dp: needs a cap", 0) == 0);
    err.str("");
    CHECK(run_cli({"stopscan", "run", "--epsilon", "1", "--out", out_dir}, out, err) == 2);
    CHECK(err.str() == "stopscan: error: command line: --epsilon: only used with --release dp\n");
}
