#include "stopscan/report.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <tuple>

#include "stopscan/build_info.hpp"
#include "stopscan/error.hpp"
#include "stopscan/writers.hpp"

namespace stopscan {

namespace {

// ---------------------------------------------------------------------------------------
// Numbers and words

// About three significant digits, as the terminal tables.
std::string number(std::optional<double> v) {
    return display_number(v);
}

std::optional<double> scaled(std::optional<double> v, double scale) {
    if (!v) return v;
    return *v * scale;
}

// "a–b" with an en dash (HTML) or "a-b" (PNG); "NA" when either end is missing.
std::string range(std::optional<double> lo, std::optional<double> hi, double scale,
                  const char* dash = "\u2013") {
    if (!lo || !hi) return "NA";
    // "-0.38 to -0.06" reads better than "-0.38–-0.06".
    const bool negative = *lo * scale < 0 || *hi * scale < 0;
    return number(*lo * scale) + (negative ? " to " : dash) + number(*hi * scale);
}

std::string flag_words(const std::string& flag) {
    std::string out;
    std::size_t start = 0;
    while (start <= flag.size() && !flag.empty()) {
        const auto plus = flag.find('+', start);
        std::string part = flag.substr(start, plus == std::string::npos ? flag.npos : plus - start);
        std::replace(part.begin(), part.end(), '_', ' ');
        if (!part.empty()) out += (out.empty() ? "" : ", ") + part;
        if (plus == std::string::npos) break;
        start = plus + 1;
    }
    return out;
}

bool few_events(const Estimate& e) {
    return e.flag.find("low_events") != std::string::npos ||
           e.flag.find("zero_events") != std::string::npos;
}

std::string words(std::string text) {
    std::replace(text.begin(), text.end(), '_', ' ');
    return text;
}

// The people of a group, in words: "Black people", "men", "people with limited leave".
std::string group_phrase(const std::string& dimension, const std::string& category) {
    if (dimension == "all") return "everyone";
    if (dimension == "ethnicity") return category + " people";
    if (dimension == "sex") {
        if (category == "Male") return "men";
        if (category == "Female") return "women";
    }
    if (dimension == "age") {
        if (category.rfind("under", 0) == 0) return "people under " + category.substr(5);
        if (category.size() > 4 && category.substr(category.size() - 4) == "plus")
            return "people aged " + category.substr(0, category.size() - 4) + " and over";
        return "people aged " + category;
    }
    if (dimension == "status") {
        if (category.find("leave") != std::string::npos) return "people with " + words(category);
        return "people whose immigration status is " + words(category);
    }
    // Police force areas: "people in West Yorkshire" reads better than "people with area".
    if (dimension == "area" || dimension == "force") {
        std::string name;  // "WestYorkshire" -> "West Yorkshire"
        for (std::size_t i = 0; i < category.size(); ++i) {
            if (i > 0 && std::isupper(static_cast<unsigned char>(category[i])) &&
                std::islower(static_cast<unsigned char>(category[i - 1])))
                name += ' ';
            name += category[i];
        }
        return "people in " + words(name);
    }
    return "people with " + words(dimension) + " " + words(category);
}

std::string group_label(const std::string& dimension, const std::string& category) {
    return dimension == "all" ? std::string("everyone") : dimension + ": " + category;
}

std::vector<std::string> policy_names(const RunPlan& plan) {
    std::vector<std::string> names;
    for (const auto p : plan.policies) names.push_back(plan.scenario->policies[p].name);
    return names;
}

std::vector<std::pair<std::string, std::string>> groups(const Scenario& s, bool with_all) {
    std::vector<std::pair<std::string, std::string>> out;
    if (with_all) out.emplace_back("all", "all");
    for (const auto& d : s.dimensions)
        for (const auto& c : d.categories) out.emplace_back(d.name, c);
    return out;
}

// ---------------------------------------------------------------------------------------
// Charts as data

// Highest estimate of each series, in words, for a chart's text alternative.
std::string highest_words(const Chart& c, const char* dash) {
    std::string out;
    for (std::size_t s = 0; s < c.series.size(); ++s) {
        if (s != 0 && s + 1 != c.series.size()) continue;  // first and last series only
        const ChartRow* best = nullptr;
        for (const auto& r : c.rows)
            if (r.values[s] && r.values[s]->estimate &&
                (!best || *r.values[s]->estimate > *best->values[s]->estimate))
                best = &r;
        if (!best) continue;
        const Estimate& e = *best->values[s];
        out += (out.empty() ? "" : " ") + std::string("Highest") +
               (c.series.size() > 1 ? " under " + c.series[s] + ": " : ": ") + best->label + ", " +
               number(scaled(e.estimate, c.scale)) + " (95% of simulated periods " +
               range(e.lo95, e.hi95, c.scale, dash) + ").";
    }
    return out;
}

Chart metric_chart(const Summary& summary, const std::vector<std::string>& policies,
                   const std::vector<std::pair<std::string, std::string>>& rows,
                   const std::string& metric) {
    Chart c;
    c.metric = metric;
    c.series = policies;
    c.series_are_policies = true;
    for (const auto& [d, k] : rows) {
        ChartRow row{group_label(d, k), d, k, {}};
        for (const auto& p : policies) {
            const auto* found = summary.find(p, d, k, metric);
            row.values.push_back(found ? &found->value : nullptr);
        }
        c.rows.push_back(std::move(row));
    }
    return c;
}

}  // namespace

std::vector<Chart> report_charts(const Results& results, const Summary& summary) {
    const RunPlan& plan = results.plan;
    const Scenario& s = *plan.scenario;
    const auto policies = policy_names(plan);
    const std::string& baseline = policies[plan.baseline];
    const std::string per = " over " + s.period;
    const std::string reps = std::to_string(plan.replications);
    const std::string how =
        " Bars and dots: average over " + reps +
        " simulated periods; whiskers: the range holding 95% of simulated periods.";
    std::vector<Chart> charts;

    {  // 1. Stop-rate ratio (stops do not depend on the policy: one series)
        Chart c = metric_chart(summary, {baseline}, groups(s, false), "stop_rate_ratio");
        c.id = "chart-stop-ratio";
        c.name = "stop-ratio";
        c.title = "How often each group is stopped and scanned, against its reference group";
        c.unit = "stop-rate ratio (group's stops per 1,000 residents ÷ reference group's)";
        c.series = {"all policies (stops are the same under each)"};
        c.series_are_policies = false;
        c.dots = true;
        c.band = std::make_pair(plan.band_lo, plan.band_hi);
        c.caption = "Stop-rate ratio of each group against its dimension's reference group " +
                    std::string("(1 = stopped as often). The shaded band, ") +
                    number(plan.band_lo) + " to " + number(plan.band_hi) +
                    ", is the tolerance band (four-fifths rule)." + how;
        charts.push_back(std::move(c));
    }
    {  // 2. Exposure
        Chart c = metric_chart(summary, policies, groups(s, true), "exposure_per_100k");
        c.id = "chart-exposure";
        c.name = "exposure";
        c.title = "False-hit exposure: wrongful arrests, Home Office referrals and detentions";
        c.unit = "wrongful actions per 100,000 residents" + per;
        c.caption =
            "Wrongful actions (arrests, Home Office referrals, detentions) per 100,000 "
            "residents of each group" +
            per + ", under each policy." + how;
        charts.push_back(std::move(c));
    }
    {  // 3. Causes, whole population
        Chart c;
        c.id = "chart-causes";
        c.name = "causes";
        c.title = "Where wrongful actions come from: database and cause, everyone";
        c.unit = "wrongful actions" + per + ", whole population";
        c.series = policies;
        c.series_are_policies = true;
        for (const auto& db : s.databases)
            for (const auto& [metric, cause] :
                 {std::pair<std::string, std::string>{"wrongful_by_false_match.",
                                                      "biometric false match"},
                  {"wrongful_by_record_error.", "record error"}}) {
                ChartRow row{db.name + ": " + cause, "all", "all", {}};
                for (const auto& p : policies) {
                    const auto* found = summary.find(p, "all", "all", metric + db.name);
                    row.values.push_back(found ? &found->value : nullptr);
                }
                c.rows.push_back(std::move(row));
            }
        c.caption = "Wrongful actions" + per +
                    " in the whole population, split by the database whose result triggered "
                    "them and by cause: a biometric false match (a stranger's record) or a "
                    "record error (a record that is wrong about the person)." +
                    how;
        charts.push_back(std::move(c));
    }
    {  // 4. Persons affected
        Chart c = metric_chart(summary, policies, groups(s, true), "persons_affected_per_100k");
        c.id = "chart-persons";
        c.name = "persons";
        c.title = "People wrongfully affected at least once";
        c.unit = "persons per 100,000 residents" + per;
        c.caption =
            "Different people who suffered at least one wrongful action, per 100,000 "
            "residents of each group" +
            per + ", under each policy." + how;
        charts.push_back(std::move(c));
    }
    {  // 5. Lawful status disclosures
        Chart c = metric_chart(summary, policies, groups(s, true), "lawful_status_disclosures");
        c.id = "chart-disclosures";
        c.name = "disclosures";
        c.title = "Immigration status shown to officers about people with lawful status";
        c.unit = "disclosures" + per;
        c.caption =
            "Times an immigration database's record was shown to an officer about a "
            "person whose true status is lawful (counts" +
            per + "), by group, under each policy." + how;
        charts.push_back(std::move(c));
    }
    // 6. FPIR and FNIR by group, per database, under the baseline
    for (const auto& [metric, what, long_what] :
         {std::tuple<std::string, std::string, std::string>{
              "fpir", "False-positive identification rate (FPIR)",
              "share of searches of people with no record in the database that returned a "
              "record (necessarily a stranger's)"},
          {"fnir", "False-negative identification rate (FNIR)",
           "share of searches of people with a record in the database that did not return "
           "their own record"}}) {
        Chart c;
        c.id = "chart-" + metric;
        c.name = metric;
        c.title = what + " by group, per database, under " + baseline;
        c.unit = "% of " + std::string(metric == "fpir" ? "non-mated" : "mated") + " searches";
        c.scale = 100;
        c.dots = true;
        for (const auto& db : s.databases) c.series.push_back(db.name);
        for (const auto& [d, k] : groups(s, true)) {
            ChartRow row{group_label(d, k), d, k, {}};
            for (const auto& db : s.databases) {
                const auto* found = summary.find(baseline, d, k, metric + "." + db.name);
                row.values.push_back(found ? &found->value : nullptr);
            }
            c.rows.push_back(std::move(row));
        }
        c.caption = what + ", in percent: the " + long_what + ". Observed in the simulation " +
                    "under " + baseline + ", for each database and group." + how;
        charts.push_back(std::move(c));
    }
    for (auto& c : charts) c.caption += " " + highest_words(c, "\u2013");
    return charts;
}

std::string report_headline(const Results& results, const Summary& summary) {
    const RunPlan& plan = results.plan;
    const Scenario& s = *plan.scenario;
    const auto policies = policy_names(plan);
    const std::string& baseline = policies[plan.baseline];
    std::string alternative;
    for (const auto& p : policies)
        if (p != baseline && (alternative.empty() || p == "firewall")) alternative = p;

    const std::string metric = "exposure_per_100k";
    auto most_exposed = [&](const std::string& only_dimension) {
        std::pair<std::string, std::string> best;
        double top = -1;
        for (const auto& [d, k] : groups(s, false)) {
            if (!only_dimension.empty() && d != only_dimension) continue;
            const auto* row = summary.find(baseline, d, k, metric);
            if (row && row->value.estimate && *row->value.estimate > top) {
                top = *row->value.estimate;
                best = {d, k};
            }
        }
        return best;
    };
    auto with_range = [](const Estimate& e, double scale) {
        return number(scaled(e.estimate, scale)) + " [" + range(e.lo95, e.hi95, scale) + "]";
    };
    auto sentence = [&](const std::pair<std::string, std::string>& g, const std::string& what,
                        const std::string& m, double scale) -> std::string {
        const auto* before = summary.find(baseline, g.first, g.second, m);
        if (!before || !before->value.estimate) return "";
        const std::string phrase = group_phrase(g.first, g.second);
        if (alternative.empty())
            return "Under " + baseline + ", " + what + " of " + phrase + " run at " +
                   with_range(before->value, scale) + " per 100,000 people over " + s.period + ".";
        const auto* after = summary.find(alternative, g.first, g.second, m);
        const auto* effect = summary.find_effect(alternative, g.first, g.second, m);
        if (!after || !after->value.estimate) return "";
        const double b = *before->value.estimate;
        const double a = *after->value.estimate;
        const std::string verb = a < b ? "fall" : a > b ? "rise" : "stay";
        std::string text = "Under " + alternative + ", " + what + " of " + phrase + " " + verb +
                           (verb == "stay" ? " at " : " from ") + with_range(before->value, scale) +
                           (verb == "stay" ? "" : " to " + with_range(after->value, scale)) +
                           " per 100,000 people over " + s.period + " (compared with " + baseline +
                           ")";
        if (effect && effect->delta.estimate && verb != "stay") {
            // Say "a fall of 0.68" rather than "a change of -0.68": no signs to decode.
            const double sign = *effect->delta.estimate < 0 ? -1 : 1;
            text += ": a " + std::string(sign < 0 ? "fall" : "rise") + " of " +
                    number(sign * *effect->delta.estimate * scale);
            if (effect->relative_change)
                text += " (" + number(std::abs(100 * *effect->relative_change)) + "%)";
            if (effect->delta.mean_lo95 && effect->delta.mean_hi95) {
                double lo = sign * *effect->delta.mean_lo95, hi = sign * *effect->delta.mean_hi95;
                if (lo > hi) std::swap(lo, hi);
                text += ", 95% confidence interval of the " +
                        std::string(sign < 0 ? "fall " : "rise ") + range(lo, hi, scale);
            }
        }
        return text + ".";
    };

    const auto top = most_exposed("");
    if (top.first.empty()) return "No group has a false-hit exposure estimate in this run.";
    std::string text =
        sentence(top, "wrongful arrests, Home Office referrals and detentions", metric, 1);
    // Wrongful Home Office referrals alone, per 100,000: count ÷ population × 100,000.
    const auto* population = summary.find(baseline, top.first, top.second, "population");
    if (population && population->value.estimate && *population->value.estimate > 0) {
        const std::string more =
            sentence(top, "wrongful Home Office referrals", "wrongful_ho_referrals",
                     1e5 / *population->value.estimate);
        if (!more.empty()) text += "\n" + more;
    }
    if (!s.dimensions.empty() && top.first != s.dimensions.front().name) {
        const auto first = most_exposed(s.dimensions.front().name);
        if (!first.first.empty()) {
            const std::string more = sentence(
                first, "wrongful arrests, Home Office referrals and detentions", metric, 1);
            if (!more.empty()) text += "\nBy " + s.dimensions.front().name + ": " + more;
        }
    }
    text += "\nNumbers in brackets: the range holding 95% of " + std::to_string(plan.replications) +
            " simulated periods.";
    return text;
}

std::map<std::string, std::string> setting_comments(std::string_view ini_text) {
    std::map<std::string, std::string> out;
    if (ini_text.substr(0, 3) == "\xEF\xBB\xBF") ini_text.remove_prefix(3);
    std::string section;
    std::size_t start = 0;
    while (start < ini_text.size()) {
        auto end = ini_text.find('\n', start);
        if (end == std::string_view::npos) end = ini_text.size();
        std::string_view line = ini_text.substr(start, end - start);
        start = end + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        const auto hash = line.find('#');
        const std::string_view content = trim(line.substr(0, hash));
        const std::string comment =
            hash == std::string_view::npos ? "" : std::string(trim(line.substr(hash + 1)));
        if (content.empty()) continue;  // blank or whole-line comment
        if (content.front() == '[' && content.back() == ']') {
            section = std::string(trim(content.substr(1, content.size() - 2)));
            continue;
        }
        const auto eq = content.find('=');
        if (eq == std::string_view::npos) continue;
        const std::string key(trim(content.substr(0, eq)));
        out[section.empty() ? key : section + "." + key] = comment;
    }
    return out;
}

std::string html_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) switch (c) {
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
                out += "&#39;";
                break;
            default:
                out += c;
        }
    return out;
}

