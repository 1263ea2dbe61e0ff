// Policy truth tables (MODEL.md §6–§7): which search happens, what is shown, which action
// follows, and whether it is rightful or wrongful and why.
#include <catch2/catch.hpp>

#include "stopscan/stop_rules.hpp"

using namespace stopscan;

namespace {

constexpr std::size_t CRIM = 0;
constexpr std::size_t IMM = 1;

struct Stop {
    SearchResult results[2];
    PersonRecord records[2];
    ActionOdds odds[2] = {
        {1, 0, 0}, {0, 1, 1}};  // criminal flag → arrest; immigration flag → referral → detention
    ActionDraws draws[2] = {{0.5, 0, 0, 0},
                            {0.5, 0, 0, 0}};  // actions happen unless verify catches
    DatabaseRole roles[2] = {DatabaseRole::criminal, DatabaseRole::immigration};
    MetricLayout layout{{"CRIM", "IMM"}, {}};
    std::vector<std::uint64_t> row = std::vector<std::uint64_t>(layout.size(), 0);

    bool apply(const Policy& p) {
        return apply_policy(p.rules, {results, records, odds, draws, roles, 2}, layout, row.data());
    }
    std::uint64_t at(std::size_t d, MetricLayout::PerDatabase m) const {
        return row[layout.at(d, m)];
    }
    std::uint64_t at(MetricLayout::Fixed m) const { return row[m]; }
};

Policy policy(Access imm_access, Display imm_display = Display::full, double imm_verify = 0) {
    Policy p;
    p.name = "p";
    p.rules = {DatabaseRule{}, DatabaseRule{imm_access, imm_display, imm_verify}};
    return p;
}

const Policy DUAL = policy(Access::street);
const Policy FIREWALL = policy(Access::none);
const Policy CUSTODY = policy(Access::custody);

}  // namespace

TEST_CASE("an accurate immigration flag about a person without leave is rightful", "[rules]") {
    Stop s;
    s.records[IMM] = {true, true, true, false, false};
    s.results[IMM] = {Hit::own_record, true, false};
    CHECK_FALSE(s.apply(DUAL));
    CHECK(s.at(IMM, MetricLayout::SEARCHES) == 1);
    CHECK(s.at(IMM, MetricLayout::TRUE_MATCHES) == 1);
    CHECK(s.at(MetricLayout::HO_REFERRALS) == 1);
    CHECK(s.at(MetricLayout::DETENTIONS) == 1);
    CHECK(s.at(MetricLayout::WRONGFUL_OUTCOMES) == 0);
    CHECK(s.at(MetricLayout::STATUS_DISCLOSURES) == 1);
    CHECK(s.at(MetricLayout::LAWFUL_STATUS_DISCLOSURES) == 0);
}

TEST_CASE("a false match with a flag harms a person with lawful leave, caused by biometrics",
          "[rules]") {
    Stop s;
    s.results[IMM] = {Hit::false_match, true, false};
    CHECK(s.apply(DUAL));
    CHECK(s.at(IMM, MetricLayout::FALSE_MATCHES) == 1);
    CHECK(s.at(MetricLayout::WRONGFUL_HO_REFERRALS) == 1);
    CHECK(s.at(MetricLayout::WRONGFUL_DETENTIONS) == 1);
    CHECK(s.at(MetricLayout::WRONGFUL_OUTCOMES) == 2);
    CHECK(s.at(IMM, MetricLayout::WRONGFUL_BY_FALSE_MATCH) == 2);
    CHECK(s.at(IMM, MetricLayout::WRONGFUL_BY_RECORD_ERROR) == 0);
    CHECK(s.at(MetricLayout::LAWFUL_STATUS_DISCLOSURES) == 1);
}

