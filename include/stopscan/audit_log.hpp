// A tamper-evident audit trail of lookups (docs/audit-log.md): one JSON Lines record per
// database lookup, people named only by a keyed pseudonym (HMAC-SHA256), each record
// carrying the SHA-256 of the line before it, so that changing, inserting or removing any
// line breaks the chain. Written in a stream; checked and summarised in one pass each.
#pragma once

#include <cstdint>
#include <cstdio>
#include <iosfwd>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stopscan/disclosure.hpp"

namespace stopscan {

/// The secret key of the pseudonyms. It is never written anywhere, and a copy is wiped on
/// destruction.
class AuditKey {
public:
    /// At least this many bytes (256 bits, the HMAC-SHA256 block-size guidance of RFC 2104).
    static constexpr std::size_t MIN_BYTES = 32;
    /// Reads a key file. Throws InputError naming the file if it cannot be read, is not a
    /// regular file, can be read or written by group or others (mode & 077: `chmod 600`),
    /// or holds fewer than MIN_BYTES bytes.
    static AuditKey from_file(const std::string& path);
    /// A key from bytes (tests, or a key held elsewhere). Throws InputError naming `source`
    /// if shorter than MIN_BYTES.
    static AuditKey from_bytes(std::string bytes, const std::string& source = "audit key");
    ~AuditKey();
    AuditKey(const AuditKey&) = default;
    AuditKey& operator=(const AuditKey&) = default;
    AuditKey(AuditKey&&) = default;
    AuditKey& operator=(AuditKey&&) = default;

    /// HMAC-SHA256(key, person_id) as 64 lowercase hex digits.
    std::string pseudonym(std::string_view person_id) const;

private:
    explicit AuditKey(std::string bytes) : bytes_(std::move(bytes)) {}
    std::string bytes_;
};

/// What a 1:N search returned (the engine's Hit).
enum class LookupResult : std::uint8_t { none, own_record, wrong_link, false_match };
/// What the officer was shown of the result.
enum class Shown : std::uint8_t { none, flag_only, full };
/// Whether the lookup's actions were supported by the person's own circumstances.
enum class Outcome : std::uint8_t { none, rightful, wrongful };
/// Why a wrongful action happened.
enum class Cause : std::uint8_t { none, false_match, record_error };
/// Actions that followed the lookup: a bit set (a referral can be followed by detention, and
/// one flag can lead to an arrest and a referral).
enum AuditAction : std::uint8_t { ACTION_ARREST = 1, ACTION_REFERRAL = 2, ACTION_DETENTION = 4 };

const char* lookup_result_name(LookupResult r) noexcept;
const char* shown_name(Shown s) noexcept;
const char* outcome_name(Outcome o) noexcept;
const char* cause_name(Cause c) noexcept;

/// One lookup: one search of one database at one stop under one policy.
struct AuditRecord {
    /// Stable id of the person (for the simulator "REPLICATION:ENTITY"); only its HMAC is
    /// written.
    std::string person_id;
    std::uint64_t replication = 0;
    std::uint64_t stop = 0;  ///< the person's stop number (0, 1, ...)
    /// The person's category in each dimension of the log's header, in that order.
    std::vector<std::string> categories;
    std::string policy;
    std::string database;
    std::string modality;  ///< "fingerprint" or "face"
    LookupResult result = LookupResult::none;
    Shown shown = Shown::none;
    std::uint8_t actions = 0;  ///< AuditAction bits
    Outcome outcome = Outcome::none;
    Cause cause = Cause::none;
};

/// The first line of a log: it declares the schema and the dimensions of the `cell` field,
/// and its SHA-256 is the genesis of the chain.
struct AuditLogHeader {
    std::vector<std::string> dimensions;
    std::string source;  ///< free text, e.g. "stopscan 0.1.0 run scenarios/default.ini"
};

/// The header line (without newline) for `header`.
std::string audit_header_line(const AuditLogHeader& header);

/// Streams an audit log to a temporary file beside `path` and renames it on finish().
///
/// Order: records get consecutive `seq` numbers in the order they are appended. A parallel
/// producer gets a deterministic file by submit()ting batches with consecutive tickets
/// (0, 1, 2, ...): each batch is written when every lower ticket has been written, so the
/// file is the same whatever the thread count or the order the batches finish in.
class AuditLogWriter {
public:
    /// Creates the temporary file and writes the header. Throws InputError naming `path` if
    /// its directory cannot be written.
    AuditLogWriter(std::string path, AuditKey key, AuditLogHeader header);
    /// Removes the temporary file unless finish() succeeded.
    ~AuditLogWriter();
    AuditLogWriter(const AuditLogWriter&) = delete;
    AuditLogWriter& operator=(const AuditLogWriter&) = delete;

