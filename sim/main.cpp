// The stopscan executable: a thin shell over the library (OpenMC's src/main.cpp over libopenmc).
#include <iostream>
#include <string>
#include <vector>

#include "stopscan/cli.hpp"
#include "stopscan/interrupt.hpp"

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv, argv + argc);
    try {
        stopscan::install_stop_signal_handlers();
    } catch (const std::exception& e) {
        std::cerr << "stopscan: internal error: " << e.what() << '\n';
        return stopscan::EXIT_INTERNAL;
    }
    return stopscan::run_cli(args, std::cout, std::cerr);
}
