#include "stopscan/expectation.hpp"

#include <array>
#include <cmath>
#include <optional>

#include "detail/cell_parameters.hpp"
#include "stopscan/distributions.hpp"
#include "stopscan/match_model.hpp"

namespace stopscan {

namespace {

using detail::CellDatabase;

// One persistent state of a person in one database, with its probability.
struct DbState {
    double p;
    PersonRecord record;
};

// The 2 + 12 states of enrolment, truth, record flag and wrong link (MODEL.md §2, §4).
std::vector<DbState> database_states(const CellDatabase& x) {
    std::vector<DbState> out;
    auto add = [&](double p, PersonRecord r) {
        if (p > 0) out.push_back({p, r});
    };
    for (const bool truth : {false, true})
        add((1 - x.enrolment) * (truth ? x.truth_unenrolled : 1 - x.truth_unenrolled),
            {false, truth, false, false, false});
    for (const bool truth : {false, true}) {
        const double pt = x.enrolment * (truth ? x.truth : 1 - x.truth);
        const double p_flag = truth ? 1 - x.missing_flag : x.false_flag;
        for (const bool flag : {false, true}) {
            const double pf = pt * (flag ? p_flag : 1 - p_flag);
            add(pf * (1 - x.wrong_link), {true, truth, flag, false, false});
            for (const bool linked_flag : {false, true})
                add(pf * x.wrong_link * (linked_flag ? x.gallery_flag : 1 - x.gallery_flag),
                    {true, truth, flag, true, linked_flag});
        }
    }
    return out;
}

// The law of a search's result for one probe cell, modality and database, by mated-ness.
struct SearchLaw {
    OutcomeLaw law[2];                     // [mated]
    double wrong_flag[2] = {0, 0};         // P(adverse flag | wrong record)
    double same_cell[2] = {0, 0};          // P(owner in the probe's cell | wrong record)
    std::vector<double> same_category[2];  // per dimension
};

// One branch of a search's result: what came back and with which probability.
struct Branch {
    double p;
    SearchResult result;
};

std::vector<Branch> branches(const SearchLaw& law, const PersonRecord& person) {
    const int mated = person.enrolled ? 1 : 0;
    const OutcomeLaw& o = law.law[mated];
    std::vector<Branch> out;
    SearchResult none;
    none.mated = person.enrolled;
    out.push_back({1 - o.mate - o.wrong, none});
    if (o.mate > 0) {
        SearchResult r = none;
        r.mate_returned = true;
        r.hit = person.wrong_link ? Hit::wrong_link : Hit::own_record;
        r.flag = person.wrong_link ? person.wrong_link_flag : person.flag;
        r.inaccurate = person.wrong_link || person.flag != person.truth;
        out.push_back({o.mate, r});
    }
    if (o.wrong > 0)
        for (const bool flag : {false, true}) {
            SearchResult r = none;
            r.hit = Hit::false_match;
            r.flag = flag;
            out.push_back(
                {o.wrong * (flag ? law.wrong_flag[mated] : 1 - law.wrong_flag[mated]), r});
        }
    return out;
}

// Probability over (arrested, referred, wrongful so far) during one stop.
using ChainState = std::array<double, 8>;
constexpr std::size_t index(bool arrested, bool referred, bool wrongful) {
    return (arrested ? 4 : 0) + (referred ? 2 : 0) + (wrongful ? 1 : 0);
}

// Adds the expected counts of one search of database d (weight × per-stop probabilities)
// for the chain states that search it, and moves the chain. Mirrors apply_policy's rules.
void expected_search(const std::vector<DatabaseRule>& rules, std::size_t d, const SearchLaw& law,
                     const PersonRecord& person, const ActionOdds& odds, DatabaseRole role,
                     const MetricLayout& layout, bool custody_phase, double weight,
                     ChainState& chain, double* row) {
    ChainState next{};
    double searching = 0;
    for (std::size_t i = 0; i < 8; ++i) {
        const bool arrested = i & 4;
        if (custody_phase && !arrested) {
            next[i] += chain[i];
            continue;
        }
        searching += chain[i];
    }
    const int mated = person.enrolled ? 1 : 0;
    const OutcomeLaw& o = law.law[mated];
    const double w = weight * searching;
    row[layout.at(d, MetricLayout::SEARCHES)] += w;
    if (person.enrolled) {
        row[layout.at(d, MetricLayout::MATED_SEARCHES)] += w;
        row[layout.at(d, MetricLayout::MATES_MISSED)] += w * (1 - o.mate);
    } else {
        row[layout.at(d, MetricLayout::NONMATED_SEARCHES)] += w;
        row[layout.at(d, MetricLayout::NONMATED_FALSE_MATCHES)] += w * o.wrong;
    }
    row[layout.at(d, MetricLayout::FALSE_MATCHES)] += w * o.wrong;
    row[layout.at(d, MetricLayout::HITS)] += w * (o.mate + o.wrong);
    row[layout.at(d, MetricLayout::FALSE_MATCHES_SAME_CELL)] += w * o.wrong * law.same_cell[mated];
    for (std::size_t k = 0; k < layout.dimensions().size(); ++k)
        row[layout.same_category(d, k)] += w * o.wrong * law.same_category[mated][k];
    if (person.enrolled && !person.wrong_link)
        row[layout.at(d, MetricLayout::TRUE_MATCHES)] += w * o.mate;
    if (person.enrolled && (person.wrong_link || person.flag != person.truth))
        row[layout.at(d, MetricLayout::RECORD_ERROR_HITS)] += w * o.mate;

    const DatabaseRule& rule = rules[d];
    for (const Branch& b : branches(law, person)) {
        const SearchResult& r = b.result;
        const bool shown = r.hit != Hit::none && rule.display != Display::none;
        if (shown && role == DatabaseRole::immigration &&
            (rule.display == Display::full || r.flag)) {
            row[MetricLayout::STATUS_DISCLOSURES] += w * b.p;
            if (!person.truth) row[MetricLayout::LAWFUL_STATUS_DISCLOSURES] += w * b.p;
        }
        const bool erroneous = r.hit == Hit::false_match || r.inaccurate;
        const double acts = shown && r.flag ? (erroneous ? 1 - rule.verify : 1.0) : 0.0;
        const bool wrongful = !person.truth;
        const auto cause =
            layout.at(d, r.hit == Hit::false_match ? MetricLayout::WRONGFUL_BY_FALSE_MATCH
                                                   : MetricLayout::WRONGFUL_BY_RECORD_ERROR);
        for (std::size_t i = 0; i < 8; ++i) {
            const bool arrested = i & 4, referred = i & 2, was_wrongful = i & 1;
            if (custody_phase && !arrested) continue;
            const double mass = chain[i] * b.p;
            next[i] += mass * (1 - acts);
            const double acting = mass * acts;
            if (acting == 0) continue;
            // Arrest (once per stop), then referral (once per stop) and detention after it.
            const double p_arrest = arrested ? 0.0 : odds.arrest;
            for (const bool arrest : {false, true}) {
                const double m1 = acting * (arrest ? p_arrest : 1 - p_arrest);
                if (m1 == 0) continue;
                if (arrest) {
                    row[MetricLayout::ARRESTS] += weight * m1;
                    if (wrongful) {
                        row[MetricLayout::WRONGFUL_ARRESTS] += weight * m1;
                        row[MetricLayout::WRONGFUL_OUTCOMES] += weight * m1;
                        row[cause] += weight * m1;
                    }
                }
                const double p_refer = referred ? 0.0 : odds.referral;
                for (const bool refer : {false, true}) {
                    const double m2 = m1 * (refer ? p_refer : 1 - p_refer);
                    if (m2 == 0) continue;
                    if (refer) {
                        row[MetricLayout::HO_REFERRALS] += weight * m2;
                        row[MetricLayout::DETENTIONS] += weight * m2 * odds.detention;
                        if (wrongful) {
                            const double harms = m2 * (1 + odds.detention);
                            row[MetricLayout::WRONGFUL_HO_REFERRALS] += weight * m2;
                            row[MetricLayout::WRONGFUL_DETENTIONS] += weight * m2 * odds.detention;
                            row[MetricLayout::WRONGFUL_OUTCOMES] += weight * harms;
                            row[cause] += weight * harms;
                        }
                    }
                    const bool now_wrongful = was_wrongful || (wrongful && (arrest || refer));
                    next[index(arrested || arrest, referred || refer, now_wrongful)] += m2;
                }
            }
        }
    }
    chain = next;
}

}  // namespace

namespace {

Expectation expected_counts_fixed(const RunPlan& plan) {
    const Scenario& s = *plan.scenario;
    const CellTable cells(s.dimensions, s.population);
    std::vector<std::string> db_names, dim_names;
    for (const auto& db : s.databases) db_names.push_back(db.name);
    for (const auto& dim : s.dimensions) dim_names.push_back(dim.name);
    Expectation e{plan, MetricLayout(db_names, dim_names), {}, {}};
    const std::size_t C = cells.size();
    const std::size_t D = s.databases.size();
    const std::size_t K = e.layout.size();
    for (std::size_t c = 0; c < C; ++c) e.cell_population.push_back(cells.population(c));
    e.counts.assign(plan.policies.size() * C * K, 0.0);

    const auto cell_db = detail::resolve_cell_databases(s, cells);
    const auto mu = detail::mean_stops_per_person(s, cells);
    std::vector<std::optional<MatchModel>> models(MODALITY_COUNT * D);
    for (std::size_t d = 0; d < D; ++d)
        for (std::size_t m = 0; m < MODALITY_COUNT; ++m)
            if (s.modality_share[m] > 0 && s.databases[d].matchers[m])
                models[m * D + d].emplace(s, cells, m, d);

    for (std::size_t c = 0; c < C; ++c) {
        if (mu[c] <= 0) continue;
        const TruncatedStopCount stop_count(mu[c], s.dispersion);
        const double persons = static_cast<double>(cells.population(c)) * stop_count.p_stopped();
        // With a cap on stops per person the mean of min(Y, cap) replaces mu (the engine caps
        // the same draw); without, population × mu is exact and avoids the division.
        const std::int64_t cap = plan.max_stops_per_person;
        const double stops = cap > 0 ? persons * stop_count.mean_given_stopped(cap)
                                     : static_cast<double>(cells.population(c)) * mu[c];

        // Search laws of this probe cell, per modality and database.
        std::vector<SearchLaw> laws(MODALITY_COUNT * D);
        for (std::size_t i = 0; i < laws.size(); ++i) {
            if (!models[i]) continue;
            for (const int mated : {0, 1}) {
                auto& law = laws[i];
                law.law[mated] = models[i]->outcome_law(c, mated == 1);
                law.same_category[mated].assign(s.dimensions.size(), 0.0);
                const std::size_t d = i % D;
                for (std::size_t g = 0; g < C; ++g) {
                    const double p = law.law[mated].owner[g];
                    if (p == 0) continue;
                    law.wrong_flag[mated] += p * cell_db[g * D + d].gallery_flag;
                    if (g == c) law.same_cell[mated] += p;
                    for (std::size_t k = 0; k < s.dimensions.size(); ++k)
                        if (cells.category(c, k) == cells.category(g, k))
                            law.same_category[mated][k] += p;
                }
            }
        }

        // Joint person states across databases (independent given the cell).
        std::vector<std::vector<DbState>> per_db;
        for (std::size_t d = 0; d < D; ++d) per_db.push_back(database_states(cell_db[c * D + d]));
        std::vector<std::size_t> pick(D, 0);
        for (std::size_t p = 0; p < plan.policies.size(); ++p) {
            double* row = e.counts.data() + (p * C + c) * K;
            row[MetricLayout::STOPS] += stops;
            row[MetricLayout::PERSONS_STOPPED] += persons;
        }
        while (true) {
            double p_state = 1;
            std::vector<PersonRecord> records(D);
            for (std::size_t d = 0; d < D; ++d) {
                p_state *= per_db[d][pick[d]].p;
                records[d] = per_db[d][pick[d]].record;
            }
            for (std::size_t p = 0; p < plan.policies.size(); ++p) {
                const Policy& policy = s.policies[plan.policies[p]];
                const auto& rules = policy.rules_for_category(
                    policy.varies_by ? cells.category(c, *policy.varies_by) : 0);
                double* row = e.counts.data() + (p * C + c) * K;
                double wrongful_per_stop = 0;
                for (std::size_t m = 0; m < MODALITY_COUNT; ++m) {
                    if (s.modality_share[m] <= 0) continue;
                    const double weight = stops * p_state * s.modality_share[m];
                    ChainState chain{};
                    chain[0] = 1;
                    for (const bool custody : {false, true})
                        for (std::size_t d = 0; d < D; ++d) {
                            const Access access = rules[d].access;
                            if (access != (custody ? Access::custody : Access::street)) continue;
                            expected_search(rules, d, laws[m * D + d], records[d],
                                            cell_db[c * D + d].odds, s.databases[d].role, e.layout,
                                            custody, weight, chain, row);
                        }
                    double wrongful = 0;
                    for (std::size_t i = 1; i < 8; i += 2) wrongful += chain[i];
                    wrongful_per_stop += s.modality_share[m] * wrongful;
                }
                // A stopped person meets at least one wrongful outcome with probability
                // 1 − E[(1 − w)^Y | Y ≥ 1], from the generating function of the stop count
                // (with a cap, over min(Y, cap)).
                row[MetricLayout::PERSONS_WRONGFULLY_AFFECTED] +=
                    persons * p_state * stop_count.p_at_least_one(wrongful_per_stop, cap);
            }
            std::size_t d = 0;
            while (d < D && ++pick[d] == per_db[d].size()) pick[d++] = 0;
            if (d == D) break;
        }
    }
    return e;
}

}  // namespace

Expectation expected_counts(const RunPlan& plan) {
    if (plan.scenario->uncertain.empty()) return expected_counts_fixed(plan);
    // Over parameter uncertainty the expectation is the mean of the closed form over the
    // parameter draws of the plan's replications: the same draws the simulation uses.
    std::optional<Expectation> total;
    for (std::int64_t r = 0; r < plan.replications; ++r) {
        RunPlan drawn = plan;
        drawn.scenario = std::make_shared<const Scenario>(
            scenario_for_replication(*plan.scenario, plan.seed, static_cast<std::uint64_t>(r)));
        Expectation e = expected_counts_fixed(drawn);
        if (!total) {
            total.emplace(std::move(e));
            total->plan = plan;
        } else {
            for (std::size_t i = 0; i < total->counts.size(); ++i) total->counts[i] += e.counts[i];
        }
    }
    for (auto& v : total->counts) v /= static_cast<double>(plan.replications);
    return std::move(*total);
}

}  // namespace stopscan
