// The `stopscan` command line: usage, dispatch to the subcommands, and the small commands
// validate, det, explain and template. `run` is in sim/cli_run.cpp, `calibrate` in
// sim/cli_calibrate.cpp, `audit` in sim/cli_audit.cpp.
#include "stopscan/cli.hpp"

#include <array>
#include <boost/program_options.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>

#include "cli_support.hpp"
#include "detail/cli_analyze.hpp"
#include "detail/cli_audit.hpp"
#include "detail/cli_sweep.hpp"
#include "stopscan/audit_log.hpp"
#include "stopscan/build_info.hpp"
#include "stopscan/cells.hpp"
#include "stopscan/engine.hpp"
#include "stopscan/error.hpp"
#include "stopscan/expectation.hpp"
#include "stopscan/interrupt.hpp"
#include "stopscan/match_model.hpp"
#include "stopscan/report.hpp"
#include "stopscan/run_plan.hpp"
#include "stopscan/scenario.hpp"
#include "stopscan/summary.hpp"
#include "stopscan/writers.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace stopscan {

using namespace cli;

namespace {

constexpr const char* USAGE =
    R"(stopscan: what on-street police biometric checks do to people, group by group,
and what a firewall between police and the immigration database would change.

Usage:
  stopscan run [SCENARIO.ini] [options]     simulate and write summary.csv, effects.csv,
                                            results.json and manifest.json to --out
  stopscan run ... --expect EXPRESSION | --check DIR [--junit FILE]
                                            also check expectations or compare with a
                                            previous run, for CI (docs/expectations.md)
  stopscan validate [SCENARIO.ini] [--print-cells]
                                            check a scenario and show its resolved cells
  stopscan explain [SCENARIO.ini] [--policies ...]
                                            expected values in closed form, no sampling,
                                            and where wrongful outcomes come from
  stopscan template [SCENARIO.ini] --db DB [--gallery N] [--group-weight W]
                                            search an explicit synthetic gallery (OpenCV)
                                            and compare with the score-level model
  stopscan calibrate [SCENARIO.ini] --counts FILE --population FILE [--out FRAGMENT.ini]
                    [--area NAME] [--uses N --people M]
                                            observed rates and ratios from FOI tables, and
                                            the propensity factors that reproduce them
  stopscan audit verify FILE | audit summarize FILE [--release none|sdc|dp]
                                            check an audit log's hash chain, or compute
                                            the run metrics from a log (docs/audit-log.md)
  stopscan sweep SWEEP.ini --out DIR [--resume] [--shard I/N]
                                            run a scenario at many parameter points (grid,
                                            lhs, morris, sobol) in parallel (docs/sweeps.md)
  stopscan merge DIR... --out DIR           merge the shards of a sweep (docs/cluster.md)
  stopscan analyze DIR [--output EXPR]... [--prim-threshold X]
                                            Morris, Sobol', tornado and PRIM analyses of
                                            a sweep (docs/sensitivity.md)
  stopscan det [SCENARIO.ini] --db DB [--modality fingerprint|face]
                                            FMR, FNMR, FPIR and FNIR per group across
                                            thresholds (CSV), to see how a threshold
                                            choice moves disparity
  stopscan --help | <command> --help        this help, or a command's options
  stopscan --version

Without SCENARIO.ini the embedded default scenario is used (England & Wales, one year of
fingerprint scans; see scenarios/default.ini). Exit codes: 0 success, 1 internal failure,
2 bad input, 3 a check failed (run: an --expect or [expect] expectation, or --check; audit
verify: a broken chain). Documentation: README.md, docs/scenario.md, docs/output.md,
docs/expectations.md.
)";

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
    for (const auto& line : s.solved) out << "  solved: " << line << "\n";
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

// The --db and --modality of `det` and `template`: a database of the scenario and a
// modality it has a matcher for.
std::pair<std::size_t, std::size_t> searched_matcher(const po::variables_map& vm,
                                                     const Scenario& s) {
    std::string names;
    for (const auto& db : s.databases) names += (names.empty() ? "" : ", ") + db.name;
    if (!vm.count("db"))
        throw InputError("command line", "--db", "",
                         "missing: name the database to search (" + names + ")");
    const std::string db_name = vm["db"].as<std::string>();
    const auto d = s.find_database(db_name);
    if (!d)
        throw InputError("command line", "--db", db_name,
                         "not a database of the scenario: allowed: " + names);
    const std::string modality_name = vm["modality"].as<std::string>();
    std::size_t m = 0;
    while (m < MODALITY_COUNT && modality_name != MODALITY_NAMES[m]) ++m;
    if (m == MODALITY_COUNT)
        throw InputError("command line", "--modality", modality_name,
                         "not one of: fingerprint, face");
    if (!s.databases[*d].matchers[m])
        throw InputError(
            "command line", "--modality", modality_name,
            "the scenario has no [matcher." + modality_name + "." + db_name + "] section");
    return {*d, m};
}

