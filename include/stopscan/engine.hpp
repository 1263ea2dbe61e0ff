// The agent-level Monte Carlo engine (MODEL.md §2–§9).
//
// Per replication and cell, the number of persons stopped at least once is drawn exactly
// (binomial over the cell's population), and only those persons are materialised; each
// draws a zero-truncated negative binomial number of stops. A person's records are pure
// functions of (seed, replication, person), a stop's searches and actions of (seed,
// replication, person, stop number), so one pass over the stops serves every policy with
// common random numbers. Tallies are integers, so any split of the work and any thread count
// give bit-identical results.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "stopscan/cells.hpp"
#include "stopscan/metrics.hpp"
#include "stopscan/run_plan.hpp"

namespace stopscan {

class AuditLogWriter;

/// Integer tallies of a whole run: counts[((rep * policies + p) * cells + c) * metrics + k].
///
/// With importance sampling (RunPlan::rare_events, docs/model.md "Rare events") `counts` are
/// the tallies of the same draws with every false match removed, still exact integers, and
/// `weighted` (same layout) holds each replication's weighted correction for the false
/// matches; the estimate of a count is counts + weighted (value()). Without it `weighted` is
/// empty.
struct Results {
    RunPlan plan;
    MetricLayout layout;
    std::vector<std::int64_t> cell_population;
    std::vector<std::uint64_t> counts;
    int threads_used = 0;
    double wall_seconds = 0;
    std::vector<double> weighted = {};

    std::size_t cells() const noexcept { return cell_population.size(); }
    std::size_t policies() const noexcept { return plan.policies.size(); }
    /// The tally row of (replication, policy position, cell).
    const std::uint64_t* row(std::size_t rep, std::size_t policy, std::size_t cell) const noexcept {
        return counts.data() + ((rep * policies() + policy) * cells() + cell) * layout.size();
    }
    /// The weighted corrections of (replication, policy position, cell), or nullptr without
    /// importance sampling.
    const double* weighted_row(std::size_t rep, std::size_t policy,
                               std::size_t cell) const noexcept {
        return weighted.empty() ? nullptr
                                : weighted.data() + ((rep * policies() + policy) * cells() + cell) *
                                                        layout.size();
    }
    /// The estimate of count k in (replication, policy position, cell): the integer tally,
    /// plus its weighted correction under importance sampling.
    double value(std::size_t rep, std::size_t policy, std::size_t cell,
                 std::size_t k) const noexcept {
        const double count = static_cast<double>(row(rep, policy, cell)[k]);
        const double* w = weighted_row(rep, policy, cell);
        return w ? count + w[k] : count;
    }
    /// Total stops over all replications.
    std::uint64_t total_stops() const noexcept;
};

/// Called after each finished replication with (finished, total); may be called from any
/// thread, one call at a time.
using ProgressCallback = std::function<void(std::int64_t, std::int64_t)>;

/// Runs a plan. Construction precomputes per-cell parameters; run() is const and may be
/// called again with the same result.
class Engine {
public:
    /// Precomputes per-cell model quantities. Throws InputError if a cell's parameters are
    /// unusable (e.g. a false-positive identification rate that is not a number).
    explicit Engine(RunPlan plan);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    /// Runs every replication, in parallel over replications and persons. With `audit`, also
    /// streams one record per lookup (docs/audit-log.md) to it, in (replication, person,
    /// stop, policy, search) order, the same bytes for any thread count; the replications then
    /// run one after another, each in parallel over fixed blocks of persons. The tallies are
    /// the same with or without a log. Throws what the writer throws (InternalError on I/O).
    Results run(const ProgressCallback& progress = {}, AuditLogWriter* audit = nullptr) const;

    /// Appends `more` replications to `results` (numbered on from the ones it holds): the
    /// result equals a single run with the larger number of replications. With `audit`, as
    /// run(), the log continuing with the writer's next ticket.
    void extend(Results& results, std::int64_t more, const ProgressCallback& progress = {},
                AuditLogWriter* audit = nullptr) const;

    /// Tallies of one replication ([policy][cell][metric]). `parallel` = false runs the same
    /// body serially (the reference path the determinism tests compare against).
    std::vector<std::uint64_t> run_replication(std::int64_t replication, bool parallel) const;
    /// The same with importance sampling: also fills `weighted` with the replication's
    /// weighted corrections, summed as fixed-point integers, so that they too are the same
    /// bits for any split of the work. Without importance sampling `weighted` is cleared.
    std::vector<std::uint64_t> run_replication(std::int64_t replication, bool parallel,
                                               std::vector<double>& weighted) const;

    const CellTable& cells() const noexcept;
    const MetricLayout& layout() const noexcept;

private:
    struct Model;
    struct Replication;
    Replication prepare(std::int64_t replication) const;
    std::vector<std::uint64_t> run_replication_logged(std::int64_t replication,
                                                      AuditLogWriter& audit,
                                                      std::uint64_t& ticket) const;
    RunPlan plan_;
    std::unique_ptr<const Model> model_;
};

}  // namespace stopscan
