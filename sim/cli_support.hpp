// Helpers shared by the subcommands of the stopscan command line (sim/cli*.cpp): strict
// parsing of flags, loading the scenario with --set overrides, output-directory checks.
// Private to the library; the public entry point is include/stopscan/cli.hpp.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "stopscan/engine.hpp"
#include "stopscan/scenario.hpp"

namespace stopscan::cli {

namespace po = boost::program_options;

/// Parses a signed integer strictly ("-5", "10x" and "" are errors), then range-checks it.
std::int64_t parse_integer(const std::string& flag, const std::string& value, std::int64_t lo,
                           std::int64_t hi);

/// The arguments joined by spaces (for the manifest's command line).
std::string join_args(const std::vector<std::string>& args);

/// Parses a subcommand's arguments with prefix guessing off and stray positionals refused.
/// A syntax error names `help` ("--help", or "stopscan audit --help") as where to look.
po::variables_map parse(const std::vector<std::string>& args,
                        const po::options_description& options,
                        const po::positional_options_description& positional,
                        const std::string& help = "--help");

/// The scenario of a command: the positional SCENARIO.ini (or the embedded default) with
/// --set overrides applied.
struct ScenarioChoice {
    std::shared_ptr<const Scenario> scenario;
    std::string path;
};
ScenarioChoice load(const po::variables_map& vm);

/// The --set option every command that loads a scenario takes.
po::options_description scenario_options();

/// Refuses a non-empty output directory unless --force, before any work is done.
void check_output_directory(const std::string& out, bool force);

/// Refuses, before any work, a run whose estimated memory (estimate_footprint for
/// `max_replications`) exceeds what the machine has available, with an InputError naming
/// `flag` = `value` that says how big the run would be and what to change; `force` skips the
/// refusal. Unless `quiet`, notes a run of more than a billion stops on `err`.
void check_run_fits(const Engine& engine, const RunPlan& plan, std::int64_t max_replications,
                    const std::string& flag, const std::string& value, bool force, bool quiet,
                    std::ostream& err);

/// `stopscan run` (sim/cli_run.cpp). `command_line` is the whole command line, for the
/// manifest. Throws InputError for bad input; returns the exit code otherwise.
int command_run(const std::vector<std::string>& args, const std::string& command_line,
                std::ostream& out, std::ostream& err);

/// `stopscan calibrate` (sim/cli_calibrate.cpp).
int command_calibrate(const std::vector<std::string>& args, std::ostream& out);

}  // namespace stopscan::cli
