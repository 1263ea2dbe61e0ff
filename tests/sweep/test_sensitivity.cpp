// Sensitivity analysis (include/stopscan/sensitivity.hpp, docs/sensitivity.md): the
// estimators on analytic functions with known answers (no simulation), PRIM on a known box,
// and `stopscan analyze` end to end on tiny sweeps of the default scenario, with its
// refusals' messages and exit codes.

#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "stopscan/error.hpp"
#include "stopscan/normal_tail.hpp"
#include "stopscan/random.hpp"
#include "stopscan/sensitivity.hpp"
#include "stopscan/sweep.hpp"
#include "support/sweep_support.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace stopscan;
using stopscan::test::TempDir;

namespace {

constexpr double PI = 3.14159265358979323846;

// Uniform draws for the tests, keyed like every draw of the project.
struct Draws {
    ReplicationKey key;
    explicit Draws(std::uint64_t seed) : key(seed, 0x7E57) {}
    double u(std::uint64_t entity, std::uint32_t sub, std::uint64_t index) const {
        return key.uniforms(entity, Purpose::Design, sub, index)[0];
    }
};

// Sobol's g-function (Saltelli and Sobol' 1995): prod (|4x - 2| + a_i) / (1 + a_i); the
// smaller a_i, the more important x_i.
double g_function(const std::vector<double>& x, const std::vector<double>& a) {
    double y = 1;
    for (std::size_t i = 0; i < x.size(); ++i) y *= (std::abs(4 * x[i] - 2) + a[i]) / (1 + a[i]);
    return y;
}

// Morris trajectories of `f` on p = 4 levels, as the sweep generates them (random start on
// the grid, every axis moved once by delta = 2/3 in a random order and direction).
template <class F>
std::vector<MorrisStep> morris_steps(F f, std::size_t k, int r, const Draws& d) {
    constexpr int p = 4, step = p / 2;
    const double delta = static_cast<double>(p) / (2.0 * (p - 1));
    std::vector<MorrisStep> steps;
    for (int t = 0; t < r; ++t) {
        std::vector<int> level(k), direction(k);
        std::vector<std::size_t> order(k);
        for (std::size_t a = 0; a < k; ++a) {
            direction[a] = d.u(1, static_cast<std::uint32_t>(t), a) < 0.5 ? 1 : -1;
            const int start =
                static_cast<int>(d.u(2, static_cast<std::uint32_t>(t), a) * (p - step));
            level[a] = direction[a] > 0 ? start : start + step;
            order[a] = a;
        }
        for (std::size_t i = k; i > 1; --i)  // Fisher-Yates
            std::swap(order[i - 1],
                      order[static_cast<std::size_t>(d.u(3, static_cast<std::uint32_t>(t), i) *
                                                     static_cast<double>(i))]);
        auto x = [&] {
            std::vector<double> v(k);
            for (std::size_t a = 0; a < k; ++a) v[a] = level[a] / static_cast<double>(p - 1);
            return v;
        };
        double y = f(x());
        for (const auto a : order) {
            level[a] += direction[a] * step;
            const double next = f(x());
            steps.push_back({a, direction[a] * delta, y, next});
            y = next;
        }
    }
    return steps;
}

// Ishigami and Homma (1990), a = 7, b = 0.1, on [-pi, pi]^3, and its indices in closed form:
// V = a^2/8 + b pi^4/5 + b^2 pi^8/18 + 1/2, V1 = (1 + b pi^4/5)^2 / 2, V2 = a^2/8, V3 = 0,
// V13 = b^2 pi^8 (1/18 - 1/50) (Saltelli et al. 2008, Global Sensitivity Analysis, §4.9).
double ishigami(double x1, double x2, double x3) {
    return std::sin(x1) + 7 * std::sin(x2) * std::sin(x2) + 0.1 * std::pow(x3, 4) * std::sin(x1);
}

}  // namespace

TEST_CASE("Morris indices of a linear function are its coefficients exactly", "[analyze][morris]") {
    // y = sum c_i x_i: every elementary effect of axis i is c_i, so mu = c_i, mu* = |c_i|,
    // sigma = 0 (up to rounding).
    const std::vector<double> c{3, -2, 0.5, 0};
    const auto steps = morris_steps(
        [&](const std::vector<double>& x) {
            double y = 0;
            for (std::size_t i = 0; i < x.size(); ++i) y += c[i] * x[i];
            return y;
        },
        c.size(), 12, Draws(1));
    const auto m = morris_indices(steps, c.size());
    REQUIRE(m.size() == c.size());
    for (std::size_t i = 0; i < c.size(); ++i) {
        CHECK(m[i].effects == 12);
        CHECK(m[i].mu == Approx(c[i]).margin(1e-12));
        CHECK(m[i].mu_star == Approx(std::abs(c[i])).margin(1e-12));
        CHECK(m[i].sigma == Approx(0).margin(1e-12));
    }
}

