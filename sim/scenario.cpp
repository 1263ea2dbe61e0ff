#include "stopscan/scenario.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

#include "stopscan/calibrate.hpp"
#include "stopscan/cells.hpp"
#include "stopscan/error.hpp"
#include "stopscan/parameter_distribution.hpp"

namespace stopscan {

namespace {

constexpr double SHARE_TOLERANCE = 1e-6;  // documented in docs/scenario.md
constexpr std::int64_t MAX_POPULATION = 10'000'000'000;
constexpr std::int64_t MAX_GALLERY = 1'000'000'000'000;
constexpr std::int64_t MAX_STOPS = 10'000'000'000;
constexpr std::int64_t MAX_REPLICATIONS = 1'000'000;

const char* const CELL_PARAMETERS_OF_DATABASE[] = {
    "composition", "enrolment",         "truth",  "truth_unenrolled", "false_flag", "missing_flag",
    "wrong_link",  "gallery_flag_rate", "arrest", "ho_referral",      "detention"};

bool valid_name(const std::string& name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '+';
    });
}

std::string join(const std::vector<std::string>& items, const char* separator = ", ") {
    std::string out;
    for (std::size_t i = 0; i < items.size(); ++i) out += (i ? separator : "") + items[i];
    return out;
}

// Ten significant digits: enough to show the problem, without rounding noise (0.9, not
// 0.8999999999999999).
std::string format_number(double v) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.10g", v);
    return buffer;
}

// Typed access to settings. Every key read must be declared by declared_keys(): the two
// lists are one schema, and reading an undeclared key is a programming error.
class Reader {
public:
    Reader(const Settings& settings, std::set<std::string> declared,
           std::vector<UncertainParameter>* uncertain)
        : settings_(settings), declared_(std::move(declared)), uncertain_(uncertain) {}

    const Setting* find(const std::string& key) const {
        if (!declared_.count(key)) throw InternalError("schema does not declare key " + key);
        return settings_.find(key);
    }

    std::string origin(const std::string& key) const {
        const auto* s = settings_.find(key);
        return s ? s->origin : source_name();
    }

    std::string source_name() const {
        return settings_.source().empty() ? "default scenario" : settings_.source();
    }

    [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
        const auto* s = settings_.find(key);
        throw InputError(origin(key), key, s ? s->value : "", problem);
    }

    const Setting& require(const std::string& key) const {
        const auto* s = find(key);
        if (!s) throw InputError(source_name(), key, "", "missing: this key is required");
        return *s;
    }

    std::string text(const std::string& key, const std::string& fallback) const {
        const auto* s = find(key);
        return s ? s->value : fallback;
    }

    // Free text shown in reports: no control characters (they would garble a terminal or a
    // CSV), and not empty when given, which is what `name = #1 scenario` reads as.
    std::string label(const std::string& key, const std::string& fallback) const {
        const auto* s = find(key);
        if (!s) return fallback;
        if (s->value.empty())
            fail(key,
                 "empty: give a text ('#' starts a comment anywhere on a line, so a value "
                 "cannot contain it)");
        for (const char c : s->value)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
                fail(key, "contains a control character: use printable text only");
        return s->value;
    }

    double number(const std::string& key, double lo, double hi, const std::string& allowed,
                  bool allow_inf = false) const {
        return parse_number(key, require(key).value, lo, hi, allowed, allow_inf);
    }

    double number_or(const std::string& key, double fallback, double lo, double hi,
                     const std::string& allowed) const {
        const auto* s = find(key);
        return s ? parse_number(key, s->value, lo, hi, allowed, false) : fallback;
    }

    // A number, or (where `item` >= -1 allows it) a distribution for parameter uncertainty:
    // recorded with the range it is truncated to, and stood in for by its median.
    double parse_number(const std::string& key, const std::string& value, double lo, double hi,
                        const std::string& allowed, bool allow_inf, int item = -1,
                        bool allow_distribution = true) const {
        if (allow_inf && value == "inf") return std::numeric_limits<double>::infinity();
        if (allow_distribution) {
            std::optional<ParameterDistribution> law;
            try {
                law = ParameterDistribution::parse(value);
            } catch (const std::invalid_argument& e) {
                fail(key, e.what());
            }
            if (law) {
                // Bounded laws must fit the range; the normal is truncated to it.
                if (law->kind != ParameterDistribution::normal &&
                    (law->support_lo() < lo || law->support_hi() > hi))
                    fail(key, law->text() + " reaches outside the allowed range: " + allowed);
                if (law->support_hi() < lo || law->support_lo() > hi)
                    fail(key, law->text() + " lies outside the allowed range: " + allowed);
                uncertain_->push_back({key, item, *law, lo, hi});
                return law->median(lo, hi);
            }
        } else if (value.find('(') != std::string::npos) {
            fail(key, "a distribution is not allowed here: give a number (" + allowed + ")");
        }
        double v = 0;
        const auto* end = value.data() + value.size();
        const auto r = std::from_chars(value.data(), end, v);
        if (value.empty() || r.ec != std::errc() || r.ptr != end || !std::isfinite(v))
            fail(key, "not a finite number: " + allowed);
        if (v < lo || v > hi) fail(key, "out of range: " + allowed);
        return v;
    }

