#include "stopscan/audit_log.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>

#include "stopscan/build_info.hpp"
#include "stopscan/error.hpp"
#include "stopscan/writers.hpp"

namespace stopscan {

namespace {

constexpr char HEX[] = "0123456789abcdef";

std::string to_hex(const unsigned char* bytes, std::size_t n) {
    std::string out(2 * n, '0');
    for (std::size_t i = 0; i < n; ++i) {
        out[2 * i] = HEX[bytes[i] >> 4];
        out[2 * i + 1] = HEX[bytes[i] & 15];
    }
    return out;
}

std::string sha256_of(std::string_view bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1)
        throw InternalError("SHA-256 failed");
    return to_hex(digest, length);
}

bool is_hex64(const std::string& s) {
    if (s.size() != 64) return false;
    for (const char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

// ---------------------------------------------------------------------------------------
// A strict reader for the JSON subset of the log: objects, arrays, strings, non-negative
// integers, true, false, null. Errors are plain text for the caller to place.

struct Json {
    enum class Kind { null, boolean, integer, string, array, object } kind = Kind::null;
    bool boolean = false;
    std::uint64_t integer = 0;
    std::string text;
    std::vector<Json> items;
    // Not std::pair<std::string, Json>: a pair needs Json complete where it is named, and
    // clang rejects it here (a vector of an incomplete class is allowed).
    struct Member;
    std::vector<Member> members;

    const Json* get(const std::string& key) const;
};

struct Json::Member {
    std::string first;  ///< the key
    Json second;        ///< the value
};

const Json* Json::get(const std::string& key) const {
    for (const auto& [k, v] : members)
        if (k == key) return &v;
    return nullptr;
}

class JsonReader {
public:
    explicit JsonReader(std::string_view s) : s_(s) {}
    Json document() {
        Json v = value(0);
        space();
        if (i_ != s_.size()) fail("unexpected text after the JSON value");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& what) {
        throw std::runtime_error(what + " at column " + std::to_string(i_ + 1));
    }
    void space() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
    }
    bool take(char c) {
        space();
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!take(c)) fail(std::string("expected '") + c + "'");
    }
    std::string string() {
        expect('"');
        std::string out;
        while (i_ < s_.size() && s_[i_] != '"') {
            char c = s_[i_++];
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i_ >= s_.size()) fail("unfinished escape");
            c = s_[i_++];
            switch (c) {
                case '"':
                case '\\':
                case '/':
                    out += c;
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'u': {
                    if (i_ + 4 > s_.size()) fail("unfinished \\u escape");
                    unsigned code = 0;
                    for (int k = 0; k < 4; ++k) {
                        const char h = s_[i_++];
                        code <<= 4;
                        if (h >= '0' && h <= '9')
                            code |= static_cast<unsigned>(h - '0');
                        else if (h >= 'a' && h <= 'f')
                            code |= static_cast<unsigned>(h - 'a' + 10);
                        else if (h >= 'A' && h <= 'F')
                            code |= static_cast<unsigned>(h - 'A' + 10);
                        else
                            fail("bad \\u escape");
                    }
                    if (code >= 0xD800 && code <= 0xDFFF) fail("surrogate \\u escape");
                    if (code < 0x80) {
                        out += static_cast<char>(code);
                    } else if (code < 0x800) {
                        out += static_cast<char>(0xC0 | (code >> 6));
                        out += static_cast<char>(0x80 | (code & 0x3F));
                    } else {
                        out += static_cast<char>(0xE0 | (code >> 12));
                        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
                        out += static_cast<char>(0x80 | (code & 0x3F));
                    }
                    break;
                }
                default:
                    fail("bad escape");
            }
        }
        if (i_ >= s_.size()) fail("unfinished string");
        ++i_;
        return out;
    }
    Json value(int depth) {
        if (depth > 8) fail("nested too deeply");
        space();
        if (i_ >= s_.size()) fail("missing value");
        Json v;
        const char c = s_[i_];
        if (c == '{') {
            ++i_;
            v.kind = Json::Kind::object;
            if (take('}')) return v;
            do {
                space();
                std::string key = string();
                if (v.get(key)) fail("duplicate key \"" + key + "\"");
                expect(':');
                v.members.push_back({std::move(key), value(depth + 1)});
            } while (take(','));
            expect('}');
        } else if (c == '[') {
            ++i_;
            v.kind = Json::Kind::array;
            if (take(']')) return v;
            do v.items.push_back(value(depth + 1));
            while (take(','));
            expect(']');
        } else if (c == '"') {
            v.kind = Json::Kind::string;
            v.text = string();
        } else if (c >= '0' && c <= '9') {
            v.kind = Json::Kind::integer;
            if (c == '0' && i_ + 1 < s_.size() && s_[i_ + 1] >= '0' && s_[i_ + 1] <= '9')
                fail("leading zero");
            while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
                const auto digit = static_cast<std::uint64_t>(s_[i_++] - '0');
                if (v.integer > (UINT64_MAX - digit) / 10) fail("integer too large");
                v.integer = v.integer * 10 + digit;
            }
            if (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E'))
                fail("only whole numbers are allowed");
        } else if (s_.substr(i_, 4) == "true") {
            i_ += 4;
            v.kind = Json::Kind::boolean;
            v.boolean = true;
        } else if (s_.substr(i_, 5) == "false") {
            i_ += 5;
            v.kind = Json::Kind::boolean;
        } else if (s_.substr(i_, 4) == "null") {
            i_ += 4;
        } else {
            fail("not a JSON value");
        }
        return v;
    }
    std::string_view s_;
    std::size_t i_ = 0;
};

