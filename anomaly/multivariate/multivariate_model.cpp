// Eigen only here: the header is included by the agent's networked code.
#include <Eigen/Dense>

#include <algorithm>
#include <boost/math/special_functions/gamma.hpp>
#include <cmath>
#include <cstring>

#include "vigil/anomaly/multivariate.h"

namespace vigil::anomaly {

namespace {

using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatMap = Eigen::Map<Mat, Eigen::Unaligned, Eigen::OuterStride<>>;
using VecMap = Eigen::Map<Eigen::VectorXd>;

constexpr std::string_view kFormat = "multivariate/1";

}  // namespace

MultivariateModel::MultivariateModel(std::size_t features, MultivariateParams params)
    : features_(std::clamp<std::size_t>(features, 1, kMaxFeatures)), params_(params) {}

double MultivariateModel::update(std::span<const double> values) noexcept {
  if (values.size() < features_) {
    return 0;
  }
  for (std::size_t i = 0; i < features_; ++i) {
    if (!std::isfinite(values[i])) {
      return 0;
    }
  }
  const auto n = static_cast<Eigen::Index>(features_);
  const auto stride = Eigen::OuterStride<>(kMaxFeatures);
  MatMap covariance(covariance_.data(), n, n, stride);
  MatMap precision(precision_.data(), n, n, stride);
  VecMap mean(mean_.data(), n);
  const Eigen::VectorXd x = Eigen::Map<const Eigen::VectorXd>(values.data(), n);
  if (seen_ == 0) {
    mean = x;
    ++seen_;
    return 0;
  }
  const Eigen::VectorXd diff = x - mean;
  // Score against the model as it was, then learn. The precision matrix is refreshed every
  // few observations: inverting is the costly part, and the covariance moves slowly.
  double score = 0;
  if (seen_ >= params_.warmup) {
    if ((seen_ - params_.warmup) % params_.refresh == 0) {
      // The weighted covariance starts at zero and reaches its level over about 1/alpha
      // observations; dividing by the weight gathered so far removes that bias, so a young
      // model is not over-sensitive.
      const double gathered = 1 - std::pow(1 - params_.alpha, static_cast<double>(seen_ - 1));
      Mat ridged = covariance / std::max(gathered, 1e-9);
      for (Eigen::Index i = 0; i < n; ++i) {
        ridged(i, i) += params_.ridge * ridged(i, i) + 1e-12;
      }
      precision = ridged.ldlt().solve(Mat::Identity(n, n));
    }
    const Eigen::VectorXd weighted = precision * diff;
    const double d2 = std::max(0.0, diff.dot(weighted));
    // Under a normal law d2 follows chi-square with one degree of freedom per series.
    score = d2 > 0 ? boost::math::gamma_p(static_cast<double>(n) / 2, d2 / 2) : 0;
    double total = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      total += std::fabs(diff(i) * weighted(i));
    }
    for (Eigen::Index i = 0; i < n; ++i) {
      contributions_[static_cast<std::size_t>(i)] =
          total > 0 ? std::fabs(diff(i) * weighted(i)) / total : 0;
    }
  }
  const double a = params_.alpha;
  mean += a * diff;
  covariance = (1 - a) * (covariance + a * diff * diff.transpose());
  ++seen_;
  return std::isfinite(score) ? score : 0;
}

std::string MultivariateModel::serialize() const {
  std::string out(kFormat);
  out.push_back('\0');
  const uint64_t features = features_;
  out.append(reinterpret_cast<const char*>(&features), sizeof features);
  out.append(reinterpret_cast<const char*>(&seen_), sizeof seen_);
  out.append(reinterpret_cast<const char*>(mean_.data()), sizeof mean_);
  out.append(reinterpret_cast<const char*>(covariance_.data()), sizeof covariance_);
  out.append(reinterpret_cast<const char*>(precision_.data()), sizeof precision_);
  return out;
}

bool MultivariateModel::restore(std::string_view in) {
  const std::size_t size = kFormat.size() + 1 + 2 * sizeof(uint64_t) + sizeof mean_ +
                           sizeof covariance_ + sizeof precision_;
  if (in.size() != size || !in.starts_with(kFormat) || in[kFormat.size()] != '\0') {
    return false;
  }
  const char* p = in.data() + kFormat.size() + 1;
  uint64_t features = 0;
  std::memcpy(&features, p, sizeof features);
  if (features != features_) {
    return false;
  }
  p += sizeof features;
  std::memcpy(&seen_, p, sizeof seen_);
  p += sizeof seen_;
  std::memcpy(mean_.data(), p, sizeof mean_);
  p += sizeof mean_;
  std::memcpy(covariance_.data(), p, sizeof covariance_);
  p += sizeof covariance_;
  std::memcpy(precision_.data(), p, sizeof precision_);
  return true;
}

}  // namespace vigil::anomaly
