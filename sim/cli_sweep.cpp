// `stopscan sweep FILE --out DIR` and `stopscan merge DIR... --out DIR` (docs/sweeps.md).
#include "detail/cli_sweep.hpp"

#include <oneapi/tbb/global_control.h>
#include <unistd.h>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include "cli_support.hpp"
#include "stopscan/error.hpp"
#include "stopscan/sweep.hpp"
#include "stopscan/sweep_output.hpp"
#include "stopscan/writers.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace stopscan::detail {

namespace {

bool non_empty_directory(const std::string& dir, const std::string& flag) {
    std::error_code ec;
    const auto status = fs::status(dir, ec);
    if (!fs::exists(status)) return false;
    if (!fs::is_directory(status))
        throw InputError("command line", flag, dir,
                         "exists and is not a directory: choose a directory path");
    return !fs::is_empty(dir, ec);
}

std::string seconds_text(double s) {
    char buffer[32];
    if (s < 60)
        std::snprintf(buffer, sizeof buffer, "%.0f s", s);
    else if (s < 3600)
        std::snprintf(buffer, sizeof buffer, "%.0f min %02.0f s", std::floor(s / 60),
                      std::fmod(s, 60));
    else
        std::snprintf(buffer, sizeof buffer, "%.0f h %02.0f min", std::floor(s / 3600),
                      std::floor(std::fmod(s, 3600) / 60));
    return buffer;
}

}  // namespace

