#include "stopscan/engine.hpp"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/enumerable_thread_specific.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/parallel_pipeline.h>
#include <oneapi/tbb/parallel_reduce.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <numeric>
#include <optional>

#include "detail/cell_parameters.hpp"
#include "stopscan/audit_log.hpp"
#include "stopscan/distributions.hpp"
#include "stopscan/error.hpp"
#include "stopscan/interrupt.hpp"
#include "stopscan/match_model.hpp"
#include "stopscan/random.hpp"
#include "stopscan/stop_rules.hpp"
#include "stopscan/template_matcher.hpp"

namespace stopscan {

namespace {

// Persons are keyed by (cell, index within the cell's stopped persons).
constexpr unsigned PERSON_INDEX_BITS = 40;

std::uint64_t person_entity(std::size_t cell, std::uint64_t index) noexcept {
    return (static_cast<std::uint64_t>(cell) << PERSON_INDEX_BITS) | index;
}

using detail::CellDatabase;

// Persons per task of a logged run. The log's bytes do not depend on it (tasks hand their
// records over in person order whatever their size); it only sets how many records wait in
// memory: about live tasks × block × stops × policies × databases.
constexpr std::uint64_t AUDIT_BLOCK = 256;

// Importance sampling's weighted corrections are summed as signed fixed-point integers with
// FIXED_BITS fractional bits: integer addition is exact and associative, so the sums are the
// same bits for any thread count and split of the work (a sum of doubles would depend on the
// order). 60 bits keep every weight >= 2^-7 to full double precision and smaller ones to an
// absolute 2^-60; the 67 integer bits hold any replication's total.
__extension__ using Fixed = __int128;
constexpr int FIXED_BITS = 60;

// A likelihood ratio as a fixed-point number (truncated to a multiple of 2^-60).
Fixed to_fixed(double weight) {
    if (!(weight >= 0 && weight < 0x1.0p60))
        throw InternalError("importance sampling: likelihood ratio " + std::to_string(weight) +
                            " out of the fixed-point range; lower the --rare-events factor");
    return static_cast<Fixed>(std::ldexp(weight, FIXED_BITS));
}

double from_fixed(Fixed sum) noexcept {
    return std::ldexp(static_cast<double>(sum), -FIXED_BITS);
}

// The tallying path: no audit records (the compiler drops every call).
struct NoAudit {
    static constexpr bool ACTIVE = false;
    void lookups(std::uint64_t, std::size_t, std::uint64_t, std::size_t, std::size_t,
                 const StopLookups&) const noexcept {}
};

// Names of a logged run's policies, databases and cells, for the records.
struct AuditNames {
    std::vector<std::string> policies;
    std::vector<std::string> databases;
    std::vector<std::vector<std::string>> cells;  // per cell: its category in each dimension
};

// Collects a task's audit records, in (person, stop, policy, search) order.
struct AuditBatch {
    static constexpr bool ACTIVE = true;
    const AuditNames* names;
    std::uint64_t replication;
    std::vector<AuditRecord>* records;

    void lookups(std::uint64_t entity, std::size_t cell, std::uint64_t stop, std::size_t policy,
                 std::size_t modality, const StopLookups& found) const {
        const std::string person = std::to_string(replication) + ":" + std::to_string(entity);
        for (std::size_t i = 0; i < found.count; ++i) {
            const Lookup& l = found.entries[i];
            AuditRecord r;
            r.person_id = person;
            r.replication = replication;
            r.stop = stop;
            r.categories = names->cells[cell];
            r.policy = names->policies[policy];
            r.database = names->databases[l.database];
            r.modality = MODALITY_NAMES[modality];
            r.result = static_cast<LookupResult>(l.hit);  // same order: none, own, link, false
            r.shown = l.shown == ShownAs::full        ? Shown::full
                      : l.shown == ShownAs::flag_only ? Shown::flag_only
                                                      : Shown::none;
            r.actions = l.actions;  // LookupAction and AuditAction bits are equal
            r.outcome = l.actions == 0 ? Outcome::none
                        : l.wrongful   ? Outcome::wrongful
                                       : Outcome::rightful;
            if (l.wrongful)
                r.cause = l.hit == Hit::false_match ? Cause::false_match : Cause::record_error;
            records->push_back(std::move(r));
        }
    }
};
static_assert(static_cast<int>(LookupResult::false_match) == static_cast<int>(Hit::false_match) &&
              static_cast<int>(LookupResult::wrong_link) == static_cast<int>(Hit::wrong_link) &&
              static_cast<int>(LookupResult::own_record) == static_cast<int>(Hit::own_record));
static_assert(int{LOOKUP_ARREST} == int{ACTION_ARREST} &&
              int{LOOKUP_REFERRAL} == int{ACTION_REFERRAL} &&
              int{LOOKUP_DETENTION} == int{ACTION_DETENTION});

}  // namespace

struct Engine::Model {
    CellTable cells;
    MetricLayout layout;
    std::size_t n_db;
    std::vector<DatabaseRole> roles;
    std::vector<const Policy*> policies;
    std::vector<const std::vector<DatabaseRule>*> cell_rules;  // [policy * cells + cell]
    std::vector<bool> searched;         // per database: does any policy of the plan search it?
    std::vector<CellDatabase> cell_db;  // [cell * n_db + d]
    std::vector<std::optional<MatchModel>> match;  // [m * n_db + d], where the modality is used
    std::vector<std::unique_ptr<TemplateGallery>> galleries;    // same index, in template mode
    std::vector<std::optional<TruncatedStopCount>> stop_count;  // per cell; empty if never stopped
    std::vector<double> p_stopped;
    double fingerprint_share;
    std::int64_t max_stops;  // 0: no cap
    // Importance sampling (docs/model.md, "Rare events"), per [(m * n_db + d) * cells + c]:
    // the tilted probability q that some impostor passes tau, and the likelihood ratios p / q
    // of a search where one does and (1 - p) / (1 - q) of one where none does.
    bool importance = false;
    std::vector<double> tilt, ratio_hit, ratio_miss;

