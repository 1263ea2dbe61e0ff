#include "detail/cell_parameters.hpp"

#include <string>

#include "stopscan/error.hpp"

namespace stopscan::detail {

std::vector<CellDatabase> resolve_cell_databases(const Scenario& s, const CellTable& cells) {
    const std::size_t n_db = s.databases.size();
    std::vector<CellDatabase> out(cells.size() * n_db);
    for (std::size_t d = 0; d < n_db; ++d) {
        const Database& db = s.databases[d];
        for (std::size_t c = 0; c < cells.size(); ++c) {
            CellDatabase& x = out[c * n_db + d];
            x.enrolment = cells.value(db.enrolment, c);
            x.truth = cells.value(db.truth, c);
            x.truth_unenrolled = cells.value(db.truth_unenrolled, c);
            x.false_flag = cells.value(db.false_flag, c);
            x.missing_flag = cells.value(db.missing_flag, c);
            x.wrong_link = cells.value(db.wrong_link, c);
            x.gallery_flag = cells.value(db.gallery_flag_rate, c);
            x.odds = {cells.value(db.arrest, c), cells.value(db.ho_referral, c),
                      cells.value(db.detention, c)};
        }
    }
    return out;
}

std::vector<double> mean_stops_per_person(const Scenario& s, const CellTable& cells) {
    double mass = 0;
    for (std::size_t c = 0; c < cells.size(); ++c)
        mass += static_cast<double>(cells.population(c)) * cells.value(s.propensity, c);
    std::vector<double> mu(cells.size(), 0.0);
    // Beyond a million stops per person the stop-count sampler's table would not fit; no real
    // scenario is near it (the default has about 0.001).
    constexpr double MAX_MEAN_STOPS = 1e6;
    for (std::size_t c = 0; c < cells.size(); ++c) {
        if (mass <= 0 || cells.population(c) <= 0) continue;
        mu[c] = static_cast<double>(s.stops_total) * cells.value(s.propensity, c) / mass;
        if (mu[c] > MAX_MEAN_STOPS)
            throw InputError(
                s.settings.source().empty() ? "default scenario" : s.settings.source(),
                "stops.total", std::to_string(s.stops_total),
                "gives " + std::to_string(mu[c]) + " stops per person in cell " + cells.label(c) +
                    ": at most 1e6 per person are supported; raise the population or lower "
                    "stops.total");
    }
    return mu;
}

}  // namespace stopscan::detail