    // Counts are parsed as signed so that "-5" is rejected rather than wrapped.
    std::int64_t count(const std::string& key, std::int64_t lo, std::int64_t hi) const {
        return parse_count(key, require(key).value, lo, hi);
    }

    std::int64_t count_or(const std::string& key, std::int64_t fallback, std::int64_t lo,
                          std::int64_t hi) const {
        const auto* s = find(key);
        return s ? parse_count(key, s->value, lo, hi) : fallback;
    }

    std::int64_t parse_count(const std::string& key, const std::string& value, std::int64_t lo,
                             std::int64_t hi) const {
        std::int64_t v = 0;
        const auto* end = value.data() + value.size();
        const auto r = std::from_chars(value.data(), end, v);
        const std::string allowed =
            "must be a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
        const bool too_big = r.ec == std::errc::result_out_of_range && r.ptr == end;
        if (value.find('(') != std::string::npos)
            fail(key, "a distribution is not allowed for a count: " + allowed);
        if (!too_big && (value.empty() || r.ec != std::errc() || r.ptr != end))
            fail(key, "not a whole number: " + allowed);
        if (too_big || v < lo || v > hi) fail(key, "out of range: " + allowed);
        return v;
    }

    std::vector<std::string> names(const std::string& key, const std::string& what) const {
        auto list = split_list(require(key).value);
        if (list.empty()) fail(key, "empty list: give at least one " + what);
        std::set<std::string> seen;
        for (const auto& n : list) {
            if (!valid_name(n))
                fail(key, "'" + n + "' is not a valid " + what +
                              " name: use letters, digits, '_', '-' or '+'");
            if (!seen.insert(n).second)
                fail(key, "'" + n + "' is listed twice: names must be unique");
        }
        return list;
    }

    template <typename Enum, std::size_t N>
    Enum choice(const std::string& key, const std::array<const char*, N>& options,
                Enum fallback) const {
        const auto* s = find(key);
        if (!s) return fallback;
        for (std::size_t i = 0; i < N; ++i)
            if (s->value == options[i]) return static_cast<Enum>(i);
        std::vector<std::string> allowed(options.begin(), options.end());
        fail(key, "not one of: " + join(allowed));
    }

    const Settings& settings() const { return settings_; }

private:
    const Settings& settings_;
    std::set<std::string> declared_;
    std::vector<UncertainParameter>* uncertain_;
};

void add_cell_parameter_keys(std::vector<std::string>& keys, const std::string& key,
                             const std::vector<std::string>& dimension_names) {
    keys.push_back(key);
    for (const auto& d : dimension_names) keys.push_back(key + "." + d);
}

// Names of custom policies: the NAME of every [policy.NAME] section.
std::vector<std::string> policy_section_names(const Settings& settings) {
    std::set<std::string> names;
    for (const auto& [key, _] : settings.all()) {
        if (key.rfind("policy.", 0) != 0) continue;
        const auto rest = key.substr(7);
        const auto dot = rest.find('.');
        if (dot != std::string::npos) names.insert(rest.substr(0, dot));
    }
    for (const char* preset : PRESET_POLICIES) names.insert(preset);
    return {names.begin(), names.end()};
}

std::vector<std::string> list_or_empty(const Settings& settings, const std::string& key) {
    const auto* s = settings.find(key);
    return s ? split_list(s->value) : std::vector<std::string>{};
}

CellParameter read_cell_parameter(const Reader& in, const std::vector<Dimension>& dims,
                                  const std::string& key, std::optional<double> fallback,
                                  bool is_probability) {
    CellParameter p;
    p.key = key;
    p.is_probability = is_probability;
    const std::string allowed =
        is_probability ? "must be a probability in [0, 1]" : "must be a number >= 0";
    const double hi = is_probability ? 1.0 : std::numeric_limits<double>::max();
    if (fallback && !in.find(key)) {
        // Factors multiply a base; factors with a defaulted base of 0 would silently do nothing.
        for (const auto& dim : dims)
            if (*fallback == 0 && in.find(key + "." + dim.name))
                in.fail(key + "." + dim.name,
                        "factors given without a base: add '" + key +
                            " = BASE' (the value for the reference categories)");
        p.base = *fallback;
    } else {
        p.base = in.number(key, 0.0, hi, allowed);
    }
    for (const auto& dim : dims) {
        std::vector<double> factors(dim.categories.size(), 1.0);
        const std::string factor_key = key + "." + dim.name;
        if (const auto* s = in.find(factor_key)) {
            const auto items = split_list(s->value);
            if (items.empty()) in.fail(factor_key, "empty list: write Category:factor, ...");
            std::set<std::string> seen;
            for (std::size_t index = 0; index < items.size(); ++index) {
                const auto& item = items[index];
                const auto colon = item.find(':');
                const auto category = std::string(trim(std::string_view(item).substr(0, colon)));
                if (colon == std::string::npos)
                    in.fail(factor_key, "'" + item + "' is not Category:factor");
                const auto it = std::find(dim.categories.begin(), dim.categories.end(), category);
                if (it == dim.categories.end())
                    in.fail(factor_key, "unknown category '" + category + "' of dimension " +
                                            dim.name + ": allowed: " + join(dim.categories));
                if (!seen.insert(category).second)
                    in.fail(factor_key, "category '" + category + "' given twice");
                const auto value = std::string(trim(std::string_view(item).substr(colon + 1)));
                factors[static_cast<std::size_t>(it - dim.categories.begin())] =
                    in.parse_number(factor_key, value, 0.0, std::numeric_limits<double>::max(),
                                    "factor for " + category + " must be a finite number >= 0",
                                    false, static_cast<int>(index));
            }
        }
        p.factors.push_back(std::move(factors));
    }
    return p;
}

