// Writers of a run's outputs: summary.csv, effects.csv, results.json, manifest.json and the
// terminal table. Files are written to a temporary name, flushed and renamed, so a reader
// never sees a half-written file.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "stopscan/summary.hpp"

namespace stopscan {

/// Facts about the invocation that go into the manifest.
struct Provenance {
    std::string command_line;
    std::string scenario_path;   ///< "" for the embedded default scenario
    std::string precision_json;  ///< a JSON object about a --precision target, or ""
    std::vector<std::string> warnings;
    // Default member initialisers keep 4-field aggregate initialisations warning-free.
    /// The "release" object (release mode, parameters, dp ledger), or "" (key omitted).
    std::string release_json = {};
    /// The "audit_log" object ({"file", "records", "final_sha256"}), or "" (key omitted).
    std::string audit_log_json = {};
    /// The "checks" object (expectations and --check, docs/expectations.md), or "" (key
    /// omitted).
    std::string checks_json = {};
};

/// Formats a number the same way in every output: shortest round-trip decimal; "inf",
/// "-inf"; never NaN.
std::string format_value(double value);

/// A number for people to read: about three significant digits, no exponent for everyday
/// magnitudes; "NA" when undefined.
std::string display_number(std::optional<double> value);

/// summary.csv text.
std::string summary_csv(const Summary& summary);
/// effects.csv text.
std::string effects_csv(const Summary& summary);
/// results.json text: the same numbers as the CSVs, nested policy → dimension → category.
std::string results_json(const Results& results, const Summary& summary);
/// manifest.json text: version, commit, build, seed, replications, threads, scenario hash,
/// effective configuration, wall time.
std::string manifest_json(const Results& results, const Provenance& provenance);

/// `text` as a JSON string literal: quotes, backslashes and control characters escaped
/// (\n, \r, \t, else \u00xx). Used by every JSON and JSON Lines writer.
std::string json_string(std::string_view text);

/// SHA-256 of `bytes` as lowercase hex.
std::string sha256_hex(const std::string& bytes);

/// A CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, a quote or a
/// line break; as is otherwise.
std::string csv_field(const std::string& text);

/// The fields of one CSV line (RFC 4180 quoting; no line breaks inside fields).
std::vector<std::string> split_csv_line(const std::string& line);

/// Writes `content` to `path` atomically (temporary file, fsync, rename). Throws
/// InternalError on failure, leaving no temporary file behind.
void write_file_atomically(const std::string& path, const std::string& content);

/// The temporary file beside `path` that write_file_atomically (and the audit log) renames
/// into place: `DIR/.NAME.tmp`. A process killed with SIGKILL can leave one behind; the next
/// run into the same directory overwrites or removes it.
std::string temporary_path(const std::string& path);

/// Writes all outputs of a run into `directory` (which must exist).
void write_outputs(const std::string& directory, const Results& results, const Summary& summary,
                   const Provenance& provenance);

/// Prints the readable tables of exposure per 100,000 and the policies' changes, by
/// dimension and category, with intervals when the summary has them.
void print_exposure_table(std::ostream& out, const RunPlan& plan, const Summary& summary);

/// Prints, per policy and group, the wrongful outcomes by database and cause (biometric
/// false match or record error): why a policy changes exposure.
void print_decomposition(std::ostream& out, const RunPlan& plan, const Summary& summary);

/// explain.csv text: summary.csv's keys with the expected value only.
std::string explain_csv(const Summary& summary);

}  // namespace stopscan
