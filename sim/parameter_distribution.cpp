#include "stopscan/parameter_distribution.hpp"

#include <boost/math/special_functions/beta.hpp>
#include <charconv>
#include <cmath>
#include <stdexcept>

#include "stopscan/normal_tail.hpp"
#include "stopscan/settings.hpp"

namespace stopscan {

namespace {

struct Spec {
    const char* name;
    ParameterDistribution::Kind kind;
    std::size_t args;
    const char* form;
};

constexpr Spec SPECS[] = {
    {"uniform", ParameterDistribution::uniform, 2, "uniform(a, b) with a < b"},
    {"loguniform", ParameterDistribution::loguniform, 2, "loguniform(a, b) with 0 < a < b"},
    {"beta", ParameterDistribution::beta, 2, "beta(a, b) with 0.001 <= a, b <= 1e6"},
    {"triangular", ParameterDistribution::triangular, 3,
     "triangular(a, c, b) with a <= c <= b, a < b"},
    {"normal", ParameterDistribution::normal, 2, "normal(m, s) with s > 0"},
};

const Spec& spec_of(ParameterDistribution::Kind kind) {
    for (const auto& s : SPECS)
        if (s.kind == kind) return s;
    return SPECS[0];
}

// Fowler–Noll–Vo 1a: a stable 64-bit hash of a parameter's name for its random key (std::hash
// may differ between library versions).
std::uint64_t fnv1a(const std::string& text) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char c : text) h = (h ^ c) * 0x100000001b3ULL;
    return h;
}

// Boost 1.74's ibeta_inv throws evaluation_error for some valid laws: beta(5, 5) at p = 0.5
// ("no root", from its Newton iteration), beta(0.5, 2) at p = 1e-12 (over 200 iterations).
// Then (or on a NaN) bisect the CDF, which is monotone: slower, but as exact as a double allows.
double beta_quantile(double a, double b, double p) {
    try {
        const double x = boost::math::ibeta_inv(a, b, p);
        if (!std::isnan(x)) return x;
    } catch (const boost::math::evaluation_error&) {
    }
    double lo = 0.0;
    double hi = 1.0;
    for (;;) {
        const double mid = lo + (hi - lo) / 2;
        if (mid <= lo || mid >= hi) return mid;
        (boost::math::ibeta(a, b, mid) < p ? lo : hi) = mid;
    }
}

double lower_cdf(double z) {
    return upper_tail(-z);
}

}  // namespace

std::optional<ParameterDistribution> ParameterDistribution::parse(const std::string& text) {
    const auto open = text.find('(');
    if (open == std::string::npos || text.back() != ')') return std::nullopt;
    const std::string name(trim(std::string_view(text).substr(0, open)));
    const Spec* spec = nullptr;
    for (const auto& s : SPECS)
        if (name == s.name) spec = &s;
    if (!spec) {
        std::vector<std::string> names;
        for (const auto& s : SPECS) names.push_back(s.name);
        const auto suggestion = nearest(name, names);
        throw std::invalid_argument("unknown distribution '" + name + "'" +
                                    (suggestion ? " (did you mean '" + *suggestion + "'?)" : "") +
                                    ": allowed: uniform, loguniform, beta, triangular, normal");
    }
    ParameterDistribution d{spec->kind, {}};
    for (const auto& item :
         split_list(std::string_view(text).substr(open + 1, text.size() - open - 2))) {
        double v = 0;
        const auto r = std::from_chars(item.data(), item.data() + item.size(), v);
        if (item.empty() || r.ec != std::errc() || r.ptr != item.data() + item.size() ||
            !std::isfinite(v))
            throw std::invalid_argument("'" + item + "' is not a finite number: write " +
                                        spec->form);
        d.args.push_back(v);
    }
    const auto& a = d.args;
    bool ok = a.size() == spec->args;
    if (ok) switch (d.kind) {
            case uniform:
                ok = a[0] < a[1];
                break;
            case loguniform:
                ok = 0 < a[0] && a[0] < a[1];
                break;
            case beta:
                // Boost's inverse fails or loops for shapes near 1e20 and beyond, and gives NaN
                // (or fails an assertion) for shapes near 1e-10; such laws are point masses at
                // one end or both anyway.
                ok = a[0] >= 1e-3 && a[1] >= 1e-3 && a[0] <= 1e6 && a[1] <= 1e6;
                break;
            case triangular:
                ok = a[0] <= a[1] && a[1] <= a[2] && a[0] < a[2];
                break;
            case normal:
                ok = a[1] > 0;
                break;
        }
    if (!ok) throw std::invalid_argument("invalid arguments: write " + std::string(spec->form));
    return d;
}

double ParameterDistribution::support_lo() const noexcept {
    switch (kind) {
        case beta:
            return 0.0;
        case normal:
            return -HUGE_VAL;
        default:
            return args[0];
    }
}

double ParameterDistribution::support_hi() const noexcept {
    switch (kind) {
        case beta:
            return 1.0;
        case normal:
            return HUGE_VAL;
        case triangular:
            return args[2];
        default:
            return args[1];
    }
}

double ParameterDistribution::quantile(double u, double lo, double hi) const {
    // Inversion of the law truncated to [lo, hi]: map u into [F(lo), F(hi)] and invert F.
    auto cdf = [&](double x) -> double {
        if (x <= support_lo()) return 0.0;
        if (x >= support_hi()) return 1.0;
        switch (kind) {
            case uniform:
                return (x - args[0]) / (args[1] - args[0]);
            case loguniform:
                return std::log(x / args[0]) / std::log(args[1] / args[0]);
            case beta:
                return boost::math::ibeta(args[0], args[1], x);
            case triangular: {
                const double a = args[0], c = args[1], b = args[2];
                return x <= c ? (x - a) * (x - a) / ((b - a) * (c - a))
                              : 1 - (b - x) * (b - x) / ((b - a) * (b - c));
            }
            case normal:
                return lower_cdf((x - args[0]) / args[1]);
        }
        return 0.0;
    };
    auto inverse = [&](double p) -> double {
        switch (kind) {
            case uniform:
                return args[0] + p * (args[1] - args[0]);
            case loguniform:
                return args[0] * std::pow(args[1] / args[0], p);
            case beta:
                return beta_quantile(args[0], args[1], p);
            case triangular: {
                const double a = args[0], c = args[1], b = args[2];
                const double fc = (c - a) / (b - a);
                return p < fc ? a + std::sqrt(p * (b - a) * (c - a))
                              : b - std::sqrt((1 - p) * (b - a) * (b - c));
            }
            case normal:
                return args[0] + args[1] * normal_quantile(p);
        }
        return 0.0;
    };
    const double f_lo = cdf(lo);
    const double f_hi = cdf(hi);
    const double x = inverse(f_lo + u * (f_hi - f_lo));
    return std::min(std::max(x, std::max(lo, support_lo())), std::min(hi, support_hi()));
}

std::string ParameterDistribution::text() const {
    std::string out = std::string(spec_of(kind).name) + "(";
    for (std::size_t i = 0; i < args.size(); ++i) {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%.10g", args[i]);
        out += (i ? ", " : "") + std::string(buffer);
    }
    return out + ")";
}

double UncertainParameter::draw(std::uint64_t seed, std::uint64_t replication) const {
    const ReplicationKey stream(seed, replication);
    const double u =
        stream.uniforms(fnv1a(key), Purpose::Parameter, static_cast<std::uint32_t>(item + 1), 0)[0];
    return law.quantile(u, lo, hi);
}

}  // namespace stopscan