std::vector<double> read_shares(const Reader& in, const std::string& key, std::size_t n) {
    const auto items = split_list(in.require(key).value);
    if (items.size() != n)
        in.fail(key, std::to_string(items.size()) + " shares for " + std::to_string(n) +
                         " categories: give one share per category, in order");
    std::vector<double> shares;
    double sum = 0;
    for (const auto& item : items) {
        shares.push_back(
            in.parse_number(key, item, 0.0, 1.0, "each share must be in [0, 1]", false, -1, false));
        sum += shares.back();
    }
    if (std::abs(sum - 1.0) > SHARE_TOLERANCE)
        in.fail(key, "shares sum to " + format_number(sum) + ": they must sum to 1 (within 1e-6)");
    return shares;
}

Dimension read_dimension(const Reader& in, const std::string& name,
                         const std::vector<Dimension>& earlier) {
    Dimension dim;
    dim.name = name;
    const std::string prefix = "dimension." + name + ".";
    dim.categories = in.names(prefix + "categories", "category");
    const auto reference = in.require(prefix + "reference").value;
    const auto ref = std::find(dim.categories.begin(), dim.categories.end(), reference);
    if (ref == dim.categories.end())
        in.fail(prefix + "reference",
                "not a category of " + name + ": allowed: " + join(dim.categories));
    dim.reference = static_cast<std::size_t>(ref - dim.categories.begin());
    if (const auto* parent = in.find(prefix + "parent")) {
        const auto it = std::find_if(earlier.begin(), earlier.end(),
                                     [&](const Dimension& d) { return d.name == parent->value; });
        if (it == earlier.end()) {
            std::vector<std::string> allowed;
            for (const auto& d : earlier) allowed.push_back(d.name);
            in.fail(prefix + "parent", "not a dimension listed before " + name +
                                           " in dimensions.names" +
                                           (allowed.empty() ? "" : ": allowed: " + join(allowed)));
        }
        dim.parent = static_cast<std::size_t>(it - earlier.begin());
        if (in.find(prefix + "shares"))
            in.fail(prefix + "shares",
                    "a conditional dimension gives shares.<parent category> instead");
        for (const auto& parent_category : it->categories)
            dim.shares.push_back(
                read_shares(in, prefix + "shares." + parent_category, dim.categories.size()));
    } else {
        dim.shares.push_back(read_shares(in, prefix + "shares", dim.categories.size()));
    }
    return dim;
}

Matcher read_matcher(const Reader& in, const std::vector<Dimension>& dims,
                     const std::string& prefix, std::int64_t gallery_size) {
    Matcher m;
    m.fmr = read_cell_parameter(in, dims, prefix + "fmr", std::nullopt, true);
    m.fnmr = read_cell_parameter(in, dims, prefix + "fnmr", std::nullopt, true);
    for (const auto& dim : dims)
        m.same_group_factor.push_back(in.number_or(prefix + "same_group_factor." + dim.name, 1.0,
                                                   0.0, 1e6, "must be a factor in [0, 1e6]"));
    m.genuine_sd =
        in.number_or(prefix + "genuine_sd", 1.0, 1e-3, 1e3, "must be a number in [0.001, 1000]");
    if (in.find(prefix + "threshold"))
        m.threshold = in.number(prefix + "threshold", -40.0, 40.0, "must be a score in [-40, 40]");
    if (in.find(prefix + "target_fpir")) {
        if (m.threshold)
            in.fail(prefix + "target_fpir", "give either threshold or target_fpir, not both");
        m.target_fpir =
            in.number(prefix + "target_fpir", 0.0, 0.999999, "must be a probability in (0, 1)");
        if (!(*m.target_fpir > 0))
            in.fail(prefix + "target_fpir", "must be a probability in (0, 1)");
    }
    m.reference_gallery = in.count_or(prefix + "reference_gallery", gallery_size, 1, MAX_GALLERY);
    if (in.find(prefix + "reference_gallery") && !m.target_fpir)
        in.fail(prefix + "reference_gallery", "only used with target_fpir: give target_fpir too");
    static constexpr std::array<const char*, 2> REVIEW{"none", "human"};
    m.human_review = in.choice(prefix + "review", REVIEW, std::size_t{0}) == 1;
    m.candidates = in.count_or(prefix + "candidates", 1, 1, 100);
    m.review_false_accept = in.number_or(prefix + "review.false_accept", 0.0, 0.0, 1.0,
                                         "must be a probability in [0, 1]");
    m.review_false_reject = in.number_or(prefix + "review.false_reject", 0.0, 0.0, 1.0,
                                         "must be a probability in [0, 1]");
    if (!m.human_review)
        for (const char* k : {"candidates", "review.false_accept", "review.false_reject"})
            if (in.find(prefix + k))
                in.fail(prefix + k, "only used with review = human: set review = human too");
    return m;
}

