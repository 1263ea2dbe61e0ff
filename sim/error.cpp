#include "stopscan/error.hpp"

#include <utility>

namespace stopscan {

namespace {

// An error is one line whatever the input held: control characters are shown escaped.
std::string one_line(const std::string& full) {
    // Lists of allowed values can be huge (a million categories); keep the line readable.
    constexpr std::size_t MAX_LINE = 2000;
    const std::string text =
        full.size() <= MAX_LINE
            ? full
            : full.substr(0, MAX_LINE) + "... (" + std::to_string(full.size()) + " characters)";
    std::string out;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (byte < 0x20 || byte == 0x7f) {
            static constexpr char HEX[] = "0123456789abcdef";
            out += "\\x";
            out += HEX[byte >> 4];
            out += HEX[byte & 15];
        } else {
            out += c;
        }
    }
    return out;
}

std::string with_key(const std::string& source, const std::string& key,
                     const std::string& raw_value, const std::string& problem) {
    // A pasted megabyte must not become a megabyte of error message.
    constexpr std::size_t MAX_VALUE = 200;
    const std::string value = raw_value.size() <= MAX_VALUE
                                  ? raw_value
                                  : raw_value.substr(0, MAX_VALUE) + "... (" +
                                        std::to_string(raw_value.size()) + " characters)";
    std::string line = source;
    line.append(": ").append(key);
    if (!value.empty()) line.append(" = ").append(value);
    return one_line(line.append(": ").append(problem));
}

}  // namespace

InputError::InputError(std::string source, std::string key, std::string value, std::string problem)
    : std::runtime_error(with_key(source, key, value, problem)),
      source_(std::move(source)),
      key_(std::move(key)) {}

InputError::InputError(std::string source, std::string problem)
    : std::runtime_error(one_line(std::string(source).append(": ").append(problem))),
      source_(std::move(source)) {}

}  // namespace stopscan
