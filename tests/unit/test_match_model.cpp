// The score-level matcher (MODEL.md §5): binormal parameters from the operating point,
// FPIR(N) in closed form, thresholds, lazy = eager in law, rank-1 competition, review.
#include <array>
#include <catch2/catch.hpp>
#include <cmath>

#include "stopscan/match_model.hpp"
#include "stopscan/normal_tail.hpp"

using namespace stopscan;

namespace {

const char* const SMALL = R"(
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
size = 1000000
enrolment = 0.5
[matcher.fingerprint.G]
fmr = 1e-7
fmr.eth = B:4
fnmr = 0.02
fnmr.sex = F:2
same_group_factor.eth = 3
)";

// Cells in mixed-radix order: 0 = (A, M), 1 = (A, F), 2 = (B, M), 3 = (B, F).
struct Fixture {
    Scenario scenario;
    CellTable cells;
    explicit Fixture(const std::vector<std::string>& overrides = {})
        : scenario([&] {
              auto settings = Settings::parse_ini(SMALL, "small.ini");
              for (const auto& o : overrides) settings.apply_override(o);
              return load_scenario(settings);
          }()),
          cells(scenario.dimensions, scenario.population) {}
    MatchModel model(std::optional<double> threshold = std::nullopt) const {
        return MatchModel(scenario, cells, 0, 0, threshold);
    }
};

// Two-sided normal quantile for a Bonferroni share of alpha = 1e-6.
double z_for(int tests) {
    return upper_tail_quantile(1e-6 / (2.0 * tests));
}

}  // namespace

TEST_CASE("the operating point reproduces the scenario's FMR and FNMR", "[match]") {
    const Fixture f;
    const MatchModel m = f.model();
    CHECK(m.threshold() == m.operating_threshold());
    CHECK(m.operating_threshold() == Approx(upper_tail_quantile(1e-7)).epsilon(1e-14));
    // Probe (A, M) against a record of another ethnicity: the reference pair.
    CHECK(m.fmr(0, 2) == Approx(1e-7).epsilon(1e-12));
    CHECK(m.fmr(0, 3) == Approx(1e-7).epsilon(1e-12));
    // Same ethnicity: the same-group factor 3; probe ethnicity B: factor 4.
    CHECK(m.fmr(0, 1) == Approx(3e-7).epsilon(1e-12));
    CHECK(m.fmr(2, 0) == Approx(4e-7).epsilon(1e-12));
    CHECK(m.fmr(2, 3) == Approx(12e-7).epsilon(1e-12));
    CHECK(m.fnmr(0) == Approx(0.02).epsilon(1e-12));
    CHECK(m.fnmr(1) == Approx(0.04).epsilon(1e-12));
}

TEST_CASE("FPIR(N) = 1 − Π_g (1 − FMR_g)^{m_g}", "[match]") {
    const Fixture f;
    const MatchModel m = f.model();
    double total = 0;
    for (const double r : m.records()) total += r;
    CHECK(total == Approx(1e6).margin(2));  // whole records, rounding at most 1/2 per cell
    for (std::size_t c = 0; c < 4; ++c) {
        double log_none = 0;
        for (std::size_t g = 0; g < 4; ++g) log_none += m.records()[g] * std::log1p(-m.fmr(c, g));
        CHECK(m.fpir(c) == Approx(-std::expm1(log_none)).epsilon(1e-12));
    }
    // ≈ N × FMR for small rates (public-figures §5a): 1e6 × ~1.6e-7.
    CHECK(m.fpir(0) > 0.1);
    CHECK(m.fpir(0) < 0.25);
}

TEST_CASE("moving the threshold moves every group along its own curve", "[match][det]") {
    const Fixture f;
    const MatchModel at = f.model();
    const MatchModel strict = f.model(at.operating_threshold() + 1);
    const MatchModel lax = f.model(at.operating_threshold() - 1);
    for (std::size_t c = 0; c < 4; ++c) {
        CHECK(strict.fpir(c) < at.fpir(c));
        CHECK(lax.fpir(c) > at.fpir(c));
        CHECK(strict.fnmr(c) > at.fnmr(c));
        CHECK(lax.fnmr(c) < at.fnmr(c));
    }
    // FMR ratio B:A is 4 at the operating point and grows at a stricter threshold: the
    // impostor means differ, so their tails part.
    CHECK(at.fmr(2, 3) / at.fmr(0, 3) == Approx(4 * 3).epsilon(1e-10));
    CHECK(strict.fmr(2, 0) / strict.fmr(0, 2) > 4.0);
    CHECK(lax.fmr(2, 0) / lax.fmr(0, 2) < 4.0);
}

