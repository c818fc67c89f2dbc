#pragma once
// Notices when the wall clock steps (NTP correcting a bad start, an operator, a VM resumed from
// a snapshot) by comparing how far it moved with how far the monotonic clock did. Samples,
// alerts and silences carry wall-clock times, so a step matters to the store (a step back makes
// every new sample out of order) and to the log.

#include <chrono>
#include <cstdint>
#include <optional>

#include "vigil/clock.h"

namespace vigil {

class ClockWatch {
 public:
  using Mono = std::chrono::steady_clock::time_point;

  /// Steps smaller than `tolerance` are drift and slewing, not jumps.
  explicit ClockWatch(std::chrono::milliseconds tolerance = kClockStepTolerance)
      : tolerance_ms_(tolerance.count()) {}

  /// Compares this reading with the previous one; the step in milliseconds (negative: back)
  /// when the wall clock moved more than `tolerance` apart from the monotonic clock.
  std::optional<int64_t> observe(int64_t wall_ms, Mono mono) {
    std::optional<int64_t> step;
    if (observed_) {
      const int64_t mono_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(mono - last_mono_).count();
      const int64_t diff = (wall_ms - last_wall_ms_) - mono_ms;
      if (diff > tolerance_ms_ || diff < -tolerance_ms_) {
        step = diff;
      }
    }
    last_wall_ms_ = wall_ms;
    last_mono_ = mono;
    observed_ = true;
    return step;
  }

 private:
  int64_t tolerance_ms_;
  int64_t last_wall_ms_ = 0;
  Mono last_mono_{};
  bool observed_ = false;
};

}  // namespace vigil
