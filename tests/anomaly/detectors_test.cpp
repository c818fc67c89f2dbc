#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>

#include "anomaly/detectors/ensemble_detector.h"
#include "vigil/anomaly/detector.h"

using namespace vigil::anomaly;

namespace {

// A noisy series around 100 with standard deviation 1.
std::vector<double> noisy(std::size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(100, 1);
  std::vector<double> out(n);
  for (auto& v : out) {
    v = noise(rng);
  }
  return out;
}

std::vector<double> scoreAll(Detector& d, const std::vector<double>& values) {
  std::vector<double> scores;
  for (std::size_t i = 0; i < values.size(); ++i) {
    scores.push_back(d.update(static_cast<int64_t>(i) * 1000, values[i]));
  }
  return scores;
}

}  // namespace

TEST_CASE("Detectors: a spike scores near 1 at once, the noise around it does not", "[anomaly]") {
  for (const auto& name : detectorNames()) {
    INFO("detector " << name);
    auto d = makeDetector(name);
    REQUIRE(d);
    auto values = noisy(500, 1);
    values[400] = 130;  // 30 sigma
    auto scores = scoreAll(*d, values);
    CHECK(scores[400] > 0.9999);
    std::size_t false_alarms = 0;
    for (std::size_t i = 100; i < 400; ++i) {
      false_alarms += scores[i] > 0.9999 ? 1 : 0;
    }
    // 0.9999 is about 3.9 sigma: a handful at most in 300 normal points.
    CHECK(false_alarms <= 3);
  }
}

TEST_CASE("Detectors: a level shift is flagged when it happens", "[anomaly]") {
  for (const auto& name : detectorNames()) {
    INFO("detector " << name);
    auto d = makeDetector(name);
    auto values = noisy(600, 2);
    for (std::size_t i = 300; i < values.size(); ++i) {
      values[i] += 20;
    }
    auto scores = scoreAll(*d, values);
    CHECK(scores[300] > 0.9999);
    // Both learn the new level eventually: well after the shift the scores are ordinary again.
    CHECK(scores[590] < 0.999);
  }
}

TEST_CASE("Detectors: constant and gapped series stay quiet, a departure does not", "[anomaly]") {
  for (const auto& name : detectorNames()) {
    INFO("detector " << name);
    auto d = makeDetector(name);
    double max_score = 0;
    for (int i = 0; i < 200; ++i) {
      max_score = std::max(max_score, d->update(i * 1000, 42.0));
      // NaN (a gap or a staleness marker) is ignored.
      CHECK(d->update(i * 1000 + 500, std::nan("")) == 0);
    }
    CHECK(max_score == 0);
    CHECK(d->update(200000, 43.0) > 0.9999);
  }
}

TEST_CASE("Detectors: values at the ends of the double range keep scores in [0, 1]", "[anomaly]") {
  // A counter reset read as a rate, a unit bug, a sensor's error code: magnitudes near the
  // largest double, of both signs, must not turn a model's state into NaN or infinity.
  const double big = std::numeric_limits<double>::max();
  for (const auto& name : detectorNames()) {
    INFO("detector " << name);
    auto d = makeDetector(name);
    const auto normal = noisy(400, 3);
    int64_t t = 0;
    auto feed = [&](double v) {
      const double s = d->update(t, v);
      t += 1000;
      CHECK(s >= 0);
      CHECK(s <= 1);
    };
    for (int i = 0; i < 200; ++i) {
      feed(normal[i]);
    }
    for (const double v : {big, -big, big / 3, -big, 1e-300, 0.0, big}) {
      feed(v);
    }
    for (int i = 200; i < 400; ++i) {
      feed(normal[i]);
    }
  }
}

TEST_CASE("Ensemble: a damaged model read back from a file is refused", "[anomaly][ensemble]") {
  // 30 values from 0 to 29 set the novelty histogram's range: 32 bins, twice 29/32 wide.
  auto d = makeDetector("ensemble");
  for (int i = 0; i < 100; ++i) {
    d->update(i * 1000, i % 30);
  }
  std::string state = d->serialize();
  const double width = 2 * 29.0 / 32;
  char bytes[sizeof width];
  std::memcpy(bytes, &width, sizeof width);
  const auto at = state.find(std::string_view(bytes, sizeof bytes));
  REQUIRE(at != std::string::npos);
  CHECK(makeDetector("ensemble")->restore(state));
  // A width of 0 (a flipped bit, a truncated write padded with zeros) could never widen to take
  // in a new value: refused, not a model that hangs its thread.
  std::memset(state.data() + at, 0, sizeof width);
  CHECK_FALSE(makeDetector("ensemble")->restore(state));
}

