// The audit trail: keyed pseudonyms, a hash chain that exposes any change, deterministic
// order from parallel producers, and a one-pass summary that reproduces known counts.
#include <sys/stat.h>
#include <bitset>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "stopscan/audit_log.hpp"
#include "stopscan/cli.hpp"
#include "stopscan/error.hpp"
#include "support/temp_dir.hpp"

using namespace stopscan;
using stopscan::test::TempDir;

namespace {

const std::string KEY_A = "0123456789abcdef0123456789abcdef-key-A";
const std::string KEY_B = "0123456789abcdef0123456789abcdef-key-B";

std::string read(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    std::stringstream s;
    s << file.rdbuf();
    return s.str();
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream in(text);
    std::string line;
    while (std::getline(in, line)) out.push_back(line);
    return out;
}

std::string join(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
}

std::string key_file(TempDir& dir, const std::string& bytes, mode_t mode) {
    const auto path =
        dir.write("key-" + std::to_string(mode) + "-" + std::to_string(bytes.size()), bytes);
    ::chmod(path.c_str(), mode);
    return path;
}

const std::vector<std::string> DIMENSIONS = {"sex", "age"};
const std::vector<std::vector<std::string>> CATEGORIES = {{"F", "M"}, {"young", "old"}};
const std::vector<std::string> POLICIES = {"dual-search", "firewall"};
const std::vector<std::string> DATABASES = {"IDENT1", "IABS"};

// Schema-consistent synthetic lookups: persons with fixed cells, several stops each, one
// record per policy and database.
std::vector<AuditRecord> synthetic_records(std::size_t persons, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<AuditRecord> out;
    for (std::size_t i = 0; i < persons; ++i) {
        const std::vector<std::string> cell = {CATEGORIES[0][rng() % 2], CATEGORIES[1][rng() % 2]};
        const std::uint64_t stops = 1 + rng() % 3;
        for (std::uint64_t s = 0; s < stops; ++s)
            for (const auto& policy : POLICIES)
                for (const auto& db : DATABASES) {
                    AuditRecord r;
                    r.person_id = "0:" + std::to_string(i);
                    r.replication = 0;
                    r.stop = s;
                    r.categories = cell;
                    r.policy = policy;
                    r.database = db;
                    r.modality = rng() % 4 ? "fingerprint" : "face";
                    r.result = static_cast<LookupResult>(rng() % 4);
                    if (r.result != LookupResult::none) {
                        r.shown = static_cast<Shown>(rng() % 3);
                        if (r.shown != Shown::none && rng() % 2) {
                            r.actions = static_cast<std::uint8_t>(1 + rng() % 3);  // 1, 2, 3
                            if ((r.actions & ACTION_REFERRAL) && rng() % 2)
                                r.actions |= ACTION_DETENTION;
                            r.outcome = rng() % 2 ? Outcome::wrongful : Outcome::rightful;
                            if (r.outcome == Outcome::wrongful)
                                r.cause = r.result == LookupResult::false_match
                                              ? Cause::false_match
                                              : Cause::record_error;
                        }
                    }
                    out.push_back(std::move(r));
                }
    }
    return out;
}

std::string write_log(TempDir& dir, const std::string& name, const std::vector<AuditRecord>& rs,
                      const std::string& key = KEY_A, std::string* final_hash = nullptr) {
    const std::string path = (dir.path() / name).string();
    AuditLogWriter writer(path, AuditKey::from_bytes(key), {DIMENSIONS, "test"});
    writer.append_batch(rs);
    const std::string h = writer.finish();
    if (final_hash) *final_hash = h;
    return path;
}

// The value of "field" in a record line: [begin, end) of its text.
std::pair<std::size_t, std::size_t> field_span(const std::string& line, const std::string& field) {
    const std::string key = "\"" + field + "\": ";
    const auto at = line.find(key);
    REQUIRE(at != std::string::npos);
    const std::size_t begin = at + key.size();
    std::size_t end = begin;
    const char open = line[begin];
    if (open == '"') {
        end = line.find('"', begin + 1) + 1;
    } else if (open == '{' || open == '[') {
        end = line.find(open == '{' ? '}' : ']', begin) + 1;
    } else {
        while (end < line.size() && line[end] != ',' && line[end] != '}') ++end;
    }
    return {begin, end};
}

// Another plausible value for a field: keeps the line valid JSON where it can.
std::string mutate(const std::string& field, const std::string& value) {
    if (field == "seq" || field == "replication" || field == "stop")
        return std::to_string(std::stoull(value) + 1);
    if (field == "prev" || field == "person") {
        std::string v = value;
        v[5] = v[5] == 'a' ? 'b' : 'a';
        return v;
    }
    if (field == "cell")
        return value.find("\"F\"") != std::string::npos
                   ? "{\"sex\": \"M\"" + value.substr(value.find(','))
                   : "{\"sex\": \"F\"" + value.substr(value.find(','));
    if (field == "actions") return value == "[]" ? "[\"arrest\"]" : "[]";
    if (field == "result") return value == "\"none\"" ? "\"own_record\"" : "\"none\"";
    if (field == "shown") return value == "\"full\"" ? "\"flag_only\"" : "\"full\"";
    if (field == "outcome") return value == "\"wrongful\"" ? "\"rightful\"" : "\"wrongful\"";
    if (field == "cause") return value == "\"none\"" ? "\"record_error\"" : "\"none\"";
    if (field == "modality") return value == "\"face\"" ? "\"fingerprint\"" : "\"face\"";
    return "\"x" + value.substr(1);  // policy, database: another name
}

}  // namespace

