#include "stopscan/settings.hpp"

#include <sys/stat.h>
#include <algorithm>
#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "stopscan/error.hpp"

namespace po = boost::program_options;

namespace stopscan {

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t");
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(" \t");
    return text.substr(first, last - first + 1);
}

std::vector<std::string> split_list(std::string_view text) {
    std::vector<std::string> out;
    if (trim(text).empty()) return out;
    // Commas inside parentheses belong to a distribution's arguments: "Black:uniform(3, 18)".
    std::size_t start = 0;
    int depth = 0;
    for (std::size_t i = 0; i <= text.size(); ++i) {
        if (i < text.size() && text[i] == '(') ++depth;
        if (i < text.size() && text[i] == ')') --depth;
        if (i == text.size() || (text[i] == ',' && depth <= 0)) {
            out.emplace_back(trim(text.substr(start, i - start)));
            start = i + 1;
        }
    }
    return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    // Optimal string alignment distance: a swap of two neighbouring letters ("rnu") is one
    // edit, the commonest typo.
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i)
        for (std::size_t j = 1; j <= b.size(); ++j) {
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1,
                                d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[a.size()][b.size()];
}

std::optional<std::string> nearest(std::string_view word,
                                   const std::vector<std::string>& candidates) {
    // The distance costs |word| x |candidate|: a word too long to be a typo of a name gets no
    // suggestion (a 1 MB unknown key took minutes), and since the distance is at least the
    // difference in length, candidates that the final check below would refuse are skipped.
    constexpr std::size_t LONGEST_WORD = 256;
    if (word.size() > LONGEST_WORD) return std::nullopt;
    const std::size_t limit = std::max<std::size_t>(word.size(), 3);
    std::optional<std::string> best;
    std::size_t best_distance = 0;
    for (const auto& c : candidates) {
        const auto length_gap =
            c.size() > word.size() ? c.size() - word.size() : word.size() - c.size();
        if (length_gap * 3 > limit) continue;
        const auto d = edit_distance(word, c);
        if (!best || d < best_distance) {
            best = c;
            best_distance = d;
        }
    }
    // A suggestion that rewrites more than about a third of the word is noise, not help.
    if (best && best_distance * 3 > limit) return std::nullopt;
    return best;
}

namespace {

// Editors save BOMs and CRLF line endings; Program_options would take "\r" and "\xEF\xBB\xBF"
// as part of keys and values, so normalise first.
std::string normalise_text(std::string_view text) {
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] == '\n')) continue;
        out.push_back(text[i]);
    }
    // "[ stops ]" means [stops]: Program_options would keep the spaces in the key.
    std::string tidy;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        const auto body = trim(line);
        if (body.size() >= 2 && body.front() == '[' && body.find(']') != std::string_view::npos &&
            body.find('#') == std::string_view::npos && body.back() == ']')
            tidy += "[" + std::string(trim(body.substr(1, body.size() - 2))) + "]\n";
        else
            tidy += line + "\n";
    }
    return tidy;
}

// Program_options reports a bad line without its number; find the number ourselves so the
// message can point at it, and say what a line may look like.
void check_line_syntax(const std::string& text, const std::string& source) {
    std::istringstream lines(text);
    std::string line;
    int number = 0;
    while (std::getline(lines, line)) {
        ++number;
        if (line.find('\0') != std::string::npos)
            throw InputError(source + ":" + std::to_string(number),
                             "binary data: a scenario must be a text file");
        const std::string uncommented = line.substr(0, line.find('#'));
        const auto body = trim(uncommented);
        if (body.empty()) continue;
        if (body.front() == '[') {
            if (body.back() != ']' || body.size() < 3)
                throw InputError(
                    source + ":" + std::to_string(number),
                    "malformed section header '" + std::string(body) + "': write [section]");
            continue;
        }
        const auto eq = body.find('=');
        if (eq == std::string_view::npos || trim(body.substr(0, eq)).empty())
            throw InputError(
                source + ":" + std::to_string(number),
                "'" + std::string(body) + "' is not a 'key = value' line or a [section] header");
    }
}

// Maps each full key to the lines it is on (in order: a key may be given twice), following
// [section] headers as Program_options does.
std::map<std::string, std::vector<int>> key_lines(const std::string& text) {
    std::map<std::string, std::vector<int>> lines_of;
    std::istringstream lines(text);
    std::string line;
    std::string section;
    int number = 0;
    while (std::getline(lines, line)) {
        ++number;
        const std::string uncommented = line.substr(0, line.find('#'));
        const auto body = trim(uncommented);
        if (body.empty()) continue;
        if (body.front() == '[') {
            section = std::string(trim(body.substr(1, body.size() - 2)));
            continue;
        }
        const auto key = std::string(trim(body.substr(0, body.find('='))));
        lines_of[section.empty() ? key : section + "." + key].push_back(number);
    }
    return lines_of;
}

}  // namespace

Settings Settings::parse_ini(std::string_view raw_text, const std::string& file) {
    std::vector<std::string> including;
    return parse_ini(raw_text, file, including);
}

