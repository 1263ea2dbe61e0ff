#include "stopscan/foi_table.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

#include "stopscan/error.hpp"
#include "stopscan/settings.hpp"

namespace stopscan {

namespace {

// The largest count accepted: far above any stop count, far below int64 overflow when a
// million of them are summed.
constexpr std::int64_t MAX_COUNT = 1'000'000'000'000;

const char* const SUPPRESSION_MARKERS = "'<N', '*', '-', '[c]', 'c', '[x]' or 'x'";

struct Record {
    std::vector<std::string> fields;
    std::size_t line = 0;
};

std::string at_line(const std::string& source, std::size_t line) {
    return source + ":" + std::to_string(line);
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool blank_or_comment(std::string_view line) {
    const auto t = trim(line);
    return t.empty() || t == "\r" || t.front() == '#';
}

// RFC 4180 records with line numbers. Quoted fields may hold commas, doubled quotes and
// line breaks; unquoted fields are trimmed. Blank lines and lines starting with '#'
// (outside quotes) are skipped, because FOI answers pasted into a file often carry notes.
std::vector<Record> read_records(std::string_view text, const std::string& source) {
    if (text.size() > MAX_TABLE_BYTES)
        throw InputError(source, "input is " + std::to_string(text.size()) +
                                     " bytes: a table may be at most 64 MiB (a resource "
                                     "limit against reading a wrong file; split the table)");
    if (text.size() >= 2 &&
        ((text[0] == '\xFF' && text[1] == '\xFE') || (text[0] == '\xFE' && text[1] == '\xFF')))
        throw InputError(source, "the file is UTF-16 text: save it as UTF-8 CSV");
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    {
        std::size_t line = 1;
        for (const char c : text) {
            const auto byte = static_cast<unsigned char>(c);
            if (c == '\n') ++line;
            if ((byte < 0x20 && c != '\n' && c != '\r' && c != '\t') || byte == 0x7f) {
                static constexpr char HEX[] = "0123456789abcdef";
                throw InputError(at_line(source, line), std::string("binary data (byte 0x") +
                                                            HEX[byte >> 4] + HEX[byte & 15] +
                                                            "): give a CSV text file (UTF-8)");
            }
        }
    }

    std::vector<Record> records;
    std::size_t pos = 0;
    std::size_t line = 1;
    const std::size_t n = text.size();
    while (pos < n) {
        const std::size_t eol = text.find('\n', pos);
        const std::size_t line_end = eol == std::string_view::npos ? n : eol;
        if (blank_or_comment(text.substr(pos, line_end - pos))) {
            pos = line_end + 1;
            ++line;
            continue;
        }
        if (records.size() >= MAX_TABLE_ROWS + 1)  // + 1 for the header
            throw InputError(source, "more than " + with_thousands(MAX_TABLE_ROWS) +
                                         " rows: a table may have at most that many (a "
                                         "resource limit; split the table)");
        Record record;
        record.line = line;
        bool end_of_record = false;
        while (!end_of_record) {
            // Skip leading blanks of the field.
            while (pos < n && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
            std::string field;
            if (pos < n && text[pos] == '"') {
                const std::size_t open_line = line;
                ++pos;
                for (;;) {
                    if (pos >= n)
                        throw InputError(at_line(source, open_line),
                                         "a quoted field is never closed: end it with '\"' "
                                         "(write a quote inside quotes as '\"\"')");
                    const char c = text[pos];
                    if (c == '"') {
                        if (pos + 1 < n && text[pos + 1] == '"') {
                            field += '"';
                            pos += 2;
                            continue;
                        }
                        ++pos;
                        break;
                    }
                    if (c == '\n') ++line;
                    if (c != '\r') field += c;
                    ++pos;
                }
                while (pos < n && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\r'))
                    ++pos;
                if (pos < n && text[pos] != ',' && text[pos] != '\n')
                    throw InputError(at_line(source, line),
                                     "text after a closing quote: a quoted field must be "
                                     "followed by ',' or the end of the line");
            } else {
                const std::size_t start = pos;
                while (pos < n && text[pos] != ',' && text[pos] != '\n') ++pos;
                field = std::string(trim(text.substr(start, pos - start)));
                if (!field.empty() && field.back() == '\r') field.pop_back();
                field = std::string(trim(field));
            }
            record.fields.push_back(std::move(field));
            if (pos >= n) {
                end_of_record = true;
            } else if (text[pos] == ',') {
                ++pos;
            } else {  // '\n'
                ++pos;
                ++line;
                end_of_record = true;
            }
        }
        records.push_back(std::move(record));
    }
    if (records.empty())
        throw InputError(source,
                         "empty file: give a header line such as 'area,dimension,category,count' "
                         "and one row per category");
    return records;
}

struct Columns {
    std::optional<std::size_t> area;
    std::size_t dimension = 0;
    std::size_t category = 0;
    std::size_t value = 0;
    std::size_t count = 0;  ///< fields per row
};

Columns read_header(const Record& header, const std::string& value_name,
                    const std::string& source) {
    const std::vector<std::string> allowed{"area", "dimension", "category", value_name};
    const std::string where = at_line(source, header.line);
    const std::string allowed_text =
        "the columns are area (optional), dimension, category, " + value_name + ", in any order";
    std::map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < header.fields.size(); ++i) {
        const std::string name = lower(trim(header.fields[i]));
        if (name.empty())
            throw InputError(where, "column " + std::to_string(i + 1) +
                                        " of the header has no name: " + allowed_text);
        if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
            const auto near = nearest(name, allowed);
            throw InputError(where, "unknown column '" + header.fields[i] + "'" +
                                        (near ? "; did you mean '" + *near + "'?" : "") + ": " +
                                        allowed_text);
        }
        if (!seen.emplace(name, i).second)
            throw InputError(where, "column '" + name + "' given twice: give it once");
    }
    Columns c;
    c.count = header.fields.size();
    for (const auto& name : {std::string("dimension"), std::string("category"), value_name}) {
        if (!seen.count(name))
            throw InputError(where, "missing column '" + name + "' in the header: " + allowed_text);
    }
    c.dimension = seen["dimension"];
    c.category = seen["category"];
    c.value = seen[value_name];
    if (seen.count("area")) c.area = seen["area"];
    return c;
}

struct Key {
    std::string area, dimension, category;
};

// Checks the field count and the key fields of one data row.
Key read_key(const Record& r, const Columns& c, const std::string& source) {
    const std::string where = at_line(source, r.line);
    if (r.fields.size() != c.count)
        throw InputError(where, "row has " + std::to_string(r.fields.size()) +
                                    " fields but the header has " + std::to_string(c.count) +
                                    ": give one value per column (quote values that "
                                    "contain commas, e.g. \"1,472\")");
    Key k;
    if (c.area) k.area = r.fields[*c.area];
    k.dimension = r.fields[c.dimension];
    k.category = r.fields[c.category];
    if (c.area && k.area.empty())
        throw InputError(where, "area", "", "empty area: give the area (force) name");
    if (k.dimension.empty())
        throw InputError(where, "dimension", "", "empty dimension: give a name such as ethnicity");
    if (k.category.empty())
        throw InputError(where, "category", "", "empty category: give a name such as Black");
    return k;
}

std::string key_text(const Key& k) {
    return (k.area.empty() ? "" : "area=" + k.area + ", ") + k.dimension + "=" + k.category;
}

// Rejects a key seen before, naming both lines.
void check_duplicate(std::map<std::tuple<std::string, std::string, std::string>, std::size_t>& seen,
                     const Key& k, std::size_t line, const std::string& source) {
    const auto [it, inserted] =
        seen.emplace(std::make_tuple(k.area, k.dimension, k.category), line);
    if (!inserted)
        throw InputError(at_line(source, line),
                         "duplicate row for " + key_text(k) + " (first at " +
                             at_line(source, it->second) +
                             "): give each (area, dimension, category) once");
}

// Digits with optional thousands separators in groups of three ("1,472", "12,345,678").
// Returns the digits without separators, or nullopt if the grouping is wrong.
std::optional<std::string> strip_thousands(std::string_view s) {
    if (s.empty()) return std::nullopt;
    if (s.find(',') == std::string_view::npos) return std::string(s);
    const auto first = s.find(',');
    if (first == 0 || first > 3) return std::nullopt;
    std::string out(s.substr(0, first));
    std::size_t pos = first;
    while (pos < s.size()) {
        if (s[pos] != ',' || pos + 4 > s.size()) return std::nullopt;
        const auto group = s.substr(pos + 1, 3);
        if (group.find(',') != std::string_view::npos) return std::nullopt;
        out += group;
        pos += 4;
    }
    return out;
}

bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<std::int64_t> parse_whole(std::string_view s) {
    const auto digits = strip_thousands(s);
    if (!digits || !all_digits(*digits)) return std::nullopt;
    std::int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(digits->data(), digits->data() + digits->size(), v);
    if (ec != std::errc{} || ptr != digits->data() + digits->size() || v > MAX_COUNT)
        return std::nullopt;
    return v;
}

CountInterval parse_count(const std::string& raw, const SuppressionOptions& sup,
                          const std::string& where) {
    const std::string allowed =
        "give a whole number >= 0 (thousands separators allowed when "
        "quoted: \"1,472\"), a range such as 1-4, or a suppressed "
        "cell: " +
        std::string(SUPPRESSION_MARKERS);
    if (raw.empty()) throw InputError(where, "count", "", "empty count: " + allowed);
    const std::string m = lower(raw);
    if (m == "*" || m == "-" || m == "[c]" || m == "c" || m == "[x]" || m == "x")
        return {sup.min_suppressed, sup.threshold - 1};
    std::string_view v(m);
    if (v.front() == '<') {
        v.remove_prefix(1);
        bool or_equal = false;
        if (!v.empty() && v.front() == '=') {
            or_equal = true;
            v.remove_prefix(1);
        }
        v = trim(v);
        const auto bound = parse_whole(v);
        if (!bound || (!or_equal && *bound < 1))
            throw InputError(where, "count", raw,
                             "a suppressed cell '<N' needs a whole number N >= 1: " + allowed);
        const std::int64_t hi = or_equal ? *bound : *bound - 1;
        if (hi < sup.min_suppressed)
            throw InputError(where, "count", raw,
                             "this suppressed cell cannot hold the smallest suppressed count (" +
                                 std::to_string(sup.min_suppressed) + "): lower it");
        return {sup.min_suppressed, hi};
    }
    if (v.front() == '-' || v.front() == '+') {
        if (v.front() == '-' && parse_whole(v.substr(1)))
            throw InputError(where, "count", raw, "negative count: " + allowed);
        throw InputError(where, "count", raw, "not a whole number: " + allowed);
    }
    if (const auto dash = v.find('-'); dash != std::string_view::npos) {
        const auto lo = parse_whole(trim(v.substr(0, dash)));
        const auto hi = parse_whole(trim(v.substr(dash + 1)));
        if (!lo || !hi || *lo > *hi)
            throw InputError(where, "count", raw,
                             "not a range of whole numbers lo-hi with lo <= hi: " + allowed);
        return {*lo, *hi};
    }
    if (const auto whole = parse_whole(v)) return {*whole, *whole};
    if (const auto digits = strip_thousands(v); digits && !digits->empty()) {
        double d = 0;
        const auto [ptr, ec] = std::from_chars(digits->data(), digits->data() + digits->size(), d);
        if (ec == std::errc{} && ptr == digits->data() + digits->size() && std::isfinite(d)) {
            if (d > static_cast<double>(MAX_COUNT))
                throw InputError(where, "count", raw,
                                 "count too large: at most " + with_thousands(MAX_COUNT));
            throw InputError(where, "count", raw, "not a whole number: " + allowed);
        }
    }
    throw InputError(where, "count", raw, "not a number: " + allowed);
}

double parse_population(const std::string& raw, const std::string& where) {
    const std::string allowed =
        "give a number of residents > 0 (decimals and quoted thousands separators allowed)";
    if (raw.empty()) throw InputError(where, "population", "", "empty population: " + allowed);
    const auto digits = strip_thousands(raw);
    double v = 0;
    bool ok = false;
    if (digits && !digits->empty()) {
        const auto [ptr, ec] = std::from_chars(digits->data(), digits->data() + digits->size(), v);
        ok = ec == std::errc{} && ptr == digits->data() + digits->size();
    }
    if (!ok) {
        const std::string m = lower(raw);
        if (m == "*" || m == "[c]" || m == "x" || m == "[x]" || m.front() == '<')
            throw InputError(where, "population", raw,
                             "a population cannot be suppressed: " + allowed);
        throw InputError(where, "population", raw, "not a number: " + allowed);
    }
    if (!std::isfinite(v) || v > 1e12)
        throw InputError(where, "population", raw, "not a finite number up to 1e12: " + allowed);
    if (v <= 0)
        throw InputError(where, "population", raw,
                         "a population must be > 0 (a category with no residents has no rate: "
                         "leave its rows out): " +
                             allowed);
    return v;
}

std::string slurp(const std::string& path, const char* what) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0)
        throw InputError(path, std::string("cannot read the ") + what + ": no such file");
    if (S_ISDIR(info.st_mode))
        throw InputError(path, std::string("is a directory: give the ") + what + " (a .csv file)");
    if (static_cast<std::uintmax_t>(info.st_size) > MAX_TABLE_BYTES)
        throw InputError(path, "file is " + std::to_string(info.st_size) +
                                   " bytes: a table may be at most 64 MiB (a resource limit "
                                   "against reading a wrong file; split the table)");
    std::ifstream file(path, std::ios::binary);
    if (!file)
        throw InputError(path, std::string("cannot read the ") + what + ": permission denied");
    std::ostringstream content;
    content << file.rdbuf();
    return content.str();
}

}  // namespace

