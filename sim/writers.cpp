#include "stopscan/writers.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>

#include "stopscan/build_info.hpp"
#include "stopscan/error.hpp"

namespace stopscan {

namespace {

std::string csv_value(const std::optional<double>& v) {
    return v ? format_value(*v) : "NA";
}

// JSON has no infinity: write it as a string so the file stays valid JSON.
std::string json_value(const std::optional<double>& v) {
    if (!v) return "null";
    if (std::isinf(*v)) return *v > 0 ? "\"inf\"" : "\"-inf\"";
    return format_value(*v);
}

// Display with about three significant digits, without exponents for everyday magnitudes.

std::string display_interval(const Estimate& e) {
    if (!e.lo95 && !e.hi95) return display_number(e.estimate);
    return display_number(e.estimate) + " [" + display_number(e.lo95) + ", " +
           display_number(e.hi95) + "]";
}

std::string pad(const std::string& text, std::size_t width) {
    return text.size() >= width ? text + " " : text + std::string(width - text.size(), ' ');
}

}  // namespace

std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buffer[8];
                    std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
                    out += buffer;
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

std::string format_value(double value) {
    if (std::isnan(value)) throw InternalError("a NaN reached an output writer");
    if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
    if (value == 0) return "0";  // no "-0"
    char buffer[32];
    const auto r = std::to_chars(buffer, buffer + sizeof buffer, value);
    return std::string(buffer, r.ptr);
}

std::string display_number(std::optional<double> v) {
    if (!v || std::isnan(*v)) return "NA";
    if (std::isinf(*v)) return *v > 0 ? "inf" : "-inf";
    const double a = std::abs(*v);
    if (a == 0) return "0";
    char buffer[32];
    if (a >= 1e6 || a < 1e-3)
        std::snprintf(buffer, sizeof buffer, "%.2e", *v);
    else if (a >= 100)
        std::snprintf(buffer, sizeof buffer, "%.0f", *v);
    else if (a >= 10)
        std::snprintf(buffer, sizeof buffer, "%.1f", *v);
    else if (a >= 1)
        std::snprintf(buffer, sizeof buffer, "%.2f", *v);
    else
        std::snprintf(buffer, sizeof buffer, "%.3f", *v);
    return buffer;
}

std::string summary_csv(const Summary& summary) {
    std::ostringstream out;
    out << "policy,dimension,category,metric,estimate,lo95,hi95,replications,mean_lo95,mean_hi95,"
           "flag\n";
    for (const auto& r : summary.rows)
        out << csv_field(r.policy) << ',' << csv_field(r.dimension) << ',' << csv_field(r.category)
            << ',' << csv_field(r.metric) << ',' << csv_value(r.value.estimate) << ','
            << csv_value(r.value.lo95) << ',' << csv_value(r.value.hi95) << ','
            << r.value.replications << ',' << csv_value(r.value.mean_lo95) << ','
            << csv_value(r.value.mean_hi95) << ',' << r.value.flag << '\n';
    return out.str();
}

std::string explain_csv(const Summary& summary) {
    std::ostringstream out;
    out << "policy,dimension,category,metric,estimate\n";
    for (const auto& r : summary.rows)
        out << csv_field(r.policy) << ',' << csv_field(r.dimension) << ',' << csv_field(r.category)
            << ',' << csv_field(r.metric) << ',' << csv_value(r.value.estimate) << '\n';
    return out.str();
}

std::string effects_csv(const Summary& summary) {
    std::ostringstream out;
    out << "policy,baseline,dimension,category,metric,delta,lo95,hi95,relative_change,replications,"
           "mean_lo95,"
           "mean_hi95\n";
    for (const auto& r : summary.effects)
        out << csv_field(r.policy) << ',' << csv_field(r.baseline) << ',' << csv_field(r.dimension)
            << ',' << csv_field(r.category) << ',' << csv_field(r.metric) << ','
            << csv_value(r.delta.estimate) << ',' << csv_value(r.delta.lo95) << ','
            << csv_value(r.delta.hi95) << ',' << csv_value(r.relative_change) << ','
            << r.delta.replications << ',' << csv_value(r.delta.mean_lo95) << ','
            << csv_value(r.delta.mean_hi95) << '\n';
    return out.str();
}

std::string results_json(const Results& results, const Summary& summary) {
    // policy → dimension → category → metric → {estimate, lo95, hi95, replications, mean CI, flag}
    using Metrics = std::vector<std::pair<std::string, std::string>>;
    std::map<std::string, std::map<std::string, std::map<std::string, Metrics>>> tree;
    std::vector<std::string> policy_order;
    for (const auto& r : summary.rows) {
        if (!tree.count(r.policy)) policy_order.push_back(r.policy);
        tree[r.policy][r.dimension][r.category].emplace_back(
            r.metric, "{\"estimate\": " + json_value(r.value.estimate) + ", \"lo95\": " +
                          json_value(r.value.lo95) + ", \"hi95\": " + json_value(r.value.hi95) +
                          ", \"replications\": " + std::to_string(r.value.replications) +
                          ", \"mean_lo95\": " + json_value(r.value.mean_lo95) +
                          ", \"mean_hi95\": " + json_value(r.value.mean_hi95) +
                          ", \"flag\": " + json_string(r.value.flag) + "}");
    }
    std::ostringstream out;
    const Scenario& s = *results.plan.scenario;
    out << "{\n  \"scenario\": " << json_string(s.name)
        << ",\n  \"period\": " << json_string(s.period) << ",\n  \"seed\": " << results.plan.seed
        << ",\n  \"replications\": " << results.plan.replications << ",\n  \"baseline\": "
        << json_string(s.policies[results.plan.policies[results.plan.baseline]].name)
        << ",\n  \"policies\": {";
    bool first_policy = true;
    for (const auto& policy : policy_order) {
        out << (first_policy ? "\n" : ",\n") << "    " << json_string(policy) << ": {";
        first_policy = false;
        bool first_dim = true;
        for (const auto& [dimension, categories] : tree[policy]) {
            out << (first_dim ? "\n" : ",\n") << "      " << json_string(dimension) << ": {";
            first_dim = false;
            bool first_cat = true;
            for (const auto& [category, metrics] : categories) {
                out << (first_cat ? "\n" : ",\n") << "        " << json_string(category) << ": {";
                first_cat = false;
                for (std::size_t i = 0; i < metrics.size(); ++i)
                    out << (i ? ",\n" : "\n") << "          " << json_string(metrics[i].first)
                        << ": " << metrics[i].second;
                out << "\n        }";
            }
            out << "\n      }";
        }
        out << "\n    }";
    }
    out << "\n  },\n  \"effects\": [";
    for (std::size_t i = 0; i < summary.effects.size(); ++i) {
        const auto& e = summary.effects[i];
        out << (i ? ",\n" : "\n") << "    {\"policy\": " << json_string(e.policy)
            << ", \"baseline\": " << json_string(e.baseline)
            << ", \"dimension\": " << json_string(e.dimension)
            << ", \"category\": " << json_string(e.category)
            << ", \"metric\": " << json_string(e.metric)
            << ", \"delta\": " << json_value(e.delta.estimate)
            << ", \"lo95\": " << json_value(e.delta.lo95)
            << ", \"hi95\": " << json_value(e.delta.hi95)
            << ", \"relative_change\": " << json_value(e.relative_change)
            << ", \"replications\": " << e.delta.replications
            << ", \"mean_lo95\": " << json_value(e.delta.mean_lo95)
            << ", \"mean_hi95\": " << json_value(e.delta.mean_hi95) << "}";
    }
    out << "\n  ]\n}\n";
    return out.str();
}

std::string sha256_hex(const std::string& bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1)
        throw InternalError("SHA-256 failed");
    std::ostringstream out;
    for (unsigned int i = 0; i < length; ++i)
        out << std::hex << std::setw(2) << std::setfill('0') << int(digest[i]);
    return out.str();
}

