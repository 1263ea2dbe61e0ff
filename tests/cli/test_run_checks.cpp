// `stopscan run` as a CI check (docs/expectations.md): --expect and the scenario's [expect]
// section, --junit, --check DIR. A failed check exits 3 after writing every output, with one
// stderr line per failure; a bad expectation or path is refused before anything is written.
//
// Runs are small (2,000-5,000 stops, a few replications) so the file takes seconds. The
// outcomes asserted are certain, not statistical: the failing expectations are violated by
// orders of magnitude, the passing ones hold by construction (a policy without IABS access
// has no IABS search), reruns with the same seed are identical, and the changed parameters
// of the --check tests move the rows named by |t| of 24 and 79 against critical values of 7
// and 18 (see the comments there).
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "stopscan/cli.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using stopscan::test::TempDir;

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

std::string read_file(const fs::path& p) {
    std::ifstream file(p, std::ios::binary);
    if (!file) throw std::runtime_error("cannot read " + p.string());
    return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

std::size_t count(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
}

bool contains(const std::string& text, const std::string& needle) {
    return text.find(needle) != std::string::npos;
}

// A small, fast run of the default scenario into `out`, plus `extra` arguments.
std::vector<std::string> small_run(const fs::path& out, std::vector<std::string> extra,
                                   const std::string& replications = "3",
                                   const std::string& stops = "2000") {
    std::vector<std::string> args = {"run",    "-q",        "-r",    replications,
                                     "--seed", "11",        "--set", "stops.total=" + stops,
                                     "--out",  out.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

// Whether `xml` is well-formed for the subset junit_xml writes: one declaration, nested
// elements whose end tags match, attribute values in double quotes, no raw '<' or '&' in
// text or attributes except as a known entity.
bool well_formed_xml(const std::string& xml) {
    const std::string declaration = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    if (xml.rfind(declaration, 0) != 0) return false;
    std::vector<std::string> open;
    bool root_seen = false;
    auto entity_ok = [&](std::size_t at) {
        for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
            if (xml.compare(at, std::char_traits<char>::length(e), e) == 0) return true;
        return false;
    };
    for (std::size_t i = declaration.size(); i < xml.size();) {
        if (xml[i] == '&' && !entity_ok(i)) return false;
        if (xml[i] != '<') {
            if (open.empty() && xml[i] != '\n' && xml[i] != ' ') return false;  // text outside
            ++i;
            continue;
        }
        const bool closing = i + 1 < xml.size() && xml[i + 1] == '/';
        std::size_t j = i + (closing ? 2 : 1);
        const std::size_t name_begin = j;
        while (j < xml.size() &&
               (std::isalnum(static_cast<unsigned char>(xml[j])) || xml[j] == '-'))
            ++j;
        const std::string name = xml.substr(name_begin, j - name_begin);
        if (name.empty()) return false;
        // Attributes: name="value" with no '<' and only known entities in the value.
        bool in_value = false;
        for (; j < xml.size() && (in_value || xml[j] != '>'); ++j) {
            if (xml[j] == '"') in_value = !in_value;
            if (in_value && xml[j] == '<') return false;
            if (in_value && xml[j] == '&' && !entity_ok(j)) return false;
        }
        if (j >= xml.size()) return false;
        const bool self_closing = xml[j - 1] == '/';
        if (closing) {
            if (open.empty() || open.back() != name) return false;
            open.pop_back();
        } else if (!self_closing) {
            if (open.empty() && root_seen) return false;  // a second root element
            root_seen = true;
            open.push_back(name);
        }
        i = j + 1;
    }
    return root_seen && open.empty();
}

const char* const OUTPUTS[] = {"summary.csv", "effects.csv", "results.json", "manifest.json",
                               "report.html"};

}  // namespace

TEST_CASE("a failing expectation exits 3 with one line per failure and writes every output",
          "[cli][checks]") {
    TempDir tmp;
    const fs::path out = tmp.fresh("out");
    const auto r = cli(small_run(
        out, {"--expect", "firewall.stops.all > 0", "--expect", "firewall.stops.all > 1e9",
              "--expect", "dual-search.searches.IABS.all < 0"}));
    CHECK(r.code == stopscan::EXIT_CHECK_FAILED);
    CHECK(r.code == 3);
    CHECK(r.out.empty());  // -q
    const auto lines = lines_of(r.err);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].rfind("firewall.stops.all > 1e9: firewall.stops.all = ", 0) == 0);
    CHECK(contains(lines[0], " is not > 1e9 (95 % confidence intervals)"));
    CHECK(lines[1].rfind("dual-search.searches.IABS.all < 0: dual-search.searches.IABS.all = ",
                         0) == 0);
    for (const char* name : OUTPUTS) {
        INFO(name);
        CHECK(fs::exists(out / name));
    }
    const std::string manifest = read_file(out / "manifest.json");
    CHECK(contains(manifest,
                   "\"checks\": {\"outcome\": \"3 expectations: 1 passed, 2 failed, 0 "
                   "inconclusive\", \"passed\": false,"));
    CHECK(count(manifest, "\"status\": \"fail\"") == 2);
    CHECK(count(manifest, "\"status\": \"pass\"") == 1);
    CHECK(contains(manifest, "\"check\": null}"));
    CHECK(contains(read_file(out / "report.html"),
                   "3 expectations: 1 passed, 2 failed, 0 inconclusive"));
}

