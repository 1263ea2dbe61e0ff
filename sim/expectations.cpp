#include "stopscan/expectations.hpp"

#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>

#include "stopscan/error.hpp"
#include "stopscan/settings.hpp"
#include "stopscan/summary.hpp"

namespace stopscan {

namespace {

// ---------------------------------------------------------------------------------------
// Parsing

// Characters of a reference or a number: names in a scenario use letters, digits, '_',
// '-' and '+' (scenario.cpp, valid_name); '.' joins the parts of a reference.
bool is_word_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '+' ||
           c == '.';
}
// A word starts with a letter, a digit, '_' or '.': a leading '+' or '-' is an operator.
bool starts_word(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}

struct Token {
    enum Kind { number, word, lparen, rparen, plus, minus, star, slash, compare, at, end };
    Kind kind = end;
    std::size_t begin = 0;  // position in the text
    std::size_t end_pos = 0;
    double value = 0;
    Comparison comparison = Comparison::less;
};

std::optional<double> parse_double(std::string_view word) {
    double v = 0;
    const auto r = std::from_chars(word.data(), word.data() + word.size(), v);
    if (word.empty() || r.ec != std::errc() || r.ptr != word.data() + word.size()) return {};
    return v;
}

std::vector<std::string> split_dots(const std::string& text) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (true) {
        const auto dot = text.find('.', start);
        parts.push_back(text.substr(start, dot - start));
        if (dot == std::string::npos) return parts;
        start = dot + 1;
    }
}

class Parser {
public:
    Parser(const std::string& text, const std::string& key, const std::string& origin)
        : text_(text), key_(key), origin_(origin) {
        tokenize();
    }

    ResultExpectation parse() {
        ResultExpectation e;
        if (tokens_.front().kind == Token::end)
            fail(
                "empty: write an expectation such as "
                "'firewall.wrongful_outcomes.all <= 0.5 * dual-search.wrongful_outcomes.all'");
        std::size_t side_begin = peek().begin;
        e.left = expression();
        e.left_text = side(side_begin);
        if (peek().kind != Token::compare) {
            if (peek().kind == Token::end || peek().kind == Token::at)
                fail("no comparison: write LEFT OP RIGHT with OP one of <, <=, >, >=");
            unexpected();
        }
        e.comparison = next().comparison;
        side_begin = peek().begin;
        e.right = expression();
        e.right_text = side(side_begin);
        if (peek().kind == Token::compare)
            fail(
                "more than one comparison: an expectation has exactly one of <, <=, >, >= "
                "(write a < b < c as two expectations)");
        if (peek().kind == Token::at) {
            const Token at = next();
            if (peek().kind != Token::number)
                fail("'@' at character " + std::to_string(at.begin + 1) +
                     " must be followed by a confidence level in (0, 1), e.g. @0.99");
            const Token level = next();
            if (!(level.value > 0 && level.value < 1))
                fail("confidence level @" + word_text(level) +
                     " is outside (0, 1): write a level such as @0.9 or @0.99");
            e.confidence = level.value;
        }
        if (peek().kind != Token::end) unexpected();
        e.text = std::string(trim(text_));
        e.key = key_;
        e.origin = origin_;
        return e;
    }

private:
    [[noreturn]] void fail(const std::string& problem) const {
        throw InputError(origin_, key_, text_, problem);
    }

    [[noreturn]] void unexpected() const {
        const Token& t = peek();
        if (t.kind == Token::end) fail("the expression ends where a value is expected");
        if (t.kind == Token::rparen)
            fail("unbalanced parentheses: ')' at character " + std::to_string(t.begin + 1) +
                 " closes nothing");
        fail("unexpected '" + word_text(t) + "' at character " + std::to_string(t.begin + 1));
    }

    std::string word_text(const Token& t) const {
        return text_.substr(t.begin, t.end_pos - t.begin);
    }

    std::string side(std::size_t begin) const {
        return std::string(trim(std::string_view(text_).substr(begin, last_end_ - begin)));
    }

    const Token& peek() const { return tokens_[position_]; }
    Token next() {
        const Token t = tokens_[position_];
        if (t.kind != Token::end) {
            ++position_;
            last_end_ = t.end_pos;
        }
        return t;
    }

