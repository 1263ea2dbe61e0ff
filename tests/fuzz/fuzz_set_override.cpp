// libFuzzer target: `--set key=value` overrides (one per input line, at most 16) applied to
// the embedded default scenario, then load_scenario and the scenario of one replication, as
// `stopscan run --set ...` does before simulating. InputError is the only accepted way to
// refuse an input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "stopscan/error.hpp"
#include "stopscan/scenario.hpp"
#include "stopscan/settings.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const stopscan::Settings defaults =
        stopscan::Settings::parse_ini(stopscan::default_scenario_text(), "");
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        stopscan::Settings settings = defaults;
        std::size_t start = 0;
        for (int n = 0; n < 16 && start <= text.size(); ++n) {
            auto end = text.find('\n', start);
            if (end == std::string_view::npos) end = text.size();
            settings.apply_override(std::string(text.substr(start, end - start)));
            start = end + 1;
        }
        const auto scenario = stopscan::load_scenario(settings);
        (void)stopscan::scenario_for_replication(scenario, 12345, 0);
    } catch (const stopscan::InputError& e) {
        stopscan::fuzz::check_one_line(e.what());
    }
    return 0;
}
