// `stopscan audit verify|summarize` (sim/cli_audit.cpp), called from dispatch() in sim/cli.cpp.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace stopscan::detail {

/// Exit code of `audit verify` when the chain is broken (docs/audit-log.md).
inline constexpr int EXIT_AUDIT_BROKEN = 3;

/// Runs `stopscan audit ...` with the arguments after "audit". Throws InputError for bad
/// usage; returns 0, or EXIT_AUDIT_BROKEN when verify finds a broken chain.
int command_audit(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace stopscan::detail