// ---------------------------------------------------------------------------------------
// The record schema (docs/audit-log.md), shared by verify and summarize.

constexpr const char* RECORD_KEYS[] = {"seq",   "prev",    "person",   "replication", "stop",
                                       "cell",  "policy",  "database", "modality",    "result",
                                       "shown", "actions", "outcome",  "cause"};

template <typename E, std::size_t N>
std::optional<E> parse_enum(const std::string& text, const std::array<const char*, N>& names) {
    for (std::size_t i = 0; i < N; ++i)
        if (text == names[i]) return static_cast<E>(i);
    return std::nullopt;
}

constexpr std::array<const char*, 4> RESULT_NAMES{"none", "own_record", "wrong_link",
                                                  "false_match"};
constexpr std::array<const char*, 3> SHOWN_NAMES{"none", "flag_only", "full"};
constexpr std::array<const char*, 3> OUTCOME_NAMES{"none", "rightful", "wrongful"};
constexpr std::array<const char*, 3> CAUSE_NAMES{"none", "false_match", "record_error"};
constexpr std::array<const char*, 3> ACTION_NAMES{"arrest", "referral", "detention"};

// A parsed record, with the pseudonym as text.
struct ParsedRecord {
    std::uint64_t seq = 0;
    std::string prev;
    std::string person;
    AuditRecord record;
};

template <typename E, std::size_t N>
E enum_field(const Json& j, const char* key, const std::array<const char*, N>& names) {
    const Json* v = j.get(key);
    if (!v || v->kind != Json::Kind::string)
        throw std::runtime_error(std::string("\"") + key + "\" must be a string");
    const auto e = parse_enum<E>(v->text, names);
    if (!e) {
        std::string allowed;
        for (const char* n : names) allowed += (allowed.empty() ? "" : ", ") + std::string(n);
        throw std::runtime_error(std::string("\"") + key + "\" = \"" + v->text +
                                 "\": allowed are " + allowed);
    }
    return *e;
}

std::uint64_t integer_field(const Json& j, const char* key) {
    const Json* v = j.get(key);
    if (!v || v->kind != Json::Kind::integer)
        throw std::runtime_error(std::string("\"") + key + "\" must be a whole number >= 0");
    return v->integer;
}

std::string text_field(const Json& j, const char* key) {
    const Json* v = j.get(key);
    if (!v || v->kind != Json::Kind::string || v->text.empty())
        throw std::runtime_error(std::string("\"") + key + "\" must be a non-empty string");
    return v->text;
}

