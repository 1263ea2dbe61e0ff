// `stopscan calibrate`: observed rates and ratios from FOI tables, and the scenario fragment of
// propensity factors (and dispersion) that reproduces them (docs/calibrate.md).

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <map>
#include <sstream>

#include "cli_support.hpp"
#include "stopscan/calibrate.hpp"
#include "stopscan/cells.hpp"
#include "stopscan/cli.hpp"
#include "stopscan/error.hpp"
#include "stopscan/foi_table.hpp"
#include "stopscan/writers.hpp"

namespace fs = std::filesystem;

namespace stopscan::cli {

namespace {

std::string significant(double v, int digits) {
    if (std::isinf(v)) return "inf";
    char buffer[40];
    std::snprintf(buffer, sizeof buffer, "%.*g", digits, v);
    return buffer;
}

// Refuses to overwrite a file unless --force, and a directory always.
void check_output_file(const std::string& flag, const std::string& path, bool force) {
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (!fs::exists(status)) return;
    if (fs::is_directory(status))
        throw InputError("command line", flag, path, "is a directory: give a file path");
    if (!force)
        throw InputError("command line", flag, path,
                         "file exists: add --force to overwrite it, or choose another path");
}

std::string today_utc() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buffer[16];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%d", &tm);
    return buffer;
}

}  // namespace

