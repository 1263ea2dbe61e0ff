// Template mode (MODEL.md §5): the blocked top-k search is exact, the scaled gallery agrees
// with the score-level model when no structure is added, structure makes false matches
// cluster within groups and on a few records (doppelgangers), and nothing depends on the
// thread count.
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "stopscan/error.hpp"
#include "stopscan/normal_tail.hpp"
#include "stopscan/template_matcher.hpp"

using namespace stopscan;

namespace {

// No FMR factors: at w = 0 every template comparison has the same FMR', so the score model's
// prediction is one number for every pair. FMR 1e-5 against M = 2e5 records gives the
// reference probe FPIR = 1 − (1 − 1e-5)^2e5 ≈ 0.865; a gallery of n = 2e4 then has FMR' ≈ 1e-4,
// large enough to count thousands of false matches in a second. FNMR 0.1, women 0.2: the
// capture noise is calibrated per cell.
const char* const SCENARIO = R"(
[scenario]
population = 100000
[dimensions]
names = eth, sex
[dimension.eth]
categories = A, B
shares = 0.7, 0.3
reference = A
[dimension.sex]
categories = M, F
shares = 0.5, 0.5
reference = M
[stops]
total = 1000
[databases]
names = G
[database.G]
role = criminal
size = 200000
enrolment = 0.5
[matcher.fingerprint.G]
fmr = 1e-5
fnmr = 0.1
fnmr.sex = F:2
)";

struct Fixture {
    Scenario scenario;
    CellTable cells;
    Fixture()
        : scenario(load_scenario(Settings::parse_ini(SCENARIO, "template.ini"))),
          cells(scenario.dimensions, scenario.population) {}
};

TemplateOptions small_options(std::int64_t n, int dim, double w, bool int8 = false) {
    TemplateOptions o;
    o.gallery_size = n;
    o.dim = dim;
    o.group_weight = w;
    o.seed = 42;
    o.int8 = int8;
    return o;
}

// Probes of every kind: mated and non-mated of every cell.
std::vector<ProbeSpec> mixed_probes(const TemplateGallery& g, std::size_t per_cell) {
    std::vector<ProbeSpec> specs;
    std::uint64_t id = 1000;
    for (std::size_t c = 0; c < 4; ++c) {
        const std::size_t n_c = g.cell_offset(c + 1) - g.cell_offset(c);
        for (std::size_t i = 0; i < per_cell; ++i) {
            specs.push_back({id++, c, static_cast<std::int64_t>(g.cell_offset(c) + (7 * i) % n_c)});
            specs.push_back({id++, c, -1});
        }
    }
    return specs;
}

// The brute-force search: every score by the scalar reference, a full sort by (score
// descending, index ascending), and every record at or above `hit_at`.
TemplateSearchResult brute_force(const TemplateGallery& g, const cv::Mat& probes, std::size_t k,
                                 float hit_at) {
    TemplateSearchResult r;
    r.probes = static_cast<std::size_t>(probes.rows);
    r.k = k;
    r.hit_offsets.push_back(0);
    std::vector<std::pair<float, std::int64_t>> all(g.size());
    for (int p = 0; p < probes.rows; ++p) {
        for (std::size_t j = 0; j < g.size(); ++j) {
            all[j] = {g.score(probes, p, j), static_cast<std::int64_t>(j)};
            if (all[j].first >= hit_at) r.hits.push_back(static_cast<std::uint32_t>(j));
        }
        r.hit_offsets.push_back(r.hits.size());
        std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
            return a.first != b.first ? a.first > b.first : a.second < b.second;
        });
        for (std::size_t i = 0; i < k; ++i) {
            r.index.push_back(i < all.size() ? all[i].second : -1);
            r.score.push_back(i < all.size() ? all[i].first : -HUGE_VALF);
        }
    }
    return r;
}

