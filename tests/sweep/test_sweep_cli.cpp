// `stopscan sweep` and `stopscan merge`, driven in-process with argv arrays: the outputs,
// common random numbers across points, bit-identical results for any thread count and
// either parallel strategy, shards merged byte for byte into the unsharded result, resume
// after a point directory went missing, and every refusal's message and exit code.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "stopscan/cli.hpp"
#include "support/sweep_support.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using stopscan::test::TempDir;
using namespace stopscan::test;

namespace {

// A 2 x 2 grid over the default scenario, small enough to run in a fraction of a second.
const std::string GRID =
    "[sweep]\nreplications = 3\nseed = 7\npolicies = dual-search, ident1-only, firewall\n"
    "metrics = stops, exposure_per_100k, wrongful_outcomes, false_matches.IABS\n"
    "[set]\nstops.total = 4000\n"
    "[axes]\ndatabase.IABS.false_flag = list 0.01, 0.2\n"
    "database.IABS.size = list 1000000, 20000000\n";

// The rows of sweep.csv for one point and policy, without the point_id and axis columns.
std::vector<std::string> rows_of(const std::string& csv, const std::string& point,
                                 const std::string& policy, std::size_t axes) {
    std::vector<std::string> out;
    std::istringstream lines(csv);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.rfind(point + ",", 0) != 0) continue;
        std::size_t at = 0;
        for (std::size_t i = 0; i <= axes; ++i) at = line.find(',', at) + 1;
        const std::string rest = line.substr(at);
        if (rest.rfind(policy + ",", 0) == 0) out.push_back(rest);
    }
    return out;
}

}  // namespace

