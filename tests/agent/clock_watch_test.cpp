// Telling a step of the wall clock from ordinary time passing.
#include <catch2/catch.hpp>

#include "agent/core/clock_watch.h"

using namespace std::chrono_literals;

TEST_CASE("ClockWatch reports steps of the wall clock beyond its tolerance, with their sign",
          "[agent][clock]") {
  vigil::ClockWatch watch(2s);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1000h;
  CHECK_FALSE(watch.observe(1'000'000, t0));       // the first reading: nothing to compare
  CHECK_FALSE(watch.observe(1'001'000, t0 + 1s));  // in step
  CHECK_FALSE(watch.observe(1'002'500, t0 + 2s));  // 0.5 s of slewing is not a jump
  CHECK(watch.observe(1'002'500 - 3'600'000, t0 + 3s) == -3'601'000);  // an hour back
  CHECK_FALSE(watch.observe(1'002'500 - 3'600'000 + 1000, t0 + 4s));   // in step again
  CHECK(watch.observe(1'004'500 + 60'000, t0 + 5s) == 3'660'000);      // an hour and a minute on
}
