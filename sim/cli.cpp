#include "stopscan/cli.hpp"

#include <unistd.h>
#include <boost/program_options.hpp>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>

#include "stopscan/build_info.hpp"
#include "stopscan/cells.hpp"
#include "stopscan/engine.hpp"
#include "stopscan/error.hpp"
#include "stopscan/run_plan.hpp"
#include "stopscan/scenario.hpp"
#include "stopscan/summary.hpp"
#include "stopscan/writers.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace stopscan {

namespace {

constexpr const char* USAGE =
    R"(stopscan: what on-street police biometric checks do to people, group by group,
and what a firewall between police and the immigration database would change.

Usage:
  stopscan run [SCENARIO.ini] [options]     simulate and write summary.csv, effects.csv,
                                            results.json and manifest.json to --out
  stopscan validate [SCENARIO.ini] [--print-cells]
                                            check a scenario and show its resolved cells
  stopscan --help | <command> --help        this help, or a command's options
  stopscan --version

Without SCENARIO.ini the embedded default scenario is used (England & Wales, one year of
fingerprint scans; see scenarios/default.ini). Exit codes: 0 success, 1 internal failure,
2 bad input. Documentation: README.md, docs/scenario.md, docs/output.md.
)";

// Parses a signed integer strictly ("-5", "10x" and "" are errors), then range-checks it.
std::int64_t parse_integer(const std::string& flag, const std::string& value, std::int64_t lo,
                           std::int64_t hi) {
    std::int64_t v = 0;
    const auto* end = value.data() + value.size();
    const auto r = std::from_chars(value.data(), end, v);
    const std::string allowed =
        "must be a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    const bool too_big = r.ec == std::errc::result_out_of_range && r.ptr == end;
    if (!too_big && (value.empty() || r.ec != std::errc() || r.ptr != end))
        throw InputError("command line", flag, value, "not a whole number: " + allowed);
    if (too_big || v < lo || v > hi)
        throw InputError("command line", flag, value, "out of range: " + allowed);
    return v;
}

std::string join_args(const std::vector<std::string>& args) {
    std::string out;
    for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
    return out;
}