int command_sweep(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                  const SweepRunner& runner) {
    po::options_description options("stopscan sweep SWEEP.ini --out DIR [options]");
    options.add_options()("help,h", "show this help")("out,o", po::value<std::string>(),
                                                      "output directory (required)")(
        "resume", "skip the points DIR already holds (a sweep that was stopped)")(
        "shard", po::value<std::string>(),
        "I/N: run only shard I of N (points with id mod N = I - 1; I from 1, as Slurm's "
        "--array=1-N); merge the shards with stopscan merge")(
        "force", "replace the sweep outputs in a non-empty DIR")(
        "threads", po::value<std::string>(), "worker threads (default: all cores)")(
        "serial-points",
        "run the points one after another, each engine in parallel (default: in parallel "
        "across points; docs/sweeps.md)")("quiet,q", "print nothing but errors")(
        "sweep", po::value<std::vector<std::string>>(), "sweep file (positional)");
    po::positional_options_description positional;
    positional.add("sweep", -1);
    const auto vm = cli::parse(args, options, positional, "stopscan sweep --help");
    if (vm.count("help")) {
        out << "Run a scenario at every point of a design (docs/sweeps.md).\n\n" << options << '\n';
        return 0;
    }
    if (!vm.count("sweep"))
        throw InputError("command line", "give the sweep file: stopscan sweep SWEEP.ini --out DIR");
    const auto& files = vm["sweep"].as<std::vector<std::string>>();
    if (files.size() > 1)
        throw InputError("command line",
                         "unexpected argument '" + files[1] + "': give exactly one sweep file");
    if (!vm.count("out"))
        throw InputError("command line", "--out", "", "missing: name the output directory");
    const std::string dir = vm["out"].as<std::string>();
    if (dir.empty())
        throw InputError("command line", "--out", "", "empty path: name an output directory");
    const bool resume = vm.count("resume") > 0;
    const bool force = vm.count("force") > 0;
    const bool quiet = vm.count("quiet") > 0;
    if (resume && force)
        throw InputError("command line", "--force", "",
                         "give --resume (keep the finished points) or --force (start again), "
                         "not both");
    std::optional<SweepShard> shard;
    if (vm.count("shard")) shard = SweepShard::parse(vm["shard"].as<std::string>());
    std::optional<tbb::global_control> threads;
    std::optional<std::int64_t> thread_count;
    if (vm.count("threads")) {
        thread_count = cli::parse_integer("--threads", vm["threads"].as<std::string>(), 1, 1024);
        threads.emplace(tbb::global_control::max_allowed_parallelism,
                        static_cast<std::size_t>(*thread_count));
    }

    // Everything is checked before anything is written.
    const SweepSpec spec = read_sweep_file(files.front());
    const SweepPoints points = make_sweep_points(spec);
    validate_sweep_points(spec, points);
    const std::string manifest = sweep_manifest_json(spec, points, shard);

    if (non_empty_directory(dir, "--out")) {
        if (resume) {
            const SweepDirectoryInfo held = read_sweep_directory(dir);
            const SweepDirectoryInfo now = parse_sweep_manifest(manifest, "manifest.json");
            if (held.sweep_sha256 != now.sweep_sha256)
                throw InputError("command line", "--out", dir,
                                 "holds another sweep (its manifest's sweep_sha256 differs): "
                                 "resume with the same sweep file, scenario and build, or "
                                 "choose another --out");
            const SweepShard h = held.shard.value_or(SweepShard{});
            const SweepShard n = shard.value_or(SweepShard{});
            if (h.index != n.index || h.count != n.count ||
                held.shard.has_value() != shard.has_value())
                throw InputError(
                    "command line", "--shard", shard ? vm["shard"].as<std::string>() : "",
                    "DIR holds " +
                        (held.shard
                             ? "shard " + std::to_string(h.index) + "/" + std::to_string(h.count)
                             : std::string("an unsharded sweep")) +
                        ": resume it with the same --shard");
        } else if (force) {
            remove_sweep_outputs(dir);
        } else {
            throw InputError("command line", "--out", dir,
                             "directory is not empty: add --resume to finish the sweep it holds, "
                             "--force to start again, or choose another --out");
        }
    }
    const std::string points_dir = dir + "/points";
    std::error_code ec;
    fs::create_directories(points_dir, ec);
    if (ec)
        throw InputError("command line", "--out", dir,
                         "cannot create the directory: " + ec.message());
    // Leftovers of points that were being written when a run was killed.
    for (const auto& entry : fs::directory_iterator(points_dir))
        if (entry.path().filename().string().rfind(".tmp-", 0) == 0)
            fs::remove_all(entry.path(), ec);
    write_file_atomically(dir + "/manifest.json", manifest);

    std::vector<std::int64_t> todo;
    std::int64_t owned = 0;
    for (const auto& p : points.points) {
        if (shard && !shard->owns(p.id)) continue;
        ++owned;
        if (!fs::exists(fs::path(points_dir) / point_directory_name(p.id), ec))
            todo.push_back(p.id);
    }

    const bool tty = !quiet && &err == &std::cerr && ::isatty(STDERR_FILENO);
    const auto start = std::chrono::steady_clock::now();
    auto last = start;
    const auto total = static_cast<std::int64_t>(todo.size());
    std::int64_t finished = 0;
    std::int64_t next_line = 1;  // plain log lines at every tenth of the points
    auto progress = [&](std::int64_t) {
        ++finished;
        if (quiet) return;
        const auto now = std::chrono::steady_clock::now();
        const double elapsed = std::chrono::duration<double>(now - start).count();
        const double rate = elapsed > 0 ? static_cast<double>(finished) / elapsed : 0;
        const double eta = rate > 0 ? static_cast<double>(total - finished) / rate : 0;
        char line[160];
        if (tty) {
            if (finished < total && now - last < std::chrono::milliseconds(200)) return;
            last = now;
            constexpr int WIDTH = 30;
            const auto filled =
                static_cast<int>(WIDTH * finished / std::max<std::int64_t>(total, 1));
            std::snprintf(line, sizeof line,
                          "\rstopscan sweep [%s%s] %lld/%lld points, %.2f points/s, ETA %s ",
                          std::string(static_cast<std::size_t>(filled), '#').c_str(),
                          std::string(static_cast<std::size_t>(WIDTH - filled), '.').c_str(),
                          static_cast<long long>(finished), static_cast<long long>(total), rate,
                          seconds_text(eta).c_str());
            err << line << (finished == total ? "\n" : "") << std::flush;
        } else if (finished * 10 >= next_line * total || finished == total) {
            while (finished * 10 >= next_line * total && next_line <= 10) ++next_line;
            std::snprintf(line, sizeof line,
                          "stopscan sweep: %lld/%lld points done, %.2f points/s, ETA %s",
                          static_cast<long long>(finished), static_cast<long long>(total), rate,
                          seconds_text(eta).c_str());
            err << line << '\n' << std::flush;
        }
    };
    if (!quiet && owned > total)
        err << "stopscan sweep: resuming: " << owned - total << " of " << owned
            << " points already done\n";
    const std::function<void(std::int64_t)> done = progress;
    if (runner)
        runner(SweepRun{spec, points, todo, points_dir, !vm.count("serial-points"), thread_count,
                        done});
    else
        run_sweep_points(spec, points, todo, points_dir, !vm.count("serial-points"), done);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    if (!shard) {
        std::vector<std::string> dirs;
        for (const auto& p : points.points)
            dirs.push_back(points_dir + "/" + point_directory_name(p.id));
        assemble_sweep(dir, manifest, dirs);
    }
    if (!quiet) {
        char rate[64];
        std::snprintf(rate, sizeof rate, "%.2f",
                      seconds > 0 ? static_cast<double>(total) / seconds : 0.0);
        out << "stopscan sweep: " << design_name(spec.design) << ", " << points.points.size()
            << " points"
            << (shard ? ", shard " + std::to_string(shard->index) + "/" +
                            std::to_string(shard->count) + " holds " + std::to_string(owned)
                      : std::string())
            << "; " << total << " run in " << seconds_text(seconds) << " (" << rate
            << " points/s), " << owned - total << " already done\n";
        if (shard)
            out << "Points in " << points_dir << "/; when every shard is done: stopscan merge "
                << "SHARD_DIR... --out DIR (docs/sweeps.md)\n";
        else
            out << "Outputs in " << dir
                << "/: sweep.csv, effects.csv, report.html, manifest.json, points/ (how to read "
                   "them: docs/sweeps.md)\n";
    }
    return 0;
}

