#include "stopscan/sweep_output.hpp"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <unistd.h>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "detail/json.hpp"
#include "stopscan/build_info.hpp"
#include "stopscan/engine.hpp"
#include "stopscan/error.hpp"
#include "stopscan/writers.hpp"

namespace fs = std::filesystem;

namespace stopscan {

namespace {

std::string read_text(const fs::path& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) throw InternalError("cannot read " + path.string());
    std::ostringstream text;
    text << file.rdbuf();
    return text.str();
}

void write_plain(const fs::path& path, const std::string& content) {
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file << content;
    file.close();
    if (!file) throw InternalError("cannot write " + path.string());
}

// The summary restricted to the kept metrics (all when none are named).
Summary kept(const Summary& summary, const std::vector<std::string>& metrics) {
    if (metrics.empty()) return summary;
    auto keep = [&](const std::string& m) {
        return std::find(metrics.begin(), metrics.end(), m) != metrics.end();
    };
    Summary out;
    for (const auto& r : summary.rows)
        if (keep(r.metric)) out.rows.push_back(r);
    for (const auto& e : summary.effects)
        if (keep(e.metric)) out.effects.push_back(e);
    return out;
}

std::string html_escape(const std::string& text) {
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
            default:
                out += c;
        }
    }
    return out;
}

std::string json_list(const std::vector<std::string>& items) {
    std::string out = "[";
    for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + json_string(items[i]);
    return out + "]";
}

const detail::JsonValue& member(const detail::JsonValue& v, const std::string& name,
                                const std::string& where) {
    const auto* m = v.find(name);
    if (!m)
        throw InputError(where, "manifest.json has no \"" + name + "\": not a sweep's manifest");
    return *m;
}

std::int64_t as_integer(const detail::JsonValue& v, const std::string& where) {
    std::int64_t n = 0;
    const auto r = std::from_chars(v.text.data(), v.text.data() + v.text.size(), n);
    if (v.kind != detail::JsonValue::number || r.ec != std::errc() ||
        r.ptr != v.text.data() + v.text.size())
        throw InputError(where, "manifest.json holds a malformed number '" + v.text + "'");
    return n;
}

}  // namespace

SweepShard SweepShard::parse(const std::string& text) {
    const auto slash = text.find('/');
    SweepShard s;
    auto number = [&](std::string_view part, std::int64_t& v) {
        const auto r = std::from_chars(part.data(), part.data() + part.size(), v);
        return !part.empty() && r.ec == std::errc() && r.ptr == part.data() + part.size();
    };
    const std::string_view all(text);
    if (slash == std::string::npos || !number(all.substr(0, slash), s.index) ||
        !number(all.substr(slash + 1), s.count) || s.count < 1 || s.count > 100'000 ||
        s.index < 1 || s.index > s.count)
        throw InputError("command line", "--shard", text,
                         "give I/N with 1 <= I <= N <= 100000, e.g. 2/4 (shards are numbered "
                         "from 1, as Slurm's --array=1-N numbers its tasks)");
    return s;
}

std::string point_directory_name(std::int64_t id) {
    std::string digits = std::to_string(id);
    return digits.size() >= 6 ? digits : std::string(6 - digits.size(), '0') + digits;
}

Summary run_sweep_point(const SweepSpec& spec, const SweepPoint& point) {
    RunPlan plan = point_plan(spec, point);
    plan.threads = 0;  // never a global_control here: it would limit the whole process
    const Engine engine(std::move(plan));
    return summarize(engine.run());
}

SweepPointFiles sweep_point_files(const SweepSpec& spec, const SweepPoint& point,
                                  const Summary& summary) {
    std::string header = "point_id";
    std::string row = std::to_string(point.id);
    for (std::size_t a = 0; a < spec.axes.size(); ++a) {
        header += "," + csv_field(spec.axes[a].key);
        row += "," + csv_field(point.values[a]);
    }
    const Summary rows = kept(summary, spec.metrics);
    return {header + "\n" + row + "\n", summary_csv(rows), effects_csv(rows)};
}

