// Crash-safe outputs: SIGINT and SIGTERM stop a run cleanly (exit 130 and 143, no output and
// no temporary file left), and a run killed with SIGKILL at any moment leaves its output
// directory holding nothing or only complete files, after which a rerun succeeds.
//
// The tests drive the real binary as a child process. They wait for its handlers through
// /proc, never for a fixed time, so the outcome they assert holds whenever the signal lands.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using stopscan::test::ChildProcess;
using stopscan::test::slurp;
using stopscan::test::TempDir;

namespace {

const std::string BINARY = STOPSCAN_BINARY;

// Long enough that the signal always lands during the simulation (minutes uninterrupted),
// with little memory: few replications of many stops.
const std::vector<std::string> LONG_RUN = {"run",
                                           "--replications",
                                           "64",
                                           "--set",
                                           "stops.total=20000000",
                                           "--set",
                                           "stops.target_stops_per_person=3",
                                           "--quiet"};

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
}

std::vector<std::string> entries(const fs::path& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    if (!fs::exists(dir, ec)) return names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
}

bool is_temporary(const std::string& name) {
    return name.size() > 5 && name.front() == '.' && name.substr(name.size() - 4) == ".tmp";
}

void check_clean_stop(int signal, int expected_exit, const std::vector<std::string>& extra,
                      TempDir& dir) {
    const fs::path out = dir.fresh("out");
    const std::string log = (dir.path() / "stderr.txt").string();
    ChildProcess child(BINARY, with(with(LONG_RUN, extra), {"--out", out.string()}), log);
    REQUIRE(child.wait_for_signal_handlers());
    // Into the simulation proper: the scenario is loaded and replications are running.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    child.send(signal);
    CHECK(child.wait() == expected_exit);
    const std::string message = slurp(log);
    INFO(message);
    CHECK(std::count(message.begin(), message.end(), '\n') == 1);
    CHECK(message.find(signal == SIGINT ? "stopped by SIGINT" : "stopped by SIGTERM") !=
          std::string::npos);
    // No output and no temporary: the directory was never created, or is empty.
    CHECK(entries(out).empty());
    for (const auto& name : entries(dir.path())) CHECK_FALSE(is_temporary(name));
}

}  // namespace

TEST_CASE("SIGINT stops a run with exit 130 and writes nothing", "[signals]") {
    TempDir dir;
    check_clean_stop(SIGINT, 130, {}, dir);
}

TEST_CASE("SIGTERM stops a run with exit 143 and removes the unfinished audit log", "[signals]") {
    TempDir dir;
    std::string key;
    for (int i = 0; i < 32; ++i) key += static_cast<char>('a' + (i * 5) % 26);
    const std::string key_path = dir.write("audit.key", key);
    ::chmod(key_path.c_str(), 0600);
    const std::string audit = (dir.path() / "audit.jsonl").string();
    check_clean_stop(SIGTERM, 143, {"--audit-log", audit, "--audit-key-file", key_path}, dir);
    CHECK_FALSE(fs::exists(audit));
}

TEST_CASE("a run killed with SIGKILL leaves only complete files and a rerun succeeds",
          "[signals]") {
    TempDir dir;
    const std::vector<std::string> run = {"run", "--replications", "40",     "--seed",
                                          "7",   "--quiet",        "--force"};
    // The reference: the same run, uninterrupted. summary.csv, effects.csv and results.json
    // are deterministic; manifest.json and report.html hold timings, so they are checked for
    // completeness by their last bytes.
    const fs::path reference = dir.fresh("reference");
    {
        ChildProcess child(BINARY, with(run, {"--out", reference.string()}),
                           (dir.path() / "reference.txt").string());
        REQUIRE(child.wait() == 0);
    }
    const std::set<std::string> outputs = {"effects.csv", "manifest.json", "report.html",
                                           "results.json", "summary.csv"};
    const auto written = entries(reference);
    REQUIRE(std::set<std::string>(written.begin(), written.end()) == outputs);

    // Kill points spread over start-up, simulation and output writing; the last kills as soon
    // as the first output file appears, in the middle of writing the set.
    const std::vector<int> delays_ms = {0, 5, 20, 60, 150, 300, -1};
    int killed_mid_run = 0;
    for (const int delay : delays_ms) {
        const fs::path out = dir.fresh("killed");
        INFO("kill after " << delay << " ms (-1: when the first output appears)");
        {
            ChildProcess child(BINARY, with(run, {"--out", out.string()}),
                               (dir.path() / "killed.txt").string());
            if (delay >= 0) {
                std::this_thread::sleep_for(std::chrono::milliseconds(delay));
            } else {
                while (!child.exited() && entries(out).empty())
                    std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
            child.send(SIGKILL);
            if (child.wait() == 128 + SIGKILL) ++killed_mid_run;
        }
        for (const auto& name : entries(out)) {
            INFO(name);
            if (is_temporary(name)) continue;
            REQUIRE(outputs.count(name) == 1);
            const std::string text = slurp((out / name).string());
            if (name == "manifest.json")
                CHECK(text.substr(text.size() - 2) == "}\n");
            else if (name == "report.html")
                CHECK(text.substr(text.size() - 8) == "</html>\n");
            else
                CHECK(text == slurp((reference / name).string()));
        }
        // The rerun into the same directory succeeds, matches the reference and leaves no
        // temporary behind.
        ChildProcess rerun(BINARY, with(run, {"--out", out.string()}),
                           (dir.path() / "rerun.txt").string());
        REQUIRE(rerun.wait() == 0);
        for (const auto& name : entries(out)) CHECK_FALSE(is_temporary(name));
        CHECK(slurp((out / "summary.csv").string()) == slurp((reference / "summary.csv").string()));
    }
    // At least one kill landed before the run finished, or the test proved nothing.
    CHECK(killed_mid_run > 0);
}

TEST_CASE("a stale temporary does not make the output directory non-empty", "[signals]") {
    TempDir dir;
    const fs::path out = dir.fresh("out");
    fs::create_directories(out);
    dir.write(fs::relative(out / ".summary.csv.tmp", dir.path()).string(), "half a fi");
    ChildProcess child(BINARY, {"run", "--replications", "5", "--quiet", "--out", out.string()},
                       (dir.path() / "log.txt").string());
    REQUIRE(child.wait() == 0);
    CHECK_FALSE(fs::exists(out / ".summary.csv.tmp"));
    CHECK(fs::exists(out / "summary.csv"));
}
