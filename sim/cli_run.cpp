// `stopscan run`: read and check every flag before any work, run the simulation (in batches
// with --precision), write the outputs (docs/output.md), print the readable summary, and
// judge the expectations and --check (docs/expectations.md): exit 3 when one failed.

#include <unistd.h>
#include <algorithm>
#include <array>
#include <boost/program_options.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>

#include "cli_support.hpp"
#include "stopscan/audit_log.hpp"
#include "stopscan/build_info.hpp"
#include "stopscan/cli.hpp"
#include "stopscan/disclosure.hpp"
#include "stopscan/engine.hpp"
#include "stopscan/error.hpp"
#include "stopscan/expectation.hpp"
#include "stopscan/expectations.hpp"
#include "stopscan/report.hpp"
#include "stopscan/run_check.hpp"
#include "stopscan/run_plan.hpp"
#include "stopscan/scenario.hpp"
#include "stopscan/summary.hpp"
#include "stopscan/writers.hpp"

namespace fs = std::filesystem;

namespace stopscan::cli {

namespace {

// "LOW,HIGH" with 0 <= LOW <= 1 <= HIGH.
std::pair<double, double> parse_band(const std::string& text) {
    const auto items = split_list(text);
    std::array<double, 2> v{};
    bool ok = items.size() == 2;
    for (std::size_t i = 0; ok && i < 2; ++i) {
        const auto r = std::from_chars(items[i].data(), items[i].data() + items[i].size(), v[i]);
        ok = !items[i].empty() && r.ec == std::errc() &&
             r.ptr == items[i].data() + items[i].size() && std::isfinite(v[i]);
    }
    if (!ok || v[0] < 0 || v[0] > 1 || v[1] < 1)
        throw InputError("command line", "--band", text,
                         "give LOW,HIGH with 0 <= LOW <= 1 <= HIGH, e.g. 0.8,1.25");
    return {v[0], v[1]};
}

// --matcher, --gallery and --group-weight.
void read_template_options(const po::variables_map& vm, RunOptions& run) {
    const std::string matcher = vm["matcher"].as<std::string>();
    if (matcher != "score" && matcher != "template")
        throw InputError("command line", "--matcher", matcher, "not one of: score, template");
    run.template_matcher = matcher == "template";
    for (const char* flag : {"gallery", "group-weight"})
        if (vm.count(flag) && !run.template_matcher)
            throw InputError("command line", std::string("--") + flag, vm[flag].as<std::string>(),
                             "only used with --matcher template");
    if (vm.count("gallery"))
        run.template_options.gallery_size =
            parse_integer("--gallery", vm["gallery"].as<std::string>(), 100, 10'000'000);
    if (vm.count("group-weight")) {
        const std::string text = vm["group-weight"].as<std::string>();
        double w = 0;
        const auto r = std::from_chars(text.data(), text.data() + text.size(), w);
        if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size() ||
            !(w >= 0 && w < 1))
            throw InputError("command line", "--group-weight", text, "must be a number in [0, 1)");
        run.template_options.group_weight = w;
    }
}

// --rare-events none | is | is:FACTOR (docs/model.md, "Rare events").
RareEvents parse_rare_events(const std::string& text) {
    RareEvents rare;
    if (text == "none") return rare;
    const std::string prefix = "is:";
    double factor = rare.factor;
    bool ok = text == "is";
    if (!ok && text.rfind(prefix, 0) == 0) {
        const char* first = text.data() + prefix.size();
        const char* last = text.data() + text.size();
        const auto r = std::from_chars(first, last, factor);
        ok = first != last && r.ec == std::errc() && r.ptr == last && factor >= 1 && factor <= 1e12;
    }
    if (!ok)
        throw InputError("command line", "--rare-events", text,
                         "give none, is or is:FACTOR with FACTOR from 1 to 1e12, e.g. is:1000");
    rare.method = RareEvents::Method::importance;
    rare.factor = factor;
    return rare;
}

po::options_description run_options() {
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
        "band", po::value<std::string>(),
        "tolerance band for rate ratios, LOW,HIGH (default: run.band, 0.8,1.25)")(
        "out,o", po::value<std::string>()->default_value("out"), "output directory")(
        "precision", po::value<std::string>(),
        "METRIC=TARGET: add batches of replications until every group's 95% interval of METRIC "
        "is at most TARGET (e.g. 0.05) of its estimate on either side")(
        "max-replications", po::value<std::string>(),
        "upper limit with --precision (default 20 x --replications)")(
        "force", "overwrite outputs in a non-empty --out")("quiet,q", "print nothing but errors")(
        "png", "also draw the report's charts as PNG images, DIR/chart-NAME.png")(
        "matcher", po::value<std::string>()->default_value("score"),
        "score (the score-level model) or template (explicit synthetic galleries; slow)")(
        "gallery", po::value<std::string>(),
        "template mode: records per scaled gallery (default 100000)")(
        "group-weight", po::value<std::string>(),
        "template mode: weight of the shared group component, [0, 1)")(
        "max-stops-per-person", po::value<std::string>(),
        "simulate at most N stops per person (default: no cap; required with --release dp); "
        "changes the simulated counts")(
        "rare-events", po::value<std::string>()->default_value("none"),
        "none, or is[:FACTOR]: importance sampling of false matches, each search's FPIR p "
        "tilted to min(FACTOR x p, 0.01) (default FACTOR 1000) and weighted back "
        "(docs/model.md, Rare events)")("scenario", po::value<std::vector<std::string>>(),
                                        "scenario file (positional)");
    po::options_description audit_options("Audit trail (docs/audit-log.md)");
    audit_options.add_options()(
        "audit-log", po::value<std::string>(),
        "also write one JSON Lines record per database lookup to FILE, people named by a keyed "
        "pseudonym, hash-chained (needs --audit-key-file; slow for big runs)")(
        "audit-key-file", po::value<std::string>(),
        "key of the pseudonyms: a file of at least 32 bytes, mode 600; never written anywhere");
    po::options_description release_options("Disclosure control (docs/disclosure.md)");
    release_options.add_options()(
        "release", po::value<std::string>()->default_value("none"),
        "none, sdc or dp: also write release.csv, the count tables with disclosure control")(
        "k", po::value<std::string>(), "sdc: suppress values below k (default 10)")(
        "round", po::value<std::string>(), "sdc: round released values to this base")(
        "suppress-zeros", "sdc: suppress zero cells too")(
        "epsilon", po::value<std::string>(),
        "dp: epsilon per table (default: --epsilon-total divided evenly among the tables)")(
        "epsilon-total", po::value<std::string>(), "dp: total privacy budget (default 1)");
    po::options_description check_options("Checks for CI (docs/expectations.md)");
    check_options.add_options()(
        "expect", po::value<std::vector<std::string>>()->composing(),
        "fail (exit 3) unless EXPRESSION holds over the confidence intervals, e.g. "
        "'firewall.wrongful_outcomes.all < dual-search.wrongful_outcomes.all' (repeatable; quote "
        "it; the scenario's [expect] section is checked too)")(
        "check", po::value<std::string>(),
        "compare with a previous run (its --out DIR, or its summary.csv) and fail (exit 3) if a "
        "result moved by more than Monte Carlo noise explains")(
        "junit", po::value<std::string>(),
        "also write the expectations and --check as JUnit XML to FILE, one test case each");
    options.add(release_options);
    options.add(audit_options);
    options.add(check_options);
    options.add(scenario_options());
    return options;
}