Database read_database(const Reader& in, const std::vector<Dimension>& dims,
                       const std::string& name,
                       const std::array<double, MODALITY_COUNT>& modality_share) {
    Database db;
    db.name = name;
    const std::string p = "database." + name + ".";
    static constexpr std::array<const char*, 2> ROLES{"criminal", "immigration"};
    in.require(p + "role");
    db.role = in.choice(p + "role", ROLES, DatabaseRole::criminal);
    db.size = in.count(p + "size", 1, MAX_GALLERY);
    db.composition = read_cell_parameter(in, dims, p + "composition", 1.0, false);
    db.enrolment = read_cell_parameter(in, dims, p + "enrolment", std::nullopt, true);
    db.truth = read_cell_parameter(in, dims, p + "truth", 0.0, true);
    db.truth_unenrolled = read_cell_parameter(in, dims, p + "truth_unenrolled", 0.0, true);
    db.false_flag = read_cell_parameter(in, dims, p + "false_flag", 0.0, true);
    db.missing_flag = read_cell_parameter(in, dims, p + "missing_flag", 0.0, true);
    db.wrong_link = read_cell_parameter(in, dims, p + "wrong_link", 0.0, true);
    db.gallery_flag_rate = read_cell_parameter(in, dims, p + "gallery_flag_rate", 0.0, true);
    db.arrest = read_cell_parameter(in, dims, p + "arrest", 0.0, true);
    db.ho_referral = read_cell_parameter(in, dims, p + "ho_referral", 0.0, true);
    db.detention = read_cell_parameter(in, dims, p + "detention", 0.0, true);
    for (std::size_t m = 0; m < MODALITY_COUNT; ++m) {
        const std::string mp = std::string("matcher.") + MODALITY_NAMES[m] + "." + name + ".";
        if (modality_share[m] > 0)
            db.matchers[m] = read_matcher(in, dims, mp, db.size);
        else if (in.find(mp + "fmr") || in.find(mp + "fnmr"))
            db.matchers[m] =
                read_matcher(in, dims, mp, db.size);  // harmless, and validated all the same
    }
    return db;
}

// The presets of MODEL.md §6, expressed by database role so that they apply to any
// scenario's databases: criminal-records databases stay on the street in every preset.
Policy preset_policy(const std::string& name, const std::vector<Database>& databases) {
    Policy policy;
    policy.name = name;
    for (const auto& db : databases) {
        DatabaseRule rule;  // street, full, no verification
        if (db.role == DatabaseRole::immigration) {
            if (name == "ident1-only") rule.access = Access::custody;
            if (name == "firewall") rule.access = Access::none;
            if (name == "custody-verify") {
                rule.access = Access::custody;
                rule.verify = 0.9;  // assumption; scenarios set policy.custody-verify.<DB>.verify
            }
        }
        policy.rules.push_back(rule);
    }
    if (name == "dual-search")
        policy.description =
            "status quo in six forces: criminal and immigration databases searched on the street";
    else if (name == "ident1-only")
        policy.description =
            "most forces: immigration database searched only in custody after an arrest";
    else if (name == "firewall")
        policy.description = "the RJN 2022 proposal: no police access to the immigration database";
    else
        policy.description =
            "immigration database searched only in custody, hits independently verified";
    return policy;
}

// `DB.access.<dimension> = Category:value, ...`: the rule for persons of those categories
// (police force areas, typically). Every override of one policy must use one dimension.
template <typename Apply>
void read_rule_overrides(const Reader& in, Policy& policy, const std::vector<Dimension>& dims,
                         const std::string& key_prefix, std::size_t d, Apply apply) {
    for (std::size_t k = 0; k < dims.size(); ++k) {
        const std::string key = key_prefix + "." + dims[k].name;
        const auto* s = in.find(key);
        if (!s) continue;
        if (policy.varies_by && *policy.varies_by != k)
            in.fail(key, "this policy already varies by " + dims[*policy.varies_by].name +
                             ": a policy's rules may vary by one dimension only");
        if (!policy.varies_by) {
            policy.varies_by = k;
            policy.rules_by_category.assign(dims[k].categories.size(), policy.rules);
        }
        const auto items = split_list(s->value);
        if (items.empty()) in.fail(key, "empty list: write Category:value, ...");
        std::set<std::string> seen;
        for (const auto& item : items) {
            const auto colon = item.find(':');
            if (colon == std::string::npos) in.fail(key, "'" + item + "' is not Category:value");
            const auto category = std::string(trim(std::string_view(item).substr(0, colon)));
            const auto it =
                std::find(dims[k].categories.begin(), dims[k].categories.end(), category);
            if (it == dims[k].categories.end())
                in.fail(key, "unknown category '" + category + "' of dimension " + dims[k].name +
                                 ": allowed: " + join(dims[k].categories));
            if (!seen.insert(category).second)
                in.fail(key, "category '" + category + "' given twice");
            const auto value = std::string(trim(std::string_view(item).substr(colon + 1)));
            apply(policy.rules_by_category[static_cast<std::size_t>(it -
                                                                    dims[k].categories.begin())][d],
                  key, value);
        }
    }
}