Settings Settings::parse_ini(std::string_view raw_text, const std::string& file,
                             std::vector<std::string>& including) {
    Settings settings;
    settings.source_ = file;
    const std::string source = file.empty() ? "default scenario" : file;
    settings.text_ = std::string(raw_text);
    const std::string text = normalise_text(raw_text);
    check_line_syntax(text, source);
    const auto lines_of = key_lines(text);

    std::istringstream in(text);
    po::options_description no_declared_options;  // the schema is checked by Scenario
    po::parsed_options parsed(&no_declared_options);
    try {
        parsed = po::parse_config_file(in, no_declared_options, /*allow_unregistered=*/true);
    } catch (const po::error& e) {
        throw InputError(source, e.what());
    }
    std::map<std::string, std::size_t> occurrence;
    std::vector<std::pair<std::string, std::string>> includes;  // path, origin
    for (const auto& option : parsed.options) {
        const auto lines = lines_of.find(option.string_key);
        const std::size_t nth = occurrence[option.string_key]++;
        const int line =
            lines != lines_of.end() && nth < lines->second.size() ? lines->second[nth] : 0;
        const std::string origin = source + (line > 0 ? ":" + std::to_string(line) : "");
        const std::string value =
            option.value.empty() ? "" : std::string(trim(option.value.front()));
        if (option.string_key == "include") {
            const auto paths = split_list(value);
            if (paths.empty())
                throw InputError(origin, "include", value, "empty: give the file to include");
            for (const auto& path : paths) includes.emplace_back(path, origin);
            continue;
        }
        auto [it, inserted] = settings.values_.emplace(option.string_key, Setting{value, origin});
        if (!inserted)
            throw InputError(origin, option.string_key, value,
                             "key given twice (first at " + it->second.origin + "): give it once");
    }
    for (const auto& [path, origin] : includes) settings.merge_include(path, origin, including);
    return settings;
}

// An included file's keys join the including file's as if written there: a key given in
// both is an error, as a key given twice in one file is, so that a calibrated fragment can
// never be silently shadowed by an old value (docs/scenario.md, "Including files").
void Settings::merge_include(const std::string& path, const std::string& origin,
                             std::vector<std::string>& including) {
    namespace fs = std::filesystem;
    constexpr std::size_t MAX_DEPTH = 16;
    const fs::path base = source_.empty() ? fs::current_path() : fs::path(source_).parent_path();
    const fs::path target = fs::path(path).is_absolute() ? fs::path(path) : base / path;
    std::error_code ec;
    const auto canonical = fs::weakly_canonical(target, ec).string();
    if (including.empty() && !source_.empty())
        including.push_back(fs::weakly_canonical(source_, ec).string());
    if (std::find(including.begin(), including.end(), canonical) != including.end()) {
        std::string chain;
        for (const auto& f : including) chain += fs::path(f).filename().string() + " -> ";
        throw InputError(origin, "include", path,
                         "include cycle: " + chain + fs::path(canonical).filename().string() +
                             ": a file may not include itself, directly or not");
    }
    if (including.size() >= MAX_DEPTH)
        throw InputError(origin, "include", path,
                         "includes nested more than 16 deep: flatten the scenario");
    if (!fs::exists(target, ec))
        throw InputError(origin, "include", path,
                         "no such file (looked for " + target.string() +
                             "): paths are relative to the including file");
    including.push_back(canonical);
    const Settings inner = read_ini_file(target.string(), including);
    including.pop_back();
    for (const auto& [key, setting] : inner.values_) {
        auto [it, inserted] = values_.emplace(key, setting);
        if (!inserted)
            throw InputError(
                it->second.origin, key, it->second.value,
                "key also given in the included file (" + setting.origin + "): give it once");
    }
    text_ += "\n# stopscan: included " + path + "\n" + inner.text_;
}

Settings Settings::read_ini_file(const std::string& path) {
    std::vector<std::string> including;
    return read_ini_file(path, including);
}

Settings Settings::read_ini_file(const std::string& path, std::vector<std::string>& including) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0)
        throw InputError(path, "cannot read the scenario file: no such file");
    if (S_ISDIR(info.st_mode)) throw InputError(path, "is a directory: give a scenario .ini file");
    // A scenario is a few kilobytes; refuse anything that could only be a mistake.
    constexpr off_t MAX_BYTES = 16 * 1024 * 1024;
    if (info.st_size > MAX_BYTES)
        throw InputError(path, "file is " + std::to_string(info.st_size) +
                                   " bytes: a scenario may be at most 16 MiB");
    std::ifstream file(path, std::ios::binary);
    if (!file) throw InputError(path, "cannot read the scenario file: permission denied");
    std::ostringstream content;
    content << file.rdbuf();
    return parse_ini(content.str(), path, including);
}

void Settings::apply_override(const std::string& assignment) {
    const auto eq = assignment.find('=');
    const auto key = eq == std::string::npos ? std::string_view{}
                                             : trim(std::string_view(assignment).substr(0, eq));
    if (key.empty())
        throw InputError("--set", "'" + assignment + "' is not of the form section.key=value");
    const auto value = trim(std::string_view(assignment).substr(eq + 1));
    values_[std::string(key)] = Setting{std::string(value), "--set"};
}

const Setting* Settings::find(const std::string& key) const {
    const auto it = values_.find(key);
    return it == values_.end() ? nullptr : &it->second;
}

}  // namespace stopscan
