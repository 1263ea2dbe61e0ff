// Expectations (sim/expectations.cpp): parsing, every syntax error, resolving references
// against a Summary, the interval semantics (pass, fail, inconclusive), and JUnit XML.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "stopscan/error.hpp"
#include "stopscan/expectations.hpp"
#include "stopscan/scenario.hpp"
#include "stopscan/settings.hpp"
#include "stopscan/summary.hpp"

using namespace stopscan;

namespace {

// A row with an estimate and its 95 % confidence interval.
SummaryRow row(const std::string& policy, const std::string& dimension, const std::string& category,
               const std::string& metric, std::optional<double> estimate, std::optional<double> lo,
               std::optional<double> hi, std::int64_t replications = 100,
               const std::string& flag = "") {
    SummaryRow r;
    r.policy = policy;
    r.dimension = dimension;
    r.category = category;
    r.metric = metric;
    r.value.estimate = estimate;
    r.value.lo95 = lo;
    r.value.hi95 = hi;
    r.value.mean_lo95 = lo;
    r.value.mean_hi95 = hi;
    r.value.replications = replications;
    r.value.flag = flag;
    return r;
}

// Policies with '-' and '+', a metric with a database suffix, categories with '-' and '+'.
Summary small_summary() {
    Summary s;
    s.rows = {
        row("dual-search", "all", "all", "wrongful_ho_referrals", 86, 80, 92),
        row("firewall", "all", "all", "wrongful_ho_referrals", 10, 9, 11),
        row("firewall+", "all", "all", "wrongful_ho_referrals", 41, 38, 44),
        row("dual-search", "all", "all", "false_matches.IABS", 5, 4, 6),
        row("dual-search", "all", "all", "false_matches", 7, 6, 8),  // a metric that is a prefix
        row("dual-search", "ethnicity", "Black", "exposure_ratio", 2, 1.6, 2.5),
        row("dual-search", "ethnicity", "White", "exposure_ratio", 1, 1, 1),
        row("dual-search", "age", "18-24", "stops", 300, 290, 310),
        row("dual-search", "age", "60+", "stops", 20, 18, 22),
        row("dual-search", "all", "all", "fpir.IABS", std::nullopt, std::nullopt, std::nullopt, 0),
        row("dual-search", "all", "all", "persons_stopped", 7, std::nullopt, std::nullopt, 1),
        row("firewall", "all", "all", "false_matches.IABS", 0, 0, 0.15, 20, "zero_events"),
        row("firewall", "all", "all", "false_matches", 0, 0, 0, 20),
    };
    return s;
}

ExpectationResult evaluate_one(const std::string& text, const Summary& summary = small_summary()) {
    const auto results = evaluate_expectations(summary, {parse_cli_expectation(text)});
    REQUIRE(results.size() == 1);
    return results.front();
}

ExpectationStatus status_of(const std::string& text) {
    return evaluate_one(text).status;
}

std::string error_of(const std::string& text) {
    try {
        parse_cli_expectation(text);
    } catch (const InputError& e) {
        return e.what();
    }
    return "(no error)";
}

std::string evaluation_error_of(const std::string& text) {
    try {
        evaluate_one(text);
    } catch (const InputError& e) {
        return e.what();
    }
    return "(no error)";
}

// Checks that XML text is well formed in the ways a generator can get wrong: every '&'
// starts a known entity, no '<' or '"' appears inside an attribute value or text, and the
// elements nest.
bool well_formed(const std::string& xml) {
    std::vector<std::string> open;
    std::size_t i = xml.find("?>");
    if (xml.rfind("<?xml", 0) != 0 || i == std::string::npos) return false;
    i += 2;
    while (i < xml.size()) {
        const char c = xml[i];
        if (c == '&') {
            bool known = false;
            for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
                known = known || xml.compare(i, std::string(e).size(), e) == 0;
            if (!known) return false;
            ++i;
        } else if (c == '<') {
            const auto close = xml.find('>', i);
            if (close == std::string::npos) return false;
            std::string tag = xml.substr(i + 1, close - i - 1);
            // Attribute values: quoted, with no '<', '"' or raw '&' inside.
            std::size_t quotes = 0;
            for (std::size_t k = 0; k < tag.size(); ++k) {
                if (tag[k] == '"') ++quotes;
                if (tag[k] == '<') return false;
                if (tag[k] == '&') {
                    bool known = false;
                    for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
                        known = known || tag.compare(k, std::string(e).size(), e) == 0;
                    if (!known) return false;
                }
            }
            if (quotes % 2) return false;
            if (tag.front() == '/') {
                if (open.empty() || open.back() != tag.substr(1)) return false;
                open.pop_back();
            } else if (tag.back() != '/') {
                open.push_back(tag.substr(0, tag.find(' ')));
            }
            i = close + 1;
        } else {
            if (c == '>' || c == '"') return false;  // escaped in text by junit_xml
            if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t' && c != '\r')
                return false;
            ++i;
        }
    }
    return open.empty();
}

}  // namespace