namespace {

// ---------------------------------------------------------------------------------------
// Shared chart geometry

// Okabe–Ito, in the order series use them (yellow last: weak on white).
constexpr const char* PALETTE_HEX[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                       "#56B4E9", "#D55E00", "#000000", "#F0E442"};
constexpr int PALETTE_BGR[][3] = {{178, 114, 0},  {0, 159, 230}, {115, 158, 0}, {167, 121, 204},
                                  {233, 180, 86}, {0, 94, 213},  {0, 0, 0},     {66, 228, 240}};
constexpr std::size_t PALETTE_SIZE = sizeof PALETTE_HEX / sizeof PALETTE_HEX[0];

struct Axis {
    double lo = 0, hi = 1, step = 0.2;
};

Axis axis_for(const Chart& c) {
    double lo = 0, hi = 0;
    for (const auto& r : c.rows)
        for (const auto* e : r.values) {
            if (!e) continue;
            for (const auto& v : {e->estimate, e->lo95, e->hi95})
                if (v && std::isfinite(*v)) {
                    lo = std::min(lo, *v * c.scale);
                    hi = std::max(hi, *v * c.scale);
                }
        }
    if (c.band) {
        lo = std::min(lo, c.band->first);
        hi = std::max(hi, c.band->second);
    }
    if (hi <= lo) hi = lo + 1;
    const double raw = (hi - lo) / 5;
    const double magnitude = std::pow(10, std::floor(std::log10(raw)));
    double step = magnitude;
    for (const double m : {1.0, 2.0, 2.5, 5.0, 10.0})
        if (m * magnitude >= raw) {
            step = m * magnitude;
            break;
        }
    return {std::floor(lo / step) * step, std::ceil(hi / step) * step, step};
}

std::vector<double> ticks(const Axis& a) {
    std::vector<double> out;
    for (int i = 0;; ++i) {
        const double v = a.lo + i * a.step;
        if (v > a.hi + a.step * 1e-6) break;
        out.push_back(std::abs(v) < a.step * 1e-9 ? 0 : v);
    }
    return out;
}

// ---------------------------------------------------------------------------------------
// SVG

std::string svg_number(double v) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1f", v);
    return buffer;
}

