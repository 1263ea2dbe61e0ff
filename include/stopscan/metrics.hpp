// The count metrics tallied per (replication, policy, cell), and their names in outputs
// (the output contract of summary.csv; MODEL.md §7).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace stopscan {

/// Positions of the count metrics in one tally row. Fixed metrics come first, then one
/// block of PER_DATABASE metrics for each database, in the scenario's database order.
class MetricLayout {
public:
    enum Fixed : std::size_t {
        STOPS,
        PERSONS_STOPPED,
        STATUS_DISCLOSURES,
        LAWFUL_STATUS_DISCLOSURES,
        ARRESTS,
        WRONGFUL_ARRESTS,
        HO_REFERRALS,
        WRONGFUL_HO_REFERRALS,
        DETENTIONS,
        WRONGFUL_DETENTIONS,
        WRONGFUL_OUTCOMES,
        PERSONS_WRONGFULLY_AFFECTED,
        FIXED_COUNT
    };
    enum PerDatabase : std::size_t {
        SEARCHES,
        TRUE_MATCHES,
        FALSE_MATCHES,
        RECORD_ERROR_HITS,
        WRONGFUL_BY_FALSE_MATCH,
        WRONGFUL_BY_RECORD_ERROR,
        PER_DATABASE_COUNT
    };

    explicit MetricLayout(std::vector<std::string> database_names);

    /// Number of count metrics in a row.
    std::size_t size() const noexcept {
        return FIXED_COUNT + PER_DATABASE_COUNT * databases_.size();
    }
    /// Position of a per-database metric.
    std::size_t at(std::size_t database, PerDatabase metric) const noexcept {
        return FIXED_COUNT + database * PER_DATABASE_COUNT + metric;
    }
    /// The output name of the metric at `index`, e.g. "false_matches.IABS".
    std::string name(std::size_t index) const;
    const std::vector<std::string>& databases() const noexcept { return databases_; }

private:
    std::vector<std::string> databases_;
};

}  // namespace stopscan
