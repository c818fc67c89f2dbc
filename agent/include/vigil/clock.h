#pragma once
// The wall clock, in the unit vigil's samples, alerts and APIs use. Logic that needs time takes
// it as a parameter (for tests); only the loops and API handlers at the edges read it here.

#include <chrono>
#include <cstdint>

namespace vigil {

/// How far the wall clock may move apart from the monotonic clock before vigil treats it as a
/// step (NTP stepping it, an operator, a VM resumed) rather than drift and slewing.
inline constexpr std::chrono::milliseconds kClockStepTolerance{2'000};

/// Milliseconds since the Unix epoch.
inline int64_t unixNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace vigil
