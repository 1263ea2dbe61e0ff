// `stopscan sweep` and `stopscan merge` (sim/cli_sweep.cpp), called from dispatch() in
// sim/cli.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "stopscan/sweep.hpp"

namespace stopscan::detail {

/// What `stopscan sweep` hands to whatever runs its points, once the sweep file, every point
/// and DIR are checked, DIR is prepared and its manifest written.
struct SweepRun {
    const SweepSpec& spec;
    const SweepPoints& points;
    const std::vector<std::int64_t>& todo;  ///< the ids still to run, ascending
    const std::string& points_dir;          ///< DIR/points
    bool across_points;                     ///< false with --serial-points
    std::optional<std::int64_t> threads;    ///< --threads, if given
    /// To be called after each point is committed, one call at a time (progress).
    const std::function<void(std::int64_t)>& done;
};

/// Runs the points of a SweepRun: writes each into points_dir (commit_sweep_point) and calls
/// done(id). The default is run_sweep_points in this process; stopscan-mpi
/// (sim/sweep_mpi.cpp) deals the points to MPI ranks instead.
using SweepRunner = std::function<void(const SweepRun&)>;

/// Runs `stopscan sweep ...` with the arguments after "sweep". Throws InputError for bad
/// usage or a bad sweep file (before anything is written); returns 0. `runner` runs the
/// points (empty: run_sweep_points); it is called at most once, and not for --help.
int command_sweep(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                  const SweepRunner& runner = {});

/// Runs `stopscan merge DIR... --out DIR`. Throws InputError when the directories are not
/// the complete shards of one sweep; returns 0.
int command_merge(const std::vector<std::string>& args, std::ostream& out);

}  // namespace stopscan::detail
