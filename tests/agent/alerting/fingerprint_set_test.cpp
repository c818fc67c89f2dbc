#include "vigil/alerting/fingerprint_set.h"

#include <catch2/catch.hpp>

#include <random>
#include <set>

using vigil::alerting::FingerprintSet;

TEST_CASE("Fingerprint set: behaves as a set, fingerprint 0 included") {
  FingerprintSet s;
  CHECK(s.empty());
  CHECK_FALSE(s.contains(0));
  CHECK(s.insert(42));
  CHECK_FALSE(s.insert(42));
  CHECK(s.insert(0));
  CHECK_FALSE(s.insert(0));
  CHECK(s.contains(0));
  CHECK(s.contains(42));
  CHECK_FALSE(s.contains(43));
  CHECK(s.size() == 2);
  CHECK(s.sorted() == std::vector<uint64_t>{0, 42});
  CHECK(s.eraseIf([](uint64_t fp) { return fp == 0; }) == 1);
  CHECK_FALSE(s.contains(0));
  CHECK(s.size() == 1);
  CHECK(s.eraseIf([](uint64_t) { return true; }) == 1);
  CHECK(s.empty());
  CHECK(s.insert(7));
  CHECK(s.sorted() == std::vector<uint64_t>{7});
}

TEST_CASE("Fingerprint set: agrees with std::set through growth, collisions and erasure") {
  std::mt19937_64 rng(11);
  FingerprintSet s;
  std::set<uint64_t> reference;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 20000; ++i) {
      // Half random, half from a small range, so that values repeat and slots collide.
      const uint64_t fp = i % 2 == 0 ? rng() : rng() % 5000;
      REQUIRE(s.insert(fp) == reference.insert(fp).second);
    }
    REQUIRE(s.size() == reference.size());
    for (int i = 0; i < 20000; ++i) {
      const uint64_t probe = i % 2 == 0 ? rng() : rng() % 10000;
      REQUIRE(s.contains(probe) == (reference.count(probe) == 1));
    }
    const uint64_t modulus = 2 + round;
    const std::size_t removed = s.eraseIf([&](uint64_t fp) { return fp % modulus == 0; });
    REQUIRE(removed == std::erase_if(reference, [&](uint64_t fp) { return fp % modulus == 0; }));
    REQUIRE(s.sorted() == std::vector<uint64_t>(reference.begin(), reference.end()));
  }
}