Policy read_policy(const Reader& in, const std::string& name, const std::vector<Dimension>& dims,
                   const std::vector<Database>& databases) {
    const std::string p = "policy." + name + ".";
    const bool is_preset =
        std::find_if(PRESET_POLICIES.begin(), PRESET_POLICIES.end(),
                     [&](const char* x) { return name == x; }) != PRESET_POLICIES.end();
    if (!valid_name(name))
        throw InputError(in.source_name(), "policy." + name, "",
                         "not a valid policy name: use letters, digits, '_', '-' or '+'");
    std::string base = is_preset ? name : "dual-search";
    if (const auto* s = in.find(p + "based_on")) {
        if (is_preset) in.fail(p + "based_on", "a preset cannot be based on another policy");
        if (std::find_if(PRESET_POLICIES.begin(), PRESET_POLICIES.end(),
                         [&](const char* x) { return s->value == x; }) == PRESET_POLICIES.end())
            in.fail(p + "based_on",
                    "not a preset: allowed: dual-search, ident1-only, firewall, custody-verify");
        base = s->value;
    }
    Policy policy = preset_policy(base, databases);
    policy.name = name;
    if (!is_preset) policy.description = "custom policy based on " + base;
    policy.description = in.text(p + "description", policy.description);
    static constexpr std::array<const char*, 3> ACCESS{"street", "custody", "none"};
    static constexpr std::array<const char*, 3> DISPLAY{"full", "flag-only", "none"};
    for (std::size_t d = 0; d < databases.size(); ++d) {
        const std::string dp = p + databases[d].name + ".";
        auto& rule = policy.rules[d];
        rule.access = in.choice(dp + "access", ACCESS, rule.access);
        rule.display = in.choice(dp + "display", DISPLAY, rule.display);
        rule.verify =
            in.number_or(dp + "verify", rule.verify, 0.0, 1.0, "must be a probability in [0, 1]");
    }
    // Category overrides apply on top of the policy's own rules, so they are read second.
    auto pick = [&](const auto& options, const std::string& key, const std::string& value) {
        for (std::size_t i = 0; i < options.size(); ++i)
            if (value == options[i]) return i;
        in.fail(key, "'" + value + "' is not one of: " +
                         join(std::vector<std::string>(options.begin(), options.end())));
    };
    for (std::size_t d = 0; d < databases.size(); ++d) {
        const std::string dp = p + databases[d].name + ".";
        read_rule_overrides(in, policy, dims, dp + "access", d,
                            [&](DatabaseRule& r, const std::string& key, const std::string& v) {
                                r.access = static_cast<Access>(pick(ACCESS, key, v));
                            });
        read_rule_overrides(in, policy, dims, dp + "display", d,
                            [&](DatabaseRule& r, const std::string& key, const std::string& v) {
                                r.display = static_cast<Display>(pick(DISPLAY, key, v));
                            });
        read_rule_overrides(in, policy, dims, dp + "verify", d,
                            [&](DatabaseRule& r, const std::string& key, const std::string& v) {
                                r.verify = in.parse_number(key, v, 0.0, 1.0,
                                                           "must be a probability in [0, 1]", false,
                                                           -1, false);
                            });
    }
    return policy;
}

void check_probabilities(const Reader& in, const CellTable& cells,
                         const std::vector<Dimension>& dims, const CellParameter& p) {
    if (!p.is_probability) return;
    // The product may have left [0, 1] because of the base or of any factor: point at a
    // command-line override if one is involved, else at the base key.
    std::string origin = in.origin(p.key);
    for (const auto& dim : dims)
        if (const auto* s = in.settings().find(p.key + "." + dim.name); s && s->origin == "--set")
            origin = "--set";
    for (std::size_t c = 0; c < cells.size(); ++c) {
        const double v = cells.value(p, c);
        if (v > 1.0)
            throw InputError(origin, p.key, "",
                             "base x factors = " + format_number(v) + " for cell " +
                                 cells.label(c) +
                                 ": a probability must stay in [0, 1] after factors");
    }
}