TEST_CASE("passing expectations exit 0 and print the outcome", "[cli][checks]") {
    TempDir tmp;
    const fs::path out = tmp.fresh("out");
    auto args = small_run(out, {"--expect", "firewall.searches.IABS.all < 1"});
    args.erase(std::find(args.begin(), args.end(), "-q"));
    const auto r = cli(args);
    CHECK(r.code == 0);
    CHECK(r.err.empty());
    CHECK(contains(r.out, "\nChecks: 1 expectation: 1 passed, 0 failed, 0 inconclusive\n"));
    CHECK(contains(read_file(out / "manifest.json"), "\"passed\": true"));
}

TEST_CASE("junit XML is well-formed with one test case per expectation", "[cli][checks]") {
    TempDir tmp;
    const fs::path out = tmp.fresh("out");
    const fs::path xml_path = tmp.path() / "expectations.xml";
    const auto r = cli(small_run(
        out, {"--expect", "firewall.stops.all > 0", "--expect", "firewall.stops.all > 1e9",
              "--expect", "dual-search.searches.IABS.all < 0", "--junit", xml_path.string()}));
    REQUIRE(r.code == 3);
    const std::string xml = read_file(xml_path);
    CHECK(well_formed_xml(xml));
    CHECK(contains(xml, "<testsuites name=\"stopscan\" tests=\"3\" failures=\"2\" errors=\"0\">"));
    CHECK(count(xml, "<testcase ") == 3);
    CHECK(count(xml, "<failure type=\"fail\"") == 2);
    CHECK(contains(xml, "name=\"firewall.stops.all &gt; 1e9\""));
    CHECK_FALSE(fs::exists(tmp.path() / ".expectations.xml.tmp"));

    // The checker itself refuses what is not well-formed.
    CHECK_FALSE(well_formed_xml(xml.substr(0, xml.size() - 15)));
    CHECK_FALSE(well_formed_xml("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a>x < y</a>\n"));
    CHECK_FALSE(well_formed_xml("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a><b></a></b>\n"));
}