std::string with_thousands(std::int64_t value) {
    const bool negative = value < 0;
    std::string digits = std::to_string(negative ? -static_cast<std::uint64_t>(value)
                                                 : static_cast<std::uint64_t>(value));
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return negative ? "-" + out : out;
}

const CountRow* CountTable::find(const std::string& area, const std::string& dimension,
                                 const std::string& category) const {
    for (const auto& r : rows)
        if (r.area == area && r.dimension == dimension && r.category == category) return &r;
    return nullptr;
}

std::vector<std::string> CountTable::areas() const {
    std::vector<std::string> out;
    std::set<std::string> seen;
    for (const auto& r : rows)
        if (seen.insert(r.area).second) out.push_back(r.area);
    return out;
}

const PopulationRow* PopulationTable::find(const std::string& area, const std::string& dimension,
                                           const std::string& category) const {
    for (const auto& r : rows)
        if (r.area == area && r.dimension == dimension && r.category == category) return &r;
    return nullptr;
}

CountTable parse_count_table(std::string_view text, const std::string& source,
                             const SuppressionOptions& suppression) {
    if (suppression.threshold < 1 || suppression.min_suppressed < 0 ||
        suppression.min_suppressed > suppression.threshold - 1)
        throw InputError(source, "suppression threshold " + std::to_string(suppression.threshold) +
                                     " and smallest suppressed count " +
                                     std::to_string(suppression.min_suppressed) +
                                     ": need threshold >= 1 and 0 <= smallest < threshold");
    // A suppressed cell may hide up to threshold - 1: no more than a count may be, so that
    // check_margins's sums of a million rows cannot overflow.
    if (suppression.threshold > MAX_COUNT + 1)
        throw InputError(source, "suppression threshold " + std::to_string(suppression.threshold) +
                                     ": at most " + with_thousands(MAX_COUNT + 1) +
                                     " (a suppressed cell hides a count, and a count is at most " +
                                     with_thousands(MAX_COUNT) + ")");
    const auto records = read_records(text, source);
    const Columns columns = read_header(records.front(), "count", source);
    if (records.size() == 1)
        throw InputError(source, "no data rows after the header: give one row per category");
    CountTable table;
    table.source = source;
    table.has_area = columns.area.has_value();
    std::map<std::tuple<std::string, std::string, std::string>, std::size_t> seen;
    for (std::size_t i = 1; i < records.size(); ++i) {
        const auto& r = records[i];
        Key k = read_key(r, columns, source);
        check_duplicate(seen, k, r.line, source);
        const std::string& raw = r.fields[columns.value];
        CountRow row;
        row.count = parse_count(raw, suppression, at_line(source, r.line));
        row.area = std::move(k.area);
        row.dimension = std::move(k.dimension);
        row.category = std::move(k.category);
        row.raw = raw;
        row.line = r.line;
        table.rows.push_back(std::move(row));
    }
    return table;
}