TEST_CASE("Ensemble: a model read back with its ring position out of range is refused",
          "[anomaly][ensemble]") {
  // 100 values, 30 of them warm-up: 70 deviations went into the 16-slot ring, so the next
  // goes to slot 70 % 16 = 6 and the ring is full (16).
  auto d = makeDetector("ensemble");
  for (int i = 0; i < 100; ++i) {
    d->update(i * 1000, i % 30);
  }
  std::string state = d->serialize();
  const uint32_t position_and_count[2] = {6, 16};
  const std::string_view pattern(reinterpret_cast<const char*>(position_and_count),
                                 sizeof position_and_count);
  const auto at = state.find(pattern);
  REQUIRE(at != std::string::npos);
  REQUIRE(state.rfind(pattern) == at);
  CHECK(makeDetector("ensemble")->restore(state));
  // A position past the ring would have the next sample written outside it.
  const uint32_t past_the_ring = 1000;
  std::memcpy(state.data() + at, &past_the_ring, sizeof past_the_ring);
  CHECK_FALSE(makeDetector("ensemble")->restore(state));
}

TEST_CASE("Detectors: models round-trip through serialisation", "[anomaly]") {
  for (const auto& name : detectorNames()) {
    INFO("detector " << name);
    auto a = makeDetector(name);
    auto values = noisy(300, 3);
    scoreAll(*a, std::vector<double>(values.begin(), values.begin() + 150));
    auto b = makeDetector(name);
    REQUIRE(b->restore(a->serialize()));
    for (std::size_t i = 150; i < values.size(); ++i) {
      CHECK(a->update(static_cast<int64_t>(i), values[i]) ==
            b->update(static_cast<int64_t>(i), values[i]));
    }
    // Another detector's state, or garbage, is refused and changes nothing.
    for (const auto& other : detectorNames()) {
      if (other != name) {
        CHECK_FALSE(b->restore(makeDetector(other)->serialize()));
      }
    }
    CHECK_FALSE(b->restore("garbage"));
  }
}

TEST_CASE("Detectors: memory per model is fixed and small", "[anomaly]") {
  for (const auto& name : detectorNames()) {
    INFO("detector " << name);
    auto d = makeDetector(name);
    const std::size_t before = d->memoryBytes();
    scoreAll(*d, noisy(10000, 4));
    CHECK(d->memoryBytes() == before);
    CHECK(before <= 4096);
  }
  CHECK(makeDetector("no-such-detector") == nullptr);
  // The ensemble's parameters are one copy for every model made with the defaults (as the
  // agent makes them), and counted in a model made with its own.
  EnsembleParams own;
  own.range_tolerance = 0.1;
  CHECK(makeEnsembleDetector(own)->memoryBytes() ==
        makeEnsembleDetector()->memoryBytes() + sizeof(EnsembleParams));
}

TEST_CASE("Ensemble parameters are set by name for tuning runs, and bad ones refused",
          "[anomaly]") {
  const EnsembleParams defaults;
  const auto fields = ensembleParamValues(defaults);
  CHECK(fields.size() == 25);
  // Each name reaches its own field: setting each one to a value of its own changes the
  // params, and reading them back gives that value under that name alone.
  for (std::size_t i = 0; i < fields.size(); ++i) {
    INFO("parameter " << fields[i].name);
    EnsembleParams params;
    std::string error;
    const double value = fields[i].whole ? fields[i].value + 3 : fields[i].value * 1.5 + 0.25;
    REQUIRE(setEnsembleParam(params, fields[i].name, value, error));
    CHECK(error.empty());
    CHECK_FALSE(params == defaults);
    const auto after = ensembleParamValues(params);
    for (std::size_t j = 0; j < after.size(); ++j) {
      CHECK(after[j].name == fields[j].name);
      CHECK(after[j].value == (i == j ? value : fields[j].value));
    }
  }
  // And the right field, seen through the struct itself.
  {
    EnsembleParams params;
    std::string error;
    REQUIRE(setEnsembleParam(params, "level_alpha", 0.02, error));
    REQUIRE(setEnsembleParam(params, "warmup", 45, error));
    REQUIRE(setEnsembleParam(params, "path_weight", 9, error));
    REQUIRE(setEnsembleParam(params, "path_spread", 2.5, error));
    REQUIRE(setEnsembleParam(params, "refractory_level", 0.6, error));
    REQUIRE(setEnsembleParam(params, "long_average", 12, error));
    CHECK(params.level_alpha == 0.02);
    CHECK(params.warmup == 45);
    CHECK(params.path_weight == 9);
    CHECK(params.path_spread == 2.5);
    CHECK(params.refractory_level == 0.6);
    CHECK(params.long_average == 12);
    CHECK(params.average == defaults.average);
    CHECK(params.step_alpha == defaults.step_alpha);
  }

  EnsembleParams params;
  std::string error;
  CHECK_FALSE(setEnsembleParam(params, "levelalpha", 0.1, error));
  CHECK(error == "unknown ensemble parameter levelalpha");
  CHECK_FALSE(setEnsembleParam(params, "warmup", 2.5, error));
  CHECK(error == "warmup must be a whole number");
  CHECK_FALSE(setEnsembleParam(params, "level_alpha", -0.1, error));
  CHECK(error == "level_alpha must be a finite number, not negative");
  CHECK_FALSE(setEnsembleParam(params, "tail_factor", std::nan(""), error));
  CHECK_FALSE(setEnsembleParam(params, "refractory", 1e12, error));
  CHECK(params == defaults);  // nothing refused was applied

  // A model made with the changed params behaves differently from the default one.
  REQUIRE(setEnsembleParam(params, "warmup", 500, error));
  auto changed = makeEnsembleDetector(params);
  auto standard = makeEnsembleDetector();
  const auto values = noisy(460, 7);
  double changed_max = 0, standard_max = 0;  // around the spike
  for (std::size_t i = 0; i < 460; ++i) {
    const auto t = static_cast<int64_t>(i) * 60000;
    const double spike = i == 450 ? 1000 : 0;
    const double changed_score = changed->update(t, values[i] + spike);
    const double standard_score = standard->update(t, values[i] + spike);
    if (i >= 450) {
      changed_max = std::max(changed_max, changed_score);
      standard_max = std::max(standard_max, standard_score);
    }
  }
  CHECK(changed_max == 0);  // still warming up at the spike
  CHECK(standard_max > 0.9);
}