// Detection error trade-off by group: the score model's error rates at a range of thresholds
// around the operating one. Group rates average the cells of the group weighted by their
// expected stops, so they describe the people actually searched.
int command_det(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description options("stopscan det [SCENARIO.ini] --db DB [options]");
    options.add_options()("help,h", "show this help")("db", po::value<std::string>(),
                                                      "database to search (required)")(
        "modality", po::value<std::string>()->default_value("fingerprint"), "fingerprint or face")(
        "from", po::value<std::string>(), "lowest threshold (default: operating threshold - 2)")(
        "to", po::value<std::string>(), "highest threshold (default: operating threshold + 2)")(
        "points", po::value<std::string>()->default_value("41"), "number of thresholds")(
        "scenario", po::value<std::vector<std::string>>(), "scenario file (positional)");
    options.add(scenario_options());
    po::positional_options_description positional;
    positional.add("scenario", -1);
    const auto vm = parse(args, options, positional);
    if (vm.count("help")) {
        out << "Print FMR, FNMR, FPIR(N) and FNIR per group across thresholds, as CSV.\n\n"
            << options << '\n';
        return EXIT_OK;
    }
    const auto choice = load(vm);
    const Scenario& s = *choice.scenario;
    const auto [d, m] = searched_matcher(vm, s);
    const std::string modality_name = MODALITY_NAMES[m];
    const std::string db_name = s.databases[d].name;
    const auto points = parse_integer("--points", vm["points"].as<std::string>(), 2, 10000);
    const CellTable cells(s.dimensions, s.population);
    const MatchModel operating(s, cells, m, d);
    auto number = [&](const char* flag, double fallback) {
        if (!vm.count(flag)) return fallback;
        const std::string text = vm[flag].as<std::string>();
        double v = 0;
        const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
        if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size() ||
            !std::isfinite(v) || v < -40 || v > 40)
            throw InputError("command line", std::string("--") + flag, text,
                             "must be a score in [-40, 40]");
        return v;
    };
    const double from = number("from", operating.operating_threshold() - 2);
    const double to = number("to", operating.operating_threshold() + 2);
    if (!(from < to))
        throw InputError("command line", "--from", std::to_string(from), "must be below --to");

    // Weights: expected stops per cell (population × propensity).
    std::vector<double> weight(cells.size());
    for (std::size_t c = 0; c < cells.size(); ++c)
        weight[c] = static_cast<double>(cells.population(c)) * cells.value(s.propensity, c);
    struct Group {
        std::string dimension, category;
        std::vector<std::size_t> cells;
    };
    std::vector<Group> groups{{"all", "all", {}}};
    for (std::size_t c = 0; c < cells.size(); ++c) groups[0].cells.push_back(c);
    for (std::size_t k = 0; k < s.dimensions.size(); ++k)
        for (std::size_t j = 0; j < s.dimensions[k].categories.size(); ++j) {
            Group g{s.dimensions[k].name, s.dimensions[k].categories[j], {}};
            for (std::size_t c = 0; c < cells.size(); ++c)
                if (cells.category(c, k) == j) g.cells.push_back(c);
            groups.push_back(std::move(g));
        }
    double records = 0;
    for (const double r : operating.records()) records += r;

    out << "# stopscan det: " << s.name << "; " << modality_name << " against " << db_name << " ("
        << format_value(records) << " records); operating threshold "
        << format_value(operating.operating_threshold()) << ", threshold in use "
        << format_value(operating.threshold())
        << "; rates before any human review\nthreshold,dimension,category,fmr,fnmr,fpir,fnir\n";
    for (std::int64_t i = 0; i < points; ++i) {
        const double tau =
            from + (to - from) * static_cast<double>(i) / static_cast<double>(points - 1);
        const MatchModel model(s, cells, m, d, tau);
        std::vector<std::array<double, 4>> per_cell(cells.size());
        for (std::size_t c = 0; c < cells.size(); ++c) {
            if (weight[c] <= 0) continue;
            double fmr = 0;  // against a record drawn from the gallery
            for (std::size_t g = 0; g < cells.size(); ++g)
                fmr += model.records()[g] / records * model.fmr(c, g);
            per_cell[c] = {fmr, model.fnmr(c), model.fpir(c), 1 - model.p_mate_returned(c)};
        }
        for (const auto& g : groups) {
            std::array<double, 4> sum{};
            double total = 0;
            for (const auto c : g.cells) {
                for (std::size_t k = 0; k < 4; ++k) sum[k] += weight[c] * per_cell[c][k];
                total += weight[c];
            }
            out << format_value(tau) << ',' << g.dimension << ',' << g.category;
            for (std::size_t k = 0; k < 4; ++k)
                out << ',' << (total > 0 ? format_value(sum[k] / total) : "NA");
            out << '\n';
        }
    }
    return EXIT_OK;
}

