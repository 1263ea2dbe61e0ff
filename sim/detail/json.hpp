// A small JSON reader for the files stopscan writes itself (a sweep's manifest.json): objects,
// arrays, strings with escapes, numbers, true, false, null. Not a general-purpose parser:
// numbers are kept as their text, and \u escapes outside ASCII are refused.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace stopscan::detail {

/// One JSON value.
struct JsonValue {
    enum Kind { null, boolean, number, string, array, object } kind = null;
    std::string text;  ///< string: the decoded text; number: the literal; boolean: true/false
    std::vector<JsonValue> items;  ///< array
    // Not std::pair<std::string, JsonValue>: a pair needs JsonValue complete where it is
    // named, and clang rejects it here (a vector of an incomplete class is allowed).
    struct Member;
    std::vector<Member> members;  ///< object, in file order

    /// The member called `name`, or nullptr (also when this is not an object).
    const JsonValue* find(const std::string& name) const;
};

/// One member of an object.
struct JsonValue::Member {
    std::string first;  ///< the name
    JsonValue second;   ///< the value
};

/// Parses `text`. Throws std::invalid_argument naming the byte offset of a syntax error.
JsonValue parse_json(std::string_view text);

}  // namespace stopscan::detail
