// libFuzzer target: scenario INI text -> Settings::parse_ini -> load_scenario, then what
// `stopscan validate` does (run plan, engine model) and the scenarios of two replications
// (uncertain parameters drawn). InputError is the only accepted way to refuse an input.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "fuzz_support.hpp"
#include "stopscan/engine.hpp"
#include "stopscan/error.hpp"
#include "stopscan/run_plan.hpp"
#include "stopscan/scenario.hpp"
#include "stopscan/settings.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const auto settings = stopscan::Settings::parse_ini(text, "fuzz.ini");
        auto scenario =
            std::make_shared<const stopscan::Scenario>(stopscan::load_scenario(settings));
        const stopscan::Engine engine(stopscan::make_run_plan(scenario, {}));
        for (std::uint64_t replication = 0; replication < 2; ++replication) {
            auto drawn = std::make_shared<const stopscan::Scenario>(
                stopscan::scenario_for_replication(*scenario, 12345, replication));
            const stopscan::Engine drawn_engine(stopscan::make_run_plan(drawn, {}));
        }
    } catch (const stopscan::InputError& e) {
        stopscan::fuzz::check_one_line(e.what());
    }
    return 0;
}
