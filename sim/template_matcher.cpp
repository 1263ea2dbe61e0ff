#include "stopscan/template_matcher.hpp"

#include <immintrin.h>
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <algorithm>
#include <array>
#include <boost/math/quadrature/gauss_kronrod.hpp>
#include <boost/math/special_functions/beta.hpp>
#include <boost/math/special_functions/gamma.hpp>
#include <boost/math/tools/roots.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "stopscan/build_info.hpp"
#include "stopscan/error.hpp"
#include "stopscan/normal_tail.hpp"
#include "stopscan/writers.hpp"

namespace stopscan {

namespace {

constexpr std::size_t LANES = 16;  // records per panel: one AVX-512 register of floats
constexpr float NEG_INF = -std::numeric_limits<float>::infinity();
constexpr float POS_INF = std::numeric_limits<float>::infinity();
const char* const OPTIONS_SOURCE = "template options";

// ---------------------------------------------------------------------------------------
// Keyed Gaussian vectors: Box–Muller on the four uniforms of key block `index` (Box and
// Muller 1958), four coordinates per block, entries N(0, scale²).
void keyed_gaussian(const ReplicationKey& key, std::uint64_t entity, std::uint32_t sub,
                    double scale, double* out, std::size_t dim) {
    for (std::size_t b = 0; 4 * b < dim; ++b) {
        const auto u = key.uniforms(entity, Purpose::SearchScores, sub, b);
        for (std::size_t h = 0; h < 2; ++h) {
            const double r = scale * std::sqrt(-2.0 * std::log1p(-u[2 * h]));  // 1 − u in (0, 1]
            const double theta = 2.0 * M_PI * u[2 * h + 1];
            const std::size_t i = 4 * b + 2 * h;
            if (i < dim) out[i] = r * std::cos(theta);
            if (i + 1 < dim) out[i + 1] = r * std::sin(theta);
        }
    }
}

// Normalises v (double) into a float row; a zero vector stays zero.
void normalise_into(const std::vector<double>& v, float* out) {
    double norm2 = 0;
    for (const double x : v) norm2 += x * x;
    const double inv = norm2 > 0 ? 1.0 / std::sqrt(norm2) : 0.0;
    for (std::size_t i = 0; i < v.size(); ++i) out[i] = static_cast<float>(v[i] * inv);
}

// Symmetric int8 quantisation with one scale per vector: q = round(x·127/max|x|), so the
// score is (integer dot)·inv_p·inv_x with inv = max|x|/127. Returns inv (0 for a zero vector).
float quantise(const float* x, std::size_t dim, std::int8_t* q) {
    float m = 0;
    for (std::size_t i = 0; i < dim; ++i) m = std::max(m, std::abs(x[i]));
    if (!(m > 0)) {
        std::fill(q, q + dim, std::int8_t{0});
        return 0.0f;
    }
    const double scale = 127.0 / m;
    for (std::size_t i = 0; i < dim; ++i) {
        const long v = std::lrint(static_cast<double>(x[i]) * scale);
        q[i] = static_cast<std::int8_t>(std::clamp(v, -127L, 127L));
    }
    return static_cast<float>(m / 127.0);
}

// ---------------------------------------------------------------------------------------
// Genuine law and the calibration of the capture noise.
//
// A mated probe is p = normalise(x + s·e) with x a unit template and e ~ N(0, I/D) independent
// of x. Write e = (z/√D)·x + e⊥ with z ~ N(0, 1) and R² = D·|e⊥|² ~ χ²(D − 1) independent of z.
// The genuine cosine is G = a / sqrt(a² + s²R²/D), a = 1 + s·z/√D. For |t| < 1 and
// k = t/sqrt(1 − t²), G < t ⟺ a < k·s·R/√D (for t > 0: a ≤ 0, or a > 0 and a²(1 − t²) <
// t²s²R²/D; for t ≤ 0 the same inequality with k ≤ 0), i.e. z < k·R − √D/s. So
//     FNMR(s) = E[ Φ(k·R − √D/s) ],   R ~ chi(D − 1),
// a one-dimensional integral of a smooth integrand against the chi density, done by adaptive
// Gauss–Kronrod (61 points, relative tolerance 1e-12) with Φ from normal_tail (accurate in the
// tails). The law holds for any w (x is a unit vector, e isotropic and independent of it),
// so one calibration serves all group weights. FNMR(s) rises from 0 (s → 0) to
// 1 − FMR' (s → ∞: p uniform), and s_c solves FNMR(s) = FNMR_c by TOMS 748 on log s.
double genuine_fnmr(double s, double t, std::size_t dim) {
    if (!(s > 0)) return t > 1 ? 1.0 : 0.0;
    const double nu = static_cast<double>(dim - 1);
    const double k = t / std::sqrt(1 - t * t);
    const double shift = std::sqrt(static_cast<double>(dim)) / s;
    const double log_norm = (0.5 * nu - 1) * std::log(2.0) + std::lgamma(0.5 * nu);
    auto integrand = [&](double r) {
        if (!(r > 0)) return nu == 1 ? std::exp(-log_norm) * upper_tail(shift) : 0.0;
        const double density = std::exp((nu - 1) * std::log(r) - 0.5 * r * r - log_norm);
        return density * upper_tail(shift - k * r);  // Φ(k·r − √D/s)
    };
    // chi(ν) has mean ≈ √ν and sd ≈ 1/√2: ±40 holds everything that counts.
    const double mid = std::sqrt(nu);
    const double lo = std::max(0.0, mid - 40);
    using GK = boost::math::quadrature::gauss_kronrod<double, 61>;
    return GK::integrate(integrand, lo, mid, 12, 1e-12) +
           GK::integrate(integrand, mid, mid + 40, 12, 1e-12);
}

double calibrate_noise(double fnmr, double t, double fmr_at_t, std::size_t dim,
                       const std::string& key) {
    if (!(fnmr > 0)) return 0.0;
    if (fnmr >= 1 - fmr_at_t)
        throw InputError(OPTIONS_SOURCE, key, std::to_string(fnmr),
                         "no capture noise gives this FNMR at the template threshold (it must be "
                         "below 1 − FMR' = " +
                             std::to_string(1 - fmr_at_t) + ")");
    auto f = [&](double log_s) { return genuine_fnmr(std::exp(log_s), t, dim) - fnmr; };
    double lo = -20, hi = 20;
    if (f(lo) > 0 || f(hi) < 0)
        throw InputError(OPTIONS_SOURCE, key, std::to_string(fnmr),
                         "capture noise calibration did not bracket the FNMR");
    std::uintmax_t iterations = 200;
    const auto [a, b] = boost::math::tools::toms748_solve(
        f, lo, hi, boost::math::tools::eps_tolerance<double>(50), iterations);
    return std::exp(0.5 * (a + b));
}

// ---------------------------------------------------------------------------------------
// Search kernels.
//
// Every float kernel computes the score of (probe, record) as the sequential fused chain
// s ← fma(p_d, x_d, s), d = 0, 1, ..., D − 1, from s = 0, one record per SIMD lane; the int8
// kernels compute the exact integer dot product. So every kernel, tile shape and block size
// gives the same bits, and the scalar loop is the reference (STYLE: a serial path with the
// same body). Each probe scans records in increasing order, so a record tying the current
// k-th best ranks below it (larger index) and is admitted only when strictly better.

struct ProbeState {
    float* top_score;
    std::int64_t* top_index;
    std::size_t count;
    float floor;  // k-th best score, or −inf while fewer than k are held
    std::vector<std::uint32_t>* hits;
};

struct BlockContext {
    std::size_t k;
    std::size_t n;  // real records: lanes at or beyond n are padding
    float hit_at;   // +inf: no hit lists
    ProbeState* probes;
};

// The slow path: lanes of `scores` (records record0 ..) that may enter the top k or the hits.
__attribute__((noinline)) void admit(BlockContext& ctx, std::size_t local, const float* scores,
                                     unsigned mask, std::size_t record0) {
    ProbeState& st = ctx.probes[local];
    while (mask != 0) {
        const auto lane = static_cast<std::size_t>(__builtin_ctz(mask));
        mask &= mask - 1;
        const std::size_t j = record0 + lane;
        if (j >= ctx.n) break;
        const float s = scores[lane];
        if (s >= ctx.hit_at) st.hits->push_back(static_cast<std::uint32_t>(j));
        if (!(s > st.floor)) continue;
        // Insert after every held score >= s (ties keep the lower, earlier index first).
        std::size_t pos = st.count;
        while (pos > 0 && st.top_score[pos - 1] < s) --pos;
        const std::size_t last = std::min(st.count, ctx.k - 1);
        for (std::size_t i = last; i > pos; --i) {
            st.top_score[i] = st.top_score[i - 1];
            st.top_index[i] = st.top_index[i - 1];
        }
        st.top_score[pos] = s;
        st.top_index[pos] = static_cast<std::int64_t>(j);
        if (st.count < ctx.k) ++st.count;
        st.floor = st.count == ctx.k ? st.top_score[ctx.k - 1] : NEG_INF;
    }
}

// Float tile: probes rows `probe` (stride `stride`), `R` of them, against NP consecutive
// panels starting at `panel` (each D × 16, d-major).
using FloatTile = void (*)(const float* probe, std::size_t stride, const float* panel,
                           std::size_t dim, BlockContext& ctx, std::size_t local0,
                           std::size_t record0);

void tile_f32_scalar(const float* probe, std::size_t /*stride*/, const float* panel,
                     std::size_t dim, BlockContext& ctx, std::size_t local0, std::size_t record0) {
    float scores[LANES];
    for (std::size_t lane = 0; lane < LANES; ++lane) {
        float s = 0;
        for (std::size_t d = 0; d < dim; ++d) s = std::fma(probe[d], panel[d * LANES + lane], s);
        scores[lane] = s;
    }
    admit(ctx, local0, scores, 0xFFFFu, record0);
}

template <int R, int NP>
__attribute__((target("avx512f"))) void tile_f32_avx512(const float* probe, std::size_t stride,
                                                        const float* panel, std::size_t dim,
                                                        BlockContext& ctx, std::size_t local0,
                                                        std::size_t record0) {
    __m512 acc[R][NP];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int q = 0; q < NP; ++q) acc[r][q] = _mm512_setzero_ps();
    for (std::size_t d = 0; d < dim; ++d) {
        __m512 g[NP];
#pragma GCC unroll 2
        for (int q = 0; q < NP; ++q)
            g[q] = _mm512_loadu_ps(panel + (static_cast<std::size_t>(q) * dim + d) * LANES);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
            const __m512 b = _mm512_set1_ps(probe[static_cast<std::size_t>(r) * stride + d]);
#pragma GCC unroll 2
            for (int q = 0; q < NP; ++q) acc[r][q] = _mm512_fmadd_ps(b, g[q], acc[r][q]);
        }
    }
    const __m512 hit = _mm512_set1_ps(ctx.hit_at);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 2
        for (int q = 0; q < NP; ++q) {
            const __m512 floor = _mm512_set1_ps(ctx.probes[local0 + r].floor);
            const __mmask16 m = _mm512_cmp_ps_mask(acc[r][q], floor, _CMP_GT_OQ) |
                                _mm512_cmp_ps_mask(acc[r][q], hit, _CMP_GE_OQ);
            if (m != 0) {
                alignas(64) float buffer[LANES];
                _mm512_store_ps(buffer, acc[r][q]);
                admit(ctx, local0 + r, buffer, m, record0 + static_cast<std::size_t>(q) * LANES);
            }
        }
    }
}