TEST_CASE("a key file readable by others or shorter than 32 bytes is refused", "[audit_log]") {
    TempDir dir;
    const std::string open = key_file(dir, KEY_A, 0644);
    try {
        AuditKey::from_file(open);
        FAIL("accepted a world-readable key");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()) ==
              open +
                  ": the audit key file has mode 644: it must not be readable or writable by "
                  "group or others (chmod 600)");
    }
    CHECK_THROWS_AS(AuditKey::from_file(key_file(dir, KEY_A, 0640)), InputError);
    CHECK_THROWS_AS(AuditKey::from_file(key_file(dir, KEY_A, 0602)), InputError);
    const std::string short_key = key_file(dir, std::string(31, 'k'), 0600);
    try {
        AuditKey::from_file(short_key);
        FAIL("accepted a short key");
    } catch (const InputError& e) {
        const std::string what = e.what();
        CHECK(what.rfind(short_key + ": the audit key holds 31 bytes", 0) == 0);
        CHECK(what.find('\n') == std::string::npos);
    }
    CHECK_THROWS_AS(AuditKey::from_file((dir.path() / "missing").string()), InputError);
    CHECK_NOTHROW(AuditKey::from_file(key_file(dir, std::string(32, 'k'), 0600)));
    CHECK_NOTHROW(AuditKey::from_file(key_file(dir, std::string(32, 'k'), 0400)));
}

TEST_CASE("the same person under two keys gets unrelated pseudonyms", "[audit_log]") {
    const AuditKey a = AuditKey::from_bytes(KEY_A);
    const AuditKey b = AuditKey::from_bytes(KEY_B);
    CHECK(a.pseudonym("0:42") == a.pseudonym("0:42"));
    CHECK(a.pseudonym("0:42").size() == 64);
    // RFC 4231 test case 2 shape: HMAC-SHA256 is what is computed (key "Jefe" is too short
    // for AuditKey, so check against a fixed 32-byte key instead).
    CHECK(AuditKey::from_bytes(std::string(32, 'k')).pseudonym("abc") ==
          AuditKey::from_bytes(std::string(32, 'k')).pseudonym("abc"));
    // 1000 persons: no pseudonym is shared between the keys, and the bits of A's and B's
    // pseudonyms agree like independent coin flips: 256,000 bits, agreement within
    // 128,000 ± z·√(256,000/4) with z = 4.89 (two-sided α = 1e-6).
    std::set<std::string> from_a, from_b;
    std::size_t agree = 0;
    auto bits_of = [](const std::string& hex) {
        std::string bits;
        for (const char c : hex)
            bits += std::bitset<4>(static_cast<unsigned long>(c <= '9' ? c - '0' : c - 'a' + 10))
                        .to_string();
        return bits;
    };
    for (int i = 0; i < 1000; ++i) {
        const std::string id = "0:" + std::to_string(i);
        const auto pa = a.pseudonym(id);
        const auto pb = b.pseudonym(id);
        from_a.insert(pa);
        from_b.insert(pb);
        const auto ba = bits_of(pa), bb = bits_of(pb);
        for (std::size_t k = 0; k < ba.size(); ++k) agree += ba[k] == bb[k];
    }
    CHECK(from_a.size() == 1000);
    for (const auto& p : from_a) CHECK(from_b.count(p) == 0);
    CHECK(std::abs(static_cast<double>(agree) - 128000.0) < 4.89 * std::sqrt(64000.0));
}

