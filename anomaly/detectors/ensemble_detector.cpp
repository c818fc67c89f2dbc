#include "ensemble_detector.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <memory>
#include <variant>

#include "state_io.h"

namespace vigil::anomaly {
namespace {

constexpr std::size_t kMaxAverage = 16;
constexpr int64_t kDay = 86400;
constexpr int64_t kWeek = 7 * kDay;
constexpr std::size_t kDailySlots = 144;   // ten minutes each
constexpr std::size_t kWeeklySlots = 168;  // an hour each
// Residuals measured against a pattern before its spread can be trusted.
constexpr uint64_t kMinResiduals = 144;

std::size_t slotOf(int64_t t_ms, int64_t period, std::size_t slots) {
  const int64_t secs = ((t_ms / 1000) % period + period) % period;
  return static_cast<std::size_t>(secs) * slots / static_cast<std::size_t>(period);
}

// A periodic profile learned online: the mean of each slot's visit (its ten minutes today, its
// hour this week) folded into the slot when the visit ends, with one weight per visit whatever
// the sampling rate. A slot is therefore compared only with earlier periods, never with the
// minutes just seen, and a series sampled every second learns as fast (in days or weeks) as
// one sampled every five minutes.
template <std::size_t Slots>
struct Profile {
  std::array<float, Slots> value{};
  std::array<uint8_t, (Slots + 7) / 8> known{};
  double visit_sum = 0;
  uint32_t visit_count = 0;
  uint32_t visit_slot = 0;

  bool has(std::size_t slot) const { return (known[slot / 8] >> (slot % 8)) & 1; }

  // Adds x to the current visit of `slot`, first folding the previous visit if it ended.
  void observe(std::size_t slot, double x, double alpha) {
    if (visit_count > 0 && visit_slot != slot) {
      const double mean = visit_sum / visit_count;
      float& v = value[visit_slot];
      if (has(visit_slot)) {
        v = static_cast<float>(v + alpha * (mean - v));
      } else {
        v = static_cast<float>(mean);
        known[visit_slot / 8] |= static_cast<uint8_t>(1u << (visit_slot % 8));
      }
      visit_sum = 0;
      visit_count = 0;
    }
    visit_slot = static_cast<uint32_t>(slot);
    visit_sum += x;
    ++visit_count;
  }
};

// The largest deviation a view reports: a value that far off is an anomaly whatever its size.
constexpr double kMaxDeviation = 50;

// How far x lies outside [low, high] (0 within it).
double outside(double x, double low, double high) {
  return x < low ? low - x : (x > high ? x - high : 0);
}

// Where each hour of the day has been: the lowest and highest level (a 256th of a value
// histogram's span, see ValueHistogram) each hour of the day showed, over every day learned.
// A byte per bound keeps it to 73 bytes: within the 4 KiB a model may take.
class HourEnvelope {
 public:
  static constexpr std::size_t kHours = 24;
  // Hours on either side whose values count as this hour's: when a daily peak comes an hour
  // early, its values are not news (on NAB, two-fold 77.1-77.5 with zero to three hours, 76.1
  // with four; with none, the check half's score fell from 75.5 to 70.6).
  static constexpr std::size_t kAround = 2;

  // The lowest and highest levels of the hours around `hour`, if each of them had at least
  // `min_visits` visits (days) before the current one; false if not.
  bool bounds(std::size_t hour, uint32_t min_visits, int& low, int& high) const {
    low = 255;
    high = 0;
    for (std::size_t k = kHours + hour - kAround; k <= kHours + hour + kAround; ++k) {
      const std::size_t h = k % kHours;
      const uint32_t earlier = visits_[h] - (last_hour_ == h ? 1u : 0u);
      if (visits_[h] == 0 || earlier < min_visits) {
        return false;
      }
      low = std::min<int>(low, lo_[h]);
      high = std::max<int>(high, hi_[h]);
    }
    return true;
  }

  // Learns that the series showed `level` in `hour`. A visit is a run of samples in one hour:
  // a series sampled every second visits each hour once a day, as one sampled every hour.
  void learn(std::size_t hour, uint8_t level) {
    if (last_hour_ != hour) {
      last_hour_ = static_cast<uint8_t>(hour);
      if (visits_[hour] == 0) {
        lo_[hour] = level;
        hi_[hour] = level;
      }
      visits_[hour] = static_cast<uint8_t>(std::min(visits_[hour] + 1, 255));
    }
    lo_[hour] = std::min(lo_[hour], level);
    hi_[hour] = std::max(hi_[hour], level);
  }

  // The histogram doubled its bins' width and centred what was there: level l is now
  // l / 2 + `shift`. Rounding down keeps each bound's level covering the values it covered.
  void rescale(int shift) {
    for (std::size_t h = 0; h < kHours; ++h) {
      lo_[h] = static_cast<uint8_t>(lo_[h] / 2 + shift);
      hi_[h] = static_cast<uint8_t>(hi_[h] / 2 + shift);
    }
  }

  bool consistent() const {
    for (std::size_t h = 0; h < kHours; ++h) {
      if (visits_[h] != 0 && lo_[h] > hi_[h]) {
        return false;
      }
    }
    return last_hour_ < kHours || last_hour_ == 255;
  }

