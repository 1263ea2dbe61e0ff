#include "stopscan/stop_rules.hpp"

namespace stopscan {

namespace {

enum class Phase { street, custody };

struct ActionState {
    bool arrested = false;
    bool referred = false;
    bool wrongful = false;
};

void count_wrongful(std::uint64_t* row, const MetricLayout& layout, std::size_t d, Hit hit,
                    MetricLayout::Fixed metric) {
    ++row[metric];
    ++row[MetricLayout::WRONGFUL_OUTCOMES];
    ++row[layout.at(d, hit == Hit::false_match ? MetricLayout::WRONGFUL_BY_FALSE_MATCH
                                               : MetricLayout::WRONGFUL_BY_RECORD_ERROR)];
}

// LOG: also fill `lookup` (a separate instantiation, so the plain tally pays nothing).
template <bool LOG>
void search(const std::vector<DatabaseRule>& rules, const StopFacts& stop,
            const MetricLayout& layout, std::uint64_t* row, std::size_t d, ActionState& state,
            [[maybe_unused]] Lookup* lookup) {
    const DatabaseRule& rule = rules[d];
    const SearchResult& result = stop.results[d];
    const PersonRecord& person = stop.records[d];
    ++row[layout.at(d, MetricLayout::SEARCHES)];
    if (result.mated) {
        ++row[layout.at(d, MetricLayout::MATED_SEARCHES)];
        if (!result.mate_returned) ++row[layout.at(d, MetricLayout::MATES_MISSED)];
    } else {
        ++row[layout.at(d, MetricLayout::NONMATED_SEARCHES)];
        if (result.hit == Hit::false_match)
            ++row[layout.at(d, MetricLayout::NONMATED_FALSE_MATCHES)];
    }
    if (result.hit == Hit::false_match) {
        if (result.same_cell) ++row[layout.at(d, MetricLayout::FALSE_MATCHES_SAME_CELL)];
        for (std::size_t k = 0; k < layout.dimensions().size(); ++k)
            if (result.same_category & (1u << k)) ++row[layout.same_category(d, k)];
    }
    if (result.hit != Hit::none) ++row[layout.at(d, MetricLayout::HITS)];
    if constexpr (LOG)
        *lookup = {static_cast<std::uint8_t>(d), result.hit, ShownAs::none, 0, false};
    switch (result.hit) {
        case Hit::none:
            return;
        case Hit::own_record:
            ++row[layout.at(d, MetricLayout::TRUE_MATCHES)];
            if (result.inaccurate) ++row[layout.at(d, MetricLayout::RECORD_ERROR_HITS)];
            break;
        case Hit::wrong_link:
            ++row[layout.at(d, MetricLayout::RECORD_ERROR_HITS)];
            break;
        case Hit::false_match:
            ++row[layout.at(d, MetricLayout::FALSE_MATCHES)];
            break;
    }
    if (rule.display == Display::none) return;
    if constexpr (LOG)
        lookup->shown = rule.display == Display::full ? ShownAs::full
                        : result.flag                 ? ShownAs::flag_only
                                                      : ShownAs::none;
    // "flag-only" reveals nothing about a record that carries no flag, so only a shown
    // flag discloses status; "full" discloses every returned record.
    if (stop.roles[d] == DatabaseRole::immigration &&
        (rule.display == Display::full || result.flag)) {
        ++row[MetricLayout::STATUS_DISCLOSURES];
        if (!person.truth) ++row[MetricLayout::LAWFUL_STATUS_DISCLOSURES];
    }
    if (!result.flag) return;
    const ActionDraws& draw = stop.draws[d];
    const bool erroneous = result.hit == Hit::false_match || result.inaccurate;
    if (erroneous && draw.verify < rule.verify) return;  // an independent check caught it
    // Rightful means the person's own truth supports the action, whatever record was shown.
    const bool wrongful = !person.truth;
    const ActionOdds& odds = stop.odds[d];
    if (!state.arrested && draw.arrest < odds.arrest) {
        state.arrested = true;
        ++row[MetricLayout::ARRESTS];
        if constexpr (LOG) lookup->actions |= LOOKUP_ARREST;
        if (wrongful) {
            count_wrongful(row, layout, d, result.hit, MetricLayout::WRONGFUL_ARRESTS);
            state.wrongful = true;
        }
    }
    if (!state.referred && draw.referral < odds.referral) {
        state.referred = true;
        ++row[MetricLayout::HO_REFERRALS];
        if constexpr (LOG) lookup->actions |= LOOKUP_REFERRAL;
        if (wrongful) {
            count_wrongful(row, layout, d, result.hit, MetricLayout::WRONGFUL_HO_REFERRALS);
            state.wrongful = true;
        }
        if (draw.detention < odds.detention) {
            ++row[MetricLayout::DETENTIONS];
            if constexpr (LOG) lookup->actions |= LOOKUP_DETENTION;
            if (wrongful)
                count_wrongful(row, layout, d, result.hit, MetricLayout::WRONGFUL_DETENTIONS);
        }
    }
    if constexpr (LOG) lookup->wrongful = wrongful && lookup->actions != 0;
}

template <bool LOG>
bool apply(const std::vector<DatabaseRule>& rules, const StopFacts& stop,
           const MetricLayout& layout, std::uint64_t* row, StopLookups* lookups) {
    ActionState state;
    if constexpr (LOG) lookups->count = 0;
    // Street searches first, in database order; custody searches happen only after an
    // arrest on the street (MODEL.md §6: "searched only in custody after an arrest").
    for (const Phase phase : {Phase::street, Phase::custody}) {
        for (std::size_t d = 0; d < stop.databases; ++d) {
            const Access access = rules[d].access;
            const bool searched = phase == Phase::street
                                      ? access == Access::street
                                      : access == Access::custody && state.arrested;
            if (!searched) continue;
            if constexpr (LOG)
                search<true>(rules, stop, layout, row, d, state,
                             &lookups->entries[lookups->count++]);
            else
                search<false>(rules, stop, layout, row, d, state, nullptr);
        }
    }
    return state.wrongful;
}

}  // namespace

bool apply_policy(const std::vector<DatabaseRule>& rules, const StopFacts& stop,
                  const MetricLayout& layout, std::uint64_t* row, StopLookups* lookups) noexcept {
    return lookups ? apply<true>(rules, stop, layout, row, lookups)
                   : apply<false>(rules, stop, layout, row, nullptr);
}

}  // namespace stopscan
