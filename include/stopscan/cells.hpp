// Cells: one category of every dimension (MODEL.md §2). Cell shares are products of the
// (conditional) category shares; per-cell parameters are base × Π factors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace stopscan {

struct Dimension;
struct CellParameter;

/// The resolved cells of a list of dimensions, in mixed-radix order (the first dimension
/// varies slowest).
class CellTable {
public:
    /// Resolves the cells. `population` is split by share and rounded to whole persons.
    /// Throws InputError if there are more than MAX_CELLS cells.
    CellTable(const std::vector<Dimension>& dimensions, std::int64_t population);

    /// A resource limit: more cells than this cannot be tallied in memory per replication.
    static constexpr std::size_t MAX_CELLS = 100000;

    std::size_t size() const noexcept { return shares_.size(); }
    std::size_t dimension_count() const noexcept { return radix_.size(); }
    /// Category index of dimension `d` in `cell`.
    std::size_t category(std::size_t cell, std::size_t d) const noexcept {
        return categories_[cell * radix_.size() + d];
    }
    /// Share of the population in `cell` (sums to 1 over cells).
    double share(std::size_t cell) const noexcept { return shares_[cell]; }
    /// Persons in `cell`: population × share, rounded to the nearest whole person.
    std::int64_t population(std::size_t cell) const noexcept { return population_[cell]; }
    /// base × Π factor(dimension, category of the cell).
    double value(const CellParameter& parameter, std::size_t cell) const noexcept;
    /// "ethnicity=Black, sex=Male, ..." for messages.
    std::string label(std::size_t cell) const;

private:
    const std::vector<Dimension>* dimensions_;
    std::vector<std::size_t> radix_;
    std::vector<std::size_t> categories_;
    std::vector<double> shares_;
    std::vector<std::int64_t> population_;
};

}  // namespace stopscan