TEST_CASE("Detectors: the expected range holds the usual values and not an outlier", "[anomaly]") {
  for (const auto& name : detectorNames()) {
    INFO("detector " << name);
    auto d = makeDetector(name);
    CHECK(std::isnan(d->expected().lower));  // nothing learned yet
    const auto values = noisy(2000, 5);
    int inside = 0;
    for (std::size_t i = 0; i < values.size(); ++i) {
      d->update(static_cast<int64_t>(i) * 1000, values[i]);
      const ExpectedRange r = d->expected();
      inside += i >= 100 && r.lower <= values[i] && values[i] <= r.upper ? 1 : 0;
    }
    // About three standard deviations on either side: 99.7 % of normal noise.
    CHECK(inside >= 1900 * 0.98);
    d->update(2000 * 1000, 120);  // 20 standard deviations up
    const ExpectedRange r = d->expected();
    CHECK(r.upper < 120);
    CHECK(r.lower < 100);
    CHECK(r.upper > 100);
    CHECK(r.upper - r.lower < 10);
  }
}

TEST_CASE("Detectors: z to score mapping", "[anomaly]") {
  CHECK(zToScore(0) == 0);
  CHECK(zToScore(2) == Approx(0.9545).epsilon(1e-3));
  CHECK(zToScore(3) == Approx(0.9973).epsilon(1e-4));
  CHECK(zToScore(std::nan("")) == 0);
  CHECK(zToScore(1e9) == 1);
}

namespace {

// The default detector's alert threshold, from the NAB harness (bench/nab, standard profile).
constexpr double kEnsembleThreshold = 0.80;

// A noisy series (a daily pattern of `amplitude`, 288 samples a day) with `anomaly` applied
// from sample 3000 on.
std::vector<double> series(const std::function<double(int, double)>& anomaly, int n = 4000,
                           double amplitude = 0) {
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0, 1);
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    const double normal = 100 + amplitude * std::sin(2 * M_PI * i / 288.0);
    const double e = noise(rng);
    out.push_back(i < 3000 ? normal + e : anomaly(i - 3000, normal + e));
  }
  return out;
}

// Samples from the start of the anomaly until the ensemble's score reaches the threshold, or
// -1 when it never does within 500 samples.
int detectionDelay(const std::vector<double>& series) {
  auto d = makeDetector("ensemble");
  for (int i = 0; i < static_cast<int>(series.size()); ++i) {
    const double s = d->update(static_cast<int64_t>(i) * 300000, series[i]);
    if (i >= 3000 && s >= kEnsembleThreshold) {
      return i - 3000;
    }
    if (i >= 3500) {
      break;
    }
  }
  return -1;
}

// Samples from `from` on where a fresh ensemble, fed `values` five minutes apart, scores at or
// above the threshold.
int ensembleAlarmsFrom(const std::vector<double>& values, std::size_t from) {
  auto d = makeDetector("ensemble");
  int alarms = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double s = d->update(static_cast<int64_t>(i) * 300000, values[i]);
    alarms += i >= from && s >= kEnsembleThreshold ? 1 : 0;
  }
  return alarms;
}

}  // namespace