namespace {

// The settings in effect after overrides, one "key = value" line each in key order: its hash
// identifies what was run even when --set changed the file's values.
std::string effective_text(const Settings& settings) {
    std::string text;
    for (const auto& [key, setting] : settings.all())
        text.append(key).append(" = ").append(setting.value).append("\n");
    return text;
}

}  // namespace

std::string manifest_json(const Results& results, const Provenance& provenance) {
    const Scenario& s = *results.plan.scenario;
    const auto stops = results.total_stops();
    std::ostringstream out;
    out << "{\n  \"stopscan_version\": " << json_string(STOPSCAN_VERSION)
        << ",\n  \"git_commit\": " << json_string(STOPSCAN_GIT_COMMIT)
        << ",\n  \"build_type\": " << json_string(STOPSCAN_BUILD_TYPE)
        << ",\n  \"command_line\": " << json_string(provenance.command_line)
        << ",\n  \"scenario_name\": " << json_string(s.name) << ",\n  \"scenario_file\": "
        << json_string(provenance.scenario_path.empty() ? "(embedded default)"
                                                        : provenance.scenario_path)
        << ",\n  \"scenario_sha256\": " << json_string(sha256_hex(s.settings.text()))
        << ",\n  \"effective_configuration_sha256\": "
        << json_string(sha256_hex(effective_text(s.settings)))
        << ",\n  \"seed\": " << results.plan.seed
        << ",\n  \"replications\": " << results.plan.replications
        << ",\n  \"threads\": " << results.threads_used << ",\n  \"policies\": [";
    for (std::size_t p = 0; p < results.plan.policies.size(); ++p)
        out << (p ? ", " : "") << json_string(s.policies[results.plan.policies[p]].name);
    out << "],\n  \"policy_rules\": {";
    // Every rule in effect, presets' defaults included, so a reader need not know them.
    static constexpr const char* ACCESS[] = {"street", "custody", "none"};
    static constexpr const char* DISPLAY[] = {"full", "flag-only", "none"};
    for (std::size_t p = 0; p < results.plan.policies.size(); ++p) {
        const Policy& policy = s.policies[results.plan.policies[p]];
        out << (p ? ",\n" : "\n") << "    " << json_string(policy.name)
            << ": {\"description\": " << json_string(policy.description);
        auto write_rules = [&](const std::vector<DatabaseRule>& rules) {
            for (std::size_t d = 0; d < s.databases.size(); ++d) {
                const DatabaseRule& rule = rules[d];
                out << ", " << json_string(s.databases[d].name) << ": {\"access\": \""
                    << ACCESS[static_cast<int>(rule.access)] << "\", \"display\": \""
                    << DISPLAY[static_cast<int>(rule.display)]
                    << "\", \"verify\": " << format_value(rule.verify) << "}";
            }
        };
        write_rules(policy.rules);
        if (policy.varies_by) {
            const Dimension& dim = s.dimensions[*policy.varies_by];
            out << ", \"varies_by\": " << json_string(dim.name) << ", \"by_category\": {";
            for (std::size_t k = 0; k < dim.categories.size(); ++k) {
                out << (k ? ", " : "") << json_string(dim.categories[k])
                    << ": {\"category\": " << json_string(dim.categories[k]);
                write_rules(policy.rules_by_category[k]);
                out << "}";
            }
            out << "}";
        }
        out << "}";
    }
    out << "\n  },\n  \"baseline\": "
        << json_string(s.policies[results.plan.policies[results.plan.baseline]].name)
        << ",\n  \"max_stops_per_person\": "
        << (results.plan.max_stops_per_person > 0
                ? std::to_string(results.plan.max_stops_per_person)
                : std::string("null"))
        << ",\n  \"rare_events\": "
        << (results.plan.rare_events.active()
                ? "{\"method\": \"importance\", \"factor\": " +
                      format_value(results.plan.rare_events.factor) +
                      ", \"max_tilt\": " + format_value(RareEvents::MAX_TILT) + "}"
                : std::string("null"))
        << ",\n  \"stops_simulated\": " << stops
        << ",\n  \"wall_seconds\": " << format_value(results.wall_seconds)
        << ",\n  \"stops_per_second\": "
        << format_value(results.wall_seconds > 0
                            ? std::round(static_cast<double>(stops) / results.wall_seconds)
                            : 0)
        << ",\n  \"uncertain_parameters\": [";
    for (std::size_t i = 0; i < s.uncertain.size(); ++i) {
        const auto& u = s.uncertain[i];
        out << (i ? ", " : "") << "{\"key\": " << json_string(u.key) << ", \"item\": " << u.item
            << ", \"distribution\": " << json_string(u.law.text()) << ", \"truncated_to\": ["
            << json_value(u.lo) << ", " << json_value(u.hi) << "]}";
    }
    out << "],\n  \"solved_parameters\": [";
    for (std::size_t i = 0; i < s.solved.size(); ++i)
        out << (i ? ", " : "") << json_string(s.solved[i]);
    out << "]"
        << ",\n  \"precision\": "
        << (provenance.precision_json.empty() ? "null" : provenance.precision_json)
        << (provenance.release_json.empty() ? "" : ",\n  \"release\": " + provenance.release_json)
        << (provenance.audit_log_json.empty() ? ""
                                              : ",\n  \"audit_log\": " + provenance.audit_log_json)
        << (provenance.checks_json.empty() ? "" : ",\n  \"checks\": " + provenance.checks_json)
        << ",\n  \"warnings\": [";
    for (std::size_t i = 0; i < provenance.warnings.size(); ++i)
        out << (i ? ", " : "") << json_string(provenance.warnings[i]);
    out << "],\n  \"effective_configuration\": {";
    bool first = true;
    for (const auto& [key, setting] : s.settings.all()) {
        out << (first ? "\n" : ",\n") << "    " << json_string(key)
            << ": {\"value\": " << json_string(setting.value)
            << ", \"from\": " << json_string(setting.origin) << "}";
        first = false;
    }
    out << "\n  }\n}\n";
    return out.str();
}

