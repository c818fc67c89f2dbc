#include "vigil/alerting/fingerprint_map.h"

#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <string>

using vigil::alerting::FingerprintMap;

namespace {

std::map<uint64_t, std::string> contents(const FingerprintMap<std::string>& m) {
  std::map<uint64_t, std::string> out;
  m.forEach([&](uint64_t fp, const std::string& v) { out.emplace(fp, v); });
  return out;
}

}  // namespace

TEST_CASE("Fingerprint map: finds, inserts once, erases in batches") {
  FingerprintMap<std::string> m;
  CHECK(m.find(0) == nullptr);
  CHECK(m.size() == 0);
  auto [a, fresh] = m.tryEmplace(42);
  CHECK(fresh);
  CHECK(a->empty());
  *a = "forty-two";
  auto [again, fresh_again] = m.tryEmplace(42);
  CHECK_FALSE(fresh_again);
  CHECK(*again == "forty-two");
  *m.tryEmplace(0).first = "zero";
  REQUIRE(m.find(0) != nullptr);
  CHECK(*m.find(0) == "zero");
  CHECK(m.find(43) == nullptr);
  CHECK(m.size() == 2);
  CHECK(m.eraseIf([](uint64_t fp, const std::string&) { return fp == 0; }) == 1);
  CHECK(m.find(0) == nullptr);
  CHECK(*m.find(42) == "forty-two");
  CHECK(m.eraseIf([](uint64_t, const std::string&) { return true; }) == 1);
  CHECK(m.size() == 0);
  CHECK(m.find(42) == nullptr);
  *m.tryEmplace(7).first = "seven";
  CHECK(contents(m) == std::map<uint64_t, std::string>{{7, "seven"}});
}

TEST_CASE("Fingerprint map: agrees with std::map through growth, collisions and erasure") {
  std::mt19937_64 rng(5);
  FingerprintMap<std::string> m;
  std::map<uint64_t, std::string> reference;
  // Fingerprints sharing their high half share the slot's tag: the map must compare the
  // fingerprints themselves.
  auto draw = [&](int i) -> uint64_t {
    switch (i % 3) {
      case 0:
        return rng();
      case 1:
        return rng() % 5000;
      default:
        return (uint64_t{0xabcdef01} << 32) | (rng() % 5000);
    }
  };
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 30000; ++i) {
      const uint64_t fp = draw(i);
      auto [value, fresh] = m.tryEmplace(fp);
      auto [ref, ref_fresh] = reference.try_emplace(fp);
      REQUIRE(fresh == ref_fresh);
      REQUIRE(*value == ref->second);
      *value = ref->second = std::to_string(fp) + "/" + std::to_string(round);
    }
    REQUIRE(m.size() == reference.size());
    for (int i = 0; i < 30000; ++i) {
      const uint64_t probe = draw(i);
      const std::string* found = m.find(probe);
      auto ref = reference.find(probe);
      REQUIRE((found != nullptr) == (ref != reference.end()));
      if (found != nullptr) {
        REQUIRE(*found == ref->second);
      }
    }
    const uint64_t modulus = 2 + round;
    const std::size_t removed =
        m.eraseIf([&](uint64_t fp, const std::string&) { return fp % modulus == 0; });
    REQUIRE(removed ==
            std::erase_if(reference, [&](const auto& kv) { return kv.first % modulus == 0; }));
    REQUIRE(contents(m) == reference);
  }
}
