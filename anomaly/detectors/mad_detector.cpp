#include "mad_detector.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "state_io.h"

namespace vigil::anomaly {
namespace {

// 1.4826 * MAD estimates the standard deviation of normally distributed data.
constexpr double kMadToSigma = 1.4826;
constexpr uint32_t kWarmup = 16;

class MadDetector final : public Detector {
 public:
  std::string_view name() const override { return "mad"; }

  double update(int64_t, double x) noexcept override {
    if (!std::isfinite(x)) {
      return 0;
    }
    double score = 0;
    const std::size_t n = std::min<std::size_t>(s_.count, kMadWindow);
    if (n >= kWarmup) {
      std::array<double, kMadWindow> scratch;
      std::copy(s_.window.begin(), s_.window.begin() + static_cast<std::ptrdiff_t>(n),
                scratch.begin());
      const double median = medianOf(scratch.data(), n);
      for (std::size_t i = 0; i < n; ++i) {
        scratch[i] = std::fabs(s_.window[i] - median);
      }
      const double mad = medianOf(scratch.data(), n);
      // A window that is (nearly) constant has MAD 0: a floor relative to the level keeps
      // rounding noise quiet while a real departure still scores high.
      const double scale = std::max(kMadToSigma * mad, 1e-6 * std::max(1.0, std::fabs(median)));
      score = zToScore(std::fabs(x - median) / scale);
      range_ = {median - kExpectedDeviations * scale, median + kExpectedDeviations * scale};
    }
    s_.window[s_.count % kMadWindow] = x;
    ++s_.count;
    return score;
  }

  ExpectedRange expected() const noexcept override { return range_; }
  std::size_t memoryBytes() const override { return sizeof(*this); }
  std::string serialize() const override { return packState(stateFormat(), s_); }
  bool restore(std::string_view in) override { return unpackState(stateFormat(), in, s_); }
  std::string_view stateFormat() const override { return "mad/1"; }

 private:
  static double medianOf(double* v, std::size_t n) {
    auto mid = v + n / 2;
    std::nth_element(v, mid, v + n);
    if (n % 2 == 1) {
      return *mid;
    }
    return (*mid + *std::max_element(v, mid)) / 2;
  }

  struct State {
    std::array<double, kMadWindow> window{};
    uint64_t count = 0;
  };
  State s_;
  ExpectedRange range_{std::numeric_limits<double>::quiet_NaN(),
                       std::numeric_limits<double>::quiet_NaN()};
};

}  // namespace

DetectorPtr makeMadDetector() { return std::make_unique<MadDetector>(); }

}  // namespace vigil::anomaly
