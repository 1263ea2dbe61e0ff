#include "cli_support.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <sstream>
#include <vector>

#include "stopscan/error.hpp"
#include "stopscan/resources.hpp"

namespace fs = std::filesystem;

namespace stopscan::cli {

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

namespace {

po::variables_map parse_once(const std::vector<std::string>& args,
                             const po::options_description& options,
                             const po::positional_options_description& positional) {
    po::variables_map vm;
    // Prefix guessing off: "--rep" must not silently mean "--replications".
    const auto style =
        po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    po::store(
        po::command_line_parser(args).options(options).positional(positional).style(style).run(),
        vm);
    po::notify(vm);
    return vm;
}

// Stands in for '%' while an error message is made (below); a control character, so that no
// option name or placeholder contains it.
constexpr char PERCENT_STAND_IN = '\x1f';

}  // namespace

po::variables_map parse(const std::vector<std::string>& args,
                        const po::options_description& options,
                        const po::positional_options_description& positional,
                        const std::string& help) {
    try {
        return parse_once(args, options, positional);
    } catch (const po::error& e) {
        const bool has_percent = std::any_of(args.begin(), args.end(), [](const std::string& a) {
            return a.find('%') != std::string::npos;
        });
        if (!has_percent)
            throw InputError("command line", std::string(e.what()) + " (see " + help + ")");
    }
    // Boost 1.74 fills its messages' placeholders (%option%, %original_token%, ...) with the
    // user's own text, and never stops when that text holds the placeholder itself
    // ("--x%original_token%" hung `stopscan`; found by fuzz_cli). The message is therefore
    // made from the same arguments with every '%' swapped out, which parse and fail alike,
    // and the '%' are put back into the message.
    std::vector<std::string> masked = args;
    for (auto& a : masked) std::replace(a.begin(), a.end(), '%', PERCENT_STAND_IN);
    std::string message = "the arguments could not be read";
    try {
        (void)parse_once(masked, options, positional);
    } catch (const po::error& e) {
        message = e.what();
        std::replace(message.begin(), message.end(), PERCENT_STAND_IN, '%');
    }
    throw InputError("command line", message + " (see " + help + ")");
}

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

void check_output_directory(const std::string& out, bool force) {
    std::error_code ec;
    const auto status = fs::status(out, ec);
    if (!fs::exists(status)) return;
    if (!fs::is_directory(status))
        throw InputError("command line", "--out", out,
                         "exists and is not a directory: choose a directory path");
    // Temporaries a killed run left behind (`.NAME.tmp`, see temporary_path) are not outputs:
    // they do not make the directory non-empty, and they are removed before this run writes.
    std::vector<fs::path> stale;
    bool has_outputs = false;
    for (const auto& entry : fs::directory_iterator(out, ec)) {
        const std::string name = entry.path().filename().string();
        const bool temporary = name.size() > 5 && name.front() == '.' &&
                               name.compare(name.size() - 4, 4, ".tmp") == 0 &&
                               entry.is_regular_file(ec);
        if (temporary)
            stale.push_back(entry.path());
        else
            has_outputs = true;
    }
    if (!force && has_outputs)
        throw InputError("command line", "--out", out,
                         "directory is not empty: add --force to overwrite its outputs, or choose "
                         "another --out");
    for (const auto& path : stale) fs::remove(path, ec);
}

void check_run_fits(const Engine& engine, const RunPlan& plan, std::int64_t max_replications,
                    const std::string& flag, const std::string& value, bool force, bool quiet,
                    std::ostream& err) {
    const RunFootprint need = estimate_footprint(engine, plan, max_replications);
    const auto available = available_memory_bytes();
    if (available && need.bytes > *available && !force) {
        const std::uint64_t fixed =
            need.bytes - need.bytes_per_replication * static_cast<std::uint64_t>(max_replications);
        const std::uint64_t fit =
            *available > fixed ? (*available - fixed) / need.bytes_per_replication : 0;
        throw InputError("command line", flag, value,
                         "the run would need about " + format_bytes(need.bytes) + " of memory (" +
                             format_bytes(need.bytes_per_replication) + " per replication) but " +
                             format_bytes(*available) + " is available: use at most " +
                             std::to_string(fit) +
                             " replications, fewer cells or policies, or add --force to try "
                             "anyway");
    }
    if (!quiet && need.expected_stops >= 1e9) {
        std::ostringstream note;
        note.precision(3);
        note << "stopscan: a large run: about " << need.expected_stops / 1e9
             << " billion stops and " << format_bytes(need.bytes) << " of memory\n";
        err << note.str();
    }
}

}  // namespace stopscan::cli