TEST_CASE("Morris mu* ranks the g-function's inputs by their known importance",
          "[analyze][morris]") {
    // a = (0, 1, 4.5, 9, 99, 99): the factor of x_i spans [a/(1+a), (2+a)/(1+a)], so its
    // elementary effects shrink with a_i; x5 and x6 are nearly inert (Saltelli et al. 2008).
    const std::vector<double> a{0, 1, 4.5, 9, 99, 99};
    const auto steps = morris_steps([&](const std::vector<double>& x) { return g_function(x, a); },
                                    a.size(), 50, Draws(2));
    const auto m = morris_indices(steps, a.size());
    CHECK(m[0].mu_star > m[1].mu_star);
    CHECK(m[1].mu_star > m[2].mu_star);
    CHECK(m[2].mu_star > m[3].mu_star);
    CHECK(m[3].mu_star > m[4].mu_star);
    CHECK(m[3].mu_star > m[5].mu_star);
    // x1 interacts with every other input (a product), so its sigma is not 0.
    CHECK(m[0].sigma > 0);
}

TEST_CASE("Sobol indices of the Ishigami function agree with their closed form",
          "[analyze][sobol]") {
    // Plain Monte Carlo (independent uniforms), so the central limit theorem gives the
    // tolerance: S_i = mean(T_ij) / V with T_ij the per-row terms; its standard error, by the
    // delta method, is sqrt(se(mean T)^2 + (S_i se(V))^2) / V, se(mean T) = sd(T)/sqrt(N),
    // se(V) = sd((y - mean)^2)/sqrt(2N). Six indices, two-sided alpha = 1e-6 with a Bonferroni
    // split: z = Phi^-1(1 - 1e-6/12) ~ 5.4.
    const std::size_t n = 8192;
    const Draws d(3);
    std::vector<double> ya(n), yb(n);
    std::vector<std::vector<double>> yab(3, std::vector<double>(n));
    std::vector<std::array<double, 3>> A(n), B(n);
    for (std::size_t j = 0; j < n; ++j)
        for (std::uint32_t i = 0; i < 3; ++i) {
            A[j][i] = -PI + 2 * PI * d.u(10, i, j);
            B[j][i] = -PI + 2 * PI * d.u(11, i, j);
        }
    for (std::size_t j = 0; j < n; ++j) {
        ya[j] = ishigami(A[j][0], A[j][1], A[j][2]);
        yb[j] = ishigami(B[j][0], B[j][1], B[j][2]);
        for (std::size_t i = 0; i < 3; ++i) {
            auto x = A[j];
            x[i] = B[j][i];
            yab[i][j] = ishigami(x[0], x[1], x[2]);
        }
    }
    const auto s = sobol_indices(ya, yb, yab, 500, 42);
    const double b = 0.1, pi4 = std::pow(PI, 4), pi8 = std::pow(PI, 8);
    const double V = 49.0 / 8 + b * pi4 / 5 + b * b * pi8 / 18 + 0.5;
    const double V1 = 0.5 * (1 + b * pi4 / 5) * (1 + b * pi4 / 5), V2 = 49.0 / 8;
    const double V13 = b * b * pi8 * (1.0 / 18 - 1.0 / 50);
    const double first[3] = {V1 / V, V2 / V, 0};
    const double total[3] = {(V1 + V13) / V, V2 / V, V13 / V};
    CHECK(s.variance == Approx(V).epsilon(0.05));
    const double z = -normal_quantile(1e-6 / 12);
    // se(V) from the sample of A and B.
    double mean = 0, m4 = 0;
    for (std::size_t j = 0; j < n; ++j) mean += (ya[j] + yb[j]) / (2.0 * n);
    for (std::size_t j = 0; j < n; ++j)
        m4 += (std::pow(ya[j] - mean, 4) + std::pow(yb[j] - mean, 4)) / (2.0 * n);
    const double se_v = std::sqrt((m4 - s.variance * s.variance) / (2.0 * n));
    for (std::size_t i = 0; i < 3; ++i) {
        double t1 = 0, t1sq = 0, t2 = 0, t2sq = 0;
        for (std::size_t j = 0; j < n; ++j) {
            const double a1 = yb[j] * (yab[i][j] - ya[j]);
            const double a2 = 0.5 * (ya[j] - yab[i][j]) * (ya[j] - yab[i][j]);
            t1 += a1 / n;
            t1sq += a1 * a1 / n;
            t2 += a2 / n;
            t2sq += a2 * a2 / n;
        }
        const double se1 =
            std::hypot(std::sqrt((t1sq - t1 * t1) / n), first[i] * se_v) / s.variance;
        const double se2 =
            std::hypot(std::sqrt((t2sq - t2 * t2) / n), total[i] * se_v) / s.variance;
        INFO("axis " << i + 1 << ": S1 " << s.indices[i].first << " vs " << first[i] << " +- "
                     << z * se1 << "; ST " << s.indices[i].total << " vs " << total[i] << " +- "
                     << z * se2);
        CHECK(std::abs(s.indices[i].first - first[i]) <= z * se1);
        CHECK(std::abs(s.indices[i].total - total[i]) <= z * se2);
        // The bootstrap percentile interval brackets the estimate, and its width is that of a
        // normal 95 % interval, 2 x 1.96 se, within a factor 2 (the bootstrap's own Monte
        // Carlo error with 500 resamples is a few per cent; a factor 2 flags a wrong
        // resampling unit, e.g. resampling blocks separately).
        CHECK(s.indices[i].first_lo <= s.indices[i].first);
        CHECK(s.indices[i].first <= s.indices[i].first_hi);
        CHECK(s.indices[i].total_lo <= s.indices[i].total);
        CHECK(s.indices[i].total <= s.indices[i].total_hi);
        const double width = s.indices[i].total_hi - s.indices[i].total_lo;
        if (total[i] > 0) {
            CHECK(width >= 0.5 * 2 * 1.96 * std::sqrt((t2sq - t2 * t2) / n) / s.variance);
            CHECK(width <= 2 * 2 * 1.96 * se2);
        }
    }
    // Deterministic: the same seed gives the same intervals, another seed others.
    const auto again = sobol_indices(ya, yb, yab, 500, 42);
    const auto other = sobol_indices(ya, yb, yab, 500, 43);
    CHECK(again.indices[0].first_lo == s.indices[0].first_lo);
    CHECK(other.indices[0].first_lo != s.indices[0].first_lo);
}

