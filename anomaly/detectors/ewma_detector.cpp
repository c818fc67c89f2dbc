#include "ewma_detector.h"

#include <cmath>
#include <limits>

#include "state_io.h"

namespace vigil::anomaly {
namespace {

class EwmaDetector final : public Detector {
 public:
  explicit EwmaDetector(EwmaParams p) : p_(p) {}

  std::string_view name() const override { return "ewma"; }

  double update(int64_t, double x) noexcept override {
    if (!std::isfinite(x)) {
      return 0;
    }
    if (s_.n == 0) {
      s_.mean = x;
      s_.var = 0;
      s_.n = 1;
      return 0;
    }
    // Score against the model as it was before this sample, then learn from it.
    const double diff = x - s_.mean;
    const double scale =
        std::max(std::sqrt(s_.var), p_.min_scale * std::max(1.0, std::fabs(s_.mean)));
    const double score = s_.n >= p_.warmup ? zToScore(std::fabs(diff) / scale) : 0.0;
    if (s_.n >= p_.warmup) {
      range_ = {s_.mean - kExpectedDeviations * scale, s_.mean + kExpectedDeviations * scale};
    }
    s_.mean += p_.alpha * diff;
    s_.var = (1 - p_.alpha) * (s_.var + p_.alpha * diff * diff);
    ++s_.n;
    return score;
  }

  ExpectedRange expected() const noexcept override { return range_; }
  std::size_t memoryBytes() const override { return sizeof(*this); }
  std::string serialize() const override { return packState(stateFormat(), s_); }
  bool restore(std::string_view in) override { return unpackState(stateFormat(), in, s_); }
  std::string_view stateFormat() const override { return "ewma/1"; }

 private:
  struct State {
    double mean = 0;
    double var = 0;
    uint64_t n = 0;
  };
  EwmaParams p_;
  State s_;
  ExpectedRange range_{std::numeric_limits<double>::quiet_NaN(),
                       std::numeric_limits<double>::quiet_NaN()};
};

}  // namespace

DetectorPtr makeEwmaDetector(EwmaParams params) { return std::make_unique<EwmaDetector>(params); }

}  // namespace vigil::anomaly
