// Parameter sweeps (docs/sweeps.md): a sweep file names a base scenario, fixed overrides,
// axes (scenario keys with a list, a linear or log range, or a distribution) and a design
// (grid, Latin hypercube, Morris trajectories, Saltelli's Sobol blocks). The design is a
// deterministic function of the sweep seed; every point is a scenario with the axis values
// applied as `--set` overrides, validated before anything runs.
//
// Common random numbers: every point runs with the same run seed, and every draw of the
// engine is keyed by (seed, replication, entity, purpose, index), so two points that differ
// in one parameter share every draw that parameter does not touch.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stopscan/parameter_distribution.hpp"
#include "stopscan/run_plan.hpp"
#include "stopscan/settings.hpp"

namespace stopscan {

/// One axis of a sweep: a scenario key and the values it takes.
struct SweepAxis {
    enum Kind { list, linear, log, distribution };
    Kind kind = list;
    std::string key;                 ///< scenario key, e.g. "database.IABS.false_flag"
    std::string spec;                ///< the value as written in [axes]
    std::string origin;              ///< "sweep.ini:12"
    std::vector<std::string> items;  ///< list: the values, as written
    double lo = 0;                   ///< linear, log: the range
    double hi = 0;
    std::int64_t count = 0;  ///< linear, log: number of grid values (0: not given)
    bool integer = false;    ///< linear, log: values rounded to whole numbers
    std::optional<ParameterDistribution> law;  ///< distribution

    /// The value text at unit coordinate u in [0, 1] (the inverse of the axis's cumulative
    /// distribution: uniform over a linear range, log-uniform over a log range, the items of
    /// a list in equal shares, the law's quantile for a distribution).
    std::string value_at(double u) const;
    /// The grid values: the list items, or `count` values from lo to hi, ends included.
    std::vector<std::string> grid_values() const;
};

/// How the points of a sweep are chosen.
/// `oat`: one at a time, a base point at the middle of every axis (u = 0.5) and, per axis,
/// that axis at its low and its high end (u = 0, 1): 2k + 1 points, for a tornado table.
enum class SweepDesign { grid, lhs, morris, sobol, oat };
/// "grid", "lhs", "morris", "sobol", "oat".
const char* design_name(SweepDesign design);

/// A parsed and checked sweep file (not yet its points: see make_sweep_points).
struct SweepSpec {
    std::string path;             ///< the sweep file, as given
    std::string text;             ///< its exact bytes
    std::string scenario_path;    ///< base scenario path ("" for the embedded default)
    std::string scenario_origin;  ///< where [sweep] scenario is written, for errors
    Settings base;                ///< the base scenario, [set] overrides applied
    std::vector<std::pair<std::string, std::string>> fixed;  ///< [set] key, value
    std::vector<std::string> fixed_origins;                  ///< their lines
    SweepDesign design = SweepDesign::grid;
    std::int64_t samples = 0;       ///< lhs: points; sobol: base points N (N(k+2) in all)
    std::int64_t trajectories = 0;  ///< morris: r
    std::int64_t levels = 0;        ///< morris: p (even)
    std::int64_t replications = 0;
    std::uint64_t seed = 0;
    std::vector<std::string> policies;
    std::string baseline;
    std::vector<std::string> metrics;  ///< kept metrics; empty = all
    std::string heatmap_metric;        ///< metric drawn for 2-axis grids
    std::vector<SweepAxis> axes;       ///< in the order of the file
    /// Where each [sweep] key is written ("" when absent), for errors about its value.
    std::string origin(const std::string& key) const;
    std::vector<std::pair<std::string, std::string>> origins;
};

/// Parses sweep text. `path` names the file in errors and anchors the base scenario's
/// relative path. Throws InputError naming the file, line and key: an unknown section or
/// key (with the nearest valid one), a malformed axis, a value out of range, an axis on a
/// run.* key, a design that does not fit its axes.
SweepSpec parse_sweep(std::string_view text, const std::string& path);
/// Reads and parses a sweep file. Throws InputError as parse_sweep, or if it cannot be read.
SweepSpec read_sweep_file(const std::string& path);

/// One point of a sweep.
struct SweepPoint {
    std::int64_t id = 0;
    std::vector<std::string> values;  ///< one per axis, the text applied as an override
    std::string block;  ///< sobol: "A", "B" or "AB_i"; morris: "t.s"; oat: "base", "lo_i", "hi_i"
};

/// The points of a sweep and a JSON object describing its design for the manifest (what
/// `analyze` needs to refuse designs the tool did not generate).
struct SweepPoints {
    std::vector<SweepPoint> points;
    std::string design_json;
};

/// Generates the design: a pure function of the spec (seed included). Throws nothing for a
/// spec parse_sweep accepted, except InputError when the design would exceed the point limit.
SweepPoints make_sweep_points(const SweepSpec& spec);

/// The largest number of points a sweep may have.
inline constexpr std::int64_t MAX_SWEEP_POINTS = 10'000'000;

/// The scenario of one point: the base settings with the point's axis values applied.
/// Throws InputError naming the sweep file, the axis and the point when a value makes the
/// scenario invalid.
std::shared_ptr<const Scenario> point_scenario(const SweepSpec& spec, const SweepPoint& point);

/// The run plan of one point (same seed, replications and policies for every point: common
/// random numbers). Throws InputError as point_scenario, or naming [sweep] policies.
RunPlan point_plan(const SweepSpec& spec, const SweepPoint& point);

/// Validates every point (in parallel), and the kept metrics and the heatmap metric against
/// the metrics of summary.csv. Throws the InputError of the lowest-numbered bad point.
void validate_sweep_points(const SweepSpec& spec, const SweepPoints& points);

/// The Sobol' sequence of Joe and Kuo (2008) with direction numbers new-joe-kuo-6.21201,
/// as 32-bit integers (divide by 2^32): point `index` (Gray-code order, point 0 is all
/// zeros) in dimensions 0 .. dims-1. At most SOBOL_MAX_DIMENSIONS dimensions.
std::vector<std::uint32_t> sobol_point(std::uint64_t index, std::size_t dims);
inline constexpr std::size_t SOBOL_MAX_DIMENSIONS = 40;

}  // namespace stopscan