void require_same(const TemplateSearchResult& a, const TemplateSearchResult& b) {
    REQUIRE(a.probes == b.probes);
    REQUIRE(a.k == b.k);
    CHECK(a.index == b.index);
    // Scores compared as bits (equal floats; -inf pads compare equal too).
    CHECK(a.score == b.score);
    CHECK(a.hit_offsets == b.hit_offsets);
    CHECK(a.hits == b.hits);
}

// Two-sided normal quantile for a Bonferroni share of alpha = 1e-6 over `tests` checks.
double z_for(int tests) {
    return upper_tail_quantile(1e-6 / (2.0 * tests));
}

}  // namespace

TEST_CASE("blocked top-k search equals a brute-force search", "[template]") {
    const Fixture f;
    for (const bool int8 : {false, true}) {
        INFO("int8 " << int8);
        const TemplateGallery g(f.scenario, f.cells, 0, 0, small_options(1990, 64, 0.05, int8));
        REQUIRE(g.size() == 1990);  // not a multiple of the 16-record panels: padding lanes
        cv::Mat probes = g.make_probes(mixed_probes(g, 10));
        // Ties: a zero probe scores 0 against every record (all tie: records 0, 1, ... must
        // come back, across block boundaries); two identical probes must get identical lists.
        cv::Mat zero = cv::Mat::zeros(1, 64, CV_32F);
        cv::Mat twin;
        g.templates().row(3).copyTo(twin);
        cv::vconcat(std::vector<cv::Mat>{probes, zero, twin, twin}, probes);
        const float hit_at = 0.3f;
        for (const std::size_t k : {std::size_t{1}, std::size_t{5}, std::size_t{40}}) {
            const TemplateSearchResult expected = brute_force(g, probes, k, hit_at);
            for (const std::size_t probe_block : {std::size_t{1}, std::size_t{7}, std::size_t{64}})
                for (const std::size_t gallery_block :
                     {std::size_t{16}, std::size_t{48}, std::size_t{100}, std::size_t{4096}})
                    for (const auto kernel :
                         {SearchKernel::automatic, SearchKernel::avx2, SearchKernel::scalar}) {
                        if (kernel == SearchKernel::scalar && gallery_block != 48) continue;
                        INFO("k " << k << ", probe block " << probe_block << ", gallery block "
                                  << gallery_block << ", kernel "
                                  << template_search_kernel(int8, kernel));
                        SearchOptions o;
                        o.top_k = k;
                        o.hits_at = hit_at;
                        o.probe_block = probe_block;
                        o.gallery_block = gallery_block;
                        o.kernel = kernel;
                        o.parallel = probe_block != 7;
                        require_same(g.search(probes, o), expected);
                    }
        }
        // The zero probe: every score is 0, so the top 40 are records 0..39.
        SearchOptions o;
        o.top_k = 40;
        const TemplateSearchResult r = g.search(probes, o);
        const std::size_t z = static_cast<std::size_t>(probes.rows) - 3;
        for (std::size_t i = 0; i < 40; ++i) {
            CHECK(r.candidate(z, i) == static_cast<std::int64_t>(i));
            CHECK(r.candidate_score(z, i) == 0.0f);
            CHECK(r.candidate(z + 1, i) == r.candidate(z + 2, i));
        }
        CHECK(r.candidate(z + 1, 0) == 3);  // a copy of record 3 finds record 3 first
        // More candidates asked than records: the tail is empty (-1).
        o.top_k = 2003;
        const TemplateSearchResult all = g.search(probes.rowRange(0, 2), o);
        CHECK(all.candidate(0, 1989) >= 0);
        CHECK(all.candidate(0, 1990) == -1);
        CHECK(all.candidate(1, 2002) == -1);
    }
}