TEST_CASE("PRIM recovers a known box from synthetic data", "[analyze][prim]") {
    // 2000 uniform points in [0, 1]^3; the cases are exactly the box x0 in [0.2, 0.6],
    // x1 >= 0.5 (20 % of the points); x2 is irrelevant. Peels remove 5 % of the box, so the
    // bounds land within one peel of the truth: a 5 % peel of the final box (about 400
    // points, 0.4 x 0.5 of the space) moves an edge by about 0.05 x 0.4 = 0.02 on x0 and
    // 0.05 x 0.5 = 0.025 on x1; we allow 0.05.
    const Draws d(4);
    std::vector<std::vector<double>> x;
    std::vector<bool> cases;
    for (std::uint64_t p = 0; p < 2000; ++p) {
        x.push_back({d.u(20, 0, p), d.u(20, 1, p), d.u(20, 2, p)});
        cases.push_back(x.back()[0] >= 0.2 && x.back()[0] <= 0.6 && x.back()[1] >= 0.5);
    }
    PrimOptions options;
    options.min_coverage = 0.8;
    const auto r = prim(x, cases, options);
    INFO("box x0 [" << r.box.lo[0] << ", " << r.box.hi[0] << "], x1 [" << r.box.lo[1] << ", "
                    << r.box.hi[1] << "], x2 [" << r.box.lo[2] << ", " << r.box.hi[2]
                    << "], coverage " << r.box.coverage << ", density " << r.box.density);
    CHECK(r.trajectory.front().points == 2000);
    CHECK(r.box.lo[0] == Approx(0.2).margin(0.05));
    CHECK(r.box.hi[0] == Approx(0.6).margin(0.05));
    CHECK(r.box.lo[1] == Approx(0.5).margin(0.05));
    CHECK(r.box.hi[1] == r.data_hi[1]);  // not restricted above
    // x2 is irrelevant: any restriction on it is pruned (its quasi-p-value is not small).
    CHECK(r.box.lo[2] == r.data_lo[2]);
    CHECK(r.box.hi[2] == r.data_hi[2]);
    CHECK(std::isnan(r.box.qp[2]));
    CHECK(r.box.qp[0] < 0.05);
    CHECK(r.box.coverage >= 0.8);
    CHECK(r.box.density >= 0.9);
    CHECK(r.box.density > r.trajectory.front().density);
}

