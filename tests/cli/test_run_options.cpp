// Run options of the analytic issue: precision targets, the tolerance band, explain and det.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "stopscan/cli.hpp"

namespace fs = std::filesystem;

namespace {

struct Outcome {
    int code;
    std::string out, err;
};

Outcome cli(std::vector<std::string> args) {
    args.insert(args.begin(), "stopscan");
    std::ostringstream out, err;
    const int code = stopscan::run_cli(args, out, err);
    return {code, out.str(), err.str()};
}

std::string read(const fs::path& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

fs::path fresh_dir() {
    std::string pattern = (fs::temp_directory_path() / "stopscan-run-options-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    return pattern;
}

}  // namespace

TEST_CASE("a precision target that is met stops early and is recorded", "[cli][precision]") {
    const auto dir = fresh_dir();
    const auto r =
        cli({"run", "-q", "--replications", "20", "--set", "stops.total=20000", "--precision",
             "stops_per_1000=0.05", "--max-replications", "400", "--out", (dir / "o").string()});
    REQUIRE(r.code == 0);
    const std::string manifest = read(dir / "o" / "manifest.json");
    CHECK(manifest.find("\"metric\": \"stops_per_1000\"") != std::string::npos);
    CHECK(manifest.find("\"met\": true") != std::string::npos);
    CHECK(manifest.find("\"replications\": 400") == std::string::npos);  // stopped before the limit
    CHECK(manifest.find("\"warnings\": []") != std::string::npos);
    fs::remove_all(dir);
}

TEST_CASE("a precision target that is not met exits 0 with a warning in the manifest",
          "[cli][precision]") {
    const auto dir = fresh_dir();
    const auto r =
        cli({"run", "-q", "--replications", "4", "--set", "stops.total=2000", "--precision",
             "exposure_per_100k=0.001", "--max-replications", "8", "--out", (dir / "o").string()});
    REQUIRE(r.code == 0);
    CHECK(r.err.find("stopscan: warning: precision target exposure_per_100k=0.001 not met after 8 "
                     "replications") == 0);
    const std::string manifest = read(dir / "o" / "manifest.json");
    CHECK(manifest.find("\"met\": false") != std::string::npos);
    CHECK(manifest.find("not met after 8 replications") != std::string::npos);
    fs::remove_all(dir);
}

TEST_CASE("bad precision and band options are refused with one line", "[cli][precision]") {
    const auto dir = fresh_dir();
    const auto out = (dir / "o").string();
    auto refused = [&](std::vector<std::string> args, const std::string& message) {
        args.push_back("--out");
        args.push_back(out);
        const auto r = cli(args);
        CHECK(r.code == 2);
        CHECK(r.err == "stopscan: error: " + message + "\n");
        CHECK_FALSE(fs::exists(out));
    };
    refused({"run", "--precision", "exposure_per_100k"},
            "command line: --precision = exposure_per_100k: give METRIC=TARGET with TARGET in (0, "
            "1), e.g. "
            "exposure_per_100k=0.05");
    refused({"run", "--precision", "exposure_per_100k=2"},
            "command line: --precision = exposure_per_100k=2: give METRIC=TARGET with TARGET in "
            "(0, 1), e.g. "
            "exposure_per_100k=0.05");
    refused({"run", "-r", "2", "--set", "stops.total=100", "--precision", "exposure=0.1"},
            "command line: --precision = exposure: not a metric of summary.csv (see "
            "docs/output.md), e.g. "
            "exposure_per_100k");
    refused(
        {"run", "--max-replications", "10"},
        "command line: --max-replications = 10: only used with --precision: give --precision too");
    refused(
        {"run", "--band", "1.2,0.8"},
        "command line: --band = 1.2,0.8: give LOW,HIGH with 0 <= LOW <= 1 <= HIGH, e.g. 0.8,1.25");
    fs::remove_all(dir);
}

TEST_CASE("ratios outside the tolerance band are flagged, and a wider band clears them",
          "[cli][band]") {
    const auto dir = fresh_dir();
    REQUIRE(cli({"run", "-q", "-r", "20", "--out", (dir / "a").string()}).code == 0);
    REQUIRE(
        cli({"run", "-q", "-r", "20", "--band", "0.01,100", "--out", (dir / "b").string()}).code ==
        0);
    const std::string narrow = read(dir / "a" / "summary.csv");
    const std::string wide = read(dir / "b" / "summary.csv");
    // Black people are stopped 4 times as often as White people (RJN 2022): outside 0.8-1.25.
    CHECK(narrow.find("dual-search,ethnicity,Black,stop_rate_ratio,") != std::string::npos);
    const auto line = [](const std::string& csv, const std::string& key) {
        const auto at = csv.find(key);
        return csv.substr(at, csv.find('\n', at) - at);
    };
    CHECK(line(narrow, "dual-search,ethnicity,Black,stop_rate_ratio,").find("outside_band") !=
          std::string::npos);
    CHECK(line(wide, "dual-search,ethnicity,Black,stop_rate_ratio,").find("outside_band") ==
          std::string::npos);
    // Nobody without valid leave has a status disclosure about lawful leave: zero, with the
    // one-sided 95% Poisson bound -ln(0.05)/R = 0.1498 for R = 20.
    const auto zero = line(narrow, "dual-search,status,no_valid_leave,lawful_status_disclosures,");
    CHECK(zero.find(",zero_events") != std::string::npos);
    CHECK(zero.find("lawful_status_disclosures,0,0,0,20,0,0.14978661367769955,zero_events") !=
          std::string::npos);
    fs::remove_all(dir);
}

TEST_CASE("explain writes explain.csv with summary.csv's keys and refuses to overwrite it",
          "[cli][explain]") {
    const auto dir = fresh_dir();
    const auto r = cli({"explain", "--out", dir.string()});
    REQUIRE(r.code == 0);
    CHECK(r.out.find("Where wrongful outcomes come from under firewall") != std::string::npos);
    const std::string csv = read(dir / "explain.csv");
    CHECK(csv.rfind("policy,dimension,category,metric,estimate\n", 0) == 0);
    CHECK(csv.find("\nfirewall,all,all,wrongful_by_false_match.IABS,0\n") != std::string::npos);
    CHECK(csv.find("\nfirewall,all,all,searches.IABS,0\n") != std::string::npos);
    const auto again = cli({"explain", "--out", dir.string()});
    CHECK(again.code == 2);
    CHECK(again.err == "stopscan: error: command line: --out = " + dir.string() +
                           ": explain.csv exists: add --force to overwrite it\n");
    CHECK(cli({"explain", "--out", dir.string(), "--force", "-q"}).code == 0);
    fs::remove_all(dir);
}

TEST_CASE("det prints per-group error rates across thresholds", "[cli][det]") {
    const auto r = cli({"det", "--db", "IABS", "--points", "3"});
    REQUIRE(r.code == 0);
    CHECK(r.out.find("threshold,dimension,category,fmr,fnmr,fpir,fnir\n") != std::string::npos);
    std::size_t rows = 0;
    for (std::size_t at = r.out.find('\n'); at != std::string::npos; at = r.out.find('\n', at + 1))
        ++rows;
    CHECK(rows == 2 + 3 * 16);  // comment, header, 3 thresholds x (everyone + 15 categories)
    const auto bad = cli({"det", "--db", "NOPE"});
    CHECK(bad.code == 2);
    CHECK(bad.err ==
          "stopscan: error: command line: --db = NOPE: not a database of the scenario: allowed: "
          "IDENT1, IABS\n");
    const auto face = cli({"det", "--db", "IABS", "--modality", "face"});
    CHECK(face.code == 2);
    CHECK(face.err ==
          "stopscan: error: command line: --modality = face: the scenario has no "
          "[matcher.face.IABS] section\n");
}

TEST_CASE(
    "run --matcher template searches explicit galleries and gives the same result for any thread "
    "count",
    "[cli][template]") {
    const auto dir = fresh_dir();
    const std::vector<std::string> base = {"run",        "-q",
                                           "-r",         "1",
                                           "--matcher",  "template",
                                           "--gallery",  "3000",
                                           "--set",      "stops.total=400",
                                           "--policies", "dual-search,firewall"};
    auto with = [&](std::vector<std::string> extra) {
        auto args = base;
        args.insert(args.end(), extra.begin(), extra.end());
        return cli(args);
    };
    REQUIRE(with({"--threads", "1", "--out", (dir / "a").string()}).code == 0);
    REQUIRE(with({"--threads", "2", "--out", (dir / "b").string()}).code == 0);
    CHECK(read(dir / "a" / "summary.csv") == read(dir / "b" / "summary.csv"));
    CHECK(read(dir / "a" / "summary.csv").find("\nfirewall,all,all,searches.IABS,0,") !=
          std::string::npos);
    const auto bad = cli({"run", "--gallery", "1000", "--out", (dir / "c").string()});
    CHECK(bad.code == 2);
    CHECK(bad.err ==
          "stopscan: error: command line: --gallery = 1000: only used with --matcher template\n");
    fs::remove_all(dir);
}

TEST_CASE("stopscan template writes the validation table", "[cli][template]") {
    const auto dir = fresh_dir();
    const auto r = cli({"template", "--db", "IDENT1", "--gallery", "2000", "--probes", "2000",
                        "--dim", "32", "--out", (dir / "t.csv").string()});
    REQUIRE(r.code == 0);
    const std::string csv = read(dir / "t.csv");
    CHECK(csv.rfind("kind,dimension,category,", 0) == 0);
    CHECK(csv.find("\nall,all,all,") != std::string::npos);
    fs::remove_all(dir);
}

TEST_CASE("run --rare-events is records the method and estimates rare wrongful outcomes",
          "[cli][rare]") {
    const auto dir = fresh_dir();
    const std::string scenario = std::string(STOPSCAN_SOURCE_DIR) + "/scenarios/rare-fpir.ini";
    const auto r = cli({"run", scenario, "-q", "--replications", "10", "--set", "stops.total=20000",
                        "--rare-events", "is:1e5", "--out", (dir / "is").string()});
    REQUIRE(r.code == 0);
    CHECK(r.err.empty());
    const std::string manifest = read(dir / "is" / "manifest.json");
    CHECK(manifest.find("\"rare_events\": {\"method\": \"importance\", \"factor\": 1e+05, "
                        "\"max_tilt\": 0.01}") != std::string::npos);
    // About 20 sampled wrongful outcomes per replication, each weighing about 1e-5: an
    // estimate near 2e-4 that plain sampling (one event in ~5,000 replications of 20,000
    // stops) would almost surely show as 0.
    const std::string summary = read(dir / "is" / "summary.csv");
    const auto at = summary.find("dual-search,all,all,wrongful_outcomes,");
    REQUIRE(at != std::string::npos);
    const double estimate = std::stod(summary.substr(at + 38));
    CHECK(estimate > 0);
    CHECK(estimate < 1e-3);
    const auto plain = cli({"run", scenario, "-q", "--replications", "2", "--set",
                            "stops.total=20000", "--out", (dir / "plain").string()});
    REQUIRE(plain.code == 0);
    CHECK(read(dir / "plain" / "manifest.json").find("\"rare_events\": null") != std::string::npos);
    fs::remove_all(dir);
}
