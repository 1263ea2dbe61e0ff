// `stopscan run --check DIR`: did any result move beyond what Monte Carlo noise explains,
// compared with a previous run's summary.csv? (docs/expectations.md, "Comparing runs".)
//
// For each row present in both runs with finite estimates and confidence intervals, the
// standard error of each run's estimate is recovered from its 95 % interval and its
// replications, and a Welch t test on the difference is judged at a family-wise error rate
// `alpha`, Bonferroni-split over the rows compared. A rerun with another seed therefore
// passes with probability at least 1 - alpha; a changed parameter fails, naming the rows
// that moved. Rows present in one run only are a schema change and fail too.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stopscan/summary.hpp"

namespace stopscan {

/// The header line of summary.csv (docs/output.md), without its line ending.
inline constexpr std::string_view SUMMARY_CSV_HEADER =
    "policy,dimension,category,metric,estimate,lo95,hi95,replications,mean_lo95,mean_hi95,flag";

/// Reads summary.csv text (as written by summary_csv()) back into Summary rows (no effects).
/// `source` names the file in errors. Accepts CRLF line endings and a UTF-8 byte-order mark.
/// Throws InputError (`SOURCE:LINE: PROBLEM`) for a wrong header, a row with the wrong
/// number of fields, an unterminated quote, a number that does not read back, or a row
/// given twice.
Summary read_summary_csv(std::string_view text, const std::string& source);

/// Reads a results directory's summary.csv, or a summary.csv file. Throws InputError when it
/// cannot be read, and as read_summary_csv.
Summary read_summary_file(const std::string& path);

/// The family-wise error rate of a comparison: the chance that a rerun of the same scenario
/// with another seed is reported as moved.
inline constexpr double DEFAULT_CHECK_ALPHA = 0.001;

/// One row that differs between the runs.
struct MetricChange {
    enum class Kind {
        moved,          ///< the estimates differ beyond noise (a failure)
        only_previous,  ///< the row is in the previous run only (a failure: schema change)
        only_current,   ///< the row is in the current run only (a failure: schema change)
        not_tested,     ///< defined, finite or with an interval in one run only (a note)
    };
    Kind kind = Kind::moved;
    std::string policy, dimension, category, metric;
    Estimate previous;    ///< empty for only_current
    Estimate current;     ///< empty for only_previous
    double t = 0;         ///< the Welch statistic of a moved row (inf when both errors are 0)
    std::string message;  ///< one line, naming the row, with both estimates and intervals
};

/// The outcome of a comparison.
struct RunComparison {
    double alpha = DEFAULT_CHECK_ALPHA;
    std::size_t compared = 0;            ///< rows tested (the Bonferroni divisor)
    std::size_t unchanged = 0;           ///< rows with identical estimates, not needing a test
    std::vector<MetricChange> failures;  ///< moved rows, then rows in one run only
    std::vector<MetricChange> notes;     ///< rows that could not be tested
    /// Whether no row moved and both runs have the same rows.
    bool passed() const noexcept { return failures.empty(); }
};

/// Compares the rows of two Summaries at family-wise error rate `alpha`, in (0, 1).
RunComparison compare_summaries(const Summary& previous, const Summary& current,
                                double alpha = DEFAULT_CHECK_ALPHA);

/// Compares `current` with a previous run: `previous` is its results directory (the --out of
/// that run) or its summary.csv. Throws InputError as read_summary_file.
RunComparison compare_runs(const std::string& previous, const Summary& current,
                           double alpha = DEFAULT_CHECK_ALPHA);

}  // namespace stopscan