TEST_CASE("expectations parse into a tree with each side's text", "[expectations][parse]") {
    const auto e = parse_cli_expectation(
        "  firewall.wrongful_ho_referrals.all <= 0.2 * dual-search.wrongful_ho_referrals.all ");
    CHECK(e.name ==
          "firewall.wrongful_ho_referrals.all <= 0.2 * dual-search.wrongful_ho_referrals.all");
    CHECK(e.key == "--expect");
    CHECK(e.origin == "command line");
    CHECK(e.comparison == Comparison::less_equal);
    CHECK(e.left.kind == ExpressionNode::Kind::reference);
    CHECK(e.left.reference == "firewall.wrongful_ho_referrals.all");
    REQUIRE(e.right.kind == ExpressionNode::Kind::multiply);
    CHECK(e.right.operands[0].number == 0.2);
    CHECK(e.right.operands[1].reference == "dual-search.wrongful_ho_referrals.all");
    CHECK(e.left_text == "firewall.wrongful_ho_referrals.all");
    CHECK(e.right_text == "0.2 * dual-search.wrongful_ho_referrals.all");
    CHECK(e.confidence == DEFAULT_CONFIDENCE);
}

TEST_CASE("operators bind as in arithmetic and every comparison is accepted",
          "[expectations][parse]") {
    const auto e = parse_cli_expectation("1 + 2 * 3 - -4 / (a.b.all + 1e-3) > 0 @0.99");
    CHECK(e.comparison == Comparison::greater);
    CHECK(e.confidence == 0.99);
    REQUIRE(e.left.kind == ExpressionNode::Kind::subtract);
    CHECK(e.left.operands[0].kind == ExpressionNode::Kind::add);
    CHECK(e.left.operands[0].operands[1].kind == ExpressionNode::Kind::multiply);
    const auto& quotient = e.left.operands[1];
    REQUIRE(quotient.kind == ExpressionNode::Kind::divide);
    CHECK(quotient.operands[0].kind == ExpressionNode::Kind::negate);
    CHECK(quotient.operands[1].kind == ExpressionNode::Kind::add);
    CHECK(quotient.operands[1].operands[1].number == 1e-3);
    CHECK(parse_cli_expectation("a.b.all<1").comparison == Comparison::less);
    CHECK(parse_cli_expectation("a.b.all>=1").comparison == Comparison::greater_equal);
    CHECK(parse_cli_expectation("a.b.all\t<=\t+1").comparison == Comparison::less_equal);
    // Names with '-', '+' and leading digits are one reference each.
    const auto names = parse_cli_expectation("p-1+.m.age.60+ > 2020-x.m.age.18-24");
    CHECK(names.left.reference == "p-1+.m.age.60+");
    CHECK(names.right.reference == "2020-x.m.age.18-24");
}