TEST_CASE("Ensemble: each kind of anomaly is detected within a stated number of samples",
          "[anomaly][ensemble]") {
  struct Case {
    const char* name;
    std::function<double(int, double)> anomaly;
    int within;
  };
  // Noise of standard deviation 1; the delays are what the NAB-tuned defaults give (the
  // score averages five samples, so a lone spike is flagged on the sample after it).
  const Case cases[] = {
      {"spike", [](int k, double v) { return k == 0 ? v + 15 : v; }, 1},
      {"dip", [](int k, double v) { return k == 0 ? v - 15 : v; }, 1},
      {"level shift", [](int, double v) { return v + 6; }, 2},
      {"variance change", [](int, double v) { return 100 + 6 * (v - 100); }, 3},
      {"trend change", [](int k, double v) { return v + 0.3 * k; }, 40},
      {"stuck value", [](int, double) { return 100.25; }, 30},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const int delay = detectionDelay(series(c.anomaly));
    INFO("delay " << delay);
    CHECK(delay >= 0);
    CHECK(delay <= c.within);
  }
  // A daily pattern (amplitude 10 over noise 1, 5-minute samples) that stops: the values stay
  // within their usual range, only the time of day is wrong.
  const int broken =
      detectionDelay(series([](int, double v) { return 100 + (v - std::round(v)); }, 4000, 10));
  INFO("broken daily pattern, delay " << broken);
  CHECK(broken >= 0);
  CHECK(broken <= 100);
}

TEST_CASE("Ensemble: a rhythm that runs backwards within the usual range is flagged",
          "[anomaly][ensemble]") {
  // A saw-tooth (a queue that fills and is drained at once: 20 steps up, one drop) that starts
  // to run backwards (drained slowly, filled at once). Every value, and every step's size, is
  // as usual: only the path between values is new, which the level, step and value-novelty
  // views cannot see.
  auto sawtooth = [](bool backwards) {
    std::mt19937 rng(5);
    std::normal_distribution<double> noise(0, 0.2);
    std::vector<double> out;
    for (int i = 0; i < 4000; ++i) {
      const int phase = i % 20;
      const bool reversed = backwards && i >= 3000;
      out.push_back(100 + (reversed ? 19 - phase : phase) + noise(rng));
    }
    return out;
  };
  const int delay = detectionDelay(sawtooth(true));
  INFO("delay " << delay);
  CHECK(delay >= 0);
  CHECK(delay <= 20);
  // The same saw-tooth running on as before: not flagged after its first days.
  CHECK(ensembleAlarmsFrom(sawtooth(false), 1000) == 0);
}

TEST_CASE("Ensemble: a clean noisy daily pattern raises few false alarms", "[anomaly][ensemble]") {
  const int alarms = ensembleAlarmsFrom(series([](int, double v) { return v; }, 30000, 10), 1000);
  // About 100 days of 5-minute samples: at most one alarm in 2,900 samples (one every ~10 days).
  INFO("alarms: " << alarms);
  CHECK(alarms <= 10);
}

namespace {

// Five-minute samples of a series with a weekly pattern: weekdays around 100 with a daily
// swing of 10, the two weekend days around 70 with a swing of 3; noise of standard deviation
// 1. From `broken_from` on (a sample index), weekend days look like weekdays.
std::vector<double> weekly(int weeks, int broken_from) {
  std::mt19937 rng(11);
  std::normal_distribution<double> noise(0, 1);
  std::vector<double> out;
  const int per_day = 288;
  for (int i = 0; i < weeks * 7 * per_day; ++i) {
    const int day = i / per_day % 7;  // day 0 is 1970-01-01, a Thursday: days 2 and 3 are
    const bool weekend = (day == 2 || day == 3) && i < broken_from;  // Saturday, Sunday
    const double swing = std::sin(2 * M_PI * (i % per_day) / per_day);
    out.push_back((weekend ? 70 + 3 * swing : 100 + 10 * swing) + noise(rng));
  }
  return out;
}

}  // namespace

TEST_CASE("Ensemble: a weekly pattern is learned, and a weekend like a weekday is flagged",
          "[anomaly][ensemble]") {
  constexpr int kWeek = 7 * 288;
  // Weekends are normal from the third week on: few alarms over weeks 3 to 8.
  const int alarms = ensembleAlarmsFrom(weekly(8, std::numeric_limits<int>::max()), 2 * kWeek);
  INFO("alarms over six clean weeks: " << alarms);
  CHECK(alarms <= 3);
  // The Saturday of week 6 looks like a weekday: its values are all within what the series
  // shows every week, only the day is wrong.
  const int saturday = 5 * kWeek + 2 * 288;
  const auto broken = weekly(6, saturday);
  auto e = makeDetector("ensemble");
  int delay = -1;
  for (int i = 0; i < static_cast<int>(broken.size()); ++i) {
    const double s = e->update(static_cast<int64_t>(i) * 300000, broken[i]);
    if (i >= saturday && s >= kEnsembleThreshold) {
      delay = i - saturday;
      break;
    }
  }
  INFO("broken weekly pattern, delay " << delay);
  CHECK(delay >= 0);
  CHECK(delay <= 3);
}