// Checks one record line against the schema; throws std::runtime_error with the problem.
ParsedRecord parse_record(const std::string& line, const std::vector<std::string>& dimensions) {
    const Json j = JsonReader(line).document();
    if (j.kind != Json::Kind::object) throw std::runtime_error("a record must be a JSON object");
    for (const auto& member : j.members) {
        // Not a structured binding: clang 14 cannot capture one in a lambda.
        const std::string& key = member.first;
        if (std::find_if(std::begin(RECORD_KEYS), std::end(RECORD_KEYS),
                         [&](const char* k) { return key == k; }) == std::end(RECORD_KEYS))
            throw std::runtime_error("unknown field \"" + key + "\"");
    }
    ParsedRecord p;
    p.seq = integer_field(j, "seq");
    p.prev = text_field(j, "prev");
    if (!is_hex64(p.prev)) throw std::runtime_error("\"prev\" must be 64 lowercase hex digits");
    p.person = text_field(j, "person");
    if (!is_hex64(p.person))
        throw std::runtime_error("\"person\" must be 64 lowercase hex digits (HMAC-SHA256)");
    AuditRecord& r = p.record;
    r.replication = integer_field(j, "replication");
    r.stop = integer_field(j, "stop");
    const Json* cell = j.get("cell");
    if (!cell || cell->kind != Json::Kind::object)
        throw std::runtime_error("\"cell\" must be an object of dimension: category");
    if (cell->members.size() != dimensions.size())
        throw std::runtime_error("\"cell\" must name the header's " +
                                 std::to_string(dimensions.size()) + " dimensions, in order");
    for (std::size_t d = 0; d < dimensions.size(); ++d) {
        const auto& [name, category] = cell->members[d];
        if (name != dimensions[d])
            throw std::runtime_error("\"cell\" has \"" + name +
                                     "\" where the header's dimension \"" + dimensions[d] +
                                     "\" belongs");
        if (category.kind != Json::Kind::string || category.text.empty())
            throw std::runtime_error("\"cell\".\"" + name + "\" must be a non-empty string");
        r.categories.push_back(category.text);
    }
    r.policy = text_field(j, "policy");
    r.database = text_field(j, "database");
    r.modality = text_field(j, "modality");
    r.result = enum_field<LookupResult>(j, "result", RESULT_NAMES);
    r.shown = enum_field<Shown>(j, "shown", SHOWN_NAMES);
    r.outcome = enum_field<Outcome>(j, "outcome", OUTCOME_NAMES);
    r.cause = enum_field<Cause>(j, "cause", CAUSE_NAMES);
    const Json* actions = j.get("actions");
    if (!actions || actions->kind != Json::Kind::array)
        throw std::runtime_error("\"actions\" must be an array of arrest, referral, detention");
    std::size_t last = 0;
    for (const auto& a : actions->items) {
        const auto e = a.kind == Json::Kind::string ? parse_enum<std::size_t>(a.text, ACTION_NAMES)
                                                    : std::nullopt;
        if (!e || (r.actions >> *e) & 1u || (r.actions != 0 && *e < last))
            throw std::runtime_error(
                "\"actions\" must list arrest, referral, detention at most once each, in that "
                "order");
        r.actions |= static_cast<std::uint8_t>(1u << *e);
        last = *e;
    }
    // Consistency: what an officer can do follows from what was returned and shown.
    if ((r.actions & ACTION_DETENTION) && !(r.actions & ACTION_REFERRAL))
        throw std::runtime_error("a detention must follow a referral in \"actions\"");
    if (r.actions && (r.result == LookupResult::none || r.shown == Shown::none))
        throw std::runtime_error("actions need a returned record that was shown");
    if ((r.actions == 0) != (r.outcome == Outcome::none))
        throw std::runtime_error("\"outcome\" must be none exactly when there is no action");
    if ((r.outcome == Outcome::wrongful) != (r.cause != Cause::none))
        throw std::runtime_error("\"cause\" must be given exactly when the outcome is wrongful");
    if (r.cause == Cause::false_match && r.result != LookupResult::false_match)
        throw std::runtime_error("cause false_match needs result false_match");
    if (r.cause == Cause::record_error && r.result == LookupResult::false_match)
        throw std::runtime_error("cause record_error needs result own_record or wrong_link");
    return p;
}

struct Header {
    std::vector<std::string> dimensions;
};

Header parse_header(const std::string& line) {
    const Json j = JsonReader(line).document();
    const Json* tag = j.get("stopscan_audit_log");
    if (j.kind != Json::Kind::object || !tag || tag->kind != Json::Kind::integer ||
        tag->integer != 1)
        throw std::runtime_error("not an audit log header: {\"stopscan_audit_log\": 1, ...}");
    const Json* dims = j.get("dimensions");
    if (!dims || dims->kind != Json::Kind::array)
        throw std::runtime_error("the header's \"dimensions\" must be an array of names");
    Header h;
    for (const auto& d : dims->items) {
        if (d.kind != Json::Kind::string || d.text.empty())
            throw std::runtime_error("the header's \"dimensions\" must be non-empty strings");
        h.dimensions.push_back(d.text);
    }
    return h;
}

std::string trailer_line(std::uint64_t records, const std::string& prev) {
    return "{\"end\": \"stopscan_audit_log\", \"records\": " + std::to_string(records) +
           ", \"prev\": \"" + prev + "\"}";
}

}  // namespace

const char* lookup_result_name(LookupResult r) noexcept {
    return RESULT_NAMES[static_cast<std::size_t>(r)];
}
const char* shown_name(Shown s) noexcept {
    return SHOWN_NAMES[static_cast<std::size_t>(s)];
}
const char* outcome_name(Outcome o) noexcept {
    return OUTCOME_NAMES[static_cast<std::size_t>(o)];
}
const char* cause_name(Cause c) noexcept {
    return CAUSE_NAMES[static_cast<std::size_t>(c)];
}

// ---------------------------------------------------------------------------------------
// The key.

AuditKey AuditKey::from_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw InputError(path, std::string("cannot read the audit key file: ") +
                                   std::strerror(errno) + "; give a file of at least 32 bytes");
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw InputError(path,
                         "the audit key file is not a regular file: give a file of at "
                         "least 32 random bytes, mode 600");
    }
    if (st.st_mode & 077) {
        ::close(fd);
        char mode[8];
        std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
        throw InputError(path, std::string("the audit key file has mode ") + mode +
                                   ": it must not be readable or writable by group or others "
                                   "(chmod 600)");
    }
    std::string bytes;
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0) {
            ::close(fd);
            throw InputError(
                path, std::string("cannot read the audit key file: ") + std::strerror(errno));
        }
        if (n == 0) break;
        bytes.append(buffer, static_cast<std::size_t>(n));
        if (bytes.size() > 1 << 20) break;
    }
    OPENSSL_cleanse(buffer, sizeof buffer);
    ::close(fd);
    return from_bytes(std::move(bytes), path);
}