// The audit trail requested with --audit-log and --audit-key-file.
struct AuditRequest {
    std::string path;             ///< "" without --audit-log
    std::optional<AuditKey> key;  ///< read and checked before any work, never written
};

// A --precision target and its replication limit.
struct PrecisionTarget {
    std::string metric;
    double target = 0;
    std::int64_t max_replications = 0;
};

// Every flag of `stopscan run`, read and checked before any work is done.
struct RunRequest {
    RunOptions run;
    std::string out_dir;
    bool quiet = false;
    bool force = false;
    bool png = false;
    ReleaseOptions release;
    AuditRequest audit;
};

// --replications, --seed, --threads, --policies, --baseline, --band and the template options.
RunOptions read_run_options(const po::variables_map& vm) {
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
    if (vm.count("band")) run.band = parse_band(vm["band"].as<std::string>());
    read_template_options(vm, run);
    run.rare_events = parse_rare_events(vm["rare-events"].as<std::string>());
    return run;
}

// --release and its parameters, and --max-stops-per-person (which dp needs, and which the
// run uses too).
ReleaseOptions read_release_options(const po::variables_map& vm, RunOptions& run) {
    ReleaseOptions release;
    release.mode = parse_release_mode("command line", "--release", vm["release"].as<std::string>());
    for (const char* flag : {"k", "round", "suppress-zeros", "epsilon", "epsilon-total"}) {
        const bool sdc_flag = std::string(flag) == "k" || std::string(flag) == "round" ||
                              std::string(flag) == "suppress-zeros";
        const ReleaseMode needed = sdc_flag ? ReleaseMode::sdc : ReleaseMode::dp;
        if (vm.count(flag) && release.mode != needed)
            throw InputError("command line", std::string("--") + flag, "",
                             std::string("only used with --release ") + release_mode_name(needed));
    }
    if (vm.count("k"))
        release.sdc.k =
            static_cast<double>(parse_integer("--k", vm["k"].as<std::string>(), 1, 1'000'000));
    if (vm.count("round"))
        release.sdc.round_base =
            parse_integer("--round", vm["round"].as<std::string>(), 1, 1'000'000);
    release.sdc.suppress_zeros = vm.count("suppress-zeros") > 0;
    if (vm.count("epsilon"))
        release.epsilon =
            Epsilon::parse("command line", "--epsilon", vm["epsilon"].as<std::string>());
    if (vm.count("epsilon-total"))
        release.epsilon_total = Epsilon::parse("command line", "--epsilon-total",
                                               vm["epsilon-total"].as<std::string>());
    if (vm.count("max-stops-per-person"))
        run.max_stops_per_person = parse_integer(
            "--max-stops-per-person", vm["max-stops-per-person"].as<std::string>(), 1, 1'000'000);
    // dp bounds each person's contribution by the cap the engine enforces
    // (docs/disclosure.md). No default: a cap changes the simulated counts, so it is chosen
    // explicitly. Refused before any work.
    if (release.mode == ReleaseMode::dp && run.max_stops_per_person == 0)
        throw InputError("command line", "--release", "dp",
                         "needs a cap on stops per person: add --max-stops-per-person N (e.g. "
                         "5; docs/disclosure.md)");
    release.max_stops_per_person = run.max_stops_per_person;
    return release;
}

