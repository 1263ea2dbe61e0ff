// `stopscan run` with a stop cap, a dp release and an audit log (docs/disclosure.md,
// docs/audit-log.md): the cap is applied, dp writes noisy tables and its ledger, the log
// verifies against the manifest, reproduces the run's counts and never holds the key.
#include <sys/stat.h>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "stopscan/audit_log.hpp"
#include "stopscan/cli.hpp"
#include "support/temp_dir.hpp"

using namespace stopscan;
namespace fs = std::filesystem;

namespace {

std::string read(const fs::path& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

struct Cli {
    int code;
    std::string out, err;
};

Cli cli(std::vector<std::string> args) {
    args.insert(args.begin(), "stopscan");
    std::ostringstream out, err;
    const int code = run_cli(args, out, err);
    return {code, out.str(), err.str()};
}

// summary.csv's estimate per (policy, dimension, category, metric).
std::map<std::string, std::string> summary_estimates(const fs::path& file) {
    std::map<std::string, std::string> out;
    std::istringstream lines(read(file));
    std::string line;
    std::getline(lines, line);  // header
    while (std::getline(lines, line)) {
        std::vector<std::string> f;
        std::stringstream fields(line);
        std::string x;
        while (std::getline(fields, x, ',')) f.push_back(x);
        if (f.size() < 5) continue;
        out[f[0] + "," + f[1] + "," + f[2] + "," + f[3]] = f[4];
    }
    return out;
}

// A key file of 32 bytes with mode 600; returns its path and bytes.
std::pair<std::string, std::string> make_key(test::TempDir& dir) {
    std::string bytes;
    for (int i = 0; i < 32; ++i) bytes += static_cast<char>('A' + (i * 7) % 26);
    const std::string path = dir.write("audit.key", bytes);
    ::chmod(path.c_str(), 0600);
    return {path, bytes};
}

// A few hundred stops, with record errors and false matches frequent enough that the log has
// wrongful outcomes of both causes in both databases.
// clang-format off
const std::vector<std::string> SMALL = {
    "run", "--set", "stops.total=400", "--set", "database.IABS.false_flag=0.3",
    "--set", "database.IDENT1.false_flag=0.2", "--set", "matcher.fingerprint.IABS.fmr=2e-8",
    "--quiet"};
// clang-format on

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
}

}  // namespace

TEST_CASE("run --max-stops-per-person 1 gives exactly one stop per person stopped",
          "[cli][release]") {
    test::TempDir dir;
    const fs::path out = dir.path() / "out";
    REQUIRE(cli({"run", "-r", "2", "--set", "stops.total=20000", "--max-stops-per-person", "1",
                 "--quiet", "--out", out.string()})
                .code == 0);
    const auto est = summary_estimates(out / "summary.csv");
    std::size_t compared = 0;
    for (const auto& [key, value] : est)
        if (key.size() > 6 && key.substr(key.size() - 6) == ",stops") {
            const std::string persons = key.substr(0, key.size() - 6) + ",persons_stopped";
            REQUIRE(est.count(persons));
            CHECK(value == est.at(persons));
            ++compared;
        }
    CHECK(compared > 10);
    CHECK(read(out / "manifest.json").find("\"max_stops_per_person\": 1,") != std::string::npos);
    // Without a cap the same run has repeat stops.
    const fs::path uncapped = dir.path() / "uncapped";
    REQUIRE(
        cli({"run", "-r", "2", "--set", "stops.total=20000", "--quiet", "--out", uncapped.string()})
            .code == 0);
    const auto free = summary_estimates(uncapped / "summary.csv");
    CHECK(free.at("dual-search,all,all,stops") != free.at("dual-search,all,all,persons_stopped"));
    CHECK(read(uncapped / "manifest.json").find("\"max_stops_per_person\": null,") !=
          std::string::npos);
}

