// stopscan-mpi: a sweep's points dealt dynamically to MPI ranks (docs/cluster.md#mpi).
//
// Rank 0 runs `stopscan sweep` itself (sim/cli_sweep.cpp: every check, DIR, the manifest,
// resume, progress, the assembled files), with one difference: the points still to run are
// not run in this process but dealt to the other ranks through a work queue. A worker asks
// for a point, runs it (run_sweep_point, TBB inside) and sends back the exact bytes of its
// point directory (sweep_point_files); rank 0 commits them (commit_sweep_point) and answers
// with the next point. Every file is written by rank 0 with the library's functions, and a
// point's bytes depend only on the point, so the outputs are byte for byte those of
// `stopscan sweep`, whatever the number of ranks and the order in which points finish.
//
// The protocol is lockstep: every message a worker sends gets exactly one answer (a point
// or stop), so no message is left in flight when the ranks finalise.
#include "detail/sweep_mpi.hpp"

#include <mpi.h>
#include <oneapi/tbb/global_control.h>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <stdexcept>
#include <thread>

#include "detail/cli_sweep.hpp"
#include "stopscan/build_info.hpp"
#include "stopscan/cli.hpp"
#include "stopscan/error.hpp"
#include "stopscan/interrupt.hpp"
#include "stopscan/sweep.hpp"
#include "stopscan/sweep_output.hpp"

