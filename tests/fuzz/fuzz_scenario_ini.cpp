// libFuzzer target: scenario INI text -> Settings::parse_ini -> load_scenario (the whole
// validation), then the scenarios of two replications (uncertain parameters drawn and
// re-validated). InputError is the only accepted way to refuse an input. The engine's model
// (what `stopscan validate` builds after this) costs ~5 ms per input under ASan; fuzz_cli
// covers it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_support.hpp"
#include "stopscan/error.hpp"
#include "stopscan/scenario.hpp"
#include "stopscan/settings.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const auto settings = stopscan::Settings::parse_ini(text, "fuzz.ini");
        const auto scenario = stopscan::load_scenario(settings);
        for (std::uint64_t replication = 0; replication < 2; ++replication)
            (void)stopscan::scenario_for_replication(scenario, 12345, replication);
    } catch (const stopscan::InputError& e) {
        stopscan::fuzz::check_one_line(e.what());
    }
    return 0;
}
