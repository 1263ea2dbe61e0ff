// libFuzzer target: the command line of `stopscan validate`, run in-process by run_cli.
// Input: an optional scenario text, then a NUL byte, then arguments one per line; without a
// NUL byte the whole input is arguments and the scenario is the embedded default. The scenario
// is written to a private temporary directory (removed at exit) and always passed first, so
// the command is `stopscan validate TMP/fuzz.ini ARGS...`: it reads that file only, writes
// nothing and runs no simulation. A bad input must give exit code 2 and one line on stderr;
// exit code 1 (an internal error or an exception other than InputError) is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "stopscan/cli.hpp"
#include "stopscan/scenario.hpp"

namespace {

std::filesystem::path make_scratch_dir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "stopscan-fuzz-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) stopscan::fuzz::finding("mkdtemp failed");
    return pattern;
}

const std::filesystem::path& scratch_dir() {
    static const std::filesystem::path dir = make_scratch_dir();
    // Registered after `dir` is built, so it runs before `dir` is destroyed.
    static const bool cleanup = [] {
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(scratch_dir(), ec);
        });
        return true;
    }();
    (void)cleanup;
    return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto nul = input.find('\0');
    const std::string_view scenario =
        nul == std::string_view::npos ? stopscan::default_scenario_text() : input.substr(0, nul);
    const std::string_view rest = nul == std::string_view::npos ? input : input.substr(nul + 1);

    const auto file = (scratch_dir() / "fuzz.ini").string();
    {
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        out.write(scenario.data(), static_cast<std::streamsize>(scenario.size()));
        if (!out) stopscan::fuzz::finding("cannot write " + file);
    }
    std::vector<std::string> args = {"stopscan", "validate", file};
    for (std::size_t start = 0; start < rest.size() && args.size() < 32;) {
        auto end = rest.find('\n', start);
        if (end == std::string_view::npos) end = rest.size();
        args.emplace_back(rest.substr(start, end - start));
        start = end + 1;
    }
    std::ostringstream out;
    std::ostringstream err;
    const int code = stopscan::run_cli(args, out, err);
    const std::string message = err.str();
    if (code == stopscan::EXIT_OK) {
        if (!message.empty()) stopscan::fuzz::finding("exit 0 with stderr: " + message);
    } else if (code == stopscan::EXIT_BAD_INPUT) {
        if (message.rfind("stopscan: error: ", 0) != 0 || message.back() != '\n')
            stopscan::fuzz::finding("exit 2 without a 'stopscan: error:' line: " + message);
        stopscan::fuzz::check_one_line(message.substr(0, message.size() - 1));
    } else {
        stopscan::fuzz::finding("exit " + std::to_string(code) + ": " + message);
    }
    return 0;
}
