// Expectations about a run's results, checked with confidence (docs/expectations.md).
//
// An expectation compares two arithmetic expressions over summary.csv values, such as
// `firewall.wrongful_ho_referrals.all <= 0.2 * dual-search.wrongful_ho_referrals.all`. It is
// written in a scenario's [expect] section (`expect.NAME = EXPRESSION`) or given with
// `stopscan run --expect EXPRESSION`, parsed when it is read (so a syntax error is a
// load-time InputError), and evaluated on a run's Summary with interval arithmetic over the
// confidence intervals of the estimates: it passes only when it holds over the whole
// interval, fails when it is violated over the whole interval, and is inconclusive
// otherwise.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace stopscan {

struct Summary;

/// One node of a parsed arithmetic expression.
struct ExpressionNode {
    enum class Kind { number, reference, add, subtract, multiply, divide, negate };
    Kind kind = Kind::number;
    double number = 0;                     ///< the value of a number
    std::string reference;                 ///< the dotted path of a reference, as written
    std::vector<ExpressionNode> operands;  ///< one for negate, two for the binary operators
};

/// The comparison of an expectation.
enum class Comparison { less, less_equal, greater, greater_equal };

/// The symbol of a comparison: "<", "<=", ">" or ">=".
const char* comparison_symbol(Comparison comparison) noexcept;

/// The confidence level of the intervals an expectation is evaluated on, when it does not
/// give one with `@LEVEL`: the 95 % confidence interval of summary.csv (mean_lo95, mean_hi95).
inline constexpr double DEFAULT_CONFIDENCE = 0.95;

/// A parsed expectation about a run's results. (Not `Expectation`: that name is the
/// closed-form expected counts of `stopscan explain`.)
struct ResultExpectation {
    std::string name;    ///< NAME of `expect.NAME`, or the text itself for --expect
    std::string key;     ///< "expect.NAME" or "--expect": the key named in errors
    std::string origin;  ///< "scenarios/x.ini:40", "--set" or "command line"
    std::string text;    ///< the expression as written (trimmed)
    ExpressionNode left;
    Comparison comparison = Comparison::less_equal;
    ExpressionNode right;
    std::string left_text;                   ///< the left side as written
    std::string right_text;                  ///< the right side as written
    double confidence = DEFAULT_CONFIDENCE;  ///< from `@LEVEL`, in (0, 1)
};

/// Parses `EXPRESSION [@ LEVEL]`. `key` and `origin` name the expectation in errors. Throws
/// InputError (`ORIGIN: KEY = TEXT: PROBLEM`) on a syntax error: an unknown character, a
/// missing or repeated comparison, unbalanced parentheses, a malformed number or reference,
/// or a level outside (0, 1). References are checked against a Summary only when evaluated.
ResultExpectation parse_expectation(const std::string& name, const std::string& text,
                                    const std::string& key, const std::string& origin);

/// Parses the text of one `--expect EXPRESSION` flag: named by its text, key "--expect",
/// source "command line". Throws InputError as parse_expectation.
ResultExpectation parse_cli_expectation(const std::string& text);

/// A value with its interval: a reference's estimate and confidence interval, or an
/// expression's, computed with interval arithmetic.
struct ValueInterval {
    double estimate = 0;
    double lo = 0;
    double hi = 0;
};

/// The outcome of one expectation.
enum class ExpectationStatus {
    pass,          ///< holds over the whole interval
    fail,          ///< violated over the whole interval, or a value is NA
    inconclusive,  ///< the intervals overlap: more replications are needed to decide
};

/// "pass", "fail" or "inconclusive".
const char* status_name(ExpectationStatus status) noexcept;

/// One expectation evaluated on a Summary.
struct ExpectationResult {
    std::string name;
    std::string origin;
    std::string text;
    ExpectationStatus status = ExpectationStatus::fail;
    /// One line: what was compared, with each side's estimate and interval, and for an
    /// inconclusive result what to do. Starts with the expectation's name.
    std::string message;
    std::optional<ValueInterval> left;  ///< empty when a value was NA
    std::optional<ValueInterval> right;
};

/// Checks that every reference of `expectations` names a row of `summary`: its policy, its
/// metric and its group. Throws InputError naming the expectation, with the nearest valid
/// name, otherwise. (The CLI runs it on a cheap closed-form Summary before a long run.)
void check_expectation_references(const Summary& summary,
                                  const std::vector<ResultExpectation>& expectations);

/// Evaluates each expectation on `summary`, in order. Throws InputError as
/// check_expectation_references for a reference to no row; a row whose value or interval is
/// NA gives a failed result, not an exception.
std::vector<ExpectationResult> evaluate_expectations(
    const Summary& summary, const std::vector<ResultExpectation>& expectations);

/// Whether the run should fail: any result that did not pass (fail or inconclusive).
bool any_expectation_failed(const std::vector<ExpectationResult>& results) noexcept;

/// JUnit XML for CI systems: one testsuite `suite_name`, one testcase per expectation, a
/// <failure> element (type "fail" or "inconclusive") with the message for each that did not
/// pass. Text is XML-escaped; control characters become U+FFFD.
std::string junit_xml(const std::vector<ExpectationResult>& results, const std::string& suite_name);

}  // namespace stopscan
