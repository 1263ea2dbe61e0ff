// Running a sweep's points and writing what they give (docs/sweeps.md): one directory per
// point, committed atomically (written under a temporary name, then renamed), so a sweep
// killed at any moment loses no finished point; then sweep.csv, effects.csv, manifest.json,
// report.html and, for 2-axis grids, heatmap PNGs, assembled from the point directories, so
// a resumed sweep and a merge of shards give the same bytes as one uninterrupted run.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "stopscan/summary.hpp"
#include "stopscan/sweep.hpp"

namespace stopscan {

/// Shard `index` of `count` (1-based, as Slurm's `--array=1-N` numbers its tasks) holds the
/// points whose id satisfies id mod count = index - 1: round robin, so that a grid whose
/// cost grows along an axis is spread evenly.
struct SweepShard {
    std::int64_t index = 1;
    std::int64_t count = 1;
    bool owns(std::int64_t point) const noexcept { return point % count == index - 1; }
    /// Parses "I/N" with 1 <= I <= N <= 100000. Throws InputError naming --shard.
    static SweepShard parse(const std::string& text);
};

/// The name of a point's directory under DIR/points: six digits or more, "000017".
std::string point_directory_name(std::int64_t id);

/// Runs one point: its plan, the engine (parallel inside when called alone) and the summary.
Summary run_sweep_point(const SweepSpec& spec, const SweepPoint& point);

/// The exact bytes of a point's directory: point.csv (point_id and axis values), summary.csv
/// and effects.csv (the kept metrics only). A pure function of the point, so a point run in
/// another process (stopscan-mpi, docs/cluster.md) is committed as the same bytes.
struct SweepPointFiles {
    std::string point_csv;
    std::string summary_csv;
    std::string effects_csv;
};

/// The files of a point's directory, from its summary. Throws nothing but std::bad_alloc.
SweepPointFiles sweep_point_files(const SweepSpec& spec, const SweepPoint& point,
                                  const Summary& summary);

/// Writes `files` into `points_dir`/NNNNNN (NNNNNN from `id`) atomically: a temporary
/// directory renamed into place. Throws InternalError on I/O failure.
void commit_sweep_point(const std::string& points_dir, std::int64_t id,
                        const SweepPointFiles& files);

/// Writes a point's files (sweep_point_files) into `points_dir`/NNNNNN, atomically
/// (commit_sweep_point). Throws InternalError on I/O failure.
void write_sweep_point(const std::string& points_dir, const SweepSpec& spec,
                       const SweepPoint& point, const Summary& summary);

/// Runs the points `todo` (ids) and writes each as it finishes. `across_points`: a oneTBB
/// parallel_for over the points, each point's engine nested in it (oneTBB shares one thread
/// pool between the levels, so nothing is oversubscribed); otherwise the points one after
/// another, each engine parallel. `done` is called after each point, one call at a time.
void run_sweep_points(const SweepSpec& spec, const SweepPoints& points,
                      const std::vector<std::int64_t>& todo, const std::string& points_dir,
                      bool across_points, const std::function<void(std::int64_t)>& done);

/// manifest.json of a sweep: version, commit, the sweep file's text, the base scenario's
/// hash, the fixed overrides, the design (with what `analyze` needs: Morris's trajectories
/// and levels, Saltelli's blocks), seed, replications, policies, kept metrics, axes and
/// their grid values, the number of points, the shard, and sweep_sha256, a hash of all of
/// it but the paths and the shard. No wall-clock time: a resumed or merged sweep writes the
/// same bytes.
std::string sweep_manifest_json(const SweepSpec& spec, const SweepPoints& points,
                                const std::optional<SweepShard>& shard);

/// The manifest's "shard" line for `shard` (null when unsharded), as written.
std::string sweep_shard_line(const std::optional<SweepShard>& shard);

/// What a sweep directory's manifest.json says about it.
struct SweepDirectoryInfo {
    std::string manifest;  ///< the exact text
    std::string sweep_sha256;
    std::optional<SweepShard> shard;
    std::int64_t points = 0;
};

/// Reads DIR/manifest.json of a sweep. Throws InputError naming the directory when there is
/// none or it is not a sweep's.
SweepDirectoryInfo read_sweep_directory(const std::string& directory);
/// The same, from a manifest's text; `where` names it in errors.
SweepDirectoryInfo parse_sweep_manifest(const std::string& text, const std::string& where);

/// Removes what a sweep writes at the top of `directory` (manifest.json, sweep.csv,
/// effects.csv, report.html, heatmap-*.png, points/), and nothing else.
void remove_sweep_outputs(const std::string& directory);

/// Writes sweep.csv, effects.csv, report.html and heatmap-POLICY.png (2-axis grids) into
/// `out`, from the manifest text and point_dirs[i], the directory of point i. Throws
/// InternalError on I/O failure.
void assemble_sweep(const std::string& out, const std::string& manifest,
                    const std::vector<std::string>& point_dirs);

/// `stopscan merge`: checks that `shards` are the shards of one sweep (same sweep_sha256 and
/// shard count, each shard once, every point present exactly once) and writes into `out`
/// the points, the unsharded manifest and the assembled outputs: byte for byte what the
/// unsharded sweep writes. Throws InputError naming the directory and what is wrong, before
/// anything is written; with `replace`, then removes the sweep outputs `out` holds. Returns
/// the number of points.
std::int64_t merge_sweep_shards(const std::vector<std::string>& shards, const std::string& out,
                                bool replace);

}  // namespace stopscan