void commit_sweep_point(const std::string& points_dir, std::int64_t id,
                        const SweepPointFiles& files) {
    const fs::path final_dir = fs::path(points_dir) / point_directory_name(id);
    const fs::path temporary = fs::path(points_dir) / (".tmp-" + point_directory_name(id));
    std::error_code ec;
    fs::remove_all(temporary, ec);
    fs::create_directories(temporary, ec);
    if (ec) throw InternalError("cannot create " + temporary.string() + ": " + ec.message());
    write_plain(temporary / "point.csv", files.point_csv);
    write_plain(temporary / "summary.csv", files.summary_csv);
    write_plain(temporary / "effects.csv", files.effects_csv);
    // The commit: a point directory appears whole or not at all.
    fs::rename(temporary, final_dir, ec);
    if (ec) {
        fs::remove_all(temporary);
        throw InternalError("cannot rename " + temporary.string() + " to " + final_dir.string() +
                            ": " + ec.message());
    }
}

void write_sweep_point(const std::string& points_dir, const SweepSpec& spec,
                       const SweepPoint& point, const Summary& summary) {
    commit_sweep_point(points_dir, point.id, sweep_point_files(spec, point, summary));
}

void run_sweep_points(const SweepSpec& spec, const SweepPoints& points,
                      const std::vector<std::int64_t>& todo, const std::string& points_dir,
                      bool across_points, const std::function<void(std::int64_t)>& done) {
    std::mutex mutex;
    auto one = [&](std::int64_t id) {
        const SweepPoint& point = points.points[static_cast<std::size_t>(id)];
        write_sweep_point(points_dir, spec, point, run_sweep_point(spec, point));
        if (done) {
            const std::lock_guard lock(mutex);
            done(id);
        }
    };
    if (!across_points) {
        for (const auto id : todo) one(id);
        return;
    }
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, todo.size(), 1),
                      [&](const tbb::blocked_range<std::size_t>& r) {
                          for (std::size_t i = r.begin(); i < r.end(); ++i) one(todo[i]);
                      });
}

std::string sweep_shard_line(const std::optional<SweepShard>& shard) {
    if (!shard) return "  \"shard\": null";
    return "  \"shard\": {\"index\": " + std::to_string(shard->index) +
           ", \"count\": " + std::to_string(shard->count) +
           ", \"rule\": \"point_id mod count = index - 1\"}";
}

std::string sweep_manifest_json(const SweepSpec& spec, const SweepPoints& points,
                                const std::optional<SweepShard>& shard) {
    // Members that identify the sweep, hashed; then the paths and the shard, which do not.
    std::vector<std::pair<std::string, std::string>> members{
        {"kind", json_string("stopscan sweep")},
        {"stopscan_version", json_string(STOPSCAN_VERSION)},
        {"git_commit", json_string(STOPSCAN_GIT_COMMIT)},
        {"build_type", json_string(STOPSCAN_BUILD_TYPE)},
        {"sweep_text", json_string(spec.text)},
        {"sweep_text_sha256", json_string(sha256_hex(spec.text))},
        {"scenario_sha256", json_string(sha256_hex(spec.base.text()))},
    };
    std::string fixed = "{";
    for (std::size_t i = 0; i < spec.fixed.size(); ++i)
        fixed += (i ? ", " : "") + json_string(spec.fixed[i].first) + ": " +
                 json_string(spec.fixed[i].second);
    members.emplace_back("fixed", fixed + "}");
    members.emplace_back("design", points.design_json);
    members.emplace_back("seed", std::to_string(spec.seed));
    members.emplace_back("replications", std::to_string(spec.replications));
    members.emplace_back("policies", json_list(spec.policies));
    members.emplace_back("baseline", json_string(spec.baseline));
    members.emplace_back("metrics",
                         spec.metrics.empty() ? std::string("\"all\"") : json_list(spec.metrics));
    members.emplace_back("heatmap_metric", json_string(spec.heatmap_metric));
    std::string axes = "[";
    for (std::size_t a = 0; a < spec.axes.size(); ++a) {
        const auto& axis = spec.axes[a];
        static constexpr const char* KINDS[] = {"list", "linear", "log", "distribution"};
        axes += std::string(a ? ",\n    " : "\n    ") + "{\"key\": " + json_string(axis.key) +
                ", \"spec\": " + json_string(axis.spec) + ", \"kind\": \"" + KINDS[axis.kind] +
                "\"" +
                (spec.design == SweepDesign::grid ? ", \"values\": " + json_list(axis.grid_values())
                                                  : std::string()) +
                "}";
    }
    members.emplace_back("axes", axes + "\n  ]");
    members.emplace_back("points", std::to_string(points.points.size()));
    members.emplace_back("common_random_numbers",
                         json_string("every point runs with the same seed; draws are keyed by "
                                     "(seed, replication, entity, purpose, index)"));
    std::string hashed;
    for (const auto& [key, value] : members) hashed += key + ": " + value + "\n";
    std::string out = "{\n";
    for (const auto& [key, value] : members) out += "  " + json_string(key) + ": " + value + ",\n";
    out += "  \"sweep_file\": " + json_string(spec.path) + ",\n";
    out += "  \"scenario_file\": " +
           json_string(spec.scenario_path.empty() ? "(embedded default)" : spec.scenario_path) +
           ",\n";
    out += "  \"sweep_sha256\": " + json_string(sha256_hex(hashed)) + ",\n";
    out += sweep_shard_line(shard) + "\n}\n";
    return out;
}