std::string chart_svg(const Chart& c, std::size_t index) {
    constexpr double WIDTH = 960, LEFT = 210, RIGHT = 70, TOP = 62, BAR = 11, GAP = 3, PAD = 8;
    const double row_height = static_cast<double>(c.series.size()) * (BAR + GAP) + 2 * PAD;
    const double plot_height = row_height * static_cast<double>(c.rows.size());
    const double height = TOP + plot_height + 58;
    const Axis axis = axis_for(c);
    const double plot_width = WIDTH - LEFT - RIGHT;
    auto x = [&](double v) { return LEFT + (v - axis.lo) / (axis.hi - axis.lo) * plot_width; };
    const std::string title_id = c.id + "-title", desc_id = c.id + "-desc";
    std::ostringstream o;
    o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 " << WIDTH << ' '
      << svg_number(height) << "\" role=\"img\" aria-labelledby=\"" << title_id << ' ' << desc_id
      << "\" aria-label=\"" << html_escape(c.title) << "\">\n<title id=\"" << title_id << "\">"
      << html_escape(c.title) << "</title>\n<desc id=\"" << desc_id << "\">"
      << html_escape(c.caption) << "</desc>\n";
    // Legend
    double lx = LEFT;
    for (std::size_t s = 0; s < c.series.size(); ++s) {
        const char* colour = PALETTE_HEX[s % PALETTE_SIZE];
        o << "<rect x=\"" << svg_number(lx) << "\" y=\"10\" width=\"12\" height=\"12\" fill=\""
          << colour << "\"/><text x=\"" << svg_number(lx + 17) << "\" y=\"20.5\">"
          << html_escape(c.series[s]) << "</text>\n";
        lx += 17 + 7.2 * static_cast<double>(c.series[s].size()) + 22;
    }
    o << "<text x=\"8\" y=\"40\" class=\"note\">Pale " << (c.dots ? "dot" : "bar")
      << " = fewer than 20 events (flag low_events or zero_events); whiskers = 95% of simulated "
         "periods"
      << (c.band ? "; shaded = tolerance band " + number(c.band->first) + "\u2013" +
                       number(c.band->second)
                 : std::string())
      << "</text>\n";
    // Band and grid
    if (c.band)
        o << "<rect x=\"" << svg_number(x(c.band->first)) << "\" y=\"" << TOP << "\" width=\""
          << svg_number(x(c.band->second) - x(c.band->first)) << "\" height=\""
          << svg_number(plot_height) << "\" fill=\"#009E73\" fill-opacity=\"0.15\"/>\n";
    for (const double t : ticks(axis)) {
        o << "<line x1=\"" << svg_number(x(t)) << "\" x2=\"" << svg_number(x(t)) << "\" y1=\""
          << TOP << "\" y2=\"" << svg_number(TOP + plot_height) << "\" class=\""
          << (t == 0 ? "zero" : "grid") << "\"/>"
          << "<text x=\"" << svg_number(x(t)) << "\" y=\"" << svg_number(TOP + plot_height + 16)
          << "\" text-anchor=\"middle\">" << number(t) << "</text>\n";
        if (c.rows.size() > 8)  // tall charts: the scale at the top too
            o << "<text x=\"" << svg_number(x(t)) << "\" y=\"" << TOP - 5
              << "\" text-anchor=\"middle\" class=\"note\">" << number(t) << "</text>\n";
    }
    o << "<text x=\"" << svg_number(LEFT + plot_width / 2) << "\" y=\""
      << svg_number(TOP + plot_height + 40) << "\" text-anchor=\"middle\" class=\"unit\">"
      << html_escape(c.unit) << "</text>\n";
    // Rows
    std::string previous_dimension;
    for (std::size_t r = 0; r < c.rows.size(); ++r) {
        const ChartRow& row = c.rows[r];
        const double y0 = TOP + row_height * static_cast<double>(r);
        if (r > 0 && row.dimension != previous_dimension)
            o << "<line x1=\"8\" x2=\"" << WIDTH - 8 << "\" y1=\"" << svg_number(y0) << "\" y2=\""
              << svg_number(y0) << "\" class=\"sep\"/>\n";
        previous_dimension = row.dimension;
        o << "<text x=\"" << LEFT - 8 << "\" y=\"" << svg_number(y0 + row_height / 2 + 4)
          << "\" text-anchor=\"end\">" << html_escape(row.label) << "</text>\n";
        for (std::size_t s = 0; s < c.series.size(); ++s) {
            const double y = y0 + PAD + static_cast<double>(s) * (BAR + GAP);
            const double mid = y + BAR / 2;
            const Estimate* e = row.values[s];
            if (!e || !e->estimate || !std::isfinite(*e->estimate)) {
                o << "<text x=\"" << svg_number(x(0) + 4) << "\" y=\"" << svg_number(mid + 4)
                  << "\" class=\"note\">NA (not defined)</text>\n";
                continue;
            }
            const char* colour = PALETTE_HEX[s % PALETTE_SIZE];
            const double v = *e->estimate * c.scale;
            const std::string opacity = few_events(*e) ? "0.35" : "1";
            if (c.dots)
                o << "<circle cx=\"" << svg_number(x(v)) << "\" cy=\"" << svg_number(mid)
                  << "\" r=\"5\" fill=\"" << colour << "\" fill-opacity=\"" << opacity
                  << "\" stroke=\"" << colour << "\"/>";
            else
                o << "<rect x=\"" << svg_number(std::min(x(0), x(v))) << "\" y=\"" << svg_number(y)
                  << "\" width=\"" << svg_number(std::abs(x(v) - x(0))) << "\" height=\"" << BAR
                  << "\" fill=\"" << colour << "\" fill-opacity=\"" << opacity << "\" stroke=\""
                  << colour << "\" stroke-width=\"0.6\"/>";
            double end = x(v);
            if (e->lo95 && e->hi95 && std::isfinite(*e->hi95)) {
                const double a = x(*e->lo95 * c.scale), b = x(*e->hi95 * c.scale);
                o << "<path d=\"M" << svg_number(a) << ' ' << svg_number(mid) << "H"
                  << svg_number(b) << "M" << svg_number(a) << ' ' << svg_number(mid - 3.5) << "v7M"
                  << svg_number(b) << ' ' << svg_number(mid - 3.5) << "v7\" class=\"whisker\"/>";
                end = std::max(end, b);
            }
            o << "<text x=\"" << svg_number(end + 5) << "\" y=\"" << svg_number(mid + 3.5)
              << "\" class=\"value\">" << number(v) << (e->flag.empty() ? "" : " \u2020")
              << "</text>\n";
        }
    }
    o << "<rect x=\"" << LEFT << "\" y=\"" << TOP << "\" width=\"" << svg_number(plot_width)
      << "\" height=\"" << svg_number(plot_height) << "\" class=\"frame\"/>\n</svg>\n";
    (void)index;
    return o.str();
}