// Expected values in closed form (MODEL.md §10), with the decomposition of wrongful
// outcomes by database and cause.
int command_explain(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description options("stopscan explain [SCENARIO.ini] [options]");
    options.add_options()("help,h", "show this help")(
        "policies", po::value<std::string>(),
        "comma-separated policies (default: the scenario's run.policies)")(
        "baseline", po::value<std::string>(), "policy the others are compared with")(
        "max-stops-per-person", po::value<std::string>(),
        "at most N stops per person, as in run (default: no cap)")(
        "out,o", po::value<std::string>()->default_value("out-explain"),
        "directory for explain.csv")("force", "overwrite an existing explain.csv")(
        "quiet,q", "print nothing but errors")("scenario", po::value<std::vector<std::string>>(),
                                               "scenario file (positional)");
    options.add(scenario_options());
    po::positional_options_description positional;
    positional.add("scenario", -1);
    const auto vm = parse(args, options, positional);
    if (vm.count("help")) {
        out << "Expected value of every summary.csv metric in closed form, without sampling.\n\n"
            << options << '\n';
        return EXIT_OK;
    }
    RunOptions run;
    if (vm.count("policies")) {
        run.policies = split_list(vm["policies"].as<std::string>());
        if (run.policies->empty())
            throw InputError("command line", "--policies", "",
                             "empty list: name at least one policy");
    }
    if (vm.count("baseline")) run.baseline = vm["baseline"].as<std::string>();
    if (vm.count("max-stops-per-person"))
        run.max_stops_per_person = parse_integer(
            "--max-stops-per-person", vm["max-stops-per-person"].as<std::string>(), 1, 1'000'000);
    const std::string out_dir = vm["out"].as<std::string>();
    if (out_dir.empty())
        throw InputError("command line", "--out", "", "empty path: name an output directory");
    const auto choice = load(vm);
    const RunPlan plan = make_run_plan(choice.scenario, run);
    const std::string file = out_dir + "/explain.csv";
    std::error_code ec;
    if (fs::exists(out_dir, ec) && !fs::is_directory(out_dir, ec))
        throw InputError("command line", "--out", out_dir,
                         "exists and is not a directory: choose a directory path");
    if (fs::exists(file, ec) && !vm.count("force"))
        throw InputError("command line", "--out", out_dir,
                         "explain.csv exists: add --force to overwrite it");

    const auto start = std::chrono::steady_clock::now();
    const Summary summary = summarize_expected(expected_counts(plan));
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    fs::create_directories(out_dir, ec);
    if (ec)
        throw InputError("command line", "--out", out_dir,
                         "cannot create the directory: " + ec.message());
    write_file_atomically(file, explain_csv(summary));
    if (!vm.count("quiet")) {
        out << "stopscan " << STOPSCAN_VERSION << ": " << plan.scenario->name
            << "\nexpected values computed in " << std::fixed << std::setprecision(1) << ms
            << " ms (closed form, no sampling)\n";
        out.unsetf(std::ios::floatfield);
        print_exposure_table(out, plan, summary);
        print_decomposition(out, plan, summary);
        out << "\nWritten: " << file << " (same keys as summary.csv; docs/output.md)\n";
    }
    return EXIT_OK;
}