TEST_CASE("every syntax error is one line naming the key, the text and the problem",
          "[expectations][parse]") {
    CHECK(error_of("") ==
          "command line: --expect: empty: write an expectation such as "
          "'firewall.wrongful_outcomes.all <= 0.5 * dual-search.wrongful_outcomes.all'");
    CHECK(error_of("a.b.all") ==
          "command line: --expect = a.b.all: no comparison: write LEFT OP RIGHT with OP one of "
          "<, <=, >, >=");
    CHECK(error_of("a.b.all < 1 < 2") ==
          "command line: --expect = a.b.all < 1 < 2: more than one comparison: an expectation "
          "has exactly one of <, <=, >, >= (write a < b < c as two expectations)");
    CHECK(error_of("a.b.all == 1") ==
          "command line: --expect = a.b.all == 1: '==' at character 9 is not a comparison: use "
          "one of <, <=, >, >= (estimates have intervals, so equality cannot be checked)");
    CHECK(error_of("a.b.all = 1").find("'=' at character 9 is not a comparison") !=
          std::string::npos);
    CHECK(error_of("a.b.all != 1").find("'!=' at character 9 is not a comparison") !=
          std::string::npos);
    CHECK(error_of("a.b.all <> 1") ==
          "command line: --expect = a.b.all <> 1: malformed comparison at character 9: use one "
          "of <, <=, >, >=");
    CHECK(error_of("a.b.all < 1 % 2") ==
          "command line: --expect = a.b.all < 1 % 2: unexpected character '%' at character 13: "
          "an expectation uses references, numbers, + - * / ( ), one of < <= > >= and an "
          "optional @LEVEL");
    CHECK(error_of("(a.b.all < 1") ==
          "command line: --expect = (a.b.all < 1: unbalanced parentheses: '(' at character 1 "
          "is never closed");
    CHECK(error_of("a.b.all) < 1") ==
          "command line: --expect = a.b.all) < 1: unbalanced parentheses: ')' at character 8 "
          "closes nothing");
    CHECK(error_of("a.b.all < ") ==
          "command line: --expect = a.b.all <: the expression ends where a value is expected");
    CHECK(error_of("< 1") ==
          "command line: --expect = < 1: a value is missing before '<' at character 1");
    CHECK(error_of("a.b.all * < 1") ==
          "command line: --expect = a.b.all * < 1: a value is missing before '<' at character "
          "11");
    CHECK(error_of("a.b.all 2 < 1") ==
          "command line: --expect = a.b.all 2 < 1: unexpected '2' at character 9");
    CHECK(error_of("a.b < 1") ==
          "command line: --expect = a.b < 1: 'a.b' is neither a number nor a reference "
          "POLICY.METRIC[.DB].DIMENSION.CATEGORY or POLICY.METRIC[.DB].all");
    CHECK(error_of("a..b.all < 1").find("'a..b.all' is neither a number nor a reference") !=
          std::string::npos);
    CHECK(error_of("m.all-2 < 1") ==
          "command line: --expect = m.all-2 < 1: 'm.all-2' is neither a number nor a reference "
          "POLICY.METRIC[.DB].DIMENSION.CATEGORY or POLICY.METRIC[.DB].all (names may contain "
          "'-' and '+': put a space on each side of a binary + or -)");
    // Three parts make a reference even when they start with digits (names may).
    CHECK(parse_cli_expectation("1.2.3 < 1").left.reference == "1.2.3");
    CHECK(parse_cli_expectation("  a.b.all < 1  ").text == "a.b.all < 1");
    CHECK(error_of("1e999 < a.b.all") ==
          "command line: --expect = 1e999 < a.b.all: '1e999' is neither a number nor a "
          "reference POLICY.METRIC[.DB].DIMENSION.CATEGORY or POLICY.METRIC[.DB].all");
    CHECK(error_of("a.b.all < 1 @") ==
          "command line: --expect = a.b.all < 1 @: '@' at character 13 must be followed by a "
          "confidence level in (0, 1), e.g. @0.99");
    CHECK(error_of("a.b.all < 1 @95") ==
          "command line: --expect = a.b.all < 1 @95: confidence level @95 is outside (0, 1): "
          "write a level such as @0.9 or @0.99");
    CHECK(error_of("a.b.all < 1 @0.9 2") ==
          "command line: --expect = a.b.all < 1 @0.9 2: unexpected '2' at character 18");
    CHECK(error_of("a.b.all @0.9 < 1") ==
          "command line: --expect = a.b.all @0.9 < 1: no comparison: write LEFT OP RIGHT with "
          "OP one of <, <=, >, >=");
}

