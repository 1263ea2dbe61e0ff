// Template mode (MODEL.md §5, "a second, explicit fidelity tier"): an explicit synthetic
// gallery of feature vectors for one database, probes made from it, and an exact 1:N cosine
// search, measured against the score-level (binormal) model of match_model.hpp.
//
// Glossary (MODEL.md symbols): M = records of the real gallery (MatchModel::records()), n =
// records of the scaled template gallery, D = template dimension, w = group weight, t = the
// cosine threshold, FMR' = the per-record false match rate at t of the scaled gallery, s_c =
// the capture noise of probe cell c.
//
// Templates. A record of gallery cell g is
//     x = normalise( sqrt(w)·γ_g + sqrt(1 − w)·z ),   γ_g = (1/sqrt(K))·Σ_d a(d, g_d),
// where g_d is g's category on dimension d, z and every a(d, k) are independent N(0, I/D)
// vectors (squared norm ≈ 1) and K is the number of dimensions. The group component is shared per
// *category* (not per cell): two records that share j of the K categories have expected cosine ≈
// w·j/K, so false matches cluster within every dimension, as the score model's per-dimension
// same_group_factor says. A mated probe is normalise(x_mate + s_c·e), e ~ N(0, I/D) the capture
// noise; a non-mated probe is a fresh synthetic person of its cell (same group component, new z)
// with the same capture noise. Similarity is the cosine (dot product of unit vectors).
//
// Scaling (why a gallery of n ≈ 1e5 records can stand for M ≈ 1e7). What a search of the
// real gallery does with impostors is governed by P(best of M impostors ≥ threshold) =
// FPIR = 1 − (1 − FMR)^M. We keep n ≪ M records and lower the threshold until each record
// has FMR' = −expm1(log1p(−FPIR)/n), so that 1 − (1 − FMR')^n = FPIR exactly: a non-mated
// search returns someone with the real probability, and the number of impostors above the
// threshold, Binomial(n, FMR') vs Binomial(M, FMR), has the same Poisson(−log(1 − FPIR))
// limit, so candidate lists have the real length too. FPIR is the score-level model's for
// the reference probe cell (every dimension at its reference category) at the threshold in
// use. With w = 0 every template is uniform on the unit sphere, so the cosine of a probe and
// any other person's record has the exact law (cos + 1)/2 ~ Beta(a, a), a = (D − 1)/2, and
// t = 2u − 1 with 1 − I_u(a, a) = FMR' (Boost's ibetac_inv). The genuine side is kept by
// calibrating s_c so that P(genuine cosine < t) = FNMR_c of the score model (derived exactly
// in sim/template_matcher.cpp). What scaling does not keep: each template record stands for
// M/n real records, so per-record counts (doppelgangers) are at that granularity; and the
// rank-1 overtaking of a passing genuine score by an impostor depends on the tail shapes,
// which differ between the cosine and the binormal models (reported, not calibrated). With
// w > 0 the threshold stays at its w = 0 value (a threshold set on a population without
// structure), and structure moves every group's FMR away from it, as in real evaluations.
// At w = 0 every pair has the same FMR', so the score model's per-cell FMR factors and
// same_group_factor have no counterpart here (they are reported as its predictions); per-cell
// FNMR factors are reproduced through s_c.
//
// Random numbers: every vector is a pure function of ReplicationKey(seed, replication) and
// Purpose::SearchScores with the template-mode sub-indices below (entity, index = block of
// four coordinates), so a template or probe is the same whatever thread makes it. Nothing
// else is random (mates are taken in record order: records of a cell are exchangeable).
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "stopscan/cells.hpp"
#include "stopscan/match_model.hpp"
#include "stopscan/random.hpp"
#include "stopscan/scenario.hpp"