TEST_CASE("the tornado table sorts axes by swing", "[analyze][tornado]") {
    const auto t = tornado_table({1, 5, 2}, {2, 0, 2});
    REQUIRE(t.size() == 3);
    CHECK(t[0].axis == 1);
    CHECK(t[0].swing == 5);
    CHECK(t[1].axis == 0);
    CHECK(t[2].swing == 0);
}

TEST_CASE("Monte Carlo noise is the mean squared standard error over the variance",
          "[analyze][noise]") {
    const auto n = mc_noise({1, 2, 3}, {0.1, 0.1, 0.1});
    CHECK(n.output_variance == Approx(1));
    CHECK(n.mean_mc_variance == Approx(0.01));
    CHECK(n.ratio == Approx(0.01));
}

TEST_CASE("the oat design moves one axis at a time from the middle of every range",
          "[analyze][sweep][tornado]") {
    const auto spec = parse_sweep(
        "[sweep]\ndesign = oat\n[axes]\ndatabase.IABS.false_flag = linear 0.01 0.03\n"
        "database.IABS.size = log 1000000 100000000 integer\n"
        "stops.target_ratio.ethnicity = list Black:2, Black:4, Black:6\n",
        "oat.ini");
    const auto points = make_sweep_points(spec);
    REQUIRE(points.points.size() == 7);
    CHECK(points.points[0].values == std::vector<std::string>{"0.02", "10000000", "Black:4"});
    CHECK(points.points[1].block == "lo_1");
    CHECK(points.points[1].values == std::vector<std::string>{"0.01", "10000000", "Black:4"});
    CHECK(points.points[2].values == std::vector<std::string>{"0.03", "10000000", "Black:4"});
    CHECK(points.points[5].values == std::vector<std::string>{"0.02", "10000000", "Black:2"});
    CHECK(points.points[6].values == std::vector<std::string>{"0.02", "10000000", "Black:6"});
    CHECK(points.design_json.rfind("{\"name\": \"oat\"", 0) == 0);
    try {
        (void)parse_sweep(
            "[sweep]\ndesign = oat\npoints = 3\n[axes]\nstops.total = linear 1 "
            "2\n",
            "oat.ini");
        FAIL("accepted");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()) ==
              "oat.ini:3: sweep.points = 3: not used by design = oat: it runs 2 x axes + 1 "
              "points");
    }
}

namespace {

const std::string SMALL_SWEEP =
    "replications = 3\nseed = 11\npolicies = dual-search, firewall\n"
    "metrics = wrongful_ho_referrals, exposure_per_100k\n"
    "[set]\nstops.total = 20000\n"
    "[axes]\ndatabase.IABS.false_flag = linear 0.005 0.2\n"
    "database.IABS.ho_referral = linear 0.5 1\n";

}  // namespace

