#pragma once
// A collector group's timer (see CollectorScheduler): a timerfd that an Asio io_context waits on.
// Unlike an Asio timer, any thread may move it, and moving it later does not wake the thread
// waiting on it: a round that a scrape ran on its own thread pushes the next timed one back at
// no wake-up of the collecting thread.
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <chrono>
#include <functional>

namespace vigil {

/// Sets `fd`, a CLOCK_MONOTONIC timerfd, to expire at `at` (at once if past). The setting is
/// made relative to now, not absolute: libfaketime, under which the clock-step tests run vigil,
/// moves absolute settings of monotonic timers by its wall-clock offset (even with
/// FAKETIME_DONT_FAKE_MONOTONIC), which would put every timed round an hour away after a
/// simulated step back. The cost is one vDSO clock read.
void setTimerFdAt(int fd, std::chrono::steady_clock::time_point at);

class RoundTimer {
 public:
  using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC, the timerfd's clock

  /// Throws std::system_error when the system has no timerfd to give (out of descriptors).
  explicit RoundTimer(boost::asio::io_context& io);
  ~RoundTimer();
  RoundTimer(const RoundTimer&) = delete;
  RoundTimer& operator=(const RoundTimer&) = delete;

  /// Fires at `at` (at once if past), in place of any earlier setting. Safe from any thread.
  void armAt(Clock::time_point at);

  /// Calls `fired(true)` on the io_context once the timer has fired, or `fired(false)` once
  /// cancel() is called. One wait at a time, started by one thread at a time. A wait started
  /// after the timer fired (and before it was armed again) completes only when it fires next:
  /// start the wait before arming it.
  void wait(std::function<void(bool)> fired);

  /// Takes the expiry that completed a wait: false when the timer was moved since it fired, so
  /// that the round it was armed for has been taken care of.
  bool consume();

  /// Completes the pending wait with false.
  void cancel();

 private:
  int fd_;
  boost::asio::posix::stream_descriptor descriptor_;
};

}  // namespace vigil
