// Regressions for the findings of the libFuzzer targets in tests/fuzz/ whose inputs are not
// scenario files (those are cases in tests/bad_inputs/). Each test names the target and the
// crasher it keeps.

#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "stopscan/audit_log.hpp"
#include "stopscan/cli.hpp"
#include "stopscan/error.hpp"
#include "stopscan/foi_table.hpp"
#include "stopscan/parameter_distribution.hpp"
#include "stopscan/settings.hpp"
#include "support/temp_dir.hpp"

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

// fuzz_distribution: beta(2.6e45, 50) made Boost's ibeta_inv throw evaluation_error (an
// internal error, exit 1); shapes near 1e20 also loop for seconds. Shapes above 1e6 are refused
// (tests/bad_inputs/098-fuzz-beta-huge-shape). Valid laws threw it too: beta(0.5, 2) at
// p = 1e-12 (a run's draw can reach it) and beta(5, 5) at its median, which every scenario
// using it evaluates (tests/bad_inputs/good/fuzz-symmetric-beta.ini); the CDF is bisected then.
TEST_CASE("beta laws with huge shapes are refused and extreme quantiles do not throw",
          "[fuzz-regression][parameter-distribution]") {
    using stopscan::ParameterDistribution;
    CHECK_THROWS_AS(ParameterDistribution::parse("beta(25999999999999999999999999999999, 50)"),
                    std::invalid_argument);
    CHECK_THROWS_AS(ParameterDistribution::parse("beta(2, 1e20)"), std::invalid_argument);
    // fuzz_distribution: beta(1e-10, 1e-22) gave a NaN quantile (tests/bad_inputs/099-...).
    CHECK_THROWS_AS(ParameterDistribution::parse("beta(1e-10, 1e-22)"), std::invalid_argument);
    CHECK(ParameterDistribution::parse("beta(0.001, 0.001)"));
    CHECK(ParameterDistribution::parse("beta(1e6, 1e6)"));
    CHECK(ParameterDistribution::parse("beta(5, 5)")->median(0.0, 1.0) == Approx(0.5));
    CHECK(ParameterDistribution::parse("beta(0.5, 2)")->quantile(1e-12, 0.0, 1.0) ==
          Approx(4.0 / 9.0 * 1e-24).epsilon(1e-3));
    for (const auto* text :
         {"beta(5, 5)", "beta(0.5, 2)", "beta(2, 0.5)", "beta(1e6, 1)", "beta(1, 1e6)",
          "beta(0.001, 0.001)", "beta(0.001, 1e6)", "beta(1e6, 0.001)"}) {
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

// fuzz_set_override: an unknown key of 20 kB took 54 s (the did-you-mean edit distance against
// every declared key); 1 MB would take hours. Long words get no suggestion.
TEST_CASE("an unknown one-megabyte key is refused at once without a suggestion",
          "[fuzz-regression][settings]") {
    const std::string key(std::size_t{1} << 20, 'a');
    const auto r = cli({"validate", "--set", key + "=1"});
    CHECK(r.code == 2);
    CHECK(r.err.rfind("stopscan: error: --set: ", 0) == 0);
    CHECK(r.err.find("did you mean") == std::string::npos);
    CHECK(stopscan::nearest(key, {"stops.total", "scenario.name"}) == std::nullopt);
    CHECK(stopscan::nearest("stops.totl", {"stops.total", "scenario.name"}) == "stops.total");
    CHECK(stopscan::nearest("s", {"stops.total"}) == std::nullopt);
}

TEST_CASE("a scenario with a symmetric beta law validates", "[fuzz-regression][scenario]") {
    const auto r = cli({"validate", "--set", "database.IDENT1.truth=beta(5, 5)"});
    CHECK(r.code == 0);
    CHECK(r.err.empty());
}

// fuzz_foi_table: parse_count_table accepted any suppression threshold >= 1, so with
// SuppressionOptions{INT64_MAX, 0} two '*' cells of one dimension made check_margins's sum
// overflow (UBSan: signed integer overflow; tests/fuzz/seeds/foi/crash-71b75d2d...). Only the
// library API could reach it (the CLI's --suppressed-below is at most 1,000,000). A threshold
// is now at most a count + 1.
TEST_CASE("a suppression threshold above the largest count is refused", "[fuzz-regression][foi]") {
    const std::string text = "dimension,category,count\ne,a,*\ne,b,*\nsex,m,3\n";
    try {
        (void)stopscan::parse_count_table(text, "c.csv",
                                          {std::numeric_limits<std::int64_t>::max(), 0});
        FAIL("accepted");
    } catch (const stopscan::InputError& e) {
        CHECK(std::string(e.what()) ==
              "c.csv: suppression threshold 9223372036854775807: at most 1,000,000,000,001 (a "
              "suppressed cell hides a count, and a count is at most 1,000,000,000,000)");
    }
    CHECK_THROWS_AS(stopscan::parse_count_table(text, "c.csv", {1'000'000'000'002, 0}),
                    stopscan::InputError);
    const auto table = stopscan::parse_count_table(text, "c.csv", {1'000'000'000'001, 0});
    CHECK(table.rows[0].count.hi == 1'000'000'000'000);
    CHECK_NOTHROW(stopscan::check_margins(table));
}

// fuzz_audit_log: verify reported an empty log as broken at line 0, where lines are 1-based
// and the missing header is line 1 (tests/fuzz/seeds/audit/crash-68893484...); reading the code
// for it, a final hash other than the expected one was reported one line past the end line,
// "(from the manifest)" even when it came from --final.
TEST_CASE("verify names line 1 of an empty log and the end line of an unexpected final hash",
          "[fuzz-regression][audit_log]") {
    std::istringstream empty("");
    const auto v = stopscan::verify_audit_log(empty);
    CHECK_FALSE(v.intact);
    CHECK(v.line == 1);
    CHECK(v.problem == "empty file: no header");

    stopscan::test::TempDir dir;
    const std::string path = (dir.path() / "audit.jsonl").string();
    std::string final_hash;
    {
        stopscan::AuditLogWriter writer(path, stopscan::AuditKey::from_bytes(std::string(32, 'k')),
                                        {{"sex"}, "test"});
        stopscan::AuditRecord r;
        r.person_id = "0:1";
        r.categories = {"Female"};
        r.policy = "dual-search";
        r.database = "IDENT1";
        r.modality = "fingerprint";
        writer.append_batch({r, r});
        final_hash = writer.finish();
    }
    // Line 1 the header, 2 and 3 the records, 4 the end line.
    const auto wrong = stopscan::verify_audit_log(path, std::string(64, '0'));
    CHECK_FALSE(wrong.intact);
    CHECK(wrong.line == 4);
    CHECK(wrong.records == 2);
    CHECK(wrong.problem == "the end line's SHA-256 " + final_hash + " differs from the expected " +
                               std::string(64, '0'));
    CHECK(stopscan::verify_audit_log(path, final_hash).intact);

    // The stream overload reads the same log the same way.
    std::ifstream file(path, std::ios::binary);
    const auto from_stream = stopscan::verify_audit_log(file, final_hash);
    CHECK(from_stream.intact);
    CHECK(from_stream.records == 2);
    CHECK(from_stream.final_hash == final_hash);

    // Without its end line the missing line is line 4.
    std::ifstream whole(path, std::ios::binary);
    std::stringstream text;
    text << whole.rdbuf();
    const std::string log = text.str();
    std::istringstream cut(log.substr(0, log.rfind('\n', log.size() - 2) + 1));
    const auto truncated = stopscan::verify_audit_log(cut);
    CHECK_FALSE(truncated.intact);
    CHECK(truncated.line == 4);
    CHECK(truncated.problem.rfind("no end line", 0) == 0);
}