namespace stopscan {

/// Sub-indices of Purpose::SearchScores used by template mode. They sit far above the
/// database indices the engine uses as subs, so template draws never share a key with an
/// engine draw even under the same seed.
enum TemplateSub : std::uint32_t {
    TEMPLATE_SUB_RECORD = 0x54000000,  ///< individual component of gallery record `entity`
    TEMPLATE_SUB_GROUP = 0x54000001,   ///< group component a(d, k), entity = (d << 32) | k
    TEMPLATE_SUB_FRESH = 0x54000002,   ///< individual component of non-mated probe `entity`
    TEMPLATE_SUB_NOISE = 0x54000003,   ///< capture noise of probe `entity`
};

/// Options of a template gallery.
struct TemplateOptions {
    std::int64_t gallery_size = 100000;  ///< n: records of the scaled gallery
    int dim = 128;                       ///< D: template dimension
    double group_weight = 0;             ///< w in [0, 1): weight of the shared group component
    std::uint64_t seed = 20240611;       ///< fixed default, never the clock
    std::uint64_t replication = 0;       ///< replication index of the key
    bool int8 = false;  ///< store the gallery as int8 (per-vector scale) and score in integers
};

/// The highest instruction set a search may use; it falls back to the best level below that
/// the CPU supports. Every kernel computes the same bits (see search()), so this changes
/// speed only: tests use it to run each kernel against the scalar reference.
enum class SearchKernel : std::uint8_t {
    automatic,  ///< the fastest the CPU supports (same as avx512)
    avx512,     ///< AVX-512F for float, AVX-512 VNNI for int8
    avx2,       ///< AVX2 + FMA for float; int8 falls back to scalar
    scalar,     ///< the portable reference loops
};

/// How a batched search runs. Block sizes and the thread count change speed, never results.
struct SearchOptions {
    std::size_t top_k = 1;             ///< candidates kept per probe, best first
    std::optional<float> hits_at;      ///< also list every record scoring >= this, per probe
    std::size_t probe_block = 64;      ///< probes per task (each task scans the whole gallery)
    std::size_t gallery_block = 2048;  ///< records per cache block (rounded up to 16)
    bool parallel = true;              ///< oneTBB over probe blocks; false: the same body serially
    SearchKernel kernel = SearchKernel::automatic;
};

/// Results of a batched search. Candidates are ranked by score, descending, ties by record
/// index, ascending: a total order, so the top k are unique whatever the blocking.
struct TemplateSearchResult {
    std::size_t probes = 0;
    std::size_t k = 0;
    std::vector<std::int64_t> index;  ///< probes × k record indices; -1 where fewer than k
    std::vector<float> score;         ///< probes × k scores (-inf where index is -1)
    /// With SearchOptions::hits_at: the records scoring >= hits_at of probe p are
    /// hits[hit_offsets[p] .. hit_offsets[p + 1]), in increasing record order.
    std::vector<std::size_t> hit_offsets;
    std::vector<std::uint32_t> hits;

    std::int64_t candidate(std::size_t p, std::size_t rank) const { return index[p * k + rank]; }
    float candidate_score(std::size_t p, std::size_t rank) const { return score[p * k + rank]; }
};

/// One probe to make: its random draws are keyed by `id`.
struct ProbeSpec {
    std::uint64_t id = 0;    ///< same id, same probe
    std::size_t cell = 0;    ///< probe cell (of a mated probe: its mate's cell)
    std::int64_t mate = -1;  ///< gallery record of the probe's mate, or -1 (non-mated)
};

/// An explicit synthetic gallery of one database for one modality, scaled to n records with
/// the threshold and capture noise calibrated to the score-level model (see the file comment).
class TemplateGallery {
public:
    /// Builds the gallery: records per cell from MatchModel::records() scaled to n (largest
    /// remainder), templates in parallel, threshold and capture noise calibrated. Throws
    /// InputError for options out of range, a database without a matcher for the modality,
    /// or an FNMR that no capture noise can reach at the threshold (FNMR >= 1 − FMR').
    TemplateGallery(const Scenario& scenario, const CellTable& cells, std::size_t modality,
                    std::size_t database, const TemplateOptions& options);

