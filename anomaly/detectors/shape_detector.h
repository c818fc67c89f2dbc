#pragma once
// Shape: how unusual the recent movement of the series is, after Netdata's per-metric
// anomaly detection (the model is in shape_model.h). Catches changes of rhythm that stay
// within the usual range (an oscillation that starts, a saw-tooth that stops), which level
// views miss. Fixed memory.

#include "shape_model.h"
#include "vigil/anomaly/detector.h"

namespace vigil::anomaly {

DetectorPtr makeShapeDetector(ShapeParams params = {});

}  // namespace vigil::anomaly