int command_calibrate(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description options(
        "stopscan calibrate [SCENARIO.ini] --counts FILE --population FILE [options]");
    // Suppression options are read as text so that "-5" is refused, not wrapped.
    options.add_options()("help,h", "show this help")(
        "counts", po::value<std::string>(), "FOI counts CSV (area,dimension,category,count)")(
        "population", po::value<std::string>(),
        "residents CSV with the same keys (area,dimension,category,population)")(
        "area", po::value<std::string>(),
        "fit the ratios of this area (default: all areas pooled, or the only area)")(
        "out,o", po::value<std::string>(), "write the scenario fragment here (default: print it)")(
        "rates-csv", po::value<std::string>(), "also write the observed rates table as CSV")(
        "force", "overwrite existing --out / --rates-csv files")(
        "suppressed-below", po::value<std::string>()->default_value("5"),
        "a suppressed cell ('<5', '*', ...) is a count below this")(
        "suppressed-min", po::value<std::string>()->default_value("0"),
        "smallest count a suppressed cell may hide (1 if the force suppresses only 1-4)")(
        "uses", po::value<std::string>(),
        "observed uses (scans), to fit the repeat-stop dispersion")(
        "people", po::value<std::string>(), "observed distinct people scanned, with --uses")(
        "scenario", po::value<std::vector<std::string>>(), "scenario file (positional)");
    options.add(scenario_options());
    po::positional_options_description positional;
    positional.add("scenario", -1);
    const auto vm = parse(args, options, positional);
    if (vm.count("help")) {
        out << "Observed stop rates and ratios from FOI tables, and the scenario fragment of stop\n"
               "propensity factors that reproduces them (docs/calibrate.md).\n\n"
            << options << '\n';
        return EXIT_OK;
    }
    const bool have_tables = vm.count("counts") || vm.count("population");
    if (have_tables && !(vm.count("counts") && vm.count("population")))
        throw InputError("command line", vm.count("counts") ? "--population" : "--counts", "",
                         "missing: --counts and --population are given together");
    if (vm.count("uses") != vm.count("people"))
        throw InputError("command line", vm.count("uses") ? "--people" : "--uses", "",
                         "missing: --uses and --people are given together");
    if (!have_tables && !vm.count("uses"))
        throw InputError("command line",
                         "nothing to calibrate: give --counts FILE --population FILE, and/or "
                         "--uses N --people M (see --help)");
    const bool force = vm.count("force") > 0;
    if (vm.count("out")) check_output_file("--out", vm["out"].as<std::string>(), force);
    if (vm.count("rates-csv"))
        check_output_file("--rates-csv", vm["rates-csv"].as<std::string>(), force);

    const auto choice = load(vm);
    const Scenario& s = *choice.scenario;
    const CellTable cells(s.dimensions, s.population);
    const std::string scenario_name = choice.path.empty() ? "default scenario" : choice.path;

    std::ostringstream provenance;
    provenance << "scenario: " << scenario_name << "\n";
    FitResult fit;
    fit.propensity = s.propensity;
    bool fitted = false;
    if (have_tables) {
        SuppressionOptions suppression;
        suppression.threshold = parse_integer(
            "--suppressed-below", vm["suppressed-below"].as<std::string>(), 1, 1'000'000);
        suppression.min_suppressed =
            parse_integer("--suppressed-min", vm["suppressed-min"].as<std::string>(), 0,
                          suppression.threshold - 1);
        const std::string counts_path = vm["counts"].as<std::string>();
        const std::string population_path = vm["population"].as<std::string>();
        const CountTable counts = read_count_table(counts_path, suppression);
        const PopulationTable population = read_population_table(population_path);
        check_margins(counts);
        std::map<std::string, std::string> references;
        for (const auto& dim : s.dimensions) references[dim.name] = dim.categories[dim.reference];
        const auto rates = observed_rates(counts, population, references);
        out << "Observed rates (per 1,000 residents, exact Poisson 95 % intervals) and rate "
               "ratios\n"
               "against the reference category (Katz log 95 % intervals):\n\n"
            << format_rates_table(rates) << '\n';
        if (vm.count("rates-csv"))
            write_file_atomically(vm["rates-csv"].as<std::string>(), rates_csv(rates));

        const std::string area = vm.count("area") ? vm["area"].as<std::string>() : "";
        const auto targets = targets_from_rates(rates, s.dimensions, area, counts_path);
        fit = fit_propensity(s.dimensions, cells, s.propensity, targets);
        fitted = true;
        out << "Fit of stop propensity factors over the " << cells.size() << " cells of "
            << scenario_name << ": " << fit.iterations
            << (fit.iterations == 1 ? " iteration" : " iterations")
            << ", largest relative residual " << significant(fit.max_residual, 3) << " (tolerance "
            << significant(fit.tolerance, 3) << ")\n\n";
        out << std::left << std::setw(14) << "dimension" << std::setw(22) << "category"
            << std::right << std::setw(12) << "target" << std::setw(12) << "fitted" << std::setw(14)
            << "residual" << std::setw(12) << "factor" << '\n';
        for (const auto& r : fit.residuals) {
            std::size_t d = 0;
            while (s.dimensions[d].name != r.dimension) ++d;
            const auto& cats = s.dimensions[d].categories;
            const auto k = static_cast<std::size_t>(
                std::find(cats.begin(), cats.end(), r.category) - cats.begin());
            out << std::left << std::setw(14) << r.dimension << std::setw(22) << r.category
                << std::right << std::setw(12) << significant(r.target, 6) << std::setw(12)
                << significant(r.fitted, 6) << std::setw(14) << significant(r.relative, 3)
                << std::setw(12) << significant(fit.propensity.factors[d][k], 6) << '\n';
        }
        out << '\n';
        provenance << "counts: " << counts_path << "\npopulation: " << population_path << "\n"
                   << (area.empty() ? "" : "area: " + area + "\n");
    }
    provenance << "date: " << today_utc();

    std::string fragment;
    if (fitted) {
        fragment = propensity_fragment(s.dimensions, fit, provenance.str());
    } else {
        fragment = "# Repeat-stop dispersion fitted by `stopscan calibrate`.\n";
        std::istringstream lines(provenance.str());
        for (std::string line; std::getline(lines, line);) fragment += "# " + line + "\n";
        fragment += "[stops]\n";
    }
    if (vm.count("uses")) {
        const auto uses = parse_integer("--uses", vm["uses"].as<std::string>(), 1,
                                        std::numeric_limits<std::int64_t>::max());
        const auto people = parse_integer("--people", vm["people"].as<std::string>(), 1,
                                          std::numeric_limits<std::int64_t>::max());
        if (people > uses)
            throw InputError("command line", "--people", std::to_string(people),
                             "more people than uses (" + std::to_string(uses) +
                                 "): each person scanned is at least one use");
        std::vector<double> population(cells.size());
        for (std::size_t c = 0; c < cells.size(); ++c)
            population[c] = static_cast<double>(cells.population(c));
        const double ratio = static_cast<double>(uses) / static_cast<double>(people);
        const double k = fit_dispersion(stop_means_by_cell(cells, fit.propensity, s.stops_total),
                                        population, ratio, "--uses");
        out << "Dispersion of repeat stops: " << uses << " uses on " << people << " people ("
            << significant(ratio, 6) << " per person) with " << s.stops_total
            << " stops over the scenario's cells gives stops.dispersion = " << significant(k, 6)
            << (std::isinf(k) ? " (Poisson)" : "") << "\n\n";
        fragment += "# Dispersion: " + std::to_string(uses) + " uses on " + std::to_string(people) +
                    " people at stops.total = " + std::to_string(s.stops_total) +
                    " (refit if the volume changes, or use stops.target_stops_per_person).\n"
                    "dispersion = " +
                    significant(k, 6) + "\n";
    }

    if (vm.count("out")) {
        const std::string path = vm["out"].as<std::string>();
        write_file_atomically(path, fragment);
        out << "Wrote " << path << ": add `include = " << fs::path(path).filename().string()
            << "` at the top of a scenario that does not set these keys itself.\n";
    } else {
        out << "Scenario fragment (save it with --out FILE and `include` it):\n\n" << fragment;
    }
    return EXIT_OK;
}

}  // namespace stopscan::cli
