// A fresh directory under the system temporary directory, removed with its contents: the
// scratch space of the command-line tests, so that no test writes into the source tree.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace stopscan::test {

class TempDir {
public:
    TempDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "stopscan-test-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr)
            throw std::runtime_error("mkdtemp failed for " + pattern);
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }

    /// A path inside the directory that does not exist yet.
    std::filesystem::path fresh(const std::string& stem) {
        std::filesystem::path p;
        do p = path_ / (stem + "-" + std::to_string(counter_++));
        while (std::filesystem::exists(p));
        return p;
    }

    /// Writes `text` byte for byte to a new file and returns its path.
    std::string write(const std::string& name, const std::string& text) {
        const std::filesystem::path p = path_ / name;
        std::ofstream file(p, std::ios::binary | std::ios::trunc);
        file << text;
        file.close();
        if (!file) throw std::runtime_error("cannot write fixture " + p.string());
        return p.string();
    }

private:
    std::filesystem::path path_;
    int counter_ = 0;
};

}  // namespace stopscan::test
