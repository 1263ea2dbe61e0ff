// Disclosure control of released tables (`--release none|sdc|dp`; docs/disclosure.md).
//
// A released table is a set of count cells keyed by (policy, metric, dimension, category),
// with declared linear relations ("margins"): the categories of one dimension sum to the
// `all` cell, and optionally one metric is the sum of others. Two ways to release it:
//
// - sdc: statistical disclosure control. Primary suppression of cells below k, secondary
//   suppression until no suppressed cell follows exactly from the released cells and the
//   relations (checked by linear algebra), optional rounding to a base.
// - dp: differential privacy with the person as the privacy unit. Every cell of the public
//   key set, zeros included, gets discrete Laplace noise drawn in integer arithmetic from
//   OpenSSL's CSPRNG (Canonne, Kamath & Steinke 2020, Algorithms 1-2), with ε charged to a
//   budget ledger that refuses to overspend.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace stopscan {

struct Results;
class MetricLayout;

/// How tables are released.
enum class ReleaseMode : std::uint8_t { none, sdc, dp };

/// Parses "none", "sdc" or "dp". Throws InputError naming `source` and `flag`.
ReleaseMode parse_release_mode(const std::string& source, const std::string& flag,
                               const std::string& text);
/// "none", "sdc" or "dp".
const char* release_mode_name(ReleaseMode mode) noexcept;

/// What a release did to a cell.
enum class CellStatus : std::uint8_t {
    released,   ///< published (possibly rounded or noised)
    primary,    ///< suppressed: below the threshold k
    secondary,  ///< suppressed so that a primary cell cannot be derived from the margins
};
/// "released", "primary" or "secondary".
const char* cell_status_name(CellStatus status) noexcept;

/// One cell of a released table. The confidential value is `count / divisor` of its table:
/// an integer count, or a mean over replications of integer counts.
struct ReleaseCell {
    std::string policy;
    std::string metric;
    std::string dimension;  ///< "all" or a dimension name
    std::string category;   ///< "all" or a category name
    std::int64_t count = 0;
    double mc_se = 0;  ///< Monte Carlo standard error of the value (0 for observed data)

    // Set by apply_sdc / apply_dp / apply_none:
    CellStatus status = CellStatus::released;
    /// The value as released; empty when suppressed. Under dp it is unbiased: it can be
    /// negative or fractional, and is never clamped (display_released() clamps for people).
    std::optional<double> released;
    /// dp: 95 % interval of the true value given the privacy noise alone.
    std::optional<double> noise_lo95, noise_hi95;
    /// dp: one 95 % interval combining the Monte Carlo error (mc_se) and the privacy noise.
    std::optional<double> lo95, hi95;
};

/// A declared margin: cells[total] == Σ cells[parts] for the confidential counts.
struct MarginRelation {
    std::size_t total = 0;
    std::vector<std::size_t> parts;
};

/// A named table of count cells with declared margins.
struct ReleaseTable {
    std::string name;
    /// Each cell's value is count / divisor (the number of replications averaged; 1 for
    /// observed data). DP noise is added to the integer count, then divided.
    std::int64_t divisor = 1;
    std::vector<ReleaseCell> cells;
    std::vector<MarginRelation> relations;
    /// The rule and its parameters, set by the release (one paragraph, for a footer).
    std::string footer;

    /// Appends a cell and returns its index.
    std::size_t add_cell(std::string policy, std::string metric, std::string dimension,
                         std::string category, std::int64_t count, double mc_se = 0);
    /// Index of a cell, if present.
    std::optional<std::size_t> find(const std::string& policy, const std::string& metric,
                                    const std::string& dimension,
                                    const std::string& category) const;
    /// Declares, for every (policy, metric, dimension) with an (policy, metric, all, all)
    /// cell, that the dimension's categories sum to it.
    void add_dimension_margins();
    /// Declares, for every (policy, dimension, category) where all of them are present,
    /// that `total_metric` is the sum of `part_metrics` (e.g. wrongful_outcomes =
    /// wrongful_arrests + wrongful_ho_referrals + wrongful_detentions).
    void add_metric_sum(const std::string& total_metric,
                        const std::vector<std::string>& part_metrics);
    /// The confidential value of cell i: count / divisor.
    double value(std::size_t i) const noexcept;
};

/// Marks every cell released with its exact value (no protection).
void apply_none(ReleaseTable& table);

/// One table holding the cells and relations of `tables` (which must share a divisor), so
/// that relations across metrics can be declared with add_metric_sum(). Throws
/// InternalError if the divisors differ.
ReleaseTable merge_tables(const std::vector<ReleaseTable>& tables, std::string name);

// ---------------------------------------------------------------------------------------
// Statistical disclosure control.