// Lanes of v above the floor or at/above the hit threshold (a lambda would not inherit the
// target attribute).
__attribute__((target("avx2,fma"))) inline unsigned pass_avx2(__m256 v, __m256 floor, __m256 hit) {
    return static_cast<unsigned>(_mm256_movemask_ps(
        _mm256_or_ps(_mm256_cmp_ps(v, floor, _CMP_GT_OQ), _mm256_cmp_ps(v, hit, _CMP_GE_OQ))));
}

template <int R>
__attribute__((target("avx2,fma"))) void tile_f32_avx2(const float* probe, std::size_t stride,
                                                       const float* panel, std::size_t dim,
                                                       BlockContext& ctx, std::size_t local0,
                                                       std::size_t record0) {
    __m256 acc[R][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (std::size_t d = 0; d < dim; ++d) {
        const __m256 g0 = _mm256_loadu_ps(panel + d * LANES);
        const __m256 g1 = _mm256_loadu_ps(panel + d * LANES + 8);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const __m256 b = _mm256_broadcast_ss(probe + static_cast<std::size_t>(r) * stride + d);
            acc[r][0] = _mm256_fmadd_ps(b, g0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(b, g1, acc[r][1]);
        }
    }
    const __m256 hit = _mm256_set1_ps(ctx.hit_at);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        const __m256 floor = _mm256_set1_ps(ctx.probes[local0 + r].floor);
        const unsigned m =
            pass_avx2(acc[r][0], floor, hit) | (pass_avx2(acc[r][1], floor, hit) << 8);
        if (m != 0) {
            alignas(32) float buffer[LANES];
            _mm256_store_ps(buffer, acc[r][0]);
            _mm256_store_ps(buffer + 8, acc[r][1]);
            admit(ctx, local0 + r, buffer, m, record0);
        }
    }
}