TEST_CASE("an unknown metric in --expect exits 2 and creates no output directory",
          "[cli][checks][bad-input]") {
    TempDir tmp;
    const fs::path out = tmp.fresh("out");
    const fs::path xml_path = tmp.path() / "expectations.xml";
    const auto r =
        cli(small_run(out, {"--expect", "firewall.stops.all > 0", "--expect",
                            "firewall.wrongful_outcome.all < 1", "--junit", xml_path.string()}));
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK(r.err ==
          "stopscan: error: command line: --expect = firewall.wrongful_outcome.all < 1: in "
          "'firewall.wrongful_outcome.all': unknown metric 'wrongful_outcome'; did you mean "
          "'wrongful_outcomes'? (metrics are listed in docs/output.md)\n");
    CHECK_FALSE(fs::exists(out));
    CHECK_FALSE(fs::exists(xml_path));
}

TEST_CASE("bad --junit and --check arguments are refused with one line before any work",
          "[cli][checks][bad-input]") {
    TempDir tmp;
    const fs::path out = tmp.fresh("out");
    auto refused = [&](std::vector<std::string> extra, const std::string& message) {
        const auto r = cli(small_run(out, std::move(extra)));
        CHECK(r.code == 2);
        CHECK(r.err == "stopscan: error: " + message + "\n");
        CHECK_FALSE(fs::exists(out));
    };
    const std::string missing_dir = (tmp.path() / "no-such-dir" / "x.xml").string();
    refused({"--expect", "firewall.stops.all > 0", "--junit", missing_dir},
            "command line: --junit = " + missing_dir +
                ": its directory does not exist: create it, or write the file into --out");
    const std::string existing = tmp.write("existing.xml", "old");
    refused({"--expect", "firewall.stops.all > 0", "--junit", existing},
            "command line: --junit = " + existing +
                ": exists: add --force to overwrite it, or choose another file");
    refused(
        {"--expect", "firewall.stops.all > 0", "--junit", tmp.path().string()},
        "command line: --junit = " + tmp.path().string() + ": is a directory: give a file path");
    const std::string not_summary = tmp.write("not-summary.csv", "a,b\n1,2\n");
    refused({"--check", not_summary},
            "command line: --check = " + not_summary + ": " + not_summary +
                ":1: not a summary.csv header: expected "
                "policy,dimension,category,metric,estimate,lo95,hi95,replications,mean_lo95,"
                "mean_hi95,flag");
    CHECK(read_file(existing) == "old");
}

TEST_CASE("the scenario's expect section is evaluated with the --expect flags", "[cli][checks]") {
    TempDir tmp;
    const std::string base = read_file(fs::path(STOPSCAN_SOURCE_DIR) / "scenarios" / "default.ini");
    const std::string file =
        tmp.write("with-expect.ini", base +
                                         "\n[expect]\n"
                                         "no-iabs-searches = firewall.searches.IABS.all < 1\n"
                                         "impossible = firewall.stops.all > 1e9 @0.99\n");
    const int impossible_line = static_cast<int>(lines_of(base).size()) + 4;
    const fs::path out = tmp.fresh("out");
    const fs::path xml_path = tmp.path() / "expectations.xml";
    auto args = small_run(out, {"--set", "expect.extra=dual-search.stops.all > 0", "--expect",
                                "firewall.stops.all > 0", "--junit", xml_path.string()});
    args.insert(args.begin() + 1, file);
    const auto r = cli(args);
    CHECK(r.code == 3);
    const auto lines = lines_of(r.err);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].rfind("impossible: firewall.stops.all = ", 0) == 0);
    CHECK(contains(lines[0], "(99 % confidence intervals)"));
    const std::string xml = read_file(xml_path);
    CHECK(well_formed_xml(xml));
    CHECK(count(xml, "<testcase ") == 4);
    // The scenario's expectations in the order of their names, then --expect.
    const auto at = [&](const std::string& name) { return xml.find("name=\"" + name + "\""); };
    CHECK(at("extra") < at("impossible"));
    CHECK(at("impossible") < at("no-iabs-searches"));
    CHECK(at("no-iabs-searches") < at("firewall.stops.all &gt; 0"));
    CHECK(contains(xml, "(" + file + ":" + std::to_string(impossible_line) + ")</failure>"));
}