// --audit-log and --audit-key-file: the key is read and checked before any work, and never
// written.
AuditRequest read_audit_options(const po::variables_map& vm, const std::string& out_dir) {
    AuditRequest audit;
    if (vm.count("audit-log") != vm.count("audit-key-file"))
        throw InputError("command line", vm.count("audit-log") ? "--audit-key-file" : "--audit-log",
                         "",
                         vm.count("audit-log")
                             ? "missing: --audit-log needs the key of the pseudonyms, a file of "
                               "at least 32 bytes with mode 600"
                             : "missing: --audit-key-file is only used with --audit-log FILE");
    if (!vm.count("audit-log")) return audit;
    audit.path = vm["audit-log"].as<std::string>();
    if (audit.path.empty() || audit.path.back() == '/')
        throw InputError("command line", "--audit-log", audit.path,
                         "not a file name: name the log file, e.g. audit.jsonl");
    std::error_code exists_ec;
    if (fs::exists(audit.path, exists_ec) && !vm.count("force"))
        throw InputError("command line", "--audit-log", audit.path,
                         "exists: add --force to overwrite it, or choose another file");
    // Its directory must exist, unless it is --out, which the run creates.
    const fs::path parent = fs::path(audit.path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, exists_ec) &&
        fs::weakly_canonical(parent, exists_ec) != fs::weakly_canonical(out_dir, exists_ec))
        throw InputError("command line", "--audit-log", audit.path,
                         "its directory does not exist: create it, or write the log into "
                         "--out");
    const std::string key_path = vm["audit-key-file"].as<std::string>();
    try {
        audit.key = AuditKey::from_file(key_path);
    } catch (const InputError& e) {
        // The same problem, named by the flag: "KEY: problem" becomes "--audit-key-file =
        // KEY: problem".
        const std::string what = e.what();
        const std::string prefix = e.source() + ": ";
        throw InputError("command line", "--audit-key-file", key_path,
                         what.rfind(prefix, 0) == 0 ? what.substr(prefix.size()) : what);
    }
    return audit;
}

