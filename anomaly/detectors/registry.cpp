// The one place that lists the built-in detectors.
#include <cmath>

#include "ensemble_detector.h"
#include "ewma_detector.h"
#include "mad_detector.h"
#include "shape_detector.h"
#include "vigil/anomaly/detector.h"

namespace vigil::anomaly {

double zToScore(double z) {
  if (!(z >= 0)) {
    return 0;
  }
  return std::erf(z / std::sqrt(2.0));
}

std::vector<std::string> detectorNames() { return {"ensemble", "ewma", "mad", "shape"}; }

DetectorPtr makeDetector(std::string_view name) {
  if (name == "ensemble") {
    return makeEnsembleDetector();
  }
  if (name == "ewma") {
    return makeEwmaDetector();
  }
  if (name == "mad") {
    return makeMadDetector();
  }
  if (name == "shape") {
    return makeShapeDetector();
  }
  return nullptr;
}

}  // namespace vigil::anomaly