// One table cell: estimate, range of single periods, confidence interval, flags.
std::string estimate_cell(const Estimate* e, double scale) {
    if (!e || !e->estimate) return "<td>NA</td>";
    std::string out = "<td><b>" + number(scaled(e->estimate, scale)) + "</b>";
    if (e->lo95 || e->hi95)
        out += "<br><span class=\"ci\">periods " + range(e->lo95, e->hi95, scale) + "</span>";
    if (e->mean_lo95 || e->mean_hi95)
        out += "<br><span class=\"ci\">CI " + range(e->mean_lo95, e->mean_hi95, scale) + "</span>";
    if (!e->flag.empty())
        out += "<br><span class=\"flag\">\u2020 " + html_escape(flag_words(e->flag)) + "</span>";
    return out + "</td>";
}

std::string chart_table(const Chart& c, const Summary& summary, const std::string& baseline) {
    std::ostringstream o;
    o << "<div class=\"table-wrap\"><table>\n<caption>The numbers of the chart above (unit: "
      << html_escape(c.unit) << ")</caption>\n<thead><tr><th scope=\"col\">"
      << (c.id == "chart-causes" ? "database: cause" : "group") << "</th>";
    for (const auto& s : c.series)
        o << "<th scope=\"col\">" << html_escape(s) << "<br><span class=\"unit\">"
          << html_escape(c.unit) << "</span></th>";
    const bool effects = c.series_are_policies && c.series.size() > 1 && !c.metric.empty();
    if (effects)
        for (const auto& s : c.series)
            if (s != baseline)
                o << "<th scope=\"col\">change: " << html_escape(s) << " \u2212 "
                  << html_escape(baseline) << "<br><span class=\"unit\">" << html_escape(c.unit)
                  << "; % of " << html_escape(baseline) << "</span></th>";
    o << "</tr></thead>\n<tbody>\n";
    for (const auto& row : c.rows) {
        o << "<tr><th scope=\"row\">" << html_escape(row.label) << "</th>";
        for (const auto* e : row.values) o << estimate_cell(e, c.scale);
        if (effects)
            for (const auto& s : c.series) {
                if (s == baseline) continue;
                const auto* eff = summary.find_effect(s, row.dimension, row.category, c.metric);
                if (!eff) {
                    o << "<td>NA</td>";
                    continue;
                }
                std::string cell = estimate_cell(&eff->delta, c.scale);
                if (eff->relative_change)
                    cell.insert(cell.size() - 5, "<br><span class=\"ci\">" +
                                                     number(100 * *eff->relative_change) +
                                                     "%</span>");
                o << cell;
            }
        o << "</tr>\n";
    }
    o << "</tbody></table></div>\n";
    return o.str();
}

// A field of manifest.json: a string's unescaped text or a number's text; "" if absent.
std::string manifest_field(const std::string& json, const std::string& key) {
    const std::string needle = "\"" + key + "\":";
    auto at = json.find(needle);
    if (at == std::string::npos) return "";
    at += needle.size();
    while (at < json.size() && (json[at] == ' ' || json[at] == '\t')) ++at;
    if (at >= json.size()) return "";
    std::string out;
    if (json[at] == '"') {
        for (++at; at < json.size() && json[at] != '"'; ++at) {
            if (json[at] == '\\' && at + 1 < json.size()) {
                ++at;
                out += json[at] == 'n' ? '\n' : json[at] == 't' ? '\t' : json[at];
            } else {
                out += json[at];
            }
        }
        return out;
    }
    while (at < json.size() && json[at] != ',' && json[at] != '\n' && json[at] != '}')
        out += json[at++];
    return std::string(trim(out));
}

int origin_line(const std::string& origin) {
    const auto colon = origin.find_last_of(':');
    if (colon == std::string::npos) return std::numeric_limits<int>::max();
    try {
        return std::stoi(origin.substr(colon + 1));
    } catch (...) {
        return std::numeric_limits<int>::max();
    }
}

constexpr const char* STYLE = R"css(
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1a1a1a; background: #fff; margin: 0 auto; max-width: 1100px; padding: 1.5rem 1.5rem 4rem;
  line-height: 1.45; }