// The flags read before the scenario is loaded, in the order their errors are reported.
RunRequest read_request(const po::variables_map& vm) {
    RunRequest request;
    request.run = read_run_options(vm);
    request.out_dir = vm["out"].as<std::string>();
    if (request.out_dir.empty())
        throw InputError("command line", "--out", "", "empty path: name an output directory");
    request.quiet = vm.count("quiet") > 0;
    request.force = vm.count("force") > 0;
    request.png = vm.count("png") > 0;
    request.release = read_release_options(vm, request.run);
    request.audit = read_audit_options(vm, request.out_dir);
    // Importance sampling weights counts that the log and the released tables hold as whole
    // events of one simulated world.
    if (request.run.rare_events.active() && !request.audit.path.empty())
        throw InputError("command line", "--rare-events", vm["rare-events"].as<std::string>(),
                         "not available with --audit-log: the log records one simulated world");
    if (request.run.rare_events.active() && request.release.mode != ReleaseMode::none)
        throw InputError("command line", "--rare-events", vm["rare-events"].as<std::string>(),
                         "not available with --release: released tables are whole counts");
    return request;
}

// --precision METRIC=TARGET and --max-replications (default 20 x the plan's replications).
std::optional<PrecisionTarget> read_precision(const po::variables_map& vm, const RunPlan& plan) {
    std::optional<PrecisionTarget> precision;
    if (vm.count("precision")) {
        const std::string text = vm["precision"].as<std::string>();
        const auto eq = text.find('=');
        const std::string metric = text.substr(0, eq);
        double target = 0;
        const std::string value = eq == std::string::npos ? "" : text.substr(eq + 1);
        const auto r = std::from_chars(value.data(), value.data() + value.size(), target);
        if (eq == std::string::npos || metric.empty() || value.empty() || r.ec != std::errc() ||
            r.ptr != value.data() + value.size() || !(target > 0 && target < 1))
            throw InputError(
                "command line", "--precision", text,
                "give METRIC=TARGET with TARGET in (0, 1), e.g. exposure_per_100k=0.05");
        precision = PrecisionTarget{metric, target, plan.replications * 20};
    }
    if (vm.count("max-replications")) {
        if (!precision)
            throw InputError("command line", "--max-replications",
                             vm["max-replications"].as<std::string>(),
                             "only used with --precision: give --precision too");
        precision->max_replications =
            parse_integer("--max-replications", vm["max-replications"].as<std::string>(),
                          plan.replications, 10'000'000);
    }
    return precision;
}

// Opens the audit log into `audit` (creating --out first, so that the log may be written
// inside it). The writer can be neither copied nor moved, hence the out-parameter.
void open_audit_log(AuditRequest& request, const RunPlan& plan, const ScenarioChoice& choice,
                    const std::string& out_dir, std::optional<AuditLogWriter>& audit) {
    if (!request.key) return;
    std::error_code dir_ec;
    fs::create_directories(out_dir, dir_ec);
    std::vector<std::string> dimensions;
    for (const auto& dim : plan.scenario->dimensions) dimensions.push_back(dim.name);
    audit.emplace(request.path, std::move(*request.key),
                  AuditLogHeader{
                      dimensions,
                      std::string("stopscan ") + STOPSCAN_VERSION + " run " +
                          (choice.path.empty() ? std::string("(default scenario)") : choice.path)});
    request.key.reset();
}

// Replication progress on an interactive terminal, at most every 100 ms.
ProgressCallback progress_printer(bool quiet, std::ostream& err) {
    const bool show_progress = !quiet && &err == &std::cerr && ::isatty(STDERR_FILENO);
    if (!show_progress) return {};
    return [&err, last = std::chrono::steady_clock::now()](std::int64_t done,
                                                           std::int64_t total) mutable {
        const auto now = std::chrono::steady_clock::now();
        if (done < total && now - last < std::chrono::milliseconds(100)) return;
        last = now;
        err << "\rstopscan: replication " << done << "/" << total << (done == total ? "\n" : "")
            << std::flush;
    };
}

