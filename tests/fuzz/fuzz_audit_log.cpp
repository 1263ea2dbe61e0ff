// libFuzzer target: the readers of `stopscan audit` (audit_log.hpp), through their stream
// overloads (the path versions only open the file and call them): verify_audit_log,
// summarize_audit_log and AuditKeySet::parse.
//
// Input: an options byte, then the log text; with bit 0 set, the text up to the first NUL
// byte is a key set and the rest the log. Bits 1-2 choose --max-lookups-per-person (0, 1, 2,
// 20). Bit 3 "rechains" the log before reading it: every line after the header gets `seq`
// and `prev` rewritten to the values the chain needs (a `{"end"` line becomes the exact end
// line), as a writer would. A mutated record breaks the SHA-256 chain, so without this the
// fuzzer would almost never reach an intact log that is not a seed; with it, every mutation
// of a record's fields is seen by verify as intact or as a schema problem.
//
// Promises checked:
// - verify throws nothing (a bad log is a result, with a line and a problem when broken);
//   checked again with the final hash as the expected one (intact) and with a wrong one
//   (broken).
// - summarize and AuditKeySet::parse refuse only with InputError, one line.
// - A log that verify calls intact summarises without a key set (the summary does not check
//   the chain, and its schema checks are verify's): the one exception is summarize's own
//   limit of 64 policies per log, refused with an InputError that says so. Its record count
//   is verify's, and every table keeps its declared margins (each dimension's categories
//   sum to the `all` cell: docs/audit-log.md, "the margins add up").
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "stopscan/audit_log.hpp"
#include "stopscan/error.hpp"

namespace {

constexpr std::int64_t CAPS[] = {0, 1, 2, 20};

std::string sha256_hex(std::string_view bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1)
        stopscan::fuzz::finding("SHA-256 failed in the fuzz target");
    static constexpr char HEX[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < length; ++i) {
        out += HEX[digest[i] >> 4];
        out += HEX[digest[i] & 15];
    }
    return out;
}

// Replaces the digits after `"seq": ` and the 64 characters after `"prev": "` (if present)
// with the values the chain needs; turns a line starting `{"end"` into the end line.
std::string rechain(std::string_view log) {
    std::string out;
    std::string prev;
    std::uint64_t records = 0;
    for (std::size_t start = 0, number = 1; start < log.size(); ++number) {
        auto end = log.find('\n', start);
        const bool newline = end != std::string_view::npos;
        if (!newline) end = log.size();
        std::string line(log.substr(start, end - start));
        start = end + 1;
        if (number > 1) {
            if (line.rfind("{\"end\"", 0) == 0) {
                line = "{\"end\": \"stopscan_audit_log\", \"records\": " + std::to_string(records) +
                       ", \"prev\": \"" + prev + "\"}";
            } else {
                ++records;
                if (const auto at = line.find("\"seq\": "); at != std::string::npos) {
                    const auto digits = at + 7;
                    auto stop = digits;
                    while (stop < line.size() && line[stop] >= '0' && line[stop] <= '9') ++stop;
                    line.replace(digits, stop - digits, std::to_string(records));
                }
                if (const auto at = line.find("\"prev\": \"");
                    at != std::string::npos && at + 9 + 64 <= line.size())
                    line.replace(at + 9, 64, prev);
            }
        }
        prev = sha256_hex(line);
        out += line;
        if (newline) out += '\n';
    }
    return out;
}

stopscan::AuditVerification verify(const std::string& log,
                                   const std::optional<std::string>& expected = {}) {
    std::istringstream in(log);
    try {
        return stopscan::verify_audit_log(in, expected);
    } catch (const std::exception& e) {
        stopscan::fuzz::finding(std::string("verify_audit_log threw: ") + e.what());
    }
}

void check_margins(const stopscan::ReleaseTable& table) {
    for (const auto& relation : table.relations) {
        std::int64_t sum = 0;
        for (const auto part : relation.parts) sum += table.cells.at(part).count;
        const auto& total = table.cells.at(relation.total);
        if (sum != total.count)
            stopscan::fuzz::finding(table.name + ", policy " + total.policy + ": the " +
                                    table.cells.at(relation.parts.front()).dimension +
                                    " cells sum to " + std::to_string(sum) + ", the total is " +
                                    std::to_string(total.count));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t options = data[0];
    std::string_view log(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::optional<stopscan::AuditKeySet> keys;
    if (options & 1u) {
        const auto nul = log.find('\0');
        if (nul == std::string_view::npos) return 0;
        std::istringstream in{std::string(log.substr(0, nul))};
        log.remove_prefix(nul + 1);
        try {
            keys = stopscan::AuditKeySet::parse(in, "fuzz.keys");
        } catch (const stopscan::InputError& e) {
            stopscan::fuzz::check_one_line(e.what());
        }
    }
    const std::int64_t cap = CAPS[(options >> 1) & 3u];
    const std::string text = (options & 8u) ? rechain(log) : std::string(log);

    const auto v = verify(text);
    if (v.intact) {
        if (!v.problem.empty() || v.line != 0 || v.final_hash.size() != 64)
            stopscan::fuzz::finding("intact with problem '" + v.problem + "' at line " +
                                    std::to_string(v.line));
        if (!verify(text, v.final_hash).intact)
            stopscan::fuzz::finding("not intact when given its own final hash");
        if (verify(text, std::string(64, '0')).intact)
            stopscan::fuzz::finding("intact when given a wrong final hash");
        std::istringstream in(text);
        try {
            const auto summary = stopscan::summarize_audit_log(in, "fuzz.jsonl", nullptr, 0);
            if (summary.records != v.records)
                stopscan::fuzz::finding("verify read " + std::to_string(v.records) +
                                        " records, summarize " + std::to_string(summary.records));
            for (const auto& table : summary.tables) check_margins(table);
        } catch (const stopscan::InputError& e) {
            stopscan::fuzz::check_one_line(e.what());
            if (std::string_view(e.what()).find("more than 64 policies") == std::string_view::npos)
                stopscan::fuzz::finding(std::string("an intact log does not summarise: ") +
                                        e.what());
        }
    } else if (v.line == 0 || v.problem.empty()) {
        stopscan::fuzz::finding("broken without a line or a problem");
    }

    if (keys || cap != 0) {
        std::istringstream in(text);
        try {
            const auto summary =
                stopscan::summarize_audit_log(in, "fuzz.jsonl", keys ? &*keys : nullptr, cap);
            for (const auto& table : summary.tables) check_margins(table);
        } catch (const stopscan::InputError& e) {
            stopscan::fuzz::check_one_line(e.what());
        }
    } else if (!v.intact) {
        std::istringstream in(text);
        try {
            (void)stopscan::summarize_audit_log(in, "fuzz.jsonl", nullptr, 0);
        } catch (const stopscan::InputError& e) {
            stopscan::fuzz::check_one_line(e.what());
        }
    }
    return 0;
}
