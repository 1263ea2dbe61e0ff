// The stopscan-mpi executable (docs/cluster.md#mpi): MPI set-up around run_mpi_cli, as
// sim/main.cpp is a thin shell around run_cli. Built only with -DSTOPSCAN_WITH_MPI=ON.
#include <mpi.h>
#include <iostream>
#include <string>
#include <vector>

#include "detail/sweep_mpi.hpp"
#include "stopscan/cli.hpp"
#include "stopscan/interrupt.hpp"

int main(int argc, char** argv) {
    // Only the main thread of each rank calls MPI; TBB's threads never do.
    int provided = 0;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        std::cerr << "stopscan-mpi: internal error: MPI_Init_thread failed\n";
        return stopscan::EXIT_INTERNAL;
    }
    const std::vector<std::string> args(argv, argv + argc);
    int code = stopscan::EXIT_INTERNAL;
    try {
        stopscan::install_stop_signal_handlers();
        code = stopscan::detail::run_mpi_cli(args, std::cout, std::cerr);
    } catch (const std::exception& e) {
        std::cerr << "stopscan-mpi: internal error: " << e.what() << '\n';
        MPI_Abort(MPI_COMM_WORLD, stopscan::EXIT_INTERNAL);
    }
    MPI_Finalize();
    return code;
}