AuditKey AuditKey::from_bytes(std::string bytes, const std::string& source) {
    if (bytes.size() < MIN_BYTES) {
        const auto n = bytes.size();
        OPENSSL_cleanse(bytes.data(), bytes.size());
        throw InputError(source, "the audit key holds " + std::to_string(n) +
                                     " bytes: it needs at least 32 (e.g. head -c 32 "
                                     "/dev/urandom > FILE; chmod 600 FILE)");
    }
    return AuditKey(std::move(bytes));
}

AuditKey::~AuditKey() {
    if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
}

std::string AuditKey::pseudonym(std::string_view person_id) const {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (!HMAC(EVP_sha256(), bytes_.data(), static_cast<int>(bytes_.size()),
              reinterpret_cast<const unsigned char*>(person_id.data()), person_id.size(), digest,
              &length))
        throw InternalError("HMAC-SHA256 failed");
    return to_hex(digest, length);
}

// ---------------------------------------------------------------------------------------
// The writer.

std::string audit_header_line(const AuditLogHeader& header) {
    std::string line =
        "{\"stopscan_audit_log\": 1, \"schema\": \"docs/audit-log.md\", "
        "\"pseudonym\": \"HMAC-SHA256\", \"chain\": \"SHA-256\", \"dimensions\": [";
    for (std::size_t i = 0; i < header.dimensions.size(); ++i)
        line += (i ? ", " : "") + json_string(header.dimensions[i]);
    return line + "], \"source\": " + json_string(header.source) + "}";
}

AuditLogWriter::AuditLogWriter(std::string path, AuditKey key, AuditLogHeader header)
    : path_(std::move(path)), key_(std::move(key)), header_(std::move(header)) {
    temporary_ = temporary_path(path_);
    // Pseudonyms are still personal data: the log is created readable by its owner only.
    const int fd = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        throw InputError("command line", "--audit-log", path_,
                         std::string("cannot create the log: ") + std::strerror(errno) +
                             "; choose a writable path");
    ::fchmod(fd, 0600);
    file_ = ::fdopen(fd, "wb");
    if (!file_) {
        ::close(fd);
        std::remove(temporary_.c_str());
        throw InternalError("cannot open " + temporary_);
    }
    const std::string line = audit_header_line(header_);
    write_line(line);
    prev_ = sha256_of(line);
}

AuditLogWriter::~AuditLogWriter() {
    if (file_) std::fclose(file_);
    if (!finished_) std::remove(temporary_.c_str());
}

void AuditLogWriter::write_line(const std::string& line) {
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() ||
        std::fputc('\n', file_) == EOF)
        throw InternalError("cannot write the audit log " + temporary_);
}

void AuditLogWriter::append(const AuditRecord& r) {
    if (finished_) throw InternalError("audit log: append after finish");
    if (r.categories.size() != header_.dimensions.size())
        throw InternalError("audit log: a record has " + std::to_string(r.categories.size()) +
                            " categories for " + std::to_string(header_.dimensions.size()) +
                            " dimensions");
    std::string line;
    line.reserve(512);
    line += "{\"seq\": " + std::to_string(seq_ + 1) + ", \"prev\": \"" + prev_ +
            "\", \"person\": \"" + key_.pseudonym(r.person_id) +
            "\", \"replication\": " + std::to_string(r.replication) +
            ", \"stop\": " + std::to_string(r.stop) + ", \"cell\": {";
    for (std::size_t d = 0; d < r.categories.size(); ++d)
        line += (d ? ", " : "") + json_string(header_.dimensions[d]) + ": " +
                json_string(r.categories[d]);
    line += "}, \"policy\": " + json_string(r.policy) +
            ", \"database\": " + json_string(r.database) +
            ", \"modality\": " + json_string(r.modality) + ", \"result\": \"" +
            lookup_result_name(r.result) + "\", \"shown\": \"" + shown_name(r.shown) +
            "\", \"actions\": [";
    bool first = true;
    for (std::size_t a = 0; a < ACTION_NAMES.size(); ++a)
        if (r.actions & (1u << a)) {
            line += (first ? "\"" : ", \"") + std::string(ACTION_NAMES[a]) + "\"";
            first = false;
        }
    line += "], \"outcome\": \"" + std::string(outcome_name(r.outcome)) + "\", \"cause\": \"" +
            cause_name(r.cause) + "\"}";
    write_line(line);
    prev_ = sha256_of(line);
    ++seq_;
}

void AuditLogWriter::append_batch(const std::vector<AuditRecord>& records) {
    for (const auto& r : records) append(r);
    if (std::fflush(file_) != 0) throw InternalError("cannot write the audit log " + temporary_);
}