 private:
  std::array<uint8_t, kHours> lo_{};
  std::array<uint8_t, kHours> hi_{};
  std::array<uint8_t, kHours> visits_{};  // separate visits of each hour, up to 255
  uint8_t last_hour_ = 255;               // the hour of the last sample (255: none yet)
};

// How new a value is: beyond the smallest and largest values the series has ever shown, or in
// a part of that range it rarely visits (a histogram of the values, forgetting at a fixed
// rate, over a range that doubles to take in a value beyond it). A CPU that has always stayed
// between 40 % and 60 % and drops to 35 % is news even where the mean and the step look
// ordinary. O(1) per sample: the forgetting is a running scale applied lazily, and the densest
// part of the histogram is tracked as it changes. It also keeps, on the same scale, where each
// hour of the day has been (HourEnvelope): an afternoon spike is news on a series whose only
// spikes so far were a nightly job, even well within the range that job set.
class ValueHistogram {
 public:
  static constexpr int kBins = 32;
  // Levels per bin for the hours' bounds: 256 levels over the histogram's span.
  static constexpr int kLevelsPerBin = 8;
  // The hours around a sample are judged only when their values spread over at least this
  // share of the whole range: a gauge that sits at one value all night (pods running) does not
  // alarm at its first other value there.
  static constexpr double kHourMinWidth = 0.05;
  // Beyond the range ever seen: this deviation, plus this much per range's width beyond it
  // (tuned with nab_bench).
  static constexpr double kBeyond = 15;
  static constexpr double kBeyondPerRange = 100;

  // How unusual x is, as a deviation comparable with a distance in standard deviations.
  double deviation(double x) const {
    if (ready_ == 0) {
      return 0;
    }
    if (const double b = beyond(x); b > 0) {
      const double d = kBeyond + kBeyondPerRange * b / std::max(max_ - min_, 1e-9);
      return std::min(d, kMaxDeviation);
    }
    // Within the range: sqrt(2 ln(densest / here)), which for a normal distribution is the
    // distance from its centre in standard deviations.
    const int b = binOf(x);
    if (b < 0) {
      return 0;  // only after the histogram started again, see learn()
    }
    // A bin never or hardly visited counts as half a sample.
    const double here = std::max(around(b), 0.5 / scale_);
    return std::sqrt(2 * std::log(std::max(densest_ / here, 1.0)));
  }

  // Whether x lies beyond the smallest or largest value ever learned by more than `share` of
  // the range between them (never for a series that has shown one value only).
  bool beyondRange(double x, double share) const {
    return ready_ != 0 && max_ > min_ && beyond(x) > share * (max_ - min_);
  }

  // Whether x lies beyond the values shown around this hour of the day (see HourEnvelope) on
  // each of at least `min_visits` earlier days, by more than `tolerance` times the width of
  // those values; if so, `shown` is what they showed (the evidence an alert carries).
  bool beyondHour(std::size_t hour, double x, uint32_t min_visits, double tolerance,
                  ExpectedRange& shown) const {
    int lo = 0;
    int hi = 0;
    if (ready_ == 0 || !(max_ > min_) || !hours_.bounds(hour, min_visits, lo, hi)) {
      return false;
    }
    // A level stands for the values from its lower edge to the next level's.
    const double low = origin_ + lo * width_ / kLevelsPerBin;
    const double high = origin_ + (hi + 1) * width_ / kLevelsPerBin;
    const double width = high - low;
    if (width < kHourMinWidth * (max_ - min_)) {
      return false;
    }
    if (outside(x, low, high) <= tolerance * width) {
      return false;
    }
    shown = {low, high};
    return true;
  }

  // Whether a state read back from a file could have been written by learn(): a damaged one
  // (a flipped bit) could otherwise make widenTo() loop for ever.
  bool consistent() const {
    return hours_.consistent() && std::isfinite(min_) && std::isfinite(max_) && min_ <= max_ &&
           scale_ > 0 && scale_ <= 1 && densest_ >= 0 &&
           (ready_ == 0 || (width_ > 0 && std::isfinite(width_) && std::isfinite(origin_)));
  }