TEST_CASE("a target FPIR at a reference gallery size sets the threshold", "[match]") {
    const Fixture f({"matcher.fingerprint.G.target_fpir=0.001",
                     "matcher.fingerprint.G.reference_gallery=8700000"});
    const MatchModel m = f.model();
    // The reference pair's FMR at the chosen threshold gives FPIR 0.001 against 8.7M records.
    const double fmr = m.fmr(0, 2);
    CHECK(-std::expm1(8.7e6 * std::log1p(-fmr)) == Approx(0.001).epsilon(1e-9));
    CHECK(m.threshold() > m.operating_threshold());  // 0.001 / 8.7e6 < 1e-7
}

TEST_CASE("lazy and eager searches have the same law", "[match][stat]") {
    // A gallery where impostors pass often (FPIR ≈ 0.6 for probe cell B,F) and overtake the
    // mate often (genuine_sd 3), so every branch of the lazy path is exercised.
    const Fixture f({"matcher.fingerprint.G.fmr=1e-6", "matcher.fingerprint.G.genuine_sd=3",
                     "matcher.fingerprint.G.fnmr=0.3"});
    const MatchModel m = f.model();
    const ReplicationKey key(7, 0);
    constexpr int N = 100000;
    // Outcomes: none, mate, impostor of each of the 4 gallery cells (6 classes), for mated and
    // non-mated probes of cell 3. Two-sample chi-square on 2 × 6 tables, df ≤ 5; critical
    // value for alpha = 1e-6 split over the 2 tables (5e-7 each), df = 5: 38.4 (Wilson–Hilferty
    // approximation of the chi-square quantile, conservative at this df).
    for (const bool mated : {true, false}) {
        std::array<double, 6> lazy{}, eager{};
        for (int i = 0; i < N; ++i) {
            const auto e = static_cast<std::uint64_t>(i);
            const auto u = key.uniforms(e, Purpose::Search, 0, 0);
            UniformStream s1(key, e, Purpose::SearchScores, 0, 0),
                r1(key, e, Purpose::Review, 0, 0);
            const auto a = m.search(3, mated, u[0], u[1], s1, r1);
            UniformStream s2(key, e, Purpose::SearchScores, 1, 0),
                r2(key, e, Purpose::Review, 1, 0);
            const auto b = m.search_eager(3, mated, s2, r2);
            lazy[a.kind == SearchOutcome::impostor ? 2 + a.gallery_cell : std::size_t{a.kind}] += 1;
            eager[b.kind == SearchOutcome::impostor ? 2 + b.gallery_cell : std::size_t{b.kind}] +=
                1;
        }
        double chi2 = 0;
        int df = -1;
        for (std::size_t k = 0; k < 6; ++k) {
            const double total = lazy[k] + eager[k];
            if (total == 0) continue;
            ++df;
            chi2 += (lazy[k] - eager[k]) * (lazy[k] - eager[k]) / total;  // equal sample sizes
        }
        INFO("mated " << mated << ": chi-square " << chi2 << " on " << df << " df");
        CHECK(df >= 3);
        CHECK(chi2 < 38.4);
    }
}

TEST_CASE("rank-1 competition matches the closed form", "[match][stat]") {
    const Fixture f({"matcher.fingerprint.G.fmr=1e-6", "matcher.fingerprint.G.genuine_sd=3",
                     "matcher.fingerprint.G.fnmr=0.3"});
    const MatchModel m = f.model();
    const double p_mate = m.p_mate_returned(3);
    const double p_wrong = m.p_wrong_given_mated(3);
    REQUIRE(p_mate + p_wrong < 1);
    REQUIRE(p_wrong > 0.05);  // overtaking matters here, so the test has power
    const ReplicationKey key(11, 0);
    constexpr int N = 200000;
    int mate = 0, wrong = 0;
    for (int i = 0; i < N; ++i) {
        const auto e = static_cast<std::uint64_t>(i);
        const auto u = key.uniforms(e, Purpose::Search, 0, 0);
        UniformStream s(key, e, Purpose::SearchScores, 0, 0), r(key, e, Purpose::Review, 0, 0);
        const auto o = m.search(3, true, u[0], u[1], s, r);
        mate += o.kind == SearchOutcome::mate;
        wrong += o.kind == SearchOutcome::impostor;
    }
    // Binomial bounds, two counts: |k − Np| ≤ z·sqrt(Np(1 − p)), z for alpha = 1e-6 / 2.
    const double z = z_for(2);
    CHECK(std::abs(mate - N * p_mate) <= z * std::sqrt(N * p_mate * (1 - p_mate)));
    CHECK(std::abs(wrong - N * p_wrong) <= z * std::sqrt(N * p_wrong * (1 - p_wrong)));
}

