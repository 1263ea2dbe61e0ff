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
        MATED_SEARCHES,           ///< searches of people enrolled in the database
        MATES_MISSED,             ///< mated searches that did not return the mate
        NONMATED_SEARCHES,        ///< searches of people not enrolled
        NONMATED_FALSE_MATCHES,   ///< non-mated searches that returned a record
        FALSE_MATCHES_SAME_CELL,  ///< false matches whose record's owner is in the probe's cell
        HITS,                     ///< searches that returned any record (an "identification")
        PER_DATABASE_COUNT
    };

    /// Followed, per database, by one count per dimension of false matches whose record's
    /// owner shares the probe's category on that dimension.
    MetricLayout(std::vector<std::string> database_names, std::vector<std::string> dimension_names);

    /// Number of count metrics in a row.
    std::size_t size() const noexcept { return FIXED_COUNT + block() * databases_.size(); }
    /// Position of a per-database metric.
    std::size_t at(std::size_t database, PerDatabase metric) const noexcept {
        return FIXED_COUNT + database * block() + metric;
    }
    /// Position of the count of false matches in `database` whose owner shares the probe's
    /// category on `dimension`.
    std::size_t same_category(std::size_t database, std::size_t dimension) const noexcept {
        return FIXED_COUNT + database * block() + PER_DATABASE_COUNT + dimension;
    }
    /// The output name of the metric at `index`, e.g. "false_matches.IABS".
    std::string name(std::size_t index) const;
    const std::vector<std::string>& databases() const noexcept { return databases_; }
    const std::vector<std::string>& dimensions() const noexcept { return dimensions_; }

private:
    std::size_t block() const noexcept { return PER_DATABASE_COUNT + dimensions_.size(); }
    std::vector<std::string> databases_;
    std::vector<std::string> dimensions_;
};

}  // namespace stopscan
