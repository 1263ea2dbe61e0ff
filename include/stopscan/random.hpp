// Counter-based random numbers keyed by (seed, replication, entity, purpose, index).
//
// Every draw in stopscan is a pure function of its key (MODEL.md §9): no generator state
// lives in a thread, chunk or slot, so results cannot depend on the thread count or on how
// the work is split, and a policy that skips a search cannot shift anybody else's draw
// (common random numbers across policies, MODEL.md §6).
//
// The bijection is Philox4x64-10 of Salmon, Moraes, Dror and Shaw, "Parallel random
// numbers: as easy as 1, 2, 3", SC'11 (doi:10.1145/2063384.2063405); constants are those
// of Random123 and of the C++26 `std::philox4x64` proposal (P2075).
#pragma once

#include <array>
#include <cstdint>

namespace stopscan {

/// One value per model decision (after OpenMC's STREAM_* constants): a draw for one
/// purpose can never be consumed by another, whatever the policy or code path.
enum class Purpose : std::uint32_t {
    PersonsInCell = 1,  ///< how many persons of a cell are stopped at least once
    StopsOfPerson = 2,  ///< how many times a stopped person is stopped
    PersonRecord = 3,   ///< enrolment, truth and record state of a person in one database
    StopModality = 4,   ///< fingerprint or face at one stop
    Search = 5,         ///< biometric outcome of one 1:N search
    Action = 6,         ///< officer's action and independent verification after a hit
    SearchScores = 7,   ///< scores of a search whose best impostor passes the threshold
    Review = 8,         ///< a person's review of a candidate list (face searches)
    Parameter = 9,      ///< an uncertain parameter's value in one replication (MODEL.md §8)
    Design = 10,        ///< a sweep design's sampling (Latin hypercube, Morris, Sobol' shift)
};

/// 64-bit finaliser of SplitMix64 (Steele, Lea, Flood 2014): a bijective mixing hash used
/// to derive replication keys from the seed, never `seed + k`.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/// Four uniforms in [0, 1) with 53 random bits each.
using Uniforms4 = std::array<double, 4>;

namespace detail {

// GCC's 128-bit integer gives the 64x64->128 multiply Philox needs in one instruction.
__extension__ using uint128 = unsigned __int128;

inline void philox_round(std::array<std::uint64_t, 4>& c,
                         const std::array<std::uint64_t, 2>& k) noexcept {
    constexpr std::uint64_t M0 = 0xD2E7470EE14C6C93ULL;
    constexpr std::uint64_t M1 = 0xCA5A826395121157ULL;
    const uint128 p0 = static_cast<uint128>(M0) * c[0];
    const uint128 p1 = static_cast<uint128>(M1) * c[2];
    const auto hi0 = static_cast<std::uint64_t>(p0 >> 64);
    const auto lo0 = static_cast<std::uint64_t>(p0);
    const auto hi1 = static_cast<std::uint64_t>(p1 >> 64);
    const auto lo1 = static_cast<std::uint64_t>(p1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
}

}  // namespace detail

/// Philox4x64 with 10 rounds: maps a 256-bit counter and a 128-bit key to 256 random bits.
inline std::array<std::uint64_t, 4> philox4x64(std::array<std::uint64_t, 4> ctr,
                                               std::array<std::uint64_t, 2> key) noexcept {
    constexpr std::uint64_t W0 = 0x9E3779B97F4A7C15ULL;
    constexpr std::uint64_t W1 = 0xBB67AE8584CAA73BULL;
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            key[0] += W0;
            key[1] += W1;
        }
        detail::philox_round(ctr, key);
    }
    return ctr;
}

/// Maps 64 random bits to a double in [0, 1) with 53 random bits.
constexpr double to_unit(std::uint64_t bits) noexcept {
    return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

/// The key of one replication of one run: every draw of that replication derives from it.
class ReplicationKey {
public:
    /// Derives the key with a mixing hash of (seed, replication).
    constexpr ReplicationKey(std::uint64_t seed, std::uint64_t replication) noexcept
        : key_{mix64(seed), mix64(mix64(seed) ^ mix64(replication ^ 0x5DEECE66DULL))} {}

    /// 256 random bits for (entity, purpose, sub, index, stream). `sub` distinguishes
    /// parallel draws of one purpose (e.g. the database index), `index` counts repeated draws
    /// (e.g. the stop number of a person), `stream` numbers the blocks of a UniformStream.
    std::array<std::uint64_t, 4> bits(std::uint64_t entity, Purpose purpose, std::uint32_t sub,
                                      std::uint64_t index,
                                      std::uint64_t stream = 0) const noexcept {
        const std::uint64_t tag = (static_cast<std::uint64_t>(purpose) << 32) | sub;
        return philox4x64({entity, tag, index, stream}, key_);
    }

    /// Four independent uniforms in [0, 1) for (entity, purpose, sub, index, stream).
    Uniforms4 uniforms(std::uint64_t entity, Purpose purpose, std::uint32_t sub,
                       std::uint64_t index, std::uint64_t stream = 0) const noexcept {
        const auto b = bits(entity, purpose, sub, index, stream);
        return {to_unit(b[0]), to_unit(b[1]), to_unit(b[2]), to_unit(b[3])};
    }

private:
    std::array<std::uint64_t, 2> key_;
};

/// A sequential stream of uniforms for one key, for samplers (rejection methods) that need
/// an unbounded number of draws. Still a pure function of the key: the n-th uniform of the
/// stream is the same whatever thread asks for it.
class UniformStream {
public:
    /// The stream of (entity, purpose, sub, index); its blocks are numbered 1, 2, ... in the
    /// key's `stream` word, so it never overlaps the single block uniforms() gives for the
    /// same (entity, purpose, sub, index).
    UniformStream(const ReplicationKey& key, std::uint64_t entity, Purpose purpose,
                  std::uint32_t sub, std::uint64_t index = 0) noexcept
        : key_(&key), entity_(entity), purpose_(purpose), sub_(sub), index_(index) {}

    /// Next uniform in [0, 1).
    double next() noexcept {
        if (pos_ == 4) {
            block_ = key_->uniforms(entity_, purpose_, sub_, index_, ++counter_);
            pos_ = 0;
        }
        return block_[pos_++];
    }

private:
    const ReplicationKey* key_;
    std::uint64_t entity_;
    Purpose purpose_;
    std::uint32_t sub_;
    std::uint64_t index_;
    std::uint64_t counter_ = 0;
    Uniforms4 block_{};
    int pos_ = 4;
};

}  // namespace stopscan