    /// Appends one record (not thread-safe; use submit() from parallel code). Throws
    /// InternalError if the record's categories do not match the header's dimensions or the
    /// file cannot be written.
    void append(const AuditRecord& record);
    /// Appends records in order and flushes.
    void append_batch(const std::vector<AuditRecord>& records);
    /// Thread-safe: hands over the batch with this ticket; batches are written in ticket
    /// order, as soon as all lower tickets have arrived. Memory holds only batches that
    /// arrived ahead of a missing lower ticket. Throws InternalError for a ticket already
    /// submitted.
    void submit(std::uint64_t ticket, std::vector<AuditRecord> batch);
    /// Writes the end line, flushes, syncs, renames the file into place and returns the
    /// SHA-256 hex of the end line: the value to record in the manifest. Throws InternalError
    /// if a ticket below the highest submitted one is missing, or on I/O failure.
    std::string finish();

    /// The ticket submit() expects next (the number of batches written so far, when every
    /// batch has arrived): where a continued producer starts numbering.
    std::uint64_t next_ticket() const;
    std::uint64_t records() const noexcept { return seq_; }
    const std::string& path() const noexcept { return path_; }

private:
    void write_line(const std::string& line);
    std::string path_;
    std::string temporary_;
    AuditKey key_;
    AuditLogHeader header_;
    std::FILE* file_ = nullptr;
    std::string prev_;  ///< SHA-256 hex of the last line written
    std::uint64_t seq_ = 0;
    bool finished_ = false;
    mutable std::mutex mutex_;
    std::uint64_t next_ticket_ = 0;
    std::map<std::uint64_t, std::vector<AuditRecord>> pending_;
};

/// The outcome of checking a log's chain.
struct AuditVerification {
    bool intact = false;
    std::uint64_t records = 0;  ///< records checked before the first problem
    std::string final_hash;     ///< SHA-256 hex of the end line, when intact
    std::uint64_t line = 0;     ///< first broken line (1-based), when not intact
    std::string problem;        ///< what failed there
};

/// Checks a log: the header, each record's seq, prev and fields, the end line's record count
/// and prev, nothing after it; and, if given, that the end line's hash is `expected_final`
/// (from the run's manifest). Stops at the first problem. Throws InputError if the file
/// cannot be opened.
AuditVerification verify_audit_log(const std::string& path,
                                   const std::optional<std::string>& expected_final = {});
/// As above, reading the log from a stream (tests, fuzzing, a log held in memory). A bad
/// log is reported in the result, never thrown; a read error ends the log where it happens.
AuditVerification verify_audit_log(std::istream& in,
                                   const std::optional<std::string>& expected_final = {});

/// The public key set of a release: the policies, databases and categories that get a cell
/// whether or not any record has them (required for dp, so that the table's shape reveals
/// nothing). Read from a small text file (docs/audit-log.md).
struct AuditKeySet {
    std::vector<std::string> policies;
    std::vector<std::string> databases;
    std::vector<std::pair<std::string, std::vector<std::string>>> dimensions;
    /// Parses "policies = a, b", "databases = X, Y" and "dimension.NAME = c1, c2" lines
    /// ('#' comments). Throws InputError with FILE:LINE.
    static AuditKeySet read(const std::string& path);
    /// As read, from a stream; `source` names it in errors (FILE:LINE).
    static AuditKeySet parse(std::istream& in, const std::string& source);
};

/// Per-policy, per-group counts of a log, as release tables (one per metric; names as in
/// summary.csv: searches.DB, false_matches.DB, arrests, wrongful_outcomes,
/// wrongful_by_false_match.DB, persons_stopped, ...; docs/audit-log.md).
struct AuditSummary {
    std::vector<std::string> dimensions;
    std::vector<std::string> policies;
    std::vector<std::string> databases;
    std::int64_t replications = 0;     ///< distinct replication numbers (the divisor)
    std::uint64_t records = 0;         ///< records read
    std::uint64_t dropped_by_cap = 0;  ///< records beyond a person's lookup cap
    std::uint64_t persons = 0;         ///< distinct pseudonyms
    std::vector<ReleaseTable> tables;
};

/// Summarises a log in one streaming pass (it does not check the chain: run verify). Memory:
/// one entry per distinct pseudonym (about 100 bytes), plus the tables. With `keys`, the
/// tables have exactly its cells and a record outside it is an error; without, keys are
/// taken in order of appearance. `max_lookups_per_person` > 0 keeps only each person's
/// first that many lookups under each policy (the contribution bound of dp). Throws
/// InputError `FILE:LINE: problem` for a row that does not follow the schema.
AuditSummary summarize_audit_log(const std::string& path, const AuditKeySet* keys,
                                 std::int64_t max_lookups_per_person);
/// As above, reading the log from a stream; `source` names it in errors (FILE:LINE).
AuditSummary summarize_audit_log(std::istream& in, const std::string& source,
                                 const AuditKeySet* keys, std::int64_t max_lookups_per_person);

/// The most one person adds to one cell of a summary table when each person has at most
/// `max_lookups` lookups per policy (persons_* metrics: 1).
std::int64_t audit_per_cell_bound(const std::string& metric, std::int64_t max_lookups);

}  // namespace stopscan