    Model(const RunPlan& plan)
        : cells(plan.scenario->dimensions, plan.scenario->population),
          layout(
              [&] {
                  std::vector<std::string> names;
                  for (const auto& db : plan.scenario->databases) names.push_back(db.name);
                  return names;
              }(),
              [&] {
                  std::vector<std::string> names;
                  for (const auto& dim : plan.scenario->dimensions) names.push_back(dim.name);
                  return names;
              }()),
          n_db(plan.scenario->databases.size()),
          fingerprint_share(plan.scenario->modality_share[0]),
          max_stops(plan.max_stops_per_person) {
        const Scenario& s = *plan.scenario;
        const std::size_t C = cells.size();
        for (const auto& db : s.databases) roles.push_back(db.role);
        for (const auto p : plan.policies) policies.push_back(&s.policies[p]);
        searched.assign(n_db, false);
        for (const auto* p : policies)
            for (std::size_t d = 0; d < n_db; ++d) searched[d] = searched[d] || p->ever_searches(d);
        cell_rules.resize(policies.size() * C);
        for (std::size_t p = 0; p < policies.size(); ++p)
            for (std::size_t c = 0; c < C; ++c)
                cell_rules[p * C + c] = &policies[p]->rules_for_category(
                    policies[p]->varies_by ? cells.category(c, *policies[p]->varies_by) : 0);

        // Stops: mean stops per person of a cell is total × propensity / Σ population × propensity.
        const auto mu = detail::mean_stops_per_person(s, cells);
        stop_count.resize(C);
        p_stopped.assign(C, 0.0);
        for (std::size_t c = 0; c < C; ++c)
            if (mu[c] > 0) {
                stop_count[c].emplace(mu[c], s.dispersion);
                p_stopped[c] = stop_count[c]->p_stopped();
            }

        cell_db = detail::resolve_cell_databases(s, cells);
        match.resize(MODALITY_COUNT * n_db);
        for (std::size_t d = 0; d < n_db; ++d) {
            const Database& db = s.databases[d];
            for (std::size_t m = 0; m < MODALITY_COUNT; ++m)
                if (s.modality_share[m] > 0 && db.matchers[m])
                    match[m * n_db + d].emplace(s, cells, m, d);
        }
        if (plan.rare_events.active()) {
            importance = true;
            tilt.assign(match.size() * C, 0.0);
            ratio_hit.assign(match.size() * C, 1.0);
            ratio_miss.assign(match.size() * C, 1.0);
            for (std::size_t i = 0; i < match.size(); ++i) {
                if (!match[i]) continue;
                for (std::size_t c = 0; c < C; ++c) {
                    const double p = match[i]->fpir(c);
                    const double q = p >= RareEvents::MAX_TILT
                                         ? p
                                         : std::max(p, std::min(plan.rare_events.factor * p,
                                                                RareEvents::MAX_TILT));
                    tilt[i * C + c] = q;
                    if (q > p) {
                        ratio_hit[i * C + c] = p / q;
                        ratio_miss[i * C + c] = (1 - p) / (1 - q);
                    }
                }
            }
        }
        if (plan.template_matcher) {
            galleries.resize(MODALITY_COUNT * n_db);
            for (std::size_t i = 0; i < match.size(); ++i)
                if (match[i] && searched[i % n_db])
                    galleries[i] = std::make_unique<TemplateGallery>(s, cells, i / n_db, i % n_db,
                                                                     plan.template_options);
        }
    }

