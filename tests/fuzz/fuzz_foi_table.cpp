// libFuzzer target: the FOI tables of `stopscan calibrate` (foi_table.hpp). The first byte
// chooses the parser (bit 0: counts or population) and, for counts, the suppression options
// (the other bits: the CLI's default, its extremes, the API's extreme and refused options);
// the rest is the CSV text. InputError is the only accepted way to refuse an input, and its
// message must be one line.
//
// A table that parses must keep the promises of foi_table.hpp: at least one row; non-empty
// dimension and category, an area exactly when the table has an area column; no key twice
// (find() returns the row itself); rows in file order. Counts: 0 <= lo <= hi, hi at most the
// largest count accepted or what a suppressed cell may hide. Populations: finite, > 0, at
// most 1e12. Then check_margins, which may refuse only with InputError, is compared with the
// margins recomputed here in 128-bit arithmetic: it must refuse exactly when, in some area,
// the largest sum of lower ends exceeds the smallest sum of upper ends.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "fuzz_support.hpp"
#include "stopscan/error.hpp"
#include "stopscan/foi_table.hpp"

namespace {

__extension__ typedef __int128 Wide;

constexpr std::int64_t MAX_COUNT = 1'000'000'000'000;  // sim/foi_table.cpp
constexpr std::int64_t INT64_TOP = std::numeric_limits<std::int64_t>::max();

// {threshold, min_suppressed}, chosen by (first byte >> 1) % 14: the default, the CLI's
// range (--suppressed-below 1 .. 1000000, --suppressed-min 0 .. threshold - 1), options the
// parser must refuse (6 to 11), the API's largest threshold (a count + 1). New options go at
// the end, so that the saved inputs keep their meaning.
constexpr stopscan::SuppressionOptions OPTIONS[] = {
    {5, 0},
    {5, 1},
    {1, 0},
    {10, 3},
    {1'000'000, 0},
    {1'000'000, 999'999},
    {INT64_TOP, 0},
    {INT64_TOP, INT64_TOP - 1},
    {0, 0},
    {5, 5},
    {5, -1},
    {-INT64_TOP - 1, 0},
    {MAX_COUNT + 1, 0},
    {MAX_COUNT + 1, MAX_COUNT},
};

template <typename Row, typename Table>
void check_keys(const Table& table, const std::string& source) {
    if (table.source != source) stopscan::fuzz::finding("source is " + table.source);
    if (table.rows.empty()) stopscan::fuzz::finding("a table without rows was accepted");
    std::size_t line = 0;
    for (const Row& row : table.rows) {
        if (row.dimension.empty() || row.category.empty() || row.area.empty() == table.has_area)
            stopscan::fuzz::finding("line " + std::to_string(row.line) + ": empty key field");
        if (row.line <= line)
            stopscan::fuzz::finding("line " + std::to_string(row.line) + " after line " +
                                    std::to_string(line));
        line = row.line;
        if (table.find(row.area, row.dimension, row.category) != &row)
            stopscan::fuzz::finding("line " + std::to_string(row.line) + ": key given twice");
    }
}

void check_counts(const stopscan::CountTable& table, const stopscan::SuppressionOptions& sup) {
    check_keys<stopscan::CountRow>(table, "fuzz.csv");
    for (const auto& row : table.rows) {
        const auto [lo, hi] = row.count;
        if (lo < 0 || lo > hi || hi > std::max(MAX_COUNT, sup.threshold - 1))
            stopscan::fuzz::finding("line " + std::to_string(row.line) + ": count '" + row.raw +
                                    "' read as [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                    "]");
    }
    // The margins, recomputed: per area, per dimension, [sum lo, sum hi].
    std::map<std::string, std::map<std::string, std::pair<Wide, Wide>>> sums;
    for (const auto& row : table.rows) {
        auto& sum = sums[row.area][row.dimension];
        sum.first += row.count.lo;
        sum.second += row.count.hi;
    }
    bool consistent = true;
    for (const auto& [area, dimensions] : sums) {
        Wide highest_lo = 0;
        Wide lowest_hi = std::numeric_limits<Wide>::max();
        for (const auto& [dimension, sum] : dimensions) {
            highest_lo = std::max(highest_lo, sum.first);
            lowest_hi = std::min(lowest_hi, sum.second);
        }
        if (highest_lo > lowest_hi) consistent = false;
    }
    bool refused = false;
    try {
        stopscan::check_margins(table);
    } catch (const stopscan::InputError& e) {
        stopscan::fuzz::check_one_line(e.what());
        refused = true;
    }
    if (refused == consistent)
        stopscan::fuzz::finding(std::string("check_margins ") +
                                (refused ? "refused consistent" : "accepted inconsistent") +
                                " margins");
}

void check_population(const stopscan::PopulationTable& table) {
    check_keys<stopscan::PopulationRow>(table, "fuzz.csv");
    for (const auto& row : table.rows)
        if (!(std::isfinite(row.population) && row.population > 0 && row.population <= 1e12))
            stopscan::fuzz::finding("line " + std::to_string(row.line) + ": population " +
                                    std::to_string(row.population));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const bool population = data[0] & 1u;
    const auto& sup = OPTIONS[(data[0] >> 1) % std::size(OPTIONS)];
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        if (population)
            check_population(stopscan::parse_population_table(text, "fuzz.csv"));
        else
            check_counts(stopscan::parse_count_table(text, "fuzz.csv", sup), sup);
    } catch (const stopscan::InputError& e) {
        stopscan::fuzz::check_one_line(e.what());
    }
    return 0;
}