// Int8 tile: probes as unsigned bytes (q + 128), panels [d/4][16][4] signed bytes.
struct Int8View {
    const std::uint8_t* probe;
    std::size_t stride;
    const float* probe_inv;
    const std::int8_t* panel;
    const std::int32_t* record_offset;  // 128·Σ q_x of each record, at record0
    const float* record_inv;            // at record0
    std::size_t quads;                  // D/4, rounded up
};
using Int8Tile = void (*)(const Int8View& v, BlockContext& ctx, std::size_t local0,
                          std::size_t record0);

void tile_i8_scalar(const Int8View& v, BlockContext& ctx, std::size_t local0, std::size_t record0) {
    float scores[LANES];
    for (std::size_t lane = 0; lane < LANES; ++lane) {
        std::int32_t dot = 0;
        for (std::size_t q = 0; q < v.quads; ++q)
            for (std::size_t b = 0; b < 4; ++b)
                dot += (static_cast<std::int32_t>(v.probe[4 * q + b]) - 128) *
                       static_cast<std::int32_t>(v.panel[(q * LANES + lane) * 4 + b]);
        scores[lane] = static_cast<float>(dot) * v.probe_inv[0] * v.record_inv[lane];
    }
    admit(ctx, local0, scores, 0xFFFFu, record0);
}

// AVX-512 VNNI: vpdpbusd multiplies unsigned by signed bytes, four per 32-bit lane, exactly;
// Σ (q_p + 128)·q_x − 128·Σ q_x = Σ q_p·q_x (|sums| < 2^23: no overflow, exact in float).
template <int R, int NP>
__attribute__((target("avx512f,avx512vnni"))) void tile_i8_vnni(const Int8View& v,
                                                                BlockContext& ctx,
                                                                std::size_t local0,
                                                                std::size_t record0) {
    __m512i acc[R][NP];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int q = 0; q < NP; ++q) acc[r][q] = _mm512_setzero_si512();
    for (std::size_t d4 = 0; d4 < v.quads; ++d4) {
        __m512i g[NP];
#pragma GCC unroll 2
        for (int q = 0; q < NP; ++q)
            g[q] = _mm512_loadu_si512(v.panel + (static_cast<std::size_t>(q) * v.quads + d4) * 64);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
            std::int32_t word;
            std::memcpy(&word, v.probe + static_cast<std::size_t>(r) * v.stride + 4 * d4, 4);
            const __m512i b = _mm512_set1_epi32(word);
#pragma GCC unroll 2
            for (int q = 0; q < NP; ++q) acc[r][q] = _mm512_dpbusd_epi32(acc[r][q], b, g[q]);
        }
    }
    const __m512 hit = _mm512_set1_ps(ctx.hit_at);
#pragma GCC unroll 2
    for (int q = 0; q < NP; ++q) {
        const __m512i offset = _mm512_loadu_si512(v.record_offset + q * LANES);
        const __m512 inv = _mm512_loadu_ps(v.record_inv + q * LANES);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
            // maskz_cvtepi32_ps: the unmasked form trips GCC 12's -Wuninitialized on
            // _mm512_undefined_ps (GCC PR 105593).
            const __m512 s = _mm512_mul_ps(
                _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_sub_epi32(acc[r][q], offset)),
                              _mm512_set1_ps(v.probe_inv[r])),
                inv);
            const __m512 floor = _mm512_set1_ps(ctx.probes[local0 + r].floor);
            const __mmask16 m =
                _mm512_cmp_ps_mask(s, floor, _CMP_GT_OQ) | _mm512_cmp_ps_mask(s, hit, _CMP_GE_OQ);
            // Records of one probe must be admitted in increasing order: q outer is fine
            // because each (r, q) pair is admitted once and q = 0 precedes q = 1.
            if (m != 0) {
                alignas(64) float buffer[LANES];
                _mm512_store_ps(buffer, s);
                admit(ctx, local0 + r, buffer, m, record0 + static_cast<std::size_t>(q) * LANES);
            }
        }
    }
}

// Tables of tile instantiations indexed by [R − 1][NP − 1].
constexpr int AVX512_R = 8;  // 8 probes × 2 panels: 16 accumulators of the 32 zmm registers
constexpr int AVX2_R = 6;    // 6 probes × 2 halves: 12 accumulators of the 16 ymm registers

template <int... I>
constexpr std::array<std::array<FloatTile, 2>, sizeof...(I)> avx512_table(
    std::integer_sequence<int, I...>) {
    return {{{&tile_f32_avx512<I + 1, 1>, &tile_f32_avx512<I + 1, 2>}...}};
}
template <int... I>
constexpr std::array<FloatTile, sizeof...(I)> avx2_table(std::integer_sequence<int, I...>) {
    return {{&tile_f32_avx2<I + 1>...}};
}
template <int... I>
constexpr std::array<std::array<Int8Tile, 2>, sizeof...(I)> vnni_table(
    std::integer_sequence<int, I...>) {
    return {{{&tile_i8_vnni<I + 1, 1>, &tile_i8_vnni<I + 1, 2>}...}};
}

enum class Isa { scalar, avx2, avx512 };

Isa float_isa(SearchKernel kernel) {
    if (kernel == SearchKernel::scalar) return Isa::scalar;
    __builtin_cpu_init();
    if (kernel != SearchKernel::avx2 && __builtin_cpu_supports("avx512f")) return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
    return Isa::scalar;
}

bool has_vnni(SearchKernel kernel) {
    if (kernel == SearchKernel::scalar || kernel == SearchKernel::avx2) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
}

// Expected share of the top `top` of n iid Poisson(λ) counts in their sum (quantile
// approximation: the top records are the upper tail of the pmf, filled from the highest
// count down): the doppelganger share with no structure at all.
std::optional<double> poisson_top_share(double lambda, std::size_t n, std::size_t top) {
    if (!(lambda > 0)) return std::nullopt;
    const auto x_max = static_cast<std::size_t>(lambda + 40 * std::sqrt(lambda) + 40);
    double remaining = static_cast<double>(top);
    double sum = 0;
    for (std::size_t x = x_max + 1; x-- > 0 && remaining > 0;) {
        const double xd = static_cast<double>(x);
        const double pmf = std::exp(xd * std::log(lambda) - lambda - std::lgamma(xd + 1));
        const double take = std::min(remaining, static_cast<double>(n) * pmf);
        sum += take * xd;
        remaining -= take;
    }
    return sum / (static_cast<double>(n) * lambda);
}

std::optional<double> top_share(std::vector<std::uint32_t> counts, std::size_t top,
                                std::uint64_t total) {
    if (total == 0) return std::nullopt;
    top = std::min(top, counts.size());
    std::nth_element(counts.begin(), counts.begin() + static_cast<std::ptrdiff_t>(top),
                     counts.end(), std::greater<>());
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < top; ++i) sum += counts[i];
    return static_cast<double>(sum) / static_cast<double>(total);
}