/// Parameters of sdc.
struct SdcOptions {
    /// Threshold: a cell whose value is below k (and above 0, unless suppress_zeros) is
    /// suppressed. The default 10 follows common practice for published crime and health
    /// tables (e.g. ONS's 'fewer than 10' rule).
    double k = 10;
    /// Round released values to the nearest multiple of this base; 0: no rounding.
    std::int64_t round_base = 0;
    /// Also suppress zero cells (off: a zero is released, so that "nobody" stays visible).
    bool suppress_zeros = false;
};

/// Applies primary suppression (values in (0, k), or [0, k) with suppress_zeros),
/// secondary suppression (see docs/disclosure.md) until no suppressed cell is recoverable,
/// and rounding. Sets each cell's status and released value and the table's footer.
/// Throws InternalError if a declared relation does not hold for the counts.
void apply_sdc(ReleaseTable& table, const SdcOptions& options);

/// The suppressed cells whose value is determined exactly by the released cells and the
/// table's relations (a suppressed x_i is determined iff e_i lies in the row space of the
/// relation matrix restricted to the suppressed cells). Empty after apply_sdc.
std::vector<std::size_t> recoverable_cells(const ReleaseTable& table);

// ---------------------------------------------------------------------------------------
// Differential privacy.

/// A source of uniform 64-bit words.
class RandomBits {
public:
    virtual ~RandomBits() = default;
    /// A uniform 64-bit word. Throws InternalError if the source fails.
    virtual std::uint64_t next() = 0;
};

/// OpenSSL's CSPRNG (RAND_bytes), read in blocks: never the simulation's generator, whose
/// draws are reproducible from the seed and so would let anyone subtract the noise.
class CryptoRandomBits final : public RandomBits {
public:
    /// Throws InternalError if RAND_bytes fails.
    std::uint64_t next() override;

private:
    unsigned char buffer_[4096] = {};
    std::size_t used_ = sizeof buffer_;
};

/// A uniform integer in [0, n), n ≥ 1, by rejection (no modulo bias).
std::uint64_t uniform_below(RandomBits& bits, std::uint64_t n);
/// True with probability exp(-num/den), num ≥ 0, den ≥ 1, in integer arithmetic (CKS 2020,
/// Algorithm 1). Throws InternalError if den × K would overflow.
bool bernoulli_exp(RandomBits& bits, std::uint64_t num, std::uint64_t den);
/// A draw of the discrete Laplace law P(Y = y) ∝ exp(-|y| / scale) with scale =
/// scale_num / scale_den > 0 (CKS 2020, Algorithm 2), exact, in integer arithmetic.
std::int64_t sample_discrete_laplace(RandomBits& bits, std::uint64_t scale_num,
                                     std::uint64_t scale_den);
/// P(Y = y) of the discrete Laplace law with this scale.
double discrete_laplace_pmf(std::int64_t y, double scale);
/// P(Y ≤ y) of the discrete Laplace law with this scale.
double discrete_laplace_cdf(std::int64_t y, double scale);
/// The smallest m with P(|Y| ≤ m) ≥ 0.95.
std::int64_t discrete_laplace_half_width95(double scale);

/// A privacy parameter ε held exactly, in millionths (so sums in the ledger are exact).
struct Epsilon {
    std::int64_t micro = 0;
    /// Parses a decimal number in (0, 100] with at most 6 decimals. Throws InputError naming
    /// `source` and `flag`.
    static Epsilon parse(const std::string& source, const std::string& flag,
                         const std::string& text);
    double value() const noexcept { return static_cast<double>(micro) / 1e6; }
    /// Shortest decimal text, e.g. "0.5".
    std::string text() const;
};

/// The ε budget of one release: each table's ε under sequential composition, refusing any
/// charge that would make the total exceed the budget.
class PrivacyLedger {
public:
    explicit PrivacyLedger(Epsilon total) : total_(total) {}
    /// Records ε for a table. Throws InputError naming --epsilon-total if the running total
    /// would exceed the budget; the ledger is unchanged then.
    void charge(const std::string& table, Epsilon epsilon);
    Epsilon total() const noexcept { return total_; }
    Epsilon spent() const noexcept { return {spent_}; }
    /// {"epsilon_total": T, "epsilon_spent": S, "tables": [{"table": ..., "epsilon": ...}]}
    std::string json() const;

private:
    Epsilon total_;
    std::int64_t spent_ = 0;
    std::vector<std::pair<std::string, Epsilon>> entries_;
};

