// stopscan-mpi (docs/cluster.md#mpi): `stopscan sweep` whose points are dealt to MPI ranks.
// Rank 0 checks everything and writes every file, exactly as `stopscan sweep` does; the other
// ranks only run points and send back their files' bytes. Built only with
// -DSTOPSCAN_WITH_MPI=ON, outside stopscan_core, so the library never depends on MPI.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace stopscan::detail {

/// Runs `stopscan-mpi ARGS` on this rank, after MPI_Init and before MPI_Finalize; every rank
/// calls it with the same arguments. Rank 0 parses and checks them (`sweep SWEEP.ini --out
/// DIR [options]`, as `stopscan sweep`), deals the points, writes the outputs and prints one
/// line per error on `err`; the other ranks print nothing. Never throws: returns the exit
/// code (0; 1 internal error; 2 bad input, on rank 0 whichever rank found it; 128 + signal
/// when stopped by SIGINT or SIGTERM). Ranks other than 0 return 0 unless MPI fails.
int run_mpi_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace stopscan::detail