// Template mode's validation experiment: an explicit synthetic gallery searched by probes
// of every cell, measured against the score-level model (MODEL.md §5).
int command_template(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description options("stopscan template [SCENARIO.ini] --db DB [options]");
    options.add_options()("help,h", "show this help")("db", po::value<std::string>(),
                                                      "database (required)")(
        "modality", po::value<std::string>()->default_value("fingerprint"), "fingerprint or face")(
        "gallery", po::value<std::string>()->default_value("100000"),
        "records of the scaled gallery")("dim", po::value<std::string>()->default_value("128"),
                                         "template dimension")(
        "group-weight", po::value<std::string>()->default_value("0"),
        "weight of the shared group component, [0, 1)")(
        "probes", po::value<std::string>()->default_value("20000"),
        "probes in total (mated and non-mated)")("int8",
                                                 "store templates as int8 and score in integers")(
        "out,o", po::value<std::string>()->default_value("template.csv"), "CSV file to write")(
        "scenario", po::value<std::vector<std::string>>(), "scenario file (positional)");
    options.add(scenario_options());
    po::positional_options_description positional;
    positional.add("scenario", -1);
    const auto vm = parse(args, options, positional);
    if (vm.count("help")) {
        out << "Search an explicit synthetic gallery and compare its error rates with the "
               "score-level model.\n\n"
            << options << '\n';
        return EXIT_OK;
    }
    const auto choice = load(vm);
    const Scenario& s = *choice.scenario;
    const auto [d, m] = searched_matcher(vm, s);
    const std::string modality_name = MODALITY_NAMES[m];
    TemplateOptions t;
    t.seed = s.run.seed;
    t.gallery_size = parse_integer("--gallery", vm["gallery"].as<std::string>(), 100, 10'000'000);
    t.dim = static_cast<int>(parse_integer("--dim", vm["dim"].as<std::string>(), 4, 4096));
    t.int8 = vm.count("int8") > 0;
    {
        const std::string text = vm["group-weight"].as<std::string>();
        const auto r = std::from_chars(text.data(), text.data() + text.size(), t.group_weight);
        if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size() ||
            !(t.group_weight >= 0 && t.group_weight < 1))
            throw InputError("command line", "--group-weight", text, "must be a number in [0, 1)");
    }
    ProbePlan probes;
    probes.total = parse_integer("--probes", vm["probes"].as<std::string>(), 1, 100'000'000);
    const std::string file = vm["out"].as<std::string>();
    const auto start = std::chrono::steady_clock::now();
    const TemplateExperiment experiment = run_template_experiment(s, m, d, t, probes);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    write_template_experiment_csv(file, experiment);
    out << "stopscan template: " << s.name << "; " << modality_name << " against "
        << s.databases[d].name << ", gallery " << t.gallery_size << " x " << t.dim
        << (t.int8 ? " int8" : " float") << ", group weight " << format_value(t.group_weight)
        << ", " << probes.total << " probes, " << std::fixed << std::setprecision(1) << seconds
        << " s\n";
    out.unsetf(std::ios::floatfield);
    out << "Measured rates next to the score-level model's, for every group: " << file
        << " (docs/template.md)\n";
    return EXIT_OK;
}

int dispatch(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
    if (args.size() < 2) {
        err << USAGE;
        throw InputError("command line",
                         "no command given: commands are run, validate, explain, det, template, "
                         "calibrate, audit (see stopscan --help)");
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
    if (args[1] == "det") return command_det(rest, out);
    if (args[1] == "explain") return command_explain(rest, out);
    if (args[1] == "template") return command_template(rest, out);
    if (args[1] == "calibrate") return command_calibrate(rest, out);
    if (args[1] == "audit") return detail::command_audit(rest, out, err);
    if (args[1] == "sweep") return detail::command_sweep(rest, out, err);
    if (args[1] == "merge") return detail::command_merge(rest, out);
    if (args[1] == "analyze") return detail::command_analyze(rest, out, err);
    const auto suggestion = nearest(args[1], {"run", "validate", "det", "explain", "template",
                                              "calibrate", "audit", "sweep", "merge", "analyze"});
    throw InputError("command line",
                     "unknown command '" + args[1] + "'" +
                         (suggestion ? "; did you mean '" + *suggestion + "'?" : "") +
                         ": commands are run, validate, explain, det, template, calibrate, audit, "
                         "sweep, merge, analyze (see stopscan --help)");
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
    try {
        return dispatch(args, out, err);
    } catch (const InputError& e) {
        err << "stopscan: error: " << e.what() << '\n';
        return EXIT_BAD_INPUT;
    } catch (const Interrupted& e) {
        // Unwinding has removed every temporary file; finished outputs were renamed into
        // place whole, unfinished ones never were.
        err << "stopscan: stopped by " << signal_name(e.signal())
            << ": outputs not yet finished were not written\n";
        return 128 + e.signal();
    } catch (const std::bad_alloc&) {
        err << "stopscan: error: out of memory: use fewer replications, cells or stops\n";
        return EXIT_INTERNAL;
    } catch (const std::exception& e) {
        err << "stopscan: internal error: " << e.what() << '\n';
        return EXIT_INTERNAL;
    }
}

}  // namespace stopscan