// With --precision: batches of the initial size, like OpenMC's tally triggers, until the
// target holds or the limit is reached. Records the outcome in the manifest's "precision"
// object (and a warning when the target is not met).
void run_to_precision(const Engine& engine, const PrecisionTarget& precision,
                      std::int64_t batch_size, bool quiet, const ProgressCallback& progress,
                      AuditLogWriter* audit, Results& results, Summary& summary,
                      Provenance& provenance, std::ostream& err) {
    const auto& [metric, target, max_replications] = precision;
    if (summary.rows.end() ==
        std::find_if(summary.rows.begin(), summary.rows.end(),
                     [&metric = metric](const SummaryRow& row) { return row.metric == metric; }))
        throw InputError(
            "command line", "--precision", metric,
            "not a metric of summary.csv (see docs/output.md), e.g. exposure_per_100k");
    PrecisionCheck check = check_precision(summary, metric, target);
    while (!check.met && results.plan.replications < max_replications) {
        const auto batch = std::min(batch_size, max_replications - results.plan.replications);
        if (!quiet)
            err << "stopscan: " << metric << " relative half-width " << check.worst << " at "
                << check.worst_row << " > " << target << ": " << batch << " more replications\n";
        engine.extend(results, batch, progress, audit);
        summary = summarize(results);
        check = check_precision(summary, metric, target);
    }
    std::ostringstream json;
    json << "{\"metric\": \"" << metric << "\", \"target\": " << format_value(target)
         << ", \"met\": " << (check.met ? "true" : "false")
         << ", \"worst\": " << (std::isfinite(check.worst) ? format_value(check.worst) : "null")
         << ", \"replications\": " << results.plan.replications
         << ", \"max_replications\": " << max_replications
         << ", \"rows_checked\": " << check.checked
         << ", \"rows_with_zero_estimate\": " << check.excluded << "}";
    provenance.precision_json = json.str();
    if (!check.met) {
        provenance.warnings.push_back(
            "precision target " + metric + "=" + format_value(target) + " not met after " +
            std::to_string(results.plan.replications) + " replications (worst " +
            format_value(check.worst) + " at " + check.worst_row + ")");
        err << "stopscan: warning: " << provenance.warnings.back() << '\n';
    }
}

// Writes every output file into --out (created here if need be): the CSVs and JSON files,
// release.csv with --release, report.html, and the PNG charts with --png. Returns the
// release, if any, for the printed summary.
std::optional<Release> write_run_outputs(const RunRequest& request, const Results& results,
                                         const Summary& summary, Provenance& provenance) {
    const std::string& out_dir = request.out_dir;
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    if (ec)
        throw InputError("command line", "--out", out_dir,
                         "cannot create the directory: " + ec.message());
    std::optional<Release> released;
    if (request.release.mode != ReleaseMode::none) {
        CryptoRandomBits bits;
        released = release_run_tables(results, request.release, bits);
        provenance.release_json = released->manifest_json;
    }
    write_outputs(out_dir, results, summary, provenance);
    if (released)
        write_file_atomically(out_dir + "/release.csv",
                              release_csv(released->tables, request.release.mode));
    write_file_atomically(out_dir + "/report.html",
                          report_html(results, summary, manifest_json(results, provenance),
                                      released ? &*released : nullptr));
    if (request.png) write_png_charts(out_dir, results, summary);
    return released;
}

// The readable summary on standard output: speed, the exposure table, where the outputs are.
void print_run_summary(std::ostream& out, const RunRequest& request, const RunPlan& plan,
                       const Results& results, const Summary& summary, bool released,
                       const AuditLogWriter* audit) {
    const auto stops = results.total_stops();
    out << "stopscan " << STOPSCAN_VERSION << ": " << plan.scenario->name << "\n"
        << plan.replications << " replications, seed " << plan.seed << ", " << results.threads_used
        << " threads: " << stops << " stops simulated in " << std::fixed << std::setprecision(2)
        << results.wall_seconds << " s (" << std::setprecision(1)
        << (results.wall_seconds > 0 ? static_cast<double>(stops) / results.wall_seconds / 1e6
                                     : 0.0)
        << " million stops/s)\n";
    out.unsetf(std::ios::floatfield);
    print_exposure_table(out, plan, summary);
    out << "\nOutputs in " << request.out_dir
        << "/: report.html, summary.csv, effects.csv, results.json, manifest.json"
        << (released ? ", release.csv (" + std::string(release_mode_name(request.release.mode)) +
                           ": docs/disclosure.md)"
                     : std::string())
        << " (how to read them: docs/output.md)\n";
    if (audit)
        out << "Audit log: " << request.audit.path << " (" << audit->records()
            << " lookups; check it with stopscan audit verify " << request.audit.path
            << " --manifest " << request.out_dir << "/manifest.json)\n";
}

