// Bit-identical results for any thread count and any split of the work (MODEL.md §9).
#include <oneapi/tbb/global_control.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "stopscan/audit_log.hpp"
#include "stopscan/engine.hpp"
#include "stopscan/summary.hpp"
#include "stopscan/writers.hpp"
#include "support/temp_dir.hpp"

using namespace stopscan;

namespace {

std::shared_ptr<const Scenario> scenario() {
    auto settings = Settings::parse_ini(default_scenario_text(), "");
    settings.apply_override("stops.total=30000");
    return std::make_shared<const Scenario>(load_scenario(settings));
}

RunPlan plan(int threads, std::size_t grain) {
    RunOptions options;
    options.replications = 6;
    options.seed = 99;
    options.threads = threads;
    RunPlan p = make_run_plan(scenario(), options);
    p.grain = grain;
    return p;
}

}  // namespace

TEST_CASE("summary.csv is byte-identical for 1, 2 and 4 threads and any grain", "[determinism]") {
    const Results reference = Engine(plan(1, 1)).run();
    REQUIRE(reference.threads_used == 1);
    const std::string expected =
        summary_csv(summarize(reference)) + effects_csv(summarize(reference));
    for (const int threads : {1, 2, 4}) {
        for (const std::size_t grain :
             {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{100000}}) {
            const Results r = Engine(plan(threads, grain)).run();
            INFO("threads " << threads << ", grain " << grain);
            // The thread count actually in effect, not just the one asked for (4 oversubscribes 2
            // cores).
            CHECK(r.threads_used == threads);
            CHECK(r.counts == reference.counts);
            CHECK(summary_csv(summarize(r)) + effects_csv(summarize(r)) == expected);
        }
    }
}

TEST_CASE("the serial path and the parallel path give the same tallies", "[determinism]") {
    const Engine engine(plan(2, 16));
    for (std::int64_t rep = 0; rep < 3; ++rep)
        CHECK(engine.run_replication(rep, false) == engine.run_replication(rep, true));
}

TEST_CASE("a run repeated gives the same results, another seed does not", "[determinism]") {
    const Results a = Engine(plan(2, 0)).run();
    const Results b = Engine(plan(2, 0)).run();
    CHECK(a.counts == b.counts);
    RunPlan other = plan(2, 0);
    other.seed = 100;
    CHECK(Engine(other).run().counts != a.counts);
}

TEST_CASE("replication r does not depend on how many replications are run", "[determinism]") {
    RunPlan few = plan(2, 0);
    few.replications = 2;
    const Results a = Engine(few).run();
    const Results b = Engine(plan(2, 0)).run();
    REQUIRE(b.counts.size() == 3 * a.counts.size());
    CHECK(std::equal(a.counts.begin(), a.counts.end(), b.counts.begin()));
}

TEST_CASE("a run with a stop cap is identical for any thread count and grain", "[determinism]") {
    RunPlan reference_plan = plan(1, 1);
    reference_plan.max_stops_per_person = 2;
    const Results reference = Engine(reference_plan).run();
    CHECK(reference.counts != Engine(plan(1, 1)).run().counts);  // the cap changes the counts
    for (const int threads : {2, 4})
        for (const std::size_t grain : {std::size_t{7}, std::size_t{0}}) {
            RunPlan p = plan(threads, grain);
            p.max_stops_per_person = 2;
            const Results r = Engine(p).run();
            INFO("threads " << threads << ", grain " << grain);
            CHECK(r.threads_used == threads);
            CHECK(r.counts == reference.counts);
        }
}

TEST_CASE("an audit log leaves the tallies unchanged and is byte-identical for 1, 2 and 4 threads",
          "[determinism][audit_log]") {
    stopscan::test::TempDir dir;
    auto settings = Settings::parse_ini(default_scenario_text(), "");
    settings.apply_override("stops.total=2000");
    const auto small = std::make_shared<const Scenario>(load_scenario(settings));
    // The log's text and the run's results.
    auto logged_run = [&](int threads, const std::string& name) {
        RunOptions options;
        options.replications = 3;
        options.seed = 5;
        options.threads = threads;
        const std::string path = (dir.path() / name).string();
        AuditLogWriter writer(path, AuditKey::from_bytes(std::string(32, 'k')),
                              {{"ethnicity", "sex", "age", "status"}, "test"});
        const Engine engine(make_run_plan(small, options));
        Results results = engine.run({}, &writer);
        writer.finish();
        std::ifstream f(path, std::ios::binary);
        std::stringstream text;
        text << f.rdbuf();
        return std::make_pair(text.str(), std::move(results));
    };
    RunOptions options;
    options.replications = 3;
    options.seed = 5;
    const Results plain = Engine(make_run_plan(small, options)).run();
    const auto [reference, r1] = logged_run(1, "t1.jsonl");
    CHECK(r1.counts == plain.counts);
    CHECK(verify_audit_log((dir.path() / "t1.jsonl").string()).intact);
    CHECK(std::count(reference.begin(), reference.end(), '\n') > 1000);
    for (const int threads : {2, 4}) {
        INFO("threads " << threads);
        const auto [text, r] = logged_run(threads, "t" + std::to_string(threads) + ".jsonl");
        CHECK(text == reference);
        CHECK(r.threads_used == threads);
        CHECK(r.counts == plain.counts);
    }
    // Extending a logged run continues the log: the same bytes as one longer run.
    RunOptions two = options;
    two.replications = 2;
    const std::string extended_path = (dir.path() / "extended.jsonl").string();
    {
        AuditLogWriter writer(extended_path, AuditKey::from_bytes(std::string(32, 'k')),
                              {{"ethnicity", "sex", "age", "status"}, "test"});
        const Engine engine(make_run_plan(small, two));
        Results e = engine.run({}, &writer);
        engine.extend(e, 1, {}, &writer);
        writer.finish();
        CHECK(e.counts == plain.counts);
    }
    std::ifstream f(extended_path, std::ios::binary);
    std::stringstream text;
    text << f.rdbuf();
    CHECK(text.str() == reference);
}