  // Learns x, seen in `hour` of the day. The first `warmup` values only set the initial range,
  // their spread over the bins.
  void learn(double x, std::size_t hour, double forget, uint32_t warmup) {
    min_ = seen_ == 0 ? x : std::min(min_, x);
    max_ = seen_ == 0 ? x : std::max(max_, x);
    if (ready_ == 0) {
      if (++seen_ < warmup) {
        return;
      }
      // The bins span twice the range seen, centred on it, so that its edges are inside. A
      // constant start gets a narrow range that widens with the first change.
      const double span = max_ > min_ ? max_ - min_ : std::max(std::fabs(x) * 1e-3, 1e-9);
      // Not below the smallest normal double: a width of 0 would never widen.
      width_ = std::max(2 * span / kBins, std::numeric_limits<double>::min());
      origin_ = min_ - span / 2;
      ready_ = 1;
    }
    int b = binOf(x);
    if (b < 0) {
      if (!widenTo(x)) {
        // Beyond what a double can span: the histogram starts again, the range is kept.
        count_ = {};
        hours_ = {};
        densest_ = 0;
        seen_ = 1;
        ready_ = 0;
        return;
      }
      b = binOf(x);
    }
    const double level = (x - origin_) / width_ * kLevelsPerBin;
    hours_.learn(hour, static_cast<uint8_t>(std::clamp(level, 0.0, 255.0)));
    scale_ *= 1 - forget;
    if (scale_ < 1e-12) {
      for (float& c : count_) {
        c = static_cast<float>(c * scale_);
      }
      densest_ *= scale_;
      scale_ = 1;
    }
    count_[b] += static_cast<float>(1 / scale_);
    // Forgetting shrinks every bin alike, so only the sums around b can overtake the densest.
    for (int j = std::max(b - 1, 0); j <= std::min(b + 1, kBins - 1); ++j) {
      densest_ = std::max(densest_, around(j));
    }
  }

 private:
  // The bin of x, or -1 outside the range.
  int binOf(double x) const {
    const double q = (x - origin_) / width_;
    return q >= 0 && q < kBins ? static_cast<int>(q) : -1;
  }

  // How far x lies outside the smallest and largest values ever learned (0 within them).
  double beyond(double x) const { return outside(x, min_, max_); }

  // A bin with half of each neighbour: smooths the edges between bins.
  double around(int b) const {
    double c = count_[b];
    if (b > 0) {
      c += 0.5 * count_[b - 1];
    }
    if (b + 1 < kBins) {
      c += 0.5 * count_[b + 1];
    }
    return c;
  }

  // Doubles the bins' width, merging neighbours and centring what was there, until x fits.
  bool widenTo(double x) {
    if (!(width_ > 0)) {
      return false;  // would never get wider
    }
    while (binOf(x) < 0) {
      std::array<float, kBins> merged{};
      for (int j = 0; j < kBins / 2; ++j) {
        merged[j + kBins / 4] = count_[2 * j] + count_[2 * j + 1];
      }
      count_ = merged;
      hours_.rescale(kBins / 4 * kLevelsPerBin);
      width_ *= 2;
      origin_ -= (kBins / 4) * width_;
      if (!std::isfinite(width_) || !std::isfinite(origin_)) {
        return false;
      }
    }
    densest_ = 0;
    for (int j = 0; j < kBins; ++j) {
      densest_ = std::max(densest_, around(j));
    }
    return true;
  }

  std::array<float, kBins> count_{};  // in units of 1 / scale_
  HourEnvelope hours_;
  double scale_ = 1;
  double densest_ = 0;  // the largest around(b), in the same units
  double origin_ = 0;
  double width_ = 0;
  double min_ = 0;  // the smallest and largest values ever learned
  double max_ = 0;
  uint32_t seen_ = 0;  // values learned, counted up to warmup
  uint8_t ready_ = 0;  // the range is set (a byte, not a bool: states are read back from files)
};

// How new the path to a value is (after CAD-OSE's contexts, in a fixed table): each value's
// distance from what the series is expected to be, quantised to one of 16 levels, and the paths
// of the last one to five levels into it, counted in a hashed table. A path the series has not
// taken before is news even when every value on it is usual: a daily curve that turns early, a
// saw-tooth that loses a tooth. What weighs is how rare news is for this series: a new path in
// a series that seldom shows one counts fully, one more in a series that keeps showing new
// paths (noise) hardly at all.
class PathNovelty {
 public:
  static constexpr int kLevels = 16;
  static constexpr int kOrders = 5;
  static constexpr uint32_t kTableBits = 11;
  // A path seen this many times is known (once may be the anomaly itself).
  static constexpr uint8_t kKnownAfter = 2;
  // Weight of each sample in the rate of new paths.
  static constexpr float kRateAlpha = 0.01F;
  // A rate of new paths this low (or lower) makes a new one count fully.
  static constexpr double kRareRate = 0.03;
  // The counts are halved this often, so that a table that has filled up (a noisy series over
  // weeks) forgets old paths rather than knowing every path there is.
  static constexpr uint32_t kHalveEvery = 1u << 15;

  // How new the path into `level` is, in [0, 1], then learns it.
  double observe(uint32_t level) {
    double surprise = 0;
    if (filled_ == kOrders) {
      int unknown = 0;
      uint32_t context = 0;  // the last k levels, 4 bits each, the latest highest
      for (int k = 1; k <= kOrders; ++k) {
        context = (context << 4) | recent_[k - 1];
        uint8_t& c = counts_[slot(k, context, level)];
        unknown += c < kKnownAfter ? 1 : 0;
        c = c < 255 ? c + 1 : c;
      }
      const double share = static_cast<double>(unknown) / kOrders;
      const double rarity = std::log(std::max<double>(rate_, kRareRate)) / std::log(kRareRate);
      // Steeply: a few new paths (jitter across a level's edge) count little, and so do new
      // paths in a series that shows them now and then.
      const double rarity2 = rarity * rarity;
      surprise = share * share * rarity2 * rarity2;
      rate_ += kRateAlpha * (static_cast<float>(share) - rate_);
      if (++since_halving_ == kHalveEvery) {
        since_halving_ = 0;
        for (uint8_t& c : counts_) {
          c /= 2;
        }
      }
    } else {
      ++filled_;
    }
    for (int i = kOrders - 1; i > 0; --i) {
      recent_[i] = recent_[i - 1];
    }
    recent_[0] = static_cast<uint8_t>(level);
    return surprise;
  }