    void tokenize() {
        const std::size_t n = text_.size();
        std::size_t i = 0;
        auto push = [&](Token::Kind kind, std::size_t length) {
            Token t;
            t.kind = kind;
            t.begin = i;
            t.end_pos = i + length;
            tokens_.push_back(t);
            i += length;
        };
        while (i < n) {
            const char c = text_[i];
            if (c == ' ' || c == '\t') {
                ++i;
                continue;
            }
            if (starts_word(c)) {
                std::size_t j = i;
                while (j < n && is_word_char(text_[j])) ++j;
                const std::string word = text_.substr(i, j - i);
                Token t;
                t.begin = i;
                t.end_pos = j;
                const auto value = parse_double(word);
                const bool numeric = std::isdigit(static_cast<unsigned char>(c)) || c == '.';
                if (value && numeric) {
                    if (!std::isfinite(*value))
                        fail("number '" + word + "' is not finite: give an ordinary number");
                    t.kind = Token::number;
                    t.value = *value;
                } else {
                    check_reference(word);
                    t.kind = Token::word;
                }
                tokens_.push_back(t);
                i = j;
                continue;
            }
            const char d = i + 1 < n ? text_[i + 1] : '\0';
            switch (c) {
                case '(':
                    push(Token::lparen, 1);
                    break;
                case ')':
                    push(Token::rparen, 1);
                    break;
                case '+':
                    push(Token::plus, 1);
                    break;
                case '-':
                    push(Token::minus, 1);
                    break;
                case '*':
                    push(Token::star, 1);
                    break;
                case '/':
                    push(Token::slash, 1);
                    break;
                case '@':
                    push(Token::at, 1);
                    break;
                case '<':
                case '>': {
                    const bool equal = d == '=';
                    const auto at = i;
                    push(Token::compare, equal ? 2 : 1);
                    tokens_.back().comparison =
                        c == '<' ? (equal ? Comparison::less_equal : Comparison::less)
                                 : (equal ? Comparison::greater_equal : Comparison::greater);
                    if (i < n && (text_[i] == '=' || text_[i] == '<' || text_[i] == '>'))
                        fail("malformed comparison at character " + std::to_string(at + 1) +
                             ": use one of <, <=, >, >=");
                    break;
                }
                case '=':
                case '!':
                    fail(std::string("'") + c +
                         (d == '=' || d == '<' || d == '>' ? std::string(1, d) : std::string()) +
                         "' at character " + std::to_string(i + 1) +
                         " is not a comparison: use one of <, <=, >, >= (estimates have "
                         "intervals, so equality cannot be checked)");
                default:
                    fail("unexpected character '" + std::string(1, c) + "' at character " +
                         std::to_string(i + 1) +
                         ": an expectation uses references, numbers, + - * / ( ), one of "
                         "< <= > >= and an optional @LEVEL");
            }
        }
        Token end;
        end.kind = Token::end;
        end.begin = end.end_pos = n;
        tokens_.push_back(end);
    }

    // The shape of a reference, checked without a Summary: POLICY.METRIC[.DB].GROUP with
    // GROUP `all` or DIMENSION.CATEGORY, so at least three non-empty parts.
    void check_reference(const std::string& word) const {
        const auto parts = split_dots(word);
        const bool empty_part =
            std::any_of(parts.begin(), parts.end(), [](const std::string& p) { return p.empty(); });
        if (parts.size() >= 3 && !empty_part) return;
        const bool signs = word.find_first_of("+-") != std::string::npos;
        fail("'" + word +
             "' is neither a number nor a reference POLICY.METRIC[.DB].DIMENSION.CATEGORY or "
             "POLICY.METRIC[.DB].all" +
             (signs ? std::string(" (names may contain '-' and '+': put a space on each side "
                                  "of a binary + or -)")
                    : std::string()));
    }

