// Shared by the libFuzzer targets: what counts as a finding besides a crash, a leak, UB or a
// timeout (which the sanitizers and libFuzzer report themselves).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace stopscan::fuzz {

/// Reports a broken promise of the code under test and aborts, so libFuzzer saves the input.
[[noreturn]] inline void finding(const std::string& what) {
    std::fprintf(stderr, "stopscan fuzz finding: %s\n", what.c_str());
    std::abort();
}

/// An InputError's message must be one line (README: "a one-line message").
inline void check_one_line(std::string_view message) {
    if (message.empty() || message.find('\n') != std::string_view::npos)
        finding("InputError message is not one non-empty line: [" + std::string(message) + "]");
}

}  // namespace stopscan::fuzz