namespace {

// A quiet series sampled every `step_seconds` with a nightly job: `job_samples` samples 15
// standard deviations high, starting some time between 02:40 and 03:25, every night for ten
// nights, except on the tenth, when it runs four times as high; on the ninth day as large a
// rise as usual at noon. Checks that the second night alarms, that the job is routine from its
// third night on, but not the night it runs far higher, that the noon rise alarms, and that
// without the routine check the later nights do alarm (the rises are not simply too small).
void checkNightlyJobBecomesRoutine(int step_seconds, int job_samples) {
  const int per_day = 86400 / step_seconds;
  constexpr int kFarHigher = 9;
  constexpr int64_t kMidnight = 1'700'006'400'000;  // 2023-11-15 00:00 UTC
  const int jitter_minutes[] = {0, 15, -10, 25, 5, -20, 20, -5, 10, -15};
  std::mt19937 rng(11);
  std::normal_distribution<double> noise(100, 1);
  std::vector<double> values;
  for (int i = 0; i < 10 * per_day; ++i) {
    values.push_back(noise(rng));
  }
  std::vector<int> nightly;
  for (int day = 0; day < 10; ++day) {
    nightly.push_back(day * per_day + (3 * 3600 + jitter_minutes[day] * 60) / step_seconds);
    for (int k = 0; k < job_samples; ++k) {
      values[nightly.back() + k] += day == kFarHigher ? 60 : 15;
    }
  }
  const int noon = 8 * per_day + per_day / 2;
  for (int k = 0; k < job_samples; ++k) {
    values[noon + k] += 15;
  }
  auto run = [&](Detector& d) {
    std::vector<double> scores;
    for (std::size_t i = 0; i < values.size(); ++i) {
      scores.push_back(
          d.update(kMidnight + static_cast<int64_t>(i) * step_seconds * 1000, values[i]));
    }
    return scores;
  };
  // The highest score from the rise's start to a few samples after it (a rise's average peaks
  // a sample or two on).
  auto at = [&](const std::vector<double>& scores, int i) {
    return *std::max_element(scores.begin() + i, scores.begin() + i + job_samples + 2);
  };
  auto ensemble = makeDetector("ensemble");
  const auto scores = run(*ensemble);
  // The first night falls in the model's first hours; the second is news; from the third on,
  // the job has run at this time on each of the two nights before.
  CHECK(at(scores, nightly[1]) >= kEnsembleThreshold);
  for (int day = 2; day < 10; ++day) {
    INFO("night " << day);
    if (day == kFarHigher) {
      CHECK(at(scores, nightly[day]) >= kEnsembleThreshold);
    } else {
      CHECK(at(scores, nightly[day]) < kEnsembleThreshold);
    }
  }
  CHECK(at(scores, noon) >= kEnsembleThreshold);
  EnsembleParams params;
  params.routine_deviation = 0;
  auto without = makeEnsembleDetector(params);
  const auto plain = run(*without);
  int nights_alarmed = 0;
  for (int day = 2; day < 10; ++day) {
    nights_alarmed += day != kFarHigher && at(plain, nightly[day]) >= kEnsembleThreshold ? 1 : 0;
  }
  CHECK(nights_alarmed >= 5);
}

}  // namespace

TEST_CASE("Ensemble: a job at the same time every night becomes routine, one at noon does not",
          "[anomaly][ensemble]") {
  SECTION("one five-minute sample a night") { checkNightlyJobBecomesRoutine(300, 1); }
  // Sampled every 15 s, one night's job is eight large deviations in a row: they must count as
  // one occurrence, or they would crowd out the nights before.
  SECTION("two minutes of 15 s samples a night") { checkNightlyJobBecomesRoutine(15, 8); }
}