    // expression := term (('+' | '-') term)*
    ExpressionNode expression() {
        ExpressionNode left = term();
        while (peek().kind == Token::plus || peek().kind == Token::minus) {
            const auto kind = next().kind == Token::plus ? ExpressionNode::Kind::add
                                                         : ExpressionNode::Kind::subtract;
            ExpressionNode node;
            node.kind = kind;
            node.operands.push_back(std::move(left));
            node.operands.push_back(term());
            left = std::move(node);
        }
        return left;
    }

    // term := factor (('*' | '/') factor)*
    ExpressionNode term() {
        ExpressionNode left = factor();
        while (peek().kind == Token::star || peek().kind == Token::slash) {
            const auto kind = next().kind == Token::star ? ExpressionNode::Kind::multiply
                                                         : ExpressionNode::Kind::divide;
            ExpressionNode node;
            node.kind = kind;
            node.operands.push_back(std::move(left));
            node.operands.push_back(factor());
            left = std::move(node);
        }
        return left;
    }

    // factor := NUMBER | REFERENCE | '(' expression ')' | ('-' | '+') factor
    ExpressionNode factor() {
        const Token& t = peek();
        ExpressionNode node;
        switch (t.kind) {
            case Token::number:
                node.number = next().value;
                return node;
            case Token::word: {
                const Token w = next();
                node.kind = ExpressionNode::Kind::reference;
                node.reference = word_text(w);
                return node;
            }
            case Token::lparen: {
                const Token open = next();
                node = expression();
                if (peek().kind != Token::rparen) {
                    if (peek().kind == Token::end || peek().kind == Token::compare ||
                        peek().kind == Token::at)
                        fail("unbalanced parentheses: '(' at character " +
                             std::to_string(open.begin + 1) + " is never closed");
                    unexpected();
                }
                next();
                return node;
            }
            case Token::minus:
                next();
                node.kind = ExpressionNode::Kind::negate;
                node.operands.push_back(factor());
                return node;
            case Token::plus:
                next();
                return factor();
            default:
                if (t.kind == Token::compare || t.kind == Token::at)
                    fail("a value is missing before '" + word_text(t) + "' at character " +
                         std::to_string(t.begin + 1));
                unexpected();
        }
    }

    const std::string& text_;
    const std::string& key_;
    const std::string& origin_;
    std::vector<Token> tokens_;
    std::size_t position_ = 0;
    std::size_t last_end_ = 0;
};

// ---------------------------------------------------------------------------------------
// Evaluation

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
}

std::string group_key(const std::string& policy, const std::string& dimension,
                      const std::string& category, const std::string& metric) {
    // '\x1f' (unit separator) never occurs in a name.
    return policy + '\x1f' + dimension + '\x1f' + category + '\x1f' + metric;
}

// The names in a Summary, to resolve dotted references against.
struct SummaryIndex {
    explicit SummaryIndex(const Summary& summary) {
        std::set<std::string> seen_policy, seen_metric, seen_dimension;
        for (const auto& row : summary.rows) {
            rows.emplace(group_key(row.policy, row.dimension, row.category, row.metric), &row);
            if (seen_policy.insert(row.policy).second) policies.push_back(row.policy);
            if (seen_metric.insert(row.metric).second) metrics.push_back(row.metric);
            if (row.dimension == "all") continue;
            if (seen_dimension.insert(row.dimension).second) dimensions.push_back(row.dimension);
            auto& c = categories[row.dimension];
            if (std::find(c.begin(), c.end(), row.category) == c.end()) c.push_back(row.category);
        }
    }
    bool has_metric(const std::string& m) const {
        return std::find(metrics.begin(), metrics.end(), m) != metrics.end();
    }
    // Whether `group` (the parts after the metric) names a group: all, all.all or
    // DIMENSION.CATEGORY.
    std::optional<std::pair<std::string, std::string>> group(
        const std::vector<std::string>& parts) const {
        if (parts.size() == 1 && parts[0] == "all") return std::pair{"all", "all"};
        if (parts.size() != 2) return std::nullopt;
        if (parts[0] == "all" && parts[1] == "all") return std::pair{"all", "all"};
        const auto c = categories.find(parts[0]);
        if (c == categories.end() ||
            std::find(c->second.begin(), c->second.end(), parts[1]) == c->second.end())
            return std::nullopt;
        return std::pair{parts[0], parts[1]};
    }

