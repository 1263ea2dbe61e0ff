// A sweep killed with SIGKILL in the middle loses no finished point, and `--resume` then
// gives the same bytes as an uninterrupted sweep. The sweep runs as a subprocess (the built
// `stopscan` executable), killed once some point directories have appeared.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "support/sweep_support.hpp"
#include "support/temp_dir.hpp"

extern char** environ;

namespace fs = std::filesystem;
using stopscan::test::TempDir;
using namespace stopscan::test;

namespace {

std::size_t finished_points(const fs::path& points) {
    std::size_t n = 0;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(points, ec))
        if (entry.path().filename().string().rfind(".tmp-", 0) != 0) ++n;
    return n;
}

}  // namespace

TEST_CASE("a sweep killed mid-run and resumed gives the bytes of an uninterrupted sweep",
          "[sweep][resume][kill]") {
    TempDir tmp;
    // 24 points of about 50 ms each on one thread: time to kill it half-way.
    const std::string file =
        tmp.write("sweep.ini",
                  "[sweep]\nreplications = 4\nseed = 3\npolicies = dual-search, firewall\n"
                  "metrics = exposure_per_100k, wrongful_outcomes\n[set]\nstops.total = 20000\n"
                  "[axes]\ndatabase.IABS.false_flag = linear 0.005 0.05 6\n"
                  "database.IDENT1.false_flag = list 0.001, 0.002, 0.004, 0.008\n");
    const std::string killed = (tmp.path() / "killed").string();
    const std::string whole = (tmp.path() / "whole").string();

    std::vector<std::string> args{STOPSCAN_BINARY, "sweep",     file, "--out",
                                  killed,          "--threads", "1",  "--quiet"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    REQUIRE(posix_spawn(&pid, STOPSCAN_BINARY, &actions, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&actions);

    // Kill it once a few points are committed (the poll has a deadline, not a timed assert).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (finished_points(fs::path(killed) / "points") < 3 &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(::kill(pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    const bool was_killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    const auto done = finished_points(fs::path(killed) / "points");
    INFO("points finished when killed: " << done);
    CHECK(was_killed);
    CHECK(done >= 3);
    CHECK(done < 24);  // killed before the end, or the test proves nothing
    CHECK(!fs::exists(fs::path(killed) / "sweep.csv"));

    const auto resumed = cli({"sweep", file, "--out", killed, "--resume", "--quiet"});
    INFO(resumed.err);
    REQUIRE(resumed.code == 0);
    REQUIRE(cli({"sweep", file, "--out", whole, "--quiet"}).code == 0);
    CHECK(read_file(fs::path(killed) / "sweep.csv") == read_file(fs::path(whole) / "sweep.csv"));
    CHECK(tree_of(killed) == tree_of(whole));
}