    // Enrolment, truth and record of a person in every database: persistent, so a person
    // stopped twice meets the same record and the same record errors.
    void person_records(const ReplicationKey& key, std::uint64_t entity, std::size_t cell,
                        PersonRecord* out) const noexcept {
        for (std::size_t d = 0; d < n_db; ++d) {
            const CellDatabase& x = cell_db[cell * n_db + d];
            const Uniforms4 u =
                key.uniforms(entity, Purpose::PersonRecord, static_cast<std::uint32_t>(d), 0);
            PersonRecord& r = out[d];
            r.enrolled = u[0] < x.enrolment;
            r.truth = u[1] < (r.enrolled ? x.truth : x.truth_unenrolled);
            r.flag = r.enrolled && (r.truth ? u[2] >= x.missing_flag : u[2] < x.false_flag);
            r.wrong_link = r.enrolled && u[3] < x.wrong_link;
            r.wrong_link_flag =
                r.wrong_link && key.uniforms(entity, Purpose::PersonRecord,
                                             static_cast<std::uint32_t>(d), 1)[0] < x.gallery_flag;
        }
    }

    // A hit on the probe's own record, or on the other identity its biometrics are linked to.
    static void mate_hit(SearchResult& r, const PersonRecord& person) noexcept {
        r.mate_returned = true;
        if (person.wrong_link) {
            r.hit = Hit::wrong_link;
            r.flag = person.wrong_link_flag;
            r.inaccurate = true;
        } else {
            r.hit = Hit::own_record;
            r.flag = person.flag;
            r.inaccurate = person.flag != person.truth;
        }
    }

    // A biometric false match: another person's record, of gallery cell g.
    void false_hit(SearchResult& r, std::size_t cell, std::size_t g, std::size_t d,
                   double u) const noexcept {
        r.hit = Hit::false_match;
        r.flag = u < cell_db[g * n_db + d].gallery_flag;
        r.same_cell = g == cell;
        r.same_category = 0;
        for (std::size_t k = 0; k < cells.dimension_count(); ++k)
            if (cells.category(cell, k) == cells.category(g, k)) r.same_category |= 1u << k;
    }