    std::map<std::string, const SummaryRow*> rows;
    std::vector<std::string> policies, metrics, dimensions;
    std::map<std::string, std::vector<std::string>> categories;
};

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
    const auto n = nearest(word, candidates);
    return n ? "; did you mean '" + *n + "'?" : std::string();
}

// Resolves a reference to its row: policy = first part; then the longest metric name that
// leaves a valid group (`all`, `all.all` or DIMENSION.CATEGORY). Throws InputError naming
// the expectation otherwise.
const SummaryRow& resolve(const SummaryIndex& index, const ResultExpectation& e,
                          const std::string& reference) {
    // A name may hold '-' and '+', so `a.m.all-b.m.all` is one reference: say so.
    const bool signs = reference.find_first_of("+-", reference.find('.')) != std::string::npos;
    auto fail = [&](const std::string& problem) {
        throw InputError(e.origin, e.key, e.text,
                         "in '" + reference + "': " + problem +
                             (signs ? " (if '+' or '-' was meant as arithmetic, put a space on "
                                      "each side of it)"
                                    : ""));
    };
    const auto parts = split_dots(reference);
    const std::string& policy = parts[0];
    if (std::find(index.policies.begin(), index.policies.end(), policy) == index.policies.end())
        fail("unknown policy '" + policy + "'" + did_you_mean(policy, index.policies) +
             " (policies in this run: " + join(index.policies) + ")");
    for (std::size_t k = parts.size() - 1; k >= 2; --k) {
        std::string metric = parts[1];
        for (std::size_t i = 2; i < k; ++i) metric += "." + parts[i];
        if (!index.has_metric(metric)) continue;
        const std::vector<std::string> rest(parts.begin() + static_cast<std::ptrdiff_t>(k),
                                            parts.end());
        const auto group = index.group(rest);
        if (!group) continue;
        const auto row = index.rows.find(group_key(policy, group->first, group->second, metric));
        if (row == index.rows.end())
            fail("summary.csv has no " + metric + " row for " +
                 (group->first == "all" ? std::string("the group all (ratio metrics are "
                                                      "defined for a category only)")
                                        : group->first + "." + group->second) +
                 " under " + policy);
        return *row->second;
    }
    // Diagnose: the group is the last part if it is `all`, else the last two.
    const std::size_t group_parts = parts.back() == "all" ? 1 : 2;
    if (parts.size() < 2 + group_parts)
        fail("give POLICY.METRIC[.DB].all or POLICY.METRIC[.DB].DIMENSION.CATEGORY");
    std::string metric = parts[1];
    for (std::size_t i = 2; i + group_parts < parts.size(); ++i) metric += "." + parts[i];
    if (!index.has_metric(metric))
        fail("unknown metric '" + metric + "'" + did_you_mean(metric, index.metrics) +
             " (metrics are listed in docs/output.md)");
    const std::string& dimension = parts[parts.size() - 2];
    const std::string& category = parts.back();
    const auto c = index.categories.find(dimension);
    if (c == index.categories.end())
        fail("unknown dimension '" + dimension + "'" + did_you_mean(dimension, index.dimensions) +
             " (dimensions: " + join(index.dimensions) + ", or 'all' for everyone)");
    fail("unknown category '" + category + "' of " + dimension + did_you_mean(category, c->second) +
         " (categories: " + join(c->second) + ")");
    throw InternalError("unreachable");  // fail() throws
}

void collect_references(const ExpressionNode& node, std::vector<std::string>& out) {
    if (node.kind == ExpressionNode::Kind::reference &&
        std::find(out.begin(), out.end(), node.reference) == out.end())
        out.push_back(node.reference);
    for (const auto& o : node.operands) collect_references(o, out);
}

// Two-sided Student t quantile for a confidence level with `df` degrees of freedom.
double t_quantile(double level, double df) {
    return boost::math::quantile(boost::math::complement(
        boost::math::students_t_distribution<double>(std::max(df, 1.0)), (1 - level) / 2));
}

bool is_ratio_metric(const std::string& metric) {
    constexpr std::string_view SUFFIX = "_ratio";
    return metric.size() >= SUFFIX.size() &&
           metric.compare(metric.size() - SUFFIX.size(), SUFFIX.size(), SUFFIX) == 0;
}

