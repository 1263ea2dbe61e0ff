// The report people read: one self-contained HTML file (inline CSS and SVG, no scripts, no
// external requests) and, on request, the same charts as PNG images drawn with OpenCV.
// What each section shows and how to read it: docs/report.md.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stopscan/disclosure.hpp"
#include "stopscan/summary.hpp"

namespace stopscan {

/// One group (row) of a chart: a label and one estimate per series (nullptr: no such row).
struct ChartRow {
    std::string label;
    std::string dimension;  ///< summary.csv's dimension and category of the row ("" if none)
    std::string category;
    std::vector<const Estimate*> values;
};

/// A chart as data, drawn by both the SVG and the PNG writers: horizontal bars (or dots) with
/// whiskers from lo95 to hi95, one bar per series in each row.
struct Chart {
    std::string id;       ///< HTML section id, e.g. "chart-exposure"
    std::string name;     ///< file name part: chart-<name>.png
    std::string title;    ///< plain-words title
    std::string unit;     ///< the axis unit, e.g. "wrongful actions per 100,000 residents"
    std::string caption;  ///< text alternative: what the chart shows, in words and numbers
    std::vector<std::string> series;
    std::string metric;                ///< summary.csv metric, when one metric fills the chart
    bool series_are_policies = false;  ///< series are the run's policies (effects apply)
    std::vector<ChartRow> rows;
    double scale = 1;                               ///< values are multiplied by this when shown
    bool dots = false;                              ///< dots (ratios, fractions) instead of bars
    std::optional<std::pair<double, double>> band;  ///< shaded tolerance band, in shown units
};

/// The charts of the report, in order: stop-rate ratio, exposure, causes, persons affected,
/// lawful status disclosures, FPIR, FNIR. Each row points into `summary`, which must outlive
/// the charts.
std::vector<Chart> report_charts(const Results& results, const Summary& summary);

/// The headline sentence(s) in plain words with numbers (text, not HTML).
std::string report_headline(const Results& results, const Summary& summary);

/// Maps each `section.key` of INI text to the `#` comment at the end of its line (trimmed,
/// without the '#'); keys without a trailing comment map to "". Handles [section] headers,
/// whole-line comments, a UTF-8 byte-order mark and CRLF line endings.
std::map<std::string, std::string> setting_comments(std::string_view ini_text);

/// Escapes text for HTML content and attribute values (& < > " ').
std::string html_escape(std::string_view text);

/// The report as one self-contained HTML document. `manifest_json` is the text of
/// manifest.json (provenance); when empty, provenance is taken from `results`. With a
/// `release` (run --release sdc|dp), a section shows its tables of the headline metrics as
/// released, with the rule in a footer.
std::string report_html(const Results& results, const Summary& summary,
                        const std::string& manifest_json, const Release* release = nullptr);

/// Draws the charts with OpenCV at 2400 px wide and writes DIR/chart-<name>.png for each
/// (temporary name, then rename). Throws InternalError if an image cannot be written.
void write_png_charts(const std::string& directory, const Results& results, const Summary& summary);

}  // namespace stopscan
