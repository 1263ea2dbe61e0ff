// `stopscan audit verify FILE` and `stopscan audit summarize FILE [--release ...]`
// (docs/audit-log.md).
#include <boost/program_options.hpp>
#include <charconv>
#include <fstream>
#include <sstream>

#include "cli_support.hpp"
#include "detail/cli_audit.hpp"
#include "stopscan/audit_log.hpp"
#include "stopscan/disclosure.hpp"
#include "stopscan/error.hpp"
#include "stopscan/writers.hpp"

namespace po = boost::program_options;

namespace stopscan::detail {

namespace {

constexpr const char* AUDIT_USAGE =
    R"(Usage:
  stopscan audit verify FILE [--final SHA256 | --manifest manifest.json]
      check the hash chain of an audit log; exit 0 intact, 3 broken, 2 bad usage
  stopscan audit summarize FILE [--release none|sdc|dp] [options]
      per-policy, per-group counts of a log (CSV), with disclosure control
See docs/audit-log.md and docs/disclosure.md.
)";

po::variables_map parse_args(const std::vector<std::string>& args,
                             const po::options_description& options) {
    po::positional_options_description positional;
    positional.add("file", -1);
    return cli::parse(args, options, positional, "stopscan audit --help");
}

std::string one_file(const po::variables_map& vm, const char* command) {
    if (!vm.count("file"))
        throw InputError("command line", std::string("audit ") + command +
                                             ": give the audit log FILE (see --help)");
    const auto& files = vm["file"].as<std::vector<std::string>>();
    if (files.size() != 1)
        throw InputError("command line",
                         "unexpected argument '" + files[1] + "': give exactly one audit log FILE");
    return files.front();
}

std::int64_t parse_count(const std::string& flag, const std::string& text, std::int64_t lo,
                         std::int64_t hi) {
    std::int64_t v = 0;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size() || v < lo ||
        v > hi)
        throw InputError(
            "command line", flag, text,
            "must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
    return v;
}

// The final hash of the audit log named in a run's manifest.json ("audit_log": {...,
// "final_sha256": "..."}).
std::string final_from_manifest(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) throw InputError(path, "cannot open the manifest: give a run's manifest.json");
    std::stringstream text;
    text << file.rdbuf();
    const std::string s = text.str();
    const std::string key = "\"final_sha256\": \"";
    const auto at = s.find(key);
    if (at == std::string::npos || at + key.size() + 64 > s.size())
        throw InputError(path,
                         "the manifest has no \"audit_log\" with \"final_sha256\": was the "
                         "run made with --audit-log?");
    return s.substr(at + key.size(), 64);
}

int verify(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description options("stopscan audit verify FILE [options]");
    options.add_options()("help,h", "show this help")(
        "final", po::value<std::string>(),
        "expected SHA-256 of the end line (the manifest's audit_log.final_sha256)")(
        "manifest", po::value<std::string>(), "read the expected final hash from manifest.json")(
        "file", po::value<std::vector<std::string>>(), "the audit log (positional)");
    const auto vm = parse_args(args, options);
    if (vm.count("help")) {
        out << "Check an audit log's hash chain. Exit 0 intact, 3 broken, 2 bad usage.\n\n"
            << options << '\n';
        return 0;
    }
    const std::string file = one_file(vm, "verify");
    if (vm.count("final") && vm.count("manifest"))
        throw InputError("command line", "--final", vm["final"].as<std::string>(),
                         "give --final or --manifest, not both");
    std::optional<std::string> expected;
    if (vm.count("final")) {
        expected = vm["final"].as<std::string>();
        const bool hex = expected->size() == 64 &&
                         expected->find_first_not_of("0123456789abcdef") == std::string::npos;
        if (!hex)
            throw InputError("command line", "--final", *expected,
                             "must be 64 lowercase hex digits (a SHA-256)");
    }
    if (vm.count("manifest")) expected = final_from_manifest(vm["manifest"].as<std::string>());
    const AuditVerification v = verify_audit_log(file, expected);
    if (!v.intact) {
        out << file << ":" << v.line << ": broken: " << v.problem << " (" << v.records
            << " records intact before it)\n";
        return EXIT_AUDIT_BROKEN;
    }
    out << file << ": intact: " << v.records << " records, end line SHA-256 " << v.final_hash
        << (expected ? " (matches the expected hash)"
                     : " (not anchored: compare it with the run's manifest, or pass --final)")
        << '\n';
    return 0;
}

