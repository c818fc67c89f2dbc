#include "shape_model.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace vigil::anomaly {

namespace {

using Shape = std::array<double, ShapeModel::kLags>;

double squaredDistance(const Shape& a, const Shape& b) {
  double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sum += (a[i] - b[i]) * (a[i] - b[i]);
  }
  return sum;
}

Shape centroidAt(const std::array<float, ShapeModel::kClusters * ShapeModel::kLags>& all,
                 std::size_t c) {
  Shape out;
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = all[c * out.size() + i];
  }
  return out;
}

}  // namespace

double ShapeModel::changeSpread(double floor) const {
  return std::max(std::sqrt(change_var_), floor);
}

double ShapeModel::update(double x, const ShapeParams& p) {
  if (seen_ == 0) {
    last_ = x;
    seen_ = 1;
    return 0;
  }
  const double change = x - last_;
  const double floor = p.min_scale * std::max(1.0, std::fabs(last_));
  change_var_ = 0.99 * (change_var_ + 0.01 * change * change);
  recent_[seen_ % kSmooth] = static_cast<float>(change);
  double smoothed = 0;
  const std::size_t have = std::min<std::size_t>(seen_, kSmooth);
  for (std::size_t i = 0; i < have; ++i) {
    smoothed += recent_[i];
  }
  smoothed /= static_cast<double>(have);
  window_[count_ % kWindow] = static_cast<float>(smoothed);
  ++count_;
  ++seen_;
  last_ = x;

  double z = 0;
  if (trained_ && count_ >= kLags) {
    const Shape now = shapeEndingAt(count_ - 1);
    double nearest = std::numeric_limits<double>::max();
    for (std::size_t c = 0; c < kClusters; ++c) {
      nearest = std::min(nearest, std::sqrt(squaredDistance(now, centroidAt(centroids_, c))));
    }
    z = std::max(0.0, (nearest - dist_mean_) / std::max(dist_sd_, floor));
  }
  ++since_training_;
  if ((!trained_ && count_ >= p.first_training) ||
      (trained_ && since_training_ >= p.retrain_every)) {
    train(p);
  }
  return z;
}

ShapeModel::Shape ShapeModel::shapeEndingAt(uint64_t end) const {
  Shape out;
  for (std::size_t i = 0; i < kLags; ++i) {
    out[i] = window_[(end - (kLags - 1) + i) % kWindow];
  }
  return out;
}

// k-means over the window's shape vectors (Lloyd's algorithm from a deterministic start: the
// mean and the vector farthest from it), then the spread of their distances.
void ShapeModel::train(const ShapeParams& p) {
  since_training_ = 0;
  const uint64_t kept = std::min<uint64_t>(count_, kWindow);
  if (kept < kLags + kClusters) {
    return;
  }
  const uint64_t first = count_ - kept + (kLags - 1);
  const std::size_t n = count_ - first;
  std::array<Shape, kWindow> shapes;
  for (std::size_t j = 0; j < n; ++j) {
    shapes[j] = shapeEndingAt(first + j);
  }
  std::array<Shape, kClusters> centre{};
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t i = 0; i < kLags; ++i) {
      centre[0][i] += shapes[j][i] / static_cast<double>(n);
    }
  }
  std::size_t farthest = 0;
  for (std::size_t j = 1; j < n; ++j) {
    if (squaredDistance(shapes[j], centre[0]) > squaredDistance(shapes[farthest], centre[0])) {
      farthest = j;
    }
  }
  centre[1] = shapes[farthest];
  std::array<uint8_t, kWindow> member{};
  for (uint32_t it = 0; it < p.iterations; ++it) {
    for (std::size_t j = 0; j < n; ++j) {
      member[j] = squaredDistance(shapes[j], centre[1]) < squaredDistance(shapes[j], centre[0]);
    }
    std::array<Shape, kClusters> sum{};
    std::array<std::size_t, kClusters> size{};
    for (std::size_t j = 0; j < n; ++j) {
      ++size[member[j]];
      for (std::size_t i = 0; i < kLags; ++i) {
        sum[member[j]][i] += shapes[j][i];
      }
    }
    for (std::size_t c = 0; c < kClusters; ++c) {
      for (std::size_t i = 0; size[c] > 0 && i < kLags; ++i) {
        centre[c][i] = sum[c][i] / static_cast<double>(size[c]);
      }
    }
  }
  for (std::size_t c = 0; c < kClusters; ++c) {
    for (std::size_t i = 0; i < kLags; ++i) {
      centroids_[c * kLags + i] = static_cast<float>(centre[c][i]);
    }
  }
  double mean = 0;
  double sq = 0;
  for (std::size_t j = 0; j < n; ++j) {
    double d2 = std::numeric_limits<double>::max();
    for (std::size_t c = 0; c < kClusters; ++c) {
      d2 = std::min(d2, squaredDistance(shapes[j], centroidAt(centroids_, c)));
    }
    mean += std::sqrt(d2);
    sq += d2;
  }
  mean /= static_cast<double>(n);
  dist_mean_ = mean;
  dist_sd_ = std::sqrt(std::max(0.0, sq / static_cast<double>(n) - mean * mean));
  trained_ = true;
}

}  // namespace vigil::anomaly
