// Errors that reach the user. The library never exits: it throws, and `main` maps the
// exception to one line on stderr and an exit code (0 ok, 1 internal, 2 bad input).
#pragma once

#include <stdexcept>
#include <string>

namespace stopscan {

/// Bad input from a scenario file, a `--set` override, a CLI flag or a data file. Its
/// message is one line: `SOURCE: KEY = VALUE: PROBLEM` (or `SOURCE: PROBLEM` when no key
/// applies), where PROBLEM says what was wrong and what is allowed. Maps to exit code 2.
class InputError : public std::runtime_error {
public:
    /// An error about one key (or CLI flag) and the value it was given.
    InputError(std::string source, std::string key, std::string value, std::string problem);
    /// An error about a whole file or command line.
    InputError(std::string source, std::string problem);

    const std::string& source() const noexcept { return source_; }
    const std::string& key() const noexcept { return key_; }

private:
    std::string source_;
    std::string key_;
};

/// A failure that is not the user's fault (I/O on the output directory, a broken
/// invariant). Maps to exit code 1.
class InternalError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace stopscan