void AuditLogWriter::submit(std::uint64_t ticket, std::vector<AuditRecord> batch) {
    const std::lock_guard lock(mutex_);
    if (ticket < next_ticket_ || pending_.count(ticket))
        throw InternalError("audit log: ticket " + std::to_string(ticket) + " submitted twice");
    pending_.emplace(ticket, std::move(batch));
    for (auto it = pending_.begin(); it != pending_.end() && it->first == next_ticket_;
         it = pending_.erase(it), ++next_ticket_)
        append_batch(it->second);
}

std::uint64_t AuditLogWriter::next_ticket() const {
    const std::lock_guard lock(mutex_);
    return next_ticket_ + pending_.size();
}

std::string AuditLogWriter::finish() {
    const std::lock_guard lock(mutex_);
    if (finished_) throw InternalError("audit log: finish called twice");
    if (!pending_.empty())
        throw InternalError("audit log: ticket " + std::to_string(next_ticket_) +
                            " was never submitted");
    const std::string end = trailer_line(seq_, prev_);
    write_line(end);
    if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0)
        throw InternalError("cannot write the audit log " + temporary_);
    const int closed = std::fclose(file_);
    file_ = nullptr;
    if (closed != 0) throw InternalError("cannot close the audit log " + temporary_);
    if (std::rename(temporary_.c_str(), path_.c_str()) != 0)
        throw InternalError("cannot rename " + temporary_ + " to " + path_);
    finished_ = true;
    return sha256_of(end);
}

// ---------------------------------------------------------------------------------------
// Verification.

AuditVerification verify_audit_log(const std::string& path,
                                   const std::optional<std::string>& expected_final) {
    std::ifstream file(path, std::ios::binary);
    if (!file) throw InputError(path, "cannot open the audit log: give the path of a .jsonl log");
    return verify_audit_log(file, expected_final);
}

AuditVerification verify_audit_log(std::istream& file,
                                   const std::optional<std::string>& expected_final) {
    AuditVerification v;
    std::string line;
    std::uint64_t number = 0;
    auto broken = [&](const std::string& problem) {
        v.intact = false;
        v.line = number;
        v.problem = problem;
        return v;
    };
    std::string prev;
    Header header;
    bool ended = false;
    while (std::getline(file, line)) {
        ++number;
        if (file.eof()) return broken("the line does not end with a newline (truncated file?)");
        if (ended) return broken("text after the end line");
        if (!line.empty() && line.back() == '\r')
            return broken("carriage return at the end of the line (the file was rewritten)");
        try {
            if (number == 1) {
                header = parse_header(line);
            } else {
                const Json j = JsonReader(line).document();
                if (j.kind == Json::Kind::object && j.get("end")) {
                    const std::string expected = trailer_line(v.records, prev);
                    if (line != expected) {
                        const Json* n = j.get("records");
                        if (!n || n->kind != Json::Kind::integer || n->integer != v.records)
                            return broken("the end line's record count differs from the " +
                                          std::to_string(v.records) + " records read");
                        return broken(
                            "the end line does not hold the SHA-256 of the last "
                            "record, or is not in the documented form");
                    }
                    ended = true;
                } else {
                    const ParsedRecord p = parse_record(line, header.dimensions);
                    if (p.seq != v.records + 1)
                        return broken("seq is " + std::to_string(p.seq) + " where " +
                                      std::to_string(v.records + 1) + " was expected");
                    if (p.prev != prev)
                        return broken("prev does not match the SHA-256 of line " +
                                      std::to_string(number - 1) +
                                      ": that line or this one was changed, or a line was "
                                      "inserted or removed");
                    ++v.records;
                }
            }
        } catch (const std::runtime_error& e) {
            return broken(e.what());
        }
        prev = sha256_of(line);
    }
    // The broken line is the missing header (line 1), the missing end line (one past the
    // last), or the end line itself (the last).
    if (number == 0) {
        number = 1;
        return broken("empty file: no header");
    }
    if (!ended) {
        ++number;
        return broken("no end line: the log is truncated or was not finished");
    }
    v.final_hash = prev;
    if (expected_final && *expected_final != v.final_hash)
        return broken("the end line's SHA-256 " + v.final_hash + " differs from the expected " +
                      *expected_final);
    v.intact = true;
    v.line = 0;
    return v;
}

// ---------------------------------------------------------------------------------------
// The key set.

AuditKeySet AuditKeySet::read(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file)
        throw InputError(path,
                         "cannot open the key set file: give a file of 'policies = ...', "
                         "'databases = ...' and 'dimension.NAME = ...' lines");
    return parse(file, path);
}