int summarize(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description options("stopscan audit summarize FILE [options]");
    options.add_options()("help,h", "show this help")(
        "release", po::value<std::string>()->default_value("none"), "none, sdc or dp")(
        "k", po::value<std::string>(), "sdc: suppress values below k (default 10)")(
        "round", po::value<std::string>(), "sdc: round released values to this base")(
        "suppress-zeros", "sdc: suppress zero cells too")(
        "epsilon", po::value<std::string>(),
        "dp: epsilon per table (default: --epsilon-total divided evenly among the tables)")(
        "epsilon-total", po::value<std::string>(), "dp: total privacy budget (default 1)")(
        "max-lookups-per-person", po::value<std::string>(),
        "dp: keep each person's first N lookups per policy (default 20)")(
        "keys", po::value<std::string>(),
        "the public key set: policies, databases, categories (required for dp)")(
        "out,o", po::value<std::string>(), "write the CSV here (default: standard output)")(
        "file", po::value<std::vector<std::string>>(), "the audit log (positional)");
    const auto vm = parse_args(args, options);
    if (vm.count("help")) {
        out << "Per-policy, per-group counts of an audit log, with disclosure control.\n\n"
            << options << '\n';
        return 0;
    }
    const std::string file = one_file(vm, "summarize");
    const ReleaseMode mode =
        parse_release_mode("command line", "--release", vm["release"].as<std::string>());
    auto only = [&](const char* flag, ReleaseMode needed) {
        if (vm.count(flag) && mode != needed)
            throw InputError("command line", std::string("--") + flag, "",
                             std::string("only used with --release ") + release_mode_name(needed));
    };
    for (const char* f : {"k", "round", "suppress-zeros"}) only(f, ReleaseMode::sdc);
    for (const char* f : {"epsilon", "epsilon-total", "max-lookups-per-person"})
        only(f, ReleaseMode::dp);
    SdcOptions sdc;
    if (vm.count("k"))
        sdc.k = static_cast<double>(parse_count("--k", vm["k"].as<std::string>(), 1, 1'000'000));
    if (vm.count("round"))
        sdc.round_base = parse_count("--round", vm["round"].as<std::string>(), 1, 1'000'000);
    sdc.suppress_zeros = vm.count("suppress-zeros") > 0;
    const std::int64_t cap =
        mode != ReleaseMode::dp ? 0
        : vm.count("max-lookups-per-person")
            ? parse_count("--max-lookups-per-person",
                          vm["max-lookups-per-person"].as<std::string>(), 1, 1'000'000)
            : 20;
    if (mode == ReleaseMode::dp && !vm.count("keys"))
        throw InputError("command line", "--keys", "",
                         "--release dp needs the public key set (--keys FILE), so that every "
                         "category gets a cell whether or not it occurs in the log");
    std::optional<AuditKeySet> keys;
    if (vm.count("keys")) keys = AuditKeySet::read(vm["keys"].as<std::string>());
    const Epsilon total = vm.count("epsilon-total")
                              ? Epsilon::parse("command line", "--epsilon-total",
                                               vm["epsilon-total"].as<std::string>())
                              : Epsilon{1'000'000};

    AuditSummary summary = summarize_audit_log(file, keys ? &*keys : nullptr, cap);
    std::vector<ReleaseTable> tables;
    std::string trailer;
    switch (mode) {
        case ReleaseMode::none:
            tables = std::move(summary.tables);
            for (auto& t : tables) apply_none(t);
            trailer = "# log: " + std::to_string(summary.records) + " records, " +
                      std::to_string(summary.persons) + " distinct persons, " +
                      std::to_string(summary.replications) + " replications\n";
            break;
        case ReleaseMode::sdc: {
            // One table, so that suppression also protects across the metrics that add up.
            ReleaseTable merged = merge_tables(summary.tables, "counts");
            merged.add_metric_sum("wrongful_outcomes", {"wrongful_arrests", "wrongful_ho_referrals",
                                                        "wrongful_detentions"});
            std::vector<std::string> by_cause, searches;
            for (const auto& db : summary.databases) {
                by_cause.push_back("wrongful_by_false_match." + db);
                by_cause.push_back("wrongful_by_record_error." + db);
                searches.push_back("searches." + db);
            }
            merged.add_metric_sum("wrongful_outcomes", by_cause);
            merged.add_metric_sum("lookups", searches);
            apply_sdc(merged, sdc);
            tables.push_back(std::move(merged));
            break;
        }
        case ReleaseMode::dp: {
            tables = std::move(summary.tables);
            const Epsilon each =
                vm.count("epsilon")
                    ? Epsilon::parse("command line", "--epsilon", vm["epsilon"].as<std::string>())
                    : Epsilon{total.micro / static_cast<std::int64_t>(tables.size())};
            if (each.micro <= 0)
                throw InputError("command line", "--epsilon-total", total.text(),
                                 "too small to share among " + std::to_string(tables.size()) +
                                     " tables: give at least 0.000001 per table");
            // Refuse before drawing any noise if the whole release would overspend.
            PrivacyLedger plan(total);
            for (const auto& t : tables) plan.charge(t.name, each);
            PrivacyLedger ledger(total);
            CryptoRandomBits bits;
            const auto cells_per_person = static_cast<std::int64_t>(
                summary.policies.size() * (1 + summary.dimensions.size()));
            for (auto& t : tables)
                apply_dp(t, each, {audit_per_cell_bound(t.name, cap), cells_per_person}, ledger,
                         bits);
            trailer = "# ledger: " + ledger.json() +
                      "\n# contribution bound: each person's first " + std::to_string(cap) +
                      " lookups per policy\n";
            break;
        }
    }
    const std::string csv = release_csv(tables, mode) + trailer;
    if (vm.count("out"))
        write_file_atomically(vm["out"].as<std::string>(), csv);
    else
        out << csv;
    return 0;
}

}  // namespace

int command_audit(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
    if (args.empty()) {
        err << AUDIT_USAGE;
        throw InputError("command line", "audit: give a subcommand: verify or summarize");
    }
    if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        out << AUDIT_USAGE;
        return 0;
    }
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (args[0] == "verify") return verify(rest, out);
    if (args[0] == "summarize") return summarize(rest, out);
    throw InputError("command line", "audit: unknown subcommand '" + args[0] +
                                         "': use verify or summarize (see stopscan audit --help)");
}

}  // namespace stopscan::detail