TEST_CASE("a grid sweep writes its tidy table, effects, manifest, report and heatmaps",
          "[sweep][cli]") {
    TempDir tmp;
    const std::string file = tmp.write("grid.ini", GRID);
    const std::string out = (tmp.path() / "out").string();
    const auto r = cli({"sweep", file, "--out", out, "--quiet"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(r.out.empty());
    for (const char* name :
         {"sweep.csv", "effects.csv", "manifest.json", "report.html", "heatmap-dual-search.png",
          "heatmap-firewall.png", "points/000000/summary.csv", "points/000003/effects.csv"})
        CHECK(fs::exists(fs::path(out) / name));
    const std::string csv = read_file(fs::path(out) / "sweep.csv");
    CHECK(csv.rfind("point_id,database.IABS.false_flag,database.IABS.size,policy,dimension,"
                    "category,metric,estimate,lo95,hi95,replications,mean_lo95,mean_hi95,flag\n",
                    0) == 0);
    CHECK(csv.find("\n3,0.2,20000000,firewall,all,all,exposure_per_100k,") != std::string::npos);
    CHECK(csv.find(",population,") == std::string::npos);  // only the kept metrics
    const std::string manifest = read_file(fs::path(out) / "manifest.json");
    CHECK(manifest.find("\"design\": {\"name\": \"grid\", \"levels\": [2, 2]") !=
          std::string::npos);
    CHECK(manifest.find("\"shard\": null") != std::string::npos);
    CHECK(manifest.find("wall_seconds") == std::string::npos);
    const std::string report = read_file(fs::path(out) / "report.html");
    CHECK(report.find("<svg") != std::string::npos);
    CHECK(report.find("exposure_per_100k, policy firewall") != std::string::npos);
}

TEST_CASE("points differing in one parameter share every draw it does not touch",
          "[sweep][cli][crn]") {
    // Points 0 and 2 differ only in database.IABS.false_flag. firewall never searches IABS,
    // so with common random numbers every one of its rows is identical at the two points,
    // while dual-search, which acts on IABS flags on the street, differs.
    TempDir tmp;
    const std::string out = (tmp.path() / "out").string();
    REQUIRE(cli({"sweep", tmp.write("grid.ini", GRID), "--out", out, "--quiet"}).code == 0);
    const std::string csv = read_file(fs::path(out) / "sweep.csv");
    const auto firewall_0 = rows_of(csv, "0", "firewall", 2);
    REQUIRE(!firewall_0.empty());
    CHECK(firewall_0 == rows_of(csv, "2", "firewall", 2));
    // Stops do not depend on any database parameter: equal under every policy.
    for (const char* policy : {"dual-search", "ident1-only"}) {
        for (const auto& row : rows_of(csv, "0", policy, 2))
            if (row.find(",stops,") != std::string::npos) {
                const auto other = rows_of(csv, "2", policy, 2);
                CHECK(std::find(other.begin(), other.end(), row) != other.end());
            }
    }
    CHECK(rows_of(csv, "0", "dual-search", 2) != rows_of(csv, "2", "dual-search", 2));
}

TEST_CASE("sweep results are bit-identical for any thread count and either strategy",
          "[sweep][cli][determinism]") {
    TempDir tmp;
    const std::string file = tmp.write("grid.ini", GRID);
    const std::string one = (tmp.path() / "one").string();
    const std::string two = (tmp.path() / "two").string();
    const std::string four = (tmp.path() / "four").string();
    const std::string serial = (tmp.path() / "serial").string();
    REQUIRE(cli({"sweep", file, "--out", one, "--threads", "1", "--quiet"}).code == 0);
    REQUIRE(cli({"sweep", file, "--out", two, "--threads", "2", "--quiet"}).code == 0);
    REQUIRE(cli({"sweep", file, "--out", four, "--threads", "4", "--quiet"}).code == 0);
    REQUIRE(cli({"sweep", file, "--out", serial, "--serial-points", "--quiet"}).code == 0);
    const auto reference = tree_of(one);
    CHECK(tree_of(two) == reference);
    CHECK(tree_of(four) == reference);
    CHECK(tree_of(serial) == reference);
}

TEST_CASE("merged shards equal the unsharded sweep byte for byte", "[sweep][cli][shard]") {
    TempDir tmp;
    const std::string file = tmp.write("grid.ini", GRID);
    const std::string whole = (tmp.path() / "whole").string();
    REQUIRE(cli({"sweep", file, "--out", whole, "--quiet"}).code == 0);
    std::vector<std::string> shards;
    for (int i = 1; i <= 3; ++i) {
        shards.push_back((tmp.path() / ("shard" + std::to_string(i))).string());
        const auto r =
            cli({"sweep", file, "--out", shards.back(), "--shard", std::to_string(i) + "/3"});
        INFO(r.err);
        REQUIRE(r.code == 0);
        CHECK(!fs::exists(fs::path(shards.back()) / "sweep.csv"));
    }
    // Shard i holds the points with id mod 3 = i - 1.
    CHECK(fs::exists(fs::path(shards[0]) / "points" / "000003"));
    CHECK(!fs::exists(fs::path(shards[0]) / "points" / "000001"));
    const std::string merged = (tmp.path() / "merged").string();
    const auto r = cli({"merge", shards[2], shards[0], shards[1], "--out", merged});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(tree_of(merged) == tree_of(whole));
}

TEST_CASE("merge refuses shards of other sweeps, missing shards and points, and duplicates",
          "[sweep][cli][shard][bad-input]") {
    TempDir tmp;
    const std::string file = tmp.write("grid.ini", GRID);
    std::string other_text = GRID;
    other_text.replace(other_text.find("seed = 7"), 8, "seed = 8");
    const std::string other = tmp.write("other.ini", other_text);
    const std::string a = (tmp.path() / "a").string();
    const std::string b = (tmp.path() / "b").string();
    const std::string c = (tmp.path() / "c").string();
    REQUIRE(cli({"sweep", file, "--out", a, "--shard", "1/2", "--quiet"}).code == 0);
    REQUIRE(cli({"sweep", file, "--out", b, "--shard", "2/2", "--quiet"}).code == 0);
    REQUIRE(cli({"sweep", other, "--out", c, "--shard", "2/2", "--quiet"}).code == 0);
    const std::string out = (tmp.path() / "merged").string();

    auto refused = [&](std::vector<std::string> args, const std::string& starts) {
        const auto r = cli(args);
        CHECK(r.code == 2);
        INFO(r.err);
        CHECK(r.err.rfind("stopscan: error: " + starts, 0) == 0);
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
        CHECK(!fs::exists(out));
    };
    refused({"merge", a, c, "--out", out}, c + ": a shard of another sweep (sweep_sha256 ");
    refused({"merge", a, "--out", out},
            "command line: shard 2/2 is missing: give all 2 shard directories");
    refused({"merge", a, a, "--out", out}, a + ": shard 1/2 given twice (also " + a + ")");
    fs::remove_all(fs::path(b) / "points" / "000003");
    refused({"merge", a, b, "--out", out},
            b + ": point 3 is missing: shard 2/2 did not finish; run it again with --resume");
    refused({"merge", a, tmp.path().string(), "--out", out},
            tmp.path().string() + ": no manifest.json: not a sweep's output directory");
}

TEST_CASE("resume runs only the missing points and gives the same bytes", "[sweep][cli][resume]") {
    TempDir tmp;
    const std::string file = tmp.write("grid.ini", GRID);
    const std::string whole = (tmp.path() / "whole").string();
    REQUIRE(cli({"sweep", file, "--out", whole, "--quiet"}).code == 0);
    const std::string part = (tmp.path() / "part").string();
    REQUIRE(cli({"sweep", file, "--out", part, "--quiet"}).code == 0);
    // As if killed: two points and the assembled files gone, a half-written point left over.
    fs::remove_all(fs::path(part) / "points" / "000001");
    fs::remove_all(fs::path(part) / "points" / "000002");
    fs::remove(fs::path(part) / "sweep.csv");
    fs::create_directories(fs::path(part) / "points" / ".tmp-000001");
    const auto refused = cli({"sweep", file, "--out", part, "--quiet"});
    CHECK(refused.code == 2);
    CHECK(refused.err ==
          "stopscan: error: command line: --out = " + part +
              ": directory is not empty: add --resume to finish the sweep it holds, --force to "
              "start again, or choose another --out\n");
    const auto r = cli({"sweep", file, "--out", part, "--resume"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(r.out.find("2 run in") != std::string::npos);
    CHECK(r.out.find("2 already done") != std::string::npos);
    CHECK(tree_of(part) == tree_of(whole));
}

TEST_CASE("sweep refuses bad usage before writing anything", "[sweep][cli][bad-input]") {
    TempDir tmp;
    const std::string file = tmp.write("grid.ini", GRID);
    const std::string out = (tmp.path() / "out").string();
    auto refused = [&](std::vector<std::string> args, const std::string& message) {
        const auto r = cli(args);
        CHECK(r.code == 2);
        CHECK(r.out.empty());
        CHECK(r.err == "stopscan: error: " + message + "\n");
        CHECK(!fs::exists(out));
    };
    refused({"sweep", file}, "command line: --out: missing: name the output directory");
    refused({"sweep", "--out", out},
            "command line: give the sweep file: stopscan sweep SWEEP.ini --out DIR");
    refused({"sweep", file, "--out", out, "--shard", "0/4"},
            "command line: --shard = 0/4: give I/N with 1 <= I <= N <= 100000, e.g. 2/4 (shards "
            "are numbered from 1, as Slurm's --array=1-N numbers its tasks)");
    refused({"sweep", file, "--out", out, "--resume", "--force"},
            "command line: --force: give --resume (keep the finished points) or --force (start "
            "again), not both");
    refused({"sweep", (tmp.path() / "nope.ini").string(), "--out", out},
            (tmp.path() / "nope.ini").string() + ": cannot read the sweep file: no such file");
    const std::string bad = tmp.write("bad.ini", "[axes]\nstops.total = list 4000, -1\n");
    refused({"sweep", bad, "--out", out},
            bad +
                ":2: axes.stops.total = -1: point 1: out of range: must be a whole number in "
                "[0, 10000000000]");

    // Resuming a directory of another sweep.
    REQUIRE(cli({"sweep", file, "--out", out, "--quiet"}).code == 0);
    std::string other_text = GRID;
    other_text.replace(other_text.find("seed = 7"), 8, "seed = 9");
    const auto r = cli({"sweep", tmp.write("other.ini", other_text), "--out", out, "--resume"});
    CHECK(r.code == 2);
    CHECK(r.err == "stopscan: error: command line: --out = " + out +
                       ": holds another sweep (its manifest's sweep_sha256 differs): resume with "
                       "the same sweep file, scenario and build, or choose another --out\n");
}
