// What to run: a scenario, a seed, a number of replications and the policies to compare.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stopscan/scenario.hpp"
#include "stopscan/template_matcher.hpp"

namespace stopscan {

/// Variance reduction for rare wrongful outcomes (docs/model.md, "Rare events").
struct RareEvents {
    enum class Method : std::uint8_t {
        none,        ///< plain sampling: integer tallies only (the default)
        importance,  ///< importance sampling of the "some impostor passes tau" event of a search
    };
    Method method = Method::none;
    /// The tilt: a search whose FPIR p is below MAX_TILT passes an impostor with probability
    /// q = min(factor * p, MAX_TILT) instead of p (and never less than p).
    double factor = 1000;
    /// The largest tilted probability: keeps the likelihood ratio of a search without a false
    /// match, (1 - p) / (1 - q), within 1 % of 1.
    static constexpr double MAX_TILT = 0.01;
    bool active() const noexcept { return method != Method::none; }
};

/// A validated plan for one run. Policies are indices into scenario->policies.
struct RunPlan {
    std::shared_ptr<const Scenario> scenario;
    std::uint64_t seed = 0;
    std::int64_t replications = 0;
    std::vector<std::size_t> policies;  ///< policies to evaluate, in output order
    std::size_t baseline = 0;           ///< position of the baseline within `policies`
    int threads = 0;                    ///< 0: all cores
    std::size_t grain = 0;              ///< persons per task; 0: automatic (tests vary it)
    /// Tolerance band for rate ratios against the reference group (four-fifths rule): a
    /// ratio whose confidence interval lies wholly outside it is flagged `outside_band`.
    double band_lo = 0.8;
    double band_hi = 1.25;
    /// Template mode (MODEL.md §5): searches run against explicit synthetic galleries
    /// instead of the score-level model. Much slower; for validation-scale runs.
    bool template_matcher = false;
    TemplateOptions template_options;
    /// Cap on the stops simulated per person: each person's drawn number of stops Y is
    /// replaced by min(Y, cap), in the engine and in the closed form. 0: no cap. It bounds
    /// one person's contribution for `--release dp` (docs/disclosure.md) and changes the
    /// simulated counts (it removes the tail of repeat stops).
    std::int64_t max_stops_per_person = 0;
    /// Importance sampling of false matches (`run --rare-events is[:FACTOR]`): the run's
    /// Results then carry weighted corrections beside the integer tallies (Results::weighted).
    RareEvents rare_events;
};

/// Overrides from the command line; unset fields take the scenario's [run] defaults.
struct RunOptions {
    std::optional<std::uint64_t> seed;
    std::optional<std::int64_t> replications;
    std::optional<std::vector<std::string>> policies;
    std::optional<std::string> baseline;
    std::optional<std::pair<double, double>> band;
    int threads = 0;
    bool template_matcher = false;
    TemplateOptions template_options;
    std::int64_t max_stops_per_person = 0;  ///< see RunPlan; 0: no cap
    RareEvents rare_events;                 ///< see RunPlan; off by default
};

/// Builds a plan. Throws InputError (source "command line") for a rare-event factor out of
/// range or importance sampling with template mode, an unknown policy, a
/// baseline not among the policies, or a policy listed twice.
RunPlan make_run_plan(std::shared_ptr<const Scenario> scenario, const RunOptions& options);

}  // namespace stopscan
