#pragma once
// Robust level detector: the median and the median absolute deviation (MAD) of a sliding
// window of recent samples. Unlike a mean and standard deviation, one outlier does not move
// them, so a spike cannot hide the next one, and the window forgets a level shift only once
// most of it has the new level.

#include "vigil/anomaly/detector.h"

namespace vigil::anomaly {

/// Window length of the MAD detector: its memory is fixed by it.
inline constexpr std::size_t kMadWindow = 64;

DetectorPtr makeMadDetector();

}  // namespace vigil::anomaly