// The checks of docs/expectations.md: expectations (the scenario's [expect] section, then
// each --expect), a comparison with a previous run (--check) and JUnit XML (--junit).
struct RunChecks {
    std::vector<ResultExpectation> expectations;
    std::string previous_path;        ///< --check, or ""
    std::optional<Summary> previous;  ///< its summary.csv, read before anything is written
    std::string junit_path;           ///< --junit, or ""
    bool any() const noexcept { return !expectations.empty() || !previous_path.empty(); }
};

// The outcomes of the checks, judged on the run's Summary.
struct CheckOutcome {
    std::vector<ExpectationResult> expectations;
    std::optional<RunComparison> comparison;
    bool failed() const noexcept {
        return any_expectation_failed(expectations) || (comparison && !comparison->passed());
    }
};

// --junit FILE: a file name whose directory exists (or is --out, which the run creates);
// an existing file is replaced only with --force, like the outputs in --out.
std::string read_junit_path(const po::variables_map& vm, const RunRequest& request) {
    if (!vm.count("junit")) return "";
    const std::string path = vm["junit"].as<std::string>();
    if (path.empty() || path.back() == '/')
        throw InputError("command line", "--junit", path,
                         "not a file name: name the XML file, e.g. expectations.xml");
    std::error_code ec;
    if (fs::is_directory(path, ec))
        throw InputError("command line", "--junit", path, "is a directory: give a file path");
    if (fs::exists(path, ec) && !request.force)
        throw InputError("command line", "--junit", path,
                         "exists: add --force to overwrite it, or choose another file");
    const fs::path parent = fs::path(path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec) &&
        fs::weakly_canonical(parent, ec) != fs::weakly_canonical(request.out_dir, ec))
        throw InputError("command line", "--junit", path,
                         "its directory does not exist: create it, or write the file into --out");
    return path;
}

// --expect (each parsed when read, so a syntax error is refused before the scenario is
// loaded), --check and --junit.
RunChecks read_check_flags(const po::variables_map& vm, const RunRequest& request) {
    RunChecks checks;
    if (vm.count("expect"))
        for (const auto& text : vm["expect"].as<std::vector<std::string>>())
            checks.expectations.push_back(parse_cli_expectation(text));
    if (vm.count("check")) {
        checks.previous_path = vm["check"].as<std::string>();
        if (checks.previous_path.empty())
            throw InputError("command line", "--check", "",
                             "empty path: give the output directory of a previous run (its "
                             "--out) or its summary.csv");
    }
    checks.junit_path = read_junit_path(vm, request);
    return checks;
}

// Completes the checks before any work: the scenario's expectations go first (in the order
// of their names), every reference must name a row the run will have, and the previous
// summary.csv is read now, before --force could overwrite it (--check may name --out).
void prepare_checks(RunChecks& checks, const RunPlan& plan) {
    const auto& from_scenario = plan.scenario->expectations;
    checks.expectations.insert(checks.expectations.begin(), from_scenario.begin(),
                               from_scenario.end());
    if (!checks.junit_path.empty() && !checks.any())
        throw InputError("command line", "--junit", checks.junit_path,
                         "nothing to report: give --expect EXPRESSION, an [expect] section in "
                         "the scenario, or --check DIR");
    if (!checks.previous_path.empty()) {
        try {
            checks.previous = read_summary_file(checks.previous_path);
        } catch (const InputError& e) {
            throw InputError("command line", "--check", checks.previous_path, e.what());
        }
    }
    if (checks.expectations.empty()) return;
    // The closed form of `stopscan explain` has exactly the rows of a run's summary.csv
    // (tests/unit/test_run_check.cpp) and costs a fraction of a second; one replication's
    // parameter draws are enough to know the names.
    RunPlan probe = plan;
    probe.replications = 1;
    check_expectation_references(summarize_expected(expected_counts(probe)), checks.expectations);
}