    std::size_t size() const noexcept { return n_; }
    int dim() const noexcept { return options_.dim; }
    const TemplateOptions& options() const noexcept { return options_; }
    /// The score-level model of the same scenario, modality and database.
    const MatchModel& model() const noexcept { return model_; }
    /// M: records of the real gallery (sum of MatchModel::records()).
    double real_size() const noexcept { return real_size_; }
    /// The reference probe cell (every dimension at its reference category).
    std::size_t reference_cell() const noexcept { return reference_; }
    /// FPIR of the reference probe against the real gallery (score-level model).
    double real_fpir() const noexcept { return real_fpir_; }
    /// The cosine threshold t: a comparison matches when its score is >= t.
    float threshold() const noexcept { return threshold_; }
    /// FMR' at t for w = 0: P(cosine of independent uniform unit vectors >= t), exact.
    double per_record_fmr() const noexcept { return per_record_fmr_; }
    /// Records of gallery cell g are [cell_offset(g), cell_offset(g + 1)).
    std::size_t cell_offset(std::size_t g) const noexcept { return offsets_[g]; }
    /// Gallery cell of record j.
    std::size_t cell_of(std::size_t record) const noexcept { return cell_of_[record]; }
    /// Capture noise s_c of probe cell c (0 when the cell's FNMR is 0).
    double capture_noise(std::size_t c) const noexcept { return noise_[c]; }
    /// Templates before quantisation: n × D, CV_32F, unit rows.
    const cv::Mat& templates() const noexcept { return templates_; }

    /// Per-record FMR of probe cell c against gallery cell g that the score model predicts at
    /// the scaled size: −expm1(log1p(−FMR(c, g))·M/n), so (1 − FMR')^n = (1 − FMR)^M.
    double model_fmr(std::size_t c, std::size_t g) const noexcept;
    /// FPIR of probe cell c against the scaled gallery under model_fmr: 1 − Π_g (1 − FMR')^n_g.
    double model_fpir(std::size_t c) const noexcept;

    /// Probes as rows of a P × D CV_32F matrix, unit rows, made in parallel. Throws
    /// std::invalid_argument for a cell or mate out of range, or a mate of another cell.
    cv::Mat make_probes(const std::vector<ProbeSpec>& specs) const;

    /// Exact 1:N search of every probe row (cosine = dot product: rows should have unit
    /// norm, as make_probes() gives). Blocked over the gallery, parallel over probe blocks,
    /// keeping the top k per probe without materialising the score matrix. Every kernel
    /// computes a float score as the sequential fused chain s ← fma(p_d, x_d, s), d = 0..D−1,
    /// and an int8 score as an exact integer dot product scaled by the two vectors' scales,
    /// so results are bit-identical for any kernel, block size or thread count. Throws
    /// std::invalid_argument if probes are not CV_32F with D columns or top_k is 0.
    TemplateSearchResult search(const cv::Mat& probes, const SearchOptions& options = {}) const;

    /// The score search() computes for (probe row `row`, record), by the scalar reference
    /// loop: for tests against a brute-force search.
    float score(const cv::Mat& probes, int row, std::size_t record) const;

private:
    struct Int8Probes;
    Int8Probes quantise_probes(const cv::Mat& probes) const;