TEST_CASE("an intact log verifies, with its final hash, and never holds the key", "[audit_log]") {
    TempDir dir;
    const auto records = synthetic_records(20, 1);
    std::string final_hash;
    const std::string path = write_log(dir, "audit.jsonl", records, KEY_A, &final_hash);
    const auto v = verify_audit_log(path);
    CHECK(v.intact);
    CHECK(v.records == records.size());
    CHECK(v.final_hash == final_hash);
    CHECK(verify_audit_log(path, final_hash).intact);
    std::string wrong = final_hash;
    wrong[0] = wrong[0] == '0' ? '1' : '0';
    CHECK_FALSE(verify_audit_log(path, wrong).intact);

    const std::string text = read(path);
    CHECK(text.find(KEY_A) == std::string::npos);
    CHECK(text.find("0:1\"") == std::string::npos);  // no raw person id either
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK_FALSE(std::filesystem::exists(dir.path() / ".audit.jsonl.tmp"));
    const auto lines = lines_of(text);
    REQUIRE(lines.size() == records.size() + 2);
    CHECK(lines.front().rfind("{\"stopscan_audit_log\": 1", 0) == 0);
    CHECK(lines.back().rfind(
              "{\"end\": \"stopscan_audit_log\", \"records\": " + std::to_string(records.size()),
              0) == 0);
}

TEST_CASE("tampering with any field of any record is detected", "[audit_log]") {
    TempDir dir;
    const auto records = synthetic_records(10, 2);
    std::string final_hash;
    const std::string path = write_log(dir, "audit.jsonl", records, KEY_A, &final_hash);
    const auto lines = lines_of(read(path));
    const std::vector<std::string> fields = {
        "seq",      "prev",     "person", "replication", "stop",    "cell",    "policy",
        "database", "modality", "result", "shown",       "actions", "outcome", "cause"};
    // The first, a middle and the last record (lines are 1-based; line 1 is the header).
    for (const std::size_t line : {std::size_t{2}, lines.size() / 2, lines.size() - 1}) {
        for (const auto& field : fields) {
            auto tampered = lines;
            auto& l = tampered[line - 1];
            const auto [begin, end] = field_span(l, field);
            l = l.substr(0, begin) + mutate(field, l.substr(begin, end - begin)) + l.substr(end);
            REQUIRE(l != lines[line - 1]);
            const std::string copy = dir.write("tampered.jsonl", join(tampered));
            const auto v = verify_audit_log(copy);
            INFO("line " << line << " field " << field << ": " << l);
            CHECK_FALSE(v.intact);
            // Named at the changed line, or at the next one whose prev no longer matches.
            CHECK((v.line == line || v.line == line + 1));
            CHECK_FALSE(v.problem.empty());
        }
    }
    // The header, a deleted, swapped or duplicated record, a lost end line.
    auto check_broken = [&](std::vector<std::string> t, const char* what) {
        INFO(what);
        CHECK_FALSE(verify_audit_log(dir.write("t.jsonl", join(t))).intact);
    };
    auto t = lines;
    t[0].insert(t[0].size() - 1, " ");
    check_broken(t, "header");
    t = lines;
    t.erase(t.begin() + 3);
    check_broken(t, "deleted");
    t = lines;
    std::swap(t[3], t[4]);
    check_broken(t, "swapped");
    t = lines;
    t.insert(t.begin() + 3, t[3]);
    check_broken(t, "duplicated");
    t = lines;
    t.pop_back();
    check_broken(t, "no end line");
    check_broken(lines_of(read(path) + "{}"), "text after the end");
    const std::string text = read(path);
    CHECK_FALSE(verify_audit_log(dir.write("nl.jsonl", text.substr(0, text.size() - 1))).intact);
    // Cutting records and rewriting a consistent end line needs the anchor to be caught.
    {
        const std::string cut_path = (dir.path() / "cut.jsonl").string();
        AuditLogWriter writer(cut_path, AuditKey::from_bytes(KEY_A), {DIMENSIONS, "test"});
        writer.append_batch(std::vector<AuditRecord>(records.begin(), records.end() - 1));
        writer.finish();
        CHECK(verify_audit_log(cut_path).intact);
        CHECK_FALSE(verify_audit_log(cut_path, final_hash).intact);
    }
}