AuditKeySet AuditKeySet::parse(std::istream& file, const std::string& path) {
    AuditKeySet keys;
    std::string line;
    std::size_t number = 0;
    auto trim = [](std::string s) {
        const auto a = s.find_first_not_of(" \t\r");
        const auto b = s.find_last_not_of(" \t\r");
        return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
    };
    auto list = [&](const std::string& text) {
        std::vector<std::string> out;
        std::stringstream in(text);
        std::string item;
        while (std::getline(in, item, ',')) {
            item = trim(item);
            if (item.empty() || std::find(out.begin(), out.end(), item) != out.end())
                throw InputError(path + ":" + std::to_string(number),
                                 "empty or repeated item in '" + text +
                                     "': give distinct names separated by commas");
            out.push_back(item);
        }
        return out;
    };
    bool have_policies = false, have_databases = false;
    while (std::getline(file, line)) {
        ++number;
        line = trim(line);
        if (line.empty() || line[0] == '#') continue;
        const auto eq = line.find('=');
        const std::string where = path + ":" + std::to_string(number);
        if (eq == std::string::npos)
            throw InputError(where,
                             "expected KEY = a, b, c (keys: policies, databases, "
                             "dimension.NAME)");
        const std::string key = trim(line.substr(0, eq));
        const auto values = list(trim(line.substr(eq + 1)));
        if (key == "policies" && !have_policies) {
            keys.policies = values;
            have_policies = true;
        } else if (key == "databases" && !have_databases) {
            keys.databases = values;
            have_databases = true;
        } else if (key.rfind("dimension.", 0) == 0 && key.size() > 10 &&
                   std::find_if(keys.dimensions.begin(), keys.dimensions.end(), [&](auto& d) {
                       return d.first == key.substr(10);
                   }) == keys.dimensions.end()) {
            keys.dimensions.emplace_back(key.substr(10), values);
        } else {
            throw InputError(where, key, "",
                             "unknown or repeated key: allowed are policies, databases and "
                             "dimension.NAME, once each");
        }
    }
    if (!have_policies || !have_databases)
        throw InputError(path, "the key set needs a 'policies = ...' and a 'databases = ...' line");
    return keys;
}

// ---------------------------------------------------------------------------------------
// Summaries.

std::int64_t audit_per_cell_bound(const std::string& metric, std::int64_t max_lookups) {
    if (metric == "persons_stopped" || metric == "persons_wrongfully_affected") return 1;
    const std::string base = metric.substr(0, metric.find('.'));
    // One lookup leads to at most an arrest, a referral and a detention.
    if (base == "wrongful_outcomes" || base == "wrongful_by_false_match" ||
        base == "wrongful_by_record_error")
        return 3 * max_lookups;
    return max_lookups;
}

namespace {

using Digest = std::array<unsigned char, 32>;
struct DigestHash {
    std::size_t operator()(const Digest& d) const noexcept {
        std::size_t h;
        std::memcpy(&h, d.data(), sizeof h);  // already uniform: an HMAC output
        return h;
    }
};

Digest digest_of(const std::string& hex) {
    Digest d{};
    auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    for (std::size_t i = 0; i < 32; ++i)
        d[i] = static_cast<unsigned char>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
    return d;
}

// Names interned in order of first appearance (or fixed by a key set).
struct Names {
    std::vector<std::string> list;
    std::unordered_map<std::string, std::size_t> index;
    bool fixed = false;
    std::optional<std::size_t> get(const std::string& name) {
        const auto it = index.find(name);
        if (it != index.end()) return it->second;
        if (fixed) return std::nullopt;
        index.emplace(name, list.size());
        list.push_back(name);
        return list.size() - 1;
    }
    void set(const std::vector<std::string>& names) {
        for (const auto& n : names) get(n);
        fixed = true;
    }
};

struct PersonState {
    std::uint32_t cell = 0;              // interned category combination at first sight
    std::uint64_t seen = 0;              // bit p: counted in persons_stopped under policy p
    std::uint64_t wrongful = 0;          // bit p: counted in persons_wrongfully_affected
    std::vector<std::uint32_t> lookups;  // per policy, only with a cap
};

}  // namespace

AuditSummary summarize_audit_log(const std::string& path, const AuditKeySet* keys,
                                 std::int64_t max_lookups_per_person) {
    std::ifstream file(path, std::ios::binary);
    if (!file) throw InputError(path, "cannot open the audit log: give the path of a .jsonl log");
    return summarize_audit_log(file, path, keys, max_lookups_per_person);
}