    // Template mode: the probe is the mate's template plus capture noise (or a fresh person
    // of the cell when not enrolled), searched exactly against the synthetic gallery. The
    // mate is a record of the person's cell chosen by the person's key, so repeat stops meet
    // the same record. Review walks the candidates above the threshold as in the score model.
    SearchOutcome template_search(const TemplateGallery& gallery, const ReplicationKey& key,
                                  std::uint64_t entity, std::uint64_t stop, std::size_t cell,
                                  std::size_t d, const PersonRecord& person,
                                  UniformStream& reviewer) const {
        const auto first = gallery.cell_offset(cell);
        const auto count = gallery.cell_offset(cell + 1) - first;
        const auto sub = static_cast<std::uint32_t>(d);
        const auto pick = key.bits(entity, Purpose::SearchScores, sub, 0, 0xFFFF'FFFFULL)[0];
        std::int64_t mate = -1;
        if (person.enrolled && count > 0) mate = static_cast<std::int64_t>(first + pick % count);
        const std::uint64_t id =
            key.bits(entity, Purpose::SearchScores, sub, stop, 0xFFFF'FFFEULL)[0];
        const cv::Mat probe = gallery.make_probes({ProbeSpec{id, cell, mate}});
        const Matcher& spec = gallery.model().matcher();
        SearchOptions options;
        options.top_k = spec.human_review ? static_cast<std::size_t>(spec.candidates) : 1;
        options.parallel = false;  // already inside the engine's parallel loop
        const auto found = gallery.search(probe, options);
        for (std::size_t rank = 0; rank < found.k; ++rank) {
            const auto j = found.candidate(0, rank);
            if (j < 0 || found.candidate_score(0, rank) < gallery.threshold()) break;
            const bool is_mate = j == mate;
            if (spec.human_review) {
                const double v = reviewer.next();
                if (is_mate ? v < spec.review_false_reject : v >= spec.review_false_accept)
                    continue;
            }
            if (is_mate) return {SearchOutcome::mate, 0};
            return {SearchOutcome::impostor, gallery.cell_of(static_cast<std::size_t>(j))};
        }
        return {};
    }

    // Score-level 1:N search (MODEL.md §5), lazy: the common path is two comparisons of
    // keyed uniforms; scores are drawn from streams of their own only when they matter.
    SearchResult search(const ReplicationKey& key, std::uint64_t entity, std::uint64_t stop,
                        std::size_t cell, std::size_t m, std::size_t d,
                        const PersonRecord& person) const {
        const auto sub = static_cast<std::uint32_t>(d);
        const Uniforms4 u = key.uniforms(entity, Purpose::Search, sub, stop);
        UniformStream scores(key, entity, Purpose::SearchScores, sub, stop);
        UniformStream reviewer(key, entity, Purpose::Review, sub, stop);
        const SearchOutcome outcome =
            galleries.empty() || !galleries[m * n_db + d]
                ? match[m * n_db + d]->search(cell, person.enrolled, u[0], u[1], scores, reviewer)
                : template_search(*galleries[m * n_db + d], key, entity, stop, cell, d, person,
                                  reviewer);
        SearchResult r;
        r.mated = person.enrolled;
        if (outcome.kind == SearchOutcome::mate) mate_hit(r, person);
        if (outcome.kind == SearchOutcome::impostor)
            false_hit(r, cell, outcome.gallery_cell, d, u[3]);
        return r;
    }

    // The score-level search with "some impostor passes tau" decided by the caller (the
    // importance-sampling path), from the same keyed uniforms and streams as search().
    SearchResult search_decided(const ReplicationKey& key, std::uint64_t entity, std::uint64_t stop,
                                std::size_t cell, std::size_t m, std::size_t d,
                                const PersonRecord& person, double u0, double u3,
                                bool impostor_above) const {
        const auto sub = static_cast<std::uint32_t>(d);
        UniformStream scores(key, entity, Purpose::SearchScores, sub, stop);
        UniformStream reviewer(key, entity, Purpose::Review, sub, stop);
        const SearchOutcome outcome = match[m * n_db + d]->search_given(
            cell, person.enrolled, u0, impostor_above, scores, reviewer);
        SearchResult r;
        r.mated = person.enrolled;
        if (outcome.kind == SearchOutcome::mate) mate_hit(r, person);
        if (outcome.kind == SearchOutcome::impostor)
            false_hit(r, cell, outcome.gallery_cell, d, u3);
        return r;
    }

    // All stops of one person, under every policy of the plan; with an active Audit sink,
    // also every lookup.
    // The per-database arrays of one person's stops, made once per task and reused for
    // every person: default-initialising all MAX_DATABASES entries per person cost ~5% of
    // the engine's instructions (docs/performance.md). Nothing stale is read: a person's
    // records, odds and results are written before use, and draws[d] only after results[d]
    // shows a flag at the same stop.
    struct Scratch {
        PersonRecord records[MAX_DATABASES];
        SearchResult results[MAX_DATABASES];
        ActionOdds odds[MAX_DATABASES];
        ActionDraws draws[MAX_DATABASES];
        // Importance sampling only: the tilted world's results, and one stop's rows of both
        // worlds.
        SearchResult tilted[MAX_DATABASES];
        std::vector<std::uint64_t> row0, row1;
    };

    // What both simulations of a person start with: the person's records, the per-database
    // action odds of the cell in scratch.odds, and the number of stops. The stop count is capped
    // by the contribution bound of --release dp (docs/disclosure.md): the same draw, capped, so
    // a cap above every drawn count changes nothing.
    std::int64_t start_person(const ReplicationKey& key, std::uint64_t entity, std::size_t cell,
                              Scratch& scratch) const {
        person_records(key, entity, cell, scratch.records);
        for (std::size_t d = 0; d < n_db; ++d) scratch.odds[d] = cell_db[cell * n_db + d].odds;
        const std::int64_t stops =
            stop_count[cell]->draw(key.uniforms(entity, Purpose::StopsOfPerson, 0, 0)[0]);
        return max_stops > 0 ? std::min(stops, max_stops) : stops;
    }

    // All stops of one person under importance sampling (docs/model.md, "Rare events"). Each
    // search decides "some impostor passes tau" with the tilted probability q (u1 < q, the
    // same uniform as the plain path's u1 < p). Two worlds share every other draw: world 0,
    // where no impostor passes, and world 1, the tilted one. `tally` gets world 0's integer
    // counts, which do not depend on the tilted event; `weighted` gets (world 1 − world 0)
    // times the likelihood ratio of the tilted events: of the stop for per-stop counts, of
    // all the person's stops for persons affected. Both worlds differ only at stops where
    // some search was tilted into a pass, so only those are followed twice.
    void simulate_person_weighted(const ReplicationKey& key, std::size_t cell, std::uint64_t index,
                                  std::uint64_t* tally, Fixed* weighted, Scratch& scratch) const {
        PersonRecord* records = scratch.records;
        SearchResult* results = scratch.results;
        SearchResult* tilted = scratch.tilted;
        ActionOdds* odds = scratch.odds;
        ActionDraws* draws = scratch.draws;
        const std::uint64_t entity = person_entity(cell, index);
        const std::int64_t stops = start_person(key, entity, cell, scratch);
        const StopFacts world0{results, records, odds, draws, roles.data(), n_db};
        const StopFacts world1{tilted, records, odds, draws, roles.data(), n_db};
        const std::size_t C = cells.size();
        const std::size_t K = layout.size();
        scratch.row0.resize(K);
        scratch.row1.resize(K);
        std::uint32_t wrongful0 = 0, wrongful1 = 0;  // bit p: under policy p, in each world
        double person_ratio = 1;
        bool person_tilted = false;
        for (std::int64_t s = 0; s < stops; ++s) {
            const auto stop = static_cast<std::uint64_t>(s);
            std::size_t m = 0;
            if (fingerprint_share < 1.0)
                m = key.uniforms(entity, Purpose::StopModality, 0, stop)[0] < fingerprint_share ? 0
                                                                                                : 1;
            double stop_ratio = 1;
            bool stop_tilted = false;
            for (std::size_t d = 0; d < n_db; ++d) {
                if (!searched[d]) {
                    results[d] = tilted[d] = SearchResult{};
                    continue;
                }
                const Uniforms4 u =
                    key.uniforms(entity, Purpose::Search, static_cast<std::uint32_t>(d), stop);
                const std::size_t i = (m * n_db + d) * C + cell;
                const bool pass = u[1] < tilt[i];
                stop_ratio *= pass ? ratio_hit[i] : ratio_miss[i];
                results[d] =
                    search_decided(key, entity, stop, cell, m, d, records[d], u[0], u[3], false);
                tilted[d] = pass ? search_decided(key, entity, stop, cell, m, d, records[d], u[0],
                                                  u[3], true)
                                 : results[d];
                stop_tilted = stop_tilted || pass;
                if (results[d].flag || tilted[d].flag) {
                    const Uniforms4 a =
                        key.uniforms(entity, Purpose::Action, static_cast<std::uint32_t>(d), stop);
                    draws[d] = {a[0], a[1], a[2], a[3]};
                }
            }
            person_ratio *= stop_ratio;
            person_tilted = person_tilted || stop_tilted;
            const Fixed stop_weight = stop_tilted ? to_fixed(stop_ratio) : 0;
            for (std::size_t p = 0; p < policies.size(); ++p) {
                std::uint64_t* row = tally + (p * C + cell) * K;
                ++row[MetricLayout::STOPS];
                const auto& rules = *cell_rules[p * C + cell];
                if (!stop_tilted) {
                    if (apply_policy(rules, world0, layout, row))
                        wrongful0 |= 1u << p, wrongful1 |= 1u << p;
                    continue;
                }
                std::fill(scratch.row0.begin(), scratch.row0.end(), 0);
                std::fill(scratch.row1.begin(), scratch.row1.end(), 0);
                if (apply_policy(rules, world0, layout, scratch.row0.data())) wrongful0 |= 1u << p;
                if (apply_policy(rules, world1, layout, scratch.row1.data())) wrongful1 |= 1u << p;
                Fixed* w = weighted + (p * C + cell) * K;
                for (std::size_t k = 0; k < K; ++k) {
                    row[k] += scratch.row0[k];
                    const auto delta = static_cast<std::int64_t>(scratch.row1[k]) -
                                       static_cast<std::int64_t>(scratch.row0[k]);
                    if (delta != 0) w[k] += static_cast<Fixed>(delta) * stop_weight;
                }
            }
        }
        const Fixed person_weight = person_tilted ? to_fixed(person_ratio) : 0;
        for (std::size_t p = 0; p < policies.size(); ++p) {
            std::uint64_t* row = tally + (p * C + cell) * K;
            ++row[MetricLayout::PERSONS_STOPPED];
            const int in0 = (wrongful0 >> p) & 1u, in1 = (wrongful1 >> p) & 1u;
            if (in0) ++row[MetricLayout::PERSONS_WRONGFULLY_AFFECTED];
            if (in1 != in0)
                weighted[(p * C + cell) * K + MetricLayout::PERSONS_WRONGFULLY_AFFECTED] +=
                    static_cast<Fixed>(in1 - in0) * person_weight;
        }
    }

    template <class Audit>
    void simulate_person(const ReplicationKey& key, std::size_t cell, std::uint64_t index,
                         std::uint64_t* tally, const Audit& audit, Scratch& scratch) const {
        PersonRecord* records = scratch.records;
        SearchResult* results = scratch.results;
        ActionOdds* odds = scratch.odds;
        ActionDraws* draws = scratch.draws;
        const std::uint64_t entity = person_entity(cell, index);
        const std::int64_t stops = start_person(key, entity, cell, scratch);
        const StopFacts facts{results, records, odds, draws, roles.data(), n_db};
        const std::size_t C = cells.size();
        const std::size_t K = layout.size();
        std::uint32_t wrongful_any = 0;  // bit p: the person met a wrongful outcome under policy p
        for (std::int64_t s = 0; s < stops; ++s) {
            const auto stop = static_cast<std::uint64_t>(s);
            std::size_t m = 0;
            if (fingerprint_share < 1.0)
                m = key.uniforms(entity, Purpose::StopModality, 0, stop)[0] < fingerprint_share ? 0
                                                                                                : 1;
            for (std::size_t d = 0; d < n_db; ++d) {
                results[d] = searched[d] ? search(key, entity, stop, cell, m, d, records[d])
                                         : SearchResult{};
                // Action draws only matter after a flag is shown; drawing them lazily cannot
                // shift any other draw, because every draw has its own key.
                if (results[d].flag) {
                    const Uniforms4 a =
                        key.uniforms(entity, Purpose::Action, static_cast<std::uint32_t>(d), stop);
                    draws[d] = {a[0], a[1], a[2], a[3]};
                }
            }
            for (std::size_t p = 0; p < policies.size(); ++p) {
                std::uint64_t* row = tally + (p * C + cell) * K;
                ++row[MetricLayout::STOPS];
                if constexpr (Audit::ACTIVE) {
                    StopLookups found;
                    if (apply_policy(*cell_rules[p * C + cell], facts, layout, row, &found))
                        wrongful_any |= 1u << p;
                    audit.lookups(entity, cell, stop, p, m, found);
                } else {
                    if (apply_policy(*cell_rules[p * C + cell], facts, layout, row))
                        wrongful_any |= 1u << p;
                }
            }
        }
        for (std::size_t p = 0; p < policies.size(); ++p) {
            std::uint64_t* row = tally + (p * C + cell) * K;
            ++row[MetricLayout::PERSONS_STOPPED];
            if (wrongful_any & (1u << p)) ++row[MetricLayout::PERSONS_WRONGFULLY_AFFECTED];
        }
    }
};

Engine::Engine(RunPlan plan)
    : plan_(std::move(plan)), model_(std::make_unique<const Model>(plan_)) {
    if (plan_.scenario->databases.size() > 16)
        throw InputError("scenario", "databases.names", "",
                         "more than 16 databases: at most 16 are supported");
    if (plan_.policies.size() > 32)
        throw InputError("command line", "--policies", "",
                         "more than 32 policies: at most 32 per run");
}

Engine::~Engine() = default;

const CellTable& Engine::cells() const noexcept {
    return model_->cells;
}
const MetricLayout& Engine::layout() const noexcept {
    return model_->layout;
}

// One replication's model (its own, drawn, with uncertain parameters), key and the persons
// stopped at least once per cell (offsets[c] .. offsets[c + 1] are cell c's).
struct Engine::Replication {
    std::shared_ptr<const Scenario> drawn;
    std::unique_ptr<const Model> drawn_model;
    const Model* model = nullptr;
    ReplicationKey key{0, 0};
    std::vector<std::uint64_t> offsets;
};

Engine::Replication Engine::prepare(std::int64_t replication) const {
    // With uncertain parameters every replication has its own drawn scenario and model; the
    // model points into its scenario, so both live for the whole replication.
    Replication r;
    if (!plan_.scenario->uncertain.empty()) {
        RunPlan drawn_plan = plan_;
        r.drawn = std::make_shared<const Scenario>(scenario_for_replication(
            *plan_.scenario, plan_.seed, static_cast<std::uint64_t>(replication)));
        drawn_plan.scenario = r.drawn;
        r.drawn_model = std::make_unique<const Model>(drawn_plan);
    }
    r.model = r.drawn_model ? r.drawn_model.get() : model_.get();
    r.key = ReplicationKey(plan_.seed, static_cast<std::uint64_t>(replication));
    const Model& model = *r.model;
    const std::size_t C = model.cells.size();
    // Persons stopped at least once, per cell: an exact binomial draw over the cell's
    // population, so no memory or time is spent on the population that is never stopped.
    r.offsets.assign(C + 1, 0);
    for (std::size_t c = 0; c < C; ++c) {
        UniformStream u(r.key, c, Purpose::PersonsInCell, 0);
        const auto n =
            model.p_stopped[c] > 0 ? binomial(model.cells.population(c), model.p_stopped[c], u) : 0;
        r.offsets[c + 1] = r.offsets[c] + static_cast<std::uint64_t>(n);
    }
    return r;
}

std::vector<std::uint64_t> Engine::run_replication(std::int64_t replication, bool parallel) const {
    std::vector<double> weighted;
    return run_replication(replication, parallel, weighted);
}

std::vector<std::uint64_t> Engine::run_replication(std::int64_t replication, bool parallel,
                                                   std::vector<double>& weighted) const {
    const Replication prepared = prepare(replication);
    const Model& model = *prepared.model;
    const ReplicationKey& key = prepared.key;
    const std::vector<std::uint64_t>& offsets = prepared.offsets;
    const std::size_t width = model.policies.size() * model.cells.size() * model.layout.size();
    // Importance sampling's fixed-point corrections: one entry per tally entry, or none.
    const std::size_t fixed_width = model.importance ? width : 0;

    auto body = [&](std::uint64_t begin, std::uint64_t end, std::vector<std::uint64_t>& tally,
                    std::vector<Fixed>& fixed) {
        std::size_t cell =
            static_cast<std::size_t>(std::upper_bound(offsets.begin(), offsets.end(), begin) -
                                     offsets.begin()) -
            1;
        Model::Scratch scratch;
        for (std::uint64_t i = begin; i < end; ++i) {
            while (i >= offsets[cell + 1]) ++cell;
            if (model.importance)
                model.simulate_person_weighted(key, cell, i - offsets[cell], tally.data(),
                                               fixed.data(), scratch);
            else
                model.simulate_person(key, cell, i - offsets[cell], tally.data(), NoAudit{},
                                      scratch);
        }
    };
    auto finish = [&](std::vector<Fixed>& fixed) {
        weighted.assign(fixed.size(), 0.0);
        for (std::size_t i = 0; i < fixed.size(); ++i) weighted[i] = from_fixed(fixed[i]);
    };

    const std::uint64_t persons = offsets.back();
    if (!parallel) {
        std::vector<std::uint64_t> tally(width, 0);
        std::vector<Fixed> fixed(fixed_width, 0);
        body(0, persons, tally, fixed);
        finish(fixed);
        return tally;
    }
    // Integer tallies make the reduction exact, so the partitioner's thread-dependent split
    // cannot change a bit of the result (the weighted corrections are integers too, in fixed
    // point). The imperative form splits a body (and allocates a tally) only when work is
    // stolen, not once per chunk.
    struct Body {
        const decltype(body)& run;
        std::vector<std::uint64_t> tally;
        std::vector<Fixed> fixed;
        Body(const decltype(body)& f, std::size_t n, std::size_t n_fixed)
            : run(f), tally(n, 0), fixed(n_fixed, 0) {}
        Body(Body& other, tbb::split)
            : run(other.run), tally(other.tally.size(), 0), fixed(other.fixed.size(), 0) {}
        void operator()(const tbb::blocked_range<std::uint64_t>& r) {
            throw_if_stop_requested();
            run(r.begin(), r.end(), tally, fixed);
        }
        void join(const Body& other) {
            for (std::size_t i = 0; i < tally.size(); ++i) tally[i] += other.tally[i];
            for (std::size_t i = 0; i < fixed.size(); ++i) fixed[i] += other.fixed[i];
        }
    };
    Body reduction(body, width, fixed_width);
    const std::size_t grain = plan_.grain > 0 ? plan_.grain : 512;
    tbb::parallel_reduce(tbb::blocked_range<std::uint64_t>(0, persons, grain), reduction);
    finish(reduction.fixed);
    return std::move(reduction.tally);
}

std::vector<std::uint64_t> Engine::run_replication_logged(std::int64_t replication,
                                                          AuditLogWriter& audit,
                                                          std::uint64_t& ticket) const {
    const Replication prepared = prepare(replication);
    const Model& model = *prepared.model;
    const std::vector<std::uint64_t>& offsets = prepared.offsets;
    const std::size_t width = model.policies.size() * model.cells.size() * model.layout.size();
    AuditNames names;
    for (const auto* p : model.policies) names.policies.push_back(p->name);
    names.databases = model.layout.databases();
    for (std::size_t c = 0; c < model.cells.size(); ++c) {
        std::vector<std::string> categories;
        for (std::size_t k = 0; k < model.cells.dimension_count(); ++k)
            categories.push_back(
                plan_.scenario->dimensions[k].categories[model.cells.category(c, k)]);
        names.cells.push_back(std::move(categories));
    }

    // Fixed blocks of persons, numbered in person order: a parallel stage simulates a block
    // and collects its records, an in-order stage submits them. The file is the same for any
    // thread count; memory holds only the blocks in flight. Tallies are per thread and
    // integer, so their sum does not depend on which thread ran which block.
    const std::uint64_t persons = offsets.back();
    const std::uint64_t blocks = (persons + AUDIT_BLOCK - 1) / AUDIT_BLOCK;
    tbb::enumerable_thread_specific<std::vector<std::uint64_t>> tallies(
        [width] { return std::vector<std::uint64_t>(width, 0); });
    struct Block {
        std::uint64_t number = 0;
        std::vector<AuditRecord> records;
    };
    std::uint64_t next = 0;
    const std::uint64_t first_ticket = ticket;
    const auto tokens = static_cast<std::size_t>(
        4 * tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
    // A stop request ends the input rather than throwing in it: oneTBB 2021.8 does not destroy
    // the blocks in flight when a pipeline is cancelled (LeakSanitizer found them).
    const auto next_block = [&](tbb::flow_control& control) -> std::uint64_t {
        if (next == blocks || stop_signal() != 0) {
            control.stop();
            return 0;
        }
        return next++;
    };
    tbb::parallel_pipeline(
        tokens,
        tbb::make_filter<void, std::uint64_t>(tbb::filter_mode::serial_in_order, next_block) &
            tbb::make_filter<std::uint64_t, Block>(
                tbb::filter_mode::parallel,
                [&](std::uint64_t b) {
                    Block block{b, {}};
                    const AuditBatch sink{&names, static_cast<std::uint64_t>(replication),
                                          &block.records};
                    std::vector<std::uint64_t>& tally = tallies.local();
                    const std::uint64_t begin = b * AUDIT_BLOCK;
                    const std::uint64_t end = std::min(persons, begin + AUDIT_BLOCK);
                    auto cell = static_cast<std::size_t>(
                        std::upper_bound(offsets.begin(), offsets.end(), begin) - offsets.begin() -
                        1);
                    Model::Scratch scratch;
                    for (std::uint64_t i = begin; i < end; ++i) {
                        while (i >= offsets[cell + 1]) ++cell;
                        model.simulate_person(prepared.key, cell, i - offsets[cell], tally.data(),
                                              sink, scratch);
                    }
                    return block;
                }) &
            tbb::make_filter<Block, void>(tbb::filter_mode::serial_in_order, [&](Block block) {
                audit.submit(first_ticket + block.number, std::move(block.records));
            }));
    throw_if_stop_requested();
    ticket = first_ticket + blocks;
    std::vector<std::uint64_t> tally(width, 0);
    for (const auto& local : tallies)
        for (std::size_t i = 0; i < width; ++i) tally[i] += local[i];
    return tally;
}

Results Engine::run(const ProgressCallback& progress, AuditLogWriter* audit) const {
    Results results{plan_, model_->layout, {}, {}, 0, 0};
    results.plan.replications = 0;
    for (std::size_t c = 0; c < model_->cells.size(); ++c)
        results.cell_population.push_back(model_->cells.population(c));
    extend(results, plan_.replications, progress, audit);
    return results;
}

void Engine::extend(Results& results, std::int64_t more, const ProgressCallback& progress,
                    AuditLogWriter* audit) const {
    const auto start = std::chrono::steady_clock::now();
    std::optional<tbb::global_control> limit;
    if (plan_.threads > 0)
        limit.emplace(tbb::global_control::max_allowed_parallelism, plan_.threads);
    const std::size_t width = plan_.policies.size() * model_->cells.size() * model_->layout.size();
    const auto first = static_cast<std::size_t>(results.plan.replications);
    const auto count = static_cast<std::size_t>(more);
    results.counts.resize((first + count) * width, 0);
    if (plan_.rare_events.active()) {
        if (audit)
            throw InputError("command line", "--rare-events", "is",
                             "not available with --audit-log: the log records one simulated "
                             "world, importance sampling weights two");
        results.weighted.resize((first + count) * width, 0.0);
    }
    results.threads_used = static_cast<int>(
        tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));

    if (audit) {
        // A logged run goes through the replications in order, each one in parallel over
        // blocks of persons, so that the log is written in (replication, person) order.
        std::uint64_t ticket = audit->next_ticket();
        for (std::size_t rep = first; rep < first + count; ++rep) {
            throw_if_stop_requested();
            const auto tally =
                run_replication_logged(static_cast<std::int64_t>(rep), *audit, ticket);
            std::copy(tally.begin(), tally.end(),
                      results.counts.begin() + static_cast<std::ptrdiff_t>(rep * width));
            if (progress) progress(static_cast<std::int64_t>(rep - first + 1), more);
        }
    } else {
        // Replication r's draws are keyed by r, so runs extended in batches equal one long run.
        std::atomic<std::int64_t> finished{0};
        std::mutex progress_mutex;
        tbb::parallel_for(
            tbb::blocked_range<std::size_t>(first, first + count, 1),
            [&](const tbb::blocked_range<std::size_t>& r) {
                for (std::size_t rep = r.begin(); rep < r.end(); ++rep) {
                    throw_if_stop_requested();
                    std::vector<double> weighted;
                    const auto tally =
                        run_replication(static_cast<std::int64_t>(rep), true, weighted);
                    std::copy(tally.begin(), tally.end(),
                              results.counts.begin() + static_cast<std::ptrdiff_t>(rep * width));
                    // Without importance sampling both are empty, and an offset from an
                    // empty vector's begin() is undefined behaviour (UBSan: pointer-overflow).
                    if (!weighted.empty())
                        std::copy(
                            weighted.begin(), weighted.end(),
                            results.weighted.begin() + static_cast<std::ptrdiff_t>(rep * width));
                    const auto done = ++finished;
                    if (progress) {
                        const std::lock_guard lock(progress_mutex);
                        progress(done, more);
                    }
                }
            });
    }
    results.plan.replications += more;
    results.wall_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::uint64_t Results::total_stops() const noexcept {
    std::uint64_t total = 0;
    const auto reps = static_cast<std::size_t>(plan.replications);
    for (std::size_t rep = 0; rep < reps; ++rep)
        for (std::size_t c = 0; c < cells(); ++c) total += row(rep, 0, c)[MetricLayout::STOPS];
    return total;
}

}  // namespace stopscan