/// How much one person can change one table: the L1 sensitivity of the table's counts.
struct Contribution {
    /// The most one person adds to any one cell (e.g. cap on stops × the most one stop adds
    /// to the metric).
    std::int64_t per_cell = 1;
    /// How many cells of the table one person's records can reach: policies × (1 + number
    /// of dimensions), since a person is in one category of each dimension and in `all`.
    std::int64_t cells = 1;
    std::int64_t sensitivity() const noexcept { return per_cell * cells; }
};

/// Adds discrete Laplace noise with scale sensitivity / ε to every cell's integer count
/// (charging ε to the ledger first), and sets each cell's released value (noisy count /
/// divisor), its noise interval and its combined interval. Throws InputError from the
/// ledger; InternalError if the sensitivity is not positive.
void apply_dp(ReleaseTable& table, Epsilon epsilon, const Contribution& contribution,
              PrivacyLedger& ledger, RandomBits& bits);

/// Half-width q of the combined 95 % interval of X = N(0, mc_se²) + Y / divisor, Y discrete
/// Laplace with `scale`: the 97.5 % quantile of the convolution, computed exactly (sum over
/// the discrete noise of normal CDFs, bisection). mc_se = 0 gives the noise's own quantile.
double combined_half_width95(double mc_se, double scale, std::int64_t divisor);

// ---------------------------------------------------------------------------------------
// Tables of a run, and output.

/// One table per count metric of summary.csv (stops, searches.DB, ..., wrongful_outcomes,
/// persons_wrongfully_affected): cells policy × group (all, then every category of every
/// dimension, zeros included), counts summed over replications, divisor = replications,
/// mc_se = the standard error of the mean over replications; dimension margins declared.
std::vector<ReleaseTable> run_count_tables(const Results& results);

/// The most one stop adds to a count metric of summary.csv (wrongful_outcomes: 3, an arrest,
/// a referral and a detention; status disclosures: one per immigration database; the
/// person-level counts persons_stopped and persons_wrongfully_affected: 0, see
/// person_level_metric()). Throws InternalError for a metric it does not know.
std::int64_t per_stop_bound(const std::string& metric, std::int64_t immigration_databases);
/// Whether a metric counts persons (at most 1 per person and cell, whatever the cap).
bool person_level_metric(const std::string& metric) noexcept;

/// Everything a run's release needs (`run --release ...`).
struct ReleaseOptions {
    ReleaseMode mode = ReleaseMode::none;
    SdcOptions sdc;
    /// dp: ε per table; empty: epsilon_total divided evenly among the tables.
    std::optional<Epsilon> epsilon;
    Epsilon epsilon_total{1'000'000};
    /// dp: the cap on stops per person that the engine enforced (0: none, which dp refuses);
    /// must equal the run's RunPlan::max_stops_per_person.
    std::int64_t max_stops_per_person = 0;
};

/// The released tables of a run and, under dp, the ledger (JSON) for the manifest.
struct Release {
    ReleaseMode mode = ReleaseMode::none;
    std::vector<ReleaseTable> tables;
    std::string ledger_json;  ///< "" unless dp
    /// {"mode": ..., parameters ..., "ledger": ...}: the manifest's "release" object.
    std::string manifest_json;
};

/// The names of the tables run_count_tables() makes (its count metrics, in order).
std::vector<std::string> run_count_metric_names(const MetricLayout& layout);

/// dp: the ε of each table (--epsilon, or --epsilon-total shared evenly in whole
/// millionths), after charging every table to a trial ledger. Throws InputError, as
/// release_run_tables() would, if the share is 0 or the total would exceed the budget: so a
/// run can be refused before it simulates anything.
Epsilon dp_epsilon_per_table(const ReleaseOptions& options, const std::vector<std::string>& tables);

/// Releases a run's count tables: none (exact), sdc (one table "counts" with the margins and
/// the metric sums of summary.csv), or dp (one table per metric, each with
/// Δ = cap × per_stop_bound (1 for person counts) × policies × (1 + dimensions)). Throws
/// InputError for a dp release without a stop cap, or one that exceeds the budget (before
/// any noise is drawn); InternalError if the cap is not the one the run's engine enforced
/// (results.plan.max_stops_per_person).
Release release_run_tables(const Results& results, const ReleaseOptions& options, RandomBits& bits);

/// CSV of released tables: table,policy,dimension,category,metric,status,value,noise_lo95,
/// noise_hi95,lo95,hi95,interval — then each table's footer as "# " lines.
std::string release_csv(const std::vector<ReleaseTable>& tables, ReleaseMode mode);
/// A released value for people: suppressed cells as "suppressed", dp values clamped at 0
/// and rounded to whole counts (the CSV keeps the unbiased value).
std::string display_released(const ReleaseCell& cell, ReleaseMode mode, std::int64_t divisor);

}  // namespace stopscan