TEST_CASE("kernel scores are cosines to float accuracy", "[template]") {
    const Fixture f;
    for (const bool int8 : {false, true}) {
        const TemplateGallery g(f.scenario, f.cells, 0, 0, small_options(500, 128, 0, int8));
        const cv::Mat probes = g.make_probes(mixed_probes(g, 2));
        double worst = 0;
        for (int p = 0; p < probes.rows; ++p)
            for (std::size_t j = 0; j < g.size(); ++j) {
                double exact = 0;
                for (int d = 0; d < 128; ++d)
                    exact += static_cast<double>(probes.at<float>(p, d)) *
                             static_cast<double>(g.templates().at<float>(static_cast<int>(j), d));
                worst = std::max(worst, std::abs(g.score(probes, p, j) - exact));
            }
        // Float: 128 fused steps, each within half an ulp of a partial sum below 1: < 1e-5.
        // Int8: per-coordinate rounding error ≤ max|x|/254 ~ 1.5e-3, summed with random signs
        // over 128 coordinates of size ~0.09: ~2e-3 typical; 0.02 is far in the tail.
        CHECK(worst < (int8 ? 0.02 : 1e-5));
    }
}

TEST_CASE("without structure, template rates agree with the score-level model",
          "[template][stat]") {
    const Fixture f;
    TemplateOptions options = small_options(20000, 64, 0);
    ProbePlan plan;
    plan.per_cell = 2000;
    const TemplateExperiment ex = run_template_experiment(f.scenario, 0, 0, options, plan);
    const TemplateGroupResult& all = ex.groups.front();
    REQUIRE(all.kind == "all");
    REQUIRE(ex.gallery_size == 20000);
    // The scaling: FMR' = −expm1(log1p(−FPIR)/n) with FPIR the reference probe's at M.
    CHECK(ex.per_record_fmr ==
          Approx(-std::expm1(std::log1p(-ex.real_fpir) / 20000.0)).epsilon(1e-5));
    CHECK(ex.per_record_fmr > 5e-5);
    CHECK(ex.per_record_fmr < 2e-4);

    // Nine checks: FMR of all comparisons, FNMR and FPIR of each of the four cells.
    // z for alpha = 1e-6 split two-sided over 9 checks (Bonferroni): ≈ 5.6.
    const double z = z_for(9);

    // FMR. With w = 0 every template is uniform on the sphere, so every impostor comparison
    // is Bernoulli(FMR') and two comparisons sharing a probe or a record are independent
    // (given the shared vector, the other is uniform). The only dependent pairs are
    // (probe of mate a, record b) and (probe of mate b, record a) for two mated probes: both
    // depend on the angle between a and b, covariance ≤ FMR'. Hence
    //   Var(false matches) ≤ N·p(1 − p) + P_m(P_m − 1)·p,
    // P_m mated probes (mates distinct: 2000 per cell < records per cell).
    {
        const double N = static_cast<double>(all.impostor_comparisons);
        const double p = all.fmr_model;
        const double pm = static_cast<double>(all.mated_probes);
        const double sd = std::sqrt(N * p * (1 - p) + pm * (pm - 1) * p);
        INFO("false matches " << all.false_matches << ", expected " << N * p << " ± " << sd);
        CHECK(std::abs(static_cast<double>(all.false_matches) - N * p) <= z * sd);
        CHECK(p == Approx(ex.per_record_fmr).epsilon(1e-4));
    }
    for (std::size_t row = 0; row < ex.groups.size(); ++row) {
        const TemplateGroupResult& r = ex.groups[row];
        if (r.kind != "cell") continue;
        // FNMR: mated probes of distinct mates with independent noise: exactly binomial,
        // with p = the score model's FNMR that the noise was calibrated to.
        {
            const double n = static_cast<double>(r.mated_probes);
            const double p = r.fnmr_model;
            INFO(r.category << ": genuine non-matches " << r.genuine_non_matches << " of " << n
                            << ", model " << p);
            CHECK(std::abs(static_cast<double>(r.genuine_non_matches) - n * p) <=
                  z * std::sqrt(n * p * (1 - p)));
        }
        // FPIR: given the gallery, non-mated searches are independent Bernoulli(π) with
        // E π = 1 − (1 − FMR')^n exactly (records independent of the probe); π's spread
        // across galleries is second order (pairs of threshold caps, Var π ≲ n²·FMR'^4 ~
        // 1e-8) and is neglected against the binomial variance (~1e-4 per search).
        {
            const double n = static_cast<double>(r.nonmated_probes);
            const double p = r.fpir_model;
            INFO(r.category << ": false positive searches " << r.false_positive_searches << " of "
                            << n << ", model " << p);
            CHECK(std::abs(static_cast<double>(r.false_positive_searches) - n * p) <=
                  z * std::sqrt(n * p * (1 - p)));
            // Scaling preserves FPIR: the model's FPIR at the scaled size is its FPIR at M.
            CHECK(r.fpir_model == Approx(r.fpir_model_real).epsilon(1e-3));
        }
    }
}