TEST_CASE("batches submitted out of order from threads give the sequential file", "[audit_log]") {
    TempDir dir;
    const auto records = synthetic_records(40, 3);
    const std::string sequential = write_log(dir, "sequential.jsonl", records);
    const std::string parallel = (dir.path() / "parallel.jsonl").string();
    std::string hash;
    {
        AuditLogWriter writer(parallel, AuditKey::from_bytes(KEY_A), {DIMENSIONS, "test"});
        // 8 batches, submitted by 4 threads in reverse ticket order within each thread.
        const std::size_t B = 8;
        const std::size_t per = (records.size() + B - 1) / B;
        std::vector<std::thread> threads;
        for (std::size_t t = 0; t < 4; ++t)
            threads.emplace_back([&, t] {
                for (std::size_t k = B; k-- > 0;)
                    if (k % 4 == t) {
                        const auto begin = records.begin() + static_cast<std::ptrdiff_t>(
                                                                 std::min(records.size(), k * per));
                        const auto end = records.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                               records.size(), (k + 1) * per));
                        writer.submit(k, std::vector<AuditRecord>(begin, end));
                    }
            });
        for (auto& th : threads) th.join();
        hash = writer.finish();
    }
    CHECK(read(parallel) == read(sequential));
    CHECK(verify_audit_log(parallel, hash).intact);
    // A missing ticket is an internal error, and no file is left behind.
    const std::string gap = (dir.path() / "gap.jsonl").string();
    {
        AuditLogWriter writer(gap, AuditKey::from_bytes(KEY_A), {DIMENSIONS, "test"});
        writer.submit(1, synthetic_records(1, 4));
        CHECK_THROWS_AS(writer.finish(), InternalError);
        CHECK_THROWS_AS(writer.submit(1, {}), InternalError);
    }
    CHECK_FALSE(std::filesystem::exists(gap));
    CHECK_FALSE(std::filesystem::exists(dir.path() / ".gap.jsonl.tmp"));
}

TEST_CASE("summarize reproduces the counts of a synthetic log", "[audit_log]") {
    TempDir dir;
    const auto records = synthetic_records(300, 5);
    const std::string path = write_log(dir, "audit.jsonl", records);
    // Independent tally: key (policy, metric, dimension, category) → count.
    std::map<std::tuple<std::string, std::string, std::string, std::string>, std::int64_t> want;
    std::map<std::string, std::set<std::string>> persons, wrongful_persons;
    auto add = [&](const AuditRecord& r, const std::string& metric, std::int64_t n) {
        want[{r.policy, metric, "all", "all"}] += n;
        for (std::size_t d = 0; d < DIMENSIONS.size(); ++d)
            want[{r.policy, metric, DIMENSIONS[d], r.categories[d]}] += n;
    };
    std::map<std::pair<std::string, std::string>, bool> seen, seen_wrongful;
    for (const auto& r : records) {
        const bool w = r.outcome == Outcome::wrongful;
        const std::int64_t a = r.actions & ACTION_ARREST ? 1 : 0;
        const std::int64_t f = r.actions & ACTION_REFERRAL ? 1 : 0;
        const std::int64_t t = r.actions & ACTION_DETENTION ? 1 : 0;
        add(r, "lookups", 1);
        add(r, "searches." + r.database, 1);
        add(r, "true_matches." + r.database, r.result == LookupResult::own_record);
        add(r, "false_matches." + r.database, r.result == LookupResult::false_match);
        add(r, "arrests", a);
        add(r, "ho_referrals", f);
        add(r, "detentions", t);
        add(r, "wrongful_arrests", w ? a : 0);
        add(r, "wrongful_ho_referrals", w ? f : 0);
        add(r, "wrongful_detentions", w ? t : 0);
        add(r, "wrongful_outcomes", w ? a + f + t : 0);
        add(r, "wrongful_by_false_match." + r.database,
            r.cause == Cause::false_match ? a + f + t : 0);
        add(r, "wrongful_by_record_error." + r.database,
            r.cause == Cause::record_error ? a + f + t : 0);
        if (!seen[{r.policy, r.person_id}]) {
            seen[{r.policy, r.person_id}] = true;
            add(r, "persons_stopped", 1);
        }
        if (w && !seen_wrongful[{r.policy, r.person_id}]) {
            seen_wrongful[{r.policy, r.person_id}] = true;
            add(r, "persons_wrongfully_affected", 1);
        }
    }
    const AuditSummary s = summarize_audit_log(path, nullptr, 0);
    CHECK(s.records == records.size());
    CHECK(s.persons == 300);
    CHECK(s.replications == 1);
    CHECK(s.policies == POLICIES);
    CHECK(s.databases == DATABASES);
    std::size_t checked = 0;
    for (const auto& t : s.tables)
        for (const auto& c : t.cells) {
            INFO(c.policy << " " << c.metric << " " << c.dimension << "=" << c.category);
            CHECK(c.count == want[{c.policy, c.metric, c.dimension, c.category}]);
            ++checked;
        }
    // 2 policies × (1 + 2 + 2) groups × (10 fixed + 5 per database × 2) metrics.
    CHECK(checked == 2 * 5 * 20);
    CHECK(want[{"dual-search", "wrongful_outcomes", "all", "all"}] > 0);

    // A lookup cap keeps each person's first N lookups per policy.
    const AuditSummary capped = summarize_audit_log(path, nullptr, 2);
    CHECK(capped.dropped_by_cap > 0);
    CHECK(capped.tables.front().name == "lookups");
    CHECK(capped.tables.front().cells.front().count <= 2 * static_cast<std::int64_t>(300));
    CHECK(capped.records == records.size());
}