TEST_CASE("references resolve to rows: longest metric, then 'all' or DIMENSION.CATEGORY",
          "[expectations][resolve]") {
    // false_matches.IABS, not false_matches with a group IABS.all.
    CHECK(evaluate_one("dual-search.false_matches.IABS.all > 4.5 @0.5").left->estimate == 5);
    CHECK(evaluate_one("dual-search.false_matches.all > 6.5 @0.5").left->estimate == 7);
    CHECK(evaluate_one("dual-search.false_matches.all.all > 6.5 @0.5").left->estimate == 7);
    CHECK(evaluate_one("firewall+.wrongful_ho_referrals.all > 1").left->estimate == 41);
    CHECK(evaluate_one("dual-search.stops.age.60+ < dual-search.stops.age.18-24").status ==
          ExpectationStatus::pass);
    CHECK(evaluate_one("dual-search.exposure_ratio.ethnicity.Black > 1.5").status ==
          ExpectationStatus::pass);
}

TEST_CASE("unknown names are errors naming the expectation, with the nearest name",
          "[expectations][resolve]") {
    CHECK(evaluation_error_of("firewal.wrongful_ho_referrals.all < 1") ==
          "command line: --expect = firewal.wrongful_ho_referrals.all < 1: in "
          "'firewal.wrongful_ho_referrals.all': unknown policy 'firewal'; did you mean "
          "'firewall'? (policies in this run: dual-search, firewall, firewall+)");
    CHECK(evaluation_error_of("firewall.wrongful_ho_referal.all < 1") ==
          "command line: --expect = firewall.wrongful_ho_referal.all < 1: in "
          "'firewall.wrongful_ho_referal.all': unknown metric 'wrongful_ho_referal'; did you "
          "mean 'wrongful_ho_referrals'? (metrics are listed in docs/output.md)");
    CHECK(evaluation_error_of("dual-search.false_matches.IASB.all < 1")
              .find("unknown metric 'false_matches.IASB'; did you mean 'false_matches.IABS'?") !=
          std::string::npos);
    CHECK(evaluation_error_of("dual-search.exposure_ratio.ethnicty.Black < 1")
              .find("unknown dimension 'ethnicty'; did you mean 'ethnicity'? (dimensions: "
                    "ethnicity, age, or 'all' for everyone)") != std::string::npos);
    CHECK(evaluation_error_of("dual-search.exposure_ratio.ethnicity.Blak < 1")
              .find("unknown category 'Blak' of ethnicity; did you mean 'Black'? (categories: "
                    "Black, White)") != std::string::npos);
    CHECK(evaluation_error_of("dual-search.exposure_ratio.all < 1")
              .find("summary.csv has no exposure_ratio row for the group all (ratio metrics are "
                    "defined for a category only) under dual-search") != std::string::npos);
    CHECK(evaluation_error_of("firewall.exposure_ratio.ethnicity.Black < 1")
              .find("summary.csv has no exposure_ratio row for ethnicity.Black under firewall") !=
          std::string::npos);
    CHECK(evaluation_error_of("dual-search.stops.all-firewall.stops.all > 1")
              .find("(if '+' or '-' was meant as arithmetic, put a space on each side of it)") !=
          std::string::npos);
    // The same check before a run, on any Summary with the same keys.
    CHECK_THROWS_AS(
        check_expectation_references(small_summary(), {parse_cli_expectation("x.stops.all < 1")}),
        InputError);
    CHECK_NOTHROW(check_expectation_references(
        small_summary(), {parse_cli_expectation("dual-search.stops.age.60+ < 1")}));
}