TEST_CASE("run --release dp writes noisy tables and the ledger, and refuses overspending",
          "[cli][release]") {
    test::TempDir dir;
    const fs::path out = dir.path() / "out";
    REQUIRE(cli({"run", "-r", "2", "--set", "stops.total=20000", "--release", "dp",
                 "--max-stops-per-person", "3", "--epsilon", "0.02", "--epsilon-total", "1",
                 "--quiet", "--out", out.string()})
                .code == 0);
    const std::string csv = read(out / "release.csv");
    REQUIRE(csv.rfind("table,policy,dimension,category,metric,status,value", 0) == 0);
    const std::string manifest = read(out / "manifest.json");
    CHECK(manifest.find("\"release\": {\"mode\": \"dp\", \"privacy_unit\": \"person\", "
                        "\"max_stops_per_person\": 3") != std::string::npos);
    CHECK(manifest.find("\"ledger\": {\"epsilon_total\": 1, \"epsilon_spent\": ") !=
          std::string::npos);
    // Noisy: with Δ = 3 × 1 × 4 policies × 5 groups and ε = 0.02 the noise scale of the stops
    // table is 3000, so P(noise = 0) = tanh(1/6000) < 2e-4 per cell; almost every cell differs
    // from the exact value.
    const auto exact = summary_estimates(out / "summary.csv");
    std::istringstream lines(csv);
    std::string line;
    std::size_t cells = 0, differ = 0;
    while (std::getline(lines, line)) {
        if (line.rfind("stops,", 0) != 0) continue;
        std::vector<std::string> f;
        std::stringstream fields(line);
        std::string x;
        while (std::getline(fields, x, ',')) f.push_back(x);
        REQUIRE(f.size() == 12);
        ++cells;
        if (std::stod(f[6]) != std::stod(exact.at(f[1] + "," + f[2] + "," + f[3] + ",stops")))
            ++differ;
    }
    CHECK(cells > 20);
    CHECK(differ + 1 >= cells);

    // 0.5 per table over 28 tables would spend 14 of a budget of 1: refused before the run,
    // with no output directory.
    const fs::path over = dir.path() / "over";
    const Cli refused = cli({"run", "-r", "2", "--release", "dp", "--max-stops-per-person", "3",
                             "--epsilon", "0.5", "--out", over.string()});
    CHECK(refused.code == 2);
    CHECK(refused.err.rfind("stopscan: error: command line: --epsilon-total = 1: releasing table ",
                            0) == 0);
    CHECK(!fs::exists(over));
}