  // Whether a state read back from a file could have been written by observe().
  bool consistent() const {
    return filled_ <= kOrders && since_halving_ < kHalveEvery && rate_ >= 0 && rate_ <= 1 &&
           std::all_of(recent_.begin(), recent_.end(), [](uint8_t l) { return l < kLevels; });
  }

 private:
  // The table slot of the path of the last `order` levels (`context`) into `level`.
  static uint32_t slot(int order, uint32_t context, uint32_t level) {
    const uint32_t key = (((static_cast<uint32_t>(order) << (4 * order)) | context) << 4) | level;
    return (key * 2654435761u) >> (32 - kTableBits);  // Knuth's multiplicative hash
  }

  std::array<uint8_t, 1u << kTableBits> counts_{};
  std::array<uint8_t, kOrders> recent_{};  // the last levels, the latest first
  uint8_t filled_ = 0;                     // levels seen, counted up to kOrders
  uint32_t since_halving_ = 0;
  float rate_ = 1;  // the share of new paths (EWMA): a new series expects them
};

// Large deviations that come back at the same time of day, or of the week, are routine: a
// nightly backup, a cron job, Monday morning's batch. A daily profile in ten-minute slots
// misses them when they are short and wander by half an hour from night to night. The last
// few episodes of large deviations are kept (when each began, how long it lasted, how large
// its largest deviation was); one that was seen, at least half as large, both about a day and
// about two days earlier (or a week and two weeks) is a routine, and so is the rest of it for
// as long as the last occurrence lasted. Two earlier occurrences, not one: an anomaly that
// lasts into the next day is not its own precedent.
class RoutineEvents {
 public:
  static constexpr std::size_t kKept = 4;
  // How far from a whole number of periods an earlier occurrence may lie, per period; large
  // deviations closer together than this are one episode.
  static constexpr int64_t kToleranceSeconds = 3600;
  static constexpr double kMinShare = 0.5;
  // Deviations are kept in thousandths, in 16 bits: up to 65.535 (kMaxDeviation is 50).
  static constexpr double kSizeScale = 1000;

  // Whether a large deviation, `raw` at `t_ms`, repeats a routine; remembers it either way.
  bool recurs(int64_t t_ms, double raw) {
    const int64_t t = t_ms / 1000;
    if (t <= 0 || t > std::numeric_limits<uint32_t>::max()) {
      return false;  // kept in 32 bits of seconds (until 2106)
    }
    int64_t length = -1;  // of the earlier occurrence, when this is a routine
    for (const int64_t period : {kDay, kWeek}) {
      const int64_t last = seen(t - period, kToleranceSeconds, raw);
      if (last >= 0 && seen(t - 2 * period, 2 * kToleranceSeconds, raw) >= 0) {
        length = std::max(length, last);
      }
    }
    // One place per episode: the samples of one job (a minute of them at 10 s) would
    // otherwise fill every place, leaving no room for the nights before.
    const std::size_t last = (next_ + kKept - 1) % kKept;
    const bool same_episode =
        size_[last] > 0 && t >= at_[last] && t - at_[last] < kToleranceSeconds;
    if (length >= 0) {
      // Counted from the episode's start, so that its later samples do not push the end on.
      const int64_t start = same_episode ? at_[last] : t;
      until_ = static_cast<uint32_t>(std::max<int64_t>(until_, start + length + kSlackSeconds));
    }
    const uint16_t size = static_cast<uint16_t>(std::min(raw, 65.0) * kSizeScale);
    if (same_episode) {
      size_[last] = std::max(size_[last], size);
      length_[last] = static_cast<uint16_t>(t - at_[last]);
      return length >= 0;
    }
    at_[next_] = static_cast<uint32_t>(t);
    length_[next_] = 0;
    size_[next_] = std::max<uint16_t>(size, 1);
    next_ = static_cast<uint8_t>((next_ + 1) % kKept);
    return length >= 0;
  }

  // Whether `t_ms` falls within a routine recognised earlier, for as long as its last
  // occurrence lasted.
  bool within(int64_t t_ms) const { return until_ != 0 && t_ms / 1000 <= until_; }

  // Whether a state read back from a file could have been written by recurs().
  bool consistent() const { return next_ < kKept; }

 private:
  // Past the length of the last occurrence, for the return to the usual level (the step back
  // down is part of the job) and a job that runs a little longer tonight.
  static constexpr int64_t kSlackSeconds = 300;