TEST_CASE("group structure concentrates false matches in groups and on doppelgangers",
          "[template][stat]") {
    const Fixture f;
    const double w = 0.2;
    // Three checks, Bonferroni: z for alpha = 1e-6 / 3, two-sided (≈ 5.3).
    const double z = z_for(3);
    SECTION("false matches concentrate within the probe's cell") {
        // 1000 mated (distinct mates) and 1000 non-mated probes per cell, n = 2e4.
        ProbePlan plan;
        plan.per_cell = 1000;
        const TemplateExperiment flat =
            run_template_experiment(f.scenario, 0, 0, small_options(20000, 64, 0), plan);
        const TemplateExperiment grouped =
            run_template_experiment(f.scenario, 0, 0, small_options(20000, 64, w), plan);
        const TemplateGroupResult& a0 = flat.groups.front();
        const TemplateGroupResult& a1 = grouped.groups.front();
        REQUIRE(a0.false_matches > 1000);
        const double s0 = *a0.same_group_share();
        const double s1 = *a1.same_group_share();
        INFO("same-cell share of false matches: w = 0 "
             << s0 << " (model " << a0.same_group_share_model << "), w = " << w << " " << s1);
        // w = 0: a false match is same-cell with the share of same-cell comparisons (every
        // comparison has the same FMR'); the false matches are near-independent (see the
        // FMR test), so the share is within a binomial bound of the model's. Structure must
        // raise it far beyond that bound: by the bound plus an absolute 0.1 (under structure
        // false matches are positively correlated, so its own binomial error is optimistic).
        const double p0 = a0.same_group_share_model;
        const double sd0 = std::sqrt(p0 * (1 - p0) / static_cast<double>(a0.false_matches));
        CHECK(std::abs(s0 - p0) <= z * sd0);
        CHECK(s1 > s0 + z * sd0 + 0.1);
        // Every dimension row shows the excess within its own category.
        for (const auto& r : grouped.groups)
            if (r.kind == "dimension")
                CHECK(*r.same_group_share() > r.same_group_share_model + 0.05);
    }
    SECTION("a few records take a growing share of false matches") {
        // Non-mated probes only (independent fresh persons), 5000 per cell against n = 2000:
        // ~2 false matches per search at w = 0, λ ≈ 20 per record, so the top 1% (20 records)
        // share is measured well above its Poisson noise.
        ProbePlan plan;
        plan.per_cell = 5000;
        plan.mated = false;
        const TemplateExperiment flat =
            run_template_experiment(f.scenario, 0, 0, small_options(2000, 64, 0), plan);
        const TemplateExperiment grouped =
            run_template_experiment(f.scenario, 0, 0, small_options(2000, 64, w), plan);
        const TemplateGroupResult& a0 = flat.groups.front();
        const TemplateGroupResult& a1 = grouped.groups.front();
        REQUIRE(a0.false_matches > 20000);
        const double r0 =
            *a0.doppelganger_share_within_cells / *a0.doppelganger_share_within_cells_null;
        const double r1 =
            *a1.doppelganger_share_within_cells / *a1.doppelganger_share_within_cells_null;
        INFO("top 1% share: w = 0 "
             << *a0.doppelganger_share << " (Poisson " << *a0.doppelganger_share_null
             << "), w = " << w << " " << *a1.doppelganger_share << " (Poisson "
             << *a1.doppelganger_share_null << "); within cells / Poisson: " << r0 << ", " << r1);
        // Tolerance of the top-m sum S (m = 1% of records): by the Efron–Stein inequality
        // over the independent probes and records, replacing one changes S by about the gap
        // between neighbouring top order statistics, giving Var S ≲ 2·E S; here E S ≈ 20 ×
        // 30 = 600, a relative sd ≲ 6%, so z·sd ≈ 0.3 on the ratio to the Poisson share.
        // Without structure the top 1% hold their Poisson share; with it, clearly more
        // (beyond that tolerance by a further 0.1; observed ≈ 1.6), within cells (individual
        // doppelgangers, not just busier cells), and overall (observed ≈ 1.5× the w = 0 share).
        CHECK(std::abs(r0 - 1) <= 0.3);
        CHECK(r1 > 1 + 0.3 + 0.1);
        CHECK(*a1.doppelganger_share > 1.25 * *a0.doppelganger_share);
    }
}

