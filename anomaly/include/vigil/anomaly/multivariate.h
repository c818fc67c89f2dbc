#pragma once
// Several series of one node scored together: how unusual their combination is, when each
// alone looks ordinary (CPU busy while the traffic that usually drives it is flat). The
// distance of an observation from the series' exponentially weighted mean under their
// weighted covariance (Mahalanobis), as a probability under a chi-square law, and each
// series' share of that distance as the evidence. Pure computation with fixed memory; Eigen
// stays inside the implementation.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace vigil::anomaly {

struct MultivariateParams {
  double alpha = 0.01;    // weight of the newest observation in the mean and covariance
  uint32_t warmup = 30;   // observations scored 0 while the model learns
  double ridge = 1e-3;    // added to the covariance's diagonal, relative to it, for stability
  uint32_t refresh = 16;  // observations between two inversions of the covariance
};

class MultivariateModel {
 public:
  static constexpr std::size_t kMaxFeatures = 16;

  /// A model of `features` series (1 to kMaxFeatures; more are cut to kMaxFeatures).
  explicit MultivariateModel(std::size_t features, MultivariateParams params = {});

  /// Feeds one observation of every series, in the same order each time; returns its score in
  /// [0, 1]. An observation with a missing (NaN) value is skipped and scores 0.
  double update(std::span<const double> values) noexcept;

  /// Each series' share of the last scored observation's distance (they sum to 1; all 0
  /// before the first score).
  std::span<const double> contributions() const { return {contributions_.data(), features_}; }
  std::size_t features() const { return features_; }
  std::size_t memoryBytes() const { return sizeof(*this); }

  /// The model's state for checkpoints; restore() refuses a state of another size or format.
  std::string serialize() const;
  bool restore(std::string_view state);

 private:
  using Vector = std::array<double, kMaxFeatures>;
  using Matrix = std::array<double, kMaxFeatures * kMaxFeatures>;

  std::size_t features_;
  MultivariateParams params_;
  Vector mean_{};
  Matrix covariance_{};
  Matrix precision_{};  // the inverse of the (ridged) covariance at the last refresh
  Vector contributions_{};
  uint64_t seen_ = 0;
};

}  // namespace vigil::anomaly
