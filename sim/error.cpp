#include "stopscan/error.hpp"

#include <utility>

namespace stopscan {

namespace {

std::string with_key(const std::string& source, const std::string& key, const std::string& value,
                     const std::string& problem) {
    std::string line = source;
    line.append(": ").append(key);
    if (!value.empty()) line.append(" = ").append(value);
    return line.append(": ").append(problem);
}

}  // namespace

InputError::InputError(std::string source, std::string key, std::string value,
                       std::string problem)
    : std::runtime_error(with_key(source, key, value, problem)),
      source_(std::move(source)),
      key_(std::move(key)) {}

InputError::InputError(std::string source, std::string problem)
    : std::runtime_error(std::string(source).append(": ").append(problem)), source_(std::move(source)) {}

}  // namespace stopscan
