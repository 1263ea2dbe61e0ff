// What a policy does with the searches of one stop: which databases are searched, what the
// officer is shown, which actions follow, and whether each action is rightful or wrongful
// and why (MODEL.md §6–§7). A pure function of its inputs, so it is tested as a truth table.
#pragma once

#include <cstdint>
#include <vector>

#include "stopscan/metrics.hpp"
#include "stopscan/scenario.hpp"

namespace stopscan {

/// What a 1:N search returned, before any policy acts on it.
enum class Hit : std::uint8_t {
    none,         ///< no candidate above threshold
    own_record,   ///< the person's own record (accurate or not)
    wrong_link,   ///< the person's biometrics are linked to another identity's record
    false_match,  ///< a biometric false match: another person's record
};

/// Outcome of searching one database at one stop.
struct SearchResult {
    Hit hit = Hit::none;
    bool flag = false;           ///< the returned record shows an adverse flag
    bool inaccurate = false;     ///< the returned record is wrong about this person (record error)
    bool mated = false;          ///< the person has a record in the database
    bool mate_returned = false;  ///< the search returned the person's own (or linked) record
    bool same_cell = false;      ///< a false match's record belongs to the probe's cell
    std::uint32_t same_category = 0;  ///< bit k: ... shares the probe's category on dimension k
};

/// The persistent state of one person in one database (MODEL.md §2, §4).
struct PersonRecord {
    bool enrolled = false;
    bool truth = false;            ///< adverse truth: wanted / no valid leave
    bool flag = false;             ///< what the person's own record says
    bool wrong_link = false;       ///< biometrics point to another identity's record
    bool wrong_link_flag = false;  ///< what that other record says
};

/// Action probabilities for the person's cell and one database.
struct ActionOdds {
    double arrest = 0;
    double referral = 0;
    double detention = 0;  ///< given referral
};

/// Uniforms for the actions after a hit in one database, shared by every policy
/// (common random numbers).
struct ActionDraws {
    double verify = 1;
    double arrest = 1;
    double referral = 1;
    double detention = 1;
};

/// Everything apply_policy needs to know about one stop, one entry per database.
struct StopFacts {
    const SearchResult* results;
    const PersonRecord* records;
    const ActionOdds* odds;
    const ActionDraws* draws;
    const DatabaseRole* roles;
    std::size_t databases;
};

/// Adds the counts of one stop under one policy's rules for the person's cell
/// (Policy::rules_for_category) to `row` (a tally row laid out by
/// `layout`) and returns whether the stop produced at least one wrongful outcome. Does not
/// count stops or persons (the caller does).
bool apply_policy(const std::vector<DatabaseRule>& rules, const StopFacts& stop,
                  const MetricLayout& layout, std::uint64_t* row) noexcept;

}  // namespace stopscan