TEST_CASE("an expectation passes only when it holds over the whole interval",
          "[expectations][semantics]") {
    using S = ExpectationStatus;
    // dual-search 86 [80, 92]; firewall 10 [9, 11]; firewall+ 41 [38, 44].
    CHECK(status_of("firewall.wrongful_ho_referrals.all <= 0.2 * "
                    "dual-search.wrongful_ho_referrals.all") == S::pass);  // 11 <= 16
    CHECK(status_of("firewall+.wrongful_ho_referrals.all <= 0.2 * "
                    "dual-search.wrongful_ho_referrals.all") == S::fail);  // 38 > 18.4
    CHECK(status_of("firewall+.wrongful_ho_referrals.all <= 0.5 * "
                    "dual-search.wrongful_ho_referrals.all") ==
          S::inconclusive);  // [38,44] vs [40,46]
    // Every comparison, on a point and an interval: firewall is [9, 11].
    CHECK(status_of("firewall.wrongful_ho_referrals.all < 11") == S::inconclusive);
    CHECK(status_of("firewall.wrongful_ho_referrals.all <= 11") == S::pass);
    CHECK(status_of("firewall.wrongful_ho_referrals.all < 11.5") == S::pass);
    CHECK(status_of("firewall.wrongful_ho_referrals.all < 9") == S::fail);
    CHECK(status_of("firewall.wrongful_ho_referrals.all <= 9") == S::inconclusive);
    CHECK(status_of("firewall.wrongful_ho_referrals.all <= 8.9") == S::fail);
    CHECK(status_of("firewall.wrongful_ho_referrals.all > 9") == S::inconclusive);
    CHECK(status_of("firewall.wrongful_ho_referrals.all >= 9") == S::pass);
    CHECK(status_of("firewall.wrongful_ho_referrals.all > 11") == S::fail);
    CHECK(status_of("firewall.wrongful_ho_referrals.all >= 11") == S::inconclusive);
    CHECK(status_of("firewall.wrongful_ho_referrals.all >= 11.1") == S::fail);
    // Interval arithmetic: [80, 92] - [9, 11] = [69, 83]; / [9, 11] = [7.27, 10.2].
    const auto d = evaluate_one(
        "dual-search.wrongful_ho_referrals.all - firewall.wrongful_ho_referrals.all > 60");
    CHECK(d.status == S::pass);
    CHECK(d.left->estimate == 76);
    CHECK(d.left->lo == 69);
    CHECK(d.left->hi == 83);
    const auto q = evaluate_one(
        "dual-search.wrongful_ho_referrals.all / firewall.wrongful_ho_referrals.all >= 7");
    CHECK(q.status == S::pass);
    CHECK(q.left->lo == Approx(80.0 / 11));
    CHECK(q.left->hi == Approx(92.0 / 9));
    CHECK(status_of("-firewall.wrongful_ho_referrals.all * (2 - 3) >= 9") == S::pass);
    // A divisor whose interval holds 0 leaves the quotient unbounded: inconclusive.
    CHECK(status_of("dual-search.wrongful_ho_referrals.all / (firewall.wrongful_ho_referrals.all "
                    "- 10) > 1") == S::inconclusive);
    const auto zero =
        evaluate_one("firewall.false_matches.all * (1 / firewall.false_matches.all) < 1");
    CHECK(zero.status == S::fail);
    CHECK(zero.message.find(": cannot be evaluated: division by zero") != std::string::npos);
}

