// What a policy does with the searches of one stop: which databases are searched, what the
// officer is shown, which actions follow, and whether each action is rightful or wrongful
// and why (MODEL.md §6–§7). A pure function of its inputs, so it is tested as a truth table.
#pragma once

#include <array>
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

/// The most databases a scenario may have (the engine's per-stop arrays are this long).
inline constexpr std::size_t MAX_DATABASES = 16;

/// What the officer was shown of one search's result.
enum class ShownAs : std::uint8_t {
    none,       ///< nothing: no candidate, display none, or flag-only with no flag
    flag_only,  ///< only the adverse flag
    full,       ///< the record
};

/// Action bits of a Lookup (the same values as AuditAction in audit_log.hpp).
enum LookupAction : std::uint8_t {
    LOOKUP_ARREST = 1,
    LOOKUP_REFERRAL = 2,
    LOOKUP_DETENTION = 4,
};

/// What one search of one database did at one stop under one policy: the facts of one
/// audit-log record (docs/audit-log.md).
struct Lookup {
    std::uint8_t database = 0;
    Hit hit = Hit::none;
    ShownAs shown = ShownAs::none;
    std::uint8_t actions = 0;  ///< LookupAction bits: the actions this search led to
    /// The actions are not supported by the person's own circumstances (only with actions);
    /// the cause is a false match when `hit` is Hit::false_match, a record error otherwise.
    bool wrongful = false;
};

/// The lookups of one stop under one policy, in the order the databases were searched
/// (street searches in database order, then custody searches).
struct StopLookups {
    std::array<Lookup, MAX_DATABASES> entries;
    std::size_t count = 0;
};

/// Adds the counts of one stop under one policy's rules for the person's cell
/// (Policy::rules_for_category) to `row` (a tally row laid out by
/// `layout`) and returns whether the stop produced at least one wrongful outcome. Does not
/// count stops or persons (the caller does). With `lookups`, also reports each search
/// (count reset first); without, the tallying path is compiled separately, so it pays
/// nothing for the report.
bool apply_policy(const std::vector<DatabaseRule>& rules, const StopFacts& stop,
                  const MetricLayout& layout, std::uint64_t* row,
                  StopLookups* lookups = nullptr) noexcept;

}  // namespace stopscan