  // The length of an episode at least kMinShare of `raw` that began within `tolerance` of
  // `when`, or -1 when there was none.
  int64_t seen(int64_t when, int64_t tolerance, double raw) const {
    int64_t found = -1;
    for (std::size_t i = 0; i < kKept; ++i) {
      // Every kept episode has a size of at least 1: 0 is an empty place.
      if (size_[i] > 0 && size_[i] >= kMinShare * raw * kSizeScale && at_[i] >= when - tolerance &&
          at_[i] <= when + tolerance) {
        found = std::max<int64_t>(found, length_[i]);
      }
    }
    return found;
  }

  std::array<uint32_t, kKept> at_{};      // seconds since the epoch
  std::array<uint16_t, kKept> length_{};  // seconds from the first large deviation to the last
  std::array<uint16_t, kKept> size_{};    // the largest, in thousandths
  uint32_t until_ = 0;                    // the routine recognised lasts until then (seconds)
  uint8_t next_ = 0;                      // the place the next one goes to
};

// The most alarms counted (see EnsembleParams::alarm_memory_seconds): a series that alarmed
// fifty times in a week is back to its full sensitivity about two weeks (7 days times ln 8)
// after it went quiet, not a month. NAB scores the same with any limit from 3 up.
constexpr double kMaxCountedAlarms = 8;
// From this many times the usual alarms on, a value out of the range seen is judged by the
// likelihood like any other.
constexpr double kRangeCrowding = 2;

// The distribution of a series' averaged deviations (an exponentially weighted mean and
// variance): how rare an average this large is for this series.
struct AverageHistory {
  double mean = 0;
  double var = 0;
  uint64_t n = 0;

  // The chance of an average at least `avg` under a normal distribution with this mean and
  // variance (1 for one at or below the mean: only larger deviations than usual are anomalous);
  // then learns `avg`.
  double tailAndLearn(double avg, double alpha) {
    double tail = 1;
    if (n > 0 && avg > mean) {
      const double sd = std::max(std::sqrt(var), 1e-3);
      tail = 0.5 * std::erfc((avg - mean) / sd / std::sqrt(2.0));
    }
    const double d = avg - mean;
    if (n == 0) {
      mean = avg;
    } else {
      mean += alpha * d;
      var = (1 - alpha) * (var + alpha * d * d);
    }
    ++n;
    return tail;
  }
};

constexpr ExpectedRange kUnknownRange{std::numeric_limits<double>::quiet_NaN(),
                                      std::numeric_limits<double>::quiet_NaN()};

// Which seasonal pattern the level is measured against.
enum class Season : uint8_t { kNone, kDaily, kWeekly };

const std::shared_ptr<const EnsembleParams>& defaultParams() {
  static const auto kDefaults = std::make_shared<const EnsembleParams>();
  return kDefaults;
}

class EnsembleDetector final : public Detector {
 public:
  // `params` may be shared with other models (see makeEnsembleDetector).
  explicit EnsembleDetector(std::shared_ptr<const EnsembleParams> params) : p_(std::move(params)) {}

  std::string_view name() const override { return "ensemble"; }