po::variables_map parse(const std::vector<std::string>& args,
                        const po::options_description& options,
                        const po::positional_options_description& positional) {
    po::variables_map vm;
    try {
        // Prefix guessing off: "--rep" must not silently mean "--replications".
        const auto style =
            po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
        po::store(po::command_line_parser(args)
                      .options(options)
                      .positional(positional)
                      .style(style)
                      .run(),
                  vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw InputError("command line", std::string(e.what()) + " (see --help)");
    }
    return vm;
}

struct ScenarioChoice {
    std::shared_ptr<const Scenario> scenario;
    std::string path;
};

ScenarioChoice load(const po::variables_map& vm) {
    ScenarioChoice choice;
    if (vm.count("scenario")) {
        const auto& files = vm["scenario"].as<std::vector<std::string>>();
        if (files.size() > 1)
            throw InputError("command line", "unexpected argument '" + files[1] +
                                                 "': give at most one SCENARIO.ini (see --help)");
        choice.path = files.front();
    }
    Settings settings = choice.path.empty() ? Settings::parse_ini(default_scenario_text(), "")
                                            : Settings::read_ini_file(choice.path);
    if (vm.count("set"))
        for (const auto& assignment : vm["set"].as<std::vector<std::string>>())
            settings.apply_override(assignment);
    choice.scenario = std::make_shared<const Scenario>(load_scenario(settings));
    return choice;
}

po::options_description scenario_options() {
    po::options_description o("Scenario");
    o.add_options()("set", po::value<std::vector<std::string>>()->composing(),
                    "override a scenario key: --set section.key=value (repeatable)");
    return o;
}

// Refuses a non-empty output directory unless --force, before any work is done.
void check_output_directory(const std::string& out, bool force) {
    std::error_code ec;
    const auto status = fs::status(out, ec);
    if (!fs::exists(status)) return;
    if (!fs::is_directory(status))
        throw InputError("command line", "--out", out,
                         "exists and is not a directory: choose a directory path");
    if (!force && !fs::is_empty(out, ec))
        throw InputError("command line", "--out", out,
                         "directory is not empty: add --force to overwrite its outputs, or choose "
                         "another --out");
}

int command_run(const std::vector<std::string>& args, const std::string& command_line,
                std::ostream& out, std::ostream& err) {
    po::options_description options("stopscan run [SCENARIO.ini] [options]");
    options.add_options()("help,h", "show this help")(
        "replications,r", po::value<std::string>(),
        "number of replications (default: run.replications, 200)")(
        "seed", po::value<std::string>(), "random seed (default: run.seed)")(
        "threads", po::value<std::string>(), "worker threads (default: all cores)")(
        "policies", po::value<std::string>(),
        "comma-separated policies (default: dual-search,ident1-only,firewall,custody-verify)")(
        "baseline", po::value<std::string>(),
        "policy the others are compared with (default: dual-search)")(
        "out,o", po::value<std::string>()->default_value("out"), "output directory")(
        "force", "overwrite outputs in a non-empty --out")("quiet,q", "print nothing but errors")(
        "scenario", po::value<std::vector<std::string>>(), "scenario file (positional)");
    options.add(scenario_options());
    po::positional_options_description positional;
    positional.add("scenario", -1);
    const auto vm = parse(args, options, positional);
    if (vm.count("help")) {
        out << "Simulate stops, searches and officer actions under each policy.\n\n"
            << options << '\n';
        return EXIT_OK;
    }

    RunOptions run;
    if (vm.count("replications"))
        run.replications =
            parse_integer("--replications", vm["replications"].as<std::string>(), 1, 1'000'000);
    if (vm.count("seed"))
        run.seed = static_cast<std::uint64_t>(parse_integer(
            "--seed", vm["seed"].as<std::string>(), 0, std::numeric_limits<std::int64_t>::max()));
    if (vm.count("threads"))
        run.threads =
            static_cast<int>(parse_integer("--threads", vm["threads"].as<std::string>(), 1, 1024));
    if (vm.count("policies")) {
        run.policies = split_list(vm["policies"].as<std::string>());
        if (run.policies->empty())
            throw InputError("command line", "--policies", "",
                             "empty list: name at least one policy");
    }
    if (vm.count("baseline")) run.baseline = vm["baseline"].as<std::string>();
    const std::string out_dir = vm["out"].as<std::string>();
    if (out_dir.empty())
        throw InputError("command line", "--out", "", "empty path: name an output directory");
    const bool quiet = vm.count("quiet") > 0;

    const auto choice = load(vm);
    const RunPlan plan = make_run_plan(choice.scenario, run);
    check_output_directory(out_dir, vm.count("force") > 0);
    const Engine engine(plan);

    const bool show_progress = !quiet && &err == &std::cerr && ::isatty(STDERR_FILENO);
    auto last = std::chrono::steady_clock::now();
    ProgressCallback progress;
    if (show_progress)
        progress = [&](std::int64_t done, std::int64_t total) {
            const auto now = std::chrono::steady_clock::now();
            if (done < total && now - last < std::chrono::milliseconds(100)) return;
            last = now;
            err << "\rstopscan: replication " << done << "/" << total << (done == total ? "\n" : "")
                << std::flush;
        };
    const Results results = engine.run(progress);
    const Summary summary = summarize(results);

    std::error_code ec;
    fs::create_directories(out_dir, ec);
    if (ec)
        throw InputError("command line", "--out", out_dir,
                         "cannot create the directory: " + ec.message());
    write_outputs(out_dir, results, summary, {command_line, choice.path});

    if (!quiet) {
        const auto stops = results.total_stops();
        out << "stopscan " << STOPSCAN_VERSION << ": " << plan.scenario->name << "\n"
            << plan.replications << " replications, seed " << plan.seed << ", "
            << results.threads_used << " threads: " << stops << " stops simulated in " << std::fixed
            << std::setprecision(2) << results.wall_seconds << " s (" << std::setprecision(1)
            << (results.wall_seconds > 0 ? static_cast<double>(stops) / results.wall_seconds / 1e6
                                         : 0.0)
            << " million stops/s)\n";
        out.unsetf(std::ios::floatfield);
        print_exposure_table(out, results, summary);
        out << "\nOutputs in " << out_dir
            << "/: summary.csv, effects.csv, results.json, manifest.json"
            << " (how to read them: docs/output.md)\n";
    }
    return EXIT_OK;
}

int command_validate(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description options("stopscan validate [SCENARIO.ini] [options]");
    options.add_options()("help,h", "show this help")("print-cells",
                                                      "print the resolved per-cell table")(
        "scenario", po::value<std::vector<std::string>>(), "scenario file (positional)");
    options.add(scenario_options());
    po::positional_options_description positional;
    positional.add("scenario", -1);
    const auto vm = parse(args, options, positional);
    if (vm.count("help")) {
        out << "Check a scenario file and show what it resolves to.\n\n" << options << '\n';
        return EXIT_OK;
    }
    const auto choice = load(vm);
    const Scenario& s = *choice.scenario;
    const RunPlan plan = make_run_plan(choice.scenario, {});
    const Engine engine(plan);
    const CellTable& cells = engine.cells();
    out << (choice.path.empty() ? "default scenario" : choice.path) << ": valid\n"
        << "  " << s.name << "\n  " << s.dimensions.size() << " dimensions, " << cells.size()
        << " cells, " << s.databases.size() << " databases, " << s.policies.size()
        << " policies defined, " << s.stops_total << " stops expected over " << s.period << "\n";
    if (!vm.count("print-cells")) return EXIT_OK;

    double mass = 0;
    for (std::size_t c = 0; c < cells.size(); ++c)
        mass += static_cast<double>(cells.population(c)) * cells.value(s.propensity, c);
    out << "\ncell,population,share,stop_propensity,expected_stops";
    for (const auto& db : s.databases) out << ",enrolment." << db.name << ",truth." << db.name;
    out << '\n';
    for (std::size_t c = 0; c < cells.size(); ++c) {
        const double expected = mass > 0 ? static_cast<double>(s.stops_total) *
                                               static_cast<double>(cells.population(c)) *
                                               cells.value(s.propensity, c) / mass
                                         : 0.0;
        out << '"' << cells.label(c) << "\"," << cells.population(c) << ','
            << format_value(cells.share(c)) << ',' << format_value(cells.value(s.propensity, c))
            << ',' << format_value(expected);
        for (const auto& db : s.databases)
            out << ',' << format_value(cells.value(db.enrolment, c)) << ','
                << format_value(cells.value(db.truth, c));
        out << '\n';
    }
    return EXIT_OK;
}

int dispatch(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
    if (args.size() < 2) {
        err << USAGE;
        throw InputError("command line",
                         "no command given: commands are run, validate (see stopscan --help)");
    }
    if (args[1] == "--help" || args[1] == "-h" || args[1] == "help") {
        out << USAGE;
        return EXIT_OK;
    }
    if (args[1] == "--version") {
        out << "stopscan " << STOPSCAN_VERSION << " (commit " << STOPSCAN_GIT_COMMIT << ", "
            << STOPSCAN_BUILD_TYPE << " build)\n";
        return EXIT_OK;
    }
    const std::vector<std::string> rest(args.begin() + 2, args.end());
    if (args[1] == "run") return command_run(rest, join_args(args), out, err);
    if (args[1] == "validate") return command_validate(rest, out);
    const auto suggestion = nearest(args[1], {"run", "validate"});
    throw InputError("command line",
                     "unknown command '" + args[1] + "'" +
                         (suggestion ? "; did you mean '" + *suggestion + "'?" : "") +
                         ": commands are run, validate (see stopscan --help)");
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
    try {
        return dispatch(args, out, err);
    } catch (const InputError& e) {
        err << "stopscan: error: " << e.what() << '\n';
        return EXIT_BAD_INPUT;
    } catch (const std::bad_alloc&) {
        err << "stopscan: error: out of memory: use fewer replications, cells or stops\n";
        return EXIT_INTERNAL;
    } catch (const std::exception& e) {
        err << "stopscan: internal error: " << e.what() << '\n';
        return EXIT_INTERNAL;
    }
}

}  // namespace stopscan
