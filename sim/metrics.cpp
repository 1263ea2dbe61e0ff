#include "stopscan/metrics.hpp"

#include <array>

namespace stopscan {

MetricLayout::MetricLayout(std::vector<std::string> database_names,
                           std::vector<std::string> dimension_names)
    : databases_(std::move(database_names)), dimensions_(std::move(dimension_names)) {}

std::string MetricLayout::name(std::size_t index) const {
    static constexpr std::array<const char*, FIXED_COUNT> FIXED_NAMES{
        "stops",      "persons_stopped",     "status_disclosures", "lawful_status_disclosures",
        "arrests",    "wrongful_arrests",    "ho_referrals",       "wrongful_ho_referrals",
        "detentions", "wrongful_detentions", "wrongful_outcomes",  "persons_wrongfully_affected"};
    static constexpr std::array<const char*, PER_DATABASE_COUNT> PER_DATABASE_NAMES{
        "searches",
        "true_matches",
        "false_matches",
        "record_error_hits",
        "wrongful_by_false_match",
        "wrongful_by_record_error",
        "mated_searches",
        "mates_missed",
        "nonmated_searches",
        "nonmated_false_matches",
        "false_matches_same_cell",
        "hits"};
    if (index < FIXED_COUNT) return FIXED_NAMES[index];
    const std::size_t offset = index - FIXED_COUNT;
    const std::size_t within = offset % block();
    const std::string& database = databases_[offset / block()];
    if (within < PER_DATABASE_COUNT)
        return std::string(PER_DATABASE_NAMES[within]) + "." + database;
    return "false_matches_same_" + dimensions_[within - PER_DATABASE_COUNT] + "." + database;
}

}  // namespace stopscan
