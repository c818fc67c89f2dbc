#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>

#include "agent/store/gorilla.h"
#include "vigil/store.h"

using vigil::store::GorillaDecoder;
using vigil::store::GorillaEncoder;

namespace {

struct Point {
  int64_t t;
  double v;
};

// Encodes, decodes, and compares bit patterns (so NaN payloads and -0 count). A value the
// current chunk cannot hold starts a new chunk, as the store does.
void roundTrip(const std::vector<Point>& points) {
  std::vector<GorillaEncoder> chunks(1);
  for (const auto& p : points) {
    if (!chunks.back().fits(p.v)) {
      chunks.emplace_back();
    }
    chunks.back().append(p.t, p.v);
  }
  std::size_t i = 0;
  int64_t t = 0;
  double v = 0;
  for (const auto& enc : chunks) {
    GorillaDecoder dec(enc.bytes.data(), enc.bits, enc.count);
    while (dec.next(t, v)) {
      INFO("sample " << i);
      REQUIRE(i < points.size());
      CHECK(t == points[i].t);
      CHECK(std::bit_cast<uint64_t>(v) == std::bit_cast<uint64_t>(points[i].v));
      ++i;
    }
  }
  CHECK(i == points.size());
}

}  // namespace

TEST_CASE("Gorilla: adversarial values round-trip bit for bit", "[store][gorilla]") {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> values = {0.0,
                                      -0.0,
                                      std::nan(""),
                                      vigil::staleNaN(),
                                      inf,
                                      -inf,
                                      std::numeric_limits<double>::max(),
                                      std::numeric_limits<double>::lowest(),
                                      std::numeric_limits<double>::min(),
                                      std::numeric_limits<double>::denorm_min(),
                                      1e308,
                                      -1e-308,
                                      42,
                                      42,
                                      42.000000000001,
                                      1,
                                      -1,
                                      std::bit_cast<double>(uint64_t{0x8000000000000001ULL}),
                                      std::bit_cast<double>(uint64_t{0x7fffffffffffffffULL})};
  std::vector<Point> points;
  int64_t t = 1700000000000;
  for (double v : values) {
    points.push_back({t, v});
    t += 15000;
  }
  roundTrip(points);
}

TEST_CASE("Gorilla: irregular timestamps round-trip", "[store][gorilla]") {
  // Every delta-of-delta bucket, negative ones, a jump of years, a negative epoch.
  std::vector<int64_t> ts = {-5000,
                             0,
                             1,
                             2,
                             4,
                             100,
                             163,
                             1000,
                             1001,
                             5000,
                             4100 + 5000,
                             20000,
                             2000000,
                             2000001,
                             900000000000LL,
                             900000000001LL,
                             1800000000000LL};
  std::vector<Point> points;
  for (std::size_t i = 0; i < ts.size(); ++i) {
    points.push_back({ts[i], static_cast<double>(i)});
  }
  roundTrip(points);
}

TEST_CASE("Gorilla: random series round-trip (property)", "[store][gorilla]") {
  std::mt19937_64 rng(20261128);
  for (int round = 0; round < 300; ++round) {
    std::vector<Point> points;
    int64_t t = static_cast<int64_t>(rng() % 2000000000000ULL);
    double v = 0;
    const int kind = round % 5;
    const int n = 1 + static_cast<int>(rng() % 600);
    for (int i = 0; i < n; ++i) {
      t += 1 + static_cast<int64_t>(rng() % (kind == 0 ? 100000 : 30000));
      switch (kind) {
        case 0:  // arbitrary bit patterns, NaNs included
          v = std::bit_cast<double>(rng());
          break;
        case 1:  // counter
          v += static_cast<double>(rng() % 1000);
          break;
        case 2:  // noisy gauge
          v = std::uniform_real_distribution<double>(-1e6, 1e6)(rng);
          break;
        case 3:  // mostly constant
          v = (rng() % 10 == 0) ? static_cast<double>(rng() % 3) : v;
          break;
        default:  // tiny and huge magnitudes
          v = std::ldexp(1.0 + static_cast<double>(rng() % 1000) / 1000,
                         static_cast<int>(rng() % 2000) - 1000);
      }
      points.push_back({t, v});
    }
    INFO("round " << round << " kind " << kind);
    roundTrip(points);
  }
}