  double update(int64_t t, double x) noexcept override {
    if (!std::isfinite(x)) {
      return 0;
    }
    State& s = s_;
    if (s.n == 0) {
      s.mean = x;
      s.last = x;
      s.first_t = t;
      s.n = 1;
      return 0;
    }
    const double floor = p_->min_scale * std::max(1.0, std::fabs(s.mean));
    // Level: distance from the weighted mean in weighted standard deviations.
    const double diff = x - s.mean;
    double z_level = std::fabs(diff) / std::max(std::sqrt(s.var), floor);
    // Seasonal patterns: the value expected at this time of day, and on this day of the week
    // (the daily profile plus this hour's weekly offset). Where a pattern explains the
    // series' variation better than its mean does, the distance from the pattern replaces the
    // distance from the mean, so the Monday-morning peak is not an anomaly and a missing one
    // is.
    const std::size_t slot = slotOf(t, kDay, kDailySlots);
    const std::size_t hour = slotOf(t, kWeek, kWeeklySlots);
    const bool daily_known = s.daily.has(slot);
    const bool weekly_known = daily_known && s.weekly.has(hour);
    const double daily_residual = daily_known ? x - s.daily.value[slot] : 0;
    const double weekly_residual = weekly_known ? daily_residual - s.weekly.value[hour] : 0;
    const bool daily_reliable =
        daily_known && s.daily_n >= kMinResiduals && s.daily_var < p_->season_share * s.var;
    // The weekly pattern stands on its own: a series whose weekends differ has no daily
    // pattern that explains it.
    const bool weekly_reliable = weekly_known && s.weekly_n >= kMinResiduals &&
                                 s.weekly_var < p_->season_share * s.var &&
                                 s.weekly_var < p_->week_share * s.daily_var;
    Season season = Season::kNone;
    double expected = 0;  // under a seasonal pattern, the value it expects here
    double spread = std::max(std::sqrt(s.var), floor);
    if (weekly_reliable) {
      season = Season::kWeekly;
      expected = x - weekly_residual;
      spread = std::max(std::sqrt(s.weekly_var), floor);
      z_level = std::fabs(weekly_residual) / spread;
    } else if (daily_reliable) {
      season = Season::kDaily;
      expected = x - daily_residual;
      spread = std::max(std::sqrt(s.daily_var), floor);
      z_level = std::fabs(daily_residual) / spread;
    }
    const double centre = season == Season::kNone ? s.mean : expected;
    range_ = s.n >= p_->warmup ? ExpectedRange{centre - kExpectedDeviations * spread,
                                               centre + kExpectedDeviations * spread}
                               : kUnknownRange;
    // Step: this change against the usual size of a change (spikes and breaks in a noisy
    // trend, which the level view smooths over). Under a seasonal pattern, the change in the
    // distance from it: the pattern's own jumps (weekend to Monday) are no break.
    const double step = season != Season::kNone && season == s.last_season
                            ? (x - expected) - (s.last - s.last_expected)
                            : x - s.last;
    const double z_step = std::fabs(step) / std::max(std::sqrt(s.step_var), floor);
    const double z_novelty = p_->novelty_weight * s.values.deviation(x);
    // Beyond anything the series showed in a day or more of learning (checked before x widens
    // the range). The age in doubles: timestamps read from a file can be anything, and an
    // integer difference could overflow.
    const bool out_of_range =
        p_->range_tolerance > 0 && s.n > p_->warmup &&
        static_cast<double>(t) - static_cast<double>(s.first_t) >= kDay * 1000.0 &&
        s.values.beyondRange(x, p_->range_tolerance);
    static_assert(kDailySlots % HourEnvelope::kHours == 0);
    const std::size_t hour_of_day = slot * HourEnvelope::kHours / kDailySlots;
    ExpectedRange hour_shown = kUnknownRange;
    const bool out_of_hour =
        p_->hour_tolerance > 0 && s.n > p_->warmup &&
        s.values.beyondHour(hour_of_day, x, p_->hour_days, p_->hour_tolerance, hour_shown);
    if (out_of_hour) {
      // What this hour of the day has shown is what the model expected here: the evidence
      // for an alert, narrower than the spread around the centre, which a nightly job widens.
      range_ = hour_shown;
    }
    // The path view's level: where x lies against the centre in use, in 16 steps across
    // path_spread spreads on either side.
    const double position =
        ((x - centre) / (2 * p_->path_spread * spread) + 0.5) * PathNovelty::kLevels;
    // Not positive includes NaN (values at the ends of the double range): the lowest level.
    const uint32_t level =
        position > 0 ? static_cast<uint32_t>(std::min(position, PathNovelty::kLevels - 1.0)) : 0;
    const double z_path = p_->path_weight * s.paths.observe(level);
    double raw = std::min(std::max({z_level, z_step, z_novelty, z_path}), kMaxDeviation);
    // A routine counts as an ordinary sample of this series: its usual deviation. A large
    // deviation during one must still match it in size (a job far larger than usual is news).
    const bool routine =
        p_->routine_deviation > 0 &&
        (raw >= p_->routine_deviation ? s.routines.recurs(t, raw) : s.routines.within(t));
    if (routine) {
      raw = std::min(raw, s.short_history.mean);
    }
    // Stuck: a series that moves stops moving (a frozen sensor, a hung exporter). The moment
    // the run of repeats gets long enough counts as a large deviation, once.
    // Only for series that rarely repeat a value (not counts of rare events, not integers
    // that often stay put).
    s.repeats = x == s.last ? s.repeats + 1 : 0;
    if (s.repeats == p_->stuck_after && s.repeat_rate < 0.05) {
      raw = kMaxDeviation;
    }
    if (s.repeats <= 1) {
      s.repeat_rate += 0.01 * ((s.repeats == 1 ? 1.0 : 0.0) - s.repeat_rate);
    }
    // Learn after scoring: the score compares this sample with the past only.
    s.mean += p_->level_alpha * diff;
    s.var = (1 - p_->level_alpha) * (s.var + p_->level_alpha * diff * diff);
    s.step_var = (1 - p_->step_alpha) * (s.step_var + p_->step_alpha * step * step);
    s.values.learn(x, hour_of_day, p_->novelty_forget, p_->warmup);
    // The spreads around each pattern start pessimistic (the level's spread, the daily
    // pattern's), so that a pattern is used only once it has shown that it explains more.
    if (daily_known) {
      learnVariance(s.daily_var, s.daily_n, s.var, daily_residual);
    }
    if (weekly_known) {
      learnVariance(s.weekly_var, s.weekly_n, s.daily_var, weekly_residual);
    }
    // The daily profile learns the day without the weekly offset, the weekly profile what the
    // daily one leaves.
    s.daily.observe(slot, s.weekly.has(hour) ? x - s.weekly.value[hour] : x, p_->season_alpha);
    if (daily_known) {
      s.weekly.observe(hour, daily_residual, p_->week_alpha);
    }
    s.last = x;
    s.last_expected = expected;
    s.last_season = season;
    ++s.n;
    if (s.n <= p_->warmup) {
      return 0;
    }
    // The recent average deviation over two spans, each against the distribution of such
    // averages: the short one finds a spike or a break soon, the long one a smaller change that
    // lasts. The ring keeps the last kMaxAverage deviations, the latest at ring_pos - 1.
    s.ring[s.ring_pos] = raw;
    s.ring_pos = (s.ring_pos + 1) % kMaxAverage;
    s.ring_count = std::min<uint32_t>(s.ring_count + 1, kMaxAverage);
    const double tail = std::min(
        s.short_history.tailAndLearn(recentMean(p_->average), p_->history_alpha),
        p_->long_average == 0
            ? 1.0
            : s.long_history.tailAndLearn(recentMean(p_->long_average), p_->history_alpha));
    // The smaller of two chances is small more often than either one alone: tail_factor
    // corrects for looking twice. A series that has alarmed more than usual lately must show
    // a rarer deviation to alarm again.
    // The decayed count only matters above usual_alarms; the count as last stored is an upper
    // bound (decay only lowers it), so most samples of most series skip the exp().
    const double crowding = countingAlarms() && s.alarms > p_->usual_alarms
                                ? std::max(1.0, recentAlarms(t) / p_->usual_alarms)
                                : 1.0;
    const double corrected =
        std::min(1.0, (p_->long_average == 0 ? tail : tail * p_->tail_factor) * crowding);
    // Numenta's log likelihood: 1 - tail spread over [0, 1] on a log scale.
    // A value out of the range ever seen, or out of what its hour of the day has shown, is an
    // anomaly whatever the likelihood says, unless it is a recognised routine (a nightly job a
    // little larger than before) or the series has alarmed at twice its usual rate lately (its
    // range keeps breaking: NAB's two-fold score 72.73 against 72.50, 1.5 to 3 times 72.61-72.75).
    // It bypasses the likelihood rather than entering it as a maximal deviation, as the stuck check
    // does: that way, averaged with its neighbours, NAB's two-fold score was 69.49 against 71.72.
    const double score = (out_of_range || out_of_hour) && !routine && crowding < kRangeCrowding
                             ? 1.0
                             : std::clamp(std::log(corrected + 1e-10) / std::log(1e-10), 0.0, 1.0);
    if (s.quiet > 0) {
      --s.quiet;
      return 0;
    }
    if (score >= p_->refractory_level) {
      s.alarms = std::min(recentAlarms(t) + 1, kMaxCountedAlarms);
      s.alarm_t = t;
      // A series that keeps alarming also stays quiet longer after each alarm: one refractory
      // period per twice the usual alarms counted (NAB's two-fold score 72.98 against 72.73;
      // 0.3 to 0.75 periods per usual alarm gave 72.81-73.09).
      const double periods =
          countingAlarms() ? std::max(1.0, s.alarms / (2 * p_->usual_alarms)) : 1.0;
      s.quiet = static_cast<uint32_t>(p_->refractory * periods);
    }
    return score;
  }

