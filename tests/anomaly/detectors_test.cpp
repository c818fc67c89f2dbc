#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "vigil/anomaly/detector.h"

using namespace vigil::anomaly;

namespace {

// A noisy series around 100 with standard deviation 1.
std::vector<double> noisy(std::size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(100, 1);
  std::vector<double> out(n);
  for (auto& v : out) {
    v = noise(rng);
  }
  return out;
}

std::vector<double> scoreAll(Detector& d, const std::vector<double>& values) {
  std::vector<double> scores;
  for (std::size_t i = 0; i < values.size(); ++i) {
    scores.push_back(d.update(static_cast<int64_t>(i) * 1000, values[i]));
  }
  return scores;
}

}  // namespace

TEST_CASE("Detectors: a spike scores near 1 at once, the noise around it does not", "[anomaly]") {
  for (const auto& name : detectorNames()) {
    INFO("detector " << name);
    auto d = makeDetector(name);
    REQUIRE(d);
    auto values = noisy(500, 1);
    values[400] = 130;  // 30 sigma
    auto scores = scoreAll(*d, values);
    CHECK(scores[400] > 0.9999);
    std::size_t false_alarms = 0;
    for (std::size_t i = 100; i < 400; ++i) {
      false_alarms += scores[i] > 0.9999 ? 1 : 0;
    }
    // 0.9999 is about 3.9 sigma: a handful at most in 300 normal points.
    CHECK(false_alarms <= 3);
  }
}

TEST_CASE("Detectors: a level shift is flagged when it happens", "[anomaly]") {
  for (const auto& name : detectorNames()) {
    INFO("detector " << name);
    auto d = makeDetector(name);
    auto values = noisy(600, 2);
    for (std::size_t i = 300; i < values.size(); ++i) {
      values[i] += 20;
    }
    auto scores = scoreAll(*d, values);
    CHECK(scores[300] > 0.9999);
    // Both learn the new level eventually: well after the shift the scores are ordinary again.
    CHECK(scores[590] < 0.999);
  }
}

TEST_CASE("Detectors: constant and gapped series stay quiet; a departure does not", "[anomaly]") {
  for (const auto& name : detectorNames()) {
    INFO("detector " << name);
    auto d = makeDetector(name);
    double max_score = 0;
    for (int i = 0; i < 200; ++i) {
      max_score = std::max(max_score, d->update(i * 1000, 42.0));
      // NaN (a gap or a staleness marker) is ignored.
      CHECK(d->update(i * 1000 + 500, std::nan("")) == 0);
    }
    CHECK(max_score == 0);
    CHECK(d->update(200000, 43.0) > 0.9999);
  }
}

TEST_CASE("Detectors: models round-trip through serialisation", "[anomaly]") {
  for (const auto& name : detectorNames()) {
    INFO("detector " << name);
    auto a = makeDetector(name);
    auto values = noisy(300, 3);
    scoreAll(*a, std::vector<double>(values.begin(), values.begin() + 150));
    auto b = makeDetector(name);
    REQUIRE(b->restore(a->serialize()));
    for (std::size_t i = 150; i < values.size(); ++i) {
      CHECK(a->update(static_cast<int64_t>(i), values[i]) ==
            b->update(static_cast<int64_t>(i), values[i]));
    }
    // Another detector's state, or garbage, is refused and changes nothing.
    for (const auto& other : detectorNames()) {
      if (other != name) {
        CHECK_FALSE(b->restore(makeDetector(other)->serialize()));
      }
    }
    CHECK_FALSE(b->restore("garbage"));
  }
}

TEST_CASE("Detectors: memory per model is fixed and small", "[anomaly]") {
  for (const auto& name : detectorNames()) {
    INFO("detector " << name);
    auto d = makeDetector(name);
    const std::size_t before = d->memoryBytes();
    scoreAll(*d, noisy(10000, 4));
    CHECK(d->memoryBytes() == before);
    CHECK(before <= 4096);
  }
  CHECK(makeDetector("no-such-detector") == nullptr);
}

TEST_CASE("Detectors: z to score mapping", "[anomaly]") {
  CHECK(zToScore(0) == 0);
  CHECK(zToScore(2) == Approx(0.9545).epsilon(1e-3));
  CHECK(zToScore(3) == Approx(0.9973).epsilon(1e-4));
  CHECK(zToScore(std::nan("")) == 0);
  CHECK(zToScore(1e9) == 1);
}
