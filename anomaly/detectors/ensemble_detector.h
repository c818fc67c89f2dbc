#pragma once
// The default detector: several cheap views of the series — its level against an
// exponentially weighted mean and variance (or a daily or weekly pattern), its step against the
// usual step size, how rarely it has shown values like this one, how new the path to this value
// is — combined into one raw deviation (counted as usual when one as large came at this time
// on each of the last two days or weeks: a routine), which is then turned into an anomaly
// likelihood (after Numenta's): how unusual the recent average deviation is compared with the
// averages this series normally shows, over a short span and a longer one, the less likely of
// the two. A noisy series therefore stays quiet, and a quiet one speaks up at a smaller change;
// one that alarmed more than once in the last week or so needs a rarer change to alarm again.
// A value well outside everything the series showed in a day or more scores 1 outright, and so
// does one well beyond what its hour of the day showed on each of five days or more.
// Fixed memory, O(1) per sample.

#include <string>
#include <string_view>
#include <vector>

#include "vigil/anomaly/detector.h"

namespace vigil::anomaly {

// Defaults tuned with bench/nab (nab_bench) on the tuning half of the NAB development subset;
// long_average and tail_factor by two-fold cross-validation (each half tuned, the other
// checked): standard 67.9 against 66.0 with the short average alone; long_average 7 to 10 gave
// 66.2-67.9 and tail_factor 2.5 to 5 gave 67.1-67.9, a plateau rather than a single peak.
// A new field is also listed, by name, in ensemble_detector.cpp (kNamedParams).
struct EnsembleParams {
  double level_alpha = 0.005;  // EWMA weight for the level's mean and variance
  double step_alpha = 0.01;    // EWMA weight for the step size's variance
  uint32_t warmup = 30;        // samples scored 0 while the model learns
  uint32_t average = 5;        // samples averaged before the likelihood (at most 16)
  /// Samples in a second, longer average with a likelihood of its own (at most 16; 0: none).
  /// The score takes the less likely of the two. With tail_factor, a lone burst must stand
  /// out more than before unless the longer average bears it out: on NAB, 16 fewer false
  /// alarms at the tuned threshold (most on the Twitter files) and the same windows found.
  uint32_t long_average = 8;
  /// The smaller of the two averages' tail chances is multiplied by this: taking the smaller
  /// of two makes a low one more common than it is for either (a Bonferroni-like correction,
  /// tuned with bench/nab rather than set to 2).
  double tail_factor = 3;
  double history_alpha = 0.0015;  // EWMA weight for the distribution of averaged deviations
  double min_scale = 1e-6;        // relative floor of deviations, so constant series stay quiet
  /// After a score of at least refractory_level, the next `refractory` samples score 0: the
  /// score marks where an anomaly starts, not every sample while it lasts (an alert keeps
  /// itself going with keep_firing_for).
  uint32_t refractory = 100;
  double refractory_level = 0.75;
  /// A deviation at least this large (in spreads) that came back at the same time of day on
  /// each of the last two days, or of the week on each of the last two weeks (within an hour
  /// per period), is a routine (a nightly job): it, and the rest of the job for as long as it
  /// lasted last time (and five minutes more), count as this series' usual deviation. 0: off.
  /// On NAB: the nightly spikes of ec2_cpu_utilization_24ae8d and c6585a stop alarming (14
  /// false alarms to 2), nothing found is lost. Two-fold cross-validation 68.95 against 67.91
  /// without; 4 to 16 gave 68.7-69.0.
  double routine_deviation = 8;
  /// A value beyond the smallest or largest the series ever showed, by more than this share of
  /// the range between them, scores 1 once the model has learned for a day (so that the range
  /// spans the daily cycle), unless it is a routine: after the "spatial anomaly" of Numenta's
  /// HTM detector for NAB, which uses 0.05 too. 0: off. On NAB: two windows found that the
  /// likelihood missed (request counts above any seen, a speed below any seen) for six more
  /// false alarms; two-fold cross-validation 71.72 against 68.95 without; 0.03 to 0.06 gave
  /// 71.2-71.8, and requiring up to two days of learning first changed nothing.
  double range_tolerance = 0.05;
  /// Likewise for a value beyond what this hour of the day (with the two hours on either side)
  /// showed on each of at least hour_days earlier days, by more than hour_tolerance times the
  /// width of those values: an afternoon spike on a series whose only spikes so far were a
  /// nightly job, a travel time at noon three times the worst noon seen. Not for hours whose
  /// values spread over less than 5 % of the whole range (a gauge that sits at one value all
  /// night). 0: off. On NAB: three windows found that the likelihood missed (in
  /// ec2_cpu_utilization_24ae8d, exchange-4 and TravelTime_387) for two more false alarms;
  /// two-fold cross-validation 77.38 against 72.98 without; tolerances of 0.5 to 1.25 and 3 to
  /// 7 days gave 76.8-77.5.
  double hour_tolerance = 1;
  uint32_t hour_days = 5;
  /// A series that alarms often is noisier than its likelihood says. Alarms (scores of at
  /// least refractory_level) are counted with a weight that decays over about
  /// alarm_memory_seconds; while that count is above usual_alarms, the chance of each new
  /// deviation is multiplied by count / usual_alarms, so a series that alarmed four times in
  /// the last week needs a deviation four times as rare to alarm again (and stays quiet for two
  /// refractory periods after it). By time, not by
  /// samples: a series sampled every 15 s is held to as few alarms a week as one sampled every
  /// five minutes. 0: off. On NAB (a week, one alarm): two-fold cross-validation 72.50 against
  /// 71.72 without, 71.61 against 69.49 on the held-out half, 57 false alarms instead of 71
  /// (most on the Twitter files, IBM's 15 to 8) and one window more found, 49 of 57; 3 to 14 days
  /// and 0.7 to 1.5 alarms gave 70.2-72.5.
  double alarm_memory_seconds = 7 * 86400;
  double usual_alarms = 1;
  /// A series that usually moves and repeats one value this many times in a row is stuck.
  uint32_t stuck_after = 30;
  /// Weight of a day's visit to a ten-minute slot in the daily profile.
  double season_alpha = 0.1;
  /// The daily pattern is used once its residual variance is below this share of the level's.
  double season_share = 1.0;
  /// Weight of a week's visit to an hour in the weekly offsets.
  double week_alpha = 0.3;
  /// The weekly pattern is used once its residual variance is below this share of the daily's.
  double week_share = 0.8;
  /// Weight of the novelty view (how rarely values like this one have been seen) against the
  /// level and step views' deviations.
  double novelty_weight = 0.5;
  /// Share of the value histogram forgotten per sample.
  double novelty_forget = 0.001;
  /// Largest deviation the path view reports (for a path never taken, in a series that rarely
  /// takes a new one).
  double path_weight = 15;
  /// Width of the path view's levels: its 16 levels span this many spreads (standard
  /// deviations around the mean or the seasonal pattern in use) on each side of the centre.
  double path_spread = 1.5;

  bool operator==(const EnsembleParams&) const = default;
};

DetectorPtr makeEnsembleDetector(EnsembleParams params = {});

/// One field of EnsembleParams: its name as written in the struct, its value, and whether it
/// takes whole numbers only.
struct NamedEnsembleParam {
  std::string name;
  double value = 0;
  bool whole = false;
};

/// Every field of `params`, in the struct's order.
std::vector<NamedEnsembleParam> ensembleParamValues(const EnsembleParams& params);

/// Sets the field called `name` to `value`, for tuning runs (nab_bench --set). A value must be
/// finite and not negative, and a whole number for the integer fields; otherwise, or for an
/// unknown name, returns false with `error` saying which.
bool setEnsembleParam(EnsembleParams& params, std::string_view name, double value,
                      std::string& error);

}  // namespace vigil::anomaly