  ExpectedRange expected() const noexcept override { return range_; }
  // Parameters shared with other models are not this one's memory.
  std::size_t memoryBytes() const override {
    return sizeof(*this) + (p_ == defaultParams() ? 0 : sizeof(EnsembleParams));
  }
  std::string serialize() const override { return packState(stateFormat(), s_); }
  bool restore(std::string_view in) override {
    State read;
    if (!unpackState(stateFormat(), in, read) || !read.values.consistent() ||
        !read.paths.consistent() || !read.routines.consistent() || read.ring_pos >= kMaxAverage ||
        read.ring_count > kMaxAverage || !std::isfinite(read.alarms) || read.alarms < 0) {
      return false;
    }
    s_ = read;
    return true;
  }
  std::string_view stateFormat() const override { return "ensemble/9"; }

 private:
  // The mean of the last `span` deviations in the ring (fewer while it fills).
  double recentMean(uint32_t span) const {
    const uint32_t n = std::min(span, s_.ring_count);
    double sum = 0;
    for (uint32_t i = 1; i <= n; ++i) {
      sum += s_.ring[(s_.ring_pos + kMaxAverage - i) % kMaxAverage];
    }
    return sum / n;
  }

  bool countingAlarms() const { return p_->alarm_memory_seconds > 0 && p_->usual_alarms > 0; }

  // The alarms counted so far, decayed to `t_ms` (0 when counting is off).
  double recentAlarms(int64_t t_ms) const {
    if (!countingAlarms() || s_.alarms == 0) {
      return 0;
    }
    // In doubles: timestamps read from a file can be anything. A clock that went back decays
    // nothing.
    const double elapsed_ms =
        std::max(0.0, static_cast<double>(t_ms) - static_cast<double>(s_.alarm_t));
    return s_.alarms * std::exp(-elapsed_ms / (p_->alarm_memory_seconds * 1000));
  }

  void learnVariance(double& var, uint64_t& n, double start, double residual) const {
    if (n == 0) {
      var = start;
    }
    var = (1 - p_->level_alpha) * (var + p_->level_alpha * residual * residual);
    ++n;
  }