namespace {

bool is_sweep_output(const std::string& name) {
    return name == "manifest.json" || name == "sweep.csv" || name == "effects.csv" ||
           name == "report.html" || name == "points" ||
           (name.rfind("heatmap-", 0) == 0 && name.size() > 12 &&
            name.compare(name.size() - 4, 4, ".png") == 0);
}

}  // namespace

void remove_sweep_outputs(const std::string& directory) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(directory, ec))
        if (is_sweep_output(entry.path().filename().string())) fs::remove_all(entry.path(), ec);
}

SweepDirectoryInfo read_sweep_directory(const std::string& directory) {
    const fs::path path = fs::path(directory) / "manifest.json";
    std::error_code ec;
    if (!fs::is_directory(directory, ec))
        throw InputError(directory, "not a directory: give a sweep's output directory");
    if (!fs::exists(path, ec))
        throw InputError(directory, "no manifest.json: not a sweep's output directory");
    return parse_sweep_manifest(read_text(path), path.string());
}

SweepDirectoryInfo parse_sweep_manifest(const std::string& text, const std::string& where) {
    SweepDirectoryInfo info;
    info.manifest = text;
    detail::JsonValue json;
    try {
        json = detail::parse_json(info.manifest);
    } catch (const std::invalid_argument& e) {
        throw InputError(where, e.what());
    }
    if (member(json, "kind", where).text != "stopscan sweep")
        throw InputError(where, "not a sweep's manifest (a run's?): give sweep output directories");
    info.sweep_sha256 = member(json, "sweep_sha256", where).text;
    info.points = as_integer(member(json, "points", where), where);
    const auto& shard = member(json, "shard", where);
    if (shard.kind == detail::JsonValue::object)
        info.shard = SweepShard{as_integer(member(shard, "index", where), where),
                                as_integer(member(shard, "count", where), where)};
    return info;
}