TemplateGroupResult group_row(std::string kind, std::string dimension, std::string category) {
    TemplateGroupResult row;
    row.kind = std::move(kind);
    row.dimension = std::move(dimension);
    row.category = std::move(category);
    return row;
}

std::optional<double> ratio(std::uint64_t k, std::uint64_t n) {
    if (n == 0) return std::nullopt;
    return static_cast<double>(k) / static_cast<double>(n);
}

}  // namespace

// ---------------------------------------------------------------------------------------

struct TemplateGallery::Int8Probes {
    std::vector<std::uint8_t> bytes;  // P × quads·4, q + 128
    std::vector<float> inv;           // P
};

namespace {

MatchModel checked_model(const Scenario& s, const CellTable& cells, std::size_t modality,
                         std::size_t database, const TemplateOptions& o) {
    if (database >= s.databases.size())
        throw InputError(OPTIONS_SOURCE, "database", std::to_string(database),
                         "no such database in the scenario");
    if (modality >= MODALITY_COUNT || !s.databases[database].matchers[modality])
        throw InputError(
            OPTIONS_SOURCE, "modality", modality < MODALITY_COUNT ? MODALITY_NAMES[modality] : "?",
            "database " + s.databases[database].name + " has no matcher for this modality");
    if (o.gallery_size < 1 || o.gallery_size > std::numeric_limits<std::int32_t>::max())
        throw InputError(OPTIONS_SOURCE, "gallery_size", std::to_string(o.gallery_size),
                         "must be in [1, 2147483647]");
    if (o.dim < 2 || o.dim > 4096)
        throw InputError(OPTIONS_SOURCE, "dim", std::to_string(o.dim), "must be in [2, 4096]");
    if (!(o.group_weight >= 0 && o.group_weight < 1))
        throw InputError(OPTIONS_SOURCE, "group_weight", std::to_string(o.group_weight),
                         "must be in [0, 1)");
    return MatchModel(s, cells, modality, database);
}

}  // namespace

TemplateGallery::TemplateGallery(const Scenario& scenario, const CellTable& cells,
                                 std::size_t modality, std::size_t database,
                                 const TemplateOptions& options)
    : options_(options),
      model_(checked_model(scenario, cells, modality, database, options)),
      cells_(cells.size()),
      key_(options.seed, options.replication) {
    const std::size_t C = cells_;
    const auto D = static_cast<std::size_t>(options_.dim);
    const std::size_t K = scenario.dimensions.size();
    n_ = static_cast<std::size_t>(options_.gallery_size);

    // Records per cell, scaled from M to n by largest remainder (ties: lower cell first).
    const auto& records = model_.records();
    real_size_ = std::accumulate(records.begin(), records.end(), 0.0);
    if (!(real_size_ > 0))
        throw InputError(OPTIONS_SOURCE, "database", scenario.databases[database].name,
                         "the gallery has no records");
    std::vector<std::size_t> count(C);
    std::vector<std::pair<double, std::size_t>> remainders;
    std::size_t assigned = 0;
    for (std::size_t g = 0; g < C; ++g) {
        const double quota = records[g] * static_cast<double>(n_) / real_size_;
        count[g] = static_cast<std::size_t>(std::floor(quota));
        assigned += count[g];
        remainders.emplace_back(quota - std::floor(quota), g);
    }
    std::stable_sort(remainders.begin(), remainders.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t i = 0; assigned < n_ && i < remainders.size(); ++i, ++assigned)
        ++count[remainders[i].second];
    offsets_.assign(C + 1, 0);
    for (std::size_t g = 0; g < C; ++g) offsets_[g + 1] = offsets_[g] + count[g];
    cell_of_.resize(n_);
    for (std::size_t g = 0; g < C; ++g)
        std::fill(cell_of_.begin() + static_cast<std::ptrdiff_t>(offsets_[g]),
                  cell_of_.begin() + static_cast<std::ptrdiff_t>(offsets_[g + 1]),
                  static_cast<std::uint32_t>(g));

    // The reference probe cell and the threshold (file comment of the header: scaling).
    for (std::size_t c = 0; c < C; ++c) {
        bool all_reference = true;
        for (std::size_t d = 0; d < K; ++d)
            all_reference =
                all_reference && cells.category(c, d) == scenario.dimensions[d].reference;
        if (all_reference) reference_ = c;
    }
    real_fpir_ = model_.fpir(reference_);
    const double target = -std::expm1(std::log1p(-real_fpir_) / static_cast<double>(n_));
    if (!(target > 0 && target < 1))
        throw InputError(OPTIONS_SOURCE, "gallery_size", std::to_string(n_),
                         "the reference probe's FPIR (" + std::to_string(real_fpir_) +
                             ") leaves no per-record FMR in (0, 1) to scale to");
    const double a = 0.5 * static_cast<double>(D - 1);
    threshold_ = static_cast<float>(2 * boost::math::ibetac_inv(a, a, target) - 1);
    per_record_fmr_ = boost::math::ibetac(a, a, 0.5 * (static_cast<double>(threshold_) + 1));
    if (!(per_record_fmr_ > 0 && threshold_ < 1))
        throw InputError(OPTIONS_SOURCE, "dim", std::to_string(D),
                         "the per-record FMR " + std::to_string(target) +
                             " needs a cosine threshold that rounds to 1 in float: use a larger "
                             "dim or gallery_size");

    // Model predictions at the scaled size.
    model_fmr_.resize(C * C);
    model_fpir_.resize(C);
    const double m_over_n = real_size_ / static_cast<double>(n_);
    for (std::size_t c = 0; c < C; ++c) {
        double log_none = 0;
        for (std::size_t g = 0; g < C; ++g) {
            const double f = model_.fmr(c, g);
            const double scaled = f <= 0   ? 0.0
                                  : f >= 1 ? 1.0
                                           : -std::expm1(std::log1p(-f) * m_over_n);
            model_fmr_[c * C + g] = scaled;
            if (count[g] > 0) log_none += static_cast<double>(count[g]) * std::log1p(-scaled);
        }
        model_fpir_[c] = -std::expm1(log_none);
    }

    // Capture noise per probe cell, from the score model's FNMR at the threshold in use.
    noise_.resize(C);
    const std::string noise_key = std::string("matcher.") + MODALITY_NAMES[modality] + "." +
                                  scenario.databases[database].name + ".fnmr";
    for (std::size_t c = 0; c < C; ++c)
        noise_[c] = calibrate_noise(model_.fnmr(c), threshold_, per_record_fmr_, D, noise_key);

    // Group components γ_c = (1/√K) Σ_d a(d, category of c on d).
    group_.assign(C * D, 0.0);
    std::vector<double> component(D);
    for (std::size_t c = 0; c < C; ++c)
        for (std::size_t d = 0; d < K; ++d) {
            const std::uint64_t entity =
                (static_cast<std::uint64_t>(d) << 32) | cells.category(c, d);
            keyed_gaussian(key_, entity, TEMPLATE_SUB_GROUP,
                           1.0 / std::sqrt(static_cast<double>(D)), component.data(), D);
            for (std::size_t i = 0; i < D; ++i)
                group_[c * D + i] += component[i] / std::sqrt(static_cast<double>(K));
        }

    // Templates, in parallel: each row a pure function of its key.
    templates_.create(static_cast<int>(n_), static_cast<int>(D), CV_32F);
    const double root_w = std::sqrt(options_.group_weight);
    const double root_1w = std::sqrt(1 - options_.group_weight);
    const double entry_sd = 1.0 / std::sqrt(static_cast<double>(D));
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n_, 256), [&](const auto& range) {
        std::vector<double> v(D);
        for (std::size_t j = range.begin(); j != range.end(); ++j) {
            keyed_gaussian(key_, j, TEMPLATE_SUB_RECORD, entry_sd, v.data(), D);
            const double* gamma = &group_[cell_of_[j] * D];
            for (std::size_t i = 0; i < D; ++i) v[i] = root_w * gamma[i] + root_1w * v[i];
            normalise_into(v, templates_.ptr<float>(static_cast<int>(j)));
        }
    });

    // Kernel layouts.
    const std::size_t panels = (n_ + LANES - 1) / LANES;
    if (!options_.int8) {
        panels_.assign(panels * D * LANES, 0.0f);
        for (std::size_t j = 0; j < n_; ++j) {
            const float* x = templates_.ptr<float>(static_cast<int>(j));
            float* panel = &panels_[(j / LANES) * D * LANES];
            for (std::size_t d = 0; d < D; ++d) panel[d * LANES + j % LANES] = x[d];
        }
    } else {
        qdim_ = (D + 3) / 4 * 4;
        qpanels_.assign(panels * qdim_ * LANES, std::int8_t{0});
        qoffset_.assign(panels * LANES, 0);
        qinv_.assign(panels * LANES, 0.0f);
        std::vector<std::int8_t> q(qdim_, 0);
        for (std::size_t j = 0; j < n_; ++j) {
            qinv_[j] = quantise(templates_.ptr<float>(static_cast<int>(j)), D, q.data());
            std::int8_t* panel = &qpanels_[(j / LANES) * qdim_ * LANES];
            for (std::size_t d = 0; d < qdim_; ++d) {
                panel[((d / 4) * LANES + j % LANES) * 4 + d % 4] = q[d];
                qoffset_[j] += 128 * q[d];
            }
        }
    }
}