CountTable read_count_table(const std::string& path, const SuppressionOptions& suppression) {
    return parse_count_table(slurp(path, "counts table"), path, suppression);
}

PopulationTable parse_population_table(std::string_view text, const std::string& source) {
    const auto records = read_records(text, source);
    const Columns columns = read_header(records.front(), "population", source);
    if (records.size() == 1)
        throw InputError(source, "no data rows after the header: give one row per category");
    PopulationTable table;
    table.source = source;
    table.has_area = columns.area.has_value();
    std::map<std::tuple<std::string, std::string, std::string>, std::size_t> seen;
    for (std::size_t i = 1; i < records.size(); ++i) {
        const auto& r = records[i];
        Key k = read_key(r, columns, source);
        check_duplicate(seen, k, r.line, source);
        PopulationRow row;
        row.population = parse_population(r.fields[columns.value], at_line(source, r.line));
        row.area = std::move(k.area);
        row.dimension = std::move(k.dimension);
        row.category = std::move(k.category);
        row.line = r.line;
        table.rows.push_back(std::move(row));
    }
    return table;
}

PopulationTable read_population_table(const std::string& path) {
    return parse_population_table(slurp(path, "population table"), path);
}

void check_margins(const CountTable& counts) {
    // Per area (in order of first appearance), per dimension (likewise): [Σ lo, Σ hi]. One
    // pass with indices, so a table at the row limit is checked in well under a second.
    using Sum = std::tuple<std::string, std::int64_t, std::int64_t>;
    std::vector<std::pair<std::string, std::vector<Sum>>> areas;
    std::map<std::string, std::size_t> area_index;
    std::map<std::pair<std::string, std::string>, std::size_t> dim_index;
    for (const auto& r : counts.rows) {
        const auto [a, new_area] = area_index.emplace(r.area, areas.size());
        if (new_area) areas.emplace_back(r.area, std::vector<Sum>{});
        auto& sums = areas[a->second].second;
        const auto [d, new_dim] =
            dim_index.emplace(std::make_pair(r.area, r.dimension), sums.size());
        if (new_dim) sums.emplace_back(r.dimension, 0, 0);
        std::get<1>(sums[d->second]) += r.count.lo;
        std::get<2>(sums[d->second]) += r.count.hi;
    }
    for (const auto& [area, sums] : areas) {
        const auto text = [](std::int64_t lo, std::int64_t hi) {
            return lo == hi ? with_thousands(lo) : with_thousands(lo) + "-" + with_thousands(hi);
        };
        // Intervals on a line have a common point iff every pair overlaps (Helly), iff the
        // largest lower end is at most the smallest upper end: compare those two dimensions.
        if (sums.size() < 2) continue;
        const auto high = std::max_element(
            sums.begin(), sums.end(),
            [](const auto& a, const auto& b) { return std::get<1>(a) < std::get<1>(b); });
        const auto low = std::min_element(
            sums.begin(), sums.end(),
            [](const auto& a, const auto& b) { return std::get<2>(a) < std::get<2>(b); });
        if (std::get<1>(*high) > std::get<2>(*low)) {
            // Name them in file order, so the message reads like the table.
            const bool high_first = high < low;
            const auto& a = high_first ? *high : *low;
            const auto& b = high_first ? *low : *high;
            throw InputError(counts.source,
                             "margins are inconsistent: " +
                                 (area.empty() ? std::string() : "area " + area + ": ") +
                                 std::get<0>(a) + " sums to " +
                                 text(std::get<1>(a), std::get<2>(a)) + " but " + std::get<0>(b) +
                                 " to " + text(std::get<1>(b), std::get<2>(b)) +
                                 ": every dimension must count the same stops (add the "
                                 "unrecorded ones as a category such as 'Not stated')");
        }
    }
}

}  // namespace stopscan
