// When the next scrape comes, learned from the last ones: what the collectors' rounds are
// moved onto.
#include <catch2/catch.hpp>

#include "agent/core/scrape_phase.h"

using namespace vigil;
using namespace std::chrono_literals;

namespace {

using Clock = ScrapePhase::Clock;

const Clock::time_point kStart = Clock::time_point() + 1000h;

// `n` scrapes from `client`, `period` apart from `first`.
void scrapes(ScrapePhase& phase, const char* client, Clock::time_point first,
             std::chrono::nanoseconds period, int n) {
  for (int i = 0; i < n; ++i) {
    phase.observe(client, first + i * period);
  }
}

// Seven scrapes a second apart from `first`, each `even` late when its index is even and `odd`
// late when odd: a scraper whose arrivals alternate between two phases.
void alternating(ScrapePhase& phase, Clock::time_point first, std::chrono::nanoseconds even,
                 std::chrono::nanoseconds odd) {
  for (int i = 0; i < 7; ++i) {
    phase.observe("a", first + i * 1s + (i % 2 == 1 ? odd : even));
  }
}

}  // namespace

TEST_CASE("ScrapePhase: a steady scraper's next scrape", "[agent][scrape_phase]") {
  ScrapePhase phase;
  static_assert(ScrapePhase::kArrivals == 7);
  scrapes(phase, "10.0.0.1", kStart, 15s, 6);
  // One scrape short of the gaps it needs to call the interval steady.
  CHECK_FALSE(phase.estimate(kStart + 5 * 15s + 1s));
  phase.observe("10.0.0.1", kStart + 6 * 15s);
  const auto e = phase.estimate(kStart + 6 * 15s + 1s);
  REQUIRE(e);
  CHECK(e->period == 15s);
  CHECK(e->next == kStart + 7 * 15s);
  // Later on, the one after the next: the estimate counts on.
  const auto later = phase.estimate(kStart + 7 * 15s + 1ms);
  REQUIRE(later);
  CHECK(later->next == kStart + 8 * 15s);
  // A scraper that stopped coming (three intervals without a scrape) is not waited for.
  CHECK_FALSE(phase.estimate(kStart + 6 * 15s + 46s));
}

TEST_CASE("ScrapePhase: irregular scrapes give no estimate", "[agent][scrape_phase]") {
  ScrapePhase phase;
  const std::chrono::milliseconds gaps[] = {1000ms, 1000ms, 1300ms, 1000ms, 1000ms, 1000ms};
  Clock::time_point at = kStart;
  phase.observe("a", at);
  for (auto g : gaps) {
    at += g;
    phase.observe("a", at);
  }
  CHECK_FALSE(phase.estimate(at + 1ms));
  // Once the odd gap has left the last arrivals, the interval is steady again.
  for (int i = 0; i < 3; ++i) {
    at += 1000ms;
    phase.observe("a", at);
  }
  const auto e = phase.estimate(at + 1ms);
  REQUIRE(e);
  CHECK(e->period == 1000ms);
  // Too frequent to be a scraper's interval (and a collection's to follow): none.
  ScrapePhase fast;
  scrapes(fast, "a", kStart, 60ms, 10);
  CHECK_FALSE(fast.estimate(kStart + 10 * 60ms));
}

TEST_CASE("ScrapePhase: jittered arrivals give the earliest phase", "[agent][scrape_phase]") {
  // A scraper that scrapes another target first every other time comes 13 ms later then.
  ScrapePhase phase;
  alternating(phase, kStart, 0ms, 13ms);
  const auto e = phase.estimate(kStart + 6s + 100ms);
  REQUIRE(e);
  CHECK(e->period == 1s);
  CHECK(e->next == kStart + 7s);
  // Across the interval's wrap: arrivals just before and just after a whole second.
  ScrapePhase wrapped;
  alternating(wrapped, kStart, 1005ms, 995ms);
  const auto w = wrapped.estimate(kStart + 7s + 500ms);
  REQUIRE(w);
  CHECK(w->period == 1s);
  CHECK(w->next == kStart + 7s + 995ms);
}

TEST_CASE("ScrapePhase: one scraper is followed, another only once it is gone",
          "[agent][scrape_phase]") {
  ScrapePhase phase;
  // Only the followed scraper's scrapes run the collectors' rounds (see
  // CollectorScheduler::scrapeArrived).
  for (int i = 0; i < 8; ++i) {
    CHECK(phase.observe("10.0.0.1", kStart + i * 10s));
    // A second Prometheus of an HA pair, at another phase, and a person with curl.
    CHECK_FALSE(phase.observe("10.0.0.2", kStart + i * 10s + 4s));
    if (i == 3) {
      CHECK_FALSE(phase.observe("127.0.0.1", kStart + i * 10s + 7s));
    }
  }
  auto e = phase.estimate(kStart + 75s);
  REQUIRE(e);
  CHECK(e->next == kStart + 80s);
  // The first stops; after three of its intervals (at 104 s) the second is followed from
  // scratch, with seven arrivals of its own to learn from.
  for (int i = 8; i < 16; ++i) {
    CHECK(phase.observe("10.0.0.2", kStart + i * 10s + 4s) == (i >= 10));
  }
  CHECK_FALSE(phase.estimate(kStart + 155s));
  phase.observe("10.0.0.2", kStart + 164s);
  e = phase.estimate(kStart + 165s);
  REQUIRE(e);
  CHECK(e->next == kStart + 174s);
}

TEST_CASE("ScrapePhase: requests a moment apart are one scrape", "[agent][scrape_phase]") {
  ScrapePhase phase;
  for (int i = 0; i < 7; ++i) {
    CHECK(phase.observe("a", kStart + i * 1s));
    // The same scraper asking again at once.
    CHECK_FALSE(phase.observe("a", kStart + i * 1s + 20ms));
  }
  const auto e = phase.estimate(kStart + 6s + 100ms);
  REQUIRE(e);
  CHECK(e->period == 1s);
  CHECK(e->next == kStart + 7s);
}
