#include "anomaly_service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <type_traits>

#include "vigil/atomic_file.h"
#include "vigil/clock.h"
#include "vigil/rules/promql_engine.h"
#include "vigil/rules/promql_parser.h"
#include "vigil/thread_name.h"

namespace vigil {

namespace {

// Prometheus's naming conventions say which series are counters; the store keeps no types.
bool isCounterName(std::string_view name) {
  for (std::string_view suffix : {"_total", "_count", "_sum", "_bucket"}) {
    if (name.ends_with(suffix)) {
      return true;
    }
  }
  return false;
}

std::string_view metricName(const LabelSet& labels) {
  for (const auto& l : labels) {
    if (l.name == "__name__") {
      return l.value;
    }
  }
  return {};
}

std::vector<std::vector<LabelMatcher>> parseSelectors(const std::vector<std::string>& texts) {
  std::vector<std::vector<LabelMatcher>> out;
  for (const auto& text : texts) {
    auto parsed = promql::parse(text);
    if (parsed.expr && parsed.expr->kind == promql::ExprKind::kVectorSelector) {
      out.push_back(static_cast<const promql::VectorSelector&>(*parsed.expr).matchers);
    }
  }
  return out;
}

}  // namespace

AnomalyService::AnomalyService(Store& store, SnapshotRegistry& snapshots,
                               const AnomalyConfig& config, Duration default_interval)
    : store_(store), snapshots_(snapshots), source_(store.registerSource(kSource)) {
  reconfigure(config, default_interval);
}

AnomalyService::~AnomalyService() { stop(); }

void AnomalyService::reconfigure(const AnomalyConfig& config, Duration default_interval) {
  std::unique_lock lock(mu_);
  if (config.detector != config_.detector) {
    models_.clear();
  }
  if (config.multivariate != config_.multivariate ||
      features_.size() != config.multivariate.size()) {
    features_.clear();
    for (const auto& [name, text] : config.multivariate) {
      auto parsed = promql::parse(text);
      if (parsed.expr) {  // checked when the configuration loaded
        features_.emplace_back(name, std::move(parsed.expr));
      }
    }
    multivariate_ = features_.empty()
                        ? nullptr
                        : std::make_unique<anomaly::MultivariateModel>(features_.size());
  }
  config_ = config;
  interval_ = config.interval.count() > 0 ? config.interval : default_interval;
  selectors_ = parseSelectors(config.selectors);
  lock.unlock();  // the loop takes loop_mu_ before mu_
  {
    std::lock_guard loop_lock(loop_mu_);
    reconfigured_ = true;
  }
  loop_cv_.notify_all();
}

void AnomalyService::start() {
  {
    std::lock_guard lock(loop_mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] {
    nameThisThread("anomaly");
    run();
  });
}

void AnomalyService::stop() {
  {
    std::lock_guard lock(loop_mu_);
    stopping_ = true;
  }
  loop_cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void AnomalyService::run() {
  std::unique_lock lock(loop_mu_);
  while (!stopping_) {
    Duration interval;
    bool enabled = false;
    {
      std::lock_guard config_lock(mu_);
      interval = interval_;
      enabled = config_.enabled;
    }
    reconfigured_ = false;
    if (!enabled) {
      // Off, the loop sleeps until a reload turns detection on: a wake-up every interval
      // for nothing costs an idle agent more than its collection of some collectors.
      loop_cv_.wait(lock, [&] { return stopping_ || reconfigured_; });
      continue;
    }
    loop_cv_.wait_for(lock, std::chrono::milliseconds(interval.count()), [&] { return stopping_; });
    if (stopping_) {
      break;
    }
    lock.unlock();
    runOnce(unixNowMs());
    lock.lock();
  }
}

void AnomalyService::runOnce(int64_t now) {
  const auto started = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (!config_.enabled) {
    return;
  }
  ++cycles_;
  // New samples since the previous cycle (the first looks back one interval).
  const int64_t since = last_run_ > 0 ? last_run_ + 1 : now - interval_.count();
  auto batch = std::make_shared<MetricBatch>();
  MetricFamily& scores = batch->family(
      "anomaly_score",
      "How anomalous the series' latest sample is, 0 to 1, by vigil's online detector "
      "(source_metric names the series; counters are scored on their rate).",
      MetricType::kGauge);
  // The evidence beside each score: what was scored and where the model expected it.
  MetricFamily& observed =
      batch->family("anomaly_observed",
                    "The value the anomaly detector last scored (a counter's per-second rate).",
                    MetricType::kGauge);
  MetricFamily& lower = batch->family(
      "anomaly_expected_lower",
      "Lower end of the range the anomaly detector expected the scored value in (3 deviations).",
      MetricType::kGauge);
  MetricFamily& upper = batch->family(
      "anomaly_expected_upper",
      "Upper end of the range the anomaly detector expected the scored value in (3 deviations).",
      MetricType::kGauge);
  for (const auto& matchers : selectors_) {
    for (auto& series : store_.select(matchers, since, now)) {
      const std::string_view name = metricName(*series.labels);
      if (name.starts_with("anomaly_")) {
        continue;  // never model our own output
      }
      const uint64_t key = labelsHash(*series.labels);
      auto it = models_.find(key);
      if (it == models_.end()) {
        if (models_.size() >= config_.max_models) {
          ++models_refused_;
          continue;
        }
        Model m;
        m.detector = anomaly::makeDetector(config_.detector);
        m.counter = isCounterName(name);
        it = models_.emplace(key, std::move(m)).first;
      }
      Model& m = it->second;
      if (m.seen == static_cast<int64_t>(cycles_)) {
        continue;  // selected by two selectors: fed once
      }
      m.seen = static_cast<int64_t>(cycles_);
      bool scored = false;
      for (const Sample& s : series.samples) {
        if (s.t <= m.last_t || std::isnan(s.v)) {
          continue;  // seen already, a gap or a staleness marker
        }
        double value = s.v;
        if (m.counter) {
          const bool usable = m.has_last && s.v >= m.last_value && s.t > m.last_t;
          const double rate =
              usable ? (s.v - m.last_value) / (static_cast<double>(s.t - m.last_t) / 1000.0) : 0;
          m.last_value = s.v;
          m.has_last = true;
          m.last_t = s.t;
          if (!usable) {
            continue;  // the first sample, or a counter reset: no rate yet
          }
          value = rate;
        } else {
          m.last_t = s.t;
        }
        m.score = m.detector->update(s.t, value);
        m.observed = value;
        m.expected = m.detector->expected();
        if (m.counter) {
          m.expected.lower = std::max(m.expected.lower, 0.0);  // a rate is never negative
        }
        ++samples_scored_;
        scored = true;
      }
      m.has_score = m.has_score || scored;
      // A series collected less often than this loop runs keeps its last score between its
      // samples, as a scraped gauge would; one not seen for Prometheus's lookback goes stale.
      if (!m.has_score || now - m.last_t > 5 * 60 * 1000) {
        continue;
      }
      LabelSet labels;
      labels.reserve(series.labels->size());
      for (const auto& l : *series.labels) {
        if (l.name != "__name__") {
          labels.push_back(std::move(l));
        }
      }
      labels.push_back({"source_metric", std::string(name)});
      if (!std::isnan(m.observed)) {
        MetricBatch::add(observed, labels, m.observed);
      }
      if (std::isfinite(m.expected.lower) && std::isfinite(m.expected.upper)) {
        MetricBatch::add(lower, labels, m.expected.lower);
        MetricBatch::add(upper, labels, m.expected.upper);
      }
      MetricBatch::add(scores, std::move(labels), m.score);
    }
  }
  scoreMultivariate(now, *batch);
  // Models of series no selector picks any more (gone, or a reload changed the selectors)
  // are forgotten after a while.
  const int64_t keep_cycles = 20;
  std::erase_if(models_, [&](const auto& kv) {
    return static_cast<int64_t>(cycles_) - kv.second.seen > keep_cycles;
  });
  store_.appendBatch(source_, now, *batch);
  snapshots_.publish(kSource, std::move(batch));
  last_run_ = now;
  last_cycle_seconds_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

void AnomalyService::scoreMultivariate(int64_t now, MetricBatch& out) {
  if (!multivariate_) {
    return;
  }
  std::vector<double> values;
  values.reserve(features_.size());
  promql::Engine engine(store_);
  for (const auto& [name, expr] : features_) {
    auto value = engine.instant(*expr, now);
    double v = std::numeric_limits<double>::quiet_NaN();
    if (value) {
      if (const auto* scalar = std::get_if<promql::Scalar>(&*value)) {
        v = scalar->v;
      } else if (const auto* vec = std::get_if<promql::Vector>(&*value); vec && !vec->empty()) {
        v = 0;
        for (const auto& s : *vec) {
          v += s.v;
        }
      }
    }
    if (std::isnan(v)) {
      return;  // a feature without data (yet): this moment is not scored
    }
    values.push_back(v);
  }
  const double score = multivariate_->update(values);
  ++multivariate_scored_;
  MetricFamily& scores =
      out.family("anomaly_multivariate_score",
                 "How unusual the node's resources are together, 0 to 1 (anomaly.multivariate).",
                 MetricType::kGauge);
  MetricBatch::add(scores, score);
  MetricFamily& shares =
      out.family("anomaly_multivariate_contribution",
                 "Each feature's share of the last multivariate anomaly distance (the evidence).",
                 MetricType::kGauge);
  const auto contributions = multivariate_->contributions();
  for (std::size_t i = 0; i < features_.size(); ++i) {
    MetricBatch::add(shares, {{"feature", features_[i].first}}, contributions[i]);
  }
}

namespace {

// The file's own layout; each model's state has its detector's format, named in the header.
constexpr std::string_view kModelsMagicPrefix = "vigil-anomaly-models/";
constexpr std::string_view kModelsMagic = "vigil-anomaly-models/2";

// What a multivariate model was learned on: its features' names and expressions, in order.
std::string featureSignature(const std::vector<std::pair<std::string, std::string>>& features) {
  std::string out;
  for (const auto& [name, expr] : features) {
    out += name + '\n' + expr + '\n';
  }
  return out;
}

template <typename T>
void put(std::string& out, const T& v) {
  static_assert(std::is_trivially_copyable_v<T>);
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

template <typename T>
bool take(std::string_view& in, T& v) {
  if (in.size() < sizeof v) {
    return false;
  }
  std::memcpy(&v, in.data(), sizeof v);
  in.remove_prefix(sizeof v);
  return true;
}

}  // namespace

Status AnomalyService::saveModels(const std::string& path) const {
  std::string out(kModelsMagic);
  {
    std::lock_guard lock(mu_);
    const std::string format(anomaly::makeDetector(config_.detector)->stateFormat());
    put(out, static_cast<uint32_t>(format.size()));
    out += format;
    put(out, static_cast<uint64_t>(models_.size()));
    for (const auto& [key, m] : models_) {
      const std::string state = m.detector->serialize();
      put(out, key);
      put(out,
          static_cast<uint8_t>((m.counter ? 1 : 0) | (m.has_last ? 2 : 0) | (m.has_score ? 4 : 0)));
      put(out, m.last_t);
      put(out, m.last_value);
      put(out, m.score);
      put(out, static_cast<uint32_t>(state.size()));
      out += state;
    }
    // The multivariate model last, under the features it was learned on (files without it
    // load as before).
    if (multivariate_) {
      const std::string features = featureSignature(config_.multivariate);
      const std::string state = multivariate_->serialize();
      put(out, static_cast<uint32_t>(features.size()));
      out += features;
      put(out, static_cast<uint32_t>(state.size()));
      out += state;
    }
  }
  return writeFileAtomically(path, out);
}

Status AnomalyService::loadModels(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    return Status::ok();
  }
  const std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::string_view in(data);
  auto corrupt = [&](const std::string& why) {
    return invalidArgument(path + ": unusable anomaly models (" + why + ")");
  };
  if (!in.starts_with(kModelsMagicPrefix)) {
    return corrupt("not a model file");
  }
  if (!in.starts_with(kModelsMagic)) {
    spdlog::info("anomaly models in {} are from another version of vigil; starting afresh", path);
    return Status::ok();
  }
  in.remove_prefix(kModelsMagic.size());
  uint32_t format_len = 0;
  if (!take(in, format_len) || in.size() < format_len) {
    return corrupt("truncated");
  }
  const std::string format(in.substr(0, format_len));
  in.remove_prefix(format_len);
  std::lock_guard lock(mu_);
  const std::string detector = config_.detector;
  const std::string expected_format(anomaly::makeDetector(detector)->stateFormat());
  if (format != expected_format) {
    // Models of another detector, or of another version of this one: start afresh.
    spdlog::info("anomaly models in {} are {} models, not {}; starting afresh", path, format,
                 expected_format);
    return Status::ok();
  }
  uint64_t count = 0;
  if (!take(in, count)) {
    return corrupt("truncated");
  }
  std::unordered_map<uint64_t, Model> loaded;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t key = 0;
    uint8_t flags = 0;
    Model m;
    uint32_t state_len = 0;
    if (!take(in, key) || !take(in, flags) || !take(in, m.last_t) || !take(in, m.last_value) ||
        !take(in, m.score) || !take(in, state_len) || in.size() < state_len) {
      return corrupt("truncated");
    }
    m.detector = anomaly::makeDetector(detector);
    if (!m.detector->restore(in.substr(0, state_len))) {
      return corrupt("a model does not match its detector");
    }
    in.remove_prefix(state_len);
    m.counter = (flags & 1) != 0;
    m.has_last = (flags & 2) != 0;
    m.has_score = (flags & 4) != 0;
    if (loaded.size() < config_.max_models) {
      loaded.emplace(key, std::move(m));
    }
  }
  models_ = std::move(loaded);
  uint32_t features_len = 0;
  if (multivariate_ && take(in, features_len) && in.size() >= features_len) {
    const bool same = in.substr(0, features_len) == featureSignature(config_.multivariate);
    in.remove_prefix(features_len);
    uint32_t state_len = 0;
    if (same && take(in, state_len) && in.size() >= state_len &&
        !multivariate_->restore(in.substr(0, state_len))) {
      return corrupt("the multivariate model does not match its features");
    }
  }
  // Carry on from the newest sample the models saw, not from an interval ago.
  for (const auto& [key, m] : models_) {
    last_run_ = std::max(last_run_, m.last_t);
  }
  return Status::ok();
}

void AnomalyService::appendStats(MetricBatch& out) const {
  std::lock_guard lock(mu_);
  std::size_t bytes = 0;
  for (const auto& [key, m] : models_) {
    bytes += m.detector->memoryBytes() + sizeof(Model);
  }
  out.addSingle("vigil_anomaly_models", "Series with an anomaly model.", MetricType::kGauge,
                static_cast<double>(models_.size()));
  out.addSingle("vigil_anomaly_model_bytes", "Memory held by the anomaly models.",
                MetricType::kGauge, static_cast<double>(bytes));
  out.addSingle("vigil_anomaly_samples_scored_total", "Samples fed to the anomaly models.",
                MetricType::kCounter, static_cast<double>(samples_scored_));
  out.addSingle("vigil_anomaly_models_refused_total",
                "Series not modelled because the model limit (anomaly.max_models) was reached.",
                MetricType::kCounter, static_cast<double>(models_refused_));
  out.addSingle("vigil_anomaly_cycles_total", "Anomaly scoring cycles run.", MetricType::kCounter,
                static_cast<double>(cycles_));
  out.addSingle("vigil_anomaly_cycle_duration_seconds", "How long the last scoring cycle took.",
                MetricType::kGauge, last_cycle_seconds_);
  out.addSingle("vigil_anomaly_multivariate_observations_total",
                "Moments of the node scored by the multivariate model.", MetricType::kCounter,
                static_cast<double>(multivariate_scored_));
}

}  // namespace vigil