namespace {

// Viridis (matplotlib's default colour map, van der Walt and Smith 2015) at 9 stops, for the
// report's SVG; the PNGs use OpenCV's COLORMAP_VIRIDIS.
std::string viridis(double t) {
    static constexpr double STOPS[9][3] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},
                                           {44, 113, 142}, {33, 144, 141}, {39, 173, 129},
                                           {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};
    t = std::min(std::max(t, 0.0), 1.0) * 8;
    const auto i = std::min(7, static_cast<int>(t));
    const double f = t - i;
    char buffer[8];
    int rgb[3];
    for (int c = 0; c < 3; ++c)
        rgb[c] = static_cast<int>(std::lround(STOPS[i][c] + f * (STOPS[i + 1][c] - STOPS[i][c])));
    std::snprintf(buffer, sizeof buffer, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
    return buffer;
}

struct Heatmap {
    std::string policy;
    std::vector<std::optional<double>> values;  // row-major, rows = first axis
};

std::string svg_heatmap(const Heatmap& map, const std::vector<std::string>& rows,
                        const std::vector<std::string>& columns, const std::string& row_axis,
                        const std::string& column_axis, const std::string& metric) {
    constexpr int CELL_W = 64, CELL_H = 28, LEFT = 130, TOP = 40;
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& v : map.values)
        if (v && std::isfinite(*v)) {
            lo = std::min(lo, *v);
            hi = std::max(hi, *v);
        }
    const int width = LEFT + CELL_W * static_cast<int>(columns.size()) + 20;
    const int height = TOP + CELL_H * static_cast<int>(rows.size()) + 50;
    std::ostringstream svg;
    svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
        << "\" role=\"img\" aria-label=\"" << html_escape(metric) << " under "
        << html_escape(map.policy) << "\">\n<text x=\"4\" y=\"16\" font-size=\"13\">"
        << html_escape(metric) << ", policy " << html_escape(map.policy)
        << "</text>\n<text x=\"4\" y=\"32\" font-size=\"11\">rows: " << html_escape(row_axis)
        << "; columns: " << html_escape(column_axis) << "</text>\n";
    for (std::size_t r = 0; r < rows.size(); ++r) {
        const int y = TOP + CELL_H * static_cast<int>(r);
        svg << "<text x=\"4\" y=\"" << y + 18 << "\" font-size=\"11\">" << html_escape(rows[r])
            << "</text>\n";
        for (std::size_t c = 0; c < columns.size(); ++c) {
            const auto& v = map.values[r * columns.size() + c];
            const int x = LEFT + CELL_W * static_cast<int>(c);
            const bool shown = v && std::isfinite(*v);
            const double t = shown && hi > lo ? (*v - lo) / (hi - lo) : 0.5;
            svg << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << CELL_W << "\" height=\""
                << CELL_H << "\" fill=\"" << (shown ? viridis(t) : "#bbbbbb") << "\"><title>"
                << html_escape(display_number(v)) << "</title></rect>\n"
                << "<text x=\"" << x + CELL_W / 2 << "\" y=\"" << y + 18
                << "\" font-size=\"10\" text-anchor=\"middle\" fill=\""
                << (shown && t > 0.6 ? "#000" : "#fff") << "\">" << html_escape(display_number(v))
                << "</text>\n";
        }
    }
    const int bottom = TOP + CELL_H * static_cast<int>(rows.size());
    for (std::size_t c = 0; c < columns.size(); ++c)
        svg << "<text x=\"" << LEFT + CELL_W * static_cast<int>(c) + CELL_W / 2 << "\" y=\""
            << bottom + 16 << "\" font-size=\"11\" text-anchor=\"middle\">"
            << html_escape(columns[c]) << "</text>\n";
    svg << "</svg>\n";
    return svg.str();
}

// A PNG of the heatmap through OpenCV's viridis colour map; cells without a value are grey.
std::string png_heatmap(const Heatmap& map, std::size_t rows, std::size_t columns) {
    constexpr int CELL = 40;
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& v : map.values)
        if (v && std::isfinite(*v)) {
            lo = std::min(lo, *v);
            hi = std::max(hi, *v);
        }
    cv::Mat level(static_cast<int>(rows), static_cast<int>(columns), CV_8UC1);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < columns; ++c) {
            const auto& v = map.values[r * columns + c];
            const double t = v && std::isfinite(*v) && hi > lo ? (*v - lo) / (hi - lo) : 0.5;
            level.at<std::uint8_t>(static_cast<int>(r), static_cast<int>(c)) =
                static_cast<std::uint8_t>(std::lround(255 * t));
        }
    cv::Mat big;
    cv::resize(level, big, cv::Size(), CELL, CELL, cv::INTER_NEAREST);
    cv::Mat colour;
    cv::applyColorMap(big, colour, cv::COLORMAP_VIRIDIS);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < columns; ++c)
            if (!map.values[r * columns + c] || !std::isfinite(*map.values[r * columns + c]))
                colour(cv::Rect(static_cast<int>(c) * CELL, static_cast<int>(r) * CELL, CELL, CELL))
                    .setTo(cv::Scalar(187, 187, 187));
    std::vector<uchar> bytes;
    if (!cv::imencode(".png", colour, bytes)) throw InternalError("PNG encoding failed");
    return std::string(bytes.begin(), bytes.end());
}

