#include "stopscan/run_plan.hpp"

#include <algorithm>

#include "stopscan/error.hpp"

namespace stopscan {

RunPlan make_run_plan(std::shared_ptr<const Scenario> scenario, const RunOptions& options) {
    RunPlan plan;
    plan.seed = options.seed.value_or(scenario->run.seed);
    plan.replications = options.replications.value_or(scenario->run.replications);
    plan.threads = options.threads;
    plan.template_matcher = options.template_matcher;
    plan.max_stops_per_person = options.max_stops_per_person;
    plan.rare_events = options.rare_events;
    if (plan.rare_events.active()) {
        if (!(plan.rare_events.factor >= 1 && plan.rare_events.factor <= 1e12))
            throw InputError("command line", "--rare-events",
                             "is:" + std::to_string(plan.rare_events.factor),
                             "the factor must be a number from 1 to 1e12, e.g. is:1000");
        // Template searches have no FPIR event to tilt: they run a real 1:N search.
        if (plan.template_matcher)
            throw InputError("command line", "--rare-events", "is",
                             "not available with --matcher template: use the score model");
    }
    plan.template_options = options.template_options;
    plan.template_options.seed = plan.seed;
    plan.band_lo = options.band ? options.band->first : scenario->run.band_lo;
    plan.band_hi = options.band ? options.band->second : scenario->run.band_hi;
    const auto& names = options.policies ? *options.policies : scenario->run.policies;
    // The baseline defaults to the scenario's when it is among the chosen policies, else to
    // the first chosen policy.
    std::string baseline = options.baseline.value_or(
        std::find(names.begin(), names.end(), scenario->run.baseline) != names.end()
            ? scenario->run.baseline
            : names.front());
    std::string known;
    for (const auto& p : scenario->policies) known += (known.empty() ? "" : ", ") + p.name;
    for (const auto& name : names) {
        const Policy* policy = scenario->find_policy(name);
        if (!policy)
            throw InputError("command line", "--policies", name,
                             "unknown policy: allowed: " + known);
        const auto index = static_cast<std::size_t>(policy - scenario->policies.data());
        if (std::find(plan.policies.begin(), plan.policies.end(), index) != plan.policies.end())
            throw InputError("command line", "--policies", name,
                             "policy listed twice: list each once");
        plan.policies.push_back(index);
    }
    const auto it = std::find(names.begin(), names.end(), baseline);
    if (it == names.end())
        throw InputError(
            "command line", "--baseline",
            baseline, "the baseline must be one of the run's policies (" + [&] {
                std::string s;
                for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
                return s;
            }() + ")");
    plan.baseline = static_cast<std::size_t>(it - names.begin());
    plan.scenario = std::move(scenario);
    return plan;
}

}  // namespace stopscan