AuditSummary summarize_audit_log(std::istream& file, const std::string& path,
                                 const AuditKeySet* keys, std::int64_t max_lookups_per_person) {
    std::string line;
    std::uint64_t number = 0;
    auto where = [&] { return path + ":" + std::to_string(number); };
    if (!std::getline(file, line)) throw InputError(path, "empty file: no audit log header");
    ++number;
    Header header;
    try {
        header = parse_header(line);
    } catch (const std::runtime_error& e) {
        throw InputError(where(), e.what());
    }
    const std::size_t D = header.dimensions.size();
    Names policies, databases;
    std::vector<Names> categories(D);
    if (keys) {
        policies.set(keys->policies);
        databases.set(keys->databases);
        if (keys->dimensions.size() != D)
            throw InputError(path, "the log's header has " + std::to_string(D) +
                                       " dimensions and the key set " +
                                       std::to_string(keys->dimensions.size()) +
                                       ": they must be the same, in the same order");
        for (std::size_t d = 0; d < D; ++d) {
            if (keys->dimensions[d].first != header.dimensions[d])
                throw InputError(path, "the log's dimension " + std::to_string(d + 1) + " is " +
                                           header.dimensions[d] + " and the key set's is " +
                                           keys->dimensions[d].first + ": they must match");
            categories[d].set(keys->dimensions[d].second);
        }
    }

    // counts[metric][policy][group]: group 0 is everyone, then (dimension, category) pairs
    // numbered in order of first appearance within `groups`.
    std::vector<std::pair<std::size_t, std::size_t>> groups;  // (dimension, category index)
    std::map<std::pair<std::size_t, std::size_t>, std::size_t> group_index;
    auto group_of = [&](std::size_t d, std::size_t c) {
        const auto [it, inserted] = group_index.emplace(std::make_pair(d, c), groups.size() + 1);
        if (inserted) groups.emplace_back(d, c);
        return it->second;
    };
    Names metrics;
    std::vector<std::vector<std::vector<std::int64_t>>> counts;
    auto add = [&](std::size_t metric, std::size_t policy, const std::vector<std::size_t>& cell,
                   std::int64_t amount) {
        if (counts.size() <= metric) counts.resize(metric + 1);
        auto& by_policy = counts[metric];
        if (by_policy.size() <= policy) by_policy.resize(policy + 1);
        auto& row = by_policy[policy];
        if (row.size() <= groups.size()) row.resize(groups.size() + 1, 0);
        row[0] += amount;
        for (const auto g : cell) row[g] += amount;
    };
    // Fixed metrics first, so their order in the output does not depend on the data.
    for (const char* m : {"lookups", "arrests", "wrongful_arrests", "ho_referrals",
                          "wrongful_ho_referrals", "detentions", "wrongful_detentions",
                          "wrongful_outcomes", "persons_stopped", "persons_wrongfully_affected"})
        metrics.get(m);
    struct DbMetrics {
        std::size_t searches, true_matches, false_matches, by_false_match, by_record_error;
    };
    std::vector<DbMetrics> db_metrics;
    auto db_metric = [&](std::size_t db) -> const DbMetrics& {
        while (db_metrics.size() <= db) {
            const std::string& n = databases.list[db_metrics.size()];
            db_metrics.push_back({*metrics.get("searches." + n), *metrics.get("true_matches." + n),
                                  *metrics.get("false_matches." + n),
                                  *metrics.get("wrongful_by_false_match." + n),
                                  *metrics.get("wrongful_by_record_error." + n)});
        }
        return db_metrics[db];
    };
    const std::size_t LOOKUPS = 0, ARRESTS = 1, WRONGFUL_ARRESTS = 2, REFERRALS = 3,
                      WRONGFUL_REFERRALS = 4, DETENTIONS = 5, WRONGFUL_DETENTIONS = 6,
                      WRONGFUL_OUTCOMES = 7, PERSONS = 8, PERSONS_WRONGFUL = 9;

    std::unordered_map<Digest, PersonState, DigestHash> persons;
    std::vector<std::vector<std::size_t>> cells;  // interned category combinations → groups
    std::map<std::vector<std::size_t>, std::uint32_t> cell_index;
    std::set<std::uint64_t> replications;
    AuditSummary summary;
    summary.dimensions = header.dimensions;
    std::vector<std::size_t> cell_groups(D);
    bool ended = false;
    while (std::getline(file, line)) {
        ++number;
        if (ended) throw InputError(where(), "text after the end line");
        ParsedRecord p;
        try {
            const Json j = JsonReader(line).document();
            if (j.kind == Json::Kind::object && j.get("end")) {
                ended = true;
                continue;
            }
            p = parse_record(line, header.dimensions);
        } catch (const std::runtime_error& e) {
            throw InputError(where(), e.what());
        }
        const AuditRecord& r = p.record;
        const auto policy = policies.get(r.policy);
        if (!policy) throw InputError(where(), "policy", r.policy, "not in the key set's policies");
        if (*policy >= 64)
            throw InputError(where(), "policy", r.policy, "more than 64 policies in one log");
        const auto db = databases.get(r.database);
        if (!db)
            throw InputError(where(), "database", r.database, "not in the key set's databases");
        for (std::size_t d = 0; d < D; ++d) {
            const auto c = categories[d].get(r.categories[d]);
            if (!c)
                throw InputError(where(), "cell." + header.dimensions[d], r.categories[d],
                                 "not a category of the key set");
            cell_groups[d] = group_of(d, *c);
        }
        ++summary.records;
        replications.insert(r.replication);

        const auto [it, inserted] = persons.try_emplace(digest_of(p.person));
        PersonState& person = it->second;
        if (inserted) {
            const auto [ci, fresh] =
                cell_index.emplace(cell_groups, static_cast<std::uint32_t>(cells.size()));
            if (fresh) cells.push_back(cell_groups);
            person.cell = ci->second;
        }
        if (max_lookups_per_person > 0) {
            if (person.lookups.size() <= *policy) person.lookups.resize(*policy + 1, 0);
            if (person.lookups[*policy] >= static_cast<std::uint64_t>(max_lookups_per_person)) {
                ++summary.dropped_by_cap;
                continue;
            }
            ++person.lookups[*policy];
        }
        const std::uint64_t bit = std::uint64_t{1} << *policy;
        // Person counts use the person's cell at first sight, so that every person is in one
        // category of each dimension and the margins add up.
        if (!(person.seen & bit)) {
            person.seen |= bit;
            add(PERSONS, *policy, cells[person.cell], 1);
        }
        const DbMetrics& m = db_metric(*db);
        add(LOOKUPS, *policy, cell_groups, 1);
        add(m.searches, *policy, cell_groups, 1);
        add(m.true_matches, *policy, cell_groups, r.result == LookupResult::own_record);
        add(m.false_matches, *policy, cell_groups, r.result == LookupResult::false_match);
        const bool wrongful = r.outcome == Outcome::wrongful;
        const std::int64_t arrest = (r.actions & ACTION_ARREST) ? 1 : 0;
        const std::int64_t referral = (r.actions & ACTION_REFERRAL) ? 1 : 0;
        const std::int64_t detention = (r.actions & ACTION_DETENTION) ? 1 : 0;
        add(ARRESTS, *policy, cell_groups, arrest);
        add(REFERRALS, *policy, cell_groups, referral);
        add(DETENTIONS, *policy, cell_groups, detention);
        add(WRONGFUL_ARRESTS, *policy, cell_groups, wrongful ? arrest : 0);
        add(WRONGFUL_REFERRALS, *policy, cell_groups, wrongful ? referral : 0);
        add(WRONGFUL_DETENTIONS, *policy, cell_groups, wrongful ? detention : 0);
        const std::int64_t actions = wrongful ? arrest + referral + detention : 0;
        add(WRONGFUL_OUTCOMES, *policy, cell_groups, actions);
        add(m.by_false_match, *policy, cell_groups, r.cause == Cause::false_match ? actions : 0);
        add(m.by_record_error, *policy, cell_groups, r.cause == Cause::record_error ? actions : 0);
        if (wrongful && !(person.wrongful & bit)) {
            person.wrongful |= bit;
            add(PERSONS_WRONGFUL, *policy, cells[person.cell], 1);
        }
    }
    if (!ended)
        throw InputError(path,
                         "no end line: the log is truncated or was not finished (run "
                         "stopscan audit verify)");
    for (const auto& db : databases.list) (void)db_metric(*databases.get(db));

    summary.policies = policies.list;
    summary.databases = databases.list;
    summary.persons = persons.size();
    summary.replications =
        std::max<std::int64_t>(1, static_cast<std::int64_t>(replications.size()));
    // Output order: the fixed metrics, per-database metrics grouped as in summary.csv.
    std::vector<std::size_t> order = {LOOKUPS};
    for (const auto& dm : db_metrics) order.push_back(dm.searches);
    for (const auto& dm : db_metrics) order.push_back(dm.true_matches);
    for (const auto& dm : db_metrics) order.push_back(dm.false_matches);
    for (const auto k : {ARRESTS, WRONGFUL_ARRESTS, REFERRALS, WRONGFUL_REFERRALS, DETENTIONS,
                         WRONGFUL_DETENTIONS, WRONGFUL_OUTCOMES})
        order.push_back(k);
    for (const auto& dm : db_metrics) order.push_back(dm.by_false_match);
    for (const auto& dm : db_metrics) order.push_back(dm.by_record_error);
    order.push_back(PERSONS);
    order.push_back(PERSONS_WRONGFUL);
    for (const auto k : order) {
        ReleaseTable table;
        table.name = metrics.list[k];
        table.divisor = summary.replications;
        for (std::size_t p = 0; p < policies.list.size(); ++p) {
            auto count = [&](std::size_t g) -> std::int64_t {
                if (counts.size() <= k || counts[k].size() <= p || counts[k][p].size() <= g)
                    return 0;
                return counts[k][p][g];
            };
            table.add_cell(policies.list[p], table.name, "all", "all", count(0));
            for (std::size_t d = 0; d < D; ++d)
                for (std::size_t c = 0; c < categories[d].list.size(); ++c) {
                    const auto g = group_index.find({d, c});
                    table.add_cell(policies.list[p], table.name, header.dimensions[d],
                                   categories[d].list[c],
                                   g == group_index.end() ? 0 : count(g->second));
                }
        }
        table.add_dimension_margins();
        summary.tables.push_back(std::move(table));
    }
    return summary;
}

}  // namespace stopscan