namespace {

// Alarms from sample `from` on of an ensemble with `params`, fed heavy-tailed noise (Student's t
// with two degrees of freedom, as bursty as request counts) every 15 s for `days`, and its
// scores from then on, fed Gaussian noise for `quiet_days` and then one spike.
struct NoisyThenQuiet {
  int alarms = 0;
  std::vector<double> last_day_scores;
};

NoisyThenQuiet noisyThenQuiet(const EnsembleParams& params, int days, int quiet_days) {
  constexpr int64_t kStepMs = 15000;
  constexpr int64_t kPerDay = 86400000 / kStepMs;
  std::mt19937 rng(1);
  std::student_t_distribution<double> bursty(2);
  std::normal_distribution<double> calm(0, 1);
  auto d = makeEnsembleDetector(params);
  NoisyThenQuiet out;
  int64_t i = 0;
  for (; i < days * kPerDay; ++i) {
    const double score = d->update(i * kStepMs, 100 + bursty(rng));
    out.alarms += i >= 2 * kPerDay && score >= kEnsembleThreshold ? 1 : 0;
  }
  for (const int64_t end = i + quiet_days * kPerDay; i < end; ++i) {
    const double score = d->update(i * kStepMs, 100 + calm(rng));
    if (end - i <= kPerDay) {
      out.last_day_scores.push_back(score);
    }
  }
  // A spike, and the sample after it (the score averages a few samples).
  out.last_day_scores.push_back(d->update(i * kStepMs, 100 + 20));
  out.last_day_scores.push_back(d->update((i + 1) * kStepMs, 100 + calm(rng)));
  return out;
}

}  // namespace

TEST_CASE("Ensemble: a series that keeps alarming must deviate more to alarm again",
          "[anomaly][ensemble]") {
  EnsembleParams uncounted;
  uncounted.alarm_memory_seconds = 0;
  const NoisyThenQuiet on = noisyThenQuiet({}, 14, 21);
  const NoisyThenQuiet off = noisyThenQuiet(uncounted, 14, 21);
  // Bursty noise alarms several times a day (the likelihood takes the averages for normal);
  // counting the alarms of the last week takes a tenth of them away (the largest, scored 1,
  // stay), and leaves the series far from silenced.
  INFO("alarms over 12 days: " << on.alarms << " counted, " << off.alarms << " uncounted");
  CHECK(off.alarms >= 50);
  CHECK(on.alarms * 10 <= off.alarms * 9);
  CHECK(on.alarms * 2 >= off.alarms);
  // Three weeks of quiet later the count has decayed (from at most 8): the model scores every
  // sample, the last one a spike, as one that never counted.
  REQUIRE(on.last_day_scores.size() == off.last_day_scores.size());
  CHECK(on.last_day_scores == off.last_day_scores);
  CHECK(std::max(on.last_day_scores.end()[-2], on.last_day_scores.back()) >= kEnsembleThreshold);
}

TEST_CASE("Ensemble: a series that keeps alarming stays quiet longer after each alarm",
          "[anomaly][ensemble]") {
  // Every 150 five-minute samples a spike, each twice the one before, over noise of 1: each
  // alarms on its own, and without the count each one does. The count lengthens the quiet after
  // an alarm (one refractory period of 100 samples per two alarms counted), so from the third
  // alarm on some spikes fall into it; the series still alarms on the others.
  auto scores = [](const EnsembleParams& params) {
    auto d = makeEnsembleDetector(params);
    std::mt19937 rng(5);
    std::normal_distribution<double> noise(0, 1);
    int64_t i = 0;
    auto feed = [&](double v) { return d->update(300000 * i++, v); };
    while (i < 2 * 288) {
      feed(100 + noise(rng));
    }
    std::vector<double> out;  // per spike, the higher score of the spike and the sample after
    double spike = 20;
    for (int k = 0; k < 10; ++k, spike *= 2) {
      for (int j = 0; j < 150; ++j) {
        feed(100 + noise(rng));
      }
      const double at = feed(100 + spike);
      out.push_back(std::max(at, feed(100 + noise(rng))));
    }
    return out;
  };
  EnsembleParams uncounted;
  uncounted.alarm_memory_seconds = 0;
  const std::vector<double> off = scores(uncounted);
  const std::vector<double> on = scores({});
  const auto alarms = [](const std::vector<double>& s) {
    return std::count_if(s.begin(), s.end(), [](double v) { return v >= kEnsembleThreshold; });
  };
  const auto quiet = [](const std::vector<double>& s) {
    return std::count(s.begin(), s.end(), 0.0);
  };
  INFO("alarms: " << alarms(on) << " counted, " << alarms(off) << " uncounted");
  CHECK(alarms(off) == 10);
  CHECK(quiet(off) == 0);
  CHECK(quiet(on) >= 3);
  CHECK(alarms(on) >= 4);
  // The first two alarms come before any count is above usual: as without it.
  CHECK(on[0] >= kEnsembleThreshold);
  CHECK(on[1] >= kEnsembleThreshold);
}

