#include "ensemble_detector.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "state_io.h"

namespace vigil::anomaly {
namespace {

constexpr std::size_t kMaxAverage = 16;
constexpr std::size_t kDailySlots = 144;  // ten minutes each
constexpr uint64_t kMinPerDay = 144;      // samples before the daily pattern can be trusted

class EnsembleDetector final : public Detector {
 public:
  explicit EnsembleDetector(EnsembleParams p) : p_(p) {
    p_.average = std::clamp<uint32_t>(p_.average, 1, kMaxAverage);
  }

  std::string_view name() const override { return "ensemble"; }

  double update(int64_t t, double x) noexcept override {
    if (!std::isfinite(x)) {
      return 0;
    }
    State& s = s_;
    if (s.n == 0) {
      s.mean = x;
      s.last = x;
      s.n = 1;
      return 0;
    }
    const double floor = p_.min_scale * std::max(1.0, std::fabs(s.mean));
    // Level: distance from the weighted mean in weighted standard deviations.
    const double diff = x - s.mean;
    double z_level = std::fabs(diff) / std::max(std::sqrt(s.var), floor);
    // Daily pattern: the value expected at this time of day. Where the pattern explains most
    // of the series' variation, the distance from it replaces the distance from the mean, so
    // the daily peak is not an anomaly and a missing peak is.
    const std::size_t slot =
        static_cast<std::size_t>(((t / 1000) % 86400 + 86400) % 86400) * kDailySlots / 86400;
    const bool slot_known = (s.slot_seen[slot / 8] >> (slot % 8)) & 1;
    double residual = 0;
    if (slot_known) {
      residual = x - s.daily[slot];
      const bool reliable = s.n > 2 * kMinPerDay && s.season_var < p_.season_share * s.var;
      if (reliable) {
        z_level = std::fabs(residual) / std::max(std::sqrt(s.season_var), floor);
      }
    }
    // Step: this change against the usual size of a change (spikes and breaks in a noisy
    // trend, which the level view smooths over).
    const double step = x - s.last;
    const double z_step = std::fabs(step) / std::max(std::sqrt(s.step_var), floor);
    double raw = std::min(std::max(z_level, z_step), 50.0);
    // Stuck: a series that moves stops moving (a frozen sensor, a hung exporter). The moment
    // the run of repeats gets long enough counts as a large deviation, once.
    // Only for series that rarely repeat a value (not counts of rare events, not integers
    // that often stay put).
    s.repeats = x == s.last ? s.repeats + 1 : 0;
    if (s.repeats == p_.stuck_after && s.repeat_rate < 0.05) {
      raw = 50.0;
    }
    if (s.repeats <= 1) {
      s.repeat_rate += 0.01 * ((s.repeats == 1 ? 1.0 : 0.0) - s.repeat_rate);
    }
    // Learn after scoring: the score compares this sample with the past only.
    s.mean += p_.level_alpha * diff;
    s.var = (1 - p_.level_alpha) * (s.var + p_.level_alpha * diff * diff);
    s.step_var = (1 - p_.step_alpha) * (s.step_var + p_.step_alpha * step * step);
    if (slot_known) {
      s.season_var = (1 - p_.level_alpha) * (s.season_var + p_.level_alpha * residual * residual);
      s.daily[slot] += p_.season_alpha * residual;
    } else {
      s.daily[slot] = x;
      s.slot_seen[slot / 8] |= static_cast<uint8_t>(1u << (slot % 8));
      s.season_var = std::max(s.season_var, s.var);
    }
    s.last = x;
    ++s.n;
    if (s.n <= p_.warmup) {
      return 0;
    }
    // The recent average deviation, against the distribution of such averages.
    s.ring[s.ring_pos] = raw;
    s.ring_pos = (s.ring_pos + 1) % p_.average;
    s.ring_count = std::min<uint32_t>(s.ring_count + 1, p_.average);
    double avg = 0;
    for (uint32_t i = 0; i < s.ring_count; ++i) {
      avg += s.ring[i];
    }
    avg /= s.ring_count;
    double score = 0;
    // Only deviations larger than usual are anomalous; a series as calm as ever scores 0.
    if (s.history_n > 0 && avg > s.history_mean) {
      const double sd = std::max(std::sqrt(s.history_var), 1e-3);
      const double z = (avg - s.history_mean) / sd;
      const double tail = 0.5 * std::erfc(z / std::sqrt(2.0));
      // Numenta's log likelihood: 1 - tail spread over [0, 1] on a log scale.
      score = std::clamp(std::log(tail + 1e-10) / std::log(1e-10), 0.0, 1.0);
    }
    const double hd = avg - s.history_mean;
    if (s.history_n == 0) {
      s.history_mean = avg;
    } else {
      s.history_mean += p_.history_alpha * hd;
      s.history_var = (1 - p_.history_alpha) * (s.history_var + p_.history_alpha * hd * hd);
    }
    ++s.history_n;
    if (s.quiet > 0) {
      --s.quiet;
      return 0;
    }
    if (score >= p_.refractory_level) {
      s.quiet = p_.refractory;
    }
    return score;
  }

  std::size_t memoryBytes() const override { return sizeof(*this); }
  std::string serialize() const override { return packState("ensemble/1", s_); }
  bool restore(std::string_view in) override { return unpackState("ensemble/1", in, s_); }

 private:
  struct State {
    double mean = 0;
    double var = 0;
    double last = 0;
    double step_var = 0;
    double history_mean = 0;
    double history_var = 0;
    uint64_t n = 0;
    uint64_t history_n = 0;
    std::array<double, kMaxAverage> ring{};
    uint32_t ring_pos = 0;
    uint32_t ring_count = 0;
    std::array<float, kDailySlots> daily{};
    std::array<uint8_t, kDailySlots / 8> slot_seen{};
    double season_var = 0;
    uint32_t quiet = 0;      // samples left in the refractory period
    uint32_t repeats = 0;    // the current value repeated this many times
    double repeat_rate = 1;  // how often a value repeats the one before (EWMA)
  };
  EnsembleParams p_;
  State s_;
};

}  // namespace

DetectorPtr makeEnsembleDetector(EnsembleParams params) {
  return std::make_unique<EnsembleDetector>(params);
}

}  // namespace vigil::anomaly