std::string csv_field(const std::string& text) {
    if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

std::vector<std::string> split_csv_line(const std::string& line) {
    std::vector<std::string> out(1);
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quoted) {
            if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
                out.back() += '"';
                ++i;
            } else if (c == '"') {
                quoted = false;
            } else {
                out.back() += c;
            }
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            out.emplace_back();
        } else {
            out.back() += c;
        }
    }
    return out;
}

void write_file_atomically(const std::string& path, const std::string& content) {
    const std::string temporary = temporary_path(path);
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) throw InternalError("cannot create " + temporary + ": " + std::strerror(errno));
    // fsync before rename: after a crash of the machine, not only of the process, the file
    // under the final name is the whole file or the previous one, never a truncated one.
    auto fail = [&](const char* step) {
        const std::string reason = std::strerror(errno);
        ::close(fd);
        std::remove(temporary.c_str());
        throw InternalError(std::string("cannot ") + step + " " + path + ": " + reason);
    };
    for (std::size_t written = 0; written < content.size();) {
        const auto n = ::write(fd, content.data() + written, content.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("write");
        written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) fail("flush");
    if (::close(fd) != 0) {
        const std::string reason = std::strerror(errno);
        std::remove(temporary.c_str());
        throw InternalError("cannot close " + path + ": " + reason);
    }
    if (std::rename(temporary.c_str(), path.c_str()) != 0) {
        std::remove(temporary.c_str());
        throw InternalError("cannot rename " + temporary + " to " + path);
    }
}