h1 { font-size: 1.7rem; margin: 0 0 .3rem; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 .6rem; border-bottom: 2px solid #0072B2; padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
.sub { color: #444; margin: 0 0 1rem; }
nav { background: #f3f6f9; padding: .6rem 1rem; border-radius: 6px; font-size: .92rem; }
nav ol { margin: .2rem 0; padding-left: 1.3rem; columns: 2; }
a { color: #0a5a8c; }
.more li { margin: .25rem 0; }
.headline { font-size: 1.25rem; font-weight: 600; background: #fff8e6; border-left: 6px solid #E69F00; padding: .9rem 1.1rem;
  margin: 1rem 0; }
figure { margin: 1rem 0 .5rem; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-size: .92rem; color: #333; margin-top: .35rem; }
svg.chart { width: 100%; height: auto; display: block; font-size: 12px; }
svg.chart text { fill: #1a1a1a; font-family: inherit; }
svg.chart .note { fill: #555; font-size: 11px; }
svg.chart .value { fill: #333; font-size: 10px; }
svg.chart .unit { font-weight: 600; }
svg.chart .grid { stroke: #ddd; stroke-width: 1; }
svg.chart .zero { stroke: #666; stroke-width: 1.2; }
svg.chart .sep { stroke: #bbb; stroke-dasharray: 3 3; }
svg.chart .whisker { stroke: #222; stroke-width: 1.2; fill: none; }
svg.chart .frame { fill: none; stroke: #999; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0 1rem; width: 100%; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; caption-side: top; }
th, td { border: 1px solid #ccc; padding: .25rem .45rem; vertical-align: top; text-align: left; }
thead th { background: #eef3f8; }
td { font-variant-numeric: tabular-nums; }
.ci { color: #555; font-size: .8rem; white-space: nowrap; }
p.note { color: #444; font-size: .85rem; }
.unit { font-weight: normal; color: #555; font-size: .78rem; }
.flag { color: #9a3b00; font-size: .8rem; font-weight: 600; }
.assumption { background: #fff4e0; }
.tag { display: inline-block; font-size: .72rem; border-radius: 3px; padding: 0 .3rem; background: #E69F00;
  color: #000; margin-right: .3rem; }
.missing { color: #777; font-style: italic; }
code { font-size: .9em; background: #f2f2f2; padding: 0 .2rem; border-radius: 3px; word-break: break-all; }
table.settings code { white-space: nowrap; word-break: normal; }
dl dt { font-weight: 600; margin-top: .5rem; }
dl dd { margin-left: 1.2rem; }
footer { margin-top: 3rem; font-size: .85rem; color: #555; }
@media print {
  @page { size: A4; margin: 14mm; }
  body { max-width: none; padding: 0; font-size: 10pt; }
  nav { display: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
  section { break-before: auto; }
  .table-wrap { overflow: visible; }
  table { font-size: 8pt; }
  .ci { white-space: normal; }
  tr { break-inside: avoid; page-break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  .headline { border: 1px solid #999; border-left: 6px solid #E69F00; }
}
)css";

}  // namespace

namespace {

// The released tables of the headline metrics, as a reader sees them: dp values clamped at 0
// and rounded to whole events per replication (release.csv keeps them unbiased), suppressed
// cells named, dp cells with their combined interval.
std::string release_section(const Release& release, const std::vector<std::string>& policies) {
    const bool dp = release.mode == ReleaseMode::dp;
    std::ostringstream o;
    o << "<section id=\"release\">\n<h2>Released tables (" << release_mode_name(release.mode)
      << ")</h2>\n<p>The tables as written to <code>release.csv</code>, the only output of this "
         "run meant for publication: the other tables of this report are exact. Values are "
         "means per replication. "
      << (dp ? "Each value carries privacy noise. The file keeps the unbiased noisy value, which "
               "can be negative or fractional; here it is clamped at 0 and rounded to whole "
               "events over all replications. The interval is <b>one combined 95% interval of "
               "Monte Carlo error and privacy noise</b>."
             : "Small counts are suppressed, and further cells too, so that no suppressed cell "
               "can be worked out from the totals.")
      << " docs/disclosure.md explains the rule.</p>\n";
    const std::vector<std::string> metrics = {"wrongful_outcomes", "wrongful_ho_referrals",
                                              "persons_wrongfully_affected"};
    std::vector<const ReleaseTable*> shown;
    for (const auto& metric : metrics) {
        const ReleaseTable* table = nullptr;
        for (const auto& t : release.tables)
            for (const auto& c : t.cells)
                if (!table && c.metric == metric) table = &t;
        if (!table) continue;
        // Rows: groups in the table's order; columns: policies.
        std::vector<std::pair<std::string, std::string>> groups;
        for (const auto& c : table->cells)
            if (c.metric == metric &&
                std::find(groups.begin(), groups.end(), std::make_pair(c.dimension, c.category)) ==
                    groups.end())
                groups.emplace_back(c.dimension, c.category);
        o << "<div class=\"table-wrap\"><table>\n<caption>Released: " << html_escape(metric)
          << " (unit: mean per replication" << (dp ? "; value [combined 95% interval]" : "")
          << ")</caption>\n<thead><tr><th scope=\"col\">group</th>";
        for (const auto& p : policies) o << "<th scope=\"col\">" << html_escape(p) << "</th>";
        o << "</tr></thead>\n<tbody>\n";
        for (const auto& [dimension, category] : groups) {
            o << "<tr><th scope=\"row\">"
              << html_escape(dimension == "all" ? std::string("everyone")
                                                : dimension + " " + category)
              << "</th>";
            for (const auto& p : policies) {
                const auto i = table->find(p, metric, dimension, category);
                if (!i) {
                    o << "<td>NA</td>";
                    continue;
                }
                const ReleaseCell& c = table->cells[*i];
                o << "<td>" << html_escape(display_released(c, release.mode, table->divisor));
                if (!c.released)
                    o << " <span class=\"ci\">(" << cell_status_name(c.status) << ")</span>";
                if (c.lo95 && c.hi95)
                    o << "<br><span class=\"ci\">[" << number(std::max(0.0, *c.lo95)) << ", "
                      << number(std::max(0.0, *c.hi95)) << "]</span>";
                o << "</td>";
            }
            o << "</tr>\n";
        }
        o << "</tbody></table></div>\n";
        if (std::find(shown.begin(), shown.end(), table) == shown.end()) shown.push_back(table);
    }
    // The rules, once per released table (sdc releases one table for every metric).
    for (const ReleaseTable* t : shown)
        if (!t->footer.empty()) o << "<p class=\"note\">" << html_escape(t->footer) << "</p>\n";
    o << "</section>\n";
    return o.str();
}

}  // namespace

std::string report_html(const Results& results, const Summary& summary,
                        const std::string& manifest_json, const Release* release) {
    const RunPlan& plan = results.plan;
    const Scenario& s = *plan.scenario;
    const auto policies = policy_names(plan);
    const std::string& baseline = policies[plan.baseline];
    const auto charts = report_charts(results, summary);
    auto field = [&](const std::string& key, const std::string& fallback) {
        const std::string v = manifest_json.empty() ? "" : manifest_field(manifest_json, key);
        return v.empty() ? fallback : v;
    };

    std::ostringstream o;
    o << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<title>stopscan report: " << html_escape(s.name) << "</title>\n<style>" << STYLE
      << "</style>\n</head>\n<body>\n<header>\n<h1>Police biometric checks: who is wrongly "
         "affected, and what a firewall would change</h1>\n<p class=\"sub\">Scenario: <b>"
      << html_escape(s.name) << "</b>. " << html_escape(s.description)
      << ". Simulated period: " << html_escape(s.period) << "; " << plan.replications
      << " replications; policies compared: ";
    for (std::size_t p = 0; p < policies.size(); ++p)
        o << (p ? ", " : "") << "<b>" << html_escape(policies[p]) << "</b>"
          << (p == plan.baseline ? " (baseline)" : "");
    o << ". All data are synthetic.</p>\n</header>\n";

    // Contents
    o << "<nav aria-label=\"Contents\"><b>Contents</b><ol>"
      << "<li><a href=\"#headline\">Headline</a></li>";
    for (const auto& c : charts)
        if (c.id != "chart-fnir")
            o << "<li><a href=\"#" << (c.id == "chart-fpir" ? "chart-identification" : c.id)
              << "\">"
              << html_escape(c.id == "chart-fpir" ? "Identification error rates (FPIR, FNIR)"
                                                  : c.title)
              << "</a></li>";
    if (release && release->mode != ReleaseMode::none)
        o << "<li><a href=\"#release\">Released tables</a></li>";
    o << "<li><a href=\"#flags\">Reliability flags</a></li>"
      << "<li><a href=\"#assumptions\">Assumptions and sources</a></li>"
      << "<li><a href=\"#method\">Method notes</a></li>"
      << "<li><a href=\"#provenance\">Provenance</a></li></ol></nav>\n";

    // Headline
    {
        const std::string headline = report_headline(results, summary);
        const auto newline = headline.find('\n');
        o << "<section id=\"headline\">\n<h2>Headline</h2>\n<p class=\"headline\">"
          << html_escape(headline.substr(0, newline)) << "</p>\n";
        if (newline != std::string::npos) {
            o << "<ul class=\"more\">";
            for (std::size_t at = newline + 1; at < headline.size();) {
                auto end = headline.find('\n', at);
                if (end == std::string::npos) end = headline.size();
                o << "<li>" << html_escape(headline.substr(at, end - at)) << "</li>";
                at = end + 1;
            }
            o << "</ul>\n";
        }
    }
    o << "<p>These figures hold <em>given the scenario's numbers</em>, many of which are "
         "assumptions (see <a href=\"#assumptions\">Assumptions and sources</a>). ";
    if (results.plan.scenario->uncertain.empty()) {
        o << "The intervals show chance variation only, not uncertainty about those numbers.";
    } else {
        o << "The intervals show chance variation and the uncertainty of these parameters, drawn "
             "once per "
             "simulated period:";
        for (const auto& u : results.plan.scenario->uncertain)
            o << " <code>" << html_escape(u.key) << "</code> ~ " << html_escape(u.law.text())
              << ";";
    }
    o << "</p>\n</section>\n";

    // Policies
    o << "<section id=\"policies\">\n<h2>The policies</h2>\n<table><thead><tr><th "
         "scope=\"col\">policy</th><th scope=\"col\">what it means</th>";
    for (const auto& db : s.databases)
        o << "<th scope=\"col\">" << html_escape(db.name)
          << "<br><span class=\"unit\">access; display; verify (probability)</span></th>";
    o << "</tr></thead><tbody>\n";
    static constexpr const char* ACCESS[] = {"street", "custody only", "no access"};
    static constexpr const char* DISPLAY[] = {"full", "flag only", "none"};
    for (const auto p : plan.policies) {
        const Policy& policy = s.policies[p];
        o << "<tr><th scope=\"row\">" << html_escape(policy.name) << "</th><td>"
          << html_escape(policy.description) << "</td>";
        for (std::size_t d = 0; d < policy.rules.size(); ++d) {
            // A rule that varies by area lists each distinct rule with its categories.
            std::vector<std::pair<std::string, std::string>> variants;  // rule text, categories
            auto text = [&](const DatabaseRule& rule) {
                return std::string(ACCESS[static_cast<int>(rule.access)]) + "; " +
                       DISPLAY[static_cast<int>(rule.display)] + "; " + number(rule.verify);
            };
            if (!policy.varies_by) {
                variants.emplace_back(text(policy.rules[d]), "");
            } else {
                const Dimension& dim = s.dimensions[*policy.varies_by];
                for (std::size_t k = 0; k < dim.categories.size(); ++k) {
                    const auto t = text(policy.rules_by_category[k][d]);
                    auto it = std::find_if(variants.begin(), variants.end(),
                                           [&](const auto& v) { return v.first == t; });
                    if (it == variants.end()) it = variants.insert(variants.end(), {t, ""});
                    it->second += (it->second.empty() ? "" : ", ") + dim.categories[k];
                }
                if (variants.size() == 1) variants.front().second.clear();
            }
            o << "<td>";
            for (std::size_t v = 0; v < variants.size(); ++v)
                o << (v ? "<br>" : "") << variants[v].first
                  << (variants[v].second.empty()
                          ? std::string()
                          : " <span class=\"unit\">(" +
                                html_escape(s.dimensions[*policy.varies_by].name + ": " +
                                            variants[v].second) +
                                ")</span>");
            o << "</td>";
        }
        o << "</tr>\n";
    }
    o << "</tbody></table>\n</section>\n";

    // Charts
    std::size_t figure = 0;
    for (const auto& c : charts) {
        ++figure;
        const bool identification = c.id == "chart-fpir" || c.id == "chart-fnir";
        if (c.id == "chart-fpir")
            o << "<section id=\"chart-identification\">\n<h2>" << figure
              << ". Identification error rates by group (FPIR, FNIR)</h2>\n"
              << "<p>How often the matcher itself errs, by group and database, as observed in "
                 "the simulation under "
              << html_escape(baseline)
              << ". Differences between groups here come from the scenario's matcher "
                 "settings; most wrongful actions come from record errors instead (chart 3).</p>\n";
        if (identification)
            o << "<div id=\"" << c.id << "\">\n<h3>" << figure << ". " << html_escape(c.title)
              << "</h3>\n";
        else
            o << "<section id=\"" << c.id << "\">\n<h2>" << figure << ". " << html_escape(c.title)
              << "</h2>\n";
        o << "<figure>\n"
          << chart_svg(c, figure) << "<figcaption><b>Figure " << figure << ".</b> "
          << html_escape(c.caption)
          << " \u2020 marks a flagged value (see the table).</figcaption>\n</figure>\n"
          << chart_table(c, summary, baseline);
        o << (identification ? "</div>\n" : "</section>\n");
        if (c.id == "chart-fnir") o << "</section>\n";
    }

    if (release && release->mode != ReleaseMode::none) o << release_section(*release, policies);

    // Flags
    o << "<section id=\"flags\">\n<h2>Reliability flags</h2>\n<p>Flags warn that a number "
         "rests on few events or that a ratio is clearly away from 1. They are shown with "
         "\u2020 in the charts and in full in the tables.</p>\n<dl>"
      << "<dt>zero events</dt><dd>No event in any replication. The estimate is 0; its "
         "confidence interval runs from 0 to the one-sided 95% Poisson upper bound.</dd>"
      << "<dt>low events</dt><dd>Fewer than " << number(LOW_EVENTS)
      << " events summed over all replications: read the estimate as rough. Pale bars and "
         "dots in the charts.</dd>"
      << "<dt>outside band</dt><dd>A ratio whose confidence interval lies wholly outside the "
         "tolerance band "
      << number(plan.band_lo) << "\u2013" << number(plan.band_hi)
      << " (four-fifths rule).</dd></dl>\n<table><thead><tr><th scope=\"col\">chart</th><th "
         "scope=\"col\">flag</th><th scope=\"col\">cells (group, series)</th><th "
         "scope=\"col\">number of cells</th></tr></thead><tbody>\n";
    std::size_t flagged_rows = 0;
    figure = 0;
    for (const auto& c : charts) {
        ++figure;
        std::map<std::string, std::vector<std::string>> by_flag;
        for (const auto& row : c.rows)
            for (std::size_t k = 0; k < c.series.size(); ++k)
                if (row.values[k] && !row.values[k]->flag.empty())
                    by_flag[flag_words(row.values[k]->flag)].push_back(
                        row.label + (c.series.size() > 1 ? " (" + c.series[k] + ")" : ""));
        for (const auto& [flag, cells] : by_flag) {
            ++flagged_rows;
            std::string list;
            for (const auto& cell : cells) list += (list.empty() ? "" : "; ") + cell;
            o << "<tr><td>" << figure << ". " << html_escape(c.title) << "</td><td class=\"flag\">"
              << html_escape(flag) << "</td><td>" << html_escape(list) << "</td><td>"
              << cells.size() << "</td></tr>\n";
        }
    }
    if (flagged_rows == 0)
        o << "<tr><td colspan=\"4\">No value in the charts is flagged.</td></tr>\n";
    o << "</tbody></table>\n</section>\n";

    // Assumptions and sources
    const auto comments = setting_comments(s.settings.text());
    std::vector<std::pair<std::string, const Setting*>> settings;
    for (const auto& [key, setting] : s.settings.all()) settings.emplace_back(key, &setting);
    std::stable_sort(settings.begin(), settings.end(), [](const auto& a, const auto& b) {
        return origin_line(a.second->origin) < origin_line(b.second->origin);
    });
    std::size_t assumptions = 0, uncommented = 0;
    std::ostringstream rows;
    for (const auto& [key, setting] : settings) {
        const auto found = comments.find(key);
        const std::string comment = found == comments.end() ? "" : found->second;
        const bool overridden = setting->origin == "--set";
        const bool assumption = comment.find("assumption") != std::string::npos;
        assumptions += assumption;
        uncommented += comment.empty();
        rows << "<tr" << (assumption ? " class=\"assumption\"" : "") << "><td><code>"
             << html_escape(key) << "</code></td><td>" << html_escape(setting->value) << "</td><td>"
             << (assumption ? "<span class=\"tag\">assumption</span>" : "");
        if (overridden)
            rows << "<span class=\"flag\">set on the command line (--set)</span>"
                 << (comment.empty() ? "" : "; the file's comment, about its own value: ");
        if (comment.empty() && !overridden)
            rows << "<span class=\"missing\">no comment on this line of the scenario file</span>";
        rows << html_escape(comment) << "</td><td>" << html_escape(setting->origin)
             << "</td></tr>\n";
    }
    o << "<section id=\"assumptions\">\n<h2>Assumptions and sources</h2>\n<p>Every setting of "
         "the scenario, with its value and the comment at the end of its line in the scenario "
         "file, which names its source or says it is an assumption. "
      << settings.size() << " settings; " << assumptions << " marked as assumptions (shaded); "
      << uncommented
      << " without a comment on their line (keys left at their default are not listed; see "
         "docs/scenario.md).</p>\n<div class=\"table-wrap\"><table "
         "class=\"settings\">\n<thead><tr><th "
         "scope=\"col\">setting</th><th scope=\"col\">value</th><th scope=\"col\">source or "
         "assumption</th><th scope=\"col\">where it is set<br><span "
         "class=\"unit\">file:line</span></th></tr></thead><tbody>\n"
      << rows.str() << "</tbody></table></div>\n";
    if (!s.uncertain.empty()) {
        o << "<p>Parameters drawn once per replication (their uncertainty is inside the "
             "intervals):</p><ul>";
        for (const auto& u : s.uncertain)
            o << "<li><code>" << html_escape(u.key) << "</code> ~ " << html_escape(u.law.text())
              << "</li>";
        o << "</ul>\n";
    }
    o << "</section>\n";

    // Method notes
    o << "<section id=\"method\">\n<h2>Method notes</h2>\n<dl>"
      << "<dt>Replications</dt><dd>The same period (" << html_escape(s.period) << ") is simulated "
      << plan.replications
      << " times with the scenario's fixed numbers; what changes is chance: who is stopped, "
         "how often, whose search goes wrong, what the officer decides. Every policy is "
         "applied to the same simulated stops, people and records, so differences between "
         "policies are measured precisely.</dd>"
      << "<dt>Estimate</dt><dd>The average over the replications. For a ratio "
         "(stop-rate ratio) it is the ratio of the average rates; for a fraction (FPIR, FNIR) "
         "the average of the per-replication fractions, over the replications where it is "
         "defined.</dd>"
      << "<dt>\u201cperiods a\u2013b\u201d (lo95\u2013hi95)</dt><dd>The range holding the "
         "middle 95% of the simulated periods: the spread of <em>one</em> period's value by "
         "chance. A single real year would land in it 95 times in 100 if the world worked as "
         "the scenario says. Drawn as whiskers.</dd>"
      << "<dt>\u201cCI a\u2013b\u201d (mean_lo95\u2013mean_hi95)</dt><dd>The 95% confidence "
         "interval of the estimate itself (Student t over replications; delta method on the "
         "log for ratios; 0 to a one-sided Poisson bound when no event occurred). More "
         "replications narrow it; they do not narrow the spread of single periods.</dd>"
      << "<dt>Changes</dt><dd>A policy minus the baseline (" << html_escape(baseline)
      << "), computed per replication on the same simulated stops and then summarised; the "
         "percentage is the mean change divided by the baseline's mean.</dd>"
      << "<dt>False-hit exposure</dt><dd>Wrongful arrests + wrongful Home Office referrals + "
         "wrongful detentions of the group's people, per 100,000 residents of the group. It "
         "counts actions, not people: one stop can count up to 3.</dd>"
      << "<dt>People wrongfully affected</dt><dd>Different people with at least one wrongful "
         "action in the period, per 100,000 residents.</dd>"
      << "<dt>Causes</dt><dd>Each wrongful action is attributed to the database whose result "
         "triggered it and to a cause: a biometric false match (a stranger's record) or a "
         "record error (a record wrong about the person, or wrongly linked to them). The parts "
         "add up to the total.</dd>"
      << "<dt>Stop-rate ratio</dt><dd>The group's stops per 1,000 residents divided by its "
         "dimension's reference group's.</dd>"
      << "<dt>Lawful status disclosures</dt><dd>Times an immigration database's record was "
         "shown to an officer about a person whose true status is lawful, including records "
         "shown through a false match.</dd>"
      << "<dt>FPIR, FNIR</dt><dd>Observed in the simulation: FPIR = share of searches of "
         "people with no record that returned a record; FNIR = share of searches of people "
         "with a record that did not return it.</dd>"
      << "<dt>What the intervals do not show</dt><dd>Uncertainty about the scenario's own "
         "numbers (unless written as distributions), or whether the model is right. Re-run "
         "with other values (<code>--set</code>) to see how the answers move.</dd></dl>\n"
      << "<p>Full definitions: docs/output.md; the model: docs/model.md; this report: "
         "docs/report.md.</p>\n</section>\n";

    // Provenance
    const std::string commit = field("git_commit", STOPSCAN_GIT_COMMIT);
    o << "<section id=\"provenance\">\n<h2>Provenance</h2>\n<table><tbody>\n";
    const std::vector<std::pair<std::string, std::string>> facts = {
        {"stopscan version", field("stopscan_version", STOPSCAN_VERSION)},
        {"git commit", commit},
        {"build type", field("build_type", STOPSCAN_BUILD_TYPE)},
        {"command line", field("command_line", "")},
        {"scenario", field("scenario_name", s.name)},
        {"scenario file",
         field("scenario_file",
               s.settings.source().empty() ? "(embedded default)" : s.settings.source())},
        {"scenario SHA-256", field("scenario_sha256", sha256_hex(s.settings.text()))},
        {"effective configuration SHA-256", field("effective_configuration_sha256", "")},
        {"seed", field("seed", std::to_string(plan.seed))},
        {"replications", field("replications", std::to_string(plan.replications))},
        {"baseline policy", field("baseline", baseline)},
        {"stops simulated (all replications)",
         field("stops_simulated", std::to_string(results.total_stops()))},
        {"simulation time (s)", field("wall_seconds", number(results.wall_seconds))},
        // Only when the run checked expectations or compared with a previous run.
        {"checks (docs/expectations.md)", field("outcome", "")},
    };
    for (const auto& [name, value] : facts)
        if (!value.empty())
            o << "<tr><th scope=\"row\">" << html_escape(name) << "</th><td><code>"
              << html_escape(value) << "</code></td></tr>\n";
    o << "</tbody></table>\n<p>To repeat this run exactly, use the same version and build, "
         "the same scenario file (check its SHA-256), the same <code>--set</code> overrides, "
         "seed, replications and policies. Machine-readable numbers: summary.csv, effects.csv, "
         "results.json; full provenance: manifest.json.</p>\n</section>\n"
      << "<footer>Generated by stopscan "
      << html_escape(field("stopscan_version", STOPSCAN_VERSION))
      << ". Self-contained: this file makes no network requests and needs no scripts.</footer>\n"
      << "</body>\n</html>\n";
    return o.str();
}

// ---------------------------------------------------------------------------------------
// PNG charts (OpenCV)

namespace {

// Hershey fonts are ASCII only.
std::string ascii(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            out += static_cast<char>(c);
            continue;
        }
        // Multi-byte UTF-8: en dash, minus and division sign as ASCII, anything else as '?'.
        const std::string rest = text.substr(i, 3);
        if (rest == "\u2013" || rest == "\u2212") {
            out += '-';
            i += 2;
        } else if (text.substr(i, 2) == "\u00f7") {
            out += '/';
            i += 1;
        } else if (rest == "\u2020") {
            out += '+';
            i += 2;
        } else {
            out += '?';
            while (i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80)
                ++i;
        }
    }
    return out;
}

cv::Scalar bgr(std::size_t series, bool pale) {
    const int* c = PALETTE_BGR[series % PALETTE_SIZE];
    if (!pale) return cv::Scalar(c[0], c[1], c[2]);
    // Blend 35 % of the colour over white.
    auto blend = [](int v) { return 255 - (255 - v) * 35 / 100; };
    return cv::Scalar(blend(c[0]), blend(c[1]), blend(c[2]));
}

void text(cv::Mat& image, const std::string& s, cv::Point at, double size, int align = 0,
          const cv::Scalar& colour = cv::Scalar(26, 26, 26), int thickness = 2) {
    const std::string a = ascii(s);
    int baseline = 0;
    const cv::Size extent =
        cv::getTextSize(a, cv::FONT_HERSHEY_SIMPLEX, size, thickness, &baseline);
    if (align == 1) at.x -= extent.width / 2;
    if (align == 2) at.x -= extent.width;
    cv::putText(image, a, at, cv::FONT_HERSHEY_SIMPLEX, size, colour, thickness, cv::LINE_AA);
}

cv::Mat draw_chart(const Chart& c) {
    constexpr int WIDTH = 2400, LEFT = 520, RIGHT = 170, TOP = 200, BAR = 26, GAP = 6, PAD = 16;
    const int series = static_cast<int>(c.series.size());
    const int rows = std::max(1, static_cast<int>(c.rows.size()));
    // Few rows: spread them over the minimum height rather than leave the bottom empty.
    const int row_height = std::max(series * (BAR + GAP) + 2 * PAD, (1400 - TOP - 190) / rows);
    const int pad = (row_height - series * (BAR + GAP)) / 2;
    const int plot_height = row_height * static_cast<int>(c.rows.size());
    const int height = std::max(1400, TOP + plot_height + 150);
    const int plot_width = WIDTH - LEFT - RIGHT;
    cv::Mat image(height, WIDTH, CV_8UC3, cv::Scalar(255, 255, 255));
    const Axis axis = axis_for(c);
    auto x = [&](double v) {
        return LEFT +
               static_cast<int>(std::lround((v - axis.lo) / (axis.hi - axis.lo) * plot_width));
    };
    text(image, c.title, {40, 64}, 1.35, 0, cv::Scalar(0, 0, 0), 3);
    // Legend
    int lx = LEFT;
    for (int s = 0; s < series; ++s) {
        cv::rectangle(image, cv::Rect(lx, 100, 28, 28), bgr(static_cast<std::size_t>(s), false),
                      cv::FILLED, cv::LINE_AA);
        text(image, c.series[static_cast<std::size_t>(s)], {lx + 40, 124}, 0.9);
        int baseline = 0;
        lx += 40 +
              cv::getTextSize(ascii(c.series[static_cast<std::size_t>(s)]),
                              cv::FONT_HERSHEY_SIMPLEX, 0.9, 2, &baseline)
                  .width +
              50;
    }
    text(image,
         std::string("Pale ") + (c.dots ? "dot" : "bar") +
             " = fewer than 20 events; whiskers = 95% of simulated periods" +
             (c.band ? "; shaded = tolerance band " + number(c.band->first) + "-" +
                           number(c.band->second)
                     : std::string()),
         {LEFT, 170}, 0.75, 0, cv::Scalar(80, 80, 80));
    if (c.band) {
        cv::Mat overlay = image.clone();
        cv::rectangle(overlay,
                      cv::Rect(cv::Point(x(c.band->first), TOP),
                               cv::Point(x(c.band->second), TOP + plot_height)),
                      cv::Scalar(115, 158, 0), cv::FILLED);
        cv::addWeighted(overlay, 0.15, image, 0.85, 0, image);
    }
    for (const double t : ticks(axis)) {
        cv::line(image, {x(t), TOP}, {x(t), TOP + plot_height},
                 t == 0 ? cv::Scalar(100, 100, 100) : cv::Scalar(221, 221, 221), t == 0 ? 3 : 2,
                 cv::LINE_AA);
        text(image, number(t), {x(t), TOP + plot_height + 40}, 0.8, 1);
    }
    text(image, c.unit, {LEFT + plot_width / 2, TOP + plot_height + 100}, 0.9, 1,
         cv::Scalar(26, 26, 26), 2);
    std::string previous;
    for (std::size_t r = 0; r < c.rows.size(); ++r) {
        const ChartRow& row = c.rows[r];
        const int y0 = TOP + row_height * static_cast<int>(r);
        if (r > 0 && row.dimension != previous)
            cv::line(image, {16, y0}, {WIDTH - 16, y0}, cv::Scalar(187, 187, 187), 2, cv::LINE_AA);
        previous = row.dimension;
        text(image, row.label, {LEFT - 16, y0 + row_height / 2 + 10}, 0.85, 2);
        for (int s = 0; s < series; ++s) {
            const int y = y0 + pad + s * (BAR + GAP);
            const int mid = y + BAR / 2;
            const Estimate* e = row.values[static_cast<std::size_t>(s)];
            if (!e || !e->estimate || !std::isfinite(*e->estimate)) {
                text(image, "NA (not defined)", {x(0) + 8, mid + 9}, 0.7, 0,
                     cv::Scalar(90, 90, 90));
                continue;
            }
            const double v = *e->estimate * c.scale;
            const cv::Scalar colour = bgr(static_cast<std::size_t>(s), few_events(*e));
            const cv::Scalar edge = bgr(static_cast<std::size_t>(s), false);
            if (c.dots) {
                cv::circle(image, {x(v), mid}, 10, colour, cv::FILLED, cv::LINE_AA);
                cv::circle(image, {x(v), mid}, 10, edge, 2, cv::LINE_AA);
            } else {
                const cv::Rect bar(cv::Point(std::min(x(0), x(v)), y),
                                   cv::Point(std::max(x(0), x(v)) + 1, y + BAR));
                cv::rectangle(image, bar, colour, cv::FILLED, cv::LINE_AA);
                cv::rectangle(image, bar, edge, 1, cv::LINE_AA);
            }
            int end = x(v);
            if (e->lo95 && e->hi95 && std::isfinite(*e->hi95)) {
                const int a = x(*e->lo95 * c.scale), b = x(*e->hi95 * c.scale);
                const cv::Scalar ink(34, 34, 34);
                cv::line(image, {a, mid}, {b, mid}, ink, 2, cv::LINE_AA);
                cv::line(image, {a, mid - 8}, {a, mid + 8}, ink, 2, cv::LINE_AA);
                cv::line(image, {b, mid - 8}, {b, mid + 8}, ink, 2, cv::LINE_AA);
                end = std::max(end, b);
            }
            text(image, number(v) + (e->flag.empty() ? "" : " +"), {end + 10, mid + 8}, 0.6, 0,
                 cv::Scalar(50, 50, 50), 1);
        }
    }
    cv::rectangle(image, cv::Rect(LEFT, TOP, plot_width, plot_height), cv::Scalar(153, 153, 153), 2,
                  cv::LINE_AA);
    text(image, "+ = flagged value (low events, zero events or outside band): see report.html",
         {40, height - 24}, 0.65, 0, cv::Scalar(80, 80, 80));
    return image;
}

}  // namespace

void write_png_charts(const std::string& directory, const Results& results,
                      const Summary& summary) {
    for (const auto& c : report_charts(results, summary)) {
        const cv::Mat image = draw_chart(c);
        const std::string path = directory + "/chart-" + c.name + ".png";
        // Encoded in memory, then written like every other output (temporary, fsync, rename).
        std::vector<unsigned char> png;
        bool encoded = false;
        try {
            encoded = cv::imencode(".png", image, png);
        } catch (const cv::Exception& e) {
            throw InternalError("cannot encode " + path + ": " + e.what());
        }
        if (!encoded) throw InternalError("cannot encode " + path);
        write_file_atomically(path, std::string(png.begin(), png.end()));
    }
}

}  // namespace stopscan
