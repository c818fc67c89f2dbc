#include "self_metrics.h"

#include <prometheus/gauge.h>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

namespace vigil {

namespace {

// One self metric family. Each series is made (at 0) on first use and found again by its
// labels; its value is a prometheus-cpp gauge (an atomic double, for counters too), updated
// from any thread and read in place by a scrape. prometheus-cpp's Registry::Collect() would
// copy every family's label maps into new objects on every scrape: 5 % of a scrape's CPU in
// perf, and building a label map on every increment cost an allocation per HTTP request.
class SelfFamily {
 public:
  SelfFamily(const char* name, const char* help, MetricType type)
      : name_(name), help_(help), type_(type) {}

  prometheus::Gauge& at(std::initializer_list<LabelRef> labels) {
    std::lock_guard lock(mu_);
    const std::span<const LabelRef> refs(labels.begin(), labels.size());
    for (Series& s : series_) {
      if (sameLabels(s.labels, refs)) {
        return s.value;
      }
    }
    return series_.emplace_back(labelSetOf(refs)).value;
  }

  // A family without series yet is left out, as the text format would show only its header.
  void appendTo(MetricBatch& out) const {
    std::lock_guard lock(mu_);
    if (series_.empty()) {
      return;
    }
    MetricFamily& family = out.family(name_, help_, type_);
    for (const Series& s : series_) {
      MetricBatch::addCopyOf(family, s.labels, s.value.Value());
    }
  }