std::string file_safe(const std::string& name) {
    std::string out;
    for (const char c : name)
        out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '_';
    return out;
}

}  // namespace

void assemble_sweep(const std::string& out, const std::string& manifest,
                    const std::vector<std::string>& point_dirs) {
    const detail::JsonValue json = detail::parse_json(manifest);
    const std::string where = out + "/manifest.json";
    std::vector<std::string> axes;
    std::vector<std::vector<std::string>> grid;
    for (const auto& axis : member(json, "axes", where).items) {
        axes.push_back(member(axis, "key", where).text);
        if (const auto* values = axis.find("values")) {
            grid.emplace_back();
            for (const auto& v : values->items) grid.back().push_back(v.text);
        }
    }
    std::vector<std::string> policies;
    for (const auto& p : member(json, "policies", where).items) policies.push_back(p.text);
    const std::string metric = member(json, "heatmap_metric", where).text;
    const std::string design = member(member(json, "design", where), "name", where).text;

    // sweep.csv and effects.csv: each point's rows prefixed with its point.csv row.
    std::string sweep_csv, effects;
    std::vector<std::vector<std::string>> point_values;               // per point: axis values
    std::vector<std::map<std::string, std::optional<double>>> shown;  // per point: policy -> value
    for (std::size_t i = 0; i < point_dirs.size(); ++i) {
        const fs::path dir(point_dirs[i]);
        std::istringstream point(read_text(dir / "point.csv"));
        std::string point_header, point_row;
        std::getline(point, point_header);
        std::getline(point, point_row);
        auto fields = split_csv_line(point_row);
        point_values.emplace_back(fields.begin() + 1, fields.end());
        shown.emplace_back();
        auto append = [&](const std::string& file, std::string& target, bool summary) {
            std::istringstream lines(read_text(dir / file));
            std::string line;
            std::getline(lines, line);
            if (i == 0) target += point_header + "," + line + "\n";
            while (std::getline(lines, line)) {
                target += point_row + "," + line + "\n";
                if (!summary) continue;
                const auto f = split_csv_line(line);
                if (f.size() > 4 && f[1] == "all" && f[2] == "all" && f[3] == metric) {
                    double v = 0;
                    if (f[4] == "inf" || f[4] == "-inf")
                        v = f[4] == "inf" ? INFINITY : -INFINITY;
                    else if (std::from_chars(f[4].data(), f[4].data() + f[4].size(), v).ec !=
                             std::errc())
                        continue;  // NA
                    shown.back()[f[0]] = v;
                }
            }
        };
        append("summary.csv", sweep_csv, true);
        append("effects.csv", effects, false);
    }
    write_file_atomically(out + "/sweep.csv", sweep_csv);
    write_file_atomically(out + "/effects.csv", effects);

    // Heatmaps of 2-axis grids, rows the first axis, columns the second.
    std::vector<Heatmap> maps;
    const bool two_axis_grid = design == "grid" && grid.size() == 2 &&
                               grid[0].size() * grid[1].size() == point_dirs.size();
    if (two_axis_grid)
        for (const auto& policy : policies) {
            Heatmap map{policy, {}};
            for (const auto& point : shown) {
                const auto it = point.find(policy);
                map.values.push_back(it == point.end() ? std::nullopt : it->second);
            }
            write_file_atomically(out + "/heatmap-" + file_safe(policy) + ".png",
                                  png_heatmap(map, grid[0].size(), grid[1].size()));
            maps.push_back(std::move(map));
        }

    std::ostringstream html;
    html
        << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>stopscan "
           "sweep: "
        << point_dirs.size()
        << " points</title>\n<style>\nbody{font-family:sans-serif;margin:"
           "2em;max-width:72em}table{border-collapse:collapse;font-size:12px}td,th{border:1px "
           "solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}pre{background:#f6f6f6;"
           "padding:1em;overflow:auto}\n</style>\n</head>\n<body>\n<h1>stopscan sweep</h1>\n<p>"
        << point_dirs.size() << " points, design <b>" << html_escape(design) << "</b>, seed "
        << html_escape(member(json, "seed", where).text) << ", "
        << html_escape(member(json, "replications", where).text)
        << " replications per point, the same seed at every point (common random numbers). "
           "Policies: ";
    for (std::size_t p = 0; p < policies.size(); ++p)
        html << (p ? ", " : "") << html_escape(policies[p]);
    html << ". Metric shown: <b>" << html_escape(metric)
         << "</b> (everyone: dimension all, category all). stopscan "
         << html_escape(member(json, "stopscan_version", where).text) << ", commit "
         << html_escape(member(json, "git_commit", where).text)
         << ". Every metric of every point is in sweep.csv (docs/sweeps.md).</p>\n";
    if (two_axis_grid) {
        html << "<h2>Heatmaps</h2>\n";
        for (const auto& map : maps)
            html << svg_heatmap(map, grid[0], grid[1], axes[0], axes[1], metric);
    }
    html << "<h2>Points</h2>\n<table>\n<tr><th>point</th>";
    for (const auto& a : axes) html << "<th>" << html_escape(a) << "</th>";
    for (const auto& p : policies) html << "<th>" << html_escape(metric + ", " + p) << "</th>";
    html << "</tr>\n";
    constexpr std::size_t MAX_ROWS = 5000;
    for (std::size_t i = 0; i < point_dirs.size() && i < MAX_ROWS; ++i) {
        html << "<tr><td>" << i << "</td>";
        for (const auto& v : point_values[i]) html << "<td>" << html_escape(v) << "</td>";
        for (const auto& p : policies) {
            const auto it = shown[i].find(p);
            html << "<td>"
                 << html_escape(display_number(it == shown[i].end() ? std::nullopt : it->second))
                 << "</td>";
        }
        html << "</tr>\n";
    }
    html << "</table>\n";
    if (point_dirs.size() > MAX_ROWS)
        html << "<p>The first " << MAX_ROWS << " of " << point_dirs.size()
             << " points; all are in sweep.csv.</p>\n";
    html << "<h2>Sweep file</h2>\n<pre>" << html_escape(member(json, "sweep_text", where).text)
         << "</pre>\n</body>\n</html>\n";
    write_file_atomically(out + "/report.html", html.str());
}