TEST_CASE("Ensemble: a value beyond anything the series has shown is flagged",
          "[anomaly][ensemble]") {
  // A utilisation that has always wandered between 40 and 60 (uniformly, five-minute
  // samples), then from sample 3000 on wanders between 36 and 38: below the lowest value it
  // ever had, yet within two and a half of its standard deviations (5.8) of its mean, and
  // reached in a step no larger than its usual steps.
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> usual(40, 60);
  std::uniform_real_distribution<double> lower(36, 38);
  std::vector<double> values;
  for (int i = 0; i < 3200; ++i) {
    values.push_back(i < 3000 ? usual(rng) : lower(rng));
  }
  auto run = [&](Detector& d, double threshold, int& false_alarms) {
    int first = -1;
    false_alarms = 0;
    for (int i = 0; i < static_cast<int>(values.size()); ++i) {
      const double s = d.update(static_cast<int64_t>(i) * 300000, values[i]);
      false_alarms += i >= 1000 && i < 3000 && s >= threshold ? 1 : 0;
      if (i >= 3000 && first < 0 && s >= threshold) {
        first = i - 3000;
      }
    }
    return first;
  };
  int false_alarms = 0;
  auto ensemble = makeDetector("ensemble");
  const int delay = run(*ensemble, kEnsembleThreshold, false_alarms);
  INFO("ensemble: delay " << delay << ", false alarms " << false_alarms);
  CHECK(delay >= 0);
  CHECK(delay <= 5);
  CHECK(false_alarms <= 2);
  // The distance from the weighted mean alone does not see it.
  auto level = makeDetector("ewma");
  int level_false_alarms = 0;
  CHECK(run(*level, 0.9999, level_false_alarms) < 0);
}

TEST_CASE("Ensemble: a value out of the range seen over a day of learning scores 1",
          "[anomaly][ensemble]") {
  // A utilisation wandering uniformly between 40 and 60 (five-minute samples), then one value
  // of 61.5: above the highest it ever showed by 7.5 % of its range, yet within one and a half
  // of its standard deviations (5.8) of its mean.
  auto scoreAt = [](int at, double value, double range_tolerance) {
    EnsembleParams p;
    p.range_tolerance = range_tolerance;
    auto d = makeEnsembleDetector(p);
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> usual(40, 60);
    double score = 0;
    for (int i = 0; i <= at; ++i) {
      score = d->update(static_cast<int64_t>(i) * 300000, i == at ? value : usual(rng));
    }
    return score;
  };
  const double tolerance = EnsembleParams{}.range_tolerance;
  REQUIRE(tolerance == 0.05);
  // After a day: 1, where the likelihood alone stays below the alert threshold.
  for (const int at : {300, 700}) {
    INFO("sample " << at);
    CHECK(scoreAt(at, 61.5, tolerance) == 1.0);
    CHECK(scoreAt(at, 61.5, 0) < kEnsembleThreshold);
    // Below the lowest by as much: the same.
    CHECK(scoreAt(at, 38.5, tolerance) == 1.0);
    // Within the range: the rule has nothing to say.
    CHECK(scoreAt(at, 59.5, tolerance) == scoreAt(at, 59.5, 0));
  }
  // Within the first day the range has not yet seen the daily cycle: no rule, the likelihood's
  // score.
  for (const int at : {250, 280}) {
    INFO("sample " << at);
    CHECK(scoreAt(at, 61.5, tolerance) == scoreAt(at, 61.5, 0));
    CHECK(scoreAt(at, 61.5, tolerance) < kEnsembleThreshold);
  }
}

namespace {

// A utilisation wandering uniformly between 40 and 60 in five-minute samples, with a nightly
// job from 04:00 to 04:30 at 90-100; at sample `at`, `value` instead.
double hourOfDayScore(int64_t at, double value, const EnsembleParams& params,
                      int* alarms_before = nullptr, ExpectedRange* expected = nullptr) {
  auto d = makeEnsembleDetector(params);
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> usual(40, 60);
  std::uniform_real_distribution<double> job(90, 100);
  double score = 0;
  for (int64_t i = 0; i <= at; ++i) {
    const int64_t t = i * 300000;
    const int64_t minute = t / 60000 % 1440;
    const double x = i == at ? value : (minute >= 240 && minute < 270 ? job(rng) : usual(rng));
    score = d->update(t, x);
    if (alarms_before != nullptr && i < at && i >= 288 && score >= kEnsembleThreshold) {
      ++*alarms_before;
    }
  }
  if (expected != nullptr) {
    *expected = d->expected();
  }
  return score;
}

}  // namespace