int command_merge(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description options("stopscan merge SHARD_DIR... --out DIR [options]");
    options.add_options()("help,h", "show this help")("out,o", po::value<std::string>(),
                                                      "output directory (required)")(
        "force", "replace the sweep outputs in a non-empty DIR")(
        "quiet,q", "print nothing but errors")("shards", po::value<std::vector<std::string>>(),
                                               "shard directories (positional)");
    po::positional_options_description positional;
    positional.add("shards", -1);
    const auto vm = cli::parse(args, options, positional, "stopscan merge --help");
    if (vm.count("help")) {
        out << "Merge the shards of a sweep (stopscan sweep --shard I/N) into the outputs of the "
               "whole sweep (docs/sweeps.md).\n\n"
            << options << '\n';
        return 0;
    }
    if (!vm.count("shards"))
        throw InputError("command line",
                         "give the shard directories: stopscan merge SHARD_DIR... --out DIR");
    if (!vm.count("out") || vm["out"].as<std::string>().empty())
        throw InputError("command line", "--out", "", "missing: name the output directory");
    const std::string dir = vm["out"].as<std::string>();
    const auto& shards = vm["shards"].as<std::vector<std::string>>();
    std::error_code ec;
    for (const auto& s : shards)
        if (fs::exists(s, ec) && fs::exists(dir, ec) && fs::equivalent(s, dir, ec))
            throw InputError("command line", "--out", dir,
                             "is one of the shards: write the merged sweep to another directory");
    if (non_empty_directory(dir, "--out")) {
        if (!vm.count("force"))
            throw InputError("command line", "--out", dir,
                             "directory is not empty: add --force to replace its sweep outputs, "
                             "or choose another --out");
    }
    // The shards are checked (all of them, every point once) before DIR is touched.
    const auto n = merge_sweep_shards(shards, dir, vm.count("force") > 0);
    if (!vm.count("quiet"))
        out << "stopscan merge: " << shards.size() << " shards, " << n << " points; outputs in "
            << dir << "/: sweep.csv, effects.csv, report.html, manifest.json, points/\n";
    return 0;
}

}  // namespace stopscan::detail