double TemplateGallery::model_fmr(std::size_t c, std::size_t g) const noexcept {
    return model_fmr_[c * cells_ + g];
}

double TemplateGallery::model_fpir(std::size_t c) const noexcept {
    return model_fpir_[c];
}

cv::Mat TemplateGallery::make_probes(const std::vector<ProbeSpec>& specs) const {
    const auto D = static_cast<std::size_t>(options_.dim);
    for (const auto& spec : specs) {
        if (spec.cell >= cells_) throw std::invalid_argument("make_probes: cell out of range");
        if (spec.mate >= static_cast<std::int64_t>(n_))
            throw std::invalid_argument("make_probes: mate out of range");
        if (spec.mate >= 0 && cell_of_[static_cast<std::size_t>(spec.mate)] != spec.cell)
            throw std::invalid_argument("make_probes: a mated probe's cell is its mate's cell");
    }
    cv::Mat probes(static_cast<int>(specs.size()), static_cast<int>(D), CV_32F);
    const double root_w = std::sqrt(options_.group_weight);
    const double root_1w = std::sqrt(1 - options_.group_weight);
    const double entry_sd = 1.0 / std::sqrt(static_cast<double>(D));
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, specs.size(), 64), [&](const auto& range) {
        std::vector<double> v(D), noise(D);
        std::vector<float> fresh(D);
        for (std::size_t p = range.begin(); p != range.end(); ++p) {
            const ProbeSpec& spec = specs[p];
            const float* x;
            if (spec.mate >= 0) {
                x = templates_.ptr<float>(static_cast<int>(spec.mate));
            } else {
                // A fresh person of the cell: the same recipe as a gallery record.
                keyed_gaussian(key_, spec.id, TEMPLATE_SUB_FRESH, entry_sd, v.data(), D);
                const double* gamma = &group_[spec.cell * D];
                for (std::size_t i = 0; i < D; ++i) v[i] = root_w * gamma[i] + root_1w * v[i];
                normalise_into(v, fresh.data());
                x = fresh.data();
            }
            keyed_gaussian(key_, spec.id, TEMPLATE_SUB_NOISE, entry_sd, noise.data(), D);
            const double s = noise_[spec.cell];
            for (std::size_t i = 0; i < D; ++i) v[i] = static_cast<double>(x[i]) + s * noise[i];
            normalise_into(v, probes.ptr<float>(static_cast<int>(p)));
        }
    });
    return probes;
}

TemplateGallery::Int8Probes TemplateGallery::quantise_probes(const cv::Mat& probes) const {
    const auto D = static_cast<std::size_t>(options_.dim);
    Int8Probes out;
    const auto P = static_cast<std::size_t>(probes.rows);
    out.bytes.assign(P * qdim_, 128);
    out.inv.resize(P);
    std::vector<std::int8_t> q(qdim_, 0);
    for (std::size_t p = 0; p < P; ++p) {
        out.inv[p] = quantise(probes.ptr<float>(static_cast<int>(p)), D, q.data());
        for (std::size_t d = 0; d < qdim_; ++d)
            out.bytes[p * qdim_ + d] = static_cast<std::uint8_t>(static_cast<int>(q[d]) + 128);
    }
    return out;
}

float TemplateGallery::score(const cv::Mat& probes, int row, std::size_t record) const {
    const auto D = static_cast<std::size_t>(options_.dim);
    const float* p = probes.ptr<float>(row);
    if (!options_.int8) {
        const float* x = templates_.ptr<float>(static_cast<int>(record));
        float s = 0;
        for (std::size_t d = 0; d < D; ++d) s = std::fma(p[d], x[d], s);
        return s;
    }
    std::vector<std::int8_t> q(qdim_, 0);
    const float inv = quantise(p, D, q.data());
    const std::int8_t* panel = &qpanels_[(record / LANES) * qdim_ * LANES];
    std::int32_t dot = 0;
    for (std::size_t d = 0; d < qdim_; ++d)
        dot += static_cast<std::int32_t>(q[d]) *
               static_cast<std::int32_t>(panel[((d / 4) * LANES + record % LANES) * 4 + d % 4]);
    return static_cast<float>(dot) * inv * qinv_[record];
}