// Targets given in place of parameters (docs/calibrate.md), solved here so that every run,
// explain and sweep point sees the solved values: `target_ratio.DIM = Cat:ratio, ...` fits
// that dimension's propensity factors by raking so that the marginal stop-rate ratios equal
// the targets; `target_stops_per_person = R` solves the dispersion.
void solve_stop_targets(const Reader& in, Scenario& s, const CellTable& cells) {
    std::vector<MarginalTarget> targets;
    for (const auto& dim : s.dimensions) {
        const std::string key = "stops.target_ratio." + dim.name;
        const auto* setting = in.find(key);
        if (!setting) continue;
        MarginalTarget target{dim.name, {}, setting->origin};
        const auto items = split_list(setting->value);
        if (items.empty()) in.fail(key, "empty list: write Category:ratio, ...");
        const auto* factors = in.find("stops.propensity." + dim.name);
        for (std::size_t index = 0; index < items.size(); ++index) {
            const auto& item = items[index];
            const auto colon = item.find(':');
            if (colon == std::string::npos) in.fail(key, "'" + item + "' is not Category:ratio");
            const auto category = std::string(trim(std::string_view(item).substr(0, colon)));
            if (std::find(dim.categories.begin(), dim.categories.end(), category) ==
                dim.categories.end())
                in.fail(key, "unknown category '" + category + "' of dimension " + dim.name +
                                 ": allowed: " + join(dim.categories));
            if (target.ratios.count(category))
                in.fail(key, "category '" + category + "' given twice");
            if (factors) {
                for (const auto& f : split_list(factors->value))
                    if (std::string(trim(std::string_view(f).substr(0, f.find(':')))) == category)
                        in.fail(key, "category '" + category +
                                         "' has both a target ratio and a factor in "
                                         "stops.propensity." +
                                         dim.name + ": give one");
            }
            const auto value = std::string(trim(std::string_view(item).substr(colon + 1)));
            target.ratios[category] = in.parse_number(
                key, value, 1e-9, 1e9, "the ratio for " + category + " must be in [1e-9, 1e9]",
                false, static_cast<int>(index));
        }
        targets.push_back(std::move(target));
    }
    if (!targets.empty()) {
        const FitResult fit = fit_propensity(s.dimensions, cells, s.propensity, targets);
        s.propensity = fit.propensity;
        for (const auto d : fit.fitted_dimensions) {
            std::string line = "stops.propensity." + s.dimensions[d].name + " =";
            for (std::size_t k = 0; k < s.dimensions[d].categories.size(); ++k)
                if (k != s.dimensions[d].reference)
                    line += " " + s.dimensions[d].categories[k] + ":" +
                            format_number(s.propensity.factors[d][k]);
            s.solved.push_back(line + " (solved from stops.target_ratio." + s.dimensions[d].name +
                               ")");
        }
    }
    if (const auto* r = in.find("stops.target_stops_per_person")) {
        if (in.find("stops.dispersion"))
            in.fail("stops.dispersion",
                    "given together with stops.target_stops_per_person, which solves it: give one");
        const double target =
            in.parse_number("stops.target_stops_per_person", r->value, 1.0, 1e6,
                            "must be a number of stops per person in [1, 1e6]", false, -1, false);
        if (s.stops_total == 0) {  // nobody is stopped: the dispersion cannot matter
            s.dispersion = std::numeric_limits<double>::infinity();
            s.solved.push_back("stops.dispersion = inf (stops.total = 0: nothing to solve)");
            return;
        }
        std::vector<double> population(cells.size());
        for (std::size_t c = 0; c < cells.size(); ++c)
            population[c] = static_cast<double>(cells.population(c));
        s.dispersion =
            fit_dispersion(stop_means_by_cell(cells, s.propensity, s.stops_total), population,
                           target, r->origin + ": stops.target_stops_per_person");
        s.solved.push_back("stops.dispersion = " + format_number(s.dispersion) +
                           " (solved from stops.target_stops_per_person = " + r->value + ")");
    }
}

}  // namespace

std::vector<std::string> declared_keys(const Settings& settings) {
    std::vector<std::string> keys = {"scenario.name",    "scenario.description",
                                     "scenario.period",  "scenario.population",
                                     "dimensions.names", "databases.names",
                                     "stops.total",      "stops.dispersion",
                                     "run.seed",         "run.replications",
                                     "run.policies",     "run.baseline",
                                     "run.band",         "stops.target_stops_per_person"};
    for (const char* m : MODALITY_NAMES) keys.push_back(std::string("stops.modality.") + m);
    const auto dims = list_or_empty(settings, "dimensions.names");
    const auto dbs = list_or_empty(settings, "databases.names");
    for (const auto& d : dims) {
        const std::string p = "dimension." + d + ".";
        for (const char* k : {"categories", "shares", "reference", "parent"}) keys.push_back(p + k);
        if (const auto* parent = settings.find(p + "parent"))
            for (const auto& c :
                 list_or_empty(settings, "dimension." + parent->value + ".categories"))
                keys.push_back(p + "shares." + c);
    }
    add_cell_parameter_keys(keys, "stops.propensity", dims);
    for (const auto& d : dims) keys.push_back("stops.target_ratio." + d);
    for (const auto& db : dbs) {
        keys.push_back("database." + db + ".role");
        keys.push_back("database." + db + ".size");
        for (const char* param : CELL_PARAMETERS_OF_DATABASE)
            add_cell_parameter_keys(keys, "database." + db + "." + param, dims);
        for (const char* m : MODALITY_NAMES) {
            const std::string mp = std::string("matcher.") + m + "." + db + ".";
            for (const char* param : {"fmr", "fnmr"})
                add_cell_parameter_keys(keys, mp + param, dims);
            for (const auto& d : dims) keys.push_back(mp + "same_group_factor." + d);
            for (const char* k :
                 {"genuine_sd", "threshold", "target_fpir", "reference_gallery", "review",
                  "candidates", "review.false_accept", "review.false_reject"})
                keys.push_back(mp + k);
        }
    }
    // [expect]: any NAME; load_scenario checks the name and parses the expression.
    for (const auto& [key, _] : settings.all())
        if (key.rfind("expect.", 0) == 0) keys.push_back(key);
    for (const auto& policy : policy_section_names(settings)) {
        const std::string p = "policy." + policy + ".";
        keys.push_back(p + "description");
        keys.push_back(p + "based_on");
        for (const auto& db : dbs)
            for (const char* k : {"access", "display", "verify"}) {
                keys.push_back(p + db + "." + k);
                for (const auto& d : dims) keys.push_back(p + db + "." + k + "." + d);
            }
    }
    return keys;
}

bool Policy::ever_searches(std::size_t d) const noexcept {
    if (!varies_by) return rules[d].access != Access::none;
    return std::any_of(
        rules_by_category.begin(), rules_by_category.end(),
        [&](const std::vector<DatabaseRule>& r) { return r[d].access != Access::none; });
}

const Policy* Scenario::find_policy(const std::string& policy_name) const {
    for (const auto& p : policies)
        if (p.name == policy_name) return &p;
    return nullptr;
}