CheckOutcome evaluate_checks(const RunChecks& checks, const Summary& summary) {
    CheckOutcome outcome;
    outcome.expectations = evaluate_expectations(summary, checks.expectations);
    if (checks.previous) outcome.comparison = compare_summaries(*checks.previous, summary);
    return outcome;
}

// "3 expectations: 1 passed, 1 failed, 1 inconclusive".
std::string expectations_text(const std::vector<ExpectationResult>& results) {
    std::size_t passed = 0, failed = 0, inconclusive = 0;
    for (const auto& r : results) {
        passed += r.status == ExpectationStatus::pass;
        failed += r.status == ExpectationStatus::fail;
        inconclusive += r.status == ExpectationStatus::inconclusive;
    }
    return std::to_string(results.size()) +
           (results.size() == 1 ? " expectation: " : " expectations: ") + std::to_string(passed) +
           " passed, " + std::to_string(failed) + " failed, " + std::to_string(inconclusive) +
           " inconclusive";
}

// "--check DIR: no change (2726 rows compared, family-wise alpha 0.001)", or the number of
// rows that moved and of rows in one run only.
std::string comparison_text(const std::string& previous_path, const RunComparison& c) {
    std::size_t moved = 0;
    for (const auto& f : c.failures) moved += f.kind == MetricChange::Kind::moved;
    return "--check " + previous_path + ": " +
           (c.passed() ? std::string("no change")
                       : std::to_string(moved) + " rows moved, " +
                             std::to_string(c.failures.size() - moved) + " rows in one run only") +
           " (" + std::to_string(c.compared) + " rows compared, family-wise alpha " +
           format_value(c.alpha) + ")";
}

// The outcome in one line for people (stdout, the manifest and the report).
std::string outcome_text(const RunChecks& checks, const CheckOutcome& outcome) {
    std::string text;
    if (!outcome.expectations.empty()) text = expectations_text(outcome.expectations);
    if (outcome.comparison)
        text +=
            (text.empty() ? "" : "; ") + comparison_text(checks.previous_path, *outcome.comparison);
    return text;
}

// The manifest's "checks" object (docs/output.md).
std::string checks_json(const RunChecks& checks, const CheckOutcome& outcome) {
    std::ostringstream json;
    json << "{\"outcome\": " << json_string(outcome_text(checks, outcome))
         << ", \"passed\": " << (outcome.failed() ? "false" : "true")
         << ",\n    \"expectations\": [";
    for (std::size_t i = 0; i < outcome.expectations.size(); ++i) {
        const auto& r = outcome.expectations[i];
        json << (i ? "," : "") << "\n      {\"name\": " << json_string(r.name)
             << ", \"expression\": " << json_string(r.text)
             << ", \"origin\": " << json_string(r.origin)
             << ", \"confidence\": " << format_value(checks.expectations[i].confidence)
             << ", \"status\": \"" << status_name(r.status)
             << "\", \"message\": " << json_string(r.message) << "}";
    }
    json << (outcome.expectations.empty() ? "]" : "\n    ]") << ",\n    \"check\": ";
    if (const auto& c = outcome.comparison) {
        json << "{\"previous\": " << json_string(checks.previous_path)
             << ", \"alpha\": " << format_value(c->alpha) << ", \"rows_compared\": " << c->compared
             << ", \"rows_unchanged\": " << c->unchanged
             << ", \"rows_not_tested\": " << c->notes.size()
             << ", \"passed\": " << (c->passed() ? "true" : "false") << ", \"failures\": [";
        for (std::size_t i = 0; i < c->failures.size(); ++i)
            json << (i ? ", " : "") << json_string(c->failures[i].message);
        json << "]}";
    } else {
        json << "null";
    }
    json << "}";
    return json.str();
}

