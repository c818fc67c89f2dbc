// The collector groups' timer: fires when armed, may be moved from another thread, tells a
// wait that completed for a setting moved since.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "agent/core/round_timer.h"

using namespace std::chrono_literals;
using vigil::RoundTimer;

TEST_CASE("RoundTimer: fires at the time it is armed for", "[agent][round_timer]") {
  boost::asio::io_context io;
  RoundTimer timer(io);
  int fired = 0;
  timer.wait([&](bool ok) { fired += ok ? 1 : 100; });
  const auto start = RoundTimer::Clock::now();
  timer.armAt(start + 30ms);
  REQUIRE(io.run_one_for(2s) == 1);
  CHECK(fired == 1);
  CHECK(RoundTimer::Clock::now() - start >= 30ms);
  CHECK(timer.consume());
}

TEST_CASE("RoundTimer: moved later by another thread, it fires then", "[agent][round_timer]") {
  boost::asio::io_context io;
  RoundTimer timer(io);
  std::atomic<bool> fired{false};
  timer.wait([&](bool ok) { fired = ok; });
  const auto start = RoundTimer::Clock::now();
  timer.armAt(start + 300ms);
  std::thread mover([&] {
    std::this_thread::sleep_until(start + 10ms);
    timer.armAt(start + 400ms);
  });
  REQUIRE(io.run_one_for(2s) == 1);
  mover.join();
  CHECK(fired);
  CHECK(RoundTimer::Clock::now() - start >= 400ms);
  CHECK(timer.consume());
}

TEST_CASE("RoundTimer: a wait completed for a setting moved since is told so",
          "[agent][round_timer]") {
  boost::asio::io_context io;
  RoundTimer timer(io);
  bool fired = false;
  timer.wait([&](bool ok) { fired = ok; });
  timer.armAt(RoundTimer::Clock::now());
  REQUIRE(io.run_one_for(2s) == 1);
  REQUIRE(fired);
  // Moved (by a scrape that ran the round) before the waiting thread took the expiry.
  timer.armAt(RoundTimer::Clock::now() + 10s);
  CHECK_FALSE(timer.consume());
}

TEST_CASE("RoundTimer: a cancelled wait completes with false", "[agent][round_timer]") {
  boost::asio::io_context io;
  RoundTimer timer(io);
  int calls = 0;
  bool fired = true;
  timer.wait([&](bool ok) {
    ++calls;
    fired = ok;
  });
  timer.armAt(RoundTimer::Clock::now() + 10s);
  timer.cancel();
  REQUIRE(io.run_one_for(2s) == 1);
  CHECK(calls == 1);
  CHECK_FALSE(fired);
}