  struct State {
    double mean = 0;
    double var = 0;
    double last = 0;
    double step_var = 0;
    uint64_t n = 0;
    AverageHistory short_history;  // of the averages over `average` samples
    AverageHistory long_history;   // ... over `long_average` samples
    std::array<double, kMaxAverage> ring{};
    uint32_t ring_pos = 0;
    uint32_t ring_count = 0;
    Profile<kDailySlots> daily;
    Profile<kWeeklySlots> weekly;
    double daily_var = 0;   // spread of the residuals from the daily profile
    double weekly_var = 0;  // ... from the daily profile plus the weekly offset
    uint64_t daily_n = 0;
    uint64_t weekly_n = 0;
    double last_expected = 0;  // what the pattern in use expected of the last sample
    Season last_season = Season::kNone;
    ValueHistogram values;
    PathNovelty paths;
    RoutineEvents routines;
    uint32_t quiet = 0;      // samples left in the refractory period
    double alarms = 0;       // alarms counted, decayed to alarm_t (see alarm_memory_seconds)
    int64_t alarm_t = 0;     // the last alarm's time (ms)
    uint32_t repeats = 0;    // the current value repeated this many times
    double repeat_rate = 1;  // how often a value repeats the one before (EWMA)
    int64_t first_t = 0;     // the first sample's time (ms): how long the model has learned
  };
  std::shared_ptr<const EnsembleParams> p_;
  State s_;
  ExpectedRange range_ = kUnknownRange;
};

// EnsembleParams' fields by name, for setEnsembleParam.
struct NamedParam {
  std::string_view name;
  std::variant<double EnsembleParams::*, uint32_t EnsembleParams::*> field;
};

// Every field of EnsembleParams (a new field goes here too).
constexpr std::array<NamedParam, 25> kNamedParams{{
    {"level_alpha", &EnsembleParams::level_alpha},
    {"step_alpha", &EnsembleParams::step_alpha},
    {"warmup", &EnsembleParams::warmup},
    {"average", &EnsembleParams::average},
    {"long_average", &EnsembleParams::long_average},
    {"tail_factor", &EnsembleParams::tail_factor},
    {"history_alpha", &EnsembleParams::history_alpha},
    {"min_scale", &EnsembleParams::min_scale},
    {"refractory", &EnsembleParams::refractory},
    {"refractory_level", &EnsembleParams::refractory_level},
    {"routine_deviation", &EnsembleParams::routine_deviation},
    {"range_tolerance", &EnsembleParams::range_tolerance},
    {"hour_tolerance", &EnsembleParams::hour_tolerance},
    {"hour_days", &EnsembleParams::hour_days},
    {"alarm_memory_seconds", &EnsembleParams::alarm_memory_seconds},
    {"usual_alarms", &EnsembleParams::usual_alarms},
    {"stuck_after", &EnsembleParams::stuck_after},
    {"season_alpha", &EnsembleParams::season_alpha},
    {"season_share", &EnsembleParams::season_share},
    {"week_alpha", &EnsembleParams::week_alpha},
    {"week_share", &EnsembleParams::week_share},
    {"novelty_weight", &EnsembleParams::novelty_weight},
    {"novelty_forget", &EnsembleParams::novelty_forget},
    {"path_weight", &EnsembleParams::path_weight},
    {"path_spread", &EnsembleParams::path_spread},
}};

}  // namespace

std::vector<NamedEnsembleParam> ensembleParamValues(const EnsembleParams& params) {
  std::vector<NamedEnsembleParam> out;
  for (const auto& p : kNamedParams) {
    if (const auto* whole = std::get_if<uint32_t EnsembleParams::*>(&p.field)) {
      out.push_back({std::string(p.name), static_cast<double>(params.*(*whole)), true});
    } else {
      out.push_back(
          {std::string(p.name), params.*std::get<double EnsembleParams::*>(p.field), false});
    }
  }
  return out;
}

bool setEnsembleParam(EnsembleParams& params, std::string_view name, double value,
                      std::string& error) {
  const auto found = std::find_if(kNamedParams.begin(), kNamedParams.end(),
                                  [&](const NamedParam& p) { return p.name == name; });
  if (found == kNamedParams.end()) {
    error = "unknown ensemble parameter " + std::string(name);
    return false;
  }
  if (!std::isfinite(value) || value < 0) {
    error = std::string(name) + " must be a finite number, not negative";
    return false;
  }
  if (const auto* whole = std::get_if<uint32_t EnsembleParams::*>(&found->field)) {
    if (value != std::floor(value) || value > std::numeric_limits<uint32_t>::max()) {
      error = std::string(name) + " must be a whole number";
      return false;
    }
    params.*(*whole) = static_cast<uint32_t>(value);
  } else {
    params.*std::get<double EnsembleParams::*>(found->field) = value;
  }
  return true;
}

DetectorPtr makeEnsembleDetector(EnsembleParams params) {
  params.average = std::clamp<uint32_t>(params.average, 1, kMaxAverage);
  params.long_average = std::min<uint32_t>(params.long_average, kMaxAverage);
  // The agent's models all use the defaults: one copy for all of them, not one a series.
  if (params == *defaultParams()) {
    return std::make_unique<EnsembleDetector>(defaultParams());
  }
  return std::make_unique<EnsembleDetector>(std::make_shared<const EnsembleParams>(params));
}

}  // namespace vigil::anomaly