TEST_CASE("Ensemble: a value beyond what its hour of the day has shown scores 1",
          "[anomaly][ensemble]") {
  // 85 at 15:00 lies within the range the nightly job set (40-100), and the job's daily
  // jumps have widened the level's and the step's spreads: only the hours around 15:00, which
  // never went above 60, say that it is news.
  const EnsembleParams defaults;
  REQUIRE(defaults.hour_tolerance == 1);
  REQUIRE(defaults.hour_days == 5);
  EnsembleParams off = defaults;
  off.hour_tolerance = 0;
  constexpr int64_t kPerDay = 288;
  const int64_t day8_15h = 7 * kPerDay + 15 * 12;
  int alarms = 0;
  int alarms_off = 0;
  ExpectedRange expected{};
  ExpectedRange expected_off{};
  CHECK(hourOfDayScore(day8_15h, 85, defaults, &alarms, &expected) == 1.0);
  CHECK(hourOfDayScore(day8_15h, 85, off, &alarms_off, &expected_off) < kEnsembleThreshold);
  // The evidence: what those hours showed, 40 to 60 (to a 256th of the histogram's span),
  // not the spread around the mean, which the job widened.
  CHECK(expected.lower > 39);
  CHECK(expected.lower <= 40);
  CHECK(expected.upper >= 60);
  CHECK(expected.upper < 61);
  CHECK(expected_off.upper > 70);
  // Seven days of the same pattern raised no alarm from it.
  CHECK(alarms == alarms_off);
  // The same at 01:00, whose hours around include 02:00 and 03:00: they were first learned
  // (after the 30 samples of warm-up) before the first night's job widened the histogram they
  // are kept on.
  const int64_t day8_01h = 7 * kPerDay + 1 * 12;
  CHECK(hourOfDayScore(day8_01h, 85, defaults) == 1.0);
  CHECK(hourOfDayScore(day8_01h, 85, off) < kEnsembleThreshold);
  // Beyond the hours' values by less than their width (20): not news to this view.
  CHECK(hourOfDayScore(day8_15h, 75, defaults) == hourOfDayScore(day8_15h, 75, off));
  // At 04:15, during the job, 85 is within what those hours showed.
  const int64_t day8_0415 = 7 * kPerDay + 4 * 12 + 3;
  CHECK(hourOfDayScore(day8_0415, 85, defaults) == hourOfDayScore(day8_0415, 85, off));
  // Before each hour had five earlier days, the view is silent.
  const int64_t day4_15h = 3 * kPerDay + 15 * 12;
  CHECK(hourOfDayScore(day4_15h, 85, defaults) == hourOfDayScore(day4_15h, 85, off));
}

TEST_CASE("Ensemble: hours that always showed one value are not judged by the hour of day",
          "[anomaly][ensemble]") {
  // Pods running: 5 to 8 by day, 5 all night; after ten days, 6 at 03:00. Nothing this hour
  // had shown, but the night's values spread over nothing, which is no pattern to judge by:
  // the hour-of-day view leaves it to the likelihood, which has seen 6 often enough.
  auto scores = [](double hour_tolerance) {
    EnsembleParams params;
    params.hour_tolerance = hour_tolerance;
    auto d = makeEnsembleDetector(params);
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> busy(5, 8);
    std::vector<double> out;
    const int64_t end = 10 * 288 + 3 * 12;
    for (int64_t i = 0; i <= end; ++i) {
      const int64_t minute = i * 5 % 1440;
      const bool day = minute >= 6 * 60 && minute < 22 * 60;
      out.push_back(d->update(i * 300000, i == end ? 6 : (day ? busy(rng) : 5)));
    }
    return out;
  };
  const auto with = scores(EnsembleParams{}.hour_tolerance);
  CHECK(with.back() < kEnsembleThreshold);
  CHECK(with == scores(0));
}

TEST_CASE("Shape: an oscillation within the usual range is caught, which a level view misses",
          "[anomaly][shape]") {
  // Noise of standard deviation 1 around 100, then from sample 1000 a steady oscillation of
  // amplitude 2 (period 6) with little noise: every value stays within the usual ±3.
  auto run = [](const std::string& name, int& false_alarms) {
    std::mt19937 rng(3);
    std::normal_distribution<double> noise(0, 1);
    auto d = makeDetector(name);
    int first = -1;
    false_alarms = 0;
    for (int i = 0; i < 1100; ++i) {
      const bool oscillating = i >= 1000;
      const double v = 100 + noise(rng) * (oscillating ? 0.3 : 1.0) +
                       (oscillating ? 2.0 * std::sin(2 * M_PI * i / 6.0) : 0);
      const double s = d->update(static_cast<int64_t>(i) * 1000, v);
      false_alarms += i >= 200 && !oscillating && s > 0.9999 ? 1 : 0;
      if (oscillating && first < 0 && s > 0.9999) {
        first = i - 1000;
      }
    }
    return first;
  };
  int false_alarms = 0;
  const int shape_delay = run("shape", false_alarms);
  INFO("shape: delay " << shape_delay << ", false alarms " << false_alarms);
  CHECK(shape_delay >= 0);
  CHECK(shape_delay <= 10);
  CHECK(false_alarms <= 4);  // in 800 clean samples
  int ewma_false_alarms = 0;
  CHECK(run("ewma", ewma_false_alarms) == -1);
}