TEST_CASE("stopscan analyze runs Morris and PRIM on a tiny Morris sweep", "[analyze][cli]") {
    TempDir tmp;
    const std::string file =
        tmp.write("morris.ini", "[sweep]\ndesign = morris\ntrajectories = 3\n" + SMALL_SWEEP);
    const std::string dir = (tmp.path() / "sweep").string();
    const auto s = test::cli({"sweep", file, "--out", dir, "--quiet"});
    INFO(s.err);
    REQUIRE(s.code == 0);
    const auto r = test::cli({"analyze", dir, "--prim-threshold", "-1"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK(r.err.find("warning: " + dir + ": r = 3 trajectories") != std::string::npos);
    CHECK(r.out.find("delta:firewall.wrongful_ho_referrals.ethnicity.") != std::string::npos);
    CHECK(r.out.find("ranked by mu*") != std::string::npos);
    CHECK(r.out.find("PRIM") != std::string::npos);
    for (const char* name : {"analysis.csv", "analysis.json", "analysis.html"})
        CHECK(fs::exists(fs::path(dir) / name));
    const std::string html = test::read_file(fs::path(dir) / "analysis.html");
    CHECK(html.find("ranked by mu*") != std::string::npos);
    CHECK(html.find("http") == std::string::npos);  // self-contained
    const std::string csv = test::read_file(fs::path(dir) / "analysis.csv");
    CHECK(csv.rfind("output,analysis,axis,statistic,value,lo95,hi95\n", 0) == 0);
    CHECK(csv.find(",morris,database.IABS.false_flag,mu_star,") != std::string::npos);
    // Deterministic: a second analysis writes the same bytes.
    const std::string out2 = (tmp.path() / "again").string();
    REQUIRE(test::cli({"analyze", dir, "--prim-threshold", "-1", "--out", out2}).code == 0);
    CHECK(test::read_file(fs::path(out2) / "analysis.csv") == csv);
    CHECK(test::read_file(fs::path(out2) / "analysis.json") ==
          test::read_file(fs::path(dir) / "analysis.json"));

    // A named summary row instead of the default.
    const auto named =
        test::cli({"analyze", dir, "--output", "dual-search.exposure_per_100k.all.all", "--out",
                   (tmp.path() / "named").string()});
    INFO(named.err);
    CHECK(named.code == 0);
}

TEST_CASE("stopscan analyze computes Sobol indices and a tornado table on tiny sweeps",
          "[analyze][cli]") {
    TempDir tmp;
    const std::string sobol =
        tmp.write("sobol.ini", "[sweep]\ndesign = sobol\npoints = 8\n" + SMALL_SWEEP);
    const std::string dir = (tmp.path() / "sobol").string();
    REQUIRE(test::cli({"sweep", sobol, "--out", dir, "--quiet"}).code == 0);
    const auto r = test::cli({"analyze", dir, "--bootstrap", "100", "--output",
                              "dual-search.wrongful_ho_referrals.all.all"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK(r.err.find("N = 8 base points") != std::string::npos);
    CHECK(r.out.find("Sobol' indices (N = 8, 100 bootstrap resamples") != std::string::npos);

    const std::string oat = tmp.write("oat.ini", "[sweep]\ndesign = oat\n" + SMALL_SWEEP);
    const std::string oat_dir = (tmp.path() / "oat").string();
    REQUIRE(test::cli({"sweep", oat, "--out", oat_dir, "--quiet"}).code == 0);
    const auto t =
        test::cli({"analyze", oat_dir, "--output", "dual-search.wrongful_ho_referrals.all.all"});
    INFO(t.out << t.err);
    REQUIRE(t.code == 0);
    CHECK(t.out.find("Tornado") != std::string::npos);
    const std::string csv = test::read_file(fs::path(oat_dir) / "analysis.csv");
    CHECK(csv.find(",tornado,database.IABS.false_flag,swing,") != std::string::npos);
}

TEST_CASE("stopscan analyze refuses grids, unfinished sweeps, shards and bad flags",
          "[analyze][cli][bad-input]") {
    TempDir tmp;
    const std::string grid =
        tmp.write("grid.ini",
                  "[sweep]\nreplications = 2\npolicies = dual-search, firewall\n"
                  "metrics = wrongful_ho_referrals, exposure_per_100k\n[set]\nstops.total = "
                  "2000\n[axes]\ndatabase.IABS.false_flag = list 0.01, 0.02\n");
    const std::string dir = (tmp.path() / "grid").string();
    REQUIRE(test::cli({"sweep", grid, "--out", dir, "--quiet"}).code == 0);
    auto r = test::cli({"analyze", dir});
    CHECK(r.code == 2);
    CHECK(r.err == "stopscan: error: " + dir +
                       ": design grid: analyze computes Morris indices (design morris), Sobol' "
                       "indices (sobol), a tornado table (oat), or with --prim-threshold a PRIM "
                       "box (any design); run a sweep with one of these designs\n");

    const std::string morris =
        tmp.write("morris.ini", "[sweep]\ndesign = morris\ntrajectories = 2\n" + SMALL_SWEEP);
    const std::string mdir = (tmp.path() / "morris").string();
    REQUIRE(test::cli({"sweep", morris, "--out", mdir, "--quiet"}).code == 0);
    r = test::cli({"analyze", mdir, "--prim-direction", "sideways", "--prim-threshold", "0"});
    CHECK(r.code == 2);
    CHECK(r.err ==
          "stopscan: error: command line: --prim-direction = sideways: must be below "
          "or above\n");
    r = test::cli({"analyze", mdir, "--output", "firewall.wrongful_ho_referrals"});
    CHECK(r.code == 2);
    CHECK(r.err.find("--output = firewall.wrongful_ho_referrals: malformed") != std::string::npos);
    r = test::cli({"analyze", mdir, "--output", "delta:dual-search.stops.all.all"});
    CHECK(r.code == 2);
    CHECK(r.err.find("'dual-search' is the baseline") != std::string::npos);

    fs::remove_all(fs::path(mdir) / "points" / "000003");
    r = test::cli({"analyze", mdir});
    CHECK(r.code == 2);
    CHECK(r.err.find(": point 3 is missing") != std::string::npos);

    const std::string shard = (tmp.path() / "shard").string();
    REQUIRE(test::cli({"sweep", morris, "--out", shard, "--shard", "1/2", "--quiet"}).code == 0);
    r = test::cli({"analyze", shard});
    CHECK(r.code == 2);
    CHECK(r.err.find("is shard 1/2 of a sweep: merge the shards first") != std::string::npos);
}
