// The `stopscan` command line, as a library function so tests can drive it in-process with
// argv arrays. main() only forwards to it.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace stopscan {

/// Exit codes of the command line. EXIT_CHECK_FAILED: `run` wrote all its outputs, but an
/// expectation failed or was inconclusive, or `--check` found a change
/// (docs/expectations.md).
enum ExitCode : int { EXIT_OK = 0, EXIT_INTERNAL = 1, EXIT_BAD_INPUT = 2, EXIT_CHECK_FAILED = 3 };

/// Runs `stopscan` with `args` (args[0] is the program name). Never throws: errors become one
/// line on `err` (`stopscan: error: ...`) and the returned exit code.
int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace stopscan