TEST_CASE("a reviewer who rejects everything returns nothing, one who accepts all returns the best",
          "[match][review]") {
    const Fixture rejecting({"matcher.fingerprint.G.review=human",
                             "matcher.fingerprint.G.candidates=3",
                             "matcher.fingerprint.G.review.false_reject=1"});
    const Fixture accepting({"matcher.fingerprint.G.review=human",
                             "matcher.fingerprint.G.candidates=3",
                             "matcher.fingerprint.G.review.false_accept=1"});
    const MatchModel none = rejecting.model();
    const MatchModel all = accepting.model();
    const ReplicationKey key(3, 0);
    int impostors = 0, mates = 0;
    for (std::uint64_t e = 0; e < 20000; ++e) {
        const auto u = key.uniforms(e, Purpose::Search, 0, 0);
        UniformStream s1(key, e, Purpose::SearchScores, 0, 0), r1(key, e, Purpose::Review, 0, 0);
        CHECK(none.search(0, true, u[0], u[1], s1, r1).kind == SearchOutcome::none);
        UniformStream s2(key, e, Purpose::SearchScores, 0, 0), r2(key, e, Purpose::Review, 0, 0);
        const auto o = all.search(0, false, u[0], u[1], s2, r2);
        // Non-mated probe, reviewer accepts any stranger: a wrong record exactly when an
        // impostor passes the threshold.
        CHECK((o.kind == SearchOutcome::impostor) == (u[1] < all.fpir(0)));
        impostors += o.kind == SearchOutcome::impostor;
        UniformStream s3(key, e, Purpose::SearchScores, 0, 0), r3(key, e, Purpose::Review, 0, 0);
        mates += all.search(0, true, u[0], u[1], s3, r3).kind == SearchOutcome::mate;
    }
    CHECK(impostors > 0);
    CHECK(mates > 0);
}

TEST_CASE("impostor candidate lists are sorted, capped, and above the threshold",
          "[match][review]") {
    const Fixture f({"matcher.fingerprint.G.fmr=1e-5"});  // ~10 impostors above tau per search
    const MatchModel m = f.model();
    const ReplicationKey key(5, 0);
    double total = 0;
    constexpr int N = 4000;
    for (std::uint64_t e = 0; e < N; ++e) {
        UniformStream s(key, e, Purpose::SearchScores, 0, 0);
        const auto list = m.impostors_above_tau(0, 1000, s);
        REQUIRE(!list.empty());
        CHECK(list.size() <= 1000);
        for (std::size_t i = 0; i < list.size(); ++i) {
            CHECK(list[i].score > m.threshold());
            if (i > 0) CHECK(list[i - 1].score >= list[i].score);
        }
        total += static_cast<double>(list.size());
        UniformStream t(key, e, Purpose::SearchScores, 1, 0);
        CHECK(m.impostors_above_tau(0, 2, t).size() <= 2);
    }
    // E[K | K ≥ 1] = Σ_g m_g·FMR_g / FPIR; K is a sum of binomials, Var K ≤ E K, and
    // Var(K | K ≥ 1) ≤ E[K²]/FPIR. Bound on the mean of N lists: z·sqrt(E[K²]/FPIR / N)
    // with E[K²] = Var + mean² ≤ λ + λ², λ = Σ m·FMR; z for alpha = 1e-6.
    double lambda = 0;
    for (std::size_t g = 0; g < 4; ++g) lambda += m.records()[g] * m.fmr(0, g);
    const double expected = lambda / m.fpir(0);
    const double sd = std::sqrt((lambda + lambda * lambda) / m.fpir(0) / N);
    CHECK(std::abs(total / N - expected) <= z_for(1) * sd);
}

TEST_CASE("a threshold given as a score in the scenario is used", "[match]") {
    const Fixture f({"matcher.fingerprint.G.threshold=6"});
    const MatchModel m = f.model();
    CHECK(m.threshold() == 6);
    CHECK(m.operating_threshold() == Approx(upper_tail_quantile(1e-7)).epsilon(1e-14));
    CHECK(m.fmr(0, 2) == Approx(upper_tail(6)).epsilon(1e-12));
    CHECK(f.model(5.5).threshold() == 5.5);  // det's override wins
}
