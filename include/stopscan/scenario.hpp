// The validated, immutable description of a simulated world (MODEL.md §2–§7).
//
// A Scenario is built once from Settings (INI file + `--set` overrides) by load_scenario(),
// which checks every key against the schema and every value against its range; after that
// nothing in it changes. The schema is documented key by key in docs/scenario.md.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "stopscan/expectations.hpp"
#include "stopscan/parameter_distribution.hpp"
#include "stopscan/settings.hpp"

namespace stopscan {

/// A capture modality. Fingerprints: the Biometric Services Gateway; face: the Operator
/// Initiated Facial Recognition app.
enum class Modality : std::uint8_t { fingerprint = 0, face = 1 };
inline constexpr std::size_t MODALITY_COUNT = 2;
inline constexpr std::array<const char*, MODALITY_COUNT> MODALITY_NAMES{"fingerprint", "face"};

/// One demographic dimension (ethnicity, sex, ...), optionally conditional on a parent.
struct Dimension {
    std::string name;
    std::vector<std::string> categories;
    std::size_t reference = 0;          ///< index of the reference category for ratios
    std::optional<std::size_t> parent;  ///< index of the parent dimension, if conditional
    /// shares[p][k]: share of category k given parent category p (p = 0 when no parent).
    std::vector<std::vector<double>> shares;
};

/// A per-cell parameter written as base × Π factor(dimension, category) (MODEL.md §2).
struct CellParameter {
    std::string key;  ///< the scenario key, for error messages
    double base = 0;
    /// factors[d][k] for dimension d and category k; 1 where the scenario gives none.
    std::vector<std::vector<double>> factors;
    bool is_probability = true;
};

/// What a database is for; the policy presets of MODEL.md §6 act on the role.
enum class DatabaseRole : std::uint8_t { criminal, immigration };

/// Operating point of one modality against one database: the score-level (binormal) model
/// of MODEL.md §5. FMR and FNMR are given at the operating point; the engine derives the
/// impostor and genuine score distributions from them (see MatchModel).
struct Matcher {
    CellParameter fmr;   ///< 1:1 false match rate of a probe of the cell against one record
    CellParameter fnmr;  ///< false non-match rate of a mated comparison
    /// FMR multiplier, per dimension, for gallery records that share the probe's category on
    /// that dimension (false matches cluster within demographic groups); 1 = no clustering.
    std::vector<double> same_group_factor;
    double genuine_sd = 1;               ///< spread of genuine scores relative to impostor scores
    std::optional<double> threshold;     ///< operating threshold as a score (impostor scale)
    std::optional<double> target_fpir;   ///< or: threshold giving this FPIR ...
    std::int64_t reference_gallery = 0;  ///< ... at this gallery size (default: database size)
    bool human_review = false;           ///< a person reviews a candidate list (face searches)
    std::int64_t candidates = 1;         ///< length of the candidate list
    double review_false_accept = 0;      ///< P(reviewer confirms a wrong candidate)
    double review_false_reject = 0;      ///< P(reviewer rejects the right candidate)
};

/// A national biometric database and the records it holds (MODEL.md §4).
struct Database {
    std::string name;
    DatabaseRole role = DatabaseRole::criminal;
    std::int64_t size = 0;      ///< records in the gallery (M_D)
    CellParameter composition;  ///< gallery weight of a cell relative to its enrolled population
    CellParameter enrolment;    ///< P(person has a record)
    CellParameter truth;        ///< P(adverse truth | enrolled): wanted / no valid leave
    CellParameter truth_unenrolled;   ///< P(adverse truth | not enrolled)
    CellParameter false_flag;         ///< P(record adverse | truth not adverse)
    CellParameter missing_flag;       ///< P(record not adverse | truth adverse)
    CellParameter wrong_link;         ///< P(biometrics linked to another identity's record)
    CellParameter gallery_flag_rate;  ///< P(adverse flag) of a record of this cell in the gallery
    CellParameter arrest;             ///< P(arrest | adverse flag shown)
    CellParameter ho_referral;        ///< P(Home Office referral | adverse flag shown)
    CellParameter detention;          ///< P(detention | referral)
    std::array<std::optional<Matcher>, MODALITY_COUNT> matchers;
};

/// Where police can search a database under a policy.
enum class Access : std::uint8_t { street, custody, none };
/// What the officer is shown of a returned record.
enum class Display : std::uint8_t { full, flag_only, none };

/// A policy's rule for one database (MODEL.md §6).
struct DatabaseRule {
    Access access = Access::street;
    Display display = Display::full;
    double verify = 0;  ///< P(an independent check catches an erroneous hit before action)
};

/// A named policy: one rule per database, in the scenario's database order. A policy may
/// differ by the category of one dimension (the police force area: "IABS searched on the
/// street in six forces, not in the others", RJN 2022).
struct Policy {
    std::string name;
    std::string description;
    std::vector<DatabaseRule> rules;  ///< the rules wherever no category override applies
    /// The dimension the rules vary by, if any, and rules_by_category[k][d] for its category
    /// k (a full copy per category, overrides applied).
    std::optional<std::size_t> varies_by;
    std::vector<std::vector<DatabaseRule>> rules_by_category;