 private:
  struct Series {
    explicit Series(LabelSet l) : labels(std::move(l)) {}
    LabelSet labels;
    prometheus::Gauge value;
  };
  const char* name_;
  const char* help_;
  MetricType type_;
  mutable std::mutex mu_;
  std::deque<Series> series_;  // a deque: the gauges handed out stay where they are
};

}  // namespace

struct SelfMetrics::Impl {
  std::mutex health_mu;
  std::map<std::string, std::unique_ptr<CollectorHealth::Series>> health;
  SelfFamily build_info{"vigil_build_info",
                        "A metric with a constant '1' value labeled by the version and revision "
                        "vigil was built from.",
                        MetricType::kGauge};
  SelfFamily http_refused{"vigil_http_requests_refused_total",
                          "HTTP requests refused before their handler ran, by reason: "
                          "unauthenticated (no or an unknown token), forbidden (a token without "
                          "the scope).",
                          MetricType::kCounter};
  SelfFamily tls_reloads{"vigil_http_tls_reloads_total",
                         "Reloads of the HTTP server's certificate and key after their files "
                         "changed, by result (a failed one keeps the previous certificate).",
                         MetricType::kCounter};
  SelfFamily http_requests{"vigil_http_requests_total",
                           "HTTP requests served, by handler and status code.",
                           MetricType::kCounter};
  SelfFamily reload_ok{"vigil_config_last_reload_successful",
                       "Whether the last configuration reload attempt was successful.",
                       MetricType::kGauge};
  SelfFamily reload_time{"vigil_config_last_reload_success_timestamp_seconds",
                         "Timestamp of the last successful configuration reload.",
                         MetricType::kGauge};
  SelfFamily reload_failures{
      "vigil_config_reload_failures_total",
      "Configuration reloads rejected because the new configuration was invalid.",
      MetricType::kCounter};
  SelfFamily checkpoint_duration{"vigil_store_checkpoint_duration_seconds",
                                 "Time the last store checkpoint took to write.",
                                 MetricType::kGauge};
  SelfFamily checkpoint_time{"vigil_store_last_checkpoint_timestamp_seconds",
                             "When the store was last checkpointed successfully.",
                             MetricType::kGauge};
  SelfFamily checkpoint_failures{"vigil_store_checkpoint_failures_total",
                                 "Store checkpoints that could not be written.",
                                 MetricType::kCounter};
  SelfFamily clock_jumps{"vigil_clock_jumps_total",
                         "Steps of the wall clock against the monotonic clock, by direction.",
                         MetricType::kCounter};
  SelfFamily clock_dropped{"vigil_clock_dropped_samples_total",
                           "Samples dropped because the wall clock went back before their "
                           "timestamp.",
                           MetricType::kCounter};
  SelfFamily exported_series{"vigil_exporter_series",
                             "Series served on /metrics by the last scrape, self metrics "
                             "excluded.",
                             MetricType::kGauge};
  // In the order they are exported.
  const std::vector<const SelfFamily*> families = {
      &build_info,  &http_refused,    &tls_reloads,         &http_requests,   &reload_ok,
      &reload_time, &reload_failures, &checkpoint_duration, &checkpoint_time, &checkpoint_failures,
      &clock_jumps, &clock_dropped,   &exported_series};
};

SelfMetrics::SelfMetrics(std::string_view version, std::string_view revision)
    : impl_(std::make_unique<Impl>()) {
  impl_->build_info.at({{"version", version}, {"revision", revision}}).Set(1);
  impl_->reload_ok.at({}).Set(1);
  impl_->exported_series.at({});
  impl_->checkpoint_failures.at({});
  impl_->clock_jumps.at({{"direction", "backward"}});
  impl_->clock_jumps.at({{"direction", "forward"}});
  impl_->clock_dropped.at({});
}

void SelfMetrics::clockJumped(int64_t by_ms, std::size_t dropped_samples) {
  impl_->clock_jumps.at({{"direction", by_ms < 0 ? "backward" : "forward"}}).Increment();
  impl_->clock_dropped.at({}).Increment(static_cast<double>(dropped_samples));
}

void SelfMetrics::checkpointWritten(bool success, double seconds, double unix_seconds) {
  if (success) {
    impl_->checkpoint_duration.at({}).Set(seconds);
    impl_->checkpoint_time.at({}).Set(unix_seconds);
  } else {
    impl_->checkpoint_failures.at({}).Increment();
  }
}

SelfMetrics::~SelfMetrics() = default;

// Plain atomics rather than prometheus-cpp metrics: these are most of the self series (five per
// collector), and reading them straight from here on a scrape costs a fraction of what the
// registry's Collect() does (it copies every label set twice).
struct CollectorHealth::Series {
  std::atomic<double> duration{0};
  std::atomic<double> success{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> timeouts{0};
  std::atomic<uint64_t> skipped{0};
};

void CollectorHealth::finished(double seconds, bool success) {
  series_->duration.store(seconds, std::memory_order_relaxed);
  series_->success.store(success ? 1 : 0, std::memory_order_relaxed);
  if (!success) {
    series_->errors.fetch_add(1, std::memory_order_relaxed);
  }
}

void CollectorHealth::timedOut() {
  series_->timeouts.fetch_add(1, std::memory_order_relaxed);
  series_->success.store(0, std::memory_order_relaxed);
}

void CollectorHealth::skipped() { series_->skipped.fetch_add(1, std::memory_order_relaxed); }

CollectorHealth SelfMetrics::collectorHealth(const std::string& collector) {
  std::lock_guard lock(impl_->health_mu);
  auto& series = impl_->health[collector];
  if (!series) {
    // Created up front (at 0) so that rate() sees the first error, timeout or skip as an
    // increase.
    series = std::make_unique<CollectorHealth::Series>();
  }
  CollectorHealth h;
  h.series_ = series.get();
  return h;
}

void SelfMetrics::httpRequest(const std::string& handler, int code) {
  impl_->http_requests.at({{"handler", handler}, {"code", std::to_string(code)}}).Increment();
}

void SelfMetrics::httpRefused(const std::string& reason) {
  impl_->http_refused.at({{"reason", reason}}).Increment();
}

void SelfMetrics::tlsReload(bool success) {
  impl_->tls_reloads.at({{"result", success ? "success" : "failure"}}).Increment();
}

void SelfMetrics::configReload(bool success, double unix_seconds) {
  impl_->reload_ok.at({}).Set(success ? 1 : 0);
  if (success) {
    impl_->reload_time.at({}).Set(unix_seconds);
  } else {
    impl_->reload_failures.at({}).Increment();
  }
}

void SelfMetrics::setExportedSeries(double series) { impl_->exported_series.at({}).Set(series); }

void SelfMetrics::snapshot(MetricBatch& out) const {
  for (const SelfFamily* family : impl_->families) {
    family->appendTo(out);
  }
  appendCollectorHealth(out);
}

void SelfMetrics::appendCollectorHealth(MetricBatch& out) const {
  std::lock_guard lock(impl_->health_mu);
  if (impl_->health.empty()) {
    return;
  }
  MetricFamily& duration =
      out.family("vigil_collector_duration_seconds", "Duration of the collector's last cycle.",
                 MetricType::kGauge);
  MetricFamily& success = out.family(
      "vigil_collector_success", "Whether the collector's last cycle succeeded (1) or failed (0).",
      MetricType::kGauge);
  MetricFamily& errors =
      out.family("vigil_collector_errors_total",
                 "Collector cycles that failed, including those that ran past their timeout.",
                 MetricType::kCounter);
  MetricFamily& timeouts =
      out.family("vigil_collector_timeouts_total", "Collector cycles that ran past their timeout.",
                 MetricType::kCounter);
  MetricFamily& skipped =
      out.family("vigil_collector_skipped_total",
                 "Collector cycles skipped because the previous cycle was still running.",
                 MetricType::kCounter);
  for (const auto& [collector, series] : impl_->health) {
    const auto relaxed = std::memory_order_relaxed;
    MetricBatch::add(duration, {{"collector", collector}}, series->duration.load(relaxed));
    MetricBatch::add(success, {{"collector", collector}}, series->success.load(relaxed));
    MetricBatch::add(errors, {{"collector", collector}},
                     static_cast<double>(series->errors.load(relaxed)));
    MetricBatch::add(timeouts, {{"collector", collector}},
                     static_cast<double>(series->timeouts.load(relaxed)));
    MetricBatch::add(skipped, {{"collector", collector}},
                     static_cast<double>(series->skipped.load(relaxed)));
  }
}

}  // namespace vigil