namespace stopscan::detail {

namespace {

constexpr const char* PROGRAM = "stopscan-mpi";

// Worker to rank 0.
constexpr int TAG_READY = 1;   // empty: give me a point
constexpr int TAG_RESULT = 2;  // a point's id and files
constexpr int TAG_ERROR = 3;   // an exit code and a message; the worker then waits for stop
// Rank 0 to a worker.
constexpr int TAG_POINT = 4;  // a point id
constexpr int TAG_STOP = 5;   // empty: no more points, finish

// A failure a worker reported: its exit code (1, 2) and its message, without the prefix.
class RankError : public std::runtime_error {
public:
    RankError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
    int code() const noexcept { return code_; }

private:
    int code_;
};

// Messages are byte strings: 64-bit integers in the machine's byte order (the ranks of one
// job run one build, and the manifest hash check below refuses another build), strings as a
// length and their bytes.
void put(std::string& buffer, std::int64_t value) {
    char bytes[sizeof value];
    std::memcpy(bytes, &value, sizeof value);
    buffer.append(bytes, sizeof value);
}

void put(std::string& buffer, const std::string& text) {
    put(buffer, static_cast<std::int64_t>(text.size()));
    buffer += text;
}

class Reader {
public:
    explicit Reader(const std::string& buffer) : buffer_(buffer) {}
    std::int64_t integer() {
        std::int64_t value = 0;
        if (at_ + sizeof value > buffer_.size()) throw InternalError("truncated MPI message");
        std::memcpy(&value, buffer_.data() + at_, sizeof value);
        at_ += sizeof value;
        return value;
    }
    std::string text() {
        const auto n = integer();
        if (n < 0 || static_cast<std::size_t>(n) > buffer_.size() - at_)
            throw InternalError("truncated MPI message");
        std::string out = buffer_.substr(at_, static_cast<std::size_t>(n));
        at_ += static_cast<std::size_t>(n);
        return out;
    }

private:
    const std::string& buffer_;
    std::size_t at_ = 0;
};

void check(int status, const char* call) {
    if (status != MPI_SUCCESS) throw InternalError(std::string(call) + " failed");
}

void send(const std::string& buffer, int to, int tag) {
    check(
        MPI_Send(buffer.data(), static_cast<int>(buffer.size()), MPI_BYTE, to, tag, MPI_COMM_WORLD),
        "MPI_Send");
}

// Receives the message `status` describes (from MPI_Probe or MPI_Iprobe).
std::string receive(const MPI_Status& status) {
    int count = 0;
    check(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
    std::string buffer(static_cast<std::size_t>(count), '\0');
    check(MPI_Recv(buffer.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG,
                   MPI_COMM_WORLD, MPI_STATUS_IGNORE),
          "MPI_Recv");
    return buffer;
}

// The start of a sweep, broadcast by rank 0 once: either the go (status 0) with what a worker
// needs to build the same sweep, or the exit code of a run that ends before any point is
// dealt (a bad sweep file, --help, nothing to do).
struct Start {
    std::int64_t status = 0;
    std::int64_t threads = 0;  // --threads, 0 when not given
    std::string path;          // the sweep file, as given (the manifest records it)
    std::string text;          // its bytes, so every rank parses the same sweep
    std::string sweep_sha256;  // rank 0's, to refuse a worker that builds another sweep
};

void broadcast_start(Start& start) {
    std::string buffer;
    std::int64_t size = 0;
    if (start.status == 0) {
        put(buffer, start.threads);
        put(buffer, start.path);
        put(buffer, start.text);
        put(buffer, start.sweep_sha256);
    }
    std::int64_t header[2] = {start.status, static_cast<std::int64_t>(buffer.size())};
    check(MPI_Bcast(header, 2, MPI_INT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast");
    start.status = header[0];
    size = header[1];
    if (start.status != 0) return;
    buffer.resize(static_cast<std::size_t>(size));
    check(MPI_Bcast(buffer.data(), static_cast<int>(size), MPI_BYTE, 0, MPI_COMM_WORLD),
          "MPI_Bcast");
    Reader in(buffer);
    start.threads = in.integer();
    start.path = in.text();
    start.text = in.text();
    start.sweep_sha256 = in.text();
}

// Rank 0 with workers 1..ranks-1: deals the points of `run` one at a time to whichever worker
// asks, commits what comes back, and stops every worker before returning or throwing.
void deal(const SweepRun& run, int ranks) {
    std::size_t next = 0;
    int active = ranks - 1;                 // workers not yet told to stop
    std::exception_ptr failure;             // an error on rank 0 (committing a point)
    std::optional<RankError> worker_error;  // the first error a worker reported
    int stopped_by = 0;                     // a signal, here or on a worker
    while (active > 0) {
        if (!stopped_by) stopped_by = stop_signal();
        int flag = 0;
        MPI_Status status;
        check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status),
              "MPI_Iprobe");
        if (!flag) {
            // Poll rather than block: Open MPI's blocking receive spins a core at 100%, which
            // would take it from the workers' TBB threads when ranks share the cores.
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            continue;
        }
        const std::string message = receive(status);
        if (status.MPI_TAG == TAG_RESULT) {
            try {
                Reader in(message);
                const std::int64_t id = in.integer();
                SweepPointFiles files;
                files.point_csv = in.text();
                files.summary_csv = in.text();
                files.effects_csv = in.text();
                commit_sweep_point(run.points_dir, id, files);
                run.done(id);
            } catch (...) {
                if (!failure) failure = std::current_exception();
            }
        } else if (status.MPI_TAG == TAG_ERROR) {
            Reader in(message);
            const auto code = static_cast<int>(in.integer());
            const std::string text = in.text();
            if (code > 128) {
                if (!stopped_by) stopped_by = code - 128;
            } else if (!worker_error) {
                worker_error.emplace(code, text);
            }
        }
        const bool dealing = !failure && !worker_error && !stopped_by;
        if (dealing && next < run.todo.size()) {
            std::string point;
            put(point, run.todo[next++]);
            send(point, status.MPI_SOURCE, TAG_POINT);
        } else {
            send(std::string(), status.MPI_SOURCE, TAG_STOP);
            --active;
        }
    }
    if (failure) std::rethrow_exception(failure);
    if (worker_error) throw *worker_error;
    if (stopped_by) throw Interrupted(stopped_by);
}

// A worker: builds the sweep from the broadcast, then runs the points it is dealt until told
// to stop. Errors go to rank 0, which prints them.
void serve(const Start& start, int rank) {
    std::optional<tbb::global_control> threads;
    if (start.threads > 0)
        threads.emplace(tbb::global_control::max_allowed_parallelism,
                        static_cast<std::size_t>(start.threads));
    // The message for rank 0 about the exception being handled: its exit code and text.
    const auto current_error = [rank] {
        const auto message = [](int code, const std::string& text) {
            std::string buffer;
            put(buffer, code);
            put(buffer, text);
            return buffer;
        };
        try {
            throw;
        } catch (const Interrupted& e) {
            return message(128 + e.signal(), e.what());
        } catch (const InputError& e) {
            return message(EXIT_BAD_INPUT, e.what());
        } catch (const std::exception& e) {
            return message(EXIT_INTERNAL, "rank " + std::to_string(rank) + ": " + e.what());
        }
    };
    std::optional<SweepSpec> spec;
    SweepPoints points;
    std::string first;  // the first message: ready, or why this rank cannot run points
    int first_tag = TAG_READY;
    try {
        spec = parse_sweep(start.text, start.path);
        points = make_sweep_points(*spec);
        const auto here =
            parse_sweep_manifest(sweep_manifest_json(*spec, points, std::nullopt), "manifest.json");
        if (here.sweep_sha256 != start.sweep_sha256)
            throw InputError(start.path,
                             "rank " + std::to_string(rank) +
                                 " builds another sweep from this file (another base scenario "
                                 "file or another build of stopscan-mpi): run every rank with "
                                 "the same files and executable");
    } catch (const std::exception&) {
        first_tag = TAG_ERROR;
        first = current_error();
    }
    send(first, 0, first_tag);
    for (;;) {
        MPI_Status status;
        check(MPI_Probe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &status), "MPI_Probe");
        const std::string message = receive(status);
        if (status.MPI_TAG != TAG_POINT) return;
        std::string reply;
        int tag = TAG_RESULT;
        try {
            const std::int64_t id = Reader(message).integer();
            const SweepPoint& point = points.points.at(static_cast<std::size_t>(id));
            const SweepPointFiles files =
                sweep_point_files(*spec, point, run_sweep_point(*spec, point));
            put(reply, id);
            put(reply, files.point_csv);
            put(reply, files.summary_csv);
            put(reply, files.effects_csv);
        } catch (const std::exception&) {
            tag = TAG_ERROR;
            reply = current_error();
        }
        send(reply, 0, tag);
    }
}

const std::string USAGE =
    "Usage: mpirun [mpirun options] stopscan-mpi sweep SWEEP.ini --out DIR [--resume | --force]\n"
    "                [--shard I/N] [--threads N] [--quiet]\n"
    "Runs a sweep with its points dealt to the MPI ranks; rank 0 writes every output, byte for\n"
    "byte what `stopscan sweep` writes (docs/cluster.md#mpi). Options: stopscan-mpi sweep "
    "--help.\n";

int dispatch(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
             const SweepRunner& runner) {
    if (args.size() >= 2 && (args[1] == "--help" || args[1] == "-h" || args[1] == "help")) {
        out << USAGE;
        return EXIT_OK;
    }
    if (args.size() >= 2 && args[1] == "--version") {
        out << PROGRAM << ' ' << STOPSCAN_VERSION << " (commit " << STOPSCAN_GIT_COMMIT << ", "
            << STOPSCAN_BUILD_TYPE << " build)\n";
        return EXIT_OK;
    }
    if (args.size() < 2 || args[1] != "sweep")
        throw InputError("command line",
                         (args.size() < 2 ? std::string("no command given")
                                          : "unknown command '" + args[1] + "'") +
                             ": stopscan-mpi runs only `sweep SWEEP.ini --out DIR` (see "
                             "stopscan-mpi --help)");
    return command_sweep(std::vector<std::string>(args.begin() + 2, args.end()), out, err, runner);
}

// Rank 0: `stopscan sweep` with the points dealt to the other ranks. The workers wait in the
// start broadcast until rank 0 has checked everything: the go, or the exit code.
int lead(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, int ranks) {
    bool started = ranks == 1;
    const SweepRunner runner = [&](const SweepRun& run) {
        if (ranks == 1) {
            run_sweep_points(run.spec, run.points, run.todo, run.points_dir, run.across_points,
                             run.done);
            return;
        }
        Start start;
        start.threads = run.threads.value_or(0);
        start.path = run.spec.path;
        start.text = run.spec.text;
        start.sweep_sha256 =
            parse_sweep_manifest(sweep_manifest_json(run.spec, run.points, std::nullopt),
                                 "manifest.json")
                .sweep_sha256;
        started = true;
        broadcast_start(start);
        deal(run, ranks);
    };
    int code = EXIT_OK;
    try {
        code = dispatch(args, out, err, runner);
    } catch (const InputError& e) {
        err << PROGRAM << ": error: " << e.what() << '\n';
        code = EXIT_BAD_INPUT;
    } catch (const RankError& e) {
        err << PROGRAM << (e.code() == EXIT_BAD_INPUT ? ": error: " : ": internal error: ")
            << e.what() << '\n';
        code = e.code();
    } catch (const Interrupted& e) {
        err << PROGRAM << ": stopped by " << signal_name(e.signal())
            << ": the finished points are kept; finish with --resume\n";
        code = 128 + e.signal();
    } catch (const std::bad_alloc&) {
        err << PROGRAM << ": error: out of memory: use fewer replications, cells or stops\n";
        code = EXIT_INTERNAL;
    } catch (const std::exception& e) {
        err << PROGRAM << ": internal error: " << e.what() << '\n';
        code = EXIT_INTERNAL;
    }
    if (!started) {
        // Nothing was dealt: release the workers with the outcome.
        Start end;
        end.status = code == EXIT_OK ? -1 : code;
        try {
            broadcast_start(end);
        } catch (const std::exception& e) {
            err << PROGRAM << ": internal error: " << e.what() << '\n';
            return EXIT_INTERNAL;
        }
    }
    return code;
}

}  // namespace

int run_mpi_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
    int rank = 0;
    int ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    if (rank == 0) return lead(args, out, err, ranks);
    try {
        Start start;
        broadcast_start(start);
        if (start.status == 0) serve(start, rank);
        return EXIT_OK;
    } catch (const std::exception& e) {
        // Only MPI failures get here (serve sends every other error to rank 0).
        err << PROGRAM << ": internal error: rank " << rank << ": " << e.what() << '\n';
        return EXIT_INTERNAL;
    }
}

}  // namespace stopscan::detail
