// libFuzzer target: sweep file text -> parse_sweep (sections, keys, axes, design, the base
// scenario with its [set] overrides validated), then, for a design of at most MAX_POINTS
// points, make_sweep_points and validate_sweep_points (every point's scenario and run plan,
// the kept metrics). InputError is the only accepted way to refuse an input, and its message
// must be one line.
//
// The base scenario: parse_sweep reads `[sweep] scenario = FILE` from disk, relative to the
// directory of the sweep file's path, and uses the embedded default scenario when the key is
// absent. The input is parsed as if it were STOPSCAN_SOURCE_DIR/scenarios/sweeps/fuzz.ini (an
// absolute path fixed at build time; the file itself need not exist), so the shipped sweeps'
// `scenario = ../default.ini` resolves to the shipped scenarios/default.ini whatever the
// working directory (project root, build dir, CI). Inputs that name /dev, /proc or /sys are
// skipped: reading a device or a pipe (/dev/zero, /dev/stdin) blocks or never ends, which is
// the operating system's behaviour, not a bug of the parser (and `stopscan run /dev/stdin` is
// a legitimate use).
//
// Cost, measured under ASan: parsing takes a few milliseconds, generating a point a few
// microseconds, validating one point (its scenario and run plan) about 8 ms; and
// validate_sweep_points ends with the closed-form expectation of point 0 to list the metrics
// of summary.csv, about 3 ms per cell of the scenario (0.5 s for the default scenario's 150
// cells, 6 s for rjn-2022's 1200). So a design's point count is taken from the spec (grid:
// product of the axes' value counts; lhs: points; sobol: points x (axes + 2); morris:
// trajectories x (axes + 1); oat: 2 axes + 1): designs above MAX_GENERATED points are only
// parsed, and designs above MAX_VALIDATED points are generated and checked but not
// validated. A design that is validated goes through validate_sweep_points when its scenario
// has at most MAX_CELLS cells, and otherwise through point_plan for every point (what
// validate_sweep_points does before the metrics; it refuses only with InputError). One input
// then stays under a second. Everything runs on one thread (the machine is shared).
//
// Invariants checked on generated points: make_sweep_points throws nothing for a spec
// parse_sweep accepted (sweep.hpp; the InputError it may throw is for designs above
// MAX_SWEEP_POINTS, far above MAX_GENERATED), the count is the design's, ids are 0, 1, ...
// and every point has one value per axis.
#include <oneapi/tbb/global_control.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "stopscan/error.hpp"
#include "stopscan/sweep.hpp"

namespace {

constexpr std::int64_t MAX_GENERATED = 2000;
constexpr std::int64_t MAX_VALIDATED = 32;
constexpr std::size_t MAX_CELLS = 200;

const std::string SWEEP_PATH = std::string(STOPSCAN_SOURCE_DIR) + "/scenarios/sweeps/fuzz.ini";

// The number of points make_sweep_points generates for `spec` (sweep.hpp, SweepDesign).
std::int64_t design_points(const stopscan::SweepSpec& spec) {
    const auto k = static_cast<std::int64_t>(spec.axes.size());
    switch (spec.design) {
        case stopscan::SweepDesign::grid: {
            std::int64_t total = 1;
            for (const auto& axis : spec.axes) {
                total *= static_cast<std::int64_t>(axis.grid_values().size());
                if (total > stopscan::MAX_SWEEP_POINTS) break;
            }
            return total;
        }
        case stopscan::SweepDesign::lhs:
            return spec.samples;
        case stopscan::SweepDesign::sobol:
            return spec.samples * (k + 2);
        case stopscan::SweepDesign::morris:
            return spec.trajectories * (k + 1);
        case stopscan::SweepDesign::oat:
            return 2 * k + 1;
    }
    stopscan::fuzz::finding("unknown design");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const tbb::global_control one_thread(tbb::global_control::max_allowed_parallelism, 1);
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (const char* device : {"/dev", "/proc", "/sys"})
        if (text.find(device) != std::string_view::npos) return 0;
    stopscan::SweepSpec spec;
    try {
        spec = stopscan::parse_sweep(text, SWEEP_PATH);
    } catch (const stopscan::InputError& e) {
        stopscan::fuzz::check_one_line(e.what());
        return 0;
    }
    const std::int64_t expected = design_points(spec);
    if (expected < 1 || expected > stopscan::MAX_SWEEP_POINTS)
        stopscan::fuzz::finding("parse_sweep accepted a " + std::string(design_name(spec.design)) +
                                " design of " + std::to_string(expected) + " points");
    if (expected > MAX_GENERATED) return 0;
    stopscan::SweepPoints points;
    try {
        points = stopscan::make_sweep_points(spec);
    } catch (const std::exception& e) {
        stopscan::fuzz::finding(std::string("make_sweep_points threw for an accepted spec: ") +
                                e.what());
    }
    if (static_cast<std::int64_t>(points.points.size()) != expected)
        stopscan::fuzz::finding(std::string(design_name(spec.design)) + ": " +
                                std::to_string(points.points.size()) + " points, expected " +
                                std::to_string(expected));
    for (std::size_t i = 0; i < points.points.size(); ++i) {
        const auto& point = points.points[i];
        if (point.id != static_cast<std::int64_t>(i) || point.values.size() != spec.axes.size())
            stopscan::fuzz::finding("point " + std::to_string(i) + " has id " +
                                    std::to_string(point.id) + " and " +
                                    std::to_string(point.values.size()) + " values for " +
                                    std::to_string(spec.axes.size()) + " axes");
    }
    if (expected > MAX_VALIDATED) return 0;
    std::size_t cells = 1;
    try {
        const auto scenario = stopscan::point_scenario(spec, points.points.front());
        for (const auto& dimension : scenario->dimensions)
            cells = std::min(cells * dimension.categories.size(), MAX_CELLS + 1);
    } catch (const stopscan::InputError& e) {
        stopscan::fuzz::check_one_line(e.what());
        return 0;  // point 0 is the lowest-numbered bad point: validate_sweep_points's error
    }
    try {
        if (cells <= MAX_CELLS) {
            stopscan::validate_sweep_points(spec, points);
        } else {
            for (const auto& point : points.points) (void)stopscan::point_plan(spec, point);
        }
    } catch (const stopscan::InputError& e) {
        stopscan::fuzz::check_one_line(e.what());
    }
    return 0;
}
