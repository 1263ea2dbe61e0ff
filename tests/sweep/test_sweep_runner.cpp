// The hook stopscan-mpi uses (sim/detail/cli_sweep.hpp): `stopscan sweep` hands the points to
// do to a runner once everything is checked. A runner that commits each point's bytes
// (sweep_point_files, commit_sweep_point) in another order than the points' gives the bytes
// of the ordinary sweep, as the MPI work queue does; a bad sweep or --help never reaches it.
// Runs in-process, without MPI (tests/cluster/mpi_test.sh runs the MPI driver itself).

#include <catch2/catch.hpp>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "detail/cli_sweep.hpp"
#include "stopscan/error.hpp"
#include "stopscan/sweep_output.hpp"
#include "support/sweep_support.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using stopscan::test::TempDir;
using namespace stopscan::test;

namespace {

// A 3 x 2 grid over the default scenario, small enough to run in a fraction of a second.
const std::string GRID =
    "[sweep]\nreplications = 2\nseed = 5\npolicies = dual-search, firewall\n"
    "metrics = exposure_per_100k, wrongful_outcomes\n[set]\nstops.total = 3000\n"
    "[axes]\ndatabase.IABS.false_flag = list 0.01, 0.05, 0.2\n"
    "database.IABS.size = list 1000000, 20000000\n";

// Runs `stopscan sweep ARGS` in-process with a runner that commits the points last first, and
// records the ids it was given.
int sweep_in_reverse(const std::vector<std::string>& args, std::vector<std::int64_t>& given,
                     int& calls) {
    std::ostringstream out, err;
    const stopscan::detail::SweepRunner runner = [&](const stopscan::detail::SweepRun& run) {
        ++calls;
        given = run.todo;
        for (auto it = run.todo.rbegin(); it != run.todo.rend(); ++it) {
            const auto& point = run.points.points[static_cast<std::size_t>(*it)];
            const auto files = stopscan::sweep_point_files(
                run.spec, point, stopscan::run_sweep_point(run.spec, point));
            stopscan::commit_sweep_point(run.points_dir, *it, files);
            run.done(*it);
        }
    };
    return stopscan::detail::command_sweep(args, out, err, runner);
}

}  // namespace

TEST_CASE("points committed by a runner in reverse order give the ordinary sweep's bytes",
          "[sweep][runner]") {
    TempDir tmp;
    const std::string file = tmp.write("grid.ini", GRID);
    const std::string whole = (tmp.path() / "whole").string();
    const std::string dealt = (tmp.path() / "dealt").string();
    REQUIRE(cli({"sweep", file, "--out", whole, "--quiet"}).code == 0);

    std::vector<std::int64_t> given;
    int calls = 0;
    REQUIRE(sweep_in_reverse({file, "--out", dealt, "--quiet"}, given, calls) == 0);
    CHECK(calls == 1);
    CHECK(given == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5});
    CHECK(tree_of(dealt) == tree_of(whole));

    // --resume hands the runner only the missing points.
    fs::remove_all(fs::path(dealt) / "points" / "000004");
    fs::remove(fs::path(dealt) / "sweep.csv");
    REQUIRE(sweep_in_reverse({file, "--out", dealt, "--resume", "--quiet"}, given, calls) == 0);
    CHECK(given == std::vector<std::int64_t>{4});
    CHECK(tree_of(dealt) == tree_of(whole));
}

TEST_CASE("a bad sweep file or --help never reaches the runner", "[sweep][runner]") {
    TempDir tmp;
    const std::string bad =
        tmp.write("bad.ini", "[sweep]\nreplications = 0\n[axes]\nstops.total = list 10, 20\n");
    std::vector<std::int64_t> given;
    int calls = 0;
    const std::string out = (tmp.path() / "out").string();
    CHECK_THROWS_AS(sweep_in_reverse({bad, "--out", out}, given, calls), stopscan::InputError);
    CHECK(sweep_in_reverse({"--help"}, given, calls) == 0);
    CHECK(calls == 0);
    CHECK(!fs::exists(out));
}