std::string format(double v) {
    if (std::isnan(v)) return "NA";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.4g", v);
    return buffer;
}

std::string format_level(double level) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.10g", level * 100);
    return std::string(buffer) + " %";
}

// A row's interval at `level`: summary.csv's mean_lo95/mean_hi95 at 95 %; at another level
// the same interval rescaled by the ratio of t quantiles (on the log scale for ratio
// metrics, whose interval is the delta method's on the log), or for a zero-event row the
// one-sided Poisson bound -ln(1 - level) / R. Empty, with `why`, when it cannot be had.
std::optional<ValueInterval> row_interval(const SummaryRow& row, double level, std::string& why) {
    const Estimate& e = row.value;
    if (!e.estimate) {
        why = "is NA (not defined in any replication)";
        return std::nullopt;
    }
    if (!std::isfinite(*e.estimate)) {
        why = "is " + format(*e.estimate) +
              " (the reference category had no event in any replication)";
        return std::nullopt;
    }
    if (!e.mean_lo95 || !e.mean_hi95) {
        why = "= " + format(*e.estimate) +
              " has no confidence interval (it needs at least 2 replications in which it is "
              "defined, and a positive finite ratio): run more replications";
        return std::nullopt;
    }
    const double est = *e.estimate;
    const double lo = *e.mean_lo95;
    const double hi = *e.mean_hi95;
    if (std::abs(level - 0.95) < 1e-12) return ValueInterval{est, lo, hi};
    const bool zero_events = e.flag.find("zero_events") != std::string::npos && est == 0;
    if (zero_events) return ValueInterval{0, 0, hi * std::log(1 - level) / std::log(0.05)};
    const double df = static_cast<double>(std::max<std::int64_t>(e.replications - 1, 1));
    const double scale = t_quantile(level, df) / t_quantile(0.95, df);
    if (is_ratio_metric(row.metric) && lo > 0 && est > 0) {
        const double half = std::log(hi / lo) / 2 * scale;
        return ValueInterval{est, est * std::exp(-half), est * std::exp(half)};
    }
    // summary.csv clamps an end at the metric's range (0 below): the unclamped side gives
    // the half-width.
    const double half = std::max(hi - est, est - lo) * scale;
    return ValueInterval{est, lo >= 0 ? std::max(0.0, est - half) : est - half, est + half};
}

struct DivisionByZero {};

// Interval product, with 0 × inf = 0: the ends stand for real numbers.
double times(double a, double b) {
    const double p = a * b;
    return std::isnan(p) ? 0.0 : p;
}

ValueInterval multiply(const ValueInterval& a, const ValueInterval& b) {
    const double p[] = {times(a.lo, b.lo), times(a.lo, b.hi), times(a.hi, b.lo), times(a.hi, b.hi)};
    return {a.estimate * b.estimate, *std::min_element(std::begin(p), std::end(p)),
            *std::max_element(std::begin(p), std::end(p))};
}

ValueInterval evaluate(const ExpressionNode& node,
                       const std::map<std::string, ValueInterval>& values) {
    using K = ExpressionNode::Kind;
    const auto inf = std::numeric_limits<double>::infinity();
    switch (node.kind) {
        case K::number:
            return {node.number, node.number, node.number};
        case K::reference:
            return values.at(node.reference);
        case K::negate: {
            const auto a = evaluate(node.operands[0], values);
            return {-a.estimate, -a.hi, -a.lo};
        }
        case K::add: {
            const auto a = evaluate(node.operands[0], values);
            const auto b = evaluate(node.operands[1], values);
            return {a.estimate + b.estimate, a.lo + b.lo, a.hi + b.hi};
        }
        case K::subtract: {
            const auto a = evaluate(node.operands[0], values);
            const auto b = evaluate(node.operands[1], values);
            return {a.estimate - b.estimate, a.lo - b.hi, a.hi - b.lo};
        }
        case K::multiply:
            return multiply(evaluate(node.operands[0], values), evaluate(node.operands[1], values));
        case K::divide: {
            const auto a = evaluate(node.operands[0], values);
            const auto b = evaluate(node.operands[1], values);
            const double estimate = b.estimate != 0 ? a.estimate / b.estimate
                                                    : std::numeric_limits<double>::quiet_NaN();
            if (b.lo > 0 || b.hi < 0) {
                auto q = multiply(a, ValueInterval{1, 1 / b.hi, 1 / b.lo});
                q.estimate = estimate;
                return q;
            }
            // A divisor that is 0 over its whole interval has no quotient; one whose
            // interval holds 0 leaves the quotient unbounded.
            if (b.lo == 0 && b.hi == 0) throw DivisionByZero{};
            return {estimate, -inf, inf};
        }
    }
    throw InternalError("unknown expression node");
}

