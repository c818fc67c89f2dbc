#include <catch2/catch.hpp>

#include "vigil/duration.h"

using vigil::Duration;
using vigil::formatDuration;
using vigil::parseDuration;

TEST_CASE("Duration: parses Prometheus durations", "[agent][duration]") {
  struct Case {
    const char* text;
    int64_t millis;
  };
  const Case cases[] = {
      {"0", 0},           {"15s", 15000},      {"5m", 300000},
      {"1h30m", 5400000}, {"100ms", 100},      {"1d", 86400000},
      {"1w", 604800000},  {"1y", 31536000000}, {"2h0m5s", 7205000},
      {"1m500ms", 60500}, {"0s", 0},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto d = parseDuration(c.text);
    REQUIRE(d.isOk());
    CHECK(d->count() == c.millis);
  }
}

TEST_CASE("Duration: rejects what Prometheus rejects, saying why", "[agent][duration]") {
  struct Case {
    const char* text;
    const char* why;
  };
  const Case cases[] = {
      {"", "empty"},
      {"5 minutes", "unknown unit"},
      {"5", "missing unit"},
      {"1.5s", "unknown unit"},
      {"30s1m", "largest to smallest"},
      {"1s1s", "largest to smallest"},
      {"-5s", "expected a number"},
      {"s", "expected a number"},
      {"99999999999999999999s", "too large"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto d = parseDuration(c.text);
    REQUIRE_FALSE(d.isOk());
    CHECK_THAT(d.status().message(), Catch::Contains(c.why));
    CHECK_THAT(d.status().message(), Catch::Contains("Prometheus syntax"));
  }
}

TEST_CASE("Duration: formats the shortest Prometheus spelling", "[agent][duration]") {
  CHECK(formatDuration(Duration{0}) == "0s");
  CHECK(formatDuration(Duration{5400000}) == "1h30m");
  CHECK(formatDuration(Duration{1500}) == "1s500ms");
  CHECK(formatDuration(Duration{86400000}) == "1d");
  for (const char* text : {"15s", "1h30m", "2w3d", "1m500ms"}) {
    CHECK(formatDuration(*parseDuration(text)) == text);
  }
}
