// Per-cell quantities shared by the engine and the closed form, resolved once from the
// scenario's base × factors, so the two calculations cannot read the scenario differently.
#pragma once

#include <vector>

#include "stopscan/cells.hpp"
#include "stopscan/scenario.hpp"
#include "stopscan/stop_rules.hpp"

namespace stopscan::detail {

/// Probabilities of one cell in one database.
struct CellDatabase {
    double enrolment, truth, truth_unenrolled, false_flag, missing_flag, wrong_link, gallery_flag;
    ActionOdds odds;
};

/// [cell * databases + d] for every cell and database of the scenario.
std::vector<CellDatabase> resolve_cell_databases(const Scenario& scenario, const CellTable& cells);

/// Mean stops per person of each cell (MODEL.md §3): total × propensity / Σ population ×
/// propensity. Throws InputError when a cell's mean exceeds what the stop-count sampler supports.
std::vector<double> mean_stops_per_person(const Scenario& scenario, const CellTable& cells);

}  // namespace stopscan::detail
