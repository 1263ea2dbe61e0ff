#include "stopscan/cells.hpp"

#include <cmath>

#include "stopscan/error.hpp"
#include "stopscan/scenario.hpp"

namespace stopscan {

CellTable::CellTable(const std::vector<Dimension>& dimensions, std::int64_t population)
    : dimensions_(&dimensions) {
    std::size_t count = 1;
    for (const auto& d : dimensions) {
        radix_.push_back(d.categories.size());
        count *= d.categories.size();
        if (count > MAX_CELLS)
            throw InputError(
                "scenario", "dimensions", "",
                "more than " + std::to_string(MAX_CELLS) +
                    " cells (product of category counts): use fewer dimensions or categories");
    }
    const std::size_t n_dims = radix_.size();
    categories_.resize(count * n_dims);
    shares_.resize(count);
    population_.resize(count);
    std::vector<std::size_t> digit(n_dims, 0);
    for (std::size_t cell = 0; cell < count; ++cell) {
        double share = 1.0;
        for (std::size_t d = 0; d < n_dims; ++d) {
            const auto& dim = dimensions[d];
            const std::size_t row = dim.parent ? digit[*dim.parent] : 0;
            share *= dim.shares[row][digit[d]];
            categories_[cell * n_dims + d] = digit[d];
        }
        shares_[cell] = share;
        population_[cell] = std::llround(static_cast<double>(population) * share);
        for (std::size_t d = n_dims; d-- > 0;) {  // odometer: last dimension varies fastest
            if (++digit[d] < radix_[d]) break;
            digit[d] = 0;
        }
    }
}

double CellTable::value(const CellParameter& parameter, std::size_t cell) const noexcept {
    double v = parameter.base;
    for (std::size_t d = 0; d < radix_.size(); ++d) v *= parameter.factors[d][category(cell, d)];
    return v;
}

std::string CellTable::label(std::size_t cell) const {
    std::string out;
    for (std::size_t d = 0; d < radix_.size(); ++d) {
        if (d > 0) out += ", ";
        const auto& dim = (*dimensions_)[d];
        out += dim.name + "=" + dim.categories[category(cell, d)];
    }
    return out;
}

}  // namespace stopscan
