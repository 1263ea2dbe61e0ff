#include "stopscan/interrupt.hpp"

#include <atomic>
#include <csignal>
#include <cstring>

#include "stopscan/error.hpp"

namespace stopscan {

namespace {

// Lock-free, so reading and writing it from a signal handler is defined behaviour.
std::atomic<int> requested_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_stop_signal(int signal) {
    request_stop(signal);
}

}  // namespace

Interrupted::Interrupted(int signal)
    : std::runtime_error("interrupted by " + signal_name(signal)), signal_(signal) {}

void install_stop_signal_handlers() {
    struct sigaction action;
    std::memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    // SA_RESETHAND: the handler runs once; a second Ctrl-C kills a run that does not stop.
    action.sa_flags = SA_RESETHAND;
    for (const int signal : {SIGINT, SIGTERM})
        if (::sigaction(signal, &action, nullptr) != 0)
            throw InternalError("cannot install the handler of " + signal_name(signal));
}

void request_stop(int signal) noexcept {
    int expected = 0;
    // The first signal is the one reported.
    requested_signal.compare_exchange_strong(expected, signal, std::memory_order_relaxed);
}

int stop_signal() noexcept {
    return requested_signal.load(std::memory_order_relaxed);
}

void clear_stop_request() noexcept {
    requested_signal.store(0, std::memory_order_relaxed);
}

std::string signal_name(int signal) {
    switch (signal) {
        case SIGINT:
            return "SIGINT";
        case SIGTERM:
            return "SIGTERM";
        default:
            return "signal " + std::to_string(signal);
    }
}

}  // namespace stopscan