TEST_CASE("run --audit-log writes a log that verifies and reproduces the run's counts",
          "[cli][audit_log]") {
    test::TempDir dir;
    const auto [key_path, key_bytes] = make_key(dir);
    const fs::path out = dir.path() / "out";
    const std::string log = (out / "audit.jsonl").string();
    const Cli run = cli(with(SMALL, {"-r", "1", "--threads", "1", "--audit-log", log,
                                     "--audit-key-file", key_path, "--out", out.string()}));
    INFO(run.err);
    REQUIRE(run.code == 0);
    CHECK(fs::status(log).permissions() ==
          (fs::perms::owner_read | fs::perms::owner_write));  // pseudonyms are personal data

    // The chain is intact and anchored by the manifest.
    const Cli verified =
        cli({"audit", "verify", log, "--manifest", (out / "manifest.json").string()});
    CHECK(verified.code == 0);
    CHECK(verified.out.find("intact") != std::string::npos);
    const std::string manifest = read(out / "manifest.json");
    const AuditVerification v = verify_audit_log(log);
    REQUIRE(v.intact);
    CHECK(manifest.find("\"audit_log\": {\"file\": \"" + log +
                        "\", \"records\": " + std::to_string(v.records) + ", \"final_sha256\": \"" +
                        v.final_hash + "\"}") != std::string::npos);

    // summarize reproduces every count of summary.csv it shares (one replication, so the
    // estimates are the integer counts).
    const AuditSummary s = summarize_audit_log(log, nullptr, 0);
    const auto est = summary_estimates(out / "summary.csv");
    CHECK(s.replications == 1);
    std::size_t compared = 0, nonzero = 0;
    std::map<std::string, std::int64_t> wrongful;
    for (const auto& table : s.tables) {
        if (table.name == "lookups") continue;  // not a metric of summary.csv
        for (const auto& c : table.cells) {
            const std::string key =
                c.policy + "," + c.dimension + "," + c.category + "," + c.metric;
            INFO(key);
            REQUIRE(est.count(key));
            CHECK(std::to_string(c.count) == est.at(key));
            ++compared;
            nonzero += c.count > 0;
            if (c.dimension == "all" && c.metric.rfind("wrongful_by_", 0) == 0)
                wrongful[c.metric] += c.count;
        }
    }
    CHECK(compared > 500);
    CHECK(nonzero > 100);
    // Not vacuous: wrongful outcomes of both causes appear.
    CHECK(wrongful["wrongful_by_record_error.IABS"] > 0);
    CHECK(wrongful["wrongful_by_record_error.IDENT1"] > 0);
    CHECK(wrongful["wrongful_by_false_match.IABS"] > 0);

    // The key is in no output, neither as bytes nor as hex.
    std::string hex;
    for (const unsigned char ch : key_bytes) {
        static const char* digits = "0123456789abcdef";
        hex += digits[ch >> 4];
        hex += digits[ch & 15];
    }
    for (const auto& entry : fs::directory_iterator(out)) {
        INFO(entry.path().string());
        const std::string text = read(entry.path());
        CHECK(text.find(key_bytes) == std::string::npos);
        CHECK(text.find(hex) == std::string::npos);
    }
    CHECK(run.out.find(key_bytes) == std::string::npos);
    CHECK(run.err.find(key_bytes) == std::string::npos);
}

TEST_CASE("the audit log is byte-identical for 1, 2 and 3 threads", "[cli][audit_log]") {
    test::TempDir dir;
    const auto [key_path, key_bytes] = make_key(dir);
    std::string reference;
    for (const char* threads : {"1", "2", "3"}) {
        const fs::path out = dir.fresh("out");
        const std::string log =
            (dir.path() / ("audit-" + std::string(threads) + ".jsonl")).string();
        REQUIRE(cli(with(SMALL, {"-r", "3", "--threads", threads, "--audit-log", log,
                                 "--audit-key-file", key_path, "--out", out.string()}))
                    .code == 0);
        const std::string bytes = read(log);
        REQUIRE(!bytes.empty());
        if (reference.empty())
            reference = bytes;
        else
            CHECK(bytes == reference);
    }
}

TEST_CASE("run refuses a readable key file, a missing key and a log without a key",
          "[cli][audit_log][bad-input]") {
    test::TempDir dir;
    const auto [key_path, key_bytes] = make_key(dir);
    const fs::path out = dir.path() / "out";
    const std::string log = (dir.path() / "audit.jsonl").string();
    ::chmod(key_path.c_str(), 0644);
    const Cli readable =
        cli({"run", "--audit-log", log, "--audit-key-file", key_path, "--out", out.string()});
    CHECK(readable.code == 2);
    CHECK(readable.err == "stopscan: error: command line: --audit-key-file = " + key_path +
                              ": the audit key file has mode 644: it must not be readable or "
                              "writable by group or others (chmod 600)\n");
    CHECK(!fs::exists(out));
    CHECK(!fs::exists(log));
    const Cli no_key = cli({"run", "--audit-log", log, "--out", out.string()});
    CHECK(no_key.code == 2);
    CHECK(no_key.err.rfind("stopscan: error: command line: --audit-key-file: missing", 0) == 0);
    ::chmod(key_path.c_str(), 0600);
    const Cli no_log = cli({"run", "--audit-key-file", key_path, "--out", out.string()});
    CHECK(no_log.code == 2);
    CHECK(no_log.err.rfind("stopscan: error: command line: --audit-log: missing", 0) == 0);
    CHECK(!fs::exists(out));
}