std::int64_t merge_sweep_shards(const std::vector<std::string>& shards, const std::string& out,
                                bool replace) {
    if (shards.empty())
        throw InputError("command line", "give the shard directories to merge (see --help)");
    std::vector<SweepDirectoryInfo> info;
    for (const auto& dir : shards) info.push_back(read_sweep_directory(dir));
    const auto& first = info.front();
    const SweepShard unsharded{1, 1};
    std::map<std::int64_t, std::size_t> by_index;
    for (std::size_t s = 0; s < shards.size(); ++s) {
        if (info[s].sweep_sha256 != first.sweep_sha256)
            throw InputError(shards[s], "a shard of another sweep (sweep_sha256 " +
                                            info[s].sweep_sha256.substr(0, 12) + "..., not " +
                                            first.sweep_sha256.substr(0, 12) + "... as " +
                                            shards[0] +
                                            "): merge the shards of one sweep file, run by one "
                                            "build");
        const SweepShard shard = info[s].shard.value_or(unsharded);
        if (shard.count != first.shard.value_or(unsharded).count)
            throw InputError(shards[s], "shard " + std::to_string(shard.index) + "/" +
                                            std::to_string(shard.count) + " of a split into " +
                                            std::to_string(shard.count) + ", but " + shards[0] +
                                            " is of a split into " +
                                            std::to_string(first.shard.value_or(unsharded).count));
        const auto [it, inserted] = by_index.emplace(shard.index, s);
        if (!inserted)
            throw InputError(shards[s], "shard " + std::to_string(shard.index) + "/" +
                                            std::to_string(shard.count) + " given twice (also " +
                                            shards[it->second] + "): give each shard once");
    }
    const std::int64_t count = first.shard.value_or(unsharded).count;
    for (std::int64_t i = 1; i <= count; ++i)
        if (!by_index.count(i))
            throw InputError("command line", "shard " + std::to_string(i) + "/" +
                                                 std::to_string(count) + " is missing: give all " +
                                                 std::to_string(count) + " shard directories");

    // Every point exactly once, in the shard that owns it.
    std::vector<std::string> point_dirs(static_cast<std::size_t>(first.points));
    for (std::size_t s = 0; s < shards.size(); ++s) {
        const fs::path points = fs::path(shards[s]) / "points";
        std::error_code ec;
        if (!fs::is_directory(points, ec)) continue;
        for (const auto& entry : fs::directory_iterator(points)) {
            const std::string name = entry.path().filename().string();
            if (name.rfind(".tmp-", 0) == 0) continue;  // a point that never finished
            std::int64_t id = -1;
            const auto r = std::from_chars(name.data(), name.data() + name.size(), id);
            if (r.ec != std::errc() || r.ptr != name.data() + name.size() || id < 0 ||
                id >= first.points)
                throw InputError(entry.path().string(),
                                 "not a point of this sweep (points are 000000 to " +
                                     point_directory_name(first.points - 1) + ")");
            auto& slot = point_dirs[static_cast<std::size_t>(id)];
            if (!slot.empty())
                throw InputError(entry.path().string(), "point " + std::to_string(id) +
                                                            " is also in " + slot +
                                                            ": give each shard once");
            slot = entry.path().string();
        }
    }
    for (std::size_t id = 0; id < point_dirs.size(); ++id)
        if (point_dirs[id].empty()) {
            const auto owner = static_cast<std::int64_t>(id) % count + 1;
            throw InputError(shards[by_index.at(owner)],
                             "point " + std::to_string(id) + " is missing: shard " +
                                 std::to_string(owner) + "/" + std::to_string(count) +
                                 " did not finish; run it again with --resume");
        }

    // The points, copied, then the unsharded manifest and the assembled outputs.
    const std::string manifest = [&] {
        std::string text = info[by_index.at(1)].manifest;
        const std::string line = sweep_shard_line(info[by_index.at(1)].shard);
        const auto at = text.find(line);
        if (at == std::string::npos)
            throw InputError(shards[by_index.at(1)],
                             "manifest.json has no shard line: not written by this build");
        return text.replace(at, line.size(), sweep_shard_line(std::nullopt));
    }();
    std::error_code ec;
    if (replace && fs::is_directory(out, ec)) remove_sweep_outputs(out);
    fs::create_directories(fs::path(out) / "points", ec);
    if (ec) throw InputError("command line", "--out", out, "cannot create: " + ec.message());
    std::vector<std::string> merged(point_dirs.size());
    for (std::size_t id = 0; id < point_dirs.size(); ++id) {
        const fs::path target =
            fs::path(out) / "points" / point_directory_name(static_cast<std::int64_t>(id));
        const fs::path temporary = fs::path(out) / "points" /
                                   (".tmp-" + point_directory_name(static_cast<std::int64_t>(id)));
        if (!fs::exists(target, ec)) {
            fs::remove_all(temporary, ec);
            fs::create_directories(temporary, ec);
            for (const char* file : {"point.csv", "summary.csv", "effects.csv"})
                write_plain(temporary / file, read_text(fs::path(point_dirs[id]) / file));
            fs::rename(temporary, target, ec);
            if (ec)
                throw InternalError("cannot rename " + temporary.string() + ": " + ec.message());
        }
        merged[id] = target.string();
    }
    write_file_atomically(out + "/manifest.json", manifest);
    assemble_sweep(out, manifest, merged);
    return first.points;
}

}  // namespace stopscan