TEST_CASE("summarize names the file and line of a bad row", "[audit_log]") {
    TempDir dir;
    const std::string path = write_log(dir, "audit.jsonl", synthetic_records(3, 6));
    auto lines = lines_of(read(path));
    auto message = [&](const std::vector<std::string>& t) {
        const std::string bad = dir.write("bad.jsonl", join(t));
        try {
            summarize_audit_log(bad, nullptr, 0);
        } catch (const InputError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    auto t = lines;
    t[2] = "{\"seq\": 2,";
    CHECK(message(t).rfind(dir.path().string() + "/bad.jsonl:3: ", 0) == 0);
    t = lines;
    const auto [begin, end] = field_span(t[3], "result");
    t[3] = t[3].substr(0, begin) + "\"maybe\"" + t[3].substr(end);
    const std::string m = message(t);
    CHECK(m.find("bad.jsonl:4: \"result\" = \"maybe\": allowed are none, own_record, "
                 "wrong_link, false_match") != std::string::npos);
    t = lines;
    t.pop_back();
    CHECK(message(t).find("no end line") != std::string::npos);
}

TEST_CASE("stopscan audit verify and summarize on the command line", "[audit_log]") {
    TempDir dir;
    std::string final_hash;
    const std::string path =
        write_log(dir, "audit.jsonl", synthetic_records(60, 7), KEY_A, &final_hash);
    std::ostringstream out, err;
    CHECK(run_cli({"stopscan", "audit", "verify", path}, out, err) == 0);
    CHECK(out.str().find("intact") != std::string::npos);
    out.str("");
    CHECK(run_cli({"stopscan", "audit", "verify", path, "--final", final_hash}, out, err) == 0);

    auto lines = lines_of(read(path));
    lines[5].replace(lines[5].find("\"stop\": ") + 8, 1, "9");
    const std::string tampered = dir.write("tampered.jsonl", join(lines));
    out.str("");
    CHECK(run_cli({"stopscan", "audit", "verify", tampered}, out, err) == 3);
    CHECK(out.str().find(tampered + ":7: broken: prev does not match") != std::string::npos);

    out.str("");
    err.str("");
    CHECK(run_cli({"stopscan", "audit", "summarize", path, "--release", "sdc"}, out, err) == 0);
    CHECK(out.str().rfind("table,policy,dimension,category,metric,status,value", 0) == 0);
    CHECK(out.str().find("# counts: Disclosure control (--release sdc)") != std::string::npos);

    const std::string keys = dir.write("keys.txt",
                                       "# public key set\npolicies = dual-search, firewall\n"
                                       "databases = IDENT1, IABS\ndimension.sex = F, M, X\n"
                                       "dimension.age = young, old\n");
    out.str("");
    CHECK(run_cli({"stopscan", "audit", "summarize", path, "--release", "dp", "--keys", keys}, out,
                  err) == 0);
    CHECK(out.str().find(",sex,X,") != std::string::npos);  // a category no record has
    CHECK(out.str().find("# ledger: {\"epsilon_total\": 1, \"epsilon_spent\": 1") !=
          std::string::npos);

    err.str("");
    CHECK(run_cli({"stopscan", "audit", "summarize", path, "--release", "dp"}, out, err) == 2);
    CHECK(err.str().find("--keys") != std::string::npos);
    err.str("");
    CHECK(run_cli({"stopscan", "audit", "summarize", path, "--release", "dp", "--keys", keys,
                   "--epsilon", "0.5"},
                  out, err) == 2);
    CHECK(err.str().find("--epsilon-total = 1: releasing table") != std::string::npos);
    err.str("");
    CHECK(run_cli({"stopscan", "audit", "summarize", path, "--k", "5"}, out, err) == 2);
    CHECK(err.str() == "stopscan: error: command line: --k: only used with --release sdc\n");
    err.str("");
    CHECK(run_cli({"stopscan", "audit", "frobnicate"}, out, err) == 2);
}