TEST_CASE("a wrong record about the right person is a record error", "[rules]") {
    Stop s;
    s.records[IMM] = {true, false, true, false, false};  // enrolled, lawful, record falsely flagged
    s.results[IMM] = {Hit::own_record, true, true};
    CHECK(s.apply(DUAL));
    CHECK(s.at(IMM, MetricLayout::RECORD_ERROR_HITS) == 1);
    CHECK(s.at(IMM, MetricLayout::WRONGFUL_BY_RECORD_ERROR) == 2);  // referral and detention
    s = Stop{};
    s.records[CRIM] = {true, false, false, true, true};
    s.results[CRIM] = {Hit::wrong_link, true, true};
    CHECK(s.apply(DUAL));
    CHECK(s.at(CRIM, MetricLayout::RECORD_ERROR_HITS) == 1);
    CHECK(s.at(CRIM, MetricLayout::TRUE_MATCHES) == 0);
    CHECK(s.at(MetricLayout::WRONGFUL_ARRESTS) == 1);
    CHECK(s.at(CRIM, MetricLayout::WRONGFUL_BY_RECORD_ERROR) == 1);
}

TEST_CASE("the firewall never searches the immigration database", "[rules]") {
    Stop s;
    s.results[IMM] = {Hit::false_match, true, false};
    s.results[CRIM] = {Hit::false_match, true, false};  // even after an arrest
    CHECK(s.apply(FIREWALL));
    CHECK(s.at(IMM, MetricLayout::SEARCHES) == 0);
    CHECK(s.at(MetricLayout::STATUS_DISCLOSURES) == 0);
    CHECK(s.at(MetricLayout::HO_REFERRALS) == 0);
    CHECK(s.at(MetricLayout::WRONGFUL_ARRESTS) == 1);
    CHECK(s.at(CRIM, MetricLayout::WRONGFUL_BY_FALSE_MATCH) == 1);
}

TEST_CASE("custody access searches only after an arrest at that stop", "[rules]") {
    Stop s;
    s.results[IMM] = {Hit::false_match, true, false};
    CHECK_FALSE(s.apply(CUSTODY));  // no criminal flag, no arrest, no custody search
    CHECK(s.at(IMM, MetricLayout::SEARCHES) == 0);
    s = Stop{};
    s.records[CRIM] = {true, true, true, false, false};
    s.results[CRIM] = {Hit::own_record, true, false};  // rightful arrest
    s.results[IMM] = {Hit::false_match, true, false};
    CHECK(s.apply(CUSTODY));
    CHECK(s.at(IMM, MetricLayout::SEARCHES) == 1);
    CHECK(s.at(MetricLayout::ARRESTS) == 1);
    CHECK(s.at(MetricLayout::WRONGFUL_ARRESTS) == 0);
    CHECK(s.at(MetricLayout::WRONGFUL_HO_REFERRALS) == 1);
}

TEST_CASE("verification cancels erroneous hits only, with its probability", "[rules]") {
    const Policy verified = policy(Access::street, Display::full, 0.9);
    Stop s;
    s.results[IMM] = {Hit::false_match, true, false};
    s.draws[IMM].verify = 0.89;  // below 0.9: the check catches it
    CHECK_FALSE(s.apply(verified));
    CHECK(s.at(MetricLayout::HO_REFERRALS) == 0);
    CHECK(s.at(IMM, MetricLayout::FALSE_MATCHES) == 1);  // the search still happened
    s.draws[IMM].verify = 0.9;                           // not caught
    CHECK(s.apply(verified));
    s = Stop{};
    s.records[IMM] = {true, true, true, false, false};
    s.results[IMM] = {Hit::own_record, true, false};  // accurate: nothing to catch
    s.draws[IMM].verify = 0.0;
    s.apply(verified);
    CHECK(s.at(MetricLayout::HO_REFERRALS) == 1);
}

TEST_CASE("what the officer is shown decides disclosures and actions", "[rules]") {
    Stop s;
    s.records[IMM] = {true, false, false, false, false};
    s.results[IMM] = {Hit::own_record, false, false};  // a lawful resident's record, no flag
    s.apply(policy(Access::street, Display::flag_only));
    CHECK(s.at(MetricLayout::STATUS_DISCLOSURES) == 0);  // flag-only reveals nothing without a flag
    s.apply(DUAL);
    CHECK(s.at(MetricLayout::STATUS_DISCLOSURES) == 1);  // full shows the record
    CHECK(s.at(MetricLayout::LAWFUL_STATUS_DISCLOSURES) == 1);
    Stop hidden;
    hidden.results[IMM] = {Hit::false_match, true, false};
    CHECK_FALSE(hidden.apply(policy(Access::street, Display::none)));
    CHECK(hidden.at(IMM, MetricLayout::SEARCHES) == 1);
    CHECK(hidden.at(MetricLayout::STATUS_DISCLOSURES) == 0);
    CHECK(hidden.at(MetricLayout::HO_REFERRALS) == 0);
}

