// `stopscan analyze DIR` (sim/cli_analyze.cpp), called from dispatch() in sim/cli.cpp.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace stopscan::detail {

/// Runs `stopscan analyze DIR [options]` with the arguments after "analyze": Morris, Sobol',
/// tornado and PRIM analyses of a finished sweep (docs/sensitivity.md). Throws InputError
/// for bad usage, a directory that is not a whole sweep, or a design the analysis cannot
/// use; warnings go to `err`; returns 0.
int command_analyze(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace stopscan::detail
