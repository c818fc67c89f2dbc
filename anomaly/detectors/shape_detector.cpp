#include "shape_detector.h"

#include <cmath>
#include <limits>

#include "state_io.h"

namespace vigil::anomaly {
namespace {

class ShapeDetector final : public Detector {
 public:
  explicit ShapeDetector(ShapeParams p) : p_(p) {}

  std::string_view name() const override { return "shape"; }

  double update(int64_t, double x) noexcept override {
    if (!std::isfinite(x)) {
      return 0;
    }
    // The range this model expects: the last value moved by its usual change.
    if (model_.trained()) {
      const double floor = p_.min_scale * std::max(1.0, std::fabs(model_.last()));
      const double spread = kExpectedDeviations * model_.changeSpread(floor);
      range_ = {model_.last() - spread, model_.last() + spread};
    }
    return zToScore(model_.update(x, p_));
  }

  ExpectedRange expected() const noexcept override { return range_; }
  std::size_t memoryBytes() const override { return sizeof(*this); }
  std::string serialize() const override { return packState(stateFormat(), model_); }
  bool restore(std::string_view in) override { return unpackState(stateFormat(), in, model_); }
  std::string_view stateFormat() const override { return "shape/1"; }

 private:
  ShapeParams p_;
  ShapeModel model_;
  ExpectedRange range_{std::numeric_limits<double>::quiet_NaN(),
                       std::numeric_limits<double>::quiet_NaN()};
};

}  // namespace

DetectorPtr makeShapeDetector(ShapeParams params) {
  return std::make_unique<ShapeDetector>(params);
}

}  // namespace vigil::anomaly