std::string temporary_path(const std::string& path) {
    const auto slash = path.find_last_of('/');
    return (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) + "." +
           path.substr(slash == std::string::npos ? 0 : slash + 1) + ".tmp";
}

void write_outputs(const std::string& directory, const Results& results, const Summary& summary,
                   const Provenance& provenance) {
    // Everything is formatted before the first file is written, so a formatting failure
    // leaves no partial set of outputs behind.
    const std::vector<std::pair<std::string, std::string>> files = {
        {"summary.csv", summary_csv(summary)},
        {"effects.csv", effects_csv(summary)},
        {"results.json", results_json(results, summary)},
        {"manifest.json", manifest_json(results, provenance)},
    };
    for (const auto& [name, content] : files)
        write_file_atomically(directory + "/" + name, content);
}

namespace {

std::vector<std::pair<std::string, std::string>> table_groups(const Scenario& s) {
    std::vector<std::pair<std::string, std::string>> groups = {{"all", "all"}};
    for (const auto& d : s.dimensions)
        for (const auto& c : d.categories) groups.emplace_back(d.name, c);
    return groups;
}

std::string group_label(const std::pair<std::string, std::string>& g) {
    return g.first == "all" ? std::string("everyone") : g.first + " " + g.second;
}

constexpr std::size_t LABEL = 28;
constexpr std::size_t COLUMN = 24;

}  // namespace