TEST_CASE("actions follow their probabilities, one arrest and one referral per stop", "[rules]") {
    Stop s;
    s.results[CRIM] = {Hit::false_match, true, false};
    s.results[IMM] = {Hit::false_match, true, false};
    s.odds[IMM] = {1, 1, 0};  // the immigration flag could also lead to an arrest
    s.draws[IMM].detention = 0.5;
    s.apply(DUAL);
    CHECK(s.at(MetricLayout::ARRESTS) == 1);
    CHECK(s.at(CRIM, MetricLayout::WRONGFUL_BY_FALSE_MATCH) ==
          1);  // the first database's hit arrests
    CHECK(s.at(MetricLayout::HO_REFERRALS) == 1);
    CHECK(s.at(MetricLayout::DETENTIONS) == 0);  // detention probability 0
    Stop t;
    t.results[CRIM] = {Hit::false_match, true, false};
    t.draws[CRIM].arrest = 0.999;  // u >= P(arrest) = 0.5: no arrest
    t.odds[CRIM].arrest = 0.5;
    CHECK_FALSE(t.apply(DUAL));
    CHECK(t.at(MetricLayout::ARRESTS) == 0);
}

TEST_CASE("with a lookup report apply_policy tallies the same and reports each search",
          "[rules][audit_log]") {
    // A false match with a flag in IMM after a rightful arrest on an accurate CRIM record:
    // the arrest is rightful (CRIM), the referral and detention wrongful by false match (IMM).
    Stop plain, logged;
    for (Stop* s : {&plain, &logged}) {
        s->records[CRIM] = {true, true, true, false, false};
        s->results[CRIM] = {Hit::own_record, true, false, true, true};
        s->results[IMM] = {Hit::false_match, true, false};
    }
    const bool wrongful = plain.apply(DUAL);
    StopLookups found;
    found.count = 7;  // reset by apply_policy
    CHECK(apply_policy(DUAL.rules,
                       {logged.results, logged.records, logged.odds, logged.draws, logged.roles, 2},
                       logged.layout, logged.row.data(), &found) == wrongful);
    CHECK(logged.row == plain.row);
    REQUIRE(found.count == 2);
    CHECK(found.entries[0].database == CRIM);
    CHECK(found.entries[0].hit == Hit::own_record);
    CHECK(found.entries[0].shown == ShownAs::full);
    CHECK(found.entries[0].actions == LOOKUP_ARREST);
    CHECK_FALSE(found.entries[0].wrongful);
    CHECK(found.entries[1].database == IMM);
    CHECK(found.entries[1].hit == Hit::false_match);
    CHECK(found.entries[1].actions == (LOOKUP_REFERRAL | LOOKUP_DETENTION));
    CHECK(found.entries[1].wrongful);

    // Custody access: the IMM search comes after the street search, and only after an arrest;
    // flag-only display of a record without a flag shows nothing.
    Stop custody;
    custody.records[CRIM] = {true, true, true, false, false};
    custody.results[CRIM] = {Hit::own_record, true, false, true, true};
    custody.results[IMM] = {Hit::own_record, false, false, true, true};
    custody.records[IMM] = {true, false, false, false, false};
    const Policy flag_only_custody = policy(Access::custody, Display::flag_only);
    apply_policy(flag_only_custody.rules,
                 {custody.results, custody.records, custody.odds, custody.draws, custody.roles, 2},
                 custody.layout, custody.row.data(), &found);
    REQUIRE(found.count == 2);
    CHECK(found.entries[1].database == IMM);
    CHECK(found.entries[1].shown == ShownAs::none);
    CHECK(found.entries[1].actions == 0);
    CHECK_FALSE(found.entries[1].wrongful);
    // Firewall: one lookup only.
    Stop fw;
    apply_policy(FIREWALL.rules, {fw.results, fw.records, fw.odds, fw.draws, fw.roles, 2},
                 fw.layout, fw.row.data(), &found);
    CHECK(found.count == 1);
    CHECK(found.entries[0].hit == Hit::none);
    CHECK(found.entries[0].shown == ShownAs::none);
}