// The JUnit test cases: one per expectation, and one for --check whose failure text lists
// the rows that moved.
std::vector<ExpectationResult> junit_cases(const RunChecks& checks, const CheckOutcome& outcome) {
    std::vector<ExpectationResult> cases = outcome.expectations;
    if (const auto& c = outcome.comparison) {
        ExpectationResult r;
        r.name = "--check " + checks.previous_path;
        r.origin = "command line";
        r.text = r.name;
        r.status = c->passed() ? ExpectationStatus::pass : ExpectationStatus::fail;
        r.message = comparison_text(checks.previous_path, *c);
        for (const auto& f : c->failures) r.text += "\n" + f.message;
        cases.push_back(std::move(r));
    }
    return cases;
}

// One line on standard error per expectation that did not pass and per row --check found
// changed.
void print_check_failures(std::ostream& err, const CheckOutcome& outcome) {
    for (const auto& r : outcome.expectations)
        if (r.status != ExpectationStatus::pass) err << r.message << '\n';
    if (outcome.comparison)
        for (const auto& f : outcome.comparison->failures) err << f.message << '\n';
}

}  // namespace

int command_run(const std::vector<std::string>& args, const std::string& command_line,
                std::ostream& out, std::ostream& err) {
    const po::options_description options = run_options();
    po::positional_options_description positional;
    positional.add("scenario", -1);
    const auto vm = parse(args, options, positional);
    if (vm.count("help")) {
        out << "Simulate stops, searches and officer actions under each policy.\n\n"
            << options << '\n';
        return EXIT_OK;
    }
    RunRequest request = read_request(vm);
    RunChecks checks = read_check_flags(vm, request);

    const auto choice = load(vm);
    const RunPlan plan = make_run_plan(choice.scenario, request.run);
    const auto precision = read_precision(vm, plan);
    prepare_checks(checks, plan);
    check_output_directory(request.out_dir, request.force);
    const Engine engine(plan);
    const std::int64_t most = precision ? precision->max_replications : plan.replications;
    check_run_fits(engine, plan, most, precision ? "--max-replications" : "--replications",
                   std::to_string(most), request.force, request.quiet, err);
    // An over-budget dp release is refused before the run, not after it.
    if (request.release.mode == ReleaseMode::dp)
        dp_epsilon_per_table(request.release, run_count_metric_names(engine.layout()));
    std::optional<AuditLogWriter> audit;
    open_audit_log(request.audit, plan, choice, request.out_dir, audit);

    const ProgressCallback progress = progress_printer(request.quiet, err);
    Results results = engine.run(progress, audit ? &*audit : nullptr);
    Summary summary = summarize(results);
    Provenance provenance{command_line, choice.path, "", {}};
    if (precision)
        run_to_precision(engine, *precision, plan.replications, request.quiet, progress,
                         audit ? &*audit : nullptr, results, summary, provenance, err);
    if (audit) {
        const std::uint64_t records = audit->records();
        const std::string final_hash = audit->finish();
        provenance.audit_log_json = "{\"file\": " + json_string(request.audit.path) +
                                    ", \"records\": " + std::to_string(records) +
                                    ", \"final_sha256\": \"" + final_hash + "\"}";
    }

    // Judged before the outputs are written so that the manifest and the report record the
    // outcome; reported after, so a failing run still leaves everything behind.
    std::optional<CheckOutcome> outcome;
    if (checks.any()) {
        outcome = evaluate_checks(checks, summary);
        provenance.checks_json = checks_json(checks, *outcome);
    }

    const auto released = write_run_outputs(request, results, summary, provenance);
    if (outcome && !checks.junit_path.empty())
        write_file_atomically(checks.junit_path,
                              junit_xml(junit_cases(checks, *outcome), "stopscan"));
    if (!request.quiet) {
        print_run_summary(out, request, plan, results, summary, released.has_value(),
                          audit ? &*audit : nullptr);
        if (outcome)
            out << "Checks: " << outcome_text(checks, *outcome)
                << (checks.junit_path.empty() ? "" : "; JUnit XML: " + checks.junit_path) << '\n';
    }
    if (!outcome) return EXIT_OK;
    print_check_failures(err, *outcome);
    return outcome->failed() ? EXIT_CHECK_FAILED : EXIT_OK;
}

}  // namespace stopscan::cli
