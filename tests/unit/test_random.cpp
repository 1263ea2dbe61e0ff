// Counter-based RNG: known answers and key properties (STYLE.md "Random numbers").
#include <catch2/catch.hpp>
#include <set>

#include "stopscan/random.hpp"

using namespace stopscan;

TEST_CASE("philox4x64-10 reproduces the Random123 known-answer vectors", "[random]") {
    // Random123 kat_vectors, philox4x64 10 rounds.
    CHECK(philox4x64({0, 0, 0, 0}, {0, 0}) ==
          std::array<std::uint64_t, 4>{0x16554d9eca36314cULL, 0xdb20fe9d672d0fdcULL,
                                       0xd7e772cee186176bULL, 0x7e68b68aec7ba23bULL});
    const std::uint64_t ones = ~0ULL;
    CHECK(philox4x64({ones, ones, ones, ones}, {ones, ones}) ==
          std::array<std::uint64_t, 4>{0x87b092c3013fe90bULL, 0x438c3c67be8d0224ULL,
                                       0x9cc7d7c69cd777b6ULL, 0xa09caebf594f0ba0ULL});
    CHECK(philox4x64({0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL, 0xa4093822299f31d0ULL,
                      0x082efa98ec4e6c89ULL},
                     {0x452821e638d01377ULL, 0xbe5466cf34e90c6cULL}) ==
          std::array<std::uint64_t, 4>{0xa528f45403e61d95ULL, 0x38c72dbd566e9788ULL,
                                       0xa5a1610e72fd18b5ULL, 0x57bd43b5e52b7fe6ULL});
}

TEST_CASE("the same key gives the same draw, any other key another draw", "[random]") {
    const ReplicationKey key(42, 7);
    const auto a = key.uniforms(123, Purpose::Search, 1, 5);
    CHECK(a == ReplicationKey(42, 7).uniforms(123, Purpose::Search, 1, 5));
    // Each field of the key changes the draw.
    CHECK(a != ReplicationKey(43, 7).uniforms(123, Purpose::Search, 1, 5));
    CHECK(a != ReplicationKey(42, 8).uniforms(123, Purpose::Search, 1, 5));
    CHECK(a != key.uniforms(124, Purpose::Search, 1, 5));
    CHECK(a != key.uniforms(123, Purpose::Action, 1, 5));
    CHECK(a != key.uniforms(123, Purpose::Search, 0, 5));
    CHECK(a != key.uniforms(123, Purpose::Search, 1, 6));
}

TEST_CASE("uniforms lie in the unit interval and draws do not collide", "[random]") {
    const ReplicationKey key(1, 0);
    std::set<double> seen;
    for (std::uint64_t e = 0; e < 20000; ++e)
        for (const double u : key.uniforms(e, Purpose::PersonRecord, 0, 0)) {
            REQUIRE(u >= 0.0);
            REQUIRE(u < 1.0);
            seen.insert(u);
        }
    // 80,000 draws of 53-bit uniforms: P(any collision) ≈ n²/2^54 ≈ 4e-7.
    CHECK(seen.size() == 80000);
    CHECK(to_unit(~0ULL) < 1.0);
    CHECK(to_unit(0) == 0.0);
}

TEST_CASE("replication keys are mixed, not offsets of the seed", "[random]") {
    // seed s, replication r+1 must not equal seed s+1, replication r (the `seed + k` trap).
    CHECK(ReplicationKey(10, 1).uniforms(0, Purpose::Search, 0, 0) !=
          ReplicationKey(11, 0).uniforms(0, Purpose::Search, 0, 0));
}

TEST_CASE("a uniform stream is a pure function of its key", "[random]") {
    const ReplicationKey key(5, 3);
    UniformStream a(key, 9, Purpose::PersonsInCell, 0);
    UniformStream b(key, 9, Purpose::PersonsInCell, 0);
    std::vector<double> first;
    for (int i = 0; i < 11; ++i) first.push_back(a.next());
    for (int i = 0; i < 11; ++i) CHECK(b.next() == first[static_cast<std::size_t>(i)]);
    // Its first four uniforms are block 1 of the key's stream word, never the single block
    // uniforms() gives for the same key.
    const auto block = key.uniforms(9, Purpose::PersonsInCell, 0, 0, 1);
    for (std::size_t i = 0; i < 4; ++i) CHECK(first[i] == block[i]);
    CHECK(key.uniforms(9, Purpose::PersonsInCell, 0, 0)[0] != first[0]);
    // Streams of different indices are different.
    UniformStream other(key, 9, Purpose::PersonsInCell, 0, 1);
    CHECK(other.next() != first[0]);
}

TEST_CASE("uniforms pass a coarse equidistribution check", "[random][stat]") {
    // 10 bins, n = 400,000 draws: each bin count is Binomial(n, 0.1), sd = sqrt(n·0.1·0.9) = 189.7.
    // z for alpha = 1e-6 split over 10 bins (Bonferroni, two-sided): z(5e-8) = 5.45, so the bound
    // is 5.45 × 189.7 ≈ 1034.
    const ReplicationKey key(20261123, 0);
    std::array<int, 10> bins{};
    for (std::uint64_t e = 0; e < 100000; ++e)
        for (const double u : key.uniforms(e, Purpose::StopModality, 0, 0))
            ++bins[static_cast<std::size_t>(u * 10)];
    for (const int count : bins) CHECK(std::abs(count - 40000) <= 1034);
}