TEST_CASE("Gorilla: regular counters compress to about a byte per sample", "[store][gorilla]") {
  GorillaEncoder enc;
  double v = 1e9;
  for (int i = 0; i < 480; ++i) {
    v += 1000 + (i % 7);
    enc.append(1700000000000 + i * 15000, v);
  }
  // Regular timestamps cost one bit; the value's changing low bits the rest.
  CHECK(static_cast<double>(enc.bits) / 8 / 480 < 3.0);
  GorillaEncoder constant;
  for (int i = 0; i < 480; ++i) {
    constant.append(1700000000000 + i * 15000, 7);
  }
  CHECK(static_cast<double>(constant.bits) / 8 / 480 < 0.3);
}

TEST_CASE("Gorilla: decimals are stored as scaled integers, exactly", "[store][gorilla]") {
  CHECK(vigil::store::decimalScale(42) == 1);
  CHECK(vigil::store::decimalScale(10870.69) == 3);
  CHECK(vigil::store::decimalScale(0.21) == 3);
  CHECK(vigil::store::decimalScale(2.3000000000000003) == 0);
  CHECK(vigil::store::decimalScale(-0.0) == 0);
  CHECK(vigil::store::decimalScale(std::nan("")) == 0);
  CHECK(vigil::store::decimalScale(1e300) == 0);
  // CPU seconds in hundredths: far smaller than the XOR of the doubles.
  GorillaEncoder scaled;
  scaled.min_scale = 3;  // hundredths, as the store learns after the first misfit
  GorillaEncoder xor_only;
  int ticks = 100000;
  for (int i = 0; i < 120; ++i) {
    ticks += 90 + i % 20;
    const double v = ticks / 100.0;
    REQUIRE(scaled.fits(v));
    scaled.append(1700000000000 + i * 15000, v);
  }
  CHECK(scaled.scale == 3);
  // The same series with one value no decimal can hold: it does not fit the scaled chunk.
  CHECK_FALSE(scaled.fits(1.0 / 3));
  CHECK(scaled.fits(ticks / 100.0 + 0.01));
  ticks = 100000;
  xor_only.append(0, 1.0 / 3);  // forces XOR mode for the chunk
  for (int i = 0; i < 120; ++i) {
    ticks += 90 + i % 20;
    xor_only.append(1700000000000 + i * 15000, ticks / 100.0);
  }
  CHECK(scaled.bits * 2 < xor_only.bits);
  // Mixed: decimals, then a run that is not, then decimals again, round-trips.
  std::vector<Point> mixed;
  for (int i = 0; i < 300; ++i) {
    double v = i < 100 ? i * 0.25 : i < 200 ? std::sqrt(static_cast<double>(i)) : i;
    mixed.push_back({i * 1000, v});
  }
  roundTrip(mixed);
}

TEST_CASE("Gorilla: a value that stays put is one bit, and such a chunk is known to be minimal",
          "[store][gorilla]") {
  // Scaled mode with a shift (memory sizes in KiB), XOR mode, and a scaled decimal: runs of
  // one value, then another, round-trip exactly.
  for (const double base : {4096.0 * 1234, 1.0 / 3, 10870.69}) {
    INFO("base " << base);
    GorillaEncoder enc;
    enc.shift = 10;
    std::vector<Point> points;
    for (int i = 0; i < 100; ++i) {
      const double v = i < 60 ? base : base * 2;
      points.push_back({1700000000000 + i * 1000, v});
      REQUIRE(enc.fits(v));
      enc.append(points.back().t, v);
      if (i == 59) {
        // Nothing can store the first 60 values in less: one bit each after the first (the
        // header, the first sample, the second timestamp's first delta, then two bits a sample).
        CHECK(enc.values_minimal);
        CHECK(enc.bits <= 3 + 6 + 64 + 64 + 16 + 2 * 59);
      }
    }
    CHECK_FALSE(enc.values_minimal);
    GorillaDecoder dec(enc.bytes.data(), enc.bits, enc.count);
    int64_t t = 0;
    double v = 0;
    for (const auto& p : points) {
      REQUIRE(dec.next(t, v));
      CHECK(t == p.t);
      CHECK(std::bit_cast<uint64_t>(v) == std::bit_cast<uint64_t>(p.v));
    }
    CHECK_FALSE(dec.next(t, v));
  }
}

TEST_CASE("Gorilla: a truncated stream ends the decode instead of reading past it",
          "[store][gorilla]") {
  GorillaEncoder enc;
  for (int i = 0; i < 50; ++i) {
    enc.append(i * 1000, i * 1.5);
  }
  GorillaDecoder dec(enc.bytes.data(), enc.bits / 2, enc.count);
  int64_t t = 0;
  double v = 0;
  int n = 0;
  while (dec.next(t, v)) {
    ++n;
  }
  CHECK(n < 50);
}
