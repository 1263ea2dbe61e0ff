#include "stopscan/metrics.hpp"

#include <array>

namespace stopscan {

MetricLayout::MetricLayout(std::vector<std::string> database_names)
    : databases_(std::move(database_names)) {}

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
        "wrongful_by_record_error"};
    if (index < FIXED_COUNT) return FIXED_NAMES[index];
    const std::size_t offset = index - FIXED_COUNT;
    return std::string(PER_DATABASE_NAMES[offset % PER_DATABASE_COUNT]) + "." +
           databases_[offset / PER_DATABASE_COUNT];
}

}  // namespace stopscan