    /// The rules that apply to persons of category `category` of dimension `varies_by`
    /// (ignored when the policy is uniform).
    const std::vector<DatabaseRule>& rules_for_category(std::size_t category) const noexcept {
        return varies_by ? rules_by_category[category] : rules;
    }
    /// Whether any category's rule lets police search database d at all.
    bool ever_searches(std::size_t d) const noexcept;
};

/// The four presets of MODEL.md §6, in this order.
inline constexpr std::array<const char*, 4> PRESET_POLICIES{"dual-search", "ident1-only",
                                                            "firewall", "custody-verify"};

/// Defaults for a run, overridable on the command line.
struct RunDefaults {
    std::uint64_t seed = 0;
    std::int64_t replications = 0;
    std::vector<std::string> policies;
    std::string baseline;
    double band_lo = 0.8;  ///< tolerance band for rate ratios (four-fifths rule)
    double band_hi = 1.25;
};

/// A validated scenario. Immutable after load_scenario().
struct Scenario {
    std::string name;
    std::string description;
    std::string period;
    std::int64_t population = 0;
    std::vector<Dimension> dimensions;
    std::int64_t stops_total = 0;
    CellParameter propensity;
    double dispersion = 0;  ///< negative binomial k; +infinity means Poisson
    std::array<double, MODALITY_COUNT> modality_share{};
    std::vector<Database> databases;
    std::vector<Policy> policies;  ///< every policy the scenario defines (presets first)
    RunDefaults run;
    Settings settings;  ///< the effective settings, after overrides
    /// Parameters written as distributions (MODEL.md §8), drawn once per replication; the
    /// values above hold their medians.
    std::vector<UncertainParameter> uncertain;
    /// Parameters solved at load time from calibration targets (stops.target_ratio.*,
    /// stops.target_stops_per_person), one "key = value (solved from ...)" line each.
    std::vector<std::string> solved;
    /// Expectations of the [expect] section (`expect.NAME = EXPRESSION`), parsed, in the
    /// order of their names; evaluated on the run's Summary (docs/expectations.md).
    std::vector<ResultExpectation> expectations;

    /// The policy called `name`, or nullptr.
    const Policy* find_policy(const std::string& name) const;
    /// Index of the database called `name`, or nullopt.
    std::optional<std::size_t> find_database(const std::string& name) const;
};

/// Builds and validates a scenario. Throws InputError naming the source, the key and what
/// is allowed, for an unknown key (with the nearest valid key), a missing key, a value out
/// of range, or a per-cell probability that leaves [0, 1] (naming the cell).
Scenario load_scenario(const Settings& settings);

/// The scenario of one replication: every uncertain parameter replaced by its draw for
/// (seed, replication). Returns a copy of `scenario` when nothing is uncertain. Throws
/// InputError when a draw makes the scenario invalid (e.g. base × factor above 1).
Scenario scenario_for_replication(const Scenario& scenario, std::uint64_t seed,
                                  std::uint64_t replication);

/// The INI text of the embedded default scenario (scenarios/default.ini at build time).
std::string_view default_scenario_text();

/// Every key the schema accepts for these settings (used for "did you mean" and docs).
std::vector<std::string> declared_keys(const Settings& settings);

}  // namespace stopscan