TemplateSearchResult TemplateGallery::search(const cv::Mat& probes, const SearchOptions& o) const {
    const auto D = static_cast<std::size_t>(options_.dim);
    if (probes.type() != CV_32F || (probes.rows > 0 && probes.cols != options_.dim))
        throw std::invalid_argument("search: probes must be CV_32F with " +
                                    std::to_string(options_.dim) + " columns");
    if (o.top_k == 0) throw std::invalid_argument("search: top_k must be at least 1");
    const auto P = static_cast<std::size_t>(probes.rows);
    const std::size_t k = o.top_k;
    TemplateSearchResult result;
    result.probes = P;
    result.k = k;
    result.index.assign(P * k, -1);
    result.score.assign(P * k, NEG_INF);
    std::vector<std::vector<std::uint32_t>> hits(P);
    if (P == 0) {
        if (o.hits_at) result.hit_offsets.assign(1, 0);
        return result;
    }

    // Probes, contiguous: float rows, or quantised bytes.
    std::vector<float> rows;
    Int8Probes quantised;
    if (!options_.int8) {
        rows.resize(P * D);
        for (std::size_t p = 0; p < P; ++p)
            std::memcpy(&rows[p * D], probes.ptr<float>(static_cast<int>(p)), D * sizeof(float));
    } else {
        quantised = quantise_probes(probes);
    }

    const std::size_t panels = (n_ + LANES - 1) / LANES;
    const std::size_t block_panels =
        std::max<std::size_t>(1, (o.gallery_block + LANES - 1) / LANES);
    const std::size_t probe_block = std::max<std::size_t>(1, o.probe_block);
    const std::size_t blocks = (P + probe_block - 1) / probe_block;
    const float hit_at = o.hits_at.value_or(POS_INF);
    const Isa isa = float_isa(o.kernel);
    const bool vnni = has_vnni(o.kernel);
    static constexpr auto AVX512 = avx512_table(std::make_integer_sequence<int, AVX512_R>{});
    static constexpr auto AVX2 = avx2_table(std::make_integer_sequence<int, AVX2_R>{});
    static constexpr auto VNNI = vnni_table(std::make_integer_sequence<int, AVX512_R>{});

    // One probe block: its own top-k and hit lists, the whole gallery in increasing order.
    auto body = [&](std::size_t b) {
        const std::size_t p0 = b * probe_block;
        const std::size_t p1 = std::min(P, p0 + probe_block);
        std::vector<ProbeState> states(p1 - p0);
        for (std::size_t p = p0; p < p1; ++p)
            states[p - p0] = {&result.score[p * k], &result.index[p * k], 0, NEG_INF, &hits[p]};
        BlockContext ctx{k, n_, hit_at, states.data()};
        for (std::size_t g0 = 0; g0 < panels; g0 += block_panels) {
            const std::size_t g1 = std::min(panels, g0 + block_panels);
            if (!options_.int8) {
                const std::size_t tile = isa == Isa::avx512 ? AVX512_R
                                         : isa == Isa::avx2 ? AVX2_R
                                                            : 1;
                for (std::size_t p = p0; p < p1; p += tile) {
                    const std::size_t r = std::min(tile, p1 - p);
                    const float* probe = &rows[p * D];
                    for (std::size_t g = g0; g < g1;) {
                        const float* panel = &panels_[g * D * LANES];
                        if (isa == Isa::avx512) {
                            const std::size_t np = std::min<std::size_t>(2, g1 - g);
                            AVX512[r - 1][np - 1](probe, D, panel, D, ctx, p - p0, g * LANES);
                            g += np;
                        } else if (isa == Isa::avx2) {
                            AVX2[r - 1](probe, D, panel, D, ctx, p - p0, g * LANES);
                            ++g;
                        } else {
                            tile_f32_scalar(probe, D, panel, D, ctx, p - p0, g * LANES);
                            ++g;
                        }
                    }
                }
            } else {
                const std::size_t tile = vnni ? AVX512_R : 1;
                for (std::size_t p = p0; p < p1; p += tile) {
                    const std::size_t r = std::min(tile, p1 - p);
                    for (std::size_t g = g0; g < g1;) {
                        const Int8View view{&quantised.bytes[p * qdim_],
                                            qdim_,
                                            &quantised.inv[p],
                                            &qpanels_[g * qdim_ * LANES],
                                            &qoffset_[g * LANES],
                                            &qinv_[g * LANES],
                                            qdim_ / 4};
                        if (vnni) {
                            const std::size_t np = std::min<std::size_t>(2, g1 - g);
                            VNNI[r - 1][np - 1](view, ctx, p - p0, g * LANES);
                            g += np;
                        } else {
                            tile_i8_scalar(view, ctx, p - p0, g * LANES);
                            ++g;
                        }
                    }
                }
            }
        }
    };
    if (o.parallel) {
        tbb::parallel_for(tbb::blocked_range<std::size_t>(0, blocks, 1), [&](const auto& range) {
            for (std::size_t b = range.begin(); b != range.end(); ++b) body(b);
        });
    } else {
        for (std::size_t b = 0; b < blocks; ++b) body(b);
    }

    if (o.hits_at) {
        result.hit_offsets.resize(P + 1, 0);
        for (std::size_t p = 0; p < P; ++p)
            result.hit_offsets[p + 1] = result.hit_offsets[p] + hits[p].size();
        result.hits.reserve(result.hit_offsets[P]);
        for (const auto& h : hits) result.hits.insert(result.hits.end(), h.begin(), h.end());
    }
    return result;
}

std::string template_search_kernel(bool int8, SearchKernel kernel) {
    if (int8) return has_vnni(kernel) ? "avx512-vnni" : "scalar";
    switch (float_isa(kernel)) {
        case Isa::avx512:
            return "avx512";
        case Isa::avx2:
            return "avx2+fma";
        default:
            return "scalar";
    }
}

// ---------------------------------------------------------------------------------------
// The experiment.

std::optional<double> TemplateGroupResult::fmr() const {
    return ratio(false_matches, impostor_comparisons);
}
std::optional<double> TemplateGroupResult::fnmr() const {
    return ratio(genuine_non_matches, static_cast<std::uint64_t>(mated_probes));
}
std::optional<double> TemplateGroupResult::fpir() const {
    return ratio(false_positive_searches, static_cast<std::uint64_t>(nonmated_probes));
}
std::optional<double> TemplateGroupResult::fnir() const {
    return ratio(missed_searches, static_cast<std::uint64_t>(mated_probes));
}
std::optional<double> TemplateGroupResult::same_group_share() const {
    return ratio(same_group_false_matches, false_matches);
}