TEST_CASE("a confidence level rescales each interval", "[expectations][semantics]") {
    // firewall 10 [9, 11] with 100 replications: at 99 % the half-width grows by
    // t(0.995, 99) / t(0.975, 99) = 2.6264 / 1.9842.
    const auto wide = evaluate_one("firewall.wrongful_ho_referrals.all < 11.2 @0.99");
    CHECK(wide.status == ExpectationStatus::inconclusive);
    CHECK(wide.left->hi == Approx(10 + 2.626405 / 1.984217).epsilon(1e-5));
    CHECK(evaluate_one("firewall.wrongful_ho_referrals.all < 11.2").status ==
          ExpectationStatus::pass);
    CHECK(evaluate_one("firewall.wrongful_ho_referrals.all < 10.5 @0.5").status ==
          ExpectationStatus::pass);
    // A zero-event row: the Poisson bound -ln(1 - level) / R, scaled from the 95 % bound.
    const auto zero = evaluate_one("firewall.false_matches.IABS.all < 1 @0.99");
    CHECK(zero.left->lo == 0);
    CHECK(zero.left->hi == Approx(0.15 * std::log(0.01) / std::log(0.05)));
    // A ratio's interval is symmetric on the log scale: 2 [1.6, 2.5].
    const auto ratio = evaluate_one("dual-search.exposure_ratio.ethnicity.Black > 1 @0.99");
    CHECK(ratio.left->lo * ratio.left->hi == Approx(4));
    CHECK(ratio.left->hi / ratio.left->lo ==
          Approx(std::pow(2.5 / 1.6, 2.626405 / 1.984217)).epsilon(1e-5));
}

TEST_CASE("NA values and missing intervals fail with a message", "[expectations][semantics]") {
    const auto na = evaluate_one("dual-search.fpir.IABS.all < 1");
    CHECK(na.status == ExpectationStatus::fail);
    CHECK(!na.left);
    CHECK(na.message ==
          "dual-search.fpir.IABS.all < 1: cannot be evaluated: dual-search.fpir.IABS.all is NA "
          "(not defined in any replication)");
    const auto no_interval = evaluate_one("dual-search.persons_stopped.all < 100");
    CHECK(no_interval.status == ExpectationStatus::fail);
    CHECK(no_interval.message.find("dual-search.persons_stopped.all = 7 has no confidence "
                                   "interval") != std::string::npos);
    CHECK(any_expectation_failed({na}));
}

TEST_CASE("messages give each side's estimate and interval", "[expectations][messages]") {
    const auto fail = evaluate_one(
        "firewall+.wrongful_ho_referrals.all <= 0.2 * dual-search.wrongful_ho_referrals.all");
    CHECK(fail.message ==
          "firewall+.wrongful_ho_referrals.all <= 0.2 * dual-search.wrongful_ho_referrals.all: "
          "firewall+.wrongful_ho_referrals.all = 41 [38, 44] is not <= 0.2 * "
          "dual-search.wrongful_ho_referrals.all = 17.2 [16, 18.4] (95 % confidence intervals; "
          "dual-search.wrongful_ho_referrals.all = 86 [80, 92])");
    const auto pass = evaluate_one("firewall.wrongful_ho_referrals.all < 12");
    CHECK(pass.message ==
          "firewall.wrongful_ho_referrals.all < 12: holds: firewall.wrongful_ho_referrals.all = "
          "10 [9, 11] < 12 (95 % confidence intervals)");
    const auto unsure = evaluate_one("firewall.wrongful_ho_referrals.all < 10 @0.9");
    CHECK(unsure.message.find(": inconclusive: firewall.wrongful_ho_referrals.all = 10 [") !=
          std::string::npos);
    CHECK(unsure.message.find("(90 % confidence intervals): run more replications") !=
          std::string::npos);
    CHECK(!any_expectation_failed({pass}));
    CHECK(any_expectation_failed({pass, unsure}));
}