TEST_CASE("a --check against a run with the same seed exits 0", "[cli][checks][compare]") {
    TempDir tmp;
    const fs::path previous = tmp.fresh("previous");
    REQUIRE(cli(small_run(previous, {}, "5")).code == 0);
    const fs::path out = tmp.fresh("out");
    const auto r = cli(small_run(out, {"--check", previous.string()}, "5"));
    CHECK(r.code == 0);
    CHECK(r.err.empty());
    const std::string manifest = read_file(out / "manifest.json");
    CHECK(contains(manifest, "\"outcome\": \"--check " + previous.string() + ": no change ("));
    CHECK(contains(manifest, "\"rows_unchanged\": "));
    CHECK(contains(manifest, "\"failures\": []}"));
    CHECK(contains(manifest, "\"expectations\": []"));
}

TEST_CASE("a --check against a run with a changed parameter exits 3 and names what moved",
          "[cli][checks][compare]") {
    // IABS records wrong about the person, false_flag 0.01 -> 0.3: the dual-search IABS
    // record-error hits go from about 4 to about 70 per replication (seed 11: 3.85 -> 68.6,
    // |t| = 23.9 against the Bonferroni critical value 7.31 for ~2,700 rows at alpha 0.001).
    // The rerun is deterministic (same seed), so this margin is not a matter of luck; it
    // only has to survive model changes that move the counts by a few percent. Firewall
    // never searches IABS, so its IABS rows cannot move.
    TempDir tmp;
    const fs::path previous = tmp.fresh("previous");
    REQUIRE(cli(small_run(previous, {}, "20", "5000")).code == 0);
    const fs::path out = tmp.fresh("out");
    const fs::path xml_path = tmp.path() / "check.xml";
    const auto r = cli(small_run(out,
                                 {"--set", "database.IABS.false_flag=0.3", "--check",
                                  previous.string(), "--junit", xml_path.string()},
                                 "20", "5000"));
    CHECK(r.code == 3);
    CHECK(contains(r.err, "dual-search.record_error_hits.IABS.all moved: "));
    CHECK_FALSE(contains(r.err, "firewall.record_error_hits.IABS"));
    for (const auto& line : lines_of(r.err)) CHECK(contains(line, " moved: "));
    for (const char* name : OUTPUTS) CHECK(fs::exists(out / name));
    const std::string xml = read_file(xml_path);
    CHECK(well_formed_xml(xml));
    CHECK(contains(xml, "<testsuites name=\"stopscan\" tests=\"1\" failures=\"1\" errors=\"0\">"));
    CHECK(contains(xml, "name=\"--check " + previous.string() + "\""));
    CHECK(contains(xml, "dual-search.record_error_hits.IABS.all moved: "));
    CHECK(contains(read_file(out / "manifest.json"), "\"passed\": false"));
}

TEST_CASE("a --check DIR equal to --out compares with the old results under --force",
          "[cli][checks][compare]") {
    TempDir tmp;
    const fs::path dir = tmp.fresh("results");
    REQUIRE(cli(small_run(dir, {}, "5")).code == 0);
    const std::string before = read_file(dir / "summary.csv");
    // The same run again: nothing moved.
    const auto same = cli(small_run(dir, {"--force", "--check", dir.string()}, "5"));
    CHECK(same.code == 0);
    CHECK(same.err.empty());
    CHECK(read_file(dir / "summary.csv") == before);
    // Twice the stops (seed 11: 1988 -> 3997 stops, |t| = 78.6 > 18.3 with 5 replications):
    // the old summary.csv is read before it is overwritten, so the comparison sees the
    // change, and the new results replace the old ones.
    const auto changed = cli(small_run(dir, {"--force", "--check", dir.string()}, "5", "4000"));
    CHECK(changed.code == 3);
    CHECK(contains(changed.err, "dual-search.stops.all moved: "));
    CHECK(read_file(dir / "summary.csv") != before);
    CHECK(contains(read_file(dir / "manifest.json"), "\"previous\": \"" + dir.string() + "\""));
}