TemplateExperiment run_template_experiment(const Scenario& scenario, std::size_t modality,
                                           std::size_t database, const TemplateOptions& options,
                                           const ProbePlan& plan, const SearchOptions& search) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    if ((plan.per_cell > 0) == (plan.total > 0) || plan.per_cell < 0 || plan.total < 0)
        throw InputError(OPTIONS_SOURCE, "probes",
                         std::to_string(plan.per_cell) + "/" + std::to_string(plan.total),
                         "give either probes per cell or a total, > 0");
    const CellTable cells(scenario.dimensions, scenario.population);
    const TemplateGallery gallery(scenario, cells, modality, database, options);
    const MatchModel& model = gallery.model();
    const std::size_t C = cells.size();
    const std::size_t K = scenario.dimensions.size();
    const std::size_t n = gallery.size();

    // Probes: per cell, mated (records of the cell in order, cycling) then non-mated.
    std::vector<std::int64_t> per_cell(C, plan.per_cell);
    if (plan.total > 0)
        for (std::size_t c = 0; c < C; ++c)
            per_cell[c] =
                plan.total / static_cast<std::int64_t>(C) +
                (static_cast<std::int64_t>(c) < plan.total % static_cast<std::int64_t>(C));
    std::vector<ProbeSpec> specs;
    std::uint64_t id = 0;
    for (std::size_t c = 0; c < C; ++c) {
        const std::size_t n_c = gallery.cell_offset(c + 1) - gallery.cell_offset(c);
        if (n_c == 0 || !plan.mated) continue;
        for (std::int64_t i = 0; i < per_cell[c]; ++i)
            specs.push_back({id++, c,
                             static_cast<std::int64_t>(gallery.cell_offset(c) +
                                                       static_cast<std::size_t>(i) % n_c)});
    }
    for (std::size_t c = 0; c < C; ++c)
        for (std::int64_t i = 0; i < per_cell[c]; ++i) specs.push_back({id++, c, -1});
    const cv::Mat probes = gallery.make_probes(specs);
    const auto built = Clock::now();

    SearchOptions so = search;
    so.top_k = 1;
    so.hits_at = gallery.threshold();
    const TemplateSearchResult found = gallery.search(probes, so);
    const auto searched = Clock::now();

    // Rows: all, each category of each dimension, each cell.
    TemplateExperiment ex;
    ex.options = options;
    ex.modality = MODALITY_NAMES[modality];
    ex.database = scenario.databases[database].name;
    ex.gallery_size = n;
    ex.real_gallery_size = gallery.real_size();
    ex.real_fpir = gallery.real_fpir();
    ex.threshold = gallery.threshold();
    ex.per_record_fmr = gallery.per_record_fmr();
    ex.top_records = std::max<std::size_t>(1, (n + 50) / 100);
    for (std::size_t c = 0; c < C; ++c) ex.capture_noise.push_back(gallery.capture_noise(c));
    ex.groups.push_back(group_row("all", "all", "all"));
    std::vector<std::size_t> dim_row(K);
    for (std::size_t d = 0; d < K; ++d) {
        dim_row[d] = ex.groups.size();
        for (const auto& category : scenario.dimensions[d].categories)
            ex.groups.push_back(group_row("dimension", scenario.dimensions[d].name, category));
    }
    const std::size_t cell_row = ex.groups.size();
    for (std::size_t c = 0; c < C; ++c)
        ex.groups.push_back(group_row("cell", "cell", cells.label(c)));
    const std::size_t rows = ex.groups.size();

    // Per probe cell: its rows, each row's "own group" of gallery cells, and the model's
    // expected false matches against the whole gallery and against the own group.
    std::vector<double> fnir_model(C);
    for (std::size_t c = 0; c < C; ++c) fnir_model[c] = 1 - model.p_mate_returned(c);
    std::vector<std::size_t> n_g(C);
    for (std::size_t g = 0; g < C; ++g)
        n_g[g] = gallery.cell_offset(g + 1) - gallery.cell_offset(g);
    auto same_group = [&](std::size_t row, std::size_t c, std::size_t g) {
        if (row == 0 || row >= cell_row) return c == g;
        std::size_t d = K - 1;
        while (dim_row[d] > row) --d;
        return cells.category(c, d) == cells.category(g, d);
    };
    struct Sums {
        double expected_fm = 0, expected_same_fm = 0, fnmr = 0, fpir = 0, fpir_real = 0, fnir = 0;
    };
    std::vector<Sums> sums(rows);
    std::vector<std::vector<std::uint32_t>> fm_count(rows, std::vector<std::uint32_t>(n, 0));
    std::vector<std::vector<std::uint32_t>> return_count(rows, std::vector<std::uint32_t>(n, 0));
    const float t = gallery.threshold();

    std::vector<std::size_t> probe_rows;
    for (std::size_t p = 0; p < specs.size(); ++p) {
        const std::size_t c = specs[p].cell;
        const bool mated = specs[p].mate >= 0;
        const auto mate = static_cast<std::uint32_t>(mated ? specs[p].mate : 0);
        probe_rows.assign({0});
        for (std::size_t d = 0; d < K; ++d) probe_rows.push_back(dim_row[d] + cells.category(c, d));
        probe_rows.push_back(cell_row + c);

        const auto* h0 = found.hits.data() + found.hit_offsets[p];
        const auto* h1 = found.hits.data() + found.hit_offsets[p + 1];
        const bool genuine_pass = mated && std::binary_search(h0, h1, mate);
        const std::int64_t top = found.candidate(p, 0);
        const bool returns = top >= 0 && found.candidate_score(p, 0) >= t;
        const bool right = mated && returns && top == static_cast<std::int64_t>(mate);

        for (const std::size_t row : probe_rows) {
            TemplateGroupResult& r = ex.groups[row];
            Sums& s = sums[row];
            double all_fm = 0, same_fm = 0;
            std::uint64_t same_cmp = 0;
            for (std::size_t g = 0; g < C; ++g) {
                const double m = static_cast<double>(n_g[g]) - (mated && g == c ? 1.0 : 0.0);
                all_fm += m * gallery.model_fmr(c, g);
                if (same_group(row, c, g)) {
                    same_fm += m * gallery.model_fmr(c, g);
                    same_cmp += n_g[g] - (mated && g == c ? 1 : 0);
                }
            }
            s.expected_fm += all_fm;
            s.expected_same_fm += same_fm;
            r.same_group_comparisons += same_cmp;
            r.impostor_comparisons += n - (mated ? 1 : 0);
            if (mated) {
                ++r.mated_probes;
                s.fnmr += model.fnmr(c);
                s.fnir += fnir_model[c];
                r.genuine_non_matches += !genuine_pass;
                r.missed_searches += !right;
            } else {
                ++r.nonmated_probes;
                s.fpir += gallery.model_fpir(c);
                s.fpir_real += model.fpir(c);
                r.false_positive_searches += returns;
            }
            if (returns && !right) {
                ++r.wrong_returns;
                ++return_count[row][static_cast<std::size_t>(top)];
            }
            for (const std::uint32_t* h = h0; h != h1; ++h) {
                if (mated && *h == mate) continue;
                ++r.false_matches;
                ++fm_count[row][*h];
                r.same_group_false_matches += same_group(row, c, gallery.cell_of(*h));
            }
        }
    }

    for (std::size_t row = 0; row < rows; ++row) {
        TemplateGroupResult& r = ex.groups[row];
        const Sums& s = sums[row];
        r.fmr_model = r.impostor_comparisons
                          ? s.expected_fm / static_cast<double>(r.impostor_comparisons)
                          : 0;
        r.same_group_share_model = s.expected_fm > 0 ? s.expected_same_fm / s.expected_fm : 0;
        r.fnmr_model = r.mated_probes ? s.fnmr / static_cast<double>(r.mated_probes) : 0;
        r.fnir_model = r.mated_probes ? s.fnir / static_cast<double>(r.mated_probes) : 0;
        r.fpir_model = r.nonmated_probes ? s.fpir / static_cast<double>(r.nonmated_probes) : 0;
        r.fpir_model_real =
            r.nonmated_probes ? s.fpir_real / static_cast<double>(r.nonmated_probes) : 0;
        r.doppelganger_share = top_share(fm_count[row], ex.top_records, r.false_matches);
        r.doppelganger_share_null = poisson_top_share(
            static_cast<double>(r.false_matches) / static_cast<double>(n), n, ex.top_records);
        r.doppelganger_share_returns =
            top_share(return_count[row], ex.top_records, r.wrong_returns);
        // Within gallery cells: the top 1% of each cell's records, so that a cell whose
        // records are matched more often as a whole does not count as doppelgangers.
        if (r.false_matches > 0) {
            double top_sum = 0, null_sum = 0;
            for (std::size_t g = 0; g < C; ++g) {
                if (n_g[g] == 0) continue;
                const auto first =
                    fm_count[row].begin() + static_cast<std::ptrdiff_t>(gallery.cell_offset(g));
                std::vector<std::uint32_t> in_cell(first,
                                                   first + static_cast<std::ptrdiff_t>(n_g[g]));
                const std::uint64_t total =
                    std::accumulate(in_cell.begin(), in_cell.end(), std::uint64_t{0});
                if (total == 0) continue;
                const std::size_t top = std::max<std::size_t>(1, (n_g[g] + 50) / 100);
                top_sum += *top_share(std::move(in_cell), top, total) * static_cast<double>(total);
                null_sum +=
                    poisson_top_share(static_cast<double>(total) / static_cast<double>(n_g[g]),
                                      n_g[g], top)
                        .value_or(0) *
                    static_cast<double>(total);
            }
            r.doppelganger_share_within_cells = top_sum / static_cast<double>(r.false_matches);
            r.doppelganger_share_within_cells_null =
                null_sum / static_cast<double>(r.false_matches);
        }
    }
    ex.build_seconds = std::chrono::duration<double>(built - start).count();
    ex.search_seconds = std::chrono::duration<double>(searched - built).count();
    return ex;
}

