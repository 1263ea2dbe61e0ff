// Raw `section.key = value` settings of a scenario, before any meaning is given to them.
//
// INI text is read with Boost.Program_options (`[section]` + `key = v` is `section.key`);
// `--set section.key=value` overrides replace file values (the command line wins, as
// Program_options' "first store wins" rule intends). Each setting remembers where it came
// from, so errors can name the file and line or the override.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stopscan {

/// One raw setting and its origin.
struct Setting {
    std::string value;
    std::string origin;  ///< "scenarios/x.ini:12" or "--set"
};

/// All settings of a scenario, keyed by their full dotted name.
class Settings {
public:
    /// Parses INI text. `source` names the file in errors. Accepts a UTF-8 byte-order mark,
    /// CRLF line endings, tabs and trailing spaces. Throws InputError on a syntax error
    /// (naming the line) and on a key given twice.
    static Settings parse_ini(std::string_view text, const std::string& source);

    /// Reads and parses a file. Throws InputError if it cannot be read or is not text.
    static Settings read_ini_file(const std::string& path);

    /// Applies `key=value` from the command line. Throws InputError if the text is not of
    /// that form.
    void apply_override(const std::string& assignment);

    /// Replaces the value of an existing key, keeping where it came from (for the drawn
    /// values of uncertain parameters).
    void set(const std::string& key, const std::string& value) { values_.at(key).value = value; }

    /// The setting for `key`, if any.
    const Setting* find(const std::string& key) const;

    /// All keys in sorted order.
    const std::map<std::string, Setting>& all() const noexcept { return values_; }

    /// The file the settings came from ("" for the embedded default scenario).
    const std::string& source() const noexcept { return source_; }

    /// The exact bytes the settings were parsed from (for the manifest's hash).
    const std::string& text() const noexcept { return text_; }

private:
    std::map<std::string, Setting> values_;
    std::string source_;
    std::string text_;
};

/// Splits a comma-separated list and trims each element; an empty string gives no element.
std::vector<std::string> split_list(std::string_view text);

/// Trims spaces and tabs from both ends.
std::string_view trim(std::string_view text);

/// Optimal string alignment distance (Levenshtein plus transpositions), for "did you mean".
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate nearest to `word`, if one is close enough to be a plausible typo.
std::optional<std::string> nearest(std::string_view word,
                                   const std::vector<std::string>& candidates);

}  // namespace stopscan