bool is_reference(const ExpressionNode& node) {
    return node.kind == ExpressionNode::Kind::reference;
}

std::string describe_value(const std::string& text, const ValueInterval& v) {
    return text + " = " + format(v.estimate) + " [" + format(v.lo) + ", " + format(v.hi) + "]";
}

// A side of a comparison: a plain number as written, anything else with its interval.
std::string describe(const std::string& text, const ExpressionNode& node, const ValueInterval& v) {
    return node.kind == ExpressionNode::Kind::number ? text : describe_value(text, v);
}

// Whether a (possibly unbounded) comparison holds for every / for no pair of values of the
// two intervals.
ExpectationStatus decide(Comparison c, const ValueInterval& l, const ValueInterval& r) {
    using S = ExpectationStatus;
    switch (c) {
        case Comparison::less:
            return l.hi < r.lo ? S::pass : (l.lo >= r.hi ? S::fail : S::inconclusive);
        case Comparison::less_equal:
            return l.hi <= r.lo ? S::pass : (l.lo > r.hi ? S::fail : S::inconclusive);
        case Comparison::greater:
            return l.lo > r.hi ? S::pass : (l.hi <= r.lo ? S::fail : S::inconclusive);
        case Comparison::greater_equal:
            return l.lo >= r.hi ? S::pass : (l.hi < r.lo ? S::fail : S::inconclusive);
    }
    return S::fail;
}

std::string xml_escape(const std::string& text) {
    std::string out;
    for (const char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&apos;";
                break;
            default:
                // XML 1.0 allows no control character but tab, newline and carriage return.
                if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r')
                    out += "\xEF\xBF\xBD";
                else
                    out += c;
        }
    }
    return out;
}

}  // namespace

const char* comparison_symbol(Comparison comparison) noexcept {
    switch (comparison) {
        case Comparison::less:
            return "<";
        case Comparison::less_equal:
            return "<=";
        case Comparison::greater:
            return ">";
        case Comparison::greater_equal:
            return ">=";
    }
    return "?";
}

const char* status_name(ExpectationStatus status) noexcept {
    switch (status) {
        case ExpectationStatus::pass:
            return "pass";
        case ExpectationStatus::fail:
            return "fail";
        case ExpectationStatus::inconclusive:
            return "inconclusive";
    }
    return "?";
}

ResultExpectation parse_expectation(const std::string& name, const std::string& text,
                                    const std::string& key, const std::string& origin) {
    const std::string trimmed(trim(text));
    ResultExpectation e = Parser(trimmed, key, origin).parse();
    e.name = name;
    return e;
}

ResultExpectation parse_cli_expectation(const std::string& text) {
    auto e = parse_expectation("", text, "--expect", "command line");
    e.name = e.text;
    return e;
}

void check_expectation_references(const Summary& summary,
                                  const std::vector<ResultExpectation>& expectations) {
    const SummaryIndex index(summary);
    for (const auto& e : expectations) {
        std::vector<std::string> references;
        collect_references(e.left, references);
        collect_references(e.right, references);
        for (const auto& r : references) resolve(index, e, r);
    }
}