    TemplateOptions options_;
    MatchModel model_;
    std::size_t cells_;
    std::size_t n_ = 0;
    double real_size_ = 0;
    std::size_t reference_ = 0;
    double real_fpir_ = 0;
    float threshold_ = 0;
    double per_record_fmr_ = 0;
    std::vector<std::size_t> offsets_;    // cells + 1
    std::vector<std::uint32_t> cell_of_;  // n
    std::vector<double> noise_;           // per probe cell
    std::vector<double> group_;           // cells × D: the group component γ_c
    std::vector<double> model_fmr_;       // cells × cells
    std::vector<double> model_fpir_;      // cells
    ReplicationKey key_;
    cv::Mat templates_;
    // Kernel layouts (panels of 16 records): float [panel][d][16]; int8 [panel][d/4][16][4]
    // with 128 × each record's integer sum (the unsigned-probe offset) and inverse scale.
    std::vector<float> panels_;
    std::vector<std::int8_t> qpanels_;
    std::vector<std::int32_t> qoffset_;
    std::vector<float> qinv_;
    std::size_t qdim_ = 0;  // D rounded up to a multiple of 4
};

/// Name of the inner kernel search() uses on this CPU at that level: "avx512", "avx2+fma" or
/// "scalar" for float galleries; "avx512-vnni" or "scalar" for int8. Never throws.
std::string template_search_kernel(bool int8, SearchKernel kernel = SearchKernel::automatic);

/// How many probes an experiment makes: `per_cell` mated and `per_cell` non-mated probes of
/// every cell, or `total` of each split equally over the cells (the first cells get one more
/// when it does not divide). Mated probes are made only for cells with gallery records.
struct ProbePlan {
    std::int64_t per_cell = 0;
    std::int64_t total = 0;
    bool mated = true;  ///< false: non-mated probes only (FMR, FPIR, doppelgangers)
};

/// Measured and predicted rates for one group of probes.
struct TemplateGroupResult {
    std::string kind;       ///< "all", "dimension" or "cell"
    std::string dimension;  ///< "all", a dimension name, or "cell"
    std::string category;   ///< "all", a category name, or the cell's label
    std::int64_t mated_probes = 0;
    std::int64_t nonmated_probes = 0;
    std::uint64_t impostor_comparisons = 0;  ///< every non-mate record of every probe
    std::uint64_t false_matches = 0;         ///< impostor comparisons scoring >= t
    /// False matches whose record is in the probe's group: same category on the dimension of
    /// a "dimension" row, same cell for "cell" and "all" rows.
    std::uint64_t same_group_false_matches = 0;
    std::uint64_t same_group_comparisons = 0;
    std::uint64_t genuine_non_matches = 0;      ///< mated comparisons scoring < t
    std::uint64_t false_positive_searches = 0;  ///< non-mated searches returning someone
    std::uint64_t missed_searches = 0;          ///< mated searches not returning the mate at rank 1
    std::uint64_t wrong_returns = 0;  ///< searches (mated or not) returning a wrong record
    // Score-level predictions for the same probes at the scaled size (means over the probes).
    double fmr_model = 0;               ///< Σ comparisons·model_fmr / Σ comparisons
    double fnmr_model = 0;              ///< MatchModel::fnmr
    double fpir_model = 0;              ///< model_fpir (scaled size)
    double fpir_model_real = 0;         ///< MatchModel::fpir (real size)
    double fnir_model = 0;              ///< 1 − MatchModel::p_mate_returned (real size)
    double same_group_share_model = 0;  ///< Σ same-group comparisons·FMR' / Σ comparisons·FMR'
    /// Share of the group's false matches taken by the top 1% of gallery records (by their
    /// false-match count), its value if counts were Poisson with the same mean (no
    /// doppelgangers), and the same share for wrong records returned at rank 1.
    std::optional<double> doppelganger_share;
    std::optional<double> doppelganger_share_null;
    std::optional<double> doppelganger_share_returns;
    /// The top 1% of the records of each gallery cell, summed over cells, and its Poisson
    /// value: individual doppelgangers, without the between-cell differences in how often a
    /// cell's records are matched.
    std::optional<double> doppelganger_share_within_cells;
    std::optional<double> doppelganger_share_within_cells_null;

    std::optional<double> fmr() const;
    std::optional<double> fnmr() const;
    std::optional<double> fpir() const;
    std::optional<double> fnir() const;
    std::optional<double> same_group_share() const;
};

/// A template-mode experiment: rows for "all", every category of every dimension, and every
/// cell, in that order.
struct TemplateExperiment {
    TemplateOptions options;
    std::string modality;
    std::string database;
    std::size_t gallery_size = 0;
    double real_gallery_size = 0;
    double real_fpir = 0;
    float threshold = 0;
    double per_record_fmr = 0;
    std::size_t top_records = 0;  ///< "top 1%" = this many records
    std::vector<double> capture_noise;
    std::vector<TemplateGroupResult> groups;
    double build_seconds = 0;
    double search_seconds = 0;
};

/// Builds the gallery, makes the probes of `plan` (mated probes of cell c use the records of
/// c in order, cycling; records are exchangeable within a cell, so this is a random sample),
/// searches them with top-1 and every hit at t listed (so FMR counts every comparison, not a
/// sample), and tallies per group. Throws InputError as TemplateGallery does, or for a plan
/// without probes.
TemplateExperiment run_template_experiment(const Scenario& scenario, std::size_t modality,
                                           std::size_t database, const TemplateOptions& options,
                                           const ProbePlan& plan, const SearchOptions& search = {});

/// The experiment as CSV: one row per group, with the run's parameters and provenance
/// (version, commit, build, seed) repeated on every row. Undefined rates are NA.
std::string template_experiment_csv(const TemplateExperiment& experiment);

/// Writes template_experiment_csv() to `path` atomically. Throws InternalError on failure.
void write_template_experiment_csv(const std::string& path, const TemplateExperiment& experiment);

}  // namespace stopscan
