#pragma once
// The shape model behind the `shape` detector and the ensemble's shape view (internal to
// anomaly/): k-means over short vectors of recent smoothed changes, retrained as the series
// goes, and a sample's distance from the nearest usual shape in standard deviations of the
// window's own distances. Trivially copyable, so detectors serialise it with their state.

#include <array>
#include <cstdint>

namespace vigil::anomaly {

struct ShapeParams {
  uint32_t first_training = 64;  // samples before the first clustering
  uint32_t retrain_every = 128;  // samples between clusterings
  uint32_t iterations = 8;       // Lloyd iterations per clustering
  double min_scale = 1e-6;       // relative floor of distances, so constant series stay quiet
};

class ShapeModel {
 public:
  static constexpr std::size_t kLags = 6;      // changes per shape vector
  static constexpr std::size_t kSmooth = 3;    // changes averaged into one
  static constexpr std::size_t kWindow = 256;  // smoothed changes kept for training
  static constexpr std::size_t kClusters = 2;

  /// Feeds a finite value; returns how many standard deviations its shape lies beyond the
  /// usual distance from the nearest cluster (0 when nearer, or before the first clustering).
  double update(double x, const ShapeParams& p);

  bool trained() const { return trained_; }
  double last() const { return last_; }
  /// The usual size of one change (a standard deviation), at least `floor`.
  double changeSpread(double floor) const;

 private:
  using Shape = std::array<double, kLags>;
  Shape shapeEndingAt(uint64_t end) const;
  void train(const ShapeParams& p);

  std::array<float, kWindow> window_{};  // smoothed changes, a ring
  std::array<float, kSmooth> recent_{};  // the latest raw changes, a ring
  std::array<float, kClusters * kLags> centroids_{};
  double last_ = 0;
  double change_var_ = 0;
  double dist_mean_ = 0;
  double dist_sd_ = 0;
  uint64_t seen_ = 0;   // samples
  uint64_t count_ = 0;  // smoothed changes
  uint32_t since_training_ = 0;
  bool trained_ = false;
};

}  // namespace vigil::anomaly
