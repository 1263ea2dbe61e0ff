// Freedom-of-information (FOI) tables as they come back from police forces: stop counts by
// area, dimension and category, with suppressed small cells, and the population
// denominators of the same keys. Accepted shapes are documented in docs/calibrate.md.
//
// A count is kept as an integer interval {lo, hi}: an exact count has lo == hi, a
// suppressed cell ("<5", "*", "[c]", ...) has the range it may hide. A suppressed cell is
// never turned into a zero, because small cells are exactly the minority groups whose
// rates the calibration is about.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace stopscan {

/// A count that may be known only as a range: lo <= true count <= hi.
struct CountInterval {
    std::int64_t lo = 0;
    std::int64_t hi = 0;
    /// True when the cell was suppressed (the count is a range, not one value).
    bool suppressed() const noexcept { return lo != hi; }
    /// The midpoint, used as the point estimate of a suppressed cell.
    double mid() const noexcept {
        return 0.5 * (static_cast<double>(lo) + static_cast<double>(hi));
    }
};

/// How suppressed cells are read.
///
/// Forces differ: some write "<5" for 1–4 (a zero is shown as 0), others for 0–4. The
/// default, min_suppressed = 0, keeps zero possible, so intervals are never narrower than
/// the data allow; give 1 when the force says its suppressed cells are never zero.
struct SuppressionOptions {
    /// A bare marker ("*", "-", "[c]", "c", "[x]", "x") means a count in
    /// [min_suppressed, threshold - 1]. 5 is the usual statistical-disclosure threshold of
    /// police FOI answers and of the Home Office's own published tables.
    std::int64_t threshold = 5;
    /// Smallest count a suppressed cell may hide; "<N" means [min_suppressed, N - 1].
    std::int64_t min_suppressed = 0;
};

/// One data row of a counts table.
struct CountRow {
    std::string area;  ///< "" when the table has no area column
    std::string dimension;
    std::string category;
    CountInterval count;
    std::string raw;   ///< the count as written ("<5", "1,472")
    std::size_t line;  ///< line of the file where the row starts
};

/// A counts table: stops (or scans) by area, dimension and category.
struct CountTable {
    std::string source;  ///< the file name, for messages
    bool has_area = false;
    std::vector<CountRow> rows;  ///< in file order

    /// The row for this key, or nullptr.
    const CountRow* find(const std::string& area, const std::string& dimension,
                         const std::string& category) const;
    /// Areas in order of first appearance ("" once when the table has no area column).
    std::vector<std::string> areas() const;
};

/// One data row of a population table.
struct PopulationRow {
    std::string area;
    std::string dimension;
    std::string category;
    double population = 0;  ///< residents; may be fractional (estimates); always > 0
    std::size_t line = 0;
};

/// Population denominators with the same keys as a counts table.
struct PopulationTable {
    std::string source;
    bool has_area = false;
    std::vector<PopulationRow> rows;

    /// The row for this key, or nullptr.
    const PopulationRow* find(const std::string& area, const std::string& dimension,
                              const std::string& category) const;
};

/// Resource limits: a real FOI table is a few kilobytes; these only stop mistakes (a
/// wrong file, a runaway export) from exhausting memory.
inline constexpr std::size_t MAX_TABLE_BYTES = 64u * 1024u * 1024u;
inline constexpr std::size_t MAX_TABLE_ROWS = 1000000;

/// Parses counts CSV text (columns `area` (optional), `dimension`, `category`, `count`, in
/// any order and case). `source` names the file in errors. Throws InputError naming
/// `source:line`, the column and what is allowed for: empty input, binary data, a missing,
/// unknown or repeated column, a row with the wrong number of fields, an empty key, a
/// count that is negative, fractional or not a number, a duplicate key (naming both
/// lines), a bad quote, and more than MAX_TABLE_BYTES bytes or MAX_TABLE_ROWS rows; and
/// naming `source` for suppression options outside 1 <= threshold <= 10^12 + 1 (a count is
/// at most 10^12) and 0 <= min_suppressed < threshold.
CountTable parse_count_table(std::string_view text, const std::string& source,
                             const SuppressionOptions& suppression = {});

/// Reads and parses a counts CSV file. Throws InputError as parse_count_table, and if the
/// file cannot be read, is a directory or is larger than MAX_TABLE_BYTES.
CountTable read_count_table(const std::string& path, const SuppressionOptions& suppression = {});

/// Parses population CSV text (columns `area` (optional), `dimension`, `category`,
/// `population`). A population is a number > 0, possibly decimal, possibly with thousands
/// separators. Throws InputError as parse_count_table (a suppressed population is an error).
PopulationTable parse_population_table(std::string_view text, const std::string& source);

/// Reads and parses a population CSV file. Throws InputError as read_count_table.
PopulationTable read_population_table(const std::string& path);

/// Checks that within each area the dimensions can count the same stops: the intervals
/// [Σ lo, Σ hi] of every dimension must overlap. Throws InputError naming the file, e.g.
/// "margins are inconsistent: area X: ethnicity sums to 1,472 but sex to 1,380".
void check_margins(const CountTable& counts);

/// "1,472": an integer with thousands separators, for messages and tables.
std::string with_thousands(std::int64_t value);

}  // namespace stopscan
