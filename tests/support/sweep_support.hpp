// Helpers of the sweep tests: the command line in-process, and a directory tree as a map of
// relative paths to bytes, for byte-for-byte comparisons.
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "stopscan/cli.hpp"

namespace stopscan::test {

struct SweepCliResult {
    int code = -1;
    std::string out;
    std::string err;
};

/// Runs `stopscan ARGS...` in-process.
inline SweepCliResult cli(std::vector<std::string> args) {
    args.insert(args.begin(), "stopscan");
    std::ostringstream out, err;
    SweepCliResult r;
    r.code = stopscan::run_cli(args, out, err);
    r.out = out.str();
    r.err = err.str();
    return r;
}

inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream file(p, std::ios::binary);
    if (!file) throw std::runtime_error("cannot read " + p.string());
    return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

/// Every file under `root`, by relative path, with its bytes.
inline std::map<std::string, std::string> tree_of(const std::string& root) {
    std::map<std::string, std::string> files;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root))
        if (entry.is_regular_file())
            files[std::filesystem::relative(entry.path(), root).string()] = read_file(entry.path());
    return files;
}

}  // namespace stopscan::test