std::string template_experiment_csv(const TemplateExperiment& ex) {
    const auto v = [](const std::optional<double>& x) {
        return x ? format_value(*x) : std::string("NA");
    };
    const auto q = [](const std::string& text) {
        if (text.find_first_of(",\"\n") == std::string::npos) return text;
        std::string out = "\"";
        for (const char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
        return out + "\"";
    };
    std::ostringstream out;
    out << "kind,dimension,category,mated_probes,nonmated_probes,impostor_comparisons,"
           "false_matches,fmr,fmr_model,genuine_non_matches,fnmr,fnmr_model,"
           "false_positive_searches,fpir,fpir_model,fpir_model_real,missed_searches,fnir,"
           "fnir_model,wrong_returns,same_group_comparisons,same_group_false_matches,"
           "same_group_share,same_group_share_model,doppelganger_share,doppelganger_share_null,"
           "doppelganger_share_returns,doppelganger_share_within_cells,"
           "doppelganger_share_within_cells_null,top_records,modality,database,gallery_size,"
           "real_gallery_size,dim,group_weight,int8,threshold,per_record_fmr,real_fpir,seed,"
           "replication,version,commit,build\n";
    for (const auto& r : ex.groups) {
        out << q(r.kind) << ',' << q(r.dimension) << ',' << q(r.category) << ',' << r.mated_probes
            << ',' << r.nonmated_probes << ',' << r.impostor_comparisons << ',' << r.false_matches
            << ',' << v(r.fmr()) << ',' << format_value(r.fmr_model) << ',' << r.genuine_non_matches
            << ',' << v(r.fnmr()) << ',' << format_value(r.fnmr_model) << ','
            << r.false_positive_searches << ',' << v(r.fpir()) << ',' << format_value(r.fpir_model)
            << ',' << format_value(r.fpir_model_real) << ',' << r.missed_searches << ','
            << v(r.fnir()) << ',' << format_value(r.fnir_model) << ',' << r.wrong_returns << ','
            << r.same_group_comparisons << ',' << r.same_group_false_matches << ','
            << v(r.same_group_share()) << ',' << format_value(r.same_group_share_model) << ','
            << v(r.doppelganger_share) << ',' << v(r.doppelganger_share_null) << ','
            << v(r.doppelganger_share_returns) << ',' << v(r.doppelganger_share_within_cells) << ','
            << v(r.doppelganger_share_within_cells_null) << ',' << ex.top_records << ','
            << q(ex.modality) << ',' << q(ex.database) << ',' << ex.gallery_size << ','
            << format_value(ex.real_gallery_size) << ',' << ex.options.dim << ','
            << format_value(ex.options.group_weight) << ',' << (ex.options.int8 ? "true" : "false")
            << ',' << format_value(static_cast<double>(ex.threshold)) << ','
            << format_value(ex.per_record_fmr) << ',' << format_value(ex.real_fpir) << ','
            << ex.options.seed << ',' << ex.options.replication << ',' << STOPSCAN_VERSION << ','
            << STOPSCAN_GIT_COMMIT << ',' << STOPSCAN_BUILD_TYPE << '\n';
    }
    return out.str();
}

void write_template_experiment_csv(const std::string& path, const TemplateExperiment& ex) {
    write_file_atomically(path, template_experiment_csv(ex));
}

}  // namespace stopscan