TEST_CASE("JUnit XML has one testcase per expectation and escapes text", "[expectations][junit]") {
    auto results = evaluate_expectations(
        small_summary(), {parse_cli_expectation("firewall.wrongful_ho_referrals.all < 12"),
                          parse_cli_expectation("firewall+.wrongful_ho_referrals.all <= 0.2 * "
                                                "dual-search.wrongful_ho_referrals.all"),
                          parse_cli_expectation("firewall.wrongful_ho_referrals.all < 10")});
    results[0].name = "a \"quoted\" <name> & 'more'";
    results[1].message += " \x01 control";
    const std::string xml = junit_xml(results, "suite <&\">");
    INFO(xml);
    CHECK(well_formed(xml));
    CHECK(xml.find("<testsuite name=\"suite &lt;&amp;&quot;&gt;\" tests=\"3\" failures=\"2\" "
                   "errors=\"0\" skipped=\"0\">") != std::string::npos);
    CHECK(xml.find("name=\"a &quot;quoted&quot; &lt;name&gt; &amp; &apos;more&apos;\"") !=
          std::string::npos);
    CHECK(xml.find("<failure type=\"fail\" message=\"firewall+.wrongful_ho_referrals.all &lt;= "
                   "0.2") != std::string::npos);
    CHECK(xml.find("<failure type=\"inconclusive\"") != std::string::npos);
    CHECK(xml.find("\xEF\xBF\xBD control") != std::string::npos);
    CHECK(xml.find('\x01') == std::string::npos);
    CHECK(well_formed(junit_xml({}, "empty")));
    CHECK(!well_formed("<?xml version=\"1.0\"?><a>&</a>"));  // the checker itself
    CHECK(!well_formed("<?xml version=\"1.0\"?><a b=\"<\"></a>"));
}

TEST_CASE("an expect section is parsed at load time with file and line",
          "[expectations][scenario]") {
    const std::string text = std::string(default_scenario_text()) +
                             "\n[expect]\n"
                             "halves = firewall.wrongful_outcomes.all <= 0.5 * "
                             "dual-search.wrongful_outcomes.all\n"
                             "black-ratio = dual-search.exposure_ratio.ethnicity.Black > 1.5 "
                             "@0.99\n";
    const Scenario s = load_scenario(Settings::parse_ini(text, "x.ini"));
    REQUIRE(s.expectations.size() == 2);
    CHECK(s.expectations[0].name == "black-ratio");  // in the order of their names
    CHECK(s.expectations[0].confidence == 0.99);
    CHECK(s.expectations[1].name == "halves");
    CHECK(s.expectations[1].key == "expect.halves");
    const auto lines = std::count(text.begin(), text.end(), '\n');
    CHECK(s.expectations[1].origin == "x.ini:" + std::to_string(lines - 1));

    const std::string bad =
        std::string(default_scenario_text()) + "\n[expect]\nbroken = firewall.stops.all <= \n";
    const auto bad_lines = std::count(bad.begin(), bad.end(), '\n');
    try {
        load_scenario(Settings::parse_ini(bad, "x.ini"));
        FAIL("no error");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()) ==
              "x.ini:" + std::to_string(bad_lines) +
                  ": expect.broken = firewall.stops.all <=: the expression ends where a value "
                  "is expected");
    }
    // --set adds one too, and a name must be a plain name.
    auto settings = Settings::parse_ini(default_scenario_text(), "");
    settings.apply_override("expect.cli = firewall.stops.all > 0");
    CHECK(load_scenario(settings).expectations.at(0).origin == "--set");
    settings.apply_override("expect.a.b = firewall.stops.all > 0");
    CHECK_THROWS_WITH(load_scenario(settings),
                      "--set: expect.a.b = firewall.stops.all > 0: an expectation's name may use "
                      "letters, digits, '_', '-' and '+' only (write expect.NAME = EXPRESSION)");
}
