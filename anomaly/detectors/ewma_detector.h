#pragma once
// Exponentially weighted mean and variance; the score is how many weighted standard deviations
// the new value lies from the mean. Catches spikes, dips and level shifts fast; adapts to a
// new level within about 1/alpha samples.

#include "vigil/anomaly/detector.h"

namespace vigil::anomaly {

struct EwmaParams {
  double alpha = 0.05;      // weight of the newest sample in the mean and variance
  uint32_t warmup = 30;     // samples scored 0 while the model learns
  double min_scale = 1e-9;  // relative floor of the deviation, so constant series stay quiet
};

DetectorPtr makeEwmaDetector(EwmaParams params = {});

}  // namespace vigil::anomaly
