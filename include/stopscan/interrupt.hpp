// Stopping a run cleanly on SIGINT or SIGTERM.
//
// A signal is process-wide, so the request to stop is the one piece of process-wide mutable
// state in the library: the handlers installed by main() only set it, and long loops (the
// engine's replications and blocks of persons, a sweep's points) poll it and throw
// Interrupted, so that every destructor on the way out runs (temporary files are removed)
// and nothing half-written is renamed into place.
#pragma once

#include <stdexcept>
#include <string>

namespace stopscan {

/// Thrown by throw_if_stop_requested(): the run was asked to stop by `signal()`. run_cli maps
/// it to exit code 128 + signal (130 for SIGINT, 143 for SIGTERM), the shells' convention.
class Interrupted : public std::runtime_error {
public:
    explicit Interrupted(int signal);
    int signal() const noexcept { return signal_; }

private:
    int signal_;
};

/// Installs SIGINT and SIGTERM handlers that request a stop. A second SIGINT or SIGTERM gets
/// the default action (the process dies at once), for a user whose run does not stop. Throws
/// InternalError if sigaction fails.
void install_stop_signal_handlers();

/// Requests a stop as if `signal` had arrived. Async-signal-safe.
void request_stop(int signal) noexcept;

/// The signal that requested a stop, or 0.
int stop_signal() noexcept;

/// Forgets a stop request (for tests that drive the library in-process).
void clear_stop_request() noexcept;

/// Throws Interrupted if a stop was requested. Cheap enough for every block of persons.
inline void throw_if_stop_requested() {
    if (const int signal = stop_signal()) throw Interrupted(signal);
}

/// "SIGINT", "SIGTERM" or "signal N".
std::string signal_name(int signal);

}  // namespace stopscan
