#include "cli_support.hpp"

#include <charconv>
#include <filesystem>

#include "stopscan/error.hpp"

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

po::variables_map parse(const std::vector<std::string>& args,
                        const po::options_description& options,
                        const po::positional_options_description& positional,
                        const std::string& help) {
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
        throw InputError("command line", std::string(e.what()) + " (see " + help + ")");
    }
    return vm;
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
    if (!force && !fs::is_empty(out, ec))
        throw InputError("command line", "--out", out,
                         "directory is not empty: add --force to overwrite its outputs, or choose "
                         "another --out");
}

}  // namespace stopscan::cli