std::vector<ExpectationResult> evaluate_expectations(
    const Summary& summary, const std::vector<ResultExpectation>& expectations) {
    const SummaryIndex index(summary);
    std::vector<ExpectationResult> results;
    for (const auto& e : expectations) {
        ExpectationResult result;
        result.name = e.name;
        result.origin = e.origin;
        result.text = e.text;
        const std::string level = format_level(e.confidence);

        std::vector<std::string> references;
        collect_references(e.left, references);
        collect_references(e.right, references);
        std::map<std::string, ValueInterval> values;
        std::string missing;
        for (const auto& r : references) {
            const SummaryRow& row = resolve(index, e, r);
            std::string why;
            if (const auto v = row_interval(row, e.confidence, why))
                values.emplace(r, *v);
            else
                missing += (missing.empty() ? "" : "; ") + r + " " + why;
        }
        if (!missing.empty()) {
            result.status = ExpectationStatus::fail;
            result.message = e.name + ": cannot be evaluated: " + missing;
            results.push_back(std::move(result));
            continue;
        }
        ValueInterval l, r;
        try {
            l = evaluate(e.left, values);
            r = evaluate(e.right, values);
        } catch (const DivisionByZero&) {
            result.status = ExpectationStatus::fail;
            result.message = e.name +
                             ": cannot be evaluated: division by zero (a divisor is 0 over its "
                             "whole interval)";
            results.push_back(std::move(result));
            continue;
        }
        result.left = l;
        result.right = r;
        // Values of the references inside a compound side, so a failure can be traced.
        std::string where;
        for (const auto* side : {&e.left, &e.right}) {
            if (is_reference(*side)) continue;
            std::vector<std::string> inner;
            collect_references(*side, inner);
            for (const auto& ref : inner) {
                const std::string d = describe_value(ref, values.at(ref));
                if (where.find(d) == std::string::npos) where += (where.empty() ? "" : ", ") + d;
            }
        }
        const std::string left = describe(e.left_text, e.left, l);
        const std::string right = describe(e.right_text, e.right, r);
        const std::string op = comparison_symbol(e.comparison);
        const std::string tail =
            " (" + level + " confidence intervals" + (where.empty() ? "" : "; " + where) + ")";
        result.status = decide(e.comparison, l, r);
        switch (result.status) {
            case ExpectationStatus::pass:
                result.message = e.name + ": holds: " + left + " " + op + " " + right + tail;
                break;
            case ExpectationStatus::fail:
                result.message = e.name + ": " + left + " is not " + op + " " + right + tail;
                break;
            case ExpectationStatus::inconclusive:
                result.message =
                    e.name + ": inconclusive: " + left + " " + op + " " + right +
                    " holds for part of the intervals only" + tail +
                    ": run more replications (--replications N, or --precision METRIC=TARGET) "
                    "to narrow the intervals";
                break;
        }
        results.push_back(std::move(result));
    }
    return results;
}

bool any_expectation_failed(const std::vector<ExpectationResult>& results) noexcept {
    return std::any_of(results.begin(), results.end(), [](const ExpectationResult& r) {
        return r.status != ExpectationStatus::pass;
    });
}

std::string junit_xml(const std::vector<ExpectationResult>& results,
                      const std::string& suite_name) {
    std::size_t failures = 0;
    for (const auto& r : results) failures += r.status != ExpectationStatus::pass;
    const std::string counts = " tests=\"" + std::to_string(results.size()) + "\" failures=\"" +
                               std::to_string(failures) + "\" errors=\"0\"";
    const std::string suite = xml_escape(suite_name);
    std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out += "<testsuites name=\"" + suite + "\"" + counts + ">\n";
    out += "  <testsuite name=\"" + suite + "\"" + counts + " skipped=\"0\">\n";
    for (const auto& r : results) {
        out += "    <testcase classname=\"" + suite + "\" name=\"" + xml_escape(r.name) + "\"";
        if (r.status == ExpectationStatus::pass) {
            out += ">\n      <system-out>" + xml_escape(r.message) + "</system-out>\n";
        } else {
            out += ">\n      <failure type=\"" + std::string(status_name(r.status)) +
                   "\" message=\"" + xml_escape(r.message) + "\">" +
                   xml_escape(r.text + "\n(" + r.origin + ")") + "</failure>\n";
        }
        out += "    </testcase>\n";
    }
    out += "  </testsuite>\n</testsuites>\n";
    return out;
}

}  // namespace stopscan
