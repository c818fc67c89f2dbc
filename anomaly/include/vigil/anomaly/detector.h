#pragma once
// Online anomaly detectors: one model per series, fed one sample at a time. Pure computation:
// no I/O, no threads, no logging, no allocation after construction.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::anomaly {

/// Where a model expected a sample: about ±3 of the series' usual deviations around the value
/// it predicted (its level, or its seasonal pattern's value for that time).
struct ExpectedRange {
  double lower;
  double upper;
};

class Detector {
 public:
  virtual ~Detector() = default;
  virtual std::string_view name() const = 0;

  /// Feeds the next sample of the series and returns how anomalous it is, in [0, 1]. Strictly
  /// online: the score uses this sample and earlier ones only. NaN values are ignored (score 0)
  /// so that gaps and staleness markers do not disturb the model.
  virtual double update(int64_t timestamp_ms, double value) noexcept = 0;

  /// What the model expected of the last sample fed, before it learned from it: the evidence
  /// beside a high score. NaN bounds while it is still learning (and after a restore, until
  /// the next sample).
  virtual ExpectedRange expected() const noexcept = 0;

  /// Bytes the model holds; fixed for a detector kind, whatever the series.
  virtual std::size_t memoryBytes() const = 0;

  /// The model's state, for checkpoints; restore() accepts what serialize() wrote, for the same
  /// detector kind and parameters, and returns false for anything else (leaving the model as
  /// it was).
  virtual std::string serialize() const = 0;
  virtual bool restore(std::string_view state) = 0;
  /// Names the detector kind and the version of its state ("ensemble/2"): a checkpoint of
  /// another format is from another version of vigil, to be set aside rather than refused.
  virtual std::string_view stateFormat() const = 0;
};
using DetectorPtr = std::unique_ptr<Detector>;

/// Names of the built-in detectors.
std::vector<std::string> detectorNames();
/// A fresh model of the named detector, or nullptr for an unknown name.
DetectorPtr makeDetector(std::string_view name);

/// Standard deviations on either side of the predicted value in an ExpectedRange.
constexpr double kExpectedDeviations = 3;

/// Turns a distance in standard deviations into a score in [0, 1): the probability mass of a
/// normal distribution within |z|, so 2 sigma is 0.954 and 3 sigma 0.9973.
double zToScore(double z);

}  // namespace vigil::anomaly
