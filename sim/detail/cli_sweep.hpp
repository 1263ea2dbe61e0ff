// `stopscan sweep` and `stopscan merge` (sim/cli_sweep.cpp), called from dispatch() in
// sim/cli.cpp.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace stopscan::detail {

/// Runs `stopscan sweep ...` with the arguments after "sweep". Throws InputError for bad
/// usage or a bad sweep file (before anything is written); returns 0.
int command_sweep(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

/// Runs `stopscan merge DIR... --out DIR`. Throws InputError when the directories are not
/// the complete shards of one sweep; returns 0.
int command_merge(const std::vector<std::string>& args, std::ostream& out);

}  // namespace stopscan::detail