void print_exposure_table(std::ostream& out, const RunPlan& plan, const Summary& summary) {
    const Scenario& s = *plan.scenario;
    if (!s.uncertain.empty()) {
        out << "\nUncertain parameters, drawn once per replication (intervals include their "
               "uncertainty):\n";
        for (const auto& u : s.uncertain)
            out << "  " << u.key
                << (u.item >= 0 ? " (item " + std::to_string(u.item + 1) + ")" : "") << " ~ "
                << u.law.text() << '\n';
    }
    std::vector<std::string> policies;
    for (const auto p : plan.policies) policies.push_back(s.policies[p].name);
    const std::string baseline = policies[plan.baseline];
    const auto groups = table_groups(s);
    const bool simulated = !summary.rows.empty() && summary.rows.front().value.replications > 0;
    const std::string what = simulated ? "mean [95% interval] across " +
                                             std::to_string(plan.replications) + " replications"
                                       : "expected value, closed form";

    out << "\nWrongful outcomes per 100,000 people over " << s.period << " (" << what << ")\n";
    out << pad("group", LABEL);
    for (const auto& p : policies) out << pad(p, COLUMN);
    out << '\n';
    for (const auto& g : groups) {
        out << pad(group_label(g), LABEL);
        for (const auto& p : policies) {
            const auto* row = summary.find(p, g.first, g.second, "exposure_per_100k");
            out << pad(row ? display_interval(row->value) : "NA", COLUMN);
        }
        out << '\n';
    }
    if (policies.size() > 1) {
        out << "\nChange against " << baseline << ", per 100,000 people"
            << (simulated ? " (paired 95% interval)" : "") << "\n";
        out << pad("group", LABEL);
        for (const auto& p : policies)
            if (p != baseline) out << pad(p, COLUMN);
        out << '\n';
        for (const auto& g : groups) {
            out << pad(group_label(g), LABEL);
            for (const auto& p : policies) {
                if (p == baseline) continue;
                const auto* row = summary.find_effect(p, g.first, g.second, "exposure_per_100k");
                out << pad(row ? display_interval(row->delta) : "NA", COLUMN);
            }
            out << '\n';
        }
    }
    out << "\nWrongful outcomes by cause, everyone (count over " << s.period << ", " << what
        << ")\n";
    out << pad("cause", LABEL);
    for (const auto& p : policies) out << pad(p, COLUMN);
    out << '\n';
    for (const auto& db : s.databases)
        for (const auto& [metric, cause] :
             {std::pair<std::string, std::string>{"wrongful_by_false_match.", "false match"},
              {"wrongful_by_record_error.", "record error"}}) {
            out << pad(db.name + " " + cause, LABEL);
            for (const auto& p : policies) {
                const auto* row = summary.find(p, "all", "all", metric + db.name);
                out << pad(row ? display_interval(row->value) : "NA", COLUMN);
            }
            out << '\n';
        }
}

void print_decomposition(std::ostream& out, const RunPlan& plan, const Summary& summary) {
    const Scenario& s = *plan.scenario;
    const auto groups = table_groups(s);
    constexpr std::size_t NUMBER = 14;
    for (const auto p : plan.policies) {
        const std::string& policy = s.policies[p].name;
        out << "\nWhere wrongful outcomes come from under " << policy << " (expected count over "
            << s.period << "; share of the group's total)\n";
        out << pad("group", LABEL) << pad("total", NUMBER);
        for (const auto& db : s.databases)
            out << pad(db.name + " match", NUMBER) << pad(db.name + " record", NUMBER);
        out << '\n';
        for (const auto& g : groups) {
            const auto* total = summary.find(policy, g.first, g.second, "wrongful_outcomes");
            const double t = total && total->value.estimate ? *total->value.estimate : 0.0;
            out << pad(group_label(g), LABEL) << pad(display_number(t), NUMBER);
            for (const auto& db : s.databases)
                for (const char* metric :
                     {"wrongful_by_false_match.", "wrongful_by_record_error."}) {
                    const auto* row = summary.find(policy, g.first, g.second, metric + db.name);
                    const double v = row && row->value.estimate ? *row->value.estimate : 0.0;
                    const std::string share =
                        t > 0 ? " (" + std::to_string(static_cast<int>(std::lround(100 * v / t))) +
                                    "%)"
                              : "";
                    out << pad(display_number(v) + share, NUMBER);
                }
            out << '\n';
        }
    }
}

}  // namespace stopscan