std::optional<std::size_t> Scenario::find_database(const std::string& db_name) const {
    for (std::size_t d = 0; d < databases.size(); ++d)
        if (databases[d].name == db_name) return d;
    return std::nullopt;
}

Scenario load_scenario(const Settings& settings) {
    const auto keys = declared_keys(settings);
    const std::set<std::string> declared(keys.begin(), keys.end());
    std::vector<UncertainParameter> uncertain;
    const Reader in(settings, declared, &uncertain);

    // The name lists declare the other keys: without them every other key looks unknown.
    in.require("dimensions.names");
    in.require("databases.names");
    // So do the category lists (shares.<parent category>): check them first too.
    for (const auto& d : list_or_empty(settings, "dimensions.names"))
        if (in.find("dimension." + d + ".categories"))
            in.names("dimension." + d + ".categories", "category");

    // A misspelt parent hides the keys it would declare (shares.<parent category>), so it is
    // checked before the unknown-key pass blames an innocent shares line.
    const auto dimension_names = list_or_empty(settings, "dimensions.names");
    for (auto d = dimension_names.begin(); d != dimension_names.end(); ++d)
        if (const auto* parent = settings.find("dimension." + *d + ".parent"))
            if (std::find(dimension_names.begin(), d, parent->value) == d)
                in.fail("dimension." + *d + ".parent",
                        "not a dimension listed before " + *d + " in dimensions.names" +
                            (d == dimension_names.begin()
                                 ? std::string()
                                 : ": allowed: " +
                                       join(std::vector<std::string>(dimension_names.begin(), d))));

    // Unknown keys first: a typo in a section name would otherwise surface as a missing key.
    for (const auto& [key, setting] : settings.all()) {
        if (declared.count(key)) continue;
        const auto suggestion = nearest(key, keys);
        throw InputError(
            setting.origin, key, setting.value,
            "unknown key" + (suggestion ? "; did you mean '" + *suggestion + "'?"
                                        : std::string("; see docs/scenario.md for the schema")));
    }

    Scenario s;
    s.settings = settings;
    s.name = in.label("scenario.name", "unnamed scenario");
    s.description = in.label("scenario.description", "");
    s.period = in.label("scenario.period", "the simulated period");
    s.population = in.count("scenario.population", 1, MAX_POPULATION);

    std::size_t cell_count = 1;
    const auto dimension_list = in.names("dimensions.names", "dimension");
    // False matches record, per dimension, whether the record's owner shares the probe's
    // category: a 32-bit mask.
    if (dimension_list.size() > 32)
        in.fail("dimensions.names", "more than 32 dimensions: at most 32 are supported");
    for (const auto& name : dimension_list) {
        s.dimensions.push_back(read_dimension(in, name, s.dimensions));
        cell_count *= s.dimensions.back().categories.size();
        if (cell_count > CellTable::MAX_CELLS)
            in.fail("dimensions.names", "the dimensions make more than " +
                                            std::to_string(CellTable::MAX_CELLS) +
                                            " cells: use fewer dimensions or categories");
    }

    s.stops_total = in.count("stops.total", 0, MAX_STOPS);
    s.propensity = read_cell_parameter(in, s.dimensions, "stops.propensity", 1.0, false);
    const CellTable cells(s.dimensions, s.population);
    // The value is checked before solve_stop_targets refuses it next to a target.
    s.dispersion = in.find("stops.dispersion")
                       ? in.number("stops.dispersion", 1e-12, std::numeric_limits<double>::max(),
                                   "must be a number >= 1e-12, or 'inf' (Poisson)", true)
                       : std::numeric_limits<double>::infinity();
    solve_stop_targets(in, s, cells);
    double modality_sum = 0;
    for (std::size_t m = 0; m < MODALITY_COUNT; ++m) {
        const std::string key = std::string("stops.modality.") + MODALITY_NAMES[m];
        s.modality_share[m] =
            in.number_or(key, m == 0 ? 1.0 : 0.0, 0.0, 1.0, "must be a share in [0, 1]");
        modality_sum += s.modality_share[m];
    }
    if (std::abs(modality_sum - 1.0) > SHARE_TOLERANCE)
        in.fail("stops.modality.fingerprint", "modality shares sum to " +
                                                  format_number(modality_sum) +
                                                  ": stops.modality.* must sum to 1 (within 1e-6)");

    for (const auto& name : in.names("databases.names", "database"))
        s.databases.push_back(read_database(in, s.dimensions, name, s.modality_share));

    double propensity_mass = 0;
    for (std::size_t c = 0; c < cells.size(); ++c)
        propensity_mass += static_cast<double>(cells.population(c)) * cells.value(s.propensity, c);
    if (s.stops_total > 0 && !(propensity_mass > 0))
        in.fail("stops.propensity",
                "every cell has zero stop propensity or population, but stops.total > 0");
    // Propensities are relative weights; population × weight must stay a finite number.
    if (!std::isfinite(propensity_mass))
        in.fail("stops.propensity",
                "population x propensity overflows: propensities are relative weights, "
                "keep base x factors below about 1e290");
    for (const auto& db : s.databases) {
        for (const auto* p :
             {&db.enrolment, &db.truth, &db.truth_unenrolled, &db.false_flag, &db.missing_flag,
              &db.wrong_link, &db.gallery_flag_rate, &db.arrest, &db.ho_referral, &db.detention})
            check_probabilities(in, cells, s.dimensions, *p);
        for (const auto& matcher : db.matchers)
            if (matcher) {
                check_probabilities(in, cells, s.dimensions, matcher->fmr);
                // FMR 1 puts the threshold at minus infinity: the score model has no finite
                // operating point (and the closed form divides by its zero tail).
                for (std::size_t c = 0; c < cells.size(); ++c)
                    if (cells.value(matcher->fmr, c) >= 1.0)
                        throw InputError(in.origin(matcher->fmr.key), matcher->fmr.key, "",
                                         "FMR 1 for cell " + cells.label(c) +
                                             ": every comparison would match; give an FMR "
                                             "below 1");
                check_probabilities(in, cells, s.dimensions, matcher->fnmr);
            }
        double gallery_mass = 0;
        for (std::size_t c = 0; c < cells.size(); ++c)
            gallery_mass += static_cast<double>(cells.population(c)) *
                            cells.value(db.enrolment, c) * cells.value(db.composition, c);
        if (!std::isfinite(gallery_mass))
            in.fail(
                "database." + db.name + ".composition",
                "population x enrolment x composition overflows: composition weights are relative, "
                "keep them below about 1e290");
        if (!(gallery_mass > 0))
            in.fail("database." + db.name + ".composition",
                    "no cell has enrolled persons with positive gallery weight: the gallery would "
                    "be empty");
    }

    for (const auto& name : policy_section_names(settings))
        s.policies.push_back(read_policy(in, name, s.dimensions, s.databases));
    // Presets first, in MODEL.md order, then custom policies alphabetically.
    std::stable_partition(s.policies.begin(), s.policies.end(), [](const Policy& p) {
        return std::find_if(PRESET_POLICIES.begin(), PRESET_POLICIES.end(),
                            [&](const char* x) { return p.name == x; }) != PRESET_POLICIES.end();
    });
    std::stable_sort(s.policies.begin(), s.policies.begin() + PRESET_POLICIES.size(),
                     [](const Policy& a, const Policy& b) {
                         auto rank = [](const std::string& n) {
                             return std::find_if(PRESET_POLICIES.begin(), PRESET_POLICIES.end(),
                                                 [&](const char* x) { return n == x; }) -
                                    PRESET_POLICIES.begin();
                         };
                         return rank(a.name) < rank(b.name);
                     });

    s.run.seed = static_cast<std::uint64_t>(
        in.count_or("run.seed", 20261123, 0, std::numeric_limits<std::int64_t>::max()));
    s.run.replications = in.count_or("run.replications", 200, 1, MAX_REPLICATIONS);
    if (in.find("run.policies"))
        s.run.policies = in.names("run.policies", "policy");
    else
        s.run.policies.assign(PRESET_POLICIES.begin(), PRESET_POLICIES.end());
    s.run.baseline = in.text("run.baseline", s.run.policies.front());
    if (const auto* band = in.find("run.band")) {
        const auto items = split_list(band->value);
        if (items.size() != 2)
            in.fail("run.band", "give two numbers, low and high, e.g. 0.8, 1.25");
        s.run.band_lo = in.parse_number("run.band", items[0], 0.0, 1.0,
                                        "the low end must be in [0, 1]", false, -1, false);
        s.run.band_hi = in.parse_number("run.band", items[1], 1.0, 1e6, "the high end must be >= 1",
                                        false, -1, false);
    }
    for (const auto& p : s.run.policies)
        if (!s.find_policy(p)) {
            std::vector<std::string> known;
            for (const auto& q : s.policies) known.push_back(q.name);
            in.fail("run.policies", "unknown policy '" + p + "': allowed: " + join(known));
        }
    for (const auto& [key, setting] : settings.all()) {
        if (key.rfind("expect.", 0) != 0) continue;
        const std::string name = key.substr(7);
        if (!valid_name(name))
            in.fail(key,
                    "an expectation's name may use letters, digits, '_', '-' and '+' only "
                    "(write expect.NAME = EXPRESSION)");
        s.expectations.push_back(parse_expectation(name, setting.value, key, setting.origin));
    }
    s.uncertain = std::move(uncertain);
    if (std::find(s.run.policies.begin(), s.run.policies.end(), s.run.baseline) ==
        s.run.policies.end())
        in.fail("run.baseline",
                "the baseline must be one of run.policies: " + join(s.run.policies));
    return s;
}

}  // namespace stopscan

namespace stopscan {

Scenario scenario_for_replication(const Scenario& scenario, std::uint64_t seed,
                                  std::uint64_t replication) {
    if (scenario.uncertain.empty()) return scenario;
    Settings settings = scenario.settings;
    for (const auto& parameter : scenario.uncertain) {
        char number[32];
        std::snprintf(number, sizeof number, "%.17g", parameter.draw(seed, replication));
        const Setting* setting = settings.find(parameter.key);
        std::string value = number;
        if (parameter.item >= 0) {
            auto items = split_list(setting->value);
            auto& item = items[static_cast<std::size_t>(parameter.item)];
            item = item.substr(0, item.find(':') + 1) + number;
            value.clear();
            for (const auto& i : items) value += (value.empty() ? "" : ", ") + i;
        }
        settings.set(parameter.key, value);
    }
    return load_scenario(settings);
}

}  // namespace stopscan