TEST_CASE("template searches and experiments are identical for 1, 2 and 4 threads",
          "[template][determinism]") {
    const Fixture f;
    // Allow more threads than cores, so that the 4-thread arena really gets 4.
    const tbb::global_control allow(tbb::global_control::max_allowed_parallelism, 4);
    for (const bool int8 : {false, true}) {
        INFO("int8 " << int8);
        const TemplateOptions options = small_options(6000, 64, 0.1, int8);
        ProbePlan plan;
        plan.per_cell = 150;
        std::vector<std::string> csv;
        std::vector<TemplateSearchResult> results;
        for (const int threads : {1, 2, 4}) {
            tbb::task_arena arena(threads);
            arena.execute([&] {
                REQUIRE(tbb::this_task_arena::max_concurrency() == threads);
                csv.push_back(template_experiment_csv(
                    run_template_experiment(f.scenario, 0, 0, options, plan)));
                const TemplateGallery g(f.scenario, f.cells, 0, 0, options);
                SearchOptions o;
                o.top_k = 10;
                o.hits_at = g.threshold();
                o.probe_block = threads == 4 ? 5 : 64;  // and another split
                results.push_back(g.search(g.make_probes(mixed_probes(g, 40)), o));
            });
        }
        CHECK(csv[0] == csv[1]);
        CHECK(csv[0] == csv[2]);
        require_same(results[0], results[1]);
        require_same(results[0], results[2]);
    }
}

TEST_CASE("template options out of range are input errors", "[template]") {
    const Fixture f;
    CHECK_THROWS_AS(TemplateGallery(f.scenario, f.cells, 0, 0, small_options(0, 64, 0)),
                    InputError);
    CHECK_THROWS_AS(TemplateGallery(f.scenario, f.cells, 0, 0, small_options(100, 1, 0)),
                    InputError);
    CHECK_THROWS_AS(TemplateGallery(f.scenario, f.cells, 0, 0, small_options(100, 64, 1.0)),
                    InputError);
    // No face matcher for database G.
    CHECK_THROWS_AS(TemplateGallery(f.scenario, f.cells, 1, 0, small_options(100, 64, 0)),
                    InputError);
    ProbePlan none;
    CHECK_THROWS_AS(run_template_experiment(f.scenario, 0, 0, small_options(100, 64, 0), none),
                    InputError);
}

TEST_CASE("the experiment CSV has one row per group and the run's provenance", "[template]") {
    const Fixture f;
    ProbePlan plan;
    plan.total = 40;
    const TemplateExperiment ex =
        run_template_experiment(f.scenario, 0, 0, small_options(1000, 32, 0), plan);
    const std::string csv = template_experiment_csv(ex);
    // all + 2 + 2 categories + 4 cells = 9 rows, plus the header.
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 10);
    CHECK(csv.rfind("kind,dimension,category,", 0) == 0);
    CHECK(csv.find("\ncell,cell,\"eth=B, sex=F\",") != std::string::npos);
    CHECK(csv.find(",fingerprint,G,1000,") != std::string::npos);
    CHECK(ex.groups.front().mated_probes == 40);
    CHECK(ex.groups.front().nonmated_probes == 40);
}
