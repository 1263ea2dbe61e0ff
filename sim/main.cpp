// The stopscan executable: a thin shell over the library (OpenMC's src/main.cpp over libopenmc).
#include <iostream>
#include <string>
#include <vector>

#include "stopscan/cli.hpp"

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv, argv + argc);
    return stopscan::run_cli(args, std::cout, std::cerr);
}
